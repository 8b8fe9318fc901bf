"""`python -m local.demo` (`make demo`): see the package's docstring."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from local.demo import seed
from local.demo.judge import (
    JOURNAL_ORDERS,
    BigCommerceSide,
    DataverseSide,
    Verdict,
    journal,
    judge,
    read_bigcommerce,
    read_dataverse,
)
from local.demo.report import Bars, percentile, summary, write_json
from local.demo.scenario import Scenario, Tally, cast
from local.demo.settle import NotSettled, Snapshot, parked_count, settle
from local.demo.stack import Stack, new_demo_token, start_host
from local.demo.traffic import Traffic
from local.stack.host_process import REPO, HostProcess, clean_environ
from shared.messaging.message import InboundMessage
from shared.messaging.queues import ORDER_PARKED

FLOW_FILE: Final = Path(__file__).with_name("flow.yaml")
CONNECTOR_FAILURE_EXEMPT: Final = frozenset({"hold"})  # park reasons that are not failures


@dataclass(frozen=True)
class Options:
    orders: int
    report: Path
    duplicates: float
    seed: int
    timeout: float


def main(argv: list[str] | None = None) -> int:
    from local.demo import __doc__ as about

    parser = argparse.ArgumentParser(
        prog="python -m local.demo",
        description=about,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--orders", type=int, default=int(os.environ.get("ORDERS") or "50"))
    parser.add_argument(
        "--report", type=Path, default=Path(os.environ.get("REPORT") or "demo-report.json")
    )
    parser.add_argument(
        "--duplicates", type=float, default=0.2, help="share of webhooks delivered twice"
    )
    parser.add_argument("--seed", type=int, default=7, help="seeds every choice the demo makes")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds each wave may take to settle (default: 120 + 1 per order)",
    )
    args = parser.parse_args(argv)
    if args.orders < 1:
        parser.error("--orders must be at least 1")
    timeout = args.timeout if args.timeout is not None else 120 + 1.0 * args.orders
    return run(Options(args.orders, args.report, args.duplicates, args.seed, timeout))


def run(options: Options) -> int:
    started = time.monotonic()
    state_dir = Path(os.environ.get("LOCAL_STATE_DIR") or REPO / ".local" / "demo")
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True)
    mapping = seed.write_mapping(state_dir / "mapping.yaml")
    token = new_demo_token()
    print(f"Starting the local stack (logs in {state_dir / 'host.log'}) ...", file=sys.stderr)
    with (state_dir / "host.log").open("w") as log:
        host = start_host(
            state_dir, log, flow_file=FLOW_FILE, mapping_file=mapping, demo_token=token
        )
        try:
            report, problems = asyncio.run(_demo(host, token, options, started))
        finally:
            host.stop()
    report["seconds"] = round(time.monotonic() - started, 1)
    report["problems"] = problems
    write_json(options.report, report)
    print()
    print(summary(report))
    for problem in problems:
        print(f"  problem: {problem}", file=sys.stderr)
    verdict = "PASS" if not problems else "FAIL"
    print(f"\n{verdict}: report written to {options.report}")
    return 0 if not problems else 1


async def _demo(
    host: HostProcess, token: str, options: Options, started: float
) -> tuple[dict[str, Any], list[str]]:
    stack = Stack(host, token)
    bars = Bars()
    try:
        products = await seed.seed_dataverse(stack)
        await seed.register_webhooks(stack)
        await seed.switch_on_bad_network(stack, options.duplicates, options.seed)
        bars.note(
            f"Dataverse has {products} products (not {seed.MISSING_SKU}); creating "
            f"{options.orders} orders; the store delivers ~{options.duplicates:.0%} of webhooks "
            "twice and out of order; the warehouse ships in Dataverse, the merchant cancels and "
            "refunds ..."
        )
        traffic = Traffic(stack)
        await traffic.start()

        def warehouse_bar(tally: Tally) -> None:
            seen = len(tally.fulfillments_seen)
            if seen:
                bars.update("fulfillment orders", len(tally.fulfillments_done), seen)

        scenario = Scenario(stack, options.seed, warehouse_bar)
        stop = asyncio.Event()
        floor = asyncio.create_task(scenario.run(stop))
        created = await seed.create_orders(
            stack,
            options.orders,
            options.seed,
            lambda done: bars.update("orders created", done, options.orders),
        )
        scenario.add(cast([c.order_id for c in created], options.seed))
        problems: list[str] = []
        held: set[int] = set()
        replay_output = ""

        def settling_bar(agreeing: int, total: int) -> None:
            bars.update("orders settled", agreeing, total)

        try:
            first = await settle(stack, scenario, options.timeout, settling_bar)
            held = _held_for(first, seed.MISSING_SKU)
            bars.note(
                f"First wave settled after {time.monotonic() - started:.0f} s: {len(held)} "
                f"orders held for the missing product {seed.MISSING_SKU}. The operator creates "
                "it and runs `python -m cli orders replay --all` ..."
            )
            await seed.create_product(stack, seed.MISSING_SKU)
            if parked_count(stack):
                replay_output = await _replay(stack)
            await settle(stack, scenario, options.timeout, settling_bar)
        except NotSettled as exc:
            problems.append(str(exc))
        finally:
            stop.set()
            await floor
            bars.close()
        await traffic.stop()
        order_ids = [c.order_id for c in created]
        bigcommerce = await read_bigcommerce(stack, order_ids)
        dataverse = await read_dataverse(stack)
        verdict = judge(bigcommerce, dataverse)
        parked = _parked(stack, dataverse)
        report = await _report(
            stack,
            options,
            created,
            (bigcommerce, dataverse, verdict),
            traffic,
            scenario,
            parked,
            held,
        )
        report["replay"] = _replay_figures(held, dataverse, replay_output)
        problems += _problems(report, verdict, parked, scenario.tally)
        return report, problems
    finally:
        await stack.aclose()


def _held_for(snapshot: Snapshot, sku: str) -> set[int]:
    return {int(r[0]) for r in snapshot.salesorders if r[4] and f"'{sku}'" in str(r[4])}


async def _replay(stack: Stack) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "orders",
        "replay",
        "--all",
        "--broker",
        str(stack.broker_path),
        "--max",
        "100000",
        cwd=REPO,
        env={**clean_environ(), "PYTHONUNBUFFERED": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace").strip()
    if process.returncode != 0:
        raise NotSettled(f"the replay failed ({process.returncode}): {text}")
    return text


def _parked(stack: Stack, dataverse: DataverseSide) -> list[dict[str, Any]]:
    """Still parked (on order-parked) or held (a hold reason on an open salesorder)."""
    found: dict[int, dict[str, Any]] = {}
    for message in _peek_all(stack, ORDER_PARKED.name):
        properties = message.application_properties
        order = properties.get("order_id")
        order_id = int(order) if isinstance(order, int | str) and str(order).isdigit() else 0
        reason = f"{properties.get('park_reason')}: {properties.get('park_description')}"
        found.setdefault(
            order_id,
            {
                "order": order_id,
                "reason": reason,
                "where": "order-parked",
                "category": str(properties.get("park_reason")),
            },
        )
    for row in dataverse.salesorders:
        order_id = int(row["bciom_bcorderid"])
        hold = row.get("bciom_holdreason")
        if hold and row.get("statecode") == 0 and order_id not in found:
            found[order_id] = {"order": order_id, "reason": str(hold), "where": "held"}
    return [found[k] for k in sorted(found)]


def _peek_all(stack: Stack, queue: str) -> list[InboundMessage]:
    messages: list[InboundMessage] = []
    start = 0
    while page := stack.broker.peek(queue, max_messages=500, from_sequence=start):
        messages += page
        start = page[-1].sequence_number + 1
    return messages


async def _report(
    stack: Stack,
    options: Options,
    created: list[seed.CreatedOrder],
    sides: tuple[BigCommerceSide, DataverseSide, Verdict],
    traffic: Traffic,
    scenario: Scenario,
    parked: list[dict[str, Any]],
    held: set[int],
) -> dict[str, Any]:
    bigcommerce, dataverse, verdict = sides
    bc_calls, dv_calls = traffic.connector_bigcommerce(), traffic.connector_dataverse()
    orders = len(created)
    deliveries = (await stack.sim.get("/__sim/webhooks/deliveries")).json()["data"]
    delivered = [d for d in deliveries if d["status"] == "delivered"]
    failed = [p["order"] for p in parked if _connector_failure(p)]
    wrong = sorted(set(verdict.mismatched_orders) | set(failed))[:JOURNAL_ORDERS]
    journals = {str(order_id): await journal(stack, order_id) for order_id in wrong}
    tally = scenario.tally
    return {
        "orders": orders,
        "lines": verdict.lines,
        "synced": len(verdict.synced_order_ids),
        **verdict.figures,
        "mismatches": verdict.mismatches,
        "parked": parked,
        "final_states": dict(verdict.final_states),
        "scripts": dict(Counter(str(p.script) for p in scenario.plans.values())),
        "warehouse": {
            "shipped": tally.shipped,
            "short_shipped": tally.short_shipped,
            "held_back": tally.held_back,
        },
        "merchant": {
            "cancelled_in_bigcommerce": tally.cancelled_in_bigcommerce,
            "cancelled_in_dataverse": tally.cancelled_in_dataverse,
            "refunds": dict(tally.refunds),
        },
        "demo_errors": tally.errors,
        "fulfillment_orders": verdict.fulfillments,
        "split_orders": verdict.split_orders,
        "shipments": verdict.shipments,
        "refunds": verdict.refunds,
        "webhooks": {
            "delivered": len(delivered),
            "duplicates": sum(1 for d in delivered if d.get("duplicate")),
            "failed": sum(1 for d in deliveries if d["status"] in ("failed", "blocked")),
        },
        "bigcommerce_requests": sum(bc_calls.values()),
        "dataverse_requests": sum(dv_calls.values()),
        "bigcommerce_requests_per_order": round(sum(bc_calls.values()) / orders, 1),
        "dataverse_requests_per_order": round(sum(dv_calls.values()) / orders, 1),
        "bigcommerce_requests_by_kind": dict(bc_calls.most_common()),
        "dataverse_requests_by_kind": dict(dv_calls.most_common()),
        "request_log_gaps": traffic.gaps,
        "latency_ms": _latency(
            created, bigcommerce, dataverse, held | {p["order"] for p in parked}
        ),
        "journals": journals,
        "seed": options.seed,
        "duplicate_share": options.duplicates,
    }


def _latency(
    created: list[seed.CreatedOrder],
    bigcommerce: BigCommerceSide,
    dataverse: DataverseSide,
    excluded: set[int],
) -> dict[str, Any]:
    """From the order's creation to its first fulfillment order in Dataverse, for the orders
    released without an operator (`excluded`: those held or parked at some point). Creation:
    the simulator's `date_created` (whole seconds), or when the demo asked for the order if that
    is later. Dataverse's `createdon` is whole seconds too: the middle of its second is taken."""
    first: dict[int, float] = {}
    for row in dataverse.fulfillments:
        at = _epoch(row.get("createdon"))
        order_id = int(row["bciom_bcorderid"])
        if at is not None and (order_id not in first or at < first[order_id]):
            first[order_id] = at
    samples: list[float] = []
    for order in created:
        if order.order_id in excluded or order.order_id not in first:
            continue
        bundle = bigcommerce.bundles.get(order.order_id)
        born = order.asked_at
        if bundle is not None:
            born = max(born, bundle.order.date_created.timestamp())
        samples.append(max(0.0, (first[order.order_id] + 0.5 - born) * 1000))
    p50, p99 = percentile(samples, 0.50), percentile(samples, 0.99)
    return {
        "p50": None if p50 is None else round(p50),
        "p99": None if p99 is None else round(p99),
        "orders": len(samples),
        "resolution_ms": 1000,
    }


