"""The order lifecycle's Dataverse adapter: `OrderStore` and `OrderWrites`
(`shared/orchestration/ports.py`) over the Web API client.

Requests, because every one counts against the service protection limits and adds latency to a
message's processing:
- `load` is ONE `$batch` of three GETs (no change set, GET is not allowed in one): the salesorder
  with `$expand=order_details`, its fulfillment orders with `$expand` of their lines
  (`msdyn_fulfillmentorder_details`), and its refunds; each filtered by store and BigCommerce
  order id, so a missing order is an empty answer, not an error. Without IOM installed the
  fulfillment set does not exist (404): the order then has no fulfillment orders.
- `existing_products` and `inventory` are one query each (`Microsoft.Dynamics.CRM.In` over the
  values, chunked; several chunks go as one `$batch`).
- `writes().commit()` sends everything staged as ONE change set in ONE `$batch`: all or nothing.
  Close actions go last, after the updates of the same order (Sales treats a closed order as
  read-only, so an update behind the close could be refused).
  Before it, and only when something is not known yet, one more request resolves what the
  staged intakes bind to by id (price list, unit, currency) and which of their products exist;
  both are remembered per process (`references.py`), so in steady state a commit is one request.

With a coalescer (`coalescing.py`, `CONNECTOR_BATCHING=adaptive`), concurrent orders' loads and
commits share `$batch` requests when many are pending: each order still gets its own answers, and
its change set still succeeds or fails as a whole, alone (continue-on-error).

The contract between `existing_products` and `intake`: an intake line is bound to its product
only when the product is known to exist, and otherwise written as a write-in line
(`order_rows.py`). Call `existing_products` first (the sync and validation steps do; validation
decides on it whether to hold the order): its answer is what the next commit uses, found products
for the life of the process, missing ones for a minute. Products nobody asked about are looked up
by the commit.

A commit that fails raises the Dataverse error of the failing operation (nothing of the change
set was written) and keeps what was staged, so the same unit may be committed again; a failure
that names a missing row (404) also forgets the remembered ids, in case one of them was deleted.
Commits are fenced per order (`guard`, optimistic concurrency, `order_rows.fence`): in a change
set with anything but journal entries, the first write of the salesorder carries `If-Match` its
version as the run read it (an empty PATCH first when the change set has none), so that a run
whose read is out of date (another run of the same order got the message after its lock
expired, or a user changed the order) writes nothing and fails with `ConcurrencyError` (412); a
run that found no salesorder creates it only if it still does not exist (`If-None-Match: *`).
The last write of the salesorder answers with its new version, which guards the run's next
commit. Nothing is read again, and at most one operation is added.
A change set closing an order that was closed meanwhile (by a user, or by another run of the same
order whose message came back when its lock expired) is refused by Dataverse with a 400; the
commit then reads the order's state, and raises `ConcurrencyError` (transient: the next run
reads the closed order and has nothing left to do) instead of a 400 that would park the order.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

from shared.bigcommerce.models import Refund
from shared.dataverse.batch import BatchItem, BatchOperation, ChangeSet, ItemResult
from shared.dataverse.client import DataverseClient
from shared.dataverse.coalescing import BatchCoalescer
from shared.dataverse.errors import (
    ClientError,
    ConcurrencyError,
    DataverseError,
    DuplicateKeyError,
    NotFoundError,
    PreconditionFailedError,
    ResponseFormatError,
)
from shared.dataverse.odata import all_of, eq, with_query
from shared.dataverse.order_rows import (
    close_operation,
    fence,
    fulfillment_operations,
    intake_operations,
    intake_unknowns,
    journal_operation,
    refund_operations,
    update_fulfillment_operation,
    update_line_operation,
    update_order_operation,
)
from shared.dataverse.references import (
    ProductCatalog,
    ReferenceIds,
    chunks,
    in_filter,
    rows_of,
)
from shared.dataverse.schema import (
    FULFILLMENT_ORDER,
    FULFILLMENT_ORDER_DETAIL,
    INVENTORY_LEVEL,
    ORDER_REFUND,
    PREFIX,
    SALESORDER,
    SALESORDERDETAIL,
    STORE_HASH,
)
from shared.mapping.order import OrderIntake
from shared.mapping.rows import Reference
from shared.orchestration.ports import JournalEntry, PlannedFulfillment
from shared.orchestration.records import (
    FulfillmentLineRecord,
    FulfillmentRecord,
    Lifecycle,
    LineRecord,
    RefundRecord,
    SalesOrderRecord,
)

log = logging.getLogger("connector.dataverse")

_ORDER_COLUMNS: Final = (
    SALESORDER.primary_id,
    PREFIX + "lifecycle",
    PREFIX + "bcstatusid",
    PREFIX + "bcdatemodified",
    PREFIX + "holdreason",
    "statecode",
    "statuscode",
)
_LINE_COLUMNS: Final = (
    SALESORDERDETAIL.primary_id,
    PREFIX + "bcorderproductid",
    PREFIX + "sku",
    "quantity",
    "quantityshipped",
    "quantitycancelled",
)
_FULFILLMENT_COLUMNS: Final = (
    FULFILLMENT_ORDER.primary_id,
    PREFIX + "fulfillmentkey",
    PREFIX + "source",
    PREFIX + "shipped",
    PREFIX + "cancelled",
    PREFIX + "trackingnumber",
    PREFIX + "carrier",
    PREFIX + "bcshipmentid",
)
_FULFILLMENT_LINE_COLUMNS: Final = (
    PREFIX + "linekey",
    PREFIX + "bcorderproductid",
    PREFIX + "quantity",
    PREFIX + "quantityshipped",
)
_REFUND_COLUMNS: Final = (PREFIX + "refundid", PREFIX + "totalamount")
_INVENTORY_COLUMNS: Final = (PREFIX + "source", PREFIX + "sku", PREFIX + "available")
_ORDER_LINES: Final = next(n for n, t in SALESORDER.collections.items() if t == "salesorderdetail")
_FULFILLMENT_LINES: Final = next(
    n
    for n, t in FULFILLMENT_ORDER.collections.items()
    if t == FULFILLMENT_ORDER_DETAIL.logical_name
)


class DataverseOrderStore:
    """`OrderStore` over one Dataverse environment. Keep one per process (the composition root
    does): it remembers reference ids and which products exist."""

    def __init__(
        self,
        client: DataverseClient,
        *,
        products: ProductCatalog | None = None,
        references: ReferenceIds | None = None,
        coalescer: BatchCoalescer | None = None,
    ) -> None:
        self.client = client
        self.products = products or ProductCatalog()
        self.references = references or ReferenceIds()
        self.coalescer = coalescer

    def __repr__(self) -> str:
        return f"DataverseOrderStore({self.client!r})"

    # -- reads --------------------------------------------------------------------------------

    async def load(self, store_hash: str, order_id: int) -> SalesOrderRecord | None:
        """The salesorder with its lines, fulfillment orders and refunds, in one request."""
        of_order = all_of(
            eq(STORE_HASH.logical_name, store_hash), eq(PREFIX + "bcorderid", order_id)
        )
        order = with_query(
            SALESORDER.entity_set,
            {
                "$select": _ORDER_COLUMNS,
                "$filter": of_order,
                "$expand": f"{_ORDER_LINES}($select={','.join(_LINE_COLUMNS)})",
            },
        )
        fulfillments = with_query(
            FULFILLMENT_ORDER.entity_set,
            {
                "$select": _FULFILLMENT_COLUMNS,
                "$filter": of_order,
                "$expand": f"{_FULFILLMENT_LINES}($select={','.join(_FULFILLMENT_LINE_COLUMNS)})",
            },
        )
        refunds = with_query(
            ORDER_REFUND.entity_set, {"$select": _REFUND_COLUMNS, "$filter": of_order}
        )
        order_item, fulfillment_item, refund_item = await self._execute(
            [BatchOperation("GET", url) for url in (order, fulfillments, refunds)],
            continue_on_error=True,
        )
        orders = rows_of(_body(order_item), SALESORDER.entity_set)
        if not orders:
            return None
        if len(orders) > 1:
            raise ResponseFormatError(
                f"{len(orders)} salesorders for store {store_hash} order {order_id}",
                method="GET",
                path=SALESORDER.entity_set,
            )
        fulfillment_rows: list[dict[str, Any]] = []
        if not _missing_table(fulfillment_item):
            fulfillment_rows = await self._all_rows(
                _body(fulfillment_item), FULFILLMENT_ORDER.entity_set
            )
        refund_rows = await self._all_rows(_body(refund_item), ORDER_REFUND.entity_set)
        return _order_record(store_hash, order_id, orders[0], fulfillment_rows, refund_rows)

    async def existing_products(self, product_numbers: Collection[str]) -> set[str]:
        """Which of these product numbers Dataverse has (as given; compared case-insensitively).
        Found ones are remembered for the process; the others are asked again every time."""
        asked = list(dict.fromkeys(n for n in product_numbers if n))
        present = {n for n in asked if self.products.exists(n) is True}
        unknown = [n for n in asked if n not in present]
        if unknown:
            bodies = await self._get_all(self.products.requests(unknown))
            present |= self.products.read(unknown, bodies)
        return present

    async def inventory(self, skus: Collection[str]) -> Mapping[tuple[str, str], Decimal]:
        """Available quantity by (source, sku) from bciom_inventorylevel, the skus as asked."""
        asked = {s.casefold(): s for s in skus if s}
        urls = [
            with_query(
                INVENTORY_LEVEL.entity_set,
                {"$select": _INVENTORY_COLUMNS, "$filter": in_filter(PREFIX + "sku", chunk)},
            )
            for chunk in chunks(sorted(asked.values()))
        ]
        levels: dict[tuple[str, str], Decimal] = {}
        for body in await self._get_all(urls):
            for row in rows_of(body, INVENTORY_LEVEL.entity_set):
                source, sku = row.get(PREFIX + "source"), row.get(PREFIX + "sku")
                available = _decimal_or_none(row.get(PREFIX + "available"))
                if not isinstance(source, str) or not isinstance(sku, str) or available is None:
                    continue
                levels[(source, asked.get(sku.casefold(), sku))] = available
        return levels

    async def statecode(self, store_hash: str, order_id: int) -> int | None:
        """The salesorder's statecode (0 open, 2 cancelled, 3 fulfilled...); None if missing."""
        of_order = all_of(
            eq(STORE_HASH.logical_name, store_hash), eq(PREFIX + "bcorderid", order_id)
        )
        url = with_query(SALESORDER.entity_set, {"$select": "statecode", "$filter": of_order})
        rows = rows_of(_json((await self.client.request("GET", url)).json(), url), url)
        state = rows[0].get("statecode") if rows else None
        return state if isinstance(state, int) else None

    def writes(self) -> DataverseOrderWrites:
        return DataverseOrderWrites(self)

    def forget(self) -> None:
        """Drops the remembered reference ids and products (after a bind to a missing row)."""
        self.references.clear()
        self.products.clear()

    # -- helpers ------------------------------------------------------------------------------

    async def _execute(
        self, items: Sequence[BatchItem], *, continue_on_error: bool
    ) -> tuple[ItemResult, ...]:
        """One `$batch` of `items`; with a coalescer, possibly shared with other orders' items
        (see `coalescing.py`), the answers being the same."""
        if self.coalescer is not None:
            return await self.coalescer.submit(items, continue_on_error=continue_on_error)
        result = await self.client.execute_batch(items, continue_on_error=continue_on_error)
        return result.items

    async def _get_all(self, urls: Sequence[str]) -> list[dict[str, Any]]:
        """The JSON of each GET, in order, every page: one request alone, else one `$batch`."""
        if not urls:
            return []
        if len(urls) == 1:
            response = await self.client.request("GET", urls[0])
            first = [_json(response.json(), urls[0])]
        else:
            result = await self.client.execute_batch([BatchOperation("GET", u) for u in urls])
            first = [_body(item) for item in result.items]
        return [{"value": await self._all_rows(body, "query")} for body in first]

    async def _all_rows(self, body: dict[str, Any], what: str) -> list[dict[str, Any]]:
        rows = rows_of(body, what)
        link = body.get("@odata.nextLink")
        while isinstance(link, str) and link:
            response = await self.client.request("GET", link)
            page = _json(response.json(), what)
            rows.extend(rows_of(page, what))
            link = page.get("@odata.nextLink")
        return rows

    async def _resolve(self, intakes: Sequence[OrderIntake]) -> None:
        """Looks up, in one request, what the intakes bind by id and which of their products
        exist, where not known yet."""
        references: dict[str, Reference] = {}
        numbers: dict[str, str] = {}
        for intake in intakes:
            unknown_refs, unknown_numbers = intake_unknowns(intake, self.references, self.products)
            for reference in unknown_refs:
                references.setdefault(repr(reference), reference)
            numbers.update((n.casefold(), n) for n in unknown_numbers)
        wanted = list(references.values())
        product_urls = self.products.requests(list(numbers.values()))
        bodies = await self._get_all([self.references.request(r) for r in wanted] + product_urls)
        for reference, body in zip(wanted, bodies[: len(wanted)], strict=True):
            self.references.read(reference, body)
        if numbers:
            self.products.read(list(numbers.values()), bodies[len(wanted) :])


