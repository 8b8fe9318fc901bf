"""The BigCommerce store simulator as a real process, for end-to-end tests of the client.

    with running_simulator() as sim:                     # python -m local.bigcommerce --port P
        async with SimAdmin(sim) as admin:                # the /__sim admin API
            ids = await admin.generate(STORE_A, 10, seed=1)
            transport = ConformanceTransport()            # wraps a real AsyncHTTPTransport
            clients = sim.clients(transport=transport)    # BigCommerceClients aimed at it

`running_simulator` starts `python -m local.bigcommerce --port P` on a free 127.0.0.1 port with
a clean environment (no connector setting of this process leaks in) that names the stores of
`stores`, waits for `/_simulator/health`, and stops it with SIGINT (SIGKILL if it hangs).

`ConformanceTransport` observes the real traffic: every request body is validated against the
official OpenAPI files (`conformance.check_request`), every query parameter against the
operation's documented parameters, every response (`conformance.check`) as it arrives. A
violation is recorded and raised into the call. An error status the operation does not document
(a 503 fault, a 429, the simulator's 400 for over-shipping) has no schema to meet; it is recorded
in `undocumented` for the test to compare with what it provoked.

`SimTime` is simulated time as the client's clock and sleep: the simulator's clock runs at
`scale` times real time from the moment the scale was set, so `clock()` extrapolates from that
reading with the same monotonic clock. Only its intervals matter to the rate budget; the
whole-second offset of the reading does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from pydantic import SecretStr

from local.bigcommerce import conformance
from local.stack import service_processes
from shared.bigcommerce import BigCommerceClients, ClientOptions, RateLimitHeaders
from shared.bigcommerce.rate_budget import Clock, Sleep
from shared.bigcommerce.retry import Random
from shared.config.settings import StoreSettings
from tests.support.admin_client import AdminClient
from tests.support.ports import start_on_a_free_port

STORE_A = "e2estore1"
STORE_B = "e2estore2"
TOKENS = {STORE_A: "e2e-token-one", STORE_B: "e2e-token-two"}
CLIENT_SECRETS = {STORE_A: "e2e-client-secret-one", STORE_B: "e2e-client-secret-two"}
WEBHOOK_SECRET = "e2e-webhook-secret"


# -- the process -----------------------------------------------------------------------------


class SimulatorProcess(service_processes.SimulatorProcess):
    """`python -m local.bigcommerce --port P` (local/stack/service_processes.py), with the
    connector's clients aimed at it."""

    def __init__(
        self,
        stores: Mapping[str, str],
        *,
        quota: str = "150/30",
        latency_ms: str = "0",
        port: int | None = None,
    ) -> None:
        super().__init__(
            stores, quota=quota, latency_ms=latency_ms, port=port, client_secrets=CLIENT_SECRETS
        )

    def store_settings(self, store_hash: str, token: str | None = None) -> StoreSettings:
        """The connector's settings for one simulated store, its API at this process."""
        return StoreSettings(
            store_hash=store_hash,
            access_token=SecretStr(token or self.stores[store_hash]),
            webhook_secret=SecretStr(WEBHOOK_SECRET),
            api_url=self.url,
        )

    def clients(
        self,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        options: ClientOptions | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: Random | None = None,
        tokens: Mapping[str, str] | None = None,
    ) -> BigCommerceClients:
        """A client registry for every store of this simulator (`tokens` overrides some)."""
        overrides = dict(tokens or {})
        stores = [self.store_settings(h, overrides.get(h)) for h in self.stores]
        kwargs: dict[str, Any] = {"rng": rng} if rng is not None else {}
        return BigCommerceClients(
            stores, options=options, transport=transport, clock=clock, sleep=sleep, **kwargs
        )


def start_simulator(
    stores: Mapping[str, str] | None = None,
    *,
    quota: str = "150/30",
    latency_ms: str = "0",
    attempts: int = 3,
) -> SimulatorProcess:
    """A running simulator; retried on another port if the free port was taken meanwhile."""
    return start_on_a_free_port(
        lambda: SimulatorProcess(stores or TOKENS, quota=quota, latency_ms=latency_ms), attempts
    )


@contextlib.contextmanager
def running_simulator(
    stores: Mapping[str, str] | None = None, *, quota: str = "150/30", latency_ms: str = "0"
) -> Iterator[SimulatorProcess]:
    process = start_simulator(stores, quota=quota, latency_ms=latency_ms)
    try:
        yield process
    finally:
        process.stop()


# -- the admin API ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One record of `GET /__sim/requests`; `time` is simulated, in whole seconds."""

    time: float  # epoch seconds
    method: str
    path: str
    query: str
    status: int
    store_hash: str

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> LoggedRequest:
        return cls(
            datetime.fromisoformat(raw["time"]).timestamp(),
            raw["method"],
            raw["path"],
            raw["query"],
            int(raw["status"]),
            raw["store_hash"],
        )


