"""The store simulator's HTTP API, for the stores listed in BIGCOMMERCE_STORES.

Requests authenticate with `X-Auth-Token`, as on api.bigcommerce.com, against each store's
BIGCOMMERCE_<HASH>_ACCESS_TOKEN. This first cut answers `GET /stores/{hash}/v2/time` (the
documented liveness call); the Orders, Shipments, Refunds and Webhooks APIs come with their issue.
"""

from __future__ import annotations

import hmac
import os
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def _tokens() -> dict[str, str]:
    stores = [s.strip() for s in os.environ.get("BIGCOMMERCE_STORES", "").split(",") if s.strip()]
    return {s: os.environ.get(f"BIGCOMMERCE_{s.upper()}_ACCESS_TOKEN", "") for s in stores}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse([{"status": status, "message": message}], status_code=status)


def build_app() -> Starlette:
    tokens = _tokens()

    def authorised(request: Request) -> JSONResponse | None:
        store_hash = request.path_params["store_hash"]
        expected = tokens.get(store_hash)
        if expected is None:
            return _error(404, "The requested store was not found.")
        presented = request.headers.get("x-auth-token", "")
        if not expected or not hmac.compare_digest(presented, expected):
            return _error(401, "You are not authorized to access this resource.")
        return None

    async def store_time(request: Request) -> Response:
        return authorised(request) or JSONResponse({"time": int(time.time())})

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok", "stores": sorted(tokens)})

    return Starlette(
        routes=[
            Route("/stores/{store_hash}/v2/time", store_time, methods=["GET"]),
            Route("/_simulator/health", health, methods=["GET"]),
        ]
    )
