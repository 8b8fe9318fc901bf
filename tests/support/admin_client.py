"""A stand-in's `/__sim` admin API over HTTP: the part every stand-in's test helper shares."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

import httpx


class AdminClient:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=30)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.http.aclose()

    async def _ok(self, response: httpx.Response) -> Any:
        """The JSON answer, or an AssertionError naming the call that failed."""
        if response.status_code >= 400:
            raise AssertionError(
                f"admin {response.request.method} {response.request.url.path}: "
                f"{response.status_code} {response.text}"
            )
        return None if response.status_code == 204 else response.json()
