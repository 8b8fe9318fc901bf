"""One transport contract, run against every adapter of the `MessageSender` and `QueueAdmin` ports.

`local`: the SQLite broker in a temporary file, provisioned from `ALL_QUEUES`, with an injected
clock. Always runs.

`azure`: a real Service Bus namespace (Standard tier or above). Runs only when one of these is set,
and is skipped otherwise:

- `SERVICEBUS_TEST_CONNECTION_STRING`: a connection string with Manage rights, or
- `SERVICEBUS_TEST_NAMESPACE`: `<name>.servicebus.windows.net`, reached with
  `DefaultAzureCredential` (e.g. `az login`); the identity needs Azure Service Bus Data Owner.
- `SERVICEBUS_TEST_QUEUE` (optional): an existing session-enabled queue with duplicate detection
  on, emptied before each test. Without it each test creates a uniquely named queue (`contract-*`,
  auto-deleted when idle) and deletes it afterwards.
- `SERVICEBUS_TEST_PLAIN_QUEUE` (optional): an existing queue without sessions, emptied before
  each `peek` and `move` test (the source, as `order-parked` is). Without it those tests create
  and delete one the same way.

Each case reaches the broker through a driver: the adapters under test, plus a receiver that
completes what it receives, so that assertions look at what a consumer would see.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import pytest
from azure.identity.aio import DefaultAzureCredential
from azure.servicebus.aio import ServiceBusClient
from azure.servicebus.aio.management import ServiceBusAdministrationClient

from local.broker import LocalBroker
from local.broker.adapters import LocalBrokerSender, LocalQueueAdmin, provision
from shared.messaging.azure_servicebus import (
    AzureQueueAdmin,
    AzureServiceBusSender,
    ServiceBusConnection,
    from_received,
)
from shared.messaging.message import InboundMessage, OutboundMessage, PropertyValue
from shared.messaging.ports import (
    MessageSender,
    QueueAdmin,
    QueueCounts,
    QueueNotFoundError,
    SendError,
)
from shared.messaging.queues import ORDER_EVENTS, ORDER_PARKED
from shared.messaging.replay import replay_message_id

AZURE_SKIP_REASON = (
    "no SERVICEBUS_TEST_* settings: the Azure Service Bus contract runs only against a real "
    "namespace (set SERVICEBUS_TEST_CONNECTION_STRING or SERVICEBUS_TEST_NAMESPACE)"
)


class Driver(Protocol):
    queue: str
    sender: MessageSender
    admin: QueueAdmin
    schedule_delay: timedelta

    def now(self) -> datetime: ...

    async def pass_time(self, delta: timedelta) -> None: ...

    async def receive(self, session_id: str, max_messages: int = 10) -> list[InboundMessage]:
        """Receives what is visible in the session now, and completes it."""
        ...

    async def dead_letter(self, session_id: str, reason: str, description: str) -> InboundMessage:
        """Receives the session's next message and dead-letters it."""
        ...

    async def counts(self, expected: QueueCounts) -> QueueCounts:
        """The queue's counts, once they equal `expected` where the broker reports them late."""
        ...

    def plain_queue(self) -> AbstractAsyncContextManager[str]:
        """An empty queue without sessions, for the `peek` and `move` cases."""
        ...


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


