"""Calls a user function the way the Python worker does.

Coroutine functions run on the host's event loop; plain functions run in a thread pool sized by
PYTHON_THREADPOOL_THREAD_COUNT. A parameter named `context` receives a Context with the
invocation id and the trace context, as in Azure.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import azure.functions as func
from azure.functions._abc import TraceContext


class _TraceContext(TraceContext):
    def __init__(self, trace_parent: str, trace_state: str = "") -> None:
        self._parent, self._state = trace_parent, trace_state

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def trace_state(self) -> str:
        return self._state

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class LocalContext(func.Context):
    def __init__(self, function_name: str, trace_parent: str = "") -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._trace = _TraceContext(trace_parent)
        self._local = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return os.getcwd()

    @property
    def trace_context(self) -> TraceContext:
        return self._trace

    @property
    def retry_context(self) -> Any:
        return None

    @property
    def thread_local_storage(self) -> Any:
        return self._local


def _pool_size() -> int | None:
    raw = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT")
    return max(1, min(32, int(raw))) if raw else None


@functools.cache
def _shape(function: Callable[..., Any]) -> tuple[frozenset[str], bool]:
    """The parameter names and whether it is a coroutine function, read once per function."""
    names = frozenset(inspect.signature(function).parameters)
    return names, inspect.iscoroutinefunction(function)


class Invoker:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=_pool_size(), thread_name_prefix="fn")

    async def invoke(
        self,
        function: Callable[..., Any],
        function_name: str,
        arguments: Mapping[str, Any],
        trace_parent: str = "",
    ) -> Any:
        parameters, is_coroutine = _shape(function)
        call_args = {k: v for k, v in arguments.items() if k in parameters}
        if "context" in parameters:
            call_args["context"] = LocalContext(function_name, trace_parent)
        if is_coroutine:
            return await function(**call_args)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: function(**call_args))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
