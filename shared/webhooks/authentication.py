"""Authenticates a callback for its store: the shared-secret custom header and the signature.

Both checks run on the raw body, before the payload is validated. The signature follows Standard
Webhooks (webhook-id, webhook-timestamp, webhook-signature), keyed with the API account's client
secret, with the library's ±5 minute timestamp tolerance against replay.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from standardwebhooks import Webhook, WebhookVerificationError

from shared.config import StoreSettings, WebhookCheck


class AuthenticationFailed(Exception):
    """Why a callback was refused; logged, never returned to the caller."""


def authenticate(
    store: StoreSettings, headers: Mapping[str, str], body: bytes, secret_header: str
) -> None:
    """Raises AuthenticationFailed unless every check the store requires passes."""
    if WebhookCheck.HEADER in store.webhook_checks:
        assert store.webhook_secret is not None
        presented = headers.get(secret_header.lower(), "")
        expected = store.webhook_secret.get_secret_value()
        if not presented:
            raise AuthenticationFailed(f"missing {secret_header} header")
        if not hmac.compare_digest(presented.encode(), expected.encode()):
            raise AuthenticationFailed(f"wrong {secret_header} header")
    if WebhookCheck.SIGNATURE in store.webhook_checks:
        assert store.client_secret is not None
        verifier = Webhook(store.client_secret.get_secret_value().encode())
        try:
            verifier.verify(body, dict(headers), json_parse=False)
        except (WebhookVerificationError, ValueError, UnicodeDecodeError) as exc:
            raise AuthenticationFailed(f"signature: {exc}") from None
