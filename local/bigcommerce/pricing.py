"""Order totals, computed from the lines as the store does whenever an order changes.

`is_tax_inclusive_pricing` decides which side of each price is the entered one; discounts are
taken off that side and the other side follows at the order's tax rate, so totals stay
consistent: `total_tax = total_inc_tax - total_ex_tax`. An API request may override the
subtotal or the total (both sides together, as the spec requires).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from local.bigcommerce.model import AppliedDiscount, Order, OrderProduct
from local.bigcommerce.money import ZERO, q4


@dataclass(frozen=True, slots=True)
class Totals:
    subtotal_ex: Decimal
    subtotal_inc: Decimal
    shipping_ex: Decimal
    shipping_inc: Decimal
    handling_ex: Decimal
    handling_inc: Decimal
    wrapping_ex: Decimal
    wrapping_inc: Decimal
    fees_ex: Decimal
    fees_inc: Decimal
    coupon_discount: Decimal
    discount_amount: Decimal
    total_ex: Decimal
    total_inc: Decimal

    @property
    def total_tax(self) -> Decimal:
        return self.total_inc - self.total_ex


def tax_factor(order: Order) -> Decimal:
    return 1 + order.tax_rate / 100


def split_discount(order: Order, amount: Decimal) -> tuple[Decimal, Decimal]:
    """(ex tax, inc tax) parts of a discount entered on the order's pricing side."""
    if order.is_tax_inclusive_pricing:
        return q4(amount / tax_factor(order)), amount
    return amount, q4(amount * tax_factor(order))


def line_discount_inc(order: Order, line: OrderProduct) -> Decimal:
    return split_discount(order, line.discount_total)[1]


def totals(order: Order) -> Totals:
    subtotal_ex = sum((p.total_ex_tax for p in order.products), ZERO)
    subtotal_inc = sum((p.total_inc_tax for p in order.products), ZERO)
    if order.subtotal_override is not None:
        subtotal_ex, subtotal_inc = order.subtotal_override
    shipping_ex = sum((a.cost_ex_tax for a in order.addresses), ZERO)
    shipping_inc = sum((a.cost_inc_tax for a in order.addresses), ZERO)
    handling_ex = sum((a.handling_ex_tax for a in order.addresses), ZERO)
    handling_inc = sum((a.handling_inc_tax for a in order.addresses), ZERO)
    wrapping_ex = sum((p.wrapping_ex_tax for p in order.products), ZERO)
    wrapping_inc = sum((p.wrapping_inc_tax for p in order.products), ZERO)
    fees_ex = sum((f.cost_ex_tax for f in order.fees), ZERO)
    fees_inc = sum((f.cost_inc_tax for f in order.fees), ZERO)
    coupon = sum((c.discount for c in order.coupons), ZERO)
    coupon_ex, coupon_inc = split_discount(order, coupon)
    manual_ex, manual_inc = split_discount(order, order.discount_amount)
    total_ex = subtotal_ex + shipping_ex + handling_ex + wrapping_ex + fees_ex - coupon_ex
    total_inc = subtotal_inc + shipping_inc + handling_inc + wrapping_inc + fees_inc - coupon_inc
    total_ex, total_inc = max(ZERO, total_ex - manual_ex), max(ZERO, total_inc - manual_inc)
    if order.total_override is not None:
        total_ex, total_inc = order.total_override
    return Totals(
        subtotal_ex=subtotal_ex,
        subtotal_inc=subtotal_inc,
        shipping_ex=shipping_ex,
        shipping_inc=shipping_inc,
        handling_ex=handling_ex,
        handling_inc=handling_inc,
        wrapping_ex=wrapping_ex,
        wrapping_inc=wrapping_inc,
        fees_ex=fees_ex,
        fees_inc=fees_inc,
        coupon_discount=coupon,
        discount_amount=order.discount_amount,
        total_ex=total_ex,
        total_inc=total_inc,
    )


def spread_coupons(order: Order) -> None:
    """Distributes each coupon over the lines in proportion to their price (`applied_discounts`)."""
    for line in order.products:
        line.discounts = [d for d in line.discounts if d.target != "order" or d.code is None]
    base = [
        (p, p.total_inc_tax if order.is_tax_inclusive_pricing else p.total_ex_tax)
        for p in order.products
    ]
    whole = sum((b for _, b in base), ZERO)
    if whole <= 0:
        return
    for coupon in order.coupons:
        left = coupon.discount
        for index, (line, share) in enumerate(base):
            amount = left if index == len(base) - 1 else q4(coupon.discount * share / whole)
            left -= amount
            if amount:
                line.discounts.append(
                    AppliedDiscount(coupon.code, amount, f"Coupon {coupon.code}", coupon.code)
                )
