"""The `orders` CLI commands, run in-process against a real local broker file."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, main
from local.broker import LocalBroker
from local.broker.adapters import provision
from shared.messaging.message import InboundMessage, OutboundMessage, PropertyValue
from shared.messaging.queues import ORDER_EVENTS, ORDER_PARKED
from shared.orchestration.flow import Trigger
from shared.orchestration.messages import (
    OrderMessage,
    build_order_message,
    derived_id,
    order_session,
    read_message,
)

PARKED = ORDER_PARKED.name
EVENTS = ORDER_EVENTS.name
STORE = "store1"


@pytest.fixture(autouse=True)
def local_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ServiceBusConnection__fullyQualifiedNamespace", "ServiceBusConnection"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("LOCAL_BROKER_PATH", raising=False)
    monkeypatch.delenv("SERVICEBUS_TRANSPORT", raising=False)


@pytest.fixture
def broker_path(tmp_path: Path) -> Path:
    return tmp_path / "broker.sqlite3"


@pytest.fixture
def broker(broker_path: Path) -> Iterator[LocalBroker]:
    instance = LocalBroker(broker_path)
    provision(instance)
    yield instance
    instance.close()


def park(
    broker: LocalBroker,
    order_id: int,
    *,
    reason: str = "mapping",
    description: str = "SKU X-1 has no product",
    name: str = "webhook",
) -> OutboundMessage:
    """Parks an order message as the lifecycle runner does (OrderRunner._park)."""
    original = build_order_message(
        trigger=Trigger.DATAVERSE_ORDER,
        store_hash=STORE,
        order_id=order_id,
        message_id=f"{name}-{order_id}",
        correlation_id=f"corr-{name}-{order_id}",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    properties: dict[str, PropertyValue] = dict(original.application_properties)
    properties.update(
        park_reason=reason,
        park_description=description,
        parked_at="2026-11-28T12:00:00+00:00",
        origin_queue=EVENTS,
        origin_message_id=original.message_id,
        store_hash=STORE,
        order_id=order_id,
        trigger=Trigger.DATAVERSE_ORDER.value,
    )
    parked = OutboundMessage(
        body=original.body,
        message_id=derived_id("parked", original.message_id),
        application_properties=properties,
        correlation_id=original.correlation_id,
        subject=f"parked/{reason}",
    )
    broker.send(PARKED, [parked])
    return parked


def park_unreadable(broker: LocalBroker) -> None:
    """What the runner parks for a body it cannot read: no store, order or trigger."""
    broker.send(
        PARKED,
        [
            OutboundMessage(
                body=b"not json",
                message_id=derived_id("parked", "garbage"),
                application_properties={
                    "park_reason": "unreadable",
                    "park_description": "message garbage: body is not JSON",
                    "parked_at": "2026-11-28T12:00:00+00:00",
                    "origin_queue": EVENTS,
                    "origin_message_id": "garbage",
                },
                subject="parked/unreadable",
            )
        ],
    )


def run(broker_path: Path, *argv: str) -> int:
    return main([*argv[:2], "--broker", str(broker_path), *argv[2:]], stdin=io.StringIO())


def parked_orders(broker: LocalBroker) -> list[object]:
    return [m.application_properties.get("order_id") for m in broker.peek(PARKED)]


def replays(broker: LocalBroker) -> list[tuple[InboundMessage, OrderMessage]]:
    found = []
    for message in broker.peek(EVENTS):
        read = read_message(
            message.body,
            message_id=message.message_id,
            application_properties=message.application_properties,
            correlation_id=message.correlation_id,
        )
        assert isinstance(read, OrderMessage)
        found.append((message, read))
    return found


def test_parked_lists_each_message_with_its_order_and_reason(
    broker: LocalBroker, broker_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    park(broker, 42, name="a")
    park(broker, 42, name="b", reason="hold", description="validation hold: no address")
    park(broker, 7)

    assert run(broker_path, "orders", "parked") == EXIT_OK

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "SEQUENCE",
        "ORDER",
        "TRIGGER",
        "REASON",
        "PARKED-AT",
        "DESCRIPTION",
    ]
    assert [line.split()[1:4] for line in lines[1:]] == [
        ["store1:42", "dataverse_order", "mapping"],
        ["store1:42", "dataverse_order", "hold"],
        ["store1:7", "dataverse_order", "mapping"],
    ]
    assert "2026-11-28T12:00:00+00:00" in lines[1]
    assert lines[1].endswith("SKU X-1 has no product")
    assert len(lines) == 4


def test_parked_json_has_the_properties_and_body(
    broker: LocalBroker, broker_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sent = park(broker, 42)

    assert run(broker_path, "orders", "parked", "--json") == EXIT_OK

    [entry] = json.loads(capsys.readouterr().out)
    assert entry["order"] == "store1:42"
    assert (entry["store_hash"], entry["order_id"], entry["replayable"]) == (STORE, 42, True)
    assert entry["park_reason"] == "mapping"
    assert entry["park_description"] == "SKU X-1 has no product"
    assert entry["parked_at"] == "2026-11-28T12:00:00+00:00"
    assert entry["trigger"] == "dataverse_order"
    assert entry["origin_message_id"] == "webhook-42"
    assert entry["correlation_id"] == "corr-webhook-42"
    assert entry["message_id"] == sent.message_id
    assert entry["body"] == sent.body.decode()


def test_parked_on_an_empty_queue_says_so(
    broker: LocalBroker, broker_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(broker_path, "orders", "parked") == EXIT_OK
    assert "no parked orders" in capsys.readouterr().out
    assert run(broker_path, "orders", "parked", "--json") == EXIT_OK
    assert json.loads(capsys.readouterr().out) == []


def test_parked_with_max_shows_the_first_and_says_there_may_be_more(
    broker: LocalBroker, broker_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for order_id in (1, 2, 3):
        park(broker, order_id)

    assert run(broker_path, "orders", "parked", "--max", "2") == EXIT_OK

    out = capsys.readouterr().out
    assert "store1:1" in out
    assert "store1:2" in out
    assert "store1:3" not in out
    assert "--max for more" in out


def test_replay_of_one_order_sends_one_replay_and_completes_all_its_parked_messages(
    broker: LocalBroker, broker_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    park(broker, 42, name="a")
    park(broker, 42, name="b")
    park(broker, 7)

    assert run(broker_path, "orders", "replay", "--order", "store1:42") == EXIT_OK

    [(message, order)] = replays(broker)
    assert message.session_id == order_session(STORE, 42) == "store1:order:42"
    assert (order.trigger, order.store_hash, order.order_id) == (Trigger.REPLAY, STORE, 42)
    assert message.application_properties["trigger"] == "replay"
    assert order.correlation_id == message.correlation_id == "corr-a-42"
    assert order.origin_message_id == "a-42"
    assert order.attempt == 0
    assert len(message.message_id) == 32
    assert message.message_id not in ("a-42", "b-42")
    assert str(message.application_properties["traceparent"]).startswith("00-0af7")
    assert parked_orders(broker) == [7]
    out = capsys.readouterr().out
    assert "replayed 1 order(s) from 2 parked message(s) to order-events" in out
    assert message.message_id in out


def test_replay_dry_run_changes_nothing(
    broker: LocalBroker, broker_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    park(broker, 42, name="a")
    park(broker, 42, name="b")
    park(broker, 7)

    assert run(broker_path, "orders", "replay", "--all", "--dry-run") == EXIT_OK

    out = capsys.readouterr().out
    assert "dry run: would replay 2 order(s) from 3 parked message(s)" in out
    assert "store1:42" in out
    assert "store1:7" in out
    assert broker.peek(EVENTS) == []
    assert parked_orders(broker) == [42, 42, 7]
    assert all(m.delivery_count == 0 for m in broker.peek(PARKED))


def test_replay_all_sends_one_replay_per_order_and_empties_the_queue(
    broker: LocalBroker, broker_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    park(broker, 42, name="a")
    park(broker, 42, name="b")
    park(broker, 7)

    assert run(broker_path, "orders", "replay", "--all") == EXIT_OK

    found = sorted((m.session_id or "", o.trigger) for m, o in replays(broker))
    assert found == [("store1:order:42", Trigger.REPLAY), ("store1:order:7", Trigger.REPLAY)]
    assert broker.peek(PARKED) == []
    assert "replayed 2 order(s) from 3 parked message(s)" in capsys.readouterr().out


def test_replay_of_several_orders_in_one_command(
    broker: LocalBroker, broker_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    park(broker, 42)
    park(broker, 7)
    park(broker, 9)

    assert (
        run(broker_path, "orders", "replay", "--order", "store1:42", "--order", "store1:9")
        == EXIT_OK
    )

    assert sorted(o.order_id for _, o in replays(broker)) == [9, 42]
    assert parked_orders(broker) == [7]


def test_unreadable_parked_message_is_listed_but_not_replayed(
    broker: LocalBroker, broker_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    park_unreadable(broker)
    park(broker, 42)

    assert run(broker_path, "orders", "parked") == EXIT_OK
    out = capsys.readouterr().out
    [unreadable_line] = [line for line in out.splitlines() if "unreadable" in line]
    assert unreadable_line.split()[1] == "-"
    assert "1 parked message(s) name no order (-): they cannot be replayed" in out

    assert run(broker_path, "orders", "replay", "--all") == EXIT_FAILURE

    captured = capsys.readouterr()
    assert "replayed 1 order(s) from 1 parked message(s)" in captured.out
    assert "names no order" in captured.err
    assert [o.order_id for _, o in replays(broker)] == [42]
    [left] = broker.peek(PARKED)
    assert left.body == b"not json"


def test_replay_of_an_order_that_is_not_parked_fails(
    broker: LocalBroker, broker_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    park(broker, 42)

    assert run(broker_path, "orders", "replay", "--order", "store1:99") == EXIT_FAILURE

    assert "no parked message for order store1:99" in capsys.readouterr().err
    assert broker.peek(EVENTS) == []
    assert parked_orders(broker) == [42]


def test_replay_on_an_empty_queue_fails(
    broker: LocalBroker, broker_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(broker_path, "orders", "replay", "--all") == EXIT_FAILURE
    assert "no parked orders to replay" in capsys.readouterr().out


def test_replay_reports_a_parked_message_another_receiver_holds(
    broker: LocalBroker, broker_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    park(broker, 42)
    park(broker, 7)
    [locked] = broker.receive(PARKED)  # store1:42, e.g. an operator's other replay

    assert run(broker_path, "orders", "replay", "--all") == EXIT_FAILURE

    err = capsys.readouterr().err
    assert f"parked message {locked.sequence_number} of order store1:42" in err
    assert [o.order_id for _, o in replays(broker)] == [7]
    assert parked_orders(broker) == [42]


@pytest.mark.parametrize(
    "argv",
    [
        ["orders", "replay"],
        ["orders", "replay", "--order", "store1"],
        ["orders", "replay", "--order", "store1:0"],
        ["orders", "replay", "--order", ":42"],
        ["orders", "replay", "--all", "--order", "store1:42"],
        ["orders", "parked", "--max", "0"],
    ],
)
def test_bad_arguments_are_usage_errors(broker_path: Path, argv: list[str]) -> None:
    assert main(argv, stdin=io.StringIO()) == EXIT_USAGE


def test_missing_broker_file_is_a_one_line_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.sqlite3"

    assert run(missing, "orders", "parked") == EXIT_USAGE

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"no local broker at {missing}" in err


def test_local_transport_setting_selects_the_local_broker(
    broker: LocalBroker,
    broker_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    park(broker, 42)
    monkeypatch.setenv("ServiceBusConnection__fullyQualifiedNamespace", "x.servicebus.windows.net")
    monkeypatch.setenv("SERVICEBUS_TRANSPORT", "local")
    monkeypatch.setenv("LOCAL_BROKER_PATH", str(broker_path))

    assert main(["orders", "parked"], stdin=io.StringIO()) == EXIT_OK

    assert "store1:42" in capsys.readouterr().out
