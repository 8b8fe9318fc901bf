"""The BigCommerce store simulator: the REST API of the stores in BIGCOMMERCE_STORES.

Serves Orders V2 (`/stores/{hash}/v2/...`: orders, products, addresses, coupons, taxes,
shipments, statuses, time) and Orders V3 (`/stores/{hash}/v3/...`: transactions, refund quotes,
refunds, metafields) as the official OpenAPI files describe them, behind the gateway
(`X-Auth-Token`, per-store quota with `X-Rate-Limit-*` headers, latency, fault injection), plus
the webhooks package's `/v3/hooks` routes and delivery worker, the admin API under `/__sim`, and
`/_simulator/health`. Every change publishes a `StoreEvent` on the simulator's `EventBus`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Mapping

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.bigcommerce import admin, routes_v2, routes_v3
from local.bigcommerce.clock import SimClock
from local.bigcommerce.config import SimSettings
from local.bigcommerce.errors import ApiError, body_for, render
from local.bigcommerce.events import EventBus
from local.bigcommerce.gateway import Gateway
from local.bigcommerce.simulator import Simulator
from local.bigcommerce.webhooks import build_webhooks

TICK_SECONDS = 0.2


def build_app(
    settings: SimSettings | None = None,
    *,
    clock: SimClock | None = None,
    bus: EventBus | None = None,
    environ: Mapping[str, str] | None = None,
) -> Starlette:
    settings = settings or SimSettings.from_env(os.environ if environ is None else environ)
    sim = Simulator(settings, clock or SimClock(), bus or EventBus())
    secrets = {s.store_hash: s.client_secret for s in settings.stores}
    tokens = {s.store_hash: s.access_token for s in settings.stores}
    webhooks = build_webhooks(sim.bus, sim.clock, secrets, tokens=tokens)

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok", "stores": sorted(sim.stores)})

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return render(exc, request.url.path)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404 and request.url.path.startswith("/stores/"):
            message = "The requested resource was not found."
        else:
            message = str(exc.detail)
        return JSONResponse(
            body_for(request.url.path, exc.status_code, message),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        ticker = asyncio.create_task(_tick_forever(sim))
        await webhooks.start()
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await webhooks.stop()

    app = Starlette(
        routes=[
            *routes_v2.routes,
            *routes_v3.routes,
            *webhooks.routes,
            *admin.routes,
            *webhooks.admin_routes,
            Route("/_simulator/health", health, methods=["GET"]),
        ],
        middleware=[Middleware(Gateway, simulator=sim)],
        exception_handlers={ApiError: api_error, HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.simulator = sim
    return app


async def _tick_forever(sim: Simulator) -> None:
    """Completes due incomplete orders as simulated time passes."""
    while True:
        await asyncio.sleep(TICK_SECONDS)
        admin.tick(sim)
