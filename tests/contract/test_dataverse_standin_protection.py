"""Dataverse stand-in: service protection limits, fault injection, the admin API, and running as
its own process.

Pinned to MicrosoftDocs/powerapps-docs, powerapps-docs/developer/data-platform/:
- api-limits.md (ms.date 01/09/2026): the three facets, their Web API codes and messages,
  `429 Too Many Requests` with `Retry-After` in seconds, limits per user, the
  `x-ms-ratelimit-*` debug headers;
- send-parallel-requests.md: the `x-ms-dop-hint` response header;
- webapi/compose-http-requests-handle-errors.md: 503 among the statuses a client sees.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from local.dataverse.config import Limits, StandinSettings, Window, parse_latency, parse_window
from local.dataverse.harness import OTHER_TOKEN, dataverse_standin
from local.dataverse.protection import ServiceProtection

REPO = Path(__file__).resolve().parents[2]


async def test_the_request_limit_answers_429_with_retry_after_per_identity() -> None:
    env = {"LOCAL_DATAVERSE_REQUEST_LIMIT": "3/300"}
    async with dataverse_standin(env=env) as dv:
        statuses = [(await dv.api.get("WhoAmI")).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        refused = await dv.api.get("WhoAmI")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 300
        assert refused.json()["error"] == {
            "code": "0x80072322",
            "message": "Number of requests exceeded the limit of 3 over time window of 300 "
            "seconds.",
        }
        async with dv.client(OTHER_TOKEN) as other:
            assert (await other.get("WhoAmI")).status_code == 200
        records = (await dv.admin.get("/__sim/requests?status=429")).json()
        assert [(r["method"], r["path"], r["identity"]) for r in records] == [
            ("GET", "/api/data/v9.2/WhoAmI", "identity-1")
        ]


async def test_successful_answers_carry_the_dop_hint_and_the_debug_headers() -> None:
    env = {"LOCAL_DATAVERSE_REQUEST_LIMIT": "10/300", "LOCAL_DATAVERSE_DOP_HINT": "8"}
    async with dataverse_standin(env=env) as dv:
        response = await dv.api.get("WhoAmI")
        assert response.headers["x-ms-dop-hint"] == "8"
        assert response.headers["x-ms-ratelimit-burst-remaining-xrm-requests"] == "9"
        assert int(response.headers["x-ms-ratelimit-time-remaining-xrm-requests"]) > 0
    async with dataverse_standin(env={"LOCAL_DATAVERSE_DOP_HINT": "0"}) as dv:
        assert "x-ms-dop-hint" not in (await dv.api.get("WhoAmI")).headers


async def test_the_execution_time_limit_answers_0x80072321() -> None:
    env = {"LOCAL_DATAVERSE_EXECUTION_LIMIT": "1/300", "LOCAL_DATAVERSE_LATENCY_MS": "5"}
    async with dataverse_standin(env=env) as dv:
        assert (await dv.api.get("WhoAmI")).status_code == 200  # takes at least 5 ms
        refused = await dv.api.get("WhoAmI")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "0x80072321"
        assert refused.json()["error"]["message"] == (
            "Combined execution time of incoming requests exceeded limit of 1  milliseconds over "
            "time window of 300 seconds. Decrease number of concurrent requests or reduce the "
            "duration of requests and try again later."
        )
        assert "Retry-After" in refused.headers


async def test_the_concurrency_limit_refuses_at_once() -> None:
    env = {"LOCAL_DATAVERSE_CONCURRENCY_LIMIT": "1", "LOCAL_DATAVERSE_LATENCY_MS": "300"}
    async with dataverse_standin(env=env) as dv:
        responses = await asyncio.gather(*(dv.api.get("WhoAmI") for _ in range(4)))
        statuses = sorted(r.status_code for r in responses)
        assert statuses[0] == 200
        assert 429 in statuses
        refused = next(r for r in responses if r.status_code == 429)
        assert refused.json()["error"] == {
            "code": "0x80072326",
            "message": "Number of concurrent requests exceeded the limit of 1.",
        }
        assert refused.headers["Retry-After"] == "1"


async def test_random_throttling_at_the_configured_rate() -> None:
    async with dataverse_standin() as dv:
        await dv.admin.put("/__sim/settings", json={"throttle_rate": 1})
        throttled = await dv.api.get("WhoAmI")
        assert throttled.status_code == 429
        assert throttled.json()["error"]["code"] == "0x80072322"
        assert throttled.headers["Retry-After"] == "1"
        await dv.admin.put("/__sim/settings", json={"throttle_rate": 0})
        assert (await dv.api.get("WhoAmI")).status_code == 200


def test_protection_windows_slide() -> None:
    now = [0.0]
    limits = Limits(requests=Window(2, 10), execution_ms=Window(1000, 10), concurrency=5)
    protection = ServiceProtection(limits, clock=lambda: now[0])
    for _ in range(2):
        protection.admit("a")
        protection.release("a", 0.001)
    with pytest.raises(Exception, match="Number of requests exceeded") as refused:
        protection.admit("a")
    assert getattr(refused.value, "headers", {})["Retry-After"] == "10"
    now[0] = 10.5
    protection.admit("a")
    assert protection.in_flight("a") == 1


async def test_injected_faults_and_timeouts() -> None:
    async with dataverse_standin() as dv:
        added = await dv.admin.post(
            "/__sim/faults", json={"path_prefix": "contacts", "status": 503, "count": 2}
        )
        assert added.status_code == 201
        first = await dv.api.get("contacts")
        assert first.status_code == 503
        assert first.json()["error"]["message"] == "Service Unavailable"
        assert (await dv.api.get("WhoAmI")).status_code == 200  # another path is untouched
        assert (await dv.api.get("contacts")).status_code == 503
        assert (await dv.api.get("contacts")).status_code == 200
        await dv.admin.post(
            "/__sim/faults",
            json={"status": 429, "limit": "concurrency", "retry_after": 7, "method": "POST"},
        )
        throttled = await dv.api.post("contacts", json={"lastname": "x"})
        assert throttled.status_code == 429
        assert throttled.headers["Retry-After"] == "7"
        assert throttled.json()["error"]["code"] == "0x80072326"
        await dv.admin.post("/__sim/faults", json={"kind": "timeout", "delay_ms": 10})
        assert (await dv.api.get("contacts")).status_code == 504
        assert (await dv.admin.get("/__sim/faults")).json() == []
        bad = await dv.admin.post("/__sim/faults", json={"status": 200})
        assert bad.status_code == 400


async def test_admin_counts_settings_and_reset() -> None:
    async with dataverse_standin(provisioned=True) as dv:
        await dv.api.post("salesorders", json={"name": "a", "order_details": [{"quantity": 1}]})
        tables = {t["table"]: t for t in (await dv.admin.get("/__sim/tables")).json()}
        assert tables["salesorder"]["rows"] == 1
        assert tables["salesorderdetail"]["rows"] == 1
        assert tables["transactioncurrency"]["rows"] == 1
        assert tables["salesorder"]["keys"] == {"bciom_salesorder_bcorder": "Active"}
        changed = await dv.admin.put(
            "/__sim/settings",
            json={
                "latency_ms": "20,5",
                "request_limit": "100/60",
                "dop_hint": 2,
                "throttle_rate": 0,
            },
        )
        assert changed.status_code == 200
        assert changed.json()["latency_ms"] == "20,5"
        assert changed.json()["request_limit"] == "100/60"
        assert (await dv.admin.put("/__sim/settings", json={"throttle_rate": 2})).status_code == 400
        log = (await dv.admin.get("/__sim/requests")).json()
        assert [(r["method"], r["status"]) for r in log] == [("POST", 204)]
        assert log[0]["duration_ms"] >= 0
        assert (await dv.admin.post("/__sim/reset", json={"provisioned": False})).status_code == 204
        tables = {t["table"]: t for t in (await dv.admin.get("/__sim/tables")).json()}
        assert tables["salesorder"]["rows"] == 0
        assert tables["salesorder"]["keys"] == {}
        settings = (await dv.admin.get("/__sim/settings")).json()
        assert settings["request_limit"] == "6000/300"
        assert (await dv.admin.get("/__sim/requests")).json() == []


async def test_the_admin_api_is_loopback_only() -> None:
    async with dataverse_standin() as dv:
        transport = httpx.ASGITransport(app=dv.app, client=("203.0.113.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://dataverse.test") as far:
            assert (await far.get("/__sim/tables")).status_code == 403
            assert (await far.get("/_standin/health")).status_code == 200


def test_settings_parse_and_refuse_nonsense() -> None:
    settings = StandinSettings.from_env(
        {
            "LOCAL_DATAVERSE_TOKEN": "a",
            "LOCAL_DATAVERSE_EXTRA_TOKENS": "b, c",
            "LOCAL_DATAVERSE_LATENCY_MS": "150,30",
            "LOCAL_DATAVERSE_PROVISIONED": "true",
        }
    )
    assert settings.tokens == ("a", "b", "c")
    assert settings.latency == parse_latency("150,30")
    assert settings.provisioned
    assert settings.db_path is None
    assert settings.limits == Limits()
    assert parse_window("6000") == Window(6000, 300)
    for name, raw in (
        ("LOCAL_DATAVERSE_LATENCY_MS", "fast"),
        ("LOCAL_DATAVERSE_REQUEST_LIMIT", "0/300"),
        ("LOCAL_DATAVERSE_PROVISIONED", "maybe"),
        ("LOCAL_DATAVERSE_KEY_ACTIVATION_SECONDS", "-1"),
    ):
        with pytest.raises(ValueError, match=name):
            StandinSettings.from_env({name: raw})


# --- as its own process ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "local.dataverse", "--port", str(port)],
        cwd=REPO,
        env={**os.environ, **env, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_standin/health").status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError(
        f"the stand-in did not start: {process.stderr.read() if process.stderr else ''!r}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_runs_alone_and_keeps_rows_in_its_database_file() -> None:
    with tempfile.TemporaryDirectory() as directory:
        env = {
            "LOCAL_DATAVERSE_TOKEN": "process-token",
            "LOCAL_DATAVERSE_DB": str(Path(directory) / "dataverse.sqlite3"),
            "LOCAL_DATAVERSE_PROVISIONED": "1",
        }
        headers = {"Authorization": "Bearer process-token"}
        port = _free_port()
        api = f"http://127.0.0.1:{port}/api/data/v9.2/"
        process = _start(port, env)
        try:
            who = httpx.get(api + "WhoAmI", headers=headers)
            assert who.status_code == 200
            assert (
                who.json()["@odata.context"]
                == f"{api}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse"
            )
            written = httpx.patch(
                api + "salesorders(bciom_storehash='s',bciom_bcorderid=1)",
                json={"name": "kept"},
                headers=headers,
            )
            assert written.status_code == 204
        finally:
            _stop(process)
        process = _start(port, {**env, "LOCAL_DATAVERSE_PROVISIONED": "0"})
        try:
            kept = httpx.get(
                api + "salesorders(bciom_storehash='s',bciom_bcorderid=1)?$select=name",
                headers=headers,
            )
            assert kept.status_code == 200
            assert kept.json()["name"] == "kept"
        finally:
            _stop(process)
