"""The fifteen order statuses (`/v2/order_statuses`), with the control panel's sort order."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OrderStatus:
    id: int
    name: str
    description: str
    sort_order: int


INCOMPLETE, PENDING, SHIPPED, PARTIALLY_SHIPPED, REFUNDED = 0, 1, 2, 3, 4
CANCELLED, DECLINED, AWAITING_PAYMENT, AWAITING_PICKUP, AWAITING_SHIPMENT = 5, 6, 7, 8, 9
COMPLETED, AWAITING_FULFILLMENT, MANUAL_VERIFICATION, DISPUTED, PARTIALLY_REFUNDED = (
    10,
    11,
    12,
    13,
    14,
)

STATUSES: dict[int, OrderStatus] = {
    s.id: s
    for s in (
        OrderStatus(
            0,
            "Incomplete",
            "An incomplete order happens when a shopper reached the payment page, but did not "
            "complete the transaction.",
            0,
        ),
        OrderStatus(
            1, "Pending", "Customer started the checkout process, but did not complete it.", 1
        ),
        OrderStatus(
            2,
            "Shipped",
            "Order has been shipped, but receipt has not been confirmed; seller has used the Ship "
            "Items action.",
            8,
        ),
        OrderStatus(
            3,
            "Partially Shipped",
            "Only some items in the order have been shipped, due to some products being "
            "pre-order only or other reasons.",
            6,
        ),
        OrderStatus(4, "Refunded", "Seller has used the Refund action.", 11),
        OrderStatus(
            5,
            "Cancelled",
            "Seller has cancelled an order, due to a stock inconsistency or other reasons.",
            9,
        ),
        OrderStatus(
            6,
            "Declined",
            "Seller has marked the order as declined for lack of manual payment, or other reasons.",
            10,
        ),
        OrderStatus(
            7,
            "Awaiting Payment",
            "Customer has completed checkout process, but payment has yet to be confirmed.",
            2,
        ),
        OrderStatus(
            8,
            "Awaiting Pickup",
            "Order has been pulled, and is awaiting customer pickup from a seller-specified "
            "location.",
            5,
        ),
        OrderStatus(
            9,
            "Awaiting Shipment",
            "Order has been pulled and packaged, and is awaiting collection from a shipping "
            "provider.",
            4,
        ),
        OrderStatus(
            10,
            "Completed",
            "Client has paid for their digital product and their file(s) are available for "
            "download.",
            7,
        ),
        OrderStatus(
            11,
            "Awaiting Fulfillment",
            "Customer has completed the checkout process and payment has been confirmed.",
            3,
        ),
        OrderStatus(
            12,
            "Manual Verification Required",
            "Order is on hold while some aspect needs to be manually confirmed.",
            13,
        ),
        OrderStatus(
            13,
            "Disputed",
            "Customer has initiated a dispute resolution process for the PayPal transaction that "
            "paid for the order.",
            12,
        ),
        OrderStatus(14, "Partially Refunded", "Seller has partially refunded the order.", 14),
    )
}

# Statuses in which the shopper's payment has not been taken, so nothing can be refunded.
UNPAID = frozenset({INCOMPLETE, PENDING, CANCELLED, DECLINED, AWAITING_PAYMENT})
