"""Create, update, upsert and delete rows, with deep insert and `@odata.bind`
(create-entity-web-api, update-delete-entities-using-web-api, use-upsert-insert-update-record,
associate-disassociate-entities-using-web-api).

Payload rules:
- columns by logical name; lookups only through a single-valued navigation property:
  `"<nav>@odata.bind": "/<set>(<key>)"` (primary or alternate key, leading slash optional,
  absolute URLs and batch `$n` references too) or `"<nav>": null` / `"<nav>@odata.bind": null`
  to clear; polymorphic lookups by per-table navigation (`customerid_contact`);
- `"<nav>": {...}` creates the related row (deep insert, single-valued) and binds it;
  `"<collection>": [{...}, ...]` creates children pointing at the new row (deep insert);
- unknown properties are refused with the OData messages the service uses, a bind with an unknown
  navigation with "An undeclared property ... only has property annotations ..." (the usual
  symptom of a wrong navigation-property name or case).

Alternate keys: an Active key is unique; a write that would duplicate it is refused with 412
DuplicateRecordEntityKey (0x80060892). A Pending or Failed key enforces nothing, as there is no
index yet.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local.dataverse import catalog as cat
from local.dataverse import errors, keys, values
from local.dataverse.catalog import Attribute, Entity
from local.dataverse.keys import KeyRef
from local.dataverse.store import Row, Store

Deferred = Callable[[str], None]
_SYSTEM_READ_ONLY = {"createdon", "modifiedon", "versionnumber"}


@dataclass(slots=True)
class Written:
    entity: Entity
    record_id: str
    created: bool


def _undeclared(name: str) -> errors.DataverseError:
    return errors.bad_request(
        f"An undeclared property '{name}' which only has property annotations in the payload but "
        f"no property value was found in the payload. In OData, only declared navigation "
        f"properties and declared named streams can be represented as properties without values."
    )


def _no_property(name: str, entity: Entity) -> errors.DataverseError:
    return errors.bad_request(
        f"The property '{name}' does not exist on type 'Microsoft.Dynamics.CRM."
        f"{entity.logical_name}'. Make sure to only use property names that are defined by the "
        f"type."
    )


def duplicate_key(entity: Entity, key: cat.Key) -> errors.DataverseError:
    names = ", ".join(
        entity.attributes[c].label or c for c in key.attributes if c in entity.attributes
    )
    return errors.DataverseError(
        412,
        errors.DUPLICATE_RECORD_ENTITY_KEY,
        f"Entity Key {key.label or key.schema_name} violated. A record with the same value for "
        f"{names} already exists. A duplicate record cannot be created. Select one or more unique "
        f"values and try again.",
    )


class Writer:
    """Row writes for one request; `content_ids` resolves `$n` inside a batch change set."""

    def __init__(self, store: Store, content_ids: dict[str, str] | None = None) -> None:
        self.store = store
        self.content_ids = content_ids or {}

    # --- locating rows ----------------------------------------------------------------------

    def locate(self, ref: KeyRef) -> str | None:
        if ref.record_id is not None:
            return ref.record_id if self.store.fetch(ref.entity, ref.record_id) else None
        return self.store.find(ref.entity, dict(ref.columns))

    def missing(self, ref: KeyRef) -> errors.DataverseError:
        if ref.record_id is not None:
            return errors.not_found(ref.entity.logical_name, ref.record_id)
        return errors.DataverseError(
            404,
            errors.KEY_VALUES_NOT_FOUND,
            f"A record with the specified key values does not exist in "
            f"{ref.entity.logical_name} entity",
        )

    def reference(self, url: Any, allowed: tuple[str, ...]) -> tuple[Entity, str]:
        """An entity URL (`/contacts(<id>)`, by key, absolute, or `$n`) → (table, row id)."""
        if not isinstance(url, str):
            raise errors.bad_request(f"An @odata.bind value must be a URL string, got {url!r}.")
        url = self.expand_content_id(url)
        segments = keys.split_path(keys.service_path(url).split("?", 1)[0])
        if len(segments) != 1 or segments[0].key is None:
            raise errors.bad_request(f"The URL '{url}' does not identify a single record.")
        target = self.store.entity_by_set(segments[0].name)
        if target is None:
            raise errors.no_segment(segments[0].name)
        if allowed and target.logical_name not in allowed:
            raise errors.bad_request(
                f"The entity set '{target.entity_set}' cannot be bound here: expected "
                f"{' or '.join(allowed)}."
            )
        ref = keys.resolve(target, segments[0].key)
        record_id = self.locate(ref)
        if record_id is None:
            raise self.missing(ref)
        return target, record_id

    def expand_content_id(self, url: str) -> str:
        if not url.startswith("$"):
            return url
        name, slash, rest = url.partition("/")
        if name not in self.content_ids:
            raise errors.bad_request(
                f"Content-ID Reference: '{name}' does not exist in the batch context."
            )
        return self.content_ids[name] + (slash + rest if slash else "")

    # --- payloads ---------------------------------------------------------------------------

    def prepare(self, entity: Entity, body: Any) -> tuple[Row, list[Deferred]]:
        """Columns to store from a payload, plus work to do once the row's id is known."""
        if not isinstance(body, dict):
            raise errors.bad_request("The request body must be a JSON object.")
        columns: Row = {}
        deferred: list[Deferred] = []
        for name, value in body.items():
            if name.startswith("@"):
                continue  # @odata.type, @odata.context, @odata.etag ...
            if "@" in name:
                prop, _, annotation = name.partition("@")
                if annotation != "odata.bind":
                    continue
                self._bind(entity, prop, value, columns, deferred)
                continue
            attribute = entity.navigation(name)
            if attribute is not None:
                self._nested(entity, attribute, name, value, columns)
                continue
            if name in entity.collections:
                deferred.append(self._children(entity, name, value))
                continue
            attribute = entity.attributes.get(name)
            if attribute is None or attribute.kind == "lookup":
                if entity.by_lookup_property(name) is not None:
                    raise errors.bad_request(
                        "CRM do not support direct update of Entity Reference properties, Use "
                        "Navigation properties instead."
                    )
                raise _no_property(name, entity)
            if attribute.read_only or name in _SYSTEM_READ_ONLY:
                continue
            columns[name] = values.to_storage(attribute, value, entity.logical_name)
            if attribute.primary_id and columns[name] is None:
                del columns[name]
        return columns, deferred

    def _target_of(self, attribute: Attribute, nav: str) -> str:
        return next(t for t, n in attribute.navigation.items() if n == nav)

    def _bind(
        self, entity: Entity, prop: str, value: Any, columns: Row, deferred: list[Deferred]
    ) -> None:
        attribute = entity.navigation(prop)
        if attribute is not None:
            if value is None:
                columns[attribute.logical_name] = None
                columns[attribute.logical_name + "__target"] = None
                return
            target, record_id = self.reference(value, (self._target_of(attribute, prop),))
            columns[attribute.logical_name] = record_id
            columns[attribute.logical_name + "__target"] = target.logical_name
            return
        collection = entity.collections.get(prop)
        if collection is None:
            raise _undeclared(prop)
        if not isinstance(value, list):
            raise errors.bad_request(f"'{prop}@odata.bind' needs an array of URLs.")
        child = self.store.catalog[collection.child]
        refs = [self.reference(url, (child.logical_name,))[1] for url in value]

        def associate(parent_id: str) -> None:
            for record_id in refs:
                self.store.update(
                    child,
                    record_id,
                    {
                        collection.attribute: parent_id,
                        collection.attribute + "__target": entity.logical_name,
                    },
                )

        deferred.append(associate)

    def _nested(
        self, entity: Entity, attribute: Attribute, nav: str, value: Any, columns: Row
    ) -> None:
        if value is None:
            columns[attribute.logical_name] = None
            columns[attribute.logical_name + "__target"] = None
            return
        if not isinstance(value, dict):
            raise errors.bad_request(f"The value of '{nav}' must be an object (deep insert).")
        target = self.store.catalog[self._target_of(attribute, nav)]
        related = self.create(target, value)
        columns[attribute.logical_name] = related.record_id
        columns[attribute.logical_name + "__target"] = target.logical_name

    def _children(self, entity: Entity, name: str, value: Any) -> Deferred:
        if not isinstance(value, list):
            raise errors.bad_request(f"The value of '{name}' must be an array (deep insert).")
        collection = entity.collections[name]
        child = self.store.catalog[collection.child]

        def insert_children(parent_id: str) -> None:
            for item in value:
                self.create(
                    child,
                    item,
                    forced={
                        collection.attribute: parent_id,
                        collection.attribute + "__target": entity.logical_name,
                    },
                )

        return insert_children

    # --- rules ------------------------------------------------------------------------------

    def check_keys(self, entity: Entity, row: Row, exclude: str | None) -> None:
        for key in entity.keys.values():
            if key.status != cat.STATUS_ACTIVE:
                continue
            wanted = {c: row.get(c) for c in key.attributes}
            if any(v is None for v in wanted.values()):
                continue
            if self.store.find(entity, wanted, exclude) is not None:
                raise duplicate_key(entity, key)

    @staticmethod
    def computed(entity: Entity, row: Row) -> Row:
        """Columns the platform sets itself (contact.fullname)."""
        if entity.logical_name == "contact" and "fullname" in entity.attributes:
            parts = [row.get("firstname"), row.get("lastname")]
            return {"fullname": " ".join(p for p in parts if p) or None}
        return {}

    def _insert(self, entity: Entity, row: Row) -> None:
        try:
            self.store.insert(entity, row)
        except sqlite3.IntegrityError:
            self._integrity(entity, row)

    def _integrity(self, entity: Entity, row: Row) -> None:
        for key in entity.keys.values():
            if key.status == cat.STATUS_ACTIVE:
                raise duplicate_key(entity, key) from None
        raise errors.DataverseError(
            412, errors.DUPLICATE_RECORD, "A record with matching key values already exists."
        ) from None

    # --- operations -------------------------------------------------------------------------

    def create(self, entity: Entity, body: Any, forced: Row | None = None) -> Written:
        columns, deferred = self.prepare(entity, body)
        columns.update(forced or {})
        record_id = columns.pop(entity.primary_id, None) or str(uuid.uuid4())
        if self.store.fetch(entity, record_id) is not None:
            raise errors.DataverseError(
                412, errors.DUPLICATE_RECORD, "A record with matching key values already exists."
            )
        if "statecode" in entity.attributes and columns.get("statecode") is None:
            columns["statecode"] = 0
        if "statuscode" in entity.attributes and columns.get("statuscode") is None:
            columns["statuscode"] = 1
        for name, attribute in entity.attributes.items():
            # A Boolean (Two Options) column takes its default value, false, when created
            # without one: it is never null.
            if attribute.kind == "boolean" and columns.get(name) is None:
                columns[name] = False
        columns.update(self.computed(entity, columns))
        self.check_keys(entity, columns, None)
        self._insert(entity, {entity.primary_id: record_id, **columns})
        for step in deferred:
            step(record_id)
        return Written(entity, record_id, True)

    def update(
        self, entity: Entity, record_id: str, body: Any, strip: tuple[str, ...] = ()
    ) -> Written:
        columns, deferred = self.prepare(entity, body)
        for name in strip:
            columns.pop(name, None)
        columns.pop(entity.primary_id, None)
        existing = self.store.fetch(entity, record_id)
        if existing is None:
            raise errors.not_found(entity.logical_name, record_id)
        merged = {**existing, **columns}
        columns.update(self.computed(entity, merged))
        self.check_keys(entity, {**existing, **columns}, record_id)
        try:
            self.store.update(entity, record_id, columns)
        except sqlite3.IntegrityError:
            self._integrity(entity, columns)
        for step in deferred:
            step(record_id)
        return Written(entity, record_id, False)

    def upsert(self, ref: KeyRef, body: Any, existing: str | None) -> Written:
        """Upsert's server logic for standard tables (use-upsert-insert-update-record): if the
        row exists, key values in the body are dropped and it is updated; otherwise it is
        created from the body, with the URL's key values filling in those the body lacks."""
        if existing is not None:
            strip = tuple(n for c, _ in ref.columns for n in (c, c + "__target"))
            return self.update(ref.entity, existing, body, strip)
        if not isinstance(body, dict):
            raise errors.bad_request("The request body must be a JSON object.")
        forced: Row = {}
        if ref.record_id is not None:
            forced[ref.entity.primary_id] = ref.record_id
        for column, value in ref.columns:
            attribute = ref.entity.attributes[column]
            if attribute.kind == "lookup":
                sent = any(
                    f"{nav}@odata.bind" in body or nav in body
                    for nav in attribute.navigation.values()
                )
                if not sent:
                    forced[column] = value
                    forced[column + "__target"] = attribute.targets[0]
            elif column not in body:  # the body's value wins when creating, as documented
                forced[column] = value
        return self.create(ref.entity, body, forced=forced)

    def delete(self, entity: Entity, record_id: str) -> None:
        """Deletes a row and, cascading, the rows of its collections (order lines)."""
        for collection in entity.collections.values():
            child = self.store.catalog.get(collection.child)
            if child is None:
                continue
            for row in self.store.rows(child, {collection.attribute: record_id}):
                self.delete(child, row[child.primary_id])
        self.store.delete(entity, record_id)
