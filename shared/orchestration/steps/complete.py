"""Complete: every line shipped (or cancelled) → the salesorder is fulfilled in Dataverse and
BigCommerce shows the flow's completed status (none: it stays at Shipped).

Also completes what needs no shipping: an order without a shipping address (digital goods) once
it is ready, and an order the merchant completed in BigCommerce with nothing left open here.
"""

from __future__ import annotations

from dataclasses import replace

from shared.orchestration.context import OrderContext
from shared.orchestration.records import Lifecycle, SalesOrderRecord
from shared.orchestration.steps.readiness import is_cancelled, physical_lines, waiting_reason
from shared.orchestration.steps.result import StepResult

COMPLETED = 10


async def complete(ctx: OrderContext) -> StepResult:
    record = ctx.record
    if record is None or is_cancelled(record):
        return StepResult.skipped("no open salesorder")
    if record.lifecycle is Lifecycle.COMPLETED:
        return StepResult.skipped("already completed")
    if record.lifecycle is Lifecycle.ON_HOLD:
        return StepResult.skipped("on hold")
    why = await _why_complete(ctx, record)
    if why is None:
        return StepResult.skipped("lines still open")
    target = ctx.flow.bigcommerce_status.completed
    lifecycle = Lifecycle.COMPLETED if target is not None else Lifecycle.SHIPPED
    # BigCommerce first: its answer is recorded on the salesorder before the salesorder is
    # closed, all in one change set; a closed salesorder is not written again.
    if target is not None:
        await ctx.set_status(target)
    if record.lifecycle is not lifecycle:
        ctx.writes.update_order(ctx.store_hash, ctx.order_id, lifecycle=lifecycle, clear_hold=True)
    if ctx.flow.close_salesorders and record.statecode != 3:
        ctx.writes.close_order(ctx.store_hash, ctx.order_id, "fulfilled")
    await ctx.writes.commit()
    ctx.remember(replace(ctx.record or record, lifecycle=lifecycle, statecode=3))
    return StepResult.done(f"{lifecycle}: {why}")


async def _why_complete(ctx: OrderContext, record: SalesOrderRecord) -> str | None:
    if any(f.open for f in record.fulfillments):
        return None
    bundle = await ctx.bundle()
    physical = physical_lines(bundle)
    lines = [x for x in record.lines if x.order_product_id in physical]
    if (
        lines
        and all(x.open_quantity == 0 for x in lines)
        and any(x.quantity_shipped for x in lines)
    ):
        return "every line shipped"
    if bundle.order.status_id == COMPLETED:
        return "completed in BigCommerce"
    digital = not physical and record.lifecycle is Lifecycle.RECEIVED
    if digital and waiting_reason(ctx, bundle.order, record) is None:
        return "nothing to ship"
    return None
