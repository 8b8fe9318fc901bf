"""Fault injection and the request log, for the admin API under /__sim.

A fault forces the next `count` API requests under a path prefix (below /api/data/v9.2/, e.g.
`$batch` or `salesorders`; empty for all) to fail:
- `kind: "status"` answers `status` (500, 502, 503, 504, ...) with an error body; a 429 is the
  service-protection answer for `limit` (`requests`, `execution` or `concurrency`) with
  `Retry-After: retry_after`;
- `kind: "timeout"` holds the request for `delay_ms` and then answers 504, so a client with a
  shorter timeout sees its own timeout.
Random throttling (`throttle_rate`, a share of requests answered 429) lives in the settings.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Final

LIMITS: Final = ("requests", "execution", "concurrency")
MAX_RECORDS: Final = 10_000


@dataclass(slots=True)
class Fault:
    id: int
    path_prefix: str
    status: int
    remaining: int
    method: str | None = None
    kind: str = "status"  # status | timeout
    delay_ms: int = 0
    limit: str = "requests"  # for 429s: which service protection limit
    retry_after: int = 1

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(
        self,
        path_prefix: str,
        status: int,
        count: int = 1,
        method: str | None = None,
        *,
        kind: str = "status",
        delay_ms: int = 0,
        limit: str = "requests",
        retry_after: int = 1,
    ) -> Fault:
        if kind not in ("status", "timeout"):
            raise ValueError("kind must be 'status' or 'timeout'")
        if not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        if count < 1:
            raise ValueError("count must be at least 1")
        if limit not in LIMITS:
            raise ValueError(f"limit must be one of {', '.join(LIMITS)}")
        if delay_ms < 0 or retry_after < 0:
            raise ValueError("delay_ms and retry_after cannot be negative")
        fault = Fault(
            next(self._ids),
            path_prefix.lstrip("/"),
            status,
            count,
            method.upper() if method else None,
            kind,
            delay_ms,
            limit,
            retry_after,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The fault to apply to this request, using up one of its count."""
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path_prefix) and fault.method in (None, method):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def list(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


@dataclass(frozen=True, slots=True)
class RequestRecord:
    time: str  # ISO 8601, UTC
    method: str
    path: str
    query: str
    status: int
    duration_ms: float
    identity: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    def __init__(self, capacity: int = MAX_RECORDS) -> None:
        self._lock = threading.Lock()
        self._records: deque[RequestRecord] = deque(maxlen=capacity)

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
