"""Choose the fulfillment source (IOM's fulfillment policy) and create the fulfillment orders.

Runs once per order: when fulfillment orders exist, it only makes sure BigCommerce shows the
released status (a crash between the two writes is finished here). An order no source can serve
is held like a validation failure ("inventory not found"). An order without a shipping address
(digital goods) has nothing to ship; the complete step closes it.
"""

from __future__ import annotations

from decimal import Decimal

from shared.orchestration.context import OrderContext
from shared.orchestration.records import Lifecycle
from shared.orchestration.sourcing import SourcingLine, Unsourced, inventory_skus, plan_fulfillment
from shared.orchestration.steps.readiness import (
    held_by_status,
    is_cancelled,
    physical_lines,
    put_on_hold,
    waiting_reason,
)
from shared.orchestration.steps.result import StepResult


async def choose_source(ctx: OrderContext) -> StepResult:
    record = ctx.record
    if record is None or is_cancelled(record):
        return StepResult.skipped("no open salesorder", stop=record is None)
    bundle = await ctx.bundle()
    order = bundle.order
    released = ctx.flow.bigcommerce_status.released
    if record.fulfillments:
        ready = ctx.flow.bigcommerce_status.ready
        if (
            record.lifecycle is Lifecycle.RELEASED
            and order.status_id in ready
            and order.status_id != released
        ):
            await ctx.set_status(released)
            return StepResult.done(f"already sourced; BigCommerce status {released}")
        return StepResult.skipped("already sourced")
    if record.lifecycle is not Lifecycle.RECEIVED:
        return StepResult.skipped(f"not sourced while {record.lifecycle}")
    waiting = waiting_reason(ctx, order, record)
    if waiting is not None:
        if held_by_status(ctx, order):
            return StepResult.waiting(waiting)
        return StepResult.skipped(waiting)
    physical = physical_lines(bundle)
    if not physical or not bundle.shipping_addresses:
        return StepResult.skipped("nothing to ship (no line has a shipping address)")
    lines = [
        SourcingLine(
            p.id, (p.sku or "").strip(), Decimal(p.quantity) - Decimal(p.quantity_shipped or 0)
        )
        for p in bundle.products
        if p.id in physical
    ]
    lines = [line for line in lines if line.quantity > 0]
    policy = ctx.flow.fulfillment
    skus = inventory_skus(policy, lines)
    stock = await ctx.store.inventory(skus) if skus else {}
    country = bundle.shipping_addresses[0].country_iso2
    plan = plan_fulfillment(order.id, lines, country, policy, stock)
    if isinstance(plan, Unsourced):
        return await put_on_hold(ctx, record, plan.reason)
    ctx.writes.create_fulfillments(ctx.store_hash, ctx.order_id, plan.fulfillments)
    ctx.writes.update_order(ctx.store_hash, ctx.order_id, lifecycle=Lifecycle.RELEASED)
    await ctx.writes.commit()
    await ctx.reload()
    await ctx.set_status(released)
    where = ", ".join(f"{f.key} at {f.source}" for f in plan.fulfillments)
    return StepResult.done(f"released: {where}")
