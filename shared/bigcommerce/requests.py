"""Bodies of the writes we send: shipments, refund quotes and refunds, metafields, hooks.

Limits are the specs' (`tracking_number` <= 50, `tracking_link` <= 500, refund `reason` <= 1000,
metafield `key`/`namespace` <= 64), checked here so a bad value fails before it costs a request
from the store's shared quota. Extra fields are forbidden: a typo must not be silently dropped.
`body()` is what goes on the wire: JSON-ready, with unset optional fields left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from shared.bigcommerce.models import RefundQuote
from shared.bigcommerce.money import JsonNumberMoney, V2MoneyString

PositiveInt = Annotated[int, Field(gt=0)]


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class _AtLeastOneField(RequestBody):
    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.model_dump(exclude_none=True):
            raise ValueError("an update must set at least one field")
        return self


# -- shipments (Orders V2) -----------------------------------------------------------------------


class ShipmentLine(RequestBody):
    order_product_id: PositiveInt
    quantity: PositiveInt


class ShipmentCreate(RequestBody):
    """`order_address_id` comes from the order's shipping addresses, `order_product_id` from its
    products (the line `id`). Create the shipment before moving the status to Shipped, or the
    customer's e-mail goes out without tracking (bigcommerce/docs#589)."""

    order_address_id: PositiveInt
    items: list[ShipmentLine] = Field(min_length=1)
    tracking_number: str | None = Field(default=None, max_length=50)
    tracking_link: str | None = Field(default=None, max_length=500)
    tracking_carrier: str | None = None
    shipping_provider: str | None = None
    shipping_method: str | None = None
    merchant_shipping_cost: V2MoneyString | None = None
    comments: str | None = Field(default=None, max_length=65535)


class ShipmentUpdate(_AtLeastOneField):
    order_address_id: PositiveInt | None = None
    tracking_number: str | None = Field(default=None, max_length=50)
    tracking_link: str | None = Field(default=None, max_length=500)
    tracking_carrier: str | None = None
    shipping_provider: str | None = None
    shipping_method: str | None = None
    merchant_shipping_cost: V2MoneyString | None = None
    comments: str | None = Field(default=None, max_length=65535)


# -- refunds (Orders V3 payment actions) ---------------------------------------------------------

QuantityItemType = Literal["PRODUCT", "GIFT_WRAPPING"]
AmountItemType = Literal["SHIPPING", "HANDLING", "ORDER", "FEE", "TAX"]


class RefundLine(RequestBody):
    """PRODUCT and GIFT_WRAPPING take the order product `id` and a `quantity`; SHIPPING and
    HANDLING take the `order_address_id` and an `amount`; ORDER takes the order id and an
    amount (tax-exempt); FEE takes the fee id and an amount."""

    item_type: QuantityItemType | AmountItemType
    item_id: PositiveInt
    quantity: PositiveInt | None = None
    amount: JsonNumberMoney | None = None
    reason: str | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _quantity_or_amount(self) -> Self:
        by_quantity = self.item_type in ("PRODUCT", "GIFT_WRAPPING")
        if by_quantity and self.quantity is None:
            raise ValueError(f"{self.item_type} refunds take a quantity")
        if not by_quantity and self.amount is None:
            raise ValueError(f"{self.item_type} refunds take an amount")
        if self.amount is not None and self.amount < 0:
            raise ValueError("a refund amount cannot be negative")
        return self


class RefundQuoteRequest(RequestBody):
    items: list[RefundLine] = Field(min_length=1)


class RefundPaymentLine(RequestBody):
    provider_id: str = Field(min_length=1)
    amount: JsonNumberMoney
    offline: bool


class MerchantOverride(RequestBody):
    total_amount: JsonNumberMoney
    total_tax: JsonNumberMoney


class RefundCreate(RequestBody):
    """The payments must match one of the quote's `refund_methods` exactly, or BigCommerce
    answers 422; `from_quote` builds them from the quote."""

    items: list[RefundLine] = Field(min_length=1)
    payments: list[RefundPaymentLine] = Field(min_length=1)
    merchant_calculated_override: MerchantOverride | None = None

    @classmethod
    def from_quote(
        cls, items: Sequence[RefundLine], quote: RefundQuote, method: int = 0
    ) -> RefundCreate:
        """The refund of `items` paid back by alternative number `method` of the quote."""
        if not 0 <= method < len(quote.refund_methods):
            raise ValueError(
                f"the quote offers {len(quote.refund_methods)} refund methods; no method {method}"
            )
        payments = [
            RefundPaymentLine(provider_id=o.provider_id, amount=o.amount, offline=o.offline)
            for o in quote.refund_methods[method]
        ]
        return cls(items=list(items), payments=payments)


# -- order metafields (Orders V3) ----------------------------------------------------------------

PermissionSet = Literal["app_only", "read", "write", "read_and_sf_access", "write_and_sf_access"]


class MetafieldWrite(RequestBody):
    """Both create and update: the spec's update body requires the same four fields."""

    namespace: str = Field(min_length=1, max_length=64)
    key: str = Field(min_length=1, max_length=64)
    value: str = Field(min_length=1, max_length=65535)
    permission_set: PermissionSet = "app_only"
    description: str | None = Field(default=None, max_length=255)


# -- hooks (Webhooks V3) -------------------------------------------------------------------------


def _destination(value: str) -> str:
    # BigCommerce delivers to https on port 443 only; plain http is let through for loopback so
    # the local simulator can call the local host. A query string (a function key) is allowed.
    parts = urlsplit(value)
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if not parts.netloc or not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        raise ValueError("must be an https URL (plain http only for 127.0.0.1/localhost)")
    return value


Destination = Annotated[str, AfterValidator(_destination)]


class HookCreate(RequestBody):
    scope: str = Field(min_length=1)
    destination: Destination
    is_active: bool = True
    headers: dict[str, str] | None = Field(default=None, repr=False)


class HookUpdate(_AtLeastOneField):
    scope: str | None = Field(default=None, min_length=1)
    destination: Destination | None = None
    is_active: bool | None = None
    headers: dict[str, str] | None = Field(default=None, repr=False)
