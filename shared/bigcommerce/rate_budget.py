"""One request budget per store, shared by every call the process makes to that store.

BigCommerce gives each store one quota per window (150 per 30 s on Standard and Plus, 450 on Pro),
shared by every app installed on the store, and reports it on each response:
`X-Rate-Limit-Requests-Quota`, `-Requests-Left`, `-Time-Window-Ms` and `-Time-Reset-Ms`
(docs/api-docs/getting-started/api-rate-limits.mdx). The budget paces proactively from those
headers, so callers wait here instead of collecting 429s, under two rules:

* Our share. At most `share` of the quota (default half: 75 of 150) is ours in any span of one
  window. Counted as our requests in flight plus those that completed within the last window
  length: a request is processed between its send and its completion, so every request
  BigCommerce counts in its current window is in that set, however our clock and its windows
  line up. The rest of the quota stays free for the merchant's other apps.
* Never exceed. The other apps' use shows in `Requests-Left`; we keep an estimate of it (the
  last value, less what we sent since and what is still in flight) and stop at `min_left`
  until the window resets. When a window resets, one request goes first and the rest wait
  for its answer, since what the other apps have used of the new window is unknown until then.

Until a response says otherwise the store is assumed to be on Standard (150 / 30 s). After a
429 the store is paused for everyone (`pause`), not just for the caller that got it.

Hand-written rather than a generic limiter (aiolimiter, a token bucket): none of them take the
server's own count and reset time as input, and the quota is shared with other processes we
cannot see. Clock and sleep are injected so tests run windows in simulated time.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

_MIN_SLEEP: Final = 0.001


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    """The rate-limit headers of one response; a missing or unreadable header is None."""

    requests_left: int | None = None
    reset_ms: int | None = None
    window_ms: int | None = None
    quota: int | None = None
    retry_after_s: float | None = None

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> RateLimitHeaders:
        lower = {name.lower(): value for name, value in headers.items()}

        def number(name: str) -> float | None:
            raw = lower.get(name)
            if raw is None:
                return None
            try:
                value = float(raw.split(",")[0].strip())
            except ValueError:
                return None
            return value if math.isfinite(value) and value >= 0 else None

        def integer(name: str) -> int | None:
            value = number(name)
            return None if value is None else int(value)

        return cls(
            requests_left=integer("x-rate-limit-requests-left"),
            reset_ms=integer("x-rate-limit-time-reset-ms"),
            window_ms=integer("x-rate-limit-time-window-ms"),
            quota=integer("x-rate-limit-requests-quota"),
            retry_after_s=number("x-retry-after"),
        )

    @property
    def present(self) -> bool:
        """Whether BigCommerce sent its rate-limit headers (a 429 without them is platform load)."""
        return any(
            v is not None for v in (self.requests_left, self.reset_ms, self.window_ms, self.quota)
        ) or (self.retry_after_s is not None)

    def reset_wait(self) -> float | None:
        """Seconds until the quota refreshes: the longer of Reset-Ms and X-Retry-After."""
        waits = [w for w in (self._reset_s(), self.retry_after_s) if w is not None]
        return max(waits) if waits else None

    def _reset_s(self) -> float | None:
        return None if self.reset_ms is None else self.reset_ms / 1000


@dataclass(frozen=True, slots=True)
class BudgetPolicy:
    share: float = 0.5
    assumed_quota: int = 150
    assumed_window_seconds: float = 30.0
    min_left: int = 0
    # When only requests still in flight hold our share, how often to look again.
    poll_seconds: float = 0.05

    def __post_init__(self) -> None:
        if not 0 < self.share <= 1:
            raise ValueError("share must be in (0, 1]")
        if self.assumed_quota < 1 or self.assumed_window_seconds <= 0:
            raise ValueError("the assumed quota and window must be positive")
        if self.min_left < 0 or self.poll_seconds <= 0:
            raise ValueError("min_left must be >= 0 and poll_seconds > 0")

    def cap(self, quota: int) -> int:
        """How many of a window's `quota` requests are ours."""
        return max(1, math.floor(quota * self.share))


@dataclass(slots=True)
class RateStats:
    """Counters for benchmarks and logs. `waited_seconds` sums every caller's waits, so with
    concurrent callers it can exceed the elapsed time."""

    requests: int = 0
    rate_limited: int = 0
    retries: int = 0
    transport_errors: int = 0
    throttled: int = 0
    waited_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class BudgetSnapshot:
    quota: int
    window_seconds: float
    cap: int
    ours_in_window: int
    in_flight: int
    left_estimate: int
    seconds_to_reset: float
    paused_for: float


