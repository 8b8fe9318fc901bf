"""Dataverse changes in, order messages out: a fulfillment order or a salesorder changed in
Dynamics, so the order's lifecycle should look at the order again.

Two paths report changes, and both end here so that they produce the same messages:
- the `dataverse-events` queue, where a registered Service Bus service endpoint posts the
  `RemoteExecutionContext` of each Create/Update step (`receive`, `forward`);
- the change poll (`shared/handlers/dataverse_poll.py`), which reads change tracking and hands
  over each changed row (`row_message`).

A change becomes a `connector.order` message (`shared/orchestration/messages.py`) on
`order-events`, in the order's session `<store_hash>:order:<order id>`: trigger
`dataverse_fulfillment` for `msdyn_fulfillmentorder`, `dataverse_order` for `salesorder`. Like a
webhook it is only a hint: the lifecycle re-reads the order and decides.

The order is named by the row's `bciom_storehash` and `bciom_bcorderid`. The service endpoint's
post image normally carries them; when it does not (an image registered with a few columns, or a
body over 192 KB that Dataverse stripped) the row is read by id with `$select`, one request.
Changes to other tables, rows without a BigCommerce order (orders keyed in by hand in IOM), rows
of a store this deployment does not serve, and rows deleted since are skipped with one log line.

The message id is `derived_id("dataverse", <table>, <row id>, <version>)`, the version being the
row's `versionnumber` (the same number change tracking returns, so one change seen by both paths
has one id), else its `modifiedon`, else the operation id. The same change posted twice, or polled
after a crash before the checkpoint moved, is dropped by the broker's duplicate detection
(two days on order-events); a later change has a new version and a new id.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Protocol

from shared.config import Settings
from shared.dataverse import schema
from shared.dataverse.errors import NotFoundError
from shared.dataverse.models import Retrieved, RowKey
from shared.dataverse.remote_context import (
    EntityChange,
    OptionSetValue,
    RemoteContextError,
    changed_columns,
    parse_remote_context,
)
from shared.messaging.message import OutboundMessage
from shared.messaging.ports import MessageSender
from shared.messaging.queues import ORDER_EVENTS
from shared.observability import correlation
from shared.orchestration.flow import Trigger
from shared.orchestration.messages import build_order_message, derived_id

log = logging.getLogger("connector.dataverse_changes")

STORE_HASH_COLUMN: Final = schema.STORE_HASH.logical_name
ORDER_ID_COLUMN: Final = schema.PREFIX + "bcorderid"
VERSION_COLUMN: Final = "versionnumber"
MODIFIED_COLUMN: Final = "modifiedon"
# What a row must show for its change to name an order and a version: the one read's $select.
KEY_COLUMNS: Final = (STORE_HASH_COLUMN, ORDER_ID_COLUMN, VERSION_COLUMN, MODIFIED_COLUMN)
MESSAGE_ID_PREFIX: Final = "dataverse"
_MAX_DETAIL: Final = 200


@dataclass(frozen=True, slots=True)
class FollowedTable:
    table: schema.Table
    trigger: Trigger
    # The change matters to the lifecycle: True, False, or None when the row does not show it.
    relevant: Callable[[Mapping[str, object]], bool | None]
    relevance_columns: tuple[str, ...]


def _awaiting_shipment_sync(row: Mapping[str, object]) -> bool | None:
    """A fulfillment order marked shipped whose BigCommerce shipment is not recorded yet.
    The connector's own writes (creating it, recording the shipment id, cancelling it) are not:
    forwarding them would only make the order's session re-read what it just wrote."""
    shipped = row.get(schema.PREFIX + "shipped")
    if shipped is None:
        return None
    return shipped is True and row.get(schema.PREFIX + "bcshipmentid") is None


def _closed_as_cancelled(row: Mapping[str, object]) -> bool | None:
    """A salesorder cancelled in Dataverse (statecode 2): the only salesorder change the
    lifecycle reacts to (the cancel step)."""
    state = row.get("statecode")
    if state is None:
        return None
    return _state_value(state) == 2


def _state_value(value: object) -> int | None:
    if isinstance(value, OptionSetValue):  # from a RemoteExecutionContext image
        return value.value
    return value if isinstance(value, int) and not isinstance(value, bool) else None


