"""The order lifecycle end to end, through the real stack on this machine.

One local host per module (`python -m local.host` on the embedded default: function host, local
broker, BigCommerce store simulator, Dataverse stand-in posting its changes to
`dataverse-events` like a registered service endpoint), with the flow of
tests/support/lifecycle.py (stock that splits the dropshipper's SKU into a second fulfillment
order). Every test places its own orders, drives them with the real clients over HTTP, waits for
the stack to settle and asserts the final state on both sides: BigCommerce through the
connector's client, Dataverse through the Web API (a second identity).

The store delivers some webhooks twice and shuffles them (the simulator's network switches) for
the whole module: every branch must come out the same.

1. A new order: salesorder, lines and customer; validated; one fulfillment order; Awaiting
   Fulfillment. With every webhook delivered twice and shuffled: one of each, journal present.
   A guest whose e-mail (the contact's key) must be percent-encoded in the URL is written.
2. An incomplete order (status 0) is not written until the shopper completes it.
3. A line without a Dataverse product: on hold with the reason, Manual Verification Required,
   parked; after the product is created and `cli orders replay --all`, released.
4. Shipments: one fulfillment order shipped in Dataverse is one BigCommerce shipment and the
   order is Completed; a partial shipment ships what the warehouse says and the order is
   Partially Shipped; a split order gets one shipment per fulfillment order, then Completed.
5. Cancellations: in BigCommerce before fulfillment (everything cancelled), in BigCommerce after
   a partial shipment (only the remainder), in Dataverse (BigCommerce follows).
6. A refund in BigCommerce is recorded once, however often its webhook comes.
7. Echoes: once settled, our own status and shipment webhooks arriving again write nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest

from local.demo import merchant
from shared.bigcommerce.requests import RefundCreate, RefundLine, RefundQuoteRequest
from tests.support.lifecycle import (
    AWAITING_FULFILLMENT,
    CANCELLED,
    COMPLETED,
    DROPSHIP,
    DROPSHIP_SKU,
    INCOMPLETE,
    MANUAL_VERIFICATION,
    MISSING_SKU,
    PARTIALLY_SHIPPED,
    PENDING,
    SALESORDER_CANCELLED,
    SALESORDER_FULFILLED,
    WAREHOUSE,
    LifecycleStack,
    Sides,
    entries,
    eventually,
    open_sides,
    prepared,
    start_stack,
)

pytestmark = pytest.mark.e2e

# The store's bad network for the whole module: a third of the deliveries twice, fresh ones
# shuffled in windows of four.
NETWORK = {"duplicate_probability": 0.35, "reorder_window": 4, "seed": 6}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LifecycleStack]:
    running = start_stack(tmp_path_factory.mktemp("lifecycle"))

    with prepared(running, NETWORK) as prepared_stack:
        yield prepared_stack


@pytest.fixture
async def sides(stack: LifecycleStack) -> AsyncIterator[Sides]:
    opened = await open_sides(stack)
    try:
        yield opened
    finally:
        await opened.clear_faults()
        await opened.put_switches(**NETWORK)
        await opened.aclose()


# -- helpers --------------------------------------------------------------------------------------


async def released(sides: Sides, order_id: int) -> dict[str, Any]:
    """Waits until the order is released with its fulfillment orders; returns the salesorder."""

    async def check() -> dict[str, Any] | None:
        order = await sides.salesorder(order_id)
        if order is None or order["bciom_lifecycle"] != "released":
            return None
        return order if await sides.fulfillments(order_id) else None

    await eventually(check, what=f"order {order_id} released")
    await sides.settle()
    order = await sides.salesorder(order_id)
    assert order is not None
    assert order["bciom_lifecycle"] == "released", timeline(await sides.journal(order_id))
    return order


def timeline(journal: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{e['bciom_name']}: {e['bciom_outcome']} ({e['bciom_details']})" for e in journal
    )


def lines_by_product(order: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {int(x["bciom_bcorderproductid"]): x for x in order["order_details"]}


def line_of(order: dict[str, Any], sku: str) -> int:
    """The BigCommerce order product id of the order's line with this SKU."""
    return next(
        int(x["bciom_bcorderproductid"]) for x in order["order_details"] if x["bciom_sku"] == sku
    )