class RateBudget:
    """The proactive pacer of one store: `acquire` before each request, then `observe` its
    response (or `abandon` it when no response came)."""

    def __init__(
        self,
        policy: BudgetPolicy | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.policy = policy or BudgetPolicy()
        self.stats = RateStats()
        self._clock = clock
        self._sleep = sleep
        # Callers on several event loops (threads) may share a store's budget.
        self._lock = threading.Lock()
        self._quota = self.policy.assumed_quota
        self._window = self.policy.assumed_window_seconds
        self._window_end = -math.inf
        self._epoch = 0
        self._left = self._quota
        self._confirmed = False
        self._in_flight: dict[int, int] = {}  # ticket -> epoch it was sent in
        self._completed: deque[float] = deque()  # completion times, oldest first
        self._paused_until = -math.inf
        self._next_ticket = 0

    async def acquire(self) -> int:
        """Waits until a request may be sent now; returns its ticket."""
        waited = False
        while True:
            with self._lock:
                ticket, wait = self._take(self._clock())
            if ticket is not None:
                return ticket
            if not waited:
                self.stats.throttled += 1
                waited = True
            await self.wait(wait)

    def observe(self, ticket: int, headers: RateLimitHeaders) -> None:
        """Records a response and what its headers say about the store's window."""
        with self._lock:
            now = self._clock()
            epoch = self._finish(ticket, now)
            if headers.quota:
                self._quota = headers.quota
            if headers.window_ms:
                self._window = headers.window_ms / 1000
            counted = headers.requests_left is not None and headers.reset_ms is not None
            estimate = (headers.requests_left or 0) - len(self._in_flight)
            server_end = now + (headers.reset_ms or 0) / 1000
            if counted and server_end > self._window_end + self._window / 2:
                # BigCommerce has moved to a window later than ours: take its count as is.
                self._epoch += 1
                self._window_end, self._left, self._confirmed = server_end, estimate, True
            elif epoch == self._epoch:
                first = not self._confirmed
                self._confirmed = True
                if counted and first:
                    # The window's first count replaces what we assumed, which may be a smaller
                    # plan than the store's (Pro, Enterprise): min() would keep the guess.
                    self._window_end, self._left = server_end, estimate
                elif counted:
                    # Both ends are at or after the true reset (the response arrives after
                    # BigCommerce computed Reset-Ms), so the earlier one is the closer.
                    self._window_end = min(self._window_end, server_end)
                    self._left = min(self._left, estimate)
            # else: sent before our last reset; its count was already assumed at the reset.

    def abandon(self, ticket: int) -> None:
        """The request got no response; it may still have been counted by BigCommerce."""
        with self._lock:
            self._finish(ticket, self._clock())

    def pause(self, seconds: float) -> None:
        """Holds every caller of this store for `seconds` (after a 429)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))

    async def wait(self, seconds: float) -> None:
        """Sleeps, counting the time in `stats.waited_seconds`."""
        seconds = max(seconds, _MIN_SLEEP)
        self.stats.waited_seconds += seconds
        await self._sleep(seconds)

    def snapshot(self) -> BudgetSnapshot:
        with self._lock:
            now = self._clock()
            self._roll(now)
            self._expire(now)
            return BudgetSnapshot(
                quota=self._quota,
                window_seconds=self._window,
                cap=self.policy.cap(self._quota),
                ours_in_window=len(self._in_flight) + len(self._completed),
                in_flight=len(self._in_flight),
                left_estimate=self._left,
                seconds_to_reset=max(0.0, self._window_end - now),
                paused_for=max(0.0, self._paused_until - now),
            )

    # -- under the lock ---------------------------------------------------------------------------

    def _take(self, now: float) -> tuple[int | None, float]:
        self._roll(now)
        self._expire(now)
        waits: list[float] = []
        if now < self._paused_until:
            waits.append(self._paused_until - now)
        if len(self._in_flight) + len(self._completed) >= self.policy.cap(self._quota):
            release = self._completed[0] + self._window - now if self._completed else math.inf
            if self._in_flight:
                release = min(release, self.policy.poll_seconds)
            waits.append(release)
        if self._left <= self.policy.min_left:
            waits.append(self._window_end - now)
        elif not self._confirmed and self._epoch in self._in_flight.values():
            # A new window: what the other apps have used is unknown until the first answer.
            waits.append(self.policy.poll_seconds)
        if waits:
            return None, max(waits)
        ticket = self._next_ticket
        self._next_ticket += 1
        self._in_flight[ticket] = self._epoch
        self._left -= 1
        self.stats.requests += 1
        return ticket, 0.0

    def _roll(self, now: float) -> None:
        if now >= self._window_end:
            # The window has reset. Until a response tells us its true end, assume a full one;
            # requests still in flight may be counted in it.
            self._epoch += 1
            self._window_end = now + self._window
            self._left = self._quota - len(self._in_flight)
            self._confirmed = False

    def _expire(self, now: float) -> None:
        while self._completed and self._completed[0] + self._window <= now:
            self._completed.popleft()

    def _finish(self, ticket: int, now: float) -> int:
        epoch = self._in_flight.pop(ticket, -1)
        if epoch >= 0:
            self._completed.append(now)
        return epoch
