"""The setting formats both stand-ins read, from the environment and from the admin API.

* Latency, `fixed` or `fixed,jitter` in milliseconds: `150` or `150,30`.
* An amount per window of seconds, `amount/seconds` or just `amount` (per the default window):
  `150/30`, `6000/300`.

Each stand-in names its own setting in the error message, so the message says what to fix.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

Rate = TypeVar("Rate")


@dataclass(frozen=True, slots=True)
class Latency:
    fixed_ms: float = 0.0
    jitter_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.fixed_ms < 0 or self.jitter_ms < 0:
            raise ValueError("latency cannot be negative")

    async def wait(self, rng: random.Random) -> None:
        """Sleeps `fixed_ms` plus up to `jitter_ms` at random; no sleep (nor draw) when zero."""
        if self.fixed_ms or self.jitter_ms:
            delay = self.fixed_ms + rng.uniform(0, self.jitter_ms)
            await asyncio.sleep(delay / 1000)


def parse_latency(raw: str, name: str) -> Latency:
    """`150` (fixed ms) or `150,30` (fixed ms, plus up to 30 ms of random jitter)."""
    fixed, _, jitter = raw.strip().partition(",")
    try:
        return Latency(float(fixed or 0), float(jitter or 0))
    except ValueError as exc:
        raise ValueError(f"{name} must look like '150' or '150,30', got {raw!r}") from exc


def parse_per_window(
    raw: str,
    make: Callable[[int, float], Rate],
    *,
    default_window: float,
    name: str,
    form: str,
) -> Rate:
    """`amount/seconds`, or `amount` per `default_window` seconds, as `make(amount, seconds)`.

    `form` is the example the error message shows, e.g. `'150/30' (requests/seconds)`; a value
    `make` refuses with ValueError gets the same message.
    """
    amount, _, window = raw.strip().partition("/")
    try:
        return make(int(amount), float(window) if window else default_window)
    except ValueError as exc:
        raise ValueError(f"{name} must look like {form}, got {raw!r}") from exc
