"""Fault injection: force the next N responses under a path prefix to an error status.

A forced 429 carries no rate-limit headers, which is how BigCommerce signals platform load
(as opposed to an exhausted quota).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(slots=True)
class Fault:
    id: int
    path_prefix: str
    status: int
    remaining: int
    method: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, path_prefix: str, status: int, count: int, method: str | None = None) -> Fault:
        if not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        if count < 1:
            raise ValueError("count must be at least 1")
        fault = Fault(
            next(self._ids), path_prefix, status, count, method.upper() if method else None
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> int | None:
        """The status to force on this request, using up one of the matching fault's N."""
        if not self._faults:
            return None
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path_prefix) and fault.method in (None, method):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault.status
        return None

    def list(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
