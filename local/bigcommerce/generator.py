"""A seeded generator of realistic storefront orders.

The same seed gives the same orders. The mix: registered customers (some buying for a company)
and guests; one to four lines from the catalog, physical and digital; sometimes two shipping
addresses (two consignments); coupons; tax-exclusive markets (US, Canada) and tax-inclusive
ones (UK, Germany, Australia), each in its own transactional currency; card, PayPal and bank
deposit payments; and some Incomplete (status 0) orders whose shopper finishes paying later
(`complete_after_seconds`), which then move to Awaiting Fulfillment.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from local.bigcommerce import payments
from local.bigcommerce.catalog import CATALOG, CatalogProduct
from local.bigcommerce.events import StoreEvent
from local.bigcommerce.model import (
    Address,
    Coupon,
    Order,
    OrderAddress,
    OrderProduct,
    ProductOption,
)
from local.bigcommerce.money import q2, q4
from local.bigcommerce.orders import CURRENCIES, add_order
from local.bigcommerce.state import Store
from local.bigcommerce.statuses import (
    AWAITING_FULFILLMENT,
    AWAITING_PAYMENT,
    AWAITING_SHIPMENT,
    COMPLETED,
    INCOMPLETE,
    PENDING,
)


@dataclass(frozen=True, slots=True)
class Market:
    country: str
    iso2: str
    currency: str
    tax_rate: Decimal
    inclusive: bool
    locale: str
    places: tuple[tuple[str, str, str], ...]  # (city, state, zip)
    shipping: Decimal  # flat rate per address, in the market's currency, as entered


MARKETS = (
    Market(
        "United States",
        "US",
        "USD",
        Decimal("8.25"),
        False,
        "en-US",
        (
            ("Austin", "Texas", "78751"),
            ("Seattle", "Washington", "98101"),
            ("Boston", "Massachusetts", "02108"),
        ),
        Decimal("9.95"),
    ),
    Market(
        "Canada",
        "CA",
        "CAD",
        Decimal("13"),
        False,
        "en",
        (("Toronto", "Ontario", "M5H 2N2"), ("Ottawa", "Ontario", "K1P 1J1")),
        Decimal("12.00"),
    ),
    Market(
        "United Kingdom",
        "GB",
        "GBP",
        Decimal("20"),
        True,
        "en",
        (("London", "Greater London", "EC1A 1BB"), ("Leeds", "West Yorkshire", "LS1 4DY")),
        Decimal("4.99"),
    ),
    Market(
        "Germany",
        "DE",
        "EUR",
        Decimal("19"),
        True,
        "de",
        (("Berlin", "Berlin", "10115"), ("Hamburg", "Hamburg", "20095")),
        Decimal("5.90"),
    ),
    Market(
        "Australia",
        "AU",
        "AUD",
        Decimal("10"),
        True,
        "en",
        (("Sydney", "New South Wales", "2000"), ("Melbourne", "Victoria", "3000")),
        Decimal("14.95"),
    ),
)
MARKET_WEIGHTS = (55, 10, 15, 12, 8)
FIRST = ("Jane", "John", "Aiko", "Lena", "Marco", "Priya", "Sam", "Noor", "Olu", "Elsie", "Trish")
LAST = ("Doe", "Smith", "Tanaka", "Schmidt", "Rossi", "Patel", "Lee", "Haddad", "Ade", "Brown")
COMPANIES = ("Acme Pty Ltd", "Laser Ltd", "Northwind Traders", "Globex GmbH", "Initech LLC")
STREETS = ("Main Street", "Sussex St", "High Street", "Market Road", "Hauptstrasse", "King St")
CUSTOMERS = 40  # registered customers 1..40
PHYSICAL = [p for p in CATALOG.values() if p.type == "physical"]
DIGITAL = [p for p in CATALOG.values() if p.type == "digital"]


@dataclass(frozen=True, slots=True)
class Options:
    count: int = 10
    seed: int | None = None
    spread_seconds: float = 0.0  # date_created goes back up to this far
    incomplete_share: float = 0.08
    complete_after_seconds: float = 300.0
    channel_id: int = 1


def _person(rng: random.Random, customer_id: int) -> tuple[str, str, str, str]:
    if customer_id:
        person = random.Random(customer_id)  # a registered customer is always the same person
        first, last = person.choice(FIRST), person.choice(LAST)
        company = person.choice(COMPANIES) if customer_id % 4 == 0 else ""
        return first, last, company, f"{first}.{last}.{customer_id}@example.com".lower()
    first, last = rng.choice(FIRST), rng.choice(LAST)
    company = rng.choice(COMPANIES) if rng.random() < 0.1 else ""
    return first, last, company, f"{first}.{last}+{rng.randrange(10**6)}@example.org".lower()


def _address(rng: random.Random, market: Market, who: tuple[str, str, str, str]) -> Address:
    city, state, postcode = rng.choice(market.places)
    return Address(
        first_name=who[0],
        last_name=who[1],
        company=who[2],
        street_1=f"{rng.randint(1, 999)} {rng.choice(STREETS)}",
        street_2=rng.choice(("", "", f"Suite {rng.randint(1, 40)}")),
        city=city,
        state=state,
        zip=postcode,
        country=market.country,
        country_iso2=market.iso2,
        phone=f"+{rng.randint(1, 99)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
        email=who[3],
    )


def _prices(market: Market, entered: Decimal) -> tuple[Decimal, Decimal]:
    factor = 1 + market.tax_rate / 100
    if market.inclusive:
        return q4(entered / factor), entered
    return entered, q4(entered * factor)


def _line(
    store: Store, rng: random.Random, market: Market, product: CatalogProduct
) -> OrderProduct:
    rate = CURRENCIES[market.currency][1]
    ex, inc = _prices(market, q2(product.price * rate))
    line_id = store.next_id("order_product")
    line = OrderProduct(
        id=line_id,
        product_id=product.id,
        variant_id=0,
        order_address_id=0,
        name=product.name,
        name_merchant=product.name,
        sku=product.sku,
        type=product.type,
        price_ex_tax=ex,
        price_inc_tax=inc,
        quantity=rng.choice((1, 1, 1, 2, 2, 3)) if product.type == "physical" else 1,
        base_cost_price=product.cost,
        weight=product.weight,
        brand=product.brand,
        bin_picking_number=f"BIN-{rng.randint(1, 60)}" if product.type == "physical" else "",
    )
    if product.variants:
        variant_id, option, value = rng.choice(product.variants)
        line.variant_id = variant_id
        line.sku = f"{product.sku}-{value}"
        line.options = [
            ProductOption(
                line_id * 10, 1, 100 + product.id, option, value, str(variant_id), name=option
            )
        ]
    return line


def _status(rng: random.Random, digital_only: bool) -> int:
    if digital_only:
        return rng.choice((COMPLETED, COMPLETED, AWAITING_FULFILLMENT))
    return rng.choices(
        (AWAITING_FULFILLMENT, AWAITING_PAYMENT, AWAITING_SHIPMENT, PENDING), (70, 12, 12, 6)
    )[0]


def make_order(store: Store, rng: random.Random, now: datetime, options: Options) -> Order:
    market = rng.choices(MARKETS, MARKET_WEIGHTS)[0]
    customer_id = rng.randint(1, CUSTOMERS) if rng.random() < 0.6 else 0
    who = _person(rng, customer_id)
    kind = rng.random()
    if kind < 0.08:
        chosen = rng.sample(DIGITAL, rng.randint(1, 2))
    else:
        chosen = rng.sample(PHYSICAL, rng.randint(1, 4))
        if kind > 0.9:
            chosen.append(rng.choice(DIGITAL))
    created = now - timedelta(seconds=rng.uniform(0, options.spread_seconds))
    created = created.replace(microsecond=0)
    billing = _address(rng, market, who)
    order = Order(
        id=store.next_id("order"),
        date_created=created,
        date_modified=created,
        status_id=AWAITING_FULFILLMENT,
        billing_address=billing,
        customer_id=customer_id,
        channel_id=options.channel_id,
        is_tax_inclusive_pricing=market.inclusive,
        tax_rate=market.tax_rate,
        currency_code=market.currency,
        exchange_rate=CURRENCIES[market.currency][1],
        cart_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        order_source="www",
        customer_locale=market.locale,
        ip_address=f"203.0.113.{rng.randint(1, 254)}",
        geoip_country=market.country,
        geoip_country_iso2=market.iso2,
        is_email_opt_in=rng.random() < 0.3,
        tax_provider_id="BasicTaxProvider",
        customer_message=rng.choice(("", "", "", "Please leave at the back door.")),
    )
    lines = [_line(store, rng, market, p) for p in chosen]
    physical = [line for line in lines if line.shippable]
    if physical:
        shipping_ex, shipping_inc = _prices(market, market.shipping)
        order.addresses.append(
            OrderAddress(
                store.next_id("order_address"),
                billing.copy() if rng.random() < 0.7 else _address(rng, market, who),
                "Flat Rate",
                shipping_ex,
                shipping_inc,
                shipping_zone_name=market.country,
            )
        )
        if len(physical) >= 2 and rng.random() < 0.15:
            friend = _person(rng, 0)
            order.addresses.append(
                OrderAddress(
                    store.next_id("order_address"),
                    _address(rng, market, friend),
                    "Flat Rate",
                    shipping_ex,
                    shipping_inc,
                    shipping_zone_name=market.country,
                )
            )
        for index, line in enumerate(physical):
            line.order_address_id = order.addresses[min(index, len(order.addresses) - 1)].id
    order.products = lines
    if rng.random() < 0.2:
        base = sum(
            (line.total_inc_tax if market.inclusive else line.total_ex_tax for line in lines),
            Decimal(0),
        )
        if rng.random() < 0.5:
            order.coupons.append(
                Coupon(store.next_id("coupon"), 1, "SAVE10", Decimal(10), 1, q2(base / 10))
            )
        else:
            order.coupons.append(
                Coupon(store.next_id("coupon"), 2, "FIVEOFF", Decimal(5), 2, min(Decimal(5), base))
            )
    provider = rng.choices(list(payments.PROVIDERS.values()), (50, 25, 15, 10))[0]
    order.payment = provider
    order.payment_method = provider.description
    digital_only = not physical
    if rng.random() < options.incomplete_share:
        order.status_id = INCOMPLETE
        order.complete_at = created + timedelta(seconds=options.complete_after_seconds)
    else:
        order.status_id = _status(rng, digital_only)
    if provider.offline and order.status_id not in (INCOMPLETE, PENDING):
        order.status_id = AWAITING_PAYMENT
    return order


def generate(
    store: Store, now: datetime, options: Options, events: list[StoreEvent]
) -> list[Order]:
    rng = random.Random(options.seed)
    made = []
    for _ in range(options.count):
        order = make_order(store, rng, now, options)
        add_order(store, order, events)
        if order.status_id not in (INCOMPLETE, PENDING, AWAITING_PAYMENT):
            payments.capture(store, order, order.date_created, events, rng)
        elif order.status_id == AWAITING_PAYMENT:
            order.payment_status = "pending"
        made.append(order)
    return made
