"""The Dataverse client against a real environment, when one is configured.

Runs only with `DATAVERSE_TEST_URL` (e.g. `https://<org>.crm.dynamics.com`) set and an identity
`DefaultAzureCredential` can use (`az login`, or `AZURE_CLIENT_ID` for a managed identity); the
environment must already be provisioned (`python -m cli schema provision`). Otherwise it is
skipped. Rows it writes belong to a store hash of its own and are deleted afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import pytest

from shared.dataverse.auth import azure_token_provider
from shared.dataverse.client import DataverseClient
from shared.dataverse.intake import OrderRows, write_order
from shared.dataverse.metadata import HttpMetadataApi
from shared.dataverse.provisioning import check
from shared.dataverse.schema import SALESORDER, SALESORDERDETAIL
from shared.mapping import load_mapping, map_order_intake
from tests.e2e.test_dataverse_e2e import bc_lines, bc_order, bc_shipping

URL = os.environ.get("DATAVERSE_TEST_URL")
pytestmark = pytest.mark.skipif(
    not URL,
    reason="no DATAVERSE_TEST_URL: the live Dataverse contract runs only against a real "
    "environment (the stand-in contract runs always)",
)


@pytest.fixture
async def client() -> AsyncIterator[DataverseClient]:
    assert URL is not None
    live = DataverseClient(URL, azure_token_provider(URL))
    yield live
    await live.aclose()


async def test_the_environment_is_provisioned() -> None:
    assert URL is not None
    async with HttpMetadataApi.for_environment(URL, azure_token_provider(URL).token) as api:
        plan = await check(api)
    assert plan.in_sync, [d.detail for d in plan.differences]


async def test_an_intake_twice_writes_the_same_rows_once(client: DataverseClient) -> None:
    store = f"live{secrets.token_hex(4)}"
    order = bc_order(990001)
    intake = map_order_intake(
        order,
        bc_lines(order.id, 2),
        bc_shipping(order.id),
        store_hash=store,
        mapping=load_mapping(environ={}),
    )
    assert intake is not None
    rows = OrderRows(*intake.plain_rows())
    first = await write_order(client, rows, return_order_id=True)
    second = await write_order(client, rows, return_order_id=True)
    try:
        assert first.ok, first.error
        assert second.ok, second.error
        where = f"bciom_storehash eq '{store}'"
        orders = [
            r
            async for r in client.rows(SALESORDER.entity_set, select=["salesorderid"], filter=where)
        ]
        lines = [
            r
            async for r in client.rows(
                SALESORDERDETAIL.entity_set, select=["salesorderdetailid"], filter=where
            )
        ]
        assert (len(orders), len(lines)) == (1, 2)
    finally:
        await client.delete(
            SALESORDER.entity_set,
            {"bciom_storehash": store, "bciom_bcorderid": order.id},
            missing_ok=True,
        )
