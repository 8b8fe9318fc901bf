"""How large and how frequent coalesced `$batch` requests may be: a latency model, and pacing
under the service protection limits.

Size. Dataverse runs a batch's operations one after another (api-limits.md, "Avoid large
batches"), so a batch lasts about `base + per_operation * n`. `LatencyModel` fits those two
numbers to the batches it has seen (exponentially weighted least squares: recent batches weigh
more, so it follows the environment as its load changes) and says how many operations fit in a
target duration. It starts from a cautious guess at a real environment (0.2 s plus 20 ms per
operation; upserts that run plug-ins take longer than reads) and learns from there.

Pace. The limits count per identity and web server (api-limits.md): 6,000 requests and 1,200 s
of combined execution time in a sliding 300 s window, a `$batch` counting as one request with
its whole execution time. `ProtectionPacer` lets coalesced requests take at most `share` of
each, evenly over the window (a token bucket per limit, with a small burst), so that a burst of
orders never spends a window's requests at once and then waits out the rest of it, and the
identity's other callers (the change poll, reconciliation) keep room. Concurrency, the third
limit, is the throttle gate's (`gate.py`: `x-ms-dop-hint`, halved after a 429).

Hand-written rather than a limiter library: the execution-time bucket is charged after the fact
with what each request took, which rate limiters do not model. The clock is injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

Clock = Callable[[], float]

_MIN_PER_OPERATION: Final = 1e-5  # seconds: keeps the division finite


@dataclass(frozen=True, slots=True)
class ProtectionLimits:
    """The documented defaults per identity and web server (api-limits.md, 01/09/2026)."""

    requests: int = 6000
    execution_seconds: float = 1200.0
    window_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.requests < 1 or self.execution_seconds <= 0 or self.window_seconds <= 0:
            raise ValueError("the limits must be positive")


class LatencyModel:
    """A batch's expected duration from its operation count, learnt from measured batches."""

    def __init__(
        self,
        *,
        base_seconds: float = 0.2,
        per_operation_seconds: float = 0.02,
        weight: float = 0.1,
    ) -> None:
        if not 0 < weight <= 1:
            raise ValueError("weight must be in (0, 1]")
        self._weight = weight
        # The prior: two batches on the guessed line, of 1 and of 50 operations.
        small, large = 1.0, 50.0
        d_small = base_seconds + per_operation_seconds * small
        d_large = base_seconds + per_operation_seconds * large
        self._n = (small + large) / 2
        self._d = (d_small + d_large) / 2
        self._nn = (small * small + large * large) / 2
        self._nd = (small * d_small + large * d_large) / 2
        self.observed = 0

    def observe(self, operations: int, seconds: float) -> None:
        if operations < 1 or seconds < 0:
            return
        w, n, d = self._weight, float(operations), seconds
        self._n += w * (n - self._n)
        self._d += w * (d - self._d)
        self._nn += w * (n * n - self._nn)
        self._nd += w * (n * d - self._nd)
        self.observed += 1

    @property
    def per_operation(self) -> float:
        variance = self._nn - self._n * self._n
        if variance > 1e-6 * max(1.0, self._nn):
            slope = (self._nd - self._n * self._d) / variance
        else:  # every batch had the same size: charge it all to the operations (cautious)
            slope = self._d / max(self._n, 1.0)
        return max(slope, _MIN_PER_OPERATION)

    @property
    def base(self) -> float:
        return max(0.0, self._d - self.per_operation * self._n)

    def duration(self, operations: int) -> float:
        return self.base + self.per_operation * operations

    def operations_within(self, seconds: float) -> int:
        """The most operations a batch may hold to last about `seconds` (at least one). When
        the fixed part alone takes most of that (a slow or busy server, whose queueing shows
        here), half of `seconds` still goes to operations: one more operation in a batch costs
        the server less than one more request."""
        room = max(seconds - self.base, seconds / 2)
        return max(1, int(room / self.per_operation))


class ProtectionPacer:
    """`delay()` before sending (seconds to wait; 0: go), `sent()` when sending, `finished()`
    with the seconds the request took."""

    def __init__(
        self,
        limits: ProtectionLimits | None = None,
        *,
        share: float = 0.8,
        burst_requests: int = 10,
        burst_seconds: float = 30.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self.limits = limits or ProtectionLimits()
        self._request_rate = share * self.limits.requests / self.limits.window_seconds
        self._seconds_rate = share * self.limits.execution_seconds / self.limits.window_seconds
        self._burst_requests = float(burst_requests)
        self._burst_seconds = burst_seconds
        self._requests = float(burst_requests)
        self._seconds = burst_seconds
        self._clock = clock
        self._at = clock()

    @property
    def requests_per_second(self) -> float:
        return self._request_rate

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._at)
        self._at = now
        self._requests = min(self._burst_requests, self._requests + elapsed * self._request_rate)
        self._seconds = min(self._burst_seconds, self._seconds + elapsed * self._seconds_rate)

    def delay(self) -> float:
        self._refill()
        waits = [0.0]
        if self._requests < 1:
            waits.append((1 - self._requests) / self._request_rate)
        if self._seconds < 0:
            waits.append(-self._seconds / self._seconds_rate)
        return max(waits)

    def sent(self) -> None:
        self._refill()
        self._requests -= 1

    def finished(self, seconds: float) -> None:
        self._refill()
        self._seconds -= max(0.0, seconds)
