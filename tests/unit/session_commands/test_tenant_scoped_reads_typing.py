"""A session query without a tenant does not type-check (issue 18: tenant-scoped reads).

mypy runs on two snippets: each read-side query called with its tenant passes, each called
without one fails, for both the public read model and the service's internal queries.
"""

from pathlib import Path

import pytest
from mypy import api

WITH_TENANT = """
from services.session_commands.mongo.queries import SessionQueries
from services.session_commands.read_model import SessionReadModel

async def reads(model: SessionReadModel, queries: SessionQueries) -> None:
    await model.get_session("tenant-a", "s-1")
    await model.agent_context("tenant-a", "s-1")
    await model.list_sessions("tenant-a")
    await model.history("tenant-a", "s-1")
    await model.message("tenant-a", "s-1", "m-1")
    await model.awaited_tool_calls("tenant-a", "s-1")
    await queries.get_session("s-1", tenant_id="tenant-a")
    await queries.list_sessions(tenant_id="tenant-a")
    await queries.history("s-1", tenant_id="tenant-a")
"""

WITHOUT_TENANT = """
from services.session_commands.mongo.queries import SessionQueries
from services.session_commands.read_model import SessionReadModel

async def reads(model: SessionReadModel, queries: SessionQueries) -> None:
    await model.get_session("s-1")
    await model.agent_context("s-1")
    await model.list_sessions()
    await model.history("s-1")
    await model.message("s-1", "m-1")
    await model.awaited_tool_calls("s-1")
    await queries.get_session("s-1")
    await queries.list_sessions()
    await queries.history("s-1")
"""


def _mypy(tmp_path: Path, source: str) -> tuple[str, int]:
    snippet = tmp_path / "reads.py"
    snippet.write_text(source)
    stdout, _, status = api.run(["--strict", "--no-error-summary", str(snippet)])
    return stdout, status


@pytest.mark.timeout(180)
def test_queries_with_a_tenant_type_check(tmp_path: Path) -> None:
    stdout, status = _mypy(tmp_path, WITH_TENANT)
    assert status == 0, stdout


@pytest.mark.timeout(180)
def test_every_query_without_a_tenant_is_a_type_error(tmp_path: Path) -> None:
    stdout, status = _mypy(tmp_path, WITHOUT_TENANT)
    assert status == 1
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    # one error per call: a missing argument, or a missing "tenant_id" keyword
    assert len({line.split(":")[1] for line in errors}) == 9, stdout
