"""The simulator's webhook deliveries, to real HTTP receivers on loopback ports.

Each test builds the service's routes into a small Starlette app (driven over ASGI), publishes
store events on the bus, and watches what real receivers (uvicorn on 127.0.0.1) get. Retries run
on a sped-up SimClock; assertions read simulated times from the attempt log, never the wall
clock, and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette

from local.bigcommerce.clock import SimClock
from local.bigcommerce.events import EventBus, StoreEvent
from local.bigcommerce.webhooks import RETRY_SCHEDULE, WebhookService, build_webhooks
from local.bigcommerce.webhooks.receiver import ReceivedCall, RecordingReceiver
from local.broker import LocalBroker
from local.broker.adapters import LocalBrokerSender, provision
from shared.config import load_settings
from shared.handlers.webhook_ingress import IngressRequest, WebhookIngress
from shared.messaging.queues import ORDER_EVENTS

STORE, TOKEN, STORE_ID = "simstore1", "sim-token-1", "1025646"
CLIENT_SECRET = "sim-client-secret"
HOOKS = f"/stores/{STORE}/v3/hooks"
AUTH = {"X-Auth-Token": TOKEN}
EXCEPTION = "store/hook/deliveryException"


@dataclass
class Sim:
    bus: EventBus
    clock: SimClock
    service: WebhookService
    client: httpx.AsyncClient

    async def hook(self, scope: str, destination: str, **extra: Any) -> dict[str, Any]:
        body = {"scope": scope, "destination": destination, **extra}
        response = await self.client.post(HOOKS, json=body, headers=AUTH)
        assert response.status_code == 200, response.text
        hook: dict[str, Any] = response.json()["data"]
        return hook

    def order(self, order_id: int, scope: str = "store/order/created", **kw: Any) -> None:
        self.bus.publish(StoreEvent(STORE, scope, {"type": "order", "id": order_id}, **kw))

    async def attempts(self, **filters: Any) -> list[dict[str, Any]]:
        response = await self.client.get("/__sim/webhooks/deliveries", params=filters)
        rows: list[dict[str, Any]] = response.json()["data"]
        return rows

    async def drain(self, timeout: float = 30) -> dict[str, Any]:
        response = await self.client.post("/__sim/webhooks/drain", params={"timeout": timeout})
        body: dict[str, Any] = response.json()
        assert response.status_code == (200 if body["drained"] else 504)
        return body

    async def switches(self, **values: Any) -> None:
        response = await self.client.put("/__sim/webhooks/switches", json=values)
        assert response.status_code == 200, response.text


@asynccontextmanager
async def simulator(scale: float = 1.0) -> AsyncIterator[Sim]:
    bus, clock = EventBus(), SimClock(scale)
    service = build_webhooks(
        bus, clock, {STORE: CLIENT_SECRET}, tokens={STORE: TOKEN}, store_ids={STORE: STORE_ID}
    )
    app = Starlette(routes=service.routes + service.admin_routes)
    await service.start()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            yield Sim(bus, clock, service, client)
    finally:
        await service.stop()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110 - polls the admin API over HTTP
            await asyncio.sleep(0.02)


def order_ids(calls: list[ReceivedCall]) -> list[int]:
    return [c.payload["data"]["id"] for c in calls]


# -- what a callback looks like -------------------------------------------------------------


async def test_callbacks_pass_our_ingress_and_verify_with_standardwebhooks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "BIGCOMMERCE_STORES": STORE,
        f"BIGCOMMERCE_{STORE.upper()}_ACCESS_TOKEN": TOKEN,
        f"BIGCOMMERCE_{STORE.upper()}_WEBHOOK_SECRET": "header-secret",
        f"BIGCOMMERCE_{STORE.upper()}_CLIENT_SECRET": CLIENT_SECRET,
        f"BIGCOMMERCE_{STORE.upper()}_STORE_ID": STORE_ID,
        f"BIGCOMMERCE_{STORE.upper()}_WEBHOOK_CHECKS": "header,signature",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    broker = LocalBroker(tmp_path / "broker.sqlite3")
    provision(broker)
    ingress = WebhookIngress(
        settings,
        LocalBrokerSender(broker),
        clock=lambda: datetime.now(UTC),
        new_id=lambda: uuid.uuid4().hex,
    )

    async def to_ingress(call: ReceivedCall) -> int:
        answer = await ingress.handle(IngressRequest("POST", call.headers, call.body))
        return answer.status

    async with RecordingReceiver(respond=to_ingress) as receiver, simulator() as sim:
        await sim.hook(
            "store/order/*", receiver.url, headers={settings.webhook_secret_header: "header-secret"}
        )
        status = {"previous_status_id": 0, "new_status_id": 11}
        data = {"type": "order", "id": 250, "status": status}
        sim.bus.publish(StoreEvent(STORE, "store/order/statusUpdated", data))
        assert (await sim.drain())["drained"]
        [call] = receiver.calls
        attempts = await sim.attempts()
    assert [(a["status"], a["http_status"]) for a in attempts] == [("delivered", 200)]

    # The envelope, as events/index.mdx documents it.
    envelope = call.payload
    assert set(envelope) == {"scope", "store_id", "data", "hash", "created_at", "producer"}
    assert envelope["scope"] == "store/order/statusUpdated"
    assert envelope["store_id"] == STORE_ID
    assert envelope["producer"] == f"stores/{STORE}"
    assert envelope["data"] == data
    assert len(envelope["hash"]) == 40
    assert int(envelope["hash"], 16) >= 0
    assert envelope["hash"] == attempts[0]["event_hash"]
    assert isinstance(envelope["created_at"], int)
    assert call.headers["content-type"] == "application/json"

    # The signature verifies with the library, keyed as BigCommerce documents it.
    encoded_secret = base64.b64encode(CLIENT_SECRET.encode()).decode()
    assert Webhook(encoded_secret).verify(call.body, call.headers) == envelope
    assert call.headers["webhook-id"] == attempts[0]["webhook_id"]
    with pytest.raises(WebhookVerificationError, match="signature"):
        Webhook(base64.b64encode(b"another secret").decode()).verify(call.body, call.headers)

    # And our ingress accepted it: authenticated, validated and queued.
    [message] = broker.peek(ORDER_EVENTS.name)
    assert message.subject == "store/order/statusUpdated"
    assert json.loads(message.body)["event"]["hash"] == envelope["hash"]
    broker.close()


async def test_custom_headers_are_sent_and_ours_take_precedence() -> None:
    async with RecordingReceiver() as receiver, simulator() as sim:
        headers = {"X-Custom": "value 1", "Authorization": "Basic dTpw", "Content-Type": "text/x"}
        await sim.hook("store/shipment/created", receiver.url, headers=headers)
        sim.bus.publish(
            StoreEvent(STORE, "store/shipment/created", {"type": "shipment", "id": 7, "orderId": 1})
        )
        [call] = await receiver.wait_for(1)
    assert call.headers["x-custom"] == "value 1"
    assert call.headers["authorization"] == "Basic dTpw"
    assert call.headers["content-type"] == "application/json"
    assert call.payload["data"] == {"type": "shipment", "id": 7, "orderId": 1}


async def test_wildcard_exact_and_channel_scopes_receive_the_right_events() -> None:
    async with RecordingReceiver() as receiver, simulator() as sim:
        url = receiver.url
        await sim.hook("store/order/*", url + "/all-orders")
        await sim.hook("store/order/statusUpdated", url + "/status")
        await sim.hook("store/shipment/*", url + "/shipments")
        await sim.hook("store/channel/1/order/*", url + "/channel-1")
        await sim.hook("store/channel/2/order/*", url + "/channel-2")
        await sim.hook("store/order/*", url + "/inactive", is_active=False)
        sim.order(10, channel_id=1)
        sim.order(10, "store/order/statusUpdated", channel_id=1)
        sim.bus.publish(
            StoreEvent(
                STORE, "store/shipment/created", {"type": "shipment", "id": 3, "orderId": 10}
            )
        )
        sim.bus.publish(StoreEvent(STORE, "store/product/updated", {"type": "product", "id": 4}))
        sim.bus.publish(StoreEvent("otherstore", "store/order/created", {"type": "order", "id": 1}))
        assert (await sim.drain())["drained"]
    by_path: dict[str, list[tuple[str, Any]]] = {}
    for call in receiver.calls:
        by_path.setdefault(call.path, []).append((call.payload["scope"], call.payload["data"]))
    assert by_path == {
        "/webhooks/all-orders": [
            ("store/order/created", {"type": "order", "id": 10}),
            ("store/order/statusUpdated", {"type": "order", "id": 10}),
        ],
        "/webhooks/status": [("store/order/statusUpdated", {"type": "order", "id": 10})],
        "/webhooks/shipments": [
            ("store/shipment/created", {"type": "shipment", "id": 3, "orderId": 10})
        ],
        "/webhooks/channel-1": [
            ("store/channel/1/order/created", {"order_id": 10}),
            ("store/channel/1/order/statusUpdated", {"order_id": 10}),
        ],
    }
    # One event, one hash, whichever hook gets it; the channel copy is an event of its own.
    hashes = {(c.path, c.payload["scope"]): c.payload["hash"] for c in receiver.calls}
    status_hash = hashes[("/webhooks/status", "store/order/statusUpdated")]
    assert hashes[("/webhooks/all-orders", "store/order/statusUpdated")] == status_hash
    assert hashes[("/webhooks/channel-1", "store/channel/1/order/statusUpdated")] != status_hash


async def test_events_published_before_start_or_from_another_thread_are_delivered() -> None:
    bus, clock = EventBus(), SimClock()
    service = build_webhooks(bus, clock, {}, tokens={STORE: TOKEN})
    async with RecordingReceiver() as receiver:
        app = Starlette(routes=service.routes)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            body = {"scope": "store/order/created", "destination": receiver.url}
            assert (await client.post(HOOKS, json=body, headers=AUTH)).status_code == 200
        bus.publish(StoreEvent(STORE, "store/order/created", {"type": "order", "id": 1}))
        await service.start()
        try:
            event = StoreEvent(STORE, "store/order/created", {"type": "order", "id": 2})
            await asyncio.to_thread(bus.publish, event)
            calls = await receiver.wait_for(2)
        finally:
            await service.stop()
        bus.publish(StoreEvent(STORE, "store/order/created", {"type": "order", "id": 3}))
        await service.start()  # a stopped service starts again; what it missed stays missed
        try:
            bus.publish(StoreEvent(STORE, "store/order/created", {"type": "order", "id": 4}))
            calls = await receiver.wait_for(3)
        finally:
            await service.stop()
    assert sorted(order_ids(calls[:2])) == [1, 2]
    assert order_ids(calls[2:]) == [4]
    assert "webhook-signature" not in calls[0].headers  # no client secret: unsigned


# -- retries, deactivation, delivery exceptions ---------------------------------------------


async def test_retries_follow_the_schedule_then_the_hook_is_deactivated_with_90002() -> None:
    async with (
        RecordingReceiver(status=500) as failing,
        RecordingReceiver() as exceptions,
        simulator(scale=100_000) as sim,
    ):
        emails = {"emails": ["ops@example.com"]}
        assert (
            await sim.client.put(f"{HOOKS}/admin", json=emails, headers=AUTH)
        ).status_code == 204
        hook = await sim.hook("store/order/created", failing.url)
        exception_hook = await sim.hook(EXCEPTION, exceptions.url)
        sim.order(42)
        assert (await sim.drain(timeout=120))["drained"]
        attempts = await sim.attempts(hook_id=hook["id"])
        fetched = (await sim.client.get(f"{HOOKS}/{hook['id']}", headers=AUTH)).json()["data"]
        admin = (await sim.client.get(f"{HOOKS}/admin", headers=AUTH)).json()["data"]
        notifications = (await sim.client.get("/__sim/webhooks/notifications")).json()["data"]
        reactivated = await sim.client.put(
            f"{HOOKS}/{hook['id']}", json={"is_active": True}, headers=AUTH
        )

    # 1 attempt + 11 retries, each due its documented delay after the previous failure.
    assert [a["attempt"] for a in attempts] == list(range(1, 13))
    assert {(a["status"], a["http_status"]) for a in attempts} == {("failed", 500)}
    assert len(failing.calls) == 12
    assert len({c.body for c in failing.calls}) == 1, "every retry resends the same body"
    assert len({c.headers["webhook-id"] for c in failing.calls}) == 1
    for previous, current, delay in zip(attempts[:-1], attempts[1:], RETRY_SCHEDULE, strict=True):
        failed_at = datetime.fromisoformat(previous["at"])
        due = datetime.fromisoformat(current["scheduled_for"])
        assert due - failed_at == timedelta(seconds=delay)
        assert previous["next_attempt_at"] == current["scheduled_for"]
        assert datetime.fromisoformat(current["started_at"]) >= due
    assert attempts[-1]["next_attempt_at"] is None
    total = datetime.fromisoformat(attempts[-1]["at"]) - datetime.fromisoformat(attempts[0]["at"])
    assert total >= timedelta(seconds=sum(RETRY_SCHEDULE))  # about 48 hours, simulated

    assert fetched["is_active"] is False
    statuses = {h["id"]: h["status"] for h in admin["hooks_list"]}
    assert statuses == {hook["id"]: "deactivated", exception_hook["id"]: "active"}
    assert reactivated.json()["data"]["is_active"] is True
    assert [(n["kind"], n["to"]) for n in notifications] == [
        ("hook_deactivated", ["ops@example.com"])
    ]

    notices = [c.payload for c in exceptions.calls]
    assert {n["scope"] for n in notices} == {EXCEPTION}
    assert all(n["data"]["type"] == "webhook" and n["data"]["id"] == hook["id"] for n in notices)
    codes = [n["data"]["error_code"] for n in notices]
    assert codes[-1] == 90002
    assert codes.count(90002) == 1
    assert set(codes[:-1]) == {90001}
    retry_notice_times = [n["created_at"] for n in notices if n["data"]["error_code"] == 90001]
    assert all(b - a >= 600 for a, b in itertools.pairwise(retry_notice_times))
    assert 1 < len(retry_notice_times) < 11, "90001 is rate-limited to one per 10 minutes"


async def test_a_recovering_receiver_gets_the_retry_and_the_hook_stays_active() -> None:
    async with (
        RecordingReceiver(respond=lambda call: 503 if call.index < 2 else 204) as receiver,
        simulator(scale=100_000) as sim,
    ):
        hook = await sim.hook("store/order/updated", receiver.url)
        sim.order(7, "store/order/updated")
        assert (await sim.drain(timeout=60))["drained"]
        attempts = await sim.attempts(hook_id=hook["id"])
        fetched = (await sim.client.get(f"{HOOKS}/{hook['id']}", headers=AUTH)).json()["data"]
    assert [(a["attempt"], a["status"]) for a in attempts] == [
        (1, "failed"),
        (2, "failed"),
        (3, "delivered"),
    ]
    assert fetched["is_active"] is True


async def test_no_2xx_within_the_timeout_is_a_failure() -> None:
    async def slow_then_fine(call: ReceivedCall) -> int:
        if call.index == 0:
            await asyncio.sleep(1)
        return 200

    async with (
        RecordingReceiver(respond=slow_then_fine) as receiver,
        simulator(scale=100_000) as sim,
    ):
        await sim.switches(timeout_seconds=0.1)
        hook = await sim.hook("store/order/created", receiver.url)
        sim.order(5)
        assert (await sim.drain(timeout=60))["drained"]
        attempts = await sim.attempts(hook_id=hook["id"])
    assert [(a["status"], a["error"]) for a in attempts] == [
        ("failed", "timeout"),
        ("delivered", None),
    ]


async def test_blocklist_after_100_failed_requests_defers_events_and_reports_90003() -> None:
    async with (
        RecordingReceiver(status=500) as failing,
        RecordingReceiver() as exceptions,
        simulator(scale=1) as sim,
    ):
        hook = await sim.hook("store/order/created", failing.url)
        await sim.hook(EXCEPTION, exceptions.url)
        for order_id in range(1, 106):
            sim.order(order_id)

        async def all_attempted() -> bool:
            return len(await sim.attempts(hook_id=hook["id"])) >= 105

        await eventually(all_attempted)
        attempts = await sim.attempts(hook_id=hook["id"])
        admin = (await sim.client.get(f"{HOOKS}/admin", headers=AUTH)).json()["data"]
        notices = await exceptions.wait_for(2)
        notifications = (await sim.client.get("/__sim/webhooks/notifications")).json()["data"]
        status = (await sim.client.get("/__sim/webhooks")).json()

    assert [a["status"] for a in attempts] == ["failed"] * 100 + ["blocked"] * 5
    assert len(failing.calls) == 100, "nothing is sent to a blocked domain"
    assert all(a["next_attempt_at"] for a in attempts), "blocked events go to the retry queue"
    assert len(status["scheduled_retries"]) == 105
    [blocked] = admin["blocked_domains"]
    assert blocked["destination"] == f"http://127.0.0.1:{failing.port}"
    assert 0 < blocked["time_left"] <= 180
    assert [(r["failure_description"], r["count"]) for r in blocked["reasons"]] == [
        ("HTTP 500", 100)
    ]
    assert [n.payload["data"]["error_code"] for n in notices] == [90001, 90003]
    assert [n["kind"] for n in notifications] == ["domain_blocked"]


# -- network realism switches -------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    calls: list[ReceivedCall]
    attempts: list[dict[str, Any]]

    @property
    def arrival(self) -> list[int]:
        return order_ids(self.calls)

    @property
    def log(self) -> list[tuple[str, bool]]:
        return [(a["status"], a["duplicate"]) for a in self.attempts]


async def _run_with_switches(count: int, **switches: Any) -> Run:
    async with RecordingReceiver() as receiver, simulator() as sim:
        await sim.switches(**switches)
        await sim.hook("store/order/created", receiver.url)
        for order_id in range(1, count + 1):
            sim.order(order_id)
        assert (await sim.drain())["drained"]
        return Run(list(receiver.calls), await sim.attempts())


async def test_duplicates_are_reproducible_by_seed() -> None:
    first = await _run_with_switches(20, duplicate_probability=0.4, seed=11)
    second = await _run_with_switches(20, duplicate_probability=0.4, seed=11)
    other = await _run_with_switches(20, duplicate_probability=0.4, seed=12)
    assert (first.arrival, first.log) == (second.arrival, second.log)
    assert other.arrival != first.arrival
    extra = len(first.calls) - 20
    assert 0 < extra < 20
    assert sorted(set(first.arrival)) == list(range(1, 21))
    assert sum(1 for _, duplicate in first.log if duplicate) == extra
    by_order: dict[int, list[ReceivedCall]] = {}
    for call in first.calls:
        by_order.setdefault(call.payload["data"]["id"], []).append(call)
    repeated = [calls for calls in by_order.values() if len(calls) == 2]
    assert len(repeated) == extra
    for original, copy in repeated:  # the same event: same body, same webhook-id
        assert original.body == copy.body
        assert original.headers["webhook-id"] == copy.headers["webhook-id"]


async def test_out_of_order_delivery_is_reproducible_by_seed_within_the_window() -> None:
    first = await _run_with_switches(20, reorder_window=5, seed=3)
    second = await _run_with_switches(20, reorder_window=5, seed=3)
    assert first.arrival == second.arrival
    assert first.arrival != list(range(1, 21)), "shuffled"
    for start in range(0, 20, 5):  # held back and shuffled within windows of five
        assert sorted(first.arrival[start : start + 5]) == list(range(start + 1, start + 6))


async def test_dropped_deliveries_are_never_sent_nor_retried() -> None:
    everything = await _run_with_switches(10, drop_probability=1.0, seed=1)
    assert everything.calls == []
    assert everything.log == [("dropped", False)] * 10
    some = await _run_with_switches(30, drop_probability=0.3, seed=5)
    again = await _run_with_switches(30, drop_probability=0.3, seed=5)
    assert some.arrival == again.arrival
    delivered = [a for a in some.attempts if a["status"] == "delivered"]
    assert len(some.calls) == len(delivered) < 30
    assert len(some.attempts) == 30, "no retries"


async def test_the_status_counts_every_attempt_the_switches_shaped() -> None:
    async with RecordingReceiver() as receiver, simulator() as sim:
        await sim.switches(
            duplicate_probability=0.3, drop_probability=0.2, reorder_window=5, seed=7
        )
        await sim.hook("store/order/created", receiver.url)
        for order_id in range(1, 41):
            sim.order(order_id)
        assert (await sim.drain())["drained"]
        attempts = await sim.attempts()
        counts = (await sim.client.get("/__sim/webhooks")).json()["counts"]
    by_status = Counter(a["status"] for a in attempts)
    assert counts["delivered"] == by_status["delivered"] == len(receiver.calls)
    assert counts["dropped"] == by_status["dropped"] > 0
    assert counts["duplicate"] == sum(1 for a in attempts if a["duplicate"]) > 0
    assert 0 < counts["reordered"] <= len(attempts)


# -- admin controls -------------------------------------------------------------------------


async def test_pause_resume_drain_and_reset() -> None:
    async with RecordingReceiver() as receiver, simulator() as sim:
        hook = await sim.hook("store/order/created", receiver.url)
        assert (await sim.client.post("/__sim/webhooks/pause")).json() == {"paused": True}
        sim.order(1)
        sim.order(2)
        stalled = await sim.drain(timeout=0.2)
        assert stalled["drained"] is False
        assert stalled["pending"] >= 1
        assert receiver.calls == []
        assert (await sim.client.post("/__sim/webhooks/resume")).json() == {"paused": False}
        assert await sim.drain() == {"drained": True, "pending": 0}
        assert sorted(order_ids(receiver.calls)) == [1, 2]
        assert len(await sim.attempts(status="delivered", hook_id=hook["id"])) == 2

        await sim.switches(duplicate_probability=1.0)
        assert (await sim.client.post("/__sim/webhooks/reset")).status_code == 200
        assert await sim.attempts() == []
        switches = (await sim.client.get("/__sim/webhooks/switches")).json()
        assert switches["duplicate_probability"] == 0.0
        assert len((await sim.client.get(HOOKS, headers=AUTH)).json()["data"]) == 1
        reset = await sim.client.post("/__sim/webhooks/reset", json={"hooks": True})
        assert reset.json() == {"reset": True, "hooks_deleted": True}
        assert (await sim.client.get(HOOKS, headers=AUTH)).json()["data"] == []
