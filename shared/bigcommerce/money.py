"""Money as `Decimal`, read from whatever BigCommerce sends and written the way each API wants.

V2 sends amounts as 4-decimal strings (`"12.9900"`), but also as bare numbers in places (coupon
`amount`, consignment costs); V3 sends JSON numbers. A float is read through its shortest repr
(`12.99` -> `Decimal("12.99")`), never through its binary value, so no cent is invented.

On the way out, V3 payment actions document amounts as JSON numbers, so `JsonNumberMoney`
serialises to a float: for the 2-decimal amounts refunds use, the float's repr is exactly the
decimal string, so the JSON text carries the same digits. V2 shipment costs are 4-decimal strings
(`V2MoneyString`).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer


def parse_money(value: object) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("a boolean is not an amount")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(repr(value))
    elif isinstance(value, str) and value.strip():
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not an amount: {value[:40]!r}") from None
    else:
        raise ValueError(f"not an amount: {value!r}"[:60])
    if not amount.is_finite():
        raise ValueError("an amount must be finite")
    return amount


def parse_optional_money(value: object) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_money(value)


def _as_json_number(value: Decimal) -> float:
    return float(value)


def _as_v2_string(value: Decimal) -> str:
    return f"{value:.4f}"


Money = Annotated[Decimal, BeforeValidator(parse_money)]
OptionalMoney = Annotated[Decimal | None, BeforeValidator(parse_optional_money)]
JsonNumberMoney = Annotated[
    Decimal,
    BeforeValidator(parse_money),
    PlainSerializer(_as_json_number, return_type=float, when_used="json"),
]
V2MoneyString = Annotated[
    Decimal,
    BeforeValidator(parse_money),
    PlainSerializer(_as_v2_string, return_type=str, when_used="json"),
]
