"""`DataverseOrderStore`, the lifecycle's Dataverse adapter, against the Web API stand-in running as
a real process (`python -m local.dataverse`, provisioned), over loopback HTTP.

What reached the stand-in is read from its own request log (`GET /__sim/requests`); rows are read
back with the plain client, never through the adapter alone:
- a missing order loads as None, in one request;
- an intake writes a line whose product Dataverse lacks as a write-in line, and once the product
  exists the next intake binds it; price list, unit and currency are bound by id;
- fulfillment orders and their lines, a refund recorded twice, the close actions (and the 400 of
  closing twice, which rolls back the whole change set), idempotent journal entries, inventory;
- every commit with warm caches is ONE `$batch` request; nothing staged sends nothing.

The last section checks the stand-in features the adapter relies on, in-process: the
`Microsoft.Dynamics.CRM.In` query function, the FulfillSalesOrder / CancelSalesOrder actions and
the reference rows of a provisioned environment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import httpx
import pytest

from local.dataverse.harness import HOST, TOKEN, Harness, dataverse_standin
from shared.bigcommerce.models import Order, OrderProduct, OrderShippingAddress, Refund
from shared.dataverse.auth import StaticTokenProvider
from shared.dataverse.client import DataverseClient
from shared.dataverse.errors import BadRequestError, ConcurrencyError, NotFoundError
from shared.dataverse.order_store import DataverseOrderStore, DataverseOrderWrites
from shared.dataverse.references import ReferenceNotFoundError
from shared.mapping import OrderIntake, load_mapping, map_order_intake
from shared.orchestration.failures import classify
from shared.orchestration.ports import (
    JournalEntry,
    OrderStore,
    OrderWrites,
    PlannedFulfillment,
    PlannedLine,
)
from shared.orchestration.records import (
    FulfillmentLineRecord,
    Lifecycle,
    LineRecord,
    RefundRecord,
)
from tests.support.dataverse_standin import (
    IDENTITY,
    StandinAdmin,
    StandinProcess,
)

STORE: Final = "storeos1"
MAPPING: Final = load_mapping(environ={})  # the shipped default_mapping.yaml
MODIFIED: Final = datetime(2024, 3, 6, 8, 15, tzinfo=UTC)
LINES: Final = {  # order product id offset -> (sku, quantity)
    1: ("OTL-1", 2),
    2: ("MOSS-PACK", 1),
}


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
async def reader(standin: StandinProcess, admin: StandinAdmin) -> AsyncIterator[DataverseClient]:
    dv = standin.client()
    yield dv
    await dv.aclose()


@pytest.fixture
def store(client: DataverseClient) -> DataverseOrderStore:
    return DataverseOrderStore(client)


def test_the_adapter_satisfies_the_ports(store: DataverseOrderStore) -> None:
    port: OrderStore = store
    writes: OrderWrites = port.writes()
    assert isinstance(writes, DataverseOrderWrites)
    assert writes.pending == 0


# -- BigCommerce orders -----------------------------------------------------------------------


def bc_order(order_id: int) -> Order:
    return Order.model_validate(
        {
            "id": order_id,
            "customer_id": 11,
            "date_created": "Tue, 05 Mar 2024 21:40:11 +0000",
            "date_modified": "Wed, 06 Mar 2024 08:15:00 +0000",
            "status_id": 11,
            "status": "Awaiting Fulfillment",
            "channel_id": 1,
            "subtotal_ex_tax": "55.0000",
            "subtotal_inc_tax": "59.4000",
            "total_ex_tax": "55.0000",
            "total_inc_tax": "59.4000",
            "total_tax": "4.4000",
            "currency_code": "USD",
            "default_currency_code": "USD",
            "payment_method": "Credit Card",
            "billing_address": {
                "first_name": "Jane",
                "last_name": "Doe",
                "street_1": "1 Main St",
                "city": "Austin",
                "zip": "78701",
                "country": "United States",
                "country_iso2": "US",
                "email": "jane.doe@example.com",
            },
        }
    )


def bc_lines(order_id: int) -> list[OrderProduct]:
    return [
        OrderProduct.model_validate(
            {
                "id": order_id * 10 + offset,
                "order_id": order_id,
                "order_address_id": 9,
                "product_id": 70 + offset,
                "name": sku,
                "sku": sku,
                "quantity": quantity,
                "price_ex_tax": "25.0000",
                "price_inc_tax": "27.0000",
                "total_ex_tax": f"{25 * quantity}.0000",
                "total_inc_tax": f"{27 * quantity}.0000",
                "total_tax": f"{2 * quantity}.0000",
            }
        )
        for offset, (sku, quantity) in LINES.items()
    ]


def intake_of(order_id: int) -> OrderIntake:
    shipping = OrderShippingAddress.model_validate(
        {"id": 9, "order_id": order_id, "shipping_method": "Flat Rate"}
    )
    intake = map_order_intake(
        bc_order(order_id), bc_lines(order_id), [shipping], store_hash=STORE, mapping=MAPPING
    )
    assert intake is not None
    return intake


def product_line(order_id: int) -> int:
    return order_id * 10 + 1  # OTL-1


def moss_line(order_id: int) -> int:
    return order_id * 10 + 2  # MOSS-PACK


async def create_product(client: DataverseClient, number: str) -> str:
    written = await client.upsert(
        "products", {"productnumber": number}, {"name": number}, select=["productid"]
    )
    assert written.row is not None
    return str(written.row["productid"])


async def reference_id(client: DataverseClient, entity_set: str, column: str, value: str) -> str:
    page = await client.query(
        entity_set, select=[column], filter=f"{column} eq '{value}'", annotations=None
    )
    [row] = page.rows
    primary = {"pricelevels": "pricelevelid", "uoms": "uomid"}.get(
        entity_set, "transactioncurrencyid"
    )
    return str(row[primary])


async def order_lines(client: DataverseClient, order_id: int) -> dict[int, dict[str, Any]]:
    page = await client.query(
        "salesorderdetails",
        select=[
            "bciom_bcorderproductid",
            "isproductoverridden",
            "productdescription",
            "_productid_value",
            "_uomid_value",
            "_salesorderid_value",
        ],
        filter=f"bciom_storehash eq '{STORE}' and bciom_bcorderid eq {order_id}",
    )
    return {int(row["bciom_bcorderproductid"]): row for row in page.rows}


async def commit_in_one_request(admin: StandinAdmin, writes: OrderWrites) -> None:
    """Commits and proves from the stand-in's log that it took one `$batch` request."""
    await admin.clear_requests()
    await writes.commit()
    log = await admin.requests()
    assert [(r.method, r.operation, r.status, r.identity) for r in log] == [
        ("POST", "$batch", 200, IDENTITY)
    ]


