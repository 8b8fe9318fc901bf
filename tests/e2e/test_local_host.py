"""The local host, as a real process: HTTP triggers, queue triggers, timers, keys, shutdown."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import httpx
import pytest

from local.broker import LocalBroker
from shared.messaging.message import OutboundMessage
from tests.support.host_process import (
    REPO,
    alive,
    children_of,
    running_host,
    start_host,
    wait_until,
)

SAMPLE_APP = REPO / "tests" / "fixtures" / "sample_app"
pytestmark = pytest.mark.e2e


def events(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


@pytest.fixture
def sample_host(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {"SAMPLE_APP_EVENTS": str(tmp_path / "events.jsonl"), "SAMPLE_QUEUE": "sample"}
    with running_host(tmp_path, SAMPLE_APP, env) as host:
        yield host


def test_real_app_health_through_the_host(tmp_path: Path) -> None:
    with running_host(tmp_path) as host, httpx.Client(base_url=host.url, timeout=10) as client:
        response = client.get("/api/health")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert body["status"] == "ok"
        assert body["stores"] == 1
        assert client.post("/api/health").status_code == 405
        assert client.get("/api/nothing-here").status_code == 404


def test_http_routes_keys_and_failures(sample_host) -> None:  # type: ignore[no-untyped-def]
    keys = sample_host.keys()
    with httpx.Client(base_url=sample_host.url, timeout=10) as client:
        assert client.get("/api/items/7").status_code == 401
        assert client.get("/api/items/7", params={"code": "wrong"}).status_code == 401
        by_query = client.get("/api/items/7", params={"code": keys["default"], "q": "x"})
        assert by_query.status_code == 200
        assert by_query.json()["item_id"] == "7"
        assert by_query.json()["q"] == "x"
        by_header = client.get("/API/Items/8", headers={"x-functions-key": keys["master"]})
        assert by_header.json()["item_id"] == "8"
        assert by_header.json()["invocation_id"] != by_query.json()["invocation_id"]
        # {item_id:int} does not match a word: no route.
        assert client.get("/api/items/abc", params={"code": keys["default"]}).status_code == 404
        # ADMIN takes the master key only.
        assert client.get("/api/admin/ping", params={"code": keys["default"]}).status_code == 401
        assert client.get("/api/admin/ping", params={"code": keys["master"]}).text == "pong"
        echoed = client.post("/api/echo", content=b"hello")
        assert (echoed.status_code, echoed.content, echoed.headers["x-echo"]) == (
            201,
            b"hello",
            "1",
        )
        assert client.get("/api/echo").status_code == 405
        assert client.get("/api/boom").status_code == 500


def test_queue_triggers_sessions_redelivery_and_batches(sample_host, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    broker = LocalBroker(sample_host.state_dir / "broker.sqlite3")
    broker.send(
        "sample",
        [
            OutboundMessage(b"a1", "m1", session_id="a", application_properties={"scope": "s"}),
            OutboundMessage(b"fail", "m2", session_id="a"),
            OutboundMessage(b"a3", "m3", session_id="a"),
            OutboundMessage(b"b1", "m4", session_id="b"),
        ],
    )
    broker.send("sample-batch", [OutboundMessage(str(i).encode(), f"b{i}") for i in range(3)])
    log = tmp_path / "events.jsonl"

    def delivered() -> list[dict[str, object]]:
        return [e for e in events(log) if e["kind"] == "message"]

    wait_until(lambda: len(delivered()) == 4)
    by_session = {s: [e["body"] for e in delivered() if e["session_id"] == s] for s in ("a", "b")}
    # One session's messages stay in order, the failed one retried before the next is taken.
    assert by_session == {"a": ["a1", "fail", "a3"], "b": ["b1"]}
    retried = next(e for e in delivered() if e["body"] == "fail")
    assert retried["delivery_count"] == 2
    assert next(e for e in delivered() if e["body"] == "a1")["scope"] == "s"
    wait_until(lambda: any(e["kind"] == "batch" for e in events(log)))
    batches = [e["bodies"] for e in events(log) if e["kind"] == "batch"]
    assert sorted(b for batch in batches for b in batch) == ["0", "1", "2"]  # type: ignore[attr-defined]
    wait_until(lambda: broker.queue_info("sample").active_count == 0)


def test_timer_runs_on_startup_and_on_schedule(sample_host, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "events.jsonl"
    wait_until(lambda: sum(e["kind"] == "timer" for e in events(log)) >= 3, timeout=10)


def test_sigint_stops_the_host_and_every_stand_in(tmp_path: Path) -> None:
    host = start_host(tmp_path)
    children = children_of(host.pid)
    assert len(children) >= 2, "the simulator and the Dataverse stand-in run as child processes"
    assert host.stop(signal.SIGINT) == 0
    wait_until(lambda: not any(alive(pid) for pid in children), timeout=10)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{host.url}/api/health", timeout=1)


def test_stand_ins_die_with_a_killed_host(tmp_path: Path) -> None:
    host = start_host(tmp_path)
    children = children_of(host.pid)
    os.kill(host.pid, signal.SIGKILL)
    host.process.wait(timeout=10)
    wait_until(lambda: not any(alive(pid) for pid in children), timeout=10)
