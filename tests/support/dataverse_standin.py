"""The Dataverse Web API stand-in as a real process, for end-to-end tests of the client.

    with running_standin(provisioned=True) as dv:          # python -m local.dataverse --port P
        async with StandinAdmin(dv) as admin:              # the /__sim admin API
            client = dv.client()                           # the real DataverseClient, aimed at it
            ...
            log = await admin.requests()                   # every request it received

`running_standin` starts `python -m local.dataverse --port P` on a free 127.0.0.1 port with a clean
environment (no connector setting of this process leaks in: `clean_environ()`) plus the token,
`LOCAL_DATAVERSE_PROVISIONED` and the `LOCAL_DATAVERSE_*` settings given, waits for
`/_standin/health`, and stops it with SIGINT (SIGKILL if it hangs). Without `LOCAL_DATAVERSE_DB`
its SQLite database is in memory: every process starts empty.

How the stand-in logs a request (`local/dataverse/standin.py`, `StandIn.handle` and `_record`):
`time` is the wall clock (`datetime.now(UTC)`, microseconds) read once the answer is ready, so it
is when the request *ended*, just before the answer is written to the socket; `duration_ms` is
the monotonic time from the start of `handle` (after the body was read) to that point, rounded to
the microsecond. `LoggedRequest.started` (`time - duration`) is therefore when the stand-in began
handling the request, never before it arrived, and `ended` is before the client could read the
answer.

`ExchangeRecorder` wraps the client's real transport and notes each exchange as the client saw it,
on the same wall clock (`time.time()`, the same system clock the stand-in reads): when the request
left, when the answer came back, its status and `Retry-After`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import httpx

from local.stack import service_processes
from local.stack.host_process import clean_environ
from shared.dataverse.auth import StaticTokenProvider
from shared.dataverse.client import ClientOptions, DataverseClient
from shared.dataverse.gate import ThrottleGate
from shared.dataverse.metadata import HttpMetadataApi
from tests.support.admin_client import AdminClient
from tests.support.ports import start_on_a_free_port

TOKEN: Final = "e2e-dataverse-token"
# The stand-in names the identity of LOCAL_DATAVERSE_TOKEN "identity-1" (StandIn._identities).
IDENTITY: Final = "identity-1"
API_PREFIX: Final = "/api/data/v9.2/"


# -- the process -----------------------------------------------------------------------------


class StandinProcess(service_processes.StandinProcess):
    """`python -m local.dataverse --port P` (local/stack/service_processes.py), with the
    connector's clients aimed at it."""

    def __init__(
        self,
        *,
        provisioned: bool = True,
        settings: Mapping[str, str] | None = None,
        token: str = TOKEN,
        port: int | None = None,
    ) -> None:
        super().__init__(token=token, provisioned=provisioned, settings=settings, port=port)

    # -- clients aimed at it -------------------------------------------------------------------

    def client(
        self,
        *,
        options: ClientOptions | None = None,
        gate: ThrottleGate | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> DataverseClient:
        """The real Web API client as this stand-in's identity, with its own gate."""
        return DataverseClient(
            self.url,
            StaticTokenProvider(self.token),
            options=options,
            gate=gate,
            transport=transport,
        )

    def metadata_api(self) -> HttpMetadataApi:
        """Provisioning's metadata port over HTTP to this stand-in; close it after use."""
        token = self.token

        async def bearer() -> str:
            return token

        return HttpMetadataApi.for_environment(self.url, bearer)

    def cli_environ(self, **extra: str) -> dict[str, str]:
        """A minimal environment for `python -m cli` against this stand-in."""
        return {
            **clean_environ(),
            "PYTHONUNBUFFERED": "1",
            "DATAVERSE_URL": self.url,
            "LOCAL_DATAVERSE_TOKEN": self.token,
            **extra,
        }


def start_standin(
    *,
    provisioned: bool = True,
    settings: Mapping[str, str] | None = None,
    attempts: int = 3,
) -> StandinProcess:
    """A running stand-in; retried on another port if the free port was taken meanwhile."""
    return start_on_a_free_port(
        lambda: StandinProcess(provisioned=provisioned, settings=settings), attempts
    )


@contextlib.contextmanager
def running_standin(
    *, provisioned: bool = True, settings: Mapping[str, str] | None = None
) -> Iterator[StandinProcess]:
    process = start_standin(provisioned=provisioned, settings=settings)
    try:
        yield process
    finally:
        process.stop()


# -- the admin API ---------------------------------------------------------------------------


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()  # "…Z" is UTC


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One record of `GET /__sim/requests` (see the module docstring for what the times mean)."""

    ended: float  # epoch seconds, microsecond resolution: the record's `time`
    method: str
    path: str  # /api/data/v9.2/...
    query: str
    status: int
    duration_ms: float
    identity: str

    @property
    def started(self) -> float:
        return self.ended - self.duration_ms / 1000

    @property
    def operation(self) -> str:
        """The path under the Web API root: `$batch`, `EntityDefinitions(...)/Keys`, …"""
        return self.path.removeprefix(API_PREFIX)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> LoggedRequest:
        return cls(
            _epoch(str(raw["time"])),
            str(raw["method"]),
            str(raw["path"]),
            str(raw["query"]),
            int(raw["status"]),
            float(raw["duration_ms"]),
            str(raw["identity"]),
        )


class StandinAdmin(AdminClient):
    """The stand-in's `/__sim` API (no auth, loopback only)."""

    def __init__(self, standin: StandinProcess) -> None:
        super().__init__(standin.url)
        self.standin = standin

    async def tables(self) -> list[dict[str, Any]]:
        listing: list[dict[str, Any]] = await self._ok(await self.http.get("/__sim/tables"))
        return listing

    async def row_counts(self, *tables: str) -> dict[str, int]:
        """Rows per table (logical names), for the tables named or all of them."""
        counts = {t["table"]: int(t["rows"]) for t in await self.tables()}
        return {name: counts[name] for name in tables} if tables else counts

    async def keys(self) -> list[dict[str, Any]]:
        """Every alternate key with its index status (Pending, InProgress, Active, Failed)."""
        keys: list[dict[str, Any]] = await self._ok(await self.http.get("/__sim/keys"))
        return keys

    async def requests(
        self,
        *,
        method: str | None = None,
        path_prefix: str | None = None,
        status: int | None = None,
    ) -> list[LoggedRequest]:
        params = {
            name: str(value)
            for name, value in {
                "method": method,
                "path_prefix": path_prefix,
                "status": status,
            }.items()
            if value is not None
        }
        rows = await self._ok(await self.http.get("/__sim/requests", params=params))
        return [LoggedRequest.from_json(row) for row in rows]

    async def clear_requests(self) -> None:
        await self._ok(await self.http.delete("/__sim/requests"))

    async def settings(self) -> dict[str, Any]:
        current: dict[str, Any] = await self._ok(await self.http.get("/__sim/settings"))
        return current

    async def put_settings(self, **settings: Any) -> dict[str, Any]:
        updated: dict[str, Any] = await self._ok(
            await self.http.put("/__sim/settings", json=settings)
        )
        return updated

    async def add_fault(self, path_prefix: str, status: int, **options: Any) -> dict[str, Any]:
        body = {"path_prefix": path_prefix, "status": status, **options}
        fault: dict[str, Any] = await self._ok(await self.http.post("/__sim/faults", json=body))
        return fault

    async def clear_faults(self) -> None:
        await self._ok(await self.http.delete("/__sim/faults"))

    async def reset(self, *, provisioned: bool | None = None) -> None:
        """Every row, table change, fault, request record and setting change forgotten."""
        body = {} if provisioned is None else {"provisioned": provisioned}
        await self._ok(await self.http.post("/__sim/reset", json=body))


# -- the client's side of the exchange -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request as the client's transport saw it, on the wall clock (epoch seconds)."""

    method: str
    path: str
    sent: float
    received: float
    status: int
    retry_after: float | None


@dataclass
class ExchangeRecorder(httpx.AsyncBaseTransport):
    """Wraps a real transport; notes when each request left and when its answer came back."""

    inner: httpx.AsyncBaseTransport = field(default_factory=httpx.AsyncHTTPTransport)
    exchanges: list[Exchange] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent = time.time()
        response = await self.inner.handle_async_request(request)
        await response.aread()
        received = time.time()
        raw = response.headers.get("retry-after")
        retry_after = float(raw) if raw is not None and raw.strip().isdigit() else None
        self.exchanges.append(
            Exchange(
                request.method, request.url.path, sent, received, response.status_code, retry_after
            )
        )
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