def number(value: object) -> Decimal:
    return Decimal(str(value or 0))


async def cancelled(sides: Sides, order_id: int) -> dict[str, Any]:
    """Waits until the salesorder is closed as cancelled and the stack settled; returns it."""

    async def check() -> dict[str, Any] | None:
        order = await sides.salesorder(order_id)
        return order if order and order["statecode"] == SALESORDER_CANCELLED else None

    await eventually(check, what=f"order {order_id} cancelled in Dataverse")
    await sides.settle()
    order = await sides.salesorder(order_id)
    assert order is not None
    return order


async def shipments_of(sides: Sides, order_id: int) -> list[Any]:
    return sorted(await sides.stack.store.list_shipments(order_id), key=lambda s: s.id)


def items(shipment: Any) -> dict[int, int]:
    return {i.order_product_id: i.quantity for i in shipment.items}


# -- 1. a new order -------------------------------------------------------------------------------


async def test_a_new_order_is_written_validated_and_sourced_once_whatever_the_network(
    sides: Sides,
) -> None:
    # Every delivery twice, shuffled: created (Pending), then updated and statusUpdated (to
    # Awaiting Fulfillment) may arrive in any order.
    before = len(await sides.deliveries(status="delivered"))
    await sides.put_switches(duplicate_probability=1.0, reorder_window=3, seed=11)
    order_id = await sides.create_order([("S-ORAN", 2), ("OCG", 1)], status_id=PENDING)
    await sides.set_status(order_id, AWAITING_FULFILLMENT)

    order = await released(sides, order_id)

    delivered = (await sides.deliveries(status="delivered"))[before:]
    assert any(d["duplicate"] for d in delivered), "the simulator delivered duplicates"
    assert await sides.status(order_id) == AWAITING_FULFILLMENT
    bundle = await sides.stack.store.get_order_bundle(order_id)
    assert order["bciom_holdreason"] is None
    assert order["bciom_bcstatusid"] == AWAITING_FULFILLMENT
    assert order["statecode"] == 0
    lines = lines_by_product(order)
    assert {opid: (x["bciom_sku"], number(x["quantity"])) for opid, x in lines.items()} == {
        p.id: (p.sku, Decimal(p.quantity)) for p in bundle.products
    }
    assert all(x["_productid_value"] for x in lines.values()), "lines bound to their products"
    contact = await sides.stack.dataverse.retrieve(
        "contacts", _id(order["_customerid_value"]), select=["emailaddress1", "lastname"]
    )
    assert contact.row is not None
    assert contact.row["emailaddress1"] == "jane.doe@example.com"

    [fulfillment] = await sides.fulfillments(order_id)
    assert fulfillment["bciom_fulfillmentkey"] == f"{order_id}-1"
    assert fulfillment["bciom_source"] == WAREHOUSE
    assert not fulfillment["bciom_shipped"]
    assert not fulfillment["bciom_cancelled"]
    assert {
        int(x["bciom_bcorderproductid"]): number(x["bciom_quantity"])
        for x in fulfillment["msdyn_fulfillmentorder_details"]
    } == {p.id: Decimal(p.quantity) for p in bundle.products}
    assert len(await sides.salesorders(order_id)) == 1
    details = [
        row
        async for row in sides.stack.dataverse.rows(
            "salesorderdetails",
            select=["salesorderdetailid"],
            filter=f"bciom_storehash eq 'localstore1' and bciom_bcorderid eq {order_id}",
        )
    ]
    assert len(details) == 2

    journal = await sides.journal(order_id)
    assert entries(journal, "event"), "the journal records each message"
    sourced = [
        e
        for e in entries(journal, "step")
        if e["bciom_step"] == "choose_source" and (e["bciom_details"] or "").startswith("released")
    ]
    assert len(sourced) == 1, timeline(journal)
    assert not entries(journal, "park")
    assert not entries(journal, "retry")
    assert sides.parked(order_id) == []


