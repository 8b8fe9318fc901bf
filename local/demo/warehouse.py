"""The warehouse: it works in Dataverse, as IOM's fulfillment providers do.

It reads the released fulfillment orders nobody shipped or cancelled yet, with their lines (a flag
never written is null, and `ne true` leaves nulls out in Dataverse, hence `eq null or eq false`),
and marks one shipped with a tracking number and a carrier. A partial shipment first writes what
went out on each line (`bciom_quantityshipped`, below `bciom_quantity` for the short line), then
marks the fulfillment order shipped: the connector's ship step sends exactly those quantities to
BigCommerce. Lines first, because the fulfillment order's update is what Dataverse announces.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

from local.demo.stack import Stack

FULFILLMENT_ORDERS: Final = "msdyn_fulfillmentorders"
FULFILLMENT_LINES: Final = "msdyn_fulfillmentorderdetails"
LINES_NAVIGATION: Final = "msdyn_fulfillmentorder_details"
CARRIERS: Final = ("UPS", "FedEx", "USPS", "DHL Express")


@dataclass(frozen=True, slots=True)
class OpenLine:
    id: UUID
    order_product_id: int
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class OpenFulfillment:
    id: UUID
    key: str  # "<order id>-<n>"
    order_id: int
    source: str
    lines: tuple[OpenLine, ...]


async def open_fulfillments(stack: Stack) -> dict[int, list[OpenFulfillment]]:
    """Released fulfillment orders not shipped and not cancelled, by BigCommerce order id."""
    store = stack.store_hash
    found: dict[int, list[OpenFulfillment]] = defaultdict(list)
    async for row in stack.dataverse.rows(
        FULFILLMENT_ORDERS,
        select=[
            "msdyn_fulfillmentorderid",
            "bciom_fulfillmentkey",
            "bciom_bcorderid",
            "bciom_source",
        ],
        filter=(
            f"bciom_storehash eq '{store}'"
            " and (bciom_shipped eq null or bciom_shipped eq false)"
            " and (bciom_cancelled eq null or bciom_cancelled eq false)"
        ),
        expand=(
            f"{LINES_NAVIGATION}($select=msdyn_fulfillmentorderdetailid,"
            "bciom_bcorderproductid,bciom_quantity)"
        ),
    ):
        fulfillment = _fulfillment(row)
        found[fulfillment.order_id].append(fulfillment)
    for fulfillments in found.values():
        fulfillments.sort(key=lambda f: f.key)
    return dict(found)


def _fulfillment(row: dict[str, Any]) -> OpenFulfillment:
    lines = tuple(
        OpenLine(
            UUID(str(line["msdyn_fulfillmentorderdetailid"])),
            int(line["bciom_bcorderproductid"]),
            Decimal(str(line.get("bciom_quantity") or 0)),
        )
        for line in row.get(LINES_NAVIGATION) or ()
    )
    return OpenFulfillment(
        UUID(str(row["msdyn_fulfillmentorderid"])),
        str(row["bciom_fulfillmentkey"]),
        int(row["bciom_bcorderid"]),
        str(row.get("bciom_source") or ""),
        tuple(sorted(lines, key=lambda x: x.order_product_id)),
    )


def short_line(fulfillment: OpenFulfillment) -> OpenLine | None:
    """The line a partial shipment leaves short: one with two or more units (one unit stays
    behind), else the last of two or more lines (nothing of it goes out); None when the
    fulfillment order is a single line of one unit, which cannot ship in part."""
    several = [x for x in fulfillment.lines if x.quantity >= 2]
    if several:
        return several[0]
    if len(fulfillment.lines) >= 2:
        return fulfillment.lines[-1]
    return None


async def ship(
    stack: Stack, fulfillment: OpenFulfillment, seed: int, *, short: OpenLine | None = None
) -> None:
    """Marks the fulfillment order shipped; with `short`, that line ships one unit less (or
    nothing, for a single unit) and the other lines ship in full."""
    rng = random.Random(f"{seed}/tracking/{fulfillment.key}")
    if short is not None:
        for line in fulfillment.lines:
            quantity = line.quantity - 1 if line == short else line.quantity
            await stack.dataverse.update(
                FULFILLMENT_LINES, line.id, {"bciom_quantityshipped": quantity}
            )
    await stack.dataverse.update(
        FULFILLMENT_ORDERS,
        fulfillment.id,
        {
            "bciom_shipped": True,
            "bciom_trackingnumber": f"1Z{rng.randrange(10**14):014d}",
            "bciom_carrier": rng.choice(CARRIERS),
        },
    )
