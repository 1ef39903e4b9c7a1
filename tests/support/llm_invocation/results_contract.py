"""What every store of kept LLM results must do, as tests: subclassed once per implementation.

`TestMemoryResults` (tests/unit) runs it against the fake the handler tests use,
`TestMongoKeptResults` (tests/integration) against `KeptResults` on the Mongo-compatible server
(eventsourcing's `ProcessRecorderTestCase` pattern). A subclass provides the `results` fixture.
"""

from contracts.base import derive_id
from contracts.llm import LLMCompleted, LLMFailed
from services.llm_invocation.handler import ResultKeeper
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
