"""The Dataverse change poll against the stand-in over HTTP, sending to a local broker.

The real pieces end to end: the connector's Web API client reading change tracking from the
stand-in process, checkpoints in its `bciom_syncstate` table, and the local broker's
duplicate detection on `order-events`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from local.broker import LocalBroker
from local.broker.adapters import LocalBrokerSender, provision
from shared.config import Settings, load_settings
from shared.dataverse.client import DataverseClient
from shared.dataverse.models import KeyScalar
from shared.handlers.dataverse_poll import DataverseCheckpoints, DataversePoll
from shared.messaging.message import InboundMessage
from shared.orchestration.messages import OrderMessage, read_message
from tests.support.dataverse_standin import StandinProcess, running_standin

pytestmark = pytest.mark.e2e

FO_KEY: dict[str, KeyScalar] = {"bciom_storehash": "abc123", "bciom_fulfillmentkey": "100-1"}
CHECKPOINT = "dataverse-poll.msdyn_fulfillmentorders"


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinProcess]:
    with running_standin(provisioned=True) as dv:
        yield dv


@pytest.fixture
async def client(standin: StandinProcess) -> AsyncIterator[DataverseClient]:
    client = standin.client()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    with LocalBroker(tmp_path / "broker.sqlite3") as broker:
        provision(broker)
        yield broker


@pytest.fixture
def settings(standin: StandinProcess, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in {
        "BIGCOMMERCE_STORES": "abc123",
        "BIGCOMMERCE_ABC123_ACCESS_TOKEN": "t",
        "BIGCOMMERCE_ABC123_WEBHOOK_SECRET": "s",
        "DATAVERSE_URL": standin.url,
        "SERVICEBUS_TRANSPORT": "local",
        "DATAVERSE_CHANGE_SOURCE": "poll",
    }.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def order_events(broker: LocalBroker) -> list[InboundMessage]:
    return broker.peek("order-events", max_messages=100)


async def test_the_poll_forwards_each_change_once(
    settings: Settings, client: DataverseClient, broker: LocalBroker
) -> None:
    sender = LocalBrokerSender(broker)
    checkpoints = DataverseCheckpoints(client)
    poll = DataversePoll(settings, client, sender, checkpoints, new_id=lambda: "poll-e2e")
    # A row from before the poll ever ran: the first run starts from now, it is not forwarded.
    await client.upsert(
        "msdyn_fulfillmentorders", FO_KEY, {"bciom_bcorderid": 100, "bciom_shipped": False}
    )

    first = await poll.run()

    assert [t.started for t in first.tables] == [True, True]
    assert order_events(broker) == []
    start_link = await checkpoints.load(CHECKPOINT)
    assert start_link is not None
    assert "$deltatoken=" in start_link
    stored = await client.retrieve(
        "bciom_syncstates", {"bciom_name": CHECKPOINT}, select=["bciom_value"]
    )
    assert stored.row is not None
    assert stored.row["bciom_value"] == start_link

    # The fulfillment order ships in Dynamics.
    await client.upsert(
        "msdyn_fulfillmentorders", FO_KEY, {"bciom_shipped": True, "bciom_trackingnumber": "1Z9"}
    )
    second = await poll.run()

    [message] = order_events(broker)
    assert message.session_id == "abc123:order:100"
    read = read_message(
        message.body,
        message_id=message.message_id,
        application_properties=message.application_properties,
    )
    assert isinstance(read, OrderMessage)
    assert read.trigger.value == "dataverse_fulfillment"
    assert read.correlation_id == "poll-e2e"
    assert second.tables[0].forwarded == 1
    moved = await checkpoints.load(CHECKPOINT)
    assert moved != start_link

    # Polled again: no change since the checkpoint, nothing sent.
    third = await poll.run()
    assert third.tables[0].changed == 0
    assert len(order_events(broker)) == 1

    # A crash after the sends but before the checkpoint moved reads the change again: the same
    # message id, which the broker's duplicate detection drops.
    await checkpoints.save(CHECKPOINT, start_link)
    again = await poll.run()
    assert again.tables[0].forwarded == 1
    assert [m.message_id for m in order_events(broker)] == [message.message_id]
    await sender.close()
