"""The message a webhook becomes on the order-events queue (docs/messages.md, version 1).

- `message_id` is derived from (store, scope, hash, created_at), so BigCommerce redelivering the
  same event is dropped by duplicate detection while a new event on the same order is not.
- `session_id` is the entity: one order's events are processed in order, by one worker at a time.
- The body is the validated callback as received plus receipt metadata; consumers re-fetch the
  resource, so the body stays thin.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Final

from shared.messaging.message import OutboundMessage, PropertyValue
from shared.webhooks.events import WebhookEvent

SCHEMA: Final = "bigcommerce.webhook"
SCHEMA_VERSION: Final = 1
# json.dumps(separators=...) builds an encoder per call; this is the same encoding.
_COMPACT_JSON: Final = json.JSONEncoder(separators=(",", ":"))


def message_id(event: WebhookEvent) -> str:
    envelope = event.envelope
    # Without a hash (not seen, but not guaranteed) the data itself identifies the event.
    identity = envelope.hash or json.dumps(envelope.data, sort_keys=True, separators=(",", ":"))
    key = f"{envelope.store_hash}|{envelope.scope}|{identity}|{envelope.created_at}"
    return hashlib.sha256(key.encode()).hexdigest()


def session_id(event: WebhookEvent) -> str:
    store = event.envelope.store_hash
    entity_id = event.entity_id
    if entity_id is None:
        return f"{store}:{event.kind.entity}"
    return f"{store}:{event.kind.entity}:{entity_id}"


def build_message(
    event: WebhookEvent,
    *,
    received_at: datetime,
    correlation_id: str,
    traceparent: str,
) -> OutboundMessage:
    envelope = event.envelope
    body = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "received_at": received_at.isoformat(),
        "store_hash": envelope.store_hash,
        "correlation_id": correlation_id,
        "event": envelope.model_dump(mode="json"),
    }
    properties: dict[str, PropertyValue] = {
        "schema_version": SCHEMA_VERSION,
        "scope": envelope.scope,
        "family": event.kind.family,
        "store_hash": envelope.store_hash,
        "entity": event.kind.entity,
        "correlation_id": correlation_id,
        "traceparent": traceparent,
    }
    if event.kind.entity == "order" and event.entity_id is not None:
        properties["order_id"] = event.entity_id
    return OutboundMessage(
        body=_COMPACT_JSON.encode(body).encode(),
        message_id=message_id(event),
        session_id=session_id(event),
        application_properties=properties,
        content_type="application/json",
        correlation_id=correlation_id,
        subject=envelope.scope,
    )
