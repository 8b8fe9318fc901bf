"""BigCommerce's published callback examples parse with our webhook models.

Every docs/webhooks/callbacks/data/*.json example of a scope we handle (orders, refunds,
transactions, shipments, customers, inventory) goes through `parse_envelope` and `parse_event`,
with the literal producer "stores/{store_hash}" replaced by a real hash. Examples that BigCommerce
published wrong are listed in DOCS_DEFECTS with what is wrong; their tests assert the defect, so
a corrected example makes the test fail and the entry can be dropped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import pytest

from shared.webhooks.events import parse_envelope, parse_event

EXAMPLES = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "specs"
    / "bigcommerce"
    / "docs"
    / "webhooks"
    / "callbacks"
    / "data"
)
OUR_SCOPES: Final = (
    "store_order_",
    "store_shipment_",
    "store_customer_",
    "store_product_inventory_",
    "store_sku_inventory_",
)
# file -> (the scope the example carries, why it is not the file's event)
DOCS_DEFECTS: Final = {
    "store_customer_address_updated.json": (
        "store/customer/address/update",
        "the scope lacks the final 'd'; BigCommerce's scope is store/customer/address/updated",
    ),
    "store_customer_deleted.json": (
        "store/customer/created",
        "copy of the created example: the scope says created",
    ),
    "store_customer_updated.json": (
        "store/customer/created",
        "copy of the created example: the scope says created",
    ),
}
# Customer scopes that exist but that the connector does not subscribe to.
NOT_SUBSCRIBED: Final = {"store/customer/payment/instrument/default/updated"}


def example_files() -> list[Path]:
    if not EXAMPLES.is_dir():
        return []
    return sorted(p for p in EXAMPLES.glob("*.json") if p.name.startswith(OUR_SCOPES))


def load(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8").replace("stores/{store_hash}", "stores/abc123")
    payload: dict[str, Any] = json.loads(text)
    return payload


def expected_scope(path: Path) -> str:
    """The scope a file is named for: store_order_statusUpdated -> store/order/statusUpdated."""
    return path.stem.replace("_", "/")


def test_the_examples_are_there() -> None:
    if not EXAMPLES.is_dir():
        pytest.skip(f"the BigCommerce docs are not beside the checkout ({EXAMPLES})")
    names = {p.name for p in example_files()}
    assert len(names) == 20
    assert {"store_order_created.json", "store_order_refund_created.json"} <= names
    assert {"store_shipment_created.json", "store_sku_inventory_updated.json"} <= names
    # No transaction example is published in data/ (only the YAML model without values).
    assert not any(n.startswith("store_order_transaction") for n in names)


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.stem)
def test_each_example_parses(path: Path) -> None:
    payload = load(path)
    envelope = parse_envelope(payload)
    assert envelope.store_hash == "abc123"
    event = parse_event(envelope)
    if path.name in DOCS_DEFECTS:
        scope, _why = DOCS_DEFECTS[path.name]
        assert envelope.scope == scope != expected_scope(path)
        # With the scope the file is named for, the same data is a valid event of that scope.
        corrected = parse_event(parse_envelope({**payload, "scope": expected_scope(path)}))
        assert corrected is not None
        assert corrected.entity_id == 32
        return
    assert envelope.scope == expected_scope(path)
    if envelope.scope in NOT_SUBSCRIBED:
        assert event is None
        return
    assert event is not None
    assert event.entity_id is not None
    assert event.entity_id > 0


def test_what_each_family_reads_from_the_examples() -> None:
    if not EXAMPLES.is_dir():
        pytest.skip(f"the BigCommerce docs are not beside the checkout ({EXAMPLES})")

    def event(name: str) -> Any:
        parsed = parse_event(parse_envelope(load(EXAMPLES / name)))
        assert parsed is not None
        return parsed

    status = event("store_order_statusUpdated.json")
    assert (status.kind.family, status.entity_id) == ("order", 250)
    assert (status.data.status.previous_status_id, status.data.status.new_status_id) == (0, 11)
    refund = event("store_order_refund_created.json")
    assert (refund.kind.family, refund.entity_id, refund.data.refund.refund_id) == (
        "refund",
        250,
        3,
    )
    shipment = event("store_shipment_created.json")
    assert (shipment.kind.family, shipment.entity_id) == ("shipment", 251)  # from orderId
    address = event("store_customer_address_created.json")
    assert (address.kind.entity, address.entity_id) == ("customer", 32)  # the customer, not 60
    inventory = event("store_sku_inventory_updated.json")
    assert (inventory.kind.family, inventory.kind.entity) == ("inventory", "sku")
