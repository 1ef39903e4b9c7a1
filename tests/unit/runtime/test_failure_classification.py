"""The one rule per kind of I/O: which driver errors are outages (retried) and which are not."""

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    RecordTooLargeError,
    RequestTimedOutError,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
)
from pymongo.errors import (
    AutoReconnect,
    DuplicateKeyError,
    ExecutionTimeout,
    NotPrimaryError,
    ServerSelectionTimeoutError,
    WTimeoutError,
)

from services.runtime.errors import RetryableError, UnpublishableRecord
from services.runtime.mongo_errors import database_outage
from services.runtime.publishing import publish_failures_classified

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "error",
    [
        KafkaConnectionError(),
        KafkaTimeoutError(),
        NotLeaderForPartitionError(),
        RequestTimedOutError(),
        UnknownTopicOrPartitionError(),
        # Not transient by Kafka's flag, but a deployment to fix, not a record to drop:
        # dead-lettering every record until the ACL is fixed would lose the pipeline's input.
        TopicAuthorizationFailedError(),
    ],
    ids=type,
)
async def test_a_broker_that_cannot_take_the_record_is_an_outage(error: Exception) -> None:
    with pytest.raises(RetryableError) as raised:
        async with publish_failures_classified("t.session-events"):
            raise error
    assert raised.value.__cause__ is error
    assert "t.session-events" in str(raised.value)


@pytest.mark.parametrize("error", [MessageSizeTooLargeError(), RecordTooLargeError()], ids=type)
async def test_a_record_the_broker_refuses_is_unpublishable(error: Exception) -> None:
    with pytest.raises(UnpublishableRecord) as raised:
        async with publish_failures_classified("t.session-events"):
            raise error
    assert not isinstance(raised.value, RetryableError)


async def test_a_bug_is_not_mistaken_for_an_outage() -> None:
    with pytest.raises(TypeError):
        async with publish_failures_classified("t.session-events"):
            raise TypeError("not bytes")


@pytest.mark.parametrize(
    "error",
    [
        AutoReconnect("primary stepped down"),
        NotPrimaryError("not primary"),
        ServerSelectionTimeoutError("no server"),
        ExecutionTimeout("maxTimeMS"),
        WTimeoutError("write concern timed out"),
    ],
    ids=type,
)
async def test_a_database_outage_is_retryable(error: Exception) -> None:
    with pytest.raises(RetryableError) as raised:
        async with database_outage("session store"):
            raise error
    assert raised.value.__cause__ is error
    assert str(raised.value).startswith("session store unavailable")


async def test_other_database_errors_pass_through() -> None:
    with pytest.raises(DuplicateKeyError):
        async with database_outage("session store"):
            raise DuplicateKeyError("E11000")
