"""The simulator's V3 hooks API, held to `reference/webhooks.v3.yml` and the documented limits.

Runs the service's routes in a small Starlette app (no delivery needed here) and talks to it
over ASGI, as a client of api.bigcommerce.com would. Also pins the pure rules the deliverer
relies on: scope matching and the blocklist threshold.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from local.bigcommerce.clock import SimClock
from local.bigcommerce.events import EventBus
from local.bigcommerce.webhooks import build_webhooks
from local.bigcommerce.webhooks.blocklist import DomainBlocklist, domain_of
from local.bigcommerce.webhooks.scopes import is_documented, matches

STORE, TOKEN = "simstore1", "sim-token-1"
OTHER, OTHER_TOKEN = "simstore2", "sim-token-2"
HOOKS = f"/stores/{STORE}/v3/hooks"
AUTH = {"X-Auth-Token": TOKEN, "Accept": "application/json"}
DEST = "https://hooks.example.com/bigcommerce"
ORDER = "store/order/created"
STOCK = "inventory/product/stock_changed"


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    service = build_webhooks(
        EventBus(), SimClock(), {STORE: "secret"}, tokens={STORE: TOKEN, OTHER: OTHER_TOKEN}
    )
    app = Starlette(routes=service.routes + service.admin_routes)
    await service.start()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        yield client
    await service.stop()


async def create(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post(
        HOOKS, json={"scope": "store/order/created", "destination": DEST, **body}, headers=AUTH
    )


# -- authentication ------------------------------------------------------------------------


async def test_unknown_store_is_404_and_a_bad_token_401(api: httpx.AsyncClient) -> None:
    assert (await api.get("/stores/nosuch/v3/hooks", headers=AUTH)).status_code == 404
    assert (await api.get(HOOKS)).status_code == 401
    wrong = await api.get(HOOKS, headers={"X-Auth-Token": OTHER_TOKEN})
    assert wrong.status_code == 401
    assert set(wrong.json()) == {"status", "title", "type"}


async def test_a_store_sees_only_its_own_hooks(api: httpx.AsyncClient) -> None:
    hook = (await create(api)).json()["data"]
    other = {"X-Auth-Token": OTHER_TOKEN}
    assert (await api.get(f"/stores/{OTHER}/v3/hooks", headers=other)).json()["data"] == []
    assert (
        await api.get(f"/stores/{OTHER}/v3/hooks/{hook['id']}", headers=other)
    ).status_code == 404


# -- create, read, update, delete ----------------------------------------------------------


async def test_create_answers_webhook_full_in_data_and_meta(api: httpx.AsyncClient) -> None:
    response = await create(api, headers={"X-Webhook-Secret": "s3cr3t"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"data", "meta"}
    hook = body["data"]
    assert set(hook) == {
        "id", "client_id", "store_hash", "scope", "destination", "headers", "is_active",
        "created_at", "updated_at",
    }  # fmt: skip
    assert hook["store_hash"] == STORE
    assert hook["scope"] == "store/order/created"
    assert hook["destination"] == DEST
    assert hook["headers"] == {"X-Webhook-Secret": "s3cr3t"}
    assert hook["is_active"] is True  # the default
    assert isinstance(hook["id"], int)
    assert isinstance(hook["created_at"], int)
    assert hook["client_id"]
    fetched = await api.get(f"{HOOKS}/{hook['id']}", headers=AUTH)
    assert fetched.json()["data"] == hook
    no_headers = (await create(api, scope="store/order/updated")).json()["data"]
    assert no_headers["headers"] is None


async def test_update_and_delete(api: httpx.AsyncClient) -> None:
    hook = (await create(api)).json()["data"]
    url = f"{HOOKS}/{hook['id']}"
    updated = await api.put(url, json={"is_active": False, "headers": {"A": "b"}}, headers=AUTH)
    assert updated.status_code == 200
    assert updated.json()["data"]["is_active"] is False
    assert updated.json()["data"]["headers"] == {"A": "b"}
    assert updated.json()["data"]["scope"] == "store/order/created"  # untouched
    moved = await api.put(url, json={"destination": DEST + "/v2"}, headers=AUTH)
    assert moved.json()["data"]["destination"] == DEST + "/v2"
    deleted = await api.delete(url, headers=AUTH)
    assert (deleted.status_code, deleted.json()["data"]["id"]) == (200, hook["id"])
    assert (await api.get(url, headers=AUTH)).status_code == 404
    assert (await api.delete(url, headers=AUTH)).status_code == 404


async def test_unknown_hook_ids_are_404(api: httpx.AsyncClient) -> None:
    for path in ("999", "abc", "0"):
        response = await api.get(f"{HOOKS}/{path}", headers=AUTH)
        assert response.status_code == 404
        assert response.json()["title"] == f"Webhook with id [{path}] not found"


async def test_list_filters_and_pages(api: httpx.AsyncClient) -> None:
    for n in range(3):
        await create(api, destination=f"{DEST}/{n}", is_active=n != 1)
    await create(api, scope="store/shipment/*")
    everything = (await api.get(HOOKS, headers=AUTH)).json()
    assert everything["meta"]["pagination"]["total"] == 4
    assert everything["meta"]["pagination"]["per_page"] == 50
    page = (await api.get(HOOKS, params={"limit": 3, "page": 2}, headers=AUTH)).json()
    meta = page["meta"]["pagination"]
    assert (meta["total"], meta["count"], meta["current_page"], meta["total_pages"]) == (4, 1, 2, 2)
    assert "previous" in meta["links"]
    assert "next" not in meta["links"]
    assert [h["scope"] for h in page["data"]] == ["store/shipment/*"]

    async def ids(**params: Any) -> list[str]:
        data = (await api.get(HOOKS, params=params, headers=AUTH)).json()["data"]
        return [h["destination"] for h in data]

    assert await ids(is_active="false") == [f"{DEST}/1"]
    assert len(await ids(is_active="true")) == 3
    assert await ids(scope="store/shipment/*") == [DEST]
    assert await ids(destination=f"{DEST}/2") == [f"{DEST}/2"]
    assert (await api.get(HOOKS, params={"page": "0"}, headers=AUTH)).status_code == 422
    assert (await api.get(HOOKS, params={"is_active": "maybe"}, headers=AUTH)).status_code == 422


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"destination": DEST}, "scope"),
        ({"scope": "store/order/created"}, "destination"),
        ({"scope": 5, "destination": DEST}, "scope"),
        ({"scope": "store/order/nope", "destination": DEST}, "scope"),
        ({"scope": "store/channel/abc/order/*", "destination": DEST}, "scope"),
        ({"scope": "store/*", "destination": DEST}, "scope"),
        ({"scope": ORDER, "destination": "http://hooks.example.com/x"}, "destination"),
        ({"scope": ORDER, "destination": "https://hooks.example.com:8443/x"}, "destination"),
        ({"scope": ORDER, "destination": "ftp://hooks.example.com/x"}, "destination"),
        ({"scope": ORDER, "destination": "/relative"}, "destination"),
        ({"scope": ORDER, "destination": DEST, "is_active": "yes"}, "is_active"),
        ({"scope": ORDER, "destination": DEST, "headers": ["a"]}, "headers"),
        ({"scope": ORDER, "destination": DEST, "headers": {"A": 1}}, "headers"),
        ({"scope": ORDER, "destination": DEST, "headers": {"bad name": "v"}}, "headers"),
    ],
)  # fmt: skip
async def test_invalid_bodies_are_422_naming_the_field(
    api: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await api.post(HOOKS, json=body, headers=AUTH)
    assert response.status_code == 422
    problem = response.json()
    assert problem["status"] == 422
    assert problem["title"] == "JSON data is missing or invalid"
    assert field in problem["errors"]


async def test_missing_fields_read_error_path_missing(api: httpx.AsyncClient) -> None:
    problem = (await api.post(HOOKS, json={}, headers=AUTH)).json()
    assert problem["errors"] == {"scope": "error.path.missing", "destination": "error.path.missing"}


async def test_not_json_is_400_and_not_an_object_422(api: httpx.AsyncClient) -> None:
    assert (await api.post(HOOKS, content=b"{nope", headers=AUTH)).status_code == 400
    assert (await api.post(HOOKS, json=["a"], headers=AUTH)).status_code == 422


@pytest.mark.parametrize(
    ("scope", "destination"),
    [
        ("store/order/*", "https://hooks.example.com:443/a"),
        ("store/channel/5/order/*", "https://hooks.example.com/b"),
        ("store/channel/*/inventory/product/stock_changed", "https://hooks.example.com/c"),
        ("store/order/statusUpdated", "http://127.0.0.1:8123/local"),
        ("store/shipment/created", "http://localhost:9/local"),
    ],
)
async def test_documented_scopes_and_loopback_http_are_accepted(
    api: httpx.AsyncClient, scope: str, destination: str
) -> None:
    response = await create(api, scope=scope, destination=destination)
    assert response.status_code == 200, response.json()


async def test_put_needs_a_field_and_validates_it(api: httpx.AsyncClient) -> None:
    url = f"{HOOKS}/{(await create(api)).json()['data']['id']}"
    assert (await api.put(url, json={}, headers=AUTH)).status_code == 422
    bad = await api.put(url, json={"destination": "http://example.com"}, headers=AUTH)
    assert (bad.status_code, list(bad.json()["errors"])) == (422, ["destination"])


# -- platform limits -----------------------------------------------------------------------


async def test_at_most_ten_hooks_per_scope_and_one_per_scope_and_destination(
    api: httpx.AsyncClient,
) -> None:
    assert (await create(api)).status_code == 200
    duplicate = await create(api)
    assert (duplicate.status_code, list(duplicate.json()["errors"])) == (422, ["destination"])
    for n in range(9):
        assert (await create(api, destination=f"{DEST}/{n}")).status_code == 200
    eleventh = await create(api, destination=f"{DEST}/10")
    assert (eleventh.status_code, list(eleventh.json()["errors"])) == (422, ["scope"])
    assert (await create(api, scope="store/order/updated")).status_code == 200


async def test_one_delivery_exception_hook_with_a_destination_of_its_own(
    api: httpx.AsyncClient,
) -> None:
    exception = "store/hook/deliveryException"
    await create(api)
    assert (await create(api, scope=exception)).status_code == 422  # DEST is taken
    first = await create(api, scope=exception, destination=DEST + "/exceptions")
    assert first.status_code == 200
    second = await create(api, scope=exception, destination=DEST + "/exceptions-2")
    assert (second.status_code, list(second.json()["errors"])) == (422, ["scope"])
    taken = await create(api, scope="store/order/updated", destination=DEST + "/exceptions")
    assert (taken.status_code, list(taken.json()["errors"])) == (422, ["destination"])
    other = (await create(api, scope="store/order/updated", destination=DEST + "/o")).json()
    moved = await api.put(
        f"{HOOKS}/{other['data']['id']}", json={"destination": DEST + "/exceptions"}, headers=AUTH
    )
    assert moved.status_code == 422


# -- admin ---------------------------------------------------------------------------------


async def test_hooks_admin_lists_status_and_upserts_emails(api: httpx.AsyncClient) -> None:
    active = (await create(api)).json()["data"]
    (await create(api, scope="store/order/updated", is_active=False)).json()
    put = await api.put(f"{HOOKS}/admin", json={"emails": ["ops@example.com"]}, headers=AUTH)
    assert put.status_code == 204
    admin = (await api.get(f"{HOOKS}/admin", headers=AUTH)).json()
    assert admin["data"]["emails"] == ["ops@example.com"]
    assert admin["data"]["blocked_domains"] == []
    assert [h["status"] for h in admin["data"]["hooks_list"]] == ["active", "inactive"]
    assert admin["meta"]["pagination"]["total"] == 2
    only_active = (await api.get(f"{HOOKS}/admin?is_active=true", headers=AUTH)).json()
    assert [h["id"] for h in only_active["data"]["hooks_list"]] == [active["id"]]
    for bad in ({"emails": ["not-an-email"]}, {"emails": "ops@example.com"}, {}):
        assert (await api.put(f"{HOOKS}/admin", json=bad, headers=AUTH)).status_code == 422


async def test_sim_admin_switches_validate(api: httpx.AsyncClient) -> None:
    ok = await api.put("/__sim/webhooks/switches", json={"duplicate_probability": 0.25, "seed": 4})
    assert ok.json()["duplicate_probability"] == 0.25
    assert ok.json()["seed"] == 4
    for bad in ({"drop_probability": 2}, {"reorder_window": 0}, {"nonsense": 1}):
        assert (await api.put("/__sim/webhooks/switches", json=bad)).status_code == 422
    assert (await api.get("/__sim/webhooks/switches")).json()["reorder_window"] == 1


# -- the rules the deliverer uses ----------------------------------------------------------


@pytest.mark.parametrize(
    ("hook", "event", "expected"),
    [
        ("store/order/created", "store/order/created", True),
        ("store/order/created", "store/order/updated", False),
        ("store/order/*", "store/order/statusUpdated", True),
        ("store/order/*", "store/order/refund/created", True),
        ("store/order/*", "store/orders/created", False),
        ("store/cart/*", "store/cart/lineItem/created", True),
        ("store/cart/lineItem/*", "store/cart/created", False),
        ("store/channel/*", "store/channel/created", True),
        ("store/channel/*", "store/channel/1/order/created", False),
        ("store/channel/1/order/*", "store/channel/1/order/created", True),
        ("store/channel/1/order/*", "store/channel/2/order/created", False),
        (f"store/channel/*/{STOCK}", f"store/channel/3/{STOCK}", True),
    ],
)  # fmt: skip
def test_scope_matching(hook: str, event: str, expected: bool) -> None:
    assert is_documented(hook)
    assert matches(hook, event) is expected


def test_blocklist_counts_only_from_100_requests_and_blocks_below_90_percent() -> None:
    blocklist, now = DomainBlocklist(), datetime(2026, 1, 1, tzinfo=UTC)
    dest = "https://hooks.example.com/a"
    # 99 failures: below the 100-request minimum, nothing is blocked.
    assert not any(blocklist.record("c", dest, False, "HTTP 500", now) for _ in range(99))
    assert blocklist.blocked_until("c", dest, now) is None
    blocklist.reset()
    # Exactly 90% success keeps the domain open; one failure more than that blocks it.
    outcomes = [i % 10 != 9 for i in range(110)]
    assert not any(blocklist.record("c", dest, ok, "HTTP 500", now) for ok in outcomes)
    assert blocklist.record("c", "https://hooks.example.com/other-path", False, "timeout", now)
    until = blocklist.blocked_until("c", dest, now)
    assert until == now + timedelta(minutes=3)
    assert blocklist.blocked_until("other-client", dest, now) is None  # per client id
    assert blocklist.blocked_until("c", dest, until) is None  # three minutes later
    # Requests older than the two-minute window no longer count.
    fresh = DomainBlocklist()
    for _ in range(60):
        fresh.record("c", dest, False, "HTTP 500", now)
    later = now + timedelta(minutes=2, seconds=1)
    assert not any(fresh.record("c", dest, False, "HTTP 500", later) for _ in range(60))
    assert domain_of("http://127.0.0.1:8080/x") != domain_of("http://127.0.0.1:8081/x")
    assert domain_of("https://Example.com:443/a") == domain_of("https://example.com/b")
