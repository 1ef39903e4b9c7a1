"""Create the project's topics with explicit partition counts and configs, idempotently.

Never rely on broker auto-creation: it makes 1-partition topics (or the broker default), which
silently serialises every session through one consumer and breaks co-partitioning between
`commands` and `turns`. Run by `make infra-up`, `make topics`, the test harness and the
Kubernetes `topics` Job:

    python -m services.admin.topics [--bootstrap-servers HOST:PORT] [--prefix P] [--partitions N]

Without options it reads the services' own settings (`AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS`,
`AGENT_RUNTIME_TOPIC_PREFIX`, `AGENT_RUNTIME_TOPIC_REPLICATION_FACTOR`,
`AGENT_RUNTIME_TOPIC_MIN_INSYNC_REPLICAS`, `.env`), so it provisions exactly the topics the
services will use. An existing topic gets only its drifted keys changed; keys the catalogue does
not manage (an operator's `max.message.bytes`, say) are left alone. A partition-count change is
refused: it would move sessions to other partitions.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from pydantic import ValidationError

from services.admin.topic_configs import ConfigChangeFailed, set_topic_configs, topic_configs
from services.runtime.kafka_security import KafkaSecuritySettings, kafka_client_options
from services.runtime.settings import RuntimeSettings
from services.runtime.settings_errors import invalid_settings
from services.runtime.uri_redaction import redact_uri_credentials

_REQUEST_TIMEOUT_MS = 30_000
_METADATA_WAIT_S = 30.0
_CLIENT_ID = "agent-runtime.topics"


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


class TopicCreationFailed(RuntimeError):
    """The broker refused to create a topic (a replication factor above its broker count, an
    invalid name, no permission): the operator's settings or rights, said in one line."""


@dataclass(frozen=True, slots=True)
class ConfigChange:
    topic: str
    key: str
    was: str | None
    now: str

    def __str__(self) -> str:
        return f"{self.topic}: {self.key} {self.was} -> {self.now}"


@dataclass(frozen=True, slots=True)
class ProvisioningReport:
    created: tuple[str, ...]
    already_present: tuple[str, ...]
    configs_updated: tuple[str, ...]
    config_changes: tuple[ConfigChange, ...] = ()
    # Existing topics with fewer replicas than specified: raising it is a partition
    # reassignment (kafka-reassign-partitions.sh), an operator's job, so it is only reported.
    under_replicated: tuple[str, ...] = ()

    def summary(self) -> str:
        return (
            f"topics: {len(self.created)} created, {len(self.already_present)} already present, "
            f"{len(self.configs_updated)} with configs updated"
        )

    def details(self) -> list[str]:
        """One line per topic created, key changed and replication shortfall, after `summary`."""
        return (
            [f"  created {name}" for name in self.created]
            + [f"  changed {change}" for change in self.config_changes]
            + [f"  warning: {shortfall}" for shortfall in self.under_replicated]
        )


