"""Contract tests of the local SQLite broker against the Service Bus queue semantics we rely on."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from local.broker import (
    MAX_DELIVERY_COUNT_EXCEEDED,
    TTL_EXPIRED,
    BrokerClosedError,
    LocalBroker,
    MessageLockLostError,
    MessageNotFoundError,
    QueueNotFound,
    QueueSettings,
    SessionIdRequired,
    SessionLockedError,
    SessionLockLostError,
)
from shared.messaging.message import InboundMessage, OutboundMessage

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK = timedelta(seconds=60)
SESSIONS = QueueSettings(requires_session=True)


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "broker.db"


@pytest.fixture
def broker(db: Path, clock: FakeClock) -> Iterator[LocalBroker]:
    instance = LocalBroker(db, clock=clock)
    instance.ensure_queue("q")
    instance.ensure_queue("s", SESSIONS)
    yield instance
    instance.close()


def msg(name: str, **fields: object) -> OutboundMessage:
    return OutboundMessage(body=name.encode(), message_id=name, **fields)  # type: ignore[arg-type]


def token(message: InboundMessage) -> str:
    assert message.lock_token is not None
    return message.lock_token


def bodies(messages: list[InboundMessage]) -> list[str]:
    return [m.body.decode() for m in messages]


def test_fifo_across_batches_with_increasing_sequence_numbers(broker: LocalBroker) -> None:
    first = broker.send("q", [msg("a"), msg("b"), msg("c")])
    second = broker.send("q", [msg("d")])

    received = broker.receive("q", max_messages=10)

    assert bodies(received) == ["a", "b", "c", "d"]
    seqs = [m.sequence_number for m in received]
    assert seqs == [*first, *second]
    assert seqs == sorted(set(seqs))
    assert all(m.delivery_count == 1 for m in received)
    for m in received:
        broker.complete("q", token(m))
    assert broker.receive("q") == []
    assert broker.queue_info("q").active_count == 0


def test_received_message_keeps_all_fields(broker: LocalBroker, clock: FakeClock) -> None:
    outbound = OutboundMessage(
        body=b"\x00\xffraw",
        message_id="id-1",
        session_id="ignored-but-kept",
        application_properties={"s": "x", "i": 3, "f": 1.5, "b": True, "n": None},
        content_type="application/octet-stream",
        correlation_id="corr",
        subject="order.created",
        time_to_live=timedelta(hours=1),
    )
    broker.send("q", [outbound])

    [received] = broker.receive("q")

    assert received.body == b"\x00\xffraw"
    assert received.session_id == "ignored-but-kept"
    assert dict(received.application_properties) == {
        "s": "x",
        "i": 3,
        "f": 1.5,
        "b": True,
        "n": None,
    }
    assert (received.content_type, received.correlation_id, received.subject) == (
        "application/octet-stream",
        "corr",
        "order.created",
    )
    assert received.enqueued_time == clock.now
    assert received.expires_at == clock.now + timedelta(hours=1)
    assert received.locked_until == clock.now + LOCK


def test_unknown_queue_raises(broker: LocalBroker) -> None:
    with pytest.raises(QueueNotFound):
        broker.send("nope", [msg("a")])
    with pytest.raises(QueueNotFound):
        broker.receive("nope")
    with pytest.raises(QueueNotFound):
        broker.queue_info("nope")


def test_duplicate_inside_window_is_dropped_and_accepted_after_it(
    broker: LocalBroker, clock: FakeClock
) -> None:
    [seq] = broker.send("q", [msg("a")])
    [received] = broker.receive("q")
    broker.complete("q", token(received))
    clock.advance(timedelta(minutes=9))

    assert broker.send("q", [msg("a")]) == [None]
    assert broker.peek("q") == []

    clock.advance(timedelta(minutes=1))
    [again] = broker.send("q", [msg("a")])
    assert again is not None
    assert seq is not None
    assert again > seq
    assert bodies(broker.peek("q")) == ["a"]


def test_duplicate_within_one_batch_is_dropped(broker: LocalBroker) -> None:
    result = broker.send("q", [msg("a"), msg("b"), msg("a")])

    assert result[2] is None
    assert None not in result[:2]
    assert bodies(broker.receive("q", max_messages=10)) == ["a", "b"]


def test_duplicate_detection_can_be_off(broker: LocalBroker) -> None:
    broker.ensure_queue("nodup", QueueSettings(duplicate_detection_window=None))

    result = broker.send("nodup", [msg("a"), msg("a")])

    assert None not in result
    assert len(broker.receive("nodup", max_messages=10)) == 2


def test_session_queue_rejects_a_batch_with_a_message_without_session(
    broker: LocalBroker,
) -> None:
    with pytest.raises(SessionIdRequired):
        broker.send("s", [msg("a", session_id="x"), msg("b")])

    assert broker.peek("s") == []
    # Nothing of the failed batch was recorded for duplicate detection either.
    assert broker.send("s", [msg("a", session_id="x")]) != [None]


def test_requires_session_cannot_change_but_other_settings_can(broker: LocalBroker) -> None:
    with pytest.raises(ValueError, match="requires_session"):
        broker.ensure_queue("q", SESSIONS)

    broker.ensure_queue("q", QueueSettings(lock_duration=timedelta(seconds=5)))

    assert broker.queue_info("q").settings.lock_duration == timedelta(seconds=5)
    assert [info.name for info in broker.queues()] == ["q", "s"]


def test_sessions_are_fifo_exclusive_and_independent(broker: LocalBroker) -> None:
    broker.send("s", [msg(name, session_id=name[0]) for name in ("a1", "b1", "a2", "b2", "a3")])

    lock_a = broker.accept_next_session("s")
    lock_b = broker.accept_next_session("s")
    assert lock_a is not None
    assert lock_b is not None
    assert (lock_a.session_id, lock_b.session_id) == ("a", "b")
    assert broker.accept_next_session("s") is None
    with pytest.raises(SessionLockedError):
        broker.accept_session("s", "a")

    [a1] = broker.receive("s", session=lock_a)
    # The next message of a session is handed out while an earlier one is still unsettled.
    [a2] = broker.receive("s", session=lock_a)
    b_messages = broker.receive("s", session=lock_b, max_messages=10)
    assert bodies([a1, a2]) == ["a1", "a2"]
    assert bodies(b_messages) == ["b1", "b2"]
    for m in b_messages:
        broker.complete("s", token(m))

    broker.complete("s", token(a1))
    broker.abandon("s", token(a2))
    rest = broker.receive("s", session=lock_a, max_messages=10)
    assert bodies(rest) == ["a2", "a3"]
    assert [m.delivery_count for m in rest] == [2, 1]


def test_session_receive_without_lock_is_refused(broker: LocalBroker) -> None:
    broker.send("s", [msg("a", session_id="x")])

    with pytest.raises(ValueError, match="session"):
        broker.receive("s")
    lock = broker.accept_session("s", "x")
    with pytest.raises(ValueError, match="session"):
        broker.receive("q", session=lock)


def test_session_state_survives_release_and_old_lock_is_lost(broker: LocalBroker) -> None:
    broker.send("s", [msg("a1", session_id="a"), msg("a2", session_id="a")])
    lock = broker.accept_session("s", "a")
    assert broker.get_session_state(lock) is None
    broker.set_session_state(lock, b"step-2")
    [a1] = broker.receive("s", session=lock)

    broker.release_session(lock)

    with pytest.raises(SessionLockLostError):
        broker.receive("s", session=lock)
    with pytest.raises(SessionLockLostError):
        broker.get_session_state(lock)
    with pytest.raises(SessionLockLostError):
        broker.complete("s", token(a1))
    other = broker.accept_next_session("s")
    assert other is not None
    assert other.session_id == "a"
    assert broker.get_session_state(other) == b"step-2"
    redelivered = broker.receive("s", session=other, max_messages=10)
    assert bodies(redelivered) == ["a1", "a2"]
    assert redelivered[0].delivery_count == 2


def test_session_lock_expires_unless_renewed(broker: LocalBroker, clock: FakeClock) -> None:
    broker.send("s", [msg("a1", session_id="a"), msg("b1", session_id="b")])
    lock_a = broker.accept_session("s", "a")
    lock_b = broker.accept_session("s", "b")
    [a1] = broker.receive("s", session=lock_a)
    [b1] = broker.receive("s", session=lock_b)

    clock.advance(timedelta(seconds=40))
    renewed = broker.renew_session_lock(lock_b)
    assert renewed == clock.now + LOCK
    clock.advance(timedelta(seconds=40))

    broker.complete("s", token(b1))
    with pytest.raises(SessionLockLostError):
        broker.complete("s", token(a1))
    with pytest.raises(SessionLockLostError):
        broker.receive("s", session=lock_a)
    with pytest.raises(SessionLockLostError):
        broker.renew_session_lock(lock_a)
    taken_over = broker.accept_next_session("s")
    assert taken_over is not None
    assert taken_over.session_id == "a"
    [again] = broker.receive("s", session=taken_over)
    assert again.sequence_number == a1.sequence_number
    assert again.delivery_count == 2


def test_message_lock_expiry_redelivers_with_higher_delivery_count(
    broker: LocalBroker, clock: FakeClock
) -> None:
    broker.send("q", [msg("a"), msg("b")])
    [first] = broker.receive("q")
    assert broker.queue_info("q").locked_count == 1

    clock.advance(LOCK)

    with pytest.raises(MessageLockLostError):
        broker.complete("q", token(first))
    redelivered = broker.receive("q", max_messages=10)
    assert bodies(redelivered) == ["a", "b"]
    assert redelivered[0].delivery_count == 2
    assert redelivered[0].lock_token != first.lock_token
    broker.complete("q", token(redelivered[0]))


def test_abandon_makes_the_message_visible_at_once(broker: LocalBroker) -> None:
    broker.send("q", [msg("a")])
    [first] = broker.receive("q")

    broker.abandon("q", token(first))

    [second] = broker.receive("q")
    assert second.sequence_number == first.sequence_number
    assert second.delivery_count == 2
    with pytest.raises(MessageLockLostError):
        broker.complete("q", token(first))


def test_max_delivery_count_moves_the_message_to_the_dead_letters(broker: LocalBroker) -> None:
    broker.ensure_queue("poison", QueueSettings(max_delivery_count=3))
    broker.send("poison", [msg("a")])
    for attempt in range(1, 4):
        [received] = broker.receive("poison")
        assert received.delivery_count == attempt
        broker.abandon("poison", token(received))

    assert broker.receive("poison") == []

    [dead] = broker.peek_dead_letters("poison")
    assert dead.message_id == "a"
    assert dead.dead_letter_reason == MAX_DELIVERY_COUNT_EXCEEDED
    assert dead.dead_letter_source == "poison"
    assert dead.delivery_count == 3
    info = broker.queue_info("poison")
    assert (info.active_count, info.dead_letter_count) == (0, 1)


def test_explicit_dead_letter_keeps_reason_and_the_message(
    broker: LocalBroker, clock: FakeClock
) -> None:
    enqueued = clock.now
    broker.send("q", [msg("a", application_properties={"order": 7})])
    clock.advance(timedelta(seconds=5))
    [received] = broker.receive("q")

    broker.dead_letter("q", token(received), reason="BadPayload", description="no order id")

    assert broker.receive("q") == []
    [dead] = broker.peek_dead_letters("q")
    assert (dead.dead_letter_reason, dead.dead_letter_error_description) == (
        "BadPayload",
        "no order id",
    )
    assert dead.body == b"a"
    assert dict(dead.application_properties) == {"order": 7}
    assert dead.enqueued_time == enqueued
    assert dead.delivery_count == 1
    assert dead.sequence_number == received.sequence_number
    with pytest.raises(MessageLockLostError):
        broker.complete("q", token(received))


def test_scheduled_message_is_invisible_until_due(broker: LocalBroker, clock: FakeClock) -> None:
    due = clock.now + timedelta(minutes=5)
    broker.send("q", [msg("later", scheduled_enqueue_time=due), msg("now")])

    assert bodies(broker.receive("q", max_messages=10)) == ["now"]
    assert broker.queue_info("q").scheduled_count == 1
    assert "later" in bodies(broker.peek("q"))
    assert broker.next_visible_at("q") == clock.now + LOCK
    assert broker.wait_for_messages("q", 0.01) is False

    clock.advance(timedelta(minutes=5))

    assert broker.wait_for_messages("q", 0.01) is True
    [later] = broker.receive("q")
    assert later.message_id == "later"
    assert later.scheduled_enqueue_time == due
    assert later.enqueued_time == due


def test_next_visible_at(broker: LocalBroker, clock: FakeClock) -> None:
    assert broker.next_visible_at("q") is None
    due = clock.now + timedelta(seconds=30)
    broker.send("q", [msg("later", scheduled_enqueue_time=due)])
    assert broker.next_visible_at("q") == due
    broker.send("q", [msg("now")])
    assert broker.next_visible_at("q") == clock.now


def test_expired_message_is_dead_lettered_not_delivered(
    broker: LocalBroker, clock: FakeClock
) -> None:
    broker.ensure_queue("short", QueueSettings(default_time_to_live=timedelta(minutes=1)))
    broker.send("short", [msg("own-ttl", time_to_live=timedelta(seconds=30))])
    broker.send("short", [msg("queue-ttl", time_to_live=timedelta(hours=1))])
    clock.advance(timedelta(seconds=30))
    [first] = broker.receive("short")
    assert first.message_id == "queue-ttl"
    broker.abandon("short", token(first))
    clock.advance(timedelta(seconds=30))

    assert broker.receive("short") == []

    dead = broker.peek_dead_letters("short")
    assert [m.message_id for m in dead] == ["own-ttl", "queue-ttl"]
    assert {m.dead_letter_reason for m in dead} == {TTL_EXPIRED}


def test_expired_message_is_discarded_without_expiry_dead_lettering(
    broker: LocalBroker, clock: FakeClock
) -> None:
    broker.ensure_queue("drop", QueueSettings(dead_lettering_on_expiration=False))
    broker.send("drop", [msg("a", time_to_live=timedelta(seconds=1)), msg("b")])
    clock.advance(timedelta(seconds=1))

    assert bodies(broker.receive("drop", max_messages=10)) == ["b"]
    assert broker.peek_dead_letters("drop") == []


def test_renewed_message_lock_outlives_the_first_lock(
    broker: LocalBroker, clock: FakeClock
) -> None:
    broker.send("q", [msg("a")])
    [received] = broker.receive("q")
    clock.advance(timedelta(seconds=50))

    renewed = broker.renew_message_lock("q", token(received))

    assert renewed == clock.now + LOCK
    clock.advance(timedelta(seconds=50))
    assert broker.receive("q") == []
    broker.complete("q", token(received))
    assert broker.peek("q") == []


def test_replay_dead_letters_with_new_ids_into_the_same_session(broker: LocalBroker) -> None:
    broker.send("s", [msg("a1", session_id="a", application_properties={"k": "v"})])
    lock = broker.accept_session("s", "a")
    [received] = broker.receive("s", session=lock)
    broker.dead_letter("s", token(received), reason="Failed")
    broker.release_session(lock)
    [dead] = broker.peek_dead_letters("s")

    replayed = broker.replay_dead_letters("s", new_message_id=lambda m: f"{m.message_id}-replay")

    assert replayed == 1
    assert broker.peek_dead_letters("s") == []
    again_lock = broker.accept_next_session("s")
    assert again_lock is not None
    assert again_lock.session_id == "a"
    [again] = broker.receive("s", session=again_lock)
    assert again.message_id == "a1-replay"
    assert again.body == b"a1"
    assert dict(again.application_properties) == {"k": "v"}
    assert again.delivery_count == 1
    assert again.sequence_number > dead.sequence_number
    assert again.dead_letter_reason is None


def test_replay_of_selected_dead_letters_is_all_or_nothing(broker: LocalBroker) -> None:
    broker.send("q", [msg("a"), msg("b"), msg("c")])
    for m in broker.receive("q", max_messages=3):
        broker.dead_letter("q", token(m), reason="Failed")
    seqs = [m.sequence_number for m in broker.peek_dead_letters("q")]

    with pytest.raises(MessageNotFoundError):
        broker.replay_dead_letters("q", [seqs[0], 999_999], new_message_id=lambda m: "x")
    assert len(broker.peek_dead_letters("q")) == 3

    count = broker.replay_dead_letters(
        "q", [seqs[2], seqs[0]], new_message_id=lambda m: f"{m.message_id}-2"
    )

    assert count == 2
    assert [m.message_id for m in broker.peek_dead_letters("q")] == ["b"]
    assert [m.message_id for m in broker.receive("q", max_messages=10)] == ["a-2", "c-2"]


def test_remove_dead_letter(broker: LocalBroker) -> None:
    broker.send("q", [msg("a")])
    [received] = broker.receive("q")
    broker.dead_letter("q", token(received), reason="Failed")

    broker.remove_dead_letter("q", received.sequence_number)

    assert broker.peek_dead_letters("q") == []
    with pytest.raises(MessageNotFoundError):
        broker.remove_dead_letter("q", received.sequence_number)


def test_purge_active_and_dead_letters_separately(broker: LocalBroker, clock: FakeClock) -> None:
    later = clock.now + timedelta(hours=1)
    broker.send("q", [msg("a"), msg("b"), msg("c", scheduled_enqueue_time=later)])
    [received] = broker.receive("q")
    broker.dead_letter("q", token(received), reason="Failed")

    assert broker.purge("q") == 2
    assert broker.peek("q") == []
    assert len(broker.peek_dead_letters("q")) == 1
    assert broker.purge("q", dead_letters=True) == 1
    assert broker.peek_dead_letters("q") == []


def test_peek_pages_without_locking(broker: LocalBroker) -> None:
    seqs = broker.send("q", [msg(str(i)) for i in range(5)])

    page = broker.peek("q", max_messages=2, from_sequence=seqs[1] or 0)

    assert bodies(page) == ["1", "2"]
    assert all(m.lock_token is None for m in page)
    assert len(broker.receive("q", max_messages=10)) == 5


def test_complete_with_a_stale_or_unknown_token_raises(broker: LocalBroker) -> None:
    broker.send("q", [msg("a")])
    [received] = broker.receive("q")
    broker.complete("q", token(received))

    with pytest.raises(MessageLockLostError):
        broker.complete("q", token(received))
    with pytest.raises(MessageLockLostError):
        broker.abandon("q", "not-a-token")
    with pytest.raises(MessageLockLostError):
        broker.renew_message_lock("q", token(received))


def test_wait_for_messages_wakes_on_a_send_from_another_thread(broker: LocalBroker) -> None:
    assert broker.wait_for_messages("q", 0.05) is False
    sender = threading.Timer(0.05, lambda: broker.send("q", [msg("a")]))
    sender.start()
    try:
        assert broker.wait_for_messages("q", 5.0) is True
    finally:
        sender.join()
    assert bodies(broker.receive("q")) == ["a"]


def test_wait_for_messages_on_sessions_ignores_locked_sessions(broker: LocalBroker) -> None:
    broker.send("s", [msg("a1", session_id="a")])
    lock = broker.accept_session("s", "a")

    assert broker.wait_for_messages("s", 0.01) is False
    assert broker.wait_for_messages("s", 0.01, session=lock) is True


def test_closed_broker_refuses_work(db: Path) -> None:
    instance = LocalBroker(db)
    instance.ensure_queue("q")
    instance.close()

    with pytest.raises(BrokerClosedError):
        instance.send("q", [msg("a")])


def test_two_instances_in_threads_deliver_each_message_once(db: Path) -> None:
    total = 200
    setup = LocalBroker(db)
    setup.ensure_queue("q", QueueSettings(duplicate_detection_window=None))
    delivered: list[str] = []
    delivered_lock = threading.Lock()
    errors: list[BaseException] = []

    def produce() -> None:
        producer = LocalBroker(db)
        try:
            for start in range(0, total, 10):
                producer.send("q", [msg(f"m-{i}") for i in range(start, start + 10)])
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            producer.close()

    def consume() -> None:
        consumer = LocalBroker(db)
        deadline = time.monotonic() + 20
        try:
            while time.monotonic() < deadline:
                with delivered_lock:
                    if len(delivered) >= total:
                        return
                if not consumer.wait_for_messages("q", 0.1):
                    continue
                for m in consumer.receive("q", max_messages=3):
                    with delivered_lock:
                        delivered.append(m.message_id)
                    consumer.complete("q", token(m))
        except BaseException as exc:
            errors.append(exc)
        finally:
            consumer.close()

    threads = [threading.Thread(target=f) for f in (produce, consume, consume)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sorted(delivered) == sorted(f"m-{i}" for i in range(total))
    assert setup.peek("q") == []
    setup.close()


class _LineReader:
    """Collects a child's stdout lines in a thread, so the test never blocks on a read."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._process = process
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self.lines.append(line.strip())

    def count(self, prefix: str) -> int:
        return sum(1 for line in list(self.lines) if line.startswith(prefix))

    def finish(self) -> list[str]:
        self._thread.join(timeout=10)
        return list(self.lines)


