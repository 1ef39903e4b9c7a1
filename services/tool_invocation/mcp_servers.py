"""The MCP servers tool-invocation may call: a TOML file, validated at start.

The catalogue only names a server (`runs_on = "mcp:<name>"`); how to reach it is deployment
configuration, here. The file's path comes from `AGENT_RUNTIME_MCP_SERVERS_FILE`. One table per
server, either a stdio command (a subprocess speaking MCP on stdin/stdout, started once and kept
running) or a streamable HTTP URL:

    [servers.files]
    command = "python"
    args = ["-m", "my_mcp_server"]
    env = { ROOT = "/srv/files" }
    call_timeout_s = 30

    [servers.search]
    url = "http://search-mcp:8000/mcp"
    headers = { Authorization = "Bearer ..." }   # or headers_env = { Authorization = "SEARCH_MCP_AUTH" }
    call_timeout_s = 10
"""

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Self

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from contracts.tools import MCP_SERVER_NAME
from services.runtime.settings_errors import ConfigFileError, validation_problems
from services.runtime.toml_text import parse_toml

SERVER_NAME = re.compile(MCP_SERVER_NAME)
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
"""An HTTP header name (RFC 9110 token)."""
_HTTP_URL: TypeAdapter[AnyHttpUrl] = TypeAdapter(AnyHttpUrl)
# Strict: `call_timeout_s = true` or `= "5"` is a mistake in a TOML file, not a number.
Seconds = Annotated[float, Field(gt=0, strict=True)]


class McpServer(BaseModel):
    """How to reach one MCP server, and how long its calls may take."""

    # `call_timeout_s = inf` would pass gt=0: a connect that never gives up.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(pattern=SERVER_NAME.pattern)
    command: str | None = Field(None, min_length=1, description="stdio: the executable.")
    args: tuple[str, ...] = ()
    env: dict[str, str] = Field(
        default_factory=dict, description="stdio: variables added to a minimal safe environment."
    )
    cwd: str | None = None
    url: str | None = Field(None, pattern=r"^https?://", description="streamable HTTP endpoint.")
    headers: dict[str, str] = Field(
        default_factory=dict, description="HTTP: sent with each request."
    )
    headers_env: dict[str, str] = Field(
        default_factory=dict,
        description="HTTP: header name -> environment variable holding its value (secrets stay "
        "out of the file).",
    )
    call_timeout_s: Seconds = Field(
        30.0, description="One attempt of one tool call; the call fails `timeout` past it."
    )
    connect_timeout_s: Seconds = Field(
        15.0, description="Starting the process or opening the session, and the handshake."
    )

    @field_validator("url")
    @classmethod
    def _a_url_that_can_be_reached(cls, value: str | None) -> str | None:
        # `http://` or `http://a b` passed the scheme pattern: every call then failed
        # `server_unavailable` at run time instead of the file at start.
        if value is not None:
            _HTTP_URL.validate_python(value)
        return value

    @field_validator("headers", "headers_env")
    @classmethod
    def _headers_that_can_be_sent(cls, value: dict[str, str]) -> dict[str, str]:
        # An invalid header name or a line break in a value fails every request at run time
        # (and a line break would be a header injection where a client let it through).
        for name, header_value in value.items():
            if HEADER_NAME.fullmatch(name) is None:
                raise ValueError(f"{name!r} is not an HTTP header name")
            if any(c in header_value for c in "\r\n\0"):
                raise ValueError(f"header {name}: a line break or NUL in its value")
        return value

    @model_validator(mode="after")
    def _one_transport(self) -> Self:
        if (self.command is None) == (self.url is None):
            raise ValueError(f"MCP server {self.name!r}: give exactly one of `command` or `url`")
        if self.url is None and (self.headers or self.headers_env):
            raise ValueError(f"MCP server {self.name!r}: headers apply to `url` servers only")
        if self.command is None and (self.args or self.env or self.cwd):
            raise ValueError(f"MCP server {self.name!r}: args/env/cwd apply to `command` servers")
        return self

    @property
    def transport(self) -> str:
        return "stdio" if self.command is not None else "streamable-http"

    def http_headers(self) -> dict[str, str]:
        """The headers, with those named by `headers_env` read from the environment now."""
        headers = dict(self.headers)
        for header, variable in self.headers_env.items():
            value = os.environ.get(variable)
            if value is None:
                raise McpServersError(
                    f"MCP server {self.name!r}: header {header} needs ${variable}, which is unset"
                )
            headers[header] = value
        return headers

    def secret_values(self) -> tuple[str, ...]:
        """The values of `headers_env` as set now (the secrets of the file's servers), and the
        last word of each (`Bearer <token>`: a server quoting the credential quotes the token):
        masked in the server's failure messages, which a server can make quote its headers."""
        values: list[str] = []
        for variable in self.headers_env.values():
            value = os.environ.get(variable, "")
            values.extend((value, *value.split()[-1:]))
        return tuple(v for v in values if v)


class McpServersError(ConfigFileError):
    """The MCP servers file is missing, unreadable or invalid (the service refuses to start)."""


class McpServers(BaseModel):
    model_config = ConfigDict(frozen=True)

    servers: dict[str, McpServer] = Field(default_factory=dict)

    def get(self, name: str) -> McpServer | None:
        return self.servers.get(name)

    @classmethod
    def parse(cls, text: str, *, source: str = "<text>") -> "McpServers":
        try:
            document = parse_toml(text)
        except tomllib.TOMLDecodeError as error:
            raise McpServersError(f"{source}: not TOML: {error}") from None
        tables = document.get("servers", {})
        unknown = set(document) - {"servers"}
        if unknown or not isinstance(tables, dict):
            raise McpServersError(f"{source}: only [servers.<name>] tables are allowed")
        servers: dict[str, McpServer] = {}
        for name, table in tables.items():
            if not isinstance(table, dict):
                raise McpServersError(f"{source}: servers.{name} must be a table")
            try:
                servers[name] = McpServer.model_validate({**table, "name": name})
            except ValidationError as error:
                # Without the values: a header's or an environment variable's may be a secret.
                problems = "; ".join(validation_problems(error))
                raise McpServersError(f"{source}: servers.{name}: {problems}") from None
        return cls(servers=servers)

    @classmethod
    def load(cls, path: Path | None) -> "McpServers":
        """No file configured: no servers (every `mcp:` call then fails `unknown_server`)."""
        if path is None:
            return cls()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise McpServersError(f"MCP servers file {path}: {error.strerror}") from None
        servers = cls.parse(text, source=str(path))
        for server in servers.servers.values():
            if server.url is not None:
                # A header variable missing from the deployment is a bad configuration: refused
                # at start, not found by every call (each one retried as `server_unavailable`,
                # tripping the circuit). The values are read again per session (rotation).
                try:
                    server.http_headers()
                except McpServersError as error:
                    raise McpServersError(f"{path}: servers.{server.name}: {error}") from None
        return servers
