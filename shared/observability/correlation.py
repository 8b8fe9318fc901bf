"""Correlation fields: set once per invocation, read by every log line, carried across queue hops.

The fields live in a context variable, so concurrent invocations on one event loop or in a
thread pool never see each other's values. Across a Service Bus hop they travel in the message's
application properties, with the W3C `traceparent` beside them.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final

FIELDS: Final = (
    "invocation_id",
    "correlation_id",
    "store_hash",
    "order_id",
    "message_id",
    "session_id",
    "traceparent",
)
# Fields that travel with a message to the next function; the others belong to one invocation.
PROPAGATED: Final = ("correlation_id", "store_hash", "order_id", "traceparent")
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
MAX_CORRELATION_ID: Final = 128  # Service Bus's limit on a message's CorrelationId
_PRINTABLE = re.compile(r"^[\x21-\x7e]+\Z")

_current: ContextVar[Mapping[str, str]] = ContextVar("correlation", default={})  # noqa: B039


def current() -> Mapping[str, str]:
    return _current.get()


@contextmanager
def bind(**fields: object) -> Iterator[Mapping[str, str]]:
    """Adds fields to the correlation context for the duration of the block."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown correlation fields: {sorted(unknown)}")
    merged = {**_current.get(), **{k: str(v) for k, v in fields.items() if v is not None}}
    token = _current.set(merged)
    try:
        yield merged
    finally:
        _current.reset(token)


def new_traceparent(trace_id: str | None = None) -> str:
    return f"00-{trace_id or secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def usable_correlation_id(value: str | None) -> str | None:
    """A caller's correlation id when it can travel as a Service Bus CorrelationId (at most 128
    characters) and sit in a log line (printable ASCII); None means: make a new one."""
    if value and len(value) <= MAX_CORRELATION_ID and _PRINTABLE.match(value):
        return value
    return None


def child_traceparent(parent: str | None) -> str:
    """A new span id in the same trace, or a new trace when the parent is absent or malformed."""
    match = _TRACEPARENT.match(parent or "")
    return new_traceparent(match.group(1) if match else None)


def to_properties() -> dict[str, str]:
    """The propagated fields, ready to put in a message's application properties."""
    fields = _current.get()
    return {name: fields[name] for name in PROPAGATED if name in fields}


def from_properties(properties: Mapping[str, object] | Mapping[bytes, object]) -> dict[str, str]:
    """Reads propagated fields back; keys may arrive as bytes from the Service Bus SDK binding."""
    found: dict[str, str] = {}
    for key, value in properties.items():
        name = key.decode() if isinstance(key, bytes) else key
        if name in PROPAGATED and value is not None:
            found[name] = value.decode() if isinstance(value, bytes) else str(value)
    return found
