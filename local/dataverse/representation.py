"""Rows as Web API JSON: `@odata.etag` (W/"<version>"), columns, lookups as `_<name>_value`.

With `Prefer: odata.include-annotations` (for example `"*"`) lookups also carry the
`Microsoft.Dynamics.CRM.lookuplogicalname`, `...associatednavigationproperty` and
`OData.Community.Display.V1.FormattedValue` annotations (compose-http-requests-handle-errors,
query/select-columns).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

from local.dataverse import errors, values
from local.dataverse.catalog import Attribute, Entity
from local.dataverse.odata_query import Getter, Resolver

LOOKUP_TABLE = "@Microsoft.Dynamics.CRM.lookuplogicalname"
LOOKUP_NAV = "@Microsoft.Dynamics.CRM.associatednavigationproperty"
FORMATTED = "@OData.Community.Display.V1.FormattedValue"


def etag(version: int) -> str:
    return f'W/"{version}"'


def payload_name(attribute: Attribute) -> str:
    return attribute.lookup_property if attribute.kind == "lookup" else attribute.logical_name


def properties(entity: Entity) -> dict[str, Attribute]:
    """Structural property name (as in payloads and queries) → attribute."""
    return {payload_name(a): a for a in entity.attributes.values()}


def check_select(entity: Entity, select: list[str] | None) -> list[str]:
    """The properties to return: `$select`'s (validated) or all of them."""
    known = properties(entity)
    if select is None:
        return list(known)
    for name in select:
        if name not in known:
            raise errors.unknown_property(name, entity.logical_name)
    return select


def resolver(entity: Entity) -> Resolver:
    known = properties(entity)

    def resolve(name: str) -> str:
        attribute = known.get(name)
        if attribute is None:
            raise errors.unknown_property(name, entity.logical_name)
        return attribute.kind

    return resolve


def getter(entity: Entity) -> Getter:
    known = properties(entity)

    def get(row: dict[str, Any], name: str) -> Any:
        attribute = known[name]
        return values.to_json(attribute, row.get(attribute.logical_name))

    return get


def annotation_filter(preference: str | None) -> Callable[[str], bool]:
    """Which annotations `odata.include-annotations` asks for (none without the preference)."""
    if not preference:
        return lambda _: False
    patterns = [p.strip() for p in preference.split(",") if p.strip()]

    def wanted(term: str) -> bool:
        return any(p == "*" or fnmatch.fnmatchcase(term, p) for p in patterns)

    return wanted


def represent(
    entity: Entity,
    row: dict[str, Any],
    select: list[str],
    *,
    annotate: Callable[[str], bool] = lambda _: False,
    name_of: Callable[[str, str], str | None] = lambda _t, _i: None,
) -> dict[str, Any]:
    """The JSON of one row; `name_of(table, id)` gives a lookup target's primary name."""
    known = properties(entity)
    body: dict[str, Any] = {"@odata.etag": etag(int(row["versionnumber"]))}
    for name in select:
        attribute = known[name]
        value = values.to_json(attribute, row.get(attribute.logical_name))
        if attribute.kind == "lookup" and value is not None:
            target = row.get(attribute.logical_name + "__target") or attribute.targets[0]
            if annotate("OData.Community.Display.V1.FormattedValue"):
                body[name + FORMATTED] = name_of(target, value)
            if annotate("Microsoft.Dynamics.CRM.associatednavigationproperty"):
                body[name + LOOKUP_NAV] = attribute.navigation.get(target, attribute.logical_name)
            if annotate("Microsoft.Dynamics.CRM.lookuplogicalname"):
                body[name + LOOKUP_TABLE] = target
        body[name] = value
    body[entity.primary_id] = row[entity.primary_id]
    return body