FOLLOWED: Final[Mapping[str, FollowedTable]] = {
    schema.FULFILLMENT_ORDER.logical_name: FollowedTable(
        schema.FULFILLMENT_ORDER,
        Trigger.DATAVERSE_FULFILLMENT,
        _awaiting_shipment_sync,
        (schema.PREFIX + "shipped", schema.PREFIX + "bcshipmentid"),
    ),
    schema.SALESORDER.logical_name: FollowedTable(
        schema.SALESORDER, Trigger.DATAVERSE_ORDER, _closed_as_cancelled, ("statecode",)
    ),
}


class RowReader(Protocol):
    """What this handler needs of `DataverseClient`: one row by id."""

    async def retrieve(
        self, entity_set: str, key: RowKey, *, select: Sequence[str]
    ) -> Retrieved: ...


@dataclass(frozen=True, slots=True)
class Forwarded:
    message_id: str
    session_id: str
    trigger: Trigger
    store_hash: str
    order_id: int


@dataclass(frozen=True, slots=True)
class Skipped:
    reason: str


Outcome = Forwarded | Skipped


# -- pure: a row and its version into an order message ------------------------------------------


def order_of(row: Mapping[str, object]) -> tuple[str, int] | None:
    """(store hash, BigCommerce order id) of a fulfillment order or salesorder row, if any."""
    store_hash = row.get(STORE_HASH_COLUMN)
    order_id = row.get(ORDER_ID_COLUMN)
    if isinstance(order_id, str) and order_id.strip().isdigit():
        order_id = int(order_id)
    if not isinstance(store_hash, str) or not store_hash.strip():
        return None
    if not isinstance(order_id, int) or isinstance(order_id, bool) or order_id <= 0:
        return None
    return store_hash.strip().lower(), order_id


def change_version(
    row: Mapping[str, object], *, row_version: str | None = None, fallback: str | None = None
) -> str | None:
    """The version that identifies this state of the row, the same whichever path saw it:
    `versionnumber` (the service endpoint's image, change tracking's row, the entity's RowVersion
    or the ETag `W/"<n>"` carry the same number), else `modifiedon` in one canonical form, else
    `fallback` (the operation id)."""
    for candidate in (row.get(VERSION_COLUMN), row_version, _etag_version(row.get("@odata.etag"))):
        if isinstance(candidate, int) and not isinstance(candidate, bool):
            return str(candidate)
        if isinstance(candidate, str) and candidate.strip().isdigit():
            return str(int(candidate))
    modified = _utc(row.get(MODIFIED_COLUMN))
    if modified is not None:
        return modified.isoformat(timespec="seconds")
    return fallback


def message_id_for(table: str, record_id: uuid.UUID, version: str) -> str:
    return derived_id(MESSAGE_ID_PREFIX, table, record_id, version)


def change_message(
    followed: FollowedTable,
    record_id: uuid.UUID,
    store_hash: str,
    order_id: int,
    version: str,
    *,
    correlation_id: str,
    detail: str,
    traceparent: str | None = None,
) -> OutboundMessage:
    return build_order_message(
        trigger=followed.trigger,
        store_hash=store_hash,
        order_id=order_id,
        message_id=message_id_for(followed.table.logical_name, record_id, version),
        correlation_id=correlation_id,
        detail=detail[:_MAX_DETAIL],
        traceparent=traceparent,
    )


def row_message(
    table: str,
    row: Mapping[str, object],
    *,
    settings: Settings,
    correlation_id: str,
    detail: str = "",
    traceparent: str | None = None,
) -> OutboundMessage | Skipped:
    """The order message for one row read from the Web API (change tracking), or why none."""
    followed = FOLLOWED.get(table)
    if followed is None:
        return Skipped(f"{table}: not a table the connector follows")
    record_id = _guid(row.get(followed.table.primary_id))
    if record_id is None:
        return Skipped(f"{table}: the row has no {followed.table.primary_id}")
    found = order_of(row)
    if found is None:
        return Skipped(f"{table} {record_id}: no BigCommerce order on the row")
    store_hash, order_id = found
    if settings.store(store_hash) is None:
        return Skipped(f"{table} {record_id}: store {store_hash} is not served here")
    if followed.relevant(row) is False:
        return Skipped(f"{table} {record_id}: a change the lifecycle does not act on")
    version = change_version(row)
    if version is None:
        return Skipped(f"{table} {record_id}: the row has no versionnumber or modifiedon")
    return change_message(
        followed,
        record_id,
        store_hash,
        order_id,
        version,
        correlation_id=correlation_id,
        detail=detail or f"{table} changed (version {version})",
        traceparent=traceparent,
    )


