"""The store simulator's Orders V2 API, held to BigCommerce's published contract.

Every response a test receives is validated, as it arrives, against the response schema of
`orders.v2.oas2.yml` / `orders.v3.yml` (`local.bigcommerce.harness`); the tests then check the
behaviour: auth, filters, sort, paging, creation and totals, updates and `date_modified`,
archiving, sub-resources, and the events every change publishes. Shipments, refunds and the
gateway have their own files (test_bigcommerce_sim_*.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from local.bigcommerce.conformance import check_request
from local.bigcommerce.harness import STORE_HASH, TOKEN, SimulatedStore, simulated_store

BILLING = {
    "first_name": "Jane",
    "last_name": "Doe",
    "street_1": "123 Main Street",
    "city": "Austin",
    "state": "Texas",
    "zip": "78751",
    "country": "United States",
    "country_iso2": "US",
    "email": "janedoe@example.com",
}
MUG = {"name": "BigCommerce Coffee Mug", "quantity": 2, "price_inc_tax": 50, "price_ex_tax": 45}


@pytest.fixture
async def store() -> AsyncIterator[SimulatedStore]:
    async with simulated_store() as simulated:
        yield simulated


async def create(store: SimulatedStore, **fields: Any) -> dict[str, Any]:
    body = {"billing_address": BILLING, "products": [MUG], **fields}
    check_request("POST", f"/stores/{STORE_HASH}/v2/orders", body)
    response = await store.api.post("/v2/orders", json=body)
    assert response.status_code == 200, response.text
    order: dict[str, Any] = response.json()
    return order


def when(rfc2822: str) -> datetime:
    return parsedate_to_datetime(rfc2822)


# --- the gateway: auth and unknown stores --------------------------------------------------


async def test_a_wrong_token_gets_401_in_the_v2_error_shape(store: SimulatedStore) -> None:
    response = await store.api.get("/v2/orders", headers={"X-Auth-Token": "nope"})
    assert response.status_code == 401
    assert response.json() == [
        {"status": 401, "message": "You are not authorized to access this resource."}
    ]


async def test_a_missing_token_gets_401_in_the_v3_error_shape_on_v3(store: SimulatedStore) -> None:
    response = await store.admin.get(f"/stores/{STORE_HASH}/v3/orders/100/transactions")
    assert response.status_code == 401
    body = response.json()
    assert body["status"] == 401
    assert set(body) == {"status", "title", "type", "errors"}


async def test_an_unknown_store_gets_404(store: SimulatedStore) -> None:
    response = await store.admin.get("/stores/nosuch/v2/orders", headers={"X-Auth-Token": TOKEN})
    assert response.status_code == 404
    assert response.json()[0]["status"] == 404


async def test_an_unknown_order_and_an_unknown_route_get_json_404s(store: SimulatedStore) -> None:
    missing = await store.api.get("/v2/orders/999999")
    assert missing.status_code == 404
    assert missing.json() == [{"status": 404, "message": "The requested resource was not found."}]
    nowhere = await store.api.get("/v2/nothing-here")
    assert nowhere.status_code == 404
    assert nowhere.json()[0]["status"] == 404


async def test_time_and_statuses(store: SimulatedStore) -> None:
    time = await store.api.get("/v2/time")
    assert abs(time.json()["time"] - store.clock.now().timestamp()) < 5
    statuses = (await store.api.get("/v2/order_statuses")).json()
    assert [s["id"] for s in statuses] == list(range(15))
    assert {s["id"]: s["name"] for s in statuses}[11] == "Awaiting Fulfillment"
    assert {s["id"]: s["name"] for s in statuses}[14] == "Partially Refunded"
    one = await store.api.get("/v2/order_statuses/3")
    assert one.json()["name"] == "Partially Shipped"


# --- creating orders --------------------------------------------------------------------------


async def test_create_an_order_with_the_minimum_the_guide_documents(
    store: SimulatedStore,
) -> None:
    order = await create(store)
    assert order["status_id"] == 1  # "If not specified, status_id defaults to 1"
    assert order["status"] == "Pending"
    assert order["customer_id"] == 0
    assert order["channel_id"] == 1
    assert order["subtotal_ex_tax"] == "90.0000"
    assert order["subtotal_inc_tax"] == "100.0000"
    assert order["subtotal_tax"] == "10.0000"
    assert order["total_inc_tax"] == "100.0000"
    assert order["total_tax"] == "10.0000"
    assert order["items_total"] == 2
    assert order["date_created"] == order["date_modified"]
    assert order["is_deleted"] is False
    assert order["products"]["resource"] == f"/orders/{order['id']}/products"
    assert store.scopes() == ["store/order/created"]
    assert store.events[0].data == {"type": "order", "id": order["id"]}
    assert store.events[0].channel_id == 1


async def test_create_with_catalog_products_addresses_shipping_and_currency(
    store: SimulatedStore,
) -> None:
    order = await create(
        store,
        customer_id=11,
        status_id=11,
        channel_id=2,
        default_currency_code="EUR",
        shipping_cost_ex_tax="10.00",
        shipping_cost_inc_tax="11.00",
        shipping_addresses=[{**BILLING, "first_name": "Trish", "shipping_method": "Express"}],
        products=[MUG, {"product_id": 184, "quantity": 3, "variant_id": 422}],
        external_source="POS",
        staff_notes="Gift",
    )
    assert order["status_id"] == 11
    assert order["customer_id"] == 11
    assert order["channel_id"] == 2
    assert order["currency_code"] == order["default_currency_code"] == "EUR"
    assert order["store_default_currency_code"] == "USD"
    assert order["shipping_cost_inc_tax"] == "11.0000"
    assert order["items_total"] == 5
    # 2 x 50 (mug) + 3 x 28 (catalog price, no tax given) + 11 shipping
    assert order["total_inc_tax"] == "195.0000"
    lines = (await store.api.get(f"/v2/orders/{order['id']}/products")).json()
    catalog = next(line for line in lines if line["product_id"] == 184)
    assert catalog["variant_id"] == 422
    assert catalog["sku"] == "TSH-ORG"
    addresses = (await store.api.get(f"/v2/orders/{order['id']}/shipping_addresses")).json()
    assert [a["first_name"] for a in addresses] == ["Trish"]
    assert addresses[0]["shipping_method"] == "Express"
    assert {line["order_address_id"] for line in lines} == {addresses[0]["id"]}


async def test_create_keeps_a_migrated_date_created(store: SimulatedStore) -> None:
    order = await create(store, date_created="Tue, 20 Nov 2012 00:00:00 +0000")
    assert order["date_created"] == "Tue, 20 Nov 2012 00:00:00 +0000"
    assert when(order["date_modified"]) > when(order["date_created"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"billing_address": None}, "billing_address"),
        ({"products": []}, "products"),
        ({"billing_address": {**BILLING, "zip": "7"}}, "zip"),
        ({"status_id": 15}, "status_id"),
        ({"products": [{"name": "Mug", "quantity": 1, "price_ex_tax": 5}]}, "price_inc_tax"),
        ({"products": [{"quantity": 1, "price_ex_tax": 5, "price_inc_tax": 6}]}, "name"),
        ({"products": [{"product_id": 999_999, "quantity": 1}]}, "product_id"),
        ({"shipping_cost_ex_tax": "5.00"}, "shipping_cost_inc_tax"),
        ({"default_currency_code": "XXX"}, "default_currency_code"),
        ({"id": 5}, "'id' cannot be written to"),
        ({"date_created": "yesterday"}, "date_created"),
    ],
)
async def test_create_refuses_invalid_orders_with_400(
    store: SimulatedStore, change: dict[str, Any], message: str
) -> None:
    body = {"billing_address": BILLING, "products": [MUG], **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = await store.api.post("/v2/orders", json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()[0]["message"]
    assert store.events == []


async def test_create_refuses_a_body_that_is_not_json(store: SimulatedStore) -> None:
    response = await store.api.post(
        "/v2/orders", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400


async def test_the_specs_own_create_examples_are_accepted(store: SimulatedStore) -> None:
    from local.bigcommerce.conformance import spec

    v2 = spec("v2")
    examples = v2.document["paths"]["/orders"]["post"]["requestBody"]["content"][
        "application/json"
    ]["examples"]
    for name, example in examples.items():
        response = await store.api.post("/v2/orders", json=example["value"])
        if "billing_address" in example["value"]:
            assert response.status_code == 200, (name, response.text)
        else:  # the fees-only fragment shows fees "with rest of the payload"
            assert response.status_code == 400, name


async def test_fees_are_created_and_included_on_request(store: SimulatedStore) -> None:
    order = await create(
        store,
        fees=[
            {
                "type": "custom_fee",
                "display_name_customer": "Package Protection",
                "source": "AA",
                "cost_ex_tax": "4.0000",
                "cost_inc_tax": "5.0000",
            }
        ],
    )
    assert order["total_inc_tax"] == "105.0000"
    assert order["fees"]["resource"] == f"/orders/{order['id']}/fees"
    embedded = (await store.api.get(f"/v2/orders/{order['id']}", params={"include": "fees"})).json()
    assert embedded["fees"][0]["display_name_customer"] == "Package Protection"
    assert embedded["fees"][0]["cost_tax"] == "1.0000"
    alone = (await store.api.get(f"/v2/orders/{order['id']}/fees")).json()
    assert alone["fees"][0]["id"] == embedded["fees"][0]["id"]


# --- reading: one order, consignments, sub-resources --------------------------------------------


async def test_consignments_embed_addresses_and_line_items(store: SimulatedStore) -> None:
    order = await create(
        store,
        shipping_addresses=[BILLING],
        products=[MUG, {"product_id": 301, "quantity": 1}],
    )
    plain = (await store.api.get(f"/v2/orders/{order['id']}")).json()
    assert plain["consignments"]["resource"] == f"/orders/{order['id']}/consignments"
    response = await store.api.get(
        f"/v2/orders/{order['id']}",
        params={"include": "consignments.line_items", "consignment_structure": "object"},
    )
    consignments = response.json()["consignments"]
    assert len(consignments["shipping"]) == 1
    shipping = consignments["shipping"][0]
    assert [item["name"] for item in shipping["line_items"]] == ["BigCommerce Coffee Mug"]
    assert shipping["items_total"] == 2
    assert consignments["downloads"][0]["line_items"][0]["type"] == "digital"
    assert consignments["pickups"] == []
    links = (
        await store.api.get(
            f"/v2/orders/{order['id']}",
            params={"include": "consignments", "consignment_structure": "object"},
        )
    ).json()["consignments"]
    assert links["shipping"][0]["line_items"][0]["resource"].startswith(
        f"/orders/{order['id']}/products/"
    )
    alone = (
        await store.api.get(
            f"/v2/orders/{order['id']}/consignments", params={"include": "consignments.line_items"}
        )
    ).json()
    assert alone["shipping"][0]["id"] == shipping["id"]


async def test_a_listing_embeds_consignments_as_the_single_get_does(
    store: SimulatedStore,
) -> None:
    """`order_includes` and `consignment_structure` are parameters of `GET /orders` too
    (orders.v2.oas2.yml): every listed order carries what its own GET with them carries. The
    list conforms to the spec's list response (the harness checks every response)."""
    ids = await store.generate(12, seed=5, incomplete_share=0)
    include = {"include": "consignments.line_items", "consignment_structure": "object"}
    listed = await store.api.get(
        "/v2/orders",
        params={"min_id": ids[2], "max_id": ids[9], "sort": "id:asc", "limit": 250, **include},
    )
    assert listed.status_code == 200
    orders = listed.json()
    assert [o["id"] for o in orders] == ids[2:10]
    for order in orders:
        alone = (await store.api.get(f"/v2/orders/{order['id']}", params=include)).json()
        assert order == alone
        assert isinstance(order["consignments"], dict)
    by_date = await store.api.get(
        "/v2/orders",
        params={
            "min_date_modified": orders[0]["date_modified"],
            "sort": "date_modified:desc",
            "limit": 3,
            **include,
        },
    )
    assert len(by_date.json()) == 3
    assert all("shipping" in o["consignments"] for o in by_date.json())
    assert ("GET", f"/stores/{STORE_HASH}/v2/orders", 200) in store.checked


