"""The per-store rate budget, in simulated time against a simulated BigCommerce quota.

`VirtualTimeLoop` is an asyncio loop whose clock jumps to the next timer instead of waiting
for it, so a burst that takes minutes of BigCommerce windows runs in a blink, with every
`asyncio.sleep` (the client's and the simulated store's latency) keeping its order and span.
`SimulatedStore` counts requests in fixed 30 s windows shared with "other apps", as the rate
limit docs describe, and answers with the four X-Rate-Limit headers.
"""

from __future__ import annotations

import asyncio
import selectors
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from pydantic import SecretStr

from shared.bigcommerce import (
    BigCommerceClients,
    BudgetPolicy,
    ClientOptions,
    RateBudget,
    RateLimitHeaders,
    RetryPolicy,
)
from shared.config.settings import StoreSettings

T = TypeVar("T")
STORE = StoreSettings(
    store_hash="abc123",
    access_token=SecretStr("token-for-tests"),
    webhook_secret=SecretStr("secret"),
)


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            raise RuntimeError("nothing scheduled: the test would wait forever")
        assert self.loop is not None
        self.loop.now += timeout
        return super().select(0)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        selector = _JumpingSelector()
        super().__init__(selector=selector)
        selector.loop = self
        self.now = 0.0

    def time(self) -> float:
        return self.now


def run_in_virtual_time(main: Callable[[VirtualTimeLoop], Awaitable[T]]) -> T:
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main(loop))
    finally:
        loop.close()


