"""The simulated store's webhooks: the V3 hooks API and the delivery worker.

`build_webhooks` is the seam the simulator app mounts:

* `routes`: the hooks API, full paths under /stores/{store_hash}/v3/hooks (`hooks_api.py`);
* `admin_routes`: the simulator's controls, full paths under /__sim/webhooks (`admin_api.py`);
* `start()` / `stop()`: run the delivery worker (`delivery.py`) from the app's lifespan.

The service subscribes to the bus at once; events published before `start()` are delivered
once it runs. Callbacks are signed with the store's client secret (Standard Webhooks) when one is
configured, and carry each hook's custom headers. Destinations must be https on port 443, except
that this local simulator also accepts http and any port on 127.0.0.1/localhost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.routing import BaseRoute

from local.bigcommerce.clock import SimClock
from local.bigcommerce.events import EventBus
from local.bigcommerce.webhooks.accounts import StoreAccount, load_accounts
from local.bigcommerce.webhooks.admin_api import AdminApi
from local.bigcommerce.webhooks.delivery import RETRY_SCHEDULE, Attempt, Deliverer
from local.bigcommerce.webhooks.hooks_api import HooksApi
from local.bigcommerce.webhooks.registry import Hook, HookRegistry
from local.bigcommerce.webhooks.switches import DeliveryOptions, NetworkSwitches

__all__ = [
    "RETRY_SCHEDULE",
    "Attempt",
    "DeliveryOptions",
    "Hook",
    "NetworkSwitches",
    "StoreAccount",
    "WebhookService",
    "build_webhooks",
]


@dataclass
class WebhookService:
    routes: list[BaseRoute] = field(default_factory=list)  # under /stores/{store_hash}/v3/hooks
    admin_routes: list[BaseRoute] = field(default_factory=list)  # under /__sim/webhooks
    registry: HookRegistry = field(default_factory=HookRegistry)
    deliverer: Deliverer | None = None

    async def start(self) -> None:
        if self.deliverer is not None:
            await self.deliverer.start()

    async def stop(self) -> None:
        if self.deliverer is not None:
            await self.deliverer.stop()


def build_webhooks(
    bus: EventBus,
    clock: SimClock,
    client_secrets: Mapping[str, str],
    *,
    tokens: Mapping[str, str] | None = None,
    store_ids: Mapping[str, str] | None = None,
    client_ids: Mapping[str, str] | None = None,
    options: DeliveryOptions | None = None,
) -> WebhookService:
    """`client_secrets` maps each store hash to the API account's client secret (for signing).

    The other keywords default to the environment, as the connector reads it: `tokens` to the
    BIGCOMMERCE_<HASH>_ACCESS_TOKEN of each store in BIGCOMMERCE_STORES, `store_ids` to
    BIGCOMMERCE_<HASH>_STORE_ID, `client_ids` to BIGCOMMERCE_<HASH>_CLIENT_ID (made up when
    unset); `options` to a 10 s timeout with every network switch off.
    """
    accounts = load_accounts(
        client_secrets, tokens=tokens, store_ids=store_ids, client_ids=client_ids
    )
    registry = HookRegistry()
    deliverer = Deliverer(registry, clock, accounts, options or DeliveryOptions())
    bus.subscribe(deliverer.on_event)
    return WebhookService(
        routes=HooksApi(registry, deliverer, clock, accounts).routes,
        admin_routes=AdminApi(registry, deliverer).routes,
        registry=registry,
        deliverer=deliverer,
    )
