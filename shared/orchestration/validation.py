"""The validation policy (IOM's Validate Order Header / Validate Order Line tiles), as a pure check.

`validate_order` reads a BigCommerce order, its lines and shipping addresses and returns the
reasons it cannot be fulfilled as it is, one short line each; an empty tuple means valid. Every
failure is critical (iom.md §6 fact 4): the caller holds the order with `hold_reason(reasons)`
in the salesorder's `bciom_holdreason` column. Unmapped products are reported, never dropped
(iom.md §6 fact 2).

The reasons come in a fixed order, header first, then the ship-to addresses, then the lines:
1. currency: `currency EUR is not mapped` (the transactional currency, read as
   `shared.mapping.order` reads it: `default_currency_code`, else `currency_code`);
2. payment status: `payment status 'declined' is not accepted`;
3. total: `total 6,250.00 USD is above the manual review limit 5,000.00 USD`;
4. per shipping address, in the order given: `ship-to address 3: city, zip missing`, then the
   blocked countries, each once: `ship-to country RU is blocked` (an order without shipping
   addresses is digital and has no ship-to checks);
5. per line, in the order given: `line 12: no SKU` (under `products.without_sku: reject`),
   `line 12 (SKU ABC-1): no Dataverse product 'ABC-1'` (under `require_products`).

The caller asks Dataverse which products exist with `product_numbers(products, mapping)`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from shared.bigcommerce.models import Order, OrderProduct, OrderShippingAddress
from shared.mapping.config import HOLD_REASON_MAX_LENGTH, MappingConfig
from shared.orchestration.flow import ValidationPolicy

_NAME_MAX_LENGTH: Final = 60  # a SKU or status quoted in a reason is cut to this
_SEPARATOR: Final = "; "
_CENT: Final = Decimal("0.01")


def validate_order(
    order: Order,
    products: Sequence[OrderProduct],
    shipping_addresses: Sequence[OrderShippingAddress],
    *,
    existing_products: Collection[str],
    mapping: MappingConfig,
    policy: ValidationPolicy,
) -> tuple[str, ...]:
    """The reasons the order fails the policy, header then lines; empty when it passes.

    `existing_products` holds the Dataverse product numbers known to exist (at least those of
    `product_numbers(products, mapping)`); it is only read when `policy.require_products`.
    """
    currency = _currency_code(order)
    reasons: list[str] = []
    reasons += _currency_reasons(currency, mapping)
    reasons += _payment_reasons(order, policy)
    reasons += _total_reasons(order, currency, policy)
    reasons += _ship_to_reasons(shipping_addresses, policy)
    reasons += _line_reasons(products, existing_products, mapping, policy)
    return tuple(reasons)


def product_numbers(products: Sequence[OrderProduct], mapping: MappingConfig) -> tuple[str, ...]:
    """The Dataverse product numbers the lines name (through `products.sku_map`), each once,
    in line order: what to ask `OrderStore.existing_products` for."""
    numbers: dict[str, None] = {}
    for line in products:
        sku = (line.sku or "").strip()
        if sku:
            numbers[mapping.products.product_number(sku)] = None
    return tuple(numbers)


def hold_reason(reasons: Sequence[str], *, max_length: int = HOLD_REASON_MAX_LENGTH) -> str:
    """The reasons as one text for `bciom_holdreason`: joined with "; ", at most `max_length`
    characters. When they do not all fit, the first ones that do are kept and the text ends with
    "… and N more"; a first reason too long on its own is cut with "…". No reasons: ""."""
    if max_length < 1:
        raise ValueError("max_length must be at least 1")
    items = [" ".join(r.split()) for r in reasons]
    items = [r for r in items if r]
    text = _SEPARATOR.join(items)
    if len(text) <= max_length:
        return text
    for kept in range(len(items) - 1, 0, -1):
        more = f"{_SEPARATOR}… and {len(items) - kept} more"
        head = _SEPARATOR.join(items[:kept])
        if len(head) + len(more) <= max_length:
            return head + more
    # Not even the first reason fits beside the count: cut it, and say how many follow.
    more = f"{_SEPARATOR}… and {len(items) - 1} more" if len(items) > 1 else ""
    room = max_length - len(more) - 1
    if room < 1:
        return _cut(items[0], max_length)
    return items[0][:room] + "…" + more


# -- header ----------------------------------------------------------------------------------------


def _currency_code(order: Order) -> str:
    # As shared.mapping.order._currency: default_currency_code is the transactional currency.
    return (order.default_currency_code or order.currency_code or "").strip().upper()


def _currency_reasons(code: str, mapping: MappingConfig) -> list[str]:
    if not code:
        return ["no currency code"]
    if code not in mapping.currencies:
        return [f"currency {_name(code)} is not mapped"]
    return []


def _payment_reasons(order: Order, policy: ValidationPolicy) -> list[str]:
    status = (order.payment_status or "").strip().lower()
    if status in policy.payment_statuses:
        return []
    if not status:
        return ["no payment status reported (not accepted)"]
    return [f"payment status {_name(status)!r} is not accepted"]


def _total_reasons(order: Order, currency: str, policy: ValidationPolicy) -> list[str]:
    limit = policy.manual_review_above
    if limit is None or order.total_inc_tax <= limit:
        return []
    total, above = _money(order.total_inc_tax, currency), _money(limit, currency)
    return [f"total {total} is above the manual review limit {above}"]


# -- ship-to ---------------------------------------------------------------------------------------


def _ship_to_reasons(
    addresses: Sequence[OrderShippingAddress], policy: ValidationPolicy
) -> list[str]:
    reasons: list[str] = []
    for address in addresses:
        missing = [f for f in policy.ship_to_fields if not _filled(getattr(address, f, None))]
        if missing:
            reasons.append(f"ship-to address {address.id}: {', '.join(missing)} missing")
    blocked: dict[str, None] = {}
    for address in addresses:
        country = (address.country_iso2 or "").strip().upper()
        if country and country in policy.blocked_countries:
            blocked[country] = None
    reasons += [f"ship-to country {c} is blocked" for c in blocked]
    return reasons


def _filled(value: object) -> bool:
    return value is not None and bool(str(value).strip())


# -- lines -----------------------------------------------------------------------------------------


def _line_reasons(
    products: Sequence[OrderProduct],
    existing: Collection[str],
    mapping: MappingConfig,
    policy: ValidationPolicy,
) -> list[str]:
    reasons: list[str] = []
    for line in products:
        sku = (line.sku or "").strip()
        if not sku:
            if mapping.products.without_sku == "reject":
                name = _name(line.name)
                label = f"line {line.id} ({name})" if name else f"line {line.id}"
                reasons.append(f"{label}: no SKU")
            continue
        if not policy.require_products:
            continue
        number = mapping.products.product_number(sku)
        if number not in existing:
            reasons.append(
                f"line {line.id} (SKU {_name(sku)}): no Dataverse product {_name(number)!r}"
            )
    return reasons


# -- text ------------------------------------------------------------------------------------------


def _name(value: str | None) -> str:
    """A value quoted in a reason: on one line and short."""
    return _cut(" ".join((value or "").split()), _NAME_MAX_LENGTH)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _money(amount: Decimal, currency: str) -> str:
    text = f"{amount.quantize(_CENT, rounding=ROUND_HALF_UP):,.2f}"
    return f"{text} {currency}" if currency else text
