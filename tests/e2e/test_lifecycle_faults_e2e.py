"""The order lifecycle when things break: throttling on both sides, and a worker killed mid-run.

The stack of tests/support/lifecycle.py, with the store simulator as a process of its own (as a
real store, it outlives the function host; the embedded one dies with the host and keeps its
orders in memory). One stack for the module: the throttling test runs first, then the kill.

9. Throttling: BigCommerce answers 429 (more than the client retries in a call) and Dataverse
   answers 429 with Retry-After (injected, and from tight service protection limits): the order
   still converges; the connector's retries are scheduled messages, each a `retry` journal entry,
   and no message is redelivered in a loop.
8. A worker killed between steps: the shipment is created in BigCommerce, the Dataverse change
   set that records it hangs, and the host is SIGKILLed. A new host on the same state directory
   gets the message again once its lock expires (the time is printed) and the order converges:
   one shipment, the same final state on both sides, no duplicate rows.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from typing import Any

import pytest

from tests.support.lifecycle import (
    AWAITING_FULFILLMENT,
    COMPLETED,
    SALESORDER_FULFILLED,
    STORE,
    LifecycleStack,
    Sides,
    entries,
    eventually,
    open_sides,
    prepared,
    start_stack,
)

pytestmark = pytest.mark.e2e

LOCK_EXPIRY_TIMEOUT = 150.0  # order-events' lock is 1 minute; the kill waits it out


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LifecycleStack]:
    running = start_stack(
        tmp_path_factory.mktemp("lifecycle-faults"),
        external_bigcommerce=True,
        # The kill test waits for the dead worker's lock to expire: 5 s rather than a minute.
        extra_env={"LOCAL_BROKER_LOCK_SECONDS": "5"},
    )

    with prepared(running) as prepared_stack:
        yield prepared_stack


@pytest.fixture
async def sides(stack: LifecycleStack) -> AsyncIterator[Sides]:
    opened = await open_sides(stack)
    try:
        yield opened
    finally:
        await opened.aclose()


def runs_of(sides: Sides, order_id: int, mark: int = 0) -> dict[str, set[str]]:
    """The host's runs for one order since `mark`: message id -> its invocation ids."""
    runs: dict[str, set[str]] = {}
    for record in sides.log_records(mark):
        if (
            str(record.get("order_id")) == str(order_id)
            and record.get("logger") == "shared.orchestration"
            and record.get("invocation_id")
            and record.get("message_id")
        ):
            runs.setdefault(str(record["message_id"]), set()).add(record["invocation_id"])
    return runs


# -- 9. throttling --------------------------------------------------------------------------------


async def test_throttling_on_both_sides_is_waited_out_by_scheduled_retries(
    sides: Sides, stack: LifecycleStack
) -> None:
    mark = len(stack.host.output)
    limits = await sides.standin_settings()
    # Dataverse: a tight service protection limit (429 with Retry-After, waited out by the
    # client), and six 429s in a row on the change sets, one more than a call retries.
    await sides.standin_settings(request_limit="12/2")
    await sides.standin_fault(
        path_prefix="$batch", method="POST", status=429, count=6, limit="requests", retry_after=1
    )
    # BigCommerce: six 429s on the order's reads, one more than a call retries.
    await sides.sim_fault(
        path_prefix=f"/stores/{STORE}/v2/orders/", method="GET", status=429, count=6
    )
    order_id = await sides.create_order([("S-ORAN", 1), ("TWB", 2)])

    # No reads while the faults are armed: they would take them.
    scheduled = 0
    deadline = time.monotonic() + 60
    while await _faults_left(sides):
        assert time.monotonic() < deadline, "the connector never used up the injected 429s"
        scheduled = max(scheduled, sides.stack.broker.queue_info("order-events").scheduled_count)
        await asyncio.sleep(0.05)
    await sides.standin_settings(request_limit=limits["request_limit"])

    await eventually(
        lambda: _status_is(sides, order_id, AWAITING_FULFILLMENT), what="released status"
    )
    await sides.settle(timeout=90)
    order = await sides.salesorder(order_id)
    assert order is not None
    assert order["bciom_lifecycle"] == "released"
    assert len(await sides.fulfillments(order_id)) == 1
    assert sides.parked(order_id) == []
    journal = await sides.journal(order_id)
    retries = entries(journal, "retry")
    assert {r["bciom_outcome"] for r in retries} == {"throttled"}, retries
    assert len(retries) >= 2, "one retry for each side's throttling"
    assert scheduled >= 1, "a retry waited in order-events as a scheduled message"
    # Each message ran once: the retries are new messages, not redeliveries of a failed one.
    runs = runs_of(sides, order_id, mark)
    assert runs, "the host logged the order's runs"
    redelivered = {m: len(i) for m, i in runs.items() if len(i) > 1}
    assert redelivered == {}, redelivered
    assert len(runs) <= 12, (
        f"{len(runs)} runs for one order: {Counter(len(i) for i in runs.values())}"
    )
    throttled = await sides.standin_requests(status="429")
    assert throttled, "Dataverse did throttle"
    print(
        f"\n{len(runs)} runs for the order, {len(retries)} retries "
        f"({'; '.join(str(r['bciom_details']) for r in retries)}), "
        f"{len(throttled)} Dataverse 429s"
    )


