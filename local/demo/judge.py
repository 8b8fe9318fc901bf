"""The verdict: both sides read in full and compared order by order and line by line.

BigCommerce is read through the connector's own client (orders with their lines and shipping
addresses, shipments, refunds), Dataverse through its Web API client (salesorders, their lines,
fulfillment orders and their lines, refunds), everything keyed by store and BigCommerce ids.

- lost: a BigCommerce order (status other than Incomplete) without a salesorder.
- duplicate_records: Dataverse rows sharing the key they are upserted by (order, line,
  fulfillment order, fulfillment line, refund); upserts make this impossible, so it is counted.
- state_mismatches: the order's BigCommerce status against the salesorder's lifecycle
  (`EXPECTED`: 8/9/11 released, 12 on hold, 3 partially shipped, 2 shipped, 10 completed, 5/6
  cancelled, 1/7 received and held by status), each line's quantity and quantity shipped, the
  shipments Dataverse recorded against those BigCommerce has, and the refunds. A refunded order
  (4, 14) is judged by its refunds, not its status.
- duplicate_shipments / duplicate_refunds: BigCommerce shipments, Dataverse refund rows, beyond
  what the other side accounts for; and shipments of an order repeating another one (same
  address, items, tracking number and fulfillment order) even when the other side accounts for
  as many.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from local.demo.stack import Stack
from shared.bigcommerce.client import OrderBundle
from shared.bigcommerce.models import Refund, Shipment

INCOMPLETE: Final = 0
REFUNDED_STATUSES: Final = frozenset({4, 14})
HELD_BY_STATUS: Final = frozenset({1, 7})
EXPECTED: Final[Mapping[int, str]] = {
    1: "received",
    2: "shipped",
    3: "partially_shipped",
    5: "cancelled",
    6: "cancelled",
    7: "received",
    8: "released",
    9: "released",
    10: "completed",
    11: "released",
    12: "on_hold",
}
STATUS_NAMES: Final[Mapping[int, str]] = {
    1: "Pending",
    2: "Shipped",
    3: "Partially Shipped",
    4: "Refunded",
    5: "Cancelled",
    6: "Declined",
    7: "Awaiting Payment",
    8: "Awaiting Pickup",
    9: "Awaiting Shipment",
    10: "Completed",
    11: "Awaiting Fulfillment",
    12: "Manual Verification Required",
    13: "Disputed",
    14: "Partially Refunded",
}
CONCURRENCY: Final = 12
JOURNAL_ORDERS: Final = 8  # orders gone wrong whose journal goes into the report


# -- reading -------------------------------------------------------------------------------------


@dataclass
class BigCommerceSide:
    bundles: dict[int, OrderBundle] = field(default_factory=dict)
    shipments: dict[int, list[Shipment]] = field(default_factory=dict)
    refunds: dict[int, list[Refund]] = field(default_factory=dict)


@dataclass
class DataverseSide:
    salesorders: list[dict[str, Any]]
    lines: list[dict[str, Any]]
    fulfillments: list[dict[str, Any]]
    fulfillment_lines: list[dict[str, Any]]
    refunds: list[dict[str, Any]]

    def by_order(self, rows: Iterable[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
        grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            grouped[int(row["bciom_bcorderid"])].append(row)
        return grouped


async def read_bigcommerce(stack: Stack, order_ids: Sequence[int]) -> BigCommerceSide:
    side = BigCommerceSide()
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(order_id: int) -> None:
        async with gate:
            side.bundles[order_id] = await stack.store.get_order_bundle(order_id)
            side.shipments[order_id] = await stack.store.list_shipments(order_id)

    await asyncio.gather(*(one(i) for i in order_ids))
    wanted = set(order_ids)
    async for page in stack.store.iter_refund_pages():
        for refund in page:
            if refund.order_id in wanted:
                side.refunds.setdefault(refund.order_id, []).append(refund)
    return side


async def read_dataverse(stack: Stack) -> DataverseSide:
    mine = f"bciom_storehash eq '{stack.store_hash}'"

    async def rows(entity_set: str, select: list[str]) -> list[dict[str, Any]]:
        return [r async for r in stack.dataverse.rows(entity_set, select=select, filter=mine)]

    salesorders, lines, fulfillments, fulfillment_lines, refunds = await asyncio.gather(
        rows(
            "salesorders",
            [
                "salesorderid",
                "bciom_bcorderid",
                "bciom_lifecycle",
                "bciom_holdreason",
                "bciom_bcstatusid",
                "statecode",
                "statuscode",
            ],
        ),
        rows(
            "salesorderdetails",
            [
                "bciom_bcorderid",
                "bciom_bcorderproductid",
                "bciom_sku",
                "quantity",
                "quantityshipped",
                "quantitycancelled",
            ],
        ),
        rows(
            "msdyn_fulfillmentorders",
            [
                "msdyn_fulfillmentorderid",
                "bciom_fulfillmentkey",
                "bciom_bcorderid",
                "bciom_source",
                "bciom_shipped",
                "bciom_cancelled",
                "bciom_bcshipmentid",
                "createdon",
            ],
        ),
        rows(
            "msdyn_fulfillmentorderdetails",
            [
                "bciom_linekey",
                "bciom_bcorderproductid",
                "bciom_quantity",
                "bciom_quantityshipped",
                "_msdyn_fulfillmentid_value",
            ],
        ),
        rows("bciom_orderrefunds", ["bciom_refundid", "bciom_bcorderid", "bciom_totalamount"]),
    )
    return DataverseSide(salesorders, lines, fulfillments, fulfillment_lines, refunds)


async def journal(stack: Stack, order_id: int) -> list[dict[str, Any]]:
    """The order's timeline (bciom_orderjournals), oldest first."""
    rows = [
        row
        async for row in stack.dataverse.rows(
            "bciom_orderjournals",
            select=["bciom_occurredon", "bciom_name", "bciom_outcome", "bciom_details"],
            filter=(f"bciom_storehash eq '{stack.store_hash}' and bciom_bcorderid eq {order_id}"),
            orderby="bciom_occurredon asc,versionnumber asc",
        )
    ]
    return [
        {
            "at": r.get("bciom_occurredon"),
            "entry": r.get("bciom_name"),
            "outcome": r.get("bciom_outcome"),
            "details": r.get("bciom_details"),
        }
        for r in rows
    ]


