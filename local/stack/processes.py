"""Starts stand-ins as child processes and makes sure none outlives the stack.

Each child asks the kernel to send it SIGTERM when its parent dies (Linux PR_SET_PDEATHSIG), so
even a SIGKILLed host leaves no orphan; a normal stop terminates, then kills, each child.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} after {timeout:.0f}s")


@dataclass
class Child:
    name: str
    port: int
    process: subprocess.Popen[bytes]


class Children:
    def __init__(self) -> None:
        self._children: list[Child] = []

    def start(self, name: str, module: str, port: int, args: Sequence[str] = ()) -> Child:
        process = subprocess.Popen(
            [sys.executable, "-m", module, "--port", str(port), *args],
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            env=os.environ.copy(),
        )
        child = Child(name, port, process)
        self._children.append(child)
        wait_for_port(port, process)
        return child

    def pids(self) -> list[int]:
        return [c.process.pid for c in self._children]

    def stop(self, grace: float = 5.0) -> None:
        for child in self._children:
            if child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + grace
        for child in self._children:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        self._children.clear()
