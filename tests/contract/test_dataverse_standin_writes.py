"""Dataverse stand-in: create, deep insert, `@odata.bind` (also polymorphic and by alternate key),
the refusals a payload can meet, delete, and error bodies.

Pinned to MicrosoftDocs/powerapps-docs, powerapps-docs/developer/data-platform/:
- webapi/create-entity-web-api.md ("Basic Create", "Create with data returned", "Create related
  table rows in one operation", "Associate table rows on create");
- webapi/associate-disassociate-entities-using-web-api.md (`@odata.bind`, clearing a lookup);
- webapi/compose-http-requests-handle-errors.md (the error body);
- includes/data-service-error-codes.md (DuplicateRecordEntityKey 0x80060892, ObjectDoesNotExist);
- webapi/execute-batch-operations-using-web-api.md (the 0x80044331 length validation error).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from local.dataverse.harness import API, Harness, dataverse_standin

ENTITY_ID = re.compile(r"^" + re.escape(API) + r"(\w+)\(([0-9a-f-]{36})\)$")
CUSTOMER = {
    "firstname": "Jane",
    "lastname": "Doe",
    "bciom_storehash": "store1",
    "bciom_customerkey": "c-17",
}


@pytest.fixture
async def dv() -> AsyncIterator[Harness]:
    async with dataverse_standin(provisioned=True) as harness:
        yield harness


def _id(response_header: str) -> str:
    match = ENTITY_ID.match(response_header)
    assert match, response_header
    return match.group(2)


# --- create (create-entity-web-api: Basic Create / Create with data returned) ------------------


async def test_create_answers_204_with_the_odata_entityid_of_a_new_guid(dv: Harness) -> None:
    response = await dv.api.post("contacts", json=CUSTOMER)
    assert response.status_code == 204
    assert response.content == b""
    record_id = _id(response.headers["OData-EntityId"])
    row = (await dv.api.get(f"contacts({record_id})?$select=fullname,bciom_customerkey")).json()
    assert row["fullname"] == "Jane Doe"
    assert row["bciom_customerkey"] == "c-17"
    assert row["contactid"] == record_id
    assert re.fullmatch(r'W/"\d+"', row["@odata.etag"])


async def test_create_with_return_representation_is_201_with_body_and_no_entityid(
    dv: Harness,
) -> None:
    response = await dv.api.post(
        "contacts?$select=fullname,createdon",
        json=CUSTOMER,
        headers={"Prefer": "return=representation"},
    )
    assert response.status_code == 201
    assert "OData-EntityId" not in response.headers
    assert response.headers["Preference-Applied"] == "return=representation"
    body = response.json()
    assert body["@odata.context"] == f"{API}$metadata#contacts(fullname,createdon)/$entity"
    assert body["fullname"] == "Jane Doe"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["createdon"])
    assert response.headers["ETag"] == body["@odata.etag"]


async def test_a_duplicate_alternate_key_on_create_is_412_duplicate_record_entity_key(
    dv: Harness,
) -> None:
    assert (await dv.api.post("contacts", json=CUSTOMER)).status_code == 204
    duplicate = await dv.api.post("contacts", json={**CUSTOMER, "bciom_customerkey": "C-17"})
    assert duplicate.status_code == 412
    error = duplicate.json()["error"]
    assert error["code"] == "0x80060892"
    assert error["message"].startswith("Entity Key bciom_contact_customer violated.")
    assert "A duplicate record cannot be created." in error["message"]
    assert await dv.count("contact") == 1


async def test_a_duplicate_primary_id_on_create_is_412(dv: Harness) -> None:
    record_id = "00000000-0000-0000-0000-000000000042"
    assert (await dv.api.post("uoms", json={"uomid": record_id, "name": "Each"})).status_code == 204
    again = await dv.api.post("uoms", json={"uomid": record_id, "name": "Box"})
    assert again.status_code == 412
    assert again.json()["error"] == {
        "code": "0x80040237",
        "message": "A record with matching key values already exists.",
    }


# --- deep insert (create-entity-web-api: Create related table rows in one operation) ------------


async def test_deep_insert_creates_the_lines_and_returns_only_the_parent_id(dv: Harness) -> None:
    order = {
        "name": "Order 100",
        "bciom_storehash": "store1",
        "bciom_bcorderid": 100,
        "order_details": [
            {
                "productdescription": "Mug",
                "quantity": 2,
                "bciom_storehash": "store1",
                "bciom_bcorderproductid": 1,
            },
            {
                "productdescription": "Cap",
                "quantity": 1,
                "bciom_storehash": "store1",
                "bciom_bcorderproductid": 2,
            },
        ],
    }
    response = await dv.api.post("salesorders", json=order)
    assert response.status_code == 204
    assert response.content == b""
    order_id = _id(response.headers["OData-EntityId"])
    assert response.headers["OData-EntityId"].startswith(API + "salesorders(")
    lines = (
        await dv.api.get(f"salesorders({order_id})/order_details?$select=productdescription")
    ).json()["value"]
    assert sorted(line["productdescription"] for line in lines) == ["Cap", "Mug"]
    expanded = (
        await dv.api.get(
            "salesorderdetails?$select=_salesorderid_value"
            f"&$filter=_salesorderid_value eq {order_id}"
        )
    ).json()["value"]
    assert len(expanded) == 2


async def test_a_failing_line_rolls_the_whole_deep_insert_back(dv: Harness) -> None:
    order = {
        "name": "Order 101",
        "order_details": [
            {"productdescription": "ok", "quantity": 1},
            {"productdescription": "x" * 501, "quantity": 1},
        ],
    }
    response = await dv.api.post("salesorders", json=order)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "0x80044331"
    assert await dv.count("salesorder") == 0
    assert await dv.count("salesorderdetail") == 0


async def test_deep_insert_with_return_representation_can_expand_the_new_lines(
    dv: Harness,
) -> None:
    response = await dv.api.post(
        "salesorders?$select=name&$expand=order_details($select=quantity)",
        json={"name": "Order 102", "order_details": [{"quantity": 3}]},
        headers={"Prefer": "return=representation"},
    )
    assert response.status_code == 201
    body = response.json()
    assert [line["quantity"] for line in body["order_details"]] == [3]
    assert "salesorderdetailid" in body["order_details"][0]


# --- @odata.bind (associate-disassociate-entities-using-web-api, use-alternate-key-...) ---------


async def test_polymorphic_customer_binds_per_target_and_by_alternate_key(dv: Harness) -> None:
    await dv.api.post("contacts", json=CUSTOMER)
    account = await dv.api.post("accounts", json={"name": "Contoso"})
    account_id = _id(account.headers["OData-EntityId"])
    by_key = await dv.api.post(
        "salesorders",
        json={
            "name": "for a contact",
            "customerid_contact@odata.bind": "/contacts(bciom_storehash='store1',"
            "bciom_customerkey='c-17')",
        },
    )
    by_id = await dv.api.post(
        "salesorders",
        json={"name": "for an account", "customerid_account@odata.bind": f"accounts({account_id})"},
    )
    assert by_key.status_code == by_id.status_code == 204
    rows = (
        await dv.api.get(
            "salesorders?$select=name,_customerid_value&$orderby=name",
            headers={"Prefer": 'odata.include-annotations="*"'},
        )
    ).json()["value"]
    annotated = {r["name"]: r for r in rows}
    account_row = annotated["for an account"]
    assert account_row["_customerid_value"] == account_id
    assert account_row["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
    assert (
        account_row["_customerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"]
        == "customerid_account"
    )
    contact_row = annotated["for a contact"]
    assert contact_row["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "contact"
    assert contact_row["_customerid_value@OData.Community.Display.V1.FormattedValue"] == "Jane Doe"


async def test_a_bind_to_the_wrong_table_or_a_missing_row_is_refused(dv: Harness) -> None:
    account = await dv.api.post("accounts", json={"name": "Contoso"})
    account_url = account.headers["OData-EntityId"]
    wrong_table = await dv.api.post(
        "salesorders", json={"customerid_contact@odata.bind": account_url}
    )
    assert wrong_table.status_code == 400
    missing = await dv.api.post(
        "salesorders",
        json={"customerid_contact@odata.bind": "/contacts(00000000-0000-0000-0000-0000000000aa)"},
    )
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "code": "0x80040217",
        "message": "contact With Id = 00000000-0000-0000-0000-0000000000aa Does Not Exist",
    }
    missing_key = await dv.api.post(
        "salesorders",
        json={
            "customerid_contact@odata.bind": "/contacts(bciom_storehash='s',bciom_customerkey='k')"
        },
    )
    assert missing_key.status_code == 404
    assert missing_key.json()["error"]["code"] == "0x80060891"
    assert await dv.count("salesorder") == 0


async def test_an_unknown_navigation_property_is_the_undeclared_property_error(
    dv: Harness,
) -> None:
    response = await dv.api.post(
        "salesorders",
        json={"customerid@odata.bind": "/contacts(00000000-0000-0000-0000-000000000001)"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(
        "An undeclared property 'customerid' which only has property annotations in the payload"
    )


async def test_a_lookup_is_cleared_with_a_null_bind(dv: Harness) -> None:
    currency = "/transactioncurrencies(isocurrencycode='USD')"
    created = await dv.api.post(
        "salesorders", json={"name": "x", "transactioncurrencyid@odata.bind": currency}
    )
    assert created.status_code == 400  # isocurrencycode is not an alternate key
    listing = (await dv.api.get("transactioncurrencies?$select=isocurrencycode")).json()["value"]
    currency_id = listing[0]["transactioncurrencyid"]
    created = await dv.api.post(
        "salesorders",
        json={
            "name": "x",
            "transactioncurrencyid@odata.bind": f"/transactioncurrencies({currency_id})",
        },
    )
    order_url = created.headers["OData-EntityId"]
    order = order_url.removeprefix(API)
    row = (await dv.api.get(f"{order}?$select=_transactioncurrencyid_value")).json()
    assert row["_transactioncurrencyid_value"] == currency_id
    cleared = await dv.api.patch(order, json={"transactioncurrencyid@odata.bind": None})
    assert cleared.status_code == 204
    row = (await dv.api.get(f"{order}?$select=_transactioncurrencyid_value")).json()
    assert row["_transactioncurrencyid_value"] is None


# --- payload refusals and delete -------------------------------------------------------------


async def test_payload_refusals_use_the_odata_messages(dv: Harness) -> None:
    unknown = await dv.api.post("salesorders", json={"nosuchcolumn": 1})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"] == (
        "The property 'nosuchcolumn' does not exist on type 'Microsoft.Dynamics.CRM.salesorder'. "
        "Make sure to only use property names that are defined by the type."
    )
    direct = await dv.api.post("salesorders", json={"_customerid_value": "x"})
    assert direct.status_code == 400
    assert "Use Navigation properties instead" in direct.json()["error"]["message"]
    wrong_type = await dv.api.post("salesorders", json={"bciom_bcorderid": "not a number"})
    assert wrong_type.status_code == 400
    assert "Edm.Int32" in wrong_type.json()["error"]["message"]
    too_long = await dv.api.post("salesorders", json={"name": "n" * 301})
    assert too_long.status_code == 400
    assert too_long.json()["error"] == {
        "code": "0x80044331",
        "message": "A validation error occurred.  The length of the 'name' attribute of the "
        "'salesorder' entity exceeded the maximum allowed length of '300'.",
    }
    unknown_set = await dv.api.get("nosuchthings")
    assert unknown_set.status_code == 404
    assert (
        unknown_set.json()["error"]["message"]
        == "Resource not found for the segment 'nosuchthings'."
    )


async def test_delete_removes_the_order_and_its_lines(dv: Harness) -> None:
    created = await dv.api.post(
        "salesorders", json={"name": "gone", "order_details": [{"quantity": 1}, {"quantity": 2}]}
    )
    order = created.headers["OData-EntityId"].removeprefix(API)
    assert (await dv.api.delete(order)).status_code == 204
    assert (await dv.api.get(order)).status_code == 404
    assert await dv.count("salesorderdetail") == 0
    again = await dv.api.delete(order)
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "0x80040217"


async def test_single_property_put_and_delete(dv: Harness) -> None:
    created = await dv.api.post("contacts", json={"firstname": "A", "lastname": "B"})
    contact = created.headers["OData-EntityId"].removeprefix(API)
    assert (await dv.api.put(f"{contact}/lastname", json={"value": "C"})).status_code == 204
    value = (await dv.api.get(f"{contact}/lastname")).json()["value"]
    assert value == "C"
    assert (await dv.api.delete(f"{contact}/firstname")).status_code == 204
    row = (await dv.api.get(f"{contact}?$select=firstname,fullname")).json()
    assert row["firstname"] is None
    assert row["fullname"] == "C"


async def test_requests_without_the_token_are_401(dv: Harness) -> None:
    response = await dv.admin.get("/api/data/v9.2/WhoAmI")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "0x80040220"
    wrong = await dv.admin.get("/api/data/v9.2/WhoAmI", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    who = await dv.api.get("WhoAmI")
    assert who.status_code == 200
    assert set(who.json()) >= {"BusinessUnitId", "UserId", "OrganizationId"}
