"""Loads local.settings.json "Values" into the environment, as `func start` does.

A variable already set in the environment wins, so a one-off override on the command line works.
"""

from __future__ import annotations

import json
import os
from collections.abc import MutableMapping
from pathlib import Path


def load_values(path: Path, environ: MutableMapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    values = data.get("Values", {})
    if not isinstance(values, dict):
        raise ValueError(f"{path.name}: 'Values' must be an object of strings")
    applied = []
    for name, value in values.items():
        if name not in env and value is not None:
            env[name] = str(value)
            applied.append(name)
    return applied
