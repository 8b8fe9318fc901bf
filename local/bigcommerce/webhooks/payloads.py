"""Callback bodies and headers, as BigCommerce sends them.

Body: the envelope of `events/index.mdx` §Callback structure, serialised once per event so every
delivery of it (to each hook, each retry, each duplicate) carries the same bytes and `hash`.

`hash`: BigCommerce documents it only as a SHA-1 identifying the event; its input is not
specified. Here it is the SHA-1 of the event's metadata and a per-event nonce, so two distinct
events never share a hash even when their `data` is identical, while redeliveries do.

Signature: Standard Webhooks, as `https-webhook-overview.mdx` §Webhook signature documents:
`webhook-signature: v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>` keyed with the API
account's client secret (verifiers construct `Webhook(base64(client_secret))`, whose key is the
secret's bytes). Written out with hmac here, so tests can check it against the library.
`webhook-id` is stable per event and hook (a retry repeats it); `webhook-timestamp` is the real
wall-clock time of the attempt, not the simulated time: receivers check it against their own
clock (the library allows +/-5 minutes), and a sped-up simulated clock would fail that check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from local.bigcommerce.webhooks.scopes import DELIVERY_EXCEPTION

RESERVED_HEADERS: Final = frozenset(
    {
        "content-type",
        "content-length",
        "host",
        "transfer-encoding",
        "connection",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)

RETRYING: Final = 90001
EXHAUSTED: Final = 90002
DOMAIN_BLOCKED: Final = 90003


@dataclass(frozen=True, slots=True)
class Callback:
    """One event as it goes out: the scope it was raised with, its hash and its body."""

    store_hash: str
    scope: str
    event_hash: str
    body: bytes


def event_hash(store_hash: str, scope: str, data: Mapping[str, Any], created_at: int) -> str:
    metadata = {
        "producer": f"stores/{store_hash}",
        "scope": scope,
        "data": data,
        "created_at": created_at,
        "nonce": uuid.uuid4().hex,
    }
    return hashlib.sha1(
        json.dumps(metadata, sort_keys=True).encode(), usedforsecurity=False
    ).hexdigest()


def build_callback(
    store_hash: str, store_id: str, scope: str, data: Mapping[str, Any], created_at: int
) -> Callback:
    digest = event_hash(store_hash, scope, data, created_at)
    envelope = {
        "scope": scope,
        "store_id": store_id,
        "data": dict(data),
        "hash": digest,
        "created_at": created_at,
        "producer": f"stores/{store_hash}",
    }
    body = json.dumps(envelope, separators=(",", ":")).encode()
    return Callback(store_hash, scope, digest, body)


def delivery_exception(
    store_hash: str, store_id: str, hook_id: int, code: int, message: str, created_at: int
) -> Callback:
    """`store/hook/deliveryException` about hook `hook_id` (`events/index.mdx`)."""
    data = {"type": "webhook", "id": hook_id, "error_code": code, "message": message}
    return build_callback(store_hash, store_id, DELIVERY_EXCEPTION, data, created_at)


def message_id(event_hash: str, hook_id: int) -> str:
    return f"msg_{hook_id}_{event_hash}"


def sign(client_secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(client_secret.encode(), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def request_headers(
    custom: Mapping[str, str] | None,
    *,
    msg_id: str,
    body: bytes,
    client_secret: str | None,
    now: datetime,
) -> dict[str, str]:
    """The hook's custom headers, then ours (which win over a custom header of the same name)."""
    headers = {k: v for k, v in (custom or {}).items() if k.lower() not in RESERVED_HEADERS}
    headers["Content-Type"] = "application/json"
    if client_secret:
        timestamp = int(now.timestamp())
        headers["webhook-id"] = msg_id
        headers["webhook-timestamp"] = str(timestamp)
        headers["webhook-signature"] = sign(client_secret, msg_id, timestamp, body)
    return headers
