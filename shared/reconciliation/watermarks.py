"""Reconciliation watermarks in the state store: how far each stream of a store was swept.

Partition `watermarks`, key `<store_hash>.<stream>` (`orders`, `refunds`, `reverse`), value
`{"watermark": <ISO 8601>, "updated_at": <ISO 8601>}`. A watermark only moves forward, and only
after everything before it was processed (the sweep's rule), so a crash never loses an order: the
next sweep starts at the last watermark, less the overlap. Writes are conditional on the ETag
read; a sweep whose write finds the entity changed since it read it gives way to the other
writer (the webhook health check moves `orders` back after repairing a hook).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from shared.state.ports import ConcurrencyError, Entity, StateStore

log = logging.getLogger("connector.reconcile")

PARTITION: Final = "watermarks"


def watermark_key(store_hash: str, stream: str) -> str:
    return f"{store_hash}.{stream}"


def _read(entity: Entity | None) -> datetime | None:
    if entity is None:
        return None
    raw = entity.value.get("watermark")
    if not isinstance(raw, str):
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


@dataclass
class Watermarks:
    """One store's watermarks. Remembers the entities it read, to write them conditionally."""

    state: StateStore
    store_hash: str
    _entities: dict[str, Entity | None] = field(default_factory=dict, repr=False)
    _yielded: set[str] = field(default_factory=set, repr=False)

    async def load(self, stream: str) -> datetime | None:
        entity = await self.state.get(PARTITION, watermark_key(self.store_hash, stream))
        self._entities[stream] = entity
        return _read(entity)

    async def advance(self, stream: str, value: datetime, *, now: datetime) -> datetime | None:
        """Moves the watermark forward to `value`, unless it is already there or beyond;
        returns the watermark as stored.

        Under the sweep lease the only other writer is the webhook health check, which moves
        `orders` BACK (to when a repaired hook stopped delivering), or creates it earlier than
        the first sweep's lookback. So a write that finds the entity changed since it was read
        gives way: whatever the other writer left stands, and this sweep leaves the stream
        alone from then on, so that the next sweep reads again what the hook missed. Giving way
        only ever makes the next sweep read more, never less."""
        if value.tzinfo is None:
            raise ValueError("a watermark must be timezone-aware")
        key = watermark_key(self.store_hash, stream)
        if stream not in self._entities:
            await self.load(stream)
        current = self._entities[stream]
        stored = _read(current)
        if stream in self._yielded or (stored is not None and stored >= value):
            return stored
        document = {"watermark": value.isoformat(), "updated_at": now.isoformat()}
        try:
            if current is None:
                self._entities[stream] = await self.state.create(PARTITION, key, document)
            else:
                self._entities[stream] = await self.state.replace(current, document)
        except ConcurrencyError:
            theirs = await self.load(stream)
            if theirs is None or theirs < value:
                self._yielded.add(stream)
                log.info(
                    "watermark %s was changed during the sweep (now %s): left as it is",
                    key,
                    None if theirs is None else theirs.isoformat(),
                )
            return theirs
        return value
