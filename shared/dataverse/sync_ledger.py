"""`SyncLedger` (shared/reconciliation/ports.py) over the Dataverse Web API: what the connector
recorded, read in bulk for the reconciliation sweep.

Requests, because each counts against the service protection limits:
- `orders`: ONE query per page of BigCommerce orders (up to 250 ids):
  `salesorders?$select=bciom_bcorderid,bciom_bcstatusid,bciom_bcdatemodified,statecode&
  $filter=(bciom_storehash eq '<store>') and (Microsoft.Dynamics.CRM.In(PropertyName=
  'bciom_bcorderid',PropertyValues=['250',…]))` (the query function takes every value as a
  string, whatever the column's type; webapi/query/filter-rows.md). 250 short ids keep the URL
  near 3 KB, far below the Web API's limit; more than `IN_LIMIT` ids are split, one query each.
- `refunds`: the same on `bciom_orderrefunds` by `bciom_refundid`.
- `pending_changes`: two queries, each filtered on `modifiedon` within the window: fulfillment
  orders shipped without a BigCommerce shipment id and not cancelled, and salesorders cancelled
  in Dataverse (statecode 2) whose recorded BigCommerce status is not a cancelled one (and whose
  lifecycle is not `cancelled`: those the connector cancelled after BigCommerce did). Without IOM
  the fulfillment table does not exist (404): there are then no fulfillment changes.
Every query follows `@odata.nextLink` to the end.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from shared.dataverse.client import DataverseClient
from shared.dataverse.errors import NotFoundError
from shared.dataverse.models import Page, Row
from shared.dataverse.odata import all_of, eq, filter_literal
from shared.dataverse.references import chunks, in_filter
from shared.dataverse.schema import FULFILLMENT_ORDER, ORDER_REFUND, PREFIX, SALESORDER, STORE_HASH
from shared.reconciliation.ports import ChangeKind, PendingChange, RecordedOrder

IN_LIMIT: Final = 250  # ids per In(...) query: one BigCommerce page
PAGE_SIZE: Final = 5000
CANCELLED_STATECODE: Final = 2
# BigCommerce statuses that mean the order is cancelled there: Cancelled, Declined.
DEFAULT_CANCELLED_STATUSES: Final = (5, 6)
CANCELLED_LIFECYCLE: Final = "cancelled"

_ORDER_ID: Final = PREFIX + "bcorderid"
_STATUS_ID: Final = PREFIX + "bcstatusid"
_DATE_MODIFIED: Final = PREFIX + "bcdatemodified"
_REFUND_ID: Final = PREFIX + "refundid"
_ORDER_COLUMNS: Final = (SALESORDER.primary_id, _ORDER_ID, _STATUS_ID, _DATE_MODIFIED, "statecode")
_FULFILLMENT_COLUMNS: Final = (
    FULFILLMENT_ORDER.primary_id,
    _ORDER_ID,
    PREFIX + "fulfillmentkey",
    "versionnumber",
    "modifiedon",
)
_CANCELLED_COLUMNS: Final = (
    SALESORDER.primary_id,
    _ORDER_ID,
    _STATUS_ID,
    "versionnumber",
    "modifiedon",
)


class DataverseSyncLedger:
    """Reads only; holds nothing but the client, so one per process or per call is the same."""

    def __init__(
        self,
        client: DataverseClient,
        *,
        cancelled_statuses: Sequence[int] = DEFAULT_CANCELLED_STATUSES,
    ) -> None:
        self.client = client
        self._cancelled_statuses = tuple(cancelled_statuses)

    def __repr__(self) -> str:
        return f"DataverseSyncLedger({self.client!r})"

    async def orders(
        self, store_hash: str, order_ids: Collection[int]
    ) -> Mapping[int, RecordedOrder]:
        found: dict[int, RecordedOrder] = {}
        for row in await self._in_query(
            SALESORDER.entity_set, _ORDER_COLUMNS, store_hash, _ORDER_ID, order_ids
        ):
            order_id = _int(row.get(_ORDER_ID))
            if order_id is None:
                continue
            found[order_id] = RecordedOrder(
                order_id=order_id,
                bc_status_id=_int(row.get(_STATUS_ID)),
                bc_date_modified=_datetime(row.get(_DATE_MODIFIED)),
                statecode=_int(row.get("statecode")) or 0,
            )
        return found

    async def refunds(self, store_hash: str, refund_ids: Collection[int]) -> set[int]:
        rows = await self._in_query(
            ORDER_REFUND.entity_set, (_REFUND_ID,), store_hash, _REFUND_ID, refund_ids
        )
        return {refund_id for row in rows if (refund_id := _int(row.get(_REFUND_ID))) is not None}

    async def pending_changes(
        self, store_hash: str, *, modified_from: datetime, modified_before: datetime
    ) -> list[PendingChange]:
        window = (
            f"modifiedon ge {filter_literal(modified_from)}",
            f"modifiedon lt {filter_literal(modified_before)}",
        )
        store = eq(STORE_HASH.logical_name, store_hash)
        changes: list[PendingChange] = []
        shipped = all_of(
            store,
            eq(PREFIX + "shipped", True),
            f"{PREFIX}bcshipmentid eq null",
            f"{PREFIX}cancelled eq false or {PREFIX}cancelled eq null",
            *window,
        )
        try:
            fulfillments = await self._rows(
                FULFILLMENT_ORDER.entity_set, _FULFILLMENT_COLUMNS, shipped
            )
        except NotFoundError:
            fulfillments = []  # IOM is not installed: no fulfillment orders
        for row in fulfillments:
            change = _change(
                row,
                ChangeKind.SHIPMENT,
                FULFILLMENT_ORDER.logical_name,
                FULFILLMENT_ORDER.primary_id,
                detail=str(row.get(PREFIX + "fulfillmentkey") or ""),
            )
            if change is not None:
                changes.append(change)
        not_cancelled_in_bigcommerce = " and ".join(
            f"{_STATUS_ID} ne {status}" for status in self._cancelled_statuses
        )
        lifecycle = PREFIX + "lifecycle"
        cancelled = all_of(
            store,
            eq("statecode", CANCELLED_STATECODE),
            f"{_STATUS_ID} eq null"
            + (f" or ({not_cancelled_in_bigcommerce})" if not_cancelled_in_bigcommerce else ""),
            f"{lifecycle} eq null or {lifecycle} ne {filter_literal(CANCELLED_LIFECYCLE)}",
            *window,
        )
        for row in await self._rows(SALESORDER.entity_set, _CANCELLED_COLUMNS, cancelled):
            change = _change(
                row,
                ChangeKind.CANCELLATION,
                SALESORDER.logical_name,
                SALESORDER.primary_id,
                detail=f"BigCommerce status {row.get(_STATUS_ID)}",
            )
            if change is not None:
                changes.append(change)
        return changes

    # -- queries ------------------------------------------------------------------------------

    async def _in_query(
        self,
        entity_set: str,
        select: Sequence[str],
        store_hash: str,
        column: str,
        ids: Collection[int],
    ) -> list[Row]:
        values = sorted({str(i) for i in ids}, key=lambda v: (len(v), v))
        rows: list[Row] = []
        for chunk in chunks(values, IN_LIMIT):
            condition = all_of(eq(STORE_HASH.logical_name, store_hash), in_filter(column, chunk))
            rows.extend(await self._rows(entity_set, select, condition))
        return rows

    async def _rows(self, entity_set: str, select: Sequence[str], condition: str) -> list[Row]:
        page: Page | None = await self.client.query(
            entity_set, select=select, filter=condition, page_size=PAGE_SIZE
        )
        rows: list[Row] = []
        while page is not None:
            rows.extend(page.rows)
            page = await self.client.next_page(page)
        return rows


def _change(
    row: Mapping[str, Any], kind: ChangeKind, table: str, primary_id: str, *, detail: str
) -> PendingChange | None:
    order_id = _int(row.get(_ORDER_ID))
    row_id = row.get(primary_id)
    if order_id is None or row_id is None:
        return None
    return PendingChange(
        kind=kind,
        table=table,
        row_id=str(row_id),
        version=str(row.get("versionnumber") or row.get("modifiedon") or ""),
        order_id=order_id,
        modified_on=_datetime(row.get("modifiedon")),
        detail=detail,
    )


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _datetime(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
