"""The local host's pieces that need no process: routes, keys, schedules, host.json, the plan."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from local.host import host_json
from local.host.broker_source import threads_for
from local.host.host_json import ServiceBusOptions
from local.host.http_server import compile_route
from local.host.indexing import IndexedApp, IndexingError, resolve
from local.host.keys import load_or_create
from local.host.timers import Schedule
from local.stack.plan import LOCAL_STORE_HASH, Ports, plan
from local.stack.settings_file import load_values


@pytest.mark.parametrize(
    ("template", "path", "params"),
    [
        ("webhooks/bigcommerce", "/api/webhooks/bigcommerce", {}),
        ("webhooks/bigcommerce", "/API/Webhooks/BigCommerce/", {}),
        ("orders/{id:int}", "/api/orders/42", {"id": "42"}),
        ("orders/{id}/lines/{line}", "/api/orders/a/lines/b", {"id": "a", "line": "b"}),
        ("files/{*rest}", "/api/files/a/b/c", {"rest": "a/b/c"}),
        ("items/{id?}", "/api/items", {"id": None}),
    ],
)
def test_route_templates_match(template: str, path: str, params: dict[str, str | None]) -> None:
    match = compile_route("api", template).match(path)
    assert match is not None
    assert match.groupdict() == params


@pytest.mark.parametrize(
    ("template", "path"),
    [("orders/{id:int}", "/api/orders/x"), ("health", "/health"), ("health", "/api/healthz")],
)
def test_route_templates_refuse(template: str, path: str) -> None:
    assert compile_route("api", template).match(path) is None


def test_keys_are_generated_once_and_checked_by_level(tmp_path: Path) -> None:
    keys = load_or_create(tmp_path / "keys.json")
    assert load_or_create(tmp_path / "keys.json") == keys
    assert (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600
    assert keys.allows("ANONYMOUS", None)
    assert keys.allows("FUNCTION", keys.default)
    assert keys.allows("FUNCTION", keys.master)
    assert not keys.allows("FUNCTION", None)
    assert not keys.allows("FUNCTION", "x")
    assert keys.allows("ADMIN", keys.master)
    assert not keys.allows("ADMIN", keys.default)


def test_ncrontab_has_six_fields_with_seconds_first() -> None:
    start = datetime(2026, 1, 1, 0, 1, 30, tzinfo=UTC)
    assert Schedule("0 */5 * * * *").next_after(start) == datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    assert Schedule("*/10 * * * * *").next_after(start) == start + timedelta(seconds=10)
    assert Schedule("00:00:30").next_after(start) == start + timedelta(seconds=30)
    for bad in ("*/5 * * * *", "61 * * * * *", "nonsense"):
        with pytest.raises(ValueError, match=r"NCRONTAB|six fields"):
            Schedule(bad)


def test_binding_expressions_resolve_from_settings() -> None:
    assert resolve("%QUEUE%-dlq", {"QUEUE": "orders"}) == "orders-dlq"
    with pytest.raises(IndexingError, match="%MISSING%"):
        resolve("%MISSING%", {})


def test_host_json_values_and_defaults(tmp_path: Path) -> None:
    repo_options = host_json.load(Path(__file__).resolve().parents[2] / "host.json")
    assert repo_options.route_prefix == "api"
    assert repo_options.service_bus.max_concurrent_sessions == 256
    assert repo_options.service_bus.session_idle_timeout == timedelta(milliseconds=500)
    defaults = host_json.load(tmp_path / "missing.json")
    assert defaults.service_bus.session_idle_timeout == timedelta(seconds=60)
    assert host_json.parse_timespan("1.02:03:04.5") == timedelta(
        days=1, hours=2, minutes=3, seconds=4.5
    )


def test_app_settings_override_host_json_as_in_azure(tmp_path: Path) -> None:
    path = tmp_path / "host.json"
    path.write_text(json.dumps({"extensions": {"serviceBus": {"maxConcurrentCalls": 8}}}))
    environ = {
        "AzureFunctionsJobHost__extensions__serviceBus__maxAutoLockRenewalDuration": "00:00:10",
        "AzureFunctionsJobHost__Extensions__ServiceBus__MaxConcurrentCalls": "3",
        "AzureFunctionsJobHost__extensions__serviceBus__autoCompleteMessages": "false",
        "AzureFunctionsJobHost__functionTimeout": "00:01:00",
        "functionTimeout": "00:00:01",  # not an override
    }
    options = host_json.load(path, environ)
    assert options.service_bus.max_auto_lock_renewal == timedelta(seconds=10)
    assert options.service_bus.max_concurrent_calls == 3
    assert options.service_bus.auto_complete is False
    assert options.function_timeout == timedelta(minutes=1)
    assert host_json.load(path, {}).service_bus.max_auto_lock_renewal == timedelta(minutes=5)


def test_the_broker_source_has_a_thread_for_every_pump_and_some_to_spare() -> None:
    queues = [SimpleNamespace(sessions=True), SimpleNamespace(sessions=False)]
    app = cast(IndexedApp, SimpleNamespace(queues=queues))
    small = ServiceBusOptions(max_concurrent_calls=8, max_concurrent_sessions=32)
    assert threads_for(app, small) == 64  # the floor
    big = ServiceBusOptions(max_concurrent_calls=8, max_concurrent_sessions=96)
    assert threads_for(app, big) == 96 + 8 + 16


def test_local_settings_values_never_override_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {"A": "from-file", "B": "from-file"}}))
    env = {"A": "from-env"}
    assert load_values(path, env) == ["B"]
    assert env == {"A": "from-env", "B": "from-file"}


def test_stand_ins_are_the_default_and_real_endpoints_replace_them(tmp_path: Path) -> None:
    local = plan({}, tmp_path)
    assert local.simulate_bigcommerce
    assert local.simulate_dataverse
    assert local.local_broker
    assert local.env["BIGCOMMERCE_STORES"] == LOCAL_STORE_HASH
    assert local.env["DATAVERSE_URL"] == "http://127.0.0.1:7073"
    assert local.env["STATE_TRANSPORT"] == "local"
    assert plan({}, tmp_path).env == local.env, "local secrets are generated once"
    real = plan(
        {
            "BIGCOMMERCE_STORES": "abc123",
            "DATAVERSE_URL": "https://contoso.crm.dynamics.com",
            "ServiceBusConnection__fullyQualifiedNamespace": "ns.servicebus.windows.net",
            "STATE_TABLE_ENDPOINT": "https://acct.table.core.windows.net",
        },
        tmp_path,
    )
    assert not real.simulate_bigcommerce
    assert not real.simulate_dataverse
    assert not real.local_broker
    assert real.env == {}


def test_ports_are_validated() -> None:
    assert Ports.from_env({"LOCAL_FUNCTIONS_PORT": "9000"}).functions == 9000
    with pytest.raises(ValueError, match="LOCAL_DATAVERSE_PORT"):
        Ports.from_env({"LOCAL_DATAVERSE_PORT": "http"})
