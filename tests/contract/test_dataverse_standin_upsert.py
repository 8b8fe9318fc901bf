"""Dataverse stand-in: PATCH upsert by alternate key and the conditional-request status matrix.

Pinned to MicrosoftDocs/powerapps-docs, powerapps-docs/developer/data-platform/:
- use-upsert-insert-update-record.md (ms.date 03/09/2026): "Create with upsert" / "Update with
  upsert" (204 + OData-EntityId both times), "... return=representation preference" (201 / 200,
  no OData-EntityId), "Guidance for composing requests" (key values in the body);
- webapi/perform-conditional-operations-using-web-api.md: If-Match: * → 404, If-None-Match: *
  → 412 "A record with matching key values already exists.", stale ETag → 412
  "The version of the existing record doesn't match the RowVersion property provided.",
  conditional GET → 304;
- use-alternate-key-reference-record.md: key syntax (composite, quoted strings, bare numbers,
  lookup keys) and "The key in the request URI is not valid for resource ...".
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from local.dataverse.harness import API, Harness, dataverse_standin

ORDER_KEY = "salesorders(bciom_storehash='store1',bciom_bcorderid=500)"


@pytest.fixture
async def dv() -> AsyncIterator[Harness]:
    async with dataverse_standin(provisioned=True) as harness:
        yield harness


async def _name(dv: Harness, url: str = ORDER_KEY) -> str | None:
    response = await dv.api.get(f"{url}?$select=name")
    if response.status_code == 404:
        return None
    name: str | None = response.json()["name"]
    return name


# --- the status matrix -------------------------------------------------------------------------


async def test_plain_upsert_is_204_with_the_key_url_whether_it_creates_or_updates(
    dv: Harness,
) -> None:
    created = await dv.api.patch(ORDER_KEY, json={"name": "500"})
    updated = await dv.api.patch(ORDER_KEY, json={"name": "500 Updated"})
    for response in (created, updated):
        assert response.status_code == 204
        assert response.content == b""
        assert response.headers["OData-EntityId"] == API + ORDER_KEY
        assert response.headers["OData-Version"] == "4.0"
    assert await _name(dv) == "500 Updated"
    assert await dv.count("salesorder") == 1


async def test_upsert_with_return_representation_tells_created_from_updated(
    dv: Harness,
) -> None:
    url = ORDER_KEY + "?$select=salesorderid"
    prefer = {"Prefer": "return=representation"}
    created = await dv.api.patch(url, json={"name": "3:3"}, headers=prefer)
    updated = await dv.api.patch(url, json={"name": "3:3 Updated"}, headers=prefer)
    assert created.status_code == 201
    assert updated.status_code == 200
    for response in (created, updated):
        assert "OData-EntityId" not in response.headers
        body = response.json()
        assert body["@odata.context"] == f"{API}$metadata#salesorders(salesorderid)/$entity"
        assert response.headers["ETag"] == body["@odata.etag"]
        assert set(body) == {"@odata.context", "@odata.etag", "salesorderid"}
    assert created.json()["salesorderid"] == updated.json()["salesorderid"]
    assert created.headers["ETag"] != updated.headers["ETag"]


async def test_if_match_star_updates_only(dv: Harness) -> None:
    missing = await dv.api.patch(ORDER_KEY, json={"name": "x"}, headers={"If-Match": "*"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "0x80060891"
    assert await dv.count("salesorder") == 0
    await dv.api.patch(ORDER_KEY, json={"name": "first"})
    updated = await dv.api.patch(ORDER_KEY, json={"name": "second"}, headers={"If-Match": "*"})
    assert updated.status_code == 204
    assert await _name(dv) == "second"


async def test_if_match_star_by_primary_id_is_the_documented_404(dv: Harness) -> None:
    record = "accounts(00000000-0000-0000-0000-000000000001)"
    response = await dv.api.patch(record, json={"name": "x"}, headers={"If-Match": "*"})
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "0x80040217",
        "message": "account With Id = 00000000-0000-0000-0000-000000000001 Does Not Exist",
    }


async def test_if_none_match_star_creates_only(dv: Harness) -> None:
    created = await dv.api.patch(ORDER_KEY, json={"name": "new"}, headers={"If-None-Match": "*"})
    assert created.status_code == 204
    refused = await dv.api.patch(ORDER_KEY, json={"name": "again"}, headers={"If-None-Match": "*"})
    assert refused.status_code == 412
    assert refused.json()["error"]["message"] == "A record with matching key values already exists."
    assert await _name(dv) == "new"


async def test_if_match_with_an_etag_is_optimistic_concurrency(dv: Harness) -> None:
    await dv.api.patch(ORDER_KEY, json={"name": "v1"})
    read = await dv.api.get(ORDER_KEY + "?$select=name")
    etag = read.headers["ETag"]
    assert etag == read.json()["@odata.etag"]
    ok = await dv.api.patch(ORDER_KEY, json={"name": "v2"}, headers={"If-Match": etag})
    assert ok.status_code == 204
    stale = await dv.api.patch(ORDER_KEY, json={"name": "v3"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert stale.json()["error"] == {
        "code": "0x80060882",
        "message": "The version of the existing record doesn't match the RowVersion property "
        "provided.",
    }
    stale_delete = await dv.api.delete(ORDER_KEY, headers={"If-Match": etag})
    assert stale_delete.status_code == 412
    assert await _name(dv) == "v2"


async def test_conditional_get_answers_304_while_unchanged(dv: Harness) -> None:
    await dv.api.patch(ORDER_KEY, json={"name": "v1"})
    etag = (await dv.api.get(ORDER_KEY)).headers["ETag"]
    unchanged = await dv.api.get(ORDER_KEY, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    with_expand = await dv.api.get(
        ORDER_KEY + "?$expand=order_details", headers={"If-None-Match": etag}
    )
    assert with_expand.status_code == 200
    await dv.api.patch(ORDER_KEY, json={"name": "v2"})
    changed = await dv.api.get(ORDER_KEY, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["name"] == "v2"


# --- key values in the body (Guidance for composing requests) ----------------------------------


async def test_on_update_key_values_in_the_body_are_dropped(dv: Harness) -> None:
    await dv.api.patch(ORDER_KEY, json={"name": "keep my key"})
    response = await dv.api.patch(
        ORDER_KEY, json={"name": "renamed", "bciom_bcorderid": 999, "bciom_storehash": "other"}
    )
    assert response.status_code == 204
    row = (await dv.api.get(ORDER_KEY + "?$select=name,bciom_bcorderid,bciom_storehash")).json()
    assert (row["name"], row["bciom_bcorderid"], row["bciom_storehash"]) == (
        "renamed",
        500,
        "store1",
    )


async def test_on_create_the_url_fills_in_keys_but_body_values_win(dv: Harness) -> None:
    filled = await dv.api.patch(ORDER_KEY, json={"name": "from url"})
    assert filled.status_code == 204
    row = (await dv.api.get(ORDER_KEY + "?$select=bciom_storehash,bciom_bcorderid")).json()
    assert (row["bciom_storehash"], row["bciom_bcorderid"]) == ("store1", 500)
    other = "salesorders(bciom_storehash='store1',bciom_bcorderid=600)"
    mismatch = await dv.api.patch(other, json={"name": "body wins", "bciom_bcorderid": 601})
    assert mismatch.status_code == 204
    assert await _name(dv, other) is None  # the row was created under the body's key
    assert await _name(dv, "salesorders(bciom_storehash='store1',bciom_bcorderid=601)") == (
        "body wins"
    )


# --- key syntax (use-alternate-key-reference-record) -----------------------------------------


async def test_keys_take_quoted_strings_with_doubled_quotes_in_any_order(dv: Harness) -> None:
    url = "contacts(bciom_customerkey='o''brien',bciom_storehash='store1')"
    assert (await dv.api.patch(url, json={"lastname": "O'Brien"})).status_code == 204
    reordered = "contacts(bciom_storehash='store1',bciom_customerkey='o''brien')"
    row = (await dv.api.get(reordered + "?$select=bciom_customerkey,lastname")).json()
    assert row["bciom_customerkey"] == "o'brien"
    case_insensitive = "contacts(bciom_storehash='STORE1',bciom_customerkey='O''BRIEN')"
    assert (await dv.api.get(case_insensitive)).status_code == 200


async def test_a_url_with_non_key_columns_is_the_documented_400(dv: Harness) -> None:
    response = await dv.api.get("salesorders(name='x')")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "The key in the request URI is not valid for resource 'Microsoft.Dynamics.CRM.salesorder'."
        " Ensure that the names and number of key properties match the declared or alternate key "
        "properties for the resource 'Microsoft.Dynamics.CRM.salesorder'."
    )
    partial = await dv.api.patch("salesorders(bciom_bcorderid=1)", json={"name": "x"})
    assert partial.status_code == 400
    quoted_number = await dv.api.patch(
        "salesorders(bciom_storehash='s',bciom_bcorderid='1')", json={"name": "x"}
    )
    assert quoted_number.status_code == 400
    assert await dv.count("salesorder") == 0


async def test_key_values_with_unaddressable_characters_are_refused(dv: Harness) -> None:
    response = await dv.api.patch(
        "contacts(bciom_storehash='s',bciom_customerkey='e:a@b.com')", json={"lastname": "x"}
    )
    assert response.status_code == 400
    assert await dv.count("contact") == 0


async def test_upsert_by_primary_id_creates_a_row_with_that_id(dv: Harness) -> None:
    record = "accounts(00000000-0000-0000-0000-0000000000ab)"
    assert (await dv.api.patch(record, json={"name": "by id"})).status_code == 204
    named = await dv.api.get("accounts(accountid=00000000-0000-0000-0000-0000000000ab)")
    assert named.json()["name"] == "by id"
