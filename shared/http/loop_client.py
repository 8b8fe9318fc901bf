"""One `httpx.AsyncClient` per running event loop, created on first use.

A client's pooled connections belong to the event loop that opened them, so the client is made
lazily inside the running loop (never at import, never per request) and reused by every call on
that loop; a call on another loop (a CLI's second `asyncio.run`, a test) gets a fresh client
there. The client left behind on the old loop is dropped, not closed: it cannot be closed from
another loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx


class LoopClient:
    def __init__(self, make: Callable[[], httpx.AsyncClient]) -> None:
        self._make = make
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def current(self) -> httpx.AsyncClient | None:
        """The client made last; None before the first call and after `aclose`."""
        return self._client

    def get(self) -> httpx.AsyncClient:
        """The running loop's client. Call it from inside a coroutine."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = self._make()
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        client, self._client, self._loop = self._client, None, None
        if client is not None:
            await client.aclose()
