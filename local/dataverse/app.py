"""The Dataverse Web API stand-in: `http://127.0.0.1:PORT/api/data/v9.2/`.

Serves the tables of shared/dataverse/schema.py (plus transactioncurrency) from SQLite with
the Web API's documented behaviour: create/update/upsert by primary or alternate key with the
documented status matrix, deep insert, `@odata.bind`, `$batch` with change sets, OData queries
(with the `In` / `NotIn` query functions) with paging and change tracking, table definitions
(EntityDefinitions, Attributes, Keys, RelationshipDefinitions), the `FulfillSalesOrder` and
`CancelSalesOrder` actions, service protection limits, `WhoAmI`. Requests carry `Authorization:
Bearer <LOCAL_DATAVERSE_TOKEN>`. Also `/_standin/health` and the admin API under `/__sim`
(see admin.py); settings in config.py. Run alone with `python -m local.dataverse --port PORT`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Mapping
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from local.dataverse import admin, service_endpoint
from local.dataverse.config import StandinSettings
from local.dataverse.keys import API_ROOT
from local.dataverse.messages import ApiRequest
from local.dataverse.standin import StandIn
from local.standin import admin as standin_admin

METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]


class LoopbackOnly:
    """`/__sim/...` answers loopback clients only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if standin_admin.refused(scope):
            await standin_admin.error(403, standin_admin.NOT_LOOPBACK)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def build_app(
    settings: StandinSettings | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], float] | None = None,
) -> Starlette:
    settings = settings or StandinSettings.from_env(os.environ if environ is None else environ)
    standin = StandIn(settings, clock) if clock is not None else StandIn(settings)
    service_endpoint.attach_from_env(standin.store, os.environ if environ is None else environ)

    async def api(request: Request) -> Response:
        path = request.url.path
        operation = ApiRequest(
            method=request.method,
            path=path[len(API_ROOT) :] if path.startswith(API_ROOT) else "",
            query=parse_qsl(request.url.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.body(),
            base_url=f"{request.url.scheme}://{request.url.netloc}{API_ROOT}",
        )
        answer = await standin.handle(operation, request.headers.get("authorization"))
        response = Response(answer.body, status_code=answer.status)
        for name, value in answer.headers:
            response.headers.append(name, value)
        return response

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            standin.store.close()  # checkpoints a WAL database file

    app = Starlette(
        routes=[
            Route(API_ROOT.rstrip("/"), api, methods=METHODS),
            Route(API_ROOT + "{path:path}", api, methods=METHODS),
            Route("/_standin/health", health, methods=["GET"]),
            *admin.routes,
        ],
        middleware=[Middleware(LoopbackOnly)],
        lifespan=lifespan,
    )
    app.state.standin = standin
    return app
