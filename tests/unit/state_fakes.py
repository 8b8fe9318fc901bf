"""The StateStore port in memory, with ETags as Table Storage has them, for unit tests."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any

from shared.state.ports import ConcurrencyError, Entity


class MemoryState:
    def __init__(self) -> None:
        self.entities: dict[tuple[str, str], Entity] = {}
        self._versions = itertools.count(1)
        self.writes = 0

    def put(self, partition: str, key: str, value: Mapping[str, Any]) -> Entity:
        """Writes unconditionally (test set-up); values round-trip through JSON as stored."""
        self.writes += 1
        data = json.loads(json.dumps(dict(value)))
        entity = Entity(partition, key, data, str(next(self._versions)))
        self.entities[(partition, key)] = entity
        return entity

    def value(self, partition: str, key: str) -> dict[str, Any] | None:
        entity = self.entities.get((partition, key))
        return None if entity is None else dict(entity.value)

    async def get(self, partition: str, key: str) -> Entity | None:
        return self.entities.get((partition, key))

    async def list(self, partition: str) -> list[Entity]:
        return [e for (p, _), e in sorted(self.entities.items()) if p == partition]

    async def create(self, partition: str, key: str, value: Mapping[str, Any]) -> Entity:
        if (partition, key) in self.entities:
            raise ConcurrencyError(f"{partition}/{key} exists")
        return self.put(partition, key, value)

    async def replace(self, entity: Entity, value: Mapping[str, Any]) -> Entity:
        self._check(entity)
        return self.put(entity.partition, entity.key, value)

    async def upsert(self, partition: str, key: str, value: Mapping[str, Any]) -> Entity:
        return self.put(partition, key, value)

    async def delete(self, entity: Entity) -> None:
        self._check(entity)
        del self.entities[(entity.partition, entity.key)]

    async def close(self) -> None:
        return None

    def _check(self, entity: Entity) -> None:
        current = self.entities.get((entity.partition, entity.key))
        if current is None or current.etag != entity.etag:
            raise ConcurrencyError(f"{entity.partition}/{entity.key} changed")
