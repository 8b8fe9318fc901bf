"""The local stack the demo runs on, and the demo's own clients to it.

`start_host` starts `python -m local.host` (function host, local broker, BigCommerce store
simulator, Dataverse stand-in) on the embedded default, with the demo's flow and mapping files.
`Stack` holds what the demo itself talks to:

- the store through the connector's own BigCommerce client, sent with the demo's User-Agent and
  through a `RequestCounter`, so that the demo's calls can be told from the connector's in the
  simulator's request log (which does not record the User-Agent);
- the Dataverse stand-in through the connector's own `DataverseClient`, as a second identity
  (`LOCAL_DATAVERSE_EXTRA_TOKENS`): its requests are logged under that identity, and they do not
  eat into the connector's service protection budget;
- both stand-ins' admin APIs (`/__sim`), and the broker file.
"""

from __future__ import annotations

import os
import secrets
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TextIO

import httpx
from pydantic import SecretStr

from local.broker import LocalBroker
from local.stack.host_process import HostProcess
from local.stack.plan import LOCAL_STORE_HASH
from shared.bigcommerce.client import BigCommerceClient
from shared.bigcommerce.registry import BigCommerceClients
from shared.bigcommerce.session import ClientOptions as BigCommerceOptions
from shared.config import StoreSettings
from shared.dataverse.auth import StaticTokenProvider
from shared.dataverse.client import ClientOptions as DataverseOptions
from shared.dataverse.client import DataverseClient
from shared.version import VERSION

DEMO_USER_AGENT: Final = f"bciom-demo/{VERSION}"
# The stand-in names its identities by token order: LOCAL_DATAVERSE_TOKEN (the connector's) is
# identity-1, the first LOCAL_DATAVERSE_EXTRA_TOKENS (the demo's) identity-2.
CONNECTOR_IDENTITY: Final = "identity-1"
# The store's API quota during the demo: an Enterprise-plan store (the simulator's default is the
# Standard plan's 150 requests per 30 s, which would make the demo wait on the quota, not on the
# connector). LOCAL_BIGCOMMERCE_QUOTA in the environment wins.
STORE_QUOTA: Final = "15000/30"
# Dataverse's service protection limit during the demo: requests per identity and web server
# (the documented 6,000 per 5 minutes), times ten web servers, as a production environment has
# several and spreads the load over them. LOCAL_DATAVERSE_REQUEST_LIMIT in the environment wins.
DATAVERSE_REQUEST_LIMIT: Final = "60000/300"
# The combined execution time allowed in the same window, likewise ten web servers' worth of the
# documented 1,200,000 ms per 5 minutes: a busy demo on one server's would wait minutes on it.
DATAVERSE_EXECUTION_LIMIT: Final = "12000000/300"
# Settings the caller may set to place the stack (ports) or shape it (quota, latency, limits).
PASSED_THROUGH: Final = (
    "LOCAL_FUNCTIONS_PORT",
    "LOCAL_BIGCOMMERCE_PORT",
    "LOCAL_DATAVERSE_PORT",
    "LOCAL_BIGCOMMERCE_QUOTA",
    "LOCAL_BIGCOMMERCE_LATENCY_MS",
    "LOCAL_DATAVERSE_LATENCY_MS",
    "LOCAL_DATAVERSE_REQUEST_LIMIT",
    "LOCAL_DATAVERSE_EXECUTION_LIMIT",
)


def start_host(
    state_dir: Path, log: TextIO, *, flow_file: Path, mapping_file: Path, demo_token: str
) -> HostProcess:
    """The local host on the embedded default, started and ready."""
    env = {
        "LOG_LEVEL": "WARNING",
        "LOCAL_BIGCOMMERCE_QUOTA": STORE_QUOTA,
        "LOCAL_DATAVERSE_REQUEST_LIMIT": DATAVERSE_REQUEST_LIMIT,
        "LOCAL_DATAVERSE_EXECUTION_LIMIT": DATAVERSE_EXECUTION_LIMIT,
        "CONNECTOR_FLOW_FILE": str(flow_file),
        "CONNECTOR_MAPPING_FILE": str(mapping_file),
        "LOCAL_DATAVERSE_EXTRA_TOKENS": demo_token,
        **{k: v for k, v in os.environ.items() if k in PASSED_THROUGH},
    }
    return HostProcess.started(state_dir, env, log)


def new_demo_token() -> str:
    return secrets.token_urlsafe(24)


class RequestCounter(httpx.AsyncBaseTransport):
    """A transport that counts the requests it sends by (method, path)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.sent: Counter[tuple[str, str]] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent[(request.method, request.url.path)] += 1
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class Stack:
    host: HostProcess
    demo_token: str
    counter: RequestCounter = field(default_factory=RequestCounter)
    bigcommerce: BigCommerceClients = field(init=False)
    dataverse: DataverseClient = field(init=False)
    sim: httpx.AsyncClient = field(init=False)  # the store simulator's admin API
    dataverse_admin: httpx.AsyncClient = field(init=False)  # the stand-in's admin API
    broker: LocalBroker = field(init=False)

    def __post_init__(self) -> None:
        host = self.host
        secret = host.secrets()
        settings = StoreSettings(
            store_hash=LOCAL_STORE_HASH,
            access_token=SecretStr(secret["access_token"]),
            webhook_secret=SecretStr(secret["webhook_secret"]),
        )
        self.bigcommerce = BigCommerceClients(
            [settings],
            options=BigCommerceOptions(user_agent=DEMO_USER_AGENT, max_connections=16),
            base_urls={LOCAL_STORE_HASH: host.bigcommerce_url},
            transport=self.counter,
        )
        self.dataverse = DataverseClient(
            self.dataverse_url,
            StaticTokenProvider(self.demo_token),
            options=DataverseOptions(user_agent=DEMO_USER_AGENT),
        )
        headers = {"User-Agent": DEMO_USER_AGENT}
        self.sim = httpx.AsyncClient(base_url=host.bigcommerce_url, timeout=120, headers=headers)
        self.dataverse_admin = httpx.AsyncClient(
            base_url=self.dataverse_url, timeout=60, headers=headers
        )
        self.broker = LocalBroker(self.broker_path)

    @property
    def state_dir(self) -> Path:
        return self.host.state_dir

    @property
    def broker_path(self) -> Path:
        return self.state_dir / "broker.sqlite3"

    @property
    def dataverse_url(self) -> str:
        return f"http://127.0.0.1:{self.host.ports.dataverse}"

    @property
    def store(self) -> BigCommerceClient:
        return self.bigcommerce.get(LOCAL_STORE_HASH)

    @property
    def store_hash(self) -> str:
        return LOCAL_STORE_HASH

    async def aclose(self) -> None:
        await self.bigcommerce.aclose()
        await self.dataverse.aclose()
        await self.sim.aclose()
        await self.dataverse_admin.aclose()
        self.broker.close()
