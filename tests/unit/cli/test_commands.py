import pytest
from aiokafka.errors import KafkaTimeoutError
from pydantic import ValidationError
from typer.testing import CliRunner

from contracts.agents import AgentType
from contracts.commands import CancelTurn, CloseSession, SubmitUserMessage, SwitchAgent
from contracts.session_events import AgentSwitched, SwitchInitiator, TurnCompleted
from services.cli.chat import _command_for, _not_understood
from services.cli.demo import DemoReport
from services.cli.errors import BrokerUnreachable, CliError
from services.cli.main import app
from services.cli.send import build_command
from services.cli.session_client import SessionClient, TurnOutcome
from services.cli.settings import CliSettings
from services.runtime.partitioning import partition_for

pytestmark = pytest.mark.unit

SETTINGS = CliSettings(tenant_id="acme")


def test_send_fills_id_time_and_tenant() -> None:
    command = build_command(
        {
            "type": "session.submit_user_message.v1",
            "session_id": "s-1",
            "message_id": "m-1",
            "content": "hi",
        },
        SETTINGS,
    )
    assert isinstance(command, SubmitUserMessage)
    assert command.tenant_id == "acme"
    assert command.id.startswith("cmd-")


def test_send_names_every_invalid_field() -> None:
    with pytest.raises(CliError) as caught:
        build_command({"type": "session.switch_agent.v1", "session_id": "s 1"}, SETTINGS)
    assert "session_id" in str(caught.value)
    assert "target_agent" in str(caught.value)


def test_send_refuses_an_unknown_type() -> None:
    with pytest.raises(CliError, match="invalid command"):
        build_command({"type": "session.teleport.v1", "session_id": "s-1"}, SETTINGS)


def test_chat_lines_become_commands() -> None:
    switch = _command_for("/switch coder needs code", SETTINGS, "s-1")
    assert isinstance(switch, SwitchAgent)
    assert switch.target_agent == AgentType.CODER
    assert switch.reason == "needs code"
    assert isinstance(_command_for("/close", SETTINGS, "s-1"), CloseSession)
    stop = _command_for("/stop", SETTINGS, "s-1")
    assert isinstance(stop, CancelTurn)
    assert (stop.turn_id, stop.requested_by) == (None, "chat")
    assert _command_for("/switch wizard", SETTINGS, "s-1") is None
    assert _command_for("/dance", SETTINGS, "s-1") is None
    message = _command_for("hello", SETTINGS, "s-1")
    assert isinstance(message, SubmitUserMessage)
    assert message.content == "hello"


def test_a_switch_to_an_unknown_agent_names_the_agents() -> None:
    for line in ("/switch wizard", "/switch"):
        said = _not_understood(line)
        assert "unknown command" not in said
        assert "orchestrator, coder, architect, debug, ask" in said
    assert "unknown command[/] /dance" in _not_understood("/dance now")


def test_partition_is_stable_and_in_range() -> None:
    partitions = {partition_for(f"s-{i}", 12) for i in range(500)}
    assert partitions == set(range(12))
    assert partition_for("s-1", 12) == partition_for("s-1", 12)


def _switched(to: AgentType) -> AgentSwitched:
    return AgentSwitched(
        id=f"e-{to.value}",
        session_id="s",
        tenant_id="t",
        from_agent=AgentType.ORCHESTRATOR,
        to_agent=to,
        reason="r",
        switch_count=1,
        initiated_by=SwitchInitiator.ORCHESTRATION,
    )


def test_demo_verdict_requires_every_agent_and_a_switch() -> None:
    report = DemoReport(session_id="s")
    outcome = TurnOutcome(command_id="c", updates=[_switched(AgentType.CODER)])
    outcome.completed = TurnCompleted(
        id="e-done", session_id="s", tenant_id="t", turn_id="t1", agent=AgentType.CODER, steps=2
    )
    report.record(outcome)
    assert report.switches == 1
    assert report.turns_completed == 1
    assert any("never reached" in p for p in report.verdict())
    for agent in AgentType:
        report.record(TurnOutcome(command_id="c", updates=[_switched(agent)]))
    assert report.verdict() == []


def test_send_builds_a_cancel_and_a_policy_from_flags() -> None:
    from contracts.mid_turn import MidTurnPolicy
    from services.cli.main import _flags_body

    cancel = build_command(_flags_body("cancel", "s-1", None, None, None, "wrong"), SETTINGS)
    assert isinstance(cancel, CancelTurn)
    assert (cancel.turn_id, cancel.reason) == (None, "wrong")
    update = build_command(
        {**_flags_body("update", "s-1", None, None, None, None), "mid_turn_policy": "interrupt"},
        SETTINGS,
    )
    assert getattr(update, "mid_turn_policy", None) is MidTurnPolicy.INTERRUPT


class _BrokerGone:
    async def send_and_wait(self, *args: object, **kwargs: object) -> None:
        raise KafkaTimeoutError()


async def test_a_publish_the_broker_does_not_take_is_one_line_with_exit_3() -> None:
    """Mid-chat (a message, /stop, a tool result): it was aiokafka's traceback out of the
    chat; now the chat prints the line and goes on, demo exits 3 with it."""
    client = SessionClient(SETTINGS, "s-1")
    client._producer = _BrokerGone()
    stop = _command_for("/stop", SETTINGS, "s-1")
    assert stop is not None
    with pytest.raises(BrokerUnreachable) as caught:
        await client.publish(stop)
    assert caught.value.exit_code == 3
    assert f"cannot reach Kafka at {SETTINGS.kafka_bootstrap_servers}" in str(caught.value)


def test_the_cli_tenant_is_an_id_as_the_commands_need() -> None:
    """A tenant no command can carry is a bad setting (exit 2), not a chat that crashes."""
    with pytest.raises(ValidationError):
        CliSettings(tenant_id="a b")


@pytest.mark.parametrize("limit", ["0", "-5"])
def test_audit_tail_refuses_a_limit_below_one_as_a_usage_error(limit: str) -> None:
    # Following, --limit 0 waited for a record and printed it; --no-follow printed nothing.
    result = CliRunner().invoke(app, ["audit", "tail", "--no-follow", "--limit", limit])
    assert result.exit_code == 2
    assert "--limit" in result.output


def test_send_help_says_json_takes_a_file() -> None:
    # README documents `send --json FILE`; the help said "a command body as JSON", so inline
    # JSON was tried and refused as an unreadable file.
    result = CliRunner().invoke(app, ["send", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "--json FILE" in result.output
    assert "file holding the command body" in result.output