class LocalDriver:
    schedule_delay = timedelta(minutes=5)

    def __init__(self, path: Path) -> None:
        self.clock = FakeClock()
        self.broker = LocalBroker(path, clock=self.clock)
        provision(self.broker)
        self.queue = ORDER_EVENTS.name
        self.sender: MessageSender = LocalBrokerSender(self.broker)
        self.admin: QueueAdmin = LocalQueueAdmin(self.broker, queues=[self.queue])

    def now(self) -> datetime:
        return self.clock.now

    async def pass_time(self, delta: timedelta) -> None:
        self.clock.now += delta

    async def receive(self, session_id: str, max_messages: int = 10) -> list[InboundMessage]:
        lock = self.broker.accept_session(self.queue, session_id)
        try:
            received = self.broker.receive(self.queue, max_messages=max_messages, session=lock)
            for message in received:
                assert message.lock_token is not None
                self.broker.complete(self.queue, message.lock_token)
            return received
        finally:
            self.broker.release_session(lock)

    async def dead_letter(self, session_id: str, reason: str, description: str) -> InboundMessage:
        lock = self.broker.accept_session(self.queue, session_id)
        try:
            [message] = self.broker.receive(self.queue, session=lock)
            assert message.lock_token is not None
            self.broker.dead_letter(
                self.queue, message.lock_token, reason=reason, description=description
            )
            return message
        finally:
            self.broker.release_session(lock)

    async def counts(self, expected: QueueCounts) -> QueueCounts:
        [counts] = await self.admin.queue_counts()
        return counts

    @asynccontextmanager
    async def plain_queue(self) -> AsyncIterator[str]:
        yield ORDER_PARKED.name

    async def close(self) -> None:
        await self.sender.close()
        await self.admin.close()
        self.broker.close()


class AzureDriver:
    """Drives a real namespace; counts are polled because Service Bus reports them late."""

    # Long enough for the "not yet visible" receive (link attach plus _WAIT) to finish first.
    schedule_delay = timedelta(seconds=10)
    _WAIT = 3.0
    _COUNTS_TIMEOUT = 60.0

    def __init__(
        self,
        queue: str,
        connection: ServiceBusConnection,
        management: ServiceBusAdministrationClient,
    ) -> None:
        self.queue = queue
        self._management = management
        self.sender = AzureServiceBusSender(connection)
        self.admin = AzureQueueAdmin(connection, queues=[queue], max_wait_time=self._WAIT)
        self._credential: DefaultAzureCredential | None = None
        if connection.connection_string:
            self._client = ServiceBusClient.from_connection_string(connection.connection_string)
        else:
            assert connection.namespace is not None
            self._credential = DefaultAzureCredential()
            self._client = ServiceBusClient(connection.namespace, self._credential)

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def pass_time(self, delta: timedelta) -> None:
        await asyncio.sleep(delta.total_seconds())

    async def receive(self, session_id: str, max_messages: int = 10) -> list[InboundMessage]:
        received: list[InboundMessage] = []
        async with self._client.get_queue_receiver(
            self.queue, session_id=session_id, max_wait_time=self._WAIT
        ) as receiver:
            while len(received) < max_messages:
                batch = await receiver.receive_messages(
                    max_messages - len(received), max_wait_time=self._WAIT
                )
                if not batch:
                    break
                for message in batch:
                    received.append(from_received(message))
                    await receiver.complete_message(message)
        return received

    async def dead_letter(self, session_id: str, reason: str, description: str) -> InboundMessage:
        async with self._client.get_queue_receiver(
            self.queue, session_id=session_id, max_wait_time=self._WAIT
        ) as receiver:
            [message] = await receiver.receive_messages(1, max_wait_time=self._WAIT)
            await receiver.dead_letter_message(
                message, reason=reason, error_description=description
            )
            return from_received(message)

    async def counts(self, expected: QueueCounts) -> QueueCounts:
        deadline = asyncio.get_running_loop().time() + self._COUNTS_TIMEOUT
        while True:
            [counts] = await self.admin.queue_counts()
            if counts == expected or asyncio.get_running_loop().time() > deadline:
                return counts
            await asyncio.sleep(1)

    @asynccontextmanager
    async def plain_queue(self) -> AsyncIterator[str]:
        configured = os.environ.get("SERVICEBUS_TEST_PLAIN_QUEUE")
        if configured:
            await self.admin.purge(configured, dead_letters=False)
            await self.admin.purge(configured, dead_letters=True)
            yield configured
            return
        name = f"contract-plain-{uuid.uuid4().hex[:12]}"
        await self._management.create_queue(
            name,
            requires_session=False,
            lock_duration=timedelta(seconds=30),
            max_delivery_count=10,
            auto_delete_on_idle=timedelta(minutes=30),
        )
        try:
            yield name
        finally:
            await self._management.delete_queue(name)

    async def close(self) -> None:
        await self.sender.close()
        await self.admin.close()
        await self._client.close()
        if self._credential is not None:
            await self._credential.close()