@dataclass(frozen=True, slots=True)
class Generated:
    ids: list[int]
    statuses: dict[int, int]


class SimAdmin(AdminClient):
    """The simulator's `/__sim` API, plus raw store API access ("another app" on the store)."""

    def __init__(self, sim: SimulatorProcess) -> None:
        super().__init__(sim.url)
        self.sim = sim

    async def reset(self, *, scale: float = 1.0) -> None:
        """Every order, fault, request record, setting change and hook forgotten; real time."""
        await self._ok(await self.http.post("/__sim/reset"))
        await self._ok(await self.http.post("/__sim/webhooks/reset", json={"hooks": True}))
        await self.set_clock(scale=scale)

    async def generate(
        self, store_hash: str, count: int, *, seed: int = 1, **options: Any
    ) -> Generated:
        body = {"count": count, "seed": seed, **options}
        made = await self._ok(
            await self.http.post(f"/__sim/stores/{store_hash}/orders/generate", json=body)
        )
        return Generated(made["ids"], {int(k): v for k, v in made["statuses"].items()})

    async def set_status(self, store_hash: str, order_id: int, status_id: int) -> dict[str, Any]:
        path = f"/__sim/stores/{store_hash}/orders/{order_id}/status"
        order: dict[str, Any] = await self._ok(
            await self.http.post(path, json={"status_id": status_id})
        )
        return order

    async def add_fault(
        self, path_prefix: str, status: int, count: int = 1, method: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"path_prefix": path_prefix, "status": status, "count": count}
        if method is not None:
            body["method"] = method
        fault: dict[str, Any] = await self._ok(await self.http.post("/__sim/faults", json=body))
        return fault

    async def clear_faults(self) -> None:
        await self._ok(await self.http.delete("/__sim/faults"))

    async def faults(self) -> list[dict[str, Any]]:
        faults: list[dict[str, Any]] = await self._ok(await self.http.get("/__sim/faults"))
        return faults

    async def clock(self) -> dict[str, Any]:
        now: dict[str, Any] = await self._ok(await self.http.get("/__sim/clock"))
        return now

    async def set_clock(
        self, *, scale: float | None = None, advance_seconds: float | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if scale is not None:
            body["scale"] = scale
        if advance_seconds is not None:
            body["advance_seconds"] = advance_seconds
        now: dict[str, Any] = await self._ok(await self.http.post("/__sim/clock", json=body))
        return now

    async def sim_time(self, scale: float) -> SimTime:
        """Sets the clock's scale and answers the matching client clock and sleep."""
        before = time.monotonic()
        now = await self.set_clock(scale=scale)
        after = time.monotonic()
        # The scale took effect while the request was in flight: take the midpoint.
        return SimTime(float(now["epoch"]), (before + after) / 2, float(now["scale"]))

    async def settings(self) -> dict[str, Any]:
        current: dict[str, Any] = await self._ok(await self.http.get("/__sim/settings"))
        return current

    async def put_settings(self, **settings: Any) -> dict[str, Any]:
        updated: dict[str, Any] = await self._ok(
            await self.http.put("/__sim/settings", json=settings)
        )
        return updated

    async def requests(
        self,
        *,
        store_hash: str | None = None,
        method: str | None = None,
        path_prefix: str | None = None,
    ) -> list[LoggedRequest]:
        params = {
            k: v
            for k, v in {"store": store_hash, "method": method, "path_prefix": path_prefix}.items()
            if v
        }
        rows = await self._ok(await self.http.get("/__sim/requests", params=params))
        return [LoggedRequest.from_json(row) for row in rows]

    async def clear_requests(self) -> None:
        await self._ok(await self.http.delete("/__sim/requests"))

    async def deliveries(self, **filters: str) -> list[dict[str, Any]]:
        body = await self._ok(await self.http.get("/__sim/webhooks/deliveries", params=filters))
        rows: list[dict[str, Any]] = body["data"]
        return rows

    async def drain_webhooks(self, timeout: float = 10) -> None:
        await self._ok(await self.http.post("/__sim/webhooks/drain", params={"timeout": timeout}))

    def api(self, store_hash: str) -> httpx.AsyncClient:
        """A raw client of one store's API with its token: another app installed on the store."""
        return httpx.AsyncClient(
            base_url=f"{self.sim.url}/stores/{store_hash}",
            headers={"X-Auth-Token": self.sim.stores[store_hash], "Accept": "application/json"},
            timeout=30,
        )


# -- simulated time --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimTime:
    """The simulator's clock seen from this process: `origin_sim` (epoch seconds) at the
    monotonic instant `origin_real`, running `scale` times faster than real time."""

    origin_sim: float
    origin_real: float
    scale: float

    def clock(self) -> float:
        return self.origin_sim + (time.monotonic() - self.origin_real) * self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.scale)


# -- conformance of the real traffic ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Exchange:
    method: str
    path: str
    query: str
    status: int
    rate: RateLimitHeaders


