"""What Dataverse holds for one order, as the steps read it (the OrderStore port returns these).

Quantities are Decimals as Dataverse stores them; ids are the BigCommerce ids the rows are keyed
by, plus the Dataverse row id where a step needs to bind to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class Lifecycle(StrEnum):
    """Where the connector has taken the order (salesorder `bciom_lifecycle`)."""

    RECEIVED = "received"  # written to Dataverse; not validated yet (or waiting on its status)
    ON_HOLD = "on_hold"  # parked by a critical policy: the reason is in bciom_holdreason
    RELEASED = "released"  # fulfillment orders created
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"  # every open line shipped
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    @property
    def closed(self) -> bool:
        return self in (Lifecycle.COMPLETED, Lifecycle.CANCELLED)


@dataclass(frozen=True, slots=True)
class LineRecord:
    order_product_id: int
    sku: str | None
    quantity: Decimal
    quantity_shipped: Decimal = Decimal(0)
    quantity_cancelled: Decimal = Decimal(0)

    @property
    def open_quantity(self) -> Decimal:
        return max(self.quantity - self.quantity_shipped - self.quantity_cancelled, Decimal(0))


@dataclass(frozen=True, slots=True)
class FulfillmentLineRecord:
    line_key: str
    order_product_id: int
    quantity: Decimal
    quantity_shipped: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class FulfillmentRecord:
    """A fulfillment order (msdyn_fulfillmentorder), keyed `<order id>-<n>`."""

    key: str
    source: str
    lines: tuple[FulfillmentLineRecord, ...]
    shipped: bool = False
    cancelled: bool = False
    tracking_number: str | None = None
    carrier: str | None = None
    bc_shipment_id: int | None = None

    @property
    def awaiting_shipment_sync(self) -> bool:
        """Marked shipped in Dataverse and not yet created in BigCommerce."""
        return self.shipped and self.bc_shipment_id is None and not self.cancelled

    @property
    def open(self) -> bool:
        return not self.shipped and not self.cancelled


@dataclass(frozen=True, slots=True)
class RefundRecord:
    refund_id: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class SalesOrderRecord:
    """The salesorder with its lines, fulfillment orders and refunds."""

    id: str  # salesorderid
    store_hash: str
    order_id: int
    lifecycle: Lifecycle
    bc_status_id: int | None = None
    bc_date_modified: datetime | None = None
    hold_reason: str | None = None
    statecode: int = 0
    statuscode: int = 1
    lines: tuple[LineRecord, ...] = ()
    fulfillments: tuple[FulfillmentRecord, ...] = ()
    refunds: tuple[RefundRecord, ...] = field(default=())
    # The salesorder's version when read (`@odata.etag`): how it was read, not what it holds.
    etag: str | None = field(default=None, compare=False)

    def line(self, order_product_id: int) -> LineRecord | None:
        return next((x for x in self.lines if x.order_product_id == order_product_id), None)
