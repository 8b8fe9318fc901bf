"""Builds BigCommerce callbacks as BigCommerce sends them: JSON body, custom header, signature."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook


def callback(
    scope: str = "store/order/created",
    data: dict[str, Any] | None = None,
    *,
    store_hash: str = "abc123",
    store_id: str = "1025646",
    hash_: str = "7ee67cd1cf2ca60bc1aa9e5fe957d2de373be4ca",
    created_at: int = 1561479335,
) -> dict[str, Any]:
    return {
        "scope": scope,
        "store_id": store_id,
        "data": {"type": "order", "id": 250} if data is None else data,
        "hash": hash_,
        "created_at": created_at,
        "producer": f"stores/{store_hash}",
    }


def signed_headers(
    body: bytes, client_secret: str, *, msg_id: str = "msg_1", at: datetime | None = None
) -> dict[str, str]:
    """Standard Webhooks headers, keyed as BigCommerce documents: base64 of the client secret."""
    signer = Webhook(base64.b64encode(client_secret.encode()).decode())
    moment = at or datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signer.sign(msg_id, moment, body.decode()),
    }


def encode(payload: object) -> bytes:
    return json.dumps(payload).encode()
