"""The operator's CLI against a test stack: `python -m cli ...` in a subprocess, with the
settings the stack's host runs with, as an operator's shell on that machine would hold them."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from local.stack.host_process import REPO, clean_environ
from local.stack.plan import plan
from tests.support.lifecycle import STORE, LifecycleStack


def cli_environ(stack: LifecycleStack, **extra: str) -> dict[str, str]:
    """The host's settings (the stack's plan over its environment) for the CLI."""
    planned = plan(stack.env, stack.state_dir)
    return {
        **clean_environ(),
        **stack.env,
        **planned.env,
        "LOCAL_STATE_DIR": str(stack.state_dir),
        "LOCAL_BROKER_PATH": str(planned.broker_path),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def run_cli(stack: LifecycleStack, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=REPO,
        env=cli_environ(stack, **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def run_json(stack: LifecycleStack, *args: str) -> tuple[int, dict[str, Any], str]:
    """`python -m cli <args> --json`: exit code, the JSON it printed, stderr."""
    done = run_cli(stack, *args, "--json")
    try:
        report = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(
            f"no JSON report (exit {done.returncode}):\n{done.stdout!r}\n{done.stderr}"
        ) from None
    return done.returncode, report, done.stderr


def store_metrics(report: dict[str, Any]) -> dict[str, Any]:
    """The one store's metrics in a `reconcile --json` report."""
    (outcome,) = report["stores"]
    assert outcome["store_hash"] == STORE
    metrics: dict[str, Any] = outcome["metrics"]
    return metrics