async def received(store: DataverseOrderStore, order_id: int) -> None:
    """An order taken in with every product known; the store's caches are warm afterwards."""
    await store.existing_products([sku for sku, _ in LINES.values()])
    writes = store.writes()
    writes.intake(intake_of(order_id))
    await writes.commit()


# -- load -------------------------------------------------------------------------------------


async def test_loading_a_missing_order_is_none_in_one_request(
    admin: StandinAdmin, store: DataverseOrderStore
) -> None:
    await admin.clear_requests()

    assert await store.load(STORE, 404) is None

    log = await admin.requests()
    assert [(r.method, r.operation, r.status) for r in log] == [("POST", "$batch", 200)]


async def test_nothing_staged_sends_nothing(
    admin: StandinAdmin, store: DataverseOrderStore
) -> None:
    writes = store.writes()
    writes.update_order(STORE, 1)  # no column given: nothing to write
    writes.update_line(STORE, 11)
    writes.update_fulfillment(STORE, "1-1")
    await admin.clear_requests()

    assert writes.pending == 0
    await writes.commit()

    assert await admin.requests() == []


# -- intake -----------------------------------------------------------------------------------


async def test_a_line_without_a_dataverse_product_is_written_in_and_bound_once_it_exists(
    admin: StandinAdmin, client: DataverseClient, reader: DataverseClient
) -> None:
    store = DataverseOrderStore(client)
    otl = await create_product(reader, "OTL-1")
    order_id = 200

    assert await store.existing_products(["OTL-1", "MOSS-PACK"]) == {"OTL-1"}
    writes = store.writes()
    writes.intake(intake_of(order_id))
    assert writes.pending == 4  # contact, salesorder, two lines
    await admin.clear_requests()
    await writes.commit()

    # Cold: one query resolved price list, unit and currency, then one change set.
    log = await admin.requests()
    assert [(r.method, r.operation) for r in log] == [("POST", "$batch"), ("POST", "$batch")]
    assert writes.pending == 0
    lines = await order_lines(reader, order_id)
    uom = await reference_id(reader, "uoms", "name", "Primary Unit")
    assert lines[product_line(order_id)]["isproductoverridden"] is False
    assert lines[product_line(order_id)]["_productid_value"] == otl
    assert lines[product_line(order_id)]["_uomid_value"] == uom
    assert lines[product_line(order_id)]["productdescription"] is None
    moss = lines[moss_line(order_id)]
    assert moss["isproductoverridden"] is True
    assert moss["productdescription"] == "MOSS-PACK (no Dataverse product)"
    assert (moss["_productid_value"], moss["_uomid_value"]) == (None, None)
    order = await reader.retrieve(
        "salesorders",
        {"bciom_storehash": STORE, "bciom_bcorderid": order_id},
        select=["_pricelevelid_value", "_transactioncurrencyid_value", "_customerid_value"],
    )
    assert order.row is not None
    assert order.row["_pricelevelid_value"] == await reference_id(
        reader, "pricelevels", "name", "BigCommerce"
    )
    assert order.row["_transactioncurrencyid_value"] == await reference_id(
        reader, "transactioncurrencies", "isocurrencycode", "USD"
    )
    assert order.row["_customerid_value"] is not None

    record = await store.load(STORE, order_id)
    assert record is not None
    assert (record.lifecycle, record.statecode, record.statuscode) == (Lifecycle.RECEIVED, 0, 1)
    assert record.lines == (
        LineRecord(product_line(order_id), "OTL-1", Decimal(2)),
        LineRecord(moss_line(order_id), "MOSS-PACK", Decimal(1)),
    )
    assert record.bc_status_id == 11
    assert record.bc_date_modified == MODIFIED

    # The product is created; the next intake binds the line to it, in one request.
    moss_id = await create_product(reader, "MOSS-PACK")
    assert await store.existing_products(["OTL-1", "MOSS-PACK"]) == {"OTL-1", "MOSS-PACK"}
    again = store.writes()
    again.intake(intake_of(order_id))
    await commit_in_one_request(admin, again)

    bound = (await order_lines(reader, order_id))[moss_line(order_id)]
    assert bound["isproductoverridden"] is False
    assert bound["productdescription"] is None
    assert (bound["_productid_value"], bound["_uomid_value"]) == (moss_id, uom)
    assert await admin.row_counts("salesorder", "salesorderdetail", "contact") == {
        "salesorder": 1,
        "salesorderdetail": 2,
        "contact": 1,
    }


