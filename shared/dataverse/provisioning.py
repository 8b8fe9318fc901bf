"""What an environment lacks compared with `schema.py`, and creating it.

`check()` reads the definitions of every declared table over the metadata Web API (through the
`MetadataApi` port) and returns a `Plan`: one `Difference` per thing that is missing or differs,
and nothing is written. `provision()` makes the plan's writes, in order, then waits until every
alternate key's index is Active, and returns a `ProvisionReport`. Run again on a provisioned
environment, the plan is empty and `provision()` writes nothing.

What is read, per table (all documented query forms; [AKDEF], query-metadata-web-api):
- `EntityDefinitions(LogicalName='t')?$select=LogicalName,EntitySetName,PrimaryIdAttribute,
  PrimaryNameAttribute` (404: the table does not exist);
- `…/Attributes?$select=LogicalName,AttributeType`;
- `…/Attributes/Microsoft.Dynamics.CRM.StringAttributeMetadata?$select=LogicalName,MaxLength`
  (and `MemoAttributeMetadata`), only when we own text columns on the table;
- `…/Keys?$select=LogicalName,KeyAttributes,EntityKeyIndexStatus`.

What is written (create-update-entity-definitions, create-update-column-definitions,
create-update-entity-relationships, define-alternate-keys-entity, ReactivateEntityKey):
- a table we own: `POST EntityDefinitions` with its primary name column;
- a column we own: `POST EntityDefinitions(LogicalName='t')/Attributes` with the typed
  `…AttributeMetadata`; a lookup we own: `POST RelationshipDefinitions` with a
  `OneToManyRelationshipMetadata` whose `Lookup` is the column;
- a key: `POST EntityDefinitions(LogicalName='t')/Keys` with `SchemaName` and `KeyAttributes`;
- a Failed key, when asked to: `POST ReactivateEntityKey` with the table and key names.

Rules:
- Standard tables and columns are never created: a missing one is a conflict. IOM's tables
  (`required=False`) are skipped when absent (IOM not installed) and extended when present.
- Our columns are compared by type and, for text, by length (shorter than declared is a
  conflict). Standard columns are only required to exist: their real types (Customer, State,
  Status, …) are finer than the schema's kinds.
- A declared key is found by name, or as an existing key on exactly the same columns (a table
  cannot hold two keys on the same columns). Same name on other columns is a conflict.
- With any conflict, `provision()` writes nothing: a person resolves it first.
- Key indexes build asynchronously (Pending → InProgress → Active | Failed); `provision()`
  polls with the injected clock and sleep until all are Active or the wait runs out. A Failed
  key is reported; with `reactivate_failed` it is reactivated once per run and waited for again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, Final

from shared.dataverse.metadata import MetadataApi, MetadataApiError, MetadataResponse
from shared.dataverse.schema import (
    PREFIX,
    SCHEMA,
    AlternateKey,
    Column,
    ColumnKind,
    Table,
)
from shared.dataverse.schema import (
    table as schema_table,
)

DEFAULT_LANGUAGE_CODE: Final = 1033
DEFAULT_WAIT_SECONDS: Final = 600.0
DEFAULT_POLL_SECONDS: Final = 10.0

# AttributeTypeCode names ([ColumnKind] -> what `AttributeType` reads back as).
ATTRIBUTE_TYPES: Final[Mapping[ColumnKind, str]] = {
    "string": "String",
    "memo": "Memo",
    "integer": "Integer",
    "bigint": "BigInt",
    "decimal": "Decimal",
    "money": "Money",
    "datetime": "DateTime",
    "boolean": "Boolean",
    "lookup": "Lookup",
    "uniqueidentifier": "Uniqueidentifier",
}
_TEXT_CASTS: Final[Mapping[ColumnKind, str]] = {
    "string": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
    "memo": "Microsoft.Dynamics.CRM.MemoAttributeMetadata",
}


class KeyStatus(StrEnum):
    """`EntityKeyIndexStatus`; the Web API returns the member name (older forms: its value)."""

    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    ACTIVE = "Active"
    FAILED = "Failed"

    @classmethod
    def parse(cls, value: object) -> KeyStatus | None:
        if isinstance(value, str):
            for status in cls:
                if status.value.lower() == value.replace(" ", "").lower():
                    return status
            return None
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 3:
            return list(cls)[value]
        return None


class Severity(StrEnum):
    INFO = "info"  # nothing to do: an optional (IOM) table that is not installed
    CREATE = "create"  # provision creates it
    WAIT = "wait"  # a key index that is still building
    FAILED = "failed"  # a key index that failed: fix the cause, then reactivate
    CONFLICT = "conflict"  # differs in a way provisioning does not change: a person must


class _Phase(IntEnum):
    TABLE = 0
    COLUMN = 1
    KEY = 2
    REACTIVATE = 3


# -- what was observed --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ObservedColumn:
    logical_name: str
    attribute_type: str
    max_length: int | None = None


@dataclass(frozen=True, slots=True)
class ObservedKey:
    logical_name: str
    columns: tuple[str, ...]
    status: KeyStatus | None


@dataclass(frozen=True, slots=True)
class ObservedTable:
    logical_name: str
    entity_set: str | None
    primary_id: str | None
    primary_name: str | None
    columns: Mapping[str, ObservedColumn]
    keys: tuple[ObservedKey, ...]


# -- the plan -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Write:
    """One metadata POST: what it creates, where, with which documented payload."""

    description: str
    path: str
    body: Mapping[str, Any]
    phase: int


@dataclass(frozen=True, slots=True)
class Difference:
    table: str
    subject: str  # "table", "column bciom_x", "key bciom_y"
    severity: Severity
    detail: str
    write: Write | None = None

    def line(self) -> str:
        return f"{self.severity.value}: {self.table}: {self.subject}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Plan:
    """The differences between an environment and the schema, in schema order."""

    differences: tuple[Difference, ...]

    def of(self, *severities: Severity) -> tuple[Difference, ...]:
        return tuple(d for d in self.differences if d.severity in severities)

    @property
    def in_sync(self) -> bool:
        """Nothing to create, wait for or resolve (absent optional tables do not count)."""
        return not any(d.severity is not Severity.INFO for d in self.differences)

    @property
    def conflicts(self) -> tuple[Difference, ...]:
        return self.of(Severity.CONFLICT)

    def writes(self) -> tuple[Write, ...]:
        """The creations `provision()` makes, tables first, then columns, then keys."""
        writes = [d.write for d in self.of(Severity.CREATE) if d.write is not None]
        return tuple(sorted(writes, key=lambda w: w.phase))


@dataclass(frozen=True, slots=True)
class KeyState:
    table: str
    key: str
    status: KeyStatus | None  # None: not (yet) visible in the table's definition

    def line(self) -> str:
        return f"{self.table}: key {self.key}: {self.status.value if self.status else 'missing'}"


@dataclass(frozen=True, slots=True)
class ProvisionReport:
    plan: Plan
    written: tuple[Write, ...] = ()
    keys: tuple[KeyState, ...] = ()
    refused: bool = False  # conflicts: nothing was written
    timed_out: bool = False  # some key was still building when the wait ran out
    error: str | None = None  # a write Dataverse refused; nothing after it was attempted

    @property
    def failed_keys(self) -> tuple[KeyState, ...]:
        return tuple(k for k in self.keys if k.status is KeyStatus.FAILED)

    @property
    def pending_keys(self) -> tuple[KeyState, ...]:
        return tuple(k for k in self.keys if k.status not in (KeyStatus.ACTIVE, KeyStatus.FAILED))

    @property
    def ok(self) -> bool:
        return (
            not self.refused
            and self.error is None
            and all(k.status is KeyStatus.ACTIVE for k in self.keys)
        )


# -- reading ------------------------------------------------------------------------------------


def entity_path(table: Table | str) -> str:
    name = table if isinstance(table, str) else table.logical_name
    return f"EntityDefinitions(LogicalName='{name}')"


async def read_table(api: MetadataApi, table: Table) -> ObservedTable | None:
    """The definition of `table` as the environment has it, or None when it does not exist."""
    base = entity_path(table)
    path = f"{base}?$select=LogicalName,EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute"
    response = await api.get(path)
    if response.status == 404:
        return None
    entity = _single(_expect(response, "GET", path))
    columns: dict[str, ObservedColumn] = {}
    for row in await _values(api, f"{base}/Attributes?$select=LogicalName,AttributeType"):
        name = str(row.get("LogicalName") or "")
        if name:
            columns[name] = ObservedColumn(name, str(row.get("AttributeType") or ""))
    for kind, cast in _TEXT_CASTS.items():
        if any(c.ours and c.kind == kind and c.logical_name in columns for c in table.columns):
            for row in await _values(
                api, f"{base}/Attributes/{cast}?$select=LogicalName,MaxLength"
            ):
                name = str(row.get("LogicalName") or "")
                length = row.get("MaxLength")
                if name in columns and isinstance(length, int):
                    columns[name] = ObservedColumn(name, columns[name].attribute_type, length)
    return ObservedTable(
        logical_name=str(entity.get("LogicalName") or table.logical_name),
        entity_set=_str_or_none(entity.get("EntitySetName")),
        primary_id=_str_or_none(entity.get("PrimaryIdAttribute")),
        primary_name=_str_or_none(entity.get("PrimaryNameAttribute")),
        columns=columns,
        keys=await read_keys(api, table),
    )


async def read_keys(api: MetadataApi, table: Table) -> tuple[ObservedKey, ...]:
    path = f"{entity_path(table)}/Keys?$select=LogicalName,KeyAttributes,EntityKeyIndexStatus"
    return tuple(
        ObservedKey(
            logical_name=str(row.get("LogicalName") or ""),
            columns=tuple(str(c) for c in row.get("KeyAttributes") or ()),
            status=KeyStatus.parse(row.get("EntityKeyIndexStatus")),
        )
        for row in await _values(api, path)
    )


async def read_environment(
    api: MetadataApi, tables: Sequence[Table] = SCHEMA
) -> dict[str, ObservedTable | None]:
    return {t.logical_name: await read_table(api, t) for t in tables}


async def _values(api: MetadataApi, path: str) -> list[Mapping[str, Any]]:
    body = _expect(await api.get(path), "GET", path)
    rows = body.get("value") if isinstance(body, Mapping) else None
    if not isinstance(rows, list):
        raise MetadataApiError("GET", path, MetadataResponse(200, "the body has no value list"))
    return [row for row in rows if isinstance(row, Mapping)]


def _single(body: Any) -> Mapping[str, Any]:
    # One definition by key is a single entity; a `value` list of one is accepted too.
    if isinstance(body, Mapping) and isinstance(body.get("value"), list) and body["value"]:
        body = body["value"][0]
    return body if isinstance(body, Mapping) else {}


def _expect(response: MetadataResponse, method: str, path: str) -> Any:
    if not response.ok:
        raise MetadataApiError(method, path, response)
    return response.body


def _str_or_none(value: object) -> str | None:
    return str(value) if value else None


# -- comparing ----------------------------------------------------------------------------------


def diff(
    observed: Mapping[str, ObservedTable | None],
    tables: Sequence[Table] = SCHEMA,
    *,
    language_code: int = DEFAULT_LANGUAGE_CODE,
) -> Plan:
    """The differences between what was observed and the declared `tables`."""
    payloads = _Payloads(language_code)
    differences: list[Difference] = []
    for table in tables:
        differences += _table_differences(table, observed.get(table.logical_name), payloads)
    return Plan(tuple(differences))


def _table_differences(
    table: Table, seen: ObservedTable | None, payloads: _Payloads
) -> list[Difference]:
    name = table.logical_name
    if seen is None:
        if not table.ours:
            if table.required:
                return [_conflict(name, "table", "standard table missing (not created by us)")]
            return [Difference(name, "table", Severity.INFO, "not installed (IOM): skipped")]
        create = Write(
            f"create table {name}", "EntityDefinitions", payloads.table(table), _Phase.TABLE
        )
        found: list[Difference] = [Difference(name, "table", Severity.CREATE, "missing", create)]
        for column in table.columns:
            if column.logical_name != table.primary_name:
                found.append(_missing_column(table, column, payloads))
        found += [_missing_key(table, key, payloads) for key in table.keys]
        return found
    found = []
    for label, declared, actual in (
        ("entity set", table.entity_set, seen.entity_set),
        ("primary id", table.primary_id, seen.primary_id),
        ("primary name", table.primary_name, seen.primary_name),
    ):
        if actual is not None and actual != declared:
            found.append(_conflict(name, "table", f"{label} is {actual}, schema says {declared}"))
    for column in table.columns:
        actual_column = seen.columns.get(column.logical_name)
        if actual_column is None:
            found.append(_missing_column(table, column, payloads))
        elif column.ours:
            found += _column_conflicts(name, column, actual_column)
    for key in table.keys:
        found += _key_differences(table, key, seen.keys, payloads)
    return found


def _missing_column(table: Table, column: Column, payloads: _Payloads) -> Difference:
    subject = f"column {column.logical_name}"
    if not column.ours:
        return _conflict(table.logical_name, subject, "standard column missing (not ours)")
    if column.kind == "lookup":
        write = Write(
            f"create lookup {table.logical_name}.{column.logical_name} -> {column.target}",
            "RelationshipDefinitions",
            payloads.relationship(table, column),
            _Phase.COLUMN,
        )
    elif column.kind == "uniqueidentifier":
        return _conflict(table.logical_name, subject, "missing; cannot be created through the API")
    else:
        write = Write(
            f"create column {table.logical_name}.{column.logical_name} ({column.kind})",
            f"{entity_path(table)}/Attributes",
            payloads.attribute(column),
            _Phase.COLUMN,
        )
    return Difference(table.logical_name, subject, Severity.CREATE, "missing", write)


def _column_conflicts(table: str, column: Column, seen: ObservedColumn) -> list[Difference]:
    subject = f"column {column.logical_name}"
    expected = ATTRIBUTE_TYPES[column.kind]
    if seen.attribute_type.lower() != expected.lower():
        return [_conflict(table, subject, f"type is {seen.attribute_type}, schema says {expected}")]
    if (
        column.max_length is not None
        and seen.max_length is not None
        and seen.max_length < column.max_length
    ):
        detail = f"max length is {seen.max_length}, schema says {column.max_length}"
        return [_conflict(table, subject, detail)]
    return []


def _key_differences(
    table: Table, key: AlternateKey, seen: Iterable[ObservedKey], payloads: _Payloads
) -> list[Difference]:
    name, subject = table.logical_name, f"key {key.logical_name}"
    match = _match_key(key, seen)
    if match is None:
        return [_missing_key(table, key, payloads)]
    if match.logical_name == key.logical_name and set(match.columns) != set(key.columns):
        detail = f"is on {', '.join(match.columns)}, schema says {', '.join(key.columns)}"
        return [_conflict(name, subject, detail)]
    alias = "" if match.logical_name == key.logical_name else f" (as {match.logical_name})"
    if match.status is KeyStatus.ACTIVE:
        return []
    if match.status is KeyStatus.FAILED:
        write = Write(
            f"reactivate key {name}.{match.logical_name}",
            "ReactivateEntityKey",
            reactivate_payload(name, match.logical_name),
            _Phase.REACTIVATE,
        )
        return [Difference(name, subject, Severity.FAILED, f"index Failed{alias}", write)]
    status = match.status.value if match.status else "unknown"
    return [Difference(name, subject, Severity.WAIT, f"index {status}{alias}")]


def _missing_key(table: Table, key: AlternateKey, payloads: _Payloads) -> Difference:
    write = Write(
        f"create key {table.logical_name}.{key.logical_name} ({', '.join(key.columns)})",
        f"{entity_path(table)}/Keys",
        payloads.key(key),
        _Phase.KEY,
    )
    return Difference(
        table.logical_name, f"key {key.logical_name}", Severity.CREATE, "missing", write
    )


def _match_key(key: AlternateKey, seen: Iterable[ObservedKey]) -> ObservedKey | None:
    keys = list(seen)
    for candidate in keys:
        if candidate.logical_name == key.logical_name:
            return candidate
    for candidate in keys:
        if set(candidate.columns) == set(key.columns):
            return candidate
    return None


def _conflict(table: str, subject: str, detail: str) -> Difference:
    return Difference(table, subject, Severity.CONFLICT, detail)


# -- the documented payloads --------------------------------------------------------------------


_REQUIRED_NONE: Final = {
    "Value": "None",
    "CanBeChanged": True,
    "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings",
}
# Deleting a sales order leaves our rows that point at it (journal, fulfillment) unlinked.
_CASCADE: Final = {
    "Assign": "NoCascade",
    "Delete": "RemoveLink",
    "Merge": "NoCascade",
    "Reparent": "NoCascade",
    "Share": "NoCascade",
    "Unshare": "NoCascade",
}
_INT32: Final = (-2_147_483_648, 2_147_483_647)
_DECIMAL_RANGE: Final = (-100_000_000_000, 100_000_000_000)


@dataclass(frozen=True, slots=True)
class _Payloads:
    language_code: int

    def label(self, text: str) -> dict[str, Any]:
        return {
            "@odata.type": "Microsoft.Dynamics.CRM.Label",
            "LocalizedLabels": [
                {
                    "@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel",
                    "Label": text,
                    "LanguageCode": self.language_code,
                }
            ],
        }

    def _common(self, column: Column, odata_type: str, attribute_type: str) -> dict[str, Any]:
        label = column.label or column.logical_name
        return {
            "@odata.type": f"Microsoft.Dynamics.CRM.{odata_type}",
            "AttributeType": attribute_type,
            "AttributeTypeName": {"Value": f"{attribute_type}Type"},
            "SchemaName": column.logical_name,
            "DisplayName": self.label(label),
            "Description": self.label(label),
            "RequiredLevel": dict(_REQUIRED_NONE),
        }

    def attribute(self, column: Column, *, primary_name: bool = False) -> dict[str, Any]:
        kind = column.kind
        if kind == "string":
            body = self._common(column, "StringAttributeMetadata", "String")
            body |= {"MaxLength": column.max_length, "FormatName": {"Value": "Text"}}
            if primary_name:
                body["IsPrimaryName"] = True
        elif kind == "memo":
            body = self._common(column, "MemoAttributeMetadata", "Memo")
            body |= {"Format": "TextArea", "MaxLength": column.max_length}
        elif kind == "integer":
            body = self._common(column, "IntegerAttributeMetadata", "Integer")
            body |= {"Format": "None", "MinValue": _INT32[0], "MaxValue": _INT32[1]}
        elif kind == "bigint":
            body = self._common(column, "BigIntAttributeMetadata", "BigInt")
        elif kind == "decimal":
            body = self._common(column, "DecimalAttributeMetadata", "Decimal")
            body |= {"Precision": 2, "MinValue": _DECIMAL_RANGE[0], "MaxValue": _DECIMAL_RANGE[1]}
        elif kind == "money":
            body = self._common(column, "MoneyAttributeMetadata", "Money")
            body["PrecisionSource"] = 2  # the record's currency precision
        elif kind == "datetime":
            body = self._common(column, "DateTimeAttributeMetadata", "DateTime")
            body["Format"] = "DateAndTime"
        elif kind == "boolean":
            body = self._common(column, "BooleanAttributeMetadata", "Boolean")
            body |= {
                "DefaultValue": False,
                "OptionSet": {
                    "TrueOption": {"Value": 1, "Label": self.label("Yes")},
                    "FalseOption": {"Value": 0, "Label": self.label("No")},
                    "OptionSetType": "Boolean",
                },
            }
        else:
            raise ValueError(f"{column.logical_name}: {kind} columns are not created as attributes")
        return body

    def relationship(self, table: Table, column: Column) -> dict[str, Any]:
        assert column.target is not None  # schema.Column guarantees it for lookups
        target = schema_table(column.target)
        lookup = self._common(column, "LookupAttributeMetadata", "Lookup")
        schema_name = (
            f"{PREFIX}{target.logical_name.removeprefix(PREFIX)}_"
            f"{table.logical_name.removeprefix(PREFIX)}_{column.logical_name.removeprefix(PREFIX)}"
        )
        return {
            "@odata.type": "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
            "SchemaName": schema_name,
            "ReferencedEntity": target.logical_name,
            "ReferencedAttribute": target.primary_id,
            "ReferencingEntity": table.logical_name,
            "CascadeConfiguration": dict(_CASCADE),
            "Lookup": lookup,
        }

    def table(self, table: Table) -> dict[str, Any]:
        title = table.logical_name.removeprefix(PREFIX)
        return {
            "@odata.type": "Microsoft.Dynamics.CRM.EntityMetadata",
            "SchemaName": table.logical_name,
            "EntitySetName": table.entity_set,
            "DisplayName": self.label(title),
            "DisplayCollectionName": self.label(f"{title} entries"),
            "Description": self.label(f"Created by the BigCommerce connector ({title})"),
            "OwnershipType": "OrganizationOwned",
            "IsActivity": False,
            "HasActivities": False,
            "HasNotes": False,
            "Attributes": [self.attribute(table.column(table.primary_name), primary_name=True)],
        }

    def key(self, key: AlternateKey) -> dict[str, Any]:
        return {
            "SchemaName": key.logical_name,
            "DisplayName": self.label(key.logical_name.removeprefix(PREFIX).replace("_", " ")),
            "KeyAttributes": list(key.columns),
        }


def reactivate_payload(table: str, key: str) -> dict[str, Any]:
    return {"EntityLogicalName": table, "EntityKeyLogicalName": key}


# -- check and provision ------------------------------------------------------------------------


async def check(
    api: MetadataApi,
    tables: Sequence[Table] = SCHEMA,
    *,
    language_code: int = DEFAULT_LANGUAGE_CODE,
) -> Plan:
    """Reads the environment and lists its differences from the schema. Writes nothing."""
    return diff(await read_environment(api, tables), tables, language_code=language_code)


@dataclass(slots=True)
class _Run:
    written: list[Write] = field(default_factory=list)
    error: str | None = None


async def provision(
    api: MetadataApi,
    tables: Sequence[Table] = SCHEMA,
    *,
    plan: Plan | None = None,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    reactivate_failed: bool = False,
    language_code: int = DEFAULT_LANGUAGE_CODE,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> ProvisionReport:
    """Creates what `plan` (or a fresh `check`) lists, then waits for the key indexes.

    `plan` lets a caller make exactly the writes it showed someone for confirmation. The wait is
    bounded by `wait_seconds` of `clock`; `sleep` paces the polls. With conflicts, nothing is
    written and the report says `refused`.
    """
    if plan is None:
        plan = await check(api, tables, language_code=language_code)
    if plan.conflicts:
        return ProvisionReport(plan, refused=True)
    run = _Run()
    for write in plan.writes():
        if not await _post(api, write, run):
            return ProvisionReport(plan, tuple(run.written), error=run.error)
    keyed = [
        t
        for t in tables
        if t.keys
        and not any(
            d.table == t.logical_name and d.subject == "table" and d.severity is Severity.INFO
            for d in plan.differences
        )
    ]
    keys, timed_out = await _wait_for_keys(
        api, keyed, run, wait_seconds, poll_seconds, reactivate_failed, clock, sleep
    )
    return ProvisionReport(plan, tuple(run.written), keys, timed_out=timed_out, error=run.error)


async def _post(api: MetadataApi, write: Write, run: _Run) -> bool:
    response = await api.post(write.path, write.body)
    if not response.ok:
        run.error = f"{write.description}: {MetadataApiError('POST', write.path, response)}"
        return False
    run.written.append(write)
    return True


async def key_states(api: MetadataApi, tables: Iterable[Table]) -> tuple[KeyState, ...]:
    """The index status of every declared key of `tables` (found by name or by columns)."""
    states: list[KeyState] = []
    for table in tables:
        seen = await read_keys(api, table)
        for key in table.keys:
            match = _match_key(key, seen)
            name = match.logical_name if match else key.logical_name
            states.append(KeyState(table.logical_name, name, match.status if match else None))
    return tuple(states)


async def _wait_for_keys(
    api: MetadataApi,
    tables: Sequence[Table],
    run: _Run,
    wait_seconds: float,
    poll_seconds: float,
    reactivate_failed: bool,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
) -> tuple[tuple[KeyState, ...], bool]:
    deadline = clock() + max(0.0, wait_seconds)
    reactivated: set[tuple[str, str]] = set()
    while True:
        states = await key_states(api, tables)
        retry = [
            s
            for s in states
            if reactivate_failed
            and s.status is KeyStatus.FAILED
            and (s.table, s.key) not in reactivated
        ]
        for state in retry:
            write = Write(
                f"reactivate key {state.table}.{state.key}",
                "ReactivateEntityKey",
                reactivate_payload(state.table, state.key),
                _Phase.REACTIVATE,
            )
            if not await _post(api, write, run):
                return states, False
            reactivated.add((state.table, state.key))
        building = [s for s in states if s.status not in (KeyStatus.ACTIVE, KeyStatus.FAILED)]
        if not retry and not building:
            return states, False
        remaining = deadline - clock()
        if remaining <= 0:
            # Reactivated keys left Failed behind: report what they are now.
            return (await key_states(api, tables) if retry else states), True
        await sleep(min(poll_seconds, remaining))
