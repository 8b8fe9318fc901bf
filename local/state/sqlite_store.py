"""The state port on a SQLite file: the embedded default of the one-machine stack.

Same semantics as the Table Storage adapter (shared/state/azure_tables.py), whose key and size
rules it applies: every write names the ETag it read, and the ETag is a version number drawn
from one counter per file, so an entity deleted and created again never gets an old ETag back.

Safe across processes (the local host and the operator CLI may share the file): WAL, a busy
timeout, and every write is one `BEGIN IMMEDIATE` transaction. The calls run in a worker thread
(`asyncio.to_thread`) on one connection per store, used by one thread at a time.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

from shared.state.azure_tables import check_key, decode_value, encode_value
from shared.state.ports import ConcurrencyError, Entity, StateError

_BUSY_TIMEOUT_MS: Final = 10_000
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS entities (
    partition TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (partition, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versions (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL);
INSERT OR IGNORE INTO versions (id, last) VALUES (1, 0);
"""

T = TypeVar("T")


def _version(etag: str) -> int:
    """The version an ETag names; -1 (matching nothing) for an ETag this store never issued."""
    return int(etag) if etag.isdigit() else -1


class SqliteStateStore:
    """`StateStore` on one SQLite file, created (with its folder) on first use."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"SqliteStateStore({str(self.path)!r})"

    # -- connection and transactions (worker thread) ------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StateError("the state store is closed")
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                timeout=_BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
                self._set_up(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    @staticmethod
    def _set_up(conn: sqlite3.Connection) -> None:
        """WAL and the schema. Switching a new file to WAL takes an exclusive lock without
        waiting on the busy timeout, so two processes opening the file at once retry briefly."""
        for attempt in range(100):
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.executescript(f"BEGIN IMMEDIATE;\n{_SCHEMA}\nCOMMIT;")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 99:
                    raise
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                time.sleep(0.02)

    async def _run(self, operation: str, work: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            with self._lock:
                conn = self._connection()
                try:
                    return work(conn)
                finally:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")

        try:
            return await asyncio.to_thread(call)
        except sqlite3.Error as exc:
            raise StateError(f"SQLite state store: {operation} failed ({exc})") from None

    @staticmethod
    def _next_version(conn: sqlite3.Connection) -> int:
        row = conn.execute(
            "UPDATE versions SET last = last + 1 WHERE id = 1 RETURNING last"
        ).fetchone()
        return int(row[0])

    # -- the port -----------------------------------------------------------------------------

    async def get(self, partition: str, key: str) -> Entity | None:
        check_key("partition", partition)
        check_key("key", key)

        def work(conn: sqlite3.Connection) -> Entity | None:
            row = conn.execute(
                "SELECT value, version FROM entities WHERE partition = ? AND key = ?",
                (partition, key),
            ).fetchone()
            if row is None:
                return None
            return Entity(partition, key, decode_value(partition, key, row[0]), str(row[1]))

        return await self._run("get", work)

    async def list(self, partition: str) -> list[Entity]:
        check_key("partition", partition)

        def work(conn: sqlite3.Connection) -> list[Entity]:
            rows = conn.execute(
                "SELECT key, value, version FROM entities WHERE partition = ? ORDER BY key",
                (partition,),
            ).fetchall()
            return [
                Entity(partition, key, decode_value(partition, key, text), str(version))
                for key, text, version in rows
            ]

        return await self._run("list", work)

    async def create(self, partition: str, key: str, value: Mapping[str, Any]) -> Entity:
        check_key("partition", partition)
        check_key("key", key)
        text = encode_value(partition, key, value)

        def work(conn: sqlite3.Connection) -> int:
            conn.execute("BEGIN IMMEDIATE")
            version = self._next_version(conn)
            try:
                conn.execute(
                    "INSERT INTO entities (partition, key, value, version) VALUES (?, ?, ?, ?)",
                    (partition, key, text, version),
                )
            except sqlite3.IntegrityError:
                raise ConcurrencyError(f"the state entity {partition}/{key} exists") from None
            conn.execute("COMMIT")
            return version

        version = await self._run("create", work)
        return Entity(partition, key, dict(value), str(version))

    async def replace(self, entity: Entity, value: Mapping[str, Any]) -> Entity:
        partition, key = check_key("partition", entity.partition), check_key("key", entity.key)
        text = encode_value(partition, key, value)

        def work(conn: sqlite3.Connection) -> int:
            conn.execute("BEGIN IMMEDIATE")
            version = self._next_version(conn)
            changed = conn.execute(
                "UPDATE entities SET value = ?, version = ? "
                "WHERE partition = ? AND key = ? AND version = ?",
                (text, version, partition, key, _version(entity.etag)),
            ).rowcount
            if changed != 1:
                raise ConcurrencyError(
                    f"the state entity {partition}/{key} changed since it was read"
                )
            conn.execute("COMMIT")
            return version

        version = await self._run("replace", work)
        return Entity(partition, key, dict(value), str(version))

    async def upsert(self, partition: str, key: str, value: Mapping[str, Any]) -> Entity:
        check_key("partition", partition)
        check_key("key", key)
        text = encode_value(partition, key, value)

        def work(conn: sqlite3.Connection) -> int:
            conn.execute("BEGIN IMMEDIATE")
            version = self._next_version(conn)
            conn.execute(
                "INSERT INTO entities (partition, key, value, version) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (partition, key) DO UPDATE SET "
                "value = excluded.value, version = excluded.version",
                (partition, key, text, version),
            )
            conn.execute("COMMIT")
            return version

        version = await self._run("upsert", work)
        return Entity(partition, key, dict(value), str(version))

    async def delete(self, entity: Entity) -> None:
        partition, key = check_key("partition", entity.partition), check_key("key", entity.key)

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                "SELECT version FROM entities WHERE partition = ? AND key = ?", (partition, key)
            ).fetchone()
            if row is None:
                raise ConcurrencyError(f"the state entity {partition}/{key} is already gone")
            if row[0] != _version(entity.etag):
                raise ConcurrencyError(
                    f"the state entity {partition}/{key} changed since it was read"
                )
            conn.execute("DELETE FROM entities WHERE partition = ? AND key = ?", (partition, key))
            conn.execute("COMMIT")

        await self._run("delete", work)

    async def close(self) -> None:
        def work() -> None:
            with self._lock:
                self._closed = True
                conn, self._conn = self._conn, None
                if conn is not None:
                    conn.close()

        await asyncio.to_thread(work)
