"""Order shipments (`/v2/orders/{id}/shipments`): creation rules and the status moves they cause.

Creating a shipment needs an `order_address_id` of the order and `items` of that address, each
no more than ordered minus already shipped; tracking fields are bounded as `orderShipment_Post`
says (number 50, link 500, comments 65535). The order then moves to Shipped (2) once every
physical item has shipped, else to Partially Shipped (3), as a store does. Deleting a shipment
gives its quantities back but, as the Orders guide says, does not move the order out of Shipped.
"""

from __future__ import annotations

import re
from datetime import datetime

from local.bigcommerce import changes
from local.bigcommerce.errors import ApiError
from local.bigcommerce.events import StoreEvent
from local.bigcommerce.model import Order, Shipment, ShipmentItem
from local.bigcommerce.payload import Fields
from local.bigcommerce.state import Store
from local.bigcommerce.statuses import PARTIALLY_SHIPPED, SHIPPED

STANDARD_PROVIDERS = {
    "": "",
    "auspost": "Australia Post",
    "canadapost": "Canada Post",
    "endicia": "Endicia",
    "usps": "USPS",
    "fedex": "FedEx",
    "royalmail": "Royal Mail",
    "ups": "UPS",
    "upsready": "UPS",
    "upsonline": "UPS",
    "shipperhq": "ShipperHQ",
}
_CUSTOM_PROVIDER = re.compile(r"^carrier_[A-Za-z0-9_-]+$")
_TRACKING_URLS = {
    "usps": "https://tools.usps.com/go/TrackConfirmAction?tLabels={}",
    "ups": "https://www.ups.com/track?tracknum={}",
    "upsready": "https://www.ups.com/track?tracknum={}",
    "upsonline": "https://www.ups.com/track?tracknum={}",
    "fedex": "https://www.fedex.com/fedextrack/?trknbr={}",
    "auspost": "https://auspost.com.au/mypost/track/#/details/{}",
    "canadapost": "https://www.canadapost-postescanada.ca/track-reperage/en#/details/{}",
    "royalmail": "https://www.royalmail.com/track-your-item#/tracking-results/{}",
}


def provider_display_name(provider: str) -> str:
    return STANDARD_PROVIDERS.get(provider, provider)


def generated_tracking_link(shipment: Shipment) -> str:
    if shipment.tracking_link or not shipment.tracking_number:
        return ""
    template = _TRACKING_URLS.get(shipment.shipping_provider)
    if template:
        return template.format(shipment.tracking_number)
    if shipment.tracking_carrier or shipment.shipping_provider:
        carrier = shipment.tracking_carrier or shipment.shipping_provider
        return f"https://track.aftership.com/{carrier}/{shipment.tracking_number}"
    return ""


def _tracking_fields(shipment: Shipment, body: Fields, *, number_limit: int | None) -> None:
    provider = body.text("shipping_provider")
    if provider is not None:
        if provider not in STANDARD_PROVIDERS and not _CUSTOM_PROVIDER.match(provider):
            raise body.invalid("shipping_provider", "is not a known shipping provider")
        shipment.shipping_provider = provider
    number = body.text("tracking_number", max_length=number_limit)
    if number is not None:
        shipment.tracking_number = number
    for name, limit in (
        ("tracking_link", 500),
        ("tracking_carrier", 100),
        ("shipping_method", 250),
        ("comments", 65535),
    ):
        value = body.text(name, max_length=limit)
        if value is not None:
            setattr(shipment, name, value)
    cost = body.amount("merchant_shipping_cost")
    if cost is not None:
        shipment.merchant_shipping_cost = cost


def _address_id(order: Order, body: Fields) -> int:
    address_id = body.integer("order_address_id", minimum=1)
    if address_id is None:
        raise body.required("order_address_id")
    if order.address(address_id) is None:
        raise body.invalid("order_address_id", "is not a shipping address of this order")
    return address_id


def _items(order: Order, body: Fields, address_id: int) -> list[ShipmentItem]:
    raw_items = body.objects("items")
    if not raw_items:
        raise body.required("items")
    wanted: dict[int, int] = {}
    for item in raw_items:
        line_id = item.need_integer("order_product_id", minimum=1)
        quantity = item.need_integer("quantity", minimum=1)
        line = order.product(line_id)
        if line is None:
            raise item.invalid("order_product_id", "is not a product of this order")
        if not line.shippable:
            raise item.invalid("order_product_id", f"is a {line.type} product, not shippable")
        if line.order_address_id != address_id:
            raise item.invalid("order_product_id", "does not ship to this order_address_id")
        wanted[line_id] = wanted.get(line_id, 0) + quantity
        available = line.quantity - line.quantity_shipped
        if wanted[line_id] > available:
            raise ApiError(
                400,
                f"The quantity specified for order product {line_id} ({wanted[line_id]}) is "
                f"greater than the quantity available to ship ({available}).",
            )
    return [ShipmentItem(i, order.product(i).product_id, q) for i, q in wanted.items()]  # type: ignore[union-attr]


def _status_after_shipping(order: Order) -> int:
    physical = [p for p in order.products if p.shippable]
    if all(p.quantity_shipped >= p.quantity for p in physical):
        return SHIPPED
    return PARTIALLY_SHIPPED


def create(
    store: Store, order: Order, body_raw: object, now: datetime, events: list[StoreEvent]
) -> Shipment:
    body = Fields(body_raw)
    address_id = _address_id(order, body)
    items = _items(order, body, address_id)
    shipment = Shipment(store.next_id("shipment"), address_id, now, items)
    _tracking_fields(shipment, body, number_limit=50)
    for item in items:
        line = order.product(item.order_product_id)
        assert line is not None
        line.quantity_shipped += item.quantity
    previous = order.status_id
    order.status_id = _status_after_shipping(order)
    if order.status_id == SHIPPED and order.date_shipped is None:
        order.date_shipped = now
    order.shipments[shipment.id] = shipment
    order.date_modified = now
    events.append(changes.shipment_event(store.hash, order, shipment.id, "created"))
    events.extend(changes.order_changed(store.hash, order, previous))
    return shipment


def update(
    store: Store, order: Order, shipment: Shipment, body_raw: object, events: list[StoreEvent]
) -> None:
    body = Fields(body_raw)
    if "items" in body:
        raise body.invalid("items", "cannot be changed; delete the shipment and create another")
    if "order_address_id" in body:
        address_id = _address_id(order, body)
        if any(
            (line := order.product(i.order_product_id)) is not None
            and line.order_address_id != address_id
            for i in shipment.items
        ):
            raise body.invalid("order_address_id", "does not hold this shipment's items")
        shipment.order_address_id = address_id
    _tracking_fields(shipment, body, number_limit=None)
    events.append(changes.shipment_event(store.hash, order, shipment.id, "updated"))


def delete(
    store: Store, order: Order, shipment: Shipment, now: datetime, events: list[StoreEvent]
) -> None:
    for item in shipment.items:
        line = order.product(item.order_product_id)
        if line is not None:
            line.quantity_shipped = max(0, line.quantity_shipped - item.quantity)
    del order.shipments[shipment.id]
    order.date_modified = now
    events.append(changes.shipment_event(store.hash, order, shipment.id, "deleted"))
    events.extend(changes.order_changed(store.hash, order, order.status_id))