def _epoch(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def _replay_figures(held: set[int], dataverse: DataverseSide, output: str) -> dict[str, Any]:
    rows = {int(r["bciom_bcorderid"]): r for r in dataverse.salesorders}
    still = sorted(
        i for i in held if seed.MISSING_SKU in str(rows.get(i, {}).get("bciom_holdreason") or "")
    )
    return {
        "missing_sku": seed.MISSING_SKU,
        "held_for_missing_product": len(held),
        "released": len(held) - len(still),
        "still_held": still,
        "output": output.splitlines()[:1],
    }


def _connector_failure(parked: dict[str, Any]) -> bool:
    """Parked for something other than a hold: the connector failed on the order."""
    return parked.get("category") not in (None, *CONNECTOR_FAILURE_EXEMPT)


def _problems(
    report: dict[str, Any], verdict: Verdict, parked: list[dict[str, Any]], tally: Tally
) -> list[str]:
    problems: list[str] = []
    if report["lost"]:
        problems.append(f"{report['lost']} orders never reached Dataverse: {report['lost_orders']}")
    for name in ("duplicate_records", "duplicate_shipments", "duplicate_refunds"):
        if report[name]:
            problems.append(f"{report[name]} {name.replace('_', ' ')}")
    if verdict.mismatches:
        shown = "; ".join(
            f"order {m['order']} {m['what']}: BigCommerce {m['bigcommerce']}, "
            f"Dataverse {m['dataverse']}"
            for m in verdict.mismatches[:5]
        )
        more = len(verdict.mismatches) - 5
        problems.append(
            f"{len(verdict.mismatches)} state mismatches: {shown}"
            + (f"; and {more} more" if more > 0 else "")
        )
    failures = [p for p in parked if _connector_failure(p)]
    if failures:
        shown = "; ".join(f"order {p['order']}: {p['reason']}" for p in failures[:5])
        problems.append(f"{len(failures)} orders parked by a connector failure: {shown}")
    still = report["replay"]["still_held"]
    if still:
        problems.append(f"orders still held after the fix and the replay: {still}")
    if tally.errors:
        count = len(tally.errors)
        problems.append(f"the demo's own calls failed {count} times: {tally.errors[:3]}")
    return problems


if __name__ == "__main__":
    sys.exit(main())