def _spawn(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], _LineReader]:
    stderr = (tmp_path / f"{args[0]}.stderr").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.contract._broker_child", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    stderr.close()
    return process, _LineReader(process)


def test_sigkilled_sender_and_receiver_lose_no_acknowledged_message(
    tmp_path: Path, db: Path
) -> None:
    setup = LocalBroker(db)
    setup.ensure_queue("kill", QueueSettings(lock_duration=timedelta(seconds=30)))
    setup.close()
    sender, sent = _spawn(tmp_path, "send", str(db), "kill", "100000")
    receiver, got = _spawn(tmp_path, "receive", str(db), "kill", "30")

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (sent.count("ack") < 300 or got.count("completed") < 50):
        if sender.poll() is not None or receiver.poll() is not None:
            break
        time.sleep(0.01)
    still_running = sender.poll() is None and receiver.poll() is None
    receiver.send_signal(signal.SIGKILL)
    sender.send_signal(signal.SIGKILL)
    sender.wait(timeout=10)
    receiver.wait(timeout=10)
    sent_lines, got_lines = sent.finish(), got.finish()

    stderr = (tmp_path / "send.stderr").read_text() + (tmp_path / "receive.stderr").read_text()
    assert still_running, stderr
    assert "finished" not in sent_lines, "the sender ended before it was killed"
    acked = {
        f"m-{fields[1]}": int(fields[2])
        for fields in (line.split() for line in sent_lines)
        if fields[0] == "ack"
    }
    received = [line.split()[1] for line in got_lines if line.startswith("received ")]
    completed = [line.split()[1] for line in got_lines if line.startswith("completed ")]
    assert len(acked) >= 300
    assert len(completed) >= 50
    assert len(received) == len(set(received)), "a message was delivered twice"
    in_flight = set(received) - set(completed)
    assert len(in_flight) <= 4

    # Locks held by the killed receiver have expired an hour later.
    later = datetime.now(UTC) + timedelta(hours=1)
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    survivor = LocalBroker(db, clock=lambda: later)
    remaining: dict[str, InboundMessage] = {}
    for _ in range(1000):
        batch = survivor.receive("kill", max_messages=500)
        if not batch:
            break
        for m in batch:
            assert m.message_id not in remaining
            remaining[m.message_id] = m
            survivor.complete("kill", token(m))
    survivor.close()

    assert set(completed).isdisjoint(remaining), "a completed message came back"
    for message_id, seq in acked.items():
        if message_id in in_flight:
            continue
        assert (message_id in remaining) != (message_id in set(completed)), message_id
        if message_id in remaining:
            assert remaining[message_id].sequence_number == seq
    # Only the killed receiver's last batch (at most 4) was delivered before.
    redelivered = [m for m in remaining.values() if m.delivery_count > 1]
    assert len(redelivered) <= 4
    assert all(m.delivery_count == 2 for m in redelivered)


def test_schema_version_is_recorded(db: Path) -> None:
    LocalBroker(db).close()

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
