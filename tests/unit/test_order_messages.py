"""Order messages on `order-events`: reading both schemas (the webhook ingress's
`bigcommerce.webhook` v1 and the connector's own `connector.order` v1), the errors that park a
message, `build_order_message` round trips and session ids."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from shared.messaging.message import PropertyValue
from shared.orchestration.flow import Trigger
from shared.orchestration.messages import (
    SCHEMA,
    SCHEMA_VERSION,
    MessageFormatError,
    OrderMessage,
    Skip,
    build_order_message,
    derived_id,
    order_session,
    read_message,
)
from shared.webhooks import contract
from tests.unit.lifecycle_fakes import STORE, T0, webhook_outbound


def read(
    body: bytes | dict[str, Any],
    properties: dict[str, PropertyValue] | None = None,
    *,
    message_id: str = "m-1",
    correlation_id: str | None = None,
) -> OrderMessage | Skip:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return read_message(
        raw,
        message_id=message_id,
        application_properties=properties or {},
        correlation_id=correlation_id,
    )


def connector_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "trigger": "dataverse_fulfillment",
        "store_hash": STORE,
        "order_id": 250,
        "attempt": 0,
        "origin_message_id": None,
        "detail": "fulfillment order 250-1 shipped",
        "correlation_id": "corr-9",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


def webhook_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schema": contract.SCHEMA,
        "schema_version": contract.SCHEMA_VERSION,
        "received_at": T0.isoformat(),
        "store_hash": STORE,
        "correlation_id": "corr-1",
        "event": {"scope": "store/order/created", "data": {"type": "order", "id": 250}},
    }
    body.update(changes)
    return body


ORDER_PROPERTIES: dict[str, PropertyValue] = {
    "schema_version": 1,
    "scope": "store/order/created",
    "family": "order",
    "store_hash": STORE,
    "entity": "order",
    "order_id": 250,
}


# -- bigcommerce.webhook ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "data", "trigger"),
    [
        ("store/order/created", {"type": "order", "id": 250}, Trigger.BIGCOMMERCE_ORDER),
        ("store/order/updated", {"type": "order", "id": 250}, Trigger.BIGCOMMERCE_ORDER),
        ("store/order/archived", {"type": "order", "id": 250}, Trigger.BIGCOMMERCE_ORDER),
        (
            "store/order/statusUpdated",
            {"type": "order", "id": 250,
             "status": {"previous_status_id": 0, "new_status_id": 11}},
            Trigger.BIGCOMMERCE_ORDER,
        ),
        (
            "store/order/message/created",
            {"type": "order", "id": 250, "message": {"order_message_id": 3}},
            Trigger.BIGCOMMERCE_ORDER,
        ),
        (
            "store/order/transaction/created",
            {"type": "transaction", "order_id": 250, "transaction_id": "9"},
            Trigger.BIGCOMMERCE_ORDER,
        ),
        ("store/channel/1/order/updated", {"order_id": 250}, Trigger.BIGCOMMERCE_ORDER),
        (
            "store/shipment/created",
            {"type": "shipment", "id": 4, "orderId": 250},
            Trigger.BIGCOMMERCE_SHIPMENT,
        ),
        (
            "store/order/refund/created",
            {"type": "order", "id": 250, "refund": {"refund_id": 8}},
            Trigger.BIGCOMMERCE_REFUND,
        ),
    ],
)  # fmt: skip
def test_webhooks_about_an_order_are_read_with_their_trigger(
    scope: str, data: dict[str, Any], trigger: Trigger
) -> None:
    outbound = webhook_outbound(scope, data, correlation_id="corr-7")

    message = read_message(
        outbound.body,
        message_id=outbound.message_id,
        application_properties=outbound.application_properties,
        correlation_id=outbound.correlation_id,
    )

    assert message == OrderMessage(
        trigger=trigger,
        store_hash=STORE,
        order_id=250,
        message_id=outbound.message_id,
        correlation_id="corr-7",
        attempt=0,
        origin_message_id=None,
        detail=scope,
    )
    # The runner works in the session the ingress put the message in.
    assert message.session_id == outbound.session_id == f"{STORE}:order:250"


@pytest.mark.parametrize(
    ("scope", "data"),
    [
        ("store/customer/updated", {"type": "customer", "id": 5}),
        ("store/customer/address/created", {"type": "customer", "id": 5,
                                            "address": {"customer_id": 5}}),
        ("store/product/inventory/updated", {"type": "product", "id": 9,
                                             "inventory": {"product_id": 9,
                                                           "method": "absolute", "value": 3}}),
        ("store/app/uninstalled", {}),
    ],
)  # fmt: skip
def test_webhooks_about_no_order_are_skipped(scope: str, data: dict[str, Any]) -> None:
    outbound = webhook_outbound(scope, data)

    message = read_message(
        outbound.body,
        message_id=outbound.message_id,
        application_properties=outbound.application_properties,
    )

    assert isinstance(message, Skip)
    assert scope in message.reason


def test_webhook_correlation_id_falls_back_to_the_broker_property_then_the_message_id() -> None:
    body = webhook_body(correlation_id=None)

    from_broker = read(body, ORDER_PROPERTIES, correlation_id="corr-broker")
    from_id = read(body, ORDER_PROPERTIES, message_id="m-42")

    assert isinstance(from_broker, OrderMessage)
    assert from_broker.correlation_id == "corr-broker"
    assert isinstance(from_id, OrderMessage)
    assert from_id.correlation_id == "m-42"


def test_webhook_store_hash_may_come_from_the_properties() -> None:
    message = read(webhook_body(store_hash=None), {**ORDER_PROPERTIES, "store_hash": "zzz9"})

    assert isinstance(message, OrderMessage)
    assert message.store_hash == "zzz9"


@pytest.mark.parametrize(
    ("properties", "body", "error"),
    [
        pytest.param({"order_id": None}, {}, "carries no order id", id="no-order-id"),
        pytest.param({"order_id": "250"}, {}, "carries no order id", id="order-id-text"),
        pytest.param({"order_id": 0}, {}, "carries no order id", id="order-id-zero"),
        pytest.param({"order_id": True}, {}, "carries no order id", id="order-id-bool"),
        pytest.param({"store_hash": None}, {"store_hash": ""}, "no store hash", id="no-store"),
        pytest.param({}, {"schema_version": 2}, "bigcommerce.webhook version 2 unknown",
                     id="version"),
    ],
)  # fmt: skip
def test_unreadable_webhook_messages(
    properties: dict[str, PropertyValue], body: dict[str, Any], error: str
) -> None:
    with pytest.raises(MessageFormatError, match=error) as caught:
        read(webhook_body(**body), {**ORDER_PROPERTIES, **properties}, message_id="m-bad")

    assert str(caught.value).startswith("message m-bad: ")


# -- connector.order ----------------------------------------------------------------------------


def test_connector_message_is_read() -> None:
    message = read(connector_body(attempt=3, origin_message_id="origin-1"), message_id="m-3")

    assert message == OrderMessage(
        trigger=Trigger.DATAVERSE_FULFILLMENT,
        store_hash=STORE,
        order_id=250,
        message_id="m-3",
        correlation_id="corr-9",
        attempt=3,
        origin_message_id="origin-1",
        detail="fulfillment order 250-1 shipped",
    )


def test_connector_message_defaults() -> None:
    body = {
        "schema": SCHEMA,
        "schema_version": 1,
        "trigger": "replay",
        "store_hash": STORE,
        "order_id": 7,
    }

    message = read(body, message_id="m-7")

    assert message == OrderMessage(
        trigger=Trigger.REPLAY,
        store_hash=STORE,
        order_id=7,
        message_id="m-7",
        correlation_id="m-7",
    )


def test_connector_messages_ignore_the_webhook_properties() -> None:
    # A connector message is read from its body alone, whatever its properties say.
    message = read(connector_body(), {"family": "customer", "order_id": 1})

    assert isinstance(message, OrderMessage)
    assert (message.trigger, message.order_id) == (Trigger.DATAVERSE_FULFILLMENT, 250)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        pytest.param({"trigger": "shipped"}, "has an invalid trigger 'shipped'",
                     id="unknown-trigger"),
        pytest.param({"trigger": ...}, "lacks 'trigger'", id="no-trigger"),
        pytest.param({"store_hash": ...}, "lacks 'store_hash'", id="no-store"),
        pytest.param({"store_hash": ""}, "has an invalid store_hash", id="empty-store"),
        pytest.param({"store_hash": 12}, "has an invalid store_hash", id="store-not-text"),
        pytest.param({"order_id": ...}, "lacks 'order_id'", id="no-order"),
        pytest.param({"order_id": 0}, "has an invalid order_id", id="order-zero"),
        pytest.param({"order_id": "250"}, "has an invalid order_id", id="order-text"),
        pytest.param({"attempt": -1}, "has an invalid attempt", id="attempt-negative"),
        pytest.param({"attempt": 1.5}, "has an invalid attempt", id="attempt-float"),
        pytest.param({"schema_version": 2}, "connector.order version 2 unknown", id="version"),
    ],
)  # fmt: skip
def test_unreadable_connector_messages(changes: dict[str, Any], error: str) -> None:
    with pytest.raises(MessageFormatError) as caught:
        read(connector_body(**changes), message_id="m-bad")

    text = str(caught.value)
    assert text.startswith("message m-bad: ")
    assert error in text


def test_a_boolean_order_id_is_refused_in_a_connector_message() -> None:
    with pytest.raises(MessageFormatError):
        read(connector_body(order_id=True))


@pytest.mark.parametrize(
    ("body", "error"),
    [
        pytest.param(b"", "body is not JSON", id="empty"),
        pytest.param(b"{not json", "body is not JSON", id="broken"),
        pytest.param(b"\xff\xfe\x00", "body is not JSON", id="not-utf8"),
        pytest.param(b'"text"', "body is not a JSON object", id="string"),
        pytest.param(b"[]", "body is not a JSON object", id="list"),
        pytest.param(b"{}", "unknown schema None", id="no-schema"),
        pytest.param(b'{"schema": "bigcommerce.order"}', "unknown schema 'bigcommerce.order'",
                     id="other-schema"),
    ],
)  # fmt: skip
def test_unreadable_bodies(body: bytes, error: str) -> None:
    with pytest.raises(MessageFormatError, match=error):
        read(body, ORDER_PROPERTIES)


# -- build_order_message ------------------------------------------------------------------------


def test_build_order_message_round_trips() -> None:
    at = T0 + timedelta(seconds=90)
    outbound = build_order_message(
        trigger=Trigger.DATAVERSE_ORDER,
        store_hash=STORE,
        order_id=250,
        message_id="m-out",
        correlation_id="corr-5",
        attempt=2,
        origin_message_id="origin-1",
        detail="salesorder cancelled",
        scheduled_enqueue_time=at,
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )

    assert outbound.message_id == "m-out"
    assert outbound.session_id == order_session(STORE, 250) == f"{STORE}:order:250"
    assert outbound.correlation_id == "corr-5"
    assert outbound.subject == "connector.order/dataverse_order"
    assert outbound.scheduled_enqueue_time == at
    assert outbound.content_type == "application/json"
    assert outbound.application_properties == {
        "schema_version": 1,
        "trigger": "dataverse_order",
        "store_hash": STORE,
        "entity": "order",
        "order_id": 250,
        "attempt": 2,
        "correlation_id": "corr-5",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }
    message = read_message(
        outbound.body,
        message_id=outbound.message_id,
        application_properties=outbound.application_properties,
        correlation_id=outbound.correlation_id,
    )
    assert message == OrderMessage(
        trigger=Trigger.DATAVERSE_ORDER,
        store_hash=STORE,
        order_id=250,
        message_id="m-out",
        correlation_id="corr-5",
        attempt=2,
        origin_message_id="origin-1",
        detail="salesorder cancelled",
    )
    assert isinstance(message, OrderMessage)
    assert message.session_id == outbound.session_id


@pytest.mark.parametrize("trigger", list(Trigger))
def test_every_trigger_round_trips(trigger: Trigger) -> None:
    outbound = build_order_message(
        trigger=trigger, store_hash=STORE, order_id=1, message_id="m", correlation_id="c"
    )

    message = read_message(outbound.body, message_id="m", application_properties={})

    assert isinstance(message, OrderMessage)
    assert (message.trigger, message.attempt, message.origin_message_id) == (trigger, 0, None)
    assert "traceparent" not in outbound.application_properties
    assert outbound.scheduled_enqueue_time is None


def test_order_session_matches_the_webhook_contract_for_every_order_event() -> None:
    for scope, data in (
        ("store/order/created", {"type": "order", "id": 250}),
        ("store/shipment/created", {"type": "shipment", "id": 4, "orderId": 250}),
        ("store/channel/1/order/created", {"order_id": 250}),
    ):
        assert webhook_outbound(scope, data).session_id == order_session(STORE, 250)


def test_derived_ids_are_deterministic_and_distinct() -> None:
    assert derived_id("retry", "m-1", 1) == derived_id("retry", "m-1", 1)
    ids = {
        derived_id("retry", "m-1", 1),
        derived_id("retry", "m-1", 2),
        derived_id("retry", "m-2", 1),
        derived_id("parked", "m-1"),
    }
    assert len(ids) == 4
    assert all(len(i) == 64 for i in ids)  # fits Service Bus's 128-character message id
