"""Refund quotes and refunds (`/v3/orders/{id}/payment_actions/refund_quotes` and `/refunds`).

A quote prices the requested items: `PRODUCT`/`GIFT_WRAPPING` by quantity (at the price paid,
after discounts), `SHIPPING`/`HANDLING` by amount against an order address, `ORDER` as a
tax-exempt amount, `FEE` against a fee; each is capped at what is left to refund, and the total
at what the shopper paid less earlier refunds (the excess shows as a negative `adjustment`).
A refund must pay out exactly the quote for its items (or the merchant's override), through the
providers of one of the quote's `refund_methods`; store credit needs a registered customer; and
an order takes one refund at a time. Violations answer 422, as the API does.

A refund records its lines, a refund transaction per payment, and moves the order to Refunded (4)
once everything paid is refunded, else to Partially Refunded (14).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from local.bigcommerce import changes
from local.bigcommerce.errors import ApiError
from local.bigcommerce.events import StoreEvent
from local.bigcommerce.model import Order, Refund, RefundLine, RefundPayment, Transaction
from local.bigcommerce.money import ZERO, has_at_most_two_decimals, q2, q4
from local.bigcommerce.payload import Fields
from local.bigcommerce.pricing import line_discount_inc, totals
from local.bigcommerce.state import Store
from local.bigcommerce.statuses import PARTIALLY_REFUNDED, REFUNDED, UNPAID

ITEM_TYPES = ("PRODUCT", "GIFT_WRAPPING", "SHIPPING", "HANDLING", "ORDER", "FEE")
OFFLINE_REASON = "This is an offline payment provider."
GATEWAYS = {"storecredit": "storecredit", "custom": "custom"}


@dataclass(frozen=True, slots=True)
class PaymentOption:
    provider_id: str
    description: str
    amount: Decimal
    offline: bool = False
    offline_provider: bool = False
    offline_reason: str = ""


@dataclass(slots=True)
class Quote:
    order_id: int
    lines: list[RefundLine]
    total: Decimal  # refundable now, rounded to cents, after any adjustment
    tax: Decimal
    rounding: Decimal
    adjustment: Decimal
    order_level: Decimal
    tax_inclusive: bool
    methods: list[list[PaymentOption]] = field(default_factory=list)


def refundable(order: Order) -> Decimal:
    return max(ZERO, q2(totals(order).total_inc) - order.refunded_total)


def _unprocessable(title: str, *, wrap: bool) -> ApiError:
    return ApiError(422, title, wrap_in_data=wrap)


def _amount(item: Fields, *, wrap: bool) -> Decimal:
    amount = item.amount("amount")
    if amount is None:
        raise _unprocessable(f"The field '{item.where}.amount' is required.", wrap=wrap)
    if not has_at_most_two_decimals(amount):
        raise _unprocessable(f"'{item.where}.amount' must have at most two decimals.", wrap=wrap)
    return amount


def _line(
    order: Order, item: Fields, used: dict[tuple[str, int], Decimal], wrap: bool
) -> RefundLine:
    def fail(why: str) -> ApiError:
        return _unprocessable(f"{item.where}: {why}", wrap=wrap)

    kind = item.text("item_type") or ""
    if kind not in ITEM_TYPES:
        raise fail(f"item_type must be one of {', '.join(ITEM_TYPES)}")
    item_id = item.integer("item_id", minimum=0)
    if item_id is None:
        raise fail("item_id is required")
    reason = item.text("reason", "", max_length=1000) or ""
    key = (kind, item_id)
    if kind in ("PRODUCT", "GIFT_WRAPPING"):
        line = order.product(item_id)
        if line is None:
            raise fail(f"order product {item_id} is not on this order")
        quantity = item.integer("quantity", minimum=1)
        if quantity is None:
            raise fail("quantity is required, and at least 1")
        refunded = line.quantity_refunded if kind == "PRODUCT" else line.wrapping_refunded_quantity
        left_quantity = line.quantity - refunded - int(used.get(key, ZERO))
        if kind == "GIFT_WRAPPING" and not line.wrapping_inc_tax:
            raise fail(f"order product {item_id} has no gift wrapping")
        if quantity > left_quantity:
            raise fail(f"quantity {quantity} is more than the {left_quantity} left to refund")
        used[key] = used.get(key, ZERO) + quantity
        if kind == "PRODUCT":
            unit = line.price_inc_tax - line_discount_inc(order, line) / line.quantity
            unit_tax = line.price_tax
        else:
            unit = line.wrapping_inc_tax / line.quantity
            unit_tax = (line.wrapping_inc_tax - line.wrapping_ex_tax) / line.quantity
        amount = q4(unit * quantity)
        for adjustment in item.objects("adjustments") or []:
            value = adjustment.raw.get("amount")
            if not isinstance(value, int | float) or isinstance(value, bool) or value >= 0:
                raise fail("adjustments[].amount must be a negative number")
            amount = max(ZERO, amount + Decimal(str(value)))
        return RefundLine(kind, item_id, amount, q4(unit_tax * quantity), quantity, None, reason)
    amount = _amount(item, wrap=wrap)
    if kind in ("SHIPPING", "HANDLING"):
        address = order.address(item_id)
        if address is None:
            raise fail(f"order address {item_id} is not on this order")
        if kind == "SHIPPING":
            cost_inc, cost_ex, done = (
                address.cost_inc_tax,
                address.cost_ex_tax,
                address.refunded_shipping,
            )
        else:
            cost_inc, cost_ex, done = (
                address.handling_inc_tax,
                address.handling_ex_tax,
                address.refunded_handling,
            )
        left = cost_inc - done - used.get(key, ZERO)
        tax = q4(amount * (cost_inc - cost_ex) / cost_inc) if cost_inc else ZERO
    elif kind == "FEE":
        fee = order.fee(item_id)
        if fee is None:
            raise fail(f"fee {item_id} is not on this order")
        left = fee.cost_inc_tax - fee.refunded - used.get(key, ZERO)
        tax = (
            q4(amount * (fee.cost_inc_tax - fee.cost_ex_tax) / fee.cost_inc_tax)
            if fee.cost_inc_tax
            else ZERO
        )
    else:  # ORDER: a tax-exempt amount against the order as a whole
        left, tax = refundable(order) - used.get(key, ZERO), ZERO
    if amount > left:
        raise fail(f"amount {amount} is more than the {q2(max(left, ZERO))} left to refund")
    used[key] = used.get(key, ZERO) + amount
    return RefundLine(kind, item_id, amount, tax, None, amount, reason)


def _methods(order: Order, total: Decimal) -> list[list[PaymentOption]]:
    methods: list[list[PaymentOption]] = []
    payment = order.payment
    if payment is not None and payment.provider_id not in ("custom", "storecredit"):
        if payment.offline:
            option = PaymentOption(
                payment.provider_id, payment.description, total, True, True, OFFLINE_REASON
            )
        else:
            option = PaymentOption(payment.provider_id, payment.description, total)
        methods.append([option])
    if order.customer_id:
        methods.append([PaymentOption("storecredit", "Store Credit", total)])
    methods.append([PaymentOption("custom", "Custom", total, True, True, OFFLINE_REASON)])
    return methods


def quote(order: Order, body_raw: object, *, wrap: bool = False) -> Quote:
    body = Fields(body_raw, status=422)
    if order.status_id in UNPAID:
        raise _unprocessable(
            "The order has not been paid: only orders with a received payment can be refunded.",
            wrap=wrap,
        )
    left = refundable(order)
    if "items" not in body and "tax_adjustment_amount" in body:
        adjustment = body.amount("tax_adjustment_amount") or ZERO
        total = min(q2(adjustment), left)
        return Quote(
            order.id,
            [],
            total,
            total,
            ZERO,
            total - q2(adjustment),
            ZERO,
            order.is_tax_inclusive_pricing,
            _methods(order, total),
        )
    items = body.objects("items")
    if not items:
        raise _unprocessable("The field 'items' is required and cannot be empty.", wrap=wrap)
    used: dict[tuple[str, int], Decimal] = {}
    lines = [_line(order, item, used, wrap) for item in items]
    raw = sum((line.amount for line in lines), ZERO)
    rounded = q2(raw)
    total = min(rounded, left)
    return Quote(
        order_id=order.id,
        lines=lines,
        total=total,
        tax=q2(sum((line.tax for line in lines), ZERO)),
        rounding=rounded - raw,
        adjustment=total - rounded,
        order_level=q2(sum((line.amount for line in lines if line.item_type == "ORDER"), ZERO)),
        tax_inclusive=order.is_tax_inclusive_pricing,
        methods=_methods(order, total),
    )


@dataclass(slots=True)
class RefundPlan:
    quote: Quote
    total: Decimal
    tax: Decimal
    overridden: bool
    payments: list[tuple[str, Decimal, bool]]  # (provider_id, amount, offline)


def plan(order: Order, body_raw: object) -> RefundPlan:
    """Checks a refund request against the quote for its items; raises 422 on any violation."""
    body = Fields(body_raw, status=422)
    if not body.objects("payments"):
        raise _unprocessable("The field 'payments' is required and cannot be empty.", wrap=True)
    the_quote = quote(order, body_raw, wrap=True)
    total, tax, overridden = the_quote.total, the_quote.tax, False
    if "merchant_calculated_override" in body:
        override = Fields(
            body.raw["merchant_calculated_override"], "merchant_calculated_override", 422
        )
        override_total = override.amount("total_amount")
        if override_total is None or "total_tax" not in override:
            raise _unprocessable(
                "merchant_calculated_override needs total_amount and total_tax.", wrap=True
            )
        raw_tax = override.raw["total_tax"]
        if not isinstance(raw_tax, int | float) or isinstance(raw_tax, bool):
            raise _unprocessable(
                "merchant_calculated_override.total_tax must be a number.", wrap=True
            )
        if override_total > refundable(order):
            raise _unprocessable("The override is more than the amount left to refund.", wrap=True)
        total, tax, overridden = q2(override_total), q2(Decimal(str(raw_tax))), True
    if total <= 0:
        raise _unprocessable("There is nothing left to refund on this order.", wrap=True)
    payments = []
    for payment in body.objects("payments") or []:
        provider = payment.text("provider_id") or ""
        amount = payment.amount("amount")
        if not provider or amount is None or not has_at_most_two_decimals(amount):
            raise _unprocessable(
                f"{payment.where} needs a provider_id and a non-negative amount in cents.",
                wrap=True,
            )
        if provider == "storecredit" and not order.customer_id:
            raise _unprocessable("Unable to provide store credit for a guest customer.", wrap=True)
        payments.append((provider, amount, bool(payment.boolean("offline", False))))
    paid = sum((amount for _, amount, _ in payments), ZERO)
    if paid != total:
        raise _unprocessable(
            f"The refund's payments ({paid}) must add up to the refund quote's amount "
            f"({total}) for these items.",
            wrap=True,
        )
    if not any(_fits(method, payments) for method in the_quote.methods):
        providers = ", ".join(sorted({p for p, _, _ in payments}))
        raise _unprocessable(
            f"The payment providers ({providers}) are not a refund method of this order's "
            "refund quote.",
            wrap=True,
        )
    return RefundPlan(the_quote, total, tax, overridden, payments)


def _fits(method: list[PaymentOption], payments: list[tuple[str, Decimal, bool]]) -> bool:
    options = {o.provider_id: o for o in method}
    return all(p in options and a <= options[p].amount for p, a, _ in payments)


def commit(
    store: Store, order: Order, the_plan: RefundPlan, now: datetime, events: list[StoreEvent]
) -> Refund:
    for line in the_plan.quote.lines:
        if line.item_type == "PRODUCT":
            product = order.product(line.item_id)
            assert product is not None
            product.quantity_refunded += line.quantity or 0
        elif line.item_type == "GIFT_WRAPPING":
            product = order.product(line.item_id)
            assert product is not None
            product.wrapping_refunded_quantity += line.quantity or 0
        elif line.item_type in ("SHIPPING", "HANDLING"):
            address = order.address(line.item_id)
            assert address is not None
            if line.item_type == "SHIPPING":
                address.refunded_shipping += line.amount
            else:
                address.refunded_handling += line.amount
        elif line.item_type == "FEE":
            fee = order.fee(line.item_id)
            assert fee is not None
            fee.refunded += line.amount
    refund = Refund(
        id=store.next_id("refund"),
        order_id=order.id,
        created=now,
        reason=next((line.reason for line in the_plan.quote.lines if line.reason), ""),
        total_amount=the_plan.total,
        total_tax=the_plan.tax,
        uses_merchant_override_values=the_plan.overridden,
        items=the_plan.quote.lines,
        payments=[],
    )
    original = next((t for t in order.transactions if t.event in ("purchase", "capture")), None)
    new_transactions = []
    for provider, amount, offline in the_plan.payments:
        transaction = Transaction(
            id=store.next_id("transaction"),
            event="refund",
            method="store_credit"
            if provider == "storecredit"
            else (
                "custom" if provider == "custom" else (original.method if original else "custom")
            ),
            amount=amount,
            currency=order.currency_code,
            gateway=GATEWAYS.get(provider, provider),
            gateway_transaction_id=f"re_{order.id}_{refund.id}_{provider}",
            date_created=now,
            payment_method_id=f"{provider}.refund",
            reference_transaction_id=original.id if original else None,
        )
        order.transactions.append(transaction)
        new_transactions.append(transaction)
        refund.payments.append(
            RefundPayment(
                store.next_id("refund_payment"), provider, amount, offline, str(transaction.id)
            )
        )
    store.refunds[refund.id] = refund
    order.refund_ids.append(refund.id)
    order.refunded_total += the_plan.total
    previous = order.status_id
    fully = order.refunded_total >= q2(totals(order).total_inc)
    order.status_id = REFUNDED if fully else PARTIALLY_REFUNDED
    order.payment_status = "refunded" if fully else "partially refunded"
    order.date_modified = now
    events.append(changes.refund_created(store.hash, order, refund))
    events.extend(changes.transaction_created(store.hash, order, t) for t in new_transactions)
    events.extend(changes.order_changed(store.hash, order, previous))
    return refund
