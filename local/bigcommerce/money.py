"""Money as BigCommerce writes it: V2 strings with four decimals, V3 numbers with two.

Amounts are `Decimal` inside the simulator; requests may send a float, a float-as-string or an
integer ("Float, Float-As-String, Integer" in the Orders V2 spec).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

ZERO = Decimal("0")
_FOUR = Decimal("0.0001")
_TWO = Decimal("0.01")


def q4(value: Decimal) -> Decimal:
    return value.quantize(_FOUR, rounding=ROUND_HALF_UP)


def q2(value: Decimal) -> Decimal:
    return value.quantize(_TWO, rounding=ROUND_HALF_UP)


def v2(value: Decimal) -> str:
    """The V2 representation: `'12.5000'`."""
    return str(q4(value))


def v3(value: Decimal) -> float:
    """The V3 representation: a JSON number rounded to cents."""
    return float(q2(value))


def parse_amount(raw: object) -> Decimal | None:
    """A non-negative finite amount from a request, or None when it is not one."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        return None
    if not value.is_finite() or value < 0:
        return None
    return value


def has_at_most_two_decimals(value: Decimal) -> bool:
    return value == q2(value)
