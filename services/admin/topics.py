"""Create the project's topics with explicit partition counts and configs, idempotently.

Never rely on broker auto-creation: it makes 1-partition topics (or the broker default), which
silently serialises every session through one consumer and breaks co-partitioning between
`commands` and `turns`. Run by `make infra-up`, `make topics` and the test harness:

    python -m services.admin.topics [--bootstrap-servers HOST:PORT] [--prefix P] [--partitions N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

from services.runtime.kafka_security import KafkaSecuritySettings, kafka_client_options

_REQUEST_TIMEOUT_MS = 30_000
_METADATA_WAIT_S = 30.0


class TopicSpecLike(Protocol):
    """What provisioning needs of a topic; `contracts.topics.TopicSpec` satisfies it."""

    @property
    def name(self) -> str: ...
    @property
    def partitions(self) -> int: ...
    @property
    def replication_factor(self) -> int: ...
    @property
    def config(self) -> Mapping[str, str]: ...


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic outside the catalogue, e.g. one a test makes for itself."""

    name: str
    partitions: int
    replication_factor: int = 1
    config: Mapping[str, str] = field(default_factory=dict)


class TopicMismatch(RuntimeError):
    """An existing topic has another partition count than specified.

    Not repaired automatically: adding partitions moves keys to other partitions and breaks
    per-session ordering and co-partitioning; that needs an operator's decision.
    """


@dataclass(frozen=True, slots=True)
class ProvisioningReport:
    created: tuple[str, ...]
    already_present: tuple[str, ...]
    configs_updated: tuple[str, ...]

    def summary(self) -> str:
        return (
            f"topics: {len(self.created)} created, {len(self.already_present)} already present, "
            f"{len(self.configs_updated)} with configs updated"
        )


async def ensure_topics(
    bootstrap_servers: str,
    topics: Sequence[TopicSpecLike],
    *,
    security: KafkaSecuritySettings | None = None,
) -> ProvisioningReport:
    """Make every topic exist with its partition count and configs; safe to run any number of times."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        request_timeout_ms=_REQUEST_TIMEOUT_MS,
        **(kafka_client_options(security) if security is not None else {}),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        created = await _create(admin, missing)
        partitions = await _wait_for_partitions(admin, [t.name for t in topics])
        _check_partitions(topics, partitions)
        present = [t for t in topics if t.name not in created]
        updated = await _align_configs(admin, present)
        return ProvisioningReport(
            created=tuple(created),
            already_present=tuple(t.name for t in present),
            configs_updated=tuple(updated),
        )
    finally:
        await admin.close()


async def delete_topics(
    bootstrap_servers: str,
    names: Sequence[str],
    *,
    security: KafkaSecuritySettings | None = None,
) -> None:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        request_timeout_ms=_REQUEST_TIMEOUT_MS,
        **(kafka_client_options(security) if security is not None else {}),
    )
    await admin.start()
    try:
        await admin.delete_topics(list(names))
    finally:
        await admin.close()


async def _create(admin: AIOKafkaAdminClient, topics: Sequence[TopicSpecLike]) -> list[str]:
    if not topics:
        return []
    response = await admin.create_topics(
        [
            NewTopic(
                name=t.name,
                num_partitions=t.partitions,
                replication_factor=t.replication_factor,
                topic_configs=dict(t.config),
            )
            for t in topics
        ],
        timeout_ms=_REQUEST_TIMEOUT_MS,
    )
    created: list[str] = []
    for name, error_code, *rest in response.topic_errors:
        error = for_code(error_code)
        if error_code == 0:
            created.append(name)
        elif error is TopicAlreadyExistsError:
            continue  # created concurrently by another provisioner: fine, checked below
        else:
            message = rest[0] if rest else ""
            raise RuntimeError(f"creating topic {name} failed: {error.__name__} {message}")
    return created


async def _wait_for_partitions(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Partition counts once every topic shows up in the broker's metadata.

    A topic just created (here or by a concurrent provisioner) is listed before its partitions
    reach the metadata cache; returning earlier would hand callers a topic producers cannot use yet.
    """
    if not names:
        return {}
    deadline = asyncio.get_running_loop().time() + _METADATA_WAIT_S
    while True:
        described = await admin.describe_topics(names)
        counts = {t["topic"]: len(t.get("partitions") or []) for t in described}
        if all(counts.get(name, 0) > 0 for name in names):
            return counts
        if asyncio.get_running_loop().time() > deadline:
            lagging = sorted(n for n in names if counts.get(n, 0) == 0)
            raise RuntimeError(f"topics without partitions after {_METADATA_WAIT_S}s: {lagging}")
        await asyncio.sleep(0.1)


def _check_partitions(topics: Sequence[TopicSpecLike], actual: Mapping[str, int]) -> None:
    for spec in topics:
        if actual[spec.name] != spec.partitions:
            raise TopicMismatch(
                f"topic {spec.name} has {actual[spec.name]} partitions, "
                f"the catalogue says {spec.partitions}"
            )


async def _align_configs(admin: AIOKafkaAdminClient, topics: Sequence[TopicSpecLike]) -> list[str]:
    drifted = []
    for spec in topics:
        if not spec.config:
            continue
        actual = await _topic_configs(admin, spec.name, list(spec.config))
        if any(actual.get(key) != value for key, value in spec.config.items()):
            drifted.append(spec)
    if drifted:
        # AlterConfigs replaces the topic's whole dynamic config with the given set, which is
        # what we want: the catalogue is the full truth for these topics.
        await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t.name, dict(t.config)) for t in drifted]
        )
    return [t.name for t in drifted]


async def _topic_configs(admin: AIOKafkaAdminClient, name: str, keys: list[str]) -> dict[str, str]:
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name, dict.fromkeys(keys))]
    )
    values: dict[str, str] = {}
    for response in responses:
        for resource in response.resources:
            entries: list[Any] = resource[4]
            for entry in entries:
                values[entry[0]] = entry[1]
    return values


def _catalogue_specs(prefix: str | None, partitions: int | None) -> list[TopicSpecLike]:
    # The deployment's catalogue, as the services build it (AGENT_RUNTIME_* / .env), with the
    # command line's overrides.
    from services.runtime.settings import RuntimeSettings

    overrides: dict[str, Any] = {}
    if prefix is not None:
        overrides["prefix"] = prefix
    if partitions is not None:
        overrides["partitions"] = partitions
    return list(replace(RuntimeSettings().topics, **overrides).specs())


def main(argv: Sequence[str] | None = None) -> int:
    from services.runtime.settings import RuntimeSettings

    parser = argparse.ArgumentParser(description="Create the project's Kafka topics (idempotent).")
    parser.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
    )
    parser.add_argument("--prefix", default=None, help="topic name prefix (catalogue default)")
    parser.add_argument("--partitions", type=int, default=None)
    args = parser.parse_args(argv)
    specs = _catalogue_specs(args.prefix, args.partitions)
    # Security from the same AGENT_RUNTIME_KAFKA_* settings as the services.
    security = RuntimeSettings(kafka_bootstrap_servers=args.bootstrap_servers)
    try:
        report = asyncio.run(ensure_topics(args.bootstrap_servers, specs, security=security))
    except TopicMismatch as mismatch:
        print(f"topics: {mismatch}", file=sys.stderr)
        return 1
    print(report.summary(), flush=True)
    for name in report.created:
        print(f"  created {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
