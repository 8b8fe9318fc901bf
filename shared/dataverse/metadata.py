"""The small HTTP port provisioning talks through, and its adapter over a plain `httpx.AsyncClient`.

Provisioning reads and writes Dataverse *metadata* (table, column, relationship and key
definitions), which needs only two verbs on paths relative to the Web API root
`<DATAVERSE_URL>/api/data/v9.2/`:

- `GET EntityDefinitions(LogicalName='contact')/Keys?$select=...` and the like;
- `POST EntityDefinitions`, `POST EntityDefinitions(LogicalName='…')/Attributes`,
  `POST RelationshipDefinitions`, `POST EntityDefinitions(LogicalName='…')/Keys`,
  `POST ReactivateEntityKey`.

`MetadataApi` is that port. The port is deliberately dumb: it returns the status, the parsed JSON
body and the headers, and the caller decides what a status means (a 404 on a table definition is
"the table is missing", not an error). `HttpMetadataApi` implements it over httpx with the
baseline headers every Web API request carries ([COMPOSE]: `Accept`, `OData-MaxVersion`,
`OData-Version`, `If-None-Match: null`), a bearer token from an async token provider, and
`Consistency: Strong` on reads so a definition created seconds ago is seen. When a solution is
named, writes carry `MSCRM.SolutionUniqueName` so the new components land in it.

When the shared Dataverse client lands, an adapter of a few lines over its request method
satisfies the same port; provisioning itself does not change.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Protocol

import httpx

WEB_API_PATH: Final = "/api/data/v9.2/"
DEFAULT_TIMEOUT_SECONDS: Final = 120.0

TokenProvider = Callable[[], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class MetadataResponse:
    """One Web API answer: status, body (parsed JSON, raw text if not JSON, None if empty)."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class MetadataApi(Protocol):
    """GET and POST on paths relative to the Web API root (`EntityDefinitions(...)`, …)."""

    async def get(self, path: str) -> MetadataResponse: ...

    async def post(self, path: str, body: Mapping[str, Any]) -> MetadataResponse: ...


class MetadataApiError(Exception):
    """A metadata request Dataverse refused; the message is one line with its error text."""

    def __init__(self, method: str, path: str, response: MetadataResponse) -> None:
        self.method = method
        self.path = path
        self.status = response.status
        self.code, self.detail = error_parts(response.body)
        code = f" {self.code}" if self.code else ""
        super().__init__(f"{method} {path.split('?')[0]}: HTTP {self.status}{code}: {self.detail}")


def error_parts(body: object) -> tuple[str, str]:
    """The `error.code` and `error.message` of an OData error body ([COMPOSE])."""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            return str(error.get("code") or ""), " ".join(str(error.get("message", "")).split())
    text = " ".join(str(body or "").split())
    return "", text[:300] or "no error message"


class HttpMetadataApi:
    """`MetadataApi` over an `httpx.AsyncClient` whose base URL is the Web API root."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        token: TokenProvider,
        *,
        solution: str | None = None,
        owns_client: bool = False,
    ) -> None:
        self._client = client
        self._token = token
        self._solution = solution
        self._owns_client = owns_client

    @classmethod
    def for_environment(
        cls,
        dataverse_url: str,
        token: TokenProvider,
        *,
        solution: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> HttpMetadataApi:
        """An adapter with its own client for `dataverse_url` (e.g. https://org.crm.dynamics.com)."""
        client = httpx.AsyncClient(
            base_url=web_api_root(dataverse_url), timeout=timeout, transport=transport
        )
        return cls(client, token, solution=solution, owns_client=True)

    async def get(self, path: str) -> MetadataResponse:
        headers = {**await self._headers(), "Consistency": "Strong"}
        return _response(await self._client.get(path, headers=headers))

    async def post(self, path: str, body: Mapping[str, Any]) -> MetadataResponse:
        headers = {**await self._headers(), "Content-Type": "application/json; charset=utf-8"}
        if self._solution:
            headers["MSCRM.SolutionUniqueName"] = self._solution
        content = json.dumps(body, separators=(",", ":")).encode()
        return _response(await self._client.post(path, content=content, headers=headers))

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> HttpMetadataApi:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _headers(self) -> dict[str, str]:
        return {
            "Accept": "application/json",
            "OData-MaxVersion": "4.0",
            "OData-Version": "4.0",
            "If-None-Match": "null",
            "Authorization": f"Bearer {await self._token()}",
        }


def web_api_root(dataverse_url: str) -> str:
    """`https://org.crm.dynamics.com` -> `https://org.crm.dynamics.com/api/data/v9.2/`."""
    return dataverse_url.rstrip("/") + WEB_API_PATH


def _response(response: httpx.Response) -> MetadataResponse:
    body: Any = None
    if response.content:
        try:
            body = response.json()
        except ValueError:
            body = response.text
    return MetadataResponse(response.status_code, body, dict(response.headers))