async def test_a_commit_looks_up_products_nobody_asked_about(
    admin: StandinAdmin, store: DataverseOrderStore, reader: DataverseClient
) -> None:
    await create_product(reader, "OTL-1")
    await create_product(reader, "MOSS-PACK")
    writes = store.writes()
    writes.intake(intake_of(210))  # existing_products was not called

    await writes.commit()

    lines = await order_lines(reader, 210)
    assert [row["isproductoverridden"] for row in lines.values()] == [False, False]


async def test_a_missing_price_list_fails_the_commit_before_writing(
    admin: StandinAdmin, store: DataverseOrderStore, reader: DataverseClient
) -> None:
    page = await reader.query("pricelevels", select=["pricelevelid"])
    for row in page.rows:
        await reader.request("DELETE", f"pricelevels({row['pricelevelid']})")
    writes = store.writes()
    writes.intake(intake_of(220))

    with pytest.raises(ReferenceNotFoundError, match="no pricelevel row with name='BigCommerce'"):
        await writes.commit()

    assert (await admin.row_counts("salesorder"))["salesorder"] == 0
    assert writes.pending == 4  # kept: the unit may be committed again


# -- fulfillment orders, lines, refunds, closing ----------------------------------------------


async def test_fulfillment_orders_are_written_with_their_lines_and_load_back(
    admin: StandinAdmin, store: DataverseOrderStore, reader: DataverseClient
) -> None:
    await received(store, 300)
    plans = [
        PlannedFulfillment("300-1", "WH-EAST", (PlannedLine(product_line(300), Decimal(2)),)),
        PlannedFulfillment("300-2", "DROPSHIP", (PlannedLine(moss_line(300), Decimal(1)),)),
    ]
    writes = store.writes()
    writes.create_fulfillments(STORE, 300, plans)
    writes.update_order(STORE, 300, lifecycle=Lifecycle.RELEASED, bc_status_id=11)
    writes.journal(journal("m1:choose_source", 300))
    assert writes.pending == 6

    await commit_in_one_request(admin, writes)

    record = await store.load(STORE, 300)
    assert record is not None
    assert record.lifecycle is Lifecycle.RELEASED
    assert [(f.key, f.source, f.open) for f in record.fulfillments] == [
        ("300-1", "WH-EAST", True),
        ("300-2", "DROPSHIP", True),
    ]
    assert record.fulfillments[0].lines == (
        FulfillmentLineRecord(f"300-1-{product_line(300)}", product_line(300), Decimal(2)),
    )
    header = await reader.retrieve(
        "msdyn_fulfillmentorders",
        {"bciom_storehash": STORE, "bciom_fulfillmentkey": "300-1"},
        select=["msdyn_name", "bciom_bcorderid", "_bciom_salesorder_value"],
    )
    assert header.row is not None
    assert (header.row["msdyn_name"], header.row["bciom_bcorderid"]) == ("300-1", 300)
    assert header.row["_bciom_salesorder_value"] == record.id

    # IOM marks one shipped; writing the plans again does not reopen it.
    await reader.update(
        "msdyn_fulfillmentorders",
        {"bciom_storehash": STORE, "bciom_fulfillmentkey": "300-1"},
        {"bciom_shipped": True, "bciom_trackingnumber": "1Z999"},
    )
    again = store.writes()
    again.create_fulfillments(STORE, 300, plans)
    again.update_fulfillment(STORE, "300-1", bc_shipment_id=77)
    again.update_fulfillment(STORE, "300-2", cancelled=True)
    again.update_line(STORE, product_line(300), quantity_shipped=Decimal(2))
    await commit_in_one_request(admin, again)

    reloaded = await store.load(STORE, 300)
    assert reloaded is not None
    shipped, dropped = reloaded.fulfillments
    assert (shipped.shipped, shipped.bc_shipment_id, shipped.tracking_number) == (True, 77, "1Z999")
    assert not shipped.awaiting_shipment_sync
    assert (dropped.cancelled, dropped.open) == (True, False)
    line = reloaded.line(product_line(300))
    assert line is not None
    assert (line.quantity_shipped, line.open_quantity) == (Decimal(2), Decimal(0))
    assert await admin.row_counts("msdyn_fulfillmentorder", "msdyn_fulfillmentorderdetail") == {
        "msdyn_fulfillmentorder": 2,
        "msdyn_fulfillmentorderdetail": 2,
    }


