"""Reconciliation end to end: webhooks BigCommerce never delivered are recovered by a sweep.

The real stack on this machine (`python -m local.host` on the embedded default: function host,
local broker, store simulator, Dataverse stand-in), with the lifecycle tests' flow plus the
`reconcile` trigger on every step (as the default flow has it). The store's network drops every
webhook delivery (the simulator's `drop_probability` switch: an event BigCommerce silently never
delivers, which only a poll of the Orders API can recover). Orders placed then never reach
Dataverse, until the operator runs `python -m cli reconcile` (a subprocess, with the stack's
settings, as an operator runs it): the sweep finds them missing and enqueues them with trigger
`reconcile`; the lifecycle runner takes them in and releases them. A second run finds every
order present and current: coverage back to 100%, nothing enqueued. The last result is stored in
the stack's state file for the doctor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pytest

from local.state import SqliteStateStore, state_db_path
from shared.handlers.reconcile import LEASE_PREFIX
from shared.reconciliation.metrics import last_result
from shared.state import lease
from tests.support.lifecycle import (
    RECONCILE_FLOW,
    STORE,
    LifecycleStack,
    Sides,
    eventually,
    open_sides,
    prepared,
    start_stack,
)
from tests.support.operator import run_json, store_metrics

pytestmark = pytest.mark.e2e

# The host's own timer must not sweep during the test (once a year, on 1 January).
RARELY: Final = "0 0 0 1 1 *"
DROP_EVERYTHING: Final = {"drop_probability": 1.0, "duplicate_probability": 0.0}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LifecycleStack]:
    tmp = tmp_path_factory.mktemp("reconcile")
    running = start_stack(tmp, {"RECONCILE_SCHEDULE": RARELY}, flow=RECONCILE_FLOW)
    with prepared(running) as prepared_stack:
        yield prepared_stack


@pytest.fixture
async def sides(stack: LifecycleStack) -> AsyncIterator[Sides]:
    opened = await open_sides(stack)
    try:
        yield opened
    finally:
        await opened.put_switches(drop_probability=0.0)
        await opened.aclose()


def reconcile(stack: LifecycleStack, *arguments: str) -> tuple[int, dict[str, Any], str]:
    """`python -m cli reconcile --json ...`: exit code, the JSON report, stderr."""
    return run_json(stack, "reconcile", *arguments)


async def test_orders_whose_webhooks_were_dropped_reach_dataverse_after_a_sweep(
    stack: LifecycleStack, sides: Sides
) -> None:
    await sides.put_switches(**DROP_EVERYTHING)
    orders = [
        await sides.create_order([("S-ORAN", 1)]),
        await sides.create_order([("TWB", 2), ("DPB", 1)]),
        await sides.create_order([("OCG", 1)], customer_id=0, email="late.buyer@example.com"),
    ]
    await sides.settle()
    dropped = await sides.deliveries(store_hash=STORE, status="dropped")
    assert dropped, "the simulator dropped no delivery"
    for order_id in orders:
        assert await sides.salesorder(order_id) is None, "a webhook got through"

    code, report, err = reconcile(stack, "--store", STORE, "--skip-hooks")
    assert code == 0, (report, err)
    first = store_metrics(report)
    assert first["outcome"] == "ok", first
    assert first["orders_missing"] >= len(orders)
    assert first["orders_enqueued"] >= len(orders)
    assert first["coverage"] < 1.0
    assert first["oldest_unsynced_seconds"] > 0

    async def all_released() -> bool:
        for order_id in orders:
            order = await sides.salesorder(order_id)
            if order is None or order["bciom_lifecycle"] != "released":
                return False
            if not await sides.fulfillments(order_id):
                return False
        return True

    await eventually(all_released, what="the reconciled orders released in Dataverse")
    await sides.settle()
    for order_id in orders:
        events = [e for e in await sides.journal(order_id) if e.get("bciom_kind") == "event"]
        assert any("reconcile" in str(e.get("bciom_name")) for e in events), events

    code, report, err = reconcile(stack, "--skip-hooks")
    assert code == 0, (report, err)
    second = store_metrics(report)
    assert second["orders_checked"] >= len(orders)
    assert (second["orders_missing"], second["orders_stale"]) == (0, 0)
    assert second["coverage"] == 1.0
    assert second["orders_enqueued"] == 0

    state = SqliteStateStore(state_db_path({}, Path(stack.state_dir)))
    try:
        stored = await last_result(state, STORE)
    finally:
        await state.close()
    assert stored is not None
    assert stored["coverage"] == 1.0
    assert stored["watermarks"]["orders"]


async def test_a_sweep_of_a_store_whose_lease_is_held_is_skipped(stack: LifecycleStack) -> None:
    """Another instance (here: this test) holds the store's sweep lease: the CLI skips it."""
    state = SqliteStateStore(state_db_path({}, Path(stack.state_dir)))
    try:
        held = await lease.acquire(
            state, LEASE_PREFIX + STORE, "another-instance", timedelta(minutes=5), _now
        )
        assert held is not None
        try:
            code, report, _ = reconcile(stack, "--skip-hooks")
        finally:
            await lease.release(state, held)
    finally:
        await state.close()
    assert code == 1
    (outcome,) = report["stores"]
    assert outcome["status"] == "skipped"
    assert "holds the lease" in outcome["reason"]


