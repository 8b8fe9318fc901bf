"""Open-loop load at a fixed rate, and closed-loop load for the maximum rate.

Open loop: request i is due at start + i/rate and its latency counts from that moment until its
whole response has arrived, so a slow server cannot hide its queueing by slowing the generator
(no coordinated omission).

The generator shares the machine's two cores with the server under test, so whatever it spends
per request is taken from the server and shows up in the figures of both endpoints. aiohttp cost
~0.55 ms of CPU per request here (httpx more still), as much as the host spends on a webhook, so
the generator is a small HTTP/1.1 client instead, at ~0.1 ms: requests are serialised before the
clock starts, responses are parsed by httptools (the C parser uvicorn uses), a response completes
its request in a callback rather than a task, and connections are kept alive and reused
most-recent-first, a new one being opened whenever every open one is busy, as aiohttp's pool
does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import httptools

# The host (uvicorn) closes connections idle for 5 s; a connection idle for longer than this is
# dropped by the generator first, so that a request never races the server's close.
_IDLE_SECONDS = 2.0
_MAX_CONNECTIONS = 512


@dataclass(frozen=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass
class Result:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    connections: int = 0

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def record(self, since: float, status: int) -> None:
        self.latencies_ms.append((time.perf_counter() - since) * 1000)
        self.statuses[status] = self.statuses.get(status, 0) + 1


def percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


@dataclass(frozen=True)
class _Wire:
    host: str
    port: int
    data: bytes


def _serialise(request: Request) -> _Wire:
    url = urlsplit(request.url)
    if url.scheme != "http" or url.hostname is None:
        raise ValueError(f"only http:// URLs are supported, not {request.url!r}")
    port = url.port or 80
    target = url.path or "/"
    if url.query:
        target += "?" + url.query
    lines = [f"POST {target} HTTP/1.1", f"host: {url.hostname}:{port}"]
    lines += [f"{name}: {value}" for name, value in request.headers.items()]
    lines.append(f"content-length: {len(request.body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return _Wire(url.hostname, port, head + request.body)


# Called once per request: with the status, or with the exception that lost the connection.
_Done = Callable[[int | None, Exception | None], None]


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._done: _Done | None = None
        self.open = False
        self.keep_alive = True
        self.idle_since = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self.open = True

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"invalid HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError("the server closed the connection"))

    # httptools
    def on_message_complete(self) -> None:
        self.keep_alive = self._parser.should_keep_alive()
        done, self._done = self._done, None
        if done is not None:
            done(self._parser.get_status_code(), None)

    def send(self, data: bytes, done: _Done) -> None:
        assert self._transport is not None
        assert self._done is None
        self._done = done
        self._transport.write(data)

    def close(self) -> None:
        self.open = False
        if self._transport is not None:
            self._transport.close()

    def _fail(self, exc: Exception) -> None:
        self.close()
        done, self._done = self._done, None
        if done is not None:
            done(None, exc)


class _Client:
    """Sends requests and records each response into `result` as it completes."""

    def __init__(self, result: Result) -> None:
        self._result = result
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._open = 0
        self._waiting: list[tuple[_Wire, float, Callable[[], None] | None]] = []
        self._in_flight = 0
        self._drained: asyncio.Future[None] | None = None
        self._connecting: set[asyncio.Task[None]] = set()
        self._error: Exception | None = None

    def post(self, wire: _Wire, since: float, then: Callable[[], None] | None = None) -> None:
        """Sends at once; latency counts from `since`; `then` runs when the request is over."""
        self._in_flight += 1
        self._dispatch(wire, since, then)

    def _dispatch(self, wire: _Wire, since: float, then: Callable[[], None] | None) -> None:
        idle = self._idle.get((wire.host, wire.port))
        now = time.perf_counter()
        while idle:
            conn = idle.pop()
            if conn.open and now - conn.idle_since < _IDLE_SECONDS:
                self._send(conn, wire, since, then)
                return
            conn.close()
            self._open -= 1
        if self._open >= _MAX_CONNECTIONS:
            self._waiting.append((wire, since, then))
            return
        self._open += 1
        task = asyncio.create_task(self._connect(wire, since, then))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect(self, wire: _Wire, since: float, then: Callable[[], None] | None) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(_Connection, wire.host, wire.port)
        except OSError as exc:
            self._open -= 1
            self._over(exc, then)
            return
        self._result.connections += 1
        self._send(conn, wire, since, then)

    def _send(
        self, conn: _Connection, wire: _Wire, since: float, then: Callable[[], None] | None
    ) -> None:
        def done(status: int | None, exc: Exception | None) -> None:
            if status is not None:
                self._result.record(since, status)
            if status is not None and conn.open and conn.keep_alive:
                conn.idle_since = time.perf_counter()
                self._idle.setdefault((wire.host, wire.port), []).append(conn)
            else:
                conn.close()
                self._open -= 1
            self._over(exc, then)

        conn.send(wire.data, done)

    def _over(self, exc: Exception | None, then: Callable[[], None] | None) -> None:
        if exc is not None and self._error is None:
            self._error = exc
        if self._waiting:
            self._dispatch(*self._waiting.pop(0))
        self._in_flight -= 1
        if then is not None:
            then()
        if self._in_flight == 0 and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    async def drain(self) -> None:
        """Waits until every request sent is over; raises the first failure."""
        if self._in_flight:
            self._drained = asyncio.get_running_loop().create_future()
            await self._drained
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()


class Stream:
    """Requests sent the moment they are handed over (an open loop whose schedule is the
    caller's), each timed from then until its whole response has arrived."""

    def __init__(self) -> None:
        self.result = Result()
        self._client = _Client(self.result)

    def send(self, request: Request) -> None:
        self._client.post(_serialise(request), time.perf_counter())

    async def drain(self) -> None:
        """Waits until every request sent is over; raises the first failure."""
        await self._client.drain()

    def close(self) -> None:
        self._client.close()


async def open_loop(requests: Sequence[Request], rate: float) -> Result:
    wires = [_serialise(r) for r in requests]
    result = Result()
    client = _Client(result)
    try:
        start = time.perf_counter()
        for i, wire in enumerate(wires):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            client.post(wire, due)
        await client.drain()
        result.seconds = time.perf_counter() - start
    finally:
        client.close()
    return result


async def closed_loop(requests: Sequence[Request], concurrency: int) -> Result:
    wires = iter([_serialise(r) for r in requests])
    result = Result()
    client = _Client(result)

    def next_request() -> None:
        wire = next(wires, None)
        if wire is not None:
            client.post(wire, time.perf_counter(), next_request)

    try:
        start = time.perf_counter()
        for _ in range(concurrency):
            next_request()
        await client.drain()
        result.seconds = time.perf_counter() - start
    finally:
        client.close()
    return result
