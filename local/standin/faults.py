"""Fault injection: the next `count` API requests under a path prefix (of one method, or of any)
fail.

A stand-in subclasses `Fault` for the details its gateway needs to answer a fault, and adds an
`add` that checks them (with `validate` for the common ones) and `arm`s the fault.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar


@dataclass(slots=True)
class Fault:
    id: int
    path_prefix: str
    status: int
    remaining: int
    method: str | None = None  # None: any method

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


AnyFault = TypeVar("AnyFault", bound=Fault)


def validate(status: int, count: int) -> None:
    if not 400 <= status <= 599:
        raise ValueError("status must be an HTTP error status (400-599)")
    if count < 1:
        raise ValueError("count must be at least 1")


def method_filter(method: str | None) -> str | None:
    """The method a fault applies to, as requests spell it; None (or empty) for any method."""
    return method.upper() if method else None


class FaultInjector(Generic[AnyFault]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[AnyFault] = []
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    def arm(self, fault: AnyFault) -> AnyFault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> AnyFault | None:
        """The fault to apply to this request, using up one of its count."""
        if not self._faults:
            return None
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path_prefix) and fault.method in (None, method):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def list(self) -> list[AnyFault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
