"""Dataverse's `RemoteExecutionContext`, as a Service Bus service endpoint posts it in JSON.

Why this exists: a fulfillment order marked shipped or a salesorder cancelled in Dynamics must
reach the order lifecycle. An operator registers a Service Bus service endpoint (message format
JSON) with asynchronous post-operation steps; for each step Dataverse posts the execution context
of the operation to the `dataverse-events` queue. This module reads that body into one small,
typed `EntityChange`; what to do with it is `shared/handlers/dataverse_changes.py`'s business.

The wire format, from Microsoft's documentation:
- The body is the `RemoteExecutionContext` serialized with `DataContractJsonSerializer` (content
  type `application/json`; the endpoint's MessageFormat can also be .NET binary
  `application/msbin1` or XML `application/xml`, which we refuse with a line saying so):
  https://learn.microsoft.com/power-apps/developer/data-platform/write-listener-application-azure-solution
  (sections "Filter messages" and "Read the data context in multiple data formats").
- Its members (`MessageName`, `PrimaryEntityName`, `PrimaryEntityId`, `InputParameters`,
  `PostEntityImages`, `CorrelationId`, `Depth`, `OperationCreatedOn`, ...):
  https://learn.microsoft.com/dotnet/api/microsoft.xrm.sdk.remoteexecutioncontext
- A complete JSON sample (an asynchronous post-operation Update step with a post image), and the
  advice to read the body as plain JSON rather than deserialize it into the SDK type, because the
  service optimizes the payload: https://learn.microsoft.com/power-apps/developer/data-platform/use-webhooks
  ("Request body": "the same data passed to Azure Service Bus integrations").
- Over 192 KB, Dataverse drops `ParentContext`, `InputParameters`, `PreEntityImages` and
  `PostEntityImages` and adds a `MessageMaxSizeExceeded` message property:
  https://learn.microsoft.com/power-apps/developer/data-platform/azure-integration
  So a body may carry no attributes at all: `truncated` says so and callers read the row.
- The message properties Dataverse adds (organization, calling user, initiating user, table
  logical name, request name), named by the claim types
  `http://schemas.microsoft.com/xrm/2011/Claims/{Organization,User,InitiatingUser,
  EntityLogicalName,RequestName}`: https://learn.microsoft.com/dotnet/api/microsoft.xrm.sdk.claimtypes
  They are used when present and not required: the body alone is enough.
- DataContract JSON shapes: collections typed `object` carry a `"__type": "<Type>:<namespace>"`
  hint; dictionaries (`ParameterCollection`, `AttributeCollection`, `EntityImageCollection`) are
  `[{"key": ..., "value": ...}]` arrays; `DateTime` is `"\\/Date(<ms since epoch, UTC>[+-hhmm])\\/"`
  (the offset is informational): https://learn.microsoft.com/dotnet/framework/wcf/feature-details/stand-alone-json-serialization
  Typed attribute values: `EntityReference` (`Id`, `LogicalName`, `Name`), `OptionSetValue` and
  `Money` (`Value`), `OptionSetValueCollection`, `EntityCollection` (`Entities`), `AliasedValue`.

The parser is pure and lenient about what it does not need (unknown members are ignored, an
unknown typed value is kept as its JSON object), and strict about what it does: a body without a
message name, a table or a row id is a `RemoteContextError` with one line saying what is wrong.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Final

CONTRACTS_NAMESPACE: Final = "http://schemas.microsoft.com/xrm/2011/Contracts"
CLAIMS: Final = "http://schemas.microsoft.com/xrm/2011/Claims/"
PROPERTY_ORGANIZATION: Final = CLAIMS + "Organization"
PROPERTY_USER: Final = CLAIMS + "User"
PROPERTY_INITIATING_USER: Final = CLAIMS + "InitiatingUser"
PROPERTY_ENTITY: Final = CLAIMS + "EntityLogicalName"
PROPERTY_REQUEST: Final = CLAIMS + "RequestName"
PROPERTY_SIZE_EXCEEDED: Final = "MessageMaxSizeExceeded"
JSON_CONTENT_TYPE: Final = "application/json"
_OTHER_FORMATS: Final = {
    "application/msbin1": ".NET binary",
    "application/xml": "XML",
    "text/xml": "XML",
}
_DATE: Final = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_EMPTY_GUID: Final = uuid.UUID(int=0)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class RemoteContextError(ValueError):
    """A body that is not a readable Dataverse execution context; the message is one line."""


@dataclass(frozen=True, slots=True)
class EntityReference:
    logical_name: str
    id: uuid.UUID
    name: str | None = None


@dataclass(frozen=True, slots=True)
class OptionSetValue:
    value: int


@dataclass(frozen=True, slots=True)
class Money:
    value: Decimal


@dataclass(frozen=True, slots=True)
class EntityChange:
    """One Dataverse operation on one row, as the service endpoint reported it.

    `attributes` merges the `Target` the operation was given with the post images registered on
    the step (a post image wins: it is the row after the operation). `changed` names the Target's
    columns, which for an Update are the columns the caller set. `truncated` is True when the body
    carried neither Target attributes nor an image (over 192 KB, or a step without images).
    """

    message_name: str
    entity: str
    record_id: uuid.UUID
    attributes: Mapping[str, object]
    correlation_id: str | None
    operation_created_on: datetime | None
    depth: int
    initiating_user_id: uuid.UUID | None
    operation_id: str | None = None
    organization: str | None = None
    changed: tuple[str, ...] = ()
    row_version: str | None = None
    truncated: bool = False
    properties: Mapping[str, str] = field(default_factory=dict)


def parse_remote_context(
    body: bytes | str,
    *,
    properties: Mapping[str, object] | Mapping[bytes, object] | None = None,
    content_type: str | None = None,
) -> EntityChange:
    """The change a service endpoint message describes; RemoteContextError when unreadable.

    `properties` are the message's application properties (keys may arrive as bytes from the
    Functions binding); `content_type` the broker property, used only to name a wrong format.
    """
    props = _text_properties(properties or {})
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in _OTHER_FORMATS:
        raise RemoteContextError(
            f"the service endpoint sends {_OTHER_FORMATS[media]} ({media}); "
            "set its message format to JSON"
        )
    document = _json_object(body)
    message_name = _text(document.get("MessageName")) or props.get(PROPERTY_REQUEST)
    if not message_name:
        raise RemoteContextError("not a Dataverse execution context: no MessageName")
    target = _parameter(document.get("InputParameters"), "Target")
    target_entity = target if isinstance(target, dict) and "Attributes" in target else None
    target_reference = target if isinstance(target, dict) and target_entity is None else None
    images = _images(document.get("PostEntityImages"))
    entity = (
        _text(document.get("PrimaryEntityName"))
        or props.get(PROPERTY_ENTITY)
        or _text((target_entity or target_reference or {}).get("LogicalName"))
    )
    if not entity or entity == "none":
        raise RemoteContextError(f"{message_name}: the execution context names no table")
    record_id = (
        _guid(document.get("PrimaryEntityId"))
        or _guid((target_entity or target_reference or {}).get("Id"))
        or next((i for i in (_guid(img.get("Id")) for img in images) if i), None)
        or _guid(_parameter(document.get("OutputParameters"), "id"))
    )
    if record_id is None:
        raise RemoteContextError(f"{message_name} {entity}: the execution context names no row")
    attributes: dict[str, object] = {}
    changed: tuple[str, ...] = ()
    row_version: str | None = None
    if target_entity is not None:
        target_attributes = _attributes(target_entity.get("Attributes"), f"{entity} Target")
        attributes.update(target_attributes)
        changed = tuple(target_attributes)
        row_version = _text(target_entity.get("RowVersion"))
    for image in images:
        attributes.update(_attributes(image.get("Attributes"), f"{entity} post image"))
        row_version = _text(image.get("RowVersion")) or row_version
    depth = document.get("Depth")
    return EntityChange(
        message_name=message_name,
        entity=entity,
        record_id=record_id,
        attributes=attributes,
        correlation_id=_text(document.get("CorrelationId")),
        operation_created_on=_date_or_none(document.get("OperationCreatedOn")),
        depth=depth if isinstance(depth, int) and not isinstance(depth, bool) else 1,
        initiating_user_id=_guid(document.get("InitiatingUserId"))
        or _guid(props.get(PROPERTY_INITIATING_USER)),
        operation_id=_text(document.get("OperationId")),
        organization=_text(document.get("OrganizationName"))
        or props.get(PROPERTY_ORGANIZATION)
        or _text(document.get("OrganizationId")),
        changed=changed,
        row_version=row_version,
        truncated=not attributes or any(PROPERTY_SIZE_EXCEEDED in name for name in props),
        properties=props,
    )


# -- values -------------------------------------------------------------------------------------


def parse_value(raw: object) -> object:
    """A DataContract JSON attribute value in its Python form.

    `/Date(ms)/` → aware UTC datetime; EntityReference, OptionSetValue, Money → their types here;
    an OptionSetValueCollection → a tuple of ints; an EntityCollection → a tuple of attribute
    mappings; an AliasedValue → its value; anything else unchanged.
    """
    if isinstance(raw, str):
        match = _DATE.match(raw)
        return _from_epoch_ms(int(match.group(1))) if match else raw
    if isinstance(raw, list):
        values = [parse_value(item) for item in raw]
        if values and all(isinstance(v, OptionSetValue) for v in values):
            return tuple(v.value for v in values if isinstance(v, OptionSetValue))
        return tuple(values)
    if not isinstance(raw, dict):
        return raw
    kind = _type_name(raw)
    untyped_reference = kind is None and {"Id", "LogicalName"} <= raw.keys()
    if kind == "EntityReference" or (untyped_reference and "Attributes" not in raw):
        reference_id = _guid(raw.get("Id"))
        logical_name = _text(raw.get("LogicalName"))
        if reference_id is None or logical_name is None:
            return dict(raw)
        return EntityReference(logical_name, reference_id, _text(raw.get("Name")))
    if kind == "OptionSetValue" and isinstance(raw.get("Value"), int):
        return OptionSetValue(int(raw["Value"]))
    if kind == "Money":
        amount = _decimal(raw.get("Value"))
        return Money(amount) if amount is not None else dict(raw)
    if kind == "OptionSetValueCollection":
        items = raw.get("Values", raw.get("value", []))
        return parse_value(items) if isinstance(items, list) else dict(raw)
    if kind == "EntityCollection":
        entities = raw.get("Entities")
        if isinstance(entities, list):
            return tuple(
                _attributes(item.get("Attributes"), "EntityCollection")
                for item in entities
                if isinstance(item, dict)
            )
        return dict(raw)
    if kind == "AliasedValue":
        return parse_value(raw.get("Value"))
    return dict(raw)


def parse_date(text: str) -> datetime:
    """`/Date(1506409448000-0700)/` as an aware UTC datetime (the number is UTC milliseconds)."""
    match = _DATE.match(text)
    if match is None:
        raise ValueError(f"not a DataContract date: {text!r}")
    return _from_epoch_ms(int(match.group(1)))


def _from_epoch_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _date_or_none(raw: object) -> datetime | None:
    if isinstance(raw, str) and _DATE.match(raw):
        return parse_date(raw)
    return None


def _decimal(raw: object) -> Decimal | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        return None


def _type_name(raw: Mapping[str, object]) -> str | None:
    """`"EntityReference:http://schemas.microsoft.com/xrm/2011/Contracts"` → `EntityReference`."""
    hint = raw.get("__type")
    if not isinstance(hint, str) or not hint:
        return None
    return hint.split(":", 1)[0]


# -- structure ----------------------------------------------------------------------------------


def _json_object(body: bytes | str) -> dict[str, object]:
    try:
        # .NET writers often start a UTF-8 stream with a byte order mark.
        text = body.decode("utf-8-sig") if isinstance(body, bytes | bytearray) else body
        document = json.loads(text)
    except UnicodeDecodeError as exc:
        raise RemoteContextError(f"the body is not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise RemoteContextError(f"the body is not JSON ({exc.msg} at {exc.pos})") from None
    if not isinstance(document, dict):
        raise RemoteContextError("the body is not a JSON object")
    return document


def _pairs(raw: object) -> list[tuple[str, object]]:
    """A DataContract dictionary (`[{"key": k, "value": v}]`) as pairs; tolerates a plain
    JSON object, as a serializer with UseSimpleDictionaryFormat writes it."""
    if isinstance(raw, dict):
        return [(str(k), v) for k, v in raw.items()]
    if not isinstance(raw, list):
        return []
    pairs: list[tuple[str, object]] = []
    for item in raw:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            pairs.append((item["key"], item.get("value")))
    return pairs


def _parameter(raw: object, name: str) -> object:
    for key, value in _pairs(raw):
        if key == name:
            return value
    return None


def _images(raw: object) -> list[dict[str, object]]:
    return [value for _, value in _pairs(raw) if isinstance(value, dict)]


def _attributes(raw: object, where: str) -> dict[str, object]:
    if raw is not None and not isinstance(raw, list | dict):
        raise RemoteContextError(f"{where}: Attributes is not a key/value array")
    return {key: parse_value(value) for key, value in _pairs(raw)}


def _text(raw: object) -> str | None:
    return raw if isinstance(raw, str) and raw else None


def _guid(raw: object) -> uuid.UUID | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:
        value = uuid.UUID(raw.strip().strip("{}"))
    except ValueError:
        return None
    return None if value == _EMPTY_GUID else value


def _text_properties(
    properties: Mapping[str, object] | Mapping[bytes, object],
) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in properties.items():
        name = key.decode() if isinstance(key, bytes) else str(key)
        if value is None:
            found[name] = ""
        elif isinstance(value, bytes):
            found[name] = value.decode(errors="replace")
        else:
            found[name] = str(value)
    return found


_BOOKKEEPING: Final = frozenset(
    {
        "createdon",
        "createdby",
        "createdonbehalfby",
        "modifiedon",
        "modifiedby",
        "modifiedonbehalfby",
        "versionnumber",
        "ownerid",
        "owningbusinessunit",
        "owninguser",
        "owningteam",
    }
)


def changed_columns(change: EntityChange, limit: int = 8) -> Sequence[str]:
    """The columns the operation set, without the platform's bookkeeping and the row's own id:
    what is worth naming in a log line or a message detail."""
    primary_id = change.entity + "id"
    names = [n for n in change.changed if n not in _BOOKKEEPING and n != primary_id]
    return names[:limit]
