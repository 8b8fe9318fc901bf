"""A BigCommerce order (with its lines, shipping addresses and customer) as the rows of one intake.

`map_order_intake` is pure: no I/O, the same input gives the same rows. It returns None for a
status the mapping does not take in (Incomplete, by default), raises `MappingError` (one line)
for an order the mapping cannot express (an unmapped currency, a line without a SKU under
`without_sku: reject`, lines of another order), and otherwise an `OrderIntake`:
- `contact`: the buyer, keyed by store + customer key (`keys.customer_key`);
- `account`: the default account when `customers.order_customer` is `account`;
- `salesorder`: keyed by store + BigCommerce order id, with the sync-state columns
  (`bciom_bcstatusid`, `bciom_bcdatemodified`, `bciom_channelid`), the hold reason (always
  written, so a cleared hold is cleared), and binds to the customer, price list and currency;
- `lines`: one salesorderdetail per order product, keyed by store + order product id, bound to
  the order, the product (by product number) and the unit.

`state` (the status map's statecode/statuscode) is not among the salesorder's values: the writer
decides when to apply it, since IOM moves an order's state itself once it orchestrates it.
`shipping_method_code` is resolved for the same writer, but `schema.py` declares no
`shippingmethodcode` column yet, so no row carries it.

Column names come from `schema.py` (looked up, so a renamed column fails at import); the one
table it does not declare, `transactioncurrency`, is named once here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from typing import Any, Final

from shared.bigcommerce.models import Order, OrderProduct, OrderShippingAddress
from shared.dataverse.schema import (
    ACCOUNT,
    CONTACT,
    PREFIX,
    PRICELEVEL,
    PRODUCT,
    SALESORDER,
    SALESORDERDETAIL,
    UOM,
    AlternateKey,
    Column,
    Table,
)
from shared.mapping.config import MappingConfig, StatusRule
from shared.mapping.keys import customer_key, escape_key_value, is_key_safe
from shared.mapping.rows import Reference, Row

# A standard reference table schema.py does not declare: currencies are looked up by ISO code.
TRANSACTIONCURRENCY: Final = "transactioncurrency"
ISOCURRENCYCODE: Final = "isocurrencycode"


def _column(table: Table, name: str) -> Column:
    return table.column(name)  # KeyError at import when schema.py no longer declares it


def _key(table: Table, name: str) -> AlternateKey:
    for key in table.keys:
        if key.logical_name == name:
            return key
    raise KeyError(f"{table.logical_name} has no key {name}")


# contact
_FIRSTNAME: Final = _column(CONTACT, "firstname")
_LASTNAME: Final = _column(CONTACT, "lastname")
_EMAIL: Final = _column(CONTACT, "emailaddress1")
_PHONE: Final = _column(CONTACT, "telephone1")
_CUSTOMERKEY: Final = _column(CONTACT, PREFIX + "customerkey")
_BCCUSTOMERID: Final = _column(CONTACT, PREFIX + "bccustomerid")
_CONTACT_KEY: Final = _key(CONTACT, PREFIX + "contact_customer")
# account
_ACCOUNT_NAME: Final = _column(ACCOUNT, ACCOUNT.primary_name)
_COMPANYKEY: Final = _column(ACCOUNT, PREFIX + "companykey")
_ACCOUNT_KEY: Final = _key(ACCOUNT, PREFIX + "account_company")
# salesorder
_ORDER_NAME: Final = _column(SALESORDER, SALESORDER.primary_name)
_CUSTOMERID: Final = _column(SALESORDER, "customerid")
_PRICELEVELID: Final = _column(SALESORDER, "pricelevelid")
_CURRENCYID: Final = _column(SALESORDER, "transactioncurrencyid")
_TOTALAMOUNT: Final = _column(SALESORDER, "totalamount")
_BCORDERID: Final = _column(SALESORDER, PREFIX + "bcorderid")
_BCSTATUSID: Final = _column(SALESORDER, PREFIX + "bcstatusid")
_BCDATEMODIFIED: Final = _column(SALESORDER, PREFIX + "bcdatemodified")
_CHANNELID: Final = _column(SALESORDER, PREFIX + "channelid")
_HOLDREASON: Final = _column(SALESORDER, PREFIX + "holdreason")
_ORDER_KEY: Final = _key(SALESORDER, PREFIX + "salesorder_bcorder")
# salesorderdetail
_LINE_ORDER: Final = _column(SALESORDERDETAIL, "salesorderid")
_LINE_PRODUCT: Final = _column(SALESORDERDETAIL, "productid")
_LINE_UOM: Final = _column(SALESORDERDETAIL, "uomid")
_LINE_DESCRIPTION: Final = _column(SALESORDERDETAIL, "productdescription")
_QUANTITY: Final = _column(SALESORDERDETAIL, "quantity")
_PRICEPERUNIT: Final = _column(SALESORDERDETAIL, "priceperunit")
_DISCOUNT: Final = _column(SALESORDERDETAIL, "manualdiscountamount")
_TAX: Final = _column(SALESORDERDETAIL, "tax")
_OVERRIDDEN: Final = _column(SALESORDERDETAIL, "isproductoverridden")
_LINE_BCORDERID: Final = _column(SALESORDERDETAIL, PREFIX + "bcorderid")
_LINE_SKU: Final = _column(SALESORDERDETAIL, PREFIX + "sku")
_LINE_KEY: Final = _key(SALESORDERDETAIL, PREFIX + "salesorderdetail_bcline")
# references
_PRODUCT_KEY: Final = _key(PRODUCT, PREFIX + "product_number")
_PRICELEVEL_NAME: Final = _column(PRICELEVEL, PRICELEVEL.primary_name)
_UOM_NAME: Final = _column(UOM, UOM.primary_name)


class MappingError(ValueError):
    """An order the mapping cannot express; the message is one line naming the order."""


@dataclass(frozen=True, slots=True)
class SalesOrderState:
    statecode: int
    statuscode: int


@dataclass(frozen=True, slots=True)
class OrderIntake:
    customer_key: str  # the stored (escaped) bciom_customerkey
    contact: Row
    account: Row | None
    salesorder: Row
    lines: tuple[Row, ...]
    state: SalesOrderState
    hold_reason: str | None
    shipping_method_code: int | None

    def plain_rows(self) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        """Contact, sales order and lines as plain dicts, key columns included, lookups left
        out: the shape `shared.dataverse.intake.OrderRows` takes (it binds the order to the
        contact and each line to the order itself; the other lookups are in `binds`)."""
        return self.contact.plain(), self.salesorder.plain(), [r.plain() for r in self.lines]

    @property
    def rows(self) -> tuple[Row, ...]:
        """Every row, in the order a change set must write them (referenced rows first)."""
        parents = (self.contact,) if self.account is None else (self.contact, self.account)
        return (*parents, self.salesorder, *self.lines)


def map_order_intake(
    order: Order,
    products: Sequence[OrderProduct],
    shipping_addresses: Sequence[OrderShippingAddress] = (),
    *,
    store_hash: str,
    mapping: MappingConfig,
    customer: Mapping[str, Any] | None = None,
) -> OrderIntake | None:
    """The rows for one order intake, or None when the order's status is not taken in.

    `customer` is the registered customer's record (`/v3/customers`: first_name, last_name,
    email, phone) when the caller fetched it; otherwise the billing address speaks for them.
    """
    rule = mapping.status(order.status_id)
    if rule is None:
        raise MappingError(f"order {order.id}: no status_map rule for status {order.status_id}")
    if not rule.intake:
        return None
    if rule.statecode is None or rule.statuscode is None:  # StatusRule.validate rules this out
        raise MappingError(f"order {order.id}: status {order.status_id} has no salesorder state")
    if not products:
        raise MappingError(f"order {order.id}: no order lines (fetch the order's products)")
    for line in products:
        if line.order_id != order.id:
            raise MappingError(f"order {order.id}: line {line.id} belongs to order {line.order_id}")

    currency = _currency(order, mapping)
    contact, key = _contact_row(order, store_hash, mapping, customer)
    account = _account_row(store_hash, mapping)
    buyer = account if account is not None else contact
    hold = _hold_reason(order, rule, mapping)
    salesorder = _salesorder_row(order, store_hash, mapping, currency, hold, buyer)
    lines = tuple(_line_row(order, line, store_hash, mapping, salesorder) for line in products)
    shipping = shipping_addresses[0].shipping_method if shipping_addresses else None
    return OrderIntake(
        customer_key=key,
        contact=contact,
        account=account,
        salesorder=salesorder,
        lines=lines,
        state=SalesOrderState(rule.statecode, rule.statuscode),
        hold_reason=hold,
        shipping_method_code=mapping.shipping_methods.code(shipping),
    )


# -- rows -----------------------------------------------------------------------------------------


def _keyed(key: AlternateKey, *values: str | int) -> dict[str, str | int]:
    return dict(zip(key.columns, values, strict=True))


def _text(column: Column, value: object) -> str | None:
    """Whitespace-trimmed text cut to the column's length; None when empty."""
    text = " ".join(str(value).split()) if value is not None else ""
    if not text:
        return None
    return text[: column.max_length] if column.max_length else text


