"""Leases over the state port: at most one holder of a name at a time, for a bounded time.

A lease is an entity in the `leases` partition, keyed by its name, holding its owner and when
it expires. `acquire` creates it when absent and takes it over (a replace with the ETag read)
when it has expired; two contenders race on the store's optimistic concurrency, and the loser
gets None. The holder `renew`s it before it expires and `release`s it when done. Time comes
from an injected clock, so that expiry is tested without waiting.

A lease bounds, it does not fence: a holder that stalls past its expiry may find the lease
taken (`renew` answers None) and must then stop. Choose a duration well above one step's time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from shared.state.ports import ConcurrencyError, Entity, StateStore

LEASES_PARTITION: Final = "leases"

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease as its holder last wrote it."""

    name: str
    owner: str
    expires_at: datetime
    entity: Entity

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


def _now(clock: Clock) -> datetime:
    now = clock()
    if now.tzinfo is None:
        raise ValueError("the lease clock must return an aware datetime")
    return now


def _checked(owner: str, duration: timedelta) -> None:
    if not owner:
        raise ValueError("a lease owner is a non-empty string")
    if duration <= timedelta(0):
        raise ValueError("a lease duration is positive")


def _value(owner: str, now: datetime, duration: timedelta) -> dict[str, str]:
    return {"owner": owner, "expires_at": (now + duration).isoformat()}


def _lease(entity: Entity) -> Lease | None:
    """The lease an entity records, or None if it records none (an unreadable one is free)."""
    owner = entity.value.get("owner")
    expires_at = entity.value.get("expires_at")
    if not isinstance(owner, str) or not isinstance(expires_at, str):
        return None
    try:
        expiry = datetime.fromisoformat(expires_at)
    except ValueError:
        return None
    if expiry.tzinfo is None:
        return None
    return Lease(entity.key, owner, expiry, entity)


async def acquire(
    store: StateStore, name: str, owner: str, duration: timedelta, clock: Clock
) -> Lease | None:
    """The lease `name` for `owner` until now + `duration`, or None if another owner holds it
    (or won the race for it). An owner acquiring a lease it still holds extends it."""
    _checked(owner, duration)
    now = _now(clock)
    value = _value(owner, now, duration)
    try:
        current = await store.get(LEASES_PARTITION, name)
        if current is None:
            entity = await store.create(LEASES_PARTITION, name, value)
        else:
            held = _lease(current)
            if held is not None and held.owner != owner and not held.expired(now):
                return None
            entity = await store.replace(current, value)
    except ConcurrencyError:
        return None
    return Lease(name, owner, now + duration, entity)


async def renew(store: StateStore, lease: Lease, duration: timedelta, clock: Clock) -> Lease | None:
    """The lease extended to now + `duration`, or None if it was lost (taken over after it
    expired, or released): the holder must then stop."""
    _checked(lease.owner, duration)
    now = _now(clock)
    try:
        entity = await store.replace(lease.entity, _value(lease.owner, now, duration))
    except ConcurrencyError:
        return None
    return Lease(lease.name, lease.owner, now + duration, entity)


async def release(store: StateStore, lease: Lease) -> None:
    """Gives the lease up; nothing to do if it is already gone or another owner has it."""
    try:
        await store.delete(lease.entity)
    except ConcurrencyError:
        return
