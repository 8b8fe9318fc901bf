"""The simulator as a whole: its stores, clock, event bus and the knobs the admin API turns.

`Simulator.change(store)` is how every writer (API handler, admin API, generator) changes a
store: it holds the store's lock while the change is made, then publishes the change's events,
so subscribers (the webhook deliverer) never see an event before the data behind it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from local.bigcommerce.clock import SimClock
from local.bigcommerce.config import Latency, SimSettings
from local.bigcommerce.events import EventBus, StoreEvent
from local.bigcommerce.faults import FaultInjector
from local.bigcommerce.ratelimit import RateLimiter
from local.bigcommerce.requestlog import RequestRecord
from local.bigcommerce.state import Store
from local.bigcommerce.timefmt import whole_seconds
from local.standin.chaos import RandomFaults
from local.standin.requestlog import RequestLog

# The random faults the gateway knows how to answer (see gateway.py).
CHAOS_KINDS = ("429", "500", "502", "503", "504", "slow")


class Simulator:
    def __init__(self, settings: SimSettings, clock: SimClock, bus: EventBus) -> None:
        self.settings = settings
        self.clock = clock
        self.bus = bus
        self.stores = {s.store_hash: Store(s) for s in settings.stores}
        self.limiter = RateLimiter(clock, settings.quota)
        self.latency: Latency = settings.latency
        self.faults = FaultInjector()
        self.chaos = RandomFaults(CHAOS_KINDS)
        self.requests: RequestLog[RequestRecord] = RequestLog()
        self.rng = random.Random()
        # V2 collections whose spec documents only 200 answer `[]` when empty; 204 mimics the
        # stores that answer No Content instead (the reference leaves this unverified).
        self.empty_v2_list_status = 200
        # How long (simulated ms) creating a refund keeps the order's refund slot busy.
        self.refund_processing_ms = 0.0

    def now(self) -> datetime:
        return whole_seconds(self.clock.now())

    def store(self, store_hash: str) -> Store | None:
        return self.stores.get(store_hash)

    @contextmanager
    def change(self, store: Store) -> Iterator[list[StoreEvent]]:
        events: list[StoreEvent] = []
        with store.lock:
            yield events
        for event in events:
            self.bus.publish(event)

    def reset(self) -> None:
        """Forgets every order and setting change; keeps the stores and their credentials."""
        for store in self.stores.values():
            store.clear()
        self.limiter.set_quota(self.settings.quota)
        self.latency = self.settings.latency
        self.faults.clear()
        self.chaos.reset()
        self.requests.clear()
        self.empty_v2_list_status = 200
        self.refund_processing_ms = 0.0
