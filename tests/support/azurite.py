"""Azurite's Table service as a child process, for the state store's contract suite.

Azurite (the official Azure Storage emulator) is an npm package pinned in package.json;
`make test` installs it with `npm ci` into node_modules/. `azurite_tables()` starts the Table
service on a free loopback port with its files in a temporary folder, waits until the port
answers, yields a connection string, and stops the process (its whole process group) at the
end. The tests skip only when the azurite binary is absent (node_modules not installed).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[2]
AZURITE_TABLE: Final = REPO / "node_modules" / ".bin" / "azurite-table"
# The emulator's well-known development account (public, documented by Microsoft).
ACCOUNT: Final = "devstoreaccount1"
ACCOUNT_KEY: Final = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
START_TIMEOUT: Final = 60.0


@dataclass(frozen=True)
class Azurite:
    port: int
    connection_string: str
    started_in: float  # seconds from spawn to the port answering


def missing_reason() -> str | None:
    """Why Azurite cannot run here, or None. Only its absence is a reason to skip."""
    if not AZURITE_TABLE.exists():
        return (
            f"azurite is not installed ({AZURITE_TABLE.relative_to(REPO)} is missing): "
            "run `npm ci` at the repository root (make test does)"
        )
    if shutil.which("node") is None:
        return "azurite is installed but node is not on PATH"
    return None


def connection_string(port: int) -> str:
    return (
        "DefaultEndpointsProtocol=http;"
        f"AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"TableEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def azurite_tables() -> Iterator[Azurite]:
    """Runs Azurite's Table service until the block ends; RuntimeError if it does not start."""
    with tempfile.TemporaryDirectory(prefix="azurite-") as workspace:
        port = _free_port()
        log = Path(workspace) / "azurite.log"
        command = [
            str(AZURITE_TABLE),  # what `npx --no-install azurite-table` runs, minus npx
            "--tableHost",
            "127.0.0.1",
            "--tablePort",
            str(port),
            "--location",
            workspace,
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",  # no traffic off this machine
        ]
        started = time.monotonic()
        with log.open("wb") as output:
            process = subprocess.Popen(
                command,
                cwd=workspace,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # one process group: stopped as one
            )
        try:
            while not _answers(port):
                if process.poll() is not None:
                    tail = log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"azurite exited with {process.returncode}: {tail}")
                if time.monotonic() - started > START_TIMEOUT:
                    raise RuntimeError(f"azurite did not answer on port {port} in {START_TIMEOUT}s")
                time.sleep(0.05)
            yield Azurite(port, connection_string(port), time.monotonic() - started)
        finally:
            _stop(process)
