"""Writes the stack's settings to `<state dir>/stack.env`, for the operator CLI.

The local host fills in what it decides (the stand-ins' URLs, the generated tokens and secrets,
the broker and state files); the CLI reads only its own environment, so a shell pointed at
`make start` sources this file first: `. .local/stack.env && python -m cli doctor`. Each line is
`export NAME='value'`; the file is readable by its owner only, as it holds the stack's secrets.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Final

ENV_FILE: Final = "stack.env"
# The connector's settings (shared/config/settings.py) and the local stack's.
PREFIXES: Final = (
    "BIGCOMMERCE_",
    "DATAVERSE_",
    "ServiceBusConnection",
    "SERVICEBUS_",
    "WEBHOOK_",
    "STATE_",
    "CONNECTOR_",
    "RECONCILE_",
    "LOCAL_",
)
NAMES: Final = ("AZURE_CLIENT_ID", "LOG_LEVEL")


def settings_of(environ: Mapping[str, str]) -> dict[str, str]:
    return {
        name: value
        for name, value in sorted(environ.items())
        if name.startswith(PREFIXES) or name in NAMES
    }


def write_env_file(path: Path, environ: Mapping[str, str]) -> Path:
    lines = [f"export {name}={shlex.quote(value)}" for name, value in settings_of(environ).items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("# The local stack's settings, written by `make start`; source it.\n")
        out.write("\n".join(lines) + "\n")
    tmp.replace(path)
    return path


def read_env_file(path: Path) -> dict[str, str]:
    """The settings a `write_env_file` file holds (what sourcing it would export)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("export "):
            continue
        name, _, quoted = line.removeprefix("export ").partition("=")
        (value,) = shlex.split(quoted) or [""]
        values[name] = value
    return values
