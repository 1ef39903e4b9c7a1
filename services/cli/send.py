"""`agent-runtime send`: publish any command, validated with the contracts first."""

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka.errors import TopicAuthorizationFailedError
from pydantic import TypeAdapter, ValidationError

from contracts.commands import Command, ExternalCommand
from contracts.topics import TopicName
from services.cli.errors import CliError, UsageProblem
from services.cli.kafka_clients import existing_partitions, not_allowed_to_write, producer
from services.cli.session_client import command_record
from services.cli.settings import CliSettings

_COMMANDS: TypeAdapter[Command] = TypeAdapter(ExternalCommand)


def build_command(body: dict[str, Any], settings: CliSettings) -> Command:
    """Validate a command body; fill `id`, `occurred_at` and `tenant_id` when left out."""
    body = {
        "id": f"cmd-{uuid.uuid4()}",
        "occurred_at": datetime.now(UTC).isoformat(),
        "tenant_id": settings.tenant_id,
        **body,
    }
    try:
        return _COMMANDS.validate_python(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<body>'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise CliError(f"invalid command: {problems}") from None


def read_body(source: str) -> dict[str, Any]:
    try:
        text = Path("/dev/stdin" if source == "-" else source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        # A file argument that cannot be read is a usage error (what click says for its own
        # file arguments), in one line rather than a traceback.
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageProblem(f"--json {source}: cannot read it ({reason})") from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{source}: not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise CliError(f"{source}: a command is a JSON object")
    return body


async def publish_command(settings: CliSettings, command: Command) -> None:
    record = command_record(settings, command)
    topic = settings.topics.name(TopicName.COMMANDS)
    await existing_partitions(settings, topic)
    async with producer(settings) as client:
        try:
            await client.send_and_wait(
                topic,
                record.value,
                key=record.key,
                headers=record.headers,
            )
        except TopicAuthorizationFailedError:
            raise not_allowed_to_write(settings, topic) from None