async def test_a_guest_whose_email_is_encoded_in_the_url_is_written(sides: Sides) -> None:
    # The contact's key is the guest's e-mail; `ë` and `#` travel percent-encoded.
    order_id = await sides.create_order([("DPB", 1)], email="zoë.o#brien@example.com")

    async def outcome() -> str | None:
        if sides.parked(order_id):
            return "parked"
        order = await sides.salesorder(order_id)
        return "released" if order and order["bciom_lifecycle"] == "released" else None

    await eventually(outcome, what="the order released or parked")
    await sides.settle()
    assert sides.parked(order_id) == [], sides.parked(order_id)[0].application_properties
    order = await sides.salesorder(order_id)
    assert order is not None
    contact = await sides.stack.dataverse.retrieve(
        "contacts", _id(order["_customerid_value"]), select=["emailaddress1"]
    )
    assert contact.row is not None
    assert contact.row["emailaddress1"] == "zoë.o#brien@example.com"


# -- 2. an incomplete order -----------------------------------------------------------------------


async def test_an_incomplete_order_is_written_only_once_it_is_placed(sides: Sides) -> None:
    order_id = await sides.create_order([("CC3C", 1)], status_id=INCOMPLETE)

    async def skipped() -> bool:
        return any(
            e["bciom_step"] == "sync_order" and "incomplete" in (e["bciom_details"] or "")
            for e in entries(await sides.journal(order_id), "step")
        )

    await eventually(skipped, what="the incomplete order was looked at")
    await sides.settle()
    assert await sides.salesorder(order_id) is None
    assert await sides.fulfillments(order_id) == []
    assert await sides.status(order_id) == INCOMPLETE

    await sides.set_status(order_id, AWAITING_FULFILLMENT)  # the shopper finished paying

    order = await released(sides, order_id)
    assert [x["bciom_sku"] for x in order["order_details"]] == ["CC3C"]
    assert len(await sides.fulfillments(order_id)) == 1
    assert await sides.status(order_id) == AWAITING_FULFILLMENT


# -- 3. a validation failure and the operator's replay --------------------------------------------


async def test_a_line_without_a_product_holds_the_order_until_the_replay(sides: Sides) -> None:
    order_id = await sides.create_order([("S-ORAN", 1), (MISSING_SKU, 2)])

    async def held() -> dict[str, Any] | None:
        order = await sides.salesorder(order_id)
        return order if order and order["bciom_lifecycle"] == "on_hold" else None

    await eventually(held, what="the order held")
    await sides.settle()
    order = await sides.salesorder(order_id)
    assert order is not None
    assert order["bciom_lifecycle"] == "on_hold"
    assert MISSING_SKU in order["bciom_holdreason"]
    assert "no Dataverse product" in order["bciom_holdreason"]
    assert await sides.status(order_id) == MANUAL_VERIFICATION
    assert await sides.fulfillments(order_id) == []
    [parked] = sides.parked(order_id)
    assert parked.application_properties["park_reason"] == "hold"
    assert MISSING_SKU in str(parked.application_properties["park_description"])

    await sides.create_product(MISSING_SKU)
    replay = await sides.replay_all()
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert f"localstore1:{order_id}" in replay.stdout

    order = await released(sides, order_id)
    assert order["bciom_holdreason"] is None
    assert all(x["_productid_value"] for x in order["order_details"]), "now bound to products"
    assert await sides.status(order_id) == AWAITING_FULFILLMENT
    [fulfillment] = await sides.fulfillments(order_id)
    assert {
        int(x["bciom_bcorderproductid"]) for x in fulfillment["msdyn_fulfillmentorder_details"]
    } == {int(x["bciom_bcorderproductid"]) for x in order["order_details"]}
    assert sides.parked(order_id) == []


# -- 4. shipments ---------------------------------------------------------------------------------