@dataclass
class ConformanceTransport(httpx.AsyncBaseTransport):
    """Validates each request and response of the real exchange against the official specs."""

    inner: httpx.AsyncBaseTransport = field(default_factory=httpx.AsyncHTTPTransport)
    exchanges: list[Exchange] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    undocumented: list[tuple[str, str, int]] = field(default_factory=list)
    allowed: set[int] = field(default_factory=set)
    requests_checked: int = 0
    responses_checked: int = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        method, path = request.method, request.url.path
        self._guard(lambda: check_query(method, path, request.url.params.multi_items()))
        content = request.content
        if content.strip():
            body = json.loads(content)
            self._guard(lambda: conformance.check_request(method, path, body))
            self.requests_checked += 1
        elif method in ("POST", "PUT"):
            self._fail(f"{method} {path}: sent without a body")
        response = await self.inner.handle_async_request(request)
        await response.aread()
        status = response.status_code
        try:
            conformance.check(method, path, status, response.content)
        except conformance.NonConformance as exc:
            if status >= 400 and "is not documented" in str(exc):
                self._guard(lambda: _error_shape(method, path, status, response.content))
                self.undocumented.append((method, path, status))
            else:
                self._fail(str(exc))
        else:
            self.responses_checked += 1
        query = request.url.query.decode("ascii", "replace")
        rate = RateLimitHeaders.parse(response.headers)
        self.exchanges.append(Exchange(method, path, query, status, rate))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()

    def _guard(self, check: Any) -> None:
        try:
            check()
        except conformance.NonConformance as exc:
            self._fail(str(exc))

    def _fail(self, message: str) -> None:
        self.violations.append(message)
        raise conformance.NonConformance(message)

    def allow(self, *statuses: int) -> None:
        """Error statuses the test provokes that the spec does not list for the operation."""
        self.allowed.update(statuses)

    def undocumented_statuses(self) -> list[int]:
        return [status for _, _, status in self.undocumented]

    def unexpected(self) -> list[tuple[str, str, int]]:
        """Undocumented error statuses the test did not `allow`."""
        return [u for u in self.undocumented if u[2] not in self.allowed]


def _error_shape(method: str, path: str, status: int, content: bytes) -> None:
    """An error status the spec does not list still answers in the API's own error shape:
    V2 `[{"status", "message"}]`, V3 `{"status", "title"}` (or wrapped in `data`)."""
    try:
        body = json.loads(content)
    except ValueError:
        raise conformance.NonConformance(f"{method} {path} -> {status}: not JSON") from None
    if "/v2/" in path:
        ok = isinstance(body, list) and body and body[0].get("status") == status
        ok = ok and isinstance(body[0].get("message"), str)
    else:
        entry = body["data"][0] if isinstance(body, dict) and "data" in body else body
        ok = isinstance(entry, dict) and entry.get("status") == status and "title" in entry
    if not ok:
        raise conformance.NonConformance(f"{method} {path} -> {status}: not an error body: {body}")


# -- query parameters ------------------------------------------------------------------------

# `sort` is documented as an enum of field names, and in prose as `field:asc|desc`.
_SORT_DIRECTIONS = (":asc", ":desc")


def check_query(method: str, url_path: str, params: Sequence[tuple[str, str]]) -> None:
    """Each query parameter is one the operation documents, with a value of its type."""
    the_spec, path = conformance.locate(url_path)
    operation = the_spec.operation(method, path)
    item = the_spec.document["paths"][operation.path]
    declared: dict[str, dict[str, Any]] = {}
    for raw in [*item.get("parameters", []), *item[method.lower()].get("parameters", [])]:
        parameter = _resolve(the_spec.document, raw)
        if parameter.get("in") == "query":
            declared[parameter["name"]] = parameter.get("schema", {})
    for name, value in params:
        schema = declared.get(name)
        if schema is None:
            raise conformance.NonConformance(
                f"{method} {operation.path}: query parameter {name!r} is not documented "
                f"(documented: {', '.join(sorted(declared)) or 'none'})"
            )
        if name == "sort" and value.endswith(_SORT_DIRECTIONS):
            value = value.rsplit(":", 1)[0]
        values = value.split(",") if schema.get("type") == "array" else [value]
        item_schema = schema.get("items", {}) if schema.get("type") == "array" else schema
        for one in values:
            if not _fits(one, item_schema):
                raise conformance.NonConformance(
                    f"{method} {operation.path}: {name}={value!r} does not fit {item_schema}"
                )


def _resolve(document: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in node:
        target: Any = document
        for part in str(node["$ref"]).removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _fits(value: str, schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    types = kind if isinstance(kind, list) else [kind]
    if "enum" in schema and value not in [str(option) for option in schema["enum"]]:
        return False
    if "integer" in types:
        return value.lstrip("-").isdigit()
    if "number" in types:
        try:
            float(value)
        except ValueError:
            return False
        return True
    if "boolean" in types:
        return value in ("true", "false")
    return True
