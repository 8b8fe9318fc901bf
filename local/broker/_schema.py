"""The SQLite schema of the local broker and the conversions between its columns and Python."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

SCHEMA_VERSION: Final = 1

# Row states in `messages`. Time never changes a row by itself: a LOCKED or SCHEDULED row whose
# `due_at` has passed is turned back into AVAILABLE by the next receive ("promotion").
AVAILABLE: Final = 0
LOCKED: Final = 1
SCHEDULED: Final = 2
DEAD: Final = 3

# `due_at` is the instant a LOCKED or SCHEDULED row becomes available, and 0 in the other states,
# so the one index (queue, state, due_at, seq) serves both the FIFO scan of available rows (an
# equality prefix, then rowid order) and the range scan that promotes due rows.
DDL: Final = """
CREATE TABLE queues (
    name TEXT PRIMARY KEY,
    requires_session INTEGER NOT NULL,
    lock_duration_us INTEGER NOT NULL,
    max_delivery_count INTEGER NOT NULL,
    duplicate_window_us INTEGER,
    default_ttl_us INTEGER,
    dead_letter_on_expiration INTEGER NOT NULL
);
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    state INTEGER NOT NULL,
    due_at INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    session_id TEXT,
    body BLOB NOT NULL,
    properties TEXT NOT NULL,
    content_type TEXT,
    correlation_id TEXT,
    subject TEXT,
    enqueued_at INTEGER NOT NULL,
    scheduled_at INTEGER,
    ttl_us INTEGER,
    expires_at INTEGER,
    delivery_count INTEGER NOT NULL,
    lock_token TEXT,
    locked_until INTEGER,
    session_lock TEXT,
    dead_letter_reason TEXT,
    dead_letter_description TEXT,
    dead_letter_source TEXT
);
CREATE INDEX messages_by_state ON messages (queue, state, due_at, seq);
CREATE INDEX messages_by_session ON messages (queue, session_id, state, seq);
CREATE INDEX messages_by_lock ON messages (lock_token) WHERE lock_token IS NOT NULL;
CREATE TABLE sessions (
    queue TEXT NOT NULL,
    session_id TEXT NOT NULL,
    lock_token TEXT,
    locked_until INTEGER,
    state BLOB,
    PRIMARY KEY (queue, session_id)
) WITHOUT ROWID;
CREATE TABLE message_ids (
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (queue, message_id)
) WITHOUT ROWID;
CREATE INDEX message_ids_by_age ON message_ids (queue, sent_at);
"""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def to_us(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("datetimes given to the broker must be timezone-aware")
    return (value - _EPOCH) // _MICROSECOND


def from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def span_us(value: timedelta) -> int:
    return value // _MICROSECOND


def span(value: int) -> timedelta:
    return timedelta(microseconds=value)
