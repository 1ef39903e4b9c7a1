"""In-memory kept results (with claims) and publisher for handler unit tests."""

from contracts.base import Message
from contracts.codec import EncodedRecord, decode
from contracts.llm import LLMCompleted, LLMFailed
from services.llm_invocation.result_store import ClaimState, Holder
from services.runtime import RetryableError


class MemoryResults:
    """The kept-results store in a dict; `fail_keeps` makes the next keeps fail like a Mongo
    outage, and `calls` records every operation."""

    def __init__(self) -> None:
        self.kept: dict[str, LLMCompleted | LLMFailed] = {}
        self.claims: dict[str, Holder] = {}
        self.fail_keeps = 0
        self.calls: list[str] = []

    async def get(self, invocation_id: str) -> LLMCompleted | LLMFailed | None:
        return self.kept.get(invocation_id)

    async def read_claim(self, invocation_id: str) -> ClaimState:
        self.calls.append("read_claim")
        return self.kept.get(invocation_id) or self.claims.get(invocation_id)

    async def claim(self, invocation_id: str, session_id: str, owner: str) -> ClaimState:
        self.calls.append("claim")
        state = await self.read_claim(invocation_id)
        if state is not None:
            return state
        self.claims[invocation_id] = Holder(owner)
        return self.claims[invocation_id]

    async def take_over(self, invocation_id: str, owner: str, seen: Holder | None) -> bool:
        self.calls.append("take_over")
        if invocation_id in self.kept or self.claims.get(invocation_id) != seen:
            return False
        self.claims[invocation_id] = Holder(owner)
        return True

    async def renew(self, invocation_id: str, owner: str) -> bool:
        self.calls.append("renew")
        held = self.claims.get(invocation_id)
        if held is None or held.owner != owner or invocation_id in self.kept:
            return False
        self.claims[invocation_id] = Holder(owner, held.beat + 1)
        return True

    async def release(self, invocation_id: str, owner: str) -> None:
        self.calls.append("release")
        held = self.claims.get(invocation_id)
        if held is not None and held.owner == owner:
            del self.claims[invocation_id]

    async def keep(self, result: LLMCompleted | LLMFailed) -> LLMCompleted | LLMFailed:
        self.calls.append("keep")
        if self.fail_keeps:
            self.fail_keeps -= 1
            raise RetryableError("MongoDB unavailable: scripted outage")
        self.claims.pop(result.invocation_id, None)
        return self.kept.setdefault(result.invocation_id, result)


class RecordingPublisher:
    """Records what is published; `fail_with` fails every publish, `fail_next` only that many
    (of `fail_topic`'s publishes, when it is set)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, EncodedRecord]] = []
        self.fail_with: Exception | None = None
        self.fail_next = 0
        self.fail_topic: str | None = None
        self.attempts = 0

    async def __call__(self, topic: str, record: EncodedRecord) -> None:
        self.attempts += 1
        if self.fail_with is not None:
            raise self.fail_with
        if self.fail_next and self.fail_topic in (None, topic):
            self.fail_next -= 1
            # What ServiceRuntime.publish raises while the broker is unavailable.
            raise RetryableError(f"broker unavailable for {topic}: scripted outage")
        self.records.append((topic, record))

    def messages(self, topic: str) -> list[Message]:
        return [decode(r.value, r.headers).message for t, r in self.records if t == topic]
