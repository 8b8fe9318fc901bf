"""End-to-end helpers around the local host process and /proc."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from local.stack.host_process import REPO, HostProcess, children_of, clean_environ, free_port

__all__ = [
    "REPO",
    "HostProcess",
    "alive",
    "children_of",
    "run_host_expecting_failure",
    "running_host",
    "start_host",
    "wait_until",
]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def start_host(
    tmp_path: Path, script_root: Path = REPO, env: Mapping[str, str] | None = None
) -> HostProcess:
    return HostProcess(tmp_path / "state", script_root=script_root, env=env).wait_ready()


@contextlib.contextmanager
def running_host(
    tmp_path: Path, script_root: Path = REPO, env: Mapping[str, str] | None = None
) -> Iterator[HostProcess]:
    host = start_host(tmp_path, script_root, env)
    try:
        yield host
    finally:
        pids = children_of(host.pid)
        host.stop()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)


def run_host_expecting_failure(
    tmp_path: Path, env: Mapping[str, str], timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    full_env = {
        **clean_environ(),
        "LOCAL_STATE_DIR": str(tmp_path / "state"),
        "LOCAL_FUNCTIONS_PORT": str(free_port()),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "local.host", "--no-settings-file"],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_until(
    predicate: Callable[[], object], timeout: float = 15, interval: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
