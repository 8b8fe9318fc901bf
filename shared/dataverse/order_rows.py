"""The Dataverse operations behind each `OrderWrites` method, as `BatchOperation`s for one change
set: pure functions, no I/O (the unit of work in `order_store.py` stages and sends them).

Every row is written by its alternate key (`schema.py`): an upsert where a redelivered message
must land on the same row (intake, fulfillment orders, refunds, journal entries), an update with
`If-Match: *` where the row must already exist (a 404 then fails the change set instead of
creating a stub row: update_order, update_line, update_fulfillment). Lookups bind by the target's
alternate key too, so an operation never depends on an id read earlier, except for the reference
rows and products `references.py` resolves. Key columns stay out of the bodies (intake.py says
why). Closing an order is not an update: Dataverse takes the unbound `FulfillSalesOrder` /
`CancelSalesOrder` actions with an `OrderClose` entity (see `close_operation`).

Intake lines and products: a line whose product Dataverse does not have is still written, as a
write-in line (`isproductoverridden`, a description naming the SKU, no product or unit), so the
order is complete in Dataverse and the lifecycle's validation can hold it; once the product
exists, the next intake rewrites the line bound to it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Literal

from shared.bigcommerce.models import Refund
from shared.dataverse.batch import BatchOperation
from shared.dataverse.intake import CUSTOMER_NAVIGATION, keyed_row
from shared.dataverse.models import Bind, KeyScalar
from shared.dataverse.odata import bind_reference, row_body
from shared.dataverse.references import (
    PRODUCT_NUMBER,
    ProductCatalog,
    ReferenceIds,
    lookup_table,
)
from shared.dataverse.schema import (
    FULFILLMENT_ORDER,
    FULFILLMENT_ORDER_DETAIL,
    JOURNAL,
    ORDER_REFUND,
    ORDER_REFUND_LINE,
    PREFIX,
    PRODUCT,
    SALESORDER,
    SALESORDERDETAIL,
    STORE_HASH,
    Table,
)
from shared.dataverse.schema import table as schema_table
from shared.mapping.keys import escape_key_value, is_key_safe
from shared.mapping.order import OrderIntake
from shared.mapping.rows import Reference
from shared.orchestration.ports import JournalEntry, PlannedFulfillment
from shared.orchestration.records import Lifecycle

STORE: Final = STORE_HASH.logical_name
PRODUCT_LOOKUP: Final = "productid"
UNIT_LOOKUP: Final = "uomid"
CUSTOMER_LOOKUP: Final = "customerid"
WRITE_IN_SUFFIX: Final = " (no Dataverse product)"
PRODUCT_REFUND_ITEM: Final = "PRODUCT"
# salesorder status reasons the close actions set (statecode 3 Fulfilled / 2 Canceled).
FULFILLED_COMPLETE: Final = 100001
CANCELED_NO_MONEY: Final = 4
CLOSE_ACTIONS: Final = {
    "fulfilled": ("FulfillSalesOrder", FULFILLED_COMPLETE),
    "cancelled": ("CancelSalesOrder", CANCELED_NO_MONEY),
}
_UPDATE_ONLY: Final = {"If-Match": "*"}


# -- keys -----------------------------------------------------------------------------------------


def order_key(store_hash: str, order_id: int) -> dict[str, KeyScalar]:
    return {STORE: store_hash, PREFIX + "bcorderid": order_id}


def line_key(store_hash: str, order_product_id: int) -> dict[str, KeyScalar]:
    return {STORE: store_hash, PREFIX + "bcorderproductid": order_product_id}


def fulfillment_key(store_hash: str, key: str) -> dict[str, KeyScalar]:
    return {STORE: store_hash, PREFIX + "fulfillmentkey": key}


def fulfillment_line_key(store_hash: str, key: str, order_product_id: int) -> dict[str, KeyScalar]:
    return {STORE: store_hash, PREFIX + "linekey": f"{key}-{order_product_id}"}


def refund_key(store_hash: str, refund_id: int) -> dict[str, KeyScalar]:
    return {STORE: store_hash, PREFIX + "refundid": refund_id}


def refund_line_key(refund_id: int, item_type: str, item_id: int) -> str:
    return f"{refund_id}-{item_type}-{item_id}"


def journal_key(entry_id: str) -> dict[str, KeyScalar]:
    """The entry id as a key value: escaped when Dataverse could not address it as is, hashed
    when that would not fit the column."""
    column = JOURNAL.column(PREFIX + "messageid")
    value = entry_id if is_key_safe(entry_id) else escape_key_value(entry_id)
    if column.max_length is not None and len(value) > column.max_length:
        value = "h~" + hashlib.sha256(entry_id.encode()).hexdigest()
    return {column.logical_name: value}


# -- building blocks ------------------------------------------------------------------------------


def write(
    table: Table,
    key: Mapping[str, KeyScalar],
    values: Mapping[str, Any],
    *,
    update_only: bool = False,
) -> BatchOperation:
    """`PATCH <set>(<key>)`: an upsert, or with `update_only` an update of an existing row.
    Columns are checked against the schema (`intake.keyed_row`)."""
    row = keyed_row(table, {**key, **values})
    headers = dict(_UPDATE_ONLY) if update_only else {}
    return BatchOperation("PATCH", row.path, row_body(row.body), headers)


def cut(table: Table, column: str, text: str | None) -> str | None:
    """Text shortened to the column's length; None stays None (it clears the column)."""
    if text is None:
        return None
    length = table.column(column).max_length
    return text[:length] if length else text


