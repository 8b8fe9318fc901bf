"""`make demo`: the connector's main job on the embedded default, end to end on this machine.

Today that job is the ingress: the local stack starts (function host, broker, stand-ins),
BigCommerce-style webhooks for ORDERS orders are delivered to the webhook function with
duplicates and out of order, as BigCommerce does, and the demo proves from the broker that every
event was queued exactly once, in one session per order, and that refused requests queued
nothing. Orchestration (issue 6) extends this run through Dataverse and back.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks import Webhook

from local.broker import LocalBroker
from local.stack.host_process import HostProcess
from local.stack.plan import LOCAL_STORE_HASH
from shared.messaging.message import InboundMessage
from shared.messaging.queues import BIGCOMMERCE_EVENTS

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Delivery:
    body: bytes
    event_key: str
    order_id: int
    expected_status: int


def _events(orders: int, rng: random.Random, first_order: int = 100) -> list[Delivery]:
    events: list[Delivery] = []
    created = int(time.time())
    for n in range(orders):
        order_id = first_order + n
        scopes: list[tuple[str, dict[str, Any]]] = [
            ("store/order/created", {"type": "order", "id": order_id}),
            (
                "store/order/statusUpdated",
                {
                    "type": "order",
                    "id": order_id,
                    "status": {"previous_status_id": 0, "new_status_id": 11},
                },
            ),
            ("store/order/updated", {"type": "order", "id": order_id}),
        ]
        if n % 3 == 0:
            scopes.append(
                (
                    "store/shipment/created",
                    {"type": "shipment", "id": 1000 + n, "orderId": order_id},
                )
            )
        if n % 5 == 0:
            scopes.append(
                (
                    "store/order/refund/created",
                    {"type": "order", "id": order_id, "refund": {"refund_id": 500 + n}},
                )
            )
        for i, (scope, data) in enumerate(scopes):
            payload = {
                "scope": scope,
                "store_id": "1001",
                "data": data,
                "hash": f"{order_id:08x}{i:04x}{rng.getrandbits(64):016x}",
                "created_at": created + i,
                "producer": f"stores/{LOCAL_STORE_HASH}",
            }
            key = f"{scope}|{payload['hash']}"
            events.append(Delivery(json.dumps(payload).encode(), key, order_id, 200))
    return events


def _deliveries(
    events: list[Delivery], duplicate_share: float, rng: random.Random
) -> list[Delivery]:
    deliveries = list(events)
    deliveries += [e for e in events if rng.random() < duplicate_share]
    rng.shuffle(deliveries)  # BigCommerce promises no order
    return deliveries


def _refusals(rng: random.Random) -> list[tuple[Delivery, dict[str, str]]]:
    good = json.dumps(
        {
            "scope": "store/order/created",
            "store_id": "1001",
            "data": {"type": "order", "id": 1},
            "hash": "x",
            "created_at": 1,
            "producer": f"stores/{LOCAL_STORE_HASH}",
        }
    ).encode()
    other_store = good.replace(LOCAL_STORE_HASH.encode(), b"unknown1")
    return [
        (Delivery(good, "", 0, 401), {"x-webhook-secret": "wrong"}),
        (Delivery(other_store, "", 0, 403), {}),
        (Delivery(b"{not json", "", 0, 400), {}),
        (Delivery(good, "", 0, 415), {"content-type": "text/plain"}),
    ]


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = int(width * done / max(total, 1))
    return f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} webhooks"


async def _deliver(
    url: str,
    key: str,
    secrets: dict[str, str],
    batch: list[tuple[Delivery, dict[str, str]]],
    concurrency: int,
) -> tuple[list[tuple[Delivery, int]], list[float]]:
    signer = Webhook(secrets["client_secret"].encode())
    results: list[tuple[Delivery, int]] = []
    latencies: list[float] = []
    pending = iter(batch)
    lock = asyncio.Lock()

    async def worker(client: httpx.AsyncClient) -> None:
        while True:
            async with lock:
                item = next(pending, None)
            if item is None:
                return
            delivery, extra = item
            msg_id = f"msg_{hashlib.sha256(delivery.body).hexdigest()[:24]}"
            now = time.time()
            headers = {
                "content-type": "application/json",
                "x-functions-key": key,
                "x-webhook-secret": secrets["webhook_secret"],
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(now)),
                "webhook-signature": signer.sign(
                    msg_id,
                    datetime.fromtimestamp(now, UTC),
                    delivery.body.decode("utf-8", "replace"),
                ),
                **extra,
            }
            started = time.perf_counter()
            response = await client.post(url, content=delivery.body, headers=headers)
            latencies.append((time.perf_counter() - started) * 1000)
            results.append((delivery, response.status_code))
            if len(results) % 10 == 0 or len(results) == len(batch):
                print(_bar(len(results), len(batch)), end="", file=sys.stderr, flush=True)

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    print(file=sys.stderr)
    return results, latencies


def _all_messages(broker: LocalBroker) -> list[InboundMessage]:
    messages: list[InboundMessage] = []
    start = 0
    while True:
        page = broker.peek(BIGCOMMERCE_EVENTS.name, max_messages=500, from_sequence=start)
        if not page:
            return messages
        messages += page
        start = page[-1].sequence_number + 1


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(orders: int, report_path: Path, duplicate_share: float, seed: int) -> int:
    state_dir = REPO / ".local" / "demo"
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True)
    rng = random.Random(seed)
    print(f"Starting the local stack (state in {state_dir.relative_to(REPO)}) ...", file=sys.stderr)
    log = (state_dir / "host.log").open("w")
    host = HostProcess(state_dir, env={"LOG_LEVEL": "WARNING"}, free_ports=False, log=log)
    try:
        host.wait_ready()
        keys = host.keys()
        secrets = host.secrets()
        events = _events(orders, rng)
        deliveries = _deliveries(events, duplicate_share, rng)
        batch: list[tuple[Delivery, dict[str, str]]] = [(d, {}) for d in deliveries]
        batch += _refusals(rng)
        rng.shuffle(batch)
        print(
            f"Delivering {len(deliveries)} webhooks for {orders} orders "
            f"({len(deliveries) - len(events)} duplicates, shuffled) "
            f"and {len(batch) - len(deliveries)} bad requests ...",
            file=sys.stderr,
        )
        url = f"http://127.0.0.1:{host.port}/api/webhooks/bigcommerce"
        started = time.perf_counter()
        results, latencies = asyncio.run(
            _deliver(url, keys["default"], secrets, batch, concurrency=16)
        )
        elapsed = time.perf_counter() - started
    finally:
        host.stop()
        log.close()

    unexpected = [
        (d.expected_status, status) for d, status in results if status != d.expected_status
    ]
    broker = LocalBroker(state_dir / "broker.sqlite3")
    messages = _all_messages(broker)
    queued_keys = []
    for message in messages:
        event = json.loads(message.body)["event"]
        queued_keys.append(f"{event['scope']}|{event['hash']}")
    expected_keys = {e.event_key for e in events}
    lost = sorted(expected_keys - set(queued_keys))
    duplicates = len(queued_keys) - len(set(queued_keys))
    strays = len(set(queued_keys) - expected_keys)
    sessions = {m.session_id for m in messages}
    report: dict[str, Any] = {
        "stage": "ingress",
        "orders": orders,
        "events": len(events),
        "webhooks_delivered": len(deliveries),
        "duplicate_deliveries": len(deliveries) - len(events),
        "bad_requests": len(batch) - len(deliveries),
        "queued": len(messages),
        "lost": len(lost),
        "duplicate_records": duplicates,
        "unexpected_messages": strays,
        "unexpected_statuses": len(unexpected),
        "sessions": len(sessions),
        "seconds": round(elapsed, 3),
        "webhooks_per_second": round(len(batch) / elapsed, 1) if elapsed else None,
        "latency_ms": {
            "p50": round(_percentile(latencies, 0.5), 2),
            "p99": round(_percentile(latencies, 0.99), 2),
        },
    }
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    ok = not lost and not duplicates and not strays and not unexpected and len(sessions) == orders
    rows = [
        ("orders", orders),
        ("distinct events", len(events)),
        ("webhooks delivered (with duplicates)", len(deliveries)),
        ("bad requests (refused, nothing queued)", report["bad_requests"]),
        ("messages queued", len(messages)),
        ("sessions (one per order)", len(sessions)),
        ("lost", len(lost)),
        ("duplicates queued", duplicates),
        (
            "ingress latency p50 / p99 ms",
            f"{report['latency_ms']['p50']} / {report['latency_ms']['p99']}",
        ),
    ]
    print()
    for label, value in rows:
        print(f"  {label:<42} {value}")
    print(f"\n{'PASS' if ok else 'FAIL'}: report written to {report_path}")
    if unexpected:
        print(f"unexpected statuses (expected, got): {unexpected[:5]}", file=sys.stderr)
    if lost:
        print(f"lost events: {lost[:5]}", file=sys.stderr)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.demo", description=__doc__)
    parser.add_argument("--orders", type=int, default=int(os.environ.get("ORDERS", "50")))
    parser.add_argument(
        "--report", type=Path, default=Path(os.environ.get("REPORT") or "demo-report.json")
    )
    parser.add_argument(
        "--duplicates", type=float, default=0.2, help="share of events BigCommerce delivers twice"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.orders < 1:
        parser.error("--orders must be at least 1")
    return run(args.orders, args.report, args.duplicates, args.seed)


if __name__ == "__main__":
    sys.exit(main())