@pytest.fixture
async def local_driver(tmp_path: Path) -> AsyncIterator[LocalDriver]:
    driver = LocalDriver(tmp_path / "broker.sqlite3")
    yield driver
    await driver.close()


@pytest.fixture
async def azure_driver() -> AsyncIterator[AzureDriver]:
    connection_string = os.environ.get("SERVICEBUS_TEST_CONNECTION_STRING")
    namespace = os.environ.get("SERVICEBUS_TEST_NAMESPACE")
    if not connection_string and not namespace:
        pytest.skip(AZURE_SKIP_REASON)
    connection = ServiceBusConnection(namespace=namespace, connection_string=connection_string)
    credential: DefaultAzureCredential | None = None
    if connection_string:
        management = ServiceBusAdministrationClient.from_connection_string(connection_string)
    else:
        assert namespace is not None
        credential = DefaultAzureCredential()
        management = ServiceBusAdministrationClient(namespace, credential)
    configured = os.environ.get("SERVICEBUS_TEST_QUEUE")
    queue = configured or f"contract-{uuid.uuid4().hex[:12]}"
    if configured is None:
        await management.create_queue(
            queue,
            requires_session=True,
            requires_duplicate_detection=True,
            duplicate_detection_history_time_window=timedelta(minutes=10),
            lock_duration=timedelta(seconds=30),
            max_delivery_count=10,
            dead_lettering_on_message_expiration=True,
            auto_delete_on_idle=timedelta(minutes=30),
        )
    driver = AzureDriver(queue, connection, management)
    try:
        if configured is not None:
            await driver.admin.purge(queue, dead_letters=False)
            await driver.admin.purge(queue, dead_letters=True)
        yield driver
    finally:
        await driver.close()
        if configured is None:
            await management.delete_queue(queue)
        await management.close()
        if credential is not None:
            await credential.close()


@pytest.fixture(params=["local", "azure"])
def driver(request: pytest.FixtureRequest) -> Driver:
    fixture: Driver = request.getfixturevalue(f"{request.param}_driver")
    return fixture


@pytest.fixture
async def plain_queue(driver: Driver) -> AsyncIterator[str]:
    async with driver.plain_queue() as name:
        yield name


def new_session() -> str:
    return f"order-{uuid.uuid4().hex[:8]}"


def message(
    name: str,
    session_id: str | None,
    *,
    scheduled_enqueue_time: datetime | None = None,
    application_properties: Mapping[str, PropertyValue] | None = None,
) -> OutboundMessage:
    return OutboundMessage(
        body=name.encode(),
        message_id=f"{name}-{uuid.uuid4().hex[:8]}",
        session_id=session_id,
        application_properties=application_properties or {},
        scheduled_enqueue_time=scheduled_enqueue_time,
    )


def zero(driver: Driver) -> QueueCounts:
    return QueueCounts(driver.queue, active=0, scheduled=0, dead_letter=0)


async def test_send_then_receive_round_trips_every_property(driver: Driver) -> None:
    session = new_session()
    sent = OutboundMessage(
        body=b'{"order": 7}',
        message_id=f"round-trip-{uuid.uuid4().hex}",
        session_id=session,
        application_properties={
            "scope": "store/order/created",
            "order_id": 7,
            "ratio": 1.5,
            "ok": True,
        },
        content_type="application/json",
        correlation_id="request-1",
        subject="store/order/created",
        time_to_live=timedelta(hours=1),
    )

    await driver.sender.send(driver.queue, [sent])
    [received] = await driver.receive(session)

    assert received.body == sent.body
    assert received.message_id == sent.message_id
    assert received.session_id == session
    assert dict(received.application_properties) == dict(sent.application_properties)
    assert (received.content_type, received.correlation_id, received.subject) == (
        "application/json",
        "request-1",
        "store/order/created",
    )
    assert received.time_to_live == timedelta(hours=1)
    assert received.delivery_count == 1