class SimulatedStore:
    """BigCommerce's quota: fixed windows from t=0, one count per request from any app."""

    def __init__(
        self,
        loop: VirtualTimeLoop,
        *,
        quota: int = 150,
        window: float = 30.0,
        other_apps_per_window: int = 0,
        latency: float = 0.2,
        headers: bool = True,
    ) -> None:
        self.loop = loop
        self.quota = quota
        self.window = window
        self.other_apps_per_window = other_apps_per_window
        self.latency = latency
        self.headers = headers
        self.used: Counter[int] = Counter()  # every app
        self.ours: Counter[int] = Counter()  # this client's accepted requests
        self.refused = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(self.latency / 2)
        now = self.loop.time()
        window = int(now // self.window)
        if window not in self.used:
            self.used[window] = self.other_apps_per_window
        reset_ms = int(((window + 1) * self.window - now) * 1000)
        if self.used[window] >= self.quota:
            self.refused += 1
            response = self._response(429, 0, reset_ms)
        else:
            self.used[window] += 1
            self.ours[window] += 1
            response = self._response(200, self.quota - self.used[window], reset_ms)
        await asyncio.sleep(self.latency / 2)
        return response

    def _response(self, status: int, left: int, reset_ms: int) -> httpx.Response:
        headers = {}
        if self.headers:
            headers = {
                "X-Rate-Limit-Requests-Left": str(left),
                "X-Rate-Limit-Time-Reset-Ms": str(reset_ms),
                "X-Rate-Limit-Time-Window-Ms": str(int(self.window * 1000)),
                "X-Rate-Limit-Requests-Quota": str(self.quota),
            }
        body: Any = {"id": 1, "scope": "store/order/created", "destination": "https://x.test/h"}
        return httpx.Response(status, json={"data": body, "meta": {}}, headers=headers)


def clients_for(
    store: SimulatedStore, loop: VirtualTimeLoop, policy: BudgetPolicy | None = None
) -> BigCommerceClients:
    return BigCommerceClients(
        [STORE],
        options=ClientOptions(budget=policy or BudgetPolicy(), retry=RetryPolicy(max_attempts=8)),
        transport=httpx.MockTransport(store),
        clock=loop.time,
        sleep=asyncio.sleep,
        rng=lambda: 0.5,
    )


async def burst(clients: BigCommerceClients, calls: int) -> None:
    client = clients.get("abc123")
    hooks = await asyncio.gather(*(client.get_hook(i) for i in range(1, calls + 1)))
    assert len(hooks) == calls
    await clients.aclose()


def test_a_burst_of_1000_calls_uses_at_most_half_of_each_window() -> None:
    def scenario(loop: VirtualTimeLoop) -> Awaitable[SimulatedStore]:
        async def go() -> SimulatedStore:
            store = SimulatedStore(loop)
            clients = clients_for(store, loop)
            await burst(clients, 1000)
            stats = clients.stats()["abc123"]
            assert stats.requests == 1000
            assert stats.rate_limited == 0
            assert stats.throttled > 900  # almost every caller waited for its turn
            return store

        return go()

    store = run_in_virtual_time(scenario)
    assert sum(store.ours.values()) == 1000
    assert store.refused == 0
    assert max(store.ours.values()) <= 75  # half of 150 in every 30 s window
    # ...and the share is used, not wasted: 1000 calls need ceil(1000 / 75) = 14 windows.
    assert len(store.ours) <= 15


def test_other_apps_use_shows_in_requests_left_and_the_quota_is_never_exceeded() -> None:
    def scenario(loop: VirtualTimeLoop) -> Awaitable[SimulatedStore]:
        async def go() -> SimulatedStore:
            store = SimulatedStore(loop, other_apps_per_window=110)
            clients = clients_for(store, loop)
            await burst(clients, 300)
            assert clients.stats()["abc123"].rate_limited == 0
            return store

        return go()

    store = run_in_virtual_time(scenario)
    assert store.refused == 0
    assert all(store.used[w] <= 150 for w in store.used)
    assert max(store.ours.values()) <= 40  # what the other apps left of the window


def test_before_any_rate_header_the_store_is_assumed_standard() -> None:
    def scenario(loop: VirtualTimeLoop) -> Awaitable[SimulatedStore]:
        async def go() -> SimulatedStore:
            store = SimulatedStore(loop, headers=False)
            await burst(clients_for(store, loop), 200)
            return store

        return go()

    store = run_in_virtual_time(scenario)
    assert max(store.ours.values()) <= 75


def test_a_pro_plan_quota_from_the_headers_raises_the_share() -> None:
    def scenario(loop: VirtualTimeLoop) -> Awaitable[SimulatedStore]:
        async def go() -> SimulatedStore:
            store = SimulatedStore(loop, quota=450)
            await burst(clients_for(store, loop), 600)
            return store

        return go()

    store = run_in_virtual_time(scenario)
    assert store.refused == 0
    assert max(store.ours.values()) <= 225
    assert max(store.ours.values()) > 75
    # The first window already uses the store's real quota, not the Standard plan assumed
    # before the first reply.
    assert store.ours[min(store.ours)] > 150


def test_the_share_is_configurable() -> None:
    def scenario(loop: VirtualTimeLoop) -> Awaitable[SimulatedStore]:
        async def go() -> SimulatedStore:
            store = SimulatedStore(loop)
            await burst(clients_for(store, loop, BudgetPolicy(share=0.2)), 100)
            return store

        return go()

    store = run_in_virtual_time(scenario)
    assert max(store.ours.values()) <= 30


def test_a_429_waits_for_the_reset_before_trying_again() -> None:
    attempts: list[float] = []

    def scenario(loop: VirtualTimeLoop) -> Awaitable[dict[str, Any]]:
        async def go() -> dict[str, Any]:
            def handler(request: httpx.Request) -> httpx.Response:
                attempts.append(loop.time())
                if len(attempts) == 1:
                    return httpx.Response(
                        429,
                        headers={
                            "X-Rate-Limit-Requests-Left": "0",
                            "X-Rate-Limit-Time-Reset-Ms": "12000",
                            "X-Rate-Limit-Time-Window-Ms": "30000",
                            "X-Rate-Limit-Requests-Quota": "150",
                        },
                    )
                return httpx.Response(200, json={"id": 7, "scope": "s", "destination": "d"})

            clients = BigCommerceClients(
                [STORE],
                transport=httpx.MockTransport(handler),
                clock=loop.time,
                sleep=asyncio.sleep,
                rng=lambda: 0.5,
            )
            hook = await clients.get("abc123").get_hook(7)
            assert hook.id == 7
            stats = clients.stats()["abc123"]
            await clients.aclose()
            return {"rate_limited": stats.rate_limited, "waited": stats.waited_seconds}

        return go()

    outcome = run_in_virtual_time(scenario)
    assert len(attempts) == 2
    assert attempts[1] - attempts[0] >= 12.0
    assert outcome == {"rate_limited": 1, "waited": pytest.approx(12.0, abs=0.01)}


def test_a_429_pauses_every_caller_of_the_store() -> None:
    sent: list[float] = []

    def scenario(loop: VirtualTimeLoop) -> Awaitable[None]:
        async def go() -> None:
            def handler(request: httpx.Request) -> httpx.Response:
                sent.append(loop.time())
                if len(sent) == 1:
                    return httpx.Response(429, headers={"X-Retry-After": "5"})
                return httpx.Response(200, json={"id": 1, "scope": "s", "destination": "d"})

            clients = BigCommerceClients(
                [STORE], transport=httpx.MockTransport(handler), clock=loop.time
            )
            client = clients.get("abc123")
            await client.get_hook(1)  # took the 429, waited 5 s
            await clients.aclose()

        return go()

    run_in_virtual_time(scenario)
    assert sent[1] - sent[0] >= 5.0  # X-Retry-After is honoured when Reset-Ms is absent


async def test_pause_holds_all_callers_until_it_ends() -> None:
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    budget = RateBudget(clock=lambda: now[0], sleep=sleep)
    budget.pause(12.5)
    await budget.acquire()
    assert now[0] >= 112.5
    assert budget.stats.waited_seconds == pytest.approx(sum(slept))


async def test_a_cancelled_call_gives_its_ticket_back() -> None:
    started = asyncio.Event()

    async def never_answers(request: httpx.Request) -> httpx.Response:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    clients = BigCommerceClients([STORE], transport=httpx.MockTransport(never_answers))
    client = clients.get("abc123")
    call = asyncio.create_task(client.get_hook(1))
    await started.wait()
    assert client.session.budget.snapshot().in_flight == 1
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    snapshot = client.session.budget.snapshot()
    assert (snapshot.in_flight, snapshot.ours_in_window) == (0, 1)  # given back, still counted
    await clients.aclose()


async def test_a_new_window_sends_one_request_first_and_waits_for_its_count() -> None:
    budget = RateBudget(clock=lambda: 0.0)
    first = await budget.acquire()
    # The second caller must wait: the other apps' use of this window is unknown.
    second = asyncio.ensure_future(budget.acquire())
    await asyncio.sleep(0)
    assert not second.done()
    budget.observe(first, RateLimitHeaders(requests_left=100, reset_ms=20_000))
    await asyncio.wait_for(second, timeout=1)
    snapshot = budget.snapshot()
    assert snapshot.left_estimate == 99
    assert snapshot.in_flight == 1


def test_rate_headers_are_read_case_insensitively_and_garbage_is_ignored() -> None:
    headers = RateLimitHeaders.parse(
        {
            "x-rate-limit-requests-left": "35",
            "X-RATE-LIMIT-TIME-RESET-MS": "15000",
            "X-Rate-Limit-Time-Window-Ms": "30000",
            "X-Rate-Limit-Requests-Quota": "lots",
            "X-Retry-After": "15",
        }
    )
    assert headers == RateLimitHeaders(
        requests_left=35, reset_ms=15_000, window_ms=30_000, quota=None, retry_after_s=15.0
    )
    assert headers.present
    assert headers.reset_wait() == 15.0
    assert not RateLimitHeaders.parse({"Content-Type": "application/json"}).present
    assert RateLimitHeaders(reset_ms=2_000, retry_after_s=9).reset_wait() == 9


@pytest.mark.parametrize("share", [0.0, 1.5])
def test_a_share_outside_0_to_1_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match="share"):
        BudgetPolicy(share=share)


def test_the_cap_is_half_the_quota_by_default() -> None:
    assert BudgetPolicy().cap(150) == 75
    assert BudgetPolicy().cap(450) == 225
    assert BudgetPolicy(share=0.01).cap(10) == 1
