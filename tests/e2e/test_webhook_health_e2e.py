"""Self-healing webhooks through the real stack on this machine.

One local host for the module (`python -m local.host` on the embedded default: function host,
local broker, the store simulator, the Dataverse stand-in, the SQLite state file), without
WEBHOOK_DESTINATION_URL, so the function's health check can re-enable hooks but not rewrite
them; the reconciliation timer is kept quiet so that every repair seen here is the one under
test. The store's hooks are registered by the operator CLI (`python -m cli webhooks register`).

1. A deliveryException callback makes the function check the store's hooks at once: a hook
   switched off is re-enabled, and the order watermark goes back to when it was switched off.
2. The platform path, as BigCommerce documents it: the order hook's secret goes stale, its
   deliveries fail (401) and are retried on the schedule (60 s ... 86,400 s; the simulator's
   clock is moved through it) until the hook is deactivated; BigCommerce's 90002 notice reaches
   the function through the deliveryException hook (its own destination, `?source=...`), which
   re-enables the hook and sets the order sweep back to before the first failed delivery. The
   CLI then fixes the stale header; a second run has nothing to change; `status` is healthy.
3. A secret rotation refuses nothing: while a hook still sends the secret being replaced
   (`_WEBHOOK_SECRET_PREVIOUS`), its deliveries are accepted and logged as such, until the CLI
   moves the hook to the current secret.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.bigcommerce.webhooks.delivery import RETRY_SCHEDULE
from local.state import SqliteStateStore
from shared.reconciliation.webhook_health import HOOKS_PARTITION
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
from tests.support.operator import run_cli, run_json, store_metrics

pytestmark = pytest.mark.e2e

DELIVERY_EXCEPTION = "store/hook/deliveryException"
NEVER = "0 0 0 1 1 *"  # the reconciliation timer (which also checks hooks) stays out of the way
WATERMARK = f"{STORE}.orders"
OLD = "rotated-out-secret"  # the webhook secret a rotation is replacing


# -- the stack ------------------------------------------------------------------------------------


def ingress_url(stack: LifecycleStack) -> str:
    return f"{stack.host.url}/api/webhooks/bigcommerce"


def register(stack: LifecycleStack) -> subprocess.CompletedProcess[str]:
    key = stack.host.keys()["default"]
    url = ingress_url(stack)
    return run_cli(
        stack, "webhooks", "register", "--store", STORE, "--url", url, "--function-key", key
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LifecycleStack]:
    running = start_stack(
        tmp_path_factory.mktemp("webhook-health"),
        {"RECONCILE_SCHEDULE": NEVER, f"BIGCOMMERCE_{STORE.upper()}_WEBHOOK_SECRET_PREVIOUS": OLD},
        flow=RECONCILE_FLOW,
    )
    with prepared(running, hooks=False) as ready:
        registered = register(ready)
        assert registered.returncode == 0, registered.stderr + registered.stdout
        assert registered.stdout.count("created hook ") == 3, registered.stdout
        yield ready


@pytest.fixture
async def sides(stack: LifecycleStack) -> AsyncIterator[Sides]:
    opened = await open_sides(stack)
    try:
        yield opened
    finally:
        await opened.aclose()


# -- what a test reads ----------------------------------------------------------------------------


async def hooks(sides: Sides) -> dict[str, dict[str, Any]]:
    """The store's hooks by scope, through its API with the connector's token."""
    response = await sides.api.get("/v3/hooks")
    assert response.status_code == 200, response.text
    return {h["scope"]: h for h in response.json()["data"]}


async def put_hook(sides: Sides, hook_id: int, body: dict[str, Any]) -> None:
    response = await sides.api.put(f"/v3/hooks/{hook_id}", json=body)
    assert response.status_code == 200, response.text


async def order_hook_sending(stack: LifecycleStack, sides: Sides, secret: str) -> dict[str, Any]:
    """The order hook, made to send `secret` (and the function key) from now on."""
    order = (await hooks(sides))["store/order/*"]
    key = stack.host.keys()["default"]
    headers = {"X-Webhook-Secret": secret, "x-functions-key": key}
    await put_hook(sides, order["id"], {"headers": headers})
    return order


async def active_again(sides: Sides, scope: str, timeout: float = 30) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        hook = (await hooks(sides))[scope]
        return hook if hook["is_active"] else None

    return await eventually(check, timeout=timeout, what=f"the {scope} hook active again")


async def state_value(stack: LifecycleStack, partition: str, key: str) -> dict[str, Any] | None:
    store = SqliteStateStore(stack.state_dir / "state.sqlite3")
    try:
        entity = await store.get(partition, key)
        return None if entity is None else dict(entity.value)
    finally:
        await store.close()


async def set_watermark(stack: LifecycleStack, value: datetime) -> None:
    store = SqliteStateStore(stack.state_dir / "state.sqlite3")
    try:
        document = {"watermark": value.isoformat(), "updated_at": value.isoformat()}
        await store.upsert("watermarks", WATERMARK, document)
    finally:
        await store.close()


async def watermark(stack: LifecycleStack) -> dict[str, Any]:
    value = await state_value(stack, "watermarks", WATERMARK)
    assert value is not None
    return value


def repairs_of(record: dict[str, Any] | None, hook_id: int) -> list[dict[str, Any]]:
    assert record is not None
    return [r for r in record["repairs"] if r["hook_id"] == hook_id]


# -- 1. a deliveryException callback --------------------------------------------------------------


async def test_a_delivery_exception_re_enables_a_switched_off_hook_at_once(
    stack: LifecycleStack, sides: Sides
) -> None:
    shipment = (await hooks(sides))["store/shipment/*"]
    await put_hook(sides, shipment["id"], {"is_active": False})
    switched_off = datetime.fromtimestamp(
        (await hooks(sides))["store/shipment/*"]["updated_at"], UTC
    )
    await set_watermark(stack, datetime.now(UTC) + timedelta(minutes=1))

    status = await sides.send_webhook(
        DELIVERY_EXCEPTION,
        {
            "type": "webhook",
            "id": shipment["id"],
            "error_code": 90002,
            "message": "retries exhausted; the hook is disabled",
        },
    )

    assert status == 200
    await active_again(sides, "store/shipment/*")
    record = await state_value(stack, HOOKS_PARTITION, STORE)
    (repair,) = [r for r in repairs_of(record, shipment["id"]) if r["action"] == ["reenable"]]
    assert repair["trigger"] == "delivery_exception"
    assert repair["ok"] is True
    assert record is not None
    assert record["last_notice"]["hook_id"] == shipment["id"]
    rewound = await watermark(stack)
    assert rewound["rewound_by"] == "webhook_health"
    assert datetime.fromisoformat(rewound["watermark"]) < switched_off


# -- 2. deactivated by BigCommerce after failed deliveries ----------------------------------------


async def failed_attempts(sides: Sides, hook_id: int) -> int:
    rows = await sides.deliveries(hook_id=str(hook_id))
    return max((r["attempt"] for r in rows if r["status"] == "failed"), default=0)


async def test_a_hook_deactivated_after_failed_deliveries_comes_back_and_the_sweep_goes_back(
    stack: LifecycleStack, sides: Sides
) -> None:
    key = stack.host.keys()["default"]
    # The secret was rotated without updating this hook: the ingress refuses its deliveries.
    order = await order_hook_sending(stack, sides, "stale")
    first_event = datetime.now(UTC)
    await set_watermark(stack, first_event + timedelta(minutes=1))

    lost = await sides.create_order([("S-ORAN", 1)])

    # Through BigCommerce's retry schedule: each failed attempt n is retried after
    # RETRY_SCHEDULE[n-1] seconds; the simulator's clock is moved on by exactly that much.
    for attempt, delay in enumerate(RETRY_SCHEDULE, start=1):

        async def failed(n: int = attempt) -> bool:
            return await failed_attempts(sides, order["id"]) >= n

        await eventually(failed, timeout=20, interval=0.05, what=f"failed attempt {attempt}")
        await sides.stack.sim.post("/__sim/clock", json={"advance_seconds": delay})

    # The last attempt fails, the platform deactivates the hook and says so (90002) through the
    # deliveryException hook; the function re-enables it.
    async def last_failed() -> bool:
        return await failed_attempts(sides, order["id"]) > len(RETRY_SCHEDULE)

    await eventually(last_failed, timeout=20, interval=0.05, what="the last attempt failed")
    notifications = (await sides.stack.sim.get("/__sim/webhooks/notifications")).json()["data"]
    assert any(n["kind"] == "hook_deactivated" for n in notifications)

    async def re_enabled() -> dict[str, Any] | None:
        record = await state_value(stack, HOOKS_PARTITION, STORE)
        done = any(
            r["action"] == ["reenable"] and r["trigger"] == "delivery_exception" and r["ok"]
            for r in repairs_of(record, order["id"])
        )
        return record if done else None

    record = await eventually(re_enabled, timeout=30, what="the order hook re-enabled")
    back = (await hooks(sides))["store/order/*"]
    assert back["is_active"]
    exceptions = await sides.deliveries(scope=DELIVERY_EXCEPTION, status="delivered")
    assert any(r["attempt"] == 1 for r in exceptions), "no deliveryException reached the function"
    assert all("source=delivery-exception" in (r["destination"] or "") for r in exceptions)
    assert record["complete"] is False  # without WEBHOOK_DESTINATION_URL: re-enable only
    # The sweep restarts before the first delivery that failed: the hook was deactivated a whole
    # retry window after it, and what was still queued for it was dropped.
    rewound = await watermark(stack)
    assert rewound["rewound_by"] == "webhook_health"
    assert datetime.fromisoformat(rewound["watermark"]) <= first_event
    assert back["headers"]["X-Webhook-Secret"] == "stale"  # the function could not know better

    # The order placed during the outage never reached the function; the next sweep, from the
    # rewound watermark, finds it and the lifecycle takes it in.
    assert await sides.salesorder(lost) is None
    code, report, err = run_json(stack, "reconcile", "--store", STORE, "--skip-hooks")
    assert code == 0, (report, err)
    swept = store_metrics(report)
    assert swept["orders_missing"] >= 1, swept
    assert swept["orders_enqueued"] >= 1, swept

    async def released() -> bool:
        salesorder = await sides.salesorder(lost)
        return salesorder is not None and salesorder["bciom_lifecycle"] == "released"

    await eventually(released, what="the order of the outage released in Dataverse")

    # The operator fixes the stale header with the URL; a second run has nothing to change.
    fixed = register(stack)
    assert fixed.returncode == 0, fixed.stderr + fixed.stdout
    assert f"fixed headers of hook {order['id']}" in fixed.stdout
    assert key not in fixed.stdout + fixed.stderr
    assert stack.host.secrets()["webhook_secret"] not in fixed.stdout + fixed.stderr
    again = register(stack)
    assert "nothing to change" in again.stdout
    status = run_cli(
        stack, "webhooks", "status", "--store", STORE, WEBHOOK_DESTINATION_URL=ingress_url(stack)
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"store {STORE}: healthy" in status.stdout
    assert all(h["is_active"] for h in (await hooks(sides)).values())


# -- 3. a secret rotation ------------------------------------------------------------------------


def accepted_deliveries(stack: LifecycleStack, order_id: int) -> list[dict[str, Any]]:
    """The host's `webhook accepted` log lines for the order."""
    lines = (stack.state_dir / "host.log").read_text(errors="replace").splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    return [
        r
        for r in records
        if r.get("message") == "webhook accepted" and r.get("order_id") == order_id
    ]


async def test_a_rotation_refuses_no_delivery_while_hooks_still_send_the_old_secret(
    stack: LifecycleStack, sides: Sides
) -> None:
    # The Key Vault secret has changed; the hooks still send the one it replaced.
    order = await order_hook_sending(stack, sides, OLD)
    during = await sides.create_order([("S-ORAN", 1)])

    async def in_dataverse(order_id: int) -> bool:
        return await sides.salesorder(order_id) is not None

    await eventually(lambda: in_dataverse(during), what="the order placed during the rotation")
    accepted = accepted_deliveries(stack, during)
    assert accepted
    assert all(r.get("previous_secret") is True for r in accepted), accepted

    moved = register(stack)
    assert moved.returncode == 0, moved.stderr + moved.stdout
    assert f"fixed headers of hook {order['id']}" in moved.stdout
    assert OLD not in moved.stdout + moved.stderr
    assert (await hooks(sides))["store/order/*"]["headers"]["X-Webhook-Secret"] != OLD
    after = await sides.create_order([("S-ORAN", 1)])
    await eventually(lambda: in_dataverse(after), what="the order placed after the rotation")
    accepted = accepted_deliveries(stack, after)
    assert accepted
    assert not any(r.get("previous_secret") for r in accepted), accepted