async def test_products_are_paged(store: SimulatedStore) -> None:
    products = [{**MUG, "name": f"Mug {i}", "quantity": 1} for i in range(7)]
    order = await create(store, products=products)
    first = (await store.api.get(f"/v2/orders/{order['id']}/products", params={"limit": 5})).json()
    second = await store.api.get(
        f"/v2/orders/{order['id']}/products", params={"limit": 5, "page": 2}
    )
    assert [p["name"] for p in first] == [f"Mug {i}" for i in range(5)]
    assert [p["name"] for p in second.json()] == ["Mug 5", "Mug 6"]
    one = await store.api.get(f"/v2/orders/{order['id']}/products/{first[0]['id']}")
    assert one.json()["name"] == "Mug 0"
    assert (await store.api.get(f"/v2/orders/{order['id']}/products/999999")).status_code == 404


async def test_sub_resources_of_generated_orders_conform(store: SimulatedStore) -> None:
    ids = await store.generate(25, seed=3)
    for order_id in ids:
        for sub in ("products", "shipping_addresses", "coupons", "taxes", "shipments/count"):
            response = await store.api.get(f"/v2/orders/{order_id}/{sub}")
            assert response.status_code == 200, (order_id, sub)
        await store.api.get(f"/v2/orders/{order_id}/taxes", params={"details": "true"})
        await store.api.get(
            f"/v2/orders/{order_id}",
            params={"include": "consignments.line_items,fees", "consignment_structure": "object"},
        )
    assert len(store.checked) == 25 * 7  # every one validated against the spec


