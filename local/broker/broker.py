"""A durable SQLite message broker with Azure Service Bus queue semantics, for local runs.

It is hand-written because no maintained library offers a durable, multi-process Service Bus
emulator for Python, and the official Service Bus emulator needs Docker, which this project cannot
use. The local Functions host pumps queue-triggered functions from it, the webhook ingress sends to
it and the operator CLI inspects it, each possibly in its own OS process on the same file.

What it keeps from Service Bus: peek-lock with lock tokens and lock expiry, delivery counts and
MaxDeliveryCountExceeded dead-lettering, sessions with exclusive locks, FIFO order and session
state, duplicate detection on MessageId, scheduled messages, TTL with TTLExpiredException
dead-lettering, and a dead-letter sub-queue. Sequence numbers are unique and increasing across the
whole file rather than per queue.

Durability: every state change is one `BEGIN IMMEDIATE` transaction in WAL mode with
`synchronous=FULL`, so a `send` that returned survives a SIGKILL of any process (and, with FULL, a
power cut). Time comes from an injected clock and only matters when read: expired locks and due
scheduled messages are made available again by the next receive, in the same transaction.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Final

from shared.messaging.message import InboundMessage, OutboundMessage, PropertyValue

from ._schema import (
    AVAILABLE,
    DDL,
    DEAD,
    LOCKED,
    SCHEDULED,
    SCHEMA_VERSION,
    from_us,
    span,
    span_us,
    to_us,
)
from .errors import (
    BrokerClosedError,
    BrokerError,
    MessageLockLostError,
    MessageNotFoundError,
    QueueNotFound,
    SessionIdRequired,
    SessionLockedError,
    SessionLockLostError,
)
from .models import QueueInfo, QueueSettings, SessionLock

MAX_DELIVERY_COUNT_EXCEEDED: Final = "MaxDeliveryCountExceeded"
TTL_EXPIRED: Final = "TTLExpiredException"

_SYNCHRONOUS_MODES: Final = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})
_BUSY_TIMEOUT_MS: Final = 10_000
_POLL_FIRST: Final = 0.02
_POLL_MAX: Final = 0.2
# Measured at 500 single-message commits/s: every 1 s, a commit always landed while the
# checkpoint ran, so the WAL never restarted (it grew ~33 KB a commit, 164 MB per 5,000 sends)
# and each pass copied a second of pages at once. Every 0.1 s a pass takes about 1 ms, the WAL
# restarts and stays under ~10 MB, and commits got faster (median 0.30 -> 0.21 ms).
_CHECKPOINT_INTERVAL: Final = 0.1


# json.dumps(separators=...) builds an encoder per call; this is the same encoding.
_COMPACT_JSON: Final = json.JSONEncoder(separators=(",", ":"))


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _new_token() -> str:
    return uuid.uuid4().hex


class _Signal:
    """Wakes waiters in this process when a local send may have made a message visible.

    Other processes are noticed by polling; this only removes the poll delay for local sends.
    """

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.generation = 0
        # Serialises this process's writers on the file. SQLite's own busy handler backs off in
        # sleeps of up to 100 ms, which turned in-process contention into long latency tails;
        # the busy handler now only arbitrates between processes.
        self.writer = threading.Lock()
        self.checkpointer: threading.Thread | None = None
        self.dirty = threading.Event()

    def notify(self) -> None:
        with self.condition:
            self.generation += 1
            self.condition.notify_all()


_signals: dict[str, _Signal] = {}
_signals_lock = threading.Lock()


def _checkpoint_loop(path: str, signal: _Signal) -> None:
    """Copies the WAL back into the database after writes, off the writers' path.

    PASSIVE never blocks writers or readers; it does what it can and the next round does the
    rest. One thread per file per process, for the life of the process.
    """
    conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        while True:
            signal.dirty.wait()
            time.sleep(_CHECKPOINT_INTERVAL)
            signal.dirty.clear()
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                continue
    finally:
        conn.close()


def _signal_for(path: str) -> _Signal:
    key = os.path.realpath(path)
    with _signals_lock:
        return _signals.setdefault(key, _Signal())


def _encode_properties(properties: Mapping[str, PropertyValue]) -> str:
    for key, value in properties.items():
        if not isinstance(key, str):
            raise TypeError(f"application property names must be str, got {key!r}")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise TypeError(f"application property {key!r} has unsupported type {type(value)}")
    return _COMPACT_JSON.encode(dict(properties))


def _checked(
    queue: str, settings: QueueSettings, messages: Sequence[OutboundMessage]
) -> list[tuple[OutboundMessage, str]]:
    """Each message with its encoded properties, or the reason the send is refused."""
    if settings.requires_session and any(m.session_id is None for m in messages):
        raise SessionIdRequired(f"queue {queue!r} requires a session id on every message")
    return [(m, _encode_properties(m.application_properties)) for m in messages]


def _stored_any(results: Sequence[list[int | None] | Exception]) -> bool:
    return any(isinstance(r, list) and any(s is not None for s in r) for r in results)


def _settings_from_row(row: sqlite3.Row) -> QueueSettings:
    return _settings_from_values(
        row["requires_session"],
        row["lock_duration_us"],
        row["max_delivery_count"],
        row["duplicate_window_us"],
        row["default_ttl_us"],
        row["dead_letter_on_expiration"],
    )


@functools.lru_cache(maxsize=256)
def _settings_from_values(
    requires_session: int,
    lock_duration_us: int,
    max_delivery_count: int,
    window: int | None,
    ttl: int | None,
    dead_letter_on_expiration: int,
) -> QueueSettings:
    """Settings are read in every send; the same column values always make the same settings."""
    return QueueSettings(
        requires_session=bool(requires_session),
        lock_duration=span(lock_duration_us),
        max_delivery_count=max_delivery_count,
        duplicate_detection_window=None if window is None else span(window),
        default_time_to_live=None if ttl is None else span(ttl),
        dead_lettering_on_expiration=bool(dead_letter_on_expiration),
    )


def _inbound(
    row: sqlite3.Row,
    *,
    delivery_count: int | None = None,
    lock_token: str | None = None,
    locked_until: int | None = None,
) -> InboundMessage:
    scheduled = row["scheduled_at"]
    ttl = row["ttl_us"]
    expires = row["expires_at"]
    dead = row["state"] == DEAD
    return InboundMessage(
        body=bytes(row["body"]),
        message_id=row["message_id"],
        sequence_number=row["seq"],
        delivery_count=row["delivery_count"] if delivery_count is None else delivery_count,
        enqueued_time=from_us(row["enqueued_at"]),
        session_id=row["session_id"],
        application_properties=json.loads(row["properties"]),
        content_type=row["content_type"],
        correlation_id=row["correlation_id"],
        subject=row["subject"],
        lock_token=lock_token,
        locked_until=None if locked_until is None else from_us(locked_until),
        expires_at=None if expires is None else from_us(expires),
        scheduled_enqueue_time=None if scheduled is None else from_us(scheduled),
        time_to_live=None if ttl is None else span(ttl),
        dead_letter_reason=row["dead_letter_reason"] if dead else None,
        dead_letter_error_description=row["dead_letter_description"] if dead else None,
        dead_letter_source=row["dead_letter_source"] if dead else None,
    )


class LocalBroker:
    """Service Bus queues in one SQLite file, shared by threads and processes.

    Thread-safe: each thread gets its own connection. Several instances, in this process or in
    others, may open the same file at once.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], datetime] = _utc_now,
        token_factory: Callable[[], str] = _new_token,
        synchronous: str = "FULL",
    ) -> None:
        mode = synchronous.upper()
        if mode not in _SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {sorted(_SYNCHRONOUS_MODES)}")
        self._path = os.fspath(path)
        self._clock = clock
        self._token_factory = token_factory
        self._synchronous = mode
        self._local = threading.local()
        self._connections: dict[int, tuple[threading.Thread, sqlite3.Connection]] = {}
        self._connections_lock = threading.Lock()
        self._channels: list[sqlite3.Connection] = []
        self._closed = False
        self._signal = _signal_for(self._path)
        self._create_schema()

    # -- connections and transactions -------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise BrokerClosedError("the broker is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        conn = self._open()
        current = threading.current_thread()
        with self._connections_lock:
            if self._closed:
                conn.close()
                raise BrokerClosedError("the broker is closed")
            # Connections of finished threads would otherwise pile up in long-lived processes.
            for ident, (thread, stale) in list(self._connections.items()):
                if not thread.is_alive():
                    stale.close()
                    del self._connections[ident]
            self._connections[current.ident or 0] = (current, conn)
        self._local.conn = conn
        return conn

    def _open(self) -> sqlite3.Connection:
        # check_same_thread=False so that close() can close every thread's connection, and so
        # that a SendChannel can commit from another thread than the one that staged.
        conn = sqlite3.connect(
            self._path,
            timeout=_BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise BrokerError(f"could not switch {self._path} to WAL mode (got {mode})")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            # Checkpoints run in a background thread (see _checkpoint_loop), not inside a
            # committing writer, where they held every other writer up for tens of ms.
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        except BaseException:
            conn.close()
            raise
        return conn

    def send_channel(self) -> SendChannel:
        """A connection of its own for group commits split across threads (see SendChannel)."""
        if self._closed:
            raise BrokerClosedError("the broker is closed")
        conn = self._open()
        with self._connections_lock:
            if self._closed:
                conn.close()
                raise BrokerClosedError("the broker is closed")
            self._channels.append(conn)
        return SendChannel(self, conn)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        with self._signal.writer:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        self._wrote()

    def _wrote(self) -> None:
        self._signal.dirty.set()
        if self._signal.checkpointer is None:
            self._start_checkpointer()

    def _start_checkpointer(self) -> None:
        with _signals_lock:
            if self._signal.checkpointer is not None:
                return
            thread = threading.Thread(
                target=_checkpoint_loop,
                args=(self._path, self._signal),
                name="broker-checkpoint",
                daemon=True,
            )
            self._signal.checkpointer = thread
        thread.start()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    def _create_schema(self) -> None:
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                for statement in DDL.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif version != SCHEMA_VERSION:
                raise BrokerError(
                    f"{self._path} has broker schema version {version}, "
                    f"this code reads version {SCHEMA_VERSION}"
                )

    def _now(self) -> int:
        return to_us(self._clock())

    def close(self) -> None:
        with self._connections_lock:
            self._closed = True
            for _thread, conn in self._connections.values():
                conn.close()
            self._connections.clear()
            for conn in self._channels:
                conn.close()
            self._channels.clear()

    def __enter__(self) -> LocalBroker:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- queues -----------------------------------------------------------------------------

    def ensure_queue(self, name: str, settings: QueueSettings = QueueSettings()) -> None:  # noqa: B008
        """Creates the queue, or updates its settings. `requires_session` cannot change."""
        if not name:
            raise ValueError("queue name must not be empty")
        window = settings.duplicate_detection_window
        ttl = settings.default_time_to_live
        values = (
            int(settings.requires_session),
            span_us(settings.lock_duration),
            settings.max_delivery_count,
            None if window is None else span_us(window),
            None if ttl is None else span_us(ttl),
            int(settings.dead_lettering_on_expiration),
            name,
        )
        with self._write() as conn:
            row = conn.execute(
                "SELECT requires_session FROM queues WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO queues (requires_session, lock_duration_us, max_delivery_count,"
                    " duplicate_window_us, default_ttl_us, dead_letter_on_expiration, name)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    values,
                )
            elif bool(row["requires_session"]) != settings.requires_session:
                raise ValueError(f"requires_session of queue {name!r} cannot change")
            else:
                conn.execute(
                    "UPDATE queues SET requires_session = ?, lock_duration_us = ?,"
                    " max_delivery_count = ?, duplicate_window_us = ?, default_ttl_us = ?,"
                    " dead_letter_on_expiration = ? WHERE name = ?",
                    values,
                )

    def _settings(self, conn: sqlite3.Connection, queue: str) -> QueueSettings:
        row = conn.execute("SELECT * FROM queues WHERE name = ?", (queue,)).fetchone()
        if row is None:
            raise QueueNotFound(queue)
        return _settings_from_row(row)

    def queues(self) -> list[QueueInfo]:
        with self._read() as conn:
            now = self._now()
            rows = conn.execute("SELECT * FROM queues ORDER BY name").fetchall()
            return [self._info(conn, row["name"], _settings_from_row(row), now) for row in rows]

    def queue_info(self, name: str) -> QueueInfo:
        with self._read() as conn:
            return self._info(conn, name, self._settings(conn, name), self._now())

    def _info(
        self, conn: sqlite3.Connection, name: str, settings: QueueSettings, now: int
    ) -> QueueInfo:
        counts = conn.execute(
            "SELECT"
            " COALESCE(SUM(state = :scheduled AND due_at > :now), 0),"
            " COALESCE(SUM(state = :locked AND due_at > :now), 0),"
            " COALESCE(SUM(state = :dead), 0),"
            " COUNT(*)"
            " FROM messages WHERE queue = :queue",
            {"scheduled": SCHEDULED, "locked": LOCKED, "dead": DEAD, "now": now, "queue": name},
        ).fetchone()
        scheduled, locked, dead, total = (int(value) for value in counts)
        return QueueInfo(
            name=name,
            settings=settings,
            active_count=total - scheduled - dead,
            scheduled_count=scheduled,
            dead_letter_count=dead,
            locked_count=locked,
        )

    # -- sending ----------------------------------------------------------------------------

    def send(self, queue: str, messages: Sequence[OutboundMessage]) -> list[int | None]:
        """Stores all messages or none, in one transaction.

        Returns each message's sequence number, or None where duplicate detection dropped it.
        """
        with self._write() as conn:
            [result] = self._stage(conn, [(queue, messages)], self._now())
        if isinstance(result, Exception):
            raise result
        if any(seq is not None for seq in result):
            self._signal.notify()
        return result

    def send_many(
        self, sends: Sequence[tuple[str, Sequence[OutboundMessage]]]
    ) -> list[list[int | None] | Exception]:
        """Several independent sends in one transaction and one sync (group commit).

        Each send is still all-or-nothing: one that is refused (unknown queue, a message without
        the session its queue requires, an unsupported property) writes nothing and gets its
        error in its place, while the others commit.
        """
        with self._write() as conn:
            results = self._stage(conn, sends, self._now())
        if _stored_any(results):
            self._signal.notify()
        return results

    def _stage(
        self,
        conn: sqlite3.Connection,
        sends: Sequence[tuple[str, Sequence[OutboundMessage]]],
        now: int,
    ) -> list[list[int | None] | Exception]:
        """Writes the sends in the open transaction; a refused send is checked before it writes.

        Queue settings are read, and expired message ids forgotten, once per queue: all sends
        share the transaction and its `now`, so once is the same as once per send.
        """
        queues: dict[str, QueueSettings | BrokerError] = {}
        results: list[list[int | None] | Exception] = []
        for queue, messages in sends:
            settings = queues.get(queue)
            if settings is None:
                try:
                    settings = self._settings(conn, queue)
                except BrokerError as exc:
                    settings = exc
                else:
                    window = settings.duplicate_detection_window
                    if window is not None:
                        conn.execute(
                            "DELETE FROM message_ids WHERE queue = ? AND sent_at <= ?",
                            (queue, now - span_us(window)),
                        )
                queues[queue] = settings
            if isinstance(settings, BrokerError):
                results.append(settings)
                continue
            try:
                rows = _checked(queue, settings, messages)
            except (BrokerError, TypeError) as exc:
                results.append(exc)
                continue
            results.append(self._store(conn, queue, settings, rows, now))
        return results

    def _store(
        self,
        conn: sqlite3.Connection,
        queue: str,
        settings: QueueSettings,
        messages: Sequence[tuple[OutboundMessage, str]],
        now: int,
    ) -> list[int | None]:
        dedupe = settings.duplicate_detection_window is not None
        sequence_numbers: list[int | None] = []
        for message, properties in messages:
            # Ids older than the window were deleted at the start of this transaction, so a
            # conflict is a duplicate inside the window (or earlier in this very batch).
            if dedupe and not self._remember_id(conn, queue, message.message_id, now):
                sequence_numbers.append(None)
                continue
            sequence_numbers.append(
                self._insert_message(conn, queue, settings, message, properties, now)
            )
        return sequence_numbers

    def _remember_id(self, conn: sqlite3.Connection, queue: str, message_id: str, now: int) -> bool:
        """Records the id; False if it is already recorded."""
        cursor = conn.execute(
            "INSERT INTO message_ids (queue, message_id, sent_at) VALUES (?, ?, ?)"
            " ON CONFLICT (queue, message_id) DO NOTHING",
            (queue, message_id, now),
        )
        return cursor.rowcount == 1

    def _insert(
        self,
        conn: sqlite3.Connection,
        queue: str,
        settings: QueueSettings,
        message: OutboundMessage,
        properties: str,
        now: int,
    ) -> int:
        """Inserts without duplicate detection, recording the id all the same (replays)."""
        if settings.duplicate_detection_window is not None:
            conn.execute(
                "INSERT OR REPLACE INTO message_ids (queue, message_id, sent_at) VALUES (?, ?, ?)",
                (queue, message.message_id, now),
            )
        return self._insert_message(conn, queue, settings, message, properties, now)

    def _insert_message(
        self,
        conn: sqlite3.Connection,
        queue: str,
        settings: QueueSettings,
        message: OutboundMessage,
        properties: str,
        now: int,
    ) -> int:
        scheduled = message.scheduled_enqueue_time
        scheduled_us = None if scheduled is None else to_us(scheduled)
        if scheduled_us is not None and scheduled_us > now:
            # As in Service Bus, a scheduled message is enqueued, and its TTL starts, when due.
            state, due_at, enqueued = SCHEDULED, scheduled_us, scheduled_us
        else:
            state, due_at, enqueued = AVAILABLE, 0, now
        ttls = [t for t in (message.time_to_live, settings.default_time_to_live) if t is not None]
        ttl_us = span_us(min(ttls)) if ttls else None
        cursor = conn.execute(
            "INSERT INTO messages (queue, state, due_at, message_id, session_id, body, properties,"
            " content_type, correlation_id, subject, enqueued_at, scheduled_at, ttl_us,"
            " expires_at, delivery_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            (
                queue,
                state,
                due_at,
                message.message_id,
                message.session_id,
                message.body,
                properties,
                message.content_type,
                message.correlation_id,
                message.subject,
                enqueued,
                scheduled_us,
                ttl_us,
                None if ttl_us is None else enqueued + ttl_us,
            ),
        )
        seq = cursor.lastrowid
        assert seq is not None
        return seq

    # -- receiving --------------------------------------------------------------------------

    def receive(
        self, queue: str, *, max_messages: int = 1, session: SessionLock | None = None
    ) -> list[InboundMessage]:
        """Peek-locks up to `max_messages` visible messages, lowest sequence number first.

        A session queue needs the `session` lock and returns only that session's messages.
        """
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        with self._write() as conn:
            now = self._now()
            settings = self._settings(conn, queue)
            session_token: str | None = None
            if settings.requires_session:
                if session is None:
                    raise ValueError(f"queue {queue!r} requires sessions: pass a SessionLock")
                if session.queue != queue:
                    raise ValueError("the session lock belongs to another queue")
                locked_until = self._check_session(conn, session, now)
                session_token = session.lock_token
            elif session is not None:
                raise ValueError(f"queue {queue!r} is not session-enabled")
            else:
                locked_until = now + span_us(settings.lock_duration)
            self._promote(conn, queue, now)
            received: list[InboundMessage] = []
            while len(received) < max_messages:
                rows = self._available(conn, queue, session, max_messages - len(received))
                if not rows:
                    break
                for row in rows:
                    expires = row["expires_at"]
                    if expires is not None and expires <= now:
                        self._expire(conn, row["seq"], queue, settings)
                        continue
                    # Service Bus dead-letters once DeliveryCount exceeds MaxDeliveryCount.
                    if row["delivery_count"] >= settings.max_delivery_count:
                        self._move_to_dead_letters(
                            conn,
                            row["seq"],
                            queue,
                            MAX_DELIVERY_COUNT_EXCEEDED,
                            f"Message could not be consumed after "
                            f"{settings.max_delivery_count} delivery attempts.",
                        )
                        continue
                    token = self._token_factory()
                    delivery_count = row["delivery_count"] + 1
                    conn.execute(
                        "UPDATE messages SET state = ?, due_at = ?, delivery_count = ?,"
                        " lock_token = ?, locked_until = ?, session_lock = ? WHERE seq = ?",
                        (
                            LOCKED,
                            locked_until,
                            delivery_count,
                            token,
                            locked_until,
                            session_token,
                            row["seq"],
                        ),
                    )
                    received.append(
                        _inbound(
                            row,
                            delivery_count=delivery_count,
                            lock_token=token,
                            locked_until=locked_until,
                        )
                    )
            return received

    def _available(
        self, conn: sqlite3.Connection, queue: str, session: SessionLock | None, limit: int
    ) -> list[sqlite3.Row]:
        if session is None:
            return conn.execute(
                "SELECT * FROM messages"
                " WHERE queue = ? AND state = ? AND due_at = 0 ORDER BY seq LIMIT ?",
                (queue, AVAILABLE, limit),
            ).fetchall()
        return conn.execute(
            "SELECT * FROM messages"
            " WHERE queue = ? AND session_id = ? AND state = ? ORDER BY seq LIMIT ?",
            (queue, session.session_id, AVAILABLE, limit),
        ).fetchall()

    def _promote(self, conn: sqlite3.Connection, queue: str, now: int) -> None:
        """Makes messages whose lock expired or whose scheduled time came available again."""
        conn.execute(
            "UPDATE messages SET state = ?, due_at = 0"
            " WHERE queue = ? AND state IN (?, ?) AND due_at <= ?",
            (AVAILABLE, queue, LOCKED, SCHEDULED, now),
        )

    def _expire(
        self, conn: sqlite3.Connection, seq: int, queue: str, settings: QueueSettings
    ) -> None:
        if settings.dead_lettering_on_expiration:
            self._move_to_dead_letters(
                conn, seq, queue, TTL_EXPIRED, "The message expired and was dead lettered."
            )
        else:
            conn.execute("DELETE FROM messages WHERE seq = ?", (seq,))

    def _move_to_dead_letters(
        self,
        conn: sqlite3.Connection,
        seq: int,
        queue: str,
        reason: str,
        description: str | None,
    ) -> None:
        conn.execute(
            "UPDATE messages SET state = ?, due_at = 0, lock_token = NULL, locked_until = NULL,"
            " session_lock = NULL, dead_letter_reason = ?, dead_letter_description = ?,"
            " dead_letter_source = ? WHERE seq = ?",
            (DEAD, reason, description, queue, seq),
        )

    # -- settling ---------------------------------------------------------------------------

    def _locked_message(
        self, conn: sqlite3.Connection, queue: str, lock_token: str, now: int
    ) -> tuple[sqlite3.Row, QueueSettings]:
        settings = self._settings(conn, queue)
        row = conn.execute(
            "SELECT seq, state, session_id, locked_until, session_lock FROM messages"
            " WHERE lock_token = ? AND queue = ?",
            (lock_token, queue),
        ).fetchone()
        if row is None:
            raise MessageLockLostError(f"no message in {queue!r} holds lock {lock_token!r}")
        if settings.requires_session and not self._session_held(
            conn, queue, row["session_id"], row["session_lock"], now
        ):
            raise SessionLockLostError(f"the lock of session {row['session_id']!r} was lost")
        if row["state"] != LOCKED or row["locked_until"] <= now:
            raise MessageLockLostError(f"the lock {lock_token!r} in {queue!r} was lost")
        return row, settings

    def complete(self, queue: str, lock_token: str) -> None:
        with self._write() as conn:
            row, _ = self._locked_message(conn, queue, lock_token, self._now())
            conn.execute("DELETE FROM messages WHERE seq = ?", (row["seq"],))

    def abandon(self, queue: str, lock_token: str) -> None:
        """Unlocks at once; the delivery was already counted when the message was received."""
        with self._write() as conn:
            row, _ = self._locked_message(conn, queue, lock_token, self._now())
            conn.execute(
                "UPDATE messages SET state = ?, due_at = 0, locked_until = NULL WHERE seq = ?",
                (AVAILABLE, row["seq"]),
            )
        self._signal.notify()

    def dead_letter(
        self, queue: str, lock_token: str, *, reason: str, description: str | None = None
    ) -> None:
        with self._write() as conn:
            row, _ = self._locked_message(conn, queue, lock_token, self._now())
            self._move_to_dead_letters(conn, row["seq"], queue, reason, description)

    def renew_message_lock(self, queue: str, lock_token: str) -> datetime:
        with self._write() as conn:
            now = self._now()
            row, settings = self._locked_message(conn, queue, lock_token, now)
            if settings.requires_session:
                raise ValueError("messages of a session queue are locked by renew_session_lock")
            locked_until = now + span_us(settings.lock_duration)
            conn.execute(
                "UPDATE messages SET due_at = ?, locked_until = ? WHERE seq = ?",
                (locked_until, locked_until, row["seq"]),
            )
        return from_us(locked_until)

    # -- sessions ---------------------------------------------------------------------------

    def _session_held(
        self,
        conn: sqlite3.Connection,
        queue: str,
        session_id: str | None,
        lock_token: str | None,
        now: int,
    ) -> bool:
        if session_id is None or lock_token is None:
            return False
        row = conn.execute(
            "SELECT lock_token, locked_until FROM sessions WHERE queue = ? AND session_id = ?",
            (queue, session_id),
        ).fetchone()
        return row is not None and row["lock_token"] == lock_token and row["locked_until"] > now

    def _check_session(self, conn: sqlite3.Connection, lock: SessionLock, now: int) -> int:
        """Returns the session's locked_until, or raises if `lock` no longer holds it."""
        row = conn.execute(
            "SELECT lock_token, locked_until FROM sessions WHERE queue = ? AND session_id = ?",
            (lock.queue, lock.session_id),
        ).fetchone()
        if row is None or row["lock_token"] != lock.lock_token or row["locked_until"] <= now:
            raise SessionLockLostError(f"the lock of session {lock.session_id!r} was lost")
        locked_until: int = row["locked_until"]
        return locked_until

    def _session_settings(self, conn: sqlite3.Connection, queue: str) -> QueueSettings:
        settings = self._settings(conn, queue)
        if not settings.requires_session:
            raise ValueError(f"queue {queue!r} is not session-enabled")
        return settings

    def _lock_session(
        self,
        conn: sqlite3.Connection,
        queue: str,
        session_id: str,
        settings: QueueSettings,
        now: int,
    ) -> SessionLock:
        token = self._token_factory()
        locked_until = now + span_us(settings.lock_duration)
        conn.execute(
            "INSERT INTO sessions (queue, session_id, lock_token, locked_until) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (queue, session_id) DO UPDATE"
            " SET lock_token = excluded.lock_token, locked_until = excluded.locked_until",
            (queue, session_id, token, locked_until),
        )
        return SessionLock(queue, session_id, token, from_us(locked_until))

    def accept_next_session(self, queue: str) -> SessionLock | None:
        """Locks the session of the oldest visible message whose session nobody holds."""
        with self._write() as conn:
            now = self._now()
            settings = self._session_settings(conn, queue)
            self._promote(conn, queue, now)
            row = conn.execute(
                "SELECT m.session_id FROM messages AS m"
                " WHERE m.queue = ? AND m.state = ? AND m.due_at = 0 AND NOT EXISTS ("
                "  SELECT 1 FROM sessions AS s WHERE s.queue = m.queue"
                "  AND s.session_id = m.session_id AND s.locked_until > ?)"
                " ORDER BY m.seq LIMIT 1",
                (queue, AVAILABLE, now),
            ).fetchone()
            if row is None:
                return None
            return self._lock_session(conn, queue, row["session_id"], settings, now)

    def accept_session(self, queue: str, session_id: str) -> SessionLock:
        with self._write() as conn:
            now = self._now()
            settings = self._session_settings(conn, queue)
            row = conn.execute(
                "SELECT locked_until FROM sessions WHERE queue = ? AND session_id = ?",
                (queue, session_id),
            ).fetchone()
            if row is not None and row["locked_until"] is not None and row["locked_until"] > now:
                raise SessionLockedError(f"session {session_id!r} of {queue!r} is locked")
            return self._lock_session(conn, queue, session_id, settings, now)

    def renew_session_lock(self, lock: SessionLock) -> datetime:
        with self._write() as conn:
            now = self._now()
            settings = self._session_settings(conn, lock.queue)
            self._check_session(conn, lock, now)
            locked_until = now + span_us(settings.lock_duration)
            conn.execute(
                "UPDATE sessions SET locked_until = ? WHERE queue = ? AND session_id = ?",
                (locked_until, lock.queue, lock.session_id),
            )
            # A session's message locks are its session lock: they move with it.
            conn.execute(
                "UPDATE messages SET due_at = ?, locked_until = ?"
                " WHERE queue = ? AND session_id = ? AND state = ? AND session_lock = ?",
                (locked_until, locked_until, lock.queue, lock.session_id, LOCKED, lock.lock_token),
            )
        return from_us(locked_until)

    def release_session(self, lock: SessionLock) -> None:
        """Lets others accept the session; its unsettled messages become available again.

        Releasing a lock that was already lost does nothing, so it is safe in `finally` blocks.
        """
        with self._write() as conn:
            now = self._now()
            if not self._session_held(conn, lock.queue, lock.session_id, lock.lock_token, now):
                return
            conn.execute(
                "UPDATE sessions SET lock_token = NULL, locked_until = NULL"
                " WHERE queue = ? AND session_id = ?",
                (lock.queue, lock.session_id),
            )
            conn.execute(
                "UPDATE messages SET state = ?, due_at = 0, locked_until = NULL"
                " WHERE queue = ? AND session_id = ? AND state = ? AND session_lock = ?",
                (AVAILABLE, lock.queue, lock.session_id, LOCKED, lock.lock_token),
            )
        self._signal.notify()

    def get_session_state(self, lock: SessionLock) -> bytes | None:
        with self._read() as conn:
            self._check_session(conn, lock, self._now())
            row = conn.execute(
                "SELECT state FROM sessions WHERE queue = ? AND session_id = ?",
                (lock.queue, lock.session_id),
            ).fetchone()
            return None if row["state"] is None else bytes(row["state"])

    def set_session_state(self, lock: SessionLock, state: bytes | None) -> None:
        with self._write() as conn:
            self._check_session(conn, lock, self._now())
            conn.execute(
                "UPDATE sessions SET state = ? WHERE queue = ? AND session_id = ?",
                (state, lock.queue, lock.session_id),
            )

    # -- inspection and dead letters --------------------------------------------------------

    def peek(
        self, queue: str, *, max_messages: int = 32, from_sequence: int = 0
    ) -> list[InboundMessage]:
        """Active, locked and scheduled messages from `from_sequence` on, without locking."""
        with self._read() as conn:
            self._settings(conn, queue)
            rows = conn.execute(
                "SELECT * FROM messages"
                " WHERE queue = ? AND state IN (?, ?, ?) AND seq >= ? ORDER BY seq LIMIT ?",
                (queue, AVAILABLE, LOCKED, SCHEDULED, from_sequence, max_messages),
            ).fetchall()
        return [_inbound(row) for row in rows]

    def peek_dead_letters(
        self, queue: str, *, max_messages: int = 32, from_sequence: int = 0
    ) -> list[InboundMessage]:
        with self._read() as conn:
            self._settings(conn, queue)
            rows = conn.execute(
                "SELECT * FROM messages"
                " WHERE queue = ? AND state = ? AND due_at = 0 AND seq >= ? ORDER BY seq LIMIT ?",
                (queue, DEAD, from_sequence, max_messages),
            ).fetchall()
        return [_inbound(row) for row in rows]

    def remove_dead_letter(self, queue: str, sequence_number: int) -> None:
        with self._write() as conn:
            self._settings(conn, queue)
            deleted = conn.execute(
                "DELETE FROM messages WHERE seq = ? AND queue = ? AND state = ?",
                (sequence_number, queue, DEAD),
            ).rowcount
            if deleted == 0:
                raise MessageNotFoundError(f"no dead letter {sequence_number} in {queue!r}")

    def replay_dead_letters(
        self,
        queue: str,
        sequence_numbers: Sequence[int] | None = None,
        *,
        new_message_id: Callable[[InboundMessage], str],
    ) -> int:
        """Re-sends dead letters to their queue under new message ids, all or none.

        The copies skip duplicate detection (their ids are still recorded): an operator's replay
        must never be dropped silently. Copies are sent in original sequence order. An unknown
        sequence number raises and replays nothing.
        """
        with self._write() as conn:
            now = self._now()
            settings = self._settings(conn, queue)
            if sequence_numbers is None:
                rows = conn.execute(
                    "SELECT * FROM messages"
                    " WHERE queue = ? AND state = ? AND due_at = 0 ORDER BY seq",
                    (queue, DEAD),
                ).fetchall()
            else:
                rows = []
                # Original order, so a session's replayed messages stay FIFO.
                for seq in sorted(set(sequence_numbers)):
                    row = conn.execute(
                        "SELECT * FROM messages WHERE seq = ? AND queue = ? AND state = ?",
                        (seq, queue, DEAD),
                    ).fetchone()
                    if row is None:
                        raise MessageNotFoundError(f"no dead letter {seq} in {queue!r}")
                    rows.append(row)
            for row in rows:
                original = _inbound(row)
                copy = OutboundMessage(
                    body=original.body,
                    message_id=new_message_id(original),
                    session_id=original.session_id,
                    application_properties=original.application_properties,
                    content_type=original.content_type,
                    correlation_id=original.correlation_id,
                    subject=original.subject,
                    time_to_live=original.time_to_live,
                )
                self._insert(conn, queue, settings, copy, row["properties"], now)
                conn.execute("DELETE FROM messages WHERE seq = ?", (row["seq"],))
        if rows:
            self._signal.notify()
        return len(rows)

    def purge(self, queue: str, *, dead_letters: bool = False) -> int:
        """Deletes every active, locked and scheduled message, or every dead letter."""
        with self._write() as conn:
            self._settings(conn, queue)
            if dead_letters:
                cursor = conn.execute(
                    "DELETE FROM messages WHERE queue = ? AND state = ?", (queue, DEAD)
                )
            else:
                cursor = conn.execute(
                    "DELETE FROM messages WHERE queue = ? AND state IN (?, ?, ?)",
                    (queue, AVAILABLE, LOCKED, SCHEDULED),
                )
            return cursor.rowcount

    # -- helpers for pumps ------------------------------------------------------------------

    def wait_for_messages(
        self, queue: str, timeout: float, *, session: SessionLock | None = None
    ) -> bool:
        """Blocks up to `timeout` seconds until a message might be receivable; never raises late.

        Without `session` on a session queue it waits for a message in a session nobody holds
        (what `accept_next_session` needs); with `session`, for a message of that session.
        Sends in this process wake it at once; other processes' sends are seen by polling.
        """
        deadline = time.monotonic() + timeout
        interval = _POLL_FIRST
        with self._read() as conn:
            requires_session = self._settings(conn, queue).requires_session
        while True:
            generation = self._signal.generation
            if self._might_receive(queue, requires_session, session):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._signal.condition:
                if self._signal.generation == generation:
                    self._signal.condition.wait(min(interval, remaining))
            interval = min(interval * 1.5, _POLL_MAX)

    def _might_receive(
        self, queue: str, requires_session: bool, session: SessionLock | None
    ) -> bool:
        with self._read() as conn:
            now = self._now()
            params = {
                "queue": queue,
                "available": AVAILABLE,
                "locked": LOCKED,
                "scheduled": SCHEDULED,
                "now": now,
            }
            if session is not None:
                params["session"] = session.session_id
                row = conn.execute(
                    "SELECT 1 FROM messages WHERE queue = :queue AND session_id = :session"
                    " AND (state = :available OR (state IN (:locked, :scheduled)"
                    " AND due_at <= :now)) LIMIT 1",
                    params,
                ).fetchone()
            elif requires_session:
                row = conn.execute(
                    "SELECT 1 FROM messages AS m WHERE m.queue = :queue"
                    " AND (m.state = :available OR (m.state IN (:locked, :scheduled)"
                    " AND m.due_at <= :now)) AND NOT EXISTS (SELECT 1 FROM sessions AS s"
                    " WHERE s.queue = m.queue AND s.session_id = m.session_id"
                    " AND s.locked_until > :now) LIMIT 1",
                    params,
                ).fetchone()
            else:
                row = conn.execute(
                    "SELECT EXISTS (SELECT 1 FROM messages WHERE queue = :queue"
                    " AND state = :available AND due_at = 0)"
                    " OR EXISTS (SELECT 1 FROM messages WHERE queue = :queue"
                    " AND state IN (:locked, :scheduled) AND due_at <= :now)",
                    params,
                ).fetchone()
                return bool(row[0])
            return row is not None

    def next_visible_at(self, queue: str) -> datetime | None:
        """When the next message becomes receivable: now if one is, None if the queue is idle."""
        with self._read() as conn:
            now = self._now()
            self._settings(conn, queue)
            available = conn.execute(
                "SELECT 1 FROM messages WHERE queue = ? AND state = ? AND due_at = 0 LIMIT 1",
                (queue, AVAILABLE),
            ).fetchone()
            if available is not None:
                return from_us(now)
            dues = [
                conn.execute(
                    "SELECT MIN(due_at) FROM messages WHERE queue = ? AND state = ?",
                    (queue, state),
                ).fetchone()[0]
                for state in (LOCKED, SCHEDULED)
            ]
            pending = [due for due in dues if due is not None]
            return from_us(min(pending)) if pending else None


