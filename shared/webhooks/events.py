"""Pydantic models of the BigCommerce webhook callbacks we subscribe to, routed by scope.

Shapes follow the callback models in BigCommerce's docs (docs/webhooks/callbacks/*.yml and the
events reference). Unknown extra fields are allowed, since BigCommerce adds fields over time;
missing or mistyped fields we rely on are not. Integers are JSON integers, or strings of digits
as transaction callbacks send them: not true/false, 2.0 or " 2", which pydantic's lax mode would
turn into ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

# The connector keeps BigCommerce ids in Dataverse whole-number columns (int32), and the Service
# Bus SDK encodes an int application property as int32: a larger id is not one we can process.
MAX_ID: Final = 2**31 - 1
# Matched with fullmatch (and by pydantic, whose `$` is the end of the text): no trailing newline.
PRODUCER: Final = re.compile(r"^stores/([a-z0-9]{1,32})$")


def _integer(value: object) -> object:
    if isinstance(value, bool | float) or (
        isinstance(value, str) and not (value.isascii() and value.isdigit())
    ):
        raise ValueError("must be an integer")
    return value


Integer = Annotated[int, BeforeValidator(_integer)]
PositiveId = Annotated[Integer, Field(gt=0, le=MAX_ID)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Envelope(_Model):
    scope: str = Field(min_length=1, max_length=200)
    store_id: str = Field(pattern=r"^[0-9]+$")
    producer: str = Field(pattern=PRODUCER.pattern)
    hash: str | None = Field(default=None, max_length=200)
    created_at: Integer = Field(ge=0)
    data: dict[str, Any]

    @property
    def store_hash(self) -> str:
        match = PRODUCER.fullmatch(self.producer)
        assert match is not None
        return match.group(1)


class OrderData(_Model):
    type: Literal["order"]
    id: PositiveId


class StatusChange(_Model):
    previous_status_id: Integer = Field(ge=0)
    new_status_id: Integer = Field(ge=0)


class OrderStatusData(OrderData):
    status: StatusChange


class OrderMessageRef(_Model):
    order_message_id: PositiveId


class OrderMessageData(OrderData):
    message: OrderMessageRef


class RefundRef(_Model):
    refund_id: PositiveId


class OrderRefundData(OrderData):
    refund: RefundRef


class TransactionData(_Model):
    """Transaction events carry ids as strings; order_id is coerced to an int."""

    type: Literal["transaction"] | None = None
    order_id: PositiveId
    transaction_id: str | int | None = None
    transaction_status: str | None = None
    transaction_type: str | None = None


class ShipmentData(_Model):
    type: Literal["shipment"]
    id: PositiveId
    orderId: PositiveId  # camelCase, as BigCommerce sends it


class ChannelOrderData(_Model):
    order_id: PositiveId


class CustomerData(_Model):
    type: Literal["customer"]
    id: PositiveId


class AddressRef(_Model):
    customer_id: PositiveId


class CustomerAddressData(CustomerData):
    address: AddressRef


class Inventory(_Model):
    product_id: PositiveId
    method: Literal["absolute", "relative"]
    value: Integer
    variant_id: PositiveId | None = None


class ProductInventoryData(_Model):
    type: Literal["product"]
    id: PositiveId
    inventory: Inventory


class SkuInventoryData(_Model):
    type: Literal["sku"]
    id: PositiveId
    inventory: Inventory


class DeliveryExceptionData(_Model):
    type: Literal["webhook"]
    id: PositiveId
    error_code: Integer
    message: str = ""


class AnyData(_Model):
    pass


@dataclass(frozen=True, slots=True)
class EventKind:
    """What a family of scopes means to us: its data model and the entity it concerns."""

    family: str
    model: type[_Model]
    entity: Literal["order", "customer", "product", "sku", "hooks", "store"]

    def entity_id(self, data: _Model) -> int | None:
        match data:
            case ShipmentData():
                return data.orderId
            case TransactionData() | ChannelOrderData():
                return data.order_id
            case CustomerAddressData():
                return data.address.customer_id
            case ProductInventoryData() | SkuInventoryData() | CustomerData() | OrderData():
                return data.id
        return None


_ROUTES: Final[tuple[tuple[re.Pattern[str], EventKind], ...]] = tuple(
    (re.compile(f"^{pattern}$"), kind)
    for pattern, kind in (
        (r"store/order/(created|updated|archived)", EventKind("order", OrderData, "order")),
        (r"store/order/statusUpdated", EventKind("order", OrderStatusData, "order")),
        (r"store/order/message/created", EventKind("order", OrderMessageData, "order")),
        (r"store/order/refund/created", EventKind("refund", OrderRefundData, "order")),
        (
            r"store/order/transaction/(created|updated)",
            EventKind("transaction", TransactionData, "order"),
        ),
        (r"store/shipment/(created|updated|deleted)", EventKind("shipment", ShipmentData, "order")),
        (
            r"store/channel/[0-9]+/order/(created|updated|archived|statusUpdated|message/created"
            r"|refund/created)",
            EventKind("channel_order", ChannelOrderData, "order"),
        ),
        (
            r"store/customer/(created|updated|deleted)",
            EventKind("customer", CustomerData, "customer"),
        ),
        (
            r"store/customer/address/(created|updated|deleted)",
            EventKind("customer", CustomerAddressData, "customer"),
        ),
        (
            r"store/product/inventory/(updated|order/updated)",
            EventKind("inventory", ProductInventoryData, "product"),
        ),
        (
            r"store/sku/inventory/(updated|order/updated)",
            EventKind("inventory", SkuInventoryData, "sku"),
        ),
        (r"store/hook/deliveryException", EventKind("hook", DeliveryExceptionData, "hooks")),
        (r"store/app/uninstalled", EventKind("app", AnyData, "store")),
    )
)


def kind_of(scope: str) -> EventKind | None:
    for pattern, kind in _ROUTES:
        if pattern.fullmatch(scope):
            return kind
    return None


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A validated callback: the envelope, its typed data and what it concerns."""

    envelope: Envelope
    kind: EventKind
    data: _Model

    @property
    def entity_id(self) -> int | None:
        return self.kind.entity_id(self.data)


class EventValidationError(ValueError):
    """The callback does not match the model of its scope; the message says where."""


def _describe(error: ValidationError, prefix: str) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in (prefix, *first["loc"]) if p != "")
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def parse_envelope(payload: object) -> Envelope:
    try:
        return Envelope.model_validate(payload)
    except ValidationError as exc:
        raise EventValidationError(_describe(exc, "")) from None


def parse_event(envelope: Envelope) -> WebhookEvent | None:
    """The typed event, or None when we do not subscribe to this scope."""
    kind = kind_of(envelope.scope)
    if kind is None:
        return None
    try:
        data = kind.model.model_validate(envelope.data)
    except ValidationError as exc:
        raise EventValidationError(_describe(exc, "data")) from None
    return WebhookEvent(envelope=envelope, kind=kind, data=data)
