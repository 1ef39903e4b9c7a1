"""Smoke test of the Mongo-compatible server through PyMongo's async client.

Covers exactly the operations the services rely on; if a PyMongo upgrade or a server swap
breaks one of them, this file says which.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pymongo
import pytest
from pymongo import ASCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

pytestmark = pytest.mark.integration

Document = dict[str, Any]


@pytest.fixture
async def database(
    mongodb_uri: str, mongo_database_name: str
) -> AsyncIterator[AsyncDatabase[Document]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        mongodb_uri, serverSelectionTimeoutMS=10_000
    )
    try:
        yield client[mongo_database_name]
    finally:
        await client.close()


async def test_server_speaks_a_wire_version_this_pymongo_accepts(mongodb_uri: str) -> None:
    # PyMongo drops old servers over time (4.14 refuses wire version < 9 = MongoDB 4.4). The local
    # stand-in announces its version in deploy/local/MongoLauncher.java; if this fails after a
    # PyMongo upgrade, raise the announced version there (see deploy/README.md).
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        mongodb_uri, serverSelectionTimeoutMS=10_000
    )
    try:
        handshake = await client.admin.command("isMaster")
        assert (await client.admin.command("ping"))["ok"] == 1.0
    finally:
        await client.close()
    minimum = pymongo.common.MIN_SUPPORTED_WIRE_VERSION
    assert handshake["maxWireVersion"] >= minimum, (
        f"server wire version {handshake['maxWireVersion']} < {minimum} required by "
        f"PyMongo {pymongo.version}"
    )


async def test_documents_written_are_read_back(database: AsyncDatabase[Document]) -> None:
    sessions = database["sessions"]
    await sessions.insert_many([{"_id": f"s-{i}", "tenant": "t1", "n": i} for i in range(50)])

    found = await sessions.find({"tenant": "t1", "n": {"$gte": 45}}).sort("n", ASCENDING).to_list()

    assert [doc["_id"] for doc in found] == [f"s-{i}" for i in range(45, 50)]
    assert await sessions.count_documents({"tenant": "t1"}) == 50


async def test_unique_index_refuses_a_second_document_with_the_same_key(
    database: AsyncDatabase[Document],
) -> None:
    messages = database["messages"]
    await messages.create_index([("session_id", ASCENDING), ("seq", ASCENDING)], unique=True)
    await messages.insert_one({"session_id": "s-1", "seq": 1, "text": "hello"})

    with pytest.raises(DuplicateKeyError):
        await messages.insert_one({"session_id": "s-1", "seq": 1, "text": "again"})
    await messages.insert_one({"session_id": "s-1", "seq": 2, "text": "next"})
    assert await messages.count_documents({"session_id": "s-1"}) == 2


async def test_concurrent_upserting_increments_are_atomic(
    database: AsyncDatabase[Document],
) -> None:
    counters = database["counters"]

    async def increment() -> Document | None:
        return await counters.find_one_and_update(
            {"_id": "session-seq"},
            {"$inc": {"value": 1}, "$setOnInsert": {"created": True}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )

    results = await asyncio.gather(*(increment() for _ in range(25)))

    # Each caller saw a distinct value: no lost update, no double upsert.
    assert sorted(doc["value"] for doc in results if doc) == list(range(1, 26))
    assert await counters.count_documents({}) == 1


async def test_push_with_slice_keeps_only_the_newest_entries(
    database: AsyncDatabase[Document],
) -> None:
    sessions = database["sessions"]
    for switch in range(15):
        await sessions.update_one(
            {"_id": "s-1"},
            {"$push": {"switches": {"$each": [{"to": f"agent-{switch}"}], "$slice": -10}}},
            upsert=True,
        )

    doc = await sessions.find_one({"_id": "s-1"})

    assert doc is not None
    assert [s["to"] for s in doc["switches"]] == [f"agent-{i}" for i in range(5, 15)]


async def test_compare_and_set_on_version_lets_only_one_writer_win(
    database: AsyncDatabase[Document],
) -> None:
    sessions = database["sessions"]
    await sessions.insert_one({"_id": "s-1", "version": 1, "title": "first"})

    async def write(title: str) -> int:
        result = await sessions.update_one(
            {"_id": "s-1", "version": 1}, {"$set": {"title": title}, "$inc": {"version": 1}}
        )
        return result.modified_count

    outcomes = await asyncio.gather(*(write(f"title-{i}") for i in range(10)))

    assert sorted(outcomes) == [0] * 9 + [1]
    doc = await sessions.find_one({"_id": "s-1"})
    assert doc is not None
    assert doc["version"] == 2


async def test_the_stand_in_reports_how_long_each_namespace_held_its_command_lock(
    database: AsyncDatabase[Document],
) -> None:
    # deploy/local/MongoLauncher.java runs one command at a time; benchmarks/pipeline.py reads
    # this to show where the stand-in's capacity goes (a real MongoDB has no such command).
    admin = database.client.admin
    key = f"{database.name}.lock_probe insert"
    before = (await admin.command("standInStats"))["namespaces"].get(key, {"commands": 0})

    await database["lock_probe"].insert_many([{"n": i, "pad": "x" * 200} for i in range(20)])
    await database["lock_probe"].insert_one({"n": 20})

    after = (await admin.command("standInStats"))["namespaces"][key]
    assert after["commands"] == before["commands"] + 2
    assert after["busy_ms"] > before.get("busy_ms", 0.0)
    assert after["waited_ms"] >= 0.0
    assert after["commit_ms"] > before.get("commit_ms", 0.0)  # each write commits under the lock
    assert after["commit_ms"] <= after["busy_ms"]