class DataverseOrderWrites:
    """`OrderWrites`: staged operations for one change set. Not safe to share between tasks."""

    def __init__(self, store: DataverseOrderStore) -> None:
        self._store = store
        self._staged: list[BatchOperation | OrderIntake] = []
        self._closing: list[BatchOperation] = []
        self._closing_orders: list[tuple[str, int]] = []
        self._business = False  # something but journal entries is staged
        self._guarded: tuple[str, int] | None = None  # the order whose salesorder guards commits
        self._etag: str | None = None

    def guard(self, store_hash: str, order_id: int, etag: str | None) -> None:
        self._guarded, self._etag = (store_hash, order_id), etag

    def unguard(self) -> None:
        self._guarded, self._etag = None, None

    @property
    def version(self) -> str | None:
        return self._etag

    def intake(self, intake: OrderIntake) -> None:
        """Customer (and account), salesorder and lines; lookups are bound at commit, products
        that do not exist as write-in lines (see the module docstring)."""
        self._staged.append(intake)
        self._business = True

    def update_order(
        self,
        store_hash: str,
        order_id: int,
        *,
        lifecycle: Lifecycle | None = None,
        hold_reason: str | None = None,
        clear_hold: bool = False,
        bc_status_id: int | None = None,
        bc_date_modified: datetime | None = None,
    ) -> None:
        self._add(
            update_order_operation(
                store_hash,
                order_id,
                lifecycle=lifecycle,
                hold_reason=hold_reason,
                clear_hold=clear_hold,
                bc_status_id=bc_status_id,
                bc_date_modified=bc_date_modified,
            )
        )

    def update_line(
        self,
        store_hash: str,
        order_product_id: int,
        *,
        quantity_shipped: Decimal | None = None,
        quantity_cancelled: Decimal | None = None,
    ) -> None:
        self._add(
            update_line_operation(
                store_hash,
                order_product_id,
                quantity_shipped=quantity_shipped,
                quantity_cancelled=quantity_cancelled,
            )
        )

    def create_fulfillments(
        self, store_hash: str, order_id: int, plans: Sequence[PlannedFulfillment]
    ) -> None:
        self._staged.extend(fulfillment_operations(store_hash, order_id, plans))
        self._business = True

    def update_fulfillment(
        self,
        store_hash: str,
        key: str,
        *,
        bc_shipment_id: int | None = None,
        cancelled: bool | None = None,
    ) -> None:
        self._add(
            update_fulfillment_operation(
                store_hash, key, bc_shipment_id=bc_shipment_id, cancelled=cancelled
            )
        )

    def record_refund(self, store_hash: str, order_id: int, refund: Refund) -> None:
        self._staged.extend(refund_operations(store_hash, order_id, refund))
        self._business = True

    def close_order(
        self, store_hash: str, order_id: int, how: Literal["fulfilled", "cancelled"]
    ) -> None:
        """Sent after everything else staged: the order must be updated while still open."""
        self._closing.append(close_operation(store_hash, order_id, how))
        self._closing_orders.append((store_hash, order_id))
        self._business = True

    def journal(self, entry: JournalEntry) -> None:
        self._staged.append(journal_operation(entry))

    @property
    def pending(self) -> int:
        staged = sum(len(s.rows) if isinstance(s, OrderIntake) else 1 for s in self._staged)
        return staged + len(self._closing)

    async def commit(self) -> None:
        if not self.pending:
            return
        store = self._store
        await store._resolve([s for s in self._staged if isinstance(s, OrderIntake)])
        operations: list[BatchOperation] = []
        for staged in self._staged:
            if isinstance(staged, OrderIntake):
                operations.extend(intake_operations(staged, store.references, store.products))
            else:
                operations.append(staged)
        operations.extend(self._closing)
        guarded = self._guarded if self._business else None
        creating = guarded is not None and self._etag is None
        version_at: int | None = None
        if guarded is not None:
            version_at = fence(operations, *guarded, self._etag)
        numbered = tuple(replace(op, content_id=str(n)) for n, op in enumerate(operations, 1))
        (item,) = await store._execute([ChangeSet(numbered)], continue_on_error=False)
        if not item.ok:
            error = item.error or DataverseError(
                "the change set was not executed", method="POST", path="$batch"
            )
            if creating and isinstance(error, DuplicateKeyError | PreconditionFailedError):
                raise ConcurrencyError.because_of(
                    "the salesorder was created meanwhile (by another run of the same order?); "
                    "nothing of this change set was written",
                    error,
                ) from error
            if isinstance(error, NotFoundError):
                store.forget()
            elif isinstance(error, ClientError) and self._closing_orders:
                await self._closed_meanwhile(error)
            raise error
        if self._closing:  # closed: read-only from now on
            self.unguard()
        elif version_at is not None:
            self._etag = _etag_of(item, version_at)
        self._staged.clear()
        self._closing.clear()
        self._closing_orders.clear()
        self._business = False

    async def _closed_meanwhile(self, error: ClientError) -> None:
        """Raises ConcurrencyError if an order this change set closes is no longer open."""
        for store_hash, order_id in self._closing_orders:
            state = await self._store.statecode(store_hash, order_id)
            if state not in (None, 0):
                raise ConcurrencyError.because_of(
                    f"salesorder of order {order_id} was closed meanwhile (statecode {state}); "
                    "nothing of this change set was written",
                    error,
                ) from error

    def _add(self, operation: BatchOperation | None) -> None:
        if operation is not None:
            self._staged.append(operation)
            self._business = True


