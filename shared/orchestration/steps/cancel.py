"""Cancellations both ways.

- Cancelled or Declined in BigCommerce: open fulfillment orders are cancelled, each line's
  unshipped quantity is cancelled, and the salesorder is cancelled. After a partial shipment only
  what remains is cancelled; what shipped stays shipped.
- Cancelled in Dataverse (the salesorder closed as cancelled there): BigCommerce is set to the
  flow's cancelled status, and the open fulfillment orders are cancelled.
"""

from __future__ import annotations

from dataclasses import replace

from shared.orchestration.context import OrderContext
from shared.orchestration.records import Lifecycle, SalesOrderRecord
from shared.orchestration.steps.readiness import CANCELLED_STATUSES
from shared.orchestration.steps.result import StepResult


async def cancel(ctx: OrderContext) -> StepResult:
    record = ctx.record
    if record is None:
        return StepResult.skipped("no salesorder")
    order = await ctx.order()
    cancelled_in_bigcommerce = order.status_id in CANCELLED_STATUSES
    closed_as_cancelled = record.statecode == 2
    if record.lifecycle is Lifecycle.CANCELLED:
        return StepResult.skipped("already cancelled", stop=True)
    if not cancelled_in_bigcommerce and not closed_as_cancelled:
        return StepResult.skipped("not cancelled")
    if record.lifecycle is Lifecycle.COMPLETED or record.statecode == 3:
        return StepResult.skipped("completed before the cancellation: nothing open to cancel")
    if closed_as_cancelled:
        return await _follow_dataverse(ctx, record)
    remaining = _cancel_remaining(ctx, record, lines=True)
    if cancelled_in_bigcommerce:
        ctx.writes.update_order(
            ctx.store_hash, ctx.order_id, lifecycle=Lifecycle.CANCELLED, clear_hold=True
        )
        if ctx.flow.close_salesorders and not closed_as_cancelled:
            ctx.writes.close_order(ctx.store_hash, ctx.order_id, "cancelled")
        await ctx.writes.commit()
        ctx.remember(replace(record, lifecycle=Lifecycle.CANCELLED))
        return StepResult(
            "done",
            f"cancelled in Dataverse after BigCommerce status {order.status_id}{remaining}",
            stop=True,
        )
    return StepResult.skipped("already cancelled on both sides", stop=True)


async def _follow_dataverse(ctx: OrderContext, record: SalesOrderRecord) -> StepResult:
    """The salesorder was cancelled in Dataverse, so it is closed there: its own rows are left as
    they are; its open fulfillment orders are cancelled and BigCommerce follows."""
    remaining = _cancel_remaining(ctx, record, lines=False)
    order = await ctx.order()
    status = ctx.flow.bigcommerce_status.cancelled
    if not remaining and order.status_id == status:
        return StepResult.skipped("already cancelled on both sides", stop=True)
    await ctx.writes.commit()
    await ctx.set_status(status)
    return StepResult("done", f"cancelled in BigCommerce after Dataverse{remaining}", stop=True)


def _cancel_remaining(ctx: OrderContext, record: SalesOrderRecord, *, lines: bool) -> str:
    open_orders = [f for f in record.fulfillments if f.open]
    for fulfillment in open_orders:
        ctx.writes.update_fulfillment(ctx.store_hash, fulfillment.key, cancelled=True)
    cancelled_lines = 0
    for line in record.lines if lines else ():
        unshipped = line.quantity - line.quantity_shipped
        if unshipped > 0 and line.quantity_cancelled != unshipped:
            ctx.writes.update_line(
                ctx.store_hash, line.order_product_id, quantity_cancelled=unshipped
            )
            cancelled_lines += 1
    if not open_orders and not cancelled_lines:
        return ""
    return f" ({len(open_orders)} fulfillment orders, {cancelled_lines} lines cancelled)"
