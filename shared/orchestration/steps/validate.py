"""Validate (IOM's Validate Order Header and Validate Order Line): the flow's validation policy.

Every failure is critical: the order is held in Dataverse with every reason, BigCommerce shows the
on-hold status, and the message is parked. Fixing the cause (a product, the mapping, the policy)
and replaying re-runs validation; a pass moves BigCommerce to the released status, lifts the
hold and the flow goes on.
"""

from __future__ import annotations

from shared.orchestration.context import OrderContext
from shared.orchestration.records import Lifecycle
from shared.orchestration.steps.readiness import (
    held_by_status,
    is_cancelled,
    put_on_hold,
    waiting_reason,
)
from shared.orchestration.steps.result import StepResult
from shared.orchestration.validation import hold_reason, product_numbers, validate_order


async def validate(ctx: OrderContext) -> StepResult:
    record = ctx.record
    if record is None:
        return StepResult.skipped("no salesorder to validate", stop=True)
    if is_cancelled(record) or record.lifecycle not in (Lifecycle.RECEIVED, Lifecycle.ON_HOLD):
        return StepResult.skipped(f"already {record.lifecycle}")
    bundle = await ctx.bundle()
    waiting = waiting_reason(ctx, bundle.order, record)
    if waiting is not None:
        if held_by_status(ctx, bundle.order):
            return StepResult.waiting(waiting)
        return StepResult.skipped(waiting)
    numbers = product_numbers(bundle.products, ctx.mapping)
    existing = await ctx.store.existing_products(numbers) if numbers else set()
    reasons = validate_order(
        bundle.order,
        bundle.products,
        bundle.shipping_addresses,
        existing_products=existing,
        mapping=ctx.mapping,
        policy=ctx.flow.validation,
    )
    if reasons:
        return await put_on_hold(ctx, record, hold_reason(reasons))
    if record.lifecycle is Lifecycle.ON_HOLD:
        # BigCommerce first. A run dying after this leaves the order held in Dataverse and out
        # of the on-hold status: the next run validates it again and lifts the hold. The other
        # way round it would find the connector's own on-hold status and no hold of the
        # connector's to explain it, and wait for a merchant to move it (as for a manual one).
        await ctx.set_status(ctx.flow.bigcommerce_status.released)
        ctx.writes.update_order(
            ctx.store_hash, ctx.order_id, lifecycle=Lifecycle.RECEIVED, clear_hold=True
        )
        await ctx.writes.commit()
        await ctx.reload()
        ctx.hold_lifted = True
        return StepResult.done("valid: hold lifted")
    return StepResult.skipped("valid")