# -- rows to records ------------------------------------------------------------------------------


def _etag_of(item: ItemResult, index: int) -> str | None:
    """The salesorder's version as the change set's operation `index` answered it."""
    answer = item.operations[index]
    body = answer.body if isinstance(answer.body, dict) else {}
    return _text(body.get("@odata.etag")) or answer.etag


def _json(body: object, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ResponseFormatError(
            f"{what}: the answer is not a JSON object", method="GET", path=what
        )
    return body


def _body(item: ItemResult) -> dict[str, Any]:
    """A batch GET's JSON answer; the Dataverse error if it failed."""
    if not item.ok:
        raise item.error or DataverseError("not executed", method="GET", path="$batch")
    operation = item.operations[0]
    return _json(operation.body, operation.operation.url.split("?", 1)[0])


def _missing_table(item: ItemResult) -> bool:
    return not item.ok and isinstance(item.error, NotFoundError)


def _decimal_or_none(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _decimal(value: object) -> Decimal:
    number = _decimal_or_none(value)
    return Decimal(0) if number is None else number


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _datetime(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _lifecycle(value: object, order_id: int) -> Lifecycle:
    if value is None or value == "":
        return Lifecycle.RECEIVED
    try:
        return Lifecycle(str(value))
    except ValueError:
        log.warning(
            "salesorder of order %s has an unknown bciom_lifecycle %r: read as received",
            order_id,
            value,
        )
        return Lifecycle.RECEIVED


def _order_record(
    store_hash: str,
    order_id: int,
    order: Mapping[str, Any],
    fulfillments: Sequence[Mapping[str, Any]],
    refunds: Sequence[Mapping[str, Any]],
) -> SalesOrderRecord:
    lines = sorted(
        (
            LineRecord(
                order_product_id=opid,
                sku=_text(row.get(PREFIX + "sku")),
                quantity=_decimal(row.get("quantity")),
                quantity_shipped=_decimal(row.get("quantityshipped")),
                quantity_cancelled=_decimal(row.get("quantitycancelled")),
            )
            for row in order.get(_ORDER_LINES) or ()
            if (opid := _int(row.get(PREFIX + "bcorderproductid"))) is not None
        ),
        key=lambda line: line.order_product_id,
    )
    return SalesOrderRecord(
        id=str(order[SALESORDER.primary_id]),
        store_hash=store_hash,
        order_id=order_id,
        lifecycle=_lifecycle(order.get(PREFIX + "lifecycle"), order_id),
        bc_status_id=_int(order.get(PREFIX + "bcstatusid")),
        bc_date_modified=_datetime(order.get(PREFIX + "bcdatemodified")),
        hold_reason=_text(order.get(PREFIX + "holdreason")),
        statecode=_int(order.get("statecode")) or 0,
        statuscode=_int(order.get("statuscode")) or 1,
        etag=_text(order.get("@odata.etag")),
        lines=tuple(lines),
        fulfillments=tuple(
            sorted(
                (_fulfillment(row) for row in fulfillments if row.get(PREFIX + "fulfillmentkey")),
                key=lambda f: f.key,
            )
        ),
        refunds=tuple(
            sorted(
                (
                    RefundRecord(refund_id, _decimal(row.get(PREFIX + "totalamount")))
                    for row in refunds
                    if (refund_id := _int(row.get(PREFIX + "refundid"))) is not None
                ),
                key=lambda r: r.refund_id,
            )
        ),
    )


def _fulfillment(row: Mapping[str, Any]) -> FulfillmentRecord:
    lines = sorted(
        (
            FulfillmentLineRecord(
                line_key=str(line.get(PREFIX + "linekey") or ""),
                order_product_id=opid,
                quantity=_decimal(line.get(PREFIX + "quantity")),
                quantity_shipped=_decimal(line.get(PREFIX + "quantityshipped")),
            )
            for line in row.get(_FULFILLMENT_LINES) or ()
            if (opid := _int(line.get(PREFIX + "bcorderproductid"))) is not None
        ),
        key=lambda line: (line.order_product_id, line.line_key),
    )
    return FulfillmentRecord(
        key=str(row[PREFIX + "fulfillmentkey"]),
        source=str(row.get(PREFIX + "source") or ""),
        lines=tuple(lines),
        shipped=row.get(PREFIX + "shipped") is True,
        cancelled=row.get(PREFIX + "cancelled") is True,
        tracking_number=_text(row.get(PREFIX + "trackingnumber")),
        carrier=_text(row.get(PREFIX + "carrier")),
        bc_shipment_id=_int(row.get(PREFIX + "bcshipmentid")),
    )
