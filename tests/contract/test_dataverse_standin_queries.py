"""Dataverse stand-in: queries, paging and change tracking.

Pinned to MicrosoftDocs/powerapps-docs, powerapps-docs/developer/data-platform/:
- webapi/query/filter-rows.md (comparison and logical operators, contains/startswith, null,
  case-insensitive strings, doubled quotes);
- webapi/query/page-results.md (ms.date 07/01/2024: `Prefer: odata.maxpagesize`,
  `Preference-Applied`, `@odata.nextLink` followed unchanged, `$top` ignored with a page size,
  no `$skip`);
- webapi/query/select-columns.md / join-tables.md (`$select`, `$expand` of lookups and of
  collection-valued navigation properties with nested options);
- use-change-tracking-synchronize-data-external-systems.md (`Prefer: odata.track-changes`,
  `@odata.deltaLink`, `$deletedEntity`, the refused query options and their message,
  `/$count` of changes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from local.dataverse.harness import API, Harness, dataverse_standin

ORDERS = [
    {
        "name": "Alpha",
        "bciom_bcorderid": 1,
        "totalamount": 10.5,
        "bciom_bcdatemodified": "2026-05-01T10:00:00Z",
    },
    {
        "name": "beta",
        "bciom_bcorderid": 2,
        "totalamount": 20,
        "bciom_bcdatemodified": "2026-05-02T10:00:00Z",
    },
    {"name": "Gamma's", "bciom_bcorderid": 3, "totalamount": None, "bciom_bcdatemodified": None},
    {
        "name": "Delta",
        "bciom_bcorderid": 4,
        "totalamount": 40,
        "bciom_bcdatemodified": "2026-05-04T10:00:00+02:00",
    },
]


@pytest.fixture
async def dv() -> AsyncIterator[Harness]:
    async with dataverse_standin(provisioned=True) as harness:
        for order in ORDERS:
            body = {**order, "bciom_storehash": "s1"}
            response = await harness.api.post("salesorders", json=body)
            assert response.status_code == 204
        yield harness


async def _ids(dv: Harness, query: str) -> list[int]:
    response = await dv.api.get("salesorders?$select=bciom_bcorderid&" + query)
    assert response.status_code == 200, response.text
    return [row["bciom_bcorderid"] for row in response.json()["value"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("$filter=bciom_bcorderid eq 2", [2]),
        ("$filter=bciom_bcorderid ne 2", [1, 3, 4]),
        ("$filter=bciom_bcorderid gt 2", [3, 4]),
        ("$filter=bciom_bcorderid ge 2 and bciom_bcorderid le 3", [2, 3]),
        ("$filter=bciom_bcorderid lt 2 or bciom_bcorderid eq 4", [1, 4]),
        ("$filter=not (bciom_bcorderid eq 1 or bciom_bcorderid eq 2)", [3, 4]),
        ("$filter=name eq 'ALPHA'", [1]),
        ("$filter=name eq 'Gamma''s'", [3]),
        ("$filter=contains(name,'ET')", [2]),
        ("$filter=startswith(name,'g')", [3]),
        ("$filter=endswith(name,'a')", [1, 2, 4]),
        ("$filter=totalamount eq null", [3]),
        ("$filter=totalamount ne null", [1, 2, 4]),
        ("$filter=totalamount gt 15", [2, 4]),
        ("$filter=totalamount ne 20", [1, 4]),
        ("$filter=bciom_bcdatemodified ge 2026-05-02T00:00:00Z", [2, 4]),
        ("$filter=bciom_bcdatemodified lt 2026-05-04T09:00:00Z", [1, 2, 4]),
        ("$filter=(name eq 'beta' or name eq 'delta') and totalamount gt 30", [4]),
        ("$orderby=totalamount desc", [4, 2, 1, 3]),
        ("$orderby=name", [1, 2, 4, 3]),
        ("$top=2&$orderby=bciom_bcorderid desc", [4, 3]),
    ],
)
async def test_filter_orderby_and_top(dv: Harness, query: str, expected: list[int]) -> None:
    found = await _ids(dv, query)
    assert found == expected if "$orderby" in query else sorted(found) == expected


async def test_query_errors_are_400(dv: Harness) -> None:
    for query in (
        "$filter=bciom_bcorderid eq 'one'",
        "$filter=nosuch eq 1",
        "$filter=name eq",
        "$select=nosuch",
        "$orderby=nosuch",
        "$expand=nosuch",
        "$skip=2",
    ):
        response = await dv.api.get("salesorders?" + query)
        assert response.status_code == 400, query
        assert response.json()["error"]["message"], query
    unknown = await dv.api.get("salesorders?$select=nosuch")
    assert unknown.json()["error"] == {
        "code": "0x80060888",
        "message": "Could not find a property named 'nosuch' on type "
        "'Microsoft.Dynamics.CRM.salesorder'.",
    }


async def test_select_returns_the_etag_the_columns_and_the_id(dv: Harness) -> None:
    body = (await dv.api.get("salesorders?$select=name&$filter=bciom_bcorderid eq 1")).json()
    assert body["@odata.context"] == f"{API}$metadata#salesorders(name)"
    (row,) = body["value"]
    assert set(row) == {"@odata.etag", "name", "salesorderid"}


async def test_count_and_the_count_segment(dv: Harness) -> None:
    body = (await dv.api.get("salesorders?$select=name&$count=true&$top=1")).json()
    assert body["@odata.count"] == 4
    assert len(body["value"]) == 1
    counted = await dv.api.get("salesorders/$count?$filter=totalamount gt 15")
    assert counted.text == "2"


async def test_expand_lines_and_lookups_with_nested_options(dv: Harness) -> None:
    contact = await dv.api.post("contacts", json={"firstname": "Ann", "lastname": "Lee"})
    created = await dv.api.post(
        "salesorders",
        json={
            "name": "Expanded",
            "customerid_contact@odata.bind": contact.headers["OData-EntityId"],
            "order_details": [
                {"productdescription": "Mug", "quantity": 2},
                {"productdescription": "Cap", "quantity": 5},
                {"productdescription": "Pen", "quantity": 1},
            ],
        },
    )
    order = created.headers["OData-EntityId"].removeprefix(API)
    body = (
        await dv.api.get(
            f"{order}?$select=name&$expand=customerid_contact($select=fullname),"
            "order_details($select=productdescription;$filter=quantity gt 1;"
            "$orderby=quantity desc)"
        )
    ).json()
    assert body["customerid_contact"]["fullname"] == "Ann Lee"
    assert "@odata.etag" in body["customerid_contact"]
    assert [d["productdescription"] for d in body["order_details"]] == ["Cap", "Mug"]
    assert body["@odata.context"] == (
        f"{API}$metadata#salesorders(name,customerid_contact(fullname),"
        "order_details(productdescription))/$entity"
    )
    account_side = (await dv.api.get(f"{order}?$expand=customerid_account")).json()
    assert account_side["customerid_account"] is None
    line = (
        await dv.api.get(
            "salesorderdetails?$select=quantity&$filter=quantity eq 5"
            "&$expand=salesorderid($select=name)"
        )
    ).json()["value"][0]
    assert line["salesorderid"]["name"] == "Expanded"


async def _all_pages(dv: Harness, first: str, size: int) -> tuple[list[Any], list[str]]:
    headers = {"Prefer": f"odata.maxpagesize={size}"}
    rows: list[Any] = []
    links: list[str] = []
    response = await dv.api.get(first, headers=headers)
    while True:
        assert response.status_code == 200
        assert response.headers["Preference-Applied"] == f"odata.maxpagesize={size}"
        body = response.json()
        assert len(body["value"]) <= size
        rows += body["value"]
        link = body.get("@odata.nextLink")
        if link is None:
            return rows, links
        links.append(link)
        response = await dv.api.get(link, headers=headers)


async def test_maxpagesize_pages_with_an_opaque_next_link(dv: Harness) -> None:
    rows, links = await _all_pages(
        dv, "salesorders?$select=bciom_bcorderid&$orderby=bciom_bcorderid", 3
    )
    assert [r["bciom_bcorderid"] for r in rows] == [1, 2, 3, 4]
    assert len(links) == 1
    assert links[0].startswith(
        API + "salesorders?$select=bciom_bcorderid&$orderby=bciom_bcorderid&"
    )
    assert "$skiptoken=" in links[0]
    filtered, links = await _all_pages(
        dv, "salesorders?$select=name&$filter=name ne 'Gamma''s' and totalamount ne null", 1
    )
    assert [r["name"] for r in filtered] == ["Alpha", "beta", "Delta"]
    assert len(links) == 2
    ignored_top, _ = await _all_pages(dv, "salesorders?$select=name&$top=1", 2)
    assert len(ignored_top) == 4  # $top is ignored when a page size is asked for
    bad = await dv.api.get("salesorders?$skiptoken=garbage")
    assert bad.status_code == 400


async def test_change_tracking_returns_changes_and_deletions_since_the_delta_link(
    dv: Harness,
) -> None:
    first = await dv.api.get(
        "salesorders?$select=name,bciom_bcorderid", headers={"Prefer": "odata.track-changes"}
    )
    assert first.status_code == 200
    assert first.headers["Preference-Applied"] == "odata.track-changes"
    body = first.json()
    assert len(body["value"]) == 4
    delta_link = body["@odata.deltaLink"]
    assert delta_link.startswith(API + "salesorders?$select=name,bciom_bcorderid&$deltatoken=")
    nothing = (await dv.api.get(delta_link)).json()
    assert nothing["value"] == []

    await dv.api.patch("salesorders(bciom_storehash='s1',bciom_bcorderid=2)", json={"name": "B2"})
    await dv.api.post(
        "salesorders", json={"name": "New", "bciom_storehash": "s1", "bciom_bcorderid": 9}
    )
    doomed = (await dv.api.get("salesorders(bciom_storehash='s1',bciom_bcorderid=3)")).json()
    await dv.api.delete("salesorders(bciom_storehash='s1',bciom_bcorderid=3)")

    counted = await dv.api.get(delta_link.replace("salesorders?", "salesorders/$count?"))
    assert counted.text == "3"
    delta = (await dv.api.get(delta_link)).json()
    assert delta["@odata.context"] == f"{API}$metadata#salesorders(name,bciom_bcorderid)/$delta"
    changed = [v for v in delta["value"] if "reason" not in v]
    assert [(v["bciom_bcorderid"], v["name"]) for v in changed] == [(2, "B2"), (9, "New")]
    assert delta["value"][-1] == {
        "@odata.context": f"{API}$metadata#salesorders/$deletedEntity",
        "id": doomed["salesorderid"],
        "reason": "deleted",
    }
    follow_up = (await dv.api.get(delta["@odata.deltaLink"])).json()
    assert follow_up["value"] == []


async def test_change_tracking_refuses_filter_orderby_expand_and_top(dv: Harness) -> None:
    for option in (
        "$filter=bciom_bcorderid eq 1",
        "$orderby=name",
        "$expand=order_details",
        "$top=1",
    ):
        response = await dv.api.get(
            f"salesorders?$select=name&{option}", headers={"Prefer": "odata.track-changes"}
        )
        assert response.status_code == 400
        name = option.split("=")[0]
        assert response.json()["error"]["message"] == (
            f'The "{name}" query parameter isn\'t supported when Change Tracking is enabled.'
        )


async def test_change_tracking_pages_before_the_delta_link(dv: Harness) -> None:
    headers = {"Prefer": "odata.track-changes,odata.maxpagesize=3"}
    first = await dv.api.get("salesorders?$select=name", headers=headers)
    body = first.json()
    assert "@odata.deltaLink" not in body
    second = (await dv.api.get(body["@odata.nextLink"], headers=headers)).json()
    assert len(body["value"]) + len(second["value"]) == 4
    assert "$deltatoken=" in second["@odata.deltaLink"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("$filter=bciom_bcorderid eq 2", [2]),
        ("$filter=bciom_storehash eq 'S1' and bciom_bcorderid eq 3", [3]),
        ("$filter=2 eq bciom_bcorderid and name eq 'BETA'", [2]),
        ("$filter=bciom_bcorderid eq 1 or bciom_bcorderid eq 4", [1, 4]),
        ("$filter=bciom_bcorderid eq 1 and bciom_bcorderid eq 4", []),
        ("$filter=not (bciom_bcorderid eq 1)", [2, 3, 4]),
        ("$filter=bciom_bcorderid eq 2 and (name eq 'Alpha' or totalamount eq 20)", [2]),
    ],
)
async def test_integer_equalities_narrow_the_rows_without_changing_the_answer(
    dv: Harness, query: str, expected: list[int]
) -> None:
    """The stand-in narrows a filter's rows in SQL by its integer `eq` terms joined by `and`
    (a lookup by order id does not read the whole table); what matches is the filter's."""
    assert await _ids(dv, query) == expected
