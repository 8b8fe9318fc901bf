"""Test harness: the stand-in in-process behind httpx, and a reader for `$batch` responses.

async with dataverse_standin(provisioned=True) as dv:
    await dv.api.post("contacts", json={...})      # authenticated, base .../api/data/v9.2/
    await dv.admin.get("/__sim/tables")            # the admin API
    parts = batch_parts(response)                  # a $batch answer, part by part
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx
from starlette.applications import Starlette

from local.dataverse.app import build_app
from local.dataverse.batch import boundary_of, split_parts
from local.dataverse.standin import StandIn

TOKEN: Final = "standin-test-token"  # noqa: S105 - made up, for the in-process stand-in
OTHER_TOKEN: Final = "standin-other-token"  # noqa: S105 - a second identity
HOST: Final = "http://dataverse.test"
API: Final = HOST + "/api/data/v9.2/"


@dataclass
class Harness:
    app: Starlette
    api: httpx.AsyncClient
    admin: httpx.AsyncClient
    standin: StandIn

    def client(self, token: str) -> httpx.AsyncClient:
        """Another API client with its own bearer token (identity); close it after use."""
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url=API,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )

    async def count(self, table: str) -> int:
        listing = (await self.admin.get("/__sim/tables")).json()
        return int(next(t["rows"] for t in listing if t["table"] == table))


@contextlib.asynccontextmanager
async def dataverse_standin(
    *,
    provisioned: bool = False,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], float] | None = None,
) -> AsyncIterator[Harness]:
    """The stand-in in-process; `clock` (epoch seconds) drives timestamps and key index jobs."""
    environ = {
        "LOCAL_DATAVERSE_TOKEN": TOKEN,
        "LOCAL_DATAVERSE_EXTRA_TOKENS": OTHER_TOKEN,
        "LOCAL_DATAVERSE_PROVISIONED": "1" if provisioned else "0",
        **(env or {}),
    }
    app = build_app(environ=environ, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(
            transport=transport,
            base_url=API,
            headers={
                "Authorization": f"Bearer {TOKEN}",
                "Accept": "application/json",
                "OData-MaxVersion": "4.0",
                "OData-Version": "4.0",
                "If-None-Match": "null",
            },
        ) as api,
        httpx.AsyncClient(transport=transport, base_url=HOST) as admin,
    ):
        standin: StandIn = app.state.standin
        try:
            yield Harness(app, api, admin, standin)
        finally:
            standin.store.close()


@dataclass(frozen=True)
class BatchPart:
    """One response in a `$batch` answer; `change_set` numbers the change set it belongs to."""

    status: int
    headers: dict[str, str]
    body: str
    content_id: str | None
    change_set: int | None

    def json(self) -> Any:
        return json.loads(self.body)


def _head(raw: bytes) -> tuple[dict[str, str], bytes]:
    match = re.search(rb"\r?\n\r?\n", raw)
    block, rest = (raw[: match.start()], raw[match.end() :]) if match else (raw, b"")
    headers = {}
    for line in re.split(rb"\r?\n", block):
        name, _, value = line.decode().partition(":")
        if name.strip():
            headers[name.strip().lower()] = value.strip()
    return headers, rest


def _response(raw: bytes, content_id: str | None, change_set: int | None) -> BatchPart:
    status_line, _, rest = raw.lstrip().partition(b"\n")
    status = int(status_line.split()[1])
    headers, body = _head(rest) if not rest.startswith((b"\r\n", b"\n")) else ({}, rest)
    return BatchPart(status, headers, body.decode().strip(), content_id, change_set)


def batch_parts(response: httpx.Response) -> list[BatchPart]:
    """The parts of a `$batch` response, change sets flattened, in order."""
    parts: list[BatchPart] = []
    change_sets = 0
    for raw in split_parts(response.content, boundary_of(response.headers["content-type"])):
        headers, content = _head(raw)
        if headers.get("content-type", "").startswith("multipart/mixed"):
            change_sets += 1
            for inner in split_parts(content, boundary_of(headers["content-type"])):
                inner_headers, inner_content = _head(inner)
                parts.append(_response(inner_content, inner_headers.get("content-id"), change_sets))
        else:
            parts.append(_response(content, headers.get("content-id"), None))
    return parts
