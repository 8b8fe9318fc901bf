"""The fulfillment policy: one source when one has everything, else line by line (never splitting a
line), then hold or backorder what does not fit; keys and line order are stable."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

import pytest

from shared.orchestration.flow import FulfillmentPolicy, Source, load_flow
from shared.orchestration.ports import PlannedFulfillment, PlannedLine
from shared.orchestration.sourcing import (
    Plan,
    SourcingLine,
    Unsourced,
    inventory_skus,
    plan_fulfillment,
)

Inventory = Literal["unlimited", "dataverse"] | dict[str, Decimal]
NO_STOCK: Mapping[tuple[str, str], Decimal] = {}


def source(
    name: str,
    priority: int = 1,
    countries: Sequence[str] = (),
    inventory: Inventory | dict[str, int] | dict[str, str] = "unlimited",
) -> Source:
    stock: Any = (
        inventory
        if isinstance(inventory, str)
        else {sku: Decimal(q) for sku, q in inventory.items()}
    )
    return Source(
        name=name, kind="warehouse", priority=priority, countries=tuple(countries), inventory=stock
    )


def policy(*sources: Source, **settings: Any) -> FulfillmentPolicy:
    return FulfillmentPolicy(sources=sources, **settings)


def line(order_product_id: int, sku: str | None, quantity: int | str = 1) -> SourcingLine:
    return SourcingLine(order_product_id, sku, Decimal(quantity))


def plan(
    lines: Sequence[SourcingLine],
    the_policy: FulfillmentPolicy,
    country: str | None = "US",
    stock: Mapping[tuple[str, str], Decimal] = NO_STOCK,
    order_id: int = 120,
) -> Plan | Unsourced:
    return plan_fulfillment(order_id, lines, country, the_policy, stock)


def planned(result: Plan | Unsourced) -> list[tuple[str, str, list[tuple[int, Decimal]]]]:
    """A plan as (key, source, [(order_product_id, quantity)]) to compare at a glance."""
    assert isinstance(result, Plan), result
    return [
        (f.key, f.source, [(x.order_product_id, x.quantity) for x in f.lines])
        for f in result.fulfillments
    ]


def held(result: Plan | Unsourced) -> Unsourced:
    assert isinstance(result, Unsourced), result
    return result


D = Decimal


# -- nothing to plan -------------------------------------------------------------------------------


def test_no_lines_give_an_empty_plan() -> None:
    assert plan([], policy(source("A"))) == Plan(())


def test_lines_with_no_quantity_left_are_not_planned() -> None:
    only = policy(source("A"))
    assert plan([line(1, "X", 0), line(2, "Y", "-1")], only) == Plan(())
    assert planned(plan([line(1, "X", 0), line(2, "Y", 2)], only)) == [("120-1", "A", [(2, D(2))])]


# -- (a) one source --------------------------------------------------------------------------------


def test_one_source_with_everything_ships_the_whole_order() -> None:
    result = plan([line(12, "X", 2), line(13, "Y")], policy(source("A")), order_id=7)
    assert result == Plan(
        (
            PlannedFulfillment(
                key="7-1",
                source="A",
                lines=(PlannedLine(12, D(2)), PlannedLine(13, D(1))),
            ),
        )
    )
    assert isinstance(result, Plan)
    assert result.backordered == ()


def test_the_lowest_priority_number_wins_then_the_position_in_the_file() -> None:
    lines = [line(1, "X")]
    assert planned(plan(lines, policy(source("A", 5), source("B", 2))))[0][1] == "B"
    assert planned(plan(lines, policy(source("A", 2), source("B", 2))))[0][1] == "A"
    assert planned(plan(lines, policy(source("B", 2), source("A", 2))))[0][1] == "B"


def test_a_better_source_missing_one_line_loses_to_one_that_has_all() -> None:
    sources = policy(
        source("A", 1, inventory={"X": 10}),
        source("B", 2, inventory={"X": 10, "Y": 10}),
    )
    assert planned(plan([line(1, "X"), line(2, "Y")], sources)) == [
        ("120-1", "B", [(1, D(1)), (2, D(1))])
    ]


def test_only_sources_serving_the_ship_to_country_are_eligible() -> None:
    sources = policy(
        source("EU", 1, countries=["DE", "FR"]),
        source("US", 1, countries=["US", "CA"]),
        source("ANY", 9),
    )
    lines = [line(1, "X")]
    assert planned(plan(lines, sources, "DE"))[0][1] == "EU"
    assert planned(plan(lines, sources, "ca"))[0][1] == "US"
    assert planned(plan(lines, sources, "jp"))[0][1] == "ANY"
    assert planned(plan(lines, sources, None))[0][1] == "ANY"


def test_the_demand_of_a_sku_on_several_lines_is_summed() -> None:
    sources = policy(source("A", 1, inventory={"X": 3}), source("B", 2))
    assert planned(plan([line(1, "X", 2), line(2, "X", 1)], sources)) == [
        ("120-1", "A", [(1, D(2)), (2, D(1))])
    ]
    # 2 + 2 > 3: A has not everything; B (unlimited) has.
    assert planned(plan([line(1, "X", 2), line(2, "X", 2)], sources)) == [
        ("120-1", "B", [(1, D(2)), (2, D(2))])
    ]


def test_stock_exactly_equal_to_the_demand_is_enough() -> None:
    sources = policy(source("A", inventory={"X": 5}))
    assert planned(plan([line(1, "X", 5)], sources)) == [("120-1", "A", [(1, D(5))])]


def test_fractional_quantities() -> None:
    sources = policy(source("A", inventory={"X": "1.5"}), source("B", 2))
    assert planned(plan([line(1, "X", "1.5")], sources)) == [("120-1", "A", [(1, D("1.5"))])]
    assert planned(plan([line(1, "X", "1.51")], sources)) == [("120-1", "B", [(1, D("1.51"))])]


# -- stock -----------------------------------------------------------------------------------------


def test_dataverse_inventory_reads_the_stock_given_by_source_and_sku() -> None:
    sources = policy(source("A", 1, inventory="dataverse"), source("B", 2, inventory="dataverse"))
    stock = {("A", "X"): D(1), ("B", "X"): D(4)}
    assert planned(plan([line(1, "X", 3)], sources, stock=stock)) == [("120-1", "B", [(1, D(3))])]
    assert planned(plan([line(1, "X", 1)], sources, stock=stock)) == [("120-1", "A", [(1, D(1))])]


def test_a_missing_or_negative_dataverse_entry_is_nothing_available() -> None:
    sources = policy(source("A", inventory="dataverse"))
    assert isinstance(plan([line(1, "X")], sources, stock={}), Unsourced)
    assert isinstance(plan([line(1, "X")], sources, stock={("B", "X"): D(9)}), Unsourced)
    assert isinstance(plan([line(1, "X")], sources, stock={("A", "X"): D(-3)}), Unsourced)
    assert isinstance(plan([line(1, "X")], sources, stock={("A", "X"): D(1)}), Plan)


def test_a_configured_inventory_lacks_the_skus_it_does_not_list() -> None:
    sources = policy(source("A", inventory={"X": 10}))
    assert isinstance(plan([line(1, "X")], sources), Plan)
    assert isinstance(plan([line(1, "Y")], sources), Unsourced)


def test_a_line_without_a_sku_only_finds_stock_at_an_unlimited_source() -> None:
    sources = policy(
        source("A", 1, inventory="dataverse"),
        source("B", 2, inventory={"X": 5}),
        source("C", 3),
    )
    assert planned(plan([line(1, None)], sources, stock={("A", "X"): D(5)})) == [
        ("120-1", "C", [(1, D(1))])
    ]
    only_counted = policy(source("A", inventory={"X": 5}))
    assert held(plan([line(1, None)], only_counted)).reason == (
        "inventory not found for line 1 (no SKU) in any source serving US"
    )


def test_the_stock_given_is_not_changed() -> None:
    sources = policy(source("A", 1, inventory="dataverse"), source("B", 2, inventory="dataverse"))
    stock = {("A", "X"): D(2), ("B", "Y"): D(2)}
    before = dict(stock)
    plan([line(1, "X", 2), line(2, "Y", 2)], sources, stock=stock)
    assert stock == before


# -- (b) line by line ------------------------------------------------------------------------------


def test_lines_go_to_the_best_source_that_has_each_when_none_has_all() -> None:
    sources = policy(
        source("A", 1, inventory={"X": 10}),
        source("B", 2, inventory={"Y": 10}),
        max_splits=2,
    )
    assert planned(plan([line(1, "X"), line(2, "Y"), line(3, "X", 4)], sources)) == [
        ("120-1", "A", [(1, D(1)), (3, D(4))]),
        ("120-2", "B", [(2, D(1))]),
    ]


def test_a_line_is_never_split_across_sources() -> None:
    sources = policy(
        source("A", 1, inventory={"X": 3, "Y": 1}),
        source("B", 2, inventory={"X": 5}),
        max_splits=2,
    )
    # A has 3 of the 5 X: the whole line goes to B, never 3 + 2.
    assert planned(plan([line(1, "X", 5), line(2, "Y")], sources)) == [
        ("120-1", "A", [(2, D(1))]),
        ("120-2", "B", [(1, D(5))]),
    ]


def test_stock_taken_by_an_earlier_line_is_not_there_for_a_later_one() -> None:
    sources = policy(
        source("A", 1, inventory={"X": 3}),
        source("B", 2, inventory={"X": 2}),
        max_splits=2,
    )
    assert planned(plan([line(1, "X", 2), line(2, "X", 2)], sources)) == [
        ("120-1", "A", [(1, D(2))]),
        ("120-2", "B", [(2, D(2))]),
    ]
    # Lines are taken in the order given: the other order gives the other assignment.
    assert planned(plan([line(2, "X", 2), line(1, "X", 2)], sources)) == [
        ("120-1", "A", [(2, D(2))]),
        ("120-2", "B", [(1, D(2))]),
    ]


def test_fulfillments_are_numbered_in_source_order_and_keep_the_line_order() -> None:
    sources = policy(
        source("FIRST", 1, inventory={"Y": 1}),
        source("SECOND", 2, inventory={"X": 1, "Z": 1}),
        max_splits=2,
    )
    result = plan([line(30, "X"), line(10, "Y"), line(20, "Z")], sources, order_id=555)
    assert planned(result) == [
        ("555-1", "FIRST", [(10, D(1))]),
        ("555-2", "SECOND", [(30, D(1)), (20, D(1))]),
    ]


def test_up_to_max_splits_sources_are_fine() -> None:
    sources = policy(
        source("A", 1, inventory={"X": 1}),
        source("B", 2, inventory={"Y": 1}),
        source("C", 3, inventory={"Z": 1}),
        max_splits=3,
    )
    assert [f[1] for f in planned(plan([line(1, "X"), line(2, "Y"), line(3, "Z")], sources))] == [
        "A",
        "B",
        "C",
    ]


# -- (c) hold --------------------------------------------------------------------------------------


def test_hold_names_the_lines_no_source_has() -> None:
    sources = policy(source("A", inventory={"X": 1}), max_splits=2)
    result = held(plan([line(11, "X"), line(12, "Q-1"), line(13, "Q-2", 3)], sources))
    assert result == Unsourced(
        "inventory not found for SKU Q-1 (line 12), SKU Q-2 (line 13) in any source serving US",
        (12, 13),
    )


def test_hold_is_the_default_when_unsourced() -> None:
    sources = policy(source("A", inventory={"X": 1}))
    assert sources.when_unsourced == "hold"
    assert held(plan([line(12, "X", 2)], sources)).reason == (
        "inventory not found for SKU X (line 12) in any source serving US"
    )


def test_hold_names_at_most_ten_lines_and_counts_the_rest() -> None:
    sources = policy(source("A", inventory={}))
    result = held(plan([line(n, f"S{n}") for n in range(1, 14)], sources))
    named = ", ".join(f"SKU S{n} (line {n})" for n in range(1, 11))
    assert (
        result.reason == f"inventory not found for {named}, 3 more lines in any source serving US"
    )
    assert result.lines == tuple(range(1, 14))


def test_hold_when_no_source_serves_the_ship_to_country() -> None:
    sources = policy(source("US", countries=["US"]))
    assert held(plan([line(1, "X")], sources, "ru")) == Unsourced(
        "no fulfillment source serves ship-to country RU", (1,)
    )
    assert held(plan([line(1, "X")], sources, None)).reason == (
        "no fulfillment source serves an order without a ship-to country"
    )


def test_hold_without_a_ship_to_country_names_the_sources_serving_everywhere() -> None:
    sources = policy(source("ANY", inventory={}))
    assert held(plan([line(1, "X")], sources, None)).reason == (
        "inventory not found for SKU X (line 1) in any source serving every country"
    )


def test_hold_when_the_lines_need_more_than_max_splits_sources() -> None:
    sources = policy(
        source("A", 1, inventory={"X": 1}),
        source("B", 2, inventory={"Y": 1}),
        source("C", 3, inventory={"Z": 1}),
        max_splits=2,
    )
    assert held(plan([line(1, "X"), line(2, "Y"), line(3, "Z")], sources)) == Unsourced(
        "the lines need 3 sources (A, B, C), more than max_splits 2", ()
    )


def test_hold_names_both_unsourced_lines_and_too_many_sources() -> None:
    sources = policy(
        source("A", 1, inventory={"X": 1}),
        source("B", 2, inventory={"Y": 1}),
    )
    result = held(plan([line(1, "X"), line(2, "Y"), line(3, "Z")], sources))
    assert result.reason == (
        "inventory not found for SKU Z (line 3) in any source serving US; "
        "the lines need 2 sources (A, B), more than max_splits 1"
    )
    assert result.lines == (3,)


# -- (c) backorder ---------------------------------------------------------------------------------


def backordering(*sources: Source, at: str = "BACK", **settings: Any) -> FulfillmentPolicy:
    return policy(*sources, when_unsourced="backorder", backorder_source=at, **settings)


def test_backorder_sends_unsourced_lines_to_the_backorder_source() -> None:
    sources = backordering(
        source("A", 1, inventory={"X": 5}),
        source("BACK", 5, inventory="dataverse"),
        max_splits=2,
    )
    result = plan([line(1, "X"), line(2, "Q"), line(3, "X", 2)], sources)
    assert planned(result) == [
        ("120-1", "A", [(1, D(1)), (3, D(2))]),
        ("120-2", "BACK", [(2, D(1))]),
    ]
    assert isinstance(result, Plan)
    assert result.backordered == (2,)


def test_the_backorder_source_takes_lines_whatever_the_country_it_serves() -> None:
    sources = backordering(
        source("US", 1, countries=["US"]),
        source("BACK", 2, countries=["GB"], inventory={}),
    )
    result = plan([line(1, "X"), line(2, "Y")], sources, "JP")
    assert planned(result) == [("120-1", "BACK", [(1, D(1)), (2, D(1))])]
    assert isinstance(result, Plan)
    assert result.backordered == (1, 2)


def test_backorder_keeps_the_best_sources_within_max_splits() -> None:
    sources = backordering(
        source("A", 1, inventory={"X": 1}),
        source("B", 2, inventory={"Y": 1}),
        source("C", 3, inventory={"Z": 1}),
        source("BACK", 9, inventory={}),
        max_splits=2,
    )
    result = plan([line(1, "X"), line(2, "Y"), line(3, "Z")], sources)
    # A is kept; BACK is one of the two; B's and C's lines wait at BACK.
    assert planned(result) == [
        ("120-1", "A", [(1, D(1))]),
        ("120-2", "BACK", [(2, D(1)), (3, D(1))]),
    ]
    assert isinstance(result, Plan)
    assert result.backordered == (2, 3)


def test_backorder_counts_the_backorder_source_within_max_splits() -> None:
    sources = backordering(
        source("A", 1, inventory={"X": 1}),
        source("B", 2, inventory={"Y": 1}),
        source("BACK", 9, inventory={}),
        max_splits=2,
    )
    # A and B would fit, but the unsourced Z needs BACK: B's line joins it.
    result = plan([line(1, "X"), line(2, "Y"), line(3, "Z")], sources)
    assert planned(result) == [
        ("120-1", "A", [(1, D(1))]),
        ("120-2", "BACK", [(2, D(1)), (3, D(1))]),
    ]
    assert isinstance(result, Plan)
    assert result.backordered == (2, 3)


def test_backorder_with_one_split_sends_everything_to_the_backorder_source() -> None:
    sources = backordering(
        source("A", 1, inventory={"X": 1}),
        source("BACK", 9, inventory={}),
        max_splits=1,
    )
    result = plan([line(1, "X"), line(2, "Y")], sources)
    assert planned(result) == [("120-1", "BACK", [(1, D(1)), (2, D(1))])]
    assert isinstance(result, Plan)
    assert result.backordered == (1, 2)


def test_a_backorder_source_with_stock_keeps_its_own_lines() -> None:
    sources = backordering(
        source("A", 1, inventory={"X": 1}),
        source("BACK", 2, inventory={"Y": 1}),
        source("C", 3, inventory={"Z": 1}),
        max_splits=2,
        at="BACK",
    )
    result = plan([line(1, "X"), line(2, "Y"), line(3, "Z"), line(4, "W")], sources)
    assert planned(result) == [
        ("120-1", "A", [(1, D(1))]),
        ("120-2", "BACK", [(2, D(1)), (3, D(1)), (4, D(1))]),
    ]
    assert isinstance(result, Plan)
    assert result.backordered == (3, 4)  # line 2 is in stock at BACK


def test_the_backorder_source_is_numbered_by_its_rank() -> None:
    sources = backordering(
        source("BACK", 0, inventory={}),
        source("A", 1, inventory={"X": 1}),
        max_splits=2,
    )
    assert planned(plan([line(1, "X"), line(2, "Y")], sources)) == [
        ("120-1", "BACK", [(2, D(1))]),
        ("120-2", "A", [(1, D(1))]),
    ]


def test_backorder_is_not_used_when_the_plan_fits() -> None:
    sources = backordering(source("A", 1), source("BACK", 9, inventory={}))
    result = plan([line(1, "X")], sources)
    assert planned(result) == [("120-1", "A", [(1, D(1))])]
    assert isinstance(result, Plan)
    assert result.backordered == ()


# -- the shipped policy, determinism, and what to read ---------------------------------------------


def test_the_default_flow_ships_by_region() -> None:
    shipped = load_flow(environ={}).fulfillment
    lines = [line(1, "X"), line(2, "Y")]
    assert [f[1] for f in planned(plan(lines, shipped, "US"))] == ["WH-EAST"]
    assert [f[1] for f in planned(plan(lines, shipped, "DE"))] == ["WH-EU"]
    assert [f[1] for f in planned(plan(lines, shipped, "JP"))] == ["DROPSHIP"]
    assert [f[1] for f in planned(plan(lines, shipped, None))] == ["DROPSHIP"]


def test_the_same_input_gives_the_same_plan() -> None:
    sources = backordering(
        source("A", 1, inventory="dataverse"),
        source("B", 1, inventory="dataverse"),
        source("C", 2, inventory={"X": 2}),
        source("BACK", 9, inventory={}),
        max_splits=2,
    )
    lines = [line(n, "XYZ"[n % 3], n % 4 + 1) for n in range(1, 12)]
    stock = {("A", "X"): D(4), ("B", "Y"): D(9), ("A", "Z"): D(2)}
    first = plan(lines, sources, stock=stock)
    reversed_stock = dict(reversed(list(stock.items())))
    for _ in range(5):
        assert plan(lines, sources, stock=reversed_stock) == first


@pytest.mark.parametrize("seed", range(40))
def test_every_plan_keeps_the_rules(seed: int) -> None:
    """Random orders and stock: every line planned once and whole, within max_splits, from a
    source with the stock unless backordered; hold names exactly the lines without stock."""
    rng = random.Random(seed)
    skus = ["A", "B", "C", "D"]
    names = [f"S{i}" for i in range(rng.randint(1, 4))]
    sources = [
        source(
            name,
            rng.randint(0, 3),
            rng.choice([(), ("US",), ("DE",)]),
            rng.choice(["dataverse", {s: rng.randint(0, 4) for s in rng.sample(skus, 2)}]),
        )
        for name in names
    ]
    backorder = rng.random() < 0.5
    the_policy = policy(
        *sources,
        max_splits=rng.randint(1, 3),
        when_unsourced="backorder" if backorder else "hold",
        backorder_source=names[-1] if backorder else None,
    )
    stock = {(n, s): D(rng.randint(0, 5)) for n in names for s in skus if rng.random() < 0.6}
    lines = [line(100 + i, rng.choice(skus), rng.randint(1, 3)) for i in range(rng.randint(1, 6))]

    result = plan(lines, the_policy, stock=stock)

    if isinstance(result, Unsourced):
        assert not backorder
        assert result.reason
        assert set(result.lines) <= {x.order_product_id for x in lines}
        return
    planned_lines = [x for f in result.fulfillments for x in f.lines]
    assert sorted(x.order_product_id for x in planned_lines) == [x.order_product_id for x in lines]
    assert {x.order_product_id: x.quantity for x in planned_lines} == {
        x.order_product_id: x.quantity for x in lines
    }
    assert len(result.fulfillments) <= the_policy.max_splits
    assert [f.key for f in result.fulfillments] == [
        f"120-{n}" for n in range(1, len(result.fulfillments) + 1)
    ]
    taken: dict[tuple[str, str], Decimal] = {}
    sku_of = {x.order_product_id: x.sku for x in lines}
    for fulfillment in result.fulfillments:
        src = the_policy.source(fulfillment.source)
        for x in fulfillment.lines:
            if x.order_product_id in result.backordered:
                assert fulfillment.source == the_policy.backorder_source
                continue
            sku = sku_of[x.order_product_id]
            assert sku is not None
            assert src.serves("US")
            key = (src.name, sku)
            taken[key] = taken.get(key, D(0)) + x.quantity
    for (name, sku), quantity in taken.items():
        inventory = the_policy.source(name).inventory
        if inventory == "dataverse":
            assert quantity <= stock.get((name, sku), D(0))
        elif isinstance(inventory, dict):
            assert quantity <= inventory.get(sku, D(0))


def test_inventory_skus_are_read_only_when_a_source_reads_dataverse() -> None:
    lines = [line(1, "X"), line(2, None), line(3, "Y", 0), line(4, "Z"), line(5, "X")]
    assert inventory_skus(policy(source("A"), source("B", inventory={"X": 1})), lines) == set()
    with_dataverse = policy(source("A"), source("B", inventory="dataverse"))
    assert inventory_skus(with_dataverse, lines) == {"X", "Z"}
    assert inventory_skus(with_dataverse, []) == set()