async def test_taxes_by_address_and_in_detail(store: SimulatedStore) -> None:
    order = await create(
        store,
        shipping_cost_ex_tax="10.00",
        shipping_cost_inc_tax="10.80",
        shipping_addresses=[BILLING],
    )
    summary = (await store.api.get(f"/v2/orders/{order['id']}/taxes")).json()
    assert [row["line_amount"] for row in summary] == ["10.8000"]
    detail = (await store.api.get(f"/v2/orders/{order['id']}/taxes?details=true")).json()
    assert [(row["line_item_type"], row["line_amount"]) for row in detail] == [
        ("item", "10.0000"),
        ("shipping", "0.8000"),
    ]


async def test_coupons_show_the_generated_discounts(store: SimulatedStore) -> None:
    ids = await store.generate(40, seed=11)
    with_coupons = []
    for order_id in ids:
        coupons = (await store.api.get(f"/v2/orders/{order_id}/coupons")).json()
        if coupons:
            with_coupons.append(order_id)
            order = (await store.api.get(f"/v2/orders/{order_id}")).json()
            assert float(order["coupon_discount"]) == pytest.approx(coupons[0]["discount"])
            lines = (await store.api.get(f"/v2/orders/{order_id}/products")).json()
            applied = sum(float(d["amount"]) for line in lines for d in line["applied_discounts"])
            assert applied == pytest.approx(coupons[0]["discount"], abs=0.001)
    assert with_coupons, "the generator makes coupon orders"


