"""The connector's API calls to each side, from the stand-ins' request logs.

Each stand-in keeps its latest 10,000 requests (`/__sim/requests`, oldest first), fewer than a
large demo makes, so the demo follows both logs: every second it reads the newest part (twice
what it found new the time before) and appends what came after the last records it had seen,
found by their run of the last `TAIL` records (paths carry order ids and row keys, so such a run
does not repeat). A log that moved on by more than the part read is read whole; one that moved
on by more than its capacity leaves a gap, which `gaps` counts.

Telling the connector's calls from the demo's: the Dataverse stand-in logs the caller's identity,
and the demo has its own (`CONNECTOR_IDENTITY` is the connector's). The store simulator logs no
caller, so the demo counts what it sends itself (`RequestCounter`) and takes that away, request
for request by method and path.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from local.demo.stack import CONNECTOR_IDENTITY, Stack

TAIL: Final = 32
MIN_WINDOW: Final = 500
POLL_SECONDS: Final = 1.0
_ID: Final = re.compile(r"(?<=/)\d+(?=/|$)|\([^)]*\)")

Key = tuple[Any, ...]


def _key(record: Mapping[str, Any]) -> Key:
    return tuple(record.get(name) for name in ("time", "method", "path", "query", "status"))


@dataclass
class LogFollower:
    http: httpx.AsyncClient
    records: list[dict[str, Any]] = field(default_factory=list)
    gaps: int = 0
    _tail: list[Key] = field(default_factory=list)
    _window: int = MIN_WINDOW  # twice what the last poll found new, at least MIN_WINDOW

    async def clear(self) -> None:
        (await self.http.delete("/__sim/requests")).raise_for_status()
        self._tail = []

    async def poll(self) -> None:
        rows = await self._read(self._window)
        new = self._after_tail(rows)
        if new is None and len(rows) >= self._window:
            rows = await self._read(None)
            new = self._after_tail(rows)
        if new is None:
            self.gaps += 1
            new = rows
        self.records += new
        self._window = max(MIN_WINDOW, 2 * len(new) + TAIL)
        if rows:
            self._tail = [_key(r) for r in rows[-TAIL:]]

    async def _read(self, limit: int | None) -> list[dict[str, Any]]:
        params = {} if limit is None else {"limit": str(limit)}
        response = await self.http.get("/__sim/requests", params=params)
        response.raise_for_status()
        rows: list[dict[str, Any]] = response.json()
        return rows

    def _after_tail(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        if not self._tail:
            return rows
        keys = [_key(r) for r in rows]
        size = len(self._tail)
        for start in range(len(keys) - size + 1):
            if keys[start : start + size] == self._tail:
                return rows[start + size :]
        return None


@dataclass
class Traffic:
    """Follows both logs while the demo runs; `stop()` reads them one last time."""

    stack: Stack
    bigcommerce: LogFollower = field(init=False)
    dataverse: LogFollower = field(init=False)
    _task: asyncio.Task[None] | None = None
    _demo_sent: Counter[tuple[str, str]] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.bigcommerce = LogFollower(self.stack.sim)
        self.dataverse = LogFollower(self.stack.dataverse_admin)

    async def start(self) -> None:
        """Forgets what came before (the set-up), then follows."""
        await self.bigcommerce.clear()
        await self.dataverse.clear()
        self.stack.counter.sent.clear()
        self._task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            await self.bigcommerce.poll()
            await self.dataverse.poll()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.bigcommerce.poll()
        await self.dataverse.poll()
        self._demo_sent = Counter(self.stack.counter.sent)  # what the demo sent until now

    def connector_bigcommerce(self) -> Counter[str]:
        """The connector's requests to the store by kind (`GET /v2/orders/{id}`, …)."""
        logged = Counter(
            (r["method"], r["path"])
            for r in self.bigcommerce.records
            if str(r["path"]).startswith("/stores/")
        )
        logged.subtract(self._demo_sent)
        kinds: Counter[str] = Counter()
        for (method, path), count in logged.items():
            if count > 0:
                kinds[f"{method} {_kind(path)}"] += count
        return kinds

    def connector_dataverse(self) -> Counter[str]:
        kinds: Counter[str] = Counter()
        for record in self.dataverse.records:
            if record.get("identity") == CONNECTOR_IDENTITY:
                kinds[f"{record['method']} {_kind(str(record['path']))}"] += 1
        return kinds

    @property
    def gaps(self) -> int:
        return self.bigcommerce.gaps + self.dataverse.gaps


def _kind(path: str) -> str:
    """`/stores/abc/v2/orders/12/shipments` → `/v2/orders/{id}/shipments`; key segments of
    Web API paths (`salesorders(...)`) become `(…)`."""
    path = re.sub(r"^/stores/[^/]+", "", path).removeprefix("/api/data/v9.2")
    return _ID.sub(lambda m: "(…)" if m.group(0).startswith("(") else "{id}", path)
