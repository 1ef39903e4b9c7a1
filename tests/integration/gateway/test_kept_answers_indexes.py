"""The kept answers' purge and an erasure's delete are served by indexes, not a scan of a day
of answers (gateway_responses)."""

import pytest
from pymongo import AsyncMongoClient

from services.gateway.idempotency import RESPONSES, ResponseStore

pytestmark = pytest.mark.integration


async def test_the_first_purge_indexes_what_the_purge_and_an_erasure_delete_by(
    mongodb_uri: str, mongo_database_name: str
) -> None:
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongodb_uri)
    try:
        database = mongo[mongo_database_name]
        store = ResponseStore(database, retention_s=3600)
        assert await store.purge() == 0
        indexes = {i["name"]: i["key"] async for i in await database[RESPONSES].list_indexes()}
        assert indexes["created_at"] == {"created_at": 1}
        assert indexes["session_id"] == {"session_id": 1}
        assert await store.purge() == 0  # and again: idempotent
    finally:
        await mongo.close()
