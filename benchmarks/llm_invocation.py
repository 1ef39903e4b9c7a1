"""llm-invocation throughput with a provider that takes 1 s per call, for 1, 100 and 500 sessions.

    .venv/bin/python benchmarks/llm_invocation.py [--latency-s 1] [--sessions 1 100 500]
        [--per-session 3] [--mode invoker service both] [--bootstrap 127.0.0.1:9092]
        [--mongodb-uri mongodb://127.0.0.1:27017/?directConnection=true]

The local OpenAI-protocol server (tests/support/openai_server.py) runs in a process of its own
and answers every call after `--latency-s` with a short streamed answer. Each session makes
`--per-session` invocations one after another (a session never has two in flight), so the
ideal is `sessions / latency` invocations per second.

- invoker: the provider stack alone (rate limiter, circuit breaker, retries, httpx streaming),
  in this process; measures what the HTTP side sustains.
- service: the whole service as deployed — the runtime's key-ordered consumer on the real
  broker, kept results in the Mongo-compatible server, deltas and results published with
  acks=all. LLMRequested records go in; the clock stops when the last LLMCompleted is read.
"""

import argparse
import asyncio
import contextlib
import logging
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient

from contracts.agents import AgentType, MessageRole
from contracts.base import derive_id
from contracts.codec import decode, encode
from contracts.llm import ChatMessage, LLMCompleted, LLMRequested
from contracts.topics import TopicCatalogue, TopicName
from services.admin.topics import delete_topics, ensure_topics
from services.llm_invocation.app import build
from services.llm_invocation.invoker import Invoker
from services.llm_invocation.providers.openai_provider import (
    OpenAICompatibleProvider,
    OpenAIProviderConfig,
)
from services.llm_invocation.settings import LLMInvocationSettings

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def provider_server(latency_s: float) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.openai_server", "--latency-s", str(latency_s)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("listening "):
            raise RuntimeError(f"the local OpenAI server did not start: {line!r}")
        yield line.removeprefix("listening ")
    finally:
        process.terminate()
        process.wait(10)


def request(session: int, step: int, run: str) -> LLMRequested:
    turn_id = f"turn-{run}-{session}"
    invocation_id = derive_id("invocation", turn_id, step)
    return LLMRequested(
        id=derive_id("event", "bench", invocation_id),
        session_id=f"session-{run}-{session}",
        tenant_id="bench",
        invocation_id=invocation_id,
        turn_id=turn_id,
        step=step,
        agent=AgentType.ASK,
        messages=[
            ChatMessage(role=MessageRole.USER, content=f"Question {step} of session {session}")
        ],
    )


async def bench_invoker(base_url: str, sessions: int, per_session: int) -> float:
    provider = OpenAICompatibleProvider(
        OpenAIProviderConfig(base_url=base_url, model="bench", max_connections=1024)
    )
    invoker = Invoker(provider, deadline_s=60)
    run = uuid.uuid4().hex[:8]

    async def ignore(text: str) -> None:
        return None

    async def session(index: int) -> None:
        for step in range(per_session):
            outcome = await invoker.invoke(request(index, step, run), ignore)
            if not hasattr(outcome, "content"):
                raise RuntimeError(f"invocation failed: {outcome}")

    started = time.perf_counter()
    await asyncio.gather(*(session(i) for i in range(sessions)))
    elapsed = time.perf_counter() - started
    await provider.aclose()
    return sessions * per_session / elapsed


@contextlib.asynccontextmanager
async def topics(bootstrap: str, prefix: str) -> AsyncIterator[TopicCatalogue]:
    catalogue = TopicCatalogue(prefix=prefix, partitions=12)
    specs = [catalogue.spec(t) for t in (*TopicName,)]
    await ensure_topics(bootstrap, specs)
    try:
        yield catalogue
    finally:
        await delete_topics(bootstrap, [s.name for s in specs])


async def bench_service(
    base_url: str, sessions: int, per_session: int, bootstrap: str, mongodb_uri: str
) -> float:
    run = uuid.uuid4().hex[:8]
    database = f"bench_llm_{run}"
    async with topics(bootstrap, f"bench-{run}.") as catalogue:
        settings = LLMInvocationSettings(
            kafka_bootstrap_servers=bootstrap,
            mongodb_uri=mongodb_uri,
            mongodb_database=database,
            topic_prefix=f"bench-{run}.",
            llm_consumer_group=f"bench-llm-{run}",
            llm_provider="openai",
            llm_base_url=base_url,
            llm_model="bench",
            llm_max_connections=1024,
            max_in_flight=1024,
            health_port=0,
            health_host="127.0.0.1",
            log_level="WARNING",
        )
        service = build(settings, configure_logs=False)
        requests = [request(s, step, run) for step in range(per_session) for s in range(sessions)]
        results = AIOKafkaConsumer(
            catalogue.name(TopicName.LLM_RESULTS),
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
        )
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await results.start()
        await producer.start()
        await service.runtime.app.start()
        try:
            # The clock starts once the group has assigned the partitions (joins excluded).
            while not all(  # noqa: ASYNC110 - the runtime offers no event to wait on
                c.engine.has_assignment for c in service.runtime.consumers
            ):
                await asyncio.sleep(0.05)
            started = time.perf_counter()
            for message in requests:
                record = encode(message, source="bench")
                await producer.send(
                    catalogue.name(TopicName.LLM_REQUESTS),
                    record.value,
                    key=record.key,
                    headers=record.headers,
                )
            await producer.flush()
            completed = 0
            while completed < len(requests):
                if time.perf_counter() - started > 600:
                    raise RuntimeError(f"only {completed} of {len(requests)} results in 600 s")
                batches = await results.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        result = decode(record.value, record.headers or ()).message
                        if not isinstance(result, LLMCompleted):
                            raise RuntimeError(f"invocation failed: {result}")
                        completed += 1
            elapsed = time.perf_counter() - started
        finally:
            await service.runtime.app.stop()
            await producer.stop()
            await results.stop()
            client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
            await client.drop_database(database)
            await client.close()
    return len(requests) / elapsed


async def main() -> None:
    # Figures only: aiokafka's warnings about fresh topics' leaders would drown them.
    logging.basicConfig(level=logging.CRITICAL)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency-s", type=float, default=1.0)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 100, 500])
    parser.add_argument("--per-session", type=int, default=3)
    parser.add_argument("--mode", choices=["invoker", "service", "both"], default="both")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--mongodb-uri", default="mongodb://127.0.0.1:27017/?directConnection=true")
    args = parser.parse_args()

    modes = ["invoker", "service"] if args.mode == "both" else [args.mode]
    print(
        f"provider latency {args.latency_s:g} s per call, {args.per_session} invocations per "
        "session (one at a time per session)"
    )
    print(f"{'mode':<8} {'sessions':>8} {'invocations/s':>14} {'ideal':>8} {'efficiency':>10}")
    with provider_server(args.latency_s) as base_url:
        for mode in modes:
            for sessions in args.sessions:
                if mode == "invoker":
                    rate = await bench_invoker(base_url, sessions, args.per_session)
                else:
                    rate = await bench_service(
                        base_url, sessions, args.per_session, args.bootstrap, args.mongodb_uri
                    )
                ideal = sessions / args.latency_s
                print(
                    f"{mode:<8} {sessions:>8} {rate:>14.1f} {ideal:>8.0f} {rate / ideal:>10.0%}",
                    flush=True,
                )


if __name__ == "__main__":
    asyncio.run(main())
