"""What keeping one LLM result costs the Mongo stand-in, as the kept results grow: the keep's
condition `{_id, kept: false}` (served by the `(_id, kept)` index) against the earlier
`{_id, result: {$exists: false}}` (which mongo-java-server can serve from no index), side by
side in one run.

    .venv/bin/python benchmarks/kept_results_keep.py [--results 1000,5000] [--keeps 40]
        [--mongodb-uri 'mongodb://127.0.0.1:27017/?directConnection=true']

For each size and condition, a database of its own (dropped after) holding `N` kept results,
then `--keeps` claims, then their results kept one at a time; printed: the milliseconds the
stand-in held its command lock per keep (its `standInStats` command, deploy/README.md), which
is its capacity spent, whatever else runs on the machine. Needs the stand-in, not MongoDB.
"""

import argparse
import asyncio
import os
import uuid
from typing import Any

from pymongo import AsyncMongoClient

from contracts.base import derive_id
from contracts.llm import LLMCompleted
from services.llm_invocation.result_store import COLLECTION, KeptResults


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


async def _update_lock_ms(client: AsyncMongoClient[dict[str, Any]], database: str) -> float:
    answer = await client.admin.command("standInStats")
    key = f"{database}.{COLLECTION} update"
    return float(answer["namespaces"].get(key, {}).get("busy_ms", 0.0))


async def _measure(
    client: AsyncMongoClient[dict[str, Any]], size: int, keeps: int, condition: str
) -> float:
    database = f"bench_keep_{uuid.uuid4().hex[:8]}"
    results = KeptResults(client[database])
    try:
        await results.ensure_indexes()
        collection = client[database][COLLECTION]
        await collection.insert_many(
            [
                {"_id": f"inv-{i}", "session_id": "s-bench", "kept": True, "result": {"n": i}}
                for i in range(size)
            ]
        )
        fresh = range(size, size + keeps)
        for index in fresh:
            await results.claim(f"inv-{index}", "s-bench", f"bench/{os.getpid()}")
        before = await _update_lock_ms(client, database)
        for index in fresh:
            result = _result(index)
            if condition == "kept: false":
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
        return (await _update_lock_ms(client, database) - before) / keeps
    finally:
        await client.drop_database(database)


async def run(args: argparse.Namespace) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(args.mongodb_uri)
    try:
        print("| kept results | condition | stand-in lock ms per keep |")
        print("|---|---|---|")
        for size in (int(n) for n in args.results.split(",")):
            for condition in ("kept: false", "result: $exists false"):
                per_keep = await _measure(client, size, args.keeps, condition)
                print(f"| {size:,} | `{condition}` | {per_keep:.2f} |")
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", default="1000,5000", help="kept results already there")
    parser.add_argument("--keeps", type=int, default=40)
    parser.add_argument(
        "--mongodb-uri",
        default=os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017/?directConnection=true"),
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
