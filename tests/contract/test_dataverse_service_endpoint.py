"""The Dataverse stand-in playing a Service Bus service endpoint (LOCAL_DATAVERSE_SERVICE_ENDPOINT).

Writes go through the Web API with the connector's own client; what the stand-in posts is read
straight from the local broker's `dataverse-events` queue and parsed with the connector's parser
(shared/dataverse/remote_context.py), then forwarded by the connector's handler: the wire format
is the contract between them. The steps are those an operator registers: Create and Update of
`msdyn_fulfillmentorder`, Update of `salesorder` (post-operation, asynchronous, post image).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest

from local.broker import LocalBroker
from local.dataverse.harness import Harness, dataverse_standin
from shared.config import Settings, load_settings
from shared.dataverse.client import DataverseClient
from shared.dataverse.models import KeyScalar
from shared.dataverse.remote_context import (
    PROPERTY_ENTITY,
    PROPERTY_REQUEST,
    EntityChange,
    EntityReference,
    OptionSetValue,
    parse_remote_context,
)
from shared.handlers.dataverse_changes import DataverseChanges, Forwarded
from shared.messaging.message import InboundMessage, OutboundMessage
from tests.support.dataverse_standin import StandinProcess, running_standin

pytestmark = pytest.mark.e2e

FO_KEY: dict[str, KeyScalar] = {"bciom_storehash": "abc123", "bciom_fulfillmentkey": "100-1"}
SO_KEY: dict[str, KeyScalar] = {"bciom_storehash": "abc123", "bciom_bcorderid": 100}


def peek(path: Path) -> list[InboundMessage]:
    with LocalBroker(path) as broker:
        return broker.peek("dataverse-events", max_messages=100)


def parsed(message: InboundMessage) -> EntityChange:
    return parse_remote_context(
        message.body, properties=message.application_properties, content_type=message.content_type
    )


@pytest.fixture
def broker_path(tmp_path: Path) -> Path:
    return tmp_path / "broker.sqlite3"


@pytest.fixture
def standin(broker_path: Path) -> Iterator[StandinProcess]:
    with running_standin(settings={"LOCAL_DATAVERSE_SERVICE_ENDPOINT": str(broker_path)}) as dv:
        yield dv


@pytest.fixture
async def client(standin: StandinProcess) -> AsyncIterator[DataverseClient]:
    client = standin.client()
    try:
        yield client
    finally:
        await client.aclose()


async def test_a_fulfillment_order_write_is_posted_before_the_answer(
    client: DataverseClient, broker_path: Path
) -> None:
    created = await client.upsert(
        "msdyn_fulfillmentorders",
        FO_KEY,
        {"msdyn_name": "FO 100-1", "bciom_bcorderid": 100, "bciom_shipped": False},
    )
    # No waiting: the stand-in posts within the request, after the commit.
    [message] = peek(broker_path)
    assert message.content_type == "application/json"
    assert message.session_id is None
    assert message.application_properties[PROPERTY_ENTITY] == "msdyn_fulfillmentorder"
    assert message.application_properties[PROPERTY_REQUEST] == "Create"
    assert b"http:\\/\\/schemas.microsoft.com\\/xrm\\/2011\\/Contracts" in message.body
    change = parsed(message)
    assert change.message_name == "Create"
    assert change.entity == "msdyn_fulfillmentorder"
    assert created.ref is not None
    assert change.attributes["bciom_storehash"] == "abc123"
    assert change.attributes["bciom_bcorderid"] == 100
    assert change.attributes["bciom_shipped"] is False
    assert isinstance(change.attributes["versionnumber"], int)
    assert change.depth == 1
    assert change.operation_created_on is not None

    await client.upsert(
        "msdyn_fulfillmentorders", FO_KEY, {"bciom_shipped": True, "bciom_trackingnumber": "1Z9"}
    )
    first, second = peek(broker_path)
    update = parsed(second)
    assert update.message_name == "Update"
    assert update.record_id == change.record_id
    assert update.attributes["bciom_shipped"] is True
    assert update.attributes["bciom_trackingnumber"] == "1Z9"
    assert int(str(update.row_version)) > int(str(change.row_version))
    assert second.message_id != first.message_id


async def test_salesorder_updates_are_posted_and_creates_are_not(
    client: DataverseClient, broker_path: Path
) -> None:
    contact = await client.create("contacts", {"firstname": "Ada", "lastname": "Lovelace"})
    assert contact.ref is not None
    assert contact.ref.id is not None
    await client.upsert(
        "salesorders",
        SO_KEY,
        {"name": "Order 100", "customerid_contact@odata.bind": f"/contacts({contact.ref.id})"},
    )
    assert peek(broker_path) == []  # no step on Create of salesorder
    await client.upsert("salesorders", SO_KEY, {"statecode": 2, "statuscode": 4})
    [message] = peek(broker_path)
    change = parsed(message)
    assert (change.message_name, change.entity) == ("Update", "salesorder")
    assert change.attributes["statecode"] == OptionSetValue(2)
    assert change.attributes["statuscode"] == OptionSetValue(4)
    assert change.attributes["customerid"] == EntityReference("contact", contact.ref.id)
    assert change.attributes["bciom_bcorderid"] == 100


async def test_the_connector_forwards_what_the_stand_in_posts(
    client: DataverseClient, broker_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await client.upsert(
        "msdyn_fulfillmentorders", FO_KEY, {"bciom_bcorderid": 100, "bciom_shipped": True}
    )
    [message] = peek(broker_path)

    monkeypatch.setenv("BIGCOMMERCE_STORES", "abc123")
    monkeypatch.setenv("BIGCOMMERCE_ABC123_ACCESS_TOKEN", "t")
    monkeypatch.setenv("BIGCOMMERCE_ABC123_WEBHOOK_SECRET", "s")
    settings: Settings = load_settings()
    sent: list[OutboundMessage] = []

    class Sender:
        async def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
            assert queue == "order-events"
            sent.extend(messages)

        async def close(self) -> None:
            return None

    changes = DataverseChanges(settings, Sender(), client, new_id=lambda: uuid.uuid4().hex)
    outcome = await changes.receive(
        message.body,
        message_id=message.message_id,
        content_type=message.content_type,
        properties=message.application_properties,
    )
    assert isinstance(outcome, Forwarded)
    assert outcome.session_id == "abc123:order:100"
    assert [m.session_id for m in sent] == ["abc123:order:100"]


async def test_a_rolled_back_change_set_posts_nothing(tmp_path: Path) -> None:
    broker = tmp_path / "broker.sqlite3"
    env = {"LOCAL_DATAVERSE_SERVICE_ENDPOINT": str(broker)}
    async with dataverse_standin(provisioned=True, env=env) as dv:
        body = await _failing_change_set(dv)
        response = await dv.api.post(
            "$batch", content=body, headers={"Content-Type": "multipart/mixed; boundary=b1"}
        )
        assert response.status_code < 500
        assert await dv.count("msdyn_fulfillmentorder") == 0
    assert peek(broker) == []


async def _failing_change_set(dv: Harness) -> bytes:
    """A change set that creates a fulfillment order, then fails on an unknown column."""
    lines = [
        "--b1",
        "Content-Type: multipart/mixed; boundary=c1",
        "",
        "--c1",
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "Content-ID: 1",
        "",
        "POST msdyn_fulfillmentorders HTTP/1.1",
        "Content-Type: application/json",
        "",
        '{"msdyn_name": "FO", "bciom_storehash": "abc123", "bciom_bcorderid": 1}',
        "--c1",
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "Content-ID: 2",
        "",
        "POST msdyn_fulfillmentorders HTTP/1.1",
        "Content-Type: application/json",
        "",
        '{"no_such_column": 1}',
        "--c1--",
        "--b1--",
        "",
    ]
    return "\r\n".join(lines).encode()


def test_a_change_committed_while_the_broker_was_unreachable_is_posted_later(
    tmp_path: Path,
) -> None:
    database = tmp_path / "dataverse.sqlite3"
    broker = tmp_path / "broker.sqlite3"
    unreachable = tmp_path / "no-such-dir" / "broker.sqlite3"
    settings = {"LOCAL_DATAVERSE_DB": str(database)}

    async def write(dv: StandinProcess) -> None:
        client = dv.client()
        try:
            await client.upsert(
                "msdyn_fulfillmentorders", FO_KEY, {"bciom_bcorderid": 100, "bciom_shipped": True}
            )
        finally:
            await client.aclose()

    with running_standin(
        settings={**settings, "LOCAL_DATAVERSE_SERVICE_ENDPOINT": str(unreachable)}
    ) as dv:
        asyncio.run(write(dv))  # the write commits; the post fails and is retried
    assert not broker.exists()
    with running_standin(settings={**settings, "LOCAL_DATAVERSE_SERVICE_ENDPOINT": str(broker)}):
        [message] = peek(broker)
    change = parsed(message)
    assert (change.message_name, change.entity) == ("Create", "msdyn_fulfillmentorder")
