"""`make demo` is an example that runs as a test: the main job must pass on the embedded default."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from local.stack.host_process import REPO, clean_environ, free_port

pytestmark = pytest.mark.e2e


def test_demo_queues_every_delivered_webhook_exactly_once(tmp_path: Path) -> None:
    report = tmp_path / "demo-report.json"
    env = {
        **clean_environ(),
        "LOCAL_FUNCTIONS_PORT": str(free_port()),
        "LOCAL_BIGCOMMERCE_PORT": str(free_port()),
        "LOCAL_DATAVERSE_PORT": str(free_port()),
        "LOCAL_STATE_DIR": str(tmp_path / "state"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "local.demo", "--orders", "12", "--report", str(report)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(report.read_text())
    assert figures["orders"] == 12
    assert figures["sessions"] == 12
    assert figures["lost"] == 0
    assert figures["duplicate_records"] == 0
    assert figures["queued"] == figures["events"] > 12
    assert figures["duplicate_deliveries"] > 0, "the simulator delivered some events twice"
