"""Shipment sync (Dataverse → BigCommerce): a fulfillment order marked shipped becomes a
BigCommerce shipment of exactly its lines and quantities.

Safe to repeat: before creating a shipment the step looks for one BigCommerce already has with
the same address, items and tracking number (a create whose reply was lost, or a crash before the
id was recorded), leaving out shipments that belong to another fulfillment order (recorded
against it, or naming it in their comments: a remainder shipped like the first part, without
tracking numbers, looks exactly like it), and records the shipment id in Dataverse after each
one, one change set per fulfillment order that also moves the order's lifecycle, so that a run
dying after it leaves nothing half recorded. Two overlapping runs of the order can both create
a shipment that ships part of a line; after a create the step settles on one (`_one_of_twins`).
A run that dies before correcting BigCommerce's status is caught up by the next one, which finds
no fulfillment order left to sync but a status behind its shipments.

Split orders give one shipment per fulfillment order; a fulfillment order whose lines span
several shipping addresses gives one per address. A fulfillment order shipped in part leaves a
new one at the same source for the rest. The shipment is created first, then the status is
corrected if BigCommerce did not move it (bigcommerce/docs#589).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from contextlib import suppress
from dataclasses import replace
from decimal import Decimal

from shared.bigcommerce import errors as bc
from shared.bigcommerce.models import Shipment
from shared.bigcommerce.requests import ShipmentCreate, ShipmentLine
from shared.orchestration.context import OrderContext
from shared.orchestration.failures import DataError
from shared.orchestration.ports import PlannedFulfillment, PlannedLine
from shared.orchestration.records import (
    FulfillmentLineRecord,
    FulfillmentRecord,
    Lifecycle,
    SalesOrderRecord,
)
from shared.orchestration.steps.readiness import is_cancelled, physical_lines
from shared.orchestration.steps.result import StepResult

SHIPPED, PARTIALLY_SHIPPED, COMPLETED = 2, 3, 10
COMMENT_PREFIX = "Fulfillment order "
Items = Counter[tuple[int, int]]  # (order product id, quantity) -> count


async def ship(ctx: OrderContext) -> StepResult:
    record = ctx.record
    if record is None:
        return StepResult.skipped("no salesorder")
    pending = sorted((f for f in record.fulfillments if f.awaiting_shipment_sync), key=_position)
    if not pending:
        if _behind(record):
            await _settle_status(ctx, record)
            return StepResult.done("caught up with the shipments already recorded")
        return StepResult.skipped("no shipped fulfillment order to sync")
    if is_cancelled(record):
        return StepResult.skipped("order cancelled: shipments are not created")
    bundle = await ctx.bundle()
    physical = physical_lines(bundle)
    address_of = {p.id: p.order_address_id for p in bundle.products}
    created: list[str] = []
    for fulfillment in pending:
        shipment_ids = []
        taken = {
            f.bc_shipment_id
            for f in record.fulfillments
            if f.bc_shipment_id is not None and f.key != fulfillment.key
        }
        for address_id, lines in _by_address(fulfillment, address_of).items():
            shipment = await _ensure_shipment(ctx, fulfillment, address_id, lines, taken)
            shipment_ids.append(shipment.id)
        ctx.writes.update_fulfillment(
            ctx.store_hash, fulfillment.key, bc_shipment_id=shipment_ids[0]
        )
        record = _shipped(record, fulfillment, shipment_ids[0])
        remainder = _remainder(ctx.order_id, record, fulfillment)
        if remainder is not None:
            ctx.writes.create_fulfillments(ctx.store_hash, ctx.order_id, [remainder])
            record = replace(record, fulfillments=(*record.fulfillments, _as_record(remainder)))
        for line in record.lines:
            ctx.writes.update_line(
                ctx.store_hash, line.order_product_id, quantity_shipped=line.quantity_shipped
            )
        record = replace(record, lifecycle=_lifecycle(record, physical))
        ctx.writes.update_order(ctx.store_hash, ctx.order_id, lifecycle=record.lifecycle)
        await ctx.writes.commit()
        ctx.remember(record)
        created.append(f"{fulfillment.key} -> shipment {', '.join(map(str, shipment_ids))}")
    await _settle_status(ctx, record)
    return StepResult.done("; ".join(created))


def _position(fulfillment: FulfillmentRecord) -> tuple[int, str]:
    """Fulfillment keys are `<order id>-<n>`: in n order, so 10 comes after 9."""
    number = fulfillment.key.rsplit("-", 1)[-1]
    return (int(number) if number.isdigit() else 0, fulfillment.key)


def _remainder(
    order_id: int, record: SalesOrderRecord, fulfillment: FulfillmentRecord
) -> PlannedFulfillment | None:
    """What a partly shipped fulfillment order left: a new fulfillment order at the same source
    for the rest (a backorder), created in the same change set that records the shipment, so a
    redelivery never creates it twice. None when everything shipped."""
    shipped = dict(_shipped_quantities(fulfillment))
    rest = tuple(
        PlannedLine(line.order_product_id, line.quantity - shipped.get(line.order_product_id, 0))
        for line in fulfillment.lines
        if line.quantity - shipped.get(line.order_product_id, Decimal(0)) > 0
    )
    if not rest:
        return None
    number = max(_position(f)[0] for f in record.fulfillments) + 1
    return PlannedFulfillment(f"{order_id}-{number}", fulfillment.source, rest)


def _as_record(plan: PlannedFulfillment) -> FulfillmentRecord:
    lines = tuple(
        FulfillmentLineRecord(f"{plan.key}-{x.order_product_id}", x.order_product_id, x.quantity)
        for x in plan.lines
    )
    return FulfillmentRecord(plan.key, plan.source, lines)


def _shipped_quantities(fulfillment: FulfillmentRecord) -> list[tuple[int, Decimal]]:
    """Lines and quantities to ship: the shipped quantities when the warehouse gave any, else
    the whole fulfillment order."""
    given = [
        (x.order_product_id, x.quantity_shipped)
        for x in fulfillment.lines
        if x.quantity_shipped > 0
    ]
    if given:
        return given
    return [(x.order_product_id, x.quantity) for x in fulfillment.lines if x.quantity > 0]


def _by_address(
    fulfillment: FulfillmentRecord, address_of: Mapping[int, int | None]
) -> dict[int, list[tuple[int, Decimal]]]:
    groups: dict[int, list[tuple[int, Decimal]]] = {}
    for product_id, quantity in _shipped_quantities(fulfillment):
        address = address_of.get(product_id)
        if not address:
            raise DataError(f"order product {product_id} has no shipping address in BigCommerce")
        groups.setdefault(address, []).append((product_id, quantity))
    return groups


async def _ensure_shipment(
    ctx: OrderContext,
    fulfillment: FulfillmentRecord,
    address_id: int,
    lines: Sequence[tuple[int, Decimal]],
    taken: Collection[int],
) -> Shipment:
    wanted: Items = Counter((product_id, int(quantity)) for product_id, quantity in lines)
    tracking = (fulfillment.tracking_number or "").strip()

    def matching(shipments: Sequence[Shipment]) -> Shipment | None:
        mine = [
            x for x in shipments if x.id not in taken and _made_for(x) in (None, fulfillment.key)
        ]
        return _matching(mine, address_id, wanted, tracking)

    listed = await ctx.shipments()
    existing = matching(listed)
    if existing is not None:
        return await _one_of_twins(ctx, fulfillment, existing, listed)
    request = ShipmentCreate(
        order_address_id=address_id,
        items=[ShipmentLine(order_product_id=p, quantity=int(q)) for p, q in lines],
        tracking_number=tracking or None,
        tracking_carrier=(fulfillment.carrier or None),
        comments=f"{COMMENT_PREFIX}{fulfillment.key} from {fulfillment.source}",
    )
    try:
        shipment = await ctx.storefront.create_shipment(ctx.order_id, request)
    except bc.ClientError:
        # Refused (e.g. nothing left to ship): another run of the order, whose message came
        # back when this one's lock expired, may have made it since the list was read.
        listed = await ctx.shipments(fresh=True)
        existing = matching(listed)
        if existing is None:
            raise
        return await _one_of_twins(ctx, fulfillment, existing, listed)
    ctx.shipment_created(shipment)
    write = f"shipment {shipment.id} for {fulfillment.key}"
    ctx.bigcommerce_writes.append(write)
    ctx.journal_write("bigcommerce shipment", write)
    return await _one_of_twins(ctx, fulfillment, shipment, await ctx.shipments(fresh=True))


async def _one_of_twins(
    ctx: OrderContext, fulfillment: FulfillmentRecord, found: Shipment, listed: Sequence[Shipment]
) -> Shipment:
    """The one shipment that stays of `found` and its twins in `listed`.

    A BigCommerce write is outside the Dataverse version fence: a run whose message came back
    while another went on (its lock expired) can list no shipment and create one as well, and
    BigCommerce accepts both when they ship part of a line. So the shipments are read again
    after a create: of those naming this fulfillment order with the same address, items and
    tracking number, the lowest id stays and the others are deleted. Every run comes to the same
    answer (one already deleted by another is done), and a run that failed between the two
    steps leaves the twins for the next one to settle."""
    wanted: Items = Counter((i.order_product_id, i.quantity) for i in found.items)
    tracking = found.tracking_number.strip()
    twins = [
        x
        for x in listed
        if x.id != found.id
        and _made_for(x) == fulfillment.key
        and _matching([x], found.order_address_id, wanted, tracking) is not None
    ]
    keep = min([found, *twins], key=lambda x: x.id)
    for extra in [found, *twins]:
        if extra.id == keep.id or _made_for(extra) != fulfillment.key:
            continue  # kept, or not this connector's to delete (e.g. the merchant's)
        with suppress(bc.NotFoundError):  # another run deleted it first
            await ctx.storefront.delete_shipment(ctx.order_id, extra.id)
        ctx.shipment_deleted(extra.id)
        write = f"deleted shipment {extra.id}, a twin of shipment {keep.id} for {fulfillment.key}"
        ctx.bigcommerce_writes.append(write)
        ctx.journal_write("bigcommerce shipment", write)
    return keep


def _matching(
    shipments: Sequence[Shipment], address_id: int, wanted: Items, tracking: str
) -> Shipment | None:
    for existing in shipments:
        items: Items = Counter((i.order_product_id, i.quantity) for i in existing.items)
        if (
            existing.order_address_id == address_id
            and items == wanted
            and (existing.tracking_number or "").strip() == tracking
        ):
            return existing
    return None


def _made_for(shipment: Shipment) -> str | None:
    """The fulfillment order a shipment this step made names in its comments; None for others'."""
    text = shipment.comments or ""
    if not text.startswith(COMMENT_PREFIX):
        return None
    return text.removeprefix(COMMENT_PREFIX).split(" ", 1)[0] or None


