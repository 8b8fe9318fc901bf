"""The stand-in's table definitions (metadata): tables, columns, alternate keys, navigations.

Seeded from shared/dataverse/schema.py. An unprovisioned environment has the standard tables
with their standard columns (schema columns with `ours=False`) and nothing of ours: no custom
columns, no alternate keys, no journal table; provisioning creates those through the metadata
API. A provisioned start (LOCAL_DATAVERSE_PROVISIONED=1) has everything, every key Active.

Standard knowledge schema.py does not carry, kept here:
- `salesorder.customerid` is a Customer lookup (account or contact) whose navigation properties
  are `customerid_account` / `customerid_contact` (salesorder entity reference);
- `contact.fullname` is computed from first and last name;
- `transactioncurrency` exists (salesorder.transactioncurrencyid points at it), with one row;
- every table has `createdon`, `modifiedon` and `versionnumber`.

Reference rows the default mapping binds to (shared/mapping/default_mapping.yaml: the price list
"BigCommerce", the unit "Primary Unit") are in `REFERENCE_ROWS`: a provisioned environment has
them, as one set up for the connector would; products are left to whoever runs the stand-in.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from shared.dataverse import schema

STATUS_PENDING: Final = "Pending"
STATUS_IN_PROGRESS: Final = "InProgress"
STATUS_ACTIVE: Final = "Active"
STATUS_FAILED: Final = "Failed"

SYSTEM_COLUMNS: Final = ("createdon", "modifiedon", "versionnumber")
# Polymorphic lookups of standard tables: (entity, column) → targets.
POLYMORPHIC: Final = {("salesorder", "customerid"): ("account", "contact")}
CURRENCY_TABLE: Final = "transactioncurrency"
BASE_CURRENCY_ID: Final = str(uuid.uuid5(uuid.NAMESPACE_URL, "local-dataverse/currency/USD"))


def _reference_id(table: str, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"local-dataverse/{table}/{name}"))


# (table, row): the rows a provisioned environment holds for the default mapping to bind to.
REFERENCE_ROWS: Final = (
    (
        "pricelevel",
        {"pricelevelid": _reference_id("pricelevel", "BigCommerce"), "name": "BigCommerce"},
    ),
    ("uom", {"uomid": _reference_id("uom", "Primary Unit"), "name": "Primary Unit"}),
)


def metadata_id(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "local-dataverse/metadata/" + "/".join(parts)))


@dataclass(slots=True)
class Attribute:
    logical_name: str
    kind: str  # a schema.ColumnKind
    schema_name: str = ""
    label: str = ""
    max_length: int | None = None
    targets: tuple[str, ...] = ()  # lookups: referenced tables
    navigation: dict[str, str] = field(default_factory=dict)  # target table → nav property
    custom: bool = False
    primary_id: bool = False
    primary_name: bool = False
    read_only: bool = False
    id: str = ""

    def __post_init__(self) -> None:
        self.schema_name = self.schema_name or self.logical_name
        self.id = self.id or str(uuid.uuid4())

    @property
    def lookup_property(self) -> str:
        """The name a lookup has in payloads and queries: `_<name>_value`."""
        return f"_{self.logical_name}_value"

    @property
    def polymorphic(self) -> bool:
        return len(self.targets) > 1


@dataclass(slots=True)
class Key:
    logical_name: str
    attributes: tuple[str, ...]
    schema_name: str = ""
    label: str = ""
    status: str = STATUS_PENDING
    build_started: float = 0.0  # epoch seconds the index job started
    custom: bool = True
    id: str = ""
    job_id: str = ""

    def __post_init__(self) -> None:
        self.schema_name = self.schema_name or self.logical_name
        self.id = self.id or str(uuid.uuid4())
        self.job_id = self.job_id or str(uuid.uuid4())


@dataclass(slots=True)
class Collection:
    """A collection-valued navigation property: the rows of `child` whose `attribute` is us."""

    name: str
    child: str
    attribute: str


@dataclass(slots=True)
class Entity:
    logical_name: str
    entity_set: str
    primary_id: str
    primary_name: str
    schema_name: str = ""
    label: str = ""
    custom: bool = False
    attributes: dict[str, Attribute] = field(default_factory=dict)
    keys: dict[str, Key] = field(default_factory=dict)
    collections: dict[str, Collection] = field(default_factory=dict)
    object_type_code: int = 0
    id: str = ""

    def __post_init__(self) -> None:
        self.schema_name = self.schema_name or self.logical_name
        self.id = self.id or metadata_id(self.logical_name)

    def attribute(self, name: str) -> Attribute | None:
        return self.attributes.get(name)

    def lookups(self) -> list[Attribute]:
        return [a for a in self.attributes.values() if a.kind == "lookup"]

    def navigation(self, name: str) -> Attribute | None:
        """The lookup behind a single-valued navigation property."""
        for attribute in self.lookups():
            if name in attribute.navigation.values():
                return attribute
        return None

    def by_lookup_property(self, name: str) -> Attribute | None:
        if name.startswith("_") and name.endswith("_value"):
            attribute = self.attributes.get(name[1:-6])
            if attribute is not None and attribute.kind == "lookup":
                return attribute
        return None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Entity:
        attributes = {
            name: Attribute(**{**value, "targets": tuple(value["targets"])})
            for name, value in raw.pop("attributes").items()
        }
        keys = {
            name: Key(**{**value, "attributes": tuple(value["attributes"])})
            for name, value in raw.pop("keys").items()
        }
        collections = {name: Collection(**value) for name, value in raw.pop("collections").items()}
        return cls(**raw, attributes=attributes, keys=keys, collections=collections)


def _kind_of(column: schema.Column) -> str:
    return column.kind


def _attribute(table: schema.Table, column: schema.Column) -> Attribute:
    targets: tuple[str, ...] = ()
    navigation: dict[str, str] = {}
    if column.kind == "lookup":
        polymorphic = POLYMORPHIC.get((table.logical_name, column.logical_name))
        if polymorphic:
            targets = polymorphic
            navigation = {t: f"{column.logical_name}_{t}" for t in polymorphic}
        else:
            assert column.target is not None
            targets = (column.target,)
            navigation = {column.target: column.logical_name}
    return Attribute(
        logical_name=column.logical_name,
        kind=_kind_of(column),
        label=column.label or column.logical_name,
        max_length=column.max_length,
        targets=targets,
        navigation=navigation,
        custom=column.ours,
        primary_name=column.logical_name == table.primary_name,
        id=metadata_id(table.logical_name, column.logical_name),
    )


def _system_attributes(logical_name: str, primary_id: str) -> list[Attribute]:
    return [
        Attribute(
            primary_id,
            "uniqueidentifier",
            primary_id=True,
            read_only=False,
            id=metadata_id(logical_name, primary_id),
        ),
        Attribute(
            "createdon", "datetime", read_only=True, id=metadata_id(logical_name, "createdon")
        ),
        Attribute(
            "modifiedon", "datetime", read_only=True, id=metadata_id(logical_name, "modifiedon")
        ),
        Attribute(
            "versionnumber", "bigint", read_only=True, id=metadata_id(logical_name, "versionnumber")
        ),
    ]


def new_entity(
    logical_name: str,
    entity_set: str,
    primary_id: str,
    primary_name: str,
    *,
    custom: bool,
    label: str = "",
    schema_name: str = "",
) -> Entity:
    """A table with only its system columns (id, createdon, modifiedon, versionnumber)."""
    entity = Entity(
        logical_name=logical_name,
        entity_set=entity_set,
        primary_id=primary_id,
        primary_name=primary_name,
        schema_name=schema_name,
        label=label or logical_name,
        custom=custom,
    )
    for attribute in _system_attributes(logical_name, primary_id):
        entity.attributes[attribute.logical_name] = attribute
    return entity


def _from_table(table: schema.Table, provisioned: bool, started: float) -> Entity:
    entity = new_entity(
        table.logical_name,
        table.entity_set,
        table.primary_id,
        table.primary_name,
        custom=table.ours,
        label=table.logical_name,
    )
    for column in table.columns:
        if column.ours and not provisioned:
            continue
        entity.attributes[column.logical_name] = _attribute(table, column)
    if table.primary_name not in entity.attributes:
        # A computed primary name (contact.fullname) or one the schema does not list.
        entity.attributes[table.primary_name] = Attribute(
            table.primary_name,
            "string",
            max_length=160,
            primary_name=True,
            read_only=table.logical_name == "contact",
            id=metadata_id(table.logical_name, table.primary_name),
        )
    if provisioned:
        for key in table.keys:
            entity.keys[key.logical_name] = Key(
                key.logical_name,
                key.columns,
                status=STATUS_ACTIVE,
                build_started=started,
                id=metadata_id(table.logical_name, "key", key.logical_name),
            )
    return entity


def _currency() -> Entity:
    entity = new_entity(
        CURRENCY_TABLE,
        "transactioncurrencies",
        "transactioncurrencyid",
        "currencyname",
        custom=False,
    )
    for name, length in (("currencyname", 100), ("isocurrencycode", 5), ("currencysymbol", 10)):
        entity.attributes[name] = Attribute(
            name,
            "string",
            max_length=length,
            primary_name=name == "currencyname",
            id=metadata_id(CURRENCY_TABLE, name),
        )
    return entity


def link_collections(catalog: dict[str, Entity]) -> None:
    """Adds schema.py's collection navigations where both ends (and the lookup) exist."""
    for table in schema.SCHEMA:
        parent = catalog.get(table.logical_name)
        if parent is None:
            continue
        for name, child_name in table.collections.items():
            child = catalog.get(child_name)
            if child is None:
                continue
            for attribute in child.lookups():
                if table.logical_name in attribute.targets:
                    parent.collections[name] = Collection(name, child_name, attribute.logical_name)
                    break


def seed(*, provisioned: bool, iom: bool, started: float) -> dict[str, Entity]:
    """The catalog a fresh environment starts with."""
    catalog: dict[str, Entity] = {CURRENCY_TABLE: _currency()}
    for code, table in enumerate(schema.SCHEMA, start=10_000):
        if table.ours and not provisioned:
            continue
        if not table.required and not iom:
            continue
        entity = _from_table(table, provisioned, started)
        entity.object_type_code = code
        catalog[entity.logical_name] = entity
    link_collections(catalog)
    return catalog
