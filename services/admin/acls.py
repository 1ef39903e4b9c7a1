"""Kafka ACLs of the trust model (docs/security.md), derived from the topic catalogue.

`deploy/kafka/acls.toml` maps the catalogue's roles to principals; every role gets WRITE on the
topics it produces and READ on those it consumes, each service READ on its consumer group, the
operators DESCRIBE on the deployment's groups and topics (lag). Applying is idempotent (Kafka keeps one copy of
an ACL however often it is created):

    python -m services.admin.acls --file deploy/kafka/acls.toml [--prefix P] [--print]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import IntEnum
from pathlib import Path
from typing import Any, Final

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.admin import CreateAclsRequest
from pydantic import ValidationError

from contracts.topics import ALL_SERVICES, DEFINITIONS, Service, TopicCatalogue
from services.runtime.kafka_access import KafkaAccessRefused, check_kafka_access
from services.runtime.kafka_security import KafkaSecuritySettings, kafka_client_options
from services.runtime.settings_errors import ConfigFileError, invalid_settings
from services.runtime.uri_redaction import redact_uri_credentials

_REQUEST_TIMEOUT_MS = 30_000


# Kafka protocol codes (org.apache.kafka.common.resource / acl).
class ResourceType(IntEnum):
    TOPIC = 2
    GROUP = 3


class PatternType(IntEnum):
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):
    READ = 3
    WRITE = 4
    DESCRIBE = 8


_ALLOW = 3
_ANY_HOST = "*"
# Kafka's KafkaPrincipal string: a type and a name, e.g. `User:audit`, `User:CN=x,O=y`.
_PRINCIPAL: Final = re.compile(r"[^:\s]+:.+")


@dataclass(frozen=True, slots=True, order=True)
class AclBinding:
    principal: str
    resource: ResourceType
    name: str
    pattern: PatternType
    operation: Operation

    def __str__(self) -> str:
        pattern = "" if self.pattern is PatternType.LITERAL else " (prefix)"
        return (
            f"ALLOW {self.principal} {self.operation.name} "
            f"{self.resource.name.lower()} {self.name}{pattern}"
        )


Roles = Mapping[Service, Sequence[str]]

SECOND_GROUPS: Final = ((Service.LLM_INVOCATION, "llm-invocation.erasure"),)
"""Consumer groups besides the service's own: llm-invocation's erasure consumer reads
session-events in a group of its own (services/runtime/kept_results_erasure.py), so that its lag
never counts as llm-requests lag."""


def load_roles(path: Path) -> dict[Service, tuple[str, ...]]:
    """The `[roles]` table of an ACL file: catalogue role → principals.

    A file that cannot be used is a `ConfigFileError` naming it and what is wrong (the tool
    exits 2 with that line), as for every configuration file a process is given: a missing
    file, TOML that does not parse, an unknown role, and principals that are not a list of
    `Type:name` strings (a bare string was read character by character: ACLs for `U`, `s`, …)."""
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("roles", {})
    except OSError as error:
        raise ConfigFileError(f"{path}: cannot be read ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise ConfigFileError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigFileError(f"{path}: not valid TOML ({error})") from None
    if not isinstance(table, dict):
        raise ConfigFileError(f"{path}: [roles] must be a table of role = [principals]")
    roles: dict[Service, tuple[str, ...]] = {}
    for name, principals in table.items():
        try:
            role = Service(name)
        except ValueError:
            known = ", ".join(s.value for s in Service)
            raise ConfigFileError(f"{path}: unknown role {name!r} (known: {known})") from None
        if not isinstance(principals, list) or not all(
            isinstance(p, str) and _PRINCIPAL.fullmatch(p) for p in principals
        ):
            raise ConfigFileError(
                f"{path}: role {name!r} must be a list of Kafka principals of the form "
                '"Type:name", e.g. ["User:audit"]'
            )
        roles[role] = tuple(principals)
    return roles


def trust_model_acls(catalogue: TopicCatalogue, roles: Roles) -> list[AclBinding]:
    """Every ACL the trust model grants, for the catalogue's topic names."""
    bindings: set[AclBinding] = set()

    def allow(
        role: Service, resource: ResourceType, name: str, op: Operation, *, prefixed: bool = False
    ) -> None:
        pattern = PatternType.PREFIXED if prefixed else PatternType.LITERAL
        for principal in roles.get(role, ()):
            bindings.add(AclBinding(principal, resource, name, pattern, op))

    for topic, definition in DEFINITIONS.items():
        name = catalogue.name(topic)
        for role in definition.producers:
            allow(role, ResourceType.TOPIC, name, Operation.WRITE)
        for role in definition.consumers:
            allow(role, ResourceType.TOPIC, name, Operation.READ)
    for service in ALL_SERVICES:
        allow(service, ResourceType.GROUP, f"{catalogue.prefix}{service.value}", Operation.READ)
    for service, group in SECOND_GROUPS:
        allow(service, ResourceType.GROUP, f"{catalogue.prefix}{group}", Operation.READ)
    # Consumer lag (the CLI's `groups lag`, KEDA's scaler): committed and end offsets.
    for resource in (ResourceType.GROUP, ResourceType.TOPIC):
        allow(Service.OPERATORS, resource, catalogue.prefix, Operation.DESCRIBE, prefixed=True)
    return sorted(bindings)


