"""CloudEvents 1.0 Kafka protocol binding: the headers every record carries.

Binary mode (all topics but `audit`): attributes are `ce_`-prefixed headers, the body is the
JSON of the model. Structured mode (`audit`): the whole CloudEvent is the JSON body.
Extension attributes: `correlationid` (the upstream command that began the chain),
`causationid` (the message that directly caused this one). W3C `traceparent` travels beside.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from contracts.limits import MAX_ID_LENGTH

SPEC_VERSION: Final = "1.0"
JSON_CONTENT_TYPE: Final = "application/json"
STRUCTURED_CONTENT_TYPE: Final = "application/cloudevents+json"

H_ID: Final = "ce_id"
H_TYPE: Final = "ce_type"
H_SOURCE: Final = "ce_source"
H_SPECVERSION: Final = "ce_specversion"
H_TIME: Final = "ce_time"
H_SUBJECT: Final = "ce_subject"
H_CORRELATION_ID: Final = "ce_correlationid"
H_CAUSATION_ID: Final = "ce_causationid"
H_CONTENT_TYPE: Final = "content-type"
H_TRACEPARENT: Final = "traceparent"
H_TRACESTATE: Final = "tracestate"

REQUIRED_BINARY_HEADERS: Final = (H_ID, H_TYPE, H_SOURCE, H_SPECVERSION, H_SUBJECT)


@dataclass(frozen=True, slots=True)
class Envelope:
    """The CloudEvents context of one record, whatever the mode it travelled in."""

    id: str
    type: str
    source: str
    subject: str
    time: datetime | None
    correlation_id: str | None = None
    causation_id: str | None = None
    traceparent: str | None = None
    tracestate: str | None = None

    def chain_correlation_id(self, own_id: str) -> str:
        """The correlation id what this record causes carries: its `ce_correlationid` when it
        has one of an id's length (1 to 128 characters), else `own_id` — the record begins its own
        chain. A longer value is not carried on: it would ride on every record of the chain, and
        one near the record limit makes them unpublishable (contracts/README.md, the headers)."""
        correlation = self.correlation_id
        if correlation is not None and 0 < len(correlation) <= MAX_ID_LENGTH:
            return correlation
        return own_id
