"""Reading the connector's versioned configuration documents (the mapping, the flow).

Both are YAML (JSON is YAML too) read once at start-up; a bad document fails with one line that
names the document, the exact key path and what is wrong, e.g.
`invalid flow: fulfillment.sources.0.priority: input should be a valid integer`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.config.errors import ConfigurationError


class At(ValueError):
    """A validation error at a key below the value being validated (`statuscode`, `EUR`, …)."""

    def __init__(self, path: str | int | tuple[str | int, ...], message: str) -> None:
        parts = path if isinstance(path, tuple) else (path,)
        self.path = tuple(str(p) for p in parts)
        self.message = message
        super().__init__(f"{'.'.join(self.path)}: {message}")


def read_document(
    source: Path, label: str, error: type[ConfigurationError], *, setting: str
) -> object:
    """The parsed YAML or JSON at `source`; `error` (one line) when it cannot be read."""
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"invalid {label}: {setting}: no file at {source}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"invalid {label}: {source}: cannot be read ({exc})") from None
    if source.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise error(
                f"invalid {label}: {source}: not valid JSON: {exc.msg} "
                f"(line {exc.lineno}, column {exc.colno})"
            ) from None
    try:
        import yaml
    except ImportError:  # PyYAML is a runtime requirement of YAML documents
        raise error(
            f"invalid {label}: {source}: reading YAML needs PyYAML (or use a .json file)"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" (line {mark.line + 1}, column {mark.column + 1})"
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise error(f"invalid {label}: {source}: not valid YAML: {problem}{where}") from None


def one_line(label: str, error: Mapping[str, Any]) -> str:
    """One pydantic error as `invalid <label>: <key path>: <message>`."""
    loc = [str(part) for part in error.get("loc", ())]
    message = str(error.get("msg", "is invalid"))
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, At):
        loc += cause.path
        message = cause.message
    elif loc and loc[-1] == "[key]":
        loc.pop()
        message = f"not a valid key: {message[:1].lower()}{message[1:]}"
    elif error.get("type") == "missing":
        message = "required"
    elif error.get("type") == "extra_forbidden":
        message = "unknown key"
    elif error.get("type") == "value_error":
        message = message.removeprefix("Value error, ")
    else:  # pydantic's own wording ("Input should be …")
        message = message[:1].lower() + message[1:]
    return f"invalid {label}: {'.'.join(loc) or label}: {message}"
