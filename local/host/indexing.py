"""Indexes a function app the way the Python worker does, into what the local host serves.

The worker imports the script named by PYTHON_SCRIPT_FILE_NAME, finds the one top-level
FunctionApp and calls `get_functions()`; the host then reads each function's JSON metadata.
We read the same JSON, so a binding the host would not see is one we do not serve either.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import azure.functions as func


class IndexingError(Exception):
    pass


_EXPRESSION = re.compile(r"%([A-Za-z0-9_.:-]+)%")


def resolve(value: str, environ: Mapping[str, str] | None = None) -> str:
    """Resolves `%APP_SETTING%` binding expressions, as the host does for binding values."""
    env = os.environ if environ is None else environ

    def setting(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise IndexingError(f"binding expression %{name}% names an app setting that is not set")
        return env[name]

    return _EXPRESSION.sub(setting, value)


@dataclass(frozen=True)
class HttpFunction:
    name: str
    route: str
    methods: frozenset[str] | None
    auth_level: str
    arg_name: str
    user_function: Callable[..., Any]


@dataclass(frozen=True)
class QueueFunction:
    name: str
    queue_name: str
    connection: str
    sessions: bool
    many: bool
    auto_complete: bool
    arg_name: str
    user_function: Callable[..., Any]


@dataclass(frozen=True)
class TimerFunction:
    name: str
    schedule: str
    run_on_startup: bool
    arg_name: str
    user_function: Callable[..., Any]


@dataclass(frozen=True)
class IndexedApp:
    http: tuple[HttpFunction, ...]
    queues: tuple[QueueFunction, ...]
    timers: tuple[TimerFunction, ...]
    metadata: tuple[dict[str, Any], ...]


def find_app(module_name: str) -> func.FunctionRegister:
    module = importlib.import_module(module_name)
    apps = [v for v in vars(module).values() if isinstance(v, func.FunctionRegister)]
    if len(apps) > 1:
        raise IndexingError(f"more than one top-level function app instance in {module_name}")
    if not apps:
        raise IndexingError(f"could not find a top-level function app instance in {module_name}")
    return apps[0]


def disabled(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """The host's `AzureWebJobs.<function>.Disabled` app setting (underscores on Linux)."""
    env = os.environ if environ is None else environ
    for setting in (f"AzureWebJobs.{name}.Disabled", f"AzureWebJobs_{name}_Disabled"):
        if env.get(setting, "").strip().lower() in ("true", "1"):
            return True
    return False


def index(app: func.FunctionRegister, environ: Mapping[str, str] | None = None) -> IndexedApp:
    http: list[HttpFunction] = []
    queues: list[QueueFunction] = []
    timers: list[TimerFunction] = []
    metadata: list[dict[str, Any]] = []
    for function in app.get_functions():
        name = str(function.get_function_name())
        if disabled(name, environ):
            continue
        meta = json.loads(function.get_function_json())
        metadata.append({"name": name, **meta})
        triggers = [b for b in meta["bindings"] if b["type"].endswith("Trigger")]
        if len(triggers) != 1:
            raise IndexingError(f"function {name} must have exactly one trigger")
        trigger = triggers[0]
        user_function = function.get_user_function()
        kind = trigger["type"]
        if kind == "httpTrigger":
            methods = trigger.get("methods")
            http.append(
                HttpFunction(
                    name=name,
                    route=resolve(str(trigger.get("route") or name), environ),
                    methods=frozenset(m.upper() for m in methods) if methods else None,
                    auth_level=str(trigger.get("authLevel", "FUNCTION")).upper(),
                    arg_name=trigger["name"],
                    user_function=user_function,
                )
            )
        elif kind == "serviceBusTrigger":
            if "topicName" in trigger:
                raise IndexingError(f"function {name}: topic triggers are not served locally")
            queues.append(
                QueueFunction(
                    name=name,
                    queue_name=resolve(trigger["queueName"], environ),
                    connection=trigger["connection"],
                    sessions=bool(trigger.get("isSessionsEnabled", False)),
                    many=str(trigger.get("cardinality", "ONE")).upper() == "MANY",
                    auto_complete=bool(trigger.get("autoCompleteMessages", True)),
                    arg_name=trigger["name"],
                    user_function=user_function,
                )
            )
        elif kind == "timerTrigger":
            timers.append(
                TimerFunction(
                    name=name,
                    schedule=resolve(trigger["schedule"], environ),
                    run_on_startup=bool(trigger.get("runOnStartup", False)),
                    arg_name=trigger["name"],
                    user_function=user_function,
                )
            )
        else:
            raise IndexingError(f"function {name}: trigger type {kind} is not served locally")
    return IndexedApp(tuple(http), tuple(queues), tuple(timers), tuple(metadata))
