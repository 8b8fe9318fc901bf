"""The state port: entities in partitions, with optimistic concurrency, and leases built on it.

An entity is a small JSON-able mapping addressed by (partition, key). Every write names the
ETag it read (or `create` for a new entity) and fails with `ConcurrencyError` when another
writer got there first; this is what makes one sweep per store safe when two timers fire or two
instances run (Azure Table Storage's ETag semantics; the SQLite adapter keeps a version counter).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


class StateError(Exception):
    """The state store failed or refused the request."""


class ConcurrencyError(StateError):
    """The entity changed (or appeared, or vanished) since it was read."""


@dataclass(frozen=True, slots=True)
class Entity:
    partition: str
    key: str
    value: Mapping[str, Any]
    etag: str


class StateStore(Protocol):
    async def get(self, partition: str, key: str) -> Entity | None: ...

    async def list(self, partition: str) -> list[Entity]: ...

    async def create(self, partition: str, key: str, value: Mapping[str, Any]) -> Entity:
        """Creates the entity; ConcurrencyError if it exists."""
        ...

    async def replace(self, entity: Entity, value: Mapping[str, Any]) -> Entity:
        """Replaces the entity if it still has `entity.etag`; ConcurrencyError otherwise."""
        ...

    async def upsert(self, partition: str, key: str, value: Mapping[str, Any]) -> Entity:
        """Writes the entity whatever its state (last writer wins): for reports, not for
        anything two writers may race on."""
        ...

    async def delete(self, entity: Entity) -> None:
        """Deletes the entity if it still has `entity.etag`; ConcurrencyError otherwise."""
        ...

    async def close(self) -> None: ...
