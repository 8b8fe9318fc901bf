"""Table-definition JSON in the Web API's metadata shapes: EntityMetadata, the
AttributeMetadata types (String, Memo, Integer, BigInt, Decimal, Money, DateTime, Boolean,
Lookup/Customer, Uniqueidentifier, State, Status) and EntityKeyMetadata (webapi/reference:
entitymetadata, attributemetadata, entitykeymetadata; EntityKeyIndexStatus EnumType), plus the
rules for what a definition may contain (define-alternate-keys-entity: key column types and size).
"""

from __future__ import annotations

import re
from typing import Any, Final

from local.dataverse import errors
from local.dataverse.catalog import Attribute, Entity, Key
from local.dataverse.security import privileges_json

NS: Final = "Microsoft.Dynamics.CRM."
# kind → (metadata type, AttributeType, AttributeTypeName)
TYPES: Final = {
    "string": ("StringAttributeMetadata", "String", "StringType"),
    "memo": ("MemoAttributeMetadata", "Memo", "MemoType"),
    "integer": ("IntegerAttributeMetadata", "Integer", "IntegerType"),
    "bigint": ("BigIntAttributeMetadata", "BigInt", "BigIntType"),
    "decimal": ("DecimalAttributeMetadata", "Decimal", "DecimalType"),
    "money": ("MoneyAttributeMetadata", "Money", "MoneyType"),
    "datetime": ("DateTimeAttributeMetadata", "DateTime", "DateTimeType"),
    "boolean": ("BooleanAttributeMetadata", "Boolean", "BooleanType"),
    "lookup": ("LookupAttributeMetadata", "Lookup", "LookupType"),
    "uniqueidentifier": (
        "UniqueIdentifierAttributeMetadata",
        "Uniqueidentifier",
        "UniqueidentifierType",
    ),
}
SPECIAL = {
    "statecode": ("StateAttributeMetadata", "State", "StateType"),
    "statuscode": ("StatusAttributeMetadata", "Status", "StatusType"),
}
CREATABLE = {
    TYPES[k][0]: k
    for k in ("string", "memo", "integer", "bigint", "decimal", "money", "datetime", "boolean")
}
BY_ATTRIBUTE_TYPE = {TYPES[k][1]: k for k in CREATABLE.values()}
KEY_KINDS = {"decimal", "integer", "string", "datetime", "lookup"}  # define-alternate-keys-entity
KEY_BYTES = {"decimal": 17, "integer": 4, "datetime": 8, "lookup": 16}
SCHEMA_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_]+$")


def label(text: str) -> dict[str, Any]:
    localized = {"Label": text, "LanguageCode": 1033, "IsManaged": False, "HasChanged": None}
    return {"LocalizedLabels": [localized], "UserLocalizedLabel": localized}


def label_text(raw: Any) -> str:
    if isinstance(raw, dict):
        labels = raw.get("LocalizedLabels") or []
        if labels and isinstance(labels[0], dict):
            return str(labels[0].get("Label", ""))
    return ""


def invalid(message: str) -> errors.DataverseError:
    return errors.bad_request(message, errors.INVALID_ARGUMENT)


def entity_json(entity: Entity) -> dict[str, Any]:
    return {
        "MetadataId": entity.id,
        "LogicalName": entity.logical_name,
        "SchemaName": entity.schema_name,
        "EntitySetName": entity.entity_set,
        "LogicalCollectionName": entity.entity_set,
        "PrimaryIdAttribute": entity.primary_id,
        "PrimaryNameAttribute": entity.primary_name,
        "ObjectTypeCode": entity.object_type_code,
        "IsCustomEntity": entity.custom,
        "IsManaged": not entity.custom,
        "IsActivity": False,
        "OwnershipType": "UserOwned",
        "ChangeTrackingEnabled": True,
        "IsOptimisticConcurrencyEnabled": True,
        "DisplayName": label(entity.label),
        "HasChanged": None,
        "Privileges": privileges_json(entity),
    }


def attribute_json(entity: Entity, attribute: Attribute) -> dict[str, Any]:
    odata_type, attribute_type, type_name = (
        SPECIAL.get(attribute.logical_name) or TYPES[attribute.kind]
    )
    if attribute.kind == "lookup" and attribute.polymorphic:
        attribute_type, type_name = "Customer", "CustomerType"
    body: dict[str, Any] = {
        "@odata.type": f"#{NS}{odata_type}",
        "MetadataId": attribute.id,
        "LogicalName": attribute.logical_name,
        "SchemaName": attribute.schema_name,
        "EntityLogicalName": entity.logical_name,
        "AttributeType": attribute_type,
        "AttributeTypeName": {"Value": type_name},
        "IsCustomAttribute": attribute.custom,
        "IsManaged": not attribute.custom,
        "IsPrimaryId": attribute.primary_id,
        "IsPrimaryName": attribute.primary_name,
        "IsValidForRead": True,
        "IsValidForCreate": not attribute.read_only,
        "IsValidForUpdate": not attribute.read_only and not attribute.primary_id,
        "RequiredLevel": {
            "Value": "SystemRequired" if attribute.primary_id else "None",
            "CanBeChanged": not attribute.primary_id,
            "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings",
        },
        "DisplayName": label(attribute.label or attribute.logical_name),
        "HasChanged": None,
    }
    if attribute.kind in ("string", "memo"):
        body["MaxLength"] = attribute.max_length
    if attribute.kind == "lookup":
        body["Targets"] = list(attribute.targets)
    return body


def key_json(entity: Entity, key: Key) -> dict[str, Any]:
    return {
        "MetadataId": key.id,
        "LogicalName": key.logical_name,
        "SchemaName": key.schema_name,
        "EntityLogicalName": entity.logical_name,
        "KeyAttributes": list(key.attributes),
        "EntityKeyIndexStatus": key.status,
        "AsyncJob": key.job_id,
        "DisplayName": label(key.label or key.schema_name),
        "IsManaged": False,
        "IsCustomizable": {
            "Value": True,
            "CanBeChanged": True,
            "ManagedPropertyLogicalName": "iscustomizable",
        },
        "IntroducedVersion": "1.0",
        "IsExportKey": False,
        "IsSecondaryKey": False,
        "IsSynchronous": False,
        "HasChanged": None,
    }
