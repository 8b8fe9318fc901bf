"""The rows one order intake writes, as plain data the Dataverse client turns into a `$batch`.

A `Row` is one upsert by alternate key: `key` holds the key columns (they go in the URL, never in
the body: [UPSERT] "Don't put the key columns in the body"), `values` the other columns by logical
name, and `binds` the lookups to set, each naming the other row by a `Reference`.

A `Reference` with `by_key` names the row by that table's alternate key, so the writer can bind it
directly (`"productid@odata.bind": "/products(productnumber='ABC')"`, or `$1` for a row created
earlier in the same change set). Without `by_key` the columns are a unique lookup (a price list
by name, a currency by ISO code) or a key value Dataverse cannot address; the writer resolves the
row's id with a query first (and may cache it), then binds by id.

Navigation property names are the writer's concern: for most lookups it is the column's logical
name (`productid`, `uomid`, `pricelevelid`, `transactioncurrencyid`, `salesorderid`); the
polymorphic `customerid` takes `customerid_contact` or `customerid_account` by the target table.
Values are Python values: `Decimal` for amounts and quantities, aware UTC `datetime`s, `int`,
`str`, `bool`, and `None` only where a column must be cleared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Reference:
    """Another table's row, named by column values."""

    table: str
    columns: Mapping[str, str | int]
    by_key: bool


@dataclass(frozen=True, slots=True)
class Row:
    """One upsert: the table, its alternate key, the column values and the lookups to bind."""

    table: str
    key: Mapping[str, str | int]
    values: dict[str, Any]
    binds: Mapping[str, Reference] = field(default_factory=dict)

    def plain(self) -> dict[str, Any]:
        """Key and values in one plain dict of logical column names (lookups left out)."""
        return {**self.key, **self.values}

    def as_reference(self) -> Reference:
        """This row, for another row's lookup to point at."""
        return Reference(self.table, dict(self.key), by_key=True)
