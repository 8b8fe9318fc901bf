"""Per-store API quotas, as BigCommerce meters them: a fixed window refreshed every N seconds.

Every authenticated request costs one unit of its store's quota (shared by all apps). The
window is measured on the `SimClock`, so advancing the clock refreshes the quota.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from local.bigcommerce.clock import SimClock
from local.bigcommerce.config import Quota


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    quota: int
    left: int
    reset_ms: int
    window_ms: int

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-rate-limit-time-window-ms", str(self.window_ms).encode()),
            (b"x-rate-limit-time-reset-ms", str(self.reset_ms).encode()),
            (b"x-rate-limit-requests-quota", str(self.quota).encode()),
            (b"x-rate-limit-requests-left", str(self.left).encode()),
        ]


class RateLimiter:
    def __init__(self, clock: SimClock, quota: Quota) -> None:
        self._clock = clock
        self._quota = quota
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[datetime, int]] = {}  # store → (window start, used)

    @property
    def quota(self) -> Quota:
        return self._quota

    def set_quota(self, quota: Quota) -> None:
        with self._lock:
            self._quota = quota
            self._windows.clear()

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()

    def hit(self, store_hash: str) -> RateDecision:
        now = self._clock.now()
        with self._lock:
            quota = self._quota
            window = timedelta(seconds=quota.window_seconds)
            start, used = self._windows.get(store_hash, (now, 0))
            if now >= start + window or now < start:
                start, used = now, 0
            allowed = used < quota.requests
            if allowed:
                used += 1
            self._windows[store_hash] = (start, used)
            reset_ms = max(0, math.ceil((start + window - now).total_seconds() * 1000))
            return RateDecision(
                allowed, quota.requests, quota.requests - used, reset_ms, int(window / _MS)
            )


_MS = timedelta(milliseconds=1)