async def test_a_shipped_fulfillment_order_is_one_shipment_and_completes_the_order(
    sides: Sides,
) -> None:
    order_id = await sides.create_order([("S-ORAN", 2), ("DPB", 1)])
    await released(sides, order_id)
    [fulfillment] = await sides.fulfillments(order_id)

    await sides.ship(fulfillment, tracking="1ZE2E0000000001", carrier="UPS")

    await eventually(lambda: _status_is(sides, order_id, COMPLETED), what="Completed")
    await sides.settle()
    [shipment] = await shipments_of(sides, order_id)
    bundle = await sides.stack.store.get_order_bundle(order_id)
    assert items(shipment) == {p.id: p.quantity for p in bundle.products}
    assert shipment.tracking_number == "1ZE2E0000000001"
    assert all(p.quantity_shipped == p.quantity for p in bundle.products)
    order = await sides.salesorder(order_id)
    assert order is not None
    assert (order["bciom_lifecycle"], order["statecode"]) == ("completed", SALESORDER_FULFILLED)
    assert all(
        number(x["quantityshipped"]) == number(x["quantity"]) for x in order["order_details"]
    )
    [fulfillment] = await sides.fulfillments(order_id)
    assert fulfillment["bciom_bcshipmentid"] == shipment.id
    assert await sides.status(order_id) == COMPLETED


async def test_a_partial_shipment_ships_what_the_warehouse_says(sides: Sides) -> None:
    order_id = await sides.create_order([("S-ORAN", 3), ("OCG", 1)])
    order = await released(sides, order_id)
    towel, grater = line_of(order, "S-ORAN"), line_of(order, "OCG")
    [fulfillment] = await sides.fulfillments(order_id)

    await sides.ship(fulfillment, tracking="1ZE2E0000000002", shipped={towel: Decimal(1)})

    await eventually(lambda: _status_is(sides, order_id, PARTIALLY_SHIPPED), what="partial")
    await sides.settle()
    [shipment] = await shipments_of(sides, order_id)
    assert items(shipment) == {towel: 1}
    assert shipment.tracking_number == "1ZE2E0000000002"
    order_after = await sides.salesorder(order_id)
    assert order_after is not None
    assert order_after["bciom_lifecycle"] == "partially_shipped"
    assert order_after["statecode"] == 0
    lines = lines_by_product(order_after)
    assert number(lines[towel]["quantityshipped"]) == 1
    assert number(lines[grater]["quantityshipped"]) == 0
    assert await sides.status(order_id) == PARTIALLY_SHIPPED


async def test_a_split_order_gets_one_shipment_per_fulfillment_order(sides: Sides) -> None:
    order_id = await sides.create_order([("S-ORAN", 1), (DROPSHIP_SKU, 2)])
    await released(sides, order_id)
    first, second = await sides.fulfillments(order_id)
    assert (first["bciom_source"], second["bciom_source"]) == (WAREHOUSE, DROPSHIP)
    bundle = await sides.stack.store.get_order_bundle(order_id)
    by_sku = {p.sku: p for p in bundle.products}

    await sides.ship(first, tracking="1ZE2E0000000003")
    await eventually(lambda: _status_is(sides, order_id, PARTIALLY_SHIPPED), what="partial")
    await sides.settle()
    [one] = await shipments_of(sides, order_id)
    assert items(one) == {by_sku["S-ORAN"].id: 1}
    order = await sides.salesorder(order_id)
    assert order is not None
    assert order["bciom_lifecycle"] == "partially_shipped"

    await sides.ship(second, tracking="1ZE2E0000000004", carrier="FedEx")
    await eventually(lambda: _status_is(sides, order_id, COMPLETED), what="Completed")
    await sides.settle()
    shipments = await shipments_of(sides, order_id)
    assert [(items(s), s.tracking_number) for s in shipments] == [
        ({by_sku["S-ORAN"].id: 1}, "1ZE2E0000000003"),
        ({by_sku[DROPSHIP_SKU].id: 2}, "1ZE2E0000000004"),
    ]
    order = await sides.salesorder(order_id)
    assert order is not None
    assert (order["bciom_lifecycle"], order["statecode"]) == ("completed", SALESORDER_FULFILLED)
    fulfillments = await sides.fulfillments(order_id)
    assert [f["bciom_bcshipmentid"] for f in fulfillments] == [s.id for s in shipments]


