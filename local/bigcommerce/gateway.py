"""The API gateway in front of every `/stores/{store_hash}/...` request, as on api.bigcommerce.com.

In order: unknown store → 404; missing or wrong `X-Auth-Token` → 401; an injected fault → its
status (a forced 429 without rate headers, like platform load); a chaos fault refused up front
(`local/standin/chaos.py`, by User-Agent); an exhausted quota → 429 with `X-Rate-Limit-*` and
`X-Retry-After`; otherwise the injected latency, then the handler, and the rate-limit headers on
the response. Every request is recorded for `/__sim/requests`. `/__sim/...` (the admin API)
answers loopback clients only.

The chaos kinds: `429` (platform load: no rate headers), `500`, `502` and `503` are answered
before the store does anything; `504` is answered after the store did it (the gateway gave up
waiting, the change stands: the caller cannot know); `slow` is answered correctly, but only after
its `delays_ms` (a long step, whose message lock may expire meanwhile).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from local.bigcommerce.errors import body_for
from local.bigcommerce.requestlog import RequestRecord
from local.bigcommerce.simulator import Simulator
from local.bigcommerce.timefmt import iso8601
from local.standin import admin as standin_admin

REFUSED_UP_FRONT: Final = frozenset({"429", "500", "502", "503"})
_MESSAGES = {
    401: "You are not authorized to access this resource.",
    404: "The requested store was not found.",
    429: "Too many requests: the store's API quota is used up until the window resets.",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _json(status: int, body: Any, headers: list[tuple[bytes, bytes]]) -> tuple[Message, Message]:
    payload = json.dumps(body).encode()
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            *headers,
        ],
    }
    return start, {"type": "http.response.body", "body": payload}


class Gateway:
    def __init__(self, app: ASGIApp, simulator: Simulator) -> None:
        self.app = app
        self.sim = simulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if standin_admin.refused(scope):
            await self._answer(send, 403, {"title": standin_admin.NOT_LOOPBACK}, [])
            return
        path: str = scope["path"]
        if not path.startswith("/stores/"):
            await self.app(scope, receive, send)
            return
        await self._api(scope, receive, send, path)

    async def _answer(
        self, send: Send, status: int, body: Any, headers: list[tuple[bytes, bytes]]
    ) -> None:
        start, message = _json(status, body, headers)
        await send(start)
        await send(message)

    async def _api(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        sim = self.sim
        method: str = scope["method"]
        store_hash = path.split("/", 3)[2]
        status_seen = 0

        def record(status: int) -> None:
            sim.requests.add(
                RequestRecord(
                    iso8601(sim.clock.now()),
                    method,
                    path,
                    scope.get("query_string", b"").decode("latin-1"),
                    status,
                    store_hash,
                )
            )

        async def refuse(status: int, headers: list[tuple[bytes, bytes]] | None = None) -> None:
            await self._answer(
                send, status, body_for(path, status, _MESSAGES[status]), headers or []
            )
            record(status)

        store = sim.store(store_hash)
        if store is None:
            await refuse(404)
            return
        token = user_agent = b""
        for name, value in scope["headers"]:
            if name == b"x-auth-token":
                token = value
            elif name == b"user-agent":
                user_agent = value
        expected = store.config.access_token.encode()
        if not expected or not hmac.compare_digest(token, expected):
            await refuse(401)
            return
        fault = sim.faults.take(method, path)
        if fault is not None:
            forced = fault.status
            await self._answer(
                send, forced, body_for(path, forced, _MESSAGES.get(forced, "Error")), []
            )
            record(forced)
            return
        chaos = sim.chaos.draw(user_agent.decode("latin-1"))
        if chaos in REFUSED_UP_FRONT:
            assert chaos is not None
            await refuse(int(chaos))
            return
        decision = sim.limiter.hit(store_hash)
        rate_headers = decision.headers()
        if not decision.allowed:
            retry = str(max(1, math.ceil(decision.reset_ms / 1000))).encode()
            await refuse(429, [*rate_headers, (b"x-retry-after", retry)])
            return
        await sim.latency.wait(sim.rng)

        async def send_with_headers(message: Message) -> None:
            nonlocal status_seen
            if message["type"] == "http.response.start":
                status_seen = message["status"]
                message = {**message, "headers": [*message.get("headers", []), *rate_headers]}
            await send(message)

        try:
            if chaos is None:
                await self.app(scope, receive, send_with_headers)
            else:
                await self._late(scope, receive, send_with_headers, chaos)
        finally:
            record(status_seen or 500)

    async def _late(self, scope: Scope, receive: Receive, send: Send, kind: str) -> None:
        """The handler runs in full; its answer is sent after the kind's delay (`slow`), or
        replaced by a 504 (the store made the change, the caller sees a gateway timeout)."""
        answer: list[Message] = []

        async def keep(message: Message) -> None:
            answer.append(message)

        await self.app(scope, receive, keep)
        await asyncio.sleep(self.sim.chaos.delay_seconds(kind))
        if kind == "504":
            path: str = scope["path"]
            answer = list(_json(504, body_for(path, 504, _MESSAGES[504]), []))
        for message in answer:
            await send(message)
