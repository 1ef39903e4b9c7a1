"""What a turn's records look like on the pipeline: mean value size per CloudEvent type and
token deltas per LLM call, read from the pipeline's own topics after its warm-up. The relay
writes records of these sizes, so the baseline moves the same bytes."""

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from aiokafka import AIOKafkaConsumer, TopicPartition

AUDIT_TYPE: Final = "audit.record.v1"
DELTA_TYPE: Final = "llm.token_delta.v1"


@dataclass
class RecordProfile:
    value_bytes: dict[str, int] = field(default_factory=dict)
    deltas: int = 1

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"value_bytes": self.value_bytes, "deltas": self.deltas}))

    @classmethod
    def load(cls, path: Path) -> "RecordProfile":
        data = json.loads(path.read_text())
        return cls(value_bytes=dict(data["value_bytes"]), deltas=int(data["deltas"]))


async def measure(
    bootstrap: str, partitions: list[TopicPartition], limit: int = 20_000
) -> RecordProfile:
    """Read every record of `partitions` (up to `limit`) from the beginning."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    sizes: dict[str, list[int]] = defaultdict(list)
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        seen = 0
        while remaining and seen < limit:
            batches = await consumer.getmany(timeout_ms=1_000, max_records=5_000)
            for tp, records in batches.items():
                for record in records:
                    seen += 1
                    sizes[_type_of(record.headers)].append(len(record.value or b""))
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    requests = len(sizes.get("llm.requested.v1", ())) or 1
    return RecordProfile(
        value_bytes={kind: sum(v) // len(v) for kind, v in sizes.items()},
        deltas=max(1, round(len(sizes.get(DELTA_TYPE, ())) / requests)),
    )


def _type_of(headers: object) -> str:
    for name, value in headers:  # type: ignore[attr-defined]
        if name == "ce_type":
            return bytes(value).decode()
    return AUDIT_TYPE