async def ensure_topics(
    bootstrap_servers: str,
    topics: Sequence[TopicSpecLike],
    *,
    security: KafkaSecuritySettings | None = None,
    client_id: str = _CLIENT_ID,
) -> ProvisioningReport:
    """Make every topic exist with its partition count and configs; safe to run any number of times."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        request_timeout_ms=_REQUEST_TIMEOUT_MS,
        **(kafka_client_options(security) if security is not None else {}),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        # Refuse a partition mismatch before creating anything: topics created with the
        # catalogue's count next to one that has another would be a set that no count
        # (`--partitions`) provisions any more, and commands/turns no longer co-partitioned.
        found = [t for t in topics if t.name in existing]
        _check_partitions(found, await _wait_for_partitions(admin, [t.name for t in found]))
        missing = [t for t in topics if t.name not in existing]
        created = await _create(admin, missing)
        partitions = await _wait_for_partitions(admin, [t.name for t in topics])
        _check_partitions(topics, partitions)  # and what a concurrent provisioner created
        present = [t for t in topics if t.name not in created]
        changes = await _align_configs(admin, present)
        return ProvisioningReport(
            created=tuple(created),
            already_present=tuple(t.name for t in present),
            configs_updated=tuple(dict.fromkeys(c.topic for c in changes)),
            config_changes=tuple(changes),
            under_replicated=tuple(await _under_replicated(admin, present)),
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
            raise TopicCreationFailed(f"creating topic {name} failed: {error.__name__} {message}")
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
                f"topic {spec.name} has {actual[spec.name]} partitions, the catalogue says "
                f"{spec.partitions}; refusing to change the partition count: it moves sessions "
                f"to other partitions (ordering and the co-partitioning of commands and turns "
                f"break). Provision with --partitions {actual[spec.name]}, or migrate to new "
                f"topics deliberately."
            )


async def _under_replicated(
    admin: AIOKafkaAdminClient, topics: Sequence[TopicSpecLike]
) -> list[str]:
    if not topics:
        return []
    wanted = {t.name: t.replication_factor for t in topics}
    described = await admin.describe_topics(list(wanted))
    short = []
    for topic in described:
        replicas = min((len(p["replicas"]) for p in topic.get("partitions") or []), default=0)
        if replicas < wanted[topic["topic"]]:
            short.append(
                f"{topic['topic']} has replication factor {replicas}, "
                f"the settings say {wanted[topic['topic']]}: reassign its partitions"
            )
    return short


async def _align_configs(
    admin: AIOKafkaAdminClient, topics: Sequence[TopicSpecLike]
) -> list[ConfigChange]:
    changes: list[ConfigChange] = []
    for spec in topics:
        if not spec.config:
            continue
        actual = await topic_configs(admin, spec.name, list(spec.config))
        changes.extend(
            ConfigChange(spec.name, key, actual.get(key), value)
            for key, value in spec.config.items()
            if actual.get(key) != value
        )
    drifted: dict[str, dict[str, str]] = {}
    for change in changes:
        drifted.setdefault(change.topic, {})[change.key] = change.now
    # Only the drifted keys: the legacy AlterConfigs would replace the whole topic config.
    await set_topic_configs(admin, drifted)
    return changes


def _catalogue_specs(
    settings: RuntimeSettings, prefix: str | None, partitions: int | None
) -> list[TopicSpecLike]:
    # The deployment's catalogue, as the services build it (AGENT_RUNTIME_* / .env: prefix,
    # replication factor, min.insync.replicas), with the command line's overrides.

    overrides: dict[str, Any] = {}
    if partitions is not None:
        overrides["partitions"] = partitions
    if prefix is not None:
        overrides["prefix"] = prefix
    return list(replace(settings.topics, **overrides).specs())


def main(argv: Sequence[str] | None = None) -> int:
    # Named as it is run (argparse would say `topics.py`); options first, so that `--help`
    # answers whatever the settings hold.
    parser = argparse.ArgumentParser(
        prog="python -m services.admin.topics",
        description="Create the project's Kafka topics (idempotent).",
    )
    parser.add_argument(
        "--bootstrap-servers",
        default=None,
        help="default: AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS (or KAFKA_BOOTSTRAP_SERVERS)",
    )
    parser.add_argument("--prefix", default=None, help="default: AGENT_RUNTIME_TOPIC_PREFIX")
    parser.add_argument("--partitions", type=_positive, default=None)
    args = parser.parse_args(argv)
    try:
        settings = RuntimeSettings()
    except ValidationError as invalid:
        print(f"topics: {invalid_settings(invalid, RuntimeSettings)}", file=sys.stderr)
        return 2
    bootstrap = args.bootstrap_servers or _bootstrap_servers(settings)
    specs = _catalogue_specs(settings, args.prefix, args.partitions)
    provisioned = settings.model_copy(
        update={} if args.prefix is None else {"topic_prefix": args.prefix}
    )
    try:
        # Security from the same AGENT_RUNTIME_KAFKA_* settings as the services.
        report = asyncio.run(
            ensure_topics(
                bootstrap,
                specs,
                security=settings,
                # Named after the prefix provisioned, `--prefix` when given.
                client_id=provisioned.client_id("topics"),
            )
        )
    except (TopicMismatch, ConfigChangeFailed, TopicCreationFailed) as refused:
        print(f"topics: {refused}", file=sys.stderr)
        return 1
    except (KafkaError, OSError) as unreachable:
        # One line, as the CLI says it (exit 3 there too), not a traceback in a Job's log.
        print(
            f"topics: cannot reach Kafka at {redact_uri_credentials(bootstrap)} "
            f"({redact_uri_credentials(str(unreachable))})",
            file=sys.stderr,
        )
        return 3
    print(report.summary(), flush=True)
    for line in report.details():
        print(line)
    return 0


def _positive(text: str) -> int:
    count = int(text)
    if count < 1:
        raise argparse.ArgumentTypeError(f"{count} is not a partition count (at least 1)")
    return count


def _bootstrap_servers(settings: RuntimeSettings) -> str:
    # The test harness and `make topics` export the unprefixed name; the services' setting wins.
    if "kafka_bootstrap_servers" in settings.model_fields_set:
        return settings.kafka_bootstrap_servers
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", settings.kafka_bootstrap_servers)


if __name__ == "__main__":
    # aiokafka logs each failed connection attempt; this tool reports a failure itself, once.
    # Here, not in `main`: the test harness calls `main` inside its own logging.
    logging.basicConfig(level=logging.CRITICAL)
    sys.exit(main())
