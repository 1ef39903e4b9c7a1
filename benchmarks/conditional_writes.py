"""What the two conditional writes of a turn cost the Mongo stand-in as their collections grow,
with the index on exactly their filter's keys against without it, side by side in one run:

- the kept result's keep (services/runtime/kept_results.py): `{_id, kept: false}` with the
  `(_id, kept)` index, against the earlier `{_id, result: {$exists: false}}`;
- the session compare-and-set (services/session_commands/mongo/group_commit.py):
  `{_id, version}` with the `(_id, version)` index, against the same filter without it.

    .venv/bin/python benchmarks/conditional_writes.py [--sizes 1000,5000] [--writes 40]
        [--mongodb-uri 'mongodb://127.0.0.1:27017/?directConnection=true']

mongo-java-server serves a filter from an index only when the filter's keys are exactly the
index's; otherwise it scans the collection. For each size and variant, a database of its own
(dropped after) holding `N` documents, then `--writes` writes through the services' own code,
one at a time; printed: the milliseconds the stand-in held its command lock per write (its
`standInStats` command, deploy/README.md), i.e. its capacity spent, whatever else runs on the
machine. Needs the stand-in, not MongoDB.
"""

import argparse
import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from contracts.base import derive_id
from contracts.llm import LLMCompleted
from services.llm_invocation.result_store import COLLECTION as KEPT_RESULTS
from services.llm_invocation.result_store import KeptResults
from services.session_commands.mongo.group_commit import GroupCommit
from services.session_commands.mongo.repository import MESSAGES, SESSIONS, SessionRepository

Database = AsyncDatabase[dict[str, Any]]
PAD = "x" * 2_000  # about a session document's size in the pipeline benchmark


def _result(index: int) -> LLMCompleted:
    return LLMCompleted(
        id=derive_id("llm-result", str(index)),
        session_id="s-bench",
        tenant_id="t-bench",
        invocation_id=f"inv-{index}",
        turn_id=f"turn-{index}",
        step=0,
        agent="ask",
        provider="offline",
        model="offline",
        finish_reason="stop",
        content="x" * 600,
    )


async def _keeps(
    database: Database, size: int, writes: int, indexed: bool
) -> Callable[[], Awaitable[None]]:
    results = KeptResults(database)
    await results.ensure_indexes()
    collection = database[KEPT_RESULTS]
    await collection.insert_many(
        [
            {"_id": f"inv-{i}", "session_id": "s-bench", "kept": True, "result": {"n": i}}
            for i in range(size)
        ]
    )
    fresh = range(size, size + writes)
    for index in fresh:
        await results.claim(f"inv-{index}", "s-bench", f"bench/{os.getpid()}")

    async def write_all() -> None:
        for index in fresh:
            result = _result(index)
            if indexed:
                await results.keep(result)
            else:  # the earlier condition, as it was written
                await collection.update_one(
                    {"_id": result.invocation_id, "result": {"$exists": False}},
                    {
                        "$set": {"result": result.model_dump(mode="json"), "kept": True},
                        "$unset": {"claim": ""},
                    },
                    upsert=True,
                )

    return write_all


async def _compare_and_sets(
    database: Database, size: int, writes: int, indexed: bool
) -> Callable[[], Awaitable[None]]:
    if indexed:
        await SessionRepository(database).ensure_indexes()
    sessions = database[SESSIONS]
    await sessions.insert_many(
        [{"_id": f"s-{i}", "version": 1, "state": {"pad": PAD}} for i in range(size)]
    )
    commit = GroupCommit(sessions, database[MESSAGES])

    async def write_all() -> None:
        for index in range(writes):
            document = {"_id": f"s-{index}", "version": 2, "state": {"pad": PAD}}
            await commit.compare_and_set(document, [], 1, f"cmd-{index}")

    return write_all


CASES = {
    "kept result keep": (KEPT_RESULTS, _keeps),
    "session compare-and-set": (SESSIONS, _compare_and_sets),
}


async def _update_lock_ms(client: AsyncMongoClient[dict[str, Any]], namespace: str) -> float:
    answer = await client.admin.command("standInStats")
    return float(answer["namespaces"].get(f"{namespace} update", {}).get("busy_ms", 0.0))


async def run(args: argparse.Namespace) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(args.mongodb_uri)
    try:
        print("| write | documents | index on its filter | stand-in lock ms per write |")
        print("|---|---|---|---|")
        for case, (collection, prepare) in CASES.items():
            for size in (int(n) for n in args.sizes.split(",")):
                for indexed in (True, False):
                    name = f"bench_cond_{uuid.uuid4().hex[:8]}"
                    try:
                        write_all = await prepare(client[name], size, args.writes, indexed)
                        before = await _update_lock_ms(client, f"{name}.{collection}")
                        await write_all()
                        after = await _update_lock_ms(client, f"{name}.{collection}")
                    finally:
                        await client.drop_database(name)
                    per_write = (after - before) / args.writes
                    label = "yes" if indexed else "no"
                    print(f"| {case} | {size:,} | {label} | {per_write:.2f} |")
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,5000", help="documents already there")
    parser.add_argument("--writes", type=int, default=40)
    parser.add_argument(
        "--mongodb-uri",
        default=os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017/?directConnection=true"),
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