# -- 5. cancellations -----------------------------------------------------------------------------


async def test_a_cancellation_in_bigcommerce_before_fulfillment_cancels_everything(
    sides: Sides,
) -> None:
    order_id = await sides.create_order([("TWB", 1), ("SM13", 2)])
    await released(sides, order_id)

    await sides.set_status(order_id, CANCELLED)

    after = await cancelled(sides, order_id)
    assert after["bciom_lifecycle"] == "cancelled"
    assert after["statecode"] == SALESORDER_CANCELLED
    assert all(
        number(x["quantitycancelled"]) == number(x["quantity"]) for x in after["order_details"]
    )
    assert [f["bciom_cancelled"] for f in await sides.fulfillments(order_id)] == [True]
    assert await sides.status(order_id) == CANCELLED
    assert await shipments_of(sides, order_id) == []


async def test_a_cancellation_after_a_partial_shipment_cancels_only_the_remainder(
    sides: Sides,
) -> None:
    order_id = await sides.create_order([("S-ORAN", 3), ("OCG", 1)])
    order = await released(sides, order_id)
    towel, grater = line_of(order, "S-ORAN"), line_of(order, "OCG")
    [fulfillment] = await sides.fulfillments(order_id)
    await sides.ship(fulfillment, tracking="1ZE2E0000000005", shipped={towel: Decimal(1)})
    await eventually(lambda: _status_is(sides, order_id, PARTIALLY_SHIPPED), what="partial")
    await sides.settle()

    await sides.set_status(order_id, CANCELLED)

    after = await cancelled(sides, order_id)
    assert after["bciom_lifecycle"] == "cancelled"
    lines = lines_by_product(after)
    assert (number(lines[towel]["quantityshipped"]), number(lines[towel]["quantitycancelled"])) == (
        1,
        2,
    )
    assert (
        number(lines[grater]["quantityshipped"]),
        number(lines[grater]["quantitycancelled"]),
    ) == (0, 1)
    # The partial shipment left a fulfillment order for the rest; the cancellation cancels it.
    shipped, rest = sorted(
        await sides.fulfillments(order_id), key=lambda f: f["bciom_fulfillmentkey"]
    )
    assert shipped["bciom_shipped"] is True
    assert not shipped["bciom_cancelled"], "what shipped stays shipped"
    assert rest["bciom_cancelled"] is True
    [shipment] = await shipments_of(sides, order_id)
    assert items(shipment) == {towel: 1}
    assert await sides.status(order_id) == CANCELLED


async def test_a_cancellation_in_dataverse_cancels_the_order_in_bigcommerce(sides: Sides) -> None:
    order_id = await sides.create_order([("BTL-INS", 2)])
    await released(sides, order_id)

    await merchant.cancel_in_dataverse(sides.stack, order_id)

    await eventually(lambda: _status_is(sides, order_id, CANCELLED), what="BigCommerce Cancelled")
    await sides.settle()
    order = await sides.salesorder(order_id)
    assert order is not None
    assert order["statecode"] == SALESORDER_CANCELLED
    assert [f["bciom_cancelled"] for f in await sides.fulfillments(order_id)] == [True]
    assert await sides.status(order_id) == CANCELLED
    assert await shipments_of(sides, order_id) == []
    assert sides.parked(order_id) == []


# -- 6. refunds -----------------------------------------------------------------------------------


