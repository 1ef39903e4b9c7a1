"""Producer and consumer factories for the CLI, failing fast with one clear line."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAuthorizationFailedError

from services.cli.errors import BrokerUnreachable, CliError, NotAuthorized, NotFound
from services.runtime import header_names
from services.runtime.kafka_access import KafkaAccessRefused, check_kafka_access, principal
from services.runtime.kafka_security import kafka_client_options
from services.runtime.settings import RuntimeSettings

_CONNECT_TIMEOUT_MS = 10_000
_CLIENT = "cli"

Client = TypeVar("Client", AIOKafkaProducer, AIOKafkaConsumer)


@asynccontextmanager
async def producer(settings: RuntimeSettings) -> AsyncIterator[AIOKafkaProducer]:
    client = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=settings.client_id(_CLIENT),
        **kafka_client_options(settings),
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=_CONNECT_TIMEOUT_MS,
    )
    async with _started(client, settings):
        yield client


@asynccontextmanager
async def consumer(settings: RuntimeSettings, **options: object) -> AsyncIterator[AIOKafkaConsumer]:
    """A group-less consumer; the caller assigns partitions and seeks."""
    header_names.install()  # a header name that is not UTF-8 must not fail every fetch
    client = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=settings.client_id(_CLIENT),
        **kafka_client_options(settings),
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=_CONNECT_TIMEOUT_MS,
        **options,
    )
    async with _started(client, settings):
        yield client


@asynccontextmanager
async def _started(client: Client, settings: RuntimeSettings) -> AsyncIterator[Client]:
    """The client started (an unreachable broker is one clear error), stopped afterwards."""
    try:
        await client.start()
    except (KafkaConnectionError, KafkaError, OSError) as exc:
        await client.stop()
        await explain_refusal(settings)
        raise BrokerUnreachable(settings.kafka_bootstrap_servers, exc) from None
    try:
        yield client
    finally:
        await client.stop()


async def explain_refusal(settings: RuntimeSettings) -> None:
    """A wrong password or an untrusted CA is said as such, not as an unreachable broker."""
    try:
        await check_kafka_access(settings)
    except KafkaAccessRefused as refused:
        raise CliError(str(refused)) from None


async def partitions_of(settings: RuntimeSettings, topic: str) -> list[int]:
    """The topic's partition numbers from the broker's metadata; [] when it does not exist."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=settings.client_id(_CLIENT),
        request_timeout_ms=_CONNECT_TIMEOUT_MS,
        **kafka_client_options(settings),
    )
    try:
        await admin.start()
        (described,) = await admin.describe_topics([topic])
    except (KafkaConnectionError, KafkaError, OSError) as exc:
        await explain_refusal(settings)
        raise BrokerUnreachable(settings.kafka_bootstrap_servers, exc) from None
    finally:
        await admin.close()
    if described.get("error_code") == TopicAuthorizationFailedError.errno:
        # Not "missing": a principal the ACLs do not grant the topic would be told it does not
        # exist (`audit tail`, exit 4) or shown nothing at all (`dlq list`, exit 0).
        raise NotAuthorized(
            f"Kafka does not let {principal(settings)} at topic {topic!r}: "
            "its ACLs grant it no access (docs/security.md, python -m services.admin.acls --print)"
        )
    if described.get("error_code"):
        return []
    return sorted(p["partition"] for p in described.get("partitions", ()))


def not_allowed_to_write(settings: RuntimeSettings, topic: str) -> NotAuthorized:
    """A publish the broker's ACLs refused (TopicAuthorizationFailedError), in one line."""
    return NotAuthorized(
        f"Kafka does not let {principal(settings)} write topic {topic!r}: its ACLs grant it "
        "no WRITE (docs/security.md, python -m services.admin.acls --print)"
    )


async def existing_partitions(settings: RuntimeSettings, topic: str) -> list[int]:
    """`partitions_of`, or NotFound when the topic is missing: the broker never auto-creates
    the project's topics, so a client would otherwise wait on its metadata (a consumer
    forever, a producer until a timeout with a traceback)."""
    partitions = await partitions_of(settings, topic)
    if not partitions:
        raise NotFound(
            f"the topic {topic!r} does not exist (is the prefix right? "
            "`agent-runtime topics create` creates the topics)"
        )
    return partitions
