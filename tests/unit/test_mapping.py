"""The mapping configuration file and the pure order-intake mapping.

Bad mappings start from the shipped default and break one thing each; the error must be one line
naming the exact key. Orders are V2 bodies in BigCommerce's shapes (4-decimal money strings,
RFC 2822 dates), read through the same models the client uses.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.bigcommerce.models import Order, OrderProduct, OrderShippingAddress
from shared.config import ConfigurationError
from shared.dataverse.schema import CONTACT, SCHEMA
from shared.mapping import (
    DEFAULT_MAPPING_FILE,
    MappingConfigError,
    MappingError,
    Reference,
    SalesOrderState,
    customer_key,
    escape_key_value,
    is_key_safe,
    load_mapping,
    map_order_intake,
    parse_customer_key,
    parse_mapping,
    unescape_key_value,
)
from shared.mapping.keys import CUSTOMER_KEY_MAX_LENGTH, CustomerKeyKind

STORE = "abc123"
DEFAULT: dict[str, Any] = yaml.safe_load(DEFAULT_MAPPING_FILE.read_text(encoding="utf-8"))
MAPPING = parse_mapping(DEFAULT)


# -- the configuration file -----------------------------------------------------------------------


def test_the_default_file_loads_and_rules_every_bigcommerce_status() -> None:
    mapping = load_mapping(environ={})

    assert mapping.version == 1
    assert sorted(mapping.status_map) == list(range(15))
    incomplete = mapping.status(0)
    assert incomplete is not None
    assert incomplete.intake is False
    assert mapping.currencies == {"USD": "USD"}


def test_connector_mapping_file_names_another_file_yaml_or_json(tmp_path: Path) -> None:
    custom = copy.deepcopy(DEFAULT)
    custom["price_list"] = "Retail"
    as_json = tmp_path / "mapping.json"
    as_json.write_text(json.dumps(custom))  # JSON object keys are strings: "11" reads as 11

    mapping = load_mapping(environ={"CONNECTOR_MAPPING_FILE": str(as_json)})

    assert mapping.price_list == "Retail"
    assert mapping.status(11) == MAPPING.status(11)


def change(path: str, value: Any) -> dict[str, Any]:
    """The default mapping with the value at dotted `path` replaced (or deleted for DELETE)."""
    raw = copy.deepcopy(DEFAULT)
    *parents, last = path.split(".")
    node: Any = raw
    for part in parents:
        node = node[int(part) if part.isdigit() and int(part) in node else part]
    key: Any = int(last) if last.isdigit() and int(last) in node else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
    return raw


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "status_map.11.statuscode",
            3,
            "status_map.11.statuscode: 3 is not a status reason of statecode 0 (allowed: 1, 2)",
        ),
        (
            "status_map.11.statecode",
            9,
            "status_map.11.statecode: 9 is not a salesorder state (0, 1, 2, 3, 4)",
        ),
        (
            "status_map.11.statuscode",
            "new",
            "status_map.11.statuscode: input should be a valid integer, unable to parse string "
            "as an integer",
        ),
        ("status_map.11.statuscod", 1, "status_map.11.statuscod: unknown key"),
        (
            "status_map.13",
            DELETE,
            "status_map: missing BigCommerce status id(s) 13: every status 0-14 needs a rule "
            "(intake: false to ignore one)",
        ),
        ("status_map.15", {"intake": False}, "status_map.15: not a BigCommerce status id (0-14)"),
        (
            "status_map.ready",
            {"intake": False},
            "status_map.ready: not a valid key: input should be a valid integer, unable to parse "
            "string as an integer",
        ),
        ("status_map.0.statecode", 0, "status_map.0.statecode: not used when intake is false"),
        (
            "status_map.5.hold",
            "refund first",
            "status_map.5.hold: only an active order (statecode 0) is held",
        ),
        ("status_map.1.hold", "x" * 4001, "status_map.1.hold: longer than 4000 characters"),
        (
            "status_map.1.hold",
            "  ",
            "status_map.1.hold: must not be empty (leave it out for no hold)",
        ),
        ("version", 2, "version: unsupported version 2 (this build reads 1)"),
        ("version", DELETE, "version: required"),
        ("price_list", DELETE, "price_list: required"),
        ("unit", "", "unit: string should have at least 1 character"),
        (
            "currencies",
            {"usd": "USD"},
            "currencies.usd: not an ISO 4217 code (three capital letters)",
        ),
        (
            "price_lists_by_currency",
            {"EUR": "Euro list"},
            "price_lists_by_currency.EUR: not one of the currencies",
        ),
        (
            "order_name",
            "BC-{id}",
            "order_name: unknown placeholder {id} (allowed: {order_id}, {store_hash})",
        ),
        ("order_name", "BigCommerce order", "order_name: must contain {order_id}"),
        (
            "shipping_methods.map",
            {"Free Shipping": 0},
            "shipping_methods.map.Free Shipping: 0 is not an option value (1 or more)",
        ),
        (
            "payment_methods.TEST PAYMENT GATEWAY",
            {},
            "payment_methods.TEST PAYMENT GATEWAY: same name as 'Test Payment Gateway' (names "
            "are case-insensitive)",
        ),
        (
            "customers.order_customer",
            "company",
            "customers.order_customer: input should be 'contact' or 'account'",
        ),
        (
            "customers.anonymous_email",
            "nobody",
            "customers.anonymous_email: 'nobody' is not an e-mail address",
        ),
        (
            "products.without_sku",
            "skip",
            "products.without_sku: input should be 'reject' or 'write_in'",
        ),
        (
            "products.sku_map",
            {"ABC": " "},
            "products.sku_map.ABC: the product number must not be empty",
        ),
    ],
)
def test_a_bad_mapping_fails_with_one_line_naming_the_key(
    path: str, value: Any, message: str
) -> None:
    with pytest.raises(MappingConfigError) as caught:
        parse_mapping(change(path, value))

    assert str(caught.value) == f"invalid mapping: {message}"
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ConfigurationError)  # start-up prints it and stops


def test_unreadable_files_fail_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(MappingConfigError) as caught:
        load_mapping(environ={"CONNECTOR_MAPPING_FILE": str(missing)})
    assert str(caught.value) == f"invalid mapping: CONNECTOR_MAPPING_FILE: no file at {missing}"

    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nstatus_map: {0: [}\n")
    with pytest.raises(MappingConfigError, match=r"^invalid mapping: .*broken\.yaml: not valid "):
        load_mapping(broken)
    assert "(line 2, column" in str(load_error(broken))

    listing = tmp_path / "list.yaml"
    listing.write_text("- version: 1\n")
    assert str(load_error(listing)) == (
        "invalid mapping: the file must hold keys (version, status_map, …), not a list"
    )


def load_error(path: Path) -> MappingConfigError:
    with pytest.raises(MappingConfigError) as caught:
        load_mapping(path)
    return caught.value


# -- keys -----------------------------------------------------------------------------------------


TRICKY = [
    "o'brien+orders@example.com",
    "a/b@example.com",
    "~tilde~@example.com",
    "100%real@example.com",
    "we<ird>*&:\\?+@example.com",
    "already~2Fescaped@example.com",
    "ünïcødé@exämple.com",
]


@pytest.mark.parametrize("value", TRICKY)
def test_escaping_is_reversible_and_key_safe(value: str) -> None:
    escaped = escape_key_value(value)

    assert is_key_safe(escaped)
    assert unescape_key_value(escaped) == value


def test_escaping_keeps_distinct_values_distinct_and_plain_values_unchanged() -> None:
    escaped = [escape_key_value(v) for v in TRICKY]
    assert len(set(escaped)) == len(TRICKY)
    assert escape_key_value("jane.doe@example.com") == "jane.doe@example.com"
    assert escape_key_value("a:b") == "a~3Ab"
    for bad in ("a:b", "~", "~2", "~zz", "~41"):  # raw forbidden, truncated, not hex, never made
        with pytest.raises(ValueError, match="not an escaped key value"):
            unescape_key_value(bad)


def test_customer_keys_for_registered_customers_guests_and_long_addresses() -> None:
    assert customer_key(42, "Jane@Example.com") == "c~3A42"
    assert customer_key(0, " Jane.Doe+Shop@Example.COM ") == "e~3Ajane.doe~2Bshop@example.com"
    assert parse_customer_key("c~3A42") == (CustomerKeyKind.CUSTOMER, "42")
    assert parse_customer_key(customer_key(0, "A/B@x.io")) == (CustomerKeyKind.EMAIL, "a/b@x.io")

    long_address = "x" * 150 + "@example.com"
    hashed = customer_key(0, long_address)
    assert len(hashed) <= CUSTOMER_KEY_MAX_LENGTH == CONTACT.column("bciom_customerkey").max_length
    kind, digest = parse_customer_key(hashed)
    assert kind is CustomerKeyKind.HASHED
    assert len(digest) == 64
    assert customer_key(0, long_address.upper()) == hashed  # still case-insensitive
    with pytest.raises(ValueError, match="needs an e-mail address"):
        customer_key(0, "  ")


# -- orders ---------------------------------------------------------------------------------------


def order_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": 120,
        "customer_id": 11,
        "date_created": "Tue, 05 Mar 2024 21:40:11 +0000",
        "date_modified": "Wed, 06 Mar 2024 08:15:00 +0000",
        "status_id": 11,
        "status": "Awaiting Fulfillment",
        "custom_status": "Ready to pack",
        "channel_id": 1,
        "subtotal_ex_tax": "55.0000",
        "subtotal_inc_tax": "59.4000",
        "total_ex_tax": "60.0000",
        "total_inc_tax": "64.8000",
        "total_tax": "4.8000",
        "currency_code": "USD",
        "default_currency_code": "USD",
        "payment_method": "Credit Card",
        "billing_address": {
            "first_name": "Jane",
            "last_name": "Doe",
            "street_1": "1 Main St",
            "city": "Austin",
            "state": "Texas",
            "zip": "78701",
            "country": "United States",
            "country_iso2": "US",
            "phone": "+1 512 555 0100",
            "email": "Jane.Doe@Example.com",
        },
        "products": {
            "url": "https://api.bigcommerce.com/x/products",
            "resource": "/orders/120/products",
        },
    }
    body.update(changes)
    return body


def line_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": 501,
        "order_id": 120,
        "product_id": 77,
        "order_address_id": 9,
        "name": "Orbit Terrarium - Large",
        "sku": "OTL-1",
        "quantity": 2,
        "price_ex_tax": "25.0000",
        "price_inc_tax": "27.0000",
        "total_ex_tax": "50.0000",
        "total_inc_tax": "54.0000",
        "total_tax": "4.0000",
        "applied_discounts": [{"id": "coupon", "amount": "5.0000", "code": "SPRING"}],
    }
    body.update(changes)
    return body


def intake(
    order: dict[str, Any] | None = None,
    lines: list[dict[str, Any]] | None = None,
    *,
    mapping: Any = MAPPING,
    customer: dict[str, Any] | None = None,
    shipping_method: str | None = "Flat Rate",
) -> Any:
    addresses = []
    if shipping_method is not None:
        addresses.append(
            OrderShippingAddress.model_validate(
                {"id": 9, "order_id": 120, "shipping_method": shipping_method, "country": "US"}
            )
        )
    return map_order_intake(
        Order.model_validate(order or order_body()),
        [OrderProduct.model_validate(b) for b in (lines or [line_body()])],
        addresses,
        store_hash=STORE,
        mapping=mapping,
        customer=customer,
    )


def test_a_registered_customers_order_maps_to_the_expected_rows() -> None:
    lines = [
        line_body(),
        line_body(
            id=502,
            sku="ACC/9",
            name="Moss pack",
            quantity=1,
            price_ex_tax="5.0000",
            price_inc_tax="5.4000",
            total_ex_tax="5.0000",
            total_inc_tax="5.4000",
            total_tax=None,
            applied_discounts=[],
        ),
    ]
    customer = {"id": 11, "first_name": "Janet", "last_name": "Doe", "email": "janet@example.com"}

    result = intake(order_body(), lines, customer=customer)

    assert result.customer_key == "c~3A11"
    assert result.contact.table == "contact"
    assert result.contact.key == {"bciom_storehash": STORE, "bciom_customerkey": "c~3A11"}
    assert result.contact.values == {
        "firstname": "Janet",
        "lastname": "Doe",
        "emailaddress1": "janet@example.com",
        "telephone1": "+1 512 555 0100",  # not in the customer record: the billing address's
        "bciom_bccustomerid": 11,
    }
    assert result.account is None

    order = result.salesorder
    assert (order.table, order.key) == (
        "salesorder",
        {"bciom_storehash": STORE, "bciom_bcorderid": 120},
    )
    assert order.values == {
        "name": "BC-120",
        "totalamount": Decimal("64.8000"),
        "bciom_bcstatusid": 11,
        "bciom_bcdatemodified": datetime(2024, 3, 6, 8, 15, tzinfo=UTC),
        "bciom_channelid": 1,
        "bciom_holdreason": None,
    }
    assert order.binds == {
        "customerid": Reference("contact", result.contact.key, by_key=True),
        "pricelevelid": Reference("pricelevel", {"name": "BigCommerce"}, by_key=False),
        "transactioncurrencyid": Reference(
            "transactioncurrency", {"isocurrencycode": "USD"}, by_key=False
        ),
    }
    assert result.state == SalesOrderState(statecode=0, statuscode=1)
    assert result.hold_reason is None
    assert result.shipping_method_code is None

    first, second = result.lines
    assert first.key == {"bciom_storehash": STORE, "bciom_bcorderproductid": 501}
    assert first.values == {
        "bciom_bcorderid": 120,
        "quantity": Decimal(2),
        "priceperunit": Decimal("25.0000"),
        "manualdiscountamount": Decimal("5.0000"),
        "tax": Decimal("4.0000"),
        "bciom_sku": "OTL-1",
        "isproductoverridden": False,
    }
    assert first.binds == {
        "salesorderid": Reference("salesorder", order.key, by_key=True),
        "productid": Reference("product", {"productnumber": "OTL-1"}, by_key=True),
        "uomid": Reference("uom", {"name": "Primary Unit"}, by_key=False),
    }
    # A SKU Dataverse cannot address by key is resolved by query instead; tax from the totals.
    assert second.binds["productid"] == Reference(
        "product", {"productnumber": "ACC/9"}, by_key=False
    )
    assert second.values["tax"] == Decimal("0.4000")
    assert "manualdiscountamount" not in second.values
    assert [r.table for r in result.rows] == [
        "contact",
        "salesorder",
        "salesorderdetail",
        "salesorderdetail",
    ]


def test_every_row_writes_only_columns_the_schema_declares_and_keeps_keys_out_of_values() -> None:
    result = intake()
    declared = {t.logical_name: {c.logical_name for c in t.columns} for t in SCHEMA}
    for row in result.rows:
        assert set(row.values) <= declared[row.table], row.table
        assert set(row.key) <= declared[row.table]
        assert not set(row.key) & set(row.values)
        assert set(row.binds) <= declared[row.table]


def test_plain_rows_carry_key_and_values_for_the_intake_writer() -> None:
    result = intake()

    contact, order, lines = result.plain_rows()

    assert contact == {**result.contact.key, **result.contact.values}
    assert order["bciom_bcorderid"] == 120
    assert order["bciom_storehash"] == STORE
    assert "customerid" not in order
    assert [line["bciom_bcorderproductid"] for line in lines] == [501]
    assert "salesorderid" not in lines[0]
    assert "productid" not in lines[0]


def test_a_guest_is_keyed_by_lower_cased_email_and_repeat_orders_share_the_contact() -> None:
    guest = order_body(customer_id=0)
    first = intake(guest)
    again = intake(order_body(id=121, customer_id=0), [line_body(order_id=121)])

    assert first.customer_key == "e~3Ajane.doe@example.com"
    assert first.contact.key == again.contact.key
    assert first.contact.values["emailaddress1"] == "Jane.Doe@Example.com"
    assert first.contact.values["bciom_bccustomerid"] == 0


def test_a_guest_without_email_lands_on_the_anonymous_contact() -> None:
    body = order_body(customer_id=0)
    body["billing_address"] = {**body["billing_address"], "email": None, "last_name": ""}

    result = intake(body)

    assert result.customer_key == escape_key_value("e:anonymous@bigcommerce.invalid")
    assert result.contact.values["lastname"] == "BigCommerce customer"
    assert "emailaddress1" not in result.contact.values


@pytest.mark.parametrize(
    ("status_id", "state", "hold"),
    [
        (11, SalesOrderState(0, 1), None),
        (7, SalesOrderState(0, 2), "awaiting payment"),
        (5, SalesOrderState(2, 4), None),
        (10, SalesOrderState(3, 100001), None),
    ],
)
def test_status_is_mapped_by_id_whatever_its_label(
    status_id: int, state: SalesOrderState, hold: str | None
) -> None:
    result = intake(order_body(status_id=status_id, status="Renamed by merchant"))

    assert result.state == state
    assert result.hold_reason == hold == result.salesorder.values["bciom_holdreason"]
    assert result.salesorder.values["bciom_bcstatusid"] == status_id


def test_statuses_not_taken_in_map_to_nothing() -> None:
    assert intake(order_body(status_id=0)) is None


def test_payment_and_status_holds_combine_and_shipping_methods_map() -> None:
    custom = change("shipping_methods.map", {"flat rate": 4})
    mapping = parse_mapping(custom)

    result = intake(
        order_body(status_id=7, payment_method="TEST payment gateway"),
        mapping=mapping,
        shipping_method="Flat Rate",
    )

    assert (
        result.hold_reason == "awaiting payment; paid through the test gateway; not a real payment"
    )
    assert result.shipping_method_code == 4


def test_orders_for_the_default_account() -> None:
    mapping = parse_mapping(change("customers.order_customer", "account"))

    result = intake(mapping=mapping)

    assert result.account is not None
    assert result.account.key == {"bciom_storehash": STORE, "bciom_companykey": "bigcommerce"}
    assert result.account.values == {"name": "BigCommerce"}
    assert result.salesorder.binds["customerid"] == Reference("account", result.account.key, True)
    assert [r.table for r in result.rows][:3] == ["contact", "account", "salesorder"]


def test_currency_price_list_and_sku_overrides_come_from_the_mapping() -> None:
    custom = change("currencies", {"USD": "USD", "EUR": "EUR"})
    custom["price_lists_by_currency"] = {"EUR": "Euro web"}
    custom["products"]["sku_map"] = {"OTL-1": "TERRA-L"}
    mapping = parse_mapping(custom)

    result = intake(order_body(default_currency_code="EUR", currency_code="GBP"), mapping=mapping)

    binds = result.salesorder.binds
    assert binds["transactioncurrencyid"].columns == {"isocurrencycode": "EUR"}
    assert binds["pricelevelid"].columns == {"name": "Euro web"}
    line = result.lines[0]
    assert line.binds["productid"].columns == {"productnumber": "TERRA-L"}
    assert line.values["bciom_sku"] == "OTL-1"


def test_lines_without_a_sku_are_rejected_or_written_in() -> None:
    no_sku = [line_body(sku=None)]
    with pytest.raises(MappingError) as caught:
        intake(lines=no_sku)
    assert str(caught.value) == (
        "order 120: line 501 (Orbit Terrarium - Large) has no SKU (products.without_sku is reject)"
    )

    written_in = intake(
        lines=no_sku, mapping=parse_mapping(change("products.without_sku", "write_in"))
    )
    [line] = written_in.lines
    assert line.values["isproductoverridden"] is True
    assert line.values["productdescription"] == "Orbit Terrarium - Large"
    assert set(line.binds) == {"salesorderid"}


@pytest.mark.parametrize(
    ("order", "lines", "message"),
    [
        (
            order_body(default_currency_code="EUR"),
            None,
            "order 120: currency EUR is not in the mapping's currencies",
        ),
        (order_body(), [line_body(order_id=999)], "order 120: line 501 belongs to order 999"),
    ],
)
def test_orders_the_mapping_cannot_express_fail_with_one_line(
    order: dict[str, Any], lines: list[dict[str, Any]] | None, message: str
) -> None:
    with pytest.raises(MappingError) as caught:
        intake(order, lines)
    assert str(caught.value) == message


def test_text_is_cut_to_the_column_length() -> None:
    body = order_body()
    body["billing_address"] = {**body["billing_address"], "first_name": "A" * 80}

    result = intake(body)

    assert result.contact.values["firstname"] == "A" * 50
    assert CONTACT.column("firstname").max_length == 50
