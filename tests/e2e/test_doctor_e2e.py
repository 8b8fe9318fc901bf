"""`python -m cli doctor` against the local stack, as an operator runs it after `make start`.

One local host for the module (`python -m local.host`: function host, local broker, the store
simulator, the Dataverse stand-in, the SQLite state file), with the reconciliation timer kept
quiet so that nothing repairs the hooks behind the test's back. The operator's shell sources the
`stack.env` the host writes; the hooks are registered with `python -m cli webhooks register`,
and the doctor is told where they belong (WEBHOOK_DESTINATION_URL, WEBHOOK_FUNCTION_KEY).

Each test breaks one thing (a missing scope, a revoked privilege, a deactivated hook, a frozen
Dataverse stand-in, a dead store simulator) and expects its row to fail with its hint while the
other rows still report; each puts things back, except the last, which kills the simulator.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.dataverse.security import APPLICATION_ID
from local.stack.env_file import ENV_FILE, read_env_file
from local.stack.plan import LOCAL_STORE_HASH
from tests.support.host_process import REPO, HostProcess, alive, children_of, clean_environ

pytestmark = pytest.mark.e2e

STORE = LOCAL_STORE_HASH
NEVER = "0 0 0 1 1 *"  # the reconciliation timer (which also repairs hooks) stays out of the way
# Generous: the machine is shared, and only a frozen endpoint should ever reach it.
TIMEOUT = "30"
FROZEN_TIMEOUT = "8"
DATAVERSE_ROWS = ("dataverse", "dataverse privileges", "dataverse schema")
STORE_ROWS = (f"bigcommerce {STORE}", f"webhooks {STORE}")


# -- the stack ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    state_dir = tmp_path_factory.mktemp("doctor") / "state"
    running = HostProcess(state_dir, env={"RECONCILE_SCHEDULE": NEVER}).wait_ready()
    try:
        registered = cli(
            running, "webhooks", "register", "--store", STORE, "--url", ingress(running)
        )
        assert registered.returncode == 0, registered.stderr + registered.stdout
        yield running
    finally:
        pids = children_of(running.pid)
        for pid in pids:  # a stand-in a test froze and could not thaw
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        running.stop()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)


def ingress(host: HostProcess) -> str:
    return f"{host.url}/api/webhooks/bigcommerce"


def operator_env(host: HostProcess) -> dict[str, str]:
    """A shell that sourced the stack's `stack.env`, told where the hooks belong."""
    return {
        **clean_environ(),
        **read_env_file(host.state_dir / ENV_FILE),
        "WEBHOOK_DESTINATION_URL": ingress(host),
        "WEBHOOK_FUNCTION_KEY": host.keys()["default"],
    }


