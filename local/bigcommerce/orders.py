"""Orders V2 writes: create (POST), update (PUT), archive (DELETE) and the merchant's status moves.

Every function here runs inside `Simulator.change(store)`, appends the events its change
publishes, and bumps `date_modified`. Creation follows the spec's rules: `billing_address` and
`products` are required, `status_id` defaults to 1, `customer_id` to 0 (guest), `channel_id` to 1;
prices given on both sides are kept, otherwise the catalog price is used; totals are computed.
"""

from __future__ import annotations

import copy
import random
from dataclasses import fields as dataclass_fields
from datetime import datetime
from decimal import Decimal

from local.bigcommerce import changes, payments
from local.bigcommerce.catalog import CATALOG
from local.bigcommerce.errors import ApiError, bad_request
from local.bigcommerce.events import StoreEvent
from local.bigcommerce.model import (
    ADDRESS_FIELDS,
    Address,
    Fee,
    Order,
    OrderAddress,
    OrderProduct,
    PaymentProvider,
    ProductOption,
)
from local.bigcommerce.money import ZERO, q4
from local.bigcommerce.payload import Fields
from local.bigcommerce.pricing import spread_coupons
from local.bigcommerce.state import Store
from local.bigcommerce.statuses import AWAITING_FULFILLMENT, SHIPPED, STATUSES
from local.bigcommerce.timefmt import parse_date

# Currencies the simulated store accepts: code → (currency id, rate from the store's USD).
CURRENCIES: dict[str, tuple[int, Decimal]] = {
    "USD": (1, Decimal("1")),
    "EUR": (2, Decimal("0.9200000000")),
    "GBP": (3, Decimal("0.7900000000")),
    "CAD": (4, Decimal("1.3600000000")),
    "AUD": (5, Decimal("1.5200000000")),
}

# Response-only fields (`order_RespOnly`); writing one is refused, as the API does.
READ_ONLY = frozenset(
    {
        "id",
        "date_modified",
        "date_shipped",
        "cart_id",
        "status",
        "subtotal_tax",
        "shipping_cost_tax",
        "shipping_cost_tax_class_id",
        "handling_cost_tax",
        "handling_cost_tax_class_id",
        "wrapping_cost_tax",
        "wrapping_cost_tax_class_id",
        "payment_status",
        "store_credit_amount",
        "gift_certificate_amount",
        "currency_id",
        "currency_code",
        "currency_exchange_rate",
        "default_currency_id",
        "store_default_currency_code",
        "store_default_to_transactional_exchange_rate",
        "coupon_discount",
        "shipping_address_count",
        "total_tax",
        "is_tax_inclusive_pricing",
        "is_email_opt_in",
        "coupons",
        "custom_status",
        "external_id",
    }
)


def _refuse_read_only(body: Fields, extra: frozenset[str] = frozenset()) -> None:
    for name in sorted(READ_ONLY | extra):
        if name in body:
            raise bad_request(
                f"The field '{name}' cannot be written to. Please remove it from your request "
                "before trying again."
            )


def _address(fields: Fields, base: Address | None = None, *, billing: bool = False) -> Address:
    address = base.copy() if base else Address()
    for name in ADDRESS_FIELDS:
        value = fields.text(name, max_length=255)
        if value is not None:
            setattr(address, name, value)
    form_fields = fields.raw.get("form_fields")
    if form_fields is not None:
        if not isinstance(form_fields, list) or not all(isinstance(f, dict) for f in form_fields):
            raise fields.invalid("form_fields")
        address.form_fields = [dict(f) for f in form_fields]
    if billing and len(address.zip.strip()) < 2:
        raise (
            fields.invalid("zip", "must be two or more characters")
            if "zip" in fields
            else (fields.required("zip"))
        )
    return address


def _options(fields: Fields, line_id: int) -> list[ProductOption]:
    options = []
    for index, option in enumerate(fields.objects("product_options") or []):
        option_id = option.need_integer("id", minimum=1)
        value = option.text("value", "") or ""
        name = option.text("display_name") or option.text("display_name_customer") or "Option"
        shown = option.text("display_value") or option.text("display_value_customer") or value
        options.append(
            ProductOption(
                id=line_id * 10 + index,
                option_id=option_id,
                product_option_id=option_id,
                display_name=name,
                display_value=shown,
                value=value,
                type="Multiple choice" if value.isdigit() else "Text field",
                name=option.text("display_name_merchant") or name,
            )
        )
    return options