def _shipped(
    record: SalesOrderRecord, fulfillment: FulfillmentRecord, shipment_id: int
) -> SalesOrderRecord:
    shipped = dict(_shipped_quantities(fulfillment))
    lines = tuple(
        replace(
            line,
            quantity_shipped=line.quantity_shipped + shipped.get(line.order_product_id, Decimal(0)),
        )
        for line in record.lines
    )
    fulfillments = tuple(
        replace(f, bc_shipment_id=shipment_id) if f.key == fulfillment.key else f
        for f in record.fulfillments
    )
    return replace(record, lines=lines, fulfillments=fulfillments)


def _lifecycle(record: SalesOrderRecord, physical: Collection[int]) -> Lifecycle:
    everything = all(x.open_quantity == 0 for x in record.lines if x.order_product_id in physical)
    return Lifecycle.SHIPPED if everything else Lifecycle.PARTIALLY_SHIPPED


def _behind(record: SalesOrderRecord) -> bool:
    """Shipments recorded, but the lifecycle or the BigCommerce status last seen not moved on
    (a run that died after recording them, under an older version of this step, or before it
    corrected BigCommerce's status)."""
    if is_cancelled(record) or not any(x.quantity_shipped > 0 for x in record.lines):
        return False
    if record.lifecycle is Lifecycle.RELEASED:
        return True
    moved = record.bc_status_id in (SHIPPED, PARTIALLY_SHIPPED, COMPLETED)
    return record.lifecycle in (Lifecycle.SHIPPED, Lifecycle.PARTIALLY_SHIPPED) and not moved


async def _settle_status(ctx: OrderContext, record: SalesOrderRecord) -> None:
    """After the shipments: the lifecycle, and BigCommerce's status if it did not move itself."""
    lifecycle = _lifecycle(record, physical_lines(await ctx.bundle()))
    order = await ctx.fresh_order()
    ctx.note_bigcommerce(order)
    if record.lifecycle is not lifecycle:
        ctx.writes.update_order(ctx.store_hash, ctx.order_id, lifecycle=lifecycle)
    ctx.remember(replace(ctx.record or record, lifecycle=lifecycle))
    await ctx.writes.commit()
    wanted = SHIPPED if lifecycle is Lifecycle.SHIPPED else PARTIALLY_SHIPPED
    if order.status_id != wanted and order.status_id not in (SHIPPED, COMPLETED):
        await ctx.set_status(wanted)
