from tests.e2e.conftest import pipeline, replicated_pipeline  # noqa: F401  (shared fixtures)
