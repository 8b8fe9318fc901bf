"""Order intake: one BigCommerce order written to Dataverse in ONE HTTP request.

One `$batch` holding one change set (atomic: all rows or none, execute-batch-operations):

1. `PATCH contacts(<customer key>)`            Content-ID 1, upsert of the customer;
2. `PATCH salesorders(<order key>)`            upsert, `customerid_contact@odata.bind` to the
                                               contact by its alternate key;
3. `PATCH salesorderdetails(<line key>)` each  upsert, `salesorderid@odata.bind` to the order
                                               by its alternate key.

Every write is an upsert by alternate key (use-upsert-insert-update-record.md), so a
redelivered message rewrites the same rows: no read before writing, no request per line. Binds
use alternate keys rather than `$n`, so each operation is complete on its own and the same
operations can be resent in any later batch. Key columns stay out of the bodies: on update the
server strips them, on create it copies them from the URL, and a body value that differs from
the URL would silently create a row under the wrong key (use-upsert-insert-update-record.md,
"Guidance for composing requests").

Several orders can share one `$batch`, one change set each (`write_orders`): with
`odata.continue-on-error` a failed order rolls back alone and the others commit.

The rows come from the mapping as plain dicts keyed by the schema's logical names
(`shared/dataverse/schema.py`), key columns included. Lookups other than the two above are given
as `Bind` values. Unknown columns, lookups without a `Bind`, missing key columns and key values
Dataverse cannot address are refused here, before anything is sent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import count
from typing import Any, Final

from shared.dataverse.batch import BatchOperation, ChangeSet, ItemResult, OperationResult
from shared.dataverse.client import DataverseClient
from shared.dataverse.errors import ApiError
from shared.dataverse.models import Bind, KeyScalar
from shared.dataverse.odata import entity_path, key_segment, row_body
from shared.dataverse.schema import CONTACT, SALESORDER, SALESORDERDETAIL, Table

CUSTOMER_NAVIGATION: Final = "customerid_contact"  # salesorder.customerid is polymorphic
ORDER_NAVIGATION: Final = "salesorderid"
_SET_BY_INTAKE: Final = {
    SALESORDER.logical_name: "customerid",
    SALESORDERDETAIL.logical_name: "salesorderid",
}


class IntakeError(ValueError):
    """Mapped rows that cannot be written as given; nothing was sent."""


@dataclass(frozen=True, slots=True)
class OrderRows:
    """The mapped rows of one order: each holds its table's alternate-key columns (store hash
    plus customer key / order id / order product id) and the columns to write."""

    contact: Mapping[str, Any]
    order: Mapping[str, Any]
    lines: Sequence[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class KeyedRow:
    """A row split into the key that addresses it and the body that is written."""

    table: Table
    key: dict[str, KeyScalar]
    body: dict[str, Any]

    @property
    def path(self) -> str:
        return entity_path(self.table.entity_set, self.key)


@dataclass(frozen=True, slots=True)
class OrderWriteResult:
    """What became of one order's change set. `ok` means every row was written; otherwise
    `error` says why and nothing of this order was written (the change set rolled back)."""

    order_key: Mapping[str, KeyScalar]
    ok: bool
    contact: OperationResult
    order: OperationResult
    lines: tuple[OperationResult, ...]
    error: ApiError | None = None

    @property
    def transient(self) -> bool:
        """Failed in a way that may pass on redelivery (throttled, server busy, not reached)."""
        if self.ok:
            return False
        if self.error is None:
            return True  # not executed: the batch stopped before this order
        return self.error.status in (408, 429, 502, 503, 504)


def keyed_row(table: Table, row: Mapping[str, Any]) -> KeyedRow:
    """Splits `row` into `table`'s first alternate key and a body of declared columns."""
    if not table.keys:
        raise IntakeError(f"{table.logical_name} has no alternate key in the schema")
    key_columns = table.keys[0].columns
    missing = [c for c in key_columns if row.get(c) is None]
    if missing:
        raise IntakeError(f"{table.logical_name}: key column(s) {', '.join(missing)} missing")
    key: dict[str, KeyScalar] = {c: row[c] for c in key_columns}
    try:
        key_segment(key)  # refuses values Dataverse cannot address, with the column named
    except ValueError as exc:
        raise IntakeError(f"{table.logical_name}: {exc}") from None
    body: dict[str, Any] = {}
    for name, value in row.items():
        if name in key_columns:
            continue
        if "@" not in name:
            _check_column(table, name, value)
        body[name] = value
    return KeyedRow(table, key, body)


