"""The simulated store's webhooks: the hooks API and the delivery worker.

`build_webhooks` is the seam the simulator app mounts. This first version serves no hooks and
delivers nothing; the webhooks part of the simulator replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.routing import BaseRoute

from local.bigcommerce.clock import SimClock
from local.bigcommerce.events import EventBus


@dataclass
class WebhookService:
    routes: list[BaseRoute] = field(default_factory=list)  # under /stores/{store_hash}/v3/hooks
    admin_routes: list[BaseRoute] = field(default_factory=list)  # under /__sim/webhooks

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def build_webhooks(
    bus: EventBus, clock: SimClock, client_secrets: Mapping[str, str]
) -> WebhookService:
    """`client_secrets` maps each store hash to the API account's client secret (for signing)."""
    return WebhookService()
