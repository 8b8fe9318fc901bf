"""Shipments on the store simulator: the `orderShipment` contract, its validation, and the status
moves and events that creating, changing and deleting shipments cause.

Responses are validated against `orders.v2.oas2.yml` as they arrive (see the harness).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from local.bigcommerce.conformance import check_request
from local.bigcommerce.harness import STORE_HASH, SimulatedStore, simulated_store

BILLING = {"first_name": "Jane", "last_name": "Doe", "zip": "78751", "email": "jane@example.com"}
SECOND = {**BILLING, "first_name": "Trish", "city": "Austin"}


@pytest.fixture
async def store() -> AsyncIterator[SimulatedStore]:
    async with simulated_store() as simulated:
        yield simulated


class Order:
    def __init__(self, body: dict[str, Any], lines: list[dict[str, Any]], addresses: list[int]):
        self.id: int = body["id"]
        self.lines = lines
        self.addresses = addresses


async def make_order(store: SimulatedStore, status_id: int = 11, **extra: Any) -> Order:
    body = {
        "status_id": status_id,
        "billing_address": BILLING,
        "shipping_addresses": [BILLING],
        "products": [
            {"name": "Mug", "quantity": 2, "price_inc_tax": 10, "price_ex_tax": 10},
            {"name": "Poster", "quantity": 1, "price_inc_tax": 5, "price_ex_tax": 5},
        ],
        **extra,
    }
    created = (await store.api.post("/v2/orders", json=body)).json()
    lines = (await store.api.get(f"/v2/orders/{created['id']}/products")).json()
    addresses = (await store.api.get(f"/v2/orders/{created['id']}/shipping_addresses")).json()
    store.events.clear()
    return Order(created, lines, [a["id"] for a in addresses])


async def ship(
    store: SimulatedStore, order: Order, items: list[tuple[int, int]], **fields: Any
) -> Any:
    body = {
        "order_address_id": fields.pop("order_address_id", order.addresses[0]),
        "items": [{"order_product_id": i, "quantity": q} for i, q in items],
        **fields,
    }
    return await store.api.post(f"/v2/orders/{order.id}/shipments", json=body)


async def status_of(store: SimulatedStore, order: Order) -> int:
    status: int = (await store.api.get(f"/v2/orders/{order.id}")).json()["status_id"]
    return status


async def test_no_shipments_is_204_and_count_zero(store: SimulatedStore) -> None:
    order = await make_order(store)
    assert (await store.api.get(f"/v2/orders/{order.id}/shipments")).status_code == 204
    count = await store.api.get(f"/v2/orders/{order.id}/shipments/count")
    assert count.json() == {"count": 0}


async def test_a_partial_then_a_full_shipment_move_the_status_3_then_2(
    store: SimulatedStore,
) -> None:
    order = await make_order(store)
    mug, poster = order.lines[0]["id"], order.lines[1]["id"]
    body = {
        "order_address_id": order.addresses[0],
        "tracking_number": "EJ958083578US",
        "shipping_provider": "usps",
        "comments": "Ready to go...",
        "items": [{"order_product_id": mug, "quantity": 1}],
    }
    check_request("POST", f"/stores/{STORE_HASH}/v2/orders/{order.id}/shipments", body)
    first = await store.api.post(f"/v2/orders/{order.id}/shipments", json=body)
    assert first.status_code == 201
    shipment = first.json()
    assert shipment["items"] == [{"order_product_id": mug, "product_id": 0, "quantity": 1}]
    assert shipment["shipping_provider_display_name"] == "USPS"
    assert "EJ958083578US" in shipment["generated_tracking_link"]
    assert shipment["shipping_address"]["first_name"] == "Jane"
    assert await status_of(store, order) == 3
    assert store.scopes() == [
        "store/shipment/created",
        "store/order/updated",
        "store/order/statusUpdated",
    ]
    assert store.events[0].data == {"type": "shipment", "id": shipment["id"], "orderId": order.id}
    assert store.events[2].data["status"] == {"previous_status_id": 11, "new_status_id": 3}
    store.events.clear()
    second = await ship(store, order, [(mug, 1), (poster, 1)], tracking_link="https://t.example/1")
    assert second.status_code == 201
    assert second.json()["generated_tracking_link"] == ""  # a custom link wins
    assert await status_of(store, order) == 2
    assert store.scopes()[-1] == "store/order/statusUpdated"
    shown = (await store.api.get(f"/v2/orders/{order.id}")).json()
    assert shown["items_shipped"] == 3
    assert shown["date_shipped"] != ""
    listed = (await store.api.get(f"/v2/orders/{order.id}/shipments")).json()
    assert [s["id"] for s in listed] == [shipment["id"], second.json()["id"]]
    assert (await store.api.get(f"/v2/orders/{order.id}/shipments/count")).json() == {"count": 2}
    lines = (await store.api.get(f"/v2/orders/{order.id}/products")).json()
    assert [line["quantity_shipped"] for line in lines] == [2, 1]


async def test_a_second_partial_shipment_keeps_status_3_and_publishes_only_updated(
    store: SimulatedStore,
) -> None:
    order = await make_order(store)
    mug = order.lines[0]["id"]
    await ship(store, order, [(mug, 1)])
    store.events.clear()
    assert (await ship(store, order, [(order.lines[1]["id"], 1)])).status_code == 201
    assert await status_of(store, order) == 3
    assert store.scopes() == ["store/shipment/created", "store/order/updated"]


async def test_shipping_bumps_date_modified(store: SimulatedStore) -> None:
    order = await make_order(store)
    before = (await store.api.get(f"/v2/orders/{order.id}")).json()["date_modified"]
    store.clock.advance(timedelta(seconds=61))
    await ship(store, order, [(order.lines[0]["id"], 2)])
    after = (await store.api.get(f"/v2/orders/{order.id}")).json()["date_modified"]
    assert after != before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"order_address_id": None}, "order_address_id"),
        ({"order_address_id": 999_999}, "order_address_id"),
        ({"items": []}, "items"),
        ({"items": [{"order_product_id": 999_999, "quantity": 1}]}, "order_product_id"),
        ({"items": [{"order_product_id": "MUG", "quantity": 3}]}, "greater than"),
        ({"items": [{"order_product_id": "MUG", "quantity": 0}]}, "quantity"),
        ({"tracking_number": "x" * 51}, "tracking_number"),
        ({"tracking_link": "https://" + "x" * 500}, "tracking_link"),
        ({"shipping_provider": "pigeon"}, "shipping_provider"),
    ],
)
async def test_invalid_shipments_are_refused_with_400(
    store: SimulatedStore, change: dict[str, Any], message: str
) -> None:
    order = await make_order(store)
    body: dict[str, Any] = {
        "order_address_id": order.addresses[0],
        "items": [{"order_product_id": order.lines[0]["id"], "quantity": 1}],
        **change,
    }
    for item in body["items"]:
        if item["order_product_id"] == "MUG":
            item["order_product_id"] = order.lines[0]["id"]
    body = {k: v for k, v in body.items() if v is not None}
    response = await store.api.post(f"/v2/orders/{order.id}/shipments", json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()[0]["message"]
    assert store.events == []
    assert await status_of(store, order) == 11


async def test_cannot_ship_more_than_ordered_minus_shipped(store: SimulatedStore) -> None:
    order = await make_order(store)
    mug = order.lines[0]["id"]
    assert (await ship(store, order, [(mug, 1)])).status_code == 201
    refused = await ship(store, order, [(mug, 2)])
    assert refused.status_code == 400
    assert "(1)" in refused.json()[0]["message"]
    twice = await ship(store, order, [(mug, 1), (mug, 1)])  # the same line twice adds up
    assert twice.status_code == 400


async def test_items_must_belong_to_the_address_and_be_physical(store: SimulatedStore) -> None:
    body = {
        "status_id": 11,
        "billing_address": BILLING,
        "shipping_addresses": [BILLING, SECOND],
        "products": [
            {"name": "Mug", "quantity": 1, "price_inc_tax": 10, "price_ex_tax": 10},
            {"product_id": 301, "quantity": 1},
        ],
    }
    created = (await store.api.post("/v2/orders", json=body)).json()
    lines = (await store.api.get(f"/v2/orders/{created['id']}/products")).json()
    addresses = [
        a["id"]
        for a in (await store.api.get(f"/v2/orders/{created['id']}/shipping_addresses")).json()
    ]
    order = Order(created, lines, addresses)
    wrong_address = await ship(store, order, [(lines[0]["id"], 1)], order_address_id=addresses[1])
    assert wrong_address.status_code == 400
    digital = await ship(store, order, [(lines[1]["id"], 1)])
    assert digital.status_code == 400
    assert "digital" in digital.json()[0]["message"]
    assert (await ship(store, order, [(lines[0]["id"], 1)])).status_code == 201
    assert await status_of(store, order) == 2  # every physical item has shipped


async def test_update_a_shipment(store: SimulatedStore) -> None:
    order = await make_order(store)
    created = (await ship(store, order, [(order.lines[0]["id"], 1)])).json()
    store.events.clear()
    body = {
        "tracking_number": "1Z999",
        "shipping_provider": "ups",
        "merchant_shipping_cost": "1.0000",
    }
    check_request("PUT", f"/stores/{STORE_HASH}/v2/orders/{order.id}/shipments/1", body)
    response = await store.api.put(f"/v2/orders/{order.id}/shipments/{created['id']}", json=body)
    assert response.status_code == 200
    updated = response.json()
    assert updated["tracking_number"] == "1Z999"
    assert updated["merchant_shipping_cost"] == "1.0000"
    assert updated["shipping_provider_display_name"] == "UPS"
    assert store.scopes() == ["store/shipment/updated"]
    fetched = await store.api.get(f"/v2/orders/{order.id}/shipments/{created['id']}")
    assert fetched.json()["tracking_number"] == "1Z999"
    bad = await store.api.put(
        f"/v2/orders/{order.id}/shipments/{created['id']}", json={"order_address_id": 999_999}
    )
    assert bad.status_code == 400
    missing = await store.api.put(f"/v2/orders/{order.id}/shipments/999999", json=body)
    assert missing.status_code == 404


async def test_deleting_a_shipment_keeps_the_shipped_status(store: SimulatedStore) -> None:
    order = await make_order(store)
    created = (
        await ship(store, order, [(order.lines[0]["id"], 2), (order.lines[1]["id"], 1)])
    ).json()
    assert await status_of(store, order) == 2
    store.events.clear()
    deleted = await store.api.delete(f"/v2/orders/{order.id}/shipments/{created['id']}")
    assert deleted.status_code == 204
    assert store.scopes() == ["store/shipment/deleted", "store/order/updated"]
    assert store.events[0].data == {"type": "shipment", "id": created["id"], "orderId": order.id}
    assert await status_of(store, order) == 2  # "does not move the order out of Shipped"
    shown = (await store.api.get(f"/v2/orders/{order.id}")).json()
    assert shown["items_shipped"] == 0
    assert (
        await store.api.get(f"/v2/orders/{order.id}/shipments/{created['id']}")
    ).status_code == 404


async def test_deleting_all_shipments(store: SimulatedStore) -> None:
    order = await make_order(store)
    await ship(store, order, [(order.lines[0]["id"], 1)])
    await ship(store, order, [(order.lines[1]["id"], 1)])
    assert (await store.api.delete(f"/v2/orders/{order.id}/shipments")).status_code == 204
    assert (await store.api.get(f"/v2/orders/{order.id}/shipments")).status_code == 204
    assert store.scopes().count("store/shipment/deleted") == 2


async def test_shipments_of_an_unknown_order_are_404(store: SimulatedStore) -> None:
    assert (await store.api.get("/v2/orders/999999/shipments")).status_code == 404
    response = await store.api.post(
        "/v2/orders/999999/shipments",
        json={"order_address_id": 1, "items": [{"order_product_id": 1, "quantity": 1}]},
    )
    assert response.status_code == 404


async def test_generated_multi_address_orders_ship_per_consignment(store: SimulatedStore) -> None:
    ids = await store.generate(80, seed=4, incomplete_share=0)
    for order_id in ids:
        addresses = (await store.api.get(f"/v2/orders/{order_id}/shipping_addresses")).json()
        if len(addresses) < 2:
            continue
        lines = (await store.api.get(f"/v2/orders/{order_id}/products")).json()
        for address in addresses:
            items = [
                {"order_product_id": line["id"], "quantity": line["quantity"]}
                for line in lines
                if line["order_address_id"] == address["id"]
            ]
            response = await store.api.post(
                f"/v2/orders/{order_id}/shipments",
                json={"order_address_id": address["id"], "items": items},
            )
            assert response.status_code == 201, response.text
        digital_left = any(line["type"] != "physical" for line in lines)
        final = (await store.api.get(f"/v2/orders/{order_id}")).json()
        assert final["status_id"] == 2, (order_id, digital_left)
        return
    pytest.fail("the generator made no order with two shipping addresses")
