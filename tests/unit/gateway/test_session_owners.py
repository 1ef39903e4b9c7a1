"""The stream opens' session → tenant map: found owners remembered for a while, nothing else."""

import pytest

from services.gateway.session_owners import SessionOwners

pytestmark = pytest.mark.unit


class Directory:
    """The sessions that exist, by (tenant, session); counts the reads."""

    def __init__(self, *owned: tuple[str, str]) -> None:
        self.owned = set(owned)
        self.reads = 0

    async def exists(self, tenant_id: str, session_id: str) -> bool:
        self.reads += 1
        return (tenant_id, session_id) in self.owned


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_found_owner_is_remembered_for_its_tenant_and_against_others() -> None:
    directory = Directory(("a", "s-1"))
    owners = SessionOwners(directory, ttl_s=30, max_sessions=10)
    assert await owners.owns("a", "s-1")
    assert await owners.owns("a", "s-1")
    assert not await owners.owns("b", "s-1")  # another tenant: the 404 of a missing session
    assert directory.reads == 1


async def test_a_missing_session_is_read_every_time_so_a_new_one_is_found_at_once() -> None:
    directory = Directory()
    owners = SessionOwners(directory, ttl_s=30, max_sessions=10)
    assert not await owners.owns("a", "s-1")
    directory.owned.add(("a", "s-1"))  # created just now
    assert await owners.owns("a", "s-1")
    assert directory.reads == 2


async def test_an_owner_is_read_again_after_the_ttl() -> None:
    directory, clock = Directory(("a", "s-1")), Clock()
    owners = SessionOwners(directory, ttl_s=30, max_sessions=10, clock=clock)
    assert await owners.owns("a", "s-1")
    clock.now = 31.0
    directory.owned.clear()  # purged by the retention job
    assert not await owners.owns("a", "s-1")
    assert directory.reads == 2


async def test_the_map_is_bounded() -> None:
    directory = Directory(*(("a", f"s-{i}") for i in range(5)))
    owners = SessionOwners(directory, ttl_s=30, max_sessions=2)
    for i in range(5):
        assert await owners.owns("a", f"s-{i}")
    assert await owners.owns("a", "s-0")  # evicted: read again
    assert directory.reads == 6