def _aware(moment: datetime | None, what: str) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware")
    return moment


# -- intake ---------------------------------------------------------------------------------------


def product_number(reference: Reference) -> str:
    return str(reference.columns[PRODUCT_NUMBER])


def intake_unknowns(
    intake: OrderIntake, references: ReferenceIds, products: ProductCatalog
) -> tuple[list[Reference], list[str]]:
    """What must be looked up before `intake_operations` can run: reference rows bound by id
    whose id is not known, and product numbers whose existence is not known."""
    unknown_refs: dict[tuple[str, str], Reference] = {}
    numbers: dict[str, str] = {}
    for row in intake.rows:
        for column, reference in row.binds.items():
            if reference.table == PRODUCT.logical_name:
                number = product_number(reference)
                if products.exists(number) is None:
                    numbers[number.casefold()] = number
            elif (
                column != CUSTOMER_LOOKUP
                and not reference.by_key
                and references.get(reference) is None
            ):
                unknown_refs[(reference.table, repr(sorted(reference.columns.items())))] = reference
    return list(unknown_refs.values()), list(numbers.values())


def intake_operations(
    intake: OrderIntake, references: ReferenceIds, products: ProductCatalog
) -> list[BatchOperation]:
    """Contact, account (if any), salesorder and lines, each an upsert by its alternate key.
    Products not known to exist make write-in lines; `intake_unknowns` must be resolved first."""
    operations: list[BatchOperation] = []
    for row in intake.rows:
        table = schema_table(row.table)
        values: dict[str, Any] = dict(row.values)
        product = row.binds.get(PRODUCT_LOOKUP)
        write_in = product is not None and products.exists(product_number(product)) is not True
        for column, reference in row.binds.items():
            if write_in and column in (PRODUCT_LOOKUP, UNIT_LOOKUP):
                values[column] = None
            else:
                values[column] = _bind(column, reference, references, products)
        if product is not None:
            sku = str(values.get(PREFIX + "sku") or product_number(product))
            values["isproductoverridden"] = write_in
            values["productdescription"] = (
                cut(table, "productdescription", sku + WRITE_IN_SUFFIX) if write_in else None
            )
        operations.append(write(table, row.key, values))
    return operations


def _bind(
    column: str, reference: Reference, references: ReferenceIds, products: ProductCatalog
) -> Bind:
    target = lookup_table(reference.table)
    if column == CUSTOMER_LOOKUP:
        navigation = (
            CUSTOMER_NAVIGATION
            if reference.table == "contact"
            else f"{CUSTOMER_LOOKUP}_{reference.table}"
        )
        return Bind(target.entity_set, dict(reference.columns), navigation)
    if reference.table == PRODUCT.logical_name and not reference.by_key:
        product_id = products.id_of(product_number(reference))
        if product_id is None:
            raise LookupError(f"product {product_number(reference)!r} was not resolved")
        return Bind(target.entity_set, product_id, column)
    if reference.by_key:
        return Bind(target.entity_set, dict(reference.columns), column)
    row_id: uuid.UUID | None = references.get(reference)
    if row_id is None:
        raise LookupError(f"{reference.table} {dict(reference.columns)} was not resolved")
    return Bind(target.entity_set, row_id, column)


# -- the order, its lines and fulfillment orders --------------------------------------------------


