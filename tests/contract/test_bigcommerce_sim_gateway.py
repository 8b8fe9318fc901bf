"""The store simulator's gateway and admin API: rate limits and their headers, fault injection,
latency settings, the request log, the clock, merchant status changes, incomplete orders that
complete later, and running as its own process (`python -m local.bigcommerce --port N`).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from local.bigcommerce.app import build_app
from local.bigcommerce.config import Latency, Quota, SimSettings, parse_latency, parse_quota
from local.bigcommerce.harness import STORE_HASH, SimulatedStore, simulated_store

REPO = Path(__file__).resolve().parents[2]
RATE_HEADERS = (
    "x-rate-limit-requests-left",
    "x-rate-limit-requests-quota",
    "x-rate-limit-time-reset-ms",
    "x-rate-limit-time-window-ms",
)
ORDER = {
    "billing_address": {"first_name": "Jane", "zip": "78751"},
    "products": [{"name": "Mug", "quantity": 1, "price_inc_tax": 5, "price_ex_tax": 5}],
}


@pytest.fixture
async def store() -> AsyncIterator[SimulatedStore]:
    async with simulated_store(quota=Quota(3, 30)) as simulated:
        yield simulated


# --- rate limits -----------------------------------------------------------------------------


async def test_every_response_carries_the_rate_limit_headers(store: SimulatedStore) -> None:
    first = await store.api.get("/v2/orders")
    second = await store.api.post("/v2/orders", json=ORDER)
    for response in (first, second):
        assert all(name in response.headers for name in RATE_HEADERS)
        assert response.headers["x-rate-limit-requests-quota"] == "3"
        assert response.headers["x-rate-limit-time-window-ms"] == "30000"
        assert 0 < int(response.headers["x-rate-limit-time-reset-ms"]) <= 30000
    assert first.headers["x-rate-limit-requests-left"] == "2"
    assert second.headers["x-rate-limit-requests-left"] == "1"


async def test_the_quota_runs_out_with_429_and_refreshes_with_the_window(
    store: SimulatedStore,
) -> None:
    for _ in range(3):
        assert (await store.api.get("/v2/time")).status_code == 200
    limited = await store.api.get("/v2/orders")
    assert limited.status_code == 429
    assert limited.headers["x-rate-limit-requests-left"] == "0"
    reset_ms = int(limited.headers["x-rate-limit-time-reset-ms"])
    assert 0 < reset_ms <= 30000
    assert int(limited.headers["x-retry-after"]) == -(-reset_ms // 1000)
    assert limited.json()[0]["status"] == 429
    v3 = await store.api.get("/v3/orders/payment_actions/refunds")
    assert v3.status_code == 429
    assert v3.json()["status"] == 429
    store.clock.advance(timedelta(milliseconds=reset_ms))
    fresh = await store.api.get("/v2/orders")
    assert fresh.status_code == 200
    assert fresh.headers["x-rate-limit-requests-left"] == "2"


async def test_refused_requests_do_not_use_the_quota(store: SimulatedStore) -> None:
    for _ in range(5):
        response = await store.api.get("/v2/orders", headers={"X-Auth-Token": "wrong"})
        assert response.status_code == 401
        assert "x-rate-limit-requests-left" not in response.headers
    assert (await store.api.get("/v2/orders")).headers["x-rate-limit-requests-left"] == "2"


async def test_the_quota_and_latency_are_set_through_the_admin_api(store: SimulatedStore) -> None:
    settings = await store.admin.put(
        "/__sim/settings", json={"quota": "450/30", "latency_ms": "2,1"}
    )
    assert settings.json()["quota"] == {"requests": 450, "window_seconds": 30.0}
    assert settings.json()["latency_ms"] == {"fixed": 2.0, "jitter": 1.0}
    response = await store.api.get("/v2/orders")
    assert response.status_code == 200
    assert response.headers["x-rate-limit-requests-quota"] == "450"
    assert response.headers["x-rate-limit-requests-left"] == "449"
    bad = await store.admin.put("/__sim/settings", json={"quota": "lots"})
    assert bad.status_code == 400
    assert (await store.admin.get("/__sim/settings")).json()["quota"]["requests"] == 450


def test_the_environment_sets_stores_quota_and_latency() -> None:
    settings = SimSettings.from_env(
        {
            "BIGCOMMERCE_STORES": "abc, def",
            "BIGCOMMERCE_ABC_ACCESS_TOKEN": "t1",
            "BIGCOMMERCE_ABC_CLIENT_SECRET": "s1",
            "BIGCOMMERCE_DEF_ACCESS_TOKEN": "t2",
            "LOCAL_BIGCOMMERCE_QUOTA": "10/5",
            "LOCAL_BIGCOMMERCE_LATENCY_MS": "150,30",
        }
    )
    assert [(s.store_hash, s.access_token, s.client_secret) for s in settings.stores] == [
        ("abc", "t1", "s1"),
        ("def", "t2", ""),
    ]
    assert settings.quota == Quota(10, 5)
    assert settings.latency == Latency(150, 30)
    defaults = SimSettings.from_env({})
    assert defaults.quota == Quota(150, 30)
    assert defaults.latency == Latency(0, 0)
    assert parse_quota("450") == Quota(450, 30)
    assert parse_latency("150") == Latency(150, 0)
    with pytest.raises(ValueError, match="LOCAL_BIGCOMMERCE_QUOTA"):
        parse_quota("fast")
    with pytest.raises(ValueError, match="LOCAL_BIGCOMMERCE_LATENCY_MS"):
        parse_latency("-5")


# --- faults ----------------------------------------------------------------------------------


async def test_faults_force_the_next_n_responses_under_a_prefix(store: SimulatedStore) -> None:
    await store.admin.put("/__sim/settings", json={"quota": "100/30"})
    prefix = f"/stores/{STORE_HASH}/v2/orders"
    added = await store.admin.post(
        "/__sim/faults", json={"path_prefix": prefix, "status": 503, "count": 2}
    )
    assert added.status_code == 201
    for _ in range(2):
        failed = await store.api.get("/v2/orders")
        assert failed.status_code == 503
        assert failed.json()[0]["status"] == 503
    assert (await store.api.get("/v2/time")).status_code == 200  # another prefix
    assert (await store.api.get("/v2/orders")).status_code == 200
    assert (await store.admin.get("/__sim/faults")).json() == []


async def test_a_forced_429_has_no_rate_headers_like_platform_load(store: SimulatedStore) -> None:
    await store.admin.post(
        "/__sim/faults",
        json={"path_prefix": f"/stores/{STORE_HASH}/v3/", "status": 429, "method": "POST"},
    )
    assert (await store.api.get("/v3/orders/payment_actions/refunds")).status_code == 200
    forced = await store.api.post("/v3/orders/1/payment_actions/refund_quotes", json={})
    assert forced.status_code == 429
    assert "x-rate-limit-requests-left" not in forced.headers
    await store.admin.post("/__sim/faults", json={"path_prefix": "/stores/", "status": 500})
    assert len((await store.admin.get("/__sim/faults")).json()) == 1
    assert (await store.admin.delete("/__sim/faults")).status_code == 204
    assert (await store.api.get("/v2/time")).status_code == 200
    bad = await store.admin.post("/__sim/faults", json={"path_prefix": "/", "status": 200})
    assert bad.status_code == 400


# --- the request log, the clock, resets ------------------------------------------------------


async def test_the_request_log_records_what_was_received(store: SimulatedStore) -> None:
    await store.api.get("/v2/orders", params={"limit": 5})
    await store.api.get("/v2/orders", headers={"X-Auth-Token": "wrong"})
    await store.api.post("/v2/orders", json=ORDER)
    log = (await store.admin.get("/__sim/requests")).json()
    assert [(r["method"], r["status"]) for r in log] == [("GET", 200), ("GET", 401), ("POST", 200)]
    assert log[0]["path"] == f"/stores/{STORE_HASH}/v2/orders"
    assert log[0]["query"] == "limit=5"
    assert log[0]["store_hash"] == STORE_HASH
    assert log[0]["time"].endswith("+00:00")
    posts = (await store.admin.get("/__sim/requests", params={"method": "post"})).json()
    assert len(posts) == 1
    assert (await store.admin.delete("/__sim/requests")).status_code == 204
    assert (await store.admin.get("/__sim/requests")).json() == []


async def test_the_clock_moves_and_speeds_up(store: SimulatedStore) -> None:
    before = (await store.admin.get("/__sim/clock")).json()
    moved = (await store.admin.post("/__sim/clock", json={"advance_seconds": 3600})).json()
    assert moved["epoch"] - before["epoch"] >= 3600
    order = (await store.api.post("/v2/orders", json=ORDER)).json()
    created = order["date_created"]
    assert created.endswith("+0000")
    scaled = (await store.admin.post("/__sim/clock", json={"scale": 60})).json()
    assert scaled["scale"] == 60
    assert (await store.admin.post("/__sim/clock", json={"advance_seconds": -1})).status_code == 400


async def test_reset_forgets_orders_and_settings(store: SimulatedStore) -> None:
    await store.generate(3)
    await store.admin.put("/__sim/settings", json={"quota": "9/9"})
    assert (await store.admin.post("/__sim/reset")).status_code == 204
    assert (await store.admin.get("/__sim/stores")).json() == [
        {"store_hash": STORE_HASH, "orders": 0}
    ]
    assert (await store.admin.get("/__sim/settings")).json()["quota"]["requests"] == 3
    new = (await store.api.post("/v2/orders", json=ORDER)).json()
    assert new["id"] == 100


async def test_the_webhooks_package_is_mounted_behind_the_gateway(store: SimulatedStore) -> None:
    hooks = await store.api.get("/v3/hooks")
    assert hooks.status_code == 200
    assert "x-rate-limit-requests-left" in hooks.headers  # hooks calls use the quota too
    refused = await store.api.get("/v3/hooks", headers={"X-Auth-Token": "wrong"})
    assert refused.status_code == 401
    assert (await store.admin.get("/__sim/webhooks")).status_code == 200


async def test_health(store: SimulatedStore) -> None:
    health = await store.admin.get("/_simulator/health")
    assert health.json() == {"status": "ok", "stores": [STORE_HASH]}


async def test_the_admin_api_answers_loopback_only() -> None:
    app = build_app(SimSettings())
    outside = httpx.ASGITransport(app=app, client=("10.1.2.3", 5555))
    async with httpx.AsyncClient(transport=outside, base_url="http://sim") as client:
        assert (await client.get("/__sim/clock")).status_code == 403
        assert (await client.get("/_simulator/health")).status_code == 200


# --- the merchant and the shopper ------------------------------------------------------------


async def test_the_merchant_changes_a_status(store: SimulatedStore) -> None:
    (order_id,) = await store.generate(1, incomplete_share=0)
    store.events.clear()
    response = await store.admin.post(
        f"/__sim/stores/{STORE_HASH}/orders/{order_id}/status", json={"status_id": 5}
    )
    assert response.json()["status_id"] == 5
    assert store.scopes() == ["store/order/updated", "store/order/statusUpdated"]
    assert store.events[1].data["status"]["new_status_id"] == 5
    missing = await store.admin.post(
        f"/__sim/stores/{STORE_HASH}/orders/999999/status", json={"status_id": 5}
    )
    assert missing.status_code == 404
    bad = await store.admin.post(
        f"/__sim/stores/{STORE_HASH}/orders/{order_id}/status", json={"status_id": 42}
    )
    assert bad.status_code == 400


async def test_incomplete_orders_complete_later(store: SimulatedStore) -> None:
    ids = await store.generate(3, incomplete_share=1, complete_after_seconds=600)
    created = [e for e in store.events if e.scope == "store/order/created"]
    assert [e.data["id"] for e in created] == ids  # created fires for incomplete orders too
    store.events.clear()
    assert (await store.admin.post("/__sim/tick")).json() == {"completed": []}
    await store.admin.post("/__sim/clock", json={"advance_seconds": 601})  # ticks as well
    for order_id in ids:
        order = (
            await store.admin.get(
                f"/stores/{STORE_HASH}/v2/orders/{order_id}",
                headers={"X-Auth-Token": "sim-token-1"},
            )
        ).json()
        assert order["status_id"] == 11
    changes = [e for e in store.events if e.scope == "store/order/statusUpdated"]
    assert [e.data["status"] for e in changes] == [
        {"previous_status_id": 0, "new_status_id": 11}
    ] * 3
    assert "store/order/transaction/created" in store.scopes()


async def test_concurrent_writers_get_distinct_orders(store: SimulatedStore) -> None:
    await store.admin.put("/__sim/settings", json={"quota": "1000/30"})
    responses = await asyncio.gather(*(store.api.post("/v2/orders", json=ORDER) for _ in range(40)))
    ids = [r.json()["id"] for r in responses]
    assert len(set(ids)) == 40
    assert store.scopes().count("store/order/created") == 40


# --- as a process ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_it_runs_alone_as_a_module() -> None:
    port = _free_port()
    env = {
        **os.environ,
        "BIGCOMMERCE_STORES": "procstore",
        "BIGCOMMERCE_PROCSTORE_ACCESS_TOKEN": "proc-token",
        "LOCAL_BIGCOMMERCE_QUOTA": "20/30",
        "PYTHONPATH": str(REPO),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "local.bigcommerce", "--port", str(port)], cwd=REPO, env=env
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(f"{base}/_simulator/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, "the simulator exited"
                assert time.monotonic() < deadline, "the simulator never listened"
                time.sleep(0.05)
        assert health.json()["stores"] == ["procstore"]
        url = f"{base}/stores/procstore/v2/time"
        assert httpx.get(url, headers={"X-Auth-Token": "proc-token"}).status_code == 200
        refused = httpx.get(url, headers={"X-Auth-Token": "nope"})
        assert refused.status_code == 401
        made = httpx.post(
            f"{base}/__sim/stores/procstore/orders/generate", json={"count": 2, "seed": 1}
        )
        assert made.status_code == 201
        listed = httpx.get(
            f"{base}/stores/procstore/v2/orders", headers={"X-Auth-Token": "proc-token"}
        )
        assert listed.headers["x-rate-limit-requests-quota"] == "20"
    finally:
        process.terminate()
        process.wait(timeout=10)
