"""In-memory kept results and publisher for handler unit tests."""

from contracts.base import Message
from contracts.codec import EncodedRecord, decode
from contracts.llm import LLMCompleted, LLMFailed


class MemoryResults:
    def __init__(self) -> None:
        self.kept: dict[str, LLMCompleted | LLMFailed] = {}

    async def get(self, invocation_id: str) -> LLMCompleted | LLMFailed | None:
        return self.kept.get(invocation_id)

    async def keep(self, result: LLMCompleted | LLMFailed) -> LLMCompleted | LLMFailed:
        return self.kept.setdefault(result.invocation_id, result)


class RecordingPublisher:
    def __init__(self) -> None:
        self.records: list[tuple[str, EncodedRecord]] = []
        self.fail_with: Exception | None = None

    async def __call__(self, topic: str, record: EncodedRecord) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.records.append((topic, record))

    def messages(self, topic: str) -> list[Message]:
        return [decode(r.value, r.headers).message for t, r in self.records if t == topic]
