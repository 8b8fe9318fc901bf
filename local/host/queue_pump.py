"""Feeds Service Bus queue triggers from a broker, with the Functions host's settlement rules.

Peek-lock receive; auto-complete on success and abandon on an exception (the host's default);
lock renewal while the function runs, up to maxAutoLockRenewalDuration; `maxConcurrentCalls`
consumers for plain queues, `maxConcurrentSessions` session slots for session queues, each slot
holding one session and processing its messages one at a time, releasing it after
`sessionIdleTimeout` without a message.

Idle session slots take turns: one at a time asks the broker for a session and, when there is
none, waits on the broker for one; the others wait on the loop for their turn. With hundreds of
slots, every slot waiting on the broker at once would wake them all (a thread and a SQLite read
each) on every message sent, and try to accept as many sessions as there are slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from azure.functions.servicebus import ServiceBusMessage

from local.host.host_json import ServiceBusOptions
from local.host.indexing import QueueFunction
from local.host.invoker import Invoker
from shared.messaging.message import InboundMessage

log = logging.getLogger("local.host.servicebus")


class SessionHandle(Protocol):
    @property
    def session_id(self) -> str: ...


class QueueSource(Protocol):
    """What the pump needs from a broker; the local broker and Service Bus both provide it."""

    async def receive(
        self, queue: str, max_messages: int, session: SessionHandle | None = None
    ) -> list[InboundMessage]: ...
    async def accept_next_session(self, queue: str) -> SessionHandle | None: ...
    async def complete(self, queue: str, message: InboundMessage) -> None: ...
    async def abandon(self, queue: str, message: InboundMessage) -> None: ...
    async def renew_message_lock(self, queue: str, message: InboundMessage) -> datetime: ...
    async def renew_session_lock(self, queue: str, session: SessionHandle) -> datetime: ...
    async def release_session(self, queue: str, session: SessionHandle) -> None: ...
    async def wait(
        self, queue: str, timeout: float, session: SessionHandle | None = None
    ) -> None: ...


def to_function_message(message: InboundMessage) -> ServiceBusMessage:
    properties: dict[str, object] = dict(message.application_properties)
    return ServiceBusMessage(
        body=message.body,
        message_id=message.message_id,
        session_id=message.session_id,
        application_properties=properties,
        user_properties=properties,
        content_type=message.content_type,
        correlation_id=message.correlation_id,
        subject=message.subject,
        label=message.subject,
        delivery_count=message.delivery_count,
        enqueued_time_utc=message.enqueued_time,
        sequence_number=message.sequence_number,
        lock_token=message.lock_token,
        locked_until=message.locked_until,
        expires_at_utc=message.expires_at,
        scheduled_enqueue_time_utc=message.scheduled_enqueue_time,
        time_to_live=message.time_to_live,
        dead_letter_reason=message.dead_letter_reason,
        dead_letter_error_description=message.dead_letter_error_description,
        dead_letter_source=message.dead_letter_source,
        trigger_metadata={
            "MessageId": message.message_id,
            "SessionId": message.session_id,
            "DeliveryCount": message.delivery_count,
            "SequenceNumber": message.sequence_number,
            "ApplicationProperties": properties,
        },
    )


def _argument(function: QueueFunction, messages: Sequence[InboundMessage]) -> Any:
    annotation = inspect.signature(function.user_function).parameters[function.arg_name].annotation
    text = annotation in (str, "str", list[str], "list[str]", "typing.List[str]")
    raw = annotation in (bytes, "bytes", list[bytes], "list[bytes]")
    converted: list[Any] = [
        m.body.decode() if text else m.body if raw else to_function_message(m) for m in messages
    ]
    return converted if function.many else converted[0]


def _lock_lost(exc: BaseException) -> bool:
    """MessageLockLostError or SessionLockLostError, from the local broker or Service Bus."""
    return type(exc).__name__.endswith("LockLostError")


class QueuePump:
    def __init__(
        self,
        function: QueueFunction,
        source: QueueSource,
        invoker: Invoker,
        options: ServiceBusOptions,
    ) -> None:
        self._function = function
        self._source = source
        self._invoker = invoker
        self._options = options
        self._batch = options.max_message_batch_size if function.many else 1
        self._accepting = asyncio.Lock()  # idle session slots take turns (module docstring)
        if not function.auto_complete:
            log.warning(
                "function %s has autoCompleteMessages false: without SDK-type settlement its "
                "messages are redelivered when their locks expire, as in Azure",
                function.name,
            )

    def tasks(self) -> list[asyncio.Task[None]]:
        if self._function.sessions:
            slots = self._options.max_concurrent_sessions
            return [asyncio.create_task(self._session_slot()) for _ in range(slots)]
        workers = self._options.max_concurrent_calls
        return [asyncio.create_task(self._consumer()) for _ in range(workers)]

    async def _consumer(self) -> None:
        queue = self._function.queue_name
        while True:
            try:
                messages = await self._source.receive(queue, self._batch)
                if not messages:
                    await self._source.wait(queue, 1.0)
                    continue
                await self._process(messages, None)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("receiving from %s failed; retrying", queue)
                await asyncio.sleep(1.0)

    async def _session_slot(self) -> None:
        queue = self._function.queue_name
        idle = self._options.session_idle_timeout.total_seconds()
        while True:
            try:
                async with self._accepting:
                    session = await self._source.accept_next_session(queue)
                    if session is None:
                        await self._source.wait(queue, 1.0)
                        continue
                try:
                    idle_until = time.monotonic() + idle
                    while (remaining := idle_until - time.monotonic()) > 0:
                        messages = await self._source.receive(queue, self._batch, session)
                        if not messages:
                            await self._source.wait(queue, remaining, session)
                            continue
                        await self._process(messages, session)
                        idle_until = time.monotonic() + idle
                finally:
                    with contextlib.suppress(Exception):
                        await self._source.release_session(queue, session)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if _lock_lost(exc):  # held past its lock: the broker gives it to another slot
                    log.warning("session on %s lost its lock: %s", queue, exc)
                    continue
                log.exception("session receive from %s failed; retrying", queue)
                await asyncio.sleep(1.0)

    async def _process(
        self, messages: Sequence[InboundMessage], session: SessionHandle | None
    ) -> None:
        function, queue = self._function, self._function.queue_name
        renewer = asyncio.create_task(self._renew_locks(messages, session))
        try:
            await self._invoker.invoke(
                function.user_function,
                function.name,
                {function.arg_name: _argument(function, messages)},
                trace_parent=str(messages[0].application_properties.get("traceparent") or ""),
            )
        except Exception:
            log.exception(
                "function %s failed; abandoning %d message(s)",
                function.name,
                len(messages),
                extra={"function": function.name, "message_id": messages[0].message_id},
            )
            if function.auto_complete and self._options.auto_complete:
                for message in messages:
                    await self._settle(self._source.abandon, queue, message)
            return
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        if function.auto_complete and self._options.auto_complete:
            for message in messages:
                await self._settle(self._source.complete, queue, message)

    async def _settle(self, action: Any, queue: str, message: InboundMessage) -> None:
        try:
            await action(queue, message)
        except Exception as exc:
            # A lost lock means the broker will redeliver: at-least-once, as in Azure.
            log.warning(
                "settling message %s failed: %s",
                message.message_id,
                exc,
                extra={
                    "queue": queue,
                    "delivery_count": message.delivery_count,
                    "lock_lost": _lock_lost(exc),
                },
            )

    async def _renew_locks(
        self, messages: Sequence[InboundMessage], session: SessionHandle | None
    ) -> None:
        queue = self._function.queue_name
        deadline = time.monotonic() + self._options.max_auto_lock_renewal.total_seconds()
        locked_until = messages[0].locked_until or datetime.now(UTC) + timedelta(seconds=60)
        while True:
            remaining = (locked_until - datetime.now(UTC)).total_seconds()
            await asyncio.sleep(max(0.05, remaining / 2))
            if time.monotonic() >= deadline:
                return
            try:
                if session is not None:
                    locked_until = await self._source.renew_session_lock(queue, session)
                else:
                    renewed = [await self._source.renew_message_lock(queue, m) for m in messages]
                    locked_until = min(renewed)
            except Exception as exc:
                log.warning("lock renewal on %s failed: %s", queue, exc)
                return
