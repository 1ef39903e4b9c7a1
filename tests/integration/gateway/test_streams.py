"""Live streams on the real broker, below HTTP: a slow client is dropped with a resumable id
while another stream of the same session gets everything; the resume replays exactly the
rest; a resume past retention (records deleted) is `stream_expired`; closing frees the sink."""

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from contracts.agents import AgentType
from contracts.base import Message
from contracts.codec import encode
from contracts.llm import LLMTokenDelta
from contracts.session_events import (
    CommandRejected,
    RejectionReason,
    SessionErased,
    UserMessageAccepted,
)
from contracts.topics import TopicCatalogue, TopicName
from services.admin.topics import delete_topics, ensure_topics
from services.gateway.event_feed import SessionEventFeed
from services.gateway.problems import ApiProblem, ProblemCode
from services.gateway.stream_cursor import Cursor, StreamTopic
from services.gateway.stream_replay import StreamReplay
from services.gateway.streams import RETRY_MAX_MS, RETRY_MIN_MS, OpenStream, SessionStreams

pytestmark = pytest.mark.integration

TENANT = "acme"


@pytest.fixture
async def catalogue(
    kafka_bootstrap_servers: str, unique_suffix: str
) -> AsyncIterator[TopicCatalogue]:
    catalogue = TopicCatalogue(prefix=f"streams-{unique_suffix}.")
    await ensure_topics(kafka_bootstrap_servers, catalogue.specs())
    yield catalogue
    await delete_topics(kafka_bootstrap_servers, [spec.name for spec in catalogue.specs()])


@asynccontextmanager
async def session_streams(
    bootstrap: str, catalogue: TopicCatalogue, buffer: int, max_replay_records: int = 100_000
) -> AsyncIterator[SessionStreams]:
    feed = SessionEventFeed(
        bootstrap,
        catalogue.name(TopicName.SESSION_EVENTS),
        stream_topic=catalogue.name(TopicName.LLM_STREAM),
    )
    await feed.start()
    try:
        await asyncio.wait_for(feed.positioned(), 30)
        replay = StreamReplay(
            bootstrap, {t: catalogue.name(TopicName(t.value)) for t in StreamTopic}
        )
        yield SessionStreams(
            feed,
            replay,
            buffer=buffer,
            heartbeat_s=0.5,
            retry_after_s=1,
            max_replay_records=max_replay_records,
        )
    finally:
        await feed.stop()


def delta(session_id: str, seq: int) -> LLMTokenDelta:
    return LLMTokenDelta(
        id=f"d-{session_id}-{seq}",
        session_id=session_id,
        tenant_id=TENANT,
        invocation_id=f"inv-{session_id}",
        turn_id=f"turn-{session_id}",
        agent=AgentType.ORCHESTRATOR,
        seq=seq,
        delta=f"<{seq}>",
    )


