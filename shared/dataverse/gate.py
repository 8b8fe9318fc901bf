"""The throttle gate: one per Dataverse identity per process, passed by every request it sends.

Dataverse counts service protection limits per user (application users included) per web
server: requests and execution time in a 300 s sliding window, and concurrent requests, which
"will immediately return an error" (api-limits.md). It tells the client what to do:

* After a 429, wait `Retry-After` seconds. The limit is the identity's, not the request's, so the
  gate pauses *every* caller: no request of this identity leaves before the pause ends
  (`throttled`). Requests already in flight cannot be recalled; their answers are handled
  as they come.
* Keep the degree of parallelism at the environment's recommendation, the `x-ms-dop-hint`
  response header, readable on any response, split between the client instances that share the
  identity (send-parallel-requests.md, optimize-performance-create-update.md: going above it
  makes things worse). The cap is `min(config max, hint // instances)`, at least 1.
* "Ramp up gradually, then let Retry-After pace you": after a 429 the allowed concurrency is
  halved, then regained by one for every `limit` requests that succeed (additive increase,
  multiplicative decrease), so traffic resumes gradually instead of all at once.

Hand-written rather than an asyncio.Semaphore or a limiter library: the capacity changes at run
time (hint, 429s), a pause must hold back callers that already hold no slot, and callers may
run on several event loops (threads), which asyncio primitives do not allow. State sits under a
`threading.Lock`; a waiting caller parks on a future of its own loop and is handed its slot
directly by the caller that releases one, in arrival order. Clock and sleep are injected so
tests run pauses in simulated time.
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

DOP_HINT_HEADER: Final = "x-ms-dop-hint"
_MIN_SLEEP: Final = 0.001


@dataclass(frozen=True, slots=True)
class GatePolicy:
    """`max_concurrency` is the configured cap; `instances` is how many client instances
    (Function hosts) are expected to share the identity, so each takes its share of the hint;
    `initial_concurrency` (default: the cap) is where traffic starts before anything is known."""

    max_concurrency: int = 16
    instances: int = 1
    initial_concurrency: int | None = None
    adaptive: bool = True  # halve on 429, regain one per `limit` successes

    def __post_init__(self) -> None:
        if self.max_concurrency < 1 or self.instances < 1:
            raise ValueError("max_concurrency and instances must be at least 1")
        if self.initial_concurrency is not None and self.initial_concurrency < 1:
            raise ValueError("initial_concurrency must be at least 1")

    def ceiling(self, dop_hint: int | None) -> int:
        if dop_hint is None:
            return self.max_concurrency
        return max(1, min(self.max_concurrency, dop_hint // self.instances))


@dataclass(slots=True)
class GateStats:
    acquired: int = 0
    queued: int = 0  # acquisitions that had to wait for a slot
    paused: int = 0  # acquisitions that had to wait for a 429 pause to end
    pause_seconds: float = 0.0  # summed over callers
    throttles: int = 0  # 429s reported to the gate


@dataclass(frozen=True, slots=True)
class GateSnapshot:
    limit: int
    ceiling: int
    in_flight: int
    waiting: int
    paused_for: float
    dop_hint: int | None


class ThrottleGate:
    """`await acquire()` before sending (returns the seconds spent paused), `release()` after the
    response (or failure), `observe(headers)` on every response, `throttled(seconds)` on a 429."""

    def __init__(
        self,
        policy: GatePolicy | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.policy = policy or GatePolicy()
        self.stats = GateStats()
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._dop_hint: int | None = None
        self._ceiling = self.policy.ceiling(None)
        self._limit = min(self._ceiling, self.policy.initial_concurrency or self._ceiling)
        self._credit = 0
        self._in_flight = 0
        self._paused_until = -math.inf
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    # -- the caller's side ------------------------------------------------------------------------

    async def acquire(self) -> float:
        """Waits until no pause is in force and a slot is free, then takes the slot."""
        paused = 0.0
        counted_pause = counted_queue = False
        loop = asyncio.get_running_loop()
        while True:
            future: asyncio.Future[None] | None = None
            with self._lock:
                wait = self._paused_until - self._clock()
                if wait <= 0:
                    if self._in_flight < self._limit and not self._waiters:
                        self._in_flight += 1
                        self.stats.acquired += 1
                        return paused
                    future = loop.create_future()
                    self._waiters.append((loop, future))
                    if not counted_queue:
                        self.stats.queued += 1
                        counted_queue = True
            if future is None:
                if not counted_pause:
                    self.stats.paused += 1
                    counted_pause = True
                wait = max(wait, _MIN_SLEEP)
                self.stats.pause_seconds += wait
                paused += wait
                await self._sleep(wait)
                continue
            try:
                await future
            except asyncio.CancelledError:
                self._abandon(loop, future)
                raise
            # The slot was handed over; a pause that began meanwhile still holds it back.
            with self._lock:
                if self._clock() >= self._paused_until:
                    self.stats.acquired += 1
                    return paused
                self._in_flight -= 1
                self._dispatch()

    def release(self) -> None:
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            self._dispatch()

    # -- what responses say -----------------------------------------------------------------------

    def observe(self, headers: Mapping[str, str]) -> None:
        """Reads `x-ms-dop-hint` (any response carries it) and resizes the cap."""
        raw = headers.get(DOP_HINT_HEADER)
        if raw is None:
            return
        try:
            hint = int(raw.strip())
        except ValueError:
            return
        if hint < 1:
            return
        with self._lock:
            if hint == self._dop_hint:
                return
            self._dop_hint = hint
            self._ceiling = self.policy.ceiling(hint)
            if self._limit > self._ceiling or self.policy.initial_concurrency is None:
                self._limit = self._ceiling
            self._dispatch()

    def succeeded(self) -> None:
        """A request went through: regain concurrency lost to 429s, one per round."""
        if not self.policy.adaptive:
            return
        with self._lock:
            if self._limit >= self._ceiling:
                return
            self._credit += 1
            if self._credit >= self._limit:
                self._credit = 0
                self._limit += 1
                self._dispatch()

    def throttled(self, retry_after: float) -> None:
        """A 429: every caller of this identity waits `retry_after` seconds from now."""
        with self._lock:
            self.stats.throttles += 1
            self._paused_until = max(self._paused_until, self._clock() + max(0.0, retry_after))
            if self.policy.adaptive:
                self._limit = max(1, self._limit // 2)
                self._credit = 0

    async def wait(self, seconds: float) -> float:
        """Sleeps (a caller's own backoff); returns the seconds slept."""
        seconds = max(seconds, _MIN_SLEEP)
        await self._sleep(seconds)
        return seconds

    def paused_for(self) -> float:
        with self._lock:
            return max(0.0, self._paused_until - self._clock())

    def snapshot(self) -> GateSnapshot:
        with self._lock:
            return GateSnapshot(
                limit=self._limit,
                ceiling=self._ceiling,
                in_flight=self._in_flight,
                waiting=len(self._waiters),
                paused_for=max(0.0, self._paused_until - self._clock()),
                dop_hint=self._dop_hint,
            )

    # -- under the lock ---------------------------------------------------------------------------

    def _dispatch(self) -> None:
        while self._waiters and self._in_flight < self._limit:
            loop, future = self._waiters.popleft()
            if future.done():
                continue
            self._in_flight += 1
            try:
                loop.call_soon_threadsafe(self._grant, future)
            except RuntimeError:  # that loop is closed: its caller is gone
                self._in_flight -= 1

    def _grant(self, future: asyncio.Future[None]) -> None:
        # Runs on the waiter's loop. A waiter cancelled in between gives the slot back.
        if future.done():
            self.release()
        else:
            future.set_result(None)

    def _abandon(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
        with self._lock:
            try:
                self._waiters.remove((loop, future))
            except ValueError:
                # Already handed a slot: if the grant ran, it is ours to give back; if it has not
                # run yet, `_grant` sees the cancelled future and gives it back itself.
                if future.done() and not future.cancelled():
                    self._in_flight = max(0, self._in_flight - 1)
                    self._dispatch()


_GATES: dict[str, ThrottleGate] = {}
_GATES_LOCK = threading.Lock()


def shared_gate(identity: str, policy: GatePolicy | None = None) -> ThrottleGate:
    """The process-wide gate of one identity (e.g. environment URL + client id), created on
    first use; later callers get the same gate whatever policy they pass."""
    with _GATES_LOCK:
        gate = _GATES.get(identity)
        if gate is None:
            gate = ThrottleGate(policy)
            _GATES[identity] = gate
        return gate
