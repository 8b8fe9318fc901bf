"""`make demo`: the connector's main job on the embedded default, end to end on this machine.

The local stack starts (function host, broker, BigCommerce store simulator, Dataverse stand-in).
The demo registers the store's webhooks through the connector's own BigCommerce client, pointing
them at the webhook function, and tells the simulator to deliver as a real network does: some
events twice, some out of order. It then creates ORDERS realistic orders in the simulated store
and moves some of them on as a merchant would, waits until every webhook is delivered, and proves
from the broker that every delivered event was queued exactly once, one session per order, and
that refused requests queued nothing. Orchestration through Dataverse (issue 6) extends this run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from local.broker import LocalBroker
from local.stack.host_process import HostProcess
from local.stack.plan import LOCAL_STORE_HASH
from shared.bigcommerce.registry import BigCommerceClients
from shared.bigcommerce.requests import HookCreate
from shared.config import StoreSettings
from shared.messaging.message import InboundMessage
from shared.messaging.queues import ORDER_EVENTS

REPO = Path(__file__).resolve().parents[1]
SCOPES = ("store/order/*", "store/shipment/*")
AWAITING_FULFILLMENT = 11
PORT_SETTINGS = ("LOCAL_FUNCTIONS_PORT", "LOCAL_BIGCOMMERCE_PORT", "LOCAL_DATAVERSE_PORT")


@dataclass(frozen=True)
class Outcome:
    report: dict[str, Any]
    ok: bool
    problems: list[str]


def _bar(label: str, done: int, total: int, width: int = 30) -> None:
    filled = int(width * done / max(total, 1))
    line = f"\r  {label:<24} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
    print(line, end="" if done < total else "\n", file=sys.stderr, flush=True)


async def _register_hooks(host: HostProcess) -> None:
    secrets = host.secrets()
    store = StoreSettings(
        store_hash=LOCAL_STORE_HASH,
        access_token=SecretStr(secrets["access_token"]),
        webhook_secret=SecretStr(secrets["webhook_secret"]),
    )
    clients = BigCommerceClients([store], base_urls={LOCAL_STORE_HASH: host.bigcommerce_url})
    try:
        client = clients.get(LOCAL_STORE_HASH)
        headers = {
            "x-functions-key": host.keys()["default"],
            "X-Webhook-Secret": secrets["webhook_secret"],
        }
        for scope in SCOPES:
            await client.create_hook(
                HookCreate(
                    scope=scope,
                    destination=f"{host.url}/api/webhooks/bigcommerce",
                    headers=headers,
                )
            )
    finally:
        await clients.aclose()


async def _refusals(host: HostProcess) -> list[int]:
    """Requests BigCommerce would never send: each must be refused and queue nothing."""
    key = host.keys()["default"]
    body = json.dumps(
        {
            "scope": "store/order/created",
            "store_id": "1",
            "data": {"type": "order", "id": 1},
            "hash": "x",
            "created_at": 1,
            "producer": f"stores/{LOCAL_STORE_HASH}",
        }
    ).encode()
    url = f"{host.url}/api/webhooks/bigcommerce"
    base = {"content-type": "application/json", "x-functions-key": key}
    cases = [
        (body, {**base, "x-webhook-secret": "wrong"}),
        (body.replace(LOCAL_STORE_HASH.encode(), b"unknown1"), base),
        (b"{not json", base),
        (body, {**base, "content-type": "text/plain"}),
    ]
    async with httpx.AsyncClient(timeout=10) as client:
        return [(await client.post(url, content=b, headers=h)).status_code for b, h in cases]


async def _drive(
    host: HostProcess, orders: int, duplicate_share: float, seed: int
) -> dict[str, Any]:
    await _register_hooks(host)
    async with httpx.AsyncClient(base_url=host.bigcommerce_url, timeout=120) as sim:
        switches = {"duplicate_probability": duplicate_share, "reorder_window": 8, "seed": seed}
        (await sim.put("/__sim/webhooks/switches", json=switches)).raise_for_status()
        started = time.perf_counter()
        created: list[int] = []
        while len(created) < orders:
            batch = min(50, orders - len(created))
            response = await sim.post(
                f"/__sim/stores/{LOCAL_STORE_HASH}/orders/generate",
                json={"count": batch, "seed": seed + len(created), "incomplete_share": 0},
            )
            response.raise_for_status()
            created += response.json()["ids"]
            _bar("orders created", len(created), orders)
        moved = created[::3]
        for n, order_id in enumerate(moved, 1):
            response = await sim.post(
                f"/__sim/stores/{LOCAL_STORE_HASH}/orders/{order_id}/status",
                json={"status_id": AWAITING_FULFILLMENT},
            )
            response.raise_for_status()
            _bar("merchant status changes", n, len(moved))
        print("  waiting for every webhook to be delivered ...", file=sys.stderr, flush=True)
        (await sim.post("/__sim/webhooks/drain", params={"timeout": "120"})).raise_for_status()
        elapsed = time.perf_counter() - started
        deliveries = (await sim.get("/__sim/webhooks/deliveries")).json()["data"]
    return {
        "created": created,
        "status_changes": len(moved),
        "deliveries": deliveries,
        "seconds": elapsed,
        "refusals": await _refusals(host),
    }


def _queued(broker: LocalBroker) -> list[InboundMessage]:
    messages: list[InboundMessage] = []
    start = 0
    while page := broker.peek(ORDER_EVENTS.name, max_messages=500, from_sequence=start):
        messages += page
        start = page[-1].sequence_number + 1
    return messages


def _judge(orders: int, run: dict[str, Any], messages: list[InboundMessage]) -> Outcome:
    deliveries = run["deliveries"]
    delivered = [d for d in deliveries if d["status"] == "delivered"]
    events = {(d["scope"], d["event_hash"]) for d in delivered}
    attempts = Counter((d["scope"], d["event_hash"]) for d in deliveries)
    queued = []
    for message in messages:
        event = json.loads(message.body)["event"]
        queued.append((event["scope"], event["hash"]))
    lost = events - set(queued)
    duplicates = len(queued) - len(set(queued))
    strays = set(queued) - events
    sessions = {m.session_id for m in messages if m.session_id}
    refused = run["refusals"]
    failed = [d for d in deliveries if d["status"] in ("failed", "blocked")]
    report: dict[str, Any] = {
        "stage": "ingress",
        "orders": orders,
        "events": len(events),
        "webhooks_delivered": len(delivered),
        "duplicate_deliveries": sum(1 for d in delivered if d["duplicate"]),
        "redelivered_events": sum(1 for n in attempts.values() if n > 1),
        "failed_deliveries": len(failed),
        "bad_requests": len(refused),
        "queued": len(messages),
        "lost": len(lost),
        "duplicate_records": duplicates,
        "unexpected_messages": len(strays),
        "sessions": len(sessions),
        "seconds": round(run["seconds"], 3),
    }
    problems = []
    if lost:
        problems.append(f"{len(lost)} delivered events were not queued, e.g. {sorted(lost)[:3]}")
    if duplicates:
        problems.append(f"{duplicates} events were queued more than once")
    if strays:
        problems.append(f"{len(strays)} queued messages match no delivered event")
    if failed:
        problems.append(f"{len(failed)} deliveries failed: the ingress refused a genuine webhook")
    if refused != [401, 403, 400, 415]:
        problems.append(f"bad requests got {refused}, expected [401, 403, 400, 415]")
    if len(sessions) != orders:
        problems.append(f"{len(sessions)} sessions for {orders} orders")
    return Outcome(report, not problems, problems)


def run(orders: int, report_path: Path, duplicate_share: float, seed: int) -> int:
    state_dir = Path(os.environ.get("LOCAL_STATE_DIR") or REPO / ".local" / "demo")
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True)
    print(
        f"Starting the local stack (logs in {state_dir / 'host.log'}) ...",
        file=sys.stderr,
    )
    with (state_dir / "host.log").open("w") as log:
        ports = {k: v for k, v in os.environ.items() if k in PORT_SETTINGS}
        host = HostProcess(
            state_dir, env={"LOG_LEVEL": "WARNING", **ports}, free_ports=False, log=log
        )
        try:
            host.wait_ready()
            print(
                f"Registering webhooks, creating {orders} orders in the store simulator; it "
                f"delivers ~{duplicate_share:.0%} of events twice and reorders them ...",
                file=sys.stderr,
            )
            result = asyncio.run(_drive(host, orders, duplicate_share, seed))
        finally:
            host.stop()
    outcome = _judge(orders, result, _queued(LocalBroker(state_dir / "broker.sqlite3")))
    report_path.write_text(json.dumps(outcome.report, indent=2) + "\n")
    r = outcome.report
    rows = [
        ("orders created in the store", r["orders"]),
        ("merchant status changes", result["status_changes"]),
        ("distinct webhook events", r["events"]),
        ("deliveries (duplicates included)", r["webhooks_delivered"]),
        ("  of which duplicates", r["duplicate_deliveries"]),
        ("bad requests refused, nothing queued", r["bad_requests"]),
        ("messages queued", r["queued"]),
        ("sessions (one per order)", r["sessions"]),
        ("lost", r["lost"]),
        ("queued twice", r["duplicate_records"]),
        ("seconds", r["seconds"]),
    ]
    print()
    for label, value in rows:
        print(f"  {label:<40} {value}")
    for problem in outcome.problems:
        print(f"  problem: {problem}", file=sys.stderr)
    print(f"\n{'PASS' if outcome.ok else 'FAIL'}: report written to {report_path}")
    return 0 if outcome.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.demo", description=__doc__)
    parser.add_argument("--orders", type=int, default=int(os.environ.get("ORDERS", "50")))
    parser.add_argument(
        "--report", type=Path, default=Path(os.environ.get("REPORT") or "demo-report.json")
    )
    parser.add_argument(
        "--duplicates", type=float, default=0.2, help="share of webhooks delivered twice"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.orders < 1:
        parser.error("--orders must be at least 1")
    return run(args.orders, args.report, args.duplicates, args.seed)


if __name__ == "__main__":
    sys.exit(main())