class SendChannel:
    """Group commit split across threads, for a sender on an event loop.

    `stage` runs a batch of sends (as `send_many` does) in a write transaction, on the channel's
    own connection and in the calling thread, and leaves it open; `commit`, called from any
    thread, makes it durable and lets the next writer in. On the loop the statements are brief
    CPU work, while the commit waits for the WAL's sync: committing from a worker thread frees
    the loop for that wait at the cost of one GIL hand-off, not one per statement. Nothing is
    durable, and no send may be acknowledged, before `commit` returns.

    One staged batch at a time: after `stage`, call exactly one of `commit` or `rollback` (until
    then this process's other writers on the file wait).
    """

    def __init__(self, broker: LocalBroker, conn: sqlite3.Connection) -> None:
        self._broker = broker
        self._conn = conn
        self._stored = False

    def stage(
        self, sends: Sequence[tuple[str, Sequence[OutboundMessage]]]
    ) -> list[list[int | None] | Exception]:
        broker = self._broker
        if broker._closed:
            raise BrokerClosedError("the broker is closed")
        signal = broker._signal
        signal.writer.acquire()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            results = broker._stage(self._conn, sends, broker._now())
        except BaseException:
            try:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
            finally:
                signal.writer.release()
            raise
        self._stored = _stored_any(results)
        return results

    def commit(self) -> None:
        try:
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        finally:
            self._broker._signal.writer.release()
        self._broker._wrote()
        if self._stored:
            self._broker._signal.notify()

    def rollback(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        finally:
            self._broker._signal.writer.release()
