"""External commands bound to their publisher: the allowed-tenants map per source, the optional
HMAC signature, and the refusal that is decided without reading the session."""

from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from contracts.codec import decode, encode
from contracts.limits import MAX_REASON_LENGTH
from contracts.session_events import CommandRejected, RejectionReason
from contracts.signature import SIGNATURE_HEADER, signature
from services.cli.session_client import command_record
from services.cli.settings import CliSettings
from services.gateway.settings import GatewaySettings
from services.runtime.record import Record
from services.session_commands.command_sources import CommandSource, CommandSources
from services.session_commands.domain.decider import refuse_publisher
from services.session_commands.handler import SessionCommandHandler
from tests.support.session_commands.memory_store import MemoryStore
from tests.support.session_commands.scenario import SESSION, T0, TENANT, create, submit
from tests.unit.session_commands.test_command_handling import COMMANDS, TOPICS, Published

pytestmark = pytest.mark.unit

KEY = b"gateway-key"
SOURCES = CommandSources(
    {
        "crm": CommandSource(tenants=frozenset({TENANT})),
        "gateway": CommandSource(tenants=frozenset({"*"}), hmac_key=SecretStr(KEY.decode())),
    }
)


def refusal(
    source: str, tenant: str, value: bytes = b"{}", headers: Sequence[tuple[str, bytes]] = ()
) -> str | None:
    refused = SOURCES.refusal(source, tenant, value, list(headers))
    return refused.reason.value if refused is not None else None


def test_a_source_acts_for_its_tenants_only() -> None:
    assert refusal("crm", TENANT) is None
    assert refusal("crm", "tenant-b") == "tenant_not_allowed"


def test_an_unknown_source_acts_for_no_tenant() -> None:
    assert refusal("someone", TENANT) == "tenant_not_allowed"


def test_a_source_with_a_key_must_sign() -> None:
    value = b'{"tenant_id": "any"}'
    signed = ((SIGNATURE_HEADER, signature(value, KEY)),)
    assert refusal("gateway", "any-tenant", value, signed) is None
    assert refusal("gateway", "any-tenant", value) == "signature_invalid"
    forged = ((SIGNATURE_HEADER, signature(value, b"guessed")),)
    assert refusal("gateway", "any-tenant", value, forged) == "signature_invalid"
    other_body = ((SIGNATURE_HEADER, signature(b"{}", KEY)),)
    assert refusal("gateway", "any-tenant", value, other_body) == "signature_invalid"


def test_the_signature_hex_may_be_upper_case() -> None:
    # RFC 4648's base16 is upper-case (and .NET's Convert.ToHexString writes it so): the same
    # digest in either case proves the source; another scheme name does not.
    value = b'{"tenant_id": "any"}'
    digest = signature(value, KEY).removeprefix(b"hmac-sha256=")
    upper = ((SIGNATURE_HEADER, b"hmac-sha256=" + digest.upper()),)
    assert refusal("gateway", "any-tenant", value, upper) is None
    other_scheme = ((SIGNATURE_HEADER, b"hmac-sha1=" + digest),)
    assert refusal("gateway", "any-tenant", value, other_scheme) == "signature_invalid"


def test_a_refusal_of_a_source_of_any_length_is_published() -> None:
    # `ce_source` is a header of any length; the refusal's detail names it, within its bound.
    command = submit(tenant_id="tenant-b")
    for source in ("s" * 5_000, "gateway"):
        refused = SOURCES.refusal(source, "tenant-b", b"{}", [])
        assert refused is not None
        (event,) = refuse_publisher(command, refused, now=T0).events
        assert isinstance(event, CommandRejected)
        assert len(event.detail) <= MAX_REASON_LENGTH


def test_the_key_may_come_from_a_mounted_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY + b"\n")
    sources = CommandSources(
        {"gw": CommandSource(tenants=frozenset({"*"}), hmac_key_file=key_file)}
    )
    value = b"{}"
    assert sources.refusal("gw", "t", value, [(SIGNATURE_HEADER, signature(value, KEY))]) is None


def test_not_enforced_when_unset() -> None:
    assert not CommandSources(None).enforced
    assert CommandSources(None).refusal("anyone", "any", b"", []) is None


def test_a_refused_publisher_gets_a_final_refusal_under_the_tenant_it_named() -> None:
    command = submit(tenant_id="tenant-b")
    refused = SOURCES.refusal("crm", "tenant-b", b"{}", [])
    assert refused is not None

    decision = refuse_publisher(command, refused, now=T0)

    (event,) = decision.events
    assert isinstance(event, CommandRejected)
    assert (event.reason, event.tenant_id) == (RejectionReason.TENANT_NOT_ALLOWED, "tenant-b")
    assert not decision.remember  # nothing of the session is read, nothing written


async def test_the_handler_refuses_before_reading_the_session() -> None:
    store, published = MemoryStore(), Published()
    handle = SessionCommandHandler(
        topics=TOPICS,
        repository=store,
        publish=published,
        clock=lambda: T0,
        span_traceparent=lambda: None,
        sources=SOURCES,
    )
    crm = encode(create(), source="crm")
    await handle(Record(COMMANDS, 0, 0, crm.key, crm.value, tuple(crm.headers)))
    foreign = encode(submit(tenant_id="tenant-b"), source="crm")
    store.load = None  # type: ignore[assignment,method-assign]  # must not be called

    await handle(Record(COMMANDS, 0, 1, foreign.key, foreign.value, tuple(foreign.headers)))

    rejected = decode(published.records[-1][1].value, published.records[-1][1].headers).message
    assert isinstance(rejected, CommandRejected)
    assert rejected.reason is RejectionReason.TENANT_NOT_ALLOWED
    assert rejected.session_id == SESSION


def test_the_cli_signs_what_it_publishes_when_it_has_a_key() -> None:
    unsigned = CliSettings(_env_file=None, cli_source="gateway")
    signed = CliSettings(
        _env_file=None, cli_source="gateway", cli_hmac_key=SecretStr("gateway-key")
    )
    command = create()

    for settings, verdict in ((unsigned, "signature_invalid"), (signed, None)):
        record = command_record(settings, command)
        refused = SOURCES.refusal("gateway", TENANT, record.value, record.headers)
        assert (refused.reason.value if refused else None) == verdict


def test_an_empty_key_is_refused_as_a_setting(tmp_path: Path) -> None:
    """Anyone can compute an HMAC under the empty key: a source "keyed" with it (an empty
    value, an empty mounted file) would be believed whoever published. Was accepted."""
    empty = tmp_path / "empty-key"
    empty.write_text("\n")
    with pytest.raises(ValidationError, match="empty"):
        CommandSource(tenants=frozenset({"*"}), hmac_key=SecretStr(""))
    with pytest.raises(ValidationError, match="empty"):
        CommandSource(tenants=frozenset({"*"}), hmac_key_file=empty)
    with pytest.raises(ValidationError, match="empty"):
        GatewaySettings(_env_file=None, gateway_hmac_key_file=empty)
    with pytest.raises(ValidationError, match="empty"):
        CliSettings(_env_file=None, cli_hmac_key_file=empty)