def refund(order_id: int) -> Refund:
    return Refund.model_validate(
        {
            "id": 41,
            "order_id": order_id,
            "created": "2024-03-07T10:00:00+00:00",
            "reason": "damaged in transit",
            "total_amount": 32.4,
            "total_tax": 2.4,
            "items": [
                {
                    "item_type": "PRODUCT",
                    "item_id": product_line(order_id),
                    "quantity": 1,
                    "requested_amount": 27.0,
                },
                {"item_type": "SHIPPING", "item_id": 9, "requested_amount": 5.4},
            ],
        }
    )


async def test_a_refund_recorded_twice_is_one_refund_with_its_lines(
    admin: StandinAdmin, store: DataverseOrderStore, reader: DataverseClient
) -> None:
    await received(store, 400)
    for _ in range(2):
        writes = store.writes()
        writes.record_refund(STORE, 400, refund(400))
        await commit_in_one_request(admin, writes)

    assert await admin.row_counts("bciom_orderrefund", "bciom_orderrefundline") == {
        "bciom_orderrefund": 1,
        "bciom_orderrefundline": 2,
    }
    record = await store.load(STORE, 400)
    assert record is not None
    assert record.refunds == (RefundRecord(41, Decimal("32.4")),)
    page = await reader.query(
        "bciom_orderrefundlines",
        select=["bciom_refundlinekey", "bciom_amount", "_bciom_salesorderdetail_value"],
        orderby="bciom_refundlinekey",
    )
    detail = await reader.retrieve(
        "salesorderdetails",
        {"bciom_storehash": STORE, "bciom_bcorderproductid": product_line(400)},
        select=["salesorderdetailid"],
    )
    assert detail.row is not None
    assert [
        (r["bciom_refundlinekey"], r["bciom_amount"], r["_bciom_salesorderdetail_value"])
        for r in page.rows
    ] == [
        (f"41-PRODUCT-{product_line(400)}", 27, detail.row["salesorderdetailid"]),
        ("41-SHIPPING-9", 5.4, None),
    ]


