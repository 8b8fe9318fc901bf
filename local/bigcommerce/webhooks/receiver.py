"""A recording webhook receiver on a free 127.0.0.1 port, for tests and local experiments.

    async with RecordingReceiver(status=500) as receiver:
        ... create a hook with destination=receiver.url ...
        calls = await receiver.wait_for(3)

Each callback is kept as received (raw body, lower-cased headers). The answer is `status`, or
whatever `respond(call)` returns (an int, or an awaitable of one), so a test can fail the first n
calls, or hand the request to the real ingress.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass(frozen=True, slots=True)
class ReceivedCall:
    index: int  # 0-based, in arrival order
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


Responder = Callable[[ReceivedCall], int | Awaitable[int]]


class RecordingReceiver:
    def __init__(self, *, status: int = 200, respond: Responder | None = None) -> None:
        self.calls: list[ReceivedCall] = []
        self._status = status
        self._respond = respond
        self._arrived = asyncio.Condition()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks"

    async def _endpoint(self, request: Request) -> Response:
        call = ReceivedCall(
            index=len(self.calls),
            path=request.url.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.body(),
        )
        self.calls.append(call)
        async with self._arrived:
            self._arrived.notify_all()
        status = self._status
        if self._respond is not None:
            answer = self._respond(call)
            status = await answer if inspect.isawaitable(answer) else answer
        return Response(status_code=status)

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[ReceivedCall]:
        """The first `count` calls, once they have arrived (TimeoutError after `timeout` s)."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.calls) >= count)
        return self.calls[:count]

    async def __aenter__(self) -> RecordingReceiver:
        app = Starlette(routes=[Route("/{path:path}", self._endpoint, methods=["POST"])])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]))
        async with asyncio.timeout(10):
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                await asyncio.sleep(0.01)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
