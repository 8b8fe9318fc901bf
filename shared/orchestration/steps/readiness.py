"""When an order is ready to be validated and sourced, and how it is put on hold."""

from __future__ import annotations

from dataclasses import replace

from shared.bigcommerce.client import OrderBundle
from shared.bigcommerce.models import Order
from shared.orchestration.context import OrderContext
from shared.orchestration.records import Lifecycle, SalesOrderRecord
from shared.orchestration.steps.result import StepResult

CANCELLED_STATUSES = frozenset({5, 6})  # Cancelled, Declined


def physical_lines(bundle: OrderBundle) -> set[int]:
    """The order products that ship: those with a shipping address. Digital lines have none
    (`order_address_id` 0) and never ship, in a digital order or beside physical lines."""
    return {p.id for p in bundle.products if p.order_address_id}


def is_cancelled(record: SalesOrderRecord) -> bool:
    """Cancelled by the connector, or closed as cancelled in Dataverse (statecode 2)."""
    return record.lifecycle is Lifecycle.CANCELLED or record.statecode == 2


def waiting_reason(ctx: OrderContext, order: Order, record: SalesOrderRecord) -> str | None:
    """Why the order is not ready for validation and sourcing, or None when it is.

    An order held by the connector sits in the on-hold status and is re-validated on replay; a
    status the mapping holds (awaiting payment, set by hand to manual verification) waits for
    BigCommerce to move on. Other statuses outside `ready` (shipped, completed at checkout)
    are past sourcing: see `held_by_status`.
    """
    statuses = ctx.flow.bigcommerce_status
    held = record.lifecycle is Lifecycle.ON_HOLD or ctx.hold_lifted
    if held and order.status_id == statuses.on_hold:
        return None
    rule = ctx.mapping.status(order.status_id)
    if rule is not None and rule.hold:
        return f"status {order.status_id}: {rule.hold}"
    if order.status_id not in statuses.ready:
        return f"status {order.status_id} is not one the flow sources from"
    return None


def held_by_status(ctx: OrderContext, order: Order) -> bool:
    """The mapping holds this status (the order waits for BigCommerce): later steps wait too.
    Otherwise a status outside `ready` only means there is nothing to validate or source, and
    the later steps (e.g. complete, for an order completed at checkout) still run."""
    if order.status_id == ctx.flow.bigcommerce_status.on_hold:
        return True
    rule = ctx.mapping.status(order.status_id)
    return rule is not None and bool(rule.hold)


async def put_on_hold(ctx: OrderContext, record: SalesOrderRecord, reason: str) -> StepResult:
    """Holds the order in Dataverse with `reason`, then shows it in BigCommerce.

    Dataverse first: if the BigCommerce write fails, the retry finds the hold and only moves
    the status. A hold that was already there with the same reason is not new (an echo or a
    replay without a fix): it is not parked again.
    """
    on_hold = ctx.flow.bigcommerce_status.on_hold
    recorded = record.lifecycle is Lifecycle.ON_HOLD and record.hold_reason == reason
    new = not (recorded and (await ctx.order()).status_id == on_hold)
    if not recorded:
        ctx.writes.update_order(
            ctx.store_hash, ctx.order_id, lifecycle=Lifecycle.ON_HOLD, hold_reason=reason
        )
        await ctx.writes.commit()
        ctx.remember(_held(record, reason))
    await ctx.set_status(on_hold)
    return StepResult.hold(reason, new=new)


def _held(record: SalesOrderRecord, reason: str) -> SalesOrderRecord:
    return replace(record, lifecycle=Lifecycle.ON_HOLD, hold_reason=reason)