def _line(store: Store, fields: Fields, address_id: int, tax_rate: Decimal) -> OrderProduct:
    line_id = store.next_id("order_product")
    quantity = fields.integer("quantity", 1, minimum=1)
    assert quantity is not None
    prices = fields.amount_pair("price_ex_tax", "price_inc_tax")
    one_price = fields.amount("price_ex_tax") or fields.amount("price_inc_tax")
    name = fields.text("name", max_length=250) or fields.text("name_customer", max_length=250)
    for field_name in ("name", "name_customer", "name_merchant"):
        if field_name in fields and not (fields.text(field_name) or "").strip():
            raise fields.invalid(field_name, "cannot be empty")
    product_id = fields.integer("product_id", 0, minimum=0) or 0
    if product_id:
        product = CATALOG.get(product_id)
        if product is None:
            raise fields.invalid(
                "product_id", f"refers to product {product_id}, which does not exist"
            )
        variant_id = fields.integer("variant_id", product.default_variant, minimum=0) or 0
        if prices is None:
            ex = product.price if one_price is None else one_price
            prices = ex, q4(ex * (1 + tax_rate / 100))
        name = name or product.name
        sku, kind, weight, brand, cost = (
            product.sku,
            product.type,
            product.weight,
            product.brand,
            product.cost,
        )
    else:
        name = name or fields.text("name_merchant")
        if not name:
            raise fields.required("name")
        if prices is None:
            raise fields.required("price_ex_tax" if one_price is None else "price_inc_tax")
        variant_id, sku, kind, weight, brand, cost = 0, "", "physical", ZERO, "", ZERO
    line = OrderProduct(
        id=line_id,
        product_id=product_id,
        variant_id=variant_id,
        order_address_id=address_id if kind == "physical" else 0,
        name=name,
        name_merchant=fields.text("name_merchant") or name,
        sku=fields.text("sku", sku) or "",
        type=kind,
        price_ex_tax=prices[0],
        price_inc_tax=prices[1],
        quantity=quantity,
        upc=fields.text("upc", "", max_length=255) or "",
        base_cost_price=cost,
        weight=weight,
        brand=brand,
    )
    line.options = _options(fields, line_id)
    wrapping = fields.amount_pair("wrapping_cost_ex_tax", "wrapping_cost_inc_tax")
    if wrapping is not None:
        line.wrapping_ex_tax, line.wrapping_inc_tax = wrapping
        line.wrapping_id = fields.integer("wrapping_id", 1, minimum=0) or 0
        line.wrapping_name = fields.text("wrapping_name", "Gift Wrapping")
        line.wrapping_message = fields.text("wrapping_message", "") or ""
    return line


def _fees(store: Store, items: list[Fields]) -> list[Fee]:
    fees = []
    for fee in items:
        customer_name = fee.text("display_name_customer")
        merchant_name = fee.text("display_name_merchant")
        if not customer_name and not merchant_name:
            raise fee.required("display_name_customer")
        ex = fee.amount("cost_ex_tax")
        if ex is None:
            ex = fee.amount("cost_exc_tax")
        inc, tax = fee.amount("cost_inc_tax"), fee.amount("cost_tax")
        if sum(v is not None for v in (ex, inc, tax)) < 2:
            raise fee.invalid("cost_inc_tax", "needs two of cost_ex_tax, cost_inc_tax, cost_tax")
        if ex is None:
            assert inc is not None
            assert tax is not None
            ex = inc - tax
        elif inc is None:
            assert tax is not None
            inc = ex + tax
        existing = fee.integer("id", minimum=1)
        fees.append(
            Fee(
                id=existing or store.next_id("fee"),
                display_name_customer=customer_name or merchant_name or "",
                display_name_merchant=merchant_name or customer_name or "",
                source=fee.text("source", "API") or "API",
                cost_ex_tax=ex,
                cost_inc_tax=inc,
                tax_class_id=fee.integer("tax_class_id", minimum=0),
            )
        )
    return fees


def _inferred_tax_rate(lines: list[OrderProduct]) -> Decimal:
    ex = sum((p.total_ex_tax for p in lines), ZERO)
    inc = sum((p.total_inc_tax for p in lines), ZERO)
    return q4((inc / ex - 1) * 100) if ex > 0 else ZERO


def _status(fields: Fields, default: int | None) -> int | None:
    status = fields.integer("status_id", default)
    if status is not None and status not in STATUSES:
        raise fields.invalid("status_id")
    return status