async def test_a_refund_is_recorded_once_however_often_its_webhook_comes(sides: Sides) -> None:
    order_id = await sides.create_order([("S-ORAN", 2), ("OCG", 1)])
    await released(sides, order_id)
    bundle = await sides.stack.store.get_order_bundle(order_id)
    towel = next(p for p in bundle.products if p.sku == "S-ORAN")
    await sides.put_switches(duplicate_probability=1.0)  # the refund's webhooks come twice
    refund_items = [RefundLine(item_type="PRODUCT", item_id=towel.id, quantity=1, reason="Damaged")]
    store = sides.stack.store
    quote = await store.create_refund_quote(order_id, RefundQuoteRequest(items=refund_items))
    refund = await store.create_refund(order_id, RefundCreate.from_quote(refund_items, quote))

    async def recorded() -> list[dict[str, Any]]:
        return await sides.refunds(order_id)

    await eventually(recorded, what="the refund recorded")
    await sides.settle()
    [row] = await sides.refunds(order_id)
    assert row["bciom_refundid"] == refund.id
    assert number(row["bciom_totalamount"]) == refund.total_amount
    [line] = await sides.refund_lines(row["bciom_orderrefundid"])
    assert (line["bciom_itemtype"], number(line["bciom_quantity"])) == ("PRODUCT", 1)
    versions = await sides.business_versions(order_id)

    # The same refund announced again, as new events (new hashes, so the broker keeps them).
    data = {"type": "order", "id": order_id, "refund": {"refund_id": refund.id}}
    for _ in range(2):
        assert await sides.send_webhook("store/order/refund/created", data) == 200
    await sides.settle()

    assert [r["bciom_refundid"] for r in await sides.refunds(order_id)] == [refund.id]
    assert len(await sides.refund_lines(row["bciom_orderrefundid"])) == 1
    assert await sides.business_versions(order_id) == versions, "nothing rewritten"
    skipped = [
        e
        for e in entries(await sides.journal(order_id), "step")
        if e["bciom_step"] == "record_refunds" and e["bciom_outcome"] == "skipped"
    ]
    assert skipped, "the redelivered webhooks were processed, and found nothing new"


# -- 7. echoes ------------------------------------------------------------------------------------


async def test_our_own_webhooks_coming_back_write_nothing_to_dataverse(sides: Sides) -> None:
    order_id = await sides.create_order([("S-ORAN", 2), ("OCG", 1)])
    order = await released(sides, order_id)
    towel = line_of(order, "S-ORAN")
    [fulfillment] = await sides.fulfillments(order_id)
    await sides.ship(fulfillment, tracking="1ZE2E0000000006", shipped={towel: Decimal(1)})
    await eventually(lambda: _status_is(sides, order_id, PARTIALLY_SHIPPED), what="partial")
    await sides.settle()
    [shipment] = await shipments_of(sides, order_id)
    versions = await sides.business_versions(order_id)
    events_before = len(entries(await sides.journal(order_id), "event"))
    requests_before = await _connector_requests(sides)

    # What our own writes made BigCommerce announce, announced again (new events each time).
    echoes = [
        ("store/order/updated", {"type": "order", "id": order_id}),
        (
            "store/order/statusUpdated",
            {
                "type": "order",
                "id": order_id,
                "status": {"previous_status_id": AWAITING_FULFILLMENT, "new_status_id": 3},
            },
        ),
        ("store/shipment/created", {"type": "shipment", "id": shipment.id, "orderId": order_id}),
    ]
    for scope, data in echoes * 2:
        assert await sides.send_webhook(scope, data) == 200
    await sides.settle()

    assert len(entries(await sides.journal(order_id), "event")) == events_before + 6
    assert await sides.business_versions(order_id) == versions, "no business row was written"
    # What the stand-in's log can tell (it logs a `$batch` as one request): each echo cost at
    # most the load and the change set with its journal entries.
    assert await _connector_requests(sides) - requests_before <= 2 * len(echoes) * 2
    assert await shipments_of(sides, order_id) == [shipment]
    assert await sides.status(order_id) == PARTIALLY_SHIPPED


# -- shared ---------------------------------------------------------------------------------------


async def _status_is(sides: Sides, order_id: int, status_id: int) -> bool:
    return await sides.status(order_id) == status_id


async def _connector_requests(sides: Sides) -> int:
    """The connector's (identity-1) requests in the stand-in's log."""
    return sum(1 for r in await sides.standin_requests() if r["identity"] == "identity-1")


def _id(value: object) -> uuid.UUID:
    return uuid.UUID(str(value))