async def test_closing_an_order_fulfilled_and_again_refused_as_a_whole(
    admin: StandinAdmin, store: DataverseOrderStore
) -> None:
    await received(store, 500)
    writes = store.writes()
    writes.close_order(STORE, 500, "fulfilled")  # staged first, sent last
    writes.update_order(STORE, 500, lifecycle=Lifecycle.COMPLETED)
    await commit_in_one_request(admin, writes)

    record = await store.load(STORE, 500)
    assert record is not None
    assert (record.statecode, record.statuscode, record.lifecycle) == (
        3,
        100001,
        Lifecycle.COMPLETED,
    )

    # Closed meanwhile (as by another run of the same order): refused as a whole, and said so
    # as a conflict the next run resolves by reading the closed order, not as a bad request.
    twice = store.writes()
    twice.journal(journal("m2:complete", 500))
    twice.update_order(STORE, 500, lifecycle=Lifecycle.COMPLETED)
    twice.close_order(STORE, 500, "fulfilled")
    with pytest.raises(ConcurrencyError, match="closed meanwhile") as refused:
        await twice.commit()
    assert isinstance(refused.value.__cause__, BadRequestError)
    assert "already fulfilled" in str(refused.value.__cause__)
    assert classify(refused.value).kind == "transient"
    assert (await admin.row_counts("bciom_orderjournal"))["bciom_orderjournal"] == 0


async def test_commits_are_fenced_by_the_salesorders_version(
    admin: StandinAdmin, store: DataverseOrderStore
) -> None:
    await received(store, 520)
    record = await store.load(STORE, 520)
    assert record is not None
    assert record.etag is not None
    first, stale = store.writes(), store.writes()  # two runs that read the same version
    for writes in (first, stale):
        writes.guard(STORE, 520, record.etag)

    first.update_order(STORE, 520, lifecycle=Lifecycle.RELEASED)
    await commit_in_one_request(admin, first)
    assert first.version not in (None, record.etag)
    first.update_order(STORE, 520, hold_reason="second commit of the same run")
    await first.commit()  # guarded by the version its first commit left

    stale.journal(journal("m9:validate", 520))
    stale.update_order(STORE, 520, lifecycle=Lifecycle.ON_HOLD, hold_reason="stale")
    with pytest.raises(ConcurrencyError):
        await stale.commit()
    after = await store.load(STORE, 520)
    assert after is not None
    assert (after.lifecycle, after.hold_reason) == (
        Lifecycle.RELEASED,
        "second commit of the same run",
    )
    assert after.etag == first.version
    assert (await admin.row_counts("bciom_orderjournal"))["bciom_orderjournal"] == 0
    failure = store.writes()  # what the failed run records: journal entries, not fenced
    failure.guard(STORE, 520, stale.version)
    failure.journal(journal("m9:retry", 520))
    await failure.commit()
    assert (await admin.row_counts("bciom_orderjournal"))["bciom_orderjournal"] == 1

    first.update_order(STORE, 520, lifecycle=Lifecycle.COMPLETED)
    first.close_order(STORE, 520, "fulfilled")
    await first.commit()
    assert first.version is None  # a closed salesorder is read-only: nothing guards on it


async def test_a_run_that_found_no_salesorder_creates_it_only_if_still_missing(
    admin: StandinAdmin, store: DataverseOrderStore
) -> None:
    await store.existing_products([sku for sku, _ in LINES.values()])
    late = store.writes()
    late.guard(STORE, 530, None)  # it read no salesorder
    await received(store, 530)  # another run took the order in meanwhile
    record = await store.load(STORE, 530)
    assert record is not None
    done = store.writes()
    done.guard(STORE, 530, record.etag)
    done.update_order(STORE, 530, lifecycle=Lifecycle.RELEASED)
    await done.commit()

    late.intake(intake_of(530))
    late.update_order(STORE, 530, lifecycle=Lifecycle.RECEIVED)
    with pytest.raises(ConcurrencyError, match="created meanwhile"):
        await late.commit()
    after = await store.load(STORE, 530)
    assert after is not None
    assert after.lifecycle is Lifecycle.RELEASED


