"""Sync order (BigCommerce → Dataverse): customer, salesorder and lines in one change set.

The event is only a hint: the order is read as it is now. Incomplete orders (status 0) wait until
they become real. The salesorder records BigCommerce's status and `date_modified`; state that is
not newer than what is recorded is not written again, so duplicates, late events and our own
echoes cost a read and no write. A closed salesorder (completed or cancelled) is not rewritten.
"""

from __future__ import annotations

from dataclasses import replace

from shared.mapping.order import map_order_intake
from shared.mapping.rows import Row
from shared.orchestration.context import OrderContext
from shared.orchestration.flow import Trigger
from shared.orchestration.records import Lifecycle
from shared.orchestration.steps.result import StepResult
from shared.orchestration.validation import product_numbers

INCOMPLETE = 0
_HOLD_COLUMN = "bciom_holdreason"


async def sync_order(ctx: OrderContext) -> StepResult:
    bundle = await ctx.bundle()
    order = bundle.order
    if order.status_id == INCOMPLETE:
        return StepResult.skipped(
            "incomplete order (status 0): waits until it is placed", stop=True
        )
    record = ctx.record
    if record is not None:
        if record.lifecycle.closed or record.statecode in (2, 3):
            return StepResult.skipped(f"salesorder is closed ({record.lifecycle})")
        recorded = record.bc_date_modified
        if recorded is not None and order.date_modified < recorded:
            return StepResult.skipped(
                f"stale: BigCommerce says {order.date_modified.isoformat()}, "
                f"Dataverse has {recorded.isoformat()}"
            )
        unchanged = recorded == order.date_modified and record.bc_status_id == order.status_id
        if unchanged and ctx.message.trigger is not Trigger.REPLAY:
            return StepResult.skipped("no change since the last sync")
    numbers = product_numbers(bundle.products, ctx.mapping)
    await ctx.store.existing_products(numbers)
    intake = map_order_intake(
        order,
        bundle.products,
        bundle.shipping_addresses,
        store_hash=ctx.store_hash,
        mapping=ctx.mapping,
    )
    if intake is None:
        return StepResult.skipped(f"status {order.status_id} is not taken in", stop=True)
    if record is not None and record.lifecycle is Lifecycle.ON_HOLD:
        # The connector's hold reason stands until validation passes; the status map's waiting
        # reason (e.g. for the on-hold status itself) must not overwrite it.
        intake = replace(intake, salesorder=_without_hold(intake.salesorder))
    ctx.writes.intake(intake)
    if record is None:
        ctx.writes.update_order(ctx.store_hash, ctx.order_id, lifecycle=Lifecycle.RECEIVED)
    await ctx.writes.commit()
    await ctx.reload()
    verb = "created" if record is None else "updated"
    return StepResult.done(
        f"salesorder {verb}: status {order.status_id}, {len(intake.lines)} lines"
    )


def _without_hold(row: Row) -> Row:
    values = {k: v for k, v in row.values.items() if k != _HOLD_COLUMN}
    return replace(row, values=values)