# -- judging -------------------------------------------------------------------------------------


def dataverse_state(row: Mapping[str, Any]) -> str:
    """The salesorder's state as the judge compares it: cancelled when closed as cancelled
    (statecode 2) whoever closed it, else the connector's lifecycle (null reads received)."""
    if row.get("statecode") == 2 or row.get("bciom_lifecycle") == "cancelled":
        return "cancelled"
    return str(row.get("bciom_lifecycle") or "received")


def agrees(status_id: int, row: Mapping[str, Any] | None) -> bool:
    """Whether the salesorder's state is the one the BigCommerce status stands for (a refunded
    order agrees once synced; its refunds are compared apart)."""
    if row is None:
        return status_id == INCOMPLETE
    if status_id in REFUNDED_STATUSES:
        return True
    if dataverse_state(row) != EXPECTED.get(status_id):
        return False
    return status_id not in HELD_BY_STATUS or bool(row.get("bciom_holdreason"))


@dataclass
class Verdict:
    figures: dict[str, Any]
    mismatches: list[dict[str, Any]]
    final_states: Counter[str]
    lines: int
    shipments: int
    fulfillments: int
    split_orders: int
    refunds: int
    synced_order_ids: set[int]

    @property
    def mismatched_orders(self) -> list[int]:
        return sorted({int(m["order"]) for m in self.mismatches})


