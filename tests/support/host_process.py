"""Runs `python -m local.host` as a real process on free loopback ports, for end-to-end tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
READY_LINE = "Press Ctrl-C to stop."


CONFIG_PREFIXES = ("BIGCOMMERCE_", "DATAVERSE_", "ServiceBusConnection", "LOCAL_")


def clean_environ() -> dict[str, str]:
    """This process's environment without connector settings: the stack's embedded default."""
    return {k: v for k, v in os.environ.items() if not k.startswith(CONFIG_PREFIXES)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children_of(pid: int) -> list[int]:
    """Every descendant process id, read from /proc."""
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == parent:
                    found.append(int(entry.name))
                    frontier.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@dataclass
class HostProcess:
    process: subprocess.Popen[str]
    port: int
    state_dir: Path
    output: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def keys(self) -> dict[str, str]:
        data = json.loads((self.state_dir / "host-keys.json").read_text())
        return {"master": data["masterKey"], "default": data["functionKeys"]["default"]}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def start_host(
    tmp_path: Path,
    script_root: Path = REPO,
    env: Mapping[str, str] | None = None,
    timeout: float = 30,
) -> HostProcess:
    port = free_port()
    state_dir = tmp_path / "state"
    full_env = {
        **clean_environ(),
        "LOCAL_STATE_DIR": str(state_dir),
        "LOCAL_FUNCTIONS_PORT": str(port),
        "LOCAL_BIGCOMMERCE_PORT": str(free_port()),
        "LOCAL_DATAVERSE_PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "local.host", "--script-root", str(script_root)],
        cwd=REPO,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    ready = threading.Event()

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip("\n"))
            if READY_LINE in line:
                ready.set()

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready.wait(0.05):
            return HostProcess(process, port, state_dir, output)
        if process.poll() is not None:
            time.sleep(0.2)
            raise AssertionError(f"host exited with {process.returncode}:\n" + "\n".join(output))
    process.kill()
    raise AssertionError(f"host did not start within {timeout}s:\n" + "\n".join(output))


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
        [sys.executable, "-m", "local.host"],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_until(predicate: object, timeout: float = 15, interval: float = 0.05) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@contextlib.contextmanager
def running_host(
    tmp_path: Path, script_root: Path = REPO, env: Mapping[str, str] | None = None
) -> Iterator[HostProcess]:
    host = start_host(tmp_path, script_root, env)
    try:
        yield host
    finally:
        pids = children_of(host.process.pid)
        host.stop()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
