"""`DataverseSyncLedger`, the reconciliation sweep's Dataverse adapter, against the Web API
stand-in running as a real process (`python -m local.dataverse`, provisioned), over loopback HTTP.

Rows are written with the plain client as the lifecycle writes them (upserts by alternate key,
the CancelSalesOrder action), then read back through the ledger; what reached the stand-in is read
from its request log:
- `orders` answers the recorded BigCommerce state of the orders asked for, of that store only, in
  ONE request for a page of 250 ids; an empty ask sends nothing;
- `refunds` answers which refund ids are recorded, of that store only;
- `pending_changes` finds fulfillment orders shipped without a BigCommerce shipment (not the
  cancelled ones, not the synced ones), salesorders cancelled in Dataverse whose BigCommerce
  status is not cancelled (not those cancelled after BigCommerce did), only within the
  `modifiedon` window, with each row's versionnumber;
- without IOM (no fulfillment table: 404) there are no fulfillment changes (in-process stand-in).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
import pytest

from local.dataverse.harness import HOST, TOKEN, dataverse_standin
from shared.dataverse.auth import StaticTokenProvider
from shared.dataverse.client import DataverseClient
from shared.dataverse.order_rows import close_operation
from shared.dataverse.sync_ledger import DataverseSyncLedger
from shared.reconciliation.ports import ChangeKind, RecordedOrder, SyncLedger
from tests.support.dataverse_standin import StandinAdmin

STORE: Final = "ledger1"
OTHER: Final = "ledger2"
MODIFIED: Final = datetime(2026, 3, 2, 9, 30, 15, tzinfo=UTC)


@pytest.fixture
def ledger(client: DataverseClient) -> DataverseSyncLedger:
    return DataverseSyncLedger(client)


def window() -> dict[str, datetime]:
    now = datetime.now(UTC)
    return {"modified_from": now - timedelta(hours=1), "modified_before": now + timedelta(hours=1)}


async def salesorder(
    client: DataverseClient,
    order_id: int,
    *,
    store: str = STORE,
    status_id: int | None = 11,
    modified: datetime | None = MODIFIED,
    lifecycle: str | None = "released",
) -> None:
    row: dict[str, Any] = {"name": f"BC-{order_id}", "bciom_lifecycle": lifecycle}
    if status_id is not None:
        row["bciom_bcstatusid"] = status_id
    if modified is not None:
        row["bciom_bcdatemodified"] = modified.isoformat()
    await client.upsert("salesorders", {"bciom_storehash": store, "bciom_bcorderid": order_id}, row)


async def cancel(client: DataverseClient, order_id: int, store: str = STORE) -> None:
    result = await client.execute_batch([close_operation(store, order_id, "cancelled")])
    assert all(item.ok for item in result.items), result


async def fulfillment(
    client: DataverseClient,
    order_id: int,
    n: int,
    *,
    shipped: bool,
    shipment_id: int | None = None,
    cancelled: bool | None = None,
    store: str = STORE,
) -> None:
    row: dict[str, Any] = {
        "msdyn_name": f"{order_id}-{n}",
        "bciom_bcorderid": order_id,
        "bciom_shipped": shipped,
        "bciom_bcshipmentid": shipment_id,
    }
    if cancelled is not None:
        row["bciom_cancelled"] = cancelled
    await client.upsert(
        "msdyn_fulfillmentorders",
        {"bciom_storehash": store, "bciom_fulfillmentkey": f"{order_id}-{n}"},
        row,
    )


def test_the_adapter_satisfies_the_port(ledger: DataverseSyncLedger) -> None:
    port: SyncLedger = ledger
    assert port is ledger


async def test_orders_answers_the_recorded_state_of_the_orders_asked_for(
    client: DataverseClient, ledger: DataverseSyncLedger, admin: StandinAdmin
) -> None:
    await salesorder(client, 100)
    await salesorder(client, 101, status_id=None, modified=None)
    await salesorder(client, 102, status_id=5)
    await cancel(client, 102)
    await salesorder(client, 100, store=OTHER, status_id=12)
    await admin.clear_requests()

    found = await ledger.orders(STORE, [100, 101, 102, 103])

    assert found == {
        100: RecordedOrder(100, 11, MODIFIED, 0),
        101: RecordedOrder(101, None, None, 0),
        102: RecordedOrder(102, 5, MODIFIED, 2),
    }
    requests = await admin.requests(method="GET")
    assert [r.operation for r in requests] == ["salesorders"]
    assert "Microsoft.Dynamics.CRM.In" in requests[0].query


async def test_a_page_of_250_orders_is_one_request_and_nothing_asked_sends_nothing(
    client: DataverseClient, ledger: DataverseSyncLedger, admin: StandinAdmin
) -> None:
    ids = list(range(5000, 5250))
    for order_id in ids[::50]:
        await salesorder(client, order_id)
    await admin.clear_requests()

    found = await ledger.orders(STORE, ids)
    assert sorted(found) == ids[::50]
    assert len(await admin.requests()) == 1

    assert await ledger.orders(STORE, []) == {}
    assert await ledger.refunds(STORE, []) == set()
    assert len(await admin.requests()) == 1


async def test_refunds_answers_which_refund_ids_are_recorded(
    client: DataverseClient, ledger: DataverseSyncLedger, admin: StandinAdmin
) -> None:
    for store, refund_id in ((STORE, 7), (STORE, 8), (OTHER, 9)):
        await client.upsert(
            "bciom_orderrefunds",
            {"bciom_storehash": store, "bciom_refundid": refund_id},
            {"bciom_name": f"refund {refund_id}", "bciom_bcorderid": 100},
        )
    await admin.clear_requests()
    assert await ledger.refunds(STORE, [7, 9, 10]) == {7}
    requests = await admin.requests(method="GET")
    assert [r.operation for r in requests] == ["bciom_orderrefunds"]


async def test_pending_changes_are_the_dataverse_changes_bigcommerce_lacks(
    client: DataverseClient, ledger: DataverseSyncLedger, admin: StandinAdmin
) -> None:
    for order_id in (200, 201, 202, 203):
        await salesorder(client, order_id)
    await fulfillment(client, 200, 1, shipped=True)  # pending: no shipment id
    await fulfillment(client, 200, 2, shipped=False)  # open
    await fulfillment(client, 201, 1, shipped=True, shipment_id=77)  # synced
    await fulfillment(client, 202, 1, shipped=True, cancelled=True)  # cancelled
    await fulfillment(client, 203, 1, shipped=True, cancelled=False)  # pending
    await fulfillment(client, 200, 1, shipped=True, store=OTHER)  # another store
    await salesorder(client, 300, status_id=11)
    await cancel(client, 300)  # cancelled in Dataverse, BigCommerce still 11: pending
    await salesorder(client, 301, status_id=5)
    await cancel(client, 301)  # cancelled on both sides
    await salesorder(client, 302, status_id=14, lifecycle="cancelled")
    await cancel(client, 302)  # the connector cancelled it after BigCommerce
    await salesorder(client, 303, status_id=None, lifecycle=None)
    await cancel(client, 303)  # cancelled before any BigCommerce status was recorded: pending
    await salesorder(client, 304, status_id=11)  # open

    changes = await ledger.pending_changes(STORE, **window())

    found = {(c.kind, c.order_id, c.detail) for c in changes}
    assert found == {
        (ChangeKind.SHIPMENT, 200, "200-1"),
        (ChangeKind.SHIPMENT, 203, "203-1"),
        (ChangeKind.CANCELLATION, 300, "BigCommerce status 11"),
        (ChangeKind.CANCELLATION, 303, "BigCommerce status None"),
    }
    for item in changes:
        assert item.version.isdigit()
        assert item.modified_on is not None
        assert item.table in ("msdyn_fulfillmentorder", "salesorder")
        assert item.row_id

    # A row's next change is a new version.
    shipped = next(c for c in changes if c.order_id == 200)
    await fulfillment(client, 200, 1, shipped=True, cancelled=False)
    again = await ledger.pending_changes(STORE, **window())
    assert int(next(c for c in again if c.order_id == 200).version) > int(shipped.version)

    # Outside the window: nothing.
    past = datetime.now(UTC) - timedelta(days=1)
    assert (
        await ledger.pending_changes(
            STORE, modified_from=past - timedelta(hours=1), modified_before=past
        )
        == []
    )


async def test_without_iom_there_are_no_fulfillment_changes() -> None:
    async with dataverse_standin(provisioned=True, env={"LOCAL_DATAVERSE_IOM": "0"}) as harness:
        client = DataverseClient(
            HOST, StaticTokenProvider(TOKEN), transport=httpx.ASGITransport(app=harness.app)
        )
        try:
            ledger = DataverseSyncLedger(client)
            await salesorder(client, 400)
            await cancel(client, 400)
            changes = await ledger.pending_changes(STORE, **window())
        finally:
            await client.aclose()
    assert [(c.kind, c.order_id) for c in changes] == [(ChangeKind.CANCELLATION, 400)]
