"""The merchant: cancels orders in the store's control panel or in Dataverse, and refunds.

- A cancellation in BigCommerce is a status change to Cancelled (5), as the control panel makes
  it (the simulator's admin API; BigCommerce announces it with store/order/statusUpdated).
- A cancellation in Dataverse is the `CancelSalesOrder` action on the salesorder, as a Dynamics
  user makes it (the stand-in's service endpoint announces the salesorder's update).
- A refund is a V3 refund quote, then the refund it prices, paid back through the first refund
  method offered: one unit of one line (the order becomes Partially Refunded, 14) or the whole
  order (Refunded, 4). BigCommerce announces store/order/refund/created.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Final, Literal

from local.demo.stack import Stack
from shared.bigcommerce.models import Refund
from shared.bigcommerce.requests import RefundCreate, RefundLine, RefundQuoteRequest
from shared.dataverse.odata import bind_reference

CANCELLED: Final = 5
CANCELLED_NO_MONEY: Final = 4  # the salesorder's status reason when cancelled
CENT: Final = Decimal("0.01")


async def cancel_in_bigcommerce(stack: Stack, order_id: int) -> None:
    response = await stack.sim.post(
        f"/__sim/stores/{stack.store_hash}/orders/{order_id}/status",
        json={"status_id": CANCELLED},
    )
    response.raise_for_status()


async def cancel_in_dataverse(stack: Stack, order_id: int) -> None:
    order = bind_reference(
        "salesorders", {"bciom_storehash": stack.store_hash, "bciom_bcorderid": order_id}
    )
    await stack.dataverse.request(
        "POST",
        "CancelSalesOrder",
        body={
            "OrderClose": {
                "@odata.type": "Microsoft.Dynamics.CRM.orderclose",
                "subject": f"Cancelled by the merchant (BigCommerce order {order_id})",
                "salesorderid@odata.bind": order,
            },
            "Status": CANCELLED_NO_MONEY,
        },
    )


async def refund(
    stack: Stack, order_id: int, rng: random.Random
) -> tuple[Literal["line", "order"], Refund] | None:
    """Refunds one unit of one line or the whole order; None when nothing can be refunded."""
    bundle = await stack.store.get_order_bundle(order_id)
    lines = [p for p in bundle.products if p.quantity > 0]
    if rng.random() < 0.5 and lines:
        line = rng.choice(lines)
        kind: Literal["line", "order"] = "line"
        items = [
            RefundLine(
                item_type="PRODUCT", item_id=line.id, quantity=1, reason="Damaged in transit"
            )
        ]
    else:
        kind = "order"
        items = [
            RefundLine(
                item_type="ORDER",
                item_id=order_id,
                amount=bundle.order.total_inc_tax.quantize(CENT),
                reason="Returned in full",
            )
        ]
    quote = await stack.store.create_refund_quote(order_id, RefundQuoteRequest(items=items))
    if not quote.refund_methods or quote.total_refund_amount <= 0:
        return None
    created = await stack.store.create_refund(order_id, RefundCreate.from_quote(items, quote))
    return kind, created