def _apply_common(order: Order, body: Fields) -> None:
    """Writable scalar fields shared by POST and PUT."""
    customer_id = body.integer("customer_id", minimum=0)
    if customer_id is not None:
        order.customer_id = customer_id
    channel_id = body.integer("channel_id", minimum=1)
    if channel_id is not None:
        order.channel_id = channel_id
    for name, limit in (
        ("customer_message", 65535),
        ("staff_notes", 65535),
        ("payment_method", 100),
        ("ip_address", 30),
        ("ip_address_v6", 39),
        ("geoip_country", 255),
        ("geoip_country_iso2", 2),
        ("customer_locale", 10),
        ("ebay_order_id", 50),
    ):
        value = body.text(name, max_length=limit)
        if value is not None:
            setattr(order, name, value)
    if "ip_address" in body:
        order.ip_address_v6 = ""
    elif "ip_address_v6" in body:
        order.ip_address = ""
    if "payment_provider_id" in body:
        order.payment_provider_id = body.text("payment_provider_id", "") or ""
    if "external_source" in body:
        order.external_source = body.text("external_source")
    if "external_order_id" in body:
        order.external_order_id = body.text("external_order_id", "") or ""
    discount = body.amount("discount_amount")
    if discount is not None:
        order.discount_amount = discount
    subtotal = body.amount_pair("subtotal_ex_tax", "subtotal_inc_tax")
    if subtotal is not None:
        order.subtotal_override = subtotal
    total = body.amount_pair("total_ex_tax", "total_inc_tax")
    if total is not None:
        order.total_override = total
    shipping = body.amount_pair("shipping_cost_ex_tax", "shipping_cost_inc_tax")
    handling = body.amount_pair("handling_cost_ex_tax", "handling_cost_inc_tax")
    if (shipping or handling) and not order.addresses:
        raise body.invalid("shipping_cost_ex_tax", "needs a shipping address on the order")
    if shipping is not None:
        order.addresses[0].cost_ex_tax, order.addresses[0].cost_inc_tax = shipping
    if handling is not None:
        order.addresses[0].handling_ex_tax, order.addresses[0].handling_inc_tax = handling


def _payment_for(order: Order) -> None:
    order.payment = PaymentProvider("custom", order.payment_method, "custom", "custom", True)


def create_order(store: Store, body_raw: object, now: datetime, events: list[StoreEvent]) -> Order:
    body = Fields(body_raw)
    _refuse_read_only(body)
    if "consignments" in body:
        raise bad_request(
            "The simulator creates orders with 'products' and 'shipping_addresses' only; pickup "
            "'consignments' are not supported."
        )
    if "billing_address" not in body:
        raise body.required("billing_address")
    billing = _address(Fields(body.raw["billing_address"], "billing_address"), billing=True)
    products = body.objects("products")
    if not products:
        raise body.required("products")
    status = _status(body, 1)
    assert status is not None
    created = now
    if body.raw.get("date_created"):
        parsed = parse_date(body.text("date_created") or "")
        if parsed is None:
            raise body.invalid("date_created", "must be an RFC 2822 date")
        created = parsed
    currency = body.text("default_currency_code", "USD") or "USD"
    if currency not in CURRENCIES:
        raise body.invalid("default_currency_code", "is not a currency of this store")
    order = Order(
        id=0,
        date_created=created,
        date_modified=now,
        status_id=status,
        billing_address=billing,
        currency_code=currency,
        exchange_rate=CURRENCIES[currency][1],
        external_merchant_id=body.text("external_merchant_id"),
    )
    for fields in body.objects("shipping_addresses") or []:
        order.addresses.append(
            OrderAddress(
                store.next_id("order_address"),
                _address(fields),
                shipping_method=fields.text("shipping_method", "Custom") or "Custom",
            )
        )
    lines = [_line(store, p, 0, ZERO) for p in products]
    if any(line.shippable for line in lines) and not order.addresses:
        order.addresses.append(OrderAddress(store.next_id("order_address"), billing.copy()))
    for line in lines:
        if line.shippable:
            line.order_address_id = order.addresses[0].id
    order.products = lines
    order.tax_rate = _inferred_tax_rate(lines)
    order.fees = _fees(store, body.objects("fees") or [])
    _apply_common(order, body)
    _payment_for(order)
    if status == SHIPPED:
        order.date_shipped = now
    order.id = store.next_id("order")
    add_order(store, order, events)
    return order


def add_order(store: Store, order: Order, events: list[StoreEvent]) -> None:
    """Stores a new order (from the API, the admin API or the generator) and announces it."""
    if not order.id:
        order.id = store.next_id("order")
    spread_coupons(order)
    store.orders[order.id] = order
    events.append(changes.order_event(store.hash, order, "created"))


def update_order(
    store: Store, order: Order, body_raw: object, now: datetime, events: list[StoreEvent]
) -> None:
    """Applies a PUT; a refused request leaves the order exactly as it was."""
    backup = copy.deepcopy(order)
    try:
        _update(store, order, Fields(body_raw), now, events)
    except ApiError:
        for name in (f.name for f in dataclass_fields(Order)):
            setattr(order, name, getattr(backup, name))
        raise


