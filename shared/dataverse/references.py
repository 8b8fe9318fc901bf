"""Lookup targets the connector binds to by id, and which products exist: resolved by query,
remembered per process.

A `shared.mapping.rows.Reference` without `by_key` names a row by columns that are not an
alternate key (a price list by name, a unit by name, a currency by ISO code) or by a key value
Dataverse cannot address (a product number with `/`); such a row is bound by its id, which only a
query can tell. These rows are set up once per environment and rarely change, so their ids are
kept for the life of the process (`ReferenceIds`); a bind that later fails because a row vanished
clears the memory (`OrderWrites.commit` does), and the next message queries again.

Products are different: an order may name a product that does not exist yet, and one that
exists is hardly ever deleted. `ProductCatalog` keeps every product number found (with its id)
for the life of the process and every number found missing only briefly (`negative_ttl`), so a
product created after a miss is seen on the next look-up.

Both answer from memory synchronously and say what they do not know as GET requests
(`…_request`), so the caller can send every unknown of a commit in one `$batch`. Queries use the
Dataverse query function `Microsoft.Dynamics.CRM.In` for many values at once (filter-rows.md,
"Dataverse query functions"), in chunks that keep the URL short.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from shared.dataverse.errors import DataverseError, ResponseFormatError
from shared.dataverse.odata import all_of, check_name, eq, filter_literal, with_query
from shared.dataverse.schema import PRODUCT, Table
from shared.dataverse.schema import table as schema_table
from shared.mapping.rows import Reference

IN_CHUNK: Final = 100  # values per In(...) query: ~100 product numbers keep a URL well under 8 KB
PRODUCT_NUMBER: Final = "productnumber"
DEFAULT_NEGATIVE_TTL: Final = 60.0


@dataclass(frozen=True, slots=True)
class LookupTable:
    """Where a referenced table's rows live: its entity set and primary id column."""

    logical_name: str
    entity_set: str
    primary_id: str


# Standard tables a mapping may reference that schema.py does not declare (nothing of ours is
# provisioned on them): the currency, looked up by ISO code.
STANDARD_TABLES: Final[Mapping[str, LookupTable]] = {
    "transactioncurrency": LookupTable(
        "transactioncurrency", "transactioncurrencies", "transactioncurrencyid"
    ),
}


def lookup_table(logical_name: str) -> LookupTable:
    known = STANDARD_TABLES.get(logical_name)
    if known is not None:
        return known
    table: Table = schema_table(logical_name)
    return LookupTable(table.logical_name, table.entity_set, table.primary_id)


class ReferenceNotFoundError(DataverseError):
    """A reference row the mapping names (a price list, a unit, a currency) is not in Dataverse,
    or more than one row matches: the environment or the mapping needs fixing; not transient."""


def in_filter(column: str, values: Iterable[str]) -> str:
    """`Microsoft.Dynamics.CRM.In(PropertyName='<column>',PropertyValues=['a','b'])`."""
    listed = ",".join(filter_literal(v) for v in values)
    return (
        f"Microsoft.Dynamics.CRM.In(PropertyName='{check_name(column, 'column')}',"
        f"PropertyValues=[{listed}])"
    )


