"""`make chaos` at a tenth of its size: 200 orders through the whole lifecycle with every fault
at once (local/chaos/__init__.py says which). Nothing may be lost, duplicated, mismatched or
parked without a reason; and every kind of fault must actually have happened, or the run would
prove nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from local.chaos.__main__ import COUNTERS
from local.stack.host_process import REPO, clean_environ

ORDERS = 200


@pytest.mark.e2e
def test_the_chaos_run_loses_duplicates_and_mismatches_nothing(tmp_path: Path) -> None:
    report = tmp_path / "chaos-report.json"
    env = {**clean_environ(), "LOCAL_STATE_DIR": str(tmp_path / "state")}
    result = subprocess.run(
        [sys.executable, "-m", "local.chaos", "--orders", str(ORDERS), "--report", str(report)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert report.exists(), result.stdout + result.stderr
    figures = json.loads(report.read_text())
    problems = figures["problems"]
    assert figures["settled"], problems
    assert {name: figures[name] for name in COUNTERS} == dict.fromkeys(COUNTERS, 0), problems
    assert figures["orders"] == ORDERS
    assert figures["synced"] == ORDERS
    assert figures["shipments"] > 0
    assert figures["refunds"] > 0
    not_injected = [kind for kind, count in figures["faults"].items() if count <= 0]
    assert not_injected == [], figures["faults"]
    assert figures["reconcile"]["final_sweeps"] >= 1
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS" in result.stdout