async def publish(bootstrap: str, catalogue: TopicCatalogue, deltas: list[LLMTokenDelta]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for item in deltas:
            record = encode(item, source="test")
            await producer.send_and_wait(
                catalogue.name(TopicName.LLM_STREAM),
                record.value,
                record.key,
                headers=record.headers,
            )
    finally:
        await producer.stop()


async def publish_messages(
    bootstrap: str, catalogue: TopicCatalogue, messages: list[Message]
) -> None:
    """Each message to its topic (`llm-stream` for deltas, else `session-events`), in order.

    The stream merges the two topics by record time, so each record gets its own millisecond:
    two sent within one would tie, and the merge could put them either way round."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    first_ms = time.time_ns() // 1_000_000
    try:
        for index, item in enumerate(messages):
            topic = (
                TopicName.LLM_STREAM
                if isinstance(item, LLMTokenDelta)
                else TopicName.SESSION_EVENTS
            )
            record = encode(item, source="test")
            await producer.send_and_wait(
                catalogue.name(topic),
                record.value,
                record.key,
                headers=record.headers,
                timestamp_ms=first_ms + index,
            )
    finally:
        await producer.stop()


async def frames(
    opened: OpenStream, tokens: int, *, events: int | None = None
) -> list[tuple[str, str, dict[str, object]]]:
    """(event, id, data) until `tokens` token events (or `events` events), or the stream ends."""
    seen: list[tuple[str, str, dict[str, object]]] = []
    stream = opened.frames()
    try:
        async with asyncio.timeout(30):
            async for frame in stream:
                fields = dict(
                    line.split(": ", 1) for line in frame.decode().splitlines() if ": " in line
                )
                if "event" in fields:
                    seen.append((fields["event"], fields["id"], json.loads(fields["data"])))
                if sum(1 for name, _, _ in seen if name == "token") == tokens:
                    break
                if events is not None and len(seen) == events:
                    break
    finally:
        await stream.aclose()
    return seen


async def test_a_slow_client_is_dropped_resumably_and_stalls_nobody(
    kafka_bootstrap_servers: str, catalogue: TopicCatalogue
) -> None:
    async with session_streams(kafka_bootstrap_servers, catalogue, buffer=5) as streams:
        slow = await streams.open(TENANT, "s-1", None)
        fast = await streams.open(TENANT, "s-1", None)
        assert streams.feed.stream_count == 2
        fast_reading = asyncio.create_task(frames(fast, 20))
        await publish(kafka_bootstrap_servers, catalogue, [delta("s-1", i) for i in range(20)])

        fast_seen = await fast_reading
        assert [d["seq"] for name, _, d in fast_seen if name == "token"] == list(range(20))

        slow_seen = await frames(slow, 20)  # starts reading only now: its buffer overflowed
        names = [name for name, _, _ in slow_seen]
        assert names == ["stream_started", *["token"] * 5, "stream_dropped"]
        assert slow_seen[-1][2] == {
            "type": "stream_dropped",
            "session_id": "s-1",
            "reason": "slow_client",
        }

        resumed = await streams.open(TENANT, "s-1", slow_seen[-1][1])
        rest = await frames(resumed, 15)
        assert [d["seq"] for name, _, d in rest if name == "token"] == list(range(5, 20))
        assert streams.feed.stream_count == 0  # every closed stream let go of its sink


async def test_resume_past_retention_is_stream_expired(
    kafka_bootstrap_servers: str, catalogue: TopicCatalogue
) -> None:
    async with session_streams(kafka_bootstrap_servers, catalogue, buffer=100) as streams:
        opened = await streams.open(TENANT, "s-2", None)
        old = opened.cursor
        opened.close()
        await publish(kafka_bootstrap_servers, catalogue, [delta("s-2", i) for i in range(3)])
        _, end = await streams.feed.bounds(old.partition)
        # Decided before retention passes the cursor, replayed after: it ends, never skips.
        racing = await streams.open(TENANT, "s-2", str(old))

        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers)
        await admin.start()
        try:  # what retention does, now: the log starts past the client's position
            tp = TopicPartition(catalogue.name(TopicName.LLM_STREAM), old.partition)
            await admin.delete_records({tp: RecordsToDelete(end.llm_stream)})
        finally:
            await admin.close()

        assert [name for name, _, _ in await frames(racing, 3)] == ["stream_started"]

        with pytest.raises(ApiProblem) as expired:
            await streams.open(TENANT, "s-2", str(old))
        assert expired.value.code is ProblemCode.STREAM_EXPIRED
        elsewhere = Cursor((old.partition + 1) % 12, 0, 0)
        with pytest.raises(ApiProblem) as invalid:
            await streams.open(TENANT, "s-2", str(elsewhere))
        assert invalid.value.code is ProblemCode.INVALID_STREAM_ID
        assert streams.feed.stream_count == 0


async def test_a_resume_with_a_gap_beyond_the_bound_is_stream_expired(
    kafka_bootstrap_servers: str, catalogue: TopicCatalogue
) -> None:
    """A replay reads every record of the gap, every session's: a gap larger than the bound
    (an id from long ago, `v1.<p>.0.0`) is answered like one past retention; within it, the
    resume replays as always."""
    async with session_streams(
        kafka_bootstrap_servers, catalogue, buffer=100, max_replay_records=4
    ) as streams:
        opened = await streams.open(TENANT, "s-5", None)
        old = opened.cursor
        opened.close()
        await publish(kafka_bootstrap_servers, catalogue, [delta("s-5", i) for i in range(3)])
        near = await streams.open(TENANT, "s-5", str(old))  # a gap of 3
        assert [name for name, _, _ in await frames(near, 3)] == [
            "stream_started",
            "token",
            "token",
            "token",
        ]
        await publish(kafka_bootstrap_servers, catalogue, [delta("s-5", i) for i in range(3, 5)])
        with pytest.raises(ApiProblem) as expired:  # a gap of 5
            await streams.open(TENANT, "s-5", str(old))
        assert expired.value.code is ProblemCode.STREAM_EXPIRED
        assert "more than a resume replays (4)" in (expired.value.detail or "")
        near.close()
        assert streams.feed.stream_count == 0


async def test_a_silent_stream_sends_heartbeat_comments(
    kafka_bootstrap_servers: str, catalogue: TopicCatalogue
) -> None:
    async with session_streams(kafka_bootstrap_servers, catalogue, buffer=10) as streams:
        opened = await streams.open(TENANT, "s-3", None)
        stream = opened.frames()
        try:
            async with asyncio.timeout(10):
                first = [await anext(stream) for _ in range(3)]
        finally:
            await stream.aclose()
        retry = re.fullmatch(rb"retry: (\d+)\n\n", first[0])
        assert retry is not None
        assert RETRY_MIN_MS <= int(retry.group(1)) <= RETRY_MAX_MS
        assert first[1].startswith(b"id: v1.")
        assert first[2] == b": keep-alive\n\n"  # after heartbeat_s (0.5 s) of silence
        assert streams.feed.stream_count == 0


async def test_records_a_client_is_not_shown_do_not_hold_the_heartbeat_off(
    kafka_bootstrap_servers: str, catalogue: TopicCatalogue
) -> None:
    """Another tenant's commands aimed at the session id are refused on its partition, and
    hidden from its streams; while they kept coming (one a second over HTTP, within the rate
    limit), the stream sent nothing at all, not even `: keep-alive`, and proxies closed it."""
    async with session_streams(kafka_bootstrap_servers, catalogue, buffer=100) as streams:
        opened = await streams.open(TENANT, "s-6", None)
        stream = opened.frames()
        hidden_sent = 0
        first_sent = asyncio.Event()

        async def refused_commands_of_another_tenant() -> None:
            nonlocal hidden_sent
            producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers, acks="all")
            await producer.start()
            try:
                for index in range(30):  # one every ~0.1 s, well inside heartbeat_s (0.5 s)
                    refused = CommandRejected(
                        id=f"e-hidden-{index}",
                        session_id="s-6",
                        tenant_id="another-tenant",
                        rejected_command_id=f"c-{index}",
                        rejected_command_type="session.submit_user_message.v1",
                        reason=RejectionReason.UNKNOWN_SESSION,
                        detail="no such session",
                    )
                    record = encode(refused, source="test")
                    await producer.send_and_wait(
                        catalogue.name(TopicName.SESSION_EVENTS),
                        record.value,
                        record.key,
                        headers=record.headers,
                    )
                    hidden_sent += 1
                    first_sent.set()
                    await asyncio.sleep(0.1)
            finally:
                await producer.stop()

        try:
            async with asyncio.timeout(10):
                assert (await anext(stream)).startswith(b"retry: ")
                assert (await anext(stream)).startswith(b"id: v1.")
                publishing = asyncio.create_task(refused_commands_of_another_tenant())
                await first_sent.wait()  # they come from before the live part's first wait
                following = await anext(stream)
                sent_before_it = hidden_sent
                await publishing
        finally:
            await stream.aclose()
        assert following == b": keep-alive\n\n"
        assert sent_before_it < 30, "the keep-alive waited for the hidden records to stop"
        assert streams.feed.stream_count == 0


async def test_a_resume_never_hands_back_what_an_erasure_removed(
    kafka_bootstrap_servers: str, catalogue: TopicCatalogue
) -> None:
    """Kafka keeps an erased session's records until retention; a resume from before the
    erasure (here: from the partition's first offsets) starts at `session_erased`, sends no
    delta after it (the erased turn's cut-off call), and its ids do not lead back before it."""
    async with session_streams(kafka_bootstrap_servers, catalogue, buffer=100) as streams:
        opened = await streams.open(TENANT, "s-4", None)
        before = opened.cursor
        opened.close()
        accepted = UserMessageAccepted(
            id="e-1",
            session_id="s-4",
            tenant_id=TENANT,
            message_id="m-1",
            seq=1,
            content="my secret",
            queued=False,
        )
        erased = SessionErased(id="e-2", session_id="s-4", tenant_id=TENANT, reason="asked")
        later = UserMessageAccepted(
            id="e-3",
            session_id="s-4",
            tenant_id=TENANT,
            message_id="m-2",
            seq=3,
            content="after",
            queued=False,
        )
        await publish_messages(
            kafka_bootstrap_servers,
            catalogue,
            [accepted, delta("s-4", 0), delta("s-4", 1), erased, delta("s-4", 2), later],
        )
        for start in (before, Cursor(before.partition, 0, 0)):
            resumed = await streams.open(TENANT, "s-4", str(start))
            seen = await frames(resumed, 1, events=3)
            names = [name for name, _, _ in seen]
            assert names == ["stream_started", "session_erased", "message_accepted"], names
            assert "my secret" not in json.dumps([data for _, _, data in seen])
            again = await streams.open(TENANT, "s-4", seen[-1][1])  # nothing is left to send
            assert [name for name, _, _ in await frames(again, 1, events=1)] == ["stream_started"]
            assert again.cursor == await streams.feed.end(before.partition)
        assert streams.feed.stream_count == 0