class AclRefused(RuntimeError):
    """The broker refused to create an ACL (no authorizer, or the principal may not alter)."""


async def apply_acls(
    bootstrap_servers: str,
    bindings: Sequence[AclBinding],
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
        for binding in bindings:
            # aiokafka ships the CreateAcls request but no admin method for it yet.
            response: Any = await admin._send_request(
                CreateAclsRequest(
                    binding.resource,
                    binding.name,
                    binding.pattern,
                    binding.principal,
                    _ANY_HOST,
                    binding.operation,
                    _ALLOW,
                )
            )
            for error_code, message in response.creation_responses:
                if error_code:
                    error = for_code(error_code).__name__
                    raise AclRefused(f"{binding}: {error} {message or ''}".strip())
    finally:
        await admin.close()


async def _apply_or_explain(
    settings: KafkaSecuritySettings, bindings: Sequence[AclBinding]
) -> None:
    try:
        await apply_acls(settings.kafka_bootstrap_servers, bindings, security=settings)
    except (KafkaError, OSError):
        await check_kafka_access(settings)  # a refused login: one line naming the setting
        raise


def main(argv: Sequence[str] | None = None) -> int:
    from services.runtime.settings import RuntimeSettings

    parser = argparse.ArgumentParser(
        prog="python -m services.admin.acls",
        description="Apply the trust model's Kafka ACLs (idempotent).",
    )
    parser.add_argument("--file", type=Path, default=Path("deploy/kafka/acls.toml"))
    parser.add_argument("--prefix", default=None, help="topic prefix (default: the settings')")
    parser.add_argument("--print", action="store_true", help="list the ACLs, apply nothing")
    args = parser.parse_args(argv)
    # Its connection errors would repeat what the one line below says.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    # Exit codes as `services.admin.topics` and the CLI: 2 a bad setting or file (one line,
    # no traceback), 1 refused, 3 Kafka unreachable.
    try:
        settings = RuntimeSettings()
    except ValidationError as invalid:
        print(f"acls: {invalid_settings(invalid, RuntimeSettings)}", file=sys.stderr)
        return 2
    # The deployment's catalogue as the services build it (AGENT_RUNTIME_DEAD_LETTER_TOPIC
    # included: a bare prefix granted `<prefix>dead-letters`, and every dead letter to the
    # configured topic was refused), `--prefix` overriding the prefix only.
    catalogue = settings.topics
    if args.prefix is not None:
        catalogue = replace(catalogue, prefix=args.prefix)
    try:
        roles = load_roles(args.file)
    except ConfigFileError as unusable:
        print(f"acls: {unusable}", file=sys.stderr)
        return 2
    bindings = trust_model_acls(catalogue, roles)
    if args.print:
        print(*bindings, sep="\n")
        return 0
    try:
        asyncio.run(_apply_or_explain(settings, bindings))
    except (AclRefused, KafkaAccessRefused) as refused:
        print(f"acls: {refused}", file=sys.stderr)
        return 1
    except (KafkaError, OSError) as unreachable:
        bootstrap = redact_uri_credentials(settings.kafka_bootstrap_servers)
        print(
            f"acls: cannot reach Kafka at {bootstrap} ({redact_uri_credentials(str(unreachable))})",
            file=sys.stderr,
        )
        return 3
    print(f"acls: {len(bindings)} applied on {settings.kafka_bootstrap_servers}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
