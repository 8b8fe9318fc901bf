"""A Service Bus namespace as the queue source of the local host's pumps.

With `ServiceBusConnection*` configured, `make start` feeds queue triggers from the real namespace
the way the Functions host does: peek-lock receive, complete or abandon on the receiver that
received the message, lock renewal, one session per slot. The SDK's receivers are not safe for
concurrent use, so each link is used under its own lock; links are pooled per queue and reused.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from azure.servicebus import NEXT_AVAILABLE_SESSION, ServiceBusReceivedMessage
from azure.servicebus.aio import ServiceBusClient, ServiceBusReceiver
from azure.servicebus.exceptions import OperationTimeoutError

from local.host.queue_pump import SessionHandle
from shared.messaging.azure_servicebus import ServiceBusConnection, from_received
from shared.messaging.message import InboundMessage

RECEIVE_WAIT_SECONDS = 1.0


@dataclass
class _Link:
    receiver: ServiceBusReceiver
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(frozen=True)
class AzureSession:
    session_id: str
    link: _Link


class AzureQueueSource:
    def __init__(self, connection: ServiceBusConnection) -> None:
        self._connection = connection
        self._client: ServiceBusClient | None = None
        self._idle: dict[str, list[_Link]] = defaultdict(list)
        self._links: list[_Link] = []
        self._held: dict[str, tuple[_Link, ServiceBusReceivedMessage]] = {}

    def _sdk(self) -> ServiceBusClient:
        if self._client is None:
            conn = self._connection
            if conn.connection_string:
                self._client = ServiceBusClient.from_connection_string(conn.connection_string)
            else:
                credential = conn.create_credential()
                if conn.namespace is None or credential is None:
                    raise RuntimeError("a namespace and a credential are required")
                self._client = ServiceBusClient(conn.namespace, credential)
        return self._client

    def _new_link(self, receiver: ServiceBusReceiver) -> _Link:
        link = _Link(receiver)
        self._links.append(link)
        return link

    async def receive(
        self, queue: str, max_messages: int, session: SessionHandle | None = None
    ) -> list[InboundMessage]:
        if session is not None:
            assert isinstance(session, AzureSession)
            link = session.link
        else:
            idle = self._idle[queue]
            link = idle.pop() if idle else self._new_link(self._sdk().get_queue_receiver(queue))
        try:
            async with link.lock:
                raw = await link.receiver.receive_messages(
                    max_message_count=max_messages, max_wait_time=RECEIVE_WAIT_SECONDS
                )
        finally:
            if session is None:
                self._idle[queue].append(link)
        messages = []
        for message in raw:
            inbound = from_received(message)
            assert inbound.lock_token is not None
            self._held[inbound.lock_token] = (link, message)
            messages.append(inbound)
        return messages

    async def accept_next_session(self, queue: str) -> SessionHandle | None:
        receiver = self._sdk().get_queue_receiver(
            queue, session_id=NEXT_AVAILABLE_SESSION, max_wait_time=RECEIVE_WAIT_SECONDS
        )
        try:
            await receiver.__aenter__()
        except OperationTimeoutError:
            await receiver.close()
            return None
        session = receiver.session
        return AzureSession(session_id=str(session.session_id), link=self._new_link(receiver))

    def _take(self, message: InboundMessage) -> tuple[_Link, ServiceBusReceivedMessage]:
        if message.lock_token is None or message.lock_token not in self._held:
            raise LookupError(f"message {message.message_id} is not held by this source")
        return self._held.pop(message.lock_token)

    async def complete(self, queue: str, message: InboundMessage) -> None:
        link, raw = self._take(message)
        async with link.lock:
            await link.receiver.complete_message(raw)

    async def abandon(self, queue: str, message: InboundMessage) -> None:
        link, raw = self._take(message)
        async with link.lock:
            await link.receiver.abandon_message(raw)

    async def renew_message_lock(self, queue: str, message: InboundMessage) -> datetime:
        assert message.lock_token is not None
        link, raw = self._held[message.lock_token]
        async with link.lock:
            return await link.receiver.renew_message_lock(raw)

    async def renew_session_lock(self, queue: str, session: SessionHandle) -> datetime:
        assert isinstance(session, AzureSession)
        async with session.link.lock:
            return await session.link.receiver.session.renew_lock()

    async def release_session(self, queue: str, session: SessionHandle) -> None:
        assert isinstance(session, AzureSession)
        self._links.remove(session.link)
        async with session.link.lock:
            await session.link.receiver.close()

    async def wait(self, queue: str, timeout: float, session: SessionHandle | None = None) -> None:
        # Receives already wait on the broker for up to RECEIVE_WAIT_SECONDS.
        await asyncio.sleep(0)

    async def close(self) -> None:
        for link in self._links:
            with contextlib.suppress(Exception):
                await link.receiver.close()
        self._links.clear()
        self._idle.clear()
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
            self._client = None
