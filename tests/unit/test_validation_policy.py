"""The validation policy: an order's failures as short reasons, header then lines, and the hold
reason text they become. Orders are V2 bodies read through the client's models."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from shared.bigcommerce.models import Order, OrderProduct, OrderShippingAddress
from shared.mapping import load_mapping
from shared.mapping.config import HOLD_REASON_MAX_LENGTH, MappingConfig
from shared.orchestration.flow import ValidationPolicy, load_flow
from shared.orchestration.validation import hold_reason, product_numbers, validate_order

MAPPING = load_mapping(environ={})
DEFAULT_POLICY = load_flow(environ={}).validation
POLICY = ValidationPolicy()  # the model's defaults: no review limit, nothing blocked


def order(**changes: Any) -> Order:
    body: dict[str, Any] = {
        "id": 120,
        "status_id": 11,
        "date_created": "Tue, 05 Mar 2024 21:40:11 +0000",
        "date_modified": "Wed, 06 Mar 2024 08:15:00 +0000",
        "subtotal_ex_tax": "55.0000",
        "subtotal_inc_tax": "59.4000",
        "total_ex_tax": "60.0000",
        "total_inc_tax": "64.8000",
        "currency_code": "USD",
        "default_currency_code": "USD",
        "payment_status": "captured",
    }
    body.update(changes)
    return Order.model_validate(body)


def line(line_id: int = 12, sku: str | None = "ABC-1", **changes: Any) -> OrderProduct:
    body: dict[str, Any] = {
        "id": line_id,
        "order_id": 120,
        "product_id": 77,
        "name": "Orbit Terrarium",
        "sku": sku,
        "quantity": 1,
        "price_ex_tax": "25.0000",
        "price_inc_tax": "27.0000",
        "total_ex_tax": "25.0000",
        "total_inc_tax": "27.0000",
    }
    body.update(changes)
    return OrderProduct.model_validate(body)


def address(address_id: int = 3, **changes: Any) -> OrderShippingAddress:
    body: dict[str, Any] = {
        "id": address_id,
        "order_id": 120,
        "first_name": "Jane",
        "last_name": "Doe",
        "street_1": "1 Main St",
        "city": "Austin",
        "state": "Texas",
        "zip": "78701",
        "country": "United States",
        "country_iso2": "US",
    }
    body.update(changes)
    return OrderShippingAddress.model_validate(body)


def mapping(**changes: Any) -> MappingConfig:
    return MAPPING.model_copy(update=changes)


def check(
    the_order: Order | None = None,
    lines: list[OrderProduct] | None = None,
    addresses: list[OrderShippingAddress] | None = None,
    *,
    existing: set[str] | None = None,
    the_mapping: MappingConfig = MAPPING,
    policy: ValidationPolicy = POLICY,
) -> tuple[str, ...]:
    return validate_order(
        the_order or order(),
        [line()] if lines is None else lines,
        [address()] if addresses is None else addresses,
        existing_products={"ABC-1"} if existing is None else existing,
        mapping=the_mapping,
        policy=policy,
    )


# -- a valid order -------------------------------------------------------------------------------


def test_a_valid_order_has_no_reasons() -> None:
    assert check() == ()
    assert check(policy=DEFAULT_POLICY) == ()


def test_the_result_is_a_tuple_and_the_same_for_the_same_input() -> None:
    args: dict[str, Any] = {
        "the_order": order(payment_status="declined", default_currency_code="EUR"),
        "lines": [line(12, "X"), line(13, "Y")],
        "addresses": [address(3, city=""), address(4, zip=None)],
    }
    first = check(**args)
    assert isinstance(first, tuple)
    assert all(check(**args) == first for _ in range(5))


# -- header ----------------------------------------------------------------------------------------


def test_an_unmapped_currency_fails() -> None:
    assert check(order(default_currency_code="EUR", currency_code="EUR")) == (
        "currency EUR is not mapped",
    )


def test_the_transactional_currency_is_default_currency_code_else_currency_code() -> None:
    # As shared.mapping.order: default_currency_code wins over currency_code.
    assert check(order(default_currency_code="USD", currency_code="EUR")) == ()
    assert check(order(default_currency_code="EUR", currency_code="USD")) == (
        "currency EUR is not mapped",
    )
    assert check(order(default_currency_code=None, currency_code="EUR")) == (
        "currency EUR is not mapped",
    )
    assert check(order(default_currency_code=None, currency_code=" usd ")) == ()


def test_an_order_without_a_currency_code_fails() -> None:
    assert check(order(default_currency_code=None, currency_code="")) == ("no currency code",)


def test_a_currency_the_mapping_adds_is_accepted() -> None:
    euro = mapping(currencies={"USD": "USD", "EUR": "EUR"})
    assert check(order(default_currency_code="EUR"), the_mapping=euro) == ()


@pytest.mark.parametrize("status", ["captured", "Captured", "  PAID ", "authorized"])
def test_accepted_payment_statuses_pass_whatever_their_case_and_spaces(status: str) -> None:
    assert check(order(payment_status=status)) == ()


def test_a_payment_status_not_accepted_fails_naming_it() -> None:
    assert check(order(payment_status=" Declined ")) == (
        "payment status 'declined' is not accepted",
    )


def test_no_payment_status_passes_only_when_the_empty_status_is_accepted() -> None:
    assert check(order(payment_status=None)) == ()
    assert check(order(payment_status="  ")) == ()
    strict = ValidationPolicy(payment_statuses=("captured",))
    assert check(order(payment_status=None), policy=strict) == (
        "no payment status reported (not accepted)",
    )
    assert check(order(payment_status="Captured"), policy=strict) == ()


def test_a_total_above_the_manual_review_limit_fails_with_amounts_and_currency() -> None:
    big = order(total_inc_tax="6250.0000")
    assert check(big, policy=DEFAULT_POLICY) == (
        "total 6,250.00 USD is above the manual review limit 5,000.00 USD",
    )


def test_the_manual_review_limit_itself_passes_and_no_limit_means_none() -> None:
    assert check(order(total_inc_tax="5000.0000"), policy=DEFAULT_POLICY) == ()
    assert check(order(total_inc_tax="5000.0100"), policy=DEFAULT_POLICY) == (
        "total 5,000.01 USD is above the manual review limit 5,000.00 USD",
    )
    assert check(order(total_inc_tax="9999999.0000"), policy=POLICY) == ()


def test_the_review_amounts_are_rounded_to_cents() -> None:
    policy = ValidationPolicy(manual_review_above=Decimal("99.995"))
    assert check(order(total_inc_tax="1234567.8950"), policy=policy) == (
        "total 1,234,567.90 USD is above the manual review limit 100.00 USD",
    )


# -- ship-to ---------------------------------------------------------------------------------------


def test_a_missing_ship_to_field_fails_naming_the_address_and_field() -> None:
    assert check(addresses=[address(3, city="")]) == ("ship-to address 3: city missing",)


def test_missing_fields_of_one_address_are_one_reason_in_policy_order() -> None:
    policy = ValidationPolicy(ship_to_fields=("street_1", "city", "zip", "state", "country_iso2"))
    bare = address(3, zip=None, street_1="   ", state=None, country_iso2=None)
    assert check(addresses=[bare], policy=policy) == (
        "ship-to address 3: street_1, zip, state, country_iso2 missing",
    )


def test_every_shipping_address_is_checked_in_order() -> None:
    addresses = [address(7, city=""), address(3), address(5, zip="")]
    assert check(addresses=addresses) == (
        "ship-to address 7: city missing",
        "ship-to address 5: zip missing",
    )


def test_only_the_configured_fields_are_required() -> None:
    names = ValidationPolicy(ship_to_fields=("first_name", "last_name"))
    assert check(addresses=[address(3, city="", zip=None)], policy=names) == ()
    assert check(addresses=[address(3, last_name="")], policy=names) == (
        "ship-to address 3: last_name missing",
    )
    nothing = ValidationPolicy(ship_to_fields=())
    assert check(addresses=[address(3, city="", zip=None)], policy=nothing) == ()


def test_an_order_without_shipping_addresses_is_digital_and_skips_ship_to_checks() -> None:
    policy = ValidationPolicy(blocked_countries=("US",))
    assert check(addresses=[], policy=policy) == ()


def test_a_blocked_country_fails_once_whatever_its_case() -> None:
    policy = ValidationPolicy(blocked_countries=("ru", "BY"))
    addresses = [address(3, country_iso2="ru"), address(4), address(5, country_iso2="RU")]
    assert check(addresses=addresses, policy=policy) == ("ship-to country RU is blocked",)


def test_blocked_countries_are_reported_in_address_order_after_missing_fields() -> None:
    policy = ValidationPolicy(blocked_countries=("RU", "BY"))
    addresses = [address(3, country_iso2="BY"), address(4, country_iso2="RU", city="")]
    assert check(addresses=addresses, policy=policy) == (
        "ship-to address 4: city missing",
        "ship-to country BY is blocked",
        "ship-to country RU is blocked",
    )


# -- lines -----------------------------------------------------------------------------------------


def test_a_line_whose_product_is_not_in_dataverse_fails_naming_line_and_sku() -> None:
    assert check(existing=set()) == ("line 12 (SKU ABC-1): no Dataverse product 'ABC-1'",)


def test_products_are_looked_up_by_the_mapped_product_number() -> None:
    mapped = mapping(products=MAPPING.products.model_copy(update={"sku_map": {"ABC-1": "P-100"}}))
    assert check(existing={"P-100"}, the_mapping=mapped) == ()
    assert check(existing={"ABC-1"}, the_mapping=mapped) == (
        "line 12 (SKU ABC-1): no Dataverse product 'P-100'",
    )


def test_every_line_is_checked_in_the_order_given() -> None:
    lines = [line(14, "Z-9"), line(12, "ABC-1"), line(13, "Q-2")]
    assert check(lines=lines, existing={"ABC-1"}) == (
        "line 14 (SKU Z-9): no Dataverse product 'Z-9'",
        "line 13 (SKU Q-2): no Dataverse product 'Q-2'",
    )


def test_sku_spaces_are_trimmed_as_the_intake_mapping_trims_them() -> None:
    assert check(lines=[line(12, "  ABC-1 ")]) == ()


def test_products_are_not_checked_when_the_policy_does_not_require_them() -> None:
    assert check(existing=set(), policy=ValidationPolicy(require_products=False)) == ()


def test_a_line_without_a_sku_follows_the_mappings_without_sku() -> None:
    lines = [line(12, None, name="Gift wrap"), line(13, "  ")]
    assert MAPPING.products.without_sku == "reject"
    assert check(lines=lines) == (
        "line 12 (Gift wrap): no SKU",
        "line 13 (Orbit Terrarium): no SKU",
    )
    write_in = mapping(products=MAPPING.products.model_copy(update={"without_sku": "write_in"}))
    assert check(lines=lines, the_mapping=write_in) == ()
    assert check(lines=[line(12, None, name="")]) == ("line 12: no SKU",)


def test_long_or_multi_line_names_are_shortened_to_one_line() -> None:
    sku = "S" * 100
    (reason,) = check(lines=[line(12, sku)], existing=set())
    assert "\n" not in reason
    assert reason == f"line 12 (SKU {'S' * 59}…): no Dataverse product '{'S' * 59}…'"
    (reason,) = check(lines=[line(12, None, name="Gift\nwrap")])
    assert reason == "line 12 (Gift wrap): no SKU"


def test_product_numbers_lists_each_mapped_number_once_in_line_order() -> None:
    mapped = mapping(products=MAPPING.products.model_copy(update={"sku_map": {"B": "P-B"}}))
    lines = [line(1, "C"), line(2, " B "), line(3, None), line(4, "C"), line(5, "A")]
    assert product_numbers(lines, mapped) == ("C", "P-B", "A")
    assert product_numbers([], MAPPING) == ()


# -- everything at once ----------------------------------------------------------------------------


def test_reasons_come_header_first_then_ship_to_then_lines() -> None:
    policy = ValidationPolicy(
        payment_statuses=("captured",),
        manual_review_above=Decimal(100),
        blocked_countries=("RU",),
    )
    the_order = order(
        default_currency_code="EUR",
        currency_code="EUR",
        payment_status="declined",
        total_inc_tax="250.5",
    )
    lines = [line(12, "ABC-1"), line(13, "NOPE"), line(14, None, name="Note")]
    addresses = [address(3, city="", country_iso2="RU")]

    assert check(the_order, lines, addresses, policy=policy) == (
        "currency EUR is not mapped",
        "payment status 'declined' is not accepted",
        "total 250.50 EUR is above the manual review limit 100.00 EUR",
        "ship-to address 3: city missing",
        "ship-to country RU is blocked",
        "line 13 (SKU NOPE): no Dataverse product 'NOPE'",
        "line 14 (Note): no SKU",
    )


# -- the hold reason text --------------------------------------------------------------------------


def test_hold_reason_joins_the_reasons() -> None:
    assert hold_reason(["a", "b", "c"]) == "a; b; c"
    assert hold_reason(("only one",)) == "only one"
    assert hold_reason([]) == ""


def test_hold_reason_fits_the_holdreason_column() -> None:
    assert HOLD_REASON_MAX_LENGTH == 4000
    reasons = [f"line {n} (SKU SKU-{n:05}): no Dataverse product 'SKU-{n:05}'" for n in range(500)]
    text = hold_reason(reasons)
    assert len(text) <= HOLD_REASON_MAX_LENGTH
    kept = text.split("; ")
    more = kept.pop()
    assert kept == reasons[: len(kept)]
    assert more == f"… and {500 - len(kept)} more"
    # As many as fit: one more reason would not have.
    longer = "; ".join([*reasons[: len(kept) + 1], f"… and {500 - len(kept) - 1} more"])
    assert len(longer) > HOLD_REASON_MAX_LENGTH


def test_hold_reason_exactly_at_the_limit_is_not_cut() -> None:
    reasons = ["x" * 10, "y" * 20]
    assert hold_reason(reasons, max_length=32) == "x" * 10 + "; " + "y" * 20
    assert hold_reason(reasons, max_length=31) == "x" * 10 + "; … and 1 more"
    assert hold_reason(reasons, max_length=24) == "x" * 10 + "; … and 1 more"
    assert hold_reason(reasons, max_length=23) == "x" * 8 + "…; … and 1 more"


def test_hold_reason_cuts_a_first_reason_too_long_on_its_own() -> None:
    text = hold_reason(["z" * 50, "short"], max_length=30)
    assert text == "z" * 15 + "…; … and 1 more"
    assert len(text) == 30
    alone = hold_reason(["z" * 50], max_length=30)
    assert alone == "z" * 29 + "…"
    assert hold_reason(["z" * 50, "b"], max_length=5) == "zzzz…"


def test_hold_reason_keeps_each_reason_on_one_line() -> None:
    assert hold_reason(["a\nb", "  ", "c  d"]) == "a b; c d"


def test_hold_reason_of_real_reasons_is_within_the_limit_whatever_their_number() -> None:
    for count in (1, 10, 100, 1000):
        reasons = check(lines=[line(n, f"SKU-{n}") for n in range(count)], existing=set())
        assert len(reasons) == count
        assert len(hold_reason(reasons)) <= HOLD_REASON_MAX_LENGTH