def _set(values: dict[str, Any], column: Column, value: object) -> None:
    """Sets a column only when there is a value: an upsert must not blank what others filled."""
    if value is not None:
        values[column.logical_name] = value


def _contact_row(
    order: Order, store_hash: str, mapping: MappingConfig, customer: Mapping[str, Any] | None
) -> tuple[Row, str]:
    billing = order.billing_address
    person: Mapping[str, Any] = customer if customer and order.customer_id > 0 else {}

    def pick(field: str) -> Any:
        return person.get(field) or (getattr(billing, field, None) if billing else None)

    email = "".join(str(pick("email") or "").split()) or None
    try:
        key = customer_key(order.customer_id, email or mapping.customers.anonymous_email)
    except ValueError as exc:
        raise MappingError(f"order {order.id}: {exc}") from None
    values: dict[str, Any] = {}
    _set(values, _FIRSTNAME, _text(_FIRSTNAME, pick("first_name")))
    last = _text(_LASTNAME, pick("last_name")) or _text(_LASTNAME, email) or "BigCommerce customer"
    _set(values, _LASTNAME, last)
    if email is not None and len(email) <= (_EMAIL.max_length or 0):
        _set(values, _EMAIL, email)  # an address too long for the column is left out, not cut
    _set(values, _PHONE, _text(_PHONE, pick("phone")))
    _set(values, _BCCUSTOMERID, order.customer_id)
    return Row(CONTACT.logical_name, _keyed(_CONTACT_KEY, store_hash, key), values), key