# -- the service endpoint path ------------------------------------------------------------------


class DataverseChanges:
    """Forwards service endpoint messages from `dataverse-events` into the orders' sessions."""

    def __init__(
        self,
        settings: Settings,
        sender: MessageSender,
        rows: RowReader,
        *,
        new_id: Callable[[], str],
    ) -> None:
        self._settings = settings
        self._sender = sender
        self._rows = rows
        self._new_id = new_id

    async def receive(
        self,
        body: bytes,
        *,
        message_id: str | None = None,
        content_type: str | None = None,
        properties: Mapping[str, object] | Mapping[bytes, object] | None = None,
        delivery_count: int | None = None,
    ) -> Outcome:
        """One `dataverse-events` message. An unreadable body is logged and re-raised: the
        trigger abandons it until Service Bus dead-letters it (functions/dataverse_events.py)."""
        try:
            change = parse_remote_context(body, properties=properties, content_type=content_type)
        except RemoteContextError as exc:
            log.error(
                "unreadable Dataverse service endpoint message: %s",
                exc,
                extra={
                    "message_id": message_id,
                    "delivery_count": delivery_count,
                    "content_type": content_type,
                },
            )
            raise
        return await self.forward(change)

    async def forward(self, change: EntityChange) -> Outcome:
        correlation_id = change.correlation_id or self._new_id()
        traceparent = correlation.child_traceparent(correlation.current().get("traceparent"))
        with correlation.bind(correlation_id=correlation_id, traceparent=traceparent):
            outcome = await self._forward(change, correlation_id, traceparent)
            fields: dict[str, object] = {
                "dv_table": change.entity,
                "dv_row": str(change.record_id),
                "dv_message": change.message_name,
                "dv_depth": change.depth,
            }
            if isinstance(outcome, Skipped):
                log.info("Dataverse change skipped: %s", outcome.reason, extra=fields)
            else:
                with correlation.bind(store_hash=outcome.store_hash, order_id=outcome.order_id):
                    log.info(
                        "Dataverse change forwarded to %s",
                        outcome.session_id,
                        extra={**fields, "message_id": outcome.message_id},
                    )
            return outcome

    async def _forward(
        self, change: EntityChange, correlation_id: str, traceparent: str
    ) -> Outcome:
        followed = FOLLOWED.get(change.entity)
        if followed is None:
            return Skipped(f"{change.entity}: not a table the connector follows")
        table = followed.table
        row: Mapping[str, object] = change.attributes
        found = order_of(row)
        if found is None or followed.relevant(row) is None:
            # The image does not name the order or show what changed (a narrow image, or a body
            # over 192 KB): one read.
            try:
                retrieved = await self._rows.retrieve(
                    table.entity_set,
                    change.record_id,
                    select=(*KEY_COLUMNS, *followed.relevance_columns),
                )
            except NotFoundError:
                return Skipped(f"{change.entity} {change.record_id}: the row no longer exists")
            row = {**(retrieved.row or {}), **{k: v for k, v in row.items() if v is not None}}
            found = order_of(row)
        if found is None:
            return Skipped(f"{change.entity} {change.record_id}: no BigCommerce order on the row")
        store_hash, order_id = found
        if self._settings.store(store_hash) is None:
            return Skipped(
                f"{change.entity} {change.record_id}: store {store_hash} is not served here"
            )
        if followed.relevant(row) is False:
            return Skipped(f"{change.entity} {change.record_id}: a change the lifecycle ignores")
        version = change_version(
            row, row_version=change.row_version, fallback=change.operation_id
        ) or str(change.record_id)
        message = change_message(
            followed,
            change.record_id,
            store_hash,
            order_id,
            version,
            correlation_id=correlation_id,
            detail=_detail(change),
            traceparent=traceparent,
        )
        await self._sender.send(ORDER_EVENTS.name, [message])
        assert message.session_id is not None
        return Forwarded(
            message.message_id, message.session_id, followed.trigger, store_hash, order_id
        )


def _detail(change: EntityChange) -> str:
    columns = changed_columns(change)
    text = f"{change.message_name} {change.entity}"
    return f"{text}: {', '.join(columns)}" if columns else text


def _etag_version(etag: object) -> str | None:
    if not isinstance(etag, str):
        return None
    text = etag.removeprefix("W/").strip('"')
    return text if text.isdigit() else None


def _utc(value: object) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def _guid(value: object) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
