"""One look at the first bootstrap broker before the clients start: is the security right?

A Kafka client that cannot authenticate, or does not trust the broker's certificate, logs a
connection error and retries forever; a service would never become ready and never say why.
This probe opens one connection with the configured security and turns the failures that no
retry can fix into one line naming the setting to change. A broker that is merely unreachable
is not its business: the clients' own retries handle that. Nor is authorization (the ACLs),
which a client meets topic by topic: `unauthorized_topics` tells a refused topic from a missing
one, which Kafka's topic list does not.
"""

import asyncio
import logging
import ssl
from collections.abc import Collection
from typing import Any, Final

from aiokafka.client import AIOKafkaClient
from aiokafka.cluster import ClusterMetadata
from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    IllegalSaslStateError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from services.runtime.kafka_security import KafkaSecuritySettings, kafka_client_options

_ENV = "AGENT_RUNTIME_"
_PROBE_TIMEOUT_MS = 10_000


_DECISIVE: tuple[type[BaseException], ...] = (
    ssl.SSLError,
    SaslAuthenticationFailed,
    AuthenticationFailedError,
    UnsupportedSaslMechanismError,
    IllegalSaslStateError,
)
# TLS record content types (alert, handshake) and the major version of every TLS record.
_TLS_RECORD_TYPES: Final = frozenset({0x15, 0x16})
_TLS_MAJOR_VERSION: Final = 0x03


class KafkaAccessRefused(RuntimeError):
    """The configured Kafka security does not work against the broker; the message is one line."""


async def check_kafka_access(settings: KafkaSecuritySettings) -> None:
    """Raise `KafkaAccessRefused` when TLS or SASL fails against the first bootstrap server,
    or when the listener speaks another protocol than the configured one (a PLAINTEXT client
    answered with TLS, a SASL client by a listener without SASL)."""
    address = settings.kafka_bootstrap_servers.split(",")[0].strip()
    host, _, port = address.rpartition(":")
    options: dict[str, Any] = kafka_client_options(settings)
    try:
        connection = await create_conn(
            host, int(port), request_timeout_ms=_PROBE_TIMEOUT_MS, **options
        )
    except Exception as exc:
        refusal = _refusal(settings, address, exc)
        if refusal is not None:
            raise KafkaAccessRefused(refusal) from None
        return
    connection.close()


def principal(settings: KafkaSecuritySettings) -> str:
    """Who the broker sees, as a line naming it should say it (its ACLs are by principal)."""
    if settings.kafka_sasl_username:
        return f"{_ENV}KAFKA_SASL_USERNAME={settings.kafka_sasl_username}"
    return f"this client ({_ENV}KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol})"


async def unauthorized_topics(client: AIOKafkaClient, names: Collection[str]) -> list[str]:
    """Those of `names` the broker's ACLs keep from this principal. Kafka leaves them out of the
    whole cluster's metadata (what `topics()` lists), as it does a missing topic; asked for by
    name, it says which are refused. `client` is a started client's (`producer.client`)."""
    if not names:
        return []
    metadata = ClusterMetadata()
    # aiokafka has no public call for a named metadata request; its cluster logger would add
    # an ERROR line per refused topic to the one line the caller writes.
    cluster_log = logging.getLogger("aiokafka.cluster")
    level = cluster_log.level
    cluster_log.setLevel(logging.CRITICAL)
    try:
        if not await client._metadata_update(metadata, list(names)):
            return []
    finally:
        cluster_log.setLevel(level)
    return sorted(metadata.unauthorized_topics & set(names))


def _refusal(settings: KafkaSecuritySettings, address: str, exc: BaseException) -> str | None:
    cause = _root(exc)
    protocol = f"{_ENV}KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol}"
    if isinstance(cause, ssl.SSLCertVerificationError):
        if "mismatch" in (cause.verify_message or ""):
            return (
                f"Kafka TLS: the certificate of {address} does not name that host "
                f"({cause.verify_message}); dial a name it carries, or set "
                f"{_ENV}KAFKA_SSL_CHECK_HOSTNAME=false only where that risk is accepted"
            )
        trusted = settings.kafka_ssl_cafile or "the system CA store"
        return (
            f"Kafka TLS: the certificate of {address} is not trusted by "
            f"{_ENV}KAFKA_SSL_CAFILE={trusted} ({cause.verify_message})"
        )
    if isinstance(cause, ssl.SSLError):
        return (
            f"Kafka TLS handshake with {address} failed ({cause.reason or cause}): check "
            f"{protocol}, and {_ENV}KAFKA_SSL_CERTFILE / _KEYFILE if the broker asks for a "
            "client certificate"
        )
    if isinstance(cause, UnsupportedSaslMechanismError):
        return (
            f"Kafka SASL: {address} does not accept "
            f"{_ENV}KAFKA_SASL_MECHANISM={settings.kafka_sasl_mechanism}"
        )
    if isinstance(cause, SaslAuthenticationFailed | AuthenticationFailedError):
        source = (
            f"{_ENV}KAFKA_SASL_PASSWORD_FILE={settings.kafka_sasl_password_file}"
            if settings.kafka_sasl_password_file is not None
            else f"{_ENV}KAFKA_SASL_PASSWORD"
        )
        return (
            f"Kafka SASL authentication failed at {address} for "
            f"{_ENV}KAFKA_SASL_USERNAME={settings.kafka_sasl_username} "
            f"({settings.kafka_sasl_mechanism}): check {source}"
        )
    if _answered_with_tls(exc):
        return (
            f"Kafka at {address} answered with TLS: its listener wants "
            f"{_ENV}KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL, not {protocol}"
        )
    if isinstance(cause, IllegalSaslStateError):
        return (
            f"Kafka at {address} does not do SASL on that listener: check {protocol} "
            "(PLAINTEXT or SSL)"
        )
    # Refused, reset (also what a TLS client sees on a plaintext port), timed out: possibly
    # transient, left to the clients' retries.
    return None


def _answered_with_tls(exc: BaseException) -> bool:
    """A plaintext client reads the TLS listener's alert record (0x15 0x03 …) as the size of a
    Kafka response: no broker speaking Kafka on that listener sends that, nor a transient
    fault."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, asyncio.IncompleteReadError) and seen.expected is not None:
            content_type, major = seen.expected >> 24, (seen.expected >> 16) & 0xFF
            return content_type in _TLS_RECORD_TYPES and major == _TLS_MAJOR_VERSION
        seen = seen.__cause__ or seen.__context__
    return False


def _root(exc: BaseException) -> BaseException:
    """The first SSL or Kafka error in the cause chain (aiokafka wraps some in its own)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, _DECISIVE):
            return seen
        seen = seen.__cause__ or seen.__context__
    return exc
