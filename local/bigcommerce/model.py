"""The simulated store's records: orders with their lines, addresses, shipments and payments.

Plain mutable dataclasses, owned by a `Store` and changed only under its lock. Amounts are
`Decimal`; derived figures (line totals, order totals) are computed from them on demand, so the
records never disagree with themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from local.bigcommerce.money import ZERO

ADDRESS_FIELDS = (
    "first_name",
    "last_name",
    "company",
    "street_1",
    "street_2",
    "city",
    "state",
    "zip",
    "country",
    "country_iso2",
    "phone",
    "email",
)


@dataclass(slots=True)
class Address:
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    street_1: str = ""
    street_2: str = ""
    city: str = ""
    state: str = ""
    zip: str = ""
    country: str = ""
    country_iso2: str = ""
    phone: str = ""
    email: str = ""
    form_fields: list[dict[str, Any]] = field(default_factory=list)

    def copy(self) -> Address:
        return replace(self, form_fields=[dict(f) for f in self.form_fields])


@dataclass(slots=True)
class OrderAddress:
    """A shipping address of an order (`order_address_id`): one shipping consignment."""

    id: int
    address: Address
    shipping_method: str = "Flat Rate"
    cost_ex_tax: Decimal = ZERO
    cost_inc_tax: Decimal = ZERO
    handling_ex_tax: Decimal = ZERO
    handling_inc_tax: Decimal = ZERO
    shipping_zone_id: int = 1
    shipping_zone_name: str = "Default Zone"
    refunded_shipping: Decimal = ZERO
    refunded_handling: Decimal = ZERO


@dataclass(slots=True)
class ProductOption:
    id: int
    option_id: int
    product_option_id: int
    display_name: str
    display_value: str
    value: str
    type: str = "Multiple choice"
    name: str = ""
    display_style: str = "Dropdown"


@dataclass(slots=True)
class AppliedDiscount:
    id: str
    amount: Decimal
    name: str
    code: str | None
    target: str = "order"


@dataclass(slots=True)
class OrderProduct:
    """An order line; its `id` is the `order_product_id` of shipments and refunds."""

    id: int
    product_id: int
    variant_id: int
    order_address_id: int
    name: str
    name_merchant: str
    sku: str
    type: str  # physical | digital | giftcertificate
    price_ex_tax: Decimal
    price_inc_tax: Decimal
    quantity: int
    upc: str = ""
    base_cost_price: Decimal = ZERO
    weight: Decimal = ZERO
    brand: str = ""
    quantity_shipped: int = 0
    quantity_refunded: int = 0
    options: list[ProductOption] = field(default_factory=list)
    discounts: list[AppliedDiscount] = field(default_factory=list)
    wrapping_id: int = 0
    wrapping_name: str | None = None
    wrapping_message: str = ""
    wrapping_ex_tax: Decimal = ZERO  # for the whole line
    wrapping_inc_tax: Decimal = ZERO
    wrapping_refunded_quantity: int = 0
    bin_picking_number: str = ""
    fixed_shipping_cost: Decimal = ZERO

    @property
    def price_tax(self) -> Decimal:
        return self.price_inc_tax - self.price_ex_tax

    @property
    def total_ex_tax(self) -> Decimal:
        return self.price_ex_tax * self.quantity

    @property
    def total_inc_tax(self) -> Decimal:
        return self.price_inc_tax * self.quantity

    @property
    def discount_total(self) -> Decimal:
        return sum((d.amount for d in self.discounts), ZERO)

    @property
    def shippable(self) -> bool:
        return self.type == "physical"


@dataclass(slots=True)
class Coupon:
    id: int
    coupon_id: int
    code: str
    amount: Decimal  # 10 for 10% (type 1) or $10 (types 0 and 2)
    type: int  # 0 per item, 1 percentage, 2 per total, 3 shipping, 4 free shipping, 5 promotion
    discount: Decimal  # what it took off this order


@dataclass(slots=True)
class Fee:
    id: int
    display_name_customer: str
    display_name_merchant: str
    source: str
    cost_ex_tax: Decimal
    cost_inc_tax: Decimal
    tax_class_id: int | None = None
    type: str = "custom_fee"
    refunded: Decimal = ZERO


@dataclass(slots=True)
class ShipmentItem:
    order_product_id: int
    product_id: int
    quantity: int


@dataclass(slots=True)
class Shipment:
    id: int
    order_address_id: int
    date_created: datetime
    items: list[ShipmentItem]
    tracking_number: str = ""
    merchant_shipping_cost: Decimal = ZERO
    shipping_method: str = ""
    shipping_provider: str = ""
    tracking_carrier: str = ""
    tracking_link: str = ""
    comments: str = ""


@dataclass(frozen=True, slots=True)
class PaymentProvider:
    """How the shopper paid: what refund quotes offer back and what transactions record."""

    provider_id: str  # refund `provider_id`, e.g. braintree, storecredit, custom
    description: str
    gateway: str  # transaction `gateway` (an enum in the spec)
    method: str  # transaction `method`
    offline: bool = False


@dataclass(slots=True)
class Transaction:
    id: int
    event: str  # purchase | authorization | capture | refund | void | pending | settled
    method: str
    amount: Decimal
    currency: str
    gateway: str
    gateway_transaction_id: str
    date_created: datetime
    payment_method_id: str
    status: str = "ok"
    test: bool = False
    fraud_review: bool = False
    reference_transaction_id: int | None = None
    credit_card: dict[str, Any] | None = None
    offline: dict[str, Any] | None = None
    custom: dict[str, Any] | None = None


@dataclass(slots=True)
class RefundLine:
    item_type: str
    item_id: int
    amount: Decimal  # what this line refunds, tax included
    tax: Decimal
    quantity: int | None = None
    requested_amount: Decimal | None = None  # as sent, for amount-bound items
    reason: str = ""


@dataclass(slots=True)
class RefundPayment:
    id: int
    provider_id: str
    amount: Decimal
    offline: bool
    transaction_id: str = ""


@dataclass(slots=True)
class Refund:
    id: int
    order_id: int
    created: datetime
    reason: str
    total_amount: Decimal
    total_tax: Decimal
    uses_merchant_override_values: bool
    items: list[RefundLine]
    payments: list[RefundPayment]


@dataclass(slots=True)
class Metafield:
    id: int
    order_id: int
    namespace: str
    key: str
    value: str
    permission_set: str
    description: str
    date_created: datetime
    date_modified: datetime
    owner_client_id: str


@dataclass(slots=True)
class Order:
    id: int
    date_created: datetime
    date_modified: datetime
    status_id: int
    billing_address: Address
    customer_id: int = 0
    channel_id: int = 1
    is_deleted: bool = False
    date_shipped: datetime | None = None
    addresses: list[OrderAddress] = field(default_factory=list)
    products: list[OrderProduct] = field(default_factory=list)
    coupons: list[Coupon] = field(default_factory=list)
    fees: list[Fee] = field(default_factory=list)
    shipments: dict[int, Shipment] = field(default_factory=dict)
    transactions: list[Transaction] = field(default_factory=list)
    refund_ids: list[int] = field(default_factory=list)
    discount_amount: Decimal = ZERO  # manual discount
    subtotal_override: tuple[Decimal, Decimal] | None = None  # (ex tax, inc tax)
    total_override: tuple[Decimal, Decimal] | None = None
    is_tax_inclusive_pricing: bool = False
    tax_rate: Decimal = ZERO  # percent, e.g. Decimal("8.25")
    tax_class_name: str = "Default Tax Class"
    currency_code: str = "USD"  # transactional (= display for V2)
    store_currency_code: str = "USD"
    exchange_rate: Decimal = Decimal("1")  # store default → transactional
    payment: PaymentProvider | None = None
    payment_method: str = "Manual"
    payment_status: str = ""
    payment_provider_id: str = ""
    store_credit_amount: Decimal = ZERO
    gift_certificate_amount: Decimal = ZERO
    refunded_total: Decimal = ZERO
    staff_notes: str = ""
    customer_message: str = ""
    ip_address: str = ""
    ip_address_v6: str = ""
    geoip_country: str = ""
    geoip_country_iso2: str = ""
    cart_id: str = ""
    order_source: str = "external"
    external_source: str | None = None
    external_id: str | None = None
    external_merchant_id: str | None = None
    external_order_id: str = ""
    customer_locale: str = "en"
    ebay_order_id: str = "0"
    is_email_opt_in: bool = False
    credit_card_type: str | None = None
    tax_provider_id: str = ""
    complete_at: datetime | None = None  # an incomplete order the shopper will finish

    def address(self, address_id: int) -> OrderAddress | None:
        return next((a for a in self.addresses if a.id == address_id), None)

    def product(self, line_id: int) -> OrderProduct | None:
        return next((p for p in self.products if p.id == line_id), None)

    def fee(self, fee_id: int) -> Fee | None:
        return next((f for f in self.fees if f.id == fee_id), None)

    @property
    def items_total(self) -> int:
        return sum(p.quantity for p in self.products)

    @property
    def items_shipped(self) -> int:
        return sum(p.quantity_shipped for p in self.products)

    @property
    def is_digital(self) -> bool:
        return bool(self.products) and not any(p.shippable for p in self.products)

    @property
    def email(self) -> str:
        return self.billing_address.email
