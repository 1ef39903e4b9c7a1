"""`dlq replay` chooses what it may re-publish before anything reaches Kafka (a dry run)."""

import pytest

from contracts.codec import DecodeError, DecodeFailure, encode
from contracts.commands import CreateSession
from services.cli.dead_letters import ReplayOutcome, StoredDeadLetter, replay
from services.cli.settings import CliSettings
from services.runtime.dead_letter import build_dead_letter
from services.runtime.record import Record

pytestmark = pytest.mark.unit


def _stored(origin_topic: str) -> StoredDeadLetter:
    command = encode(
        CreateSession(id="cmd-1", session_id="s-1", tenant_id="t-1", title="x"), source="test"
    )
    record = Record(origin_topic, 0, 7, b"s-1", command.value, tuple(command.headers))
    letter = build_dead_letter(
        record,
        DecodeError(DecodeFailure.INVALID_FIELD, "rejected by an older consumer"),
        attempts=1,
        consumer_group="g",
        source_service="session-commands",
    )
    return StoredDeadLetter(partition=0, offset=0, letter=letter)


async def test_a_letter_from_another_deployments_topic_is_not_replayed() -> None:
    # Two deployments sharing one dead-letters topic: `--topic-prefix staging.` must not
    # re-publish prod's originals into prod's topics.
    settings = CliSettings(_env_file=None, topic_prefix="staging.")

    summary = await replay(
        settings, [_stored("prod.commands"), _stored("staging.commands")], dry_run=True
    )

    foreign, own = summary.results
    assert foreign.outcome is ReplayOutcome.FAILED
    assert "origin topic 'prod.commands' is not a topic of this deployment" in foreign.detail
    assert own.outcome is ReplayOutcome.WOULD_REPLAY
