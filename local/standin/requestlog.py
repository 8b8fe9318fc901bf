"""The API requests a stand-in received, newest last, for tests and the admin API to inspect.

Each stand-in defines its own record (what it knows about a request); the log only keeps the
latest `capacity` of them, safe to use from the event loop and worker threads at once.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Final, Generic, TypeVar

MAX_RECORDS: Final = 10_000

Record = TypeVar("Record")


class RequestLog(Generic[Record]):
    def __init__(self, capacity: int = MAX_RECORDS) -> None:
        self._lock = threading.Lock()
        self._records: deque[Record] = deque(maxlen=capacity)

    def add(self, record: Record) -> None:
        with self._lock:
            self._records.append(record)

    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
