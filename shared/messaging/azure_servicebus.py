"""The transport ports over Azure Service Bus, with the `azure-servicebus` SDK.

Why the SDK and not the Functions output binding: the Python binding carries only a body, so it
cannot set the message id (duplicate detection), the session id (which the session-enabled queue
requires), application properties or a scheduled time, and its failures surface after the
function returned, where the ingress cannot refuse the webhook.

Connection settings are the Functions host's own (`ServiceBusConnection__*` or the
`ServiceBusConnection` string), so the trigger and the SDK never disagree on the namespace.

Concurrency: the SDK's client, senders and receivers are neither thread- nor coroutine-safe. An
`AzureServiceBusSender` belongs to one event loop; it creates its single `ServiceBusClient` inside
that loop on the first send (never at import, never per request), caches one sender per queue and
serialises each sender's use with an `asyncio.Lock`. A sender that failed or was cancelled mid-send
is discarded and recreated on the next call. The app keeps one `AzureServiceBusSender` per process.
`AzureQueueAdmin` is for the operator CLI: one coroutine at a time, short-lived receivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any, Final, Literal

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential
from azure.servicebus import (
    NEXT_AVAILABLE_SESSION,
    ServiceBusMessage,
    ServiceBusMessageState,
    ServiceBusReceivedMessage,
    ServiceBusReceiveMode,
    ServiceBusSubQueue,
)
from azure.servicebus.aio import ServiceBusClient, ServiceBusReceiver, ServiceBusSender
from azure.servicebus.aio.management import ServiceBusAdministrationClient
from azure.servicebus.amqp import AmqpMessageBodyType
from azure.servicebus.exceptions import MessageSizeExceededError, OperationTimeoutError

from shared.config import ConfigurationError, Settings
from shared.messaging.message import InboundMessage, OutboundMessage, PropertyValue
from shared.messaging.ports import (
    AccessDeniedError,
    MovedMessage,
    QueueCounts,
    QueueNotFoundError,
    QueueProperties,
    ReplayedMessage,
    SendError,
)
from shared.messaging.queues import ALL_QUEUES
from shared.messaging.replay import replay_copy, replay_report

log = logging.getLogger("connector.servicebus")

MANAGED_IDENTITY: Final = "managedidentity"
# Service Bus reports the dead-letter reason and description as application properties.
_DEAD_LETTER_PROPERTIES: Final = frozenset({"DeadLetterReason", "DeadLetterErrorDescription"})
_TRANSPORT_ERRORS: Final = (AzureError, OSError, ValueError)
_PAGE: Final = 100
# Bounds for the operator commands, so that a queue refilled as fast as it drains cannot keep
# a purge or replay running forever.
_MAX_ROUNDS: Final = 1_000
_MAX_DEAD_LETTERS: Final = 10_000
_MAX_SESSIONS: Final = 10_000

AuthMode = Literal["connection_string", "managed_identity", "developer"]


# -- mapping ------------------------------------------------------------------------------------


def to_servicebus_message(message: OutboundMessage) -> ServiceBusMessage:
    scheduled = message.scheduled_enqueue_time
    properties: dict[str | bytes, Any] = {
        name: value for name, value in message.application_properties.items()
    }
    return ServiceBusMessage(
        message.body,
        message_id=message.message_id,
        session_id=message.session_id,
        application_properties=properties or None,
        content_type=message.content_type,
        correlation_id=message.correlation_id,
        subject=message.subject,
        scheduled_enqueue_time_utc=None if scheduled is None else scheduled.astimezone(UTC),
        time_to_live=message.time_to_live,
    )


def from_received(message: ServiceBusReceivedMessage) -> InboundMessage:
    """Received and peeked messages alike; keys and string values arrive as bytes over AMQP."""
    sequence_number = message.sequence_number
    enqueued_time = message.enqueued_time_utc
    if sequence_number is None or enqueued_time is None:
        raise ValueError("a received message carries a sequence number and an enqueued time")
    lock_token = message.lock_token
    return InboundMessage(
        body=_body(message),
        message_id=_text(message.message_id) or "",
        sequence_number=sequence_number,
        delivery_count=message.delivery_count or 0,
        enqueued_time=enqueued_time,
        session_id=_text(message.session_id),
        application_properties=_properties(message.application_properties),
        content_type=_text(message.content_type),
        correlation_id=_text(message.correlation_id),
        subject=_text(message.subject),
        lock_token=None if lock_token is None else str(lock_token),
        locked_until=message.locked_until_utc,
        expires_at=message.expires_at_utc,
        scheduled_enqueue_time=message.scheduled_enqueue_time_utc,
        time_to_live=message.time_to_live,
        dead_letter_reason=message.dead_letter_reason,
        dead_letter_error_description=message.dead_letter_error_description,
        dead_letter_source=message.dead_letter_source,
    )


def _body(message: ServiceBusReceivedMessage) -> bytes:
    body: object = message.body
    if message.body_type == AmqpMessageBodyType.DATA and not isinstance(body, bytes | str):
        assert isinstance(body, Iterable)
        return b"".join(bytes(section) for section in body)
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    return str(body).encode()  # a value or sequence body from a foreign producer


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _properties(raw: Mapping[str | bytes, object] | None) -> dict[str, PropertyValue]:
    properties: dict[str, PropertyValue] = {}
    for key, value in (raw or {}).items():
        name = _text(key) or ""
        if name in _DEAD_LETTER_PROPERTIES:
            continue
        if value is None or isinstance(value, str | int | float | bool):
            properties[name] = value
        else:
            properties[name] = _text(value)  # bytes, UUIDs and AMQP timestamps
    return properties


# -- connection ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceBusConnection:
    """Where and how to connect; building one opens nothing."""

    namespace: str | None = None
    connection_string: str | None = field(default=None, repr=False)
    managed_identity: bool = False
    client_id: str | None = None

    def __post_init__(self) -> None:
        if not self.namespace and not self.connection_string:
            raise ConfigurationError(
                "invalid configuration: ServiceBusConnection__fullyQualifiedNamespace: required "
                "to use Azure Service Bus (or set the ServiceBusConnection connection string)"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceBusConnection:
        secret = settings.servicebus_connection_string
        return cls(
            namespace=settings.servicebus_namespace,
            connection_string=None if secret is None else secret.get_secret_value(),
            managed_identity=settings.servicebus_credential == MANAGED_IDENTITY,
            client_id=settings.servicebus_client_id,
        )

    @property
    def auth(self) -> AuthMode:
        """A connection string wins when set, as in the Functions host."""
        if self.connection_string:
            return "connection_string"
        return "managed_identity" if self.managed_identity else "developer"

    def create_credential(self) -> AsyncTokenCredential | None:
        """The identity to use, or None for a connection string; creating it makes no request."""
        auth = self.auth
        if auth == "connection_string":
            return None
        if auth == "managed_identity":
            return ManagedIdentityCredential(client_id=self.client_id)
        return DefaultAzureCredential()


class _Clients:
    """The SDK clients of one adapter, created on first use inside the running event loop."""

    def __init__(self, connection: ServiceBusConnection) -> None:
        self.connection = connection
        self._credential: AsyncTokenCredential | None = None
        self._client: ServiceBusClient | None = None
        self._admin: ServiceBusAdministrationClient | None = None

    @property
    def is_open(self) -> bool:
        return self._client is not None or self._admin is not None

    def _get_credential(self) -> AsyncTokenCredential:
        if self._credential is None:
            self._credential = self.connection.create_credential()
        assert self._credential is not None
        return self._credential

    def client(self) -> ServiceBusClient:
        if self._client is None:
            asyncio.get_running_loop()  # the aio client must belong to the loop that uses it
            conn = self.connection
            if conn.connection_string:
                self._client = ServiceBusClient.from_connection_string(conn.connection_string)
            else:
                assert conn.namespace is not None
                self._client = ServiceBusClient(conn.namespace, self._get_credential())
        return self._client

    def admin(self) -> ServiceBusAdministrationClient:
        if self._admin is None:
            asyncio.get_running_loop()
            conn = self.connection
            if conn.connection_string:
                self._admin = ServiceBusAdministrationClient.from_connection_string(
                    conn.connection_string
                )
            else:
                assert conn.namespace is not None
                self._admin = ServiceBusAdministrationClient(conn.namespace, self._get_credential())
        return self._admin

    async def close(self) -> None:
        client, admin, credential = self._client, self._admin, self._credential
        self._client, self._admin, self._credential = None, None, None
        with contextlib.suppress(Exception):
            if client is not None:
                await client.close()
        with contextlib.suppress(Exception):
            if admin is not None:
                await admin.close()
        with contextlib.suppress(Exception):
            if credential is not None:
                await credential.close()


# -- sending ------------------------------------------------------------------------------------


@dataclass
class _SenderSlot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    sender: ServiceBusSender | None = None


class AzureServiceBusSender:
    """`MessageSender` over Service Bus. One instance per process, used from one event loop."""

    def __init__(self, connection: ServiceBusConnection) -> None:
        self._clients = _Clients(connection)
        self._slots: dict[str, _SenderSlot] = {}
        self._closing: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> AzureServiceBusSender:
        return cls(ServiceBusConnection.from_settings(settings))

    @property
    def connection(self) -> ServiceBusConnection:
        return self._clients.connection

    @property
    def is_open(self) -> bool:
        """Whether the Service Bus client exists yet; it is created by the first send."""
        return self._clients.is_open

    async def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        """Sends in as few batches as the size limit allows; raises SendError.

        If a later batch fails, earlier ones were sent: the caller's retry sends them again and
        duplicate detection drops them.
        """
        if not messages:
            return
        outgoing = [to_servicebus_message(message) for message in messages]
        slot = self._slots.get(queue) or self._slots.setdefault(queue, _SenderSlot())
        async with slot.lock:
            try:
                if slot.sender is None:
                    slot.sender = self._clients.client().get_queue_sender(queue)
                await _send_in_batches(slot.sender, outgoing)
            except _TRANSPORT_ERRORS as exc:
                await self._discard(slot)
                raise SendError(f"Service Bus did not accept the send to {queue!r}: {exc}") from exc
            except asyncio.CancelledError:
                # Cancelled mid-send (a caller's timeout): the link's state is unknown.
                self._discard_in_background(slot)
                raise

    async def _discard(self, slot: _SenderSlot) -> None:
        sender, slot.sender = slot.sender, None
        if sender is not None:
            with contextlib.suppress(Exception):
                await sender.close()

    def _discard_in_background(self, slot: _SenderSlot) -> None:
        sender, slot.sender = slot.sender, None
        if sender is not None:
            task = asyncio.get_running_loop().create_task(_close_quietly(sender))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        slots = list(self._slots.values())
        self._slots.clear()
        for slot in slots:
            await self._discard(slot)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        await self._clients.close()


async def _close_quietly(handler: ServiceBusSender | ServiceBusReceiver) -> None:
    with contextlib.suppress(Exception):
        await handler.close()


async def _send_in_batches(sender: ServiceBusSender, messages: Sequence[ServiceBusMessage]) -> None:
    """As few batches as the size limit allows; a message too large on its own raises."""
    batch = await sender.create_message_batch()
    for message in messages:
        try:
            batch.add_message(message)
        except MessageSizeExceededError:
            if len(batch) == 0:
                raise
            await sender.send_messages(batch)
            batch = await sender.create_message_batch()
            batch.add_message(message)
    if len(batch) > 0:
        await sender.send_messages(batch)


# -- operator commands --------------------------------------------------------------------------


class AzureQueueAdmin:
    """`QueueAdmin` over Service Bus, for the operator CLI.

    `queues` names the queues `queue_counts` reports, by default those of `ALL_QUEUES`.
    `max_wait_time` is how long a receive waits before concluding a (sub-)queue is empty.
    """

    def __init__(
        self,
        connection: ServiceBusConnection,
        *,
        queues: Sequence[str] | None = None,
        max_wait_time: float = 5.0,
    ) -> None:
        self._clients = _Clients(connection)
        self._queues = tuple(queues) if queues is not None else tuple(q.name for q in ALL_QUEUES)
        self._max_wait = max_wait_time

    @classmethod
    def from_settings(
        cls, settings: Settings, *, queues: Sequence[str] | None = None
    ) -> AzureQueueAdmin:
        return cls(ServiceBusConnection.from_settings(settings), queues=queues)

    async def queue_counts(self) -> list[QueueCounts]:
        admin = self._clients.admin()
        counts = []
        for name in self._queues:
            runtime = await admin.get_queue_runtime_properties(name)
            counts.append(
                QueueCounts(
                    name=name,
                    active=runtime.active_message_count or 0,
                    scheduled=runtime.scheduled_message_count or 0,
                    dead_letter=runtime.dead_letter_message_count or 0,
                )
            )
        return counts

    async def queue_properties(self, queue: str) -> QueueProperties:
        """`GET` of the queue's description over the namespace's management (ATOM) API, which
        needs Manage rights (a SAS rule with Manage, or Azure Service Bus Data Owner)."""
        try:
            found = await self._clients.admin().get_queue(queue)
        except ResourceNotFoundError:
            raise QueueNotFoundError(f"no queue {queue!r} in the namespace") from None
        except HttpResponseError as exc:
            # The management API answers 401 ("Manage,EntityRead claims required") to an identity
            # with data rights only; a credential that got no token has no status and is raised.
            if exc.status_code in (401, 403):
                raise AccessDeniedError(
                    f"reading the properties of {queue!r}: HTTP {exc.status_code}"
                ) from None
            raise
        return QueueProperties(
            name=queue,
            requires_session=bool(found.requires_session),
            lock_duration=_span(found.lock_duration),
            max_delivery_count=found.max_delivery_count or 0,
            duplicate_detection_window=(
                _span(found.duplicate_detection_history_time_window)
                if found.requires_duplicate_detection
                else None
            ),
            default_time_to_live=_span(found.default_message_time_to_live),
            dead_lettering_on_expiration=bool(found.dead_lettering_on_message_expiration),
        )

    def _dead_letter_receiver(
        self, queue: str, mode: ServiceBusReceiveMode = ServiceBusReceiveMode.PEEK_LOCK
    ) -> ServiceBusReceiver:
        return self._clients.client().get_queue_receiver(
            queue,
            sub_queue=ServiceBusSubQueue.DEAD_LETTER,
            receive_mode=mode,
            max_wait_time=self._max_wait,
        )

    async def peek_dead_letters(self, queue: str, max_messages: int) -> list[InboundMessage]:
        async with self._dead_letter_receiver(queue) as receiver:
            return [from_received(m) for m in await _peek(receiver, max_messages)]

    async def replay_dead_letters(
        self, queue: str, sequence_numbers: Sequence[int] | None, *, dry_run: bool
    ) -> list[ReplayedMessage]:
        async with self._dead_letter_receiver(queue) as receiver:
            dead = [from_received(m) for m in await _peek(receiver, _MAX_DEAD_LETTERS)]
            selected = _select(queue, dead, sequence_numbers)
            if not dry_run and selected:
                async with self._clients.client().get_queue_sender(queue) as sender:
                    await self._replay(queue, receiver, sender, selected)
        return [replay_report(m) for m in selected]

    async def _replay(
        self,
        queue: str,
        receiver: ServiceBusReceiver,
        sender: ServiceBusSender,
        selected: Sequence[InboundMessage],
    ) -> None:
        """Sends each copy, then completes its dead letter; others received meanwhile go back."""
        wanted = {m.sequence_number for m in selected}
        held: list[ServiceBusReceivedMessage] = []
        try:
            for _ in range(_MAX_ROUNDS):
                if not wanted:
                    break
                batch = await receiver.receive_messages(_PAGE, max_wait_time=self._max_wait)
                if not batch:
                    break
                for received in batch:
                    sequence_number = received.sequence_number
                    if sequence_number is None or sequence_number not in wanted:
                        held.append(received)
                        continue
                    try:
                        await sender.send_messages(
                            to_servicebus_message(replay_copy(from_received(received)))
                        )
                    except _TRANSPORT_ERRORS as exc:
                        held.append(received)
                        raise SendError(f"could not replay to {queue!r}: {exc}") from exc
                    await receiver.complete_message(received)
                    wanted.discard(sequence_number)
        finally:
            for message in held:
                with contextlib.suppress(Exception):
                    await receiver.abandon_message(message)
        if wanted:
            raise LookupError(
                f"dead letters {sorted(wanted)} of {queue!r} could not be received "
                "(locked by another receiver?); the others were replayed"
            )

    async def _plain_receiver(self, queue: str) -> ServiceBusReceiver:
        """A peek-lock receiver of a queue without sessions; ValueError for a session queue."""
        properties = await self._clients.admin().get_queue(queue)
        if properties.requires_session:
            raise ValueError(
                f"queue {queue!r} requires sessions: peek and move read queues without sessions"
            )
        return self._clients.client().get_queue_receiver(
            queue, receive_mode=ServiceBusReceiveMode.PEEK_LOCK, max_wait_time=self._max_wait
        )

    async def peek(self, queue: str, max_messages: int) -> list[InboundMessage]:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        async with await self._plain_receiver(queue) as receiver:
            return [from_received(m) for m in await _peek(receiver, max_messages)]

    async def move(
        self,
        source_queue: str,
        target_queue: str,
        transform: Callable[[InboundMessage], OutboundMessage | None],
        *,
        max_messages: int,
        dry_run: bool,
        select: Callable[[InboundMessage], bool] | None = None,
    ) -> list[MovedMessage]:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        async with await self._plain_receiver(source_queue) as receiver:
            peeked = [from_received(m) for m in await _peek(receiver, max_messages)]
            selected = [m for m in peeked if select is None or select(m)]
            if dry_run:
                planned = ((m, transform(m)) for m in selected)
                return [MovedMessage(m, sent) for m, sent in planned if sent is not None]
            if not selected:
                return []
            async with self._clients.client().get_queue_sender(target_queue) as sender:
                # Bounded like the other commands, and never below what the peek looked at.
                rounds = _MAX_ROUNDS + len(peeked)
                return await self._move(target_queue, receiver, sender, selected, transform, rounds)

    async def _move(
        self,
        target: str,
        receiver: ServiceBusReceiver,
        sender: ServiceBusSender,
        selected: Sequence[InboundMessage],
        transform: Callable[[InboundMessage], OutboundMessage | None],
        rounds: int,
    ) -> list[MovedMessage]:
        """Sends each transform, then completes its source; the others received go back."""
        wanted = {m.sequence_number for m in selected}
        held: list[ServiceBusReceivedMessage] = []  # received, neither completed nor abandoned
        moved: list[MovedMessage] = []
        sent_ids: set[str] = set()
        try:
            for _ in range(rounds):
                if not wanted:
                    break
                # No more than are wanted: each message received on the way counts a delivery.
                batch = await receiver.receive_messages(
                    min(_PAGE, len(wanted)), max_wait_time=self._max_wait
                )
                if not batch:
                    break  # the others are locked by another receiver, or scheduled
                for received in batch:
                    held.append(received)
                    sequence_number = received.sequence_number
                    if sequence_number is None or sequence_number not in wanted:
                        continue
                    wanted.discard(sequence_number)
                    source = from_received(received)
                    outgoing = transform(source)
                    if outgoing is None:
                        continue
                    if outgoing.message_id not in sent_ids:
                        try:
                            await sender.send_messages(to_servicebus_message(outgoing))
                        except _TRANSPORT_ERRORS as exc:
                            raise SendError(f"could not move to {target!r}: {exc}") from exc
                        sent_ids.add(outgoing.message_id)
                    await receiver.complete_message(received)
                    held.pop()
                    moved.append(MovedMessage(source, outgoing))
        finally:
            for message in held:
                with contextlib.suppress(Exception):
                    await receiver.abandon_message(message)
        return moved

    async def purge(self, queue: str, *, dead_letters: bool) -> int:
        """Receive-and-delete until empty; also cancels the scheduled messages it can see.

        Bounded, and best effort where Service Bus allows no more: messages locked by a consumer
        are skipped, and in a session queue only sessions with an active message are visited.
        """
        if dead_letters:
            mode = ServiceBusReceiveMode.RECEIVE_AND_DELETE
            async with self._dead_letter_receiver(queue, mode) as receiver:
                return await self._drain(receiver)
        properties = await self._clients.admin().get_queue(queue)
        if not properties.requires_session:
            return await self._purge_receiver(queue, next_session=False)
        total = 0
        for _ in range(_MAX_SESSIONS):
            try:
                total += await self._purge_receiver(queue, next_session=True)
            except OperationTimeoutError:
                break  # no session with an active message is left
        return total

    async def _purge_receiver(self, queue: str, *, next_session: bool) -> int:
        """Drains the queue, or the next available session of a session queue."""
        client = self._clients.client()
        receiver = client.get_queue_receiver(
            queue,
            session_id=NEXT_AVAILABLE_SESSION if next_session else None,
            receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE,
            max_wait_time=self._max_wait,
        )
        async with receiver:
            count = await self._drain(receiver)
            scheduled = [
                m.sequence_number
                for m in await _peek(receiver, _MAX_DEAD_LETTERS)
                if m.state == ServiceBusMessageState.SCHEDULED and m.sequence_number is not None
            ]
        if scheduled:
            async with client.get_queue_sender(queue) as sender:
                await sender.cancel_scheduled_messages(scheduled)
        return count + len(scheduled)

    async def _drain(self, receiver: ServiceBusReceiver) -> int:
        count = 0
        for _ in range(_MAX_ROUNDS):
            batch = await receiver.receive_messages(_PAGE, max_wait_time=self._max_wait)
            if not batch:
                break
            count += len(batch)
        return count

    async def close(self) -> None:
        await self._clients.close()


def _span(value: timedelta | str | None) -> timedelta:
    """A duration `get_queue` read: the SDK parses the ISO 8601 text into a timedelta (the
    `str` in its type is for what callers may pass when creating a queue)."""
    if not isinstance(value, timedelta):
        raise ValueError(f"Service Bus reported a duration that is not one: {value!r}")
    return value


async def _peek(receiver: ServiceBusReceiver, limit: int) -> list[ServiceBusReceivedMessage]:
    peeked: list[ServiceBusReceivedMessage] = []
    # Explicitly from the start: 0 would make the SDK continue after the last received message.
    next_sequence = 1
    while len(peeked) < limit:
        page = await receiver.peek_messages(
            min(_PAGE, limit - len(peeked)), sequence_number=next_sequence
        )
        if not page:
            break
        peeked += page
        next_sequence = (page[-1].sequence_number or 0) + 1
    return peeked


def _select(
    queue: str, dead: Sequence[InboundMessage], sequence_numbers: Sequence[int] | None
) -> list[InboundMessage]:
    if sequence_numbers is None:
        return list(dead)
    by_sequence = {m.sequence_number: m for m in dead}
    missing = sorted(set(sequence_numbers) - by_sequence.keys())
    if missing:
        raise LookupError(f"no dead letter {missing[0]} in {queue!r}")
    return [by_sequence[seq] for seq in sorted(set(sequence_numbers))]
