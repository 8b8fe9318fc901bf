"""Dataverse stand-in: table definitions, provisioning, and alternate-key index activation.

Pinned to MicrosoftDocs/powerapps-docs, powerapps-docs/developer/data-platform/:
- webapi/create-update-column-definitions-using-web-api.md (POST .../Attributes → 204 +
  OData-EntityId; the String, Integer, DateTime, Boolean examples);
- webapi/create-update-entity-definitions-using-web-api.md (POST EntityDefinitions with the
  primary name attribute);
- webapi/create-update-entity-relationships-using-web-api.md (POST RelationshipDefinitions,
  OneToManyRelationshipMetadata with its Lookup);
- define-alternate-keys-entity.md (ms.date 03/30/2026: key column types, ≤16 columns, ≤10 keys,
  `EntityKeyIndexStatus` Pending / InProgress / Active / Failed, `$expand=Keys`);
- use-alternate-key-reference-record.md (a key that is not usable: "The key in the request URI
  is not valid ..."; the docs do not say what a Pending key answers, the stand-in answers that);
- webapi/query-metadata-web-api.md (`EntityDefinitions(LogicalName='...')`, `$select`,
  `$filter`, `$expand`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from local.dataverse.harness import API, Harness, dataverse_standin
from shared.dataverse import schema


@pytest.fixture
async def dv() -> AsyncIterator[Harness]:
    # A long activation so keys stay Pending until the test finishes them via the admin API.
    env = {"LOCAL_DATAVERSE_KEY_ACTIVATION_SECONDS": "3600"}
    async with dataverse_standin(provisioned=False, env=env) as harness:
        yield harness


def _label(text: str) -> dict[str, Any]:
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.Label",
        "LocalizedLabels": [
            {
                "@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel",
                "Label": text,
                "LanguageCode": 1033,
            }
        ],
    }


def _string(schema_name: str, max_length: int) -> dict[str, Any]:
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
        "AttributeType": "String",
        "AttributeTypeName": {"Value": "StringType"},
        "SchemaName": schema_name,
        "DisplayName": _label(schema_name),
        "RequiredLevel": {"Value": "None", "CanBeChanged": True},
        "MaxLength": max_length,
        "FormatName": {"Value": "Text"},
    }


def _integer(schema_name: str) -> dict[str, Any]:
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.IntegerAttributeMetadata",
        "AttributeType": "Integer",
        "AttributeTypeName": {"Value": "IntegerType"},
        "SchemaName": schema_name,
        "DisplayName": _label(schema_name),
    }


async def _keys(dv: Harness, table: str) -> list[dict[str, Any]]:
    response = await dv.api.get(
        f"EntityDefinitions(LogicalName='{table}')?$select=LogicalName"
        "&$expand=Keys($select=LogicalName,KeyAttributes,EntityKeyIndexStatus)"
    )
    assert response.status_code == 200
    keys: list[dict[str, Any]] = response.json()["Keys"]
    return keys


async def test_an_unprovisioned_environment_has_standard_columns_only(dv: Harness) -> None:
    body = (
        await dv.api.get(
            "EntityDefinitions(LogicalName='salesorder')?$select=LogicalName,EntitySetName,"
            "PrimaryIdAttribute&$expand=Attributes($select=LogicalName),Keys"
        )
    ).json()
    assert body["EntitySetName"] == "salesorders"
    assert body["PrimaryIdAttribute"] == "salesorderid"
    names = {a["LogicalName"] for a in body["Attributes"]}
    standard = {c.logical_name for c in schema.SALESORDER.columns if not c.ours}
    assert standard <= names
    assert not any(n.startswith(schema.PREFIX) for n in names)
    assert body["Keys"] == []
    tables = {t["table"] for t in (await dv.admin.get("/__sim/tables")).json()}
    assert schema.JOURNAL.logical_name not in tables
    refused = await dv.api.post("salesorders", json={"name": "x", "bciom_bcorderid": 1})
    assert refused.status_code == 400
    assert "bciom_bcorderid" in refused.json()["error"]["message"]


async def test_created_columns_are_usable_and_described(dv: Harness) -> None:
    created = await dv.api.post(
        "EntityDefinitions(LogicalName='salesorder')/Attributes", json=_integer("bciom_bcorderid")
    )
    assert created.status_code == 204
    assert created.headers["OData-EntityId"].startswith(
        API + "EntityDefinitions(LogicalName='salesorder')/Attributes("
    )
    described = (
        await dv.api.get(
            "EntityDefinitions(LogicalName='salesorder')/Attributes(LogicalName='bciom_bcorderid')"
        )
    ).json()
    assert described["@odata.type"] == "#Microsoft.Dynamics.CRM.IntegerAttributeMetadata"
    assert described["AttributeType"] == "Integer"
    assert described["IsCustomAttribute"] is True
    written = await dv.api.post("salesorders", json={"name": "x", "bciom_bcorderid": 7})
    assert written.status_code == 204
    again = await dv.api.post(
        "EntityDefinitions(LogicalName='salesorder')/Attributes", json=_integer("bciom_bcorderid")
    )
    assert again.status_code == 400
    no_prefix = await dv.api.post(
        "EntityDefinitions(LogicalName='salesorder')/Attributes", json=_integer("NoPrefix")
    )
    assert no_prefix.status_code == 400
    strings = (
        await dv.api.get(
            "EntityDefinitions(LogicalName='salesorder')/Attributes/"
            "Microsoft.Dynamics.CRM.StringAttributeMetadata?$select=LogicalName,MaxLength"
        )
    ).json()["value"]
    assert {"LogicalName": "name", "MaxLength": 300} in [
        {k: v for k, v in s.items() if k in ("LogicalName", "MaxLength")} for s in strings
    ]


async def _key_on_contacts(dv: Harness) -> None:
    for body in (_string("bciom_storehash", 32), _string("bciom_customerkey", 120)):
        response = await dv.api.post(
            "EntityDefinitions(LogicalName='contact')/Attributes", json=body
        )
        assert response.status_code == 204
    created = await dv.api.post(
        "EntityDefinitions(LogicalName='contact')/Keys",
        json={
            "SchemaName": "bciom_contact_customer",
            "DisplayName": _label("Customer key"),
            "KeyAttributes": ["bciom_storehash", "bciom_customerkey"],
        },
    )
    assert created.status_code == 204
    assert "/Keys(" in created.headers["OData-EntityId"]


async def test_a_new_key_is_pending_and_refused_for_upserts_until_active(dv: Harness) -> None:
    await _key_on_contacts(dv)
    (key,) = await _keys(dv, "contact")
    assert key["KeyAttributes"] == ["bciom_storehash", "bciom_customerkey"]
    assert key["EntityKeyIndexStatus"] == "Pending"
    url = "contacts(bciom_storehash='s',bciom_customerkey='k1')"
    refused = await dv.api.patch(url, json={"lastname": "x"})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"].startswith("The key in the request URI is not valid")
    # No index yet: nothing enforces uniqueness.
    twice = {"bciom_storehash": "s", "bciom_customerkey": "dup"}
    assert (await dv.api.post("contacts", json=twice)).status_code == 204
    activated = (await dv.admin.post("/__sim/keys/activate", json={"table": "contact"})).json()
    assert activated == [
        {
            "table": "contact",
            "key": "bciom_contact_customer",
            "columns": ["bciom_storehash", "bciom_customerkey"],
            "status": "Active",
        }
    ]
    assert (await dv.api.patch(url, json={"lastname": "x"})).status_code == 204
    assert (await dv.api.post("contacts", json=twice)).status_code == 412


async def test_a_key_over_duplicate_values_fails_to_activate(dv: Harness) -> None:
    for body in (_string("bciom_storehash", 32), _string("bciom_customerkey", 120)):
        await dv.api.post("EntityDefinitions(LogicalName='contact')/Attributes", json=body)
    duplicate = {"bciom_storehash": "s", "bciom_customerkey": "same"}
    for _ in range(2):
        assert (await dv.api.post("contacts", json=duplicate)).status_code == 204
    await dv.api.post(
        "EntityDefinitions(LogicalName='contact')/Keys",
        json={
            "SchemaName": "bciom_contact_customer",
            "KeyAttributes": ["bciom_storehash", "bciom_customerkey"],
        },
    )
    await dv.admin.post("/__sim/keys/activate")
    (key,) = await _keys(dv, "contact")
    assert key["EntityKeyIndexStatus"] == "Failed"
    rows = (await dv.api.get("contacts?$select=contactid")).json()["value"]
    await dv.api.delete(f"contacts({rows[0]['contactid']})")
    await dv.admin.post("/__sim/keys/activate")  # ReactivateEntityKey
    (key,) = await _keys(dv, "contact")
    assert key["EntityKeyIndexStatus"] == "Active"


async def test_keys_activate_on_their_own_after_the_configured_delay() -> None:
    env = {"LOCAL_DATAVERSE_KEY_ACTIVATION_SECONDS": "0"}
    async with dataverse_standin(env=env) as dv:
        await _key_on_contacts(dv)
        (key,) = await _keys(dv, "contact")
        assert key["EntityKeyIndexStatus"] == "Active"


async def test_a_key_goes_pending_in_progress_active_as_its_index_builds() -> None:
    now = [1_800_000_000.0]
    env = {"LOCAL_DATAVERSE_KEY_ACTIVATION_SECONDS": "10"}
    async with dataverse_standin(env=env, clock=lambda: now[0]) as dv:
        await _key_on_contacts(dv)
        seen = []
        for step in (0, 6, 5):
            now[0] += step
            seen.append((await _keys(dv, "contact"))[0]["EntityKeyIndexStatus"])
        assert seen == ["Pending", "InProgress", "Active"]


async def test_key_definitions_are_validated(dv: Harness) -> None:
    await _key_on_contacts(dv)
    keys = "EntityDefinitions(LogicalName='contact')/Keys"
    same_name = await dv.api.post(
        keys, json={"SchemaName": "bciom_contact_customer", "KeyAttributes": ["firstname"]}
    )
    assert same_name.status_code == 400
    assert same_name.json()["error"]["code"] == "0x80060893"
    same_columns = await dv.api.post(
        keys,
        json={
            "SchemaName": "bciom_other",
            "KeyAttributes": ["bciom_customerkey", "bciom_storehash"],
        },
    )
    assert same_columns.json()["error"]["code"] == "0x80060894"
    unknown = await dv.api.post(keys, json={"SchemaName": "bciom_x", "KeyAttributes": ["nosuch"]})
    assert unknown.status_code == 400
    assert len(await _keys(dv, "contact")) == 1
    deleted = await dv.api.delete(f"{keys}(LogicalName='bciom_contact_customer')")
    assert deleted.status_code == 204
    assert await _keys(dv, "contact") == []


async def test_a_relationship_creates_a_lookup_and_its_navigation(dv: Harness) -> None:
    created = await dv.api.post(
        "EntityDefinitions",
        json={
            "@odata.type": "Microsoft.Dynamics.CRM.EntityMetadata",
            "SchemaName": "bciom_orderjournal",
            "DisplayName": _label("Order journal"),
            "DisplayCollectionName": _label("Order journals"),
            "OwnershipType": "UserOwned",
            "HasActivities": False,
            "HasNotes": False,
            "IsActivity": False,
            "Attributes": [{**_string("bciom_name", 200), "IsPrimaryName": True}],
        },
    )
    assert created.status_code == 204
    relationship = await dv.api.post(
        "RelationshipDefinitions",
        json={
            "@odata.type": "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
            "SchemaName": "bciom_salesorder_orderjournal",
            "ReferencedEntity": "salesorder",
            "ReferencedAttribute": "salesorderid",
            "ReferencingEntity": "bciom_orderjournal",
            "Lookup": {
                "@odata.type": "Microsoft.Dynamics.CRM.LookupAttributeMetadata",
                "AttributeType": "Lookup",
                "SchemaName": "bciom_salesorder",
                "DisplayName": _label("Sales order"),
            },
        },
    )
    assert relationship.status_code == 204
    assert relationship.headers["OData-EntityId"].startswith(API + "RelationshipDefinitions(")
    order = await dv.api.post("salesorders", json={"name": "journalled"})
    entry = await dv.api.post(
        "bciom_orderjournals",
        json={
            "bciom_name": "received",
            "bciom_salesorder@odata.bind": order.headers["OData-EntityId"],
        },
    )
    assert entry.status_code == 204, entry.text
    rows = (
        await dv.api.get(
            "bciom_orderjournals?$select=bciom_name,_bciom_salesorder_value&$expand=bciom_salesorder($select=name)"
        )
    ).json()["value"]
    assert rows[0]["bciom_salesorder"]["name"] == "journalled"
    journal = (
        await dv.api.get(
            "EntityDefinitions(LogicalName='bciom_orderjournal')?$select=PrimaryIdAttribute,"
            "PrimaryNameAttribute,IsCustomEntity"
        )
    ).json()
    assert (journal["PrimaryIdAttribute"], journal["PrimaryNameAttribute"]) == (
        "bciom_orderjournalid",
        "bciom_name",
    )
    assert journal["IsCustomEntity"] is True
    lookups_direct = await dv.api.post(
        "EntityDefinitions(LogicalName='salesorder')/Attributes",
        json={
            "@odata.type": "Microsoft.Dynamics.CRM.LookupAttributeMetadata",
            "SchemaName": "bciom_x",
        },
    )
    assert lookups_direct.status_code == 400


async def test_entity_definitions_filter_and_select(dv: Harness) -> None:
    body = (
        await dv.api.get(
            "EntityDefinitions?$select=LogicalName&$filter=ChangeTrackingEnabled eq true and "
            "IsCustomEntity eq false and LogicalName eq 'salesorderdetail'"
        )
    ).json()
    assert [e["LogicalName"] for e in body["value"]] == ["salesorderdetail"]
    assert set(body["value"][0]) == {"MetadataId", "LogicalName"}
    missing = await dv.api.get("EntityDefinitions(LogicalName='nosuch')")
    assert missing.status_code == 404


async def test_provisioning_through_the_admin_api_makes_every_key_active(dv: Harness) -> None:
    keys = (await dv.admin.post("/__sim/provision")).json()
    expected = {(t.logical_name, k.logical_name) for t in schema.SCHEMA for k in t.keys}
    assert {(k["table"], k["key"]) for k in keys} == expected
    assert {k["status"] for k in keys} == {"Active"}
    upsert = await dv.api.patch(
        "salesorders(bciom_storehash='s',bciom_bcorderid=1)?$select=salesorderid",
        json={"name": "after provisioning", "order_details": []},
        headers={"Prefer": "return=representation"},
    )
    assert upsert.status_code == 201
    journal = await dv.api.patch(
        "bciom_orderjournals(bciom_messageid='m-1')", json={"bciom_name": "entry"}
    )
    assert journal.status_code == 204


async def test_iom_tables_can_be_left_out() -> None:
    async with dataverse_standin(provisioned=True, env={"LOCAL_DATAVERSE_IOM": "0"}) as dv:
        tables = {t["table"] for t in (await dv.admin.get("/__sim/tables")).json()}
        assert "msdyn_fulfillmentorder" not in tables
        assert {"salesorder", "salesorderdetail", "bciom_orderjournal"} <= tables
