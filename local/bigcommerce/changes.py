"""The events a change publishes, with `data` shaped as BigCommerce's webhook callbacks.

See docs/webhooks/callbacks/data/*.json and docs/integrations/webhooks/events/index.mdx:
orders carry `{type: "order", id}`, shipments `{type: "shipment", id, orderId}` (camelCase),
transactions string ids, metafields `{metafield_id, resource_id: "<order id>"}`. Order events
carry the order's `channel_id`, for the channel-scoped `store/channel/{id}/order/*` hooks.
"""

from __future__ import annotations

from local.bigcommerce.events import StoreEvent
from local.bigcommerce.model import Order, Refund, Transaction


def order_event(store_hash: str, order: Order, what: str) -> StoreEvent:
    """`created`, `updated` or `archived`."""
    return StoreEvent(
        store_hash, f"store/order/{what}", {"type": "order", "id": order.id}, order.channel_id
    )


def status_updated(store_hash: str, order: Order, previous: int) -> StoreEvent:
    data = {
        "type": "order",
        "id": order.id,
        "status": {"previous_status_id": previous, "new_status_id": order.status_id},
    }
    return StoreEvent(store_hash, "store/order/statusUpdated", data, order.channel_id)


def order_changed(store_hash: str, order: Order, previous_status: int) -> list[StoreEvent]:
    """What any change to an order publishes: `updated`, plus `statusUpdated` for a new status."""
    events = [order_event(store_hash, order, "updated")]
    if order.status_id != previous_status:
        events.append(status_updated(store_hash, order, previous_status))
    return events


def refund_created(store_hash: str, order: Order, refund: Refund) -> StoreEvent:
    data = {"type": "order", "id": order.id, "refund": {"refund_id": refund.id}}
    return StoreEvent(store_hash, "store/order/refund/created", data, order.channel_id)


def shipment_event(store_hash: str, order: Order, shipment_id: int, what: str) -> StoreEvent:
    """`created`, `updated` or `deleted`."""
    data = {"type": "shipment", "id": shipment_id, "orderId": order.id}
    return StoreEvent(store_hash, f"store/shipment/{what}", data)


def transaction_created(store_hash: str, order: Order, transaction: Transaction) -> StoreEvent:
    kind = {"purchase": "capture", "capture": "capture"}.get(transaction.event, transaction.event)
    code = {"capture": "captured", "refund": "refunded", "void": "voided"}.get(kind, kind)
    data = {
        "type": "transaction",
        "order_id": str(order.id),
        "transaction_id": transaction.gateway_transaction_id,
        "transaction_status": "complete",
        "transaction_type": kind,
        "result": {"code": code, "message": code.capitalize(), "type": "success"},
        "platform_transaction_id": str(transaction.id),
        "provider_transaction_id": transaction.gateway_transaction_id,
    }
    return StoreEvent(store_hash, "store/order/transaction/created", data)


def metafield_event(store_hash: str, order_id: int, metafield_id: int, what: str) -> StoreEvent:
    """`created`, `updated` or `deleted`."""
    data = {"metafield_id": metafield_id, "resource_id": str(order_id)}
    return StoreEvent(store_hash, f"store/order/metafield/{what}", data)
