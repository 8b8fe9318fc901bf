"""The `throughput` benchmark: orders per hour, BigCommerce order to Dataverse salesorder, with
adaptive batching and without it, in one run on this machine (bench/pipeline.py).

Each side gets a fresh stack, the same latency, quota and limits, and the same open-loop load
(more orders per second than the target, so that the pipeline, not the load, sets the pace).
After a few warm-up orders, orders are offered for `seconds`; the first `settle` seconds are the
pipeline filling up, and the rest, at least 60 s, is measured: salesorders that appeared in it,
per hour. Over the same span, the connector's requests per completed order on each side, and
its busiest 30 s of BigCommerce requests as a share of the store's quota (what BigCommerce
counts against the merchant's other apps; the target is at most 0.5).

The flow is the intake flow (bench/intake_flow.yaml, reported as `flow`): sync_order only. The
default flow also moves orders to the released status in BigCommerce, one PUT per order whose
status differs, which no batching can fold; `default_flow_orders_per_hour` measures it too
(batched) when asked for.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from bench.pipeline import (
    Latency,
    Offered,
    SalesorderWatch,
    Setup,
    busiest,
    in_window,
    peak_rss_mb,
    pipeline,
    utc_stamp,
)

WINDOW_SECONDS = 30.0


@dataclass(frozen=True)
class Measured:
    orders_per_hour: float
    completed: int  # in the measured span
    offered: int
    completed_by_end: int
    bc_requests: int
    dv_requests: int
    bc_busiest_window: int
    bc_throttled: int  # 429 answers in the measured span
    dv_throttled: int
    measured_seconds: float
    peak_rss_mb: float
    quota: int

    @property
    def bc_per_order(self) -> float | None:
        return round(self.bc_requests / self.completed, 3) if self.completed else None

    @property
    def dv_per_order(self) -> float | None:
        return round(self.dv_requests / self.completed, 3) if self.completed else None


async def measure(setup: Setup, rate: float, seconds: float, settle: float) -> Measured:
    async with pipeline(setup) as running:
        assert running.stack is not None
        watch = SalesorderWatch(running.stack, interval=0.5)
        await watch.start()
        try:
            warm = Offered()
            await running.offer(5, 2, warm, seed_base=100_000)
            if not await running.wait_for(watch, set(warm.asked_at), timeout=120):
                raise RuntimeError(f"{setup.batching}: the warm-up orders did not arrive")
            offered = Offered()
            await running.offer(rate, seconds, offered, seed_base=1)
            start, end = offered.started + settle, offered.started + seconds
            bc_log = await running.bigcommerce_requests()
            dv_log = await running.dataverse_requests()
            done = [watch.seen[i] for i in offered.asked_at if i in watch.seen]
        finally:
            await watch.stop()
        quota = int(setup.quota.split("/")[0])
        completed = in_window(done, start, end)
        bc, dv = [t for t, _ in bc_log], [t for t, _ in dv_log]
        bc_429 = [t for t, status in bc_log if status == 429]
        dv_429 = [t for t, status in dv_log if status == 429]
        return Measured(
            orders_per_hour=round(completed / (end - start) * 3600),
            completed=completed,
            offered=len(offered.asked_at),
            completed_by_end=len(done),
            bc_requests=in_window(bc, start, end),
            dv_requests=in_window(dv, start, end),
            bc_busiest_window=busiest(bc, WINDOW_SECONDS, offered.started, end),
            bc_throttled=in_window(bc_429, start, end),
            dv_throttled=in_window(dv_429, start, end),
            measured_seconds=round(end - start, 1),
            peak_rss_mb=peak_rss_mb(running.host.pid),
            quota=quota,
        )


def run(
    *,
    rate: float,
    seconds: float,
    settle: float,
    latency: Latency,
    default_flow: bool = False,
) -> tuple[dict[str, Any], Measured]:
    """The section's figures, and the batched run (whose peak memory is the burst's)."""
    if seconds - settle < 60:
        raise ValueError("the measured span (seconds - settle) must be at least 60 s")
    batched = asyncio.run(measure(Setup("adaptive", "intake", latency), rate, seconds, settle))
    unbatched = asyncio.run(measure(Setup("off", "intake", latency), rate, seconds, settle))
    report: dict[str, Any] = {
        "flow": "intake",
        "orders_per_hour": batched.orders_per_hour,
        "bc_quota_share": round(batched.bc_busiest_window / batched.quota, 3),
        "bc_requests_per_order": batched.bc_per_order,
        "dv_requests_per_order": batched.dv_per_order,
        "unbatched_orders_per_hour": unbatched.orders_per_hour,
        "ratio_to_unbatched": (
            round(batched.orders_per_hour / unbatched.orders_per_hour, 1)
            if unbatched.orders_per_hour
            else None
        ),
        "throttled_429": {"bigcommerce": batched.bc_throttled, "dataverse": batched.dv_throttled},
        "unbatched_bc_quota_share": round(unbatched.bc_busiest_window / unbatched.quota, 3),
        "unbatched_bc_requests_per_order": unbatched.bc_per_order,
        "unbatched_dv_requests_per_order": unbatched.dv_per_order,
        "unbatched_throttled_429": {
            "bigcommerce": unbatched.bc_throttled,
            "dataverse": unbatched.dv_throttled,
        },
    }
    if default_flow:
        full = asyncio.run(measure(Setup("adaptive", "default", latency), rate, seconds, settle))
        report["default_flow_orders_per_hour"] = full.orders_per_hour
        report["default_flow_bc_quota_share"] = round(full.bc_busiest_window / full.quota, 3)
    report.update(
        {
            "offered_orders_per_hour": round(rate * 3600),
            "measured_seconds": batched.measured_seconds,
            "orders_measured": batched.completed,
            "unbatched_orders_measured": unbatched.completed,
            "bc_quota": f"{batched.quota}/{WINDOW_SECONDS:g}s",
            "bc_latency_ms": latency.bigcommerce_ms,
            "dv_latency_ms": latency.dataverse_ms,
            "measured_at": utc_stamp(),
        }
    )
    return report, batched
