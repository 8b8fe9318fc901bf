"""`python -m cli ...` as an operator runs it, from the demo, the chaos run and end-to-end tests."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Mapping

from local.stack.host_process import REPO, clean_environ


async def run_cli(
    *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs the CLI from the repository root on a clean environment plus `env`, and returns
    its exit code and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        cwd=REPO,
        env={**clean_environ(), "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    code = process.returncode if process.returncode is not None else -1
    return subprocess.CompletedProcess(
        ["cli", *args], code, out.decode(errors="replace"), err.decode(errors="replace")
    )