def _account_row(store_hash: str, mapping: MappingConfig) -> Row | None:
    if mapping.customers.order_customer != "account":
        return None
    key = escape_key_value(mapping.customers.default_account_key)
    values: dict[str, Any] = {}
    _set(values, _ACCOUNT_NAME, _text(_ACCOUNT_NAME, mapping.customers.default_account_name))
    return Row(ACCOUNT.logical_name, _keyed(_ACCOUNT_KEY, store_hash, key), values)


def _currency(order: Order, mapping: MappingConfig) -> str:
    # default_currency_code is the transactional currency: the one the amounts were charged in.
    code = (order.default_currency_code or order.currency_code or "").strip().upper()
    if not code:
        raise MappingError(f"order {order.id}: no currency code")
    iso = mapping.currencies.get(code)
    if iso is None:
        raise MappingError(f"order {order.id}: currency {code} is not in the mapping's currencies")
    return iso


def _hold_reason(order: Order, rule: StatusRule, mapping: MappingConfig) -> str | None:
    reasons = [r for r in (rule.hold, mapping.payment_hold(order.payment_method)) if r]
    return _text(_HOLDREASON, "; ".join(dict.fromkeys(reasons))) if reasons else None


def _salesorder_row(
    order: Order,
    store_hash: str,
    mapping: MappingConfig,
    currency: str,
    hold: str | None,
    buyer: Row,
) -> Row:
    values: dict[str, Any] = {}
    name = mapping.order_name.format(order_id=order.id, store_hash=store_hash)
    _set(values, _ORDER_NAME, _text(_ORDER_NAME, name))
    _set(values, _TOTALAMOUNT, order.total_inc_tax)
    _set(values, _BCSTATUSID, order.status_id)
    _set(values, _BCDATEMODIFIED, order.date_modified.astimezone(UTC))
    _set(values, _CHANNELID, order.channel_id)
    values[_HOLDREASON.logical_name] = hold  # always written: None lifts an earlier hold
    binds = {
        _CUSTOMERID.logical_name: buyer.as_reference(),
        _PRICELEVELID.logical_name: Reference(
            PRICELEVEL.logical_name,
            {_PRICELEVEL_NAME.logical_name: mapping.price_list_for(currency)},
            by_key=False,
        ),
        _CURRENCYID.logical_name: Reference(
            TRANSACTIONCURRENCY, {ISOCURRENCYCODE: currency}, by_key=False
        ),
    }
    return Row(SALESORDER.logical_name, _keyed(_ORDER_KEY, store_hash, order.id), values, binds)


def _line_row(
    order: Order, line: OrderProduct, store_hash: str, mapping: MappingConfig, salesorder: Row
) -> Row:
    values: dict[str, Any] = {}
    binds: dict[str, Reference] = {_LINE_ORDER.logical_name: salesorder.as_reference()}
    sku = (line.sku or "").strip()
    _set(values, _LINE_BCORDERID, order.id)
    _set(values, _QUANTITY, Decimal(line.quantity))
    _set(values, _PRICEPERUNIT, line.price_ex_tax)
    discounts = [d.amount for d in line.applied_discounts if d.amount is not None]
    _set(values, _DISCOUNT, sum(discounts, Decimal(0)) if discounts else None)
    tax = line.total_tax if line.total_tax is not None else line.total_inc_tax - line.total_ex_tax
    _set(values, _TAX, tax)
    if sku:
        number = mapping.products.product_number(sku)
        _set(values, _LINE_SKU, _text(_LINE_SKU, sku))
        _set(values, _OVERRIDDEN, False)
        binds[_LINE_PRODUCT.logical_name] = Reference(
            PRODUCT.logical_name,
            _keyed(_PRODUCT_KEY, number),
            by_key=is_key_safe(number),  # e.g. "A/B": resolve by query, then bind by id
        )
        binds[_LINE_UOM.logical_name] = Reference(
            UOM.logical_name, {_UOM_NAME.logical_name: mapping.unit}, by_key=False
        )
    elif mapping.products.without_sku == "write_in":
        _set(values, _OVERRIDDEN, True)
        _set(values, _LINE_DESCRIPTION, _text(_LINE_DESCRIPTION, line.name) or f"line {line.id}")
    else:
        raise MappingError(
            f"order {order.id}: line {line.id} ({line.name or 'unnamed'}) has no SKU "
            "(products.without_sku is reject)"
        )
    key = _keyed(_LINE_KEY, store_hash, line.id)
    return Row(SALESORDERDETAIL.logical_name, key, values, binds)