async def test_an_empty_collection_is_an_empty_list_or_204_when_set() -> None:
    # 204 for an empty V2 list is opt-in, beyond the spec (which documents only 200 here)
    async with simulated_store(conformance=False) as store:
        await _empty_collections(store)


async def _empty_collections(store: SimulatedStore) -> None:
    order = await create(store)
    assert (await store.api.get(f"/v2/orders/{order['id']}/coupons")).json() == []
    await store.admin.put("/__sim/settings", json={"empty_v2_list_status": 204})
    assert (await store.api.get(f"/v2/orders/{order['id']}/coupons")).status_code == 204
    assert (await store.api.get("/v2/orders", params={"min_id": 99_999})).status_code == 204


# --- listing and counting -----------------------------------------------------------------------


async def test_listing_defaults_to_50_by_id_ascending(store: SimulatedStore) -> None:
    await store.generate(60, seed=5, incomplete_share=0)
    page = (await store.api.get("/v2/orders")).json()
    assert len(page) == 50
    assert [o["id"] for o in page] == sorted(o["id"] for o in page)
    assert page[0]["id"] == 100


async def test_listing_pages_and_limits(store: SimulatedStore) -> None:
    await store.generate(12, seed=5, incomplete_share=0)
    seen = []
    for number in (1, 2, 3):
        page = (await store.api.get("/v2/orders", params={"limit": 5, "page": number})).json()
        seen += [o["id"] for o in page]
    assert seen == list(range(100, 112))
    beyond = await store.api.get("/v2/orders", params={"limit": 5, "page": 4})
    assert beyond.json() == []
    too_many = await store.api.get("/v2/orders", params={"limit": 251})
    assert too_many.status_code == 413
    assert (await store.api.get("/v2/orders", params={"limit": 250})).status_code == 200
    assert (await store.api.get("/v2/orders", params={"page": "x"})).status_code == 400


async def test_sorting(store: SimulatedStore) -> None:
    await store.generate(15, seed=8, incomplete_share=0)
    desc = (await store.api.get("/v2/orders", params={"sort": "id:desc"})).json()
    assert [o["id"] for o in desc] == sorted((o["id"] for o in desc), reverse=True)
    by_status = (await store.api.get("/v2/orders", params={"sort": "status_id:asc"})).json()
    keys = [(o["status_id"], o["id"]) for o in by_status]
    assert keys == sorted(keys)
    by_customer = (await store.api.get("/v2/orders", params={"sort": "customer_id:desc"})).json()
    customers = [o["customer_id"] for o in by_customer]
    assert customers == sorted(customers, reverse=True)
    assert (await store.api.get("/v2/orders", params={"sort": "total"})).status_code == 400


async def test_sort_by_date_modified_follows_changes(store: SimulatedStore) -> None:
    first, second, third = (await create(store))["id"], (await create(store))["id"], 0
    store.clock.advance(timedelta(seconds=10))
    await store.api.put(f"/v2/orders/{first}", json={"status_id": 11})
    store.clock.advance(timedelta(seconds=10))
    third = (await create(store))["id"]
    listed = (await store.api.get("/v2/orders", params={"sort": "date_modified:asc"})).json()
    assert [o["id"] for o in listed] == [second, first, third]
    listed = (await store.api.get("/v2/orders", params={"sort": "date_modified:desc"})).json()
    assert [o["id"] for o in listed] == [third, first, second]


