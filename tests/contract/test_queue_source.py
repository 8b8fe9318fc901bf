"""The local host's queue sources: the local broker and a Service Bus namespace, one contract.

`azure` runs only with `SERVICEBUS_TEST_QUEUE` (an existing, empty, session-enabled queue) and
`SERVICEBUS_TEST_CONNECTION_STRING` or `SERVICEBUS_TEST_NAMESPACE` set; otherwise it is skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from local.broker import LocalBroker, MessageLockLostError
from local.broker.adapters import LocalBrokerSender, provision
from local.host.broker_source import BrokerSource
from local.host.queue_pump import QueueSource
from local.host.servicebus_source import AzureQueueSource
from shared.messaging.azure_servicebus import AzureServiceBusSender, ServiceBusConnection
from shared.messaging.message import OutboundMessage
from shared.messaging.ports import MessageSender
from shared.messaging.queues import ORDER_EVENTS


@pytest.fixture(params=["local", "azure"])
async def pair(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, MessageSender, QueueSource]]:
    if request.param == "local":
        broker = LocalBroker(tmp_path / "broker.sqlite3")
        provision(broker)
        yield ORDER_EVENTS.name, LocalBrokerSender(broker), BrokerSource(broker)
        broker.close()
        return
    queue = os.environ.get("SERVICEBUS_TEST_QUEUE")
    connection_string = os.environ.get("SERVICEBUS_TEST_CONNECTION_STRING")
    namespace = os.environ.get("SERVICEBUS_TEST_NAMESPACE")
    if not queue or not (connection_string or namespace):
        pytest.skip(
            "no SERVICEBUS_TEST_QUEUE with SERVICEBUS_TEST_CONNECTION_STRING or "
            "SERVICEBUS_TEST_NAMESPACE: the Azure queue source runs only against a real namespace"
        )
    connection = ServiceBusConnection(namespace=namespace, connection_string=connection_string)
    sender = AzureServiceBusSender(connection)
    source = AzureQueueSource(connection)
    yield queue, sender, source
    await source.close()
    await sender.close()


async def test_session_messages_arrive_in_order_and_settle(
    pair: tuple[str, MessageSender, QueueSource],
) -> None:
    queue, sender, source = pair
    session_id = f"store:order:{uuid.uuid4().hex[:8]}"
    bodies = [b"first", b"second", b"third"]
    await sender.send(
        queue,
        [OutboundMessage(b, uuid.uuid4().hex, session_id=session_id) for b in bodies],
    )
    session = await source.accept_next_session(queue)
    assert session is not None
    assert session.session_id == session_id
    first = await source.receive(queue, 1, session)
    assert [m.body for m in first] == [b"first"]
    await source.abandon(queue, first[0])
    again = await source.receive(queue, 1, session)
    assert again[0].body == b"first"
    assert again[0].delivery_count == first[0].delivery_count + 1
    await source.renew_session_lock(queue, session)
    await source.complete(queue, again[0])
    received: list[bytes] = []
    while len(received) < 2:
        batch = await source.receive(queue, 2, session)
        for message in batch:
            received.append(message.body)
            await source.complete(queue, message)
    assert received == [b"second", b"third"]
    await source.release_session(queue, session)
    assert await source.accept_next_session(queue) is None


async def test_settling_a_message_twice_is_refused(
    pair: tuple[str, MessageSender, QueueSource],
) -> None:
    queue, sender, source = pair
    session_id = f"store:order:{uuid.uuid4().hex[:8]}"
    await sender.send(queue, [OutboundMessage(b"once", uuid.uuid4().hex, session_id=session_id)])
    session = await source.accept_next_session(queue)
    assert session is not None
    [message] = await source.receive(queue, 1, session)
    await source.complete(queue, message)
    with pytest.raises((MessageLockLostError, LookupError)):
        await source.complete(queue, message)
    await source.release_session(queue, session)