def _update(
    store: Store, order: Order, body: Fields, now: datetime, events: list[StoreEvent]
) -> None:
    _refuse_read_only(body, frozenset({"default_currency_code", "date_created"}))
    if (
        "external_merchant_id" in body
        and order.external_merchant_id is not None
        and body.raw["external_merchant_id"] != order.external_merchant_id
    ):
        raise bad_request(
            "The field 'external_merchant_id' cannot be written to. Please remove it from your "
            "request before trying again."
        )
    previous_status, was_deleted = order.status_id, order.is_deleted
    status = _status(body, None)
    billing = (
        _address(Fields(body.raw["billing_address"], "billing_address"), order.billing_address)
        if "billing_address" in body
        else None
    )
    new_addresses: list[OrderAddress] = []
    for fields in body.objects("shipping_addresses") or []:
        address_id = fields.integer("id", minimum=1)
        target = order.address(address_id) if address_id else None
        if address_id and target is None:
            raise fields.invalid("id", "is not a shipping address of this order")
        if target is not None:
            target.address = _address(fields, target.address)
            target.shipping_method = fields.text("shipping_method", target.shipping_method) or ""
        else:
            new_addresses.append(
                OrderAddress(store.next_id("order_address"), _address(fields), "Custom")
            )
    _update_products(store, order, body.objects("products") or [])
    if billing is not None:
        order.billing_address = billing
    order.addresses.extend(new_addresses)
    if "fees" in body:
        order.fees = _fees(store, body.objects("fees") or [])
    if "external_merchant_id" in body:
        order.external_merchant_id = body.text("external_merchant_id")
    _apply_common(order, body)
    if status is not None:
        _move_status(order, status, now)
    deleted = body.boolean("is_deleted")
    if deleted is not None:
        order.is_deleted = deleted
    order.date_modified = now
    events.extend(changes.order_changed(store.hash, order, previous_status))
    if order.is_deleted and not was_deleted:
        events.append(changes.order_event(store.hash, order, "archived"))


def _update_products(store: Store, order: Order, items: list[Fields]) -> None:
    for fields in items:
        line_id = fields.integer("id", minimum=1)
        if line_id is None:
            address_id = order.addresses[0].id if order.addresses else 0
            line = _line(store, fields, address_id, order.tax_rate)
            order.products.append(line)
            continue
        line_or_none = order.product(line_id)
        if line_or_none is None:
            raise fields.invalid("id", "is not a product of this order")
        line = line_or_none
        quantity = fields.integer("quantity", minimum=0)
        if quantity == 0:
            if line.quantity_shipped or line.quantity_refunded:
                raise fields.invalid("quantity", "cannot remove a product already shipped")
            order.products.remove(line)
            continue
        if quantity is not None:
            if quantity < max(line.quantity_shipped, line.quantity_refunded):
                raise fields.invalid("quantity", "is less than the quantity already shipped")
            line.quantity = quantity
        prices = fields.amount_pair("price_ex_tax", "price_inc_tax")
        if prices is not None:
            line.price_ex_tax, line.price_inc_tax = prices
        for name in ("name", "name_customer"):
            value = fields.text(name, max_length=250)
            if value is not None:
                if not value.strip():
                    raise fields.invalid(name, "cannot be empty")
                line.name = value
        line.name_merchant = fields.text("name_merchant", line.name_merchant) or line.name
        line.sku = fields.text("sku", line.sku) or ""
        line.upc = fields.text("upc", line.upc, max_length=255) or ""
        line.discounts = []  # a PUT clears the discounts of the lines it changes


def _move_status(order: Order, status: int, now: datetime) -> None:
    order.status_id = status
    if status == SHIPPED and order.date_shipped is None:
        order.date_shipped = now


def set_status(
    store: Store, order: Order, status: int, now: datetime, events: list[StoreEvent]
) -> None:
    """A status change made by the merchant in the control panel (or by the store itself)."""
    if status not in STATUSES:
        raise ApiError(400, "The field 'status_id' is invalid.")
    previous = order.status_id
    _move_status(order, status, now)
    order.complete_at = None
    order.date_modified = now
    events.extend(changes.order_changed(store.hash, order, previous))


def archive(store: Store, order: Order, now: datetime, events: list[StoreEvent]) -> None:
    if order.is_deleted:
        return
    order.is_deleted = True
    order.date_modified = now
    events.append(changes.order_event(store.hash, order, "archived"))


def complete_due(
    store: Store, now: datetime, events: list[StoreEvent], rng: random.Random
) -> list[int]:
    """Incomplete orders whose shopper has now finished paying move to Awaiting Fulfillment."""
    done = []
    for order in store.orders.values():
        if order.complete_at is not None and order.complete_at <= now:
            payments.capture(store, order, now, events, rng)
            set_status(store, order, AWAITING_FULFILLMENT, now, events)
            done.append(order.id)
    return done
