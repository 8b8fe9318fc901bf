"""The `queues` CLI commands, run in-process against a real local broker file."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli import EXIT_OK, EXIT_USAGE, main
from local.broker import LocalBroker
from local.broker.adapters import provision
from shared.messaging.message import OutboundMessage
from shared.messaging.queues import ORDER_EVENTS
from shared.messaging.replay import replay_message_id

QUEUE = ORDER_EVENTS.name


@pytest.fixture(autouse=True)
def local_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ServiceBusConnection__fullyQualifiedNamespace", "ServiceBusConnection"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("LOCAL_BROKER_PATH", raising=False)


@pytest.fixture
def broker_path(tmp_path: Path) -> Path:
    return tmp_path / "broker.sqlite3"


@pytest.fixture
def broker(broker_path: Path) -> Iterator[LocalBroker]:
    instance = LocalBroker(broker_path)
    provision(instance)
    yield instance
    instance.close()


def send(
    broker: LocalBroker,
    name: str,
    session: str = "store1:42",
    *,
    scheduled_enqueue_time: datetime | None = None,
) -> None:
    message = OutboundMessage(
        body=name.encode(),
        message_id=name,
        session_id=session,
        scheduled_enqueue_time=scheduled_enqueue_time,
    )
    broker.send(QUEUE, [message])


def dead_letter(broker: LocalBroker, name: str, session: str = "store1:42") -> int:
    """Sends a message, receives it and dead-letters it; returns its sequence number."""
    send(broker, name, session)
    lock = broker.accept_session(QUEUE, session)
    [received] = broker.receive(QUEUE, session=lock)
    assert received.lock_token is not None
    broker.dead_letter(QUEUE, received.lock_token, reason="SchemaInvalid", description="no id")
    broker.release_session(lock)
    return received.sequence_number


def run(broker_path: Path, *argv: str) -> int:
    return main([*argv[:2], "--broker", str(broker_path), *argv[2:]], stdin=io.StringIO())


def test_list_shows_each_queue_with_its_counts(
    broker: LocalBroker, broker_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    send(broker, "a1")
    send(broker, "a2")
    send(broker, "later", scheduled_enqueue_time=datetime.now(UTC) + timedelta(hours=1))
    dead_letter(broker, "poison", session="store1:7")

    assert run(broker_path, "queues", "list") == EXIT_OK

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["QUEUE", "ACTIVE", "SCHEDULED", "DEAD-LETTER"]
    assert lines[1].split() == [QUEUE, "2", "1", "1"]


def test_peek_dlq_shows_the_reason_and_description(
    broker: LocalBroker, broker_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sequence = dead_letter(broker, "poison")

    assert run(broker_path, "queues", "peek-dlq", QUEUE) == EXIT_OK
    table = capsys.readouterr().out
    assert "SchemaInvalid" in table
    assert "no id" in table

    assert run(broker_path, "queues", "peek-dlq", QUEUE, "--json") == EXIT_OK
    [entry] = json.loads(capsys.readouterr().out)
    assert entry["sequence_number"] == sequence
    assert entry["dead_letter_reason"] == "SchemaInvalid"
    assert entry["dead_letter_error_description"] == "no id"
    assert entry["delivery_count"] == 1
    assert entry["body"] == "poison"


def test_replay_dry_run_changes_nothing(
    broker: LocalBroker, broker_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sequence = dead_letter(broker, "poison")

    assert run(broker_path, "queues", "replay", QUEUE, "--all", "--dry-run") == EXIT_OK

    assert replay_message_id("poison", sequence) in capsys.readouterr().out
    info = broker.queue_info(QUEUE)
    assert (info.active_count, info.dead_letter_count) == (0, 1)


def test_replay_with_yes_moves_the_message_back_under_a_new_id(
    broker: LocalBroker, broker_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sequence = dead_letter(broker, "poison")

    assert (
        run(broker_path, "queues", "replay", QUEUE, "--sequence", str(sequence), "--yes") == EXIT_OK
    )

    assert "replayed 1 dead letter(s)" in capsys.readouterr().out
    assert broker.peek_dead_letters(QUEUE) == []
    [copy] = broker.peek(QUEUE)
    assert copy.message_id == replay_message_id("poison", sequence)
    assert copy.session_id == "store1:42"
    assert copy.body == b"poison"


def test_replay_without_yes_refuses_when_not_interactive(
    broker: LocalBroker, broker_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead_letter(broker, "poison")

    assert run(broker_path, "queues", "replay", QUEUE, "--all") == EXIT_USAGE

    assert "--yes" in capsys.readouterr().err
    assert broker.queue_info(QUEUE).dead_letter_count == 1
    assert broker.peek(QUEUE) == []


def test_purge_without_yes_refuses_when_not_interactive(
    broker: LocalBroker, broker_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    send(broker, "a1")
    dead_letter(broker, "poison", session="store1:7")

    assert run(broker_path, "queues", "purge", QUEUE) == EXIT_USAGE
    assert run(broker_path, "queues", "purge", QUEUE, "--dead-letters") == EXIT_USAGE

    assert "--yes" in capsys.readouterr().err
    info = broker.queue_info(QUEUE)
    assert (info.active_count, info.dead_letter_count) == (1, 1)


def test_purge_with_yes_deletes_only_what_was_asked(
    broker: LocalBroker, broker_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    send(broker, "a1")
    send(broker, "a2")
    dead_letter(broker, "poison", session="store1:7")

    assert run(broker_path, "queues", "purge", QUEUE, "--yes") == EXIT_OK

    assert "purged 2" in capsys.readouterr().out
    info = broker.queue_info(QUEUE)
    assert (info.active_count, info.dead_letter_count) == (0, 1)


def test_missing_broker_file_is_a_one_line_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.sqlite3"

    assert run(missing, "queues", "list") == EXIT_USAGE

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"no local broker at {missing}" in err
    assert not missing.exists()


def test_unknown_command_is_a_usage_error() -> None:
    assert main(["queues", "frobnicate"]) == EXIT_USAGE
