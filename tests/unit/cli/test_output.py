import io
import json
from datetime import UTC, datetime

import pytest
from rich.console import Console

from contracts.dead_letters import DeadLetter, DeadLetterReason
from services.cli.dead_letter_views import replay_exit_code
from services.cli.dead_letters import (
    DeadLetterFilter,
    ReplayOutcome,
    ReplayResult,
    ReplaySummary,
)
from services.cli.errors import ExitCode
from services.cli.output import Output

pytestmark = pytest.mark.unit


def _output(*, terminal: bool = False, as_json: bool = False) -> tuple[Output, io.StringIO]:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, force_terminal=terminal, color_system=None)
    return Output(console, as_json=as_json), buffer


def test_piped_rows_are_tab_separated_without_header_or_box_drawing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out, buffer = _output()
    out.table(("id", "text"), [("a-1", "two\twords\nand a line"), ("a-2", None)])
    out.note("[bold]2 rows[/]")
    assert buffer.getvalue() == "a-1\ttwo words and a line\na-2\t-\n"
    assert capsys.readouterr().err == "2 rows\n"  # remarks for a person: stderr when piped


def test_on_a_terminal_a_table_with_its_header() -> None:
    out, buffer = _output(terminal=True)
    out.table(("id", "text"), [("a-1", "[red]not markup[/]")])
    assert "id" in buffer.getvalue()
    assert "[red]not markup[/]" in buffer.getvalue()
    assert "│" in buffer.getvalue()


def test_json_documents_and_lines_use_the_contracts_rules() -> None:
    out, buffer = _output(as_json=True)
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    out.document({"at": moment, "reason": DeadLetterReason.OVERSIZE})
    out.json_line({"n": 1})
    first, second = buffer.getvalue().splitlines()
    assert json.loads(first) == {"at": "2026-01-02T03:04:05Z", "reason": "oversize"}
    assert json.loads(second) == {"n": 1}


def _letter(**update: object) -> DeadLetter:
    base = DeadLetter(
        id="dead-letter-1",
        session_id="s-1",
        origin_topic="p.commands",
        origin_partition=0,
        origin_offset=1,
        consumer_group="g",
        source_service="session-commands",
        reason=DeadLetterReason.INVALID_FIELD,
        error_class="DecodeError",
        error_message="bad",
        occurred_at=datetime(2026, 1, 2, tzinfo=UTC),
    )
    return base.model_copy(update=update)


def test_filters_combine_with_and_and_values_with_or() -> None:
    letter = _letter()
    assert DeadLetterFilter().selects_all
    assert DeadLetterFilter().matches(letter)
    assert DeadLetterFilter(
        origin_topics=frozenset({"p.commands", "p.turns"}),
        reasons=frozenset({DeadLetterReason.INVALID_FIELD, DeadLetterReason.OVERSIZE}),
        services=frozenset({"session-commands"}),
        since=datetime(2026, 1, 2, tzinfo=UTC),  # inclusive
        until=datetime(2026, 1, 3, tzinfo=UTC),
    ).matches(letter)
    assert not DeadLetterFilter(until=datetime(2026, 1, 2, tzinfo=UTC)).matches(letter)
    assert not DeadLetterFilter(services=frozenset({"audit"})).matches(letter)
    assert not DeadLetterFilter(ids=frozenset({"dead-letter-2"})).matches(letter)


def _summary(dry_run: bool, *outcomes: ReplayOutcome) -> ReplaySummary:
    results = [ReplayResult(f"d-{i}", "t", 0, i, o) for i, o in enumerate(outcomes)]
    return ReplaySummary(dry_run=dry_run, results=results)


def test_replay_exit_code_all_none_or_some() -> None:
    done, failed, skipped = ReplayOutcome.REPLAYED, ReplayOutcome.FAILED, ReplayOutcome.SKIPPED
    assert replay_exit_code(_summary(False)) is ExitCode.OK
    assert replay_exit_code(_summary(False, done, done)) is ExitCode.OK
    assert replay_exit_code(_summary(False, failed, skipped)) is ExitCode.FAILURE
    assert replay_exit_code(_summary(False, done, skipped)) is ExitCode.PARTIAL_FAILURE
    dry = _summary(True, ReplayOutcome.WOULD_REPLAY, failed)
    assert replay_exit_code(dry) is ExitCode.PARTIAL_FAILURE
    assert dry.counts() == {"would_replay": 1, "skipped": 0, "failed": 1}
