"""The figures of a lifecycle run (`lifecycle.py`), for the demo's report and the chaos run's,
and the problems that make either exit non-zero."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any, Final

from local.demo import seed
from local.demo.judge import JOURNAL_ORDERS, BigCommerceSide, DataverseSide, Verdict, journal
from local.demo.lifecycle import Outcome, RunOptions
from local.demo.report import percentile
from local.demo.stack import Stack

CONNECTOR_FAILURE_EXEMPT: Final = frozenset({"hold"})  # park reasons that are not failures


async def figures(stack: Stack, options: RunOptions, outcome: Outcome) -> dict[str, Any]:
    verdict, traffic, tally = outcome.verdict, outcome.traffic, outcome.scenario.tally
    bc_calls, dv_calls = traffic.connector_bigcommerce(), traffic.connector_dataverse()
    orders = len(outcome.created)
    deliveries = (await stack.sim.get("/__sim/webhooks/deliveries")).json()["data"]
    delivered = [d for d in deliveries if d["status"] == "delivered"]
    failed = [p["order"] for p in outcome.parked if connector_failure(p)]
    wrong = sorted(set(verdict.mismatched_orders) | set(failed))[:JOURNAL_ORDERS]
    journals = {str(order_id): await journal(stack, order_id) for order_id in wrong}
    return {
        "orders": orders,
        "lines": verdict.lines,
        "synced": len(verdict.synced_order_ids),
        **verdict.figures,
        "mismatches": verdict.mismatches,
        "parked": outcome.parked,
        "final_states": dict(verdict.final_states),
        "scripts": dict(Counter(str(p.script) for p in outcome.scenario.plans.values())),
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
            outcome.created,
            outcome.bigcommerce,
            outcome.dataverse,
            outcome.held | {p["order"] for p in outcome.parked},
        ),
        "journals": journals,
        "seed": options.seed,
        "duplicate_share": options.duplicates,
        "replay": _replay_figures(outcome.held, outcome.dataverse, outcome.replay_output),
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


def connector_failure(parked: dict[str, Any]) -> bool:
    """Parked for something other than a hold: the connector failed on the order."""
    return parked.get("category") not in (None, *CONNECTOR_FAILURE_EXEMPT)


def problems(report: dict[str, Any], outcome: Outcome) -> list[str]:
    """Why the run failed: what did not settle, anything lost, duplicated or mismatched, orders
    parked by a connector failure or still held after the replay, the demo's own failed calls."""
    verdict: Verdict = outcome.verdict
    found = list(outcome.problems)
    if report["lost"]:
        found.append(f"{report['lost']} orders never reached Dataverse: {report['lost_orders']}")
    for name in ("duplicate_records", "duplicate_shipments", "duplicate_refunds"):
        if report[name]:
            found.append(f"{report[name]} {name.replace('_', ' ')}")
    if verdict.mismatches:
        shown = "; ".join(
            f"order {m['order']} {m['what']}: BigCommerce {m['bigcommerce']}, "
            f"Dataverse {m['dataverse']}"
            for m in verdict.mismatches[:5]
        )
        more = len(verdict.mismatches) - 5
        found.append(
            f"{len(verdict.mismatches)} state mismatches: {shown}"
            + (f"; and {more} more" if more > 0 else "")
        )
    failures = [p for p in outcome.parked if connector_failure(p)]
    if failures:
        shown = "; ".join(f"order {p['order']}: {p['reason']}" for p in failures[:5])
        found.append(f"{len(failures)} orders parked by a connector failure: {shown}")
    still = report["replay"]["still_held"]
    if still:
        found.append(f"orders still held after the fix and the replay: {still}")
    errors = outcome.scenario.tally.errors
    if errors:
        found.append(f"the demo's own calls failed {len(errors)} times: {errors[:3]}")
    return found
