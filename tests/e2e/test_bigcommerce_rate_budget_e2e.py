"""The client's rate budget against the store simulator's quota, both real, over loopback.

The simulator meters each store's quota as BigCommerce does: fixed windows, each starting with
the first request after the previous window ended, counted on its (sped-up) clock and reported
in `X-Rate-Limit-*` headers. The client gets that same simulated time as its clock and sleep
(`SimTime`), so minutes of quota windows pass in seconds and every count is in simulated time.
Nothing here asserts on wall-clock durations: only on what the simulator counted and logged.

The budget promises more than the simulator checks: at most its share (50%) of the quota in ANY
span of one window. So each test checks both: the simulator's own window counts, read from the
`Requests-Left` header of every response (quota minus what that window has used), and every
span of one window length in the request log. The log keeps whole simulated seconds, so the
spans checked are those starting on a whole second, `[T, T + window)`: those are exact.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence

import pytest

from shared.bigcommerce import BigCommerceClients
from tests.support.bigcommerce_sim import (
    STORE_A,
    ConformanceTransport,
    LoggedRequest,
    SimAdmin,
    SimTime,
    SimulatorProcess,
    running_simulator,
)

pytestmark = pytest.mark.e2e

ORDER_PREFIX = f"/stores/{STORE_A}/v2/orders/"


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorProcess]:
    # The Standard plan's quota, as BigCommerce and the simulator default to.
    with running_simulator(quota="150/30") as process:
        yield process


@pytest.fixture
async def admin(simulator: SimulatorProcess) -> AsyncIterator[SimAdmin]:
    async with SimAdmin(simulator) as sim_admin:
        await sim_admin.reset()
        yield sim_admin
        await sim_admin.reset()


@pytest.fixture
async def traffic() -> AsyncIterator[ConformanceTransport]:
    transport = ConformanceTransport()
    yield transport
    assert transport.violations == []
    assert transport.unexpected() == [], "error statuses the spec does not document"


async def budgeted_clients(
    simulator: SimulatorProcess, traffic: ConformanceTransport, time: SimTime
) -> BigCommerceClients:
    """The client with its default options (a 50% share), on simulated time."""
    return simulator.clients(transport=traffic, clock=time.clock, sleep=time.sleep)


def busiest_span(times: Sequence[float], window: float) -> int:
    """The most requests logged in one `[T, T + window)`, T a whole second."""
    if not times:
        return 0
    first, last = int(min(times)), int(max(times))
    return max(
        sum(1 for t in times if start <= t < start + window)
        for start in range(first - int(window), last + 1)
    )


def order_fetches(log: list[LoggedRequest]) -> list[LoggedRequest]:
    return [r for r in log if r.method == "GET" and r.path.startswith(ORDER_PREFIX)]


async def test_a_paced_burst_meets_no_429_under_a_small_quota(
    admin: SimAdmin, simulator: SimulatorProcess, traffic: ConformanceTransport
) -> None:
    await admin.put_settings(quota="10/2")
    made = await admin.generate(STORE_A, 30, seed=2, incomplete_share=0)
    await admin.clear_requests()
    time = await admin.sim_time(scale=10)
    clients = await budgeted_clients(simulator, traffic, time)
    store = clients.get(STORE_A)
    try:
        orders = await asyncio.gather(*(store.get_order(i) for i in made.ids))
    finally:
        await clients.aclose()

    assert [o.id for o in orders] == made.ids
    log = await admin.requests(store_hash=STORE_A)
    assert Counter(r.status for r in log) == {200: 30}, "not a single 429"
    assert busiest_span([r.time for r in log], 2) <= 5
    left = [e.rate.requests_left for e in traffic.exchanges]
    assert None not in left
    assert min(x for x in left if x is not None) >= 10 - 5, "each simulator window"
    stats = clients.stats()[STORE_A]
    assert (stats.requests, stats.rate_limited, stats.retries) == (30, 0, 0)
    assert stats.throttled > 0, "the budget made callers wait: it paced, the quota did not"


async def test_a_429_caused_by_another_app_is_waited_out_then_retried(
    admin: SimAdmin, simulator: SimulatorProcess, traffic: ConformanceTransport
) -> None:
    await admin.put_settings(quota="10/2")
    made = await admin.generate(STORE_A, 3, seed=2, incomplete_share=0)
    time = await admin.sim_time(scale=1)
    clients = await budgeted_clients(simulator, traffic, time)
    store = clients.get(STORE_A)
    traffic.allow(429)  # not in the Orders spec; the rate-limit docs describe it
    try:
        async with admin.api(STORE_A) as other_app:
            answers = [(await other_app.get("/v2/time")).status_code for _ in range(11)]
            assert answers == [200] * 10 + [429], "the other app used up this window"
            orders = await asyncio.gather(*(store.get_order(i) for i in made.ids))
    finally:
        await clients.aclose()

    assert [o.id for o in orders] == made.ids
    ours = order_fetches(await admin.requests(store_hash=STORE_A))
    assert [r.status for r in ours] == [429, 200, 200, 200], (
        "one caller met the 429; the store's callers all waited for the reset"
    )
    refused, retried = traffic.exchanges[0], traffic.exchanges[1]
    assert refused.status == 429
    assert refused.rate.requests_left == 0
    assert refused.rate.reset_ms is not None
    assert refused.rate.reset_ms > 0
    # The retry was the first request of a fresh window: it waited for the reset, as told.
    assert (retried.status, retried.rate.requests_left) == (200, 9)
    stats = clients.stats()[STORE_A]
    assert (stats.rate_limited, stats.retries, stats.requests) == (1, 1, 4)


async def test_the_budget_keeps_1000_order_fetches_within_its_share_of_150_per_30s(
    admin: SimAdmin, simulator: SimulatorProcess, traffic: ConformanceTransport
) -> None:
    """The issue's acceptance test: a burst of 1,000 order fetches within the configured share
    (50%: 75) of a 150 / 30 s quota, with no 429, at 60x simulated time (30 s in 0.5 s)."""
    made = await admin.generate(STORE_A, 1000, seed=7, incomplete_share=0)
    await admin.clear_requests()
    time = await admin.sim_time(scale=60)
    clients = await budgeted_clients(simulator, traffic, time)
    store = clients.get(STORE_A)
    try:
        orders = await asyncio.gather(*(store.get_order(i) for i in made.ids))
    finally:
        await clients.aclose()

    assert sorted(o.id for o in orders) == sorted(made.ids)
    stats = clients.stats()[STORE_A]
    assert (stats.rate_limited, stats.retries) == (0, stats.transport_errors)
    log = await admin.requests(store_hash=STORE_A)
    # One record per fetch; a retry after a lost connection may add one (none is expected).
    assert len(order_fetches(log)) == len(log)
    assert 1000 <= len(log) <= 1000 + stats.transport_errors
    assert set(Counter(r.status for r in log)) == {200}, "zero 429s"
    settings = await admin.settings()
    assert settings["quota"] == {"requests": 150, "window_seconds": 30.0}
    times = [r.time for r in log]
    assert busiest_span(times, 30) <= 75, "our share of every 30 s span"
    left = [e.rate.requests_left for e in traffic.exchanges]
    assert None not in left
    assert min(x for x in left if x is not None) >= 150 - 75, "each simulator window"
    assert traffic.responses_checked == 1000
