"""The `ingest` benchmark: signed webhooks through the local host into the local broker.

Side by side in one run, on one server: the webhook function (authenticate, validate, enqueue
durably, answer) and a floor endpoint answering a bare 202, both at the same fixed rate. Beside
the latencies, the host's CPU time per request (all its threads, from /proc): a figure far less
noisy than a p99 on a shared two-core VM, for telling whether a change made the path cheaper.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import uvloop
from standardwebhooks import Webhook

from bench.load import Request, Result, closed_loop, open_loop, percentile
from local.broker import LocalBroker
from local.stack.host_process import REPO, HostProcess
from local.stack.plan import LOCAL_STORE_HASH

APP = REPO / "bench" / "ingest_app"
_T = TypeVar("_T")


def _run(load: Coroutine[Any, Any, _T]) -> _T:
    # uvloop, as the host uses: the generator's own cost per request lands on the same two cores.
    return uvloop.run(load)


def _webhooks(host: HostProcess, count: int, tag: str) -> list[Request]:
    secrets = host.secrets()
    signer = Webhook(secrets["client_secret"].encode())
    url = f"{host.url}/api/webhooks/bigcommerce"
    key = host.keys()["default"]
    now = datetime.now(UTC)
    requests = []
    for i in range(count):
        body = json.dumps(
            {
                "scope": "store/order/updated",
                "store_id": "1001",
                "data": {"type": "order", "id": 1 + i % 5000},
                "hash": f"{tag}-{i:08d}",
                "created_at": int(now.timestamp()),
                "producer": f"stores/{LOCAL_STORE_HASH}",
            }
        ).encode()
        msg_id = f"msg_{tag}_{i}"
        headers = {
            "content-type": "application/json",
            "x-functions-key": key,
            "x-webhook-secret": secrets["webhook_secret"],
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(msg_id, now, body.decode()),
        }
        requests.append(Request(url, body, headers))
    return requests


def _floor(host: HostProcess, count: int) -> list[Request]:
    body = b'{"scope":"store/order/updated"}'
    headers = {"content-type": "application/json"}
    return [Request(f"{host.url}/api/bench/floor", body, headers) for _ in range(count)]


def _cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _check(result: Result, expected: int, what: str) -> None:
    if set(result.statuses) != {expected}:
        raise RuntimeError(f"{what}: unexpected statuses {result.statuses}")


def run(rate: float = 500, seconds: float = 30, max_seconds: float = 5) -> dict[str, Any]:
    count = int(rate * seconds)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        host = HostProcess(Path(tmp) / "state", script_root=APP, env={"LOG_LEVEL": "WARNING"})
        host.wait_ready()
        try:
            warm = _run(closed_loop(_webhooks(host, 300, "warm") + _floor(host, 300), 8))
            if set(warm.statuses) != {200, 202}:
                raise RuntimeError(f"warm-up: unexpected statuses {warm.statuses}")
            floor_requests = _floor(host, count)
            cpu = _cpu_seconds(host.pid)
            floor = _run(open_loop(floor_requests, rate))
            floor_cpu = _cpu_seconds(host.pid) - cpu
            _check(floor, 202, "floor")
            ingest_requests = _webhooks(host, count, "rate")
            cpu = _cpu_seconds(host.pid)
            ingest = _run(open_loop(ingest_requests, rate))
            ingest_cpu = _cpu_seconds(host.pid) - cpu
            _check(ingest, 200, "ingest")
            max_requests = _webhooks(host, int(max(rate, 1000) * max_seconds), "max")
            maximum = _run(closed_loop(max_requests, 32))
            _check(maximum, 200, "max")
            rss = _peak_rss_mb(host.pid)
        finally:
            host.stop()
        broker = LocalBroker(Path(tmp) / "state" / "broker.sqlite3")
        queued = broker.queue_info("order-events").active_count
        expected = 300 + count + len(max_requests)
        if queued != expected:
            raise RuntimeError(f"ingest lost messages: {queued} queued of {expected} accepted")
    floor_p99 = percentile(floor.latencies_ms, 0.99)
    ingest_p99 = percentile(ingest.latencies_ms, 0.99)
    return {
        "rate_rps": round(ingest.rate, 1),
        "p50_ms": round(percentile(ingest.latencies_ms, 0.5), 2),
        "p99_ms": round(ingest_p99, 2),
        "max_rps": round(maximum.rate, 1),
        "floor_p50_ms": round(percentile(floor.latencies_ms, 0.5), 2),
        "floor_p99_ms": round(floor_p99, 2),
        "ratio_p99_to_floor": round(ingest_p99 / floor_p99, 2) if floor_p99 else None,
        "peak_rss_mb": rss,
        "host_cpu_ms_per_request": round(ingest_cpu / count * 1000, 3),
        "floor_host_cpu_ms_per_request": round(floor_cpu / count * 1000, 3),
        "requests": count,
        "target_rps": rate,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
