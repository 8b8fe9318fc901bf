"""The seam between the simulated store and its webhooks: every change publishes an event.

The store (orders, shipments, refunds, ...) publishes a `StoreEvent` for each change, whoever
made it: the control panel, the admin API, or the API client (our own writes come back as
echoes, as on a real store). The webhook deliverer subscribes and turns events into callbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class StoreEvent:
    store_hash: str
    scope: str  # e.g. "store/order/statusUpdated", "store/shipment/created"
    data: dict[str, Any]  # the callback's `data`, shaped as BigCommerce documents it
    channel_id: int | None = None  # for store/channel/{channel_id}/... scopes


Subscriber = Callable[[StoreEvent], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def publish(self, event: StoreEvent) -> None:
        for subscriber in self._subscribers:
            subscriber(event)
