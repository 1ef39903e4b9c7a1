"""How `dlq list` and `dlq replay` show dead letters, replay progress and the summary."""

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text

from services.cli.dead_letters import (
    ReplayOutcome,
    ReplayResult,
    ReplaySummary,
    StoredDeadLetter,
    replay,
)
from services.cli.errors import ExitCode
from services.cli.output import Output
from services.cli.settings import CliSettings

_OUTCOME_STYLE = {
    ReplayOutcome.REPLAYED: "green",
    ReplayOutcome.WOULD_REPLAY: "cyan",
    ReplayOutcome.SKIPPED: "yellow",
    ReplayOutcome.FAILED: "bold red",
}


def print_letters(letters: list[StoredDeadLetter], out: Output) -> None:
    """NDJSON with --json: the dead letter's fields plus its `partition`/`offset` on the
    dead-letters topic."""
    if out.as_json:
        for stored in letters:
            out.json_line(
                {"partition": stored.partition, "offset": stored.offset, **_fields(stored)}
            )
        return
    out.table(
        ("id", "origin", "service", "reason", "error", "when"),
        (
            (
                s.letter.id,
                f"{s.letter.origin_topic}[{s.letter.origin_partition}]@{s.letter.origin_offset}",
                s.letter.source_service,
                s.letter.reason.value,
                f"{s.letter.error_class}: {s.letter.error_message[:80]}",
                s.letter.occurred_at.isoformat(timespec="seconds"),
            )
            for s in letters
        ),
        empty="no dead letters match",
    )


def _fields(stored: StoredDeadLetter) -> dict[str, object]:
    return stored.letter.model_dump(mode="json")


async def replay_with_progress(
    settings: CliSettings, letters: list[StoredDeadLetter], *, dry_run: bool, out: Output
) -> ReplaySummary:
    """Replay, with a progress bar on a terminal; then the results and the summary."""
    if not out.for_people or not letters:
        summary = await replay(settings, letters, dry_run=dry_run)
    else:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=out.console,
            transient=True,
        ) as progress:
            task = progress.add_task("checking" if dry_run else "replaying", total=len(letters))

            def advance(_: ReplayResult) -> None:
                progress.advance(task)

            summary = await replay(settings, letters, dry_run=dry_run, on_result=advance)
    _print_summary(summary, out)
    return summary


def _print_summary(summary: ReplaySummary, out: Output) -> None:
    if out.as_json:
        out.document(
            {"dry_run": summary.dry_run, "results": summary.results, "summary": summary.counts()}
        )
        return
    if out.for_people:
        out.table(
            ("id", "origin", "outcome", "detail"),
            (
                (
                    r.id,
                    f"{r.origin_topic}[{r.origin_partition}]@{r.origin_offset}",
                    Text(r.outcome.value, style=_OUTCOME_STYLE[r.outcome]),
                    r.detail,
                )
                for r in summary.results
            ),
            empty="no dead letters match",
        )
    else:
        for r in summary.results:
            out.row(
                (
                    r.outcome.value,
                    r.id,
                    r.origin_topic,
                    r.origin_partition,
                    r.origin_offset,
                    r.detail,
                )
            )
    counts = ", ".join(f"{name.replace('_', ' ')} {n}" for name, n in summary.counts().items())
    out.note(f"dry run: {counts}; nothing was published" if summary.dry_run else counts)


def replay_exit_code(summary: ReplaySummary) -> ExitCode:
    """0: every letter replayed (or, dry, would be); 1: none was; 5: some were, some not."""
    if summary.not_replayed == 0:
        return ExitCode.OK
    return ExitCode.FAILURE if summary.succeeded == 0 else ExitCode.PARTIAL_FAILURE
