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

Until `reconcile` is registered in cli/__init__.py, the command is run through
`cli.reconcile.register` in a parser of its own, exactly as `cli.main` would run it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pytest

from local.stack.host_process import REPO, clean_environ
from local.stack.plan import plan
from local.state import SqliteStateStore, state_db_path
from shared.handlers.reconcile import LEASE_PREFIX
from shared.reconciliation.metrics import last_result
from shared.state import lease
from tests.support.lifecycle import (
    FLOW,
    STORE,
    LifecycleStack,
    Sides,
    eventually,
    open_sides,
    prepared,
    start_stack,
)

pytestmark = pytest.mark.e2e

# Every step also runs for `reconcile`, as in shared/orchestration/default_flow.yaml.
RECONCILE_FLOW: Final = FLOW.replace("replay]", "replay, reconcile]")
# The host's own timer must not sweep during the test (once a year, on 1 January).
RARELY: Final = "0 0 0 1 1 *"
DROP_EVERYTHING: Final = {"drop_probability": 1.0, "duplicate_probability": 0.0}
# Runs `python -m cli reconcile ...` whether or not cli/__init__.py registers it yet.
RUNNER: Final = """\
import argparse, asyncio, sys
from cli import build_parser
from cli import reconcile
parser = build_parser()
groups = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
if "reconcile" not in groups.choices:
    reconcile.register(groups)
args = parser.parse_args(sys.argv[1:])
sys.exit(asyncio.run(args.run(args)))
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LifecycleStack]:
    tmp = tmp_path_factory.mktemp("reconcile")
    flow = tmp / "reconcile-flow.yaml"
    flow.write_text(RECONCILE_FLOW)
    running = start_stack(tmp, {"CONNECTOR_FLOW_FILE": str(flow), "RECONCILE_SCHEDULE": RARELY})

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


def cli_environ(stack: LifecycleStack) -> dict[str, str]:
    """The settings the host runs with (the stack's plan over its environment), for the CLI."""
    state_dir = stack.state_dir
    planned = plan(stack.env, state_dir)
    return {
        **clean_environ(),
        **stack.env,
        **planned.env,
        "LOCAL_STATE_DIR": str(state_dir),
        "LOCAL_BROKER_PATH": str(planned.broker_path),
        "PYTHONUNBUFFERED": "1",
    }


async def reconcile(stack: LifecycleStack, *arguments: str) -> tuple[int, dict[str, Any], str]:
    """`python -m cli reconcile --json ...`: exit code, the JSON report, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RUNNER,
        "reconcile",
        "--json",
        *arguments,
        cwd=REPO,
        env=cli_environ(stack),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    try:
        report = json.loads(out)
    except ValueError:
        raise AssertionError(
            f"no JSON report (exit {process.returncode}):\n{out!r}\n{err.decode()}"
        ) from None
    return process.returncode, report, err.decode()


def store_metrics(report: dict[str, Any]) -> dict[str, Any]:
    (outcome,) = report["stores"]
    assert outcome["store_hash"] == STORE
    metrics: dict[str, Any] = outcome["metrics"]
    return metrics


def test_the_runner_is_the_cli_s_own_code_path() -> None:
    """The subprocess runs `cli.reconcile.register` in `cli.build_parser`'s parser."""
    from cli import build_parser
    from cli import reconcile as command

    parser = build_parser()
    groups = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "reconcile" not in groups.choices:
        command.register(groups)
    args = parser.parse_args(["reconcile", "--store", STORE, "--json"])
    assert args.run is command.reconcile
    assert args.stores == [STORE]


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

    code, report, err = await reconcile(stack, "--store", STORE, "--skip-hooks")
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

    code, report, err = await reconcile(stack, "--skip-hooks")
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
            code, report, _ = await reconcile(stack, "--skip-hooks")
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
