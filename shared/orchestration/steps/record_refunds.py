"""Refunds (BigCommerce → Dataverse): each BigCommerce refund is recorded once against the
order and, item by item, its lines (`bciom_orderrefund` / `bciom_orderrefundline`, upserts by
refund id). BigCommerce moves the order to Refunded or Partially Refunded itself; the sync step
records that status. Refunds are read with V3 (`refunded_amount` on V2 orders is always 0).
"""

from __future__ import annotations

from shared.orchestration.context import OrderContext
from shared.orchestration.steps.result import StepResult


async def record_refunds(ctx: OrderContext) -> StepResult:
    record = ctx.record
    if record is None:
        return StepResult.skipped("no salesorder")
    known = {r.refund_id for r in record.refunds}
    refunds = await ctx.refunds()
    new = [r for r in refunds if r.id not in known]
    if not new:
        return StepResult.skipped(f"{len(refunds)} refunds, all recorded")
    for refund in sorted(new, key=lambda r: r.id):
        ctx.writes.record_refund(ctx.store_hash, ctx.order_id, refund)
    await ctx.writes.commit()
    await ctx.reload()
    total = sum((r.total_amount for r in new), start=new[0].total_amount * 0)
    return StepResult.done(f"{len(new)} refunds recorded ({total:.2f})")
