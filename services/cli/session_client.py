"""Talk to one session the way an upstream system and a client app would: through Kafka only.

Commands go to `commands`; the session's facts and token deltas are read from the one
partition of `session-events` and `llm-stream` that holds the session (same key, same
partition count → same partition number), starting at the end, so the client sees only what
its own commands cause.
"""

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError

from contracts.base import Message, derive_id
from contracts.codec import DecodeError, EncodedRecord, decode, encode
from contracts.commands import Command
from contracts.llm import LLMTokenDelta
from contracts.session_events import (
    CommandRejected,
    SessionEvent,
    TurnCompleted,
    TurnFailed,
    TurnStarted,
    TurnStopped,
)
from contracts.topics import TopicName
from services.cli.errors import BrokerUnreachable
from services.cli.kafka_clients import (
    consumer,
    existing_partitions,
    not_allowed_to_write,
    producer,
)
from services.cli.settings import CliSettings
from services.runtime.command_signing import sign
from services.runtime.partitioning import partition_for

Update = SessionEvent | LLMTokenDelta


def new_id(kind: str) -> str:
    return f"{kind}-{uuid.uuid4()}"


def new_traceparent() -> str:
    """A W3C traceparent that starts a new trace: one user turn is one trace downstream."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def command_record(settings: CliSettings, command: Command) -> EncodedRecord:
    """The command as the CLI publishes it: its `source`, signed when it has a key."""
    record = encode(
        command,
        source=settings.cli_source,
        correlation_id=command.id,
        traceparent=new_traceparent(),
    )
    sign(record, settings.cli_signing_key())
    return record


@dataclass
class TurnOutcome:
    """Everything one submitted message caused, in arrival order."""

    command_id: str
    updates: list[Update] = field(default_factory=list)
    rejected: CommandRejected | None = None
    completed: TurnCompleted | None = None
    failed: TurnFailed | None = None
    stopped: TurnStopped | None = None
    """The turn was cancelled (`/stop`, or a message under the interrupt / replace policy)."""

    @property
    def finished(self) -> bool:
        ended = (self.completed, self.failed, self.stopped)
        return self.rejected is not None or any(end is not None for end in ended)


class SessionClient:
    def __init__(self, settings: CliSettings, session_id: str) -> None:
        self.settings = settings
        self.session_id = session_id
        self._stack = AsyncExitStack()
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._buffer: list[Update] = []

    async def __aenter__(self) -> "SessionClient":
        self._producer = await self._stack.enter_async_context(producer(self.settings))
        self._consumer = client = await self._stack.enter_async_context(consumer(self.settings))
        catalogue = self.settings.topics
        events = catalogue.name(TopicName.SESSION_EVENTS)
        stream = catalogue.name(TopicName.LLM_STREAM)
        await existing_partitions(self.settings, catalogue.name(TopicName.COMMANDS))
        await existing_partitions(self.settings, stream)
        number = partition_for(
            self.session_id, len(await existing_partitions(self.settings, events))
        )
        assigned = [TopicPartition(events, number), TopicPartition(stream, number)]
        client.assign(assigned)
        await client.seek_to_end(*assigned)
        for tp in assigned:  # resolve the lazy seek now, before any command is published
            await client.position(tp)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()

    async def publish(self, command: Command) -> None:
        assert self._producer is not None, "use `async with SessionClient(...)`"
        record = command_record(self.settings, command)
        topic = self.settings.topics.name(TopicName.COMMANDS)
        try:
            await self._producer.send_and_wait(
                topic, record.value, key=record.key, headers=record.headers
            )
        except TopicAuthorizationFailedError:
            # Not an unreachable broker: this principal may not publish commands.
            raise not_allowed_to_write(self.settings, topic) from None
        except (KafkaError, OSError) as exc:
            # The broker went away mid-conversation: one line (the chat says it and goes on).
            raise BrokerUnreachable(self.settings.kafka_bootstrap_servers, exc) from None

    async def updates(self, timeout_s: float) -> AsyncIterator[Update]:
        """This session's facts and deltas as they arrive; ends after `timeout_s` of silence."""
        assert self._consumer is not None
        while True:
            while self._buffer:
                yield self._buffer.pop(0)
            batches = await self._consumer.getmany(timeout_ms=int(timeout_s * 1000))
            if not batches:
                return
            for records in batches.values():
                for record in records:
                    message = _decode(record.value, record.headers)
                    if message is not None and message.session_id == self.session_id:
                        self._buffer.append(message)  # type: ignore[arg-type]

    async def submit(
        self,
        command: Command,
        *,
        timeout_s: float | None = None,
        on_update: Callable[[Update], None] | None = None,
        user_is_asked: Callable[[], bool] | None = None,
    ) -> TurnOutcome:
        """Publish a command and collect what it causes until its turn ends (or it is refused).

        Commands that start no turn (create, switch, close…) end at their first fact. The reply
        timeout is of silence: each update of the session restarts it (a long answer that
        streams, a turn of many tool steps), and it does not run while `user_is_asked` (the
        chat waits for the user's y/n; the turn's own tool deadline bounds that).
        """
        await self.publish(command)
        return await self._outcome(
            command, None, timeout_s=timeout_s, on_update=on_update, user_is_asked=user_is_asked
        )

    async def follow(
        self,
        turn_id: str,
        *,
        on_update: Callable[[Update], None] | None = None,
        user_is_asked: Callable[[], bool] | None = None,
    ) -> TurnOutcome:
        """Collect what a turn already running causes until it ends, publishing nothing: the
        chat resumed on a turn that waits for it (`submit`'s reply timeout applies)."""
        return await self._outcome(None, turn_id, on_update=on_update, user_is_asked=user_is_asked)

    async def _outcome(
        self,
        command: Command | None,
        turn_id: str | None,
        *,
        timeout_s: float | None = None,
        on_update: Callable[[Update], None] | None = None,
        user_is_asked: Callable[[], bool] | None = None,
    ) -> TurnOutcome:
        """The updates of `command` (published) or of the running turn `turn_id`, until the
        turn ends or the command is refused (a command that starts no turn: its first fact)."""
        outcome = TurnOutcome(command_id=command.id if command is not None else "")
        waited = command.id if command is not None else turn_id
        wait_s = timeout_s or self.settings.reply_timeout_s
        clock = asyncio.get_running_loop().time
        deadline = clock() + wait_s
        starts_turn = command is None or command.type == "session.submit_user_message.v1"  # type: ignore[attr-defined]
        while not outcome.finished:
            if user_is_asked is not None and user_is_asked():
                deadline = clock() + wait_s
            remaining = deadline - clock()
            if remaining <= 0:
                raise TimeoutError(
                    f"no answer to {waited}: nothing from the session within {wait_s:g} s "
                    "(AGENT_RUNTIME_REPLY_TIMEOUT_S)"
                )
            async for update in self.updates(timeout_s=min(remaining, 1.0)):
                deadline = clock() + wait_s
                outcome.updates.append(update)
                if on_update is not None:
                    on_update(update)
                if (
                    command is not None
                    and isinstance(update, CommandRejected)
                    and update.rejected_command_id == command.id
                ):
                    outcome.rejected = update
                elif isinstance(update, TurnStarted) and turn_id is None:
                    message_id = getattr(command, "message_id", None)
                    if update.user_message_id == message_id:
                        turn_id = update.turn_id
                elif isinstance(update, TurnCompleted) and update.turn_id == turn_id:
                    outcome.completed = update
                elif isinstance(update, TurnFailed) and update.turn_id == turn_id:
                    outcome.failed = update
                elif isinstance(update, TurnStopped) and update.turn_id == turn_id:
                    outcome.stopped = update
                elif (
                    command is not None
                    and not starts_turn
                    and update.id == derive_id("event", command.id, 0)
                ):
                    return outcome
                if outcome.finished:
                    break
        return outcome


def _decode(
    value: bytes | None, headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]
) -> Message | None:
    try:
        return decode(value, list(headers)).message
    except DecodeError:
        return None  # not ours to dead-letter: the services do that
