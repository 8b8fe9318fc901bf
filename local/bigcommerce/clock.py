"""The simulator's clock: real time, optionally offset and sped up, so hours pass in seconds.

Every component of the simulator reads time from one `SimClock`, so the admin API can move it
(`/__sim/clock`) and the webhook retry schedule (60 s ... 86,400 s) can run at a time scale.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta


class SimClock:
    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self._lock = threading.Lock()
        self._scale = scale
        self._origin_real = time.monotonic()
        self._origin_sim = datetime.now(UTC)

    def now(self) -> datetime:
        with self._lock:
            elapsed = time.monotonic() - self._origin_real
            return self._origin_sim + timedelta(seconds=elapsed * self._scale)

    @property
    def scale(self) -> float:
        return self._scale

    def set_scale(self, scale: float) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        current = self.now()
        with self._lock:
            self._origin_real, self._origin_sim, self._scale = time.monotonic(), current, scale

    def advance(self, delta: timedelta) -> None:
        current = self.now()
        with self._lock:
            self._origin_real, self._origin_sim = time.monotonic(), current + delta

    async def sleep(self, simulated_seconds: float) -> None:
        """Sleeps for a span of simulated time (shorter in real time when sped up)."""
        await asyncio.sleep(max(0.0, simulated_seconds / self._scale))