async def test_cancelling_an_order(admin: StandinAdmin, store: DataverseOrderStore) -> None:
    await received(store, 510)
    writes = store.writes()
    writes.update_order(STORE, 510, lifecycle=Lifecycle.CANCELLED, hold_reason="cancelled")
    writes.close_order(STORE, 510, "cancelled")
    await commit_in_one_request(admin, writes)

    record = await store.load(STORE, 510)
    assert record is not None
    assert (record.statecode, record.statuscode) == (2, 4)
    assert (record.lifecycle, record.hold_reason) == (Lifecycle.CANCELLED, "cancelled")


async def test_an_update_of_a_missing_order_fails_the_whole_change_set(
    admin: StandinAdmin, store: DataverseOrderStore
) -> None:
    writes = store.writes()
    writes.journal(journal("m3:validate", 600))
    writes.update_order(STORE, 600, lifecycle=Lifecycle.ON_HOLD, hold_reason="no products")

    with pytest.raises(NotFoundError):
        await writes.commit()

    assert await admin.row_counts("salesorder", "bciom_orderjournal") == {
        "salesorder": 0,
        "bciom_orderjournal": 0,
    }


# -- journal, inventory -----------------------------------------------------------------------


def journal(entry_id: str, order_id: int, outcome: str = "ok") -> JournalEntry:
    return JournalEntry(
        entry_id=entry_id,
        store_hash=STORE,
        order_id=order_id,
        kind="step",
        name=entry_id.split(":")[-1],
        outcome=outcome,
        occurred_on=MODIFIED,
        step=entry_id.split(":")[-1],
        duration_ms=12,
        correlation_id="corr-1",
        details="x" * 20_000,
    )


async def test_journal_entries_are_idempotent_and_need_no_salesorder(
    admin: StandinAdmin, store: DataverseOrderStore, reader: DataverseClient
) -> None:
    for outcome in ("retry", "ok"):
        writes = store.writes()
        writes.journal(journal("msg-7:validate", 700, outcome))
        writes.journal(journal("msg-7:choose_source", 700, outcome))
        await commit_in_one_request(admin, writes)

    page = await reader.query(
        "bciom_orderjournals",
        select=["bciom_messageid", "bciom_outcome", "bciom_bcorderid", "bciom_details"],
        orderby="bciom_messageid",
    )
    assert [
        (r["bciom_messageid"], r["bciom_outcome"], r["bciom_bcorderid"]) for r in page.rows
    ] == [
        ("msg-7~3Achoose_source", "ok", 700),
        ("msg-7~3Avalidate", "ok", 700),
    ]
    assert {len(r["bciom_details"]) for r in page.rows} == {10_000}
    assert await store.load(STORE, 700) is None


async def test_inventory_by_source_and_sku(
    admin: StandinAdmin, store: DataverseOrderStore, reader: DataverseClient
) -> None:
    for source, sku, available in (
        ("WH-EAST", "OTL-1", 5),
        ("WH-EU", "otl-1", 0),
        ("WH-EAST", "X", 9),
    ):
        await reader.upsert(
            "bciom_inventorylevels",
            {"bciom_source": source, "bciom_sku": sku},
            {"bciom_name": f"{source} {sku}", "bciom_available": available},
        )
    await admin.clear_requests()

    levels = await store.inventory({"OTL-1", "MOSS-PACK"})

    assert levels == {("WH-EAST", "OTL-1"): Decimal(5), ("WH-EU", "OTL-1"): Decimal(0)}
    assert len(await admin.requests()) == 1


async def test_existing_products_remembers_found_products_only(
    admin: StandinAdmin, store: DataverseOrderStore, reader: DataverseClient
) -> None:
    await create_product(reader, "OTL-1")
    assert await store.existing_products(["otl-1", "NOPE"]) == {"otl-1"}
    await admin.clear_requests()

    assert await store.existing_products(["OTL-1"]) == {"OTL-1"}
    assert await admin.requests() == []
    assert await store.existing_products(["OTL-1", "NOPE"]) == {"OTL-1"}
    assert len(await admin.requests()) == 1  # the missing one is asked again


