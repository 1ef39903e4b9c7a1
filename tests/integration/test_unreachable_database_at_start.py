"""A service whose MongoDB does not answer at start stops in one JSON log line (exit 1): what
went wrong in `message`, the traceback inside the line, never the URI's password."""

import asyncio
import json
import os
import subprocess
import sys

import pytest

from contracts.topics import TopicCatalogue
from services.admin.topics import delete_topics, ensure_topics
from tests.e2e.conftest import free_ports
from tests.secured_kafka import REPO_ROOT

pytestmark = pytest.mark.integration


def test_session_commands_stops_in_one_json_line_when_mongodb_is_unreachable(
    kafka_bootstrap_servers: str, unique_suffix: str
) -> None:
    (closed,) = free_ports(1)
    prefix = f"no-db-{unique_suffix}."
    # Its topics exist: a service checks them before its database (TopicsMissing otherwise).
    catalogue = TopicCatalogue(prefix=prefix, partitions=2)
    asyncio.run(ensure_topics(kafka_bootstrap_servers, catalogue.specs()))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "services.session_commands"],
            cwd=REPO_ROOT,
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
                "AGENT_RUNTIME_TOPIC_PREFIX": prefix,
                "AGENT_RUNTIME_MONGODB_URI": (
                    f"mongodb://admin:S3cret@127.0.0.1:{closed}/"
                    "?directConnection=true&serverSelectionTimeoutMS=1500"
                ),
                "AGENT_RUNTIME_HEALTH_PORT": "0",
                "AGENT_RUNTIME_LOG_FORMAT": "json",
            },
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    finally:
        asyncio.run(delete_topics(kafka_bootstrap_servers, [s.name for s in catalogue.specs()]))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "S3cret" not in output
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]  # all JSON
    critical = [line for line in lines if line["level"] == "CRITICAL"]
    assert len(critical) == 1, output
    assert critical[0]["message"].startswith("session-commands stopped: ServerSelectionTimeout")
    assert "Traceback" in critical[0]["exception"]
    assert not [line for line in lines if "Unclosed" in line["message"]]  # its producer closed
