"""The simulated stores' API accounts: access token, client id and secret, numeric store id.

Read from the same settings the connector reads (`BIGCOMMERCE_STORES` and
`BIGCOMMERCE_<HASH>_ACCESS_TOKEN / _CLIENT_SECRET / _STORE_ID`), plus the simulator-only
`BIGCOMMERCE_<HASH>_CLIENT_ID`. Anything not configured gets a stable made-up value, so the
callbacks always carry a numeric `store_id` and every hook a `client_id`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StoreAccount:
    store_hash: str
    access_token: str  # empty: no token is accepted
    client_id: str
    client_secret: str | None  # None: callbacks are not signed
    store_id: str  # numeric string, as in the callback's `store_id`


def _setting(environ: Mapping[str, str], store_hash: str, name: str) -> str:
    return environ.get(f"BIGCOMMERCE_{store_hash.upper()}_{name}", "").strip()


def _derived(store_hash: str, salt: str) -> str:
    return hashlib.sha1(f"{salt}:{store_hash}".encode(), usedforsecurity=False).hexdigest()


def load_accounts(
    client_secrets: Mapping[str, str],
    *,
    tokens: Mapping[str, str] | None = None,
    store_ids: Mapping[str, str] | None = None,
    client_ids: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, StoreAccount]:
    """One account per store: the stores of `tokens` if given, else of BIGCOMMERCE_STORES."""
    env = os.environ if environ is None else environ
    if tokens is None:
        hashes = [s.strip() for s in env.get("BIGCOMMERCE_STORES", "").split(",") if s.strip()]
        tokens = {h: _setting(env, h, "ACCESS_TOKEN") for h in hashes}
    accounts: dict[str, StoreAccount] = {}
    for store_hash, token in tokens.items():
        secret = client_secrets.get(store_hash) or _setting(env, store_hash, "CLIENT_SECRET")
        store_id = (store_ids or {}).get(store_hash) or _setting(env, store_hash, "STORE_ID")
        if not store_id.isdigit():
            store_id = str(1_000_000 + int(_derived(store_hash, "store-id")[:8], 16) % 9_000_000)
        client_id = (client_ids or {}).get(store_hash) or _setting(env, store_hash, "CLIENT_ID")
        accounts[store_hash] = StoreAccount(
            store_hash=store_hash,
            access_token=token,
            client_id=client_id or _derived(store_hash, "client-id")[:31],
            client_secret=secret or None,
            store_id=store_id,
        )
    return accounts
