"""External commands bound to their publisher: which source may act for which tenant.

A command on `commands` names its publisher in the CloudEvents `source` (`ce_source`) and the
tenant it acts for in its body. Kafka does not tell a consumer which principal produced a
record, so the ACLs (deploy/kafka/acls.toml) decide who may publish commands at all, and this
map decides for which tenants each source may act:

    AGENT_RUNTIME_COMMAND_SOURCES='{"crm": {"tenants": ["acme", "globex"]},
                                    "gateway": {"tenants": ["*"], "hmac_key_file": "/run/secrets/gw"}}'

`"*"` is for a publisher that authenticates its own callers and publishes for their tenant
(the HTTP gateway). A `source` is only a claim; a source with an HMAC key must prove it with a
`signature` header, `hmac-sha256=<hex>` of the record value under that key (contracts/signature.py), so a principal
that may write `commands` cannot pass itself off as a source it does not hold the key of.
Unset (the default), nothing is bound: every source may act for every tenant (local use).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Self

from pydantic import BaseModel, ConfigDict, Field, FilePath, SecretStr, model_validator

from contracts.session_events import RejectionReason
from contracts.signature import SIGNATURE_HEADER, signature_matches
from services.runtime.command_signing import signing_key

ANY_TENANT: Final = "*"


class CommandSource(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tenants: frozenset[str] = Field(min_length=1, description='Tenant ids, or "*" for any.')
    hmac_key: SecretStr | None = None
    hmac_key_file: FilePath | None = Field(None, description="A mounted file holding the key.")

    @model_validator(mode="after")
    def _one_key(self) -> Self:
        if self.hmac_key is not None and self.hmac_key_file is not None:
            raise ValueError("set hmac_key or hmac_key_file, not both")
        self.key()  # an empty or unreadable key stops the service here, as a bad setting
        return self

    def key(self) -> bytes | None:
        return signing_key(self.hmac_key, self.hmac_key_file)


@dataclass(frozen=True, slots=True)
class PublisherRefusal:
    reason: RejectionReason
    detail: str


class CommandSources:
    """The allowed-tenants map; `None` = not enforced."""

    def __init__(self, sources: Mapping[str, CommandSource] | None) -> None:
        self._sources = dict(sources) if sources is not None else None
        # Read once: a key file is mounted before the process starts.
        self._keys = {name: s.key() for name, s in (sources or {}).items()}

    @property
    def enforced(self) -> bool:
        return self._sources is not None

    def refusal(
        self, source: str, tenant_id: str, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> PublisherRefusal | None:
        """Why `source` may not publish this command for `tenant_id`; None when it may."""
        if self._sources is None:
            return None
        bound = self._sources.get(source)
        if bound is None:
            return PublisherRefusal(
                RejectionReason.TENANT_NOT_ALLOWED, f"source {_shown(source)} may act for no tenant"
            )
        key = self._keys[source]
        if key is not None:
            given = [v for name, v in headers if name == SIGNATURE_HEADER]
            if len(given) != 1 or not signature_matches(given[0], value, key):
                return PublisherRefusal(
                    RejectionReason.SIGNATURE_INVALID,
                    f"the {SIGNATURE_HEADER!r} header does not prove source {_shown(source)}",
                )
        if ANY_TENANT not in bound.tenants and tenant_id not in bound.tenants:
            return PublisherRefusal(
                RejectionReason.TENANT_NOT_ALLOWED,
                f"source {_shown(source)} may not act for tenant {tenant_id!r}",
            )
        return None


_SHOWN_SOURCE_LENGTH: Final = 200


def _shown(source: str) -> str:
    """The source as a refusal names it: `ce_source` is a header of any length, and the
    refusal's `detail` holds at most MAX_REASON_LENGTH characters (a longer one failed to build,
    and the command was dead-lettered instead of refused)."""
    if len(source) <= _SHOWN_SOURCE_LENGTH:
        return repr(source)
    return f"{source[:_SHOWN_SOURCE_LENGTH]!r}… ({len(source)} characters)"
