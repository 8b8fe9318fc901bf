"""Taking the shopper's payment: the purchase transaction a paid order carries (`/transactions`)."""

from __future__ import annotations

import random
from datetime import datetime

from local.bigcommerce import changes
from local.bigcommerce.events import StoreEvent
from local.bigcommerce.model import Order, PaymentProvider, Transaction
from local.bigcommerce.money import q2
from local.bigcommerce.pricing import totals
from local.bigcommerce.state import Store

CARD_TYPES = (("visa", "411111"), ("master", "555555"), ("american_express", "378282"))

PROVIDERS = {
    "braintree": PaymentProvider("braintree", "Braintree", "braintree", "credit_card"),
    "stripe": PaymentProvider("stripe", "Stripe", "stripe", "credit_card"),
    "paypalexpress": PaymentProvider("paypalexpress", "PayPal Express", "paypalexpress", "offsite"),
    "bankdeposit": PaymentProvider(
        "bankdeposit", "Bank Deposit", "bankdeposit", "offline", offline=True
    ),
}


def capture(
    store: Store, order: Order, now: datetime, events: list[StoreEvent], rng: random.Random
) -> Transaction | None:
    """Records the payment of an order paid through its provider; none for manual payments."""
    payment = order.payment
    order.payment_status = "captured"
    if payment is None or payment.provider_id == "custom":
        return None
    card = None
    if payment.method == "credit_card":
        card_type, iin = rng.choice(CARD_TYPES)
        card = {
            "card_type": card_type,
            "card_iin": iin,
            "card_last4": f"{rng.randrange(10_000):04d}",
            "card_expiry_month": rng.randint(1, 12),
            "card_expiry_year": now.year + rng.randint(1, 5),
        }
        order.credit_card_type = card_type
    transaction = Transaction(
        id=store.next_id("transaction"),
        event="purchase",
        method=payment.method,
        amount=q2(totals(order).total_inc),
        currency=order.currency_code,
        gateway=payment.gateway,
        gateway_transaction_id=f"{payment.gateway[:3]}_{order.id}_{rng.randrange(16**8):08x}",
        date_created=now,
        payment_method_id=f"{payment.gateway}.{payment.method}",
        credit_card=card,
        offline={"display_name": payment.description} if payment.offline else None,
    )
    order.transactions.append(transaction)
    order.payment_provider_id = transaction.gateway_transaction_id
    events.append(changes.transaction_created(store.hash, order, transaction))
    return transaction
