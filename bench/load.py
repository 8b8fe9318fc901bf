"""Open-loop load at a fixed rate, and closed-loop load for the maximum rate.

Open loop: request i is due at start + i/rate and its latency counts from that moment, so a slow
server cannot hide its queueing by slowing the generator (no coordinated omission).
aiohttp rather than httpx: on two cores httpx's per-request cost saturated the generator before
the server under test, which would have measured the client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp


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

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0


def percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def _post(
    session: aiohttp.ClientSession, request: Request, since: float, into: Result
) -> None:
    async with session.post(request.url, data=request.body, headers=request.headers) as response:
        await response.read()
        into.latencies_ms.append((time.perf_counter() - since) * 1000)
        into.statuses[response.status] = into.statuses.get(response.status, 0) + 1


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=512), timeout=aiohttp.ClientTimeout(total=30)
    )


async def open_loop(requests: Sequence[Request], rate: float) -> Result:
    result = Result()
    async with _session() as session:
        start = time.perf_counter()
        tasks = []
        for i, request in enumerate(requests):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_post(session, request, due, result)))
        await asyncio.gather(*tasks)
        result.seconds = time.perf_counter() - start
    return result


async def closed_loop(requests: Sequence[Request], concurrency: int) -> Result:
    result = Result()
    pending = iter(requests)
    async with _session() as session:

        async def worker() -> None:
            for request in pending:
                await _post(session, request, time.perf_counter(), result)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - start
    return result
