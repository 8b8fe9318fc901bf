"""Order messages on `order-events`: what the runner reads and what it (and others) send there.

Two schemas arrive in an order's session (`<store_hash>:order:<order id>`):
- `bigcommerce.webhook` v1, from the webhook ingress (docs/messages.md);
- `connector.order` v1, from the connector itself: a Dataverse change forwarded into the order's
  session, a scheduled retry of an earlier message, an operator replay. Its body names the
  trigger, the order and the attempt; like a webhook it is only a hint to look at the order.

Message ids are deterministic where a duplicate must be dropped by the broker (a retry of a given
attempt, a Dataverse row version) and new where a send must not be dropped (a replay).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from shared.messaging.message import OutboundMessage, PropertyValue
from shared.orchestration.flow import Trigger
from shared.webhooks import contract as webhook_contract

SCHEMA: Final = "connector.order"
SCHEMA_VERSION: Final = 1

# Webhook families (shared/webhooks/events.py) that concern an order, by trigger.
_WEBHOOK_TRIGGERS: Final[Mapping[str, Trigger]] = {
    "order": Trigger.BIGCOMMERCE_ORDER,
    "channel_order": Trigger.BIGCOMMERCE_ORDER,
    "transaction": Trigger.BIGCOMMERCE_ORDER,
    "shipment": Trigger.BIGCOMMERCE_SHIPMENT,
    "refund": Trigger.BIGCOMMERCE_REFUND,
}


class MessageFormatError(ValueError):
    """A message the runner cannot read; it is parked with this one-line reason."""


@dataclass(frozen=True, slots=True)
class OrderMessage:
    trigger: Trigger
    store_hash: str
    order_id: int
    message_id: str
    correlation_id: str
    attempt: int = 0  # 0 for a first delivery; n for the n-th scheduled retry
    origin_message_id: str | None = None  # the message a retry or replay stands for
    detail: str = ""  # the webhook scope, or what changed in Dataverse

    @property
    def session_id(self) -> str:
        return order_session(self.store_hash, self.order_id)


@dataclass(frozen=True, slots=True)
class Skip:
    """A message on the queue that is about no order (e.g. a customer webhook)."""

    reason: str


def order_session(store_hash: str, order_id: int) -> str:
    return f"{store_hash}:order:{order_id}"


def read_message(
    body: bytes,
    *,
    message_id: str,
    application_properties: Mapping[str, PropertyValue],
    correlation_id: str | None = None,
) -> OrderMessage | Skip:
    """An order message from a received message; MessageFormatError when unreadable."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageFormatError(f"message {message_id}: body is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise MessageFormatError(f"message {message_id}: body is not a JSON object")
    schema, version = document.get("schema"), document.get("schema_version")
    if schema == webhook_contract.SCHEMA:
        if version != webhook_contract.SCHEMA_VERSION:
            raise MessageFormatError(f"message {message_id}: {schema} version {version} unknown")
        return _from_webhook(document, message_id, application_properties, correlation_id)
    if schema == SCHEMA:
        if version != SCHEMA_VERSION:
            raise MessageFormatError(f"message {message_id}: {schema} version {version} unknown")
        return _from_connector(document, message_id)
    raise MessageFormatError(f"message {message_id}: unknown schema {schema!r}")


def _from_webhook(
    document: Mapping[str, Any],
    message_id: str,
    properties: Mapping[str, PropertyValue],
    correlation_id: str | None,
) -> OrderMessage | Skip:
    family = properties.get("family")
    scope = str(properties.get("scope") or "")
    trigger = _WEBHOOK_TRIGGERS.get(str(family))
    if trigger is None:
        return Skip(f"{scope or family}: not about an order")
    order_id = properties.get("order_id")
    store_hash = document.get("store_hash") or properties.get("store_hash")
    if not isinstance(order_id, int) or isinstance(order_id, bool) or order_id <= 0:
        raise MessageFormatError(f"message {message_id}: {scope} carries no order id")
    if not isinstance(store_hash, str) or not store_hash:
        raise MessageFormatError(f"message {message_id}: no store hash")
    return OrderMessage(
        trigger=trigger,
        store_hash=store_hash,
        order_id=order_id,
        message_id=message_id,
        correlation_id=str(document.get("correlation_id") or correlation_id or message_id),
        detail=scope,
    )


def _from_connector(document: Mapping[str, Any], message_id: str) -> OrderMessage:
    try:
        if document["trigger"] not in {t.value for t in Trigger}:
            raise ValueError(f"trigger {document['trigger']!r}")
        trigger = Trigger(document["trigger"])
        store_hash = document["store_hash"]
        order_id = document["order_id"]
        attempt = document.get("attempt", 0)
        if not isinstance(store_hash, str) or not store_hash:
            raise ValueError("store_hash")
        if not isinstance(order_id, int) or isinstance(order_id, bool) or order_id <= 0:
            raise ValueError("order_id")
        if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 0:
            raise ValueError("attempt")
    except KeyError as exc:
        raise MessageFormatError(f"message {message_id}: {SCHEMA} lacks {exc}") from None
    except ValueError as exc:
        raise MessageFormatError(f"message {message_id}: {SCHEMA} has an invalid {exc}") from None
    return OrderMessage(
        trigger=trigger,
        store_hash=store_hash,
        order_id=order_id,
        message_id=message_id,
        correlation_id=str(document.get("correlation_id") or message_id),
        attempt=attempt,
        origin_message_id=document.get("origin_message_id"),
        detail=str(document.get("detail") or ""),
    )


def build_order_message(
    *,
    trigger: Trigger,
    store_hash: str,
    order_id: int,
    message_id: str,
    correlation_id: str,
    attempt: int = 0,
    origin_message_id: str | None = None,
    detail: str = "",
    scheduled_enqueue_time: datetime | None = None,
    traceparent: str | None = None,
) -> OutboundMessage:
    body = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "trigger": trigger.value,
        "store_hash": store_hash,
        "order_id": order_id,
        "attempt": attempt,
        "origin_message_id": origin_message_id,
        "detail": detail,
        "correlation_id": correlation_id,
    }
    properties: dict[str, PropertyValue] = {
        "schema_version": SCHEMA_VERSION,
        "trigger": trigger.value,
        "store_hash": store_hash,
        "entity": "order",
        "order_id": order_id,
        "attempt": attempt,
        "correlation_id": correlation_id,
    }
    if traceparent:
        properties["traceparent"] = traceparent
    return OutboundMessage(
        body=json.dumps(body, separators=(",", ":")).encode(),
        message_id=message_id,
        session_id=order_session(store_hash, order_id),
        application_properties=properties,
        correlation_id=correlation_id,
        subject=f"{SCHEMA}/{trigger.value}",
        scheduled_enqueue_time=scheduled_enqueue_time,
    )


def derived_id(*parts: object) -> str:
    """A deterministic message id from its parts (e.g. origin id and attempt)."""
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()
