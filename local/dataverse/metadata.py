"""Table definitions over the Web API: `EntityDefinitions`, `Attributes`, `Keys`,
`RelationshipDefinitions` (use-web-api-metadata, query-metadata-web-api,
create-update-entity-definitions-using-web-api, create-update-column-definitions-using-web-api,
create-update-entity-relationships-using-web-api, define-alternate-keys-entity).

- GET `EntityDefinitions` (`$select`, `$filter`, `$expand=Attributes(...),Keys(...)`),
  `EntityDefinitions(LogicalName='x')` or `(<MetadataId>)`, `.../Attributes[(LogicalName='y')]`
  (optionally cast: `/Microsoft.Dynamics.CRM.StringAttributeMetadata`), `.../Keys[(...)]`.
- POST `EntityDefinitions` (a custom table with its primary name column), POST `.../Attributes`
  (String, Memo, Integer, BigInt, Decimal, Money, DateTime, Boolean), POST `.../Keys`
  (EntityKeyMetadata), DELETE `.../Keys(...)`, POST `RelationshipDefinitions`
  (OneToManyRelationshipMetadata with its Lookup: how lookup columns are created).
Creates answer `204` with `OData-EntityId`. A new key's index is built in the background:
`EntityKeyIndexStatus` goes Pending → InProgress → Active (or Failed when the columns hold
duplicates) over LOCAL_DATAVERSE_KEY_ACTIVATION_SECONDS.
"""

from __future__ import annotations

import uuid
from typing import Any

from local.dataverse import catalog as cat
from local.dataverse import errors
from local.dataverse.catalog import Attribute, Collection, Entity, Key
from local.dataverse.definitions import (
    BY_ATTRIBUTE_TYPE,
    CREATABLE,
    KEY_BYTES,
    KEY_KINDS,
    NS,
    SCHEMA_NAME,
    SPECIAL,
    TYPES,
    attribute_json,
    entity_json,
    invalid,
    key_json,
    label_text,
)
from local.dataverse.keys import Bare, Segment, parse_predicate
from local.dataverse.messages import ApiRequest, ApiResponse, json_response, no_content
from local.dataverse.odata_query import Options, bind, parse_filter, parse_options
from local.dataverse.store import Store


def _matches(item: Any, name: str) -> bool:
    return isinstance(item, (Entity, Attribute, Key)) and (
        item.logical_name == name or item.id == name
    )


def _find(items: list[Any], key: str, kind: str) -> Any:
    pairs = parse_predicate(key)
    if len(pairs) != 1:
        raise errors.bad_request(f"Invalid {kind} key '{key}'.")
    name, value = pairs[0]
    if name not in (None, "LogicalName", "MetadataId"):
        raise errors.bad_request(f"Invalid {kind} key '{key}'.")
    wanted = str(value).lower() if isinstance(value, Bare) else str(value)
    for item in items:
        if _matches(item, wanted):
            return item
    raise errors.DataverseError(
        404,
        errors.OBJECT_DOES_NOT_EXIST,
        f"Could not find {kind} with {name or 'MetadataId'} = {value}",
    )