def cli(host: HostProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=REPO,
        env=operator_env(host),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def doctor(host: HostProcess, timeout: str = TIMEOUT) -> tuple[int, dict[str, dict[str, Any]]]:
    """The exit code and each row by name."""
    ran = cli(host, "doctor", "--json", "--timeout", timeout)
    assert ran.returncode in (0, 1), ran.stderr + ran.stdout
    body = json.loads(ran.stdout)
    rows = {row["name"]: row for row in body["checks"]}
    assert body["ok"] is (ran.returncode == 0)
    return ran.returncode, rows


def failed(rows: dict[str, dict[str, Any]]) -> set[str]:
    return {name for name, row in rows.items() if row["status"] == "fail"}


def child(host: HostProcess, module: str) -> int:
    """The pid of the stand-in the host started as `python -m <module>`."""
    for pid in children_of(host.pid):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if module.encode() in cmdline:
                return pid
    raise AssertionError(f"no {module} child of the host")


def store_api(host: HostProcess) -> httpx.Client:
    return httpx.Client(
        base_url=f"{host.bigcommerce_url}/stores/{STORE}",
        headers={"X-Auth-Token": host.secrets()["access_token"]},
        timeout=30,
    )


# -- the tests ------------------------------------------------------------------------------------


def test_the_privileges_checked_are_the_app_client_id_s_application_user(host: HostProcess) -> None:
    known = cli(host, "doctor", "--json", "--app-client-id", APPLICATION_ID)
    rows = {row["name"]: row for row in json.loads(known.stdout)["checks"]}
    assert known.returncode == 0, known.stdout + known.stderr
    assert rows["dataverse privileges"]["detail"].startswith("application user ")

    unknown_id = "00000000-0000-4000-8000-000000000001"
    unknown = cli(host, "doctor", "--json", "--app-client-id", unknown_id)
    rows = {row["name"]: row for row in json.loads(unknown.stdout)["checks"]}
    assert unknown.returncode == 1
    assert failed(rows) == {"dataverse privileges"}
    assert (
        rows["dataverse privileges"]["detail"]
        == f"no application user for app client id {unknown_id}"
    )


def test_the_doctor_passes_against_the_local_stack(host: HostProcess) -> None:
    table = cli(host, "doctor", "--timeout", TIMEOUT)
    assert table.returncode == 0, table.stdout + table.stderr
    assert table.stdout.splitlines()[-1].startswith("all checks passed: 11 passed, 0 warning(s)")
    assert "FAIL" not in table.stdout

    code, rows = doctor(host)

    assert code == 0
    assert list(rows) == [
        "settings",
        "secrets",
        "queue order-events",
        "queue dataverse-events",
        "queue order-parked",
        *DATAVERSE_ROWS,
        *STORE_ROWS,
        "state store",
    ]
    assert {row["status"] for row in rows.values()} == {"pass"}
    assert rows[f"webhooks {STORE}"]["detail"].startswith(f"3 hooks active at {ingress(host)}")
    assert rows["dataverse schema"]["detail"].endswith("alternate keys Active")


def test_a_missing_scope_fails_the_store_row_and_nothing_else(host: HostProcess) -> None:
    with httpx.Client(base_url=host.bigcommerce_url, timeout=30) as sim:
        # What BigCommerce answers an API account without the Orders scope (bigcommerce.md §5).
        fault = {"path_prefix": f"/stores/{STORE}/v2/order_statuses", "status": 403, "count": 1}
        assert sim.post("/__sim/faults", json=fault).status_code in (200, 201)
        try:
            code, rows = doctor(host)
        finally:
            sim.delete("/__sim/faults")

    assert code == 1
    assert failed(rows) == {f"bigcommerce {STORE}"}
    row = rows[f"bigcommerce {STORE}"]
    assert row["detail"] == "403, a scope is missing for: order statuses (Orders)"
    assert "Orders: modify" in row["hint"]


def test_a_revoked_dataverse_privilege_fails_the_privileges_row(host: HostProcess) -> None:
    admin = f"http://127.0.0.1:{host.ports.dataverse}/__sim/settings"
    with httpx.Client(timeout=30) as client:
        revoked = {"revoked_privileges": ["prvWritesalesorder"]}
        assert client.put(admin, json=revoked).status_code == 200
        try:
            code, rows = doctor(host)
        finally:
            client.put(admin, json={"revoked_privileges": []})

    assert code == 1
    assert failed(rows) == {"dataverse privileges"}
    assert "write salesorder (prvWritesalesorder)" in rows["dataverse privileges"]["detail"]
    assert "security role" in rows["dataverse privileges"]["hint"]


def test_a_deactivated_hook_fails_the_webhooks_row(host: HostProcess) -> None:
    with store_api(host) as api:
        hooks = {h["scope"]: h for h in api.get("/v3/hooks").json()["data"]}
        order = hooks["store/order/*"]
        assert api.put(f"/v3/hooks/{order['id']}", json={"is_active": False}).status_code == 200
        try:
            code, rows = doctor(host)
        finally:
            api.put(f"/v3/hooks/{order['id']}", json={"is_active": True})

    assert code == 1
    assert failed(rows) == {f"webhooks {STORE}"}
    row = rows[f"webhooks {STORE}"]
    assert row["detail"] == f"store/order/* (hook {order['id']}) inactive"
    assert f"webhooks register --store {STORE}" in row["hint"]


def test_a_frozen_dataverse_standin_fails_its_rows_and_the_others_still_report(
    host: HostProcess,
) -> None:
    # SIGSTOP: the port still accepts connections, nothing answers; the timeout ends the wait.
    standin = child(host, "local.dataverse")
    os.kill(standin, signal.SIGSTOP)
    try:
        code, rows = doctor(host, FROZEN_TIMEOUT)
    finally:
        os.kill(standin, signal.SIGCONT)

    assert code == 1
    assert failed(rows) == set(DATAVERSE_ROWS)
    dataverse = rows["dataverse"]
    assert dataverse["detail"].endswith(f"no answer within {FROZEN_TIMEOUT}s")
    assert "the stand-in must be running" in dataverse["hint"]
    assert rows["dataverse schema"]["detail"] == "not checked: dataverse failed"
    assert all(rows[name]["status"] == "pass" for name in STORE_ROWS)


def test_a_stopped_store_simulator_fails_its_rows_and_the_others_still_report(
    host: HostProcess,
) -> None:
    # Last: the simulator is not started again.
    os.kill(child(host, "local.bigcommerce"), signal.SIGKILL)

    code, rows = doctor(host)

    assert code == 1
    assert failed(rows) == set(STORE_ROWS)
    for name in STORE_ROWS:
        assert rows[name]["detail"].startswith(f"{host.bigcommerce_url}: TransportError")
        assert "store simulator is running" in rows[name]["hint"]
    assert all(rows[name]["status"] == "pass" for name in DATAVERSE_ROWS)
