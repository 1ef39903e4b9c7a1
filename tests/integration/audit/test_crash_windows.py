"""The handler with the real audit log: a crash between storing and publishing a record still
publishes it; a published mark is written behind, and until it is written a redelivery
re-publishes the same record (docs/audit.md, "Delivery" and "Why the published mark stays")."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from contracts.audit import RedactionMode
from services.audit.audit_log import MongoAuditLog
from services.audit.handler import AuditHandler
from services.audit.redaction import RedactionPolicy
from services.runtime.errors import RetryableError
from tests.support.audit.conversation import conversation
from tests.support.audit.fakes import CATALOGUE, FakeSink, kafka_record

pytestmark = pytest.mark.integration


@pytest.fixture
async def database(mongodb_uri: str, mongo_database_name: str) -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    try:
        yield client[mongo_database_name]
    finally:
        await client.close()


def process(
    database: Any, sink: FakeSink, mark_linger_s: float = 0.25
) -> tuple[AuditHandler, MongoAuditLog]:
    """What one audit process holds: its own log object over the shared collection."""
    log = MongoAuditLog(database, mark_linger_s=mark_linger_s)
    handler = AuditHandler(
        topics=CATALOGUE, policy=RedactionPolicy(mode=RedactionMode.HASHED), log=log, sink=sink
    )
    return handler, log


async def test_a_crash_between_store_and_publish_still_publishes_the_stored_record(
    database: Any,
) -> None:
    record = kafka_record(conversation("crash-1")[2], 5)
    first, _ = process(database, FakeSink(failures=1))
    with pytest.raises(RetryableError):
        await first(record)  # stored, then the broker failed: the offset is not committed

    sink = FakeSink()
    restarted, log = process(database, sink)
    await restarted(record)  # the redelivery after the restart
    await log.flush_published()

    stored = await database["audit_log"].find_one({"_id": sink.records()[0].id})
    assert len(sink.published) == 1
    assert sink.records()[0].model_dump(mode="json") == stored["record"]  # the stored bytes
    assert stored["published"] is True


async def test_the_mark_is_written_behind_and_then_a_redelivery_publishes_nothing(
    database: Any,
) -> None:
    record = kafka_record(conversation("crash-2")[3], 6)
    sink = FakeSink()
    handler, log = process(database, sink, mark_linger_s=600.0)  # written on flush only

    await handler(record)
    record_id = sink.records()[0].id
    stored = await database["audit_log"].find_one({"_id": record_id})
    assert stored["published"] is False  # the handler returned before its mark was written

    again, again_log = process(database, sink)
    await again(record)  # a redelivery now: the same record again, same bytes
    assert len(sink.published) == 2
    assert sink.published[0].value == sink.published[1].value

    await log.flush_published()
    await again_log.flush_published()
    assert (await database["audit_log"].find_one({"_id": record_id}))["published"] is True
    late, _ = process(database, sink)
    await late(record)  # a replay once the mark is written: nothing
    assert len(sink.published) == 2