def update_order_operation(
    store_hash: str,
    order_id: int,
    *,
    lifecycle: Lifecycle | None = None,
    hold_reason: str | None = None,
    clear_hold: bool = False,
    bc_status_id: int | None = None,
    bc_date_modified: datetime | None = None,
) -> BatchOperation | None:
    if clear_hold and hold_reason is not None:
        raise ValueError("give a hold_reason or clear_hold, not both")
    values: dict[str, Any] = {}
    if lifecycle is not None:
        values[PREFIX + "lifecycle"] = lifecycle.value
    if hold_reason is not None:
        values[PREFIX + "holdreason"] = cut(SALESORDER, PREFIX + "holdreason", hold_reason)
    elif clear_hold:
        values[PREFIX + "holdreason"] = None
    if bc_status_id is not None:
        values[PREFIX + "bcstatusid"] = bc_status_id
    if bc_date_modified is not None:
        values[PREFIX + "bcdatemodified"] = _aware(bc_date_modified, "bc_date_modified")
    if not values:
        return None
    return write(SALESORDER, order_key(store_hash, order_id), values, update_only=True)


def update_line_operation(
    store_hash: str,
    order_product_id: int,
    *,
    quantity_shipped: Decimal | None = None,
    quantity_cancelled: Decimal | None = None,
) -> BatchOperation | None:
    values: dict[str, Any] = {}
    if quantity_shipped is not None:
        values["quantityshipped"] = quantity_shipped
    if quantity_cancelled is not None:
        values["quantitycancelled"] = quantity_cancelled
    if not values:
        return None
    return write(SALESORDERDETAIL, line_key(store_hash, order_product_id), values, update_only=True)


def fulfillment_operations(
    store_hash: str, order_id: int, plans: Sequence[PlannedFulfillment]
) -> list[BatchOperation]:
    """Each fulfillment order, then its lines. Shipped and cancelled flags are left alone, so
    writing a plan again never reopens a fulfillment order."""
    order = Bind(SALESORDER.entity_set, order_key(store_hash, order_id), PREFIX + "salesorder")
    operations: list[BatchOperation] = []
    for plan in plans:
        header = fulfillment_key(store_hash, plan.key)
        operations.append(
            write(
                FULFILLMENT_ORDER,
                header,
                {
                    FULFILLMENT_ORDER.primary_name: cut(
                        FULFILLMENT_ORDER, FULFILLMENT_ORDER.primary_name, plan.key
                    ),
                    PREFIX + "source": plan.source,
                    PREFIX + "bcorderid": order_id,
                    PREFIX + "salesorder": order,
                },
            )
        )
        parent = Bind(FULFILLMENT_ORDER.entity_set, header, "msdyn_fulfillmentid")
        for line in plan.lines:
            key = fulfillment_line_key(store_hash, plan.key, line.order_product_id)
            operations.append(
                write(
                    FULFILLMENT_ORDER_DETAIL,
                    key,
                    {
                        FULFILLMENT_ORDER_DETAIL.primary_name: cut(
                            FULFILLMENT_ORDER_DETAIL,
                            FULFILLMENT_ORDER_DETAIL.primary_name,
                            str(key[PREFIX + "linekey"]),
                        ),
                        "msdyn_fulfillmentid": parent,
                        PREFIX + "bcorderproductid": line.order_product_id,
                        PREFIX + "quantity": line.quantity,
                    },
                )
            )
    return operations


def update_fulfillment_operation(
    store_hash: str, key: str, *, bc_shipment_id: int | None = None, cancelled: bool | None = None
) -> BatchOperation | None:
    values: dict[str, Any] = {}
    if bc_shipment_id is not None:
        values[PREFIX + "bcshipmentid"] = bc_shipment_id
    if cancelled is not None:
        values[PREFIX + "cancelled"] = cancelled
    if not values:
        return None
    return write(FULFILLMENT_ORDER, fulfillment_key(store_hash, key), values, update_only=True)


# -- refunds, closing, the journal ----------------------------------------------------------------


def refund_operations(store_hash: str, order_id: int, refund: Refund) -> list[BatchOperation]:
    """The refund, then one line per refunded item (bound to the order line for products)."""
    key = refund_key(store_hash, refund.id)
    operations = [
        write(
            ORDER_REFUND,
            key,
            {
                ORDER_REFUND.primary_name: f"Refund {refund.id} of order {order_id}",
                PREFIX + "bcorderid": order_id,
                PREFIX + "salesorder": Bind(
                    SALESORDER.entity_set, order_key(store_hash, order_id), PREFIX + "salesorder"
                ),
                PREFIX + "totalamount": refund.total_amount,
                PREFIX + "totaltax": refund.total_tax,
                PREFIX + "reason": cut(ORDER_REFUND, PREFIX + "reason", refund.reason or None),
                PREFIX + "refundedon": _aware(refund.created, "refund.created"),
            },
        )
    ]
    parent = Bind(ORDER_REFUND.entity_set, key, PREFIX + "orderrefund")
    for item in refund.items:
        line = refund_line_key(refund.id, item.item_type, item.item_id)
        values: dict[str, Any] = {
            ORDER_REFUND_LINE.primary_name: line,
            PREFIX + "orderrefund": parent,
            PREFIX + "itemtype": cut(ORDER_REFUND_LINE, PREFIX + "itemtype", item.item_type),
            PREFIX + "itemid": item.item_id,
            PREFIX + "quantity": None if item.quantity is None else Decimal(item.quantity),
            PREFIX + "amount": item.requested_amount,
        }
        if item.item_type == PRODUCT_REFUND_ITEM:
            values[PREFIX + "salesorderdetail"] = Bind(
                SALESORDERDETAIL.entity_set,
                line_key(store_hash, item.item_id),
                PREFIX + "salesorderdetail",
            )
        operations.append(
            write(ORDER_REFUND_LINE, {STORE: store_hash, PREFIX + "refundlinekey": line}, values)
        )
    return operations


