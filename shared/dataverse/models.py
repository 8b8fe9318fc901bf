"""Value types of the Dataverse Web API client: row keys, lookup binds and operation results.

Plain frozen dataclasses, no behaviour beyond small read-only properties; the URL and body text
they turn into is built in `odata.py`, the HTTP exchange in `client.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeAlias

# A value of an alternate-key column. Keys may use Decimal, Whole Number, Single line of text,
# Date Time, Lookup (a GUID) and Option Set (an integer) columns (define-alternate-keys-entity.md).
KeyScalar: TypeAlias = str | int | Decimal | uuid.UUID | datetime
# A row is addressed by its primary id or by the values of one alternate key, column by column.
RowKey: TypeAlias = uuid.UUID | Mapping[str, KeyScalar]
Row: TypeAlias = dict[str, Any]


class UpsertMode(StrEnum):
    """What a PATCH by key may do (perform-conditional-operations-using-web-api.md)."""

    UPSERT = "upsert"  # no condition: create when missing, update when present
    CREATE_ONLY = "create_only"  # If-None-Match: *  -> 412 when the row exists
    UPDATE_ONLY = "update_only"  # If-Match: *       -> 404 when the row is missing


@dataclass(frozen=True, slots=True)
class Bind:
    """A lookup value: `<navigation>@odata.bind: "/<entity_set>(<key>)"` in a request body.

    Put it in a row under the lookup column's logical name. `navigation` names the single-valued
    navigation property when it differs from the column: polymorphic lookups have one per target
    (`customerid_contact`, `customerid_account`), and the navigation property of a custom lookup
    is its SchemaName, whose casing may differ from the logical name.
    """

    entity_set: str
    key: RowKey
    navigation: str | None = None


@dataclass(frozen=True, slots=True)
class EntityRef:
    """A row named by an `OData-EntityId` URL: `.../contacts(<guid>)` after a create, or
    `.../example_records(example_key1=2,example_key2=2)` after an upsert by alternate key."""

    entity_set: str
    key_text: str  # what stood between the parentheses, as sent by the server
    id: uuid.UUID | None = None  # set when the URL names the primary id


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The answer to a create, update or upsert.

    `created` is known only when it can be: True for a create, and for an upsert sent with
    `select` (201 Created vs 200 OK); None for a plain upsert, whose 204 is the same either way.
    `row` is the representation the server returned when asked for one (`select`).
    """

    status: int
    entity_id: str | None = None
    ref: EntityRef | None = None
    created: bool | None = None
    row: Row | None = None
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class Retrieved:
    """One row read by key; `not_modified` when an `If-None-Match` ETag still matched (304)."""

    row: Row | None
    etag: str | None
    not_modified: bool = False


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a query. Follow `next_link` unchanged, with the same page size
    (page-results.md)."""

    rows: tuple[Row, ...]
    next_link: str | None = None
    count: int | None = None  # @odata.count, when $count=true was asked
    page_size: int | None = None  # the odata.maxpagesize sent, to send again with next_link
    delta_link: str | None = None  # change tracking: present on the last page
    deleted: tuple[uuid.UUID, ...] = ()  # change tracking: rows deleted since the delta link


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed in one table since a delta link (or, first time, all its rows).

    `delta_link` is the link to store and read from next time; it is opaque and is followed
    unchanged (use-change-tracking-synchronize-data-external-systems.md).
    """

    rows: tuple[Row, ...]
    deleted: tuple[uuid.UUID, ...]
    delta_link: str | None


@dataclass(slots=True)
class ClientStats:
    """Counters for benchmarks and logs, updated by the client as it goes. `waited_seconds` sums
    every caller's sleeps (throttle pauses and backoff; queueing for a concurrency slot is counted
    by the gate, not timed), so with concurrent callers it can exceed the elapsed time."""

    requests: int = 0  # HTTP requests sent ($batch counts one)
    batches: int = 0
    batch_operations: int = 0  # operations carried by those batches
    throttled: int = 0  # 429 answers, whole-request or per batch part
    retries: int = 0  # requests (or batch items) sent again
    transport_errors: int = 0
    waits: int = 0  # times a caller slept (throttle pause or backoff)
    waited_seconds: float = 0.0
    by_status: dict[int, int] = field(default_factory=dict)  # responses by HTTP status