async def test_filters(store: SimulatedStore) -> None:
    a = await create(store, customer_id=7, status_id=11)
    b = await create(store, customer_id=8, status_id=9, channel_id=3)
    c = await create(
        store,
        status_id=11,
        billing_address={**BILLING, "email": "someone@else.org"},
        external_order_id="AMZ-1",
    )

    async def ids(**params: Any) -> list[int]:
        response = await store.api.get("/v2/orders", params=params)
        return [o["id"] for o in response.json()]

    assert await ids(min_id=b["id"]) == [b["id"], c["id"]]
    assert await ids(max_id=b["id"]) == [a["id"], b["id"]]
    assert await ids(customer_id=7) == [a["id"]]
    assert await ids(status_id=11) == [a["id"], c["id"]]
    assert await ids(channel_id=3) == [b["id"]]
    assert await ids(email="SOMEONE@else.org") == [c["id"]]
    assert await ids(external_order_id="AMZ-1") == [c["id"]]
    assert await ids(payment_method="Manual") == [a["id"], b["id"], c["id"]]
    assert await ids(min_total="100", max_total="100") == [a["id"], b["id"], c["id"]]
    assert await ids(min_total="100.01") == []
    assert (await store.api.get("/v2/orders", params={"status_id": 99})).status_code == 400
    assert (await store.api.get("/v2/orders", params={"min_id": "abc"})).status_code == 400


