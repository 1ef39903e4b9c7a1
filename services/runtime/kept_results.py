"""Kept results: the claim, then the outcome, of each call by its id, in one MongoDB collection.
Users: llm-invocation (`llm_results`, by invocation id), tool-invocation (`tool_results`, by
tool-call id).

This is what makes a redelivered request free: the handler claims the call's id here before
making the call. A kept result is republished instead of calling (and paying, or running a
tool) again; a claim held by another owner is waited for (`lease_claims.py`), so two owners of
the same request during a rebalance do not both call. The first result kept under an id wins,
so owners that raced anyway publish the same result.

One document per call: `{_id, session_id, claim: {owner, beat}, kept: false, kept_at}` while
claimed, then `{_id, session_id, outcome, result, kept: true, kept_at}` once kept. Every
transition is one atomic single-document write (insert, conditional update, upsert): no
transactions, no TTL index and no change stream, which the Mongo-compatible test server lacks.
Bounded by the retention job, by `kept_at` (the time of the claim, then of the result).

The keep is conditional on `{_id, kept: false}`, equality only, and a unique index on exactly
`(_id, kept)` exists: the Mongo-compatible local server serves a filter from an index only when
its keys are exactly the index's, and the keep's earlier filter (`result: {$exists: false}`)
scanned the whole collection there, a cost that grew with every call kept (3.8 ms per keep at
5,000 kept results, 0.6 ms by index; docs/performance.md). On MongoDB both forms are served by
`_id`; the index costs one more entry per write. Documents written before `kept` existed (a
claim of an older version) are kept with the earlier filter, once, when the keep collides.

The two writes of every call, its claim and its kept result, are group-committed
(services/runtime/write_batch.py): the claims of all handlers starting at once go in one
unordered `insertMany`, the results of all finishing at once in one unordered bulk of the same
conditional upserts. Each handler still learns its own outcome before it goes on, and the
rare collisions (a kept result, another owner's claim) are read back as before.
"""

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter
from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from contracts.base import utc_now
from services.runtime.errors import RetryableError
from services.runtime.mongo_errors import database_outage
from services.runtime.write_batch import WriteBatch

