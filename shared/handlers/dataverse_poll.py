"""The Dataverse change poll: change tracking instead of a service endpoint.

Why: registering a Service Bus service endpoint needs the Plugin Registration Tool and a
Dataverse administrator; many tenants will not have one at install time. Change tracking needs
neither, only `ChangeTrackingEnabled` on `msdyn_fulfillmentorder` and `salesorder` (and
organization-level read on them). So the default source (`DATAVERSE_CHANGE_SOURCE=poll`) is this
poll, run by a timer (`DATAVERSE_POLL_SCHEDULE`, every 30 s by default); with
`service_endpoint` the timer still fires but does nothing.

Each run, for each followed table: read the changes since the stored delta link
(`DataverseClient.changes_since`; https://learn.microsoft.com/power-apps/developer/data-platform/use-change-tracking-synchronize-data-external-systems),
turn each changed row into the same order message the service endpoint path sends
(`dataverse_changes.row_message`: same trigger, same session, same message id for the same row
version, so a change seen by both paths is one message), send them to `order-events`, and only
then store the new delta link. A crash between the sends and the save re-reads the same changes
next time; their messages carry the same ids and the broker drops them. Deleted rows are not
forwarded (they no longer name an order).

Checkpoints live in Dataverse itself, in `bciom_syncstate` (`bciom_name` → `bciom_value`,
upserted by the `bciom_name` alternate key): the function app keeps no state of its own, and
every instance sees the same checkpoint. Names are `dataverse-poll.<entity set>` (no `:` or `/`,
which Dataverse cannot address in a key value).

The first run of a table, with no checkpoint, starts tracking from now: it reads the table once
to obtain a delta link, stores it and forwards nothing, because every existing row would
otherwise look like a fresh change (the reconciliation timer covers the past). The same happens
when the stored link is refused (older than the organization's ExpireChangeTrackingInDays): the
poll logs a warning and starts again from now.

Only the columns that matter are selected: the order's key (`bciom_storehash`,
`bciom_bcorderid`), `versionnumber` and `modifiedon` (the message id), and what says what
happened (shipped, cancelled, tracking; the order's state and status). Change tracking refuses
`$filter`, so every changed row comes back and rows without a BigCommerce order are skipped here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from shared.config import Settings
from shared.dataverse import schema
from shared.dataverse.errors import BadRequestError, DataverseError, NotFoundError
from shared.dataverse.models import Changes, Retrieved, RowKey, WriteResult
from shared.handlers.dataverse_changes import (
    FOLLOWED,
    KEY_COLUMNS,
    FollowedTable,
    Skipped,
    row_message,
)
from shared.messaging.message import OutboundMessage
from shared.messaging.ports import MessageSender, SendError
from shared.messaging.queues import ORDER_EVENTS
from shared.observability import correlation

log = logging.getLogger("connector.dataverse_poll")

CHECKPOINT_PREFIX: Final = "dataverse-poll."
SYNC_STATE: Final = schema.SYNC_STATE
SYNC_STATE_NAME: Final = schema.PREFIX + "name"
SYNC_STATE_VALUE: Final = schema.PREFIX + "value"
SEND_BATCH: Final = 100


def _select(table: schema.Table, wanted: Sequence[str]) -> tuple[str, ...]:
    """The key columns and those of `wanted` the schema declares (a renamed column must not turn
    every poll into a 400)."""
    declared = {column.logical_name for column in table.columns}
    return (*KEY_COLUMNS, table.primary_id, *(name for name in wanted if name in declared))


@dataclass(frozen=True, slots=True)
class PolledTable:
    followed: FollowedTable
    select: tuple[str, ...]

    @property
    def entity_set(self) -> str:
        return self.followed.table.entity_set

    @property
    def logical_name(self) -> str:
        return self.followed.table.logical_name

    @property
    def checkpoint(self) -> str:
        return CHECKPOINT_PREFIX + self.entity_set


_P = schema.PREFIX
POLLED: Final[tuple[PolledTable, ...]] = (
    PolledTable(
        FOLLOWED[schema.FULFILLMENT_ORDER.logical_name],
        _select(
            schema.FULFILLMENT_ORDER,
            tuple(
                _P + n
                for n in ("shipped", "cancelled", "trackingnumber", "carrier", "bcshipmentid")
            ),
        ),
    ),
    PolledTable(
        FOLLOWED[schema.SALESORDER.logical_name],
        _select(schema.SALESORDER, ("statecode", "statuscode")),
    ),
)


class ChangeReader(Protocol):
    """What the poll needs of `DataverseClient`: change tracking."""

    async def start_tracking(
        self, entity_set: str, *, select: Sequence[str], page_size: int | None = None
    ) -> Changes: ...

    async def changes_since(self, delta_link: str, *, page_size: int | None = None) -> Changes: ...


class CheckpointStore(Protocol):
    async def load(self, name: str) -> str | None: ...

    async def save(self, name: str, value: str) -> None: ...


class SyncStateClient(Protocol):
    """What `DataverseCheckpoints` needs of `DataverseClient`."""

    async def retrieve(
        self, entity_set: str, key: RowKey, *, select: Sequence[str]
    ) -> Retrieved: ...

    async def upsert(
        self, entity_set: str, key: RowKey, row: Mapping[str, object]
    ) -> WriteResult: ...


class DataverseCheckpoints:
    """Checkpoints as `bciom_syncstate` rows, read and upserted by their `bciom_name` key."""

    def __init__(self, client: SyncStateClient) -> None:
        self._client = client

    async def load(self, name: str) -> str | None:
        try:
            retrieved = await self._client.retrieve(
                SYNC_STATE.entity_set, {SYNC_STATE_NAME: name}, select=[SYNC_STATE_VALUE]
            )
        except NotFoundError:
            return None
        value = (retrieved.row or {}).get(SYNC_STATE_VALUE)
        return value if isinstance(value, str) and value else None

    async def save(self, name: str, value: str) -> None:
        await self._client.upsert(
            SYNC_STATE.entity_set, {SYNC_STATE_NAME: name}, {SYNC_STATE_VALUE: value}
        )


class PollError(Exception):
    """A table could not be polled; the message names each table and why (one line)."""


@dataclass(frozen=True, slots=True)
class TableReport:
    entity_set: str
    started: bool = False  # no checkpoint (or an expired one): tracking starts from now
    changed: int = 0
    forwarded: int = 0
    skipped: int = 0
    deleted: int = 0


@dataclass(frozen=True, slots=True)
class PollReport:
    enabled: bool
    tables: tuple[TableReport, ...] = ()


class DataversePoll:
    def __init__(
        self,
        settings: Settings,
        reader: ChangeReader,
        sender: MessageSender,
        checkpoints: CheckpointStore,
        *,
        new_id: Callable[[], str],
        tables: Sequence[PolledTable] = POLLED,
        send_batch: int = SEND_BATCH,
    ) -> None:
        self._settings = settings
        self._reader = reader
        self._sender = sender
        self._checkpoints = checkpoints
        self._new_id = new_id
        self._tables = tuple(tables)
        self._send_batch = max(1, send_batch)

    async def run(self) -> PollReport:
        """One poll of every followed table; PollError (after trying all) if any failed."""
        if self._settings.dataverse_change_source != "poll":
            log.debug("Dataverse change poll off: DATAVERSE_CHANGE_SOURCE is service_endpoint")
            return PollReport(enabled=False)
        correlation_id = self._new_id()
        traceparent = correlation.child_traceparent(correlation.current().get("traceparent"))
        reports: list[TableReport] = []
        failures: list[str] = []
        with correlation.bind(correlation_id=correlation_id, traceparent=traceparent):
            for table in self._tables:
                try:
                    reports.append(await self._poll(table, correlation_id, traceparent))
                except (DataverseError, SendError, PollError) as exc:
                    log.error("Dataverse change poll of %s failed: %s", table.entity_set, exc)
                    failures.append(f"{table.entity_set}: {exc}")
        if failures:
            raise PollError("; ".join(failures))
        return PollReport(enabled=True, tables=tuple(reports))

    async def _poll(self, table: PolledTable, correlation_id: str, traceparent: str) -> TableReport:
        link = await self._checkpoints.load(table.checkpoint)
        if link is None:
            return await self._start(table, "no checkpoint yet")
        try:
            changes = await self._reader.changes_since(link)
        except BadRequestError as exc:
            # An expired (ExpireChangeTrackingInDays) or otherwise refused delta token.
            log.warning(
                "the stored %s delta link was refused (%s); changes since the last poll are "
                "left to reconciliation",
                table.entity_set,
                exc,
            )
            return await self._start(table, "the delta link was refused")
        messages: list[OutboundMessage] = []
        skipped = 0
        for row in changes.rows:
            outcome = row_message(
                table.logical_name,
                row,
                settings=self._settings,
                correlation_id=correlation_id,
                traceparent=traceparent,
            )
            if isinstance(outcome, Skipped):
                skipped += 1
                log.info("Dataverse change skipped: %s", outcome.reason)
            else:
                messages.append(outcome)
        for start in range(0, len(messages), self._send_batch):
            await self._sender.send(ORDER_EVENTS.name, messages[start : start + self._send_batch])
        # Only now, with every message of this delta accepted by the broker, move the checkpoint.
        if changes.delta_link and changes.delta_link != link:
            await self._checkpoints.save(table.checkpoint, changes.delta_link)
        report = TableReport(
            table.entity_set,
            changed=len(changes.rows),
            forwarded=len(messages),
            skipped=skipped,
            deleted=len(changes.deleted),
        )
        if changes.rows or changes.deleted:
            log.info(
                "Dataverse change poll of %s: %d changed, %d forwarded, %d skipped, %d deleted",
                table.entity_set,
                report.changed,
                report.forwarded,
                report.skipped,
                report.deleted,
            )
        return report

    async def _start(self, table: PolledTable, why: str) -> TableReport:
        changes = await self._reader.start_tracking(table.entity_set, select=table.select)
        if changes.delta_link is None:
            raise PollError(
                f"{table.logical_name} does not track changes: enable change tracking on the table"
            )
        await self._checkpoints.save(table.checkpoint, changes.delta_link)
        log.info(
            "Dataverse change poll of %s starts from now (%s): %d existing rows not forwarded",
            table.entity_set,
            why,
            len(changes.rows),
        )
        return TableReport(table.entity_set, started=True)
