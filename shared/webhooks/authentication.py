"""Authenticates a callback for its store: the shared-secret custom header and the signature.

Both checks run on the raw body, before the payload is validated. The signature follows Standard
Webhooks (webhook-id, webhook-timestamp, webhook-signature), keyed with the API account's client
secret, with the library's ±5 minute timestamp tolerance against replay.

During a rotation a store also has the secret being rotated out (`*_PREVIOUS`): either passes,
and the caller learns which, so the logs show when the last hook moved to the new one.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence

from standardwebhooks import Webhook, WebhookVerificationError

from shared.config import StoreSettings, WebhookCheck


class AuthenticationFailed(Exception):
    """Why a callback was refused; logged, never returned to the caller."""


def authenticate(
    store: StoreSettings, headers: Mapping[str, str], body: bytes, secret_header: str
) -> bool:
    """Raises AuthenticationFailed unless every check the store requires passes; True when a
    check passed only with a secret being rotated out."""
    previous = False
    if WebhookCheck.HEADER in store.webhook_checks:
        presented = headers.get(secret_header.lower(), "")
        if not presented:
            raise AuthenticationFailed(f"missing {secret_header} header")
        matched = _first(
            store.webhook_secrets(),
            lambda s: hmac.compare_digest(presented.encode(), s.encode()),
        )
        if matched is None:
            raise AuthenticationFailed(f"wrong {secret_header} header")
        previous |= matched > 0
    if WebhookCheck.SIGNATURE in store.webhook_checks:
        failure: Exception | None = None

        def verifies(secret: str) -> bool:
            nonlocal failure
            try:
                Webhook(secret.encode()).verify(body, dict(headers), json_parse=False)
            except (WebhookVerificationError, ValueError, UnicodeDecodeError) as exc:
                failure = failure or exc
                return False
            return True

        matched = _first(store.client_secrets(), verifies)
        if matched is None:
            raise AuthenticationFailed(f"signature: {failure}")
        previous |= matched > 0
    return previous


def _first(secrets: Sequence[str], accepts: Callable[[str], bool]) -> int | None:
    """The position of the first secret accepted; every one is tried, so the time taken does not
    tell which matched."""
    results = [accepts(s) for s in secrets]
    return next((i for i, ok in enumerate(results) if ok), None)
