"""Tools as data: what a catalogue tool is (its name, description, JSON Schema of arguments,
where it runs, whether a call needs approval, whether a retry is harmless), and the one check of
a model's arguments against that schema.

The schemas are checked once, at start-up (a broken schema stops the service, like any catalogue
error); arguments are checked per call with the same validator (JSON Schema draft 2020-12).
"""

import re
from typing import Annotated, Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticSerializationError, to_json
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from contracts.limits import MAX_REASON_LENGTH
from contracts.tools import MCP_PREFIX, MCP_SERVER_NAME, RunsOn
from services.runtime.json_text import json_problem, parse_json
from services.runtime.unicode_text import encodable

ToolDescription = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_REASON_LENGTH)
]

NO_ARGUMENTS: dict[str, Any] = {"type": "object", "properties": {}}


class ToolSpec(BaseModel):
    """One tool of the catalogue (`[tools.<name>]`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    description: ToolDescription
    parameters: dict[str, Any] = Field(
        default_factory=lambda: dict(NO_ARGUMENTS),
        description="JSON Schema (draft 2020-12) of the arguments: an object schema.",
    )
    runs_on: RunsOn
    needs_approval: bool = Field(False, description="A call waits for ApproveToolCall first.")
    idempotent: bool = Field(False, description="Running a call twice is harmless (retries).")

    @field_validator("runs_on")
    @classmethod
    def _a_server_that_can_be_configured(cls, value: str) -> str:
        # `mcp:Search` or `mcp:a.b` passed RunsOn, but the MCP servers file refuses such a
        # server name: every call would be answered `unknown_server`, found at run time.
        server = value.removeprefix(MCP_PREFIX)
        if value.startswith(MCP_PREFIX) and re.fullmatch(MCP_SERVER_NAME, server) is None:
            raise ValueError(
                f"MCP server name {server!r}: lower-case letters, digits, - and _ "
                "(as in the MCP servers file)"
            )
        return value

    @field_validator("parameters")
    @classmethod
    def _an_object_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Serialised into every request of the agents granted the tool (as the codec does):
        # what cannot be (a lone surrogate escape in a JSON file) would fail each of those
        # requests after start-up, their turns never ending, so it is refused here.
        try:
            to_json(value)
        except PydanticSerializationError as exc:
            raise ValueError(f"cannot be sent: {exc}") from None
        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        if value.get("type") != "object":
            raise ValueError('must be an object schema ("type": "object"): arguments are named')
        if unresolved := _unresolvable_refs(value):
            # check_schema accepts any URI in a $ref; resolving happens per call, where it
            # raised: each call of the tool was dead-lettered and its turn never ended.
            raise ValueError(f"$ref {', '.join(unresolved)} cannot be resolved in the schema")
        return value


_NOT_SUBSCHEMAS = frozenset({"const", "enum", "default", "examples"})
"""Keywords whose values are data: a "$ref" key in them is no reference."""


def _unresolvable_refs(schema: dict[str, Any]) -> list[str]:
    """The `$ref`s of the schema that point nowhere in it (a missing `$defs` entry; another
    document, which is never fetched). A subschema with its own `$id` resolves against that
    base instead: it is left to the per-call check (`argument_problem`)."""
    resolver = Registry().resolver_with_root(DRAFT202012.create_resource(schema))
    unresolved: list[str] = []

    def walk(node: object, root: bool) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, False)
        if not isinstance(node, dict) or (not root and "$id" in node):
            return
        ref = node.get("$ref")
        if isinstance(ref, str):
            try:
                resolver.lookup(ref)
            except Unresolvable:
                unresolved.append(repr(ref))
        for key, child in node.items():
            if key not in _NOT_SUBSCHEMAS:
                walk(child, False)

    walk(schema, True)
    return unresolved


def argument_problem(spec: ToolSpec, raw: str) -> str | None:
    """Why the model's arguments cannot be used for this tool; None when they can."""
    try:
        arguments = parse_json(raw) if raw.strip() else {}
    except ValueError as exc:  # not JSON (json_text.parse_json)
        return f"invalid arguments: not JSON ({json_problem(exc)})"
    try:
        error = next(iter(Draft202012Validator(spec.parameters).iter_errors(arguments)), None)
    except Unresolvable as exc:
        # A $ref start-up could not check (under a nested $id): the call is refused, for the
        # model to read, instead of the exception dead-lettering the result (a turn never ending).
        return f"the tool's schema cannot be used: {exc}"[:1_000]
    if error is None:
        return None
    # The path names the model's own keys, decoded JSON that may hold a lone surrogate.
    where = encodable("/".join(str(part) for part in error.absolute_path))
    return f"invalid arguments{f' at {where}' if where else ''}: {error.message}"[:1_000]
