"""The `freshness` benchmark: how long from an order's creation in BigCommerce to its salesorder
in Dataverse, at a steady rate (bench/pipeline.py), with the default flow and adaptive batching.

An order's time starts when the bench asks the simulator to create it (its webhooks are sent the
moment the simulator answers) and ends when its salesorder is first seen through change
tracking, polled every 0.1 s as a second identity. The figure is therefore an upper bound: it
includes up to one polling interval and one stand-in round trip (its injected latency applies
to every request). Orders not seen within `grace` seconds of the last one are reported as
`missing`, not left out of the percentiles silently.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.load import percentile
from bench.pipeline import Latency, Offered, SalesorderWatch, Setup, pipeline, utc_stamp

POLL_SECONDS = 0.1


async def _measure(setup: Setup, rate: float, seconds: float, grace: float) -> dict[str, Any]:
    async with pipeline(setup) as running:
        assert running.stack is not None
        watch = SalesorderWatch(running.stack, interval=POLL_SECONDS)
        await watch.start()
        try:
            warm = Offered()
            await running.offer(2, 2, warm, seed_base=200_000)
            await running.wait_for(watch, set(warm.asked_at), timeout=60)
            offered = Offered()
            await running.offer(rate, seconds, offered, seed_base=300_000)
            await running.wait_for(watch, set(offered.asked_at), timeout=grace)
        finally:
            await watch.stop()
    latencies = [
        (watch.seen[i] - asked) * 1000 for i, asked in offered.asked_at.items() if i in watch.seen
    ]
    return {
        "flow": setup.flow,
        "rate_ops": round(len(offered.asked_at) / (offered.ended - offered.started), 2),
        "p50_ms": round(percentile(latencies, 0.5)),
        "p99_ms": round(percentile(latencies, 0.99)),
        "max_ms": round(max(latencies, default=0.0)),
        "orders": len(offered.asked_at),
        "missing": len(offered.asked_at) - len(latencies),
        "poll_ms": round(POLL_SECONDS * 1000),
        "bc_latency_ms": setup.latency.bigcommerce_ms,
        "dv_latency_ms": setup.latency.dataverse_ms,
        "measured_at": utc_stamp(),
    }


def run(*, rate: float, seconds: float, latency: Latency, grace: float = 60) -> dict[str, Any]:
    return asyncio.run(_measure(Setup("adaptive", "default", latency), rate, seconds, grace))
