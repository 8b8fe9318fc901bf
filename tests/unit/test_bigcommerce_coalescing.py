"""Coalesced order reads (shared/bigcommerce/coalescing.py) against the in-process store
simulator: the production client, the simulator's real V2 endpoints; no timings asserted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from pydantic import SecretStr

from local.bigcommerce.app import build_app
from local.bigcommerce.clock import SimClock
from local.bigcommerce.config import Quota, SimSettings, StoreConfig
from local.bigcommerce.simulator import Simulator
from shared.bigcommerce.client import BigCommerceClient, OrderBundle
from shared.bigcommerce.coalescing import CoalescingStorefront, ListPolicy, id_window
from shared.bigcommerce.errors import NotFoundError
from shared.bigcommerce.registry import BigCommerceClients
from shared.config.settings import StoreSettings

STORE = "coalesce1"
TOKEN = "coalesce-token"  # made up, for the in-process simulator


@dataclass
class Gate:
    """Holds the answers to requests for `path` until `release` is set."""

    path: str
    release: asyncio.Event = field(default_factory=asyncio.Event)
    held: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Recorder(httpx.AsyncBaseTransport):
    inner: httpx.AsyncBaseTransport
    requests: list[httpx.Request] = field(default_factory=list)
    gate: Gate | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = await self.inner.handle_async_request(request)
        if self.gate is not None and request.url.path.endswith(self.gate.path):
            self.gate.held.set()  # answered, the answer not handed back yet
            await self.gate.release.wait()
        return response

    def paths(self) -> list[str]:
        return [r.url.path.removeprefix(f"/stores/{STORE}") for r in self.requests]


@dataclass
class World:
    simulator: Simulator
    admin: httpx.AsyncClient
    client: BigCommerceClient
    recorder: Recorder

    async def generate(self, count: int, **options: object) -> list[int]:
        response = await self.admin.post(
            f"/__sim/stores/{STORE}/orders/generate",
            json={"count": count, "seed": 3, "incomplete_share": 0, **options},
        )
        response.raise_for_status()
        ids: list[int] = response.json()["ids"]
        return ids

    def storefront(
        self, policy: ListPolicy | None = None, **kwargs: object
    ) -> CoalescingStorefront:
        return CoalescingStorefront(self.client, policy, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    settings = SimSettings((StoreConfig(STORE, TOKEN, "secret"),), Quota(100_000, 30))
    app = build_app(settings, clock=SimClock())
    transport = httpx.ASGITransport(app=app)
    recorder = Recorder(transport)
    clients = BigCommerceClients(
        [
            StoreSettings(
                store_hash=STORE, access_token=SecretStr(TOKEN), webhook_secret=SecretStr("w")
            )
        ],
        base_urls={STORE: "http://simulator"},
        transport=recorder,
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://simulator") as admin:
        yield World(app.state.simulator, admin, clients.get(STORE), recorder)
    await clients.aclose()


def same(a: OrderBundle, b: OrderBundle) -> None:
    assert a.order == b.order
    assert a.products == b.products
    assert a.shipping_addresses == b.shipping_addresses


async def test_a_lone_read_is_the_plain_per_order_get(world: World) -> None:
    [order_id] = await world.generate(1)
    storefront = world.storefront()

    bundle = await storefront.get_order_bundle(order_id)

    assert world.recorder.paths() == [f"/v2/orders/{order_id}"]
    assert storefront.stats.single_reads == 1
    assert storefront.stats.list_reads == 0
    same(bundle, await world.client.get_order_bundle(order_id))


async def test_reads_waiting_together_are_served_by_one_id_range_list(world: World) -> None:
    ids = await world.generate(30)
    storefront = world.storefront()

    bundles = await asyncio.gather(*(storefront.get_order_bundle(i) for i in reversed(ids)))

    [request] = world.recorder.requests
    assert request.url.path == f"/stores/{STORE}/v2/orders"
    params = dict(request.url.params)
    assert params == {
        "min_id": str(min(ids)),
        "max_id": str(max(ids)),
        "include": "consignments.line_items",
        "consignment_structure": "object",
        "sort": "id:asc",
        "limit": "250",
        "page": "1",
    }
    assert storefront.stats.listed == 30
    for order_id, bundle in zip(reversed(ids), bundles, strict=True):
        assert bundle.order.id == order_id
        same(bundle, await world.client.get_order_bundle(order_id))


async def test_an_order_the_list_leaves_out_is_read_on_its_own(world: World) -> None:
    ids = await world.generate(5)
    [incomplete] = await world.generate(1, incomplete_share=1)  # listings leave status 0 out
    storefront = world.storefront()

    bundles = await asyncio.gather(*(storefront.get_order_bundle(i) for i in [*ids, incomplete]))

    assert world.recorder.paths() == ["/v2/orders", f"/v2/orders/{incomplete}"]
    assert bundles[-1].order.status_id == 0
    assert [b.order.id for b in bundles] == [*ids, incomplete]


async def test_a_missing_order_fails_only_its_own_caller(world: World) -> None:
    ids = await world.generate(4)
    missing = max(ids) + 1  # not created (yet): inside the id range, absent from the list
    storefront = world.storefront()

    results = await asyncio.gather(
        *(storefront.get_order_bundle(i) for i in [*ids, missing]), return_exceptions=True
    )

    assert isinstance(results[-1], NotFoundError)
    assert [r.order.id for r in results[:-1] if isinstance(r, OrderBundle)] == ids


async def test_a_failed_list_fails_its_callers_and_the_next_read_works(world: World) -> None:
    ids = await world.generate(3)
    await world.admin.post(
        "/__sim/faults", json={"path_prefix": f"/stores/{STORE}/v2/orders", "status": 404}
    )
    storefront = world.storefront()

    results = await asyncio.gather(
        *(storefront.get_order_bundle(i) for i in ids), return_exceptions=True
    )

    assert all(isinstance(r, NotFoundError) for r in results)
    assert (await storefront.get_order_bundle(ids[0])).order.id == ids[0]


async def test_a_call_made_while_a_read_is_on_its_way_gets_a_later_read(world: World) -> None:
    """A read must start after the call it serves: the order may have changed in between."""
    ids = await world.generate(3)
    gate = Gate("/v2/orders")
    world.recorder.gate = gate
    storefront = world.storefront()
    first = asyncio.gather(*(storefront.get_order_bundle(i) for i in ids))
    await gate.held.wait()  # the list is on its way, not answered yet
    changed = await world.admin.post(
        f"/__sim/stores/{STORE}/orders/{ids[1]}/status", json={"status_id": 5}
    )
    changed.raise_for_status()
    later = asyncio.ensure_future(storefront.get_order_bundle(ids[1]))
    await asyncio.sleep(0.01)
    gate.release.set()

    before = await first
    after = await later

    assert before[1].order.status_id != 5
    assert after.order.status_id == 5
    assert world.recorder.paths() == ["/v2/orders", f"/v2/orders/{ids[1]}"]


async def test_ids_far_apart_are_read_by_a_date_modified_window(world: World) -> None:
    ids = await world.generate(600)
    wanted = [ids[0], ids[300], ids[599]]  # no two within one page's id range
    (await world.admin.post("/__sim/clock", json={"advance_seconds": 60})).raise_for_status()
    for order_id in wanted:  # updated: the most recently modified orders
        changed = await world.admin.post(
            f"/__sim/stores/{STORE}/orders/{order_id}/status", json={"status_id": 9}
        )
        changed.raise_for_status()
    storefront = world.storefront()

    bundles = await asyncio.gather(*(storefront.get_order_bundle(i) for i in wanted))

    [request] = world.recorder.requests
    params = dict(request.url.params)
    assert params["sort"] == "date_modified:desc"
    assert "min_date_modified" in params
    assert "min_id" not in params
    assert [(b.order.id, b.order.status_id) for b in bundles] == [(i, 9) for i in wanted]


async def test_reads_are_paced_to_their_share_of_the_quota(world: World) -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    standard = await world.admin.put("/__sim/settings", json={"quota": "150/30"})
    standard.raise_for_status()
    ids = await world.generate(3)
    storefront = world.storefront(ListPolicy(burst=2), clock=lambda: now[0], sleep=sleep)
    for order_id in ids:
        await storefront.get_order_bundle(order_id)

    # Standard plan until told otherwise: 75 of 150 per 30 s are ours, half of it for reads.
    assert slept == [pytest.approx(30 / (75 * 0.5))]
    assert world.recorder.paths() == [f"/v2/orders/{i}" for i in ids]


def test_an_id_window_holds_the_oldest_and_as_many_others_as_fit() -> None:
    assert id_window([1, 2, 300, 301, 302], 300, 250) == [300, 301, 302]
    assert id_window([1, 2, 300, 301, 302], 2, 250) == [1, 2]
    assert id_window([10, 500], 10, 250) == [10]
    assert id_window(list(range(1, 600)), 300, 250) == list(range(51, 301))


async def test_a_failure_of_the_coalescer_itself_fails_its_callers_rather_than_hang(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await world.generate(2)

    def broken() -> object:
        raise RuntimeError("budget is broken")

    monkeypatch.setattr(world.client.session.budget, "snapshot", broken)
    storefront = world.storefront()
    calls = [storefront.get_order_bundle(i) for i in ids]
    results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 5)
    assert [str(r) for r in results] == ["budget is broken", "budget is broken"]
    assert world.recorder.requests == []
