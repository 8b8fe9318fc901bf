"""The whole stack for end-to-end lifecycle tests, and what a test reads of both sides.

`start_stack` runs `python -m local.host` on the embedded default (function host, local broker,
BigCommerce store simulator, Dataverse stand-in posting its changes to `dataverse-events`) with
the flow `FLOW` (the default flow, with stock that sends the dropshipper's SKUs to a second
source, and a short retry back-off) and the demo's mapping (every currency of the simulated store).
The host's output goes to `host.log` in the state directory. With `external_bigcommerce` the store
simulator runs as a process of its own, as a real store would: `kill` SIGKILLs the host and the
stand-ins it started, `restart` starts a new host on the same state directory and ports, and the
store's orders are still there (the embedded simulator keeps them in memory and dies with the
host). The Dataverse stand-in keeps its rows in SQLite and the broker is durable, so both restart
where they were.

`Sides` is what one test talks to, built on the demo's `Stack` (`local/demo/stack.py`): the
connector's BigCommerce client (the demo's User-Agent), a second Dataverse identity (its requests
do not eat into the connector's protection budget), both admin APIs and the broker file. On top:
- `create_order`: a V2 Create Order with catalog products, as a storefront or an app places one;
- `salesorder`, `fulfillments`, `journal`, `refunds`: the order's Dataverse rows;
- `business_versions`: every business row of the order (not the journal) with its version, to
  tell whether anything was written;
- `settle`: waits until the store has no webhook left to deliver and `order-events` and
  `dataverse-events` hold nothing (active, locked or scheduled), twice in a row;
- `replay_all`: `python -m cli orders replay --all` as the operator runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, TextIO, TypeVar

import httpx

from local.bigcommerce.webhooks.payloads import build_callback, request_headers
from local.demo import seed
from local.demo.stack import Stack, new_demo_token
from local.stack.cli_process import run_cli
from local.stack.host_process import HostProcess, free_port
from local.stack.plan import LOCAL_STORE_HASH
from shared.messaging.message import InboundMessage
from shared.messaging.queues import DATAVERSE_EVENTS, ORDER_EVENTS, ORDER_PARKED
from tests.support.bigcommerce_sim import SimulatorProcess
from tests.support.ports import start_on_a_free_port

T = TypeVar("T")

STORE: Final = LOCAL_STORE_HASH
PENDING, SHIPPED, PARTIALLY_SHIPPED, CANCELLED = 1, 2, 3, 5
COMPLETED, AWAITING_FULFILLMENT, MANUAL_VERIFICATION, INCOMPLETE = 10, 11, 12, 0
SALESORDER_CANCELLED, SALESORDER_FULFILLED = 2, 3  # statecode

# Catalog products (local/bigcommerce/catalog.py) by SKU; none has variants.
PRODUCT_IDS: Final = {
    "S-ORAN": 77,
    "CC3C": 88,
    "OCG": 93,
    "TWB": 97,
    "CGLD": 104,
    "DPB": 107,
    "SM13": 111,
    "BEANIE-MER": 201,
    "BTL-INS": 203,
}
MISSING_SKU: Final = seed.MISSING_SKU  # the one SKU without a Dataverse product (CGLD)
DROPSHIP_SKU: Final = "BEANIE-MER"  # only the dropshipper carries it: a split order
WAREHOUSE: Final = "WH-EAST"
DROPSHIP: Final = "DROPSHIP"

# The default flow (shared/orchestration/default_flow.yaml) with stock at the sources, so that an
# order mixing the dropshipper's SKU with the warehouse's splits in two fulfillment orders, and a
# retry back-off in seconds, not minutes, so that retries after throttling settle in a test.
FLOW: Final = """\
version: 1
name: lifecycle-e2e
steps:
  - step: sync_order
    triggers: [bigcommerce_order, bigcommerce_shipment, bigcommerce_refund, replay]
  - {step: cancel, triggers: [bigcommerce_order, dataverse_order, replay]}
  - {step: validate, triggers: [bigcommerce_order, replay]}
  - {step: choose_source, triggers: [bigcommerce_order, replay]}
  - {step: ship, triggers: [dataverse_fulfillment, replay]}
  - step: complete
    triggers: [dataverse_fulfillment, bigcommerce_shipment, bigcommerce_order, replay]
  - {step: record_refunds, triggers: [bigcommerce_refund, bigcommerce_order, replay]}
