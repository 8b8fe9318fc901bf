"""Orders V3 on the store simulator: transactions, refund quotes, refunds and order metafields.

Responses are validated against `orders.v3.yml` as they arrive (see the harness); the tests check
the refund rules (amounts must match a quote, one refund at a time per order, store credit needs
a registered customer, nothing beyond what was paid), their 422 bodies, the status moves to
Partially Refunded (14) and Refunded (4), and the events.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from local.bigcommerce.conformance import check_request
from local.bigcommerce.harness import STORE_HASH, SimulatedStore, simulated_store

BILLING = {"first_name": "Jane", "last_name": "Doe", "zip": "78751", "email": "jane@example.com"}


@pytest.fixture
async def store() -> AsyncIterator[SimulatedStore]:
    async with simulated_store() as simulated:
        yield simulated


async def paid_order(store: SimulatedStore, customer_id: int = 0) -> tuple[int, list[Any], int]:
    """An order paid by a manual payment: 2 mugs at 50 inc. tax (45 ex), shipping 10.80/10."""
    body = {
        "status_id": 11,
        "customer_id": customer_id,
        "billing_address": BILLING,
        "shipping_addresses": [BILLING],
        "shipping_cost_ex_tax": 10,
        "shipping_cost_inc_tax": 10.8,
        "products": [{"name": "Mug", "quantity": 2, "price_inc_tax": 50, "price_ex_tax": 45}],
    }
    order = (await store.api.post("/v2/orders", json=body)).json()
    lines = (await store.api.get(f"/v2/orders/{order['id']}/products")).json()
    address = (await store.api.get(f"/v2/orders/{order['id']}/shipping_addresses")).json()[0]
    store.events.clear()
    return order["id"], lines, address["id"]


async def quote(store: SimulatedStore, order_id: int, items: list[dict[str, Any]]) -> Any:
    body = {"items": items}
    path = f"/v3/orders/{order_id}/payment_actions/refund_quotes"
    check_request("POST", f"/stores/{STORE_HASH}{path}", body)
    return await store.api.post(path, json=body)


async def refund(
    store: SimulatedStore,
    order_id: int,
    items: list[dict[str, Any]],
    payments: list[Any],
    **more: Any,
) -> Any:
    body = {"items": items, "payments": payments, **more}
    path = f"/v3/orders/{order_id}/payment_actions/refunds"
    check_request("POST", f"/stores/{STORE_HASH}{path}", body)
    return await store.api.post(path, json=body)


def pay(provider: str, amount: float, offline: bool = False) -> dict[str, Any]:
    return {"provider_id": provider, "amount": amount, "offline": offline}


async def status_of(store: SimulatedStore, order_id: int) -> int:
    status: int = (await store.api.get(f"/v2/orders/{order_id}")).json()["status_id"]
    return status


async def online_paid_order(store: SimulatedStore) -> int:
    ids = await store.generate(40, seed=12, incomplete_share=0)
    for order_id in ids:
        order = (await store.api.get(f"/v2/orders/{order_id}")).json()
        if order["payment_method"] in ("Braintree", "Stripe") and order["status_id"] == 11:
            store.events.clear()
            return order_id
    raise AssertionError("the generator made no card-paid order")


# --- transactions ------------------------------------------------------------------------------


async def test_a_card_paid_order_has_its_purchase_transaction(store: SimulatedStore) -> None:
    order_id = await online_paid_order(store)
    response = await store.api.get(f"/v3/orders/{order_id}/transactions")
    assert response.status_code == 200
    (purchase,) = response.json()["data"]
    order = (await store.api.get(f"/v2/orders/{order_id}")).json()
    assert purchase["event"] == "purchase"
    assert purchase["method"] == "credit_card"
    assert purchase["order_id"] == str(order_id)
    assert purchase["amount"] == pytest.approx(float(order["total_inc_tax"]), abs=0.005)
    assert purchase["currency"] == order["currency_code"]
    assert purchase["credit_card"]["card_last4"]
    assert response.json()["meta"]["pagination"]["total"] == 1


async def test_an_order_without_transactions_answers_204(store: SimulatedStore) -> None:
    order_id, _, _ = await paid_order(store)
    assert (await store.api.get(f"/v3/orders/{order_id}/transactions")).status_code == 204
    missing = await store.api.get("/v3/orders/999999/transactions")
    assert missing.status_code == 404
    assert missing.json()["status"] == 404


async def test_the_purchase_transaction_was_announced(store: SimulatedStore) -> None:
    await store.generate(10, seed=12, incomplete_share=0)
    announced = [e for e in store.events if e.scope == "store/order/transaction/created"]
    assert announced
    data = announced[0].data
    assert data["type"] == "transaction"
    assert isinstance(data["order_id"], str)
    assert data["transaction_type"] == "capture"
    assert set(data) == {
        "type",
        "order_id",
        "transaction_id",
        "transaction_status",
        "transaction_type",
        "result",
        "platform_transaction_id",
        "provider_transaction_id",
    }


# --- refund quotes -------------------------------------------------------------------------------


async def test_a_quote_prices_products_shipping_and_order_amounts(store: SimulatedStore) -> None:
    order_id, lines, address_id = await paid_order(store)
    response = await quote(
        store,
        order_id,
        [
            {"item_type": "PRODUCT", "item_id": lines[0]["id"], "quantity": 1},
            {"item_type": "SHIPPING", "item_id": address_id, "amount": 10.8},
            {"item_type": "ORDER", "item_id": order_id, "amount": 1},
        ],
    )
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["total_refund_amount"] == 61.8
    assert data["total_refund_tax_amount"] == 5.8
    assert data["order_level_refund_amount"] == 1
    assert data["adjustment"] == 0
    providers = [[option["provider_id"] for option in method] for method in data["refund_methods"]]
    assert providers == [["custom"]]  # a guest paid manually: no store credit


async def test_a_registered_customer_is_offered_store_credit(store: SimulatedStore) -> None:
    order_id, lines, _ = await paid_order(store, customer_id=5)
    data = (
        await quote(
            store, order_id, [{"item_type": "PRODUCT", "item_id": lines[0]["id"], "quantity": 2}]
        )
    ).json()["data"]
    assert ["storecredit"] in [[o["provider_id"] for o in m] for m in data["refund_methods"]]
    assert data["total_refund_amount"] == 100


async def test_a_card_paid_order_is_offered_its_gateway(store: SimulatedStore) -> None:
    order_id = await online_paid_order(store)
    lines = (await store.api.get(f"/v2/orders/{order_id}/products")).json()
    data = (
        await quote(
            store, order_id, [{"item_type": "PRODUCT", "item_id": lines[0]["id"], "quantity": 1}]
        )
    ).json()["data"]
    first = data["refund_methods"][0][0]
    assert first["provider_id"] in ("braintree", "stripe")
    assert first["offline"] is False


@pytest.mark.parametrize(
    ("item", "why"),
    [
        ({"item_type": "PRODUCT", "item_id": "LINE", "quantity": 3}, "left to refund"),
        ({"item_type": "PRODUCT", "item_id": 999_999, "quantity": 1}, "not on this order"),
        ({"item_type": "PRODUCT", "item_id": "LINE"}, "quantity"),
        ({"item_type": "SHIPPING", "item_id": "ADDRESS", "amount": 11}, "left to refund"),
        ({"item_type": "SHIPPING", "item_id": "ADDRESS", "amount": 1.005}, "two decimals"),
        ({"item_type": "ORDER", "item_id": 1, "amount": 500}, "left to refund"),
        ({"item_type": "COUPON", "item_id": 1, "amount": 1}, "item_type"),
    ],
)
async def test_a_quote_refuses_what_cannot_be_refunded_with_422(
    store: SimulatedStore, item: dict[str, Any], why: str
) -> None:
    order_id, lines, address_id = await paid_order(store)
    item = {
        k: (lines[0]["id"] if v == "LINE" else address_id if v == "ADDRESS" else v)
        for k, v in item.items()
    }
    path = f"/v3/orders/{order_id}/payment_actions/refund_quotes"
    response = await store.api.post(path, json={"items": [item]})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["status"] == 422
    assert why in body["title"]
    assert set(body) == {"status", "title", "type", "errors"}


async def test_an_unpaid_order_cannot_be_quoted(store: SimulatedStore) -> None:
    order_id, lines, _ = await paid_order(store)
    await store.api.put(f"/v2/orders/{order_id}", json={"status_id": 7})
    response = await quote(
        store, order_id, [{"item_type": "PRODUCT", "item_id": lines[0]["id"], "quantity": 1}]
    )
    assert response.status_code == 422
    assert "paid" in response.json()["title"]
    missing = await store.api.post(
        "/v3/orders/999999/payment_actions/refund_quotes",
        json={"items": [{"item_type": "ORDER", "item_id": 1, "amount": 1}]},
    )
    assert missing.status_code == 404


# --- refunds ---------------------------------------------------------------------------------


async def test_a_partial_refund_moves_the_order_to_14_and_announces_it(
    store: SimulatedStore,
) -> None:
    order_id, lines, _ = await paid_order(store)
    items = [{"item_type": "PRODUCT", "item_id": lines[0]["id"], "quantity": 1, "reason": "Broken"}]
    amount = (await quote(store, order_id, items)).json()["data"]["total_refund_amount"]
    before = (await store.api.get(f"/v2/orders/{order_id}")).json()
    store.clock.advance(timedelta(seconds=5))
    response = await refund(store, order_id, items, [pay("custom", amount, True)])
    assert response.status_code == 201, response.text
    created = response.json()["data"]
    assert created["order_id"] == order_id
    assert created["total_amount"] == 50
    assert created["total_tax"] == 5
    assert created["reason"] == "Broken"
    assert created["payments"][0]["provider_id"] == "custom"
    assert created["items"][0]["quantity"] == 1
    after = (await store.api.get(f"/v2/orders/{order_id}")).json()
    assert after["status_id"] == 14
    assert after["payment_status"] == "partially refunded"
    assert after["date_modified"] != before["date_modified"]
    assert store.scopes() == [
        "store/order/refund/created",
        "store/order/transaction/created",
        "store/order/updated",
        "store/order/statusUpdated",
    ]
    assert store.events[0].data == {
        "type": "order",
        "id": order_id,
        "refund": {"refund_id": created["id"]},
    }
    assert store.events[3].data["status"] == {"previous_status_id": 11, "new_status_id": 14}
    line = (await store.api.get(f"/v2/orders/{order_id}/products/{lines[0]['id']}")).json()
    assert line["quantity_refunded"] == 1
    assert line["is_refunded"] is False
    transactions = (await store.api.get(f"/v3/orders/{order_id}/transactions")).json()["data"]
    assert [(t["event"], t["amount"]) for t in transactions] == [("refund", 50)]


async def test_refunding_everything_moves_the_order_to_4(store: SimulatedStore) -> None:
    order_id, lines, address_id = await paid_order(store)
    first = [{"item_type": "PRODUCT", "item_id": lines[0]["id"], "quantity": 1}]
    assert (await refund(store, order_id, first, [pay("custom", 50, True)])).status_code == 201
    rest = [
        {"item_type": "PRODUCT", "item_id": lines[0]["id"], "quantity": 1},
        {"item_type": "SHIPPING", "item_id": address_id, "amount": 10.8},
    ]
    amount = (await quote(store, order_id, rest)).json()["data"]["total_refund_amount"]
    assert amount == 60.8
    assert (await refund(store, order_id, rest, [pay("custom", amount, True)])).status_code == 201
    order = (await store.api.get(f"/v2/orders/{order_id}")).json()
    assert order["status_id"] == 4
    assert order["payment_status"] == "refunded"
    again = await refund(
        store,
        order_id,
        [{"item_type": "ORDER", "item_id": order_id, "amount": 1}],
        [pay("custom", 1)],
    )
    assert again.status_code == 422
    assert again.json()["data"][0]["status"] == 422


async def test_payments_must_match_the_quote(store: SimulatedStore) -> None:
    order_id, lines, _ = await paid_order(store)
    items = [{"item_type": "PRODUCT", "item_id": lines[0]["id"], "quantity": 1}]
    response = await refund(store, order_id, items, [pay("custom", 49.99, True)])
    assert response.status_code == 422
    body = response.json()
    assert list(body) == ["data"]  # Create a Refund wraps its errors in data[]
    assert "must add up" in body["data"][0]["title"]
    split = await refund(store, order_id, items, [pay("custom", 25, True), pay("custom", 25, True)])
    assert split.status_code == 201
    assert store.scopes()[0] == "store/order/refund/created"


async def test_the_provider_must_be_a_refund_method_of_the_quote(store: SimulatedStore) -> None:
    order_id, lines, _ = await paid_order(store, customer_id=9)
    items = [{"item_type": "PRODUCT", "item_id": lines[0]["id"], "quantity": 1}]
    wrong = await refund(store, order_id, items, [pay("braintree", 50)])
    assert wrong.status_code == 422
    assert "refund method" in wrong.json()["data"][0]["title"]
    credit = await refund(store, order_id, items, [pay("storecredit", 50)])
    assert credit.status_code == 201


async def test_store_credit_is_refused_for_a_guest(store: SimulatedStore) -> None:
    order_id, lines, _ = await paid_order(store)
    items = [{"item_type": "PRODUCT", "item_id": lines[0]["id"], "quantity": 1}]
    response = await refund(store, order_id, items, [pay("storecredit", 50)])
    assert response.status_code == 422
    assert (
        response.json()["data"][0]["title"]
        == "Unable to provide store credit for a guest customer."
    )


async def test_a_merchant_override_sets_the_amount(store: SimulatedStore) -> None:
    order_id, lines, _ = await paid_order(store)
    items = [{"item_type": "PRODUCT", "item_id": lines[0]["id"], "quantity": 1}]
    response = await refund(
        store,
        order_id,
        items,
        [pay("custom", 45, True)],
        merchant_calculated_override={"total_amount": 45, "total_tax": 0},
    )
    assert response.status_code == 201, response.text
    created = response.json()["data"]
    assert created["uses_merchant_override_values"] is True
    assert created["total_amount"] == 45
    assert created["total_tax"] == 0


async def test_one_refund_at_a_time_per_order(store: SimulatedStore) -> None:
    order_id, lines, _ = await paid_order(store)
    await store.admin.put("/__sim/settings", json={"refund_processing_ms": 200})
    items = [{"item_type": "PRODUCT", "item_id": lines[0]["id"], "quantity": 1}]
    first, second = await asyncio.gather(
        refund(store, order_id, items, [pay("custom", 50, True)]),
        refund(store, order_id, items, [pay("custom", 50, True)]),
    )
    assert sorted([first.status_code, second.status_code]) == [201, 422]
    refused = first if first.status_code == 422 else second
    assert "one after another" in refused.json()["data"][0]["title"]
    after = await refund(store, order_id, items, [pay("custom", 50, True)])
    assert after.status_code == 201  # sequential refunds are fine


async def test_reading_refunds_per_order_store_wide_and_by_id(store: SimulatedStore) -> None:
    one, lines_one, _ = await paid_order(store)
    two, lines_two, _ = await paid_order(store)
    item = {"item_type": "PRODUCT", "quantity": 1}
    await refund(store, one, [{**item, "item_id": lines_one[0]["id"]}], [pay("custom", 50, True)])
    store.clock.advance(timedelta(hours=2))
    middle = store.clock.now()
    await refund(store, two, [{**item, "item_id": lines_two[0]["id"]}], [pay("custom", 50, True)])
    await refund(store, two, [{**item, "item_id": lines_two[0]["id"]}], [pay("custom", 50, True)])
    per_order = (await store.api.get(f"/v3/orders/{two}/payment_actions/refunds")).json()["data"]
    assert [r["order_id"] for r in per_order] == [two, two]
    everything = (await store.api.get("/v3/orders/payment_actions/refunds")).json()
    assert [r["id"] for r in everything["data"]] == [1, 2, 3]
    since = await store.api.get(
        "/v3/orders/payment_actions/refunds",
        params={"created:min": (middle - timedelta(minutes=1)).isoformat()},
    )
    assert [r["order_id"] for r in since.json()["data"]] == [two, two]
    # an unencoded "+" in the offset arrives as a space; it is still understood
    raw = (middle - timedelta(minutes=1)).isoformat()
    unencoded = await store.api.get(f"/v3/orders/payment_actions/refunds?created:max={raw}")
    assert [r["order_id"] for r in unencoded.json()["data"]] == [one]
    by_order = await store.api.get(
        "/v3/orders/payment_actions/refunds", params={"order_id:in": f"{one}", "limit": 1}
    )
    assert [r["order_id"] for r in by_order.json()["data"]] == [one]
    paged = await store.api.get(
        "/v3/orders/payment_actions/refunds", params={"limit": 2, "page": 2}
    )
    assert [r["id"] for r in paged.json()["data"]] == [3]
    assert paged.json()["meta"]["pagination"]["total_pages"] == 2
    by_ids = await store.api.get("/v3/orders/payment_actions/refunds", params={"id:in": "1,3"})
    assert [r["id"] for r in by_ids.json()["data"]] == [1, 3]
    transaction_id = everything["data"][0]["payments"][0]["transaction_id"]
    by_transaction = await store.api.get(
        "/v3/orders/payment_actions/refunds", params={"transaction_id": transaction_id}
    )
    assert [r["id"] for r in by_transaction.json()["data"]] == [1]
    single = (await store.api.get("/v3/orders/payment_actions/refunds/2")).json()["data"]
    assert single["order_id"] == two
    assert single["items"][0]["requested_amount"] is None  # quantity-bound (RefundID_Get)
    assert (await store.api.get("/v3/orders/payment_actions/refunds/99")).status_code == 404
    bad = await store.api.get("/v3/orders/payment_actions/refunds", params={"created:min": "soon"})
    assert bad.status_code == 400


async def test_a_card_paid_order_refunds_to_its_gateway(store: SimulatedStore) -> None:
    order_id = await online_paid_order(store)
    lines = (await store.api.get(f"/v2/orders/{order_id}/products")).json()
    items = [{"item_type": "PRODUCT", "item_id": lines[0]["id"], "quantity": 1}]
    data = (await quote(store, order_id, items)).json()["data"]
    provider = data["refund_methods"][0][0]["provider_id"]
    response = await refund(store, order_id, items, [pay(provider, data["total_refund_amount"])])
    assert response.status_code == 201
    transactions = (await store.api.get(f"/v3/orders/{order_id}/transactions")).json()["data"]
    assert [t["event"] for t in transactions] == ["purchase", "refund"]
    assert transactions[1]["gateway"] == provider
    assert transactions[1]["reference_transaction_id"] == transactions[0]["id"]


# --- metafields ------------------------------------------------------------------------------

METAFIELD = {
    "permission_set": "app_only",
    "namespace": "iom",
    "key": "salesorderid",
    "value": "abc",
}


async def test_metafields_round_trip_with_events(store: SimulatedStore) -> None:
    order_id, _, _ = await paid_order(store)
    path = f"/v3/orders/{order_id}/metafields"
    check_request("POST", f"/stores/{STORE_HASH}{path}", METAFIELD)
    created = await store.api.post(path, json=METAFIELD)
    assert created.status_code == 200
    metafield = created.json()["data"]
    assert metafield["resource_id"] == order_id
    assert metafield["resource_type"] == "order"
    assert store.events[-1].scope == "store/order/metafield/created"
    assert store.events[-1].data == {"metafield_id": metafield["id"], "resource_id": str(order_id)}
    duplicate = await store.api.post(path, json=METAFIELD)
    assert duplicate.status_code == 409
    await store.api.post(path, json={**METAFIELD, "key": "other"})
    listed = (await store.api.get(path, params={"key": "salesorderid"})).json()
    assert [m["id"] for m in listed["data"]] == [metafield["id"]]
    assert listed["meta"]["pagination"]["total"] == 1
    store.clock.advance(timedelta(seconds=3))
    updated = await store.api.put(f"{path}/{metafield['id']}", json={**METAFIELD, "value": "def"})
    assert updated.json()["data"]["value"] == "def"
    assert updated.json()["data"]["date_modified"] != metafield["date_modified"]
    assert store.events[-1].scope == "store/order/metafield/updated"
    fetched = await store.api.get(f"{path}/{metafield['id']}")
    assert fetched.json()["data"]["value"] == "def"
    assert (await store.api.delete(f"{path}/{metafield['id']}")).status_code == 204
    assert store.events[-1].scope == "store/order/metafield/deleted"
    assert (await store.api.get(f"{path}/{metafield['id']}")).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"namespace": "iom", "key": "k", "value": "v"},
        {**METAFIELD, "key": ""},
        {**METAFIELD, "namespace": "n" * 65},
        {**METAFIELD, "permission_set": "everyone"},
    ],
)
async def test_invalid_metafields_get_422(store: SimulatedStore, body: dict[str, Any]) -> None:
    order_id, _, _ = await paid_order(store)
    response = await store.api.post(f"/v3/orders/{order_id}/metafields", json=body)
    assert response.status_code == 422
    assert response.json()["status"] == 422
    assert store.events == []
