"""The composition root: reads the settings once and wires adapters to the ports.

Trigger adapters in functions/ ask `container()` for what a handler needs. The local host and
tests replace adapters with `override()` before the first invocation, which is how the one-machine
stack swaps Service Bus for the local broker without the core knowing the stack exists.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any

from shared.config import Settings, load_settings
from shared.observability.json_logging import configure_logging


@dataclass(frozen=True)
class Container:
    settings: Settings


_lock = threading.Lock()
_container: Container | None = None


def startup() -> Container:
    """Validates the configuration and sets up logging; raises ConfigurationError on bad input."""
    global _container
    with _lock:
        if _container is None:
            settings = load_settings()
            configure_logging(settings.log_level)
            _container = Container(settings=settings)
        return _container


def container() -> Container:
    return _container or startup()


def override(**adapters: Any) -> Container:
    """Replaces adapters in the running container (the local stack and tests use this)."""
    global _container
    with _lock:
        base = _container or Container(settings=load_settings())
        _container = replace(base, **adapters)
        return _container


def reset() -> None:
    global _container
    with _lock:
        _container = None
