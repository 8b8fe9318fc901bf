"""SQLite storage: one table per Dataverse table, the metadata catalog and the change log.

A file (LOCAL_DATAVERSE_DB) is opened in WAL mode; without one the database lives in memory
for the life of the process. One connection serves the app; an `RLock` serialises access, so
the store is safe to call from the event loop and from worker threads alike.

Layout:
- `t_<logical name>`: a column per attribute, named as the attribute (lookups add
  `<name>__target`, the referenced table). Text columns use `COLLATE NOCASE`, as Dataverse
  compares strings case-insensitively (alternate keys included).
- `_dv_catalog(logical_name, body)`: each table's definition as JSON (catalog.Entity).
- `_dv_changes(seq, entity, id, op)`: every write. `seq` is also the row's version (its ETag)
  and the position change tracking's delta tokens point at.
- An Active alternate key is a `UNIQUE INDEX` over its columns; building it is where a key
  whose columns hold duplicates fails, as the real index job does.

Writes happen inside `savepoint()` blocks, which nest: a request is one savepoint, a $batch
change set another around its requests, so rolling back a change set undoes all of it.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from local.dataverse import catalog as cat
from local.dataverse.catalog import Attribute, Entity, Key

Row = dict[str, Any]
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_SQL_TYPES = {
    "string": "TEXT COLLATE NOCASE",
    "memo": "TEXT COLLATE NOCASE",
    "integer": "INTEGER",
    "bigint": "INTEGER",
    "boolean": "INTEGER",
    "decimal": "REAL",
    "money": "REAL",
    "datetime": "TEXT",
    "uniqueidentifier": "TEXT COLLATE NOCASE",
    "lookup": "TEXT COLLATE NOCASE",
}


def ident(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"not a valid table or column name: {name!r}")
    return f'"{name}"'


def table_name(logical_name: str) -> str:
    return ident(f"t_{logical_name}")


def now_iso(clock: Callable[[], float]) -> str:
    return datetime.fromtimestamp(clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    """Rows, metadata and changes of one simulated Dataverse environment."""

    def __init__(self, path: str | None, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(
            path or ":memory:", check_same_thread=False, isolation_level=None
        )
        self.conn.row_factory = sqlite3.Row
        if path:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=5000")
        self.catalog: dict[str, Entity] = {}
        self._depth = 0
        self._names = 0
        # Called after each outermost savepoint commits (service_endpoint.py posts the changes).
        self.on_commit: Callable[[], None] | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def open(self, *, provisioned: bool, iom: bool) -> None:
        """Loads the catalog a file already holds, or seeds a fresh environment."""
        with self.lock:
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS _dv_catalog (logical_name TEXT PRIMARY KEY, body TEXT)"
            )
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS _dv_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                " entity TEXT NOT NULL, id TEXT NOT NULL, op TEXT NOT NULL)"
            )
            self.conn.execute(
                "CREATE INDEX IF NOT EXISTS _dv_changes_entity ON _dv_changes(entity, seq)"
            )
            self.reload_catalog()
            if not self.catalog:
                self._seed(provisioned=provisioned, iom=iom)

    def reset(self, *, provisioned: bool, iom: bool) -> None:
        """Drops every row, table definition and change, then seeds afresh."""
        with self.lock:
            tables = [
                r[0]
                for r in self.conn.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 't\\_%' "
                    "ESCAPE '\\'"
                )
            ]
            with self.savepoint():
                for name in tables:
                    self.conn.execute(f"DROP TABLE {ident(name)}")
                self.conn.execute("DELETE FROM _dv_catalog")
                self.conn.execute("DELETE FROM _dv_changes")
                self.catalog = {}
                self._seed(provisioned=provisioned, iom=iom)

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    def _seed(self, *, provisioned: bool, iom: bool) -> None:
        with self.savepoint():
            for entity in cat.seed(provisioned=provisioned, iom=iom, started=self.clock()).values():
                self.create_table(entity)
            self.insert(
                self.catalog[cat.CURRENCY_TABLE],
                {
                    "transactioncurrencyid": cat.BASE_CURRENCY_ID,
                    "currencyname": "US Dollar",
                    "isocurrencycode": "USD",
                    "currencysymbol": "$",
                },
            )
            if provisioned:
                self.seed_reference_rows()

    def seed_reference_rows(self) -> None:
        """Adds the rows of `catalog.REFERENCE_ROWS` that are missing (by primary id)."""
        with self.lock, self.savepoint():
            for table, row in cat.REFERENCE_ROWS:
                entity = self.catalog.get(table)
                if entity is None or self.fetch(entity, row[entity.primary_id]) is not None:
                    continue
                self.insert(entity, dict(row))

    def reload_catalog(self) -> None:
        with self.lock:
            rows = self.conn.execute("SELECT body FROM _dv_catalog").fetchall()
            self.catalog = {}
            for row in rows:
                entity = Entity.from_json(json.loads(row[0]))
                self.catalog[entity.logical_name] = entity

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: committed when the block ends, rolled back if it raises."""
        with self.lock:
            self._names += 1
            name = f"sp{self._names}"
            self.conn.execute(f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield
            except BaseException:
                self.conn.execute(f"ROLLBACK TO {name}")
                self.conn.execute(f"RELEASE {name}")
                self._depth -= 1
                self.reload_catalog()
                raise
            self.conn.execute(f"RELEASE {name}")
            self._depth -= 1
            if self._depth == 0 and self.on_commit is not None:
                self.on_commit()

    # --- metadata ---------------------------------------------------------------------------

    def entity_by_set(self, entity_set: str) -> Entity | None:
        for entity in self.catalog.values():
            if entity.entity_set == entity_set:
                return entity
        return None

    def save_entity(self, entity: Entity) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO _dv_catalog(logical_name, body) VALUES (?, ?)",
            (entity.logical_name, json.dumps(entity.to_json())),
        )
        self.catalog[entity.logical_name] = entity

    def create_table(self, entity: Entity) -> None:
        with self.lock:
            columns = [f"{ident(entity.primary_id)} TEXT COLLATE NOCASE PRIMARY KEY"]
            for attribute in entity.attributes.values():
                if attribute.primary_id:
                    continue
                columns += self._column_sql(attribute)
            self.conn.execute(
                f"CREATE TABLE {table_name(entity.logical_name)} ({', '.join(columns)})"
            )
            for key in entity.keys.values():
                if key.status == cat.STATUS_ACTIVE:
                    self._create_index(entity, key)
            self.save_entity(entity)

    def add_attribute(self, entity: Entity, attribute: Attribute) -> None:
        with self.lock:
            for column in self._column_sql(attribute):
                self.conn.execute(
                    f"ALTER TABLE {table_name(entity.logical_name)} ADD COLUMN {column}"
                )
            entity.attributes[attribute.logical_name] = attribute
            self.save_entity(entity)

    def add_key(self, entity: Entity, key: Key) -> None:
        with self.lock:
            entity.keys[key.logical_name] = key
            if key.status == cat.STATUS_ACTIVE:
                self._create_index(entity, key)
            self.save_entity(entity)

    def delete_key(self, entity: Entity, key: Key) -> None:
        with self.lock:
            self.conn.execute(f"DROP INDEX IF EXISTS {self._index_name(entity, key)}")
            del entity.keys[key.logical_name]
            self.save_entity(entity)

    def refresh_keys(self, activation_seconds: float) -> None:
        """Moves index jobs along: Pending → InProgress → Active (or Failed on duplicates)."""
        now = self.clock()
        with self.lock:
            for entity in list(self.catalog.values()):
                changed = False
                for key in entity.keys.values():
                    if key.status not in (cat.STATUS_PENDING, cat.STATUS_IN_PROGRESS):
                        continue
                    elapsed = now - key.build_started
                    if elapsed >= activation_seconds:
                        key.status = self._try_index(entity, key)
                        changed = True
                    elif elapsed >= activation_seconds / 2 and key.status == cat.STATUS_PENDING:
                        key.status = cat.STATUS_IN_PROGRESS
                        changed = True
                if changed:
                    self.save_entity(entity)

    def activate_key(self, entity: Entity, key: Key) -> str:
        """Finishes a key's index job now (admin API; ReactivateEntityKey retries Failed)."""
        with self.lock:
            key.status = self._try_index(entity, key)
            self.save_entity(entity)
            return key.status

    def _try_index(self, entity: Entity, key: Key) -> str:
        try:
            with self.savepoint():
                self._create_index(entity, key)
        except sqlite3.IntegrityError:
            return cat.STATUS_FAILED
        return cat.STATUS_ACTIVE

    def _index_name(self, entity: Entity, key: Key) -> str:
        return ident(f"k_{entity.logical_name}_{key.logical_name}")

    def _create_index(self, entity: Entity, key: Key) -> None:
        columns = ", ".join(ident(c) for c in key.attributes)
        self.conn.execute(
            f"CREATE UNIQUE INDEX IF NOT EXISTS {self._index_name(entity, key)} "
            f"ON {table_name(entity.logical_name)} ({columns})"
        )

    @staticmethod
    def _column_sql(attribute: Attribute) -> list[str]:
        sql_type = _SQL_TYPES[attribute.kind]
        columns = [f"{ident(attribute.logical_name)} {sql_type}"]
        if attribute.kind == "lookup":
            columns.append(f"{ident(attribute.logical_name + '__target')} TEXT")
        return columns

    # --- rows -----------------------------------------------------------------------------

    def _change(self, entity: Entity, record_id: str, op: str) -> int:
        cursor = self.conn.execute(
            "INSERT INTO _dv_changes(entity, id, op) VALUES (?, ?, ?)",
            (entity.logical_name, record_id, op),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def insert(self, entity: Entity, values: Row) -> Row:
        """Inserts a row (values keyed by column; the primary id must be set). Returns it."""
        with self.lock:
            record_id = values[entity.primary_id]
            version = self._change(entity, record_id, "upsert")
            stamp = now_iso(self.clock)
            row = {**values, "createdon": stamp, "modifiedon": stamp, "versionnumber": version}
            names = ", ".join(ident(n) for n in row)
            marks = ", ".join("?" for _ in row)
            self.conn.execute(
                f"INSERT INTO {table_name(entity.logical_name)} ({names}) VALUES ({marks})",  # noqa: S608 (identifiers checked by ident())
                list(row.values()),
            )
            return row

    def update(self, entity: Entity, record_id: str, values: Row) -> int:
        """Updates a row's columns; always stamps a new version. Returns the version."""
        with self.lock:
            version = self._change(entity, record_id, "upsert")
            row = {**values, "modifiedon": now_iso(self.clock), "versionnumber": version}
            assignments = ", ".join(f"{ident(n)} = ?" for n in row)
            self.conn.execute(
                f"UPDATE {table_name(entity.logical_name)} SET {assignments} "  # noqa: S608 (identifiers checked by ident())
                f"WHERE {ident(entity.primary_id)} = ?",
                [*row.values(), record_id],
            )
            return version

    def delete(self, entity: Entity, record_id: str) -> None:
        with self.lock:
            self._change(entity, record_id, "delete")
            self.conn.execute(
                f"DELETE FROM {table_name(entity.logical_name)} "  # noqa: S608 (identifiers checked by ident())
                f"WHERE {ident(entity.primary_id)} = ?",
                (record_id,),
            )

    def fetch(self, entity: Entity, record_id: str) -> Row | None:
        with self.lock:
            row = self.conn.execute(
                f"SELECT * FROM {table_name(entity.logical_name)} "  # noqa: S608 (identifiers checked by ident())
                f"WHERE {ident(entity.primary_id)} = ?",
                (record_id,),
            ).fetchone()
            return dict(row) if row is not None else None

    def find(self, entity: Entity, values: Row, exclude: str | None = None) -> str | None:
        """The id of a row whose columns equal `values` (a key lookup), if any."""
        conditions = [f"{ident(name)} = ?" for name in values]
        params: list[Any] = list(values.values())
        if exclude is not None:
            conditions.append(f"{ident(entity.primary_id)} <> ?")
            params.append(exclude)
        with self.lock:
            row = self.conn.execute(
                f"SELECT {ident(entity.primary_id)} FROM {table_name(entity.logical_name)} "  # noqa: S608 (identifiers checked by ident())
                f"WHERE {' AND '.join(conditions)} LIMIT 1",
                params,
            ).fetchone()
            return None if row is None else str(row[0])

    def rows(self, entity: Entity, where: Row | None = None) -> list[Row]:
        """All rows in creation order, optionally only those whose columns equal `where`."""
        where = where or {}
        clause = " AND ".join(f"{ident(n)} = ?" for n in where)
        with self.lock:
            cursor = self.conn.execute(
                f"SELECT * FROM {table_name(entity.logical_name)}"  # noqa: S608 (identifiers checked by ident())
                + (f" WHERE {clause}" if clause else "")
                + " ORDER BY rowid",
                list(where.values()),
            )
            return [dict(r) for r in cursor.fetchall()]

    def count(self, entity: Entity) -> int:
        with self.lock:
            row = self.conn.execute(
                f"SELECT COUNT(*) FROM {table_name(entity.logical_name)}"  # noqa: S608 (identifiers checked by ident())
            ).fetchone()
            return int(row[0])

    # --- change tracking --------------------------------------------------------------------

    def last_change(self) -> int:
        with self.lock:
            row = self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM _dv_changes").fetchone()
            return int(row[0])

    def changed_ids(self, entity: Entity, after: int, upto: int) -> list[tuple[str, int]]:
        """Ids written in (after, upto], each with its last change, oldest first."""
        with self.lock:
            cursor = self.conn.execute(
                "SELECT id, MAX(seq) AS last FROM _dv_changes WHERE entity = ? AND seq > ? "
                "AND seq <= ? GROUP BY id ORDER BY last",
                (entity.logical_name, after, upto),
            )
            return [(str(r[0]), int(r[1])) for r in cursor.fetchall()]
