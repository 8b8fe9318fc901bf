"""The `memory` benchmark: the worker's peak resident memory under the burst.

The local host runs the function app in its own process, as the Python worker does (plus the
HTTP front and the local broker's client, so the figure is an upper bound of the worker's). Its
peak (`VmHWM`) is read when the batched throughput run ends: the burst is that run's open-loop
load, more orders per second than the pipeline takes, with hundreds of sessions in flight. Run
alone (`--sections memory`), the same burst is run for it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.pipeline import Latency, Setup, utc_stamp
from bench.throughput import Measured, measure


def report(burst: Measured, rate: float, seconds: float) -> dict[str, Any]:
    return {
        "worker_peak_rss_mb": burst.peak_rss_mb,
        "burst": f"{rate:g} orders/s offered for {seconds:g} s, batched, intake flow",
        "orders_offered": burst.offered,
        "orders_completed": burst.completed_by_end,
        "measured_at": utc_stamp(),
    }


def run(*, rate: float, seconds: float, settle: float, latency: Latency) -> dict[str, Any]:
    burst = asyncio.run(measure(Setup("adaptive", "intake", latency), rate, seconds, settle))
    return report(burst, rate, seconds)