async def test_duplicate_message_id_within_the_window_is_dropped(driver: Driver) -> None:
    session = new_session()
    first = message("dup", session)
    again = OutboundMessage(body=b"second body", message_id=first.message_id, session_id=session)

    await driver.sender.send(driver.queue, [first])
    await driver.sender.send(driver.queue, [again])

    assert [m.body for m in await driver.receive(session)] == [b"dup"]


async def test_each_session_is_first_in_first_out(driver: Driver) -> None:
    a, b = new_session(), new_session()
    await driver.sender.send(driver.queue, [message("a1", a), message("b1", b), message("a2", a)])
    await driver.sender.send(driver.queue, [message("b2", b), message("a3", a)])

    assert [m.body for m in await driver.receive(a)] == [b"a1", b"a2", b"a3"]
    assert [m.body for m in await driver.receive(b)] == [b"b1", b"b2"]


async def test_scheduled_message_is_invisible_until_its_time(driver: Driver) -> None:
    session = new_session()
    due = driver.now() + driver.schedule_delay
    await driver.sender.send(driver.queue, [message("later", session, scheduled_enqueue_time=due)])

    assert await driver.receive(session) == []
    await driver.pass_time(driver.schedule_delay + timedelta(seconds=2))

    [received] = await driver.receive(session)
    assert received.body == b"later"


async def test_session_queue_refuses_a_message_without_session_id(driver: Driver) -> None:
    with pytest.raises(SendError):
        await driver.sender.send(driver.queue, [message("orphan", None)])

    assert await driver.counts(zero(driver)) == zero(driver)


async def test_dead_letter_shows_in_peek_with_reason_and_delivery_count(driver: Driver) -> None:
    session = new_session()
    await driver.sender.send(driver.queue, [message("poison", session)])
    dead = await driver.dead_letter(session, "SchemaInvalid", "field x is missing")

    [peeked] = await driver.admin.peek_dead_letters(driver.queue, 10)

    assert peeked.message_id == dead.message_id
    assert peeked.sequence_number == dead.sequence_number
    assert peeked.body == b"poison"
    assert peeked.session_id == session
    assert peeked.dead_letter_reason == "SchemaInvalid"
    assert peeked.dead_letter_error_description == "field x is missing"
    assert peeked.delivery_count == 1


async def test_replay_dry_run_changes_nothing(driver: Driver) -> None:
    session = new_session()
    await driver.sender.send(driver.queue, [message("poison", session)])
    dead = await driver.dead_letter(session, "SchemaInvalid", "bad")

    [planned] = await driver.admin.replay_dead_letters(driver.queue, None, dry_run=True)

    assert planned.sequence_number == dead.sequence_number
    assert planned.original_message_id == dead.message_id
    assert planned.new_message_id == replay_message_id(dead.message_id, dead.sequence_number)
    assert planned.session_id == session
    assert planned.dead_letter_reason == "SchemaInvalid"
    still_dead = await driver.admin.peek_dead_letters(driver.queue, 10)
    assert [m.message_id for m in still_dead] == [dead.message_id]
    assert await driver.receive(session) == []


async def test_replay_sends_a_copy_with_a_new_id_and_empties_the_dead_letters(
    driver: Driver,
) -> None:
    session = new_session()
    sent = message("poison", session, application_properties={"scope": "store/order/updated"})
    await driver.sender.send(driver.queue, [sent])
    dead = await driver.dead_letter(session, "SchemaInvalid", "bad")

    [replayed] = await driver.admin.replay_dead_letters(
        driver.queue, [dead.sequence_number], dry_run=False
    )

    assert replayed.new_message_id == replay_message_id(sent.message_id, dead.sequence_number)
    assert replayed.new_message_id != sent.message_id
    assert await driver.admin.peek_dead_letters(driver.queue, 10) == []
    [copy] = await driver.receive(session)
    assert copy.message_id == replayed.new_message_id
    assert copy.session_id == session
    assert copy.body == b"poison"
    assert copy.application_properties["scope"] == "store/order/updated"


