"""Typed views of what we read from BigCommerce: Orders V2, Orders V3 and Webhooks V3.

Field names and types follow reference/orders.v2.oas2.yml, orders.v3.yml and webhooks.v3.yml.
Every model allows extra fields (BigCommerce adds fields over time; undeclared ones stay readable
through `model_extra`), takes money as `Decimal` and dates as aware datetimes. Fields the
integration depends on (ids, status, dates of change, totals) are required, so a response without
them fails loudly as a `ResponseFormatError` instead of becoming a silent zero; the rest default
to None or empty.

`unwrap` accepts V3's `{"data": ..., "meta": ...}` envelope and flat bodies alike (the webhooks
overview shows flat hooks where the spec shows wrapped ones).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field

from shared.bigcommerce.dates import RequiredTimestamp, Timestamp
from shared.bigcommerce.money import Money, OptionalMoney

V2_DEFAULT_PAGE_SIZE: Final = 50


class BigCommerceModel(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


def unwrap(body: object) -> object:
    """The payload of a V3 `{data, meta}` envelope, or the body itself when it is flat."""
    if isinstance(body, Mapping) and "data" in body and set(body) <= {"data", "meta"}:
        return body["data"]
    return body


def _as_list(value: object) -> object:
    """A single object where a list is documented (the digital consignment example) is a list."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [value]
    return value


