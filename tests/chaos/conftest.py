from tests.e2e.conftest import pipeline  # noqa: F401  (shared fixture)
