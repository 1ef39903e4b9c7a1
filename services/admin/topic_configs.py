"""Read a topic's configs and change single keys of it (Kafka's IncrementalAlterConfigs).

aiokafka 0.14's admin client only offers the legacy AlterConfigs, which replaces a topic's whole
dynamic config with the given set: an operator's `min.insync.replicas` or `max.message.bytes`
set by hand would be wiped on every provisioning run. IncrementalAlterConfigs (KIP-339, API key
44, every broker since 2.3) sets just the named keys. The request is declared here with
aiokafka's own protocol types and sent through the admin client's connection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Boolean, Int8, Int16, Int32, Schema, String

_INCREMENTAL_ALTER_CONFIGS = 44
_OPERATION_SET = 0


class IncrementalAlterConfigsResponse_v0(Response):  # type: ignore[misc]  # aiokafka is untyped
    API_KEY = _INCREMENTAL_ALTER_CONFIGS
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "responses",
            Array(
                ("error_code", Int16),
                ("error_message", String("utf-8")),
                ("resource_type", Int8),
                ("resource_name", String("utf-8")),
            ),
        ),
    )


class IncrementalAlterConfigsRequest_v0(RequestStruct):  # type: ignore[misc]  # aiokafka is untyped
    API_KEY = _INCREMENTAL_ALTER_CONFIGS
    API_VERSION = 0
    RESPONSE_TYPE = IncrementalAlterConfigsResponse_v0
    SCHEMA = Schema(
        (
            "resources",
            Array(
                ("resource_type", Int8),
                ("resource_name", String("utf-8")),
                (
                    "configs",
                    Array(
                        ("name", String("utf-8")),
                        ("config_operation", Int8),
                        ("value", String("utf-8")),
                    ),
                ),
            ),
        ),
        ("validate_only", Boolean),
    )


_Struct: TypeAlias = IncrementalAlterConfigsRequest_v0


class IncrementalAlterConfigsRequest(Request[_Struct]):  # type: ignore[misc]  # aiokafka is untyped
    API_KEY = _INCREMENTAL_ALTER_CONFIGS

    def __init__(self, topics: Mapping[str, Mapping[str, str]]) -> None:
        self._resources = [
            (
                int(ConfigResourceType.TOPIC),
                name,
                [(key, _OPERATION_SET, value) for key, value in configs.items()],
            )
            for name, configs in topics.items()
        ]

    def build(self, request_struct_class: type[_Struct]) -> _Struct:
        return request_struct_class(self._resources, False)


class ConfigChangeFailed(RuntimeError):
    """The broker refused to set a topic's config (unknown key, invalid value, no permission)."""


async def set_topic_configs(
    admin: AIOKafkaAdminClient, topics: Mapping[str, Mapping[str, str]]
) -> None:
    """Set the given keys of each topic, leaving every other key of it as it is."""
    if not topics:
        return
    # Topic configs may go to any broker; the admin client picks one it knows.
    response: Any = await admin._send_request(IncrementalAlterConfigsRequest(topics))
    failures = [
        f"{name}: {for_code(code).__name__} {message or ''}".rstrip()
        for code, message, _type, name in response.responses
        if code != 0
    ]
    if failures:
        raise ConfigChangeFailed("changing topic configs failed: " + "; ".join(failures))


async def topic_configs(
    admin: AIOKafkaAdminClient, name: str, keys: Sequence[str]
) -> dict[str, str | None]:
    """The current value of each of `keys` on topic `name` (broker defaults included)."""
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name, dict.fromkeys(keys))]
    )
    values: dict[str, str | None] = {}
    for response in responses:
        for resource in response.resources:
            entries: list[Any] = resource[4]
            for entry in entries:
                values[entry[0]] = entry[1]
    return values