# -- 8. a worker killed between steps -------------------------------------------------------------


async def test_a_worker_killed_mid_run_is_finished_by_the_redelivery(
    stack: LifecycleStack,
) -> None:
    sides = await open_sides(stack)
    try:
        shipment_id, order_id, killed = await _kill_after_the_shipment(sides, stack)
    finally:
        await sides.aclose()
    # Read from the dead stand-in's file: once the host is back, the redelivery (the lock is 5 s)
    # may record the shipment before the test could look.
    assert _recorded_shipments(stack, order_id) == [(1, None)], (
        "killed before Dataverse recorded it"
    )
    stack.restart()
    sides = await open_sides(stack)
    try:

        async def synced() -> bool:
            [row] = await sides.fulfillments(order_id)
            return row["bciom_bcshipmentid"] is not None

        await eventually(synced, timeout=LOCK_EXPIRY_TIMEOUT, interval=0.5, what="redelivery")
        waited = time.monotonic() - killed
        print(f"\nthe killed run's message came back {waited:.1f} s after the kill")
        await sides.settle(timeout=LOCK_EXPIRY_TIMEOUT)

        assert [s.id for s in await sides.stack.store.list_shipments(order_id)] == [shipment_id]
        [row] = await sides.fulfillments(order_id)
        assert row["bciom_bcshipmentid"] == shipment_id
        assert await sides.status(order_id) == COMPLETED
        order = await sides.salesorder(order_id)
        assert order is not None
        assert (order["bciom_lifecycle"], order["statecode"]) == ("completed", SALESORDER_FULFILLED)
        assert len(await sides.salesorders(order_id)) == 1
        assert sides.parked(order_id) == []
    finally:
        await sides.aclose()


async def _kill_after_the_shipment(sides: Sides, stack: LifecycleStack) -> tuple[int, int, float]:
    """Ships an order's fulfillment order and SIGKILLs the host once BigCommerce has the
    shipment and the change set recording it hangs. Returns the shipment, order, kill time."""
    order_id = await sides.create_order([("S-ORAN", 2), ("OCG", 1)])
    await eventually(lambda: _released(sides, order_id), what="released")
    await sides.settle()
    [fulfillment] = await sides.fulfillments(order_id)
    shipments_path = f"/stores/{STORE}/v2/orders/{order_id}/shipments"
    # Every store call takes 500 ms, so the ship step is still at BigCommerce when the hang
    # is armed: the change set recording the new shipment is the next Dataverse write.
    await _sim_settings(sides, latency_ms="500")

    await sides.ship(fulfillment, tracking="1ZE2E0000000099")

    await eventually(
        lambda: _sim_requests(sides, "GET", shipments_path),
        timeout=30,
        interval=0.02,
        what="ship step started",
    )
    await sides.standin_fault(
        path_prefix="$batch", method="POST", kind="timeout", status=504, delay_ms=120_000
    )
    await eventually(lambda: _sim_requests(sides, "POST", shipments_path), what="shipment sent")
    await eventually(lambda: _no_faults_left(sides), timeout=10, what="the change set hanging")
    stack.kill()
    killed = time.monotonic()
    await _sim_settings(sides, latency_ms="0")
    [shipment] = await sides.stack.store.list_shipments(order_id)
    return shipment.id, order_id, killed


# -- shared ---------------------------------------------------------------------------------------


def _recorded_shipments(stack: LifecycleStack, order_id: int) -> list[tuple[int, int | None]]:
    """(shipped, BigCommerce shipment id) of the order's fulfillment orders, from the Dataverse
    stand-in's SQLite file (LOCAL_DATAVERSE_DB) while no stand-in is running."""
    path = stack.state_dir / "dataverse.sqlite3"
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT bciom_shipped, bciom_bcshipmentid FROM t_msdyn_fulfillmentorder "
            "WHERE bciom_storehash = ? AND bciom_bcorderid = ?",
            (STORE, order_id),
        ).fetchall()
    return [(int(shipped), shipment) for shipped, shipment in rows]


async def _status_is(sides: Sides, order_id: int, status_id: int) -> bool:
    return await sides.status(order_id) == status_id


async def _released(sides: Sides, order_id: int) -> bool:
    order = await sides.salesorder(order_id)
    return bool(order and order["bciom_lifecycle"] == "released")


async def _faults_left(sides: Sides) -> int:
    sim = (await sides.stack.sim.get("/__sim/faults")).json()
    dv = (await sides.stack.dataverse_admin.get("/__sim/faults")).json()
    return len(sim) + len(dv)


async def _no_faults_left(sides: Sides) -> bool:
    dv = (await sides.stack.dataverse_admin.get("/__sim/faults")).json()
    return not dv


async def _sim_settings(sides: Sides, **settings: Any) -> None:
    (await sides.stack.sim.put("/__sim/settings", json=settings)).raise_for_status()


async def _sim_requests(sides: Sides, method: str, path: str) -> bool:
    response = await sides.stack.sim.get(
        "/__sim/requests", params={"method": method, "path_prefix": path}
    )
    return bool([r for r in response.json() if r["path"] == path])
