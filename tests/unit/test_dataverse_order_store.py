"""The operations behind `OrderWrites` (order_rows.py), the reference and product memories
(references.py), and the unit of work's request shape, without a network.

The change set a commit sends is read back from the request body with `parse_batch_request`; the
in-process Web API stand-in answers it, so the operations are also checked to be acceptable.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from local.dataverse.harness import HOST, TOKEN, dataverse_standin
from shared.bigcommerce.models import Order, OrderProduct
from shared.dataverse.auth import StaticTokenProvider
from shared.dataverse.batch import ParsedChangeSet, parse_batch_request
from shared.dataverse.client import DataverseClient
from shared.dataverse.order_rows import (
    close_operation,
    intake_operations,
    intake_unknowns,
    journal_key,
    update_order_operation,
)
from shared.dataverse.order_store import DataverseOrderStore
from shared.dataverse.references import (
    ProductCatalog,
    ReferenceIds,
    ReferenceNotFoundError,
    in_filter,
)
from shared.mapping import OrderIntake, load_mapping, map_order_intake, parse_mapping
from shared.mapping.rows import Reference
from shared.orchestration.records import Lifecycle

MAPPING = load_mapping(environ={})
STORE = "s1"


def order_intake(skus: tuple[str, ...] = ("OTL-1", "A/B"), *, account: bool = False) -> OrderIntake:
    order = Order.model_validate(
        {
            "id": 5,
            "customer_id": 0,
            "date_created": "Tue, 05 Mar 2024 21:40:11 +0000",
            "date_modified": "Wed, 06 Mar 2024 08:15:00 +0000",
            "status_id": 11,
            "status": "Awaiting Fulfillment",
            "subtotal_ex_tax": "1",
            "subtotal_inc_tax": "1",
            "total_ex_tax": "1",
            "total_inc_tax": "1",
            "currency_code": "USD",
            "default_currency_code": "USD",
            "billing_address": {"email": "g@example.com"},
        }
    )
    lines = [
        OrderProduct.model_validate(
            {
                "id": 50 + n,
                "order_id": 5,
                "product_id": n,
                "name": sku,
                "sku": sku,
                "quantity": 1,
                "price_ex_tax": "1",
                "price_inc_tax": "1",
                "total_ex_tax": "1",
                "total_inc_tax": "1",
                "total_tax": "0",
            }
        )
        for n, sku in enumerate(skus, 1)
    ]
    mapping = MAPPING
    if account:
        raw = MAPPING.model_dump()
        raw["customers"]["order_customer"] = "account"
        mapping = parse_mapping(raw)
    intake = map_order_intake(order, lines, store_hash=STORE, mapping=mapping)
    assert intake is not None
    return intake


def resolved(intake: OrderIntake, products: ProductCatalog) -> ReferenceIds:
    references = ReferenceIds()
    refs, _ = intake_unknowns(intake, references, products)
    for n, reference in enumerate(refs):
        references.read(reference, {"value": [{_primary(reference): str(uuid.UUID(int=n + 1))}]})
    return references


def _primary(reference: Reference) -> str:
    return {
        "pricelevel": "pricelevelid",
        "uom": "uomid",
        "transactioncurrency": "transactioncurrencyid",
    }[reference.table]


# -- references -------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_products_found_are_remembered_and_missing_ones_only_briefly() -> None:
    clock = Clock()
    catalog = ProductCatalog(negative_ttl=60, clock=clock)
    product_id = uuid.uuid4()

    found = catalog.read(
        ["otl-1", "NOPE"],
        [{"value": [{"productid": str(product_id), "productnumber": "OTL-1"}]}],
    )

    assert found == {"otl-1"}
    assert (catalog.exists("OTL-1"), catalog.id_of("Otl-1")) == (True, product_id)
    assert catalog.exists("nope") is False
    clock.now += 61
    assert catalog.exists("NOPE") is None  # asked again after the TTL
    assert catalog.exists("OTL-1") is True  # found ones stay


def test_product_queries_use_the_in_function_in_chunks() -> None:
    urls = ProductCatalog().requests([f"P-{n}" for n in range(250)] + ["p-0"])

    assert len(urls) == 3
    assert urls[0].startswith(
        "products?$select=productid,productnumber&$filter=Microsoft.Dynamics.CRM.In("
        "PropertyName='productnumber',PropertyValues=%5B'P-0','P-1',"
    )
    assert in_filter("name", ["O'Brien"]) == (
        "Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=['O''Brien'])"
    )


@pytest.mark.parametrize(("rows", "found"), [([], "no"), ([{}, {}], "more than one")])
def test_a_reference_row_must_exist_once(rows: list[dict[str, Any]], found: str) -> None:
    reference = Reference("pricelevel", {"name": "BigCommerce"}, by_key=False)
    ids = ReferenceIds()
    assert ids.request(reference) == (
        "pricelevels?$select=pricelevelid&$filter=(name%20eq%20'BigCommerce')&$top=2"
    )

    with pytest.raises(ReferenceNotFoundError, match=f"{found} pricelevel row with name="):
        ids.read(reference, {"value": rows})
    assert ids.get(reference) is None


# -- operations -------------------------------------------------------------------------------


def test_intake_binds_known_products_and_writes_the_others_in() -> None:
    intake = order_intake(("OTL-1", "A/B", "GONE"))
    products = ProductCatalog()
    odd_id = uuid.uuid4()
    products.read(
        ["OTL-1", "A/B", "GONE"],
        [
            {
                "value": [
                    {"productid": str(uuid.uuid4()), "productnumber": "OTL-1"},
                    {"productid": str(odd_id), "productnumber": "A/B"},
                ]
            }
        ],
    )
    refs, numbers = intake_unknowns(intake, ReferenceIds(), products)
    assert sorted(r.table for r in refs) == ["pricelevel", "transactioncurrency", "uom"]
    assert numbers == []

    contact, order, otl, odd, gone = intake_operations(intake, resolved(intake, products), products)

    assert contact.url.startswith("contacts(bciom_storehash='s1',bciom_customerkey=")
    assert order.url == "salesorders(bciom_storehash='s1',bciom_bcorderid=5)"
    assert order.body is not None
    assert order.body["customerid_contact@odata.bind"].startswith("/contacts(")
    assert order.body["pricelevelid@odata.bind"] == f"/pricelevels({uuid.UUID(int=1)})"
    assert "bciom_lifecycle" not in order.body  # an intake never resets the lifecycle
    assert otl.body is not None
    assert otl.body["productid@odata.bind"] == "/products(productnumber='OTL-1')"
    assert (otl.body["isproductoverridden"], otl.body["productdescription"]) == (False, None)
    assert odd.body is not None
    assert odd.body["productid@odata.bind"] == f"/products({odd_id})"  # "/" cannot be a key
    assert gone.body is not None
    assert gone.body["isproductoverridden"] is True
    assert gone.body["productdescription"] == "GONE (no Dataverse product)"
    assert (gone.body["productid"], gone.body["uomid"]) == (None, None)
    assert not any(k.startswith(("productid@", "uomid@")) for k in gone.body)
    assert gone.body["salesorderid@odata.bind"] == (
        "/salesorders(bciom_storehash='s1',bciom_bcorderid=5)"
    )


def test_an_order_for_the_default_account_binds_the_account() -> None:
    intake = order_intake(("OTL-1",), account=True)
    products = ProductCatalog()

    contact, account, order, _line = intake_operations(intake, resolved(intake, products), products)

    assert account.url == "accounts(bciom_storehash='s1',bciom_companykey='bigcommerce')"
    assert order.body is not None
    assert order.body["customerid_account@odata.bind"] == (
        "/accounts(bciom_storehash='s1',bciom_companykey='bigcommerce')"
    )
    assert contact.url.startswith("contacts(")


def test_update_order_writes_only_what_is_given_and_never_creates() -> None:
    assert update_order_operation(STORE, 5) is None
    held = update_order_operation(STORE, 5, lifecycle=Lifecycle.ON_HOLD, hold_reason="x" * 5000)
    cleared = update_order_operation(
        STORE, 5, clear_hold=True, bc_date_modified=datetime(2024, 1, 1, tzinfo=UTC)
    )

    assert held is not None
    assert cleared is not None
    assert held.headers == {"If-Match": "*"}
    assert held.body == {"bciom_lifecycle": "on_hold", "bciom_holdreason": "x" * 4000}
    assert cleared.body == {
        "bciom_holdreason": None,
        "bciom_bcdatemodified": datetime(2024, 1, 1, tzinfo=UTC),
    }
    with pytest.raises(ValueError, match="not both"):
        update_order_operation(STORE, 5, hold_reason="x", clear_hold=True)
    with pytest.raises(ValueError, match="timezone-aware"):
        update_order_operation(STORE, 5, bc_date_modified=datetime(2024, 1, 1))


def test_closing_is_an_unbound_action_with_an_orderclose_bound_by_key() -> None:
    fulfil = close_operation(STORE, 5, "fulfilled")
    cancel = close_operation(STORE, 5, "cancelled")

    assert (fulfil.method, fulfil.url, fulfil.is_idempotent) == ("POST", "FulfillSalesOrder", False)
    assert fulfil.body == {
        "OrderClose": {
            "@odata.type": "Microsoft.Dynamics.CRM.orderclose",
            "subject": "BigCommerce order 5 fulfilled",
            "salesorderid@odata.bind": "/salesorders(bciom_storehash='s1',bciom_bcorderid=5)",
        },
        "Status": 100001,
    }
    assert (cancel.url, cancel.body is not None and cancel.body["Status"]) == (
        "CancelSalesOrder",
        4,
    )


def test_journal_keys_are_addressable() -> None:
    assert journal_key("m-1.validate") == {"bciom_messageid": "m-1.validate"}
    assert journal_key("m:1/validate") == {"bciom_messageid": "m~3A1~2Fvalidate"}
    long = journal_key("x" * 200)["bciom_messageid"]
    assert isinstance(long, str)
    assert len(long) <= 128
    assert long == journal_key("x" * 200)["bciom_messageid"]


# -- the unit of work -------------------------------------------------------------------------


@dataclass
class Recorder(httpx.AsyncBaseTransport):
    inner: httpx.AsyncBaseTransport
    requests: list[httpx.Request] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


@pytest.fixture
async def recorded() -> AsyncIterator[tuple[DataverseOrderStore, Recorder]]:
    async with dataverse_standin(provisioned=True) as dv:
        recorder = Recorder(httpx.ASGITransport(app=dv.app))
        client = DataverseClient(HOST, StaticTokenProvider(TOKEN), transport=recorder)
        yield DataverseOrderStore(client), recorder
        await client.aclose()


async def test_a_commit_sends_one_change_set_with_the_close_last(
    recorded: tuple[DataverseOrderStore, Recorder],
) -> None:
    store, recorder = recorded
    await store.existing_products(["OTL-1"])
    setup = store.writes()
    setup.intake(order_intake(("OTL-1",)))
    await setup.commit()
    recorder.requests.clear()

    writes = store.writes()
    writes.close_order(STORE, 5, "fulfilled")
    writes.update_order(STORE, 5, lifecycle=Lifecycle.COMPLETED)
    writes.update_line(STORE, 51, quantity_shipped=Decimal(1))
    assert writes.pending == 3
    await writes.commit()

    [request] = recorder.requests
    [change_set] = parse_batch_request(request.content, request.headers["content-type"])
    assert isinstance(change_set, ParsedChangeSet)
    assert [
        (op.method, op.url.rsplit("/", 1)[-1], op.content_id) for op in change_set.operations
    ] == [
        ("PATCH", "salesorders(bciom_storehash='s1',bciom_bcorderid=5)", "1"),
        ("PATCH", "salesorderdetails(bciom_storehash='s1',bciom_bcorderproductid=51)", "2"),
        ("POST", "FulfillSalesOrder", "3"),
    ]
    assert writes.pending == 0
    record = await store.load(STORE, 5)
    assert record is not None
    assert (record.statecode, record.lifecycle) == (3, Lifecycle.COMPLETED)