async def test_purge_empties_the_queue_and_the_dead_letters(driver: Driver) -> None:
    session = new_session()
    await driver.sender.send(
        driver.queue, [message("m1", session), message("m2", session), message("m3", session)]
    )
    await driver.dead_letter(session, "SchemaInvalid", "bad")

    assert await driver.admin.purge(driver.queue, dead_letters=False) == 2
    assert await driver.admin.purge(driver.queue, dead_letters=True) == 1

    assert await driver.counts(zero(driver)) == zero(driver)
    assert await driver.receive(session) == []
    assert await driver.admin.peek_dead_letters(driver.queue, 10) == []


async def test_counts_reflect_active_scheduled_and_dead_letters(driver: Driver) -> None:
    session = new_session()
    later = driver.now() + timedelta(hours=1)
    await driver.sender.send(
        driver.queue,
        [
            message("a1", session),
            message("a2", session),
            message("a3", session),
            message("later", session, scheduled_enqueue_time=later),
        ],
    )
    await driver.dead_letter(session, "SchemaInvalid", "bad")

    expected = QueueCounts(driver.queue, active=2, scheduled=1, dead_letter=1)
    assert await driver.counts(expected) == expected


# -- peek and move (a queue without sessions, as order-parked, to the session queue) -------------


def routed(name: str, session_id: str) -> OutboundMessage:
    """A message for the plain queue that names the session `to_session` moves it to."""
    return message(name, None, application_properties={"to": session_id, "name": name})


def to_session(source: InboundMessage) -> OutboundMessage:
    return OutboundMessage(
        body=source.body,
        message_id=f"moved-{source.message_id}",
        session_id=str(source.application_properties["to"]),
        application_properties={"moved_from": source.message_id},
        correlation_id=source.correlation_id,
    )


async def test_peek_shows_a_queue_in_order_without_changing_it(
    driver: Driver, plain_queue: str
) -> None:
    session = new_session()
    sent = [routed(name, session) for name in ("m1", "m2", "m3")]
    await driver.sender.send(plain_queue, sent)

    peeked = await driver.admin.peek(plain_queue, 10)

    assert [m.message_id for m in peeked] == [m.message_id for m in sent]
    assert [m.body for m in peeked] == [b"m1", b"m2", b"m3"]
    assert dict(peeked[0].application_properties) == {"to": session, "name": "m1"}
    assert [m.delivery_count for m in peeked] == [0, 0, 0]
    assert peeked == sorted(peeked, key=lambda m: m.sequence_number)
    first_two = await driver.admin.peek(plain_queue, 2)
    assert [m.message_id for m in first_two] == [m.message_id for m in sent[:2]]
    again = await driver.admin.peek(plain_queue, 10)
    assert [(m.message_id, m.delivery_count) for m in again] == [(m.message_id, 0) for m in sent]


async def test_peek_and_move_refuse_a_session_queue(driver: Driver, plain_queue: str) -> None:
    with pytest.raises(ValueError, match="requires sessions"):
        await driver.admin.peek(driver.queue, 10)
    with pytest.raises(ValueError, match="requires sessions"):
        await driver.admin.move(
            driver.queue, plain_queue, to_session, max_messages=10, dry_run=True
        )


async def test_move_dry_run_changes_nothing(driver: Driver, plain_queue: str) -> None:
    session = new_session()
    sent = [routed("m1", session), routed("m2", session)]
    await driver.sender.send(plain_queue, sent)

    planned = await driver.admin.move(
        plain_queue, driver.queue, to_session, max_messages=10, dry_run=True
    )

    assert [p.source.message_id for p in planned] == [m.message_id for m in sent]
    assert [p.sent.message_id for p in planned] == [f"moved-{m.message_id}" for m in sent]
    assert all(p.sent.session_id == session for p in planned)
    assert await driver.receive(session) == []
    left = await driver.admin.peek(plain_queue, 10)
    assert [(m.message_id, m.delivery_count) for m in left] == [(m.message_id, 0) for m in sent]