def _shape(
    body: dict[str, Any], options: Options, nested: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    if options.select is not None:
        kept = {"MetadataId", *options.select}
        body = {k: v for k, v in body.items() if k in kept or k == "@odata.type"}
    for item in options.expand:
        if item.name not in nested:
            raise errors.bad_request(
                f"Could not find a property named '{item.name}' on type '{NS}EntityMetadata'."
            )
        body[item.name] = _apply(nested[item.name], item.options)
    return body


def _apply(items: list[dict[str, Any]], options: Options) -> list[dict[str, Any]]:
    if options.filter:
        predicate = bind(parse_filter(options.filter), lambda _: "any", _path_get, options.filter)
        items = [i for i in items if predicate(i) is True]
    if options.select is not None:
        kept = {"MetadataId", "@odata.type", *options.select}
        items = [{k: v for k, v in i.items() if k in kept} for i in items]
    return items


def _path_get(row: dict[str, Any], name: str) -> Any:
    value: Any = row
    for part in name.split("/"):
        value = value.get(part) if isinstance(value, dict) else None
    return value


class Metadata:
    """The metadata endpoints over one store."""

    def __init__(self, store: Store, clock_now: Any) -> None:
        self.store = store
        self.now = clock_now

    def handle(self, request: ApiRequest, segments: list[Segment]) -> ApiResponse:
        options = parse_options(request.query)
        head = segments[0]
        if head.name == "RelationshipDefinitions":
            if request.method != "POST" or len(segments) != 1 or head.key is not None:
                raise errors.DataverseError(
                    405, errors.ODATA_ERROR, "Only POST RelationshipDefinitions is supported."
                )
            return self.create_relationship(request)
        if head.key is None:
            if len(segments) != 1:
                raise errors.no_segment(segments[1].name)
            if request.method == "GET":
                return self.list_entities(request, options)
            if request.method == "POST":
                return self.create_entity(request)
            raise errors.DataverseError(405, errors.ODATA_ERROR, "The method is not allowed here.")
        entity = _find(list(self.store.catalog.values()), head.key, "EntityMetadata")
        if len(segments) == 1:
            if request.method != "GET":
                raise errors.DataverseError(
                    405, errors.ODATA_ERROR, "The method is not allowed here."
                )
            body = {
                "@odata.context": f"{request.base_url}$metadata#EntityDefinitions/$entity",
                **self.entity_body(entity, options),
            }
            return json_response(200, body)
        part = segments[1]
        if part.name == "Attributes":
            return self.attributes(request, entity, segments[1:], options)
        if part.name == "Keys":
            return self.keys(request, entity, part, options)
        raise errors.no_segment(part.name)

    @staticmethod
    def _context(request: ApiRequest, entity: Entity) -> str:
        return f"{request.base_url}$metadata#EntityDefinitions('{entity.id}')"

    @staticmethod
    def _path(request: ApiRequest, entity: Entity) -> str:
        return f"{request.base_url}EntityDefinitions(LogicalName='{entity.logical_name}')"

    # --- reads ------------------------------------------------------------------------------

    def entity_body(self, entity: Entity, options: Options) -> dict[str, Any]:
        nested = {
            "Attributes": [attribute_json(entity, a) for a in entity.attributes.values()],
            "Keys": [key_json(entity, k) for k in entity.keys.values()],
        }
        return _shape(entity_json(entity), options, nested)

    def list_entities(self, request: ApiRequest, options: Options) -> ApiResponse:
        bodies = [entity_json(e) for e in self.store.catalog.values()]
        if options.filter:
            predicate = bind(
                parse_filter(options.filter), lambda _: "any", _path_get, options.filter
            )
            bodies = [b for b in bodies if predicate(b) is True]
        wanted = {b["LogicalName"] for b in bodies}
        value = [
            self.entity_body(e, options)
            for e in self.store.catalog.values()
            if e.logical_name in wanted
        ]
        return json_response(
            200,
            {"@odata.context": f"{request.base_url}$metadata#EntityDefinitions", "value": value},
        )

    def attributes(
        self, request: ApiRequest, entity: Entity, segments: list[Segment], options: Options
    ) -> ApiResponse:
        head = segments[0]
        if request.method == "POST" and head.key is None and len(segments) == 1:
            return self.create_attribute(request, entity)
        if request.method != "GET":
            raise errors.DataverseError(405, errors.ODATA_ERROR, "The method is not allowed here.")
        items = list(entity.attributes.values())
        if len(segments) > 1:
            cast = segments[1].name.removeprefix(NS)
            items = [a for a in items if (SPECIAL.get(a.logical_name) or TYPES[a.kind])[0] == cast]
        bodies = [attribute_json(entity, a) for a in items]
        context = f"{self._context(request, entity)}/Attributes"
        if head.key is not None:
            attribute = _find(items, head.key, "AttributeMetadata")
            body = _apply([attribute_json(entity, attribute)], options)[0]
            return json_response(200, {"@odata.context": context + "/$entity", **body})
        return json_response(200, {"@odata.context": context, "value": _apply(bodies, options)})

    def keys(
        self, request: ApiRequest, entity: Entity, segment: Segment, options: Options
    ) -> ApiResponse:
        if segment.key is None:
            if request.method == "POST":
                return self.create_key(request, entity)
            if request.method != "GET":
                raise errors.DataverseError(
                    405, errors.ODATA_ERROR, "The method is not allowed here."
                )
            bodies = [key_json(entity, k) for k in entity.keys.values()]
            return json_response(
                200,
                {
                    "@odata.context": f"{self._context(request, entity)}/Keys",
                    "value": _apply(bodies, options),
                },
            )
        key = _find(list(entity.keys.values()), segment.key, "EntityKeyMetadata")
        if request.method == "DELETE":
            self.store.delete_key(entity, key)
            return no_content()
        if request.method != "GET":
            raise errors.DataverseError(405, errors.ODATA_ERROR, "The method is not allowed here.")
        body = _apply([key_json(entity, key)], options)[0]
        return json_response(
            200,
            {
                "@odata.context": f"{self._context(request, entity)}/Keys/$entity",
                **body,
            },
        )

    # --- creates ----------------------------------------------------------------------------

    def _new_attribute(self, entity: Entity, raw: Any) -> Attribute:
        if not isinstance(raw, dict):
            raise invalid("An attribute definition must be a JSON object.")
        odata_type = str(raw.get("@odata.type", "")).lstrip("#").removeprefix(NS)
        if odata_type == "LookupAttributeMetadata" or raw.get("AttributeType") in (
            "Lookup",
            "Customer",
        ):
            raise invalid(
                "Lookup attributes are created with their relationship: POST "
                "RelationshipDefinitions with a OneToManyRelationshipMetadata whose Lookup is the "
                "attribute."
            )
        kind = CREATABLE.get(odata_type) or BY_ATTRIBUTE_TYPE.get(str(raw.get("AttributeType", "")))
        if kind is None:
            raise invalid(
                f"Attribute type '{odata_type or raw.get('AttributeType')}' is not supported here."
            )
        schema_name = str(raw.get("SchemaName", ""))
        if not SCHEMA_NAME.match(schema_name):
            raise invalid(
                f"The SchemaName '{schema_name}' is not valid: it needs the publisher's "
                "customization prefix (prefix_Name)."
            )
        logical = schema_name.lower()
        if logical in entity.attributes:
            raise invalid(
                f"An attribute with the name {logical} already exists on entity "
                f"{entity.logical_name}."
            )
        max_length: int | None = None
        if kind in ("string", "memo"):
            max_length = int(raw.get("MaxLength") or (100 if kind == "string" else 2000))
        return Attribute(
            logical,
            kind,
            schema_name=schema_name,
            label=label_text(raw.get("DisplayName")) or logical,
            max_length=max_length,
            custom=True,
            primary_name=bool(raw.get("IsPrimaryName")),
        )

    def create_attribute(self, request: ApiRequest, entity: Entity) -> ApiResponse:
        attribute = self._new_attribute(entity, request.json())
        self.store.add_attribute(entity, attribute)
        location = f"{self._path(request, entity)}/Attributes({attribute.id})"
        return no_content([("OData-EntityId", location)])

    def create_entity(self, request: ApiRequest) -> ApiResponse:
        raw = request.json()
        if not isinstance(raw, dict):
            raise invalid("An entity definition must be a JSON object.")
        schema_name = str(raw.get("SchemaName", ""))
        if not SCHEMA_NAME.match(schema_name):
            raise invalid(
                f"The SchemaName '{schema_name}' is not valid: it needs the customization prefix."
            )
        logical = schema_name.lower()
        if logical in self.store.catalog:
            raise invalid(f"An entity with the name {logical} already exists.")
        entity_set = str(raw.get("EntitySetName") or logical + "s")
        if self.store.entity_by_set(entity_set) is not None:
            raise invalid(f"The entity set name {entity_set} is already used.")
        attributes = raw.get("Attributes") or []
        primaries = [a for a in attributes if isinstance(a, dict) and a.get("IsPrimaryName")]
        if len(primaries) != 1:
            raise invalid(
                "An entity definition needs exactly one primary name attribute (IsPrimaryName)."
            )
        entity = cat.new_entity(
            logical,
            entity_set,
            logical + "id",
            str(primaries[0].get("SchemaName", "")).lower(),
            custom=True,
            label=label_text(raw.get("DisplayName")) or logical,
            schema_name=schema_name,
        )
        entity.object_type_code = 10_000 + len(self.store.catalog) + 100
        for definition in attributes:
            attribute = self._new_attribute(entity, definition)
            entity.attributes[attribute.logical_name] = attribute
        with self.store.savepoint():
            self.store.create_table(entity)
        return no_content([("OData-EntityId", f"{request.base_url}EntityDefinitions({entity.id})")])

    def create_key(self, request: ApiRequest, entity: Entity) -> ApiResponse:
        raw = request.json()
        if not isinstance(raw, dict):
            raise invalid("A key definition must be a JSON object.")
        schema_name = str(raw.get("SchemaName", ""))
        if not SCHEMA_NAME.match(schema_name):
            raise invalid(
                f"The SchemaName '{schema_name}' is not valid: it needs the customization prefix."
            )
        logical = schema_name.lower()
        columns = raw.get("KeyAttributes")
        if (
            not isinstance(columns, list)
            or not columns
            or not all(isinstance(c, str) for c in columns)
        ):
            raise invalid("KeyAttributes must list the key's column logical names.")
        if logical in entity.keys:
            raise errors.DataverseError(
                400,
                errors.ENTITY_KEY_NAME_EXISTS,
                f"An entity key with the name {logical} already exists on entity "
                f"{entity.logical_name}.",
            )
        if any(set(k.attributes) == set(columns) for k in entity.keys.values()):
            raise errors.DataverseError(
                400,
                errors.ENTITY_KEY_SAME_ATTRIBUTES,
                "An entity key with the selected attributes already exists on entity.",
            )
        if len(entity.keys) >= 10:
            raise invalid(
                f"Entity {entity.logical_name} already has the maximum of 10 alternate keys."
            )
        if len(columns) > 16:
            raise invalid("A key can have at most 16 attributes.")
        size = 0
        for name in columns:
            attribute = entity.attributes.get(name)
            if attribute is None:
                raise invalid(
                    f"The attribute {name} does not exist on entity {entity.logical_name}."
                )
            if attribute.kind not in KEY_KINDS:
                raise invalid(
                    f"Attributes of type {TYPES[attribute.kind][1]} cannot be part of a key: "
                    f"{name}."
                )
            size += (
                (attribute.max_length or 0) * 2
                if attribute.kind == "string"
                else KEY_BYTES[attribute.kind]
            )
        if size > 900:
            raise invalid(f"The key's columns take {size} bytes; a key can take at most 900 bytes.")
        key = Key(
            logical,
            tuple(columns),
            schema_name=schema_name,
            label=label_text(raw.get("DisplayName")) or schema_name,
            status=cat.STATUS_PENDING,
            build_started=self.now(),
        )
        self.store.add_key(entity, key)
        location = f"{self._path(request, entity)}/Keys({key.id})"
        return no_content([("OData-EntityId", location)])

    def create_relationship(self, request: ApiRequest) -> ApiResponse:
        raw = request.json()
        if not isinstance(raw, dict):
            raise invalid("A relationship definition must be a JSON object.")
        if str(raw.get("@odata.type", "")).lstrip("#") != NS + "OneToManyRelationshipMetadata":
            raise invalid("Only OneToManyRelationshipMetadata relationships are supported.")
        referenced = self.store.catalog.get(str(raw.get("ReferencedEntity", "")))
        referencing = self.store.catalog.get(str(raw.get("ReferencingEntity", "")))
        if referenced is None or referencing is None:
            raise invalid("ReferencedEntity and ReferencingEntity must name existing tables.")
        lookup = raw.get("Lookup")
        if not isinstance(lookup, dict):
            raise invalid("A one-to-many relationship needs its Lookup attribute definition.")
        relationship = str(raw.get("SchemaName", ""))
        if not SCHEMA_NAME.match(relationship):
            raise invalid(f"The relationship SchemaName '{relationship}' is not valid.")
        schema_name = str(lookup.get("SchemaName", ""))
        if not SCHEMA_NAME.match(schema_name):
            raise invalid(f"The lookup SchemaName '{schema_name}' is not valid.")
        logical = schema_name.lower()
        if logical in referencing.attributes:
            raise invalid(
                f"An attribute with the name {logical} already exists on entity "
                f"{referencing.logical_name}."
            )
        navigation = str(raw.get("ReferencingEntityNavigationPropertyName") or schema_name)
        collection = str(raw.get("ReferencedEntityNavigationPropertyName") or relationship)
        attribute = Attribute(
            logical,
            "lookup",
            schema_name=schema_name,
            label=label_text(lookup.get("DisplayName")) or logical,
            targets=(referenced.logical_name,),
            navigation={referenced.logical_name: navigation},
            custom=True,
        )
        with self.store.savepoint():
            self.store.add_attribute(referencing, attribute)
            referenced.collections[collection] = Collection(
                collection, referencing.logical_name, logical
            )
            self.store.save_entity(referenced)
        relationship_id = str(uuid.uuid4())
        return no_content(
            [("OData-EntityId", f"{request.base_url}RelationshipDefinitions({relationship_id})")]
        )
