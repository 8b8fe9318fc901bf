"""`python -m <module>` as a child process with its output kept: the local host and the
stand-ins run this way for the demo, the benchmarks and end-to-end tests.

The child runs from the repository root. Its stdout and stderr, merged, are read line by line
on a daemon thread into `output`, so a chatty child never blocks on a full pipe, and a child
that fails to start can be reported with what it said.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class ModuleProcess:
    def __init__(self, module: str, args: Sequence[str], env: Mapping[str, str]) -> None:
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=REPO,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line.rstrip("\n"))
            self.on_line(line)

    def on_line(self, line: str) -> None:
        """Each line the child writes (newline included), on the reading thread."""

    @property
    def pid(self) -> int:
        return self.process.pid

    def failure(self, message: str) -> RuntimeError:
        """An error with `message` and everything the child has written so far."""
        return RuntimeError(f"{message}:\n" + "\n".join(self.output))
