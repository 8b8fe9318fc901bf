"""Waiting until everything settles, or saying clearly what did not.

Settled means, all at once and twice in a row a moment apart:
- the simulator has no webhook left to deliver (`/__sim/webhooks/drain`), retries included
  unless `webhook_retries` is False: a delivery that failed comes back minutes later (the
  store's retry schedule), and the reconciliation sweep covers what it announces meanwhile;
- `order-events` and `dataverse-events` hold no active, locked or scheduled message (a retry the
  connector scheduled is work still to do);
- the warehouse and the merchant found nothing to do on their last pass;
- a snapshot of both sides (each BigCommerce order's status and date modified; each
  salesorder's lifecycle, status and hold, each fulfillment order's shipped, cancelled and
  shipment id; Dataverse's row counts per table) equals the one before;
- and then the caller's own check, if any, finds no reason to go on (the chaos run's: the
  worker is up, and a reconciliation sweep found nothing missing).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from local.demo.judge import agrees
from local.demo.scenario import Scenario
from local.demo.stack import Stack
from shared.messaging.queues import DATAVERSE_EVENTS, ORDER_EVENTS, ORDER_PARKED

PAUSE_SECONDS: Final = 0.5
PROGRESS_SECONDS: Final = 3.0  # between full reads for the progress bar while work is queued
WORK_QUEUES: Final = (ORDER_EVENTS.name, DATAVERSE_EVENTS.name)


class NotSettled(Exception):
    """The run did not settle in time; the message says what was still moving."""


@dataclass(frozen=True)
class Snapshot:
    bigcommerce: tuple[tuple[int, int, str], ...]
    salesorders: tuple[tuple[Any, ...], ...]
    fulfillments: tuple[tuple[Any, ...], ...]
    tables: tuple[tuple[str, int], ...]

    def agreeing(self) -> int:
        """Orders whose two sides agree on their state (the settling bar)."""
        rows = {int(r[0]): r for r in self.salesorders}
        count = 0
        for order_id, status, _ in self.bigcommerce:
            row = rows.get(order_id)
            state = None
            if row is not None:
                state = {
                    "bciom_lifecycle": row[1],
                    "statecode": row[2],
                    "bciom_bcstatusid": row[3],
                    "bciom_holdreason": row[4],
                }
            count += agrees(status, state)
        return count


async def snapshot(stack: Stack) -> Snapshot:
    mine = f"bciom_storehash eq '{stack.store_hash}'"
    orders: list[tuple[int, int, str]] = []
    async for page in stack.store.iter_order_pages(limit=250):
        orders += [(o.id, o.status_id, o.date_modified.isoformat()) for o in page]
    salesorders = [
        (
            r["bciom_bcorderid"],
            r.get("bciom_lifecycle"),
            r.get("statecode"),
            r.get("bciom_bcstatusid"),
            r.get("bciom_holdreason"),
        )
        async for r in stack.dataverse.rows(
            "salesorders",
            select=[
                "bciom_bcorderid",
                "bciom_lifecycle",
                "statecode",
                "bciom_bcstatusid",
                "bciom_holdreason",
            ],
            filter=mine,
        )
    ]
    fulfillments = [
        (
            r["bciom_fulfillmentkey"],
            r.get("bciom_shipped"),
            r.get("bciom_cancelled"),
            r.get("bciom_bcshipmentid"),
        )
        async for r in stack.dataverse.rows(
            "msdyn_fulfillmentorders",
            select=[
                "bciom_fulfillmentkey",
                "bciom_shipped",
                "bciom_cancelled",
                "bciom_bcshipmentid",
            ],
            filter=mine,
        )
    ]
    response = await stack.dataverse_admin.get("/__sim/tables")
    response.raise_for_status()
    tables = tuple(sorted((str(t["table"]), int(t["rows"])) for t in response.json()))
    return Snapshot(
        tuple(sorted(orders)),
        tuple(sorted(salesorders, key=lambda r: int(r[0]))),
        tuple(sorted(fulfillments, key=lambda r: str(r[0]))),
        tables,
    )


async def webhooks_pending(stack: Stack, *, retries: bool) -> int:
    """Deliveries the store still has to make (waiting up to a second for them), with or
    without the retries it scheduled for later."""
    if not retries:
        status = (await stack.sim.get("/__sim/webhooks")).json()
        if int(status["pending"]) <= len(status["scheduled_retries"]):
            return 0
    drained = await stack.sim.post("/__sim/webhooks/drain", params={"timeout": "1"})
    if drained.status_code == 200:
        return 0
    if retries:
        return int(drained.json()["pending"])
    status = (await stack.sim.get("/__sim/webhooks")).json()
    return max(0, int(status["pending"]) - len(status["scheduled_retries"]))


def busy_queues(stack: Stack) -> dict[str, int]:
    """Messages still to process per work queue (active, locked or scheduled)."""
    busy: dict[str, int] = {}
    for name in WORK_QUEUES:
        info = stack.broker.queue_info(name)
        if info.active_count or info.scheduled_count:
            busy[name] = info.active_count + info.scheduled_count
    return busy


def parked_count(stack: Stack) -> int:
    info = stack.broker.queue_info(ORDER_PARKED.name)
    return info.active_count + info.scheduled_count


async def settle(
    stack: Stack,
    scenario: Scenario,
    timeout: float,
    progress: Callable[[int, int], None],
    extra_check: Callable[[], Awaitable[str | None]] | None = None,
    *,
    webhook_retries: bool = True,
    progress_seconds: float = PROGRESS_SECONDS,
) -> Snapshot:
    """Returns the settled snapshot, or raises NotSettled after `timeout` seconds. While work is
    still queued only the cheap checks run (and a snapshot for the progress bar now and then):
    reading both sides in full is work for the stand-ins too."""
    deadline = time.monotonic() + timeout
    previous: Snapshot | None = None
    previous_actions = -1
    shown = 0.0
    why = "nothing checked yet"
    agreeing = orders = 0
    while True:
        if time.monotonic() > deadline:
            raise NotSettled(
                f"the run did not settle within {timeout:.0f} s (--timeout): {why}; "
                f"{agreeing} of {orders} orders agreed on both sides at the last look"
            )
        pending = await webhooks_pending(stack, retries=webhook_retries)
        busy = busy_queues(stack)
        quiet = not pending and not busy
        if not quiet:
            if pending:
                why = f"{pending} webhook deliveries pending"
            else:
                why = "messages still queued: " + ", ".join(f"{q} {n}" for q, n in busy.items())
            previous, previous_actions = None, -1
            if time.monotonic() - shown > progress_seconds:
                current = await snapshot(stack)
                agreeing, orders = current.agreeing(), len(current.bigcommerce)
                progress(agreeing, orders)
                shown = time.monotonic()
            await asyncio.sleep(PAUSE_SECONDS)
            continue
        current = await snapshot(stack)
        agreeing, orders = current.agreeing(), len(current.bigcommerce)
        progress(agreeing, orders)
        shown = time.monotonic()
        if not scenario.idle or scenario.actions != previous_actions:
            why = "the warehouse or the merchant was still acting"
        elif current != previous:
            why = "the two sides were still changing"
        elif extra_check is not None and (reason := await extra_check()):
            why = reason  # and it may have started new work: look again from scratch
            previous, previous_actions = None, -1
            await asyncio.sleep(PAUSE_SECONDS)
            continue
        else:
            return current
        previous, previous_actions = current, scenario.actions
        await asyncio.sleep(PAUSE_SECONDS)