def judge(bc: BigCommerceSide, dv: DataverseSide) -> Verdict:
    salesorders: dict[int, dict[str, Any]] = {}
    for row in dv.salesorders:
        salesorders.setdefault(int(row["bciom_bcorderid"]), row)
    lines_of = dv.by_order(dv.lines)
    fulfillments_of = dv.by_order(dv.fulfillments)
    refunds_of = dv.by_order(dv.refunds)
    fulfillment_lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in dv.fulfillment_lines:
        fulfillment_lines[str(line.get("_msdyn_fulfillmentid_value"))].append(line)

    mismatches: list[dict[str, Any]] = []
    lost: list[int] = []
    final_states: Counter[str] = Counter()
    duplicate_shipments = duplicate_refunds = 0
    line_count = 0

    def mismatch(order_id: int, what: str, bigcommerce: object, dataverse: object) -> None:
        mismatches.append(
            {"order": order_id, "what": what, "bigcommerce": bigcommerce, "dataverse": dataverse}
        )

    for order_id, bundle in sorted(bc.bundles.items()):
        status = bundle.order.status_id
        line_count += len(bundle.products)
        if status == INCOMPLETE:
            continue
        found = salesorders.get(order_id)
        if found is None:
            lost.append(order_id)
            final_states["lost"] += 1
            continue
        row = found
        final_states[_final_state(status, row)] += 1
        if not agrees(status, row):
            mismatch(
                order_id,
                "state",
                f"{status} {STATUS_NAMES.get(status, '')}".strip(),
                _describe(row),
            )
        dv_lines = {int(x["bciom_bcorderproductid"]): x for x in lines_of.get(order_id, [])}
        for product in bundle.products:
            if product.id not in dv_lines:
                mismatch(order_id, f"line {product.id}: missing", product.quantity, None)
                continue
            line = dv_lines.pop(product.id)
            quantity = _number(line.get("quantity"))
            if quantity != product.quantity:
                mismatch(order_id, f"line {product.id}: quantity", product.quantity, quantity)
            shipped = _number(line.get("quantityshipped"))
            if shipped != product.quantity_shipped:
                mismatch(order_id, f"line {product.id}: shipped", product.quantity_shipped, shipped)
        for extra in dv_lines:
            mismatch(order_id, f"line {extra}: not in BigCommerce", None, extra)
        address_of = {p.id: p.order_address_id for p in bundle.products}
        expected = _expected_shipments(
            fulfillments_of.get(order_id, []), fulfillment_lines, address_of
        )
        shipments = bc.shipments.get(order_id, [])
        if len(shipments) > expected:
            duplicate_shipments += len(shipments) - expected
        else:
            duplicate_shipments += _identical(shipments)
            if len(shipments) < expected:
                mismatch(order_id, "shipments", len(shipments), expected)
        recorded = {
            int(f["bciom_bcshipmentid"])
            for f in fulfillments_of.get(order_id, [])
            if f.get("bciom_bcshipmentid") is not None
        }
        unknown = recorded - {s.id for s in shipments}
        if unknown:
            mismatch(order_id, "shipment ids", sorted(s.id for s in shipments), sorted(unknown))
        bc_refunds = {r.id for r in bc.refunds.get(order_id, [])}
        dv_refunds = [int(r["bciom_refundid"]) for r in refunds_of.get(order_id, [])]
        if len(dv_refunds) > len(bc_refunds):
            duplicate_refunds += len(dv_refunds) - len(bc_refunds)
        if set(dv_refunds) != bc_refunds:
            mismatch(order_id, "refunds", sorted(bc_refunds), sorted(dv_refunds))

    duplicates = (
        _duplicates(dv.salesorders, "bciom_bcorderid")
        + _duplicates(dv.lines, "bciom_bcorderproductid")
        + _duplicates(dv.fulfillments, "bciom_fulfillmentkey")
        + _duplicates(dv.fulfillment_lines, "bciom_linekey")
        + _duplicates(dv.refunds, "bciom_refundid")
    )
    synced = {i for i in bc.bundles if i in salesorders}
    split = sum(  # across sources: a short line's remainder at the same source is no split
        1 for rows in fulfillments_of.values() if len({r.get("bciom_source") for r in rows}) >= 2
    )
    figures = {
        "lost": len(lost),
        "lost_orders": lost,
        "duplicate_records": duplicates,
        "duplicate_shipments": duplicate_shipments,
        "duplicate_refunds": duplicate_refunds,
        "state_mismatches": len(mismatches),
    }
    return Verdict(
        figures=figures,
        mismatches=mismatches,
        final_states=final_states,
        lines=line_count,
        shipments=sum(len(s) for s in bc.shipments.values()),
        fulfillments=len(dv.fulfillments),
        split_orders=split,
        refunds=len(dv.refunds),
        synced_order_ids=synced,
    )


def _final_state(status: int, row: Mapping[str, Any]) -> str:
    if status == 4:
        return "refunded"
    if status == 14:
        return "partially refunded"
    if status in HELD_BY_STATUS:
        return f"waiting: {STATUS_NAMES[status].lower()}"
    return dataverse_state(row).replace("_", " ")


def _describe(row: Mapping[str, Any]) -> str:
    text = f"{dataverse_state(row)} (statecode {row.get('statecode')})"
    if row.get("bciom_holdreason"):
        text += f", hold: {row['bciom_holdreason']}"
    return text


def _expected_shipments(
    fulfillments: Sequence[Mapping[str, Any]],
    lines_of: Mapping[str, Sequence[Mapping[str, Any]]],
    address_of: Mapping[int, int | None],
) -> int:
    """The BigCommerce shipments Dataverse accounts for: one per shipping address of each
    fulfillment order with a recorded shipment (the lines the warehouse said it shipped, or all
    of them when it named none), as the connector's ship step creates them."""
    count = 0
    for fulfillment in fulfillments:
        if fulfillment.get("bciom_bcshipmentid") is None:
            continue
        lines = lines_of.get(str(fulfillment["msdyn_fulfillmentorderid"]), [])
        shipped = [x for x in lines if _number(x.get("bciom_quantityshipped")) > 0] or lines
        addresses = {address_of.get(int(x["bciom_bcorderproductid"])) for x in shipped}
        count += max(len(addresses), 1)
    return count


def _identical(shipments: Sequence[Shipment]) -> int:
    """Shipments repeating another one of the order: same address, items, tracking number and
    comments (which name the fulfillment order; a remainder shipped like the first part, without
    tracking numbers, is a shipment of its own)."""
    seen = Counter(
        (
            s.order_address_id,
            (s.tracking_number or "").strip(),
            (s.comments or "").strip(),
            tuple(sorted((i.order_product_id, i.quantity) for i in s.items)),
        )
        for s in shipments
    )
    return sum(n - 1 for n in seen.values())


def _duplicates(rows: Iterable[Mapping[str, Any]], column: str) -> int:
    counts = Counter(row.get(column) for row in rows if row.get(column) is not None)
    return sum(n - 1 for n in counts.values() if n > 1)


def _number(value: object) -> int | Decimal:
    if value is None:
        return 0
    number = Decimal(str(value))
    return int(number) if number == number.to_integral_value() else number
