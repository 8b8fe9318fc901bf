"""The `webhooks` CLI commands, run in-process against the BigCommerce store simulator over HTTP
(`python -m local.bigcommerce`, tests/support/bigcommerce_sim.py), with the local state file."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, main
from local.state import SqliteStateStore
from shared.reconciliation.webhook_health import HOOKS_PARTITION
from tests.support.bigcommerce_sim import (
    STORE_A,
    TOKENS,
    WEBHOOK_SECRET,
    SimulatorProcess,
    running_simulator,
)

pytestmark = pytest.mark.e2e

URL = "http://127.0.0.1:9/api/webhooks/bigcommerce"  # nothing listens: no event is raised
EXCEPTION_URL = URL + "?source=delivery-exception"
FUNCTION_KEY = "cli-function-key-42"
SCOPES = ["store/hook/deliveryException", "store/order/*", "store/shipment/*"]


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorProcess]:
    with running_simulator() as process:
        yield process


@pytest.fixture
def api(simulator: SimulatorProcess) -> Iterator[httpx.Client]:
    """The store's hooks API with the connector's token (the same API account)."""
    with httpx.Client(base_url=simulator.url, timeout=10) as admin:
        admin.post("/__sim/reset").raise_for_status()
        admin.post("/__sim/webhooks/reset", json={"hooks": True}).raise_for_status()
    with httpx.Client(
        base_url=f"{simulator.url}/stores/{STORE_A}/v3",
        headers={"X-Auth-Token": TOKENS[STORE_A], "Accept": "application/json"},
        timeout=10,
    ) as client:
        yield client


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "state.sqlite3"


@pytest.fixture(autouse=True)
def environment(
    monkeypatch: pytest.MonkeyPatch, simulator: SimulatorProcess, state_path: Path
) -> pytest.MonkeyPatch:
    prefix = f"BIGCOMMERCE_{STORE_A.upper()}_"
    for name in ("WEBHOOK_DESTINATION_URL", "WEBHOOK_FUNCTION_KEY", "BIGCOMMERCE_WEBHOOK_SCOPES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "BIGCOMMERCE_STORES": STORE_A,
        "BIGCOMMERCE_API_URL": simulator.url,
        prefix + "ACCESS_TOKEN": TOKENS[STORE_A],
        prefix + "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "DATAVERSE_URL": "http://127.0.0.1:9",
        "SERVICEBUS_TRANSPORT": "local",
        "STATE_TRANSPORT": "local",
        "LOCAL_STATE_DB": str(state_path),
    }.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def hooks(api: httpx.Client) -> list[dict[str, Any]]:
    response = api.get("/hooks")
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["data"]
    return sorted(found, key=lambda h: h["scope"])


def hook_of(api: httpx.Client, scope: str) -> dict[str, Any]:
    return next(h for h in hooks(api) if h["scope"] == scope)


def register(*extra: str) -> int:
    return main(["webhooks", "register", "--store", STORE_A, "--url", URL, *extra])


def no_secrets(captured: Any) -> None:
    for text in (captured.out, captured.err):
        assert WEBHOOK_SECRET not in text
        assert FUNCTION_KEY not in text
        assert TOKENS[STORE_A] not in text


async def _state(path: Path, partition: str, key: str) -> dict[str, Any] | None:
    store = SqliteStateStore(path)
    try:
        entity = await store.get(partition, key)
        return None if entity is None else dict(entity.value)
    finally:
        await store.close()


async def _set_watermark(path: Path, value: datetime) -> None:
    store = SqliteStateStore(path)
    try:
        await store.upsert("watermarks", f"{STORE_A}.orders", {"watermark": value.isoformat()})
    finally:
        await store.close()


# -- register -------------------------------------------------------------------------------------


def test_register_creates_the_hooks_and_a_second_run_has_nothing_to_change(
    api: httpx.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    assert register("--function-key", FUNCTION_KEY) == EXIT_OK
    first = capsys.readouterr()
    no_secrets(first)
    assert first.out.count("created hook ") == 3
    assert "nothing to change" not in first.out
    made = hooks(api)
    assert [h["scope"] for h in made] == SCOPES
    assert [h["destination"] for h in made] == [EXCEPTION_URL, URL, URL]
    expected = {"X-Webhook-Secret": WEBHOOK_SECRET, "x-functions-key": FUNCTION_KEY}
    assert all(h["headers"] == expected and h["is_active"] for h in made)
    for hook in made:  # the state of each hook is printed
        line = next(row for row in first.out.splitlines() if row.startswith(str(hook["id"])))
        assert hook["scope"] in line
        assert "active" in line
        assert "x-functions-key,X-Webhook-Secret" in line

    assert register("--function-key", FUNCTION_KEY) == EXIT_OK
    second = capsys.readouterr()
    assert "nothing to change" in second.out
    assert [h["id"] for h in hooks(api)] == [h["id"] for h in made]
    # and without the key, the hooks keep the one they have
    assert register() == EXIT_OK
    assert "nothing to change" in capsys.readouterr().out


def test_a_dry_run_shows_the_changes_and_makes_none(
    api: httpx.Client, capsys: pytest.CaptureFixture[str], state_path: Path
) -> None:
    assert register("--dry-run", "--function-key", FUNCTION_KEY) == EXIT_OK
    out = capsys.readouterr().out
    assert out.count("would create") == 3
    assert "dry run: 3 change(s), nothing changed" in out
    assert hooks(api) == []
    assert not state_path.exists()


def test_register_re_enables_repoints_and_fixes_headers_and_sets_the_sweep_back(
    api: httpx.Client, capsys: pytest.CaptureFixture[str], state_path: Path
) -> None:
    assert register("--function-key", FUNCTION_KEY) == EXIT_OK
    order = hook_of(api, "store/order/*")
    shipment = hook_of(api, "store/shipment/*")
    api.put(f"/hooks/{order['id']}", json={"is_active": False}).raise_for_status()
    api.put(
        f"/hooks/{shipment['id']}",
        json={"destination": "http://127.0.0.1:8/api/webhooks/bigcommerce", "headers": {}},
    ).raise_for_status()
    later = datetime.now(UTC) + timedelta(hours=1)
    asyncio.run(_set_watermark(state_path, later))
    capsys.readouterr()

    assert register("--function-key", FUNCTION_KEY) == EXIT_OK

    out = capsys.readouterr().out
    assert f"re-enabled hook {order['id']}" in out
    assert f"repointed + fixed headers of hook {shipment['id']}" in out
    assert "order sweep of e2estore1 set back to" in out
    assert all(h["is_active"] for h in hooks(api))
    assert hook_of(api, "store/shipment/*")["destination"] == URL
    watermark = asyncio.run(_state(state_path, "watermarks", f"{STORE_A}.orders"))
    assert watermark is not None
    assert datetime.fromisoformat(watermark["watermark"]) < datetime.now(UTC)
    record = asyncio.run(_state(state_path, HOOKS_PARTITION, STORE_A))
    assert record is not None
    assert record["trigger"] == "cli"
    assert {tuple(r["action"]) for r in record["repairs"]} >= {
        ("reenable",),
        ("destination", "headers"),
    }
    assert register("--function-key", FUNCTION_KEY) == EXIT_OK
    assert "nothing to change" in capsys.readouterr().out


def test_register_prints_json(api: httpx.Client, capsys: pytest.CaptureFixture[str]) -> None:
    assert register("--json", "--function-key", FUNCTION_KEY) == EXIT_OK
    captured = capsys.readouterr()
    no_secrets(captured)
    body = json.loads(captured.out)
    assert body["hooks_created"] == 3
    assert body["healthy"] is True
    assert sorted(h["scope"] for h in body["hooks"]) == SCOPES


def test_without_the_function_key_missing_hooks_are_reported_not_created(
    api: httpx.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    register("--json")
    body = json.loads(capsys.readouterr().out)
    assert body["hooks_created"] == 0
    assert body["healthy"] is False
    assert hooks(api) == []


def test_register_refuses_an_unknown_store_and_a_bad_url(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["webhooks", "register", "--store", "nosuch", "--url", URL]) == EXIT_USAGE
    assert "nosuch" in capsys.readouterr().err
    code = main(["webhooks", "register", "--store", STORE_A, "--url", "http://example.com/x"])
    assert code == EXIT_USAGE
    assert "https" in capsys.readouterr().err


# -- status ---------------------------------------------------------------------------------------


def test_status_shows_each_hook_and_what_would_be_done(
    api: httpx.Client, capsys: pytest.CaptureFixture[str], environment: pytest.MonkeyPatch
) -> None:
    environment.setenv("WEBHOOK_DESTINATION_URL", URL)
    environment.setenv("WEBHOOK_FUNCTION_KEY", FUNCTION_KEY)
    assert main(["webhooks", "status"]) == EXIT_FAILURE  # no hooks yet
    out = capsys.readouterr().out
    assert f"store {STORE_A}: needs attention" in out
    assert out.count("would create") == 3
    assert "last check: none recorded" in out

    assert register() == EXIT_OK
    capsys.readouterr()
    assert main(["webhooks", "status", "--store", STORE_A]) == EXIT_OK
    captured = capsys.readouterr()
    no_secrets(captured)
    assert f"store {STORE_A}: healthy" in captured.out
    assert "last check: " in captured.out
    for hook in hooks(api):
        line = next(r for r in captured.out.splitlines() if r.startswith(str(hook["id"])))
        assert hook["scope"] in line
        assert hook["destination"] in line
        assert " active " in line

    order = hook_of(api, "store/order/*")
    api.put(f"/hooks/{order['id']}", json={"is_active": False}).raise_for_status()
    assert main(["webhooks", "status", "--json"]) == EXIT_FAILURE
    (store,) = json.loads(capsys.readouterr().out)
    assert store["healthy"] is False
    (listed,) = [h for h in store["hooks"] if h["id"] == order["id"]]
    assert listed["status"] == "inactive"
    assert listed["problem"] == "inactive: re-enable"
    assert listed["headers"] == ["x-functions-key", "X-Webhook-Secret"]
    assert store["repairs"][0]["action"] == ["reenable"]
    assert store["recorded"]["trigger"] == "cli"
    assert store["blocked_domains"] == []
    assert not hook_of(api, "store/order/*")["is_active"]  # status changed nothing


def test_status_without_the_destination_url_reports_missing_hooks(
    api: httpx.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    api.post(
        "/hooks", json={"scope": "store/order/*", "destination": URL, "is_active": False}
    ).raise_for_status()
    assert main(["webhooks", "status"]) == EXIT_FAILURE
    out = capsys.readouterr().out
    assert "WEBHOOK_DESTINATION_URL not set" in out
    assert "missing: store/shipment/*" in out
    assert "missing: store/hook/deliveryException" in out
    assert "would re-enable hook" in out


def test_status_of_an_unknown_store_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["webhooks", "status", "--store", "nosuch"]) == EXIT_USAGE
    assert capsys.readouterr().err.count("\n") == 1
