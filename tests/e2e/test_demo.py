"""`make demo` is an example that runs as a test: the whole lifecycle must pass on the embedded
default, and the judge must see what a broken run leaves behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local.demo.judge import BigCommerceSide, DataverseSide, judge
from local.stack.host_process import REPO, clean_environ, free_port
from shared.bigcommerce.client import OrderBundle
from shared.bigcommerce.models import Order, OrderProduct, Refund, Shipment


@pytest.mark.e2e
def test_the_demo_runs_the_lifecycle_and_finds_nothing_wrong(tmp_path: Path) -> None:
    report = tmp_path / "demo-report.json"
    env = {
        **clean_environ(),
        "LOCAL_FUNCTIONS_PORT": str(free_port()),
        "LOCAL_BIGCOMMERCE_PORT": str(free_port()),
        "LOCAL_DATAVERSE_PORT": str(free_port()),
        "LOCAL_STATE_DIR": str(tmp_path / "state"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "local.demo", "--orders", "8", "--report", str(report)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(report.read_text())
    assert figures["orders"] == 8
    assert figures["synced"] == 8
    for name in (
        "lost",
        "duplicate_records",
        "duplicate_shipments",
        "duplicate_refunds",
        "state_mismatches",
    ):
        assert figures[name] == 0, name
    assert figures["problems"] == []
    assert figures["shipments"] > 0
    assert figures["replay"]["released"] == figures["replay"]["held_for_missing_product"]
    assert figures["bigcommerce_requests_per_order"] > 0
    assert figures["dataverse_requests_per_order"] > 0
    assert figures["latency_ms"]["p50"] is not None
    assert "PASS" in result.stdout


# -- the judge on a broken run -------------------------------------------------------------------


def _bundle(order_id: int, status_id: int, lines: list[tuple[int, int, int]]) -> OrderBundle:
    """An order with lines (id, quantity, quantity shipped), all to shipping address 1."""
    order = Order.model_validate(
        {
            "id": order_id,
            "status_id": status_id,
            "date_created": "2026-01-01T00:00:00+00:00",
            "date_modified": "2026-01-01T00:00:00+00:00",
            "subtotal_ex_tax": "10",
            "subtotal_inc_tax": "10",
            "total_ex_tax": "10",
            "total_inc_tax": "10",
        }
    )
    products = [
        OrderProduct.model_validate(
            {
                "id": line_id,
                "order_id": order_id,
                "product_id": 1,
                "order_address_id": 1,
                "quantity": quantity,
                "quantity_shipped": shipped,
                "price_ex_tax": "5",
                "price_inc_tax": "5",
                "total_ex_tax": "5",
                "total_inc_tax": "5",
            }
        )
        for line_id, quantity, shipped in lines
    ]
    return OrderBundle(order, products, [])


def _shipment(shipment_id: int, order_id: int) -> Shipment:
    return Shipment.model_validate(
        {"id": shipment_id, "order_id": order_id, "order_address_id": 1, "items": []}
    )


def _salesorder(order_id: int, lifecycle: str, statecode: int = 0) -> dict[str, Any]:
    return {
        "salesorderid": f"so-{order_id}",
        "bciom_bcorderid": order_id,
        "bciom_lifecycle": lifecycle,
        "bciom_holdreason": None,
        "statecode": statecode,
    }


def _line(order_id: int, line_id: int, quantity: int, shipped: int) -> dict[str, Any]:
    return {
        "bciom_bcorderid": order_id,
        "bciom_bcorderproductid": line_id,
        "quantity": quantity,
        "quantityshipped": shipped,
    }


def test_the_judge_counts_what_a_broken_run_leaves() -> None:
    refund = Refund.model_validate({"id": 9, "order_id": 1, "total_amount": "5"})
    bc = BigCommerceSide(
        bundles={
            1: _bundle(1, 10, [(11, 2, 2)]),  # completed, one shipment
            2: _bundle(2, 2, [(21, 1, 1)]),  # shipped in BigCommerce, still released in DV
            3: _bundle(3, 11, [(31, 1, 0)]),  # never reached Dataverse
        },
        shipments={1: [_shipment(100, 1), _shipment(101, 1)], 2: [_shipment(200, 2)]},
        refunds={1: [refund]},
    )
    dv = DataverseSide(
        salesorders=[_salesorder(1, "completed", 3), _salesorder(2, "released")],
        lines=[_line(1, 11, 2, 2), _line(1, 11, 2, 2), _line(2, 21, 1, 0)],
        fulfillments=[
            {
                "msdyn_fulfillmentorderid": "fo-1",
                "bciom_fulfillmentkey": "1-1",
                "bciom_bcorderid": 1,
                "bciom_bcshipmentid": 100,
            },
            {
                "msdyn_fulfillmentorderid": "fo-2",
                "bciom_fulfillmentkey": "2-1",
                "bciom_bcorderid": 2,
                "bciom_bcshipmentid": 200,
            },
        ],
        fulfillment_lines=[
            {"_msdyn_fulfillmentid_value": "fo-1", "bciom_bcorderproductid": 11},
            {"_msdyn_fulfillmentid_value": "fo-2", "bciom_bcorderproductid": 21},
        ],
        refunds=[
            {"bciom_bcorderid": 1, "bciom_refundid": 9},
            {"bciom_bcorderid": 1, "bciom_refundid": 9},
        ],
    )
    verdict = judge(bc, dv)
    assert verdict.figures["lost"] == 1
    assert verdict.figures["lost_orders"] == [3]
    assert verdict.figures["duplicate_records"] == 2  # a line and a refund written twice
    assert verdict.figures["duplicate_shipments"] == 1  # order 1: two shipments, one accounted
    assert verdict.figures["duplicate_refunds"] == 1
    assert {(m["order"], m["what"]) for m in verdict.mismatches} == {
        (2, "state"),
        (2, "line 21: shipped"),
    }


def test_the_judge_counts_a_shipment_made_twice_even_when_dataverse_accounts_for_two() -> None:
    twice = [
        Shipment.model_validate(
            {
                "id": shipment_id,
                "order_id": 4,
                "order_address_id": 1,
                "tracking_number": "1Z1",
                "items": [{"order_product_id": 41, "product_id": 1, "quantity": 1}],
            }
        )
        for shipment_id in (400, 401)
    ]
    bc = BigCommerceSide(bundles={4: _bundle(4, 2, [(41, 2, 2)])}, shipments={4: twice})
    fulfillments = [
        {
            "msdyn_fulfillmentorderid": f"fo-{n}",
            "bciom_fulfillmentkey": f"4-{n}",
            "bciom_bcorderid": 4,
            "bciom_bcshipmentid": shipment_id,
        }
        for n, shipment_id in ((1, 400), (2, 401))
    ]
    dv = DataverseSide(
        salesorders=[_salesorder(4, "shipped")],
        lines=[_line(4, 41, 2, 2)],
        fulfillments=fulfillments,
        fulfillment_lines=[
            {"_msdyn_fulfillmentid_value": f"fo-{n}", "bciom_bcorderproductid": 41} for n in (1, 2)
        ],
        refunds=[],
    )
    assert judge(bc, dv).figures["duplicate_shipments"] == 1