# -- the stand-in features the adapter relies on (in-process) --------------------------------


@pytest.fixture
async def dv() -> AsyncIterator[Harness]:
    async with dataverse_standin(provisioned=True) as harness:
        yield harness


async def test_standin_in_query_function_matches_any_of_the_values(dv: Harness) -> None:
    for number in ("A-1", "b'2", "C-3"):
        assert (await dv.api.post("products", json={"productnumber": number})).status_code == 204

    found = await dv.api.get(
        "products?$select=productnumber&$filter=Microsoft.Dynamics.CRM.In("
        "PropertyName='productnumber',PropertyValues=['a-1','b''2','Z'])"
    )
    excluded = await dv.api.get(
        "products?$select=productnumber&$filter=Microsoft.Dynamics.CRM.NotIn("
        "PropertyName='productnumber',PropertyValues=[\"A-1\"])"
    )
    unknown = await dv.api.get(
        "products?$filter=Microsoft.Dynamics.CRM.Between(PropertyName='name',"
        "PropertyValues=['a','b'])"
    )

    assert sorted(r["productnumber"] for r in found.json()["value"]) == ["A-1", "b'2"]
    assert sorted(r["productnumber"] for r in excluded.json()["value"]) == ["C-3", "b'2"]
    assert unknown.status_code == 400
    assert "Between" in unknown.json()["error"]["message"]


async def test_standin_close_actions_set_the_state_and_refuse_a_closed_order(
    dv: Harness,
) -> None:
    created = await dv.api.post("salesorders", json={"name": "SO-1"})
    order_id = created.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    close = {
        "@odata.type": "Microsoft.Dynamics.CRM.orderclose",
        "subject": "done",
        "salesorderid@odata.bind": f"/salesorders({order_id})",
    }

    missing = await dv.api.post("FulfillSalesOrder", json={"OrderClose": close})
    wrong = await dv.api.post("FulfillSalesOrder", json={"OrderClose": close, "Status": 4})
    done = await dv.api.post("FulfillSalesOrder", json={"OrderClose": close, "Status": 100001})
    row = (await dv.api.get(f"salesorders({order_id})?$select=statecode,statuscode")).json()
    again = await dv.api.post("CancelSalesOrder", json={"OrderClose": close, "Status": -1})

    assert (missing.status_code, wrong.status_code, done.status_code) == (400, 400, 204)
    assert (row["statecode"], row["statuscode"]) == (3, 100001)
    assert again.status_code == 400
    assert "already fulfilled" in again.json()["error"]["message"]


async def test_standin_provisioned_environment_has_the_default_mappings_reference_rows(
    dv: Harness,
) -> None:
    levels = (await dv.api.get("pricelevels?$select=name")).json()["value"]
    units = (await dv.api.get("uoms?$select=name")).json()["value"]
    currencies = (await dv.api.get("transactioncurrencies?$select=isocurrencycode")).json()

    assert [r["name"] for r in levels] == ["BigCommerce"]
    assert [r["name"] for r in units] == ["Primary Unit"]
    assert [r["isocurrencycode"] for r in currencies["value"]] == ["USD"]


async def test_standin_provision_adds_the_reference_rows_to_a_bare_environment() -> None:
    async with dataverse_standin(provisioned=False) as bare:
        assert (await bare.api.get("pricelevels")).json()["value"] == []

        assert (await bare.admin.post("/__sim/provision")).status_code == 200
        await bare.admin.post("/__sim/provision")  # twice: still one row each

        assert await bare.count("pricelevel") == 1
        assert await bare.count("uom") == 1


async def test_without_iom_an_order_loads_without_fulfillment_orders() -> None:
    async with dataverse_standin(provisioned=True, env={"LOCAL_DATAVERSE_IOM": "0"}) as bare:
        client = DataverseClient(
            HOST, StaticTokenProvider(TOKEN), transport=httpx.ASGITransport(app=bare.app)
        )
        store = DataverseOrderStore(client)
        writes = store.writes()
        writes.intake(intake_of(800))
        await writes.commit()

        record = await store.load(STORE, 800)

        assert record is not None
        assert record.fulfillments == ()
        assert len(record.lines) == 2
        await client.aclose()
