"""The local broker as the queue source the host's pumps read from.

Broker calls are short SQLite transactions; they run in worker threads so the host's event loop,
which also serves HTTP, never blocks on the database.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from local.broker import LocalBroker, QueueNotFound, QueueSettings, SessionLock
from local.broker.adapters import provision
from local.host.host_json import ServiceBusOptions
from local.host.indexing import IndexedApp
from local.host.queue_pump import SessionHandle
from local.stack.plan import StackPlan
from shared.config import ConfigurationError
from shared.messaging.message import InboundMessage
from shared.messaging.queues import ALL_QUEUES, QueueSpec

log = logging.getLogger("local.host.broker")
LOCK_SETTING = "LOCAL_BROKER_LOCK_SECONDS"
T = TypeVar("T")
# Pumps block a thread each in wait(); a pool of their own keeps them from starving other work,
# as long as it has a thread for every pump and some to spare (`threads_for`).
_MIN_THREADS = 64
_SPARE_THREADS = 16


def _lock(session: SessionHandle) -> SessionLock:
    assert isinstance(session, SessionLock)
    return session


def _token(message: InboundMessage) -> str:
    if message.lock_token is None:
        raise ValueError(f"message {message.message_id} was not received in peek-lock mode")
    return message.lock_token


def threads_for(app: IndexedApp, options: ServiceBusOptions) -> int:
    """Threads enough for every pump to wait in one (a session slot or a consumer each) and
    the receives, settlements and lock renewals to go on beside them."""
    pumps = sum(
        options.max_concurrent_sessions if q.sessions else options.max_concurrent_calls
        for q in app.queues
    )
    return max(_MIN_THREADS, pumps + _SPARE_THREADS)


class BrokerSource:
    def __init__(self, broker: LocalBroker, threads: int = _MIN_THREADS) -> None:
        self.broker = broker
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="broker")

    async def _run(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(call, *args, **kwargs))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.broker.close()

    async def receive(
        self, queue: str, max_messages: int, session: SessionHandle | None = None
    ) -> list[InboundMessage]:
        lock = _lock(session) if session is not None else None
        return await self._run(self.broker.receive, queue, max_messages=max_messages, session=lock)

    async def accept_next_session(self, queue: str) -> SessionHandle | None:
        return await self._run(self.broker.accept_next_session, queue)

    async def complete(self, queue: str, message: InboundMessage) -> None:
        await self._run(self.broker.complete, queue, _token(message))

    async def abandon(self, queue: str, message: InboundMessage) -> None:
        await self._run(self.broker.abandon, queue, _token(message))

    async def renew_message_lock(self, queue: str, message: InboundMessage) -> datetime:
        return await self._run(self.broker.renew_message_lock, queue, _token(message))

    async def renew_session_lock(self, queue: str, session: SessionHandle) -> datetime:
        return await self._run(self.broker.renew_session_lock, _lock(session))

    async def release_session(self, queue: str, session: SessionHandle) -> None:
        await self._run(self.broker.release_session, _lock(session))

    async def wait(self, queue: str, timeout: float, session: SessionHandle | None = None) -> None:
        lock = _lock(session) if session is not None else None
        await self._run(self.broker.wait_for_messages, queue, timeout, session=lock)


def _queue_specs(environ: Mapping[str, str]) -> tuple[QueueSpec, ...]:
    """The queues as specified, with `LOCAL_BROKER_LOCK_SECONDS` as every queue's lock duration
    when set: tests that kill a worker wait for its lock to expire, and a minute is long."""
    raw = environ.get(LOCK_SETTING, "").strip()
    if not raw:
        return ALL_QUEUES
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0
    if not 1 <= seconds <= 300:
        raise ConfigurationError(
            f"invalid configuration: {LOCK_SETTING}: {raw!r} is not a number of seconds (1-300)"
        )
    return tuple(replace(spec, lock_duration=timedelta(seconds=seconds)) for spec in ALL_QUEUES)


def open_broker(stack: StackPlan, app: IndexedApp) -> LocalBroker:
    """Opens the stack's broker with the app's queues, as Bicep would provision them in Azure."""
    stack.broker_path.parent.mkdir(parents=True, exist_ok=True)
    broker = LocalBroker(stack.broker_path)
    provision(broker, _queue_specs(os.environ))
    for function in app.queues:
        try:
            broker.queue_info(function.queue_name)
        except QueueNotFound:
            broker.ensure_queue(
                function.queue_name, QueueSettings(requires_session=function.sessions)
            )
            log.info("created local queue %s for function %s", function.queue_name, function.name)
    return broker
