"""One simulated store's data: its orders, refunds and metafields, and the ids it hands out.

All access goes through `Store.lock` (re-entrant); the API runs on one asyncio loop and changes a
store only in synchronous sections, so no request observes another's half-made change, and the
admin API or a test thread may change the store too.
"""

from __future__ import annotations

import threading

from local.bigcommerce.config import StoreConfig
from local.bigcommerce.model import Metafield, Order, Refund

# Where each id sequence starts; order ids start at 100, as on a new store.
_FIRST_IDS = {"order": 100}


class Store:
    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.orders: dict[int, Order] = {}
        self.refunds: dict[int, Refund] = {}
        self.metafields: dict[int, Metafield] = {}
        self.refunds_in_flight: set[int] = set()
        self._next: dict[str, int] = {}

    @property
    def hash(self) -> str:
        return self.config.store_hash

    @property
    def client_id(self) -> str:
        """The API account's client id, as `owner_client_id` of its metafields."""
        return f"simulator-{self.hash}"

    def next_id(self, kind: str) -> int:
        with self.lock:
            value = self._next.get(kind, _FIRST_IDS.get(kind, 1))
            self._next[kind] = value + 1
            return value

    def order(self, order_id: int) -> Order | None:
        return self.orders.get(order_id)

    def clear(self) -> None:
        with self.lock:
            self.orders.clear()
            self.refunds.clear()
            self.metafields.clear()
            self.refunds_in_flight.clear()
            self._next.clear()
