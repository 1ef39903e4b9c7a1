"""`--since` / `--until`: ISO 8601 times; one without a zone is UTC."""

from datetime import UTC, datetime

from services.cli.errors import UsageProblem


def parse_time(value: datetime | str | None, option: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise UsageProblem(f"{option}: {value!r} is not an ISO 8601 time") from None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment
