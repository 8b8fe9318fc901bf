"""Starting a child server on a free port, again on another if someone took it meanwhile."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, Self, TypeVar


class Startable(Protocol):
    def wait_ready(self) -> Self: ...


P = TypeVar("P", bound=Startable)


def start_on_a_free_port(start: Callable[[], P], attempts: int = 3) -> P:
    """`start()` picks a free port; between picking and binding another process may take it."""
    last: RuntimeError | None = None
    for _ in range(attempts):
        process = start()
        try:
            return process.wait_ready()
        except RuntimeError as exc:
            last = exc
            if "address already in use" not in str(exc).lower():
                raise
    assert last is not None
    raise last