validation:
  payment_statuses: [authorized, captured, paid, "capture pending", "partially refunded", ""]
  ship_to_fields: [street_1, city, zip, country_iso2]
  manual_review_above: 5000
  require_products: true
fulfillment:
  max_splits: 2
  when_unsourced: hold
  sources:
    - name: WH-EAST
      kind: warehouse
      priority: 1
      countries: [US, CA]
      inventory: {S-ORAN: 100000, CC3C: 100000, OCG: 100000, TWB: 100000, CGLD: 100000,
                  DPB: 100000, SM13: 100000, BTL-INS: 100000}
    - name: DROPSHIP
      kind: dropship
      priority: 9
      countries: []
      inventory: {BEANIE-MER: 100000}
bigcommerce_status: {ready: [8, 9, 11], on_hold: 12, released: 11, completed: 10, cancelled: 5}
close_salesorders: true
retry: {max_attempts: 8, base_seconds: 1, max_seconds: 8}
"""
# FLOW with every step also run for `reconcile` (the sweep's and backfill's trigger), as the
# default flow has it; the lifecycle modules leave it out so that no sweep adds work to theirs.
RECONCILE_FLOW: Final = FLOW.replace("replay]", "replay, reconcile]")

ADDRESS: Final = {
    "first_name": "Jane",
    "last_name": "Doe",
    "street_1": "1 Main St",
    "city": "Austin",
    "state": "Texas",
    "zip": "78701",
    "country": "United States",
    "country_iso2": "US",
    "email": "jane.doe@example.com",
}
SETTLE_TIMEOUT: Final = 45.0
# An Enterprise-plan quota, so that the tests wait on the connector, not on the store's quota.
STORE_QUOTA: Final = "15000/30"


# -- the stack ------------------------------------------------------------------------------------


@dataclass
class LifecycleStack:
    """The running host and what a restart needs to come back on the same state and ports."""

    state_dir: Path
    token: str
    env: dict[str, str]
    host: HostProcess
    _log: TextIO
    simulator: SimulatorProcess | None = None  # the store, when it runs outside the host

    @property
    def log_path(self) -> Path:
        return self.state_dir / "host.log"

    def kill(self) -> None:
        """SIGKILL the host and the stand-ins it started (the store too, unless it runs apart)."""
        ports = self.host.ports
        self.host.kill([ports.dataverse] + ([] if self.simulator else [ports.bigcommerce]))

    def restart(self) -> None:
        """A new host on the same state directory and ports (the old one must be gone)."""
        self.host = HostProcess.started(self.state_dir, self.env, self._log)

    def stop(self) -> None:
        try:
            if self.host.process.poll() is None:
                self.host.stop()
        finally:
            self._log.close()
            if self.simulator is not None:
                self.simulator.stop()

    def output_since(self, mark: int) -> list[str]:
        return self.host.output[mark:]


def start_stack(
    tmp: Path,
    extra_env: Mapping[str, str] | None = None,
    *,
    external_bigcommerce: bool = False,
    flow: str = FLOW,
) -> LifecycleStack:
    """The stack on the embedded default. With `external_bigcommerce`, the store simulator runs
    as a process of its own that the host talks to as to a real store: it outlives the host
    (the embedded one is the host's child and keeps its orders in memory, so a killed host
    would take the store's orders with it)."""
    state_dir = tmp / "state"
    state_dir.mkdir(parents=True)
    flow_file = state_dir / "flow.yaml"
    flow_file.write_text(flow)
    mapping = seed.write_mapping(state_dir / "mapping.yaml")
    token = new_demo_token()
    env = {
        "LOG_LEVEL": "INFO",
        "LOCAL_BIGCOMMERCE_QUOTA": STORE_QUOTA,
        "CONNECTOR_FLOW_FILE": str(flow_file),
        "CONNECTOR_MAPPING_FILE": str(mapping),
        "LOCAL_DATAVERSE_EXTRA_TOKENS": token,
        "LOCAL_FUNCTIONS_PORT": str(free_port()),
        "LOCAL_BIGCOMMERCE_PORT": str(free_port()),
        "LOCAL_DATAVERSE_PORT": str(free_port()),
    }
    simulator: SimulatorProcess | None = None
    if external_bigcommerce:
        simulator = _external_store(state_dir, env)
    env.update(extra_env or {})
    log = (state_dir / "host.log").open("a")
    try:
        host = HostProcess.started(state_dir, env, log)
    except BaseException:
        log.close()
        if simulator is not None:
            simulator.stop()
        raise
    return LifecycleStack(state_dir, token, env, host, log, simulator)


def _external_store(state_dir: Path, env: dict[str, str]) -> SimulatorProcess:
    """Starts the store simulator on its own, with the credentials the stack would generate
    (written where the host and `HostProcess.secrets` read them), and points `env` at it."""
    secrets = {
        "access_token": new_demo_token(),
        "webhook_secret": new_demo_token(),
        "client_secret": f"client-secret-{STORE}",  # what SimulatorProcess configures
        "dataverse_token": new_demo_token(),
    }
    path = state_dir / "stack-secrets.json"
    path.write_text(json.dumps(secrets))
    path.chmod(0o600)
    simulator = start_on_a_free_port(
        lambda: SimulatorProcess({STORE: secrets["access_token"]}, quota=STORE_QUOTA)
    )
    prefix = f"BIGCOMMERCE_{STORE.upper()}_"
    env.update(
        {
            "BIGCOMMERCE_STORES": STORE,
            "BIGCOMMERCE_API_URL": simulator.url,
            prefix + "ACCESS_TOKEN": secrets["access_token"],
            prefix + "WEBHOOK_SECRET": secrets["webhook_secret"],
            prefix + "CLIENT_SECRET": secrets["client_secret"],
            # HostProcess.bigcommerce_url (and so the tests' clients) point at it.
            "LOCAL_BIGCOMMERCE_PORT": str(simulator.port),
        }
    )
    return simulator


# -- one test's view of both sides ----------------------------------------------------------------


@dataclass
class Sides:
    stack: Stack
    lifecycle: LifecycleStack
    api: httpx.AsyncClient = field(init=False)  # the store's REST API with its access token

    def __post_init__(self) -> None:
        host = self.stack.host
        self.api = httpx.AsyncClient(
            base_url=f"{host.bigcommerce_url}/stores/{STORE}",
            headers={
                "X-Auth-Token": host.secrets()["access_token"],
                "Accept": "application/json",
            },
            timeout=30,
        )

    async def aclose(self) -> None:
        await self.api.aclose()
        await self.stack.aclose()

    # BigCommerce --------------------------------------------------------------------------

    async def create_order(
        self,
        lines: Sequence[tuple[str, int]],
        *,
        status_id: int = AWAITING_FULFILLMENT,
        customer_id: int = 0,
        email: str | None = None,
    ) -> int:
        """A V2 Create Order of catalog products by SKU, shipping to the billing address."""
        address = {**ADDRESS, "email": email or ADDRESS["email"]}
        body = {
            "status_id": status_id,
            "customer_id": customer_id,
            "billing_address": address,
            "shipping_addresses": [address],
            "products": [
                {"product_id": PRODUCT_IDS[sku], "quantity": quantity} for sku, quantity in lines
            ],
        }
        response = await self.api.post("/v2/orders", json=body)
        assert response.status_code in (200, 201), response.text
        order_id: int = response.json()["id"]
        return order_id

    async def set_status(self, order_id: int, status_id: int) -> None:
        """A status change made by the merchant in the control panel."""
        response = await self.stack.sim.post(
            f"/__sim/stores/{STORE}/orders/{order_id}/status", json={"status_id": status_id}
        )
        assert response.status_code == 200, response.text

    async def status(self, order_id: int) -> int:
        return (await self.stack.store.get_order(order_id)).status_id

    async def send_webhook(self, scope: str, data: Mapping[str, Any]) -> int:
        """A callback as the simulator sends one (signed, with the hook's custom headers), for an
        event it did not raise itself: a new `created_at`, so a new hash and a new message id.
        Answers the ingress's status."""
        host = self.stack.host
        secrets = host.secrets()
        callback = build_callback(STORE, "1", scope, data, int(time.time()))
        headers = request_headers(
            {
                "x-functions-key": host.keys()["default"],
                "X-Webhook-Secret": secrets["webhook_secret"],
            },
            msg_id=f"msg_e2e_{callback.event_hash}",
            body=callback.body,
            client_secret=secrets["client_secret"],
            now=datetime.now(UTC),
        )
        async with httpx.AsyncClient(base_url=host.url, timeout=30) as client:
            response = await client.post(
                "/api/webhooks/bigcommerce", content=callback.body, headers=headers
            )
        return response.status_code

    async def put_switches(self, **switches: Any) -> None:
        response = await self.stack.sim.put("/__sim/webhooks/switches", json=switches)
        assert response.status_code == 200, response.text

    async def deliveries(self, **filters: str) -> list[dict[str, Any]]:
        response = await self.stack.sim.get("/__sim/webhooks/deliveries", params=filters)
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data

    # Dataverse ----------------------------------------------------------------------------

    def _of(self, order_id: int) -> str:
        return f"bciom_storehash eq '{STORE}' and bciom_bcorderid eq {order_id}"

    async def salesorders(self, order_id: int) -> list[dict[str, Any]]:
        return [
            row
            async for row in self.stack.dataverse.rows(
                "salesorders",
                select=[
                    "salesorderid",
                    "bciom_lifecycle",
                    "bciom_holdreason",
                    "bciom_bcstatusid",
                    "statecode",
                    "statuscode",
                    "_customerid_value",
                ],
                filter=self._of(order_id),
                expand=(
                    "order_details($select=bciom_bcorderproductid,bciom_sku,quantity,"
                    "quantityshipped,quantitycancelled,_productid_value)"
                ),
            )
        ]

    async def salesorder(self, order_id: int) -> dict[str, Any] | None:
        rows = await self.salesorders(order_id)
        assert len(rows) <= 1, f"{len(rows)} salesorders for order {order_id}"
        return rows[0] if rows else None

    async def fulfillments(self, order_id: int) -> list[dict[str, Any]]:
        rows = [
            row
            async for row in self.stack.dataverse.rows(
                "msdyn_fulfillmentorders",
                select=[
                    "msdyn_fulfillmentorderid",
                    "bciom_fulfillmentkey",
                    "bciom_source",
                    "bciom_shipped",
                    "bciom_cancelled",
                    "bciom_trackingnumber",
                    "bciom_carrier",
                    "bciom_bcshipmentid",
                ],
                filter=self._of(order_id),
                expand=(
                    "msdyn_fulfillmentorder_details($select=msdyn_fulfillmentorderdetailid,"
                    "bciom_linekey,bciom_bcorderproductid,bciom_quantity,bciom_quantityshipped)"
                ),
            )
        ]
        return sorted(rows, key=lambda r: str(r["bciom_fulfillmentkey"]))

    async def journal(self, order_id: int) -> list[dict[str, Any]]:
        return [
            row
            async for row in self.stack.dataverse.rows(
                "bciom_orderjournals",
                select=[
                    "bciom_messageid",
                    "bciom_name",
                    "bciom_kind",
                    "bciom_step",
                    "bciom_outcome",
                    "bciom_details",
                    "bciom_occurredon",
                ],
                filter=self._of(order_id),
                orderby="bciom_occurredon asc",
            )
        ]

    async def refunds(self, order_id: int) -> list[dict[str, Any]]:
        return [
            row
            async for row in self.stack.dataverse.rows(
                "bciom_orderrefunds",
                select=["bciom_orderrefundid", "bciom_refundid", "bciom_totalamount"],
                filter=self._of(order_id),
            )
        ]

    async def refund_lines(self, refund_row_id: str) -> list[dict[str, Any]]:
        return [
            row
            async for row in self.stack.dataverse.rows(
                "bciom_orderrefundlines",
                select=["bciom_refundlinekey", "bciom_itemtype", "bciom_quantity", "bciom_amount"],
                filter=f"_bciom_orderrefund_value eq {refund_row_id}",
            )
        ]

    async def business_versions(self, order_id: int) -> dict[str, int]:
        """Every business row of the order (salesorder, lines, customer, fulfillment orders and
        their lines, refunds), by table and id, with its versionnumber: any write bumps it."""
        versions: dict[str, int] = {}
        of = self._of(order_id)
        tables = (
            ("salesorders", "salesorderid", of),
            ("salesorderdetails", "salesorderdetailid", of),
            ("msdyn_fulfillmentorders", "msdyn_fulfillmentorderid", of),
            ("bciom_orderrefunds", "bciom_orderrefundid", of),
        )
        for entity_set, primary, condition in tables:
            async for row in self.stack.dataverse.rows(
                entity_set, select=[primary, "versionnumber"], filter=condition
            ):
                versions[f"{entity_set}({row[primary]})"] = int(row["versionnumber"])
        order = await self.salesorder(order_id)
        if order is not None and order.get("_customerid_value"):
            contact = await self.stack.dataverse.retrieve(
                "contacts",
                _uuid(order["_customerid_value"]),
                select=["contactid", "versionnumber"],
            )
            assert contact.row is not None
            versions[f"contacts({contact.row['contactid']})"] = int(contact.row["versionnumber"])
        for fulfillment in await self.fulfillments(order_id):
            for line in fulfillment.get("msdyn_fulfillmentorder_details") or ():
                row_id = line["msdyn_fulfillmentorderdetailid"]
                detail = await self.stack.dataverse.retrieve(
                    "msdyn_fulfillmentorderdetails", _uuid(row_id), select=["versionnumber"]
                )
                assert detail.row is not None
                versions[f"msdyn_fulfillmentorderdetails({row_id})"] = int(
                    detail.row["versionnumber"]
                )
        return versions

    async def ship(
        self,
        fulfillment: Mapping[str, Any],
        *,
        tracking: str,
        carrier: str = "UPS",
        shipped: Mapping[int, Decimal] | None = None,
    ) -> None:
        """The warehouse marks a fulfillment order shipped in Dataverse; with `shipped`, it
        first records what went out per order product (below the ordered quantity: partial)."""
        if shipped is not None:
            for line in fulfillment.get("msdyn_fulfillmentorder_details") or ():
                quantity = shipped.get(int(line["bciom_bcorderproductid"]))
                if quantity is not None:
                    await self.stack.dataverse.update(
                        "msdyn_fulfillmentorderdetails",
                        _uuid(line["msdyn_fulfillmentorderdetailid"]),
                        {"bciom_quantityshipped": quantity},
                    )
        await self.stack.dataverse.update(
            "msdyn_fulfillmentorders",
            _uuid(fulfillment["msdyn_fulfillmentorderid"]),
            {"bciom_shipped": True, "bciom_trackingnumber": tracking, "bciom_carrier": carrier},
        )

    async def create_product(self, sku: str) -> None:
        await seed.create_product(self.stack, sku)

    async def standin_requests(self, **filters: str) -> list[dict[str, Any]]:
        response = await self.stack.dataverse_admin.get("/__sim/requests", params=filters)
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()
        return data

    async def standin_fault(self, **fault: Any) -> None:
        response = await self.stack.dataverse_admin.post("/__sim/faults", json=fault)
        assert response.status_code == 201, response.text

    async def standin_settings(self, **settings: Any) -> dict[str, Any]:
        response = await self.stack.dataverse_admin.put("/__sim/settings", json=settings)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    async def sim_fault(self, **fault: Any) -> None:
        response = await self.stack.sim.post("/__sim/faults", json=fault)
        assert response.status_code == 201, response.text

    async def clear_faults(self) -> None:
        (await self.stack.sim.delete("/__sim/faults")).raise_for_status()
        (await self.stack.dataverse_admin.delete("/__sim/faults")).raise_for_status()

    # the broker ---------------------------------------------------------------------------

    def busy(self) -> dict[str, int]:
        busy: dict[str, int] = {}
        for queue in (ORDER_EVENTS.name, DATAVERSE_EVENTS.name):
            info = self.stack.broker.queue_info(queue)
            if info.active_count or info.scheduled_count:
                busy[queue] = info.active_count + info.scheduled_count
        return busy

    def parked(self, order_id: int | None = None) -> list[InboundMessage]:
        messages = self.stack.broker.peek(ORDER_PARKED.name, max_messages=1000)
        if order_id is None:
            return messages
        return [m for m in messages if m.application_properties.get("order_id") == order_id]

    async def settle(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """Until no webhook is pending and both work queues are empty, twice 0.3 s apart."""
        deadline = time.monotonic() + timeout
        quiet = 0
        why = "nothing checked"
        while quiet < 2:
            if time.monotonic() > deadline:
                raise AssertionError(f"the stack did not settle in {timeout:.0f}s: {why}")
            drained = await self.stack.sim.post("/__sim/webhooks/drain", params={"timeout": "1"})
            busy = self.busy()
            if drained.status_code != 200:
                quiet, why = 0, f"webhooks pending: {drained.text}"
            elif busy:
                quiet, why = 0, f"queued: {busy}"
            else:
                quiet += 1
            await asyncio.sleep(0.3)

    async def replay_all(self) -> subprocess.CompletedProcess[str]:
        """`python -m cli orders replay --all` with the stack's broker, as the operator runs it."""
        env = {"SERVICEBUS_TRANSPORT": "local", "LOCAL_BROKER_PATH": str(self.stack.broker_path)}
        return await run_cli("orders", "replay", "--all", env=env)

    # the host's log -----------------------------------------------------------------------

    def log_records(self, mark: int = 0) -> list[dict[str, Any]]:
        records = []
        for line in self.lifecycle.output_since(mark):
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
        return records


async def open_sides(lifecycle: LifecycleStack) -> Sides:
    return Sides(Stack(lifecycle.host, lifecycle.token), lifecycle)


async def seed_dataverse(sides: Sides) -> None:
    """Currencies and a product for every SKU the store sells except MISSING_SKU."""
    await seed.seed_dataverse(sides.stack)


async def register_webhooks(sides: Sides) -> None:
    await seed.register_webhooks(sides.stack)


@contextlib.contextmanager
def prepared(
    running: LifecycleStack, switches: Mapping[str, Any] | None = None, *, hooks: bool = True
) -> Iterator[LifecycleStack]:
    """A started stack with Dataverse seeded, the webhooks registered (unless not `hooks`) and
    the simulator's network switches set; stopped on exit. The body of each module's `stack`
    fixture."""

    async def prepare() -> None:
        sides = await open_sides(running)
        try:
            await seed_dataverse(sides)
            if hooks:
                await register_webhooks(sides)
            if switches:
                await sides.put_switches(**switches)
        finally:
            await sides.aclose()

    try:
        asyncio.run(prepare())
        yield running
    finally:
        running.stop()


async def eventually(
    check: Callable[[], Awaitable[T | None]],
    *,
    timeout: float = SETTLE_TIMEOUT,
    interval: float = 0.2,
    what: str = "condition",
) -> T:
    """Polls `check` until it returns something truthy, which is returned; else AssertionError.
    The async twin of tests/support/host_process.py `wait_until`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout:.0f}s (last: {last!r})")


def entries(journal: Sequence[Mapping[str, Any]], kind: str) -> list[Mapping[str, Any]]:
    return [e for e in journal if e.get("bciom_kind") == kind]


def _uuid(value: object) -> uuid.UUID:
    return uuid.UUID(str(value))
