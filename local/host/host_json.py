"""The parts of host.json the local host honours, with the Functions host's defaults.

As in Azure (functions-host-json.md, "Override host.json values"), an app setting named
`AzureFunctionsJobHost__path__to__setting` replaces that value of host.json, e.g.
`AzureFunctionsJobHost__extensions__serviceBus__maxAutoLockRenewalDuration=00:00:10`; names
match host.json's keys whatever their case.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

OVERRIDE_PREFIX: Final = "AzureFunctionsJobHost__"

_SPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?$")


def parse_timespan(value: str) -> timedelta:
    """Parses a .NET TimeSpan string such as "00:05:00" or "1.00:00:00"."""
    match = _SPAN.match(value.strip())
    if not match:
        raise ValueError(f"not a TimeSpan: {value!r}")
    days, hours, minutes, seconds, fraction = match.groups()
    return timedelta(
        days=int(days or 0),
        hours=int(hours),
        minutes=int(minutes),
        seconds=int(seconds) + (float(f"0.{fraction}") if fraction else 0.0),
    )


@dataclass(frozen=True)
class ServiceBusOptions:
    max_concurrent_calls: int
    max_concurrent_sessions: int = 8
    session_idle_timeout: timedelta = timedelta(seconds=60)
    max_auto_lock_renewal: timedelta = timedelta(minutes=5)
    auto_complete: bool = True
    max_message_batch_size: int = 1000


@dataclass(frozen=True)
class HostOptions:
    route_prefix: str
    function_timeout: timedelta | None
    service_bus: ServiceBusOptions


def overridden(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """host.json's document with the `AzureFunctionsJobHost__...` app settings applied."""
    for name, value in sorted(environ.items()):
        if not name.startswith(OVERRIDE_PREFIX):
            continue
        *parents, leaf = name[len(OVERRIDE_PREFIX) :].split("__")
        node = data
        for part in parents:
            key = _key(node, part)
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[_key(node, leaf)] = value
    return data


def _key(node: Mapping[str, Any], name: str) -> str:
    return next((k for k in node if k.lower() == name.lower()), name)


def _flag(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "")
    return bool(value)


def load(path: Path, environ: Mapping[str, str] | None = None) -> HostOptions:
    data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    data = overridden(data, os.environ if environ is None else environ)
    extensions = data.get("extensions", {})
    http = extensions.get("http", {})
    sb = extensions.get("serviceBus", {})
    cpus = os.cpu_count() or 1
    defaults = ServiceBusOptions(max_concurrent_calls=16 * cpus)
    timeout = data.get("functionTimeout")
    return HostOptions(
        route_prefix=str(http.get("routePrefix", "api")).strip("/"),
        function_timeout=parse_timespan(timeout) if timeout and timeout != "-1" else None,
        service_bus=ServiceBusOptions(
            max_concurrent_calls=int(sb.get("maxConcurrentCalls", defaults.max_concurrent_calls)),
            max_concurrent_sessions=int(
                sb.get("maxConcurrentSessions", defaults.max_concurrent_sessions)
            ),
            session_idle_timeout=parse_timespan(sb["sessionIdleTimeout"])
            if "sessionIdleTimeout" in sb
            else defaults.session_idle_timeout,
            max_auto_lock_renewal=parse_timespan(sb["maxAutoLockRenewalDuration"])
            if "maxAutoLockRenewalDuration" in sb
            else defaults.max_auto_lock_renewal,
            auto_complete=_flag(sb.get("autoCompleteMessages", True)),
            max_message_batch_size=int(
                sb.get("maxMessageBatchSize", defaults.max_message_batch_size)
            ),
        ),
    )
