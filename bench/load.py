"""Open-loop load at a fixed rate, and closed-loop load for the maximum rate.

Open loop: request i is due at start + i/rate and its latency counts from that moment until its
whole response has arrived, so a slow server cannot hide its queueing by slowing the generator
(no coordinated omission).

The generator shares the machine's two cores with the server under test, so whatever it spends
per request is taken from the server and shows up in the figures of both endpoints. aiohttp cost
~0.55 ms of CPU per request here (httpx more still), as much as the host spends on a webhook, so
the generator is a small HTTP/1.1 client instead: requests are serialised before the clock
starts, responses are parsed by httptools (the C parser uvicorn uses), connections are kept
alive and reused most-recent-first, and a new one is opened whenever every open one is busy,
as aiohttp's pool does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
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


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[int] | None = None
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
        self.open = False
        self._fail(ConnectionError("the server closed the connection"))

    # httptools callbacks
    def on_message_complete(self) -> None:
        self.keep_alive = self._parser.should_keep_alive()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(self._parser.get_status_code())

    def send(self, data: bytes, waiter: asyncio.Future[int]) -> None:
        assert self._transport is not None
        self._waiter = waiter
        self._transport.write(data)

    def close(self) -> None:
        self.open = False
        if self._transport is not None:
            self._transport.close()

    def _fail(self, exc: Exception) -> None:
        self.open = False
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self._transport is not None:
            self._transport.close()


class _Client:
    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._count = 0
        self.opened = 0
        self._slots = asyncio.Semaphore(_MAX_CONNECTIONS)

    async def _acquire(self, wire: _Wire) -> _Connection:
        idle = self._idle.setdefault((wire.host, wire.port), [])
        now = time.perf_counter()
        while idle:
            conn = idle.pop()
            if conn.open and now - conn.idle_since < _IDLE_SECONDS:
                return conn
            conn.close()
            self._slots.release()
        await self._slots.acquire()
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(_Connection, wire.host, wire.port)
        except BaseException:
            self._slots.release()
            raise
        self.opened += 1
        return conn

    def _release(self, wire: _Wire, conn: _Connection) -> None:
        if conn.open and conn.keep_alive:
            conn.idle_since = time.perf_counter()
            self._idle[(wire.host, wire.port)].append(conn)
        else:
            conn.close()
            self._slots.release()

    async def post(self, wire: _Wire) -> int:
        conn = await self._acquire(wire)
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        try:
            conn.send(wire.data, waiter)
            status = await waiter
        except BaseException:
            conn.close()
            self._slots.release()
            raise
        self._release(wire, conn)
        return status

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()


async def _post(client: _Client, wire: _Wire, since: float, into: Result) -> None:
    status = await client.post(wire)
    into.latencies_ms.append((time.perf_counter() - since) * 1000)
    into.statuses[status] = into.statuses.get(status, 0) + 1


async def open_loop(requests: Sequence[Request], rate: float) -> Result:
    wires = [_serialise(r) for r in requests]
    result = Result()
    client = _Client()
    try:
        start = time.perf_counter()
        tasks = []
        for i, wire in enumerate(wires):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_post(client, wire, due, result)))
        await asyncio.gather(*tasks)
        result.seconds = time.perf_counter() - start
    finally:
        client.close()
    result.connections = client.opened
    return result


async def closed_loop(requests: Sequence[Request], concurrency: int) -> Result:
    wires = iter([_serialise(r) for r in requests])
    result = Result()
    client = _Client()

    async def worker() -> None:
        for wire in wires:
            await _post(client, wire, time.perf_counter(), result)

    try:
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - start
    finally:
        client.close()
    result.connections = client.opened
    return result