def _now() -> datetime:
    return datetime.now(UTC)


def backfill(stack: LifecycleStack, orders: list[int], *extra: str) -> dict[str, Any]:
    """`python -m cli backfill --store S --min-id .. --max-id .. --json ...`: its report."""
    span = ("--min-id", str(min(orders)), "--max-id", str(max(orders)))
    code, report, err = run_json(stack, "backfill", "--store", STORE, *span, *extra)
    assert code == 0, (report, err)
    assert err.count("ETA") == report["pages"], err  # a progress line per page
    return report


async def test_a_backfill_dry_run_changes_nothing_and_a_rerun_resumes_from_its_checkpoint(
    stack: LifecycleStack, sides: Sides
) -> None:
    await sides.put_switches(**DROP_EVERYTHING)
    orders = [
        await sides.create_order([("OCG", 1)]),
        await sides.create_order([("S-ORAN", 2)]),
    ]
    await sides.settle()
    await sides.put_switches(drop_probability=0.0)

    dry = backfill(stack, orders, "--dry-run")
    assert dry["dry_run"] is True
    assert sorted(p["order_id"] for p in dry["planned"]) == orders
    assert all(p["verdict"] == "missing" for p in dry["planned"])
    assert sides.busy() == {}, "a dry run enqueued something"
    await sides.settle()
    for order_id in orders:
        assert await sides.salesorder(order_id) is None, "a dry run changed Dataverse"

    done = backfill(stack, orders)
    assert (done["resumed"], done["checked"], done["enqueued"]) == (False, 2, 2)

    async def all_released() -> bool:
        for order_id in orders:
            order = await sides.salesorder(order_id)
            if order is None or order["bciom_lifecycle"] != "released":
                return False
        return True

    await eventually(all_released, what="the backfilled orders released in Dataverse")
    await sides.settle()
    versions = {order_id: await sides.business_versions(order_id) for order_id in orders}

    # The same range again continues after the checkpoint: nothing left to read or send.
    again = backfill(stack, orders)
    assert (again["resumed"], again["pages"], again["enqueued"]) == (True, 0, 2)
    assert sides.busy() == {}
    # From the start: every order is read again, found current, and nothing is sent.
    restarted = backfill(stack, orders, "--restart")
    assert (restarted["resumed"], restarted["checked"], restarted["enqueued"]) == (False, 2, 0)
    await sides.settle()
    for order_id in orders:
        assert await sides.business_versions(order_id) == versions[order_id]
