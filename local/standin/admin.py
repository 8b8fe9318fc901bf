"""The plumbing of the stand-ins' admin APIs under `/__sim` (no auth, loopback clients only):
who may call them, how they read a JSON body, and how they refuse."""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Scope

PREFIX: Final = "/__sim"
# "testclient" is the client host Starlette's TestClient reports.
LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost", "testclient"})
NOT_LOOPBACK: Final = "The admin API is loopback only."


def refused(scope: Scope) -> bool:
    """An HTTP request for the admin API from a client that is not on loopback."""
    if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
        return False
    client = scope.get("client")
    return client is not None and client[0] not in LOOPBACK


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"status": status, "title": message}, status_code=status)


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object; `{}` for an empty body. ValueError for anything else."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body
