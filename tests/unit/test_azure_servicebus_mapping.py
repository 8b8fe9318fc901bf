"""The Azure adapter's pure parts: message mapping both ways, and connection choice from settings.

Received messages are built the way the SDK builds them from the wire: an outgoing message is
encoded to AMQP bytes with broker annotations added, then decoded with
`ServiceBusReceivedMessage.from_bytes`, so keys and strings come back as bytes, as they do live.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential
from azure.servicebus import ServiceBusMessage, ServiceBusReceivedMessage

# Private SDK modules, used only to produce the wire bytes a receiver would get.
from azure.servicebus._pyamqp._encode import encode_payload
from azure.servicebus._transport._pyamqp_transport import PyamqpTransport

from shared.config import ConfigurationError, load_settings
from shared.messaging.azure_servicebus import (
    AzureServiceBusSender,
    from_received,
    to_servicebus_message,
)
from shared.messaging.message import OutboundMessage

NAMESPACE = "contoso.servicebus.windows.net"
CONNECTION_STRING = f"Endpoint=sb://{NAMESPACE}/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0"
SERVICEBUS_SETTINGS = (
    "ServiceBusConnection__fullyQualifiedNamespace",
    "ServiceBusConnection",
    "ServiceBusConnection__credential",
    "ServiceBusConnection__clientId",
)
ENQUEUED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def full_message() -> OutboundMessage:
    return OutboundMessage(
        body=b'{"order": 42}',
        message_id="store1:order:42:created",
        session_id="store1:42",
        application_properties={"scope": "store/order/created", "attempt": 2, "ok": True},
        content_type="application/json",
        correlation_id="req-1",
        subject="store/order/created",
        scheduled_enqueue_time=datetime(2026, 3, 1, 14, 30, tzinfo=timezone(timedelta(hours=2))),
        time_to_live=timedelta(days=2),
    )


def as_received(
    message: ServiceBusMessage,
    *,
    sequence_number: int = 7,
    delivery_count: int = 1,
    extra_properties: dict[str | bytes, object] | None = None,
) -> ServiceBusReceivedMessage:
    raw = message.raw_amqp_message
    raw.annotations = {
        **(raw.annotations or {}),
        b"x-opt-sequence-number": sequence_number,
        b"x-opt-enqueued-time": int(ENQUEUED.timestamp() * 1000),
    }
    assert raw.header is not None
    raw.header.delivery_count = delivery_count
    if extra_properties:
        raw.application_properties = {**(raw.application_properties or {}), **extra_properties}
    wire = encode_payload(bytearray(), PyamqpTransport.to_outgoing_amqp_message(raw))
    return ServiceBusReceivedMessage.from_bytes(bytes(wire))


def test_outbound_message_maps_every_property() -> None:
    sb = to_servicebus_message(full_message())

    assert b"".join(sb.body) == b'{"order": 42}'
    assert sb.message_id == "store1:order:42:created"
    assert sb.session_id == "store1:42"
    assert sb.application_properties == {
        "scope": "store/order/created",
        "attempt": 2,
        "ok": True,
    }
    assert (sb.content_type, sb.correlation_id, sb.subject) == (
        "application/json",
        "req-1",
        "store/order/created",
    )
    assert sb.scheduled_enqueue_time_utc == datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    assert sb.scheduled_enqueue_time_utc is not None
    assert sb.scheduled_enqueue_time_utc.utcoffset() == timedelta(0)
    assert sb.time_to_live == timedelta(days=2)


def test_minimal_outbound_message_leaves_optional_properties_unset() -> None:
    sb = to_servicebus_message(OutboundMessage(body=b"x", message_id="m-1", content_type=None))

    assert sb.session_id is None
    assert sb.application_properties is None
    assert sb.content_type is None
    assert sb.scheduled_enqueue_time_utc is None
    assert sb.time_to_live is None


def test_received_message_maps_back_with_str_property_keys_and_values() -> None:
    sent = full_message()
    received = as_received(to_servicebus_message(sent), sequence_number=7, delivery_count=3)

    inbound = from_received(received)

    assert inbound.body == sent.body
    assert inbound.message_id == sent.message_id
    assert inbound.session_id == sent.session_id
    assert inbound.sequence_number == 7
    assert inbound.delivery_count == 3
    assert inbound.enqueued_time == ENQUEUED
    assert dict(inbound.application_properties) == {
        "scope": "store/order/created",
        "attempt": 2,
        "ok": True,
    }
    assert all(isinstance(key, str) for key in inbound.application_properties)
    assert (inbound.content_type, inbound.correlation_id, inbound.subject) == (
        "application/json",
        "req-1",
        "store/order/created",
    )
    assert inbound.scheduled_enqueue_time == datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    assert inbound.time_to_live == timedelta(days=2)
    assert inbound.expires_at == ENQUEUED + timedelta(days=2)
    assert inbound.dead_letter_reason is None


def test_dead_letter_reason_is_lifted_out_of_the_application_properties() -> None:
    received = as_received(
        to_servicebus_message(OutboundMessage(body=b"poison", message_id="m-9")),
        extra_properties={
            b"DeadLetterReason": b"SchemaInvalid",
            b"DeadLetterErrorDescription": b"field x is missing",
            b"trace": b"00-abc-01",
        },
    )

    inbound = from_received(received)

    assert inbound.dead_letter_reason == "SchemaInvalid"
    assert inbound.dead_letter_error_description == "field x is missing"
    assert dict(inbound.application_properties) == {"trace": "00-abc-01"}


def test_foreign_property_types_are_normalised_to_text() -> None:
    marker = uuid.UUID("12345678-1234-5678-1234-567812345678")
    received = as_received(
        to_servicebus_message(OutboundMessage(body=b"x", message_id="m-1")),
        extra_properties={"id": marker},
    )

    assert dict(from_received(received).application_properties) == {"id": str(marker)}


@pytest.fixture
def servicebus_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in SERVICEBUS_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


async def test_managed_identity_setting_selects_managed_identity_with_client_id(
    servicebus_env: pytest.MonkeyPatch,
) -> None:
    servicebus_env.setenv("ServiceBusConnection__fullyQualifiedNamespace", NAMESPACE)
    servicebus_env.setenv("ServiceBusConnection__credential", "managedidentity")
    servicebus_env.setenv("ServiceBusConnection__clientId", "00000000-0000-0000-0000-000000000001")

    sender = AzureServiceBusSender.from_settings(load_settings())

    assert sender.connection.auth == "managed_identity"
    assert sender.connection.namespace == NAMESPACE
    assert sender.connection.client_id == "00000000-0000-0000-0000-000000000001"
    credential = sender.connection.create_credential()
    assert isinstance(credential, ManagedIdentityCredential)
    await credential.close()


async def test_namespace_alone_selects_the_developer_credential(
    servicebus_env: pytest.MonkeyPatch,
) -> None:
    servicebus_env.setenv("ServiceBusConnection__fullyQualifiedNamespace", NAMESPACE)

    sender = AzureServiceBusSender.from_settings(load_settings())

    assert sender.connection.auth == "developer"
    credential = sender.connection.create_credential()
    assert isinstance(credential, DefaultAzureCredential)
    await credential.close()


def test_connection_string_wins_and_needs_no_credential(
    servicebus_env: pytest.MonkeyPatch,
) -> None:
    servicebus_env.setenv("ServiceBusConnection", CONNECTION_STRING)
    servicebus_env.setenv("ServiceBusConnection__fullyQualifiedNamespace", NAMESPACE)

    sender = AzureServiceBusSender.from_settings(load_settings())

    assert sender.connection.auth == "connection_string"
    assert sender.connection.connection_string == CONNECTION_STRING
    assert sender.connection.create_credential() is None
    assert "SharedAccessKey" not in repr(sender.connection)


def test_no_servicebus_setting_is_a_configuration_error(
    servicebus_env: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigurationError, match="ServiceBusConnection__fullyQualifiedNamespace"):
        AzureServiceBusSender.from_settings(load_settings())


async def test_constructing_the_sender_opens_no_connection(
    servicebus_env: pytest.MonkeyPatch,
) -> None:
    servicebus_env.setenv("ServiceBusConnection__fullyQualifiedNamespace", NAMESPACE)
    sender = AzureServiceBusSender.from_settings(load_settings())

    await sender.send("order-events", [])

    assert not sender.is_open
    await sender.close()
    assert not sender.is_open