def order_change_set(
    order: OrderRows, content_ids: Iterator[int] | None = None, *, return_order_id: bool = False
) -> ChangeSet:
    """The change set that writes one order: contact, order, lines, in that order.

    `content_ids` numbers the operations (1, 2, 3, … by default); pass one shared counter when
    several orders go in one batch, since a Content-ID is unique within the batch.
    `return_order_id` asks for the order's id and the created-or-updated status (201/200).
    """
    ids = content_ids if content_ids is not None else count(1)
    contact = keyed_row(CONTACT, order.contact)
    sales_order = keyed_row(SALESORDER, _without_set_by_intake(SALESORDER, order.order))
    lines = [
        keyed_row(SALESORDERDETAIL, _without_set_by_intake(SALESORDERDETAIL, line))
        for line in order.lines
    ]
    _check_same_store(contact, sales_order, lines)
    seen: set[str] = set()
    for line in lines:
        if line.path in seen:
            raise IntakeError(f"order line {line.path} appears twice")
        seen.add(line.path)

    order_body = dict(sales_order.body)
    order_body["customerid"] = Bind(CONTACT.entity_set, contact.key, CUSTOMER_NAVIGATION)
    order_url = sales_order.path
    order_headers: dict[str, str] = {}
    if return_order_id:
        order_url += f"?$select={SALESORDER.primary_id}"
        order_headers["Prefer"] = "return=representation"
    operations = [
        BatchOperation("PATCH", contact.path, row_body(contact.body), content_id=str(next(ids))),
        BatchOperation(
            "PATCH", order_url, row_body(order_body), order_headers, content_id=str(next(ids))
        ),
    ]
    order_bind = Bind(SALESORDER.entity_set, sales_order.key, ORDER_NAVIGATION)
    for line in lines:
        line_body = dict(line.body)
        line_body["salesorderid"] = order_bind
        operations.append(
            BatchOperation("PATCH", line.path, row_body(line_body), content_id=str(next(ids)))
        )
    return ChangeSet(tuple(operations))


def intake_batch(
    orders: Sequence[OrderRows], *, return_order_id: bool = False
) -> tuple[ChangeSet, ...]:
    """One change set per order, Content-IDs numbered across the whole batch."""
    ids = count(1)
    return tuple(order_change_set(o, ids, return_order_id=return_order_id) for o in orders)


async def write_order(
    client: DataverseClient, order: OrderRows, *, return_order_id: bool = False
) -> OrderWriteResult:
    """Writes one order in one `$batch` request (plus resends after a 429)."""
    (result,) = await write_orders(client, [order], return_order_id=return_order_id)
    return result


async def write_orders(
    client: DataverseClient, orders: Sequence[OrderRows], *, return_order_id: bool = False
) -> tuple[OrderWriteResult, ...]:
    """Writes several orders in one `$batch`, one change set each; each commits or rolls back
    on its own. At most 1,000 operations per call (contact + order + lines per order)."""
    if not orders:
        return ()
    change_sets = intake_batch(orders, return_order_id=return_order_id)
    batch = await client.execute_batch(change_sets, continue_on_error=True)
    return tuple(
        _order_result(keyed_row(SALESORDER, order.order).key, item)
        for order, item in zip(orders, batch.items, strict=True)
    )


def _order_result(order_key: Mapping[str, KeyScalar], item: ItemResult) -> OrderWriteResult:
    contact, sales_order, *lines = item.operations
    return OrderWriteResult(
        order_key=order_key,
        ok=item.ok,
        contact=contact,
        order=sales_order,
        lines=tuple(lines),
        error=item.error,
    )


def _check_column(table: Table, name: str, value: object) -> None:
    try:
        column = table.column(name)
    except KeyError:
        raise IntakeError(f"{table.logical_name} has no column {name!r} in the schema") from None
    if column.kind == "lookup":
        if value is not None and not isinstance(value, Bind):
            raise IntakeError(
                f"{table.logical_name}.{name} is a lookup: give a Bind (entity set and key)"
            )
    elif isinstance(value, Bind):
        raise IntakeError(f"{table.logical_name}.{name} is not a lookup column")


def _without_set_by_intake(table: Table, row: Mapping[str, Any]) -> Mapping[str, Any]:
    column = _SET_BY_INTAKE[table.logical_name]
    clashes = [n for n in row if n == column or n.split("@", 1)[0].startswith(column)]
    if clashes:
        raise IntakeError(
            f"{table.logical_name}.{column} is bound by the intake itself; leave it out of the row"
        )
    return row


def _check_same_store(contact: KeyedRow, order: KeyedRow, lines: Sequence[KeyedRow]) -> None:
    stores = {
        row.key.get("bciom_storehash")
        for row in (contact, order, *lines)
        if "bciom_storehash" in row.key
    }
    if len(stores) > 1:
        raise IntakeError(f"the rows of one order name several stores: {sorted(map(str, stores))}")
