from tests.e2e.conftest import (  # noqa: F401  (shared fixtures)
    pipeline,
    pipeline_env,
    replicated_pipeline,
)
