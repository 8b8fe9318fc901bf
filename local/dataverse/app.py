"""The Dataverse Web API stand-in's HTTP API under /api/data/v9.2/.

Requests carry `Authorization: Bearer <token>`; the stand-in accepts the token in
LOCAL_DATAVERSE_TOKEN. This first cut answers `WhoAmI` with the documented response shape and the
`x-ms-dop-hint` header; tables, upserts and $batch come with their issue.
"""

from __future__ import annotations

import hmac
import os
import uuid

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API = "/api/data/v9.2"
_IDS = {
    name: str(uuid.uuid5(uuid.NAMESPACE_URL, f"local-dataverse/{name}"))
    for name in ("BusinessUnitId", "UserId", "OrganizationId")
}


def _odata_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def build_app() -> Starlette:
    token = os.environ.get("LOCAL_DATAVERSE_TOKEN", "")

    def authorised(request: Request) -> JSONResponse | None:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token or not hmac.compare_digest(presented, token):
            return _odata_error(401, "0x80040220", "The user is not authenticated.")
        return None

    async def who_am_i(request: Request) -> Response:
        denied = authorised(request)
        if denied:
            return denied
        body = {
            "@odata.context": f"{request.base_url}api/data/v9.2/$metadata"
            "#Microsoft.Dynamics.CRM.WhoAmIResponse",
            **_IDS,
        }
        return JSONResponse(body, headers={"OData-Version": "4.0", "x-ms-dop-hint": "4"})

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route(f"{API}/WhoAmI", who_am_i, methods=["GET"]),
            Route("/_standin/health", health, methods=["GET"]),
        ]
    )
