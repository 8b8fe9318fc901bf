"""Leases over the state port, on the SQLite store with an injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from local.state import SqliteStateStore
from shared.state.lease import LEASES_PARTITION, Lease, acquire, release, renew
from shared.state.ports import StateError

MINUTE = timedelta(minutes=1)
START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStateStore]:
    opened = SqliteStateStore(tmp_path / "state.sqlite3")
    yield opened
    await opened.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_acquire_a_free_lease_records_owner_and_expiry(
    store: SqliteStateStore, clock: Clock
) -> None:
    lease = await acquire(store, "sweep-abc123", "host-a", MINUTE, clock)
    assert lease is not None
    assert (lease.name, lease.owner, lease.expires_at) == ("sweep-abc123", "host-a", START + MINUTE)
    entity = await store.get(LEASES_PARTITION, "sweep-abc123")
    assert entity == lease.entity
    assert entity.value == {"owner": "host-a", "expires_at": (START + MINUTE).isoformat()}


async def test_a_held_lease_is_refused_until_it_expires(
    store: SqliteStateStore, clock: Clock
) -> None:
    held = await acquire(store, "sweep-abc123", "host-a", MINUTE, clock)
    assert held is not None
    clock.advance(MINUTE - timedelta(seconds=1))
    assert await acquire(store, "sweep-abc123", "host-b", MINUTE, clock) is None
    clock.advance(timedelta(seconds=1))
    assert held.expired(clock())
    taken = await acquire(store, "sweep-abc123", "host-b", MINUTE, clock)
    assert taken is not None
    assert (taken.owner, taken.expires_at) == ("host-b", clock() + MINUTE)
    assert await acquire(store, "sweep-abc123", "host-a", MINUTE, clock) is None


async def test_leases_are_independent_by_name(store: SqliteStateStore, clock: Clock) -> None:
    assert await acquire(store, "sweep-abc123", "host-a", MINUTE, clock) is not None
    assert await acquire(store, "sweep-def456", "host-b", MINUTE, clock) is not None


async def test_the_holder_acquiring_again_extends_its_lease(
    store: SqliteStateStore, clock: Clock
) -> None:
    first = await acquire(store, "sweep-abc123", "host-a", MINUTE, clock)
    clock.advance(timedelta(seconds=30))
    again = await acquire(store, "sweep-abc123", "host-a", MINUTE, clock)
    assert first is not None
    assert again is not None
    assert again.expires_at == clock() + MINUTE


async def test_two_owners_racing_for_a_free_lease_one_wins(
    store: SqliteStateStore, tmp_path: Path, clock: Clock
) -> None:
    other = SqliteStateStore(tmp_path / "state.sqlite3")  # another process's connection
    try:
        results = await asyncio.gather(
            *(
                acquire(s, "sweep-abc123", f"host-{i}", MINUTE, clock)
                for i, s in enumerate([store, other] * 4)
            )
        )
    finally:
        await other.close()
    won = [lease for lease in results if lease is not None]
    assert len(won) == 1
    entity = await store.get(LEASES_PARTITION, "sweep-abc123")
    assert entity is not None
    assert entity.value["owner"] == won[0].owner


async def test_two_owners_racing_for_an_expired_lease_one_wins(
    store: SqliteStateStore, tmp_path: Path, clock: Clock
) -> None:
    assert await acquire(store, "sweep-abc123", "host-old", MINUTE, clock) is not None
    clock.advance(2 * MINUTE)
    other = SqliteStateStore(tmp_path / "state.sqlite3")
    try:
        results = await asyncio.gather(
            *(
                acquire(s, "sweep-abc123", f"host-{i}", MINUTE, clock)
                for i, s in enumerate([store, other] * 4)
            )
        )
    finally:
        await other.close()
    won = [lease for lease in results if lease is not None]
    assert len(won) == 1
    assert won[0].owner != "host-old"


async def test_renew_extends_a_held_lease(store: SqliteStateStore, clock: Clock) -> None:
    lease = await acquire(store, "sweep-abc123", "host-a", MINUTE, clock)
    assert lease is not None
    clock.advance(timedelta(seconds=50))
    renewed = await renew(store, lease, MINUTE, clock)
    assert renewed is not None
    assert renewed.expires_at == clock() + MINUTE
    clock.advance(timedelta(seconds=30))  # past the first expiry, within the renewed one
    assert await acquire(store, "sweep-abc123", "host-b", MINUTE, clock) is None
    assert await renew(store, lease, MINUTE, clock) is None  # the old copy is stale


async def test_renew_after_the_lease_was_taken_over_is_refused(
    store: SqliteStateStore, clock: Clock
) -> None:
    lost = await acquire(store, "sweep-abc123", "host-a", MINUTE, clock)
    assert lost is not None
    clock.advance(2 * MINUTE)  # host-a stalled past its expiry
    taken = await acquire(store, "sweep-abc123", "host-b", MINUTE, clock)
    assert taken is not None
    assert await renew(store, lost, MINUTE, clock) is None
    entity = await store.get(LEASES_PARTITION, "sweep-abc123")
    assert entity is not None
    assert entity.value["owner"] == "host-b"


async def test_renew_after_expiry_succeeds_when_nobody_took_it(
    store: SqliteStateStore, clock: Clock
) -> None:
    lease = await acquire(store, "sweep-abc123", "host-a", MINUTE, clock)
    assert lease is not None
    clock.advance(2 * MINUTE)
    renewed = await renew(store, lease, MINUTE, clock)
    assert renewed is not None
    assert renewed.expires_at == clock() + MINUTE


async def test_release_frees_the_lease(store: SqliteStateStore, clock: Clock) -> None:
    lease = await acquire(store, "sweep-abc123", "host-a", MINUTE, clock)
    assert lease is not None
    await release(store, lease)
    assert await store.get(LEASES_PARTITION, "sweep-abc123") is None
    await release(store, lease)  # already gone: nothing to do
    assert await renew(store, lease, MINUTE, clock) is None
    assert await acquire(store, "sweep-abc123", "host-b", MINUTE, clock) is not None


async def test_release_after_loss_leaves_the_new_holder_alone(
    store: SqliteStateStore, clock: Clock
) -> None:
    lost = await acquire(store, "sweep-abc123", "host-a", MINUTE, clock)
    assert lost is not None
    clock.advance(2 * MINUTE)
    taken = await acquire(store, "sweep-abc123", "host-b", MINUTE, clock)
    assert taken is not None
    await release(store, lost)
    assert await store.get(LEASES_PARTITION, "sweep-abc123") == taken.entity


async def test_an_unreadable_lease_entity_counts_as_free(
    store: SqliteStateStore, clock: Clock
) -> None:
    await store.upsert(LEASES_PARTITION, "sweep-abc123", {"owner": 7})
    lease = await acquire(store, "sweep-abc123", "host-a", MINUTE, clock)
    assert lease is not None
    assert lease.owner == "host-a"


async def test_bad_arguments_are_refused(store: SqliteStateStore, clock: Clock) -> None:
    with pytest.raises(ValueError, match="positive"):
        await acquire(store, "sweep-abc123", "host-a", timedelta(0), clock)
    with pytest.raises(ValueError, match="owner"):
        await acquire(store, "sweep-abc123", "", MINUTE, clock)
    with pytest.raises(ValueError, match="aware"):
        await acquire(store, "sweep-abc123", "host-a", MINUTE, lambda: datetime(2026, 11, 1))
    with pytest.raises(ValueError, match="must not contain"):
        await acquire(store, "sweep/abc123", "host-a", MINUTE, clock)


async def test_store_failures_are_not_mistaken_for_a_lost_race(
    store: SqliteStateStore, clock: Clock
) -> None:
    await store.close()
    with pytest.raises(StateError):
        await acquire(store, "sweep-abc123", "host-a", MINUTE, clock)


def test_a_lease_knows_when_it_expires() -> None:
    from shared.state.ports import Entity

    lease = Lease("n", "o", START, Entity(LEASES_PARTITION, "n", {}, "1"))
    assert not lease.expired(START - timedelta(microseconds=1))
    assert lease.expired(START)
