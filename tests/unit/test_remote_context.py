"""The RemoteExecutionContext parser, on bodies shaped like the ones Dataverse posts.

The samples follow Microsoft's published JSON (use-webhooks.md: "the same data passed to Azure
Service Bus integrations"): DataContract JSON with escaped slashes, `__type` hints on values
typed `object`, key/value arrays, `\\/Date(ms±hhmm)\\/` dates, post images without type hints.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from shared.dataverse.remote_context import (
    PROPERTY_ENTITY,
    PROPERTY_INITIATING_USER,
    PROPERTY_REQUEST,
    PROPERTY_SIZE_EXCEEDED,
    EntityReference,
    Money,
    OptionSetValue,
    RemoteContextError,
    changed_columns,
    parse_date,
    parse_remote_context,
    parse_value,
)

FO_ID = "6d81597f-0f9f-e711-8122-000d3aa2331c"
SO_ID = "1f3a0b2c-4d5e-4f60-8a7b-9c0d1e2f3a4b"
USER = "75c2dd85-e89e-e711-8122-000d3aa2331c"
NS = "http:\\/\\/schemas.microsoft.com\\/xrm\\/2011\\/Contracts"

# An asynchronous post-operation Update of a fulfillment order with a post image, as Dataverse
# writes it (slashes escaped, the Target typed, the image not), trimmed of nothing it sends.
FULFILLMENT_UPDATE = (
    """{
    "BusinessUnitId": "e2b9dd85-e89e-e711-8122-000d3aa2331c",
    "CorrelationId": "b374239d-4233-41a9-8b17-a86cb4f737b5",
    "Depth": 1,
    "InitiatingUserAzureActiveDirectoryObjectId": "00000000-0000-0000-0000-000000000000",
    "InitiatingUserId": "@USER@",
    "InputParameters": [{
        "key": "Target",
        "value": {
            "__type": "Entity:@NS@",
            "Attributes": [
                {"key": "bciom_shipped", "value": true},
                {"key": "bciom_trackingnumber", "value": "1Z999AA10123456784"},
                {"key": "msdyn_fulfillmentorderid", "value": "@FO@"},
                {"key": "modifiedon", "value": "\\/Date(1764331200000)\\/"},
                {"key": "modifiedby", "value": {
                    "__type": "EntityReference:@NS@",
                    "Id": "@USER@", "KeyAttributes": [], "LogicalName": "systemuser",
                    "Name": null, "RowVersion": null}},
                {"key": "modifiedonbehalfby", "value": null}
            ],
            "EntityState": null, "FormattedValues": [], "Id": "@FO@", "KeyAttributes": [],
            "LogicalName": "msdyn_fulfillmentorder", "RelatedEntities": [], "RowVersion": null
        }
    }],
    "IsExecutingOffline": false, "IsInTransaction": false, "IsOfflinePlayback": false,
    "IsolationMode": 1,
    "MessageName": "Update",
    "Mode": 1,
    "OperationCreatedOn": "\\/Date(1764331201000-0700)\\/",
    "OperationId": "4af10637-4ea2-e711-8122-000d3aa2331c",
    "OrganizationId": "4ef5b371-e89e-e711-8122-000d3aa2331c",
    "OrganizationName": "contoso",
    "OutputParameters": [],
    "OwningExtension": {"Id": "75417616-4ea2-e711-8122-000d3aa2331c", "KeyAttributes": [],
        "LogicalName": "sdkmessageprocessingstep", "Name": null, "RowVersion": null},
    "ParentContext": null,
    "PostEntityImages": [{
        "key": "PostImage",
        "value": {
            "Attributes": [
                {"key": "msdyn_fulfillmentorderid", "value": "@FO@"},
                {"key": "msdyn_name", "value": "FO-100-1"},
                {"key": "bciom_storehash", "value": "abc123"},
                {"key": "bciom_bcorderid", "value": 100},
                {"key": "bciom_fulfillmentkey", "value": "100-1"},
                {"key": "bciom_shipped", "value": true},
                {"key": "bciom_trackingnumber", "value": "1Z999AA10123456784"},
                {"key": "bciom_salesorder", "value": {
                    "__type": "EntityReference:@NS@",
                    "Id": "@SO@", "KeyAttributes": [], "LogicalName": "salesorder",
                    "Name": "Order 100", "RowVersion": null}},
                {"key": "versionnumber", "value": 918273},
                {"key": "modifiedon", "value": "\\/Date(1764331200000)\\/"}
            ],
            "EntityState": null, "FormattedValues": [], "Id": "@FO@", "KeyAttributes": [],
            "LogicalName": "msdyn_fulfillmentorder", "RelatedEntities": [], "RowVersion": "918273"
        }
    }],
    "PreEntityImages": [],
    "PrimaryEntityId": "@FO@",
    "PrimaryEntityName": "msdyn_fulfillmentorder",
    "RequestId": null,
    "SecondaryEntityName": "none",
    "SharedVariables": [],
    "Stage": 40,
    "UserAzureActiveDirectoryObjectId": "00000000-0000-0000-0000-000000000000",
    "UserId": "@USER@"
}""".replace("@USER@", USER)
    .replace("@NS@", NS)
    .replace("@FO@", FO_ID)
    .replace("@SO@", SO_ID)
    .encode()
)


def salesorder_update(**overrides: Any) -> dict[str, Any]:
    """A salesorder cancelled: statecode/statuscode as OptionSetValues, totals as Money."""
    context: dict[str, Any] = {
        "CorrelationId": "0d5e1b8e-5f44-4cb1-9a44-0b8f4b1e2a10",
        "Depth": 2,
        "InitiatingUserId": USER,
        "InputParameters": [
            {
                "key": "Target",
                "value": {
                    "__type": f"Entity:{NS.replace(chr(92), '')}",
                    "Attributes": [
                        {
                            "key": "statecode",
                            "value": {"__type": "OptionSetValue:x", "Value": 2},
                        },
                        {
                            "key": "statuscode",
                            "value": {"__type": "OptionSetValue:x", "Value": 4},
                        },
                    ],
                    "Id": SO_ID,
                    "LogicalName": "salesorder",
                },
            }
        ],
        "MessageName": "Update",
        "OperationCreatedOn": "/Date(1764331200000+0100)/",
        "OperationId": "9b0c8f2a-0000-4000-8000-000000000001",
        "PostEntityImages": [
            {
                "key": "AsynchronousStepPrimaryName",
                "value": {
                    "Attributes": [
                        {"key": "bciom_storehash", "value": "abc123"},
                        {"key": "bciom_bcorderid", "value": 100},
                        {
                            "key": "totalamount",
                            "value": {"__type": "Money:x", "Value": 149.95},
                        },
                        {
                            "key": "statecode",
                            "value": {"__type": "OptionSetValue:x", "Value": 2},
                        },
                    ],
                    "Id": SO_ID,
                    "LogicalName": "salesorder",
                },
            }
        ],
        "PrimaryEntityId": SO_ID,
        "PrimaryEntityName": "salesorder",
        "Stage": 40,
    }
    context.update(overrides)
    return context


def test_a_fulfillment_order_update_as_dataverse_posts_it() -> None:
    change = parse_remote_context(FULFILLMENT_UPDATE, content_type="application/json")

    assert change.message_name == "Update"
    assert change.entity == "msdyn_fulfillmentorder"
    assert change.record_id == uuid.UUID(FO_ID)
    assert change.correlation_id == "b374239d-4233-41a9-8b17-a86cb4f737b5"
    assert change.depth == 1
    assert change.initiating_user_id == uuid.UUID(USER)
    assert change.operation_id == "4af10637-4ea2-e711-8122-000d3aa2331c"
    assert change.organization == "contoso"
    # The ms count is UTC; the -0700 only says the server's clock was local time.
    assert change.operation_created_on == datetime(2025, 11, 28, 12, 0, 1, tzinfo=UTC)
    assert change.row_version == "918273"
    assert not change.truncated
    # Target and post image merged; the image holds the order's key.
    attributes = change.attributes
    assert attributes["bciom_storehash"] == "abc123"
    assert attributes["bciom_bcorderid"] == 100
    assert attributes["bciom_shipped"] is True
    assert attributes["versionnumber"] == 918273
    assert attributes["modifiedon"] == datetime(2025, 11, 28, 12, 0, tzinfo=UTC)
    assert attributes["modifiedby"] == EntityReference("systemuser", uuid.UUID(USER))
    assert attributes["modifiedonbehalfby"] is None
    assert attributes["bciom_salesorder"] == EntityReference(
        "salesorder", uuid.UUID(SO_ID), "Order 100"
    )
    # What the caller set, without the platform's bookkeeping.
    assert changed_columns(change) == ["bciom_shipped", "bciom_trackingnumber"]


def test_typed_values_option_sets_and_money() -> None:
    change = parse_remote_context(json.dumps(salesorder_update()))

    assert change.entity == "salesorder"
    assert change.depth == 2
    assert change.attributes["statecode"] == OptionSetValue(2)
    assert change.attributes["statuscode"] == OptionSetValue(4)
    assert change.attributes["totalamount"] == Money(Decimal("149.95"))
    assert change.changed == ("statecode", "statuscode")
    assert change.operation_created_on == datetime(2025, 11, 28, 12, 0, tzinfo=UTC)


def test_a_create_names_its_row_by_the_output_id_when_nothing_else_does() -> None:
    body = {
        "MessageName": "Create",
        "PrimaryEntityName": "msdyn_fulfillmentorder",
        "PrimaryEntityId": "00000000-0000-0000-0000-000000000000",
        "InputParameters": [
            {
                "key": "Target",
                "value": {
                    "__type": "Entity:x",
                    "Attributes": [{"key": "bciom_bcorderid", "value": 7}],
                    "Id": "00000000-0000-0000-0000-000000000000",
                    "LogicalName": "msdyn_fulfillmentorder",
                },
            }
        ],
        "OutputParameters": [{"key": "id", "value": FO_ID}],
    }
    change = parse_remote_context(json.dumps(body).encode())
    assert change.message_name == "Create"
    assert change.record_id == uuid.UUID(FO_ID)
    assert change.attributes == {"bciom_bcorderid": 7}


def test_a_byte_order_mark_is_read_past() -> None:
    change = parse_remote_context(b"\xef\xbb\xbf" + FULFILLMENT_UPDATE)
    assert change.entity == "msdyn_fulfillmentorder"


def test_properties_fill_in_what_the_body_lacks_and_arrive_as_bytes() -> None:
    body = salesorder_update()
    del body["MessageName"], body["PrimaryEntityName"]
    body["InputParameters"] = []
    properties = {
        PROPERTY_REQUEST.encode(): b"Update",
        PROPERTY_ENTITY.encode(): b"salesorder",
        PROPERTY_INITIATING_USER.encode(): USER.encode(),
    }
    change = parse_remote_context(json.dumps(body), properties=properties)
    assert change.message_name == "Update"
    assert change.entity == "salesorder"
    assert change.properties[PROPERTY_ENTITY] == "salesorder"


def test_the_body_wins_over_the_properties() -> None:
    change = parse_remote_context(
        FULFILLMENT_UPDATE, properties={PROPERTY_ENTITY: "salesorder", PROPERTY_REQUEST: "Create"}
    )
    assert (change.entity, change.message_name) == ("msdyn_fulfillmentorder", "Update")


def test_a_body_dataverse_stripped_for_size_is_marked_truncated() -> None:
    body = salesorder_update()
    for name in ("InputParameters", "PostEntityImages", "PreEntityImages", "ParentContext"):
        body.pop(name, None)
    change = parse_remote_context(
        json.dumps(body), properties={PROPERTY_SIZE_EXCEEDED: True, PROPERTY_ENTITY: "salesorder"}
    )
    assert change.truncated
    assert change.attributes == {}
    assert change.record_id == uuid.UUID(SO_ID)


def test_attributes_present_but_size_exceeded_still_reads_truncated() -> None:
    change = parse_remote_context(FULFILLMENT_UPDATE, properties={PROPERTY_SIZE_EXCEEDED: "1"})
    assert change.truncated


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/Date(0)/", datetime(1970, 1, 1, tzinfo=UTC)),
        ("/Date(1506409448000-0700)/", datetime(2017, 9, 26, 7, 4, 8, tzinfo=UTC)),
        ("/Date(-86400000+0000)/", datetime(1969, 12, 31, tzinfo=UTC)),
    ],
)
def test_dates(raw: str, expected: datetime) -> None:
    assert parse_date(raw) == expected
    assert parse_value(raw) == expected


def test_values_left_as_they_are() -> None:
    assert parse_value("plain text") == "plain text"
    assert parse_value(12.5) == 12.5
    assert parse_value(None) is None
    assert parse_value({"__type": "BooleanManagedProperty:x", "Value": True}) == {
        "__type": "BooleanManagedProperty:x",
        "Value": True,
    }


def test_collections_and_aliased_values() -> None:
    options = [
        {"__type": "OptionSetValue:x", "Value": 1},
        {"__type": "OptionSetValue:x", "Value": 3},
    ]
    assert parse_value(options) == (1, 3)
    assert parse_value({"__type": "AliasedValue:x", "Value": "/Date(0)/"}) == datetime(
        1970, 1, 1, tzinfo=UTC
    )
    collection = {
        "__type": "EntityCollection:x",
        "Entities": [{"Attributes": [{"key": "name", "value": "a"}], "LogicalName": "account"}],
    }
    assert parse_value(collection) == ({"name": "a"},)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"\x80\x81binary", None, "the body is not UTF-8 text"),
        (b"<RemoteExecutionContext/>", None, "the body is not JSON"),
        (b"[1, 2]", None, "the body is not a JSON object"),
        (b'{"PrimaryEntityName": "salesorder"}', None, "no MessageName"),
        (b'{"MessageName": "Update"}', None, "names no table"),
        (b'{"MessageName": "Update", "PrimaryEntityName": "salesorder"}', None, "names no row"),
        (b"@\x02\x16RemoteExecutionContext", "application/msbin1", "set its message format"),
        (b"<x/>", "application/xml; charset=utf-8", "XML"),
    ],
)
def test_unreadable_bodies_are_one_line_errors(
    body: bytes, content_type: str | None, message: str
) -> None:
    with pytest.raises(RemoteContextError) as raised:
        parse_remote_context(body, content_type=content_type)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_attributes_that_are_not_a_key_value_array_are_refused() -> None:
    body = salesorder_update()
    body["PostEntityImages"][0]["value"]["Attributes"] = "oops"
    with pytest.raises(RemoteContextError, match="post image: Attributes"):
        parse_remote_context(json.dumps(body))
