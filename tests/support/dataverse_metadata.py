"""An in-memory Dataverse metadata endpoint behind the `MetadataApi` port, for unit tests.

It answers the documented requests provisioning makes, with the documented shapes:
- `GET EntityDefinitions(LogicalName='t')?$select=…` → the entity, or 404 with an OData error;
- `GET …/Attributes?$select=LogicalName,AttributeType` and the `StringAttributeMetadata` /
  `MemoAttributeMetadata` casts with `MaxLength` → `{"value": [...]}`;
- `GET …/Keys?$select=…` → `{"value": [...]}` with `EntityKeyIndexStatus` as a member name;
- `POST EntityDefinitions`, `…/Attributes`, `RelationshipDefinitions`, `…/Keys`,
  `ReactivateEntityKey` → 204 with `OData-EntityId`, after checking the payload carries what the
  docs require; a duplicate or a dangling reference → 400 with an OData error.

Key indexes build in the background: every read of a table's keys moves each building key one
step along Pending → InProgress → Active (or → Failed for the keys named in `failing_keys`;
`stalled` keeps them Pending). The seed is a standard environment: the schema's standard tables
and columns with their real attribute types, none of ours. `over_http` serves the same fake at
the Web API root through an `httpx.MockTransport`, the way the Web API stand-in will.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from shared.dataverse.metadata import MetadataResponse
from shared.dataverse.schema import SCHEMA, Table

ROOT: Final = "https://contoso.crm.dynamics.com/api/data/v9.2/"
_ENTITY: Final = re.compile(
    r"^EntityDefinitions\(LogicalName='(?P<table>[a-z0-9_]+)'\)"
    r"(?:/(?P<nav>Attributes|Keys))?(?:/Microsoft\.Dynamics\.CRM\.(?P<cast>\w+))?"
    r"(?:\?(?P<query>.*))?$"
)
# What `AttributeType` reads back as for the schema's kinds; some standard columns are finer.
_TYPES: Final = {
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
_STANDARD_TYPES: Final = {"statecode": "State", "statuscode": "Status", "customerid": "Customer"}
_CASTS: Final = {"StringAttributeMetadata": "String", "MemoAttributeMetadata": "Memo"}
_STEPS: Final = {"Pending": "InProgress", "InProgress": "Active"}


@dataclass
class FakeAttribute:
    attribute_type: str
    max_length: int | None = None


@dataclass
class FakeKey:
    columns: tuple[str, ...]
    status: str = "Pending"
    fails: bool = False


@dataclass
class FakeTable:
    logical_name: str
    entity_set: str
    primary_id: str
    primary_name: str
    attributes: dict[str, FakeAttribute] = field(default_factory=dict)
    keys: dict[str, FakeKey] = field(default_factory=dict)


def _error(status: int, code: str, message: str) -> MetadataResponse:
    return MetadataResponse(status, {"error": {"code": code, "message": message}})


def _created(path: str) -> MetadataResponse:
    return MetadataResponse(204, None, {"OData-EntityId": f"{ROOT}{path}({uuid.uuid4()})"})


def _label_text(label: object) -> str:
    assert isinstance(label, Mapping)
    assert label["@odata.type"] == "Microsoft.Dynamics.CRM.Label"
    [localized] = label["LocalizedLabels"]
    assert localized["LanguageCode"] == 1033
    assert localized["Label"]
    return str(localized["Label"])


class FakeMetadataApi:
    """The port over in-memory definitions; `gets` and `posts` record every request."""

    def __init__(
        self,
        tables: Mapping[str, FakeTable] | None = None,
        *,
        failing_keys: frozenset[str] = frozenset(),
        stalled: bool = False,
        refuse: frozenset[str] = frozenset(),
    ) -> None:
        self.tables: dict[str, FakeTable] = dict(tables or {})
        self.failing_keys = failing_keys  # key names whose index build fails (once)
        self.stalled = stalled  # key builds never progress
        self.refuse = refuse  # SchemaNames whose creation Dataverse refuses
        self.gets: list[str] = []
        self.posts: list[tuple[str, dict[str, Any]]] = []

    # -- the port ----------------------------------------------------------------------------

    async def get(self, path: str) -> MetadataResponse:
        self.gets.append(path)
        match = _ENTITY.match(path)
        if match is None:
            return _error(404, "0x80060888", f"Resource not found for the segment '{path}'.")
        table = self.tables.get(match["table"])
        if table is None:
            return _error(
                404, "0x80040217", f"Could not find entity with LogicalName = {match['table']}."
            )
        nav, cast = match["nav"], match["cast"]
        if nav is None:
            return MetadataResponse(
                200,
                {
                    "LogicalName": table.logical_name,
                    "EntitySetName": table.entity_set,
                    "PrimaryIdAttribute": table.primary_id,
                    "PrimaryNameAttribute": table.primary_name,
                    "MetadataId": str(uuid.uuid5(uuid.NAMESPACE_URL, table.logical_name)),
                },
            )
        if nav == "Keys":
            self._progress(table)
            return MetadataResponse(
                200,
                {
                    "value": [
                        {
                            "LogicalName": name,
                            "KeyAttributes": list(key.columns),
                            "EntityKeyIndexStatus": key.status,
                        }
                        for name, key in table.keys.items()
                    ]
                },
            )
        rows: list[dict[str, Any]] = []
        for name, attribute in table.attributes.items():
            if cast is None:
                rows.append({"LogicalName": name, "AttributeType": attribute.attribute_type})
            elif _CASTS[cast] == attribute.attribute_type:
                rows.append({"LogicalName": name, "MaxLength": attribute.max_length})
        return MetadataResponse(200, {"value": rows})

    async def post(self, path: str, body: Mapping[str, Any]) -> MetadataResponse:
        self.posts.append((path, dict(body)))
        if body.get("SchemaName") in self.refuse:
            return _error(400, "0x80044363", f"{body['SchemaName']} is not a valid name.")
        if path == "EntityDefinitions":
            return self._create_table(body)
        if path == "RelationshipDefinitions":
            return self._create_relationship(body)
        if path == "ReactivateEntityKey":
            return self._reactivate(body)
        match = _ENTITY.match(path)
        if match is None or match["cast"] or match["query"] or match["nav"] is None:
            return _error(405, "0x8006088a", f"POST is not supported on {path}.")
        table = self.tables.get(match["table"])
        if table is None:
            return _error(404, "0x80040217", f"Could not find entity {match['table']}.")
        if match["nav"] == "Attributes":
            return self._create_attribute(table, body, path)
        return self._create_key(table, body, path)

    # -- writes ------------------------------------------------------------------------------

    def _create_table(self, body: Mapping[str, Any]) -> MetadataResponse:
        assert body["@odata.type"] == "Microsoft.Dynamics.CRM.EntityMetadata"
        for required in ("DisplayName", "DisplayCollectionName"):
            _label_text(body[required])
        assert body["OwnershipType"] in ("UserOwned", "OrganizationOwned")
        assert body["HasActivities"] is False
        assert body["HasNotes"] is False
        name = str(body["SchemaName"]).lower()
        if name in self.tables:
            return _error(400, "0x80047013", f"An entity with the name {name} already exists.")
        [primary] = body["Attributes"]
        assert primary["IsPrimaryName"] is True
        assert primary["@odata.type"] == "Microsoft.Dynamics.CRM.StringAttributeMetadata"
        primary_name = str(primary["SchemaName"]).lower()
        table = FakeTable(
            name, str(body.get("EntitySetName") or f"{name}s"), f"{name}id", primary_name
        )
        table.attributes[table.primary_id] = FakeAttribute("Uniqueidentifier")
        table.attributes[primary_name] = FakeAttribute("String", int(primary["MaxLength"]))
        self.tables[name] = table
        return _created("EntityDefinitions")

    def _create_attribute(
        self, table: FakeTable, body: Mapping[str, Any], path: str
    ) -> MetadataResponse:
        odata_type = str(body["@odata.type"])
        attribute_type = str(body["AttributeType"])
        assert odata_type == f"Microsoft.Dynamics.CRM.{attribute_type}AttributeMetadata"
        assert body["AttributeTypeName"] == {"Value": f"{attribute_type}Type"}
        assert attribute_type != "Lookup", "lookups are created through RelationshipDefinitions"
        _label_text(body["DisplayName"])
        assert body["RequiredLevel"]["Value"] == "None"
        if attribute_type in ("String", "Memo"):
            assert isinstance(body["MaxLength"], int)
        if attribute_type == "String":
            assert body["FormatName"] == {"Value": "Text"}
        if attribute_type == "Boolean":
            options = body["OptionSet"]
            assert options["TrueOption"]["Value"] == 1
            assert options["FalseOption"]["Value"] == 0
        if attribute_type == "Money":
            assert body["PrecisionSource"] in (0, 1, 2)
        name = str(body["SchemaName"]).lower()
        if name in table.attributes:
            return _error(400, "0x80047013", f"An attribute {name} already exists.")
        table.attributes[name] = FakeAttribute(attribute_type, body.get("MaxLength"))
        return _created(path)

    def _create_relationship(self, body: Mapping[str, Any]) -> MetadataResponse:
        assert body["@odata.type"] == "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata"
        referenced = self.tables.get(str(body["ReferencedEntity"]))
        referencing = self.tables.get(str(body["ReferencingEntity"]))
        if referenced is None or referencing is None:
            return _error(400, "0x80040217", "The referenced or referencing entity is missing.")
        assert body["ReferencedAttribute"] == referenced.primary_id
        lookup = body["Lookup"]
        assert lookup["@odata.type"] == "Microsoft.Dynamics.CRM.LookupAttributeMetadata"
        assert lookup["AttributeType"] == "Lookup"
        _label_text(lookup["DisplayName"])
        name = str(lookup["SchemaName"]).lower()
        if name in referencing.attributes:
            return _error(400, "0x80047013", f"An attribute {name} already exists.")
        referencing.attributes[name] = FakeAttribute("Lookup")
        return _created("RelationshipDefinitions")

    def _create_key(self, table: FakeTable, body: Mapping[str, Any], path: str) -> MetadataResponse:
        name = str(body["SchemaName"]).lower()
        _label_text(body["DisplayName"])
        columns = tuple(str(c) for c in body["KeyAttributes"])
        missing = [c for c in columns if c not in table.attributes]
        if missing:
            return _error(400, "0x80060890", f"Key attributes {missing} do not exist.")
        if name in table.keys or any(set(k.columns) == set(columns) for k in table.keys.values()):
            return _error(400, "0x80060892", f"A key like {name} already exists.")
        table.keys[name] = FakeKey(columns, fails=name in self.failing_keys)
        return _created(path)

    def _reactivate(self, body: Mapping[str, Any]) -> MetadataResponse:
        table = self.tables.get(str(body["EntityLogicalName"]))
        key = table.keys.get(str(body["EntityKeyLogicalName"])) if table else None
        if key is None:
            return _error(404, "0x80040217", "The entity key does not exist.")
        key.status, key.fails = "Pending", False
        return MetadataResponse(204)

    def _progress(self, table: FakeTable) -> None:
        if self.stalled:
            return
        for key in table.keys.values():
            if key.status == "Pending" and key.fails:
                key.status = "Failed"
            elif key.status in _STEPS:
                key.status = _STEPS[key.status]

    # -- inspection --------------------------------------------------------------------------

    def posted(self, path: str | None = None) -> list[dict[str, Any]]:
        return [body for p, body in self.posts if path is None or p == path]


def standard_table(table: Table) -> FakeTable:
    """`table` as a fresh environment has it: its standard columns only, no keys."""
    fake = FakeTable(table.logical_name, table.entity_set, table.primary_id, table.primary_name)
    fake.attributes[table.primary_id] = FakeAttribute("Uniqueidentifier")
    for noise in ("createdon", "modifiedon"):
        fake.attributes[noise] = FakeAttribute("DateTime")
    for column in table.columns:
        if not column.ours:
            kind = _STANDARD_TYPES.get(column.logical_name, _TYPES[column.kind])
            fake.attributes[column.logical_name] = FakeAttribute(kind, column.max_length)
    return fake


def standard_environment(*, iom: bool = True) -> dict[str, FakeTable]:
    """The schema's standard tables (IOM's only with `iom`), none of our tables or columns."""
    return {t.logical_name: standard_table(t) for t in SCHEMA if not t.ours and (t.required or iom)}


def over_http(
    api: FakeMetadataApi, *, token: str, seen: list[httpx.Request] | None = None
) -> httpx.MockTransport:
    """`api` at `/api/data/v9.2/` over HTTP; requests without `Bearer <token>` get a 401."""

    async def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        if request.headers.get("Authorization") != f"Bearer {token}":
            error = {"error": {"code": "0x80040220", "message": "The user is not authenticated."}}
            return httpx.Response(401, json=error)
        assert request.headers["OData-Version"] == "4.0"
        assert request.headers["If-None-Match"] == "null"
        raw = request.url.raw_path.decode()
        assert raw.startswith("/api/data/v9.2/"), raw
        path = raw.split("?")[0].removeprefix("/api/data/v9.2/")
        if request.url.query:
            path += "?" + request.url.query.decode()
        if request.method == "GET":
            answer = await api.get(path)
        else:
            answer = await api.post(path, json.loads(request.content))
        if answer.body is None:
            return httpx.Response(answer.status, headers=dict(answer.headers))
        return httpx.Response(answer.status, json=answer.body, headers=dict(answer.headers))

    return httpx.MockTransport(handle)
