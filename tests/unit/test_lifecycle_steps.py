"""The lifecycle steps one by one, each given an `OrderContext` over the in-memory fakes
(tests/unit/lifecycle_fakes.py): what each writes on both sides and what it reports."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from shared.bigcommerce import errors as bc
from shared.bigcommerce.requests import ShipmentCreate, ShipmentLine
from shared.dataverse import errors as dv
from shared.orchestration.context import OrderContext
from shared.orchestration.failures import classify
from shared.orchestration.flow import (
    FlowConfig,
    FulfillmentPolicy,
    Source,
    StatusPolicy,
    Trigger,
    ValidationPolicy,
)
from shared.orchestration.messages import OrderMessage
from shared.orchestration.records import (
    FulfillmentLineRecord,
    FulfillmentRecord,
    Lifecycle,
    LineRecord,
    SalesOrderRecord,
)
from shared.orchestration.steps import Step, StepResult
from shared.orchestration.steps.cancel import cancel
from shared.orchestration.steps.choose_source import choose_source
from shared.orchestration.steps.complete import complete
from shared.orchestration.steps.readiness import put_on_hold, waiting_reason
from shared.orchestration.steps.record_refunds import record_refunds
from shared.orchestration.steps.ship import ship
from shared.orchestration.steps.sync_order import sync_order
from shared.orchestration.steps.validate import validate
from tests.unit.lifecycle_fakes import (
    ADDRESS_ID,
    DEFAULT_FLOW,
    DEFAULT_MAPPING,
    LINE_A,
    LINE_B,
    ORDER_ID,
    SKU_A,
    SKU_B,
    STORE,
    World,
    make_address,
    make_product,
    make_world,
    order_webhook,
    standard_order,
)


def context(world: World, trigger: Trigger = Trigger.BIGCOMMERCE_ORDER) -> OrderContext:
    message = OrderMessage(
        trigger=trigger,
        store_hash=STORE,
        order_id=ORDER_ID,
        message_id="m-1",
        correlation_id="corr-1",
    )
    return OrderContext(
        message=message,
        storefront=world.storefront,
        store=world.store,
        flow=world.flow,
        mapping=DEFAULT_MAPPING,
        clock=world.clock,
        writes=world.store.writes(),
    )


async def run(world: World, step: Step, trigger: Trigger = Trigger.BIGCOMMERCE_ORDER) -> StepResult:
    """Runs one step in a fresh context and commits what it left staged (as the runner does)."""
    ctx = context(world, trigger)
    await ctx.reload()
    result = await step(ctx)
    await ctx.writes.commit()
    return result


def with_flow(**changes: object) -> FlowConfig:
    return DEFAULT_FLOW.model_copy(update=changes)


def record(world: World, **changes: object) -> SalesOrderRecord:
    """A salesorder for the standard order, as sync_order writes it, with `changes`."""
    order = world.storefront.order()
    base = SalesOrderRecord(
        id="so-1",
        store_hash=STORE,
        order_id=ORDER_ID,
        lifecycle=Lifecycle.RECEIVED,
        bc_status_id=order.status_id,
        bc_date_modified=order.date_modified,
    )
    lines = tuple(
        LineRecord(p.id, p.sku, Decimal(p.quantity))
        for p in world.storefront.orders[ORDER_ID].products
    )
    made = replace(base, lines=lines, **changes)  # type: ignore[arg-type]
    world.store.put(made)
    return made


def fulfillment(
    key: str, lines: tuple[tuple[int, int], ...], *, source: str = "WH-EAST", **changes: object
) -> FulfillmentRecord:
    made = FulfillmentRecord(
        key,
        source,
        tuple(
            FulfillmentLineRecord(f"{key}-{n}", line_id, Decimal(q))
            for n, (line_id, q) in enumerate(lines, start=1)
        ),
    )
    return replace(made, **changes)  # type: ignore[arg-type]


# -- sync_order ---------------------------------------------------------------------------------


async def test_sync_order_creates_the_salesorder_as_received() -> None:
    world = make_world()
    standard_order(world)

    result = await run(world, sync_order)

    assert (result.outcome, result.summary) == ("done", "salesorder created: status 11, 2 lines")
    made = world.store.record()
    assert made.lifecycle is Lifecycle.RECEIVED
    assert made.bc_status_id == 11
    assert made.bc_date_modified == world.storefront.order().date_modified
    assert [x.order_product_id for x in made.lines] == [LINE_A, LINE_B]
    assert world.store.business_commits == 1


async def test_sync_order_skips_an_unchanged_order_but_a_replay_rewrites_it() -> None:
    world = make_world()
    standard_order(world)
    await run(world, sync_order)

    unchanged = await run(world, sync_order)
    assert (unchanged.outcome, unchanged.summary) == ("skipped", "no change since the last sync")
    assert world.store.business_commits == 1

    replayed = await run(world, sync_order, Trigger.REPLAY)
    assert replayed.outcome == "done"
    assert replayed.summary.startswith("salesorder updated")
    assert world.store.business_commits == 2


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"lifecycle": Lifecycle.COMPLETED}, id="completed"),
        pytest.param({"lifecycle": Lifecycle.CANCELLED}, id="cancelled"),
        pytest.param({"statecode": 2, "statuscode": 4}, id="cancelled-in-dataverse"),
        pytest.param({"statecode": 3, "statuscode": 100001}, id="fulfilled-in-dataverse"),
    ],
)
async def test_sync_order_leaves_a_closed_salesorder_alone(changes: dict[str, object]) -> None:
    world = make_world()
    standard_order(world)
    before = record(world, bc_status_id=9, **changes)
    world.storefront.set_status(ORDER_ID, 11)

    result = await run(world, sync_order, Trigger.REPLAY)

    assert result.outcome == "skipped"
    assert result.summary.startswith("salesorder is closed")
    assert world.store.record() == before
    assert world.store.business_commits == 0


async def test_sync_order_keeps_the_connector_hold_reason_of_a_held_order() -> None:
    world = make_world()
    standard_order(world, status_id=12)
    record(world, lifecycle=Lifecycle.ON_HOLD, hold_reason="line 1002: no product", bc_status_id=11)

    result = await run(world, sync_order)

    assert result.outcome == "done"
    held = world.store.record()
    assert held.bc_status_id == 12
    # Not the status map's "manual verification required" for status 12.
    assert held.hold_reason == "line 1002: no product"
    assert held.lifecycle is Lifecycle.ON_HOLD


async def test_sync_order_writes_the_status_map_hold_of_an_order_it_did_not_hold() -> None:
    world = make_world()
    standard_order(world, status_id=13)

    await run(world, sync_order)

    assert world.store.record().hold_reason == "payment disputed"


async def test_sync_order_stops_the_flow_on_an_incomplete_order() -> None:
    world = make_world()
    standard_order(world, status_id=0)

    result = await run(world, sync_order)

    assert result.outcome == "skipped"
    assert result.stop
    assert world.store.records == {}
    assert world.store.calls["existing_products"] == 0


# -- cancel -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [5, 6])
async def test_cancel_follows_a_cancelled_or_declined_bigcommerce_order(status: int) -> None:
    world = make_world()
    standard_order(world, status_id=status)
    record(
        world,
        lifecycle=Lifecycle.RELEASED,
        hold_reason="connector error in ship: x",
        fulfillments=(fulfillment("250-1", ((LINE_A, 2), (LINE_B, 1))),),
    )

    result = await run(world, cancel)

    assert result.outcome == "done"
    assert result.stop
    assert "(1 fulfillment orders, 2 lines cancelled)" in result.summary
    after = world.store.record()
    assert after.lifecycle is Lifecycle.CANCELLED
    assert after.hold_reason is None
    assert (after.statecode, after.statuscode) == (2, 4)
    assert after.fulfillments[0].cancelled
    assert [x.quantity_cancelled for x in after.lines] == [Decimal(2), Decimal(1)]
    assert world.storefront.writes == []


async def test_cancel_does_not_close_the_salesorder_when_the_flow_says_not_to() -> None:
    world = make_world(flow=with_flow(close_salesorders=False))
    standard_order(world, status_id=5)
    record(world)

    await run(world, cancel)

    after = world.store.record()
    assert after.lifecycle is Lifecycle.CANCELLED
    assert after.statecode == 0
    assert not any(op.startswith("close_order") for op in world.store.applied)


@pytest.mark.parametrize(
    ("changes", "summary", "stop"),
    [
        pytest.param({"lifecycle": Lifecycle.CANCELLED}, "already cancelled", True, id="done"),
        pytest.param(
            {"lifecycle": Lifecycle.COMPLETED},
            "completed before the cancellation: nothing open to cancel",
            False,
            id="completed",
        ),
        pytest.param(
            {"statecode": 3},
            "completed before the cancellation: nothing open to cancel",
            False,
            id="fulfilled",
        ),
    ],
)
async def test_cancel_has_nothing_to_do(
    changes: dict[str, object], summary: str, stop: bool
) -> None:
    world = make_world()
    standard_order(world, status_id=5)
    before = record(world, **changes)

    result = await run(world, cancel)

    assert (result.outcome, result.summary, result.stop) == ("skipped", summary, stop)
    assert world.store.record() == before


async def test_cancel_skips_an_open_order_and_an_order_without_salesorder() -> None:
    world = make_world()
    standard_order(world)
    assert (await run(world, cancel)).summary == "no salesorder"
    record(world)
    result = await run(world, cancel)
    assert (result.outcome, result.summary, result.stop) == ("skipped", "not cancelled", False)


async def test_dataverse_cancellation_uses_the_flow_cancelled_status() -> None:
    flow = with_flow(bigcommerce_status=StatusPolicy(cancelled=6))
    world = make_world(flow=flow)
    standard_order(world)
    record(world, statecode=2, statuscode=4, lifecycle=Lifecycle.RELEASED,
           fulfillments=(fulfillment("250-1", ((LINE_A, 2), (LINE_B, 1))),))  # fmt: skip

    result = await run(world, cancel, Trigger.DATAVERSE_ORDER)

    assert result.outcome == "done"
    assert world.storefront.order().status_id == 6
    after = world.store.record()
    assert after.fulfillments[0].cancelled
    # The closed salesorder's own lines are left as they are.
    assert [x.quantity_cancelled for x in after.lines] == [Decimal(0), Decimal(0)]
    assert after.bc_status_id != 6  # nor is its BigCommerce status: it is closed


# -- validate -----------------------------------------------------------------------------------


async def test_validate_passes_a_valid_order_without_writing() -> None:
    world = make_world()
    standard_order(world)
    before = record(world)

    result = await run(world, validate)

    assert (result.outcome, result.summary) == ("skipped", "valid")
    assert world.store.record() == before
    assert world.storefront.writes == []


@pytest.mark.parametrize(
    ("order_changes", "reason"),
    [
        pytest.param(
            {"payment_status": "declined"},
            "payment status 'declined' is not accepted",
            id="payment",
        ),
        pytest.param(
            {"total_inc_tax": "6250.0000"},
            "total 6,250.00 USD is above the manual review limit 5,000.00 USD",
            id="manual-review",
        ),
    ],
)
async def test_validate_holds_an_invalid_order(order_changes: dict[str, Any], reason: str) -> None:
    world = make_world()
    standard_order(world, **order_changes)
    record(world)

    result = await run(world, validate)

    assert (result.outcome, result.summary) == ("hold", reason)
    assert result.stop
    assert result.park
    after = world.store.record()
    assert after.lifecycle is Lifecycle.ON_HOLD
    assert after.hold_reason == reason
    assert world.storefront.order().status_id == 12
    assert after.bc_status_id == 12


async def test_validate_joins_every_reason_and_checks_the_ship_to() -> None:
    flow = with_flow(validation=ValidationPolicy(blocked_countries=("US",)))
    world = make_world(flow=flow, products={SKU_A})
    fake = standard_order(world)
    fake.addresses = [make_address(zip="")]
    record(world)

    result = await run(world, validate)

    assert result.summary == (
        f"ship-to address {ADDRESS_ID}: zip missing; ship-to country US is blocked; "
        f"line {LINE_B} (SKU {SKU_B}): no Dataverse product '{SKU_B}'"
    )
    assert world.store.record().hold_reason == result.summary


async def test_validate_waits_while_bigcommerce_holds_the_order() -> None:
    world = make_world()
    standard_order(world, status_id=12)  # set to Manual Verification by the merchant
    before = record(world)

    result = await run(world, validate)

    assert result.outcome == "waiting"
    assert result.summary == "status 12: manual verification required"
    assert result.stop
    assert not result.park
    assert world.store.record() == before


async def test_validate_lifts_a_hold_once_the_order_passes() -> None:
    world = make_world()
    standard_order(world, status_id=12)
    record(world, lifecycle=Lifecycle.ON_HOLD, hold_reason="line 1002: no product")

    result = await run(world, validate)

    assert (result.outcome, result.summary) == ("done", "valid: hold lifted")
    after = world.store.record()
    assert after.lifecycle is Lifecycle.RECEIVED
    assert after.hold_reason is None


async def test_validate_skips_an_order_past_validation() -> None:
    world = make_world()
    standard_order(world)
    record(world, lifecycle=Lifecycle.RELEASED)

    result = await run(world, validate)

    assert (result.outcome, result.summary) == ("skipped", "already released")
    assert world.store.calls["existing_products"] == 0


async def test_a_repeated_hold_with_the_same_reason_is_not_new() -> None:
    world = make_world()
    standard_order(world, status_id=12)
    held = record(world, lifecycle=Lifecycle.ON_HOLD, hold_reason="r1", bc_status_id=12)
    ctx = context(world)
    await ctx.reload()

    same = await put_on_hold(ctx, held, "r1")
    other = await put_on_hold(ctx, held, "r2")

    assert (same.park, other.park) == (False, True)
    await ctx.writes.commit()
    assert world.store.record().hold_reason == "r2"
    assert world.storefront.writes == []


async def test_waiting_reason_accepts_the_connector_hold_status_only_for_a_held_order() -> None:
    world = make_world()
    standard_order(world, status_id=12)
    ctx = context(world)
    order = world.storefront.order()

    held = record(world, lifecycle=Lifecycle.ON_HOLD)
    assert waiting_reason(ctx, order, held) is None
    received = replace(held, lifecycle=Lifecycle.RECEIVED)
    assert waiting_reason(ctx, order, received) == "status 12: manual verification required"
    pickup = order.model_copy(update={"status_id": 8})
    assert waiting_reason(ctx, pickup, received) is None
    refunded = order.model_copy(update={"status_id": 4})
    assert waiting_reason(ctx, refunded, received) == ("status 4 is not one the flow sources from")


# -- choose_source ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "source"),
    [
        pytest.param("US", "WH-EAST", id="US"),
        pytest.param("CA", "WH-EAST", id="CA"),
        pytest.param("GB", "WH-EU", id="GB"),
        pytest.param("JP", "DROPSHIP", id="JP"),
    ],
)
async def test_choose_source_picks_the_source_serving_the_ship_to(
    country: str, source: str
) -> None:
    world = make_world()
    fake = standard_order(world)
    fake.addresses = [make_address(country_iso2=country)]
    record(world)

    result = await run(world, choose_source)

    assert (result.outcome, result.summary) == ("done", f"released: 250-1 at {source}")
    after = world.store.record()
    assert after.lifecycle is Lifecycle.RELEASED
    assert [f.source for f in after.fulfillments] == [source]


async def test_choose_source_holds_an_order_no_source_has_stock_for() -> None:
    policy = FulfillmentPolicy(
        sources=(Source(name="WH-EAST", kind="warehouse", priority=1, inventory={SKU_A: 5}),)
    )
    world = make_world(flow=with_flow(fulfillment=policy))
    standard_order(world)
    record(world)

    result = await run(world, choose_source)

    reason = f"inventory not found for SKU {SKU_B} (line {LINE_B}) in any source serving US"
    assert (result.outcome, result.summary, result.park) == ("hold", reason, True)
    after = world.store.record()
    assert after.lifecycle is Lifecycle.ON_HOLD
    assert after.hold_reason == reason
    assert after.fulfillments == ()
    assert world.storefront.order().status_id == 12


async def test_choose_source_backorders_what_no_source_has() -> None:
    policy = FulfillmentPolicy(
        max_splits=2,
        when_unsourced="backorder",
        backorder_source="BACKORDER",
        sources=(
            Source(name="WH-EAST", kind="warehouse", priority=1, inventory={SKU_A: 5}),
            Source(name="BACKORDER", kind="warehouse", priority=5, inventory={}),
        ),
    )
    world = make_world(flow=with_flow(fulfillment=policy))
    standard_order(world)
    record(world)

    result = await run(world, choose_source)

    assert result.outcome == "done"
    plans = [
        (f.key, f.source, [x.order_product_id for x in f.lines])
        for f in world.store.record().fulfillments
    ]
    assert plans == [("250-1", "WH-EAST", [LINE_A]), ("250-2", "BACKORDER", [LINE_B])]


async def test_choose_source_reads_dataverse_inventory() -> None:
    policy = FulfillmentPolicy(
        sources=(
            Source(name="WH-EAST", kind="warehouse", priority=1, inventory="dataverse"),
            Source(name="WH-WEST", kind="warehouse", priority=2, inventory="dataverse"),
        ),
    )
    stock = {("WH-EAST", SKU_A): Decimal(1), ("WH-WEST", SKU_A): Decimal(5),
             ("WH-WEST", SKU_B): Decimal(5)}  # fmt: skip
    world = make_world(flow=with_flow(fulfillment=policy), stock=stock)
    standard_order(world)
    record(world)

    await run(world, choose_source)

    assert world.store.calls["inventory"] == 1
    assert [f.source for f in world.store.record().fulfillments] == ["WH-WEST"]


async def test_choose_source_plans_only_what_bigcommerce_has_not_shipped() -> None:
    world = make_world()
    fake = standard_order(world)
    fake.products = [
        make_product(LINE_A, SKU_A, 2, quantity_shipped=1),
        make_product(LINE_B, SKU_B, 1, quantity_shipped=1),
    ]
    record(world)

    await run(world, choose_source)

    (made,) = world.store.record().fulfillments
    assert [(x.order_product_id, x.quantity) for x in made.lines] == [(LINE_A, Decimal(1))]


@pytest.mark.parametrize(
    ("changes", "summary"),
    [
        pytest.param({"lifecycle": Lifecycle.ON_HOLD}, "not sourced while on_hold", id="held"),
        pytest.param(
            {"lifecycle": Lifecycle.PARTIALLY_SHIPPED, "fulfillments": (
                fulfillment("250-1", ((LINE_A, 2),)),)},
            "already sourced",
            id="sourced",
        ),
    ],
)  # fmt: skip
async def test_choose_source_does_not_source_twice(
    changes: dict[str, object], summary: str
) -> None:
    world = make_world()
    standard_order(world, status_id=9)
    before = record(world, **changes)

    result = await run(world, choose_source)

    assert (result.outcome, result.summary) == ("skipped", summary)
    assert world.store.record() == before
    assert world.storefront.writes == []


# -- ship ---------------------------------------------------------------------------------------


def released_record(world: World, *fulfillments: FulfillmentRecord) -> SalesOrderRecord:
    return record(world, lifecycle=Lifecycle.RELEASED, fulfillments=fulfillments)


async def test_ship_creates_one_shipment_per_address_of_a_fulfillment_order() -> None:
    world = make_world()
    fake = standard_order(world)
    fake.addresses = [make_address(ADDRESS_ID), make_address(8, street_1="2 Side St")]
    fake.products = [make_product(LINE_A, SKU_A, 2), make_product(LINE_B, SKU_B, 1, address_id=8)]
    released_record(
        world, fulfillment("250-1", ((LINE_A, 2), (LINE_B, 1)), shipped=True, tracking_number="T1")
    )

    result = await run(world, ship, Trigger.DATAVERSE_FULFILLMENT)

    first, second = fake.shipments
    assert (first.order_address_id, [i.order_product_id for i in first.items]) == (7, [LINE_A])
    assert (second.order_address_id, [i.order_product_id for i in second.items]) == (8, [LINE_B])
    assert result.summary == f"250-1 -> shipment {first.id}, {second.id}"
    after = world.store.record()
    assert after.fulfillments[0].bc_shipment_id == first.id
    assert after.lifecycle is Lifecycle.SHIPPED
    assert world.storefront.order().status_id == 2


async def test_ship_sends_the_quantities_the_warehouse_shipped() -> None:
    world = make_world()
    fake = standard_order(world)
    released_record(world, fulfillment("250-1", ((LINE_A, 2), (LINE_B, 1))))
    world.store.mark_shipped("250-1", quantities={LINE_A: Decimal(1)})

    await run(world, ship, Trigger.DATAVERSE_FULFILLMENT)

    (shipment,) = fake.shipments
    assert [(i.order_product_id, i.quantity) for i in shipment.items] == [(LINE_A, 1)]
    after = world.store.record()
    assert [x.quantity_shipped for x in after.lines] == [Decimal(1), Decimal(0)]
    assert after.lifecycle is Lifecycle.PARTIALLY_SHIPPED
    assert world.storefront.order().status_id == 3


async def test_ship_moves_the_status_itself_after_the_shipment_when_bigcommerce_does_not() -> None:
    world = make_world()
    world.storefront.status_follows_shipments = False
    fake = standard_order(world)
    released_record(world, fulfillment("250-1", ((LINE_A, 2), (LINE_B, 1)), shipped=True))

    await run(world, ship, Trigger.DATAVERSE_FULFILLMENT)

    assert world.storefront.writes == [f"shipment {fake.shipments[0].id}", "status 11 -> 2"]
    assert world.store.record().bc_status_id == 2
    assert world.store.record().bc_date_modified == world.storefront.order().date_modified


async def test_ship_reuses_a_shipment_bigcommerce_already_has() -> None:
    world = make_world()
    fake = standard_order(world)
    released_record(
        world,
        fulfillment("250-1", ((LINE_A, 2), (LINE_B, 1)), shipped=True, tracking_number="T-1"),
    )
    existing = await world.storefront.create_shipment(
        ORDER_ID,
        ShipmentCreate(
            order_address_id=ADDRESS_ID,
            items=[
                ShipmentLine(order_product_id=LINE_B, quantity=1),
                ShipmentLine(order_product_id=LINE_A, quantity=2),
            ],
            tracking_number="T-1 ",
        ),
    )

    result = await run(world, ship, Trigger.DATAVERSE_FULFILLMENT)

    assert result.outcome == "done"
    assert fake.shipments == [existing]
    assert world.storefront.calls["create_shipment"] == 1
    assert world.store.record().fulfillments[0].bc_shipment_id == existing.id


async def test_a_remainder_shipped_like_the_first_part_gets_a_shipment_of_its_own() -> None:
    # No tracking numbers: the remainder's shipment looks exactly like the first part's, which
    # belongs to the first fulfillment order and must not be taken for it.
    world = make_world()
    fake = standard_order(world)
    released_record(
        world, fulfillment("250-1", ((LINE_A, 2),)), fulfillment("250-2", ((LINE_B, 1),))
    )
    world.store.mark_shipped("250-1", quantities={LINE_A: Decimal(1)})
    await run(world, ship, Trigger.DATAVERSE_FULFILLMENT)
    (first,) = fake.shipments
    remainder = world.store.record().fulfillments[-1]
    assert (remainder.key, [(x.order_product_id, x.quantity) for x in remainder.lines]) == (
        "250-3",
        [(LINE_A, Decimal(1))],
    )
    world.store.mark_shipped("250-3")

    result = await run(world, ship, Trigger.DATAVERSE_FULFILLMENT)

    assert result.outcome == "done"
    assert [s.id for s in fake.shipments] == [first.id, first.id + 1]
    assert [(i.order_product_id, i.quantity) for i in fake.shipments[1].items] == [(LINE_A, 1)]
    by_key = {f.key: f.bc_shipment_id for f in world.store.record().fulfillments}
    assert by_key == {"250-1": first.id, "250-2": None, "250-3": first.id + 1}
    assert next(p for p in fake.products if p.id == LINE_A).quantity_shipped == 2


async def test_a_ship_run_dying_after_the_shipment_leaves_the_lifecycle_recorded_with_it() -> None:
    # Found by the chaos run: the lifecycle was written by a second commit after re-reading the
    # order, so a run that failed in between left a partly shipped order released for good
    # (the retry found no fulfillment order left to sync).
    world = make_world()
    fake = standard_order(world)
    released_record(world, fulfillment("250-1", ((LINE_A, 2), (LINE_B, 1))))
    world.store.mark_shipped("250-1", quantities={LINE_A: Decimal(1)})
    failure = bc.ServerError(
        "internal error", store_hash=STORE, method="GET", path="/v2/orders/250", status=500
    )
    world.storefront.fail("get_order_bundle", failure, on_call=2)  # the re-read after it

    with pytest.raises(bc.ServerError):
        await run(world, ship, Trigger.DATAVERSE_FULFILLMENT)

    after = world.store.record()
    assert after.fulfillments[0].bc_shipment_id == fake.shipments[0].id
    assert after.lifecycle is Lifecycle.PARTIALLY_SHIPPED
    assert [x.quantity_shipped for x in after.lines] == [Decimal(1), Decimal(0)]


async def test_ship_catches_up_a_lifecycle_left_behind_its_recorded_shipments() -> None:
    world = make_world()
    world.storefront.status_follows_shipments = False
    standard_order(world)
    shipment = await world.storefront.create_shipment(
        ORDER_ID,
        ShipmentCreate(
            order_address_id=ADDRESS_ID, items=[ShipmentLine(order_product_id=LINE_A, quantity=1)]
        ),
    )
    made = released_record(
        world,
        fulfillment("250-1", ((LINE_A, 1),), shipped=True, bc_shipment_id=shipment.id),
        fulfillment("250-2", ((LINE_A, 1), (LINE_B, 1))),
    )
    lines = tuple(
        replace(x, quantity_shipped=Decimal(x.order_product_id == LINE_A)) for x in made.lines
    )
    world.store.put(replace(made, lines=lines))

    result = await run(world, ship, Trigger.DATAVERSE_FULFILLMENT)

    assert (result.outcome, result.summary) == (
        "done",
        "caught up with the shipments already recorded",
    )
    assert world.storefront.calls["create_shipment"] == 1  # only the one made above
    assert world.store.record().lifecycle is Lifecycle.PARTIALLY_SHIPPED
    assert world.storefront.order().status_id == 3
    assert world.store.record().bc_status_id == 3
    again = await run(world, ship, Trigger.DATAVERSE_FULFILLMENT)
    assert (again.outcome, again.summary) == ("skipped", "no shipped fulfillment order to sync")


async def test_ship_takes_the_shipment_another_run_made_after_it_looked() -> None:
    world = make_world()
    fake = standard_order(world)
    released_record(
        world,
        fulfillment("250-1", ((LINE_A, 2), (LINE_B, 1)), shipped=True, tracking_number="T-9"),
    )
    slow = context(world, Trigger.DATAVERSE_FULFILLMENT)
    await slow.reload()
    assert await slow.shipments() == []  # listed before the other run shipped

    await run(world, ship, Trigger.DATAVERSE_FULFILLMENT)
    with pytest.raises(dv.ConcurrencyError):  # it took the shipment; its stale commit is fenced
        await ship(slow)

    assert world.storefront.calls["create_shipment"] == 2  # the second refused: over-shipping
    (only,) = fake.shipments
    assert world.store.record().fulfillments[0].bc_shipment_id == only.id


async def test_two_runs_shipping_part_of_a_line_leave_one_shipment() -> None:
    # Part of a line: BigCommerce accepts the second run's shipment too. The run whose shipment
    # has the higher id deletes it, so one stays, the one Dataverse records.
    world = make_world()
    fake = standard_order(world)
    released_record(world, fulfillment("250-1", ((LINE_A, 2), (LINE_B, 1))))
    world.store.mark_shipped("250-1", quantities={LINE_A: Decimal(1)})
    slow = context(world, Trigger.DATAVERSE_FULFILLMENT)
    await slow.reload()
    assert await slow.shipments() == []  # listed before the other run shipped

    await run(world, ship, Trigger.DATAVERSE_FULFILLMENT)
    (first,) = fake.shipments
    with pytest.raises(dv.ConcurrencyError):  # its Dataverse commit is fenced
        await ship(slow)

    assert world.storefront.calls["create_shipment"] == 2  # both accepted by BigCommerce
    assert fake.shipments == [first]
    assert world.storefront.writes[-1] == f"deleted shipment {first.id + 1}"
    assert next(p for p in fake.products if p.id == LINE_A).quantity_shipped == 1
    assert world.store.record().fulfillments[0].bc_shipment_id == first.id


async def test_twins_left_by_a_run_that_died_before_deleting_are_settled_by_the_next() -> None:
    world = make_world()
    fake = standard_order(world)
    released_record(world, fulfillment("250-1", ((LINE_A, 2), (LINE_B, 1))))
    world.store.mark_shipped("250-1", quantities={LINE_A: Decimal(1)})
    twin = ShipmentCreate(
        order_address_id=ADDRESS_ID,
        items=[ShipmentLine(order_product_id=LINE_A, quantity=1)],
        comments="Fulfillment order 250-1 from WH-EAST",
    )
    first = await world.storefront.create_shipment(ORDER_ID, twin)
    second = await world.storefront.create_shipment(ORDER_ID, twin)

    result = await run(world, ship, Trigger.DATAVERSE_FULFILLMENT)

    assert result.outcome == "done"
    assert fake.shipments == [first]
    assert world.storefront.writes[-1:] == [f"deleted shipment {second.id}"]
    assert world.storefront.calls["create_shipment"] == 2  # only the two made above
    assert world.store.record().fulfillments[0].bc_shipment_id == first.id


async def test_a_run_that_found_no_salesorder_leaves_one_made_meanwhile_alone() -> None:
    # Found by the chaos run: the redelivery of a slow run's message created, sourced and
    # shipped the order; the slow run, which had found no salesorder, then "created" it again
    # and set its lifecycle back to received.
    world = make_world()
    standard_order(world)
    slow = context(world)
    await slow.reload()
    assert slow.record is None

    await world.handle(order_webhook())  # the redelivery does it all
    released = world.store.record()
    assert released.lifecycle is Lifecycle.RELEASED

    with pytest.raises(dv.ConcurrencyError):
        await sync_order(slow)
    assert world.store.record() == released


async def test_a_run_whose_read_went_stale_writes_nothing() -> None:
    # Found by the chaos run: a message whose lock expired mid-run was redelivered, and both runs
    # wrote the order from their own reads; the slower one's line quantities overwrote the
    # other's. Every business commit is now fenced by the salesorder's version.
    world = make_world()
    standard_order(world)
    made = released_record(world, fulfillment("250-1", ((LINE_A, 2), (LINE_B, 1)), shipped=True))
    world.store.put(replace(made, etag='W/"7"'))  # as Dataverse reads it
    slow = context(world, Trigger.DATAVERSE_FULFILLMENT)
    await slow.reload()  # reads, then stalls past its lock

    await run(world, ship, Trigger.DATAVERSE_FULFILLMENT)  # the redelivery does the work
    done = world.store.record()

    with pytest.raises(dv.ConcurrencyError) as conflict:
        await ship(slow)
    assert classify(conflict.value).kind == "transient"
    assert world.store.record() == done
    assert world.storefront.calls["create_shipment"] == 1  # it found the shipment, made none
    retry = context(world, Trigger.DATAVERSE_FULFILLMENT)
    await retry.reload()
    assert (await ship(retry)).summary == "no shipped fulfillment order to sync"


@pytest.mark.parametrize(
    ("changes", "summary"),
    [
        pytest.param({}, "no shipped fulfillment order to sync", id="nothing-shipped"),
        pytest.param(
            {"statecode": 2}, "order cancelled: shipments are not created", id="cancelled"
        ),
    ],
)
async def test_ship_creates_nothing(changes: dict[str, object], summary: str) -> None:
    world = make_world()
    standard_order(world)
    shipped = bool(changes)
    record(
        world,
        lifecycle=Lifecycle.RELEASED,
        fulfillments=(fulfillment("250-1", ((LINE_A, 2), (LINE_B, 1)), shipped=shipped),),
        **changes,
    )

    result = await run(world, ship, Trigger.DATAVERSE_FULFILLMENT)

    assert (result.outcome, result.summary) == ("skipped", summary)
    assert world.storefront.calls["create_shipment"] == 0


# -- complete -----------------------------------------------------------------------------------


def shipped_record(world: World) -> SalesOrderRecord:
    made = record(
        world,
        lifecycle=Lifecycle.SHIPPED,
        fulfillments=(fulfillment("250-1", ((LINE_A, 2), (LINE_B, 1)), shipped=True,
                                  bc_shipment_id=1),),
    )  # fmt: skip
    lines = tuple(replace(x, quantity_shipped=x.quantity) for x in made.lines)
    made = replace(made, lines=lines)
    world.store.put(made)
    return made


async def test_complete_fulfills_a_shipped_order() -> None:
    world = make_world()
    standard_order(world, status_id=2)
    shipped_record(world)

    result = await run(world, complete)

    assert (result.outcome, result.summary) == ("done", "completed: every line shipped")
    after = world.store.record()
    assert after.lifecycle is Lifecycle.COMPLETED
    assert (after.statecode, after.statuscode) == (3, 100001)
    assert world.storefront.writes == ["status 2 -> 10"]
    assert after.bc_status_id == 10


async def test_complete_leaves_bigcommerce_at_shipped_without_a_completed_status() -> None:
    world = make_world(flow=with_flow(bigcommerce_status=StatusPolicy(completed=None)))
    standard_order(world, status_id=2)
    shipped_record(world)

    result = await run(world, complete)

    assert (result.outcome, result.summary) == ("done", "shipped: every line shipped")
    after = world.store.record()
    assert after.lifecycle is Lifecycle.SHIPPED
    assert after.statecode == 3
    assert world.storefront.writes == []


async def test_complete_follows_a_merchant_completing_the_order_in_bigcommerce() -> None:
    world = make_world()
    standard_order(world, status_id=10)
    record(world)

    result = await run(world, complete)

    assert (result.outcome, result.summary) == ("done", "completed: completed in BigCommerce")
    assert world.store.record().lifecycle is Lifecycle.COMPLETED
    assert world.storefront.writes == []


@pytest.mark.parametrize(
    ("changes", "summary"),
    [
        pytest.param({"lifecycle": Lifecycle.ON_HOLD}, "on hold", id="held"),
        pytest.param({"lifecycle": Lifecycle.COMPLETED}, "already completed", id="completed"),
        pytest.param({"lifecycle": Lifecycle.CANCELLED}, "no open salesorder", id="cancelled"),
        pytest.param(
            {"lifecycle": Lifecycle.RELEASED,
             "fulfillments": (fulfillment("250-1", ((LINE_A, 2), (LINE_B, 1))),)},
            "lines still open",
            id="open",
        ),
    ],
)  # fmt: skip
async def test_complete_has_nothing_to_complete(changes: dict[str, object], summary: str) -> None:
    world = make_world()
    fake = standard_order(world, shipping=False)
    assert fake.addresses == []
    before = record(world, **changes)

    result = await run(world, complete)

    assert (result.outcome, result.summary) == ("skipped", summary)
    assert world.store.record() == before
    assert world.storefront.writes == []


async def test_complete_waits_for_a_digital_order_to_be_paid() -> None:
    world = make_world()
    standard_order(world, status_id=7, shipping=False)
    before = record(world)

    result = await run(world, complete)

    assert (result.outcome, result.summary) == ("skipped", "lines still open")
    assert world.store.record() == before


# -- record_refunds -----------------------------------------------------------------------------


async def test_record_refunds_records_each_new_refund_once() -> None:
    world = make_world()
    standard_order(world)
    first = world.storefront.add_refund(ORDER_ID, "10.0000")
    second = world.storefront.add_refund(ORDER_ID, "20.5000")
    record(world)

    result = await run(world, record_refunds, Trigger.BIGCOMMERCE_REFUND)

    assert (result.outcome, result.summary) == ("done", "2 refunds recorded (30.50)")
    refunds = world.store.record().refunds
    assert [(r.refund_id, r.amount) for r in refunds] == [
        (first.id, Decimal("10")),
        (second.id, Decimal("20.5")),
    ]

    again = await run(world, record_refunds, Trigger.BIGCOMMERCE_REFUND)
    assert (again.outcome, again.summary) == ("skipped", "2 refunds, all recorded")
    assert world.store.business_commits == 1


async def test_record_refunds_needs_a_salesorder() -> None:
    world = make_world()
    standard_order(world)
    world.storefront.add_refund(ORDER_ID, "10.0000")

    result = await run(world, record_refunds, Trigger.BIGCOMMERCE_REFUND)

    assert (result.outcome, result.summary) == ("skipped", "no salesorder")
    assert world.storefront.calls["list_order_refunds"] == 0


# -- the context --------------------------------------------------------------------------------


async def test_set_status_writes_once_and_journals_the_write() -> None:
    world = make_world()
    standard_order(world, status_id=9)
    record(world)
    ctx = context(world)
    await ctx.reload()

    await ctx.set_status(11)
    await ctx.set_status(11)
    await ctx.writes.commit()

    assert world.storefront.writes == ["status 9 -> 11"]
    assert ctx.bigcommerce_writes == ["status 9 -> 11"]
    after = world.store.record()
    assert (after.bc_status_id, after.bc_date_modified) == (
        11,
        world.storefront.order().date_modified,
    )
    (entry,) = [e for e in world.store.journal.values() if e.kind == "write"]
    assert (entry.name, entry.details, entry.outcome) == (
        "bigcommerce status 11",
        "status 9 -> 11",
        "done",
    )


async def test_the_bundle_is_read_once_per_run() -> None:
    world = make_world()
    standard_order(world)
    ctx = context(world)

    await ctx.bundle()
    await ctx.order()
    await ctx.shipments()
    await ctx.shipments()

    assert world.storefront.calls["get_order_bundle"] == 1
    assert world.storefront.calls["list_shipments"] == 1