def _as_str(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


IdString = Annotated[str | None, BeforeValidator(_as_str)]


# -- shared pieces -------------------------------------------------------------------------------


class ResourceLink(BigCommerceModel):
    """A V2 sub-resource given as a link (`products`, `shipping_addresses`, `coupons`, …)."""

    url: str
    resource: str


class FormField(BigCommerceModel):
    name: str
    value: Any = None


class Address(BigCommerceModel):
    first_name: str = ""
    last_name: str = ""
    company: str | None = None
    street_1: str = ""
    street_2: str | None = None
    city: str = ""
    state: str | None = None
    zip: str | None = None
    country: str = ""
    country_iso2: str | None = None
    phone: str | None = None
    email: str | None = None
    form_fields: list[FormField] = Field(default_factory=list)


class Pagination(BigCommerceModel):
    total: int | None = None
    count: int | None = None
    per_page: int | None = None
    current_page: int | None = None
    total_pages: int | None = None


# -- Orders V2 -----------------------------------------------------------------------------------


class AppliedDiscount(BigCommerceModel):
    id: str | int | None = None
    amount: OptionalMoney = None
    name: str | None = None
    code: str | None = None
    target: str | None = None


class ProductOption(BigCommerceModel):
    id: int | None = None
    option_id: int | None = None
    order_product_id: int | None = None
    product_option_id: int | None = None
    display_name: str | None = None
    display_value: str | None = None
    value: str | None = None
    type: str | None = None
    name: str | None = None


class OrderProduct(BigCommerceModel):
    """One order line. `id` is the `order_product_id` that shipments and refunds refer to."""

    id: int
    order_id: int
    product_id: int
    variant_id: int | None = None
    order_address_id: int | None = None
    name: str = ""
    sku: str | None = None
    upc: str | None = None
    type: str | None = None
    quantity: int
    quantity_shipped: int = 0
    quantity_refunded: int = 0
    is_refunded: bool = False
    refund_amount: OptionalMoney = None
    base_price: OptionalMoney = None
    price_ex_tax: Money
    price_inc_tax: Money
    price_tax: OptionalMoney = None
    base_total: OptionalMoney = None
    total_ex_tax: Money
    total_inc_tax: Money
    total_tax: OptionalMoney = None
    discounted_total_inc_tax: OptionalMoney = None
    fixed_shipping_cost: OptionalMoney = None
    parent_order_product_id: int | None = None
    is_bundled_product: bool = False
    external_id: str | None = None
    brand: str | None = None
    applied_discounts: list[AppliedDiscount] = Field(default_factory=list)
    product_options: list[ProductOption] = Field(default_factory=list)


class OrderShippingAddress(Address):
    """A V2 shipping address. `id` is the `order_address_id` shipments are created against."""

    id: int
    order_id: int | None = None
    items_total: int | None = None
    items_shipped: int | None = None
    shipping_method: str | None = None
    base_cost: OptionalMoney = None
    cost_ex_tax: OptionalMoney = None
    cost_inc_tax: OptionalMoney = None
    cost_tax: OptionalMoney = None
    cost_tax_class_id: int | None = None
    base_handling_cost: OptionalMoney = None
    handling_cost_ex_tax: OptionalMoney = None
    handling_cost_inc_tax: OptionalMoney = None
    handling_cost_tax: OptionalMoney = None
    shipping_zone_id: int | None = None
    shipping_zone_name: str | None = None


LineItems = Annotated[list[OrderProduct] | list[ResourceLink], BeforeValidator(_as_list)]


class ShippingConsignment(OrderShippingAddress):
    """A shipping consignment of `include=consignments…&consignment_structure=object`: the
    address and costs of one destination, with its order lines when `.line_items` was asked."""

    line_items: LineItems = Field(default_factory=list)


class PickupConsignment(BigCommerceModel):
    id: int | None = None
    pickup_method_id: int | None = None
    location: dict[str, Any] | None = None
    line_items: LineItems = Field(default_factory=list)


class RecipientConsignment(BigCommerceModel):
    """A digital-download or gift-certificate consignment."""

    recipient_email: str | None = None
    line_items: LineItems = Field(default_factory=list)


class EmailConsignments(BigCommerceModel):
    gift_certificates: list[RecipientConsignment] = Field(default_factory=list)


class OrderConsignments(BigCommerceModel):
    pickups: list[PickupConsignment] = Field(default_factory=list)
    shipping: list[ShippingConsignment] = Field(default_factory=list)
    downloads: list[RecipientConsignment] = Field(default_factory=list)
    email: EmailConsignments | None = None

    def line_items(self) -> list[OrderProduct] | None:
        """Every embedded order line, or None when any consignment only links to its lines."""
        groups: list[list[OrderProduct] | list[ResourceLink]] = [
            *(c.line_items for c in self.shipping),
            *(c.line_items for c in self.pickups),
            *(c.line_items for c in self.downloads),
            *(c.line_items for c in (self.email.gift_certificates if self.email else ())),
        ]
        lines: list[OrderProduct] = []
        for group in groups:
            for item in group:
                if not isinstance(item, OrderProduct):
                    return None
                lines.append(item)
        return lines


def _consignments(value: object) -> object:
    # Without consignment_structure=object BigCommerce documents only a link; anything that is
    # neither a link nor the object structure is kept as None rather than guessed at.
    if isinstance(value, Mapping):
        if "url" in value and set(value) <= {"url", "resource"}:
            return ResourceLink.model_validate(value)
        return OrderConsignments.model_validate(value)
    return None


def _fees(value: object) -> object:
    if isinstance(value, Mapping):
        return ResourceLink.model_validate(value)
    return value


class Fee(BigCommerceModel):
    id: int | None = None
    type: str | None = None
    display_name_customer: str | None = None
    display_name_merchant: str | None = None
    source: str | None = None
    base_cost: OptionalMoney = None
    # The spec spells it both ways (`cost_ex_tax` in requests, `cost_exc_tax` in examples).
    cost_ex_tax: OptionalMoney = Field(
        default=None, validation_alias=AliasChoices("cost_ex_tax", "cost_exc_tax")
    )
    cost_inc_tax: OptionalMoney = None
    cost_tax: OptionalMoney = None
    tax_class_id: int | None = None


class Order(BigCommerceModel):
    """A V2 order. Sub-resources are links unless asked for with `include`."""

    id: int
    status_id: int
    status: str = ""
    custom_status: str | None = None
    customer_id: int = 0
    channel_id: int | None = None
    cart_id: str | None = None
    external_id: str | None = None
    external_order_id: str | None = None
    external_source: str | None = None
    order_source: str | None = None
    is_deleted: bool = False
    date_created: RequiredTimestamp
    date_modified: RequiredTimestamp
    date_shipped: Timestamp = None
    payment_status: str | None = None
    payment_method: str | None = None
    payment_provider_id: IdString = None
    currency_code: str | None = None
    default_currency_code: str | None = None
    store_default_currency_code: str | None = None
    currency_exchange_rate: OptionalMoney = None
    store_default_to_transactional_exchange_rate: OptionalMoney = None
    is_tax_inclusive_pricing: bool | None = None
    subtotal_ex_tax: Money
    subtotal_inc_tax: Money
    subtotal_tax: OptionalMoney = None
    base_shipping_cost: OptionalMoney = None
    shipping_cost_ex_tax: OptionalMoney = None
    shipping_cost_inc_tax: OptionalMoney = None
    shipping_cost_tax: OptionalMoney = None
    base_handling_cost: OptionalMoney = None
    handling_cost_ex_tax: OptionalMoney = None
    handling_cost_inc_tax: OptionalMoney = None
    handling_cost_tax: OptionalMoney = None
    base_wrapping_cost: OptionalMoney = None
    wrapping_cost_ex_tax: OptionalMoney = None
    wrapping_cost_inc_tax: OptionalMoney = None
    wrapping_cost_tax: OptionalMoney = None
    total_ex_tax: Money
    total_inc_tax: Money
    total_tax: OptionalMoney = None
    discount_amount: OptionalMoney = None
    coupon_discount: OptionalMoney = None
    store_credit_amount: OptionalMoney = None
    gift_certificate_amount: OptionalMoney = None
    # Documented as always 0; refund totals come from the V3 refunds.
    refunded_amount: OptionalMoney = None
    items_total: int | None = None
    items_shipped: int | None = None
    shipping_address_count: int | None = None
    customer_message: str | None = None
    staff_notes: str | None = None
    customer_locale: str | None = None
    billing_address: Address | None = None
    products: ResourceLink | None = None
    shipping_addresses: ResourceLink | None = None
    coupons: ResourceLink | None = None
    consignments: Annotated[
        OrderConsignments | ResourceLink | None, BeforeValidator(_consignments)
    ] = None
    fees: Annotated[list[Fee] | ResourceLink | None, BeforeValidator(_fees)] = None


class OrderCoupon(BigCommerceModel):
    """`type`: 0 per item, 1 percentage, 2 per total, 3 shipping, 4 free shipping, 5 promotion.
    `amount` is the coupon's face value (percent or currency); `discount` is what it took off."""

    id: int
    coupon_id: int | None = None
    order_id: int | None = None
    code: str | None = None
    amount: OptionalMoney = None
    type: int | None = None
    discount: OptionalMoney = None


class ShipmentItem(BigCommerceModel):
    order_product_id: int
    product_id: int | None = None
    quantity: int


class Shipment(BigCommerceModel):
    id: int
    order_id: int
    customer_id: int | None = None
    order_address_id: int
    date_created: Timestamp = None
    tracking_number: str = ""
    merchant_shipping_cost: OptionalMoney = None
    shipping_method: str | None = None
    shipping_provider: str | None = None
    shipping_provider_display_name: str | None = None
    tracking_carrier: str | None = None
    tracking_link: str | None = None
    generated_tracking_link: str | None = None
    comments: str | None = None
    billing_address: Address | None = None
    shipping_address: Address | None = None
    items: list[ShipmentItem] = Field(default_factory=list)


class OrderStatus(BigCommerceModel):
    """An order status. Map by `id`: merchants rename `custom_label`."""

    id: int
    name: str = ""
    system_label: str | None = None
    custom_label: str | None = None
    system_description: str | None = None
    order: int | None = None


class OrderStatusCount(OrderStatus):
    count: int = 0
    sort_order: int | None = None


class OrdersCount(BigCommerceModel):
    count: int
    statuses: list[OrderStatusCount] = Field(default_factory=list)


# -- Orders V3 -----------------------------------------------------------------------------------


class Transaction(BigCommerceModel):
    id: int
    order_id: int  # a string in the V3 spec; coerced
    event: str
    method: str | None = None
    amount: Money
    currency: str | None = None
    gateway: str | None = None
    gateway_transaction_id: str | None = None
    payment_method_id: str | None = None
    date_created: Timestamp = None
    test: bool | None = None
    status: str | None = None
    fraud_review: bool | None = None
    reference_transaction_id: int | None = None
    offline: dict[str, Any] | None = None
    custom: dict[str, Any] | None = None
    credit_card: dict[str, Any] | None = None
    gift_certificate: dict[str, Any] | None = None
    store_credit: dict[str, Any] | None = None


class PaymentOption(BigCommerceModel):
    provider_id: str
    provider_description: str | None = None
    amount: Money
    offline: bool = False
    offline_provider: bool | None = None
    offline_reason: str | None = None


class RefundQuote(BigCommerceModel):
    """`refund_methods` is a list of alternatives, each a list of payments that together refund
    the quote; a refund must send one alternative's payments with exactly these amounts."""

    order_id: int | None = None
    total_refund_amount: Money
    total_refund_tax_amount: OptionalMoney = None
    order_level_refund_amount: OptionalMoney = None
    rounding: OptionalMoney = None
    adjustment: OptionalMoney = None
    tax_inclusive: bool | None = None
    refund_methods: list[list[PaymentOption]] = Field(default_factory=list)


class RefundItem(BigCommerceModel):
    item_type: str
    item_id: int
    reason: str | None = None
    quantity: int | None = None
    requested_amount: OptionalMoney = None
    adjustments: list[dict[str, Any]] = Field(default_factory=list)


class RefundPayment(BigCommerceModel):
    id: int | None = None
    provider_id: str
    amount: Money
    offline: bool = False
    is_declined: bool = False
    declined_message: str | None = None
    transaction_id: IdString = None


class Refund(BigCommerceModel):
    id: int
    order_id: int
    user_id: int | None = None
    created: Timestamp = None
    reason: str | None = None
    total_amount: Money
    total_tax: OptionalMoney = None
    uses_merchant_override_values: bool | None = None
    items: list[RefundItem] = Field(default_factory=list)
    payments: list[RefundPayment] = Field(default_factory=list)


class Metafield(BigCommerceModel):
    id: int
    namespace: str
    key: str
    value: str
    permission_set: str | None = None
    description: str | None = None
    resource_type: str | None = None
    resource_id: int | None = None
    owner_client_id: str | None = None
    date_created: Timestamp = None
    date_modified: Timestamp = None


# -- Webhooks V3 ---------------------------------------------------------------------------------


class Webhook(BigCommerceModel):
    id: int
    scope: str
    destination: str
    is_active: bool = True
    client_id: str | None = None
    store_hash: str | None = None
    # Our custom headers carry the webhook secret: kept out of reprs and logs.
    headers: dict[str, str] | None = Field(default=None, repr=False)
    created_at: Timestamp = None
    updated_at: Timestamp = None


class HookStatus(Webhook):
    status: str | None = None  # inactive | active | deactivated


class BlockReason(BigCommerceModel):
    failure_description: str | None = None
    count: int | None = None
    timestamp: Timestamp = None


class BlockedDomain(BigCommerceModel):
    destination: str
    time_left: int | None = None  # seconds left on the denylist
    reasons: list[BlockReason] = Field(default_factory=list)


class HooksAdmin(BigCommerceModel):
    emails: list[str] = Field(default_factory=list)
    hooks_list: list[HookStatus] = Field(default_factory=list)
    blocked_domains: list[BlockedDomain] = Field(default_factory=list)
