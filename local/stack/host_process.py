"""Runs `python -m local.host` as a child process: for the demo, the benchmarks and e2e tests.

The child starts from this environment without any connector setting, so it runs on the
embedded default (stand-ins and the local broker) unless the caller passes settings explicitly.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TextIO

from local.stack.module_process import REPO, ModuleProcess
from local.stack.plan import Ports

READY_LINE = "Press Ctrl-C to stop."
CONNECTOR_PREFIXES = (
    "BIGCOMMERCE_",
    "DATAVERSE_",
    "ServiceBusConnection",
    "SERVICEBUS_",
    "WEBHOOK_",
    "LOCAL_",
)


def clean_environ() -> dict[str, str]:
    """This process's environment without connector settings: the stack's embedded default."""
    return {k: v for k, v in os.environ.items() if not k.startswith(CONNECTOR_PREFIXES)}


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


def wait_ports_free(ports: Iterable[int], timeout: float = 15) -> None:
    """Until each loopback port can be bound again (or `timeout` runs out)."""
    deadline = time.monotonic() + timeout
    for port in ports:
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    time.sleep(0.1)
                    continue
                break


class HostProcess(ModuleProcess):
    def __init__(
        self,
        state_dir: Path,
        *,
        script_root: Path = REPO,
        env: Mapping[str, str] | None = None,
        free_ports: bool = True,
        log: TextIO | None = None,
    ) -> None:
        self.state_dir = state_dir
        full_env = {
            **clean_environ(),
            "LOCAL_STATE_DIR": str(state_dir),
            "PYTHONUNBUFFERED": "1",
            # The demo, benchmarks and tests register the hooks they want: the webhook health
            # check must not add its own at the host (`make start` points them there).
            "WEBHOOK_DESTINATION_URL": "",
            "WEBHOOK_FUNCTION_KEY": "",
        }
        if free_ports:
            for name in ("LOCAL_FUNCTIONS_PORT", "LOCAL_BIGCOMMERCE_PORT", "LOCAL_DATAVERSE_PORT"):
                full_env[name] = str(free_port())
        full_env.update(env or {})
        self.ports = Ports.from_env(full_env)
        self.port = self.ports.functions
        self._log = log
        self._ready = threading.Event()
        super().__init__(
            "local.host", ["--script-root", str(script_root), "--no-settings-file"], full_env
        )

    @classmethod
    def started(cls, state_dir: Path, env: Mapping[str, str], log: TextIO) -> HostProcess:
        """A host on the ports `env` names (not free ones: a restart comes back on them),
        ready; killed if it does not get there."""
        host = cls(state_dir, env=env, free_ports=False, log=log)
        try:
            host.wait_ready()
        except BaseException:
            if host.process.poll() is None:
                host.process.kill()
            raise
        return host

    def on_line(self, line: str) -> None:
        if self._log is not None:
            self._log.write(line)
            self._log.flush()
        if READY_LINE in line:
            self._ready.set()

    def wait_ready(self, timeout: float = 60) -> HostProcess:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.process.poll() is not None:
                time.sleep(0.2)
                raise self.failure(f"the local host exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                self.process.kill()
                raise self.failure(f"the local host did not start in {timeout:.0f}s")
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def bigcommerce_url(self) -> str:
        """The store simulator the host started (when BigCommerce is simulated)."""
        return f"http://127.0.0.1:{self.ports.bigcommerce}"

    def keys(self) -> dict[str, str]:
        data = json.loads((self.state_dir / "host-keys.json").read_text())
        return {"master": data["masterKey"], "default": data["functionKeys"]["default"]}

    def secrets(self) -> dict[str, str]:
        """The simulated store's generated credentials."""
        loaded: dict[str, str] = json.loads((self.state_dir / "stack-secrets.json").read_text())
        return loaded

    def kill(self, also_free: Iterable[int] = ()) -> None:
        """SIGKILL, as a crash or an out-of-memory kill would: no clean-up runs. The stand-ins it
        started go too (one holding a request open would otherwise linger on its port after its
        PR_SET_PDEATHSIG SIGTERM). On return the host's port, and `also_free`, can be bound."""
        children = children_of(self.pid)
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_ports_free([self.ports.functions, *also_free])

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