async def test_date_filters_take_rfc2822_and_iso8601_and_are_inclusive(
    store: SimulatedStore,
) -> None:
    early = await create(store)
    store.clock.advance(timedelta(hours=1))
    late = await create(store)
    boundary = when(late["date_created"])
    iso = boundary.isoformat()
    rfc = late["date_created"]

    async def ids(**params: Any) -> list[int]:
        response = await store.api.get("/v2/orders", params=params)
        assert response.status_code == 200, response.text
        return [o["id"] for o in response.json()]

    assert await ids(min_date_created=iso) == [late["id"]]
    assert await ids(min_date_created=rfc) == [late["id"]]
    assert await ids(max_date_created=rfc) == [early["id"], late["id"]]
    before = (
        (boundary - timedelta(seconds=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000-00:00")
    )
    assert await ids(max_date_created=before) == [early["id"]]
    assert await ids(min_date_modified=iso) == [late["id"]]
    assert await ids(max_date_modified=iso) == [early["id"], late["id"]]
    offset = boundary.astimezone(datetime.now().astimezone().tzinfo).isoformat()
    assert await ids(min_date_modified=offset) == [late["id"]]
    bad = await store.api.get("/v2/orders", params={"min_date_modified": "last tuesday"})
    assert bad.status_code == 400


async def test_reconciliation_recipe_finds_every_change_once(store: SimulatedStore) -> None:
    """The reference's recipe: min_date_modified + sort=date_modified:asc, page until short."""
    ids = await store.generate(30, seed=21, incomplete_share=0)
    watermark = store.clock.now() - timedelta(minutes=1)
    store.clock.advance(timedelta(minutes=5))
    for order_id in ids[:7]:
        await store.api.put(f"/v2/orders/{order_id}", json={"status_id": 9})
    found: list[int] = []
    page = 1
    while True:
        response = await store.api.get(
            "/v2/orders",
            params={
                "min_date_modified": (store.clock.now() - timedelta(minutes=1)).isoformat(),
                "sort": "date_modified:asc",
                "limit": 3,
                "page": page,
            },
        )
        batch = response.json()
        found += [o["id"] for o in batch]
        if len(batch) < 3:
            break
        page += 1
    assert sorted(found) == sorted(ids[:7])
    everything = await store.api.get(
        "/v2/orders", params={"min_date_modified": watermark.isoformat(), "limit": 250}
    )
    assert len(everything.json()) == 30


async def test_archived_and_incomplete_orders_are_listed_only_when_asked(
    store: SimulatedStore,
) -> None:
    kept = await create(store)
    archived = await create(store)
    incomplete = await create(store, status_id=0)
    assert (await store.api.delete(f"/v2/orders/{archived['id']}")).status_code == 204
    listed = [o["id"] for o in (await store.api.get("/v2/orders")).json()]
    assert listed == [kept["id"]]
    deleted = (await store.api.get("/v2/orders", params={"is_deleted": "true"})).json()
    assert [o["id"] for o in deleted] == [archived["id"]]
    assert deleted[0]["is_deleted"] is True
    zero = (await store.api.get("/v2/orders", params={"status_id": 0})).json()
    assert [o["id"] for o in zero] == [incomplete["id"]]
    one = (await store.api.get(f"/v2/orders/{archived['id']}")).json()
    assert one["is_deleted"] is True


async def test_count_reports_every_status_and_takes_the_filters(store: SimulatedStore) -> None:
    await create(store, status_id=11)
    await create(store, status_id=11, customer_id=4)
    await create(store, status_id=0)
    counts = (await store.api.get("/v2/orders/count")).json()
    assert counts["count"] == 3
    by_id = {s["id"]: s["count"] for s in counts["statuses"]}
    assert by_id[11] == 2
    assert by_id[0] == 1
    assert len(counts["statuses"]) == 15
    assert [s["sort_order"] for s in counts["statuses"]] == list(range(15))
    filtered = (await store.api.get("/v2/orders/count", params={"customer_id": 4})).json()
    assert filtered["count"] == 1


# --- updating and archiving ----------------------------------------------------------------------


async def test_a_status_change_bumps_date_modified_and_publishes_both_events(
    store: SimulatedStore,
) -> None:
    order = await create(store)
    store.events.clear()
    store.clock.advance(timedelta(seconds=30))
    response = await store.api.put(f"/v2/orders/{order['id']}", json={"status_id": 11})
    updated = response.json()
    assert updated["status_id"] == 11
    assert updated["status"] == updated["custom_status"] == "Awaiting Fulfillment"
    assert when(updated["date_modified"]) - when(order["date_modified"]) >= timedelta(seconds=30)
    assert updated["date_created"] == order["date_created"]
    assert store.scopes() == ["store/order/updated", "store/order/statusUpdated"]
    assert store.events[1].data == {
        "type": "order",
        "id": order["id"],
        "status": {"previous_status_id": 1, "new_status_id": 11},
    }
    assert store.events[1].channel_id == 1


async def test_every_put_bumps_date_modified_even_without_a_status_change(
    store: SimulatedStore,
) -> None:
    order = await create(store)
    store.events.clear()
    store.clock.advance(timedelta(seconds=5))
    updated = (
        await store.api.put(f"/v2/orders/{order['id']}", json={"staff_notes": "Call first"})
    ).json()
    assert updated["staff_notes"] == "Call first"
    assert when(updated["date_modified"]) > when(order["date_modified"])
    assert store.scopes() == ["store/order/updated"]


async def test_put_changes_products_addresses_and_totals(store: SimulatedStore) -> None:
    order = await create(store, shipping_addresses=[BILLING])
    lines = (await store.api.get(f"/v2/orders/{order['id']}/products")).json()
    address_id = (await store.api.get(f"/v2/orders/{order['id']}/shipping_addresses")).json()[0][
        "id"
    ]
    body = {
        "billing_address": {"first_name": "Janet", "zip": "78752"},
        "shipping_addresses": [{"id": address_id, "city": "Dallas"}],
        "products": [
            {"id": lines[0]["id"], "quantity": 3},
            {"name": "Poster", "quantity": 1, "price_inc_tax": 10.98, "price_ex_tax": 10},
        ],
    }
    check_request("PUT", f"/stores/{STORE_HASH}/v2/orders/{order['id']}", body)
    updated = (await store.api.put(f"/v2/orders/{order['id']}", json=body)).json()
    assert updated["billing_address"]["first_name"] == "Janet"
    assert updated["billing_address"]["last_name"] == "Doe"  # the rest is kept
    assert updated["items_total"] == 4
    assert updated["total_inc_tax"] == "160.9800"
    address = (await store.api.get(f"/v2/orders/{order['id']}/shipping_addresses")).json()[0]
    assert address["city"] == "Dallas"
    removed = await store.api.put(
        f"/v2/orders/{order['id']}", json={"products": [{"id": lines[0]["id"], "quantity": 0}]}
    )
    assert [
        p["name"] for p in (await store.api.get(f"/v2/orders/{order['id']}/products")).json()
    ] == ["Poster"]
    assert removed.json()["items_total"] == 1


async def test_put_refuses_what_cannot_be_written(store: SimulatedStore) -> None:
    order = await create(store, external_merchant_id="fb-page-1")
    for body in (
        {"status_id": -1},
        {"status": "Shipped"},
        {"date_modified": "Tue, 20 Nov 2012 00:00:00 +0000"},
        {"external_merchant_id": "fb-page-2"},
        {"products": [{"id": 999_999, "quantity": 1}]},
    ):
        response = await store.api.put(f"/v2/orders/{order['id']}", json=body)
        assert response.status_code == 400, body
    assert (await store.api.put("/v2/orders/999999", json={"status_id": 11})).status_code == 404


async def test_a_refused_put_changes_nothing(store: SimulatedStore) -> None:
    order = await create(store)
    lines = (await store.api.get(f"/v2/orders/{order['id']}/products")).json()
    store.events.clear()
    body = {"staff_notes": "x", "products": [{"id": lines[0]["id"], "quantity": 5}, {"id": -1}]}
    assert (await store.api.put(f"/v2/orders/{order['id']}", json=body)).status_code == 400
    assert (await store.api.get(f"/v2/orders/{order['id']}")).json() == order
    assert store.events == []


async def test_archiving_publishes_archived_and_is_deleted_true_in_put_does_too(
    store: SimulatedStore,
) -> None:
    one, two = await create(store), await create(store)
    store.events.clear()
    assert (await store.api.delete(f"/v2/orders/{one['id']}")).status_code == 204
    assert store.scopes() == ["store/order/archived"]
    store.events.clear()
    await store.api.put(f"/v2/orders/{two['id']}", json={"is_deleted": True})
    assert "store/order/archived" in store.scopes()
    assert (await store.api.get("/v2/orders")).json() == []
    assert (await store.api.delete("/v2/orders/999999")).status_code == 404


async def test_updating_a_shipping_address_directly(store: SimulatedStore) -> None:
    order = await create(store, shipping_addresses=[BILLING])
    address = (await store.api.get(f"/v2/orders/{order['id']}/shipping_addresses")).json()[0]
    body = {"street_1": "1 New Road", "phone": "555"}
    response = await store.api.put(
        f"/v2/orders/{order['id']}/shipping_addresses/{address['id']}", json=body
    )
    assert response.json()["street_1"] == "1 New Road"
    single = await store.api.get(f"/v2/orders/{order['id']}/shipping_addresses/{address['id']}")
    assert single.json()["phone"] == "555"
    quotes = await store.api.get(
        f"/v2/orders/{order['id']}/shipping_addresses/{address['id']}/shipping_quotes"
    )
    assert quotes.status_code == 204  # API-made orders have no quotes


async def test_the_generated_mix_is_realistic(store: SimulatedStore) -> None:
    ids = await store.generate(120, seed=99)
    orders = [
        (await store.api.get(f"/v2/orders/{order_id}", params={"include": "consignments"})).json()
        for order_id in ids
    ]
    assert any(o["customer_id"] == 0 for o in orders)
    assert any(o["customer_id"] > 0 for o in orders)
    assert any(o["billing_address"]["company"] for o in orders)
    assert any(o["is_tax_inclusive_pricing"] for o in orders)
    assert any(not o["is_tax_inclusive_pricing"] for o in orders)
    assert {o["currency_code"] for o in orders} >= {"USD", "EUR", "GBP"}
    assert any(o["order_is_digital"] for o in orders)
    assert any(len(o["consignments"]["shipping"]) == 2 for o in orders)
    assert any(o["items_total"] > 3 for o in orders)
    assert any(o["status_id"] == 0 for o in orders)
    assert any(float(o["coupon_discount"]) > 0 for o in orders)
    again = await store.generate(3, seed=99)
    first_three = [o["billing_address"]["email"] for o in orders[:3]]
    repeated = [
        (await store.api.get(f"/v2/orders/{order_id}")).json()["billing_address"]["email"]
        for order_id in again
    ]
    assert repeated == first_three  # the same seed gives the same orders


async def test_a_tour_of_every_endpoint_conforms_to_the_spec(store: SimulatedStore) -> None:
    """Calls every implemented operation once and checks each answer was validated."""
    from local.bigcommerce.conformance import spec

    order = await create(store, status_id=11, customer_id=3, shipping_addresses=[BILLING])
    oid = order["id"]
    api = store.api
    line = (await api.get(f"/v2/orders/{oid}/products")).json()[0]["id"]
    address = (await api.get(f"/v2/orders/{oid}/shipping_addresses")).json()[0]["id"]
    await api.get("/v2/orders")
    await api.get("/v2/orders/count")
    await api.get(f"/v2/orders/{oid}")
    await api.put(f"/v2/orders/{oid}", json={"staff_notes": "tour"})
    await api.get(f"/v2/orders/{oid}/products/{line}")
    await api.get(f"/v2/orders/{oid}/shipping_addresses/{address}")
    await api.put(f"/v2/orders/{oid}/shipping_addresses/{address}", json={"zip": "78751"})
    await api.get(f"/v2/orders/{oid}/shipping_addresses/{address}/shipping_quotes")
    for sub in ("coupons", "taxes", "messages", "consignments", "fees", "shipments"):
        await api.get(f"/v2/orders/{oid}/{sub}")
    await api.get("/v2/order_statuses")
    await api.get("/v2/order_statuses/11")
    one = {"order_address_id": address, "items": [{"order_product_id": line, "quantity": 1}]}
    shipment = (await api.post(f"/v2/orders/{oid}/shipments", json=one)).json()["id"]
    await api.get(f"/v2/orders/{oid}/shipments")
    await api.get(f"/v2/orders/{oid}/shipments/count")
    await api.get(f"/v2/orders/{oid}/shipments/{shipment}")
    await api.put(f"/v2/orders/{oid}/shipments/{shipment}", json={"tracking_number": "T1"})
    await api.delete(f"/v2/orders/{oid}/shipments/{shipment}")
    await api.delete(f"/v2/orders/{oid}/shipments")
    items = [{"item_type": "PRODUCT", "item_id": line, "quantity": 1}]
    await api.get(f"/v3/orders/{oid}/transactions")
    await api.post(f"/v3/orders/{oid}/payment_actions/refund_quotes", json={"items": items})
    payments = [{"provider_id": "storecredit", "amount": 50, "offline": False}]
    created = await api.post(
        f"/v3/orders/{oid}/payment_actions/refunds", json={"items": items, "payments": payments}
    )
    await api.get(f"/v3/orders/{oid}/transactions")
    await api.get(f"/v3/orders/{oid}/payment_actions/refunds")
    await api.get("/v3/orders/payment_actions/refunds")
    await api.get(f"/v3/orders/payment_actions/refunds/{created.json()['data']['id']}")
    metafield = {"permission_set": "read", "namespace": "n", "key": "k", "value": "v"}
    mid = (await api.post(f"/v3/orders/{oid}/metafields", json=metafield)).json()["data"]["id"]
    await api.get(f"/v3/orders/{oid}/metafields")
    await api.get(f"/v3/orders/{oid}/metafields/{mid}")
    await api.put(f"/v3/orders/{oid}/metafields/{mid}", json={**metafield, "value": "w"})
    await api.delete(f"/v3/orders/{oid}/metafields/{mid}")
    await api.delete(f"/v2/orders/{oid}")
    await api.delete("/v2/orders")

    seen = set()
    for method, path, status in store.checked:
        version, rest = path.split("/")[3], "/" + path.split("/", 4)[4]
        seen.add((method, version, spec(version).operation(method, rest).path, status))
    expected = {
        ("GET", "v2", "/orders", 200),
        ("POST", "v2", "/orders", 200),
        ("DELETE", "v2", "/orders", 204),
        ("GET", "v2", "/orders/count", 200),
        ("GET", "v2", "/orders/{order_id}", 200),
        ("PUT", "v2", "/orders/{order_id}", 200),
        ("DELETE", "v2", "/orders/{order_id}", 204),
        ("GET", "v2", "/orders/{order_id}/products", 200),
        ("GET", "v2", "/orders/{order_id}/products/{product_id}", 200),
        ("GET", "v2", "/orders/{order_id}/shipping_addresses", 200),
        ("GET", "v2", "/orders/{order_id}/shipping_addresses/{id}", 200),
        ("PUT", "v2", "/orders/{order_id}/shipping_addresses/{id}", 200),
        (
            "GET",
            "v2",
            "/orders/{order_id}/shipping_addresses/{shipping_address_id}/shipping_quotes",
            204,
        ),
        ("GET", "v2", "/orders/{order_id}/coupons", 200),
        ("GET", "v2", "/orders/{order_id}/taxes", 200),
        ("GET", "v2", "/orders/{order_id}/messages", 200),
        ("GET", "v2", "/orders/{order_id}/consignments", 200),
        ("GET", "v2", "/orders/{order_id}/fees", 200),
        ("GET", "v2", "/order_statuses", 200),
        ("GET", "v2", "/order_statuses/{status_id}", 200),
        ("GET", "v2", "/orders/{order_id}/shipments", 204),
        ("GET", "v2", "/orders/{order_id}/shipments", 200),
        ("POST", "v2", "/orders/{order_id}/shipments", 201),
        ("DELETE", "v2", "/orders/{order_id}/shipments", 204),
        ("GET", "v2", "/orders/{order_id}/shipments/count", 200),
        ("GET", "v2", "/orders/{order_id}/shipments/{shipment_id}", 200),
        ("PUT", "v2", "/orders/{order_id}/shipments/{shipment_id}", 200),
        ("DELETE", "v2", "/orders/{order_id}/shipments/{shipment_id}", 204),
        ("GET", "v3", "/orders/{order_id}/transactions", 204),
        ("GET", "v3", "/orders/{order_id}/transactions", 200),
        ("POST", "v3", "/orders/{order_id}/payment_actions/refund_quotes", 201),
        ("POST", "v3", "/orders/{order_id}/payment_actions/refunds", 201),
        ("GET", "v3", "/orders/{order_id}/payment_actions/refunds", 200),
        ("GET", "v3", "/orders/payment_actions/refunds", 200),
        ("GET", "v3", "/orders/payment_actions/refunds/{refund_id}", 200),
        ("GET", "v3", "/orders/{order_id}/metafields", 200),
        ("POST", "v3", "/orders/{order_id}/metafields", 200),
        ("GET", "v3", "/orders/{order_id}/metafields/{metafield_id}", 200),
        ("PUT", "v3", "/orders/{order_id}/metafields/{metafield_id}", 200),
        ("DELETE", "v3", "/orders/{order_id}/metafields/{metafield_id}", 204),
    }
    assert expected - seen == set()