def chunks(values: Sequence[str], size: int = IN_CHUNK) -> list[Sequence[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def rows_of(body: Any, what: str) -> list[dict[str, Any]]:
    """The `value` rows of a collection answer (a batch part's JSON)."""
    value = body.get("value") if isinstance(body, dict) else None
    if not isinstance(value, list):
        raise ResponseFormatError(f"{what}: a collection without 'value'", method="GET", path=what)
    return [row for row in value if isinstance(row, dict)]


def _ref_key(reference: Reference) -> tuple[str, tuple[tuple[str, str], ...]]:
    columns = tuple(sorted((c, str(v).casefold()) for c, v in reference.columns.items()))
    return reference.table, columns


class ReferenceIds:
    """Ids of reference rows (by table and column values, case-insensitive), per process."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, tuple[tuple[str, str], ...]], uuid.UUID] = {}

    def get(self, reference: Reference) -> uuid.UUID | None:
        return self._ids.get(_ref_key(reference))

    def clear(self) -> None:
        self._ids.clear()

    def request(self, reference: Reference) -> str:
        """The GET (relative URL) that finds the row: its primary id, at most two rows."""
        target = lookup_table(reference.table)
        condition = all_of(*(eq(c, v) for c, v in reference.columns.items()))
        return with_query(
            target.entity_set, {"$select": target.primary_id, "$filter": condition, "$top": 2}
        )

    def read(self, reference: Reference, body: Any) -> uuid.UUID:
        """Remembers and returns the id in the answer to `request(reference)`."""
        target = lookup_table(reference.table)
        rows = rows_of(body, target.entity_set)
        described = ", ".join(f"{c}={v!r}" for c, v in reference.columns.items())
        if len(rows) != 1:
            found = "no" if not rows else "more than one"
            raise ReferenceNotFoundError(
                f"{found} {reference.table} row with {described}: create it in Dataverse or "
                "fix the mapping",
                method="GET",
                path=target.entity_set,
            )
        try:
            row_id = uuid.UUID(str(rows[0].get(target.primary_id)))
        except ValueError:
            raise ResponseFormatError(
                f"{target.entity_set}: a row without a valid {target.primary_id}",
                method="GET",
                path=target.entity_set,
            ) from None
        self._ids[_ref_key(reference)] = row_id
        return row_id


class ProductCatalog:
    """Which product numbers Dataverse has, with the products' ids. Numbers compare
    case-insensitively, as Dataverse compares text."""

    def __init__(
        self,
        *,
        negative_ttl: float = DEFAULT_NEGATIVE_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._found: dict[str, uuid.UUID] = {}
        self._missing: dict[str, float] = {}  # number -> when it was found missing
        self._negative_ttl = negative_ttl
        self._clock = clock

    def exists(self, number: str) -> bool | None:
        """True if found, False if found missing within `negative_ttl`, None if not known."""
        folded = number.casefold()
        if folded in self._found:
            return True
        missed = self._missing.get(folded)
        if missed is not None and self._clock() - missed < self._negative_ttl:
            return False
        return None

    def id_of(self, number: str) -> uuid.UUID | None:
        return self._found.get(number.casefold())

    def clear(self) -> None:
        self._found.clear()
        self._missing.clear()

    def requests(self, numbers: Collection[str]) -> list[str]:
        """GETs (relative URLs) that find these product numbers, a chunk each."""
        first: dict[str, str] = {}
        for number in numbers:
            if number:
                first.setdefault(number.casefold(), number)
        distinct = sorted(first.values())
        return [
            with_query(
                PRODUCT.entity_set,
                {
                    "$select": f"{PRODUCT.primary_id},{PRODUCT_NUMBER}",
                    "$filter": in_filter(PRODUCT_NUMBER, chunk),
                },
            )
            for chunk in chunks(distinct)
        ]

    def read(self, asked: Collection[str], bodies: Iterable[Any]) -> set[str]:
        """Records the answers to `requests(asked)`; returns the numbers of `asked` found."""
        found: dict[str, uuid.UUID] = {}
        for body in bodies:
            for row in rows_of(body, PRODUCT.entity_set):
                number, row_id = row.get(PRODUCT_NUMBER), row.get(PRODUCT.primary_id)
                if isinstance(number, str) and row_id is not None:
                    found[number.casefold()] = uuid.UUID(str(row_id))
        now = self._clock()
        present: set[str] = set()
        for number in asked:
            folded = number.casefold()
            if folded in found:
                self._found[folded] = found[folded]
                self._missing.pop(folded, None)
                present.add(number)
            else:
                self._found.pop(folded, None)
                self._missing[folded] = now
        return present
