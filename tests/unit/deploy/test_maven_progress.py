import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit


def _module() -> ModuleType:
    # deploy/local holds scripts, not a package: load the file itself.
    path = Path(__file__).parents[3] / "deploy" / "local" / "maven_progress.py"
    spec = importlib.util.spec_from_file_location("maven_progress", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_jar_download_is_one_short_line_and_the_rest_is_silent() -> None:
    progress_line = _module().progress_line
    jar = (
        "Downloaded from central: https://repo.maven.apache.org/maven2/org/apache/kafka/"
        "kafka-clients/4.3.1/kafka-clients-4.3.1.jar (18 MB at 5.1 MB/s)"
    )
    assert progress_line(jar) == "  downloaded kafka-clients-4.3.1.jar (18 MB)"
    assert progress_line("[INFO] Downloaded from central: https://x/y/z-1.jar (42 kB)") == (
        "  downloaded z-1.jar (42 kB)"
    )
    pom = "Downloaded from central: https://repo/x/kafka-clients-4.3.1.pom (1.7 kB at 20 kB/s)"
    assert progress_line(pom) is None
    assert progress_line("Downloading from central: https://repo/x/kafka-clients-4.3.1.jar") is None
    assert progress_line("[INFO] BUILD SUCCESS") is None