def close_operation(
    store_hash: str, order_id: int, how: Literal["fulfilled", "cancelled"]
) -> BatchOperation:
    """`POST FulfillSalesOrder` (Status 100001 Complete) or `POST CancelSalesOrder` (Status 4
    No Money): unbound actions taking `OrderClose` (an orderclose entity bound to the order) and
    `Status` (the Web API salesorder reference lists both actions as "Not Bound"; parameters per
    the FulfillSalesOrder / CancelSalesOrder action references). The order is bound by its
    alternate key like any other lookup. Not idempotent: a closed order refuses a second close."""
    action, status = CLOSE_ACTIONS[how]
    close = {
        "@odata.type": "Microsoft.Dynamics.CRM.orderclose",
        "subject": f"BigCommerce order {order_id} {how}",
        "salesorderid@odata.bind": bind_reference(
            SALESORDER.entity_set, order_key(store_hash, order_id)
        ),
    }
    return BatchOperation("POST", action, {"OrderClose": close, "Status": status}, idempotent=False)


def fence(
    operations: list[BatchOperation], store_hash: str, order_id: int, etag: str | None
) -> int | None:
    """Fences a change set of this order by its salesorder's version, in place, and returns the
    index of the operation whose answer carries the version it leaves (None: nothing to read).

    With `etag` (the version the run read): the first operation writing the salesorder gets
    `If-Match: <etag>`, so the whole change set fails with 412 when the salesorder changed since
    (perform-conditional-operations-using-web-api.md); without one, a PATCH with nothing to
    write goes first to carry the condition. Without `etag` (the run found no salesorder): its
    upsert creates it only (`If-None-Match: *`), so as not to overwrite one another run created
    meanwhile. The last operation writing the salesorder answers with its `@odata.etag`
    (`Prefer: return=representation`). Call it only for an open salesorder: a closed one is
    read-only, and after a close action nothing may be written.
    """
    path = keyed_row(SALESORDER, order_key(store_hash, order_id)).path
    mine = [i for i, op in enumerate(operations) if op.method == "PATCH" and op.url == path]
    if etag is not None:
        if mine:
            first = operations[mine[0]]
            operations[mine[0]] = replace(first, headers={**first.headers, "If-Match": etag})
        else:
            operations.insert(0, BatchOperation("PATCH", path, {}, {"If-Match": etag}))
            mine = [0]
    elif mine and not operations[mine[0]].headers:
        operations[mine[0]] = replace(operations[mine[0]], headers={"If-None-Match": "*"})
    if not mine:
        return None
    last = operations[mine[-1]]
    operations[mine[-1]] = replace(
        last,
        url=f"{path}?$select={SALESORDER.primary_id}",
        headers={**last.headers, "Prefer": "return=representation"},
    )
    return mine[-1]


def journal_operation(entry: JournalEntry) -> BatchOperation:
    """An upsert of the entry by its id. The salesorder lookup is left unset: an entry must be
    writable before (or without) the order it is about, so it carries the order id instead."""
    return write(
        JOURNAL,
        journal_key(entry.entry_id),
        {
            JOURNAL.primary_name: cut(JOURNAL, JOURNAL.primary_name, f"{entry.kind} {entry.name}"),
            STORE: entry.store_hash,
            PREFIX + "bcorderid": entry.order_id,
            PREFIX + "kind": entry.kind,
            PREFIX + "step": cut(JOURNAL, PREFIX + "step", entry.step),
            PREFIX + "outcome": cut(JOURNAL, PREFIX + "outcome", entry.outcome),
            PREFIX + "durationms": entry.duration_ms,
            PREFIX + "correlationid": cut(JOURNAL, PREFIX + "correlationid", entry.correlation_id),
            PREFIX + "details": cut(JOURNAL, PREFIX + "details", entry.details),
            PREFIX + "occurredon": _aware(entry.occurred_on, "occurred_on"),
        },
    )
