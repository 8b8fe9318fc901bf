"""Service protection limits per identity (api-limits), emulated for one web server.

Three facets, each answered with `429 Too Many Requests`, a `Retry-After` header (seconds) and
the documented Web API code and message:
- number of requests in a sliding window (default 6,000 per 300 s): 0x80072322;
- combined execution time in the window (default 1,200,000 ms per 300 s): 0x80072321;
- concurrent requests (default 52): 0x80072326, refused at once.
A `$batch` counts as one request; its whole execution time counts. Refused requests count for
nothing. The identity is the bearer token. Successful responses carry the debug headers
`x-ms-ratelimit-burst-remaining-xrm-requests` and `x-ms-ratelimit-time-remaining-xrm-requests`.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from local.dataverse import errors
from local.dataverse.config import Limits, Window

CONCURRENCY_RETRY_AFTER = 1


def _seconds(window: Window) -> str:
    value = window.window_seconds
    return str(int(value)) if float(value).is_integer() else str(value)


def requests_exceeded(limits: Limits, retry_after: int) -> errors.DataverseError:
    return errors.DataverseError(
        429,
        errors.REQUESTS_LIMIT,
        f"Number of requests exceeded the limit of {limits.requests.amount} over time window of "
        f"{_seconds(limits.requests)} seconds.",
        {"Retry-After": str(retry_after)},
    )


def execution_exceeded(limits: Limits, retry_after: int) -> errors.DataverseError:
    return errors.DataverseError(
        429,
        errors.EXECUTION_TIME_LIMIT,
        f"Combined execution time of incoming requests exceeded limit of "
        f"{limits.execution_ms.amount:,}  milliseconds over time window of "
        f"{_seconds(limits.execution_ms)} seconds. Decrease number of concurrent requests or "
        f"reduce the duration of requests and try again later.",
        {"Retry-After": str(retry_after)},
    )


def concurrency_exceeded(limits: Limits, retry_after: int) -> errors.DataverseError:
    return errors.DataverseError(
        429,
        errors.CONCURRENCY_LIMIT,
        f"Number of concurrent requests exceeded the limit of {limits.concurrency}.",
        {"Retry-After": str(retry_after)},
    )


@dataclass(slots=True)
class _Usage:
    requests: deque[float] = field(default_factory=deque)  # start times
    executions: deque[tuple[float, float]] = field(default_factory=deque)  # (end time, ms)
    executed_ms: float = 0.0  # the sum of `executions`, kept as they come and go
    in_flight: int = 0


class ServiceProtection:
    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self._lock = threading.Lock()
        self._usage: dict[str, _Usage] = {}

    def reset(self) -> None:
        with self._lock:
            self._usage.clear()

    def _prune(self, usage: _Usage, now: float) -> None:
        requests_start = now - self.limits.requests.window_seconds
        while usage.requests and usage.requests[0] <= requests_start:
            usage.requests.popleft()
        execution_start = now - self.limits.execution_ms.window_seconds
        while usage.executions and usage.executions[0][0] <= execution_start:
            usage.executed_ms -= usage.executions.popleft()[1]
        if not usage.executions:
            usage.executed_ms = 0.0  # no drift from the float subtractions

    def admit(self, identity: str) -> None:
        """Counts a request in, or raises the 429 a limit calls for."""
        limits = self.limits
        with self._lock:
            now = self.clock()
            usage = self._usage.setdefault(identity, _Usage())
            self._prune(usage, now)
            if usage.in_flight >= limits.concurrency:
                raise concurrency_exceeded(limits, CONCURRENCY_RETRY_AFTER)
            if len(usage.requests) >= limits.requests.amount:
                wait = usage.requests[0] + limits.requests.window_seconds - now
                raise requests_exceeded(limits, max(1, math.ceil(wait)))
            used = usage.executed_ms
            if used >= limits.execution_ms.amount:
                wait = usage.executions[0][0] + limits.execution_ms.window_seconds - now
                raise execution_exceeded(limits, max(1, math.ceil(wait)))
            usage.requests.append(now)
            usage.in_flight += 1

    def release(self, identity: str, elapsed_seconds: float) -> None:
        with self._lock:
            usage = self._usage.setdefault(identity, _Usage())
            usage.in_flight = max(0, usage.in_flight - 1)
            usage.executions.append((self.clock(), elapsed_seconds * 1000))
            usage.executed_ms += elapsed_seconds * 1000

    def remaining(self, identity: str) -> tuple[int, int]:
        """(requests, execution milliseconds) left in the windows, for the debug headers."""
        with self._lock:
            usage = self._usage.setdefault(identity, _Usage())
            self._prune(usage, self.clock())
            requests = self.limits.requests.amount - len(usage.requests)
            used = usage.executed_ms
            return max(0, requests), max(0, int(self.limits.execution_ms.amount - used))

    def in_flight(self, identity: str) -> int:
        with self._lock:
            usage = self._usage.get(identity)
            return 0 if usage is None else usage.in_flight
