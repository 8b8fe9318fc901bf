"""The whole pipeline under load, for the throughput, freshness and memory benchmarks.

`PipelineStack` starts the local stack (`python -m local.host`: the function host with the
connector, the local broker, the store simulator and the Dataverse stand-in) with realistic
latency injected through the stack's own settings (`LOCAL_BIGCOMMERCE_LATENCY_MS`,
`LOCAL_DATAVERSE_LATENCY_MS`), the simulator enforcing a Standard-plan quota
(`LOCAL_BIGCOMMERCE_QUOTA=150/30`) and the stand-in the documented service protection limits (its
defaults: 6,000 requests and 1,200 s of execution per 300 s, 52 concurrent, DOP hint 4). It
seeds what the demo seeds (currencies and products in Dataverse, the webhooks in the store,
through the demo's code), then:

* `offer(rate, seconds)` creates orders in the simulator at a steady rate through its admin API
  (which costs the store's quota nothing, as a shopper's checkout would not) and delivers what
  BigCommerce sends for each new order to the host's webhook function, signed as the simulator
  signs them: `store/order/created`, and `store/order/transaction/created` for an order whose
  payment was captured. The bench delivers these itself, with the open-loop client of
  `bench/load.py`, because the simulator delivers one callback at a time per destination, in
  order, which would cap the load at the host's webhook latency; the simulator's own hooks
  (`store/order/updated`, `statusUpdated`, `archived`, `store/shipment/*`) still deliver what
  the connector's own writes cause;
* `SalesorderWatch` sees each salesorder appear in Dataverse, through change tracking read as a
  second identity (so the watching costs the connector's service protection budget nothing);
* the simulator's and the stand-in's request logs count the connector's own requests.

Every time here is this machine's wall clock: the simulator's clock runs at real time from its
start, and the stand-in stamps its log with the wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from bench.load import Request, Stream
from local.bigcommerce.webhooks.payloads import build_callback, request_headers
from local.demo import seed
from local.demo.stack import CONNECTOR_IDENTITY, Stack, new_demo_token
from local.stack.host_process import HostProcess
from shared.bigcommerce.requests import HookCreate
from shared.orchestration.flow import DEFAULT_FLOW_FILE

INTAKE_FLOW: Final = Path(__file__).with_name("intake_flow.yaml")
STANDARD_QUOTA: Final = "150/30"
# What the simulator delivers; the bench delivers created and transaction/created itself.
SIMULATOR_SCOPES: Final = (
    "store/order/updated",
    "store/order/statusUpdated",
    "store/order/archived",
    "store/shipment/*",
)
STORE_ID: Final = "1001"
NOT_CAPTURED: Final = frozenset({0, 1, 7})  # Incomplete, Pending, Awaiting Payment


@dataclass(frozen=True)
class Latency:
    bigcommerce_ms: float = 150
    dataverse_ms: float = 100


@dataclass(frozen=True)
class Setup:
    batching: str = "adaptive"  # CONNECTOR_BATCHING
    flow: str = "intake"  # "intake" (bench/intake_flow.yaml) or "default"
    latency: Latency = field(default_factory=Latency)
    quota: str = STANDARD_QUOTA

    @property
    def flow_file(self) -> Path:
        return INTAKE_FLOW if self.flow == "intake" else Path(DEFAULT_FLOW_FILE)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _wall(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Offered:
    asked_at: dict[int, float] = field(default_factory=dict)  # order id -> when asked for
    started: float = 0.0
    ended: float = 0.0


class SalesorderWatch:
    """When each salesorder first appeared, polled through change tracking."""

    def __init__(self, stack: Stack, interval: float) -> None:
        self._stack = stack
        self._interval = interval
        self.seen: dict[int, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        changes = await self._stack.dataverse.start_tracking(
            "salesorders", select=["bciom_bcorderid"]
        )
        self._note(changes.rows)
        if changes.delta_link is None:
            raise RuntimeError("the stand-in does not track salesorder changes")
        self._task = asyncio.create_task(self._poll(changes.delta_link))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _note(self, rows: Any) -> None:
        now = time.time()
        for row in rows:
            order_id = row.get("bciom_bcorderid")
            if isinstance(order_id, int):
                self.seen.setdefault(order_id, now)

    async def _poll(self, link: str) -> None:
        while True:
            await asyncio.sleep(self._interval)
            changes = await self._stack.dataverse.changes_since(link)
            self._note(changes.rows)
            link = changes.delta_link or link


class PipelineStack:
    def __init__(self, state_dir: Path, setup: Setup, log_path: Path) -> None:
        self.setup = setup
        self.token = new_demo_token()
        self._log = log_path.open("w")
        mapping = seed.write_mapping(state_dir / "mapping.yaml")
        env = {
            "LOG_LEVEL": "WARNING",
            "CONNECTOR_BATCHING": setup.batching,
            "CONNECTOR_FLOW_FILE": str(setup.flow_file),
            "CONNECTOR_MAPPING_FILE": str(mapping),
            "LOCAL_DATAVERSE_EXTRA_TOKENS": self.token,
            "LOCAL_BIGCOMMERCE_QUOTA": setup.quota,
            "LOCAL_BIGCOMMERCE_LATENCY_MS": f"{setup.latency.bigcommerce_ms:g}",
            "LOCAL_DATAVERSE_LATENCY_MS": f"{setup.latency.dataverse_ms:g}",
            # Reconciliation would also read the store: not what is measured here.
            "AzureWebJobs.reconcile.Disabled": "true",
        }
        self.host = HostProcess(state_dir, env=env, log=self._log)
        self.stack: Stack | None = None
        self._hook_headers: dict[str, str] = {}
        self._client_secret = ""

    async def start(self) -> Stack:
        await asyncio.to_thread(self.host.wait_ready)
        stack = self.stack = Stack(self.host, self.token)
        await seed.seed_dataverse(stack)
        keys, secrets = self.host.keys(), self.host.secrets()
        self._hook_headers = {
            "x-functions-key": keys["default"],
            "X-Webhook-Secret": secrets["webhook_secret"],
        }
        self._client_secret = secrets["client_secret"]
        for scope in SIMULATOR_SCOPES:
            await stack.store.create_hook(
                HookCreate(scope=scope, destination=self.webhook_url, headers=self._hook_headers)
            )
        return stack

    @property
    def webhook_url(self) -> str:
        return f"{self.host.url}/api/webhooks/bigcommerce"

    def _webhooks(self, order_id: int, status_id: int) -> list[Request]:
        """What BigCommerce sends about a new order (local/bigcommerce/changes.py shapes)."""
        events: list[tuple[str, dict[str, Any]]] = [
            ("store/order/created", {"type": "order", "id": order_id})
        ]
        if status_id not in NOT_CAPTURED:
            events.append(
                (
                    "store/order/transaction/created",
                    {
                        "type": "transaction",
                        "order_id": str(order_id),
                        "transaction_id": f"bench-{order_id}",
                        "transaction_status": "complete",
                        "transaction_type": "capture",
                    },
                )
            )
        now = datetime.now(UTC)
        requests = []
        for scope, data in events:
            store_hash = self._stack().store_hash
            callback = build_callback(store_hash, STORE_ID, scope, data, int(now.timestamp()))
            headers = request_headers(
                self._hook_headers,
                msg_id=f"msg_bench_{callback.event_hash}",
                body=callback.body,
                client_secret=self._client_secret,
                now=now,
            )
            requests.append(Request(self.webhook_url, callback.body, headers))
        return requests

    def close(self) -> None:
        try:
            self.host.stop()
        finally:
            self._log.close()

    async def aclose(self) -> None:
        if self.stack is not None:
            await self.stack.aclose()
        await asyncio.to_thread(self.close)

    # -- load -----------------------------------------------------------------------------------

    async def offer(
        self, rate: float, seconds: float, offered: Offered, seed_base: int, tick: float = 0.2
    ) -> None:
        """New orders at `rate` per second for `seconds`: every `tick`, as many as are due."""
        stack = self._stack()
        total = math.floor(rate * seconds)
        stream = Stream()
        offered.started = time.time()
        made = step = 0
        try:
            while made < total:
                step += 1
                due = min(total, math.floor(rate * step * tick))
                if due > made:
                    asked = time.time()
                    response = await stack.sim.post(
                        f"/__sim/stores/{stack.store_hash}/orders/generate",
                        json={"count": due - made, "seed": seed_base + step, "incomplete_share": 0},
                    )
                    response.raise_for_status()
                    body = response.json()
                    for order_id in body["ids"]:
                        offered.asked_at[int(order_id)] = asked
                        for webhook in self._webhooks(order_id, body["statuses"][str(order_id)]):
                            stream.send(webhook)
                    made = due
                await asyncio.sleep(max(0.0, offered.started + step * tick - time.time()))
            offered.ended = time.time()
            await stream.drain()
        finally:
            stream.close()
        statuses = stream.result.statuses
        if set(statuses) - {200}:
            raise RuntimeError(f"the webhook function answered {statuses}")

    async def wait_for(self, watch: SalesorderWatch, ids: set[int], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ids <= watch.seen.keys():
                return True
            await asyncio.sleep(0.25)
        return ids <= watch.seen.keys()

    # -- what the connector sent ------------------------------------------------------------------

    async def bigcommerce_requests(self) -> list[tuple[float, int]]:
        """Wall time and status of the connector's requests to the store (the bench's own go to
        the admin API, which the log does not record, except for registering the webhooks)."""
        stack = self._stack()
        response = await stack.sim.get("/__sim/requests", params={"store": stack.store_hash})
        response.raise_for_status()
        return [(_wall(r["time"]), int(r["status"])) for r in response.json()]

    async def dataverse_requests(self) -> list[tuple[float, int]]:
        """Wall time and status of the connector's requests to Dataverse (its own identity)."""
        stack = self._stack()
        response = await stack.dataverse_admin.get("/__sim/requests")
        response.raise_for_status()
        return [
            (_wall(r["time"]), int(r["status"]))
            for r in response.json()
            if r.get("identity") == CONNECTOR_IDENTITY
        ]

    def _stack(self) -> Stack:
        if self.stack is None:
            raise RuntimeError("the stack is not started")
        return self.stack


@contextlib.asynccontextmanager
async def pipeline(
    setup: Setup, keep: Mapping[str, Path] | None = None
) -> AsyncIterator[PipelineStack]:
    """A started, seeded stack in a temporary state directory, stopped on the way out."""
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        state = Path(tmp) / "state"
        state.mkdir()
        log = (keep or {}).get("log") or Path(tmp) / "host.log"
        running = PipelineStack(state, setup, log)
        try:
            await running.start()
            yield running
        finally:
            await running.aclose()


def in_window(times: list[float], start: float, end: float) -> int:
    return sum(1 for t in times if start <= t < end)


def busiest(times: list[float], span: float, start: float, end: float) -> int:
    """The most of `times` in any `span` seconds within [start, end)."""
    chosen = sorted(t for t in times if start <= t < end)
    best, low = 0, 0
    for high, t in enumerate(chosen):
        while chosen[low] <= t - span:
            low += 1
        best = max(best, high - low + 1)
    return best


def utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
