"""Which Dataverse privileges the connector needs, and reading what an identity holds. Pure.

The connector upserts (creates and updates) the order tables and its own tables, and only reads
the reference tables its rows bind to or it looks things up in. A privilege's name is read from
the table's definition (`EntityMetadata.Privileges`: `Name` and `PrivilegeType`) rather than
built as `prv<Type><SchemaName>`, so custom tables and renamed schema names need no guessing.
What an identity holds comes from `RetrieveUserPrivileges` (`RolePrivileges`: `PrivilegeName`
and `Depth`), which counts its roles and its teams' roles (team privileges at Basic depth).

Depth matters: with Basic (user) depth the connector could only update rows it owns, but it
upserts rows people and other apps created (contacts, accounts, IOM's orders), so anything
short of Global (organization) depth is reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from shared.dataverse.schema import INVENTORY_LEVEL, PRICELEVEL, PRODUCT, SCHEMA, UOM, Table


class Privilege(StrEnum):
    """`PrivilegeType` names as the Web API spells them."""

    CREATE = "Create"
    READ = "Read"
    WRITE = "Write"


READ_ONLY: Final = frozenset(t.logical_name for t in (PRODUCT, PRICELEVEL, UOM, INVENTORY_LEVEL))
UPSERT: Final = frozenset({Privilege.CREATE, Privilege.READ, Privilege.WRITE})
DEPTHS: Final = ("Basic", "Local", "Deep", "Global")  # PrivilegeDepth, in order
FULL_DEPTH: Final = "Global"


def needed(table: Table) -> frozenset[Privilege]:
    return frozenset({Privilege.READ}) if table.logical_name in READ_ONLY else UPSERT


@dataclass(frozen=True, slots=True)
class Shortfall:
    table: str
    privilege: Privilege
    name: str  # the privilege's name (prvWriteContact), or "" when the table defines none
    depth: str | None  # what is held, None when nothing

    def describe(self) -> str:
        what = f"{self.privilege.value.lower()} {self.table}"
        if self.depth is None:
            return f"{what} ({self.name or 'no such privilege'})"
        return f"{what} only at {self.depth} depth"


def table_privileges(body: Any) -> dict[str, dict[str, str]]:
    """`{table: {PrivilegeType: Name}}` from an `EntityDefinitions?$select=LogicalName,
    Privileges` answer (a `value` list, or one definition)."""
    rows = body.get("value") if isinstance(body, Mapping) and "value" in body else [body]
    found: dict[str, dict[str, str]] = {}
    for row in rows if isinstance(rows, list) else ():
        if not isinstance(row, Mapping) or not isinstance(row.get("LogicalName"), str):
            continue
        names: dict[str, str] = {}
        for item in row.get("Privileges") or ():
            if isinstance(item, Mapping):
                kind, name = item.get("PrivilegeType"), item.get("Name")
                if isinstance(kind, str) and isinstance(name, str):
                    names[kind] = name
        found[row["LogicalName"]] = names
    return found


def _depth(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(DEPTHS):
        return DEPTHS[value]
    return None


def held_privileges(body: Any) -> dict[str, str]:
    """`{privilege name: deepest depth held}` from a `RetrieveUserPrivilegesResponse`."""
    held: dict[str, str] = {}
    rows = body.get("RolePrivileges") if isinstance(body, Mapping) else None
    for row in rows if isinstance(rows, list) else ():
        if not isinstance(row, Mapping) or not isinstance(row.get("PrivilegeName"), str):
            continue
        depth = _depth(row.get("Depth")) or "Basic"
        name = row["PrivilegeName"]
        current = held.get(name)
        if current is None or _rank(depth) > _rank(current):
            held[name] = depth
    return held


def _rank(depth: str) -> int:
    return DEPTHS.index(depth) if depth in DEPTHS else -1


def shortfalls(
    tables: Sequence[Table],
    defined: Mapping[str, Mapping[str, str]],
    held: Mapping[str, str],
) -> list[Shortfall]:
    """Every needed privilege not held, or held short of Global depth, table by table.
    Tables absent from `defined` are skipped (the schema check reports them)."""
    found: list[Shortfall] = []
    for table in tables:
        names = defined.get(table.logical_name)
        if names is None:
            continue
        for privilege in sorted(needed(table), key=list(Privilege).index):
            name = names.get(privilege.value, "")
            depth = held.get(name) if name else None
            if depth != FULL_DEPTH:
                found.append(Shortfall(table.logical_name, privilege, name, depth))
    return found


def definitions_path(tables: Iterable[Table] = SCHEMA) -> str:
    """One metadata query for the privileges of every table."""
    names = " or ".join(f"LogicalName eq '{t.logical_name}'" for t in tables)
    return f"EntityDefinitions?$select=LogicalName,Privileges&$filter={names}"
