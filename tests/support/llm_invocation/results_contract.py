"""What every store of kept LLM results (claims, then results) must do, as tests: subclassed once per implementation.

`TestMemoryResults` (tests/unit) runs it against the fake the handler tests use,
`TestMongoKeptResults` (tests/integration) against `KeptResults` on the Mongo-compatible server
(eventsourcing's `ProcessRecorderTestCase` pattern). A subclass provides the `results` fixture.
"""

import asyncio

from contracts.base import derive_id
from contracts.llm import LLMCompleted, LLMFailed
from services.llm_invocation.handler import ResultKeeper
from services.llm_invocation.result_store import Holder
from tests.support.llm_invocation.requests import llm_request


def completed(turn_id: str, content: str = "an answer") -> LLMCompleted:
    request = llm_request(turn_id=turn_id)
    return LLMCompleted(
        id=derive_id("llm-result", request.invocation_id),
        session_id=request.session_id,
        tenant_id=request.tenant_id,
        invocation_id=request.invocation_id,
        turn_id=request.turn_id,
        step=request.step,
        agent=request.agent,
        content=content,
        provider="p",
        model="m",
        finish_reason="stop",
    )


def failed(turn_id: str) -> LLMFailed:
    request = llm_request(turn_id=turn_id)
    return LLMFailed(
        id=derive_id("llm-result", request.invocation_id),
        session_id=request.session_id,
        tenant_id=request.tenant_id,
        invocation_id=request.invocation_id,
        turn_id=request.turn_id,
        step=request.step,
        agent=request.agent,
        error_class="timeout",
        message="the provider did not answer in time",
        retryable=True,
    )


class KeptResultsContract:
    async def test_nothing_is_kept_for_an_unknown_invocation(self, results: ResultKeeper) -> None:
        assert await results.get(completed("turn-unknown").invocation_id) is None

    async def test_a_kept_completion_is_returned_as_it_was_kept(
        self, results: ResultKeeper
    ) -> None:
        result = completed("turn-1")

        assert await results.keep(result) == result
        assert await results.get(result.invocation_id) == result

    async def test_a_kept_failure_is_returned_as_it_was_kept(self, results: ResultKeeper) -> None:
        result = failed("turn-2")

        assert await results.keep(result) == result
        assert await results.get(result.invocation_id) == result

    async def test_the_first_result_kept_under_an_invocation_wins(
        self, results: ResultKeeper
    ) -> None:
        first = completed("turn-3", "first owner")

        await results.keep(first)
        assert await results.keep(completed("turn-3", "second owner")) == first
        assert await results.keep(failed("turn-3")) == first
        assert await results.get(first.invocation_id) == first

    async def test_results_of_different_invocations_are_kept_apart(
        self, results: ResultKeeper
    ) -> None:
        one, other = completed("turn-4", "one"), completed("turn-5", "other")

        await results.keep(one)
        await results.keep(other)

        assert await results.get(one.invocation_id) == one
        assert await results.get(other.invocation_id) == other

    async def test_one_owner_claims_an_invocation_and_a_renewal_moves_its_beat(
        self, results: ResultKeeper
    ) -> None:
        invocation = completed("turn-claim-1").invocation_id

        assert await results.claim(invocation, "s", "A") == Holder("A")
        assert await results.claim(invocation, "s", "B") == Holder("A")
        assert await results.renew(invocation, "A")
        assert not await results.renew(invocation, "B")
        assert await results.read_claim(invocation) == Holder("A", 1)
        assert await results.get(invocation) is None  # a claim is not a result

    async def test_a_claim_is_taken_over_only_as_it_was_seen(self, results: ResultKeeper) -> None:
        invocation = completed("turn-claim-2").invocation_id
        await results.claim(invocation, "s", "A")
        await results.renew(invocation, "A")

        assert not await results.take_over(invocation, "B", Holder("A", 0))  # renewed since
        assert await results.take_over(invocation, "B", Holder("A", 1))
        assert not await results.renew(invocation, "A")  # A lost it
        assert await results.read_claim(invocation) == Holder("B")

    async def test_a_released_claim_goes_to_the_next_owner_at_once(
        self, results: ResultKeeper
    ) -> None:
        invocation = completed("turn-claim-3").invocation_id
        await results.claim(invocation, "s", "A")
        await results.release(invocation, "B")  # not B's to release

        assert await results.read_claim(invocation) == Holder("A")
        await results.release(invocation, "A")
        assert await results.read_claim(invocation) is None
        assert await results.claim(invocation, "s", "B") == Holder("B")

    async def test_a_kept_result_ends_the_claim_whoever_holds_it(
        self, results: ResultKeeper
    ) -> None:
        result = completed("turn-claim-4", "from A, which lost its lease")
        await results.claim(result.invocation_id, "s", "A")
        await results.take_over(result.invocation_id, "B", Holder("A"))

        assert await results.keep(result) == result  # a finished call is kept all the same
        assert await results.read_claim(result.invocation_id) == result
        assert await results.claim(result.invocation_id, "s", "C") == result
        assert not await results.renew(result.invocation_id, "B")
        assert not await results.take_over(result.invocation_id, "C", Holder("B"))

    async def test_claims_and_results_made_at_once_keep_one_winner_per_invocation(
        self, results: ResultKeeper
    ) -> None:
        # Made concurrently, so the Mongo store writes them as one group-committed batch.
        one, other = completed("turn-batch-1", "one A"), completed("turn-batch-2", "other")
        claims = list(
            await asyncio.gather(
                results.claim(one.invocation_id, "s", "A"),
                results.claim(one.invocation_id, "s", "B"),
                results.claim(other.invocation_id, "s", "C"),
            )
        )
        assert claims == [Holder("A"), Holder("A"), Holder("C")]

        kept = list(
            await asyncio.gather(
                results.keep(one),
                results.keep(completed("turn-batch-1", "one B")),
                results.keep(other),
            )
        )
        assert kept == [one, one, other]
        assert await results.get(one.invocation_id) == one
        assert await results.get(other.invocation_id) == other
