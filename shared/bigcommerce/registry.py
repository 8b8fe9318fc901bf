"""`BigCommerceClients`: one client, one connection pool and one rate budget per store.

The process keeps one registry (the composition root owns it) and asks it for a store's client
by hash; every handler calling that store then shares its connections and, above all, its rate
budget, which is what keeps the whole process within the store's quota. Clients are built on
first use; each store's `httpx.AsyncClient` is opened inside the running loop on its first
request (session.py).

The base URL is each store's `api_url` setting; `base_urls` overrides it per store (end-to-end
tests pointing one store at the local simulator), and `transport` replaces the network
altogether (`httpx.MockTransport`, `httpx.ASGITransport`).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Iterable, Mapping

import httpx

from shared.bigcommerce.client import BigCommerceClient
from shared.bigcommerce.rate_budget import Clock, RateBudget, RateStats, Sleep
from shared.bigcommerce.retry import Random
from shared.bigcommerce.session import ClientOptions, StoreSession
from shared.config.settings import Settings, StoreSettings


class UnknownStoreError(KeyError):
    """No store with this hash is configured."""


class BigCommerceClients:
    def __init__(
        self,
        stores: Iterable[StoreSettings],
        *,
        options: ClientOptions | None = None,
        base_urls: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: Random = random.random,
    ) -> None:
        overrides = dict(base_urls or {})
        self._stores = {
            s.store_hash: (
                s.model_copy(update={"api_url": overrides[s.store_hash].rstrip("/")})
                if s.store_hash in overrides
                else s
            )
            for s in stores
        }
        self._options = options or ClientOptions()
        self._transport = transport
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._clients: dict[str, BigCommerceClient] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        options: ClientOptions | None = None,
        base_urls: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> BigCommerceClients:
        return cls(settings.stores, options=options, base_urls=base_urls, transport=transport)

    def __repr__(self) -> str:
        return f"BigCommerceClients(stores={sorted(self._stores)!r})"

    @property
    def store_hashes(self) -> list[str]:
        return sorted(self._stores)

    def get(self, store_hash: str) -> BigCommerceClient:
        """The store's client, created on first use and then always the same one."""
        with self._lock:
            client = self._clients.get(store_hash)
            if client is None:
                store = self._stores.get(store_hash)
                if store is None:
                    raise UnknownStoreError(store_hash)
                budget = RateBudget(self._options.budget, clock=self._clock, sleep=self._sleep)
                session = StoreSession(
                    store,
                    budget=budget,
                    options=self._options,
                    transport=self._transport,
                    rng=self._rng,
                )
                client = self._clients[store_hash] = BigCommerceClient(session)
            return client

    def stats(self) -> dict[str, RateStats]:
        """Each used store's counters (requests, 429s, retries, time waited)."""
        with self._lock:
            return {h: c.session.budget.stats for h, c in self._clients.items()}

    async def aclose(self) -> None:
        with self._lock:
            clients = list(self._clients.values())
        for client in clients:
            await client.session.aclose()
