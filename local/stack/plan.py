"""Decides, from the settings present, which services are real and which are local stand-ins.

Where no real endpoint is configured the stand-in is the default; configuring a BigCommerce
store, a Dataverse URL or a Service Bus namespace makes the local host use the real one instead.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shared.config.settings import Settings

LOCAL_STORE_HASH = "localstore1"
# Settings only the one-machine stack reads; documented with the others.
LOCAL_SETTINGS = (
    "LOCAL_FUNCTIONS_PORT",
    "LOCAL_BIGCOMMERCE_PORT",
    "LOCAL_DATAVERSE_PORT",
    "LOCAL_BROKER_PATH",
    "LOCAL_BROKER_LOCK_SECONDS",
    "LOCAL_STATE_DIR",
    "LOCAL_STATE_DB",
    "LOCAL_BIGCOMMERCE_QUOTA",
    "LOCAL_BIGCOMMERCE_LATENCY_MS",
    "LOCAL_DATAVERSE_DB",
    "LOCAL_DATAVERSE_PROVISIONED",
    "LOCAL_DATAVERSE_IOM",
    "LOCAL_DATAVERSE_KEY_ACTIVATION_SECONDS",
    "LOCAL_DATAVERSE_LATENCY_MS",
    "LOCAL_DATAVERSE_REQUEST_LIMIT",
    "LOCAL_DATAVERSE_EXECUTION_LIMIT",
    "LOCAL_DATAVERSE_CONCURRENCY_LIMIT",
    "LOCAL_DATAVERSE_DOP_HINT",
    "LOCAL_DATAVERSE_EXTRA_TOKENS",
    "LOCAL_DATAVERSE_SERVICE_ENDPOINT",
)
SERVICEBUS_SETTINGS = ("ServiceBusConnection__fullyQualifiedNamespace", "ServiceBusConnection")
STATE_SETTINGS = ("STATE_TABLE_ENDPOINT", "STATE_CONNECTION_STRING")


@dataclass(frozen=True)
class Ports:
    functions: int = 7071
    bigcommerce: int = 7072
    dataverse: int = 7073

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Ports:
        def port(name: str, default: int) -> int:
            raw = environ.get(name)
            if raw is None:
                return default
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                raise ValueError(f"{name} must be a TCP port number, got {raw!r}")
            return int(raw)

        return cls(
            functions=port("LOCAL_FUNCTIONS_PORT", cls.functions),
            bigcommerce=port("LOCAL_BIGCOMMERCE_PORT", cls.bigcommerce),
            dataverse=port("LOCAL_DATAVERSE_PORT", cls.dataverse),
        )


@dataclass(frozen=True)
class StackPlan:
    ports: Ports
    simulate_bigcommerce: bool
    simulate_dataverse: bool
    local_broker: bool
    broker_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def functions_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.functions}"

    @property
    def bigcommerce_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.bigcommerce}"

    @property
    def dataverse_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.dataverse}"


def _local_secrets(state_dir: Path) -> dict[str, str]:
    path = state_dir / "stack-secrets.json"
    if path.exists():
        loaded: dict[str, str] = json.loads(path.read_text())
        return loaded
    values = {
        "access_token": secrets.token_urlsafe(24),
        "webhook_secret": secrets.token_urlsafe(24),
        "client_secret": secrets.token_urlsafe(24),
        "dataverse_token": secrets.token_urlsafe(24),
    }
    state_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


def plan(environ: Mapping[str, str], state_dir: Path) -> StackPlan:
    ports = Ports.from_env(environ)
    simulate_bc = "BIGCOMMERCE_STORES" not in environ
    simulate_dv = "DATAVERSE_URL" not in environ
    local_broker = not any(name in environ for name in SERVICEBUS_SETTINGS)
    env: dict[str, str] = {"SERVICEBUS_TRANSPORT": "local"} if local_broker else {}
    # State lives in a SQLite file (LOCAL_STATE_DB) unless a Table Storage endpoint or
    # connection string is configured; the host installs that store (local/state).
    if not any(environ.get(name) for name in STATE_SETTINGS):
        env["STATE_TRANSPORT"] = "local"
    if simulate_bc or simulate_dv:
        local = _local_secrets(state_dir)
        if simulate_bc:
            prefix = f"BIGCOMMERCE_{LOCAL_STORE_HASH.upper()}_"
            env |= {
                "BIGCOMMERCE_STORES": LOCAL_STORE_HASH,
                "BIGCOMMERCE_API_URL": f"http://127.0.0.1:{ports.bigcommerce}",
                prefix + "ACCESS_TOKEN": local["access_token"],
                prefix + "WEBHOOK_SECRET": local["webhook_secret"],
                prefix + "CLIENT_SECRET": local["client_secret"],
            }
        if simulate_dv:
            env |= {
                "DATAVERSE_URL": f"http://127.0.0.1:{ports.dataverse}",
                "LOCAL_DATAVERSE_TOKEN": local["dataverse_token"],
            }
            # The stand-in keeps its rows across restarts and starts provisioned, as an
            # environment would be after `python -m cli schema provision`; set it to 0 to try
            # provisioning itself.
            if "LOCAL_DATAVERSE_DB" not in environ:
                env["LOCAL_DATAVERSE_DB"] = str(state_dir / "dataverse.sqlite3")
            if "LOCAL_DATAVERSE_PROVISIONED" not in environ:
                env["LOCAL_DATAVERSE_PROVISIONED"] = "1"
    broker_path = Path(environ.get("LOCAL_BROKER_PATH", str(state_dir / "broker.sqlite3")))
    if simulate_bc or simulate_dv or local_broker:
        env |= _dataverse_changes(environ, simulate_dv and local_broker, broker_path)
    return StackPlan(ports, simulate_bc, simulate_dv, local_broker, broker_path, env)


def _dataverse_changes(
    environ: Mapping[str, str], standin_posts: bool, broker_path: Path
) -> dict[str, str]:
    """How Dataverse changes reach the local host. When both the Dataverse stand-in and the
    broker are local, the stand-in plays the Service Bus service endpoint (it posts to the
    broker's `dataverse-events`, LOCAL_DATAVERSE_SERVICE_ENDPOINT) and the host listens there
    (DATAVERSE_CHANGE_SOURCE=service_endpoint); a real Dataverse cannot reach the local broker,
    so it is polled. An empty LOCAL_DATAVERSE_SERVICE_ENDPOINT turns the endpoint off (and so
    the poll on). The poll and reconciliation timers bind %DATAVERSE_POLL_SCHEDULE% and
    %RECONCILE_SCHEDULE%, which must be set for a host to index the app: the stack gives them the
    settings' defaults. With every service real, nothing is
    filled in, as in Azure, where the app setting must exist."""
    env: dict[str, str] = {}
    for setting, name in (
        ("DATAVERSE_POLL_SCHEDULE", "dataverse_poll_schedule"),
        ("RECONCILE_SCHEDULE", "reconcile_schedule"),
    ):
        if setting not in environ:
            env[setting] = str(Settings.model_fields[name].default)
    if standin_posts and environ.get("LOCAL_DATAVERSE_SERVICE_ENDPOINT") != "":
        if "LOCAL_DATAVERSE_SERVICE_ENDPOINT" not in environ:
            env["LOCAL_DATAVERSE_SERVICE_ENDPOINT"] = str(broker_path.absolute())
        if "DATAVERSE_CHANGE_SOURCE" not in environ:
            env["DATAVERSE_CHANGE_SOURCE"] = "service_endpoint"
    return env