_NO_RESULT: Final = {"result": {"$exists": False}}
_NOT_KEPT: Final = {"kept": False}
_DUPLICATE_KEY: Final = 11000
R = TypeVar("R", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ResultIdentity:
    """Where a result is kept: the call's id, its session (erasure) and an outcome label."""

    call_id: str
    session_id: str
    outcome: str


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds the claim of an invocation; `beat` grows with every renewal of the lease."""

    owner: str
    beat: int = 0


class KeptResults(Generic[R]):
    """`claim` / `read_claim` answer a kept result, the claim's holder, or None: nobody holds
    it and nothing is kept."""

    def __init__(
        self,
        database: AsyncDatabase[dict[str, Any]],
        collection: str,
        *,
        adapter: TypeAdapter[R],
        identity: Callable[[R], ResultIdentity],
    ) -> None:
        self._results: AsyncCollection[dict[str, Any]] = database[collection]
        self._adapter = adapter
        self._identity = identity
        self._claims = WriteBatch(self._insert_claims, name=f"{collection}-claims")
        self._keeps: WriteBatch[R, R] = WriteBatch(self._keep_batch, name=f"{collection}-keeps")

    async def ensure_indexes(self) -> None:
        """Idempotent; run at start-up. The retention job deletes by `kept_at`; the keep's
        conditional upsert filters on exactly `(_id, kept)`."""
        async with _kept_results():
            await self._results.create_index([("kept_at", ASCENDING)], name="kept_at")
            await self._results.create_index(
                [("_id", ASCENDING), ("kept", ASCENDING)], name="keep_guard", unique=True
            )

    async def get(self, invocation_id: str) -> R | None:
        state = await self.read_claim(invocation_id)
        return None if state is None or isinstance(state, Holder) else state

    async def read_claim(self, invocation_id: str) -> R | Holder | None:
        async with _kept_results():
            document = await self._results.find_one({"_id": invocation_id})
        return None if document is None else self._state(document)

    async def claim(self, invocation_id: str, session_id: str, owner: str) -> R | Holder | None:
        """Claim the invocation for `owner` unless a result is kept or someone holds it.

        Returns `Holder(owner)` when the claim is ours, else the kept result or the holder."""
        for _ in range(3):
            document = {
                "_id": invocation_id,
                "session_id": session_id,
                "claim": {"owner": owner, "beat": 0},
                "kept": False,
                "kept_at": utc_now(),
            }
            if await self._claims.submit(document):
                return Holder(owner)
            state = await self.read_claim(invocation_id)
            if state is not None:
                return state
            if await self.take_over(invocation_id, owner, None):  # released by its last owner
                return Holder(owner)
        raise RetryableError(f"claim of invocation {invocation_id} is contended")

    async def take_over(self, invocation_id: str, owner: str, seen: Holder | None) -> bool:
        """Claim for `owner` if the claim is still exactly `seen` (None: released)."""
        held: dict[str, Any] = (
            {"claim": {"$exists": False}}
            if seen is None
            else {"claim.owner": seen.owner, "claim.beat": seen.beat}
        )
        async with _kept_results():
            outcome = await self._results.update_one(
                {"_id": invocation_id, **_NO_RESULT, **held},
                {"$set": {"claim": {"owner": owner, "beat": 0}, **_NOT_KEPT}},
            )
        return outcome.modified_count == 1

    async def renew(self, invocation_id: str, owner: str) -> bool:
        """One beat of `owner`'s lease; False when the claim is no longer its own."""
        async with _kept_results():
            outcome = await self._results.update_one(
                {"_id": invocation_id, "claim.owner": owner, **_NO_RESULT},
                {"$inc": {"claim.beat": 1}},
            )
        return outcome.matched_count == 1

    async def release(self, invocation_id: str, owner: str) -> None:
        """Give the claim up without a result, so the next owner need not wait for the lease."""
        async with _kept_results():
            await self._results.update_one(
                {"_id": invocation_id, "claim.owner": owner, **_NO_RESULT},
                {"$unset": {"claim": ""}},
            )

    async def keep(self, result: R) -> R:
        """Keep `result` unless one is kept already; returns the one that is kept.

        Whoever holds the claim: a finished call is worth keeping even if its owner lost the
        lease meanwhile (the first result wins either way)."""
        return await self._keeps.submit(result)

    async def _insert_claims(self, documents: list[dict[str, Any]]) -> list[bool | Exception]:
        """Insert each claim document unless its id exists: True when inserted."""
        inserted: list[bool | Exception] = [True] * len(documents)
        written = self._results.insert_many(documents, ordered=False)
        for index, error in await _write_errors(written):
            inserted[index] = False if error.get("code") == _DUPLICATE_KEY else _refused(error)
        return inserted

    async def _keep_batch(self, results: list[R]) -> list[R | Exception]:
        kept_at = utc_now()
        identities = [self._identity(result) for result in results]
        updates = [
            UpdateOne(
                {"_id": identity.call_id, **_NOT_KEPT},
                self._kept(result, identity, kept_at),
                upsert=True,
            )
            for result, identity in zip(results, identities, strict=True)
        ]
        kept: list[R | Exception] = list(results)
        collided: dict[int, str] = {}
        written = self._results.bulk_write(updates, ordered=False)
        for index, error in await _write_errors(written):
            # A duplicate key: a result is kept already, so the upsert's insert collided.
            if error.get("code") == _DUPLICATE_KEY:
                collided[index] = identities[index].call_id
            else:
                kept[index] = _refused(error)
        if collided:
            async with _kept_results():
                cursor = self._results.find({"_id": {"$in": list(set(collided.values()))}})
                documents = {d["_id"]: d for d in await cursor.to_list(None)}
            for index, call_id in collided.items():
                state = self._state(documents[call_id]) if call_id in documents else None
                if isinstance(state, Holder) and "kept" not in documents[call_id]:
                    kept[index] = await self._keep_over_older_claim(
                        results[index], identities[index], kept_at
                    )
                    continue
                kept[index] = (
                    state
                    if state is not None and not isinstance(state, Holder)
                    # deleted by retention between the two calls: keeping ours again will do
                    else RetryableError(f"kept result {call_id} vanished")
                )
        return kept

    async def _keep_over_older_claim(
        self, result: R, identity: ResultIdentity, kept_at: datetime
    ) -> R | Exception:
        """A claim written before `kept` existed: keep by the earlier filter (a scan on the
        local server, once per such claim), then answer what is kept."""
        async with _kept_results():
            await self._results.update_one(
                {"_id": identity.call_id, **_NO_RESULT}, self._kept(result, identity, kept_at)
            )
        state = await self.read_claim(identity.call_id)
        if state is None or isinstance(state, Holder):
            return RetryableError(f"kept result {identity.call_id} vanished")
        return state

    @staticmethod
    def _kept(result: R, identity: ResultIdentity, kept_at: datetime) -> dict[str, Any]:
        return {
            "$set": {
                "session_id": identity.session_id,
                "outcome": identity.outcome,
                "result": result.model_dump(mode="json"),
                "kept": True,
                "kept_at": kept_at,
            },
            "$unset": {"claim": ""},
        }

    async def delete_session(self, session_id: str) -> int:
        """Erasure (EraseSession): every claim and kept result of the session's calls."""
        async with _kept_results():
            outcome = await self._results.delete_many({"session_id": session_id})
        return outcome.deleted_count

    async def delete_kept_before(self, cutoff: datetime) -> int:
        async with _kept_results():
            outcome = await self._results.delete_many({"kept_at": {"$lt": cutoff}})
        return outcome.deleted_count

    def _state(self, document: dict[str, Any]) -> R | Holder | None:
        if "result" in document:
            return self._adapter.validate_python(document["result"])
        claim = document.get("claim")
        if not isinstance(claim, dict):
            return None
        return Holder(str(claim.get("owner")), int(claim.get("beat", 0)))


async def _write_errors(write: Awaitable[object]) -> list[tuple[int, dict[str, Any]]]:
    """Run an unordered bulk write; the index and error of each statement that failed."""
    try:
        async with _kept_results():
            await write
    except BulkWriteError as exc:
        errors: list[dict[str, Any]] = exc.details.get("writeErrors", [])
        if not errors:  # only a write concern error: nothing known to be durable
            raise RetryableError(f"kept results write not acknowledged: {exc}") from exc
        return [(int(error["index"]), error) for error in errors]
    return []


def _refused(error: dict[str, Any]) -> Exception:
    return ValueError(f"kept results refused the write: {error}")


def _kept_results() -> AbstractAsyncContextManager[None]:
    return database_outage("kept results (MongoDB)")