async def test_move_sends_the_selected_then_completes_them_and_leaves_the_rest(
    driver: Driver, plain_queue: str
) -> None:
    a, b = new_session(), new_session()
    a1, b1, a2 = routed("a1", a), routed("b1", b), routed("a2", a)
    await driver.sender.send(plain_queue, [a1, b1, a2])

    moved = await driver.admin.move(
        plain_queue,
        driver.queue,
        to_session,
        max_messages=10,
        dry_run=False,
        select=lambda m: m.application_properties["to"] == a,
    )

    assert [m.source.message_id for m in moved] == [a1.message_id, a2.message_id]
    assert [m.sent.message_id for m in moved] == [
        f"moved-{a1.message_id}",
        f"moved-{a2.message_id}",
    ]
    assert [m.message_id for m in await driver.admin.peek(plain_queue, 10)] == [b1.message_id]
    copies = await driver.receive(a)
    assert [(c.body, c.message_id) for c in copies] == [
        (b"a1", moved[0].sent.message_id),
        (b"a2", moved[1].sent.message_id),
    ]
    assert copies[0].application_properties["moved_from"] == a1.message_id
    assert await driver.receive(b) == []


async def test_move_leaves_a_message_whose_transform_gives_none(
    driver: Driver, plain_queue: str
) -> None:
    session = new_session()
    keep, go = routed("keep", session), routed("go", session)
    await driver.sender.send(plain_queue, [keep, go])

    moved = await driver.admin.move(
        plain_queue,
        driver.queue,
        lambda m: None if m.body == b"keep" else to_session(m),
        max_messages=10,
        dry_run=False,
    )

    assert [m.source.message_id for m in moved] == [go.message_id]
    assert [m.body for m in await driver.receive(session)] == [b"go"]
    [left] = await driver.admin.peek(plain_queue, 10)
    assert left.message_id == keep.message_id


async def test_move_sends_a_repeated_message_once_and_completes_every_source(
    driver: Driver, plain_queue: str
) -> None:
    session = new_session()
    await driver.sender.send(plain_queue, [routed("p1", session), routed("p2", session)])
    folded = OutboundMessage(body=b"one", message_id=f"one-{uuid.uuid4().hex}", session_id=session)

    moved = await driver.admin.move(
        plain_queue, driver.queue, lambda m: folded, max_messages=10, dry_run=False
    )

    assert [m.sent for m in moved] == [folded, folded]
    assert [m.body for m in await driver.receive(session)] == [b"one"]
    assert await driver.admin.peek(plain_queue, 10) == []


async def test_move_completes_a_message_only_after_its_send_succeeded(
    driver: Driver, plain_queue: str
) -> None:
    session = new_session()
    good, bad = routed("good", session), routed("bad", session)
    await driver.sender.send(plain_queue, [good, bad])

    def transform(source: InboundMessage) -> OutboundMessage:
        copy = to_session(source)
        if source.body == b"bad":  # the target requires sessions: the send is refused
            return OutboundMessage(body=copy.body, message_id=copy.message_id)
        return copy

    with pytest.raises(SendError):
        await driver.admin.move(
            plain_queue, driver.queue, transform, max_messages=10, dry_run=False
        )

    assert [m.body for m in await driver.receive(session)] == [b"good"]
    [left] = await driver.admin.peek(plain_queue, 10)
    assert left.message_id == bad.message_id


async def test_queue_properties_reads_what_the_queue_was_created_with(driver: Driver) -> None:
    # Both drivers' queues have sessions, duplicate detection and dead-lettering on expiry.
    properties = await driver.admin.queue_properties(driver.queue)

    assert properties.name == driver.queue
    assert properties.requires_session is True
    assert properties.duplicate_detection_window is not None
    assert properties.duplicate_detection_window > timedelta(0)
    assert properties.dead_lettering_on_expiration is True
    assert properties.max_delivery_count >= 1
    assert properties.lock_duration > timedelta(0)


async def test_queue_properties_of_a_queue_without_sessions(
    driver: Driver, plain_queue: str
) -> None:
    properties = await driver.admin.queue_properties(plain_queue)

    assert properties.requires_session is False


async def test_queue_properties_of_a_missing_queue_raise_not_found(driver: Driver) -> None:
    with pytest.raises(QueueNotFoundError):
        await driver.admin.queue_properties(f"missing-{uuid.uuid4().hex[:12]}")
