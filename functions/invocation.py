"""Binds the invocation's correlation fields once, for every log line the handler writes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import azure.functions as func

from shared.observability import correlation


@contextmanager
def invocation(context: func.Context) -> Iterator[None]:
    trace = context.trace_context.trace_parent if context.trace_context else None
    with correlation.bind(invocation_id=context.invocation_id, traceparent=trace or None):
        yield
