"""The raw-Kafka baseline: one process per role, the pipeline's hops with no work in between.

    python -m benchmarks.perf.relay --role session-commands --prefix P --group G \
        --profile profile.json [--mongodb-uri URI --database DB]

Each role reads the topics its service reads and, per record type, writes what its service
writes: same topics, keys (the session id), CloudEvent headers and record sizes (the profile
measured on the pipeline's own records, see profile.py). acks=all, idempotent producer; each
fetched batch is sent and awaited as a whole, offsets committed every second past acked records.
With `--mongodb-uri` (session-commands only) every input also awaits one MongoDB upsert first:
one per session at a time, sessions concurrently.
"""

import argparse
import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from benchmarks.perf.profile import AUDIT_TYPE, DELTA_TYPE, RecordProfile
from contracts.topics import TopicName

# Per role: the topics read, and per input type what goes out (topic, type) in order.
Outputs = tuple[tuple[TopicName, str], ...]
ROLES: Final[dict[str, tuple[tuple[TopicName, ...], dict[str, Outputs]]]] = {
    "session-commands": (
        (TopicName.COMMANDS, TopicName.TURNS),
        {
            "session.create.v1": ((TopicName.SESSION_EVENTS, "session.created.v1"),),
            "session.submit_user_message.v1": (
                (TopicName.SESSION_EVENTS, "session.user_message_accepted.v1"),
                (TopicName.SESSION_EVENTS, "turn.started.v1"),
            ),
            "turn.complete.v1": (
                (TopicName.SESSION_EVENTS, "session.assistant_message_appended.v1"),
                (TopicName.SESSION_EVENTS, "turn.completed.v1"),
            ),
        },
    ),
    "agent-orchestration": (
        (TopicName.SESSION_EVENTS, TopicName.LLM_RESULTS),
        {
            "turn.started.v1": ((TopicName.LLM_REQUESTS, "llm.requested.v1"),),
            "llm.completed.v1": ((TopicName.TURNS, "turn.complete.v1"),),
        },
    ),
    "llm-invocation": (
        (TopicName.LLM_REQUESTS,),
        {"llm.requested.v1": ((TopicName.LLM_RESULTS, "llm.completed.v1"),)},
    ),
    "audit": (
        (
            TopicName.COMMANDS,
            TopicName.TURNS,
            TopicName.SESSION_EVENTS,
            TopicName.LLM_REQUESTS,
            TopicName.LLM_RESULTS,
            TopicName.DEAD_LETTERS,
        ),
        {},  # every input: one audit record
    ),
}


class Relay:
    def __init__(
        self,
        role: str,
        prefix: str,
        profile: RecordProfile,
        sessions: AsyncCollection[dict[str, Any]] | None,
    ) -> None:
        self._inputs, self._routes = ROLES[role]
        self._role = role
        self._prefix = prefix
        self._profile = profile
        self._sessions = sessions
        self._source = f"relay-{role}"

    def topic(self, name: TopicName) -> str:
        return f"{self._prefix}{name.value}"

    @property
    def inputs(self) -> list[str]:
        return [self.topic(name) for name in self._inputs]

    def outputs_for(self, ce_type: str) -> list[tuple[str, str]]:
        if self._role == "audit":
            return [(self.topic(TopicName.AUDIT), AUDIT_TYPE)]
        if self._role == "llm-invocation" and ce_type == "llm.requested.v1":
            deltas = [(self.topic(TopicName.LLM_STREAM), DELTA_TYPE)] * self._profile.deltas
            return [*deltas, *((self.topic(t), kind) for t, kind in self._routes[ce_type])]
        return [(self.topic(t), kind) for t, kind in self._routes.get(ce_type, ())]

    def record(self, ce_type: str, session_id: str) -> tuple[bytes, list[tuple[str, bytes]]]:
        size = self._profile.value_bytes.get(ce_type, 300)
        if ce_type == AUDIT_TYPE:
            return b"x" * size, [("content-type", b"application/cloudevents+json")]
        headers = [
            ("ce_specversion", b"1.0"),
            ("ce_id", str(uuid.uuid4()).encode()),
            ("ce_type", ce_type.encode()),
            ("ce_source", self._source.encode()),
            ("ce_subject", session_id.encode()),
            ("ce_time", datetime.now(UTC).isoformat().encode()),
            ("content-type", b"application/json"),
            ("ce_correlationid", str(uuid.uuid4()).encode()),
            ("ce_causationid", str(uuid.uuid4()).encode()),
            ("traceparent", f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01".encode()),
        ]
        return b"x" * size, headers

    async def write(self, records: Sequence[ConsumerRecord]) -> None:
        """One awaited upsert per input; one session at a time, sessions concurrently."""
        if self._sessions is None:
            return
        by_key: dict[bytes, list[ConsumerRecord]] = defaultdict(list)
        for record in records:
            by_key[record.key or b""].append(record)
        sessions = self._sessions

        async def one_session(key: bytes, mine: list[ConsumerRecord]) -> None:
            for record in mine:
                await sessions.update_one(
                    {"_id": key.decode()},
                    {"$set": {"last_offset": record.offset}, "$inc": {"version": 1}},
                    upsert=True,
                )

        await asyncio.gather(*(one_session(k, v) for k, v in by_key.items()))


def _ce_type(record: ConsumerRecord) -> str:
    for name, value in record.headers:
        if name == "ce_type":
            return bytes(value).decode()
    return ""


async def run(args: argparse.Namespace) -> None:
    profile = RecordProfile.load(Path(args.profile))
    mongo: AsyncMongoClient[dict[str, Any]] | None = None
    sessions = None
    if args.mongodb_uri:
        mongo = AsyncMongoClient(args.mongodb_uri)
        sessions = mongo[args.database]["relay_sessions"]
    relay = Relay(args.role, args.prefix, profile, sessions)
    consumer = AIOKafkaConsumer(
        *relay.inputs,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=5,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap, acks="all", enable_idempotence=True, linger_ms=1
    )
    await producer.start()
    await consumer.start()
    done: dict[TopicPartition, int] = {}
    last_commit = time.monotonic()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=1_000)
            records = [r for rs in batches.values() for r in rs]
            if records:
                await relay.write(records)
                futures = []
                for record in records:
                    session_id = (record.key or b"").decode()
                    for topic, kind in relay.outputs_for(_ce_type(record)):
                        value, headers = relay.record(kind, session_id)
                        futures.append(
                            await producer.send(topic, value, key=record.key, headers=headers)
                        )
                await asyncio.gather(*futures)
                for tp, rs in batches.items():
                    done[tp] = rs[-1].offset + 1
            if done and time.monotonic() - last_commit >= 1.0:
                await consumer.commit(dict(done))
                done.clear()
                last_commit = time.monotonic()
    finally:
        await consumer.stop()
        await producer.stop()
        if mongo is not None:
            await mongo.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--role", choices=sorted(ROLES), required=True)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--mongodb-uri", default=None)
    parser.add_argument("--database", default="bench")
    args = parser.parse_args()
    if args.mongodb_uri and args.role != "session-commands":
        args.mongodb_uri = None
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
