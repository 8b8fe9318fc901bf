"""Order intake: one order is one $batch request holding one change set of upserts by key.

Sources (MicrosoftDocs/powerapps-docs, powerapps-docs/developer/data-platform/):
[BATCH] webapi/execute-batch-operations-using-web-api.md (01/14/2023): change sets, Content-ID,
continue-on-error. [UPSERT] use-upsert-insert-update-record.md (03/09/2026): PATCH by alternate
key, key columns out of the body. [AKUSE] use-alternate-key-reference-record.md: binds by
alternate key. [AKDEF] define-alternate-keys-entity.md: characters a key value cannot hold.
"""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from shared.dataverse.auth import StaticTokenProvider
from shared.dataverse.batch import Outcome, ParsedChangeSet, ParsedOperation, parse_batch_request
from shared.dataverse.client import ClientOptions, DataverseClient
from shared.dataverse.errors import DuplicateKeyError
from shared.dataverse.gate import ThrottleGate
from shared.dataverse.intake import (
    IntakeError,
    OrderRows,
    intake_batch,
    order_change_set,
    write_order,
    write_orders,
)
from shared.dataverse.models import Bind

HOST = "http://127.0.0.1:7073"
PRICE_LIST = uuid.UUID("11111111-1111-1111-1111-111111111111")


def order_rows(order_id: int = 100, *, customer_key: str = "c-42", lines: int = 2) -> OrderRows:
    return OrderRows(
        contact={
            "bciom_storehash": "s1",
            "bciom_customerkey": customer_key,
            "firstname": "Ann",
            "lastname": "O'Brien",
            "emailaddress1": "ann@example.com",
            "bciom_bccustomerid": 42,
        },
        order={
            "bciom_storehash": "s1",
            "bciom_bcorderid": order_id,
            "name": f"BC #{order_id}",
            "pricelevelid": Bind("pricelevels", PRICE_LIST),
            "totalamount": Decimal("59.97"),
            "bciom_bcstatusid": 11,
        },
        lines=[
            {
                "bciom_storehash": "s1",
                "bciom_bcorderproductid": order_id * 10 + n,
                "bciom_bcorderid": order_id,
                "productdescription": f"Item {n}",
                "quantity": Decimal(n),
                "priceperunit": Decimal("19.99"),
                "isproductoverridden": True,
            }
            for n in range(1, lines + 1)
        ],
    )


class BatchServer:
    """Reads each $batch like the Web API would and answers every operation, in doc format."""

    def __init__(self, fail: dict[str, tuple[int, str]] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.fail = fail or {}  # Content-ID -> (status, error code)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        items = parse_batch_request(request.content, request.headers["content-type"])
        out = []
        for item in items:
            assert isinstance(item, ParsedChangeSet)
            out += [
                "--batchresponse_r",
                "Content-Type: multipart/mixed; boundary=changesetresponse_r",
                "",
            ]
            failed = [op for op in item.operations if op.content_id in self.fail]
            for op in failed or item.operations:
                out += [
                    "--changesetresponse_r",
                    "Content-Type: application/http",
                    "Content-Transfer-Encoding: binary",
                    f"Content-ID: {op.content_id}",
                    "",
                ]
                if failed:
                    status, code = self.fail[op.content_id or ""]
                    out += [
                        f"HTTP/1.1 {status} Error",
                        "Content-Type: application/json",
                        "",
                        f'{{"error":{{"code":"{code}","message":"refused"}}}}',
                    ]
                else:
                    out += ["HTTP/1.1 204 No Content", f"OData-EntityId: {HOST}{op.url}", ""]
            out.append("--changesetresponse_r--")
        out += ["--batchresponse_r--", ""]
        return httpx.Response(
            200,
            content="\r\n".join(out).encode(),
            headers={"Content-Type": "multipart/mixed; boundary=batchresponse_r"},
        )


class SimTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        deadline = self.now + seconds
        await asyncio.sleep(0)
        self.now = max(self.now, deadline)


def client_for(server: BatchServer) -> DataverseClient:
    time = SimTime()
    return DataverseClient(
        HOST,
        StaticTokenProvider("local-token"),
        options=ClientOptions(),
        gate=ThrottleGate(clock=time.clock, sleep=time.sleep),
        transport=httpx.MockTransport(server),
    )


def operations(request: httpx.Request) -> list[ParsedOperation]:
    (change_set,) = parse_batch_request(request.content, request.headers["content-type"])
    assert isinstance(change_set, ParsedChangeSet)
    return list(change_set.operations)


async def test_one_order_is_one_http_request_with_one_change_set() -> None:
    server = BatchServer()
    client = client_for(server)

    result = await write_order(client, order_rows(lines=3))

    assert len(server.requests) == 1
    request = server.requests[0]
    assert request.method == "POST"
    assert request.url.path == "/api/data/v9.2/$batch"
    ops = operations(request)
    assert [(op.method, op.url, op.content_id) for op in ops] == [
        ("PATCH", "/api/data/v9.2/contacts(bciom_storehash='s1',bciom_customerkey='c-42')", "1"),
        ("PATCH", "/api/data/v9.2/salesorders(bciom_storehash='s1',bciom_bcorderid=100)", "2"),
        (
            "PATCH",
            "/api/data/v9.2/salesorderdetails(bciom_storehash='s1',bciom_bcorderproductid=1001)",
            "3",
        ),
        (
            "PATCH",
            "/api/data/v9.2/salesorderdetails(bciom_storehash='s1',bciom_bcorderproductid=1002)",
            "4",
        ),
        (
            "PATCH",
            "/api/data/v9.2/salesorderdetails(bciom_storehash='s1',bciom_bcorderproductid=1003)",
            "5",
        ),
    ]
    assert all("if-match" not in op.headers and "if-none-match" not in op.headers for op in ops)
    assert result.ok
    assert result.error is None
    assert result.order_key == {"bciom_storehash": "s1", "bciom_bcorderid": 100}
    assert [r.outcome for r in result.lines] == [Outcome.SUCCEEDED] * 3
    assert (
        result.order.entity_id
        == f"{HOST}/api/data/v9.2/salesorders(bciom_storehash='s1',bciom_bcorderid=100)"
    )
    assert client.stats.requests == 1
    assert client.stats.batch_operations == 5


async def test_bodies_leave_out_key_columns_and_bind_by_alternate_key() -> None:
    # [UPSERT] "Guidance for composing requests"; [AKUSE] binds by alternate key.
    server = BatchServer()
    await write_order(client_for(server), order_rows(lines=1))

    contact, order, line = (op.json() for op in operations(server.requests[0]))
    assert contact == {
        "firstname": "Ann",
        "lastname": "O'Brien",
        "emailaddress1": "ann@example.com",
        "bciom_bccustomerid": 42,
    }
    assert order == {
        "name": "BC #100",
        "pricelevelid@odata.bind": f"/pricelevels({PRICE_LIST})",
        "totalamount": 59.97,
        "bciom_bcstatusid": 11,
        "customerid_contact@odata.bind": "/contacts(bciom_storehash='s1',bciom_customerkey='c-42')",
    }
    assert line == {
        "bciom_bcorderid": 100,
        "productdescription": "Item 1",
        "quantity": 1,
        "priceperunit": 19.99,
        "isproductoverridden": True,
        "salesorderid@odata.bind": "/salesorders(bciom_storehash='s1',bciom_bcorderid=100)",
    }


async def test_several_orders_share_a_batch_with_one_change_set_each() -> None:
    # [BATCH] change sets are atomic one by one; with continue-on-error a failed order rolls
    # back alone. Content-IDs run across the batch.
    server = BatchServer(fail={"5": (412, "0x80060892")})
    client = client_for(server)

    first, second = await write_orders(client, [order_rows(100, lines=1), order_rows(200, lines=1)])

    assert len(server.requests) == 1
    items = parse_batch_request(
        server.requests[0].content, server.requests[0].headers["content-type"]
    )
    change_sets = [item for item in items if isinstance(item, ParsedChangeSet)]
    assert [[op.content_id for op in cs.operations] for cs in change_sets] == [
        ["1", "2", "3"],
        ["4", "5", "6"],
    ]
    assert server.requests[0].headers["Prefer"] == "odata.continue-on-error"
    assert first.ok
    assert not second.ok
    assert not second.transient
    assert isinstance(second.error, DuplicateKeyError)
    assert second.order.outcome is Outcome.FAILED
    assert second.contact.outcome is Outcome.ROLLED_BACK
    assert [r.outcome for r in second.lines] == [Outcome.ROLLED_BACK]


async def test_a_throttled_order_is_resent_and_then_succeeds() -> None:
    class ThrottleOnce(BatchServer):
        def __call__(self, request: httpx.Request) -> httpx.Response:
            self.fail = {"2": (429, "0x80072322")} if not self.requests else {}
            return super().__call__(request)

    server = ThrottleOnce()
    result = await write_order(client_for(server), order_rows(lines=1))

    assert result.ok
    assert len(server.requests) == 2  # the one batch, and its resend after the 429


def test_the_order_id_can_be_asked_for() -> None:
    (change_set,) = intake_batch([order_rows(lines=0)], return_order_id=True)
    order = change_set.operations[1]
    assert order.url.endswith("?$select=salesorderid")
    assert order.headers == {"Prefer": "return=representation"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"order": {"bciom_storehash": "s1", "bciom_bcorderid": 1, "nosuchcolumn": 1}},
            "no column 'nosuchcolumn'",
        ),
        (
            {"order": {"bciom_storehash": "s1", "bciom_bcorderid": 1, "pricelevelid": "x"}},
            "is a lookup",
        ),
        (
            {
                "order": {
                    "bciom_storehash": "s1",
                    "bciom_bcorderid": 1,
                    "customerid": Bind("accounts", uuid.UUID(int=1)),
                }
            },
            "bound by the intake",
        ),
        ({"order": {"bciom_storehash": "s1"}}, "bciom_bcorderid missing"),
        ({"contact": {"bciom_storehash": "s2", "bciom_customerkey": "c-1"}}, "several stores"),
    ],
)
def test_rows_that_cannot_be_written_are_refused_before_sending(
    change: dict[str, Any], message: str
) -> None:
    base = order_rows(lines=1)
    rows = OrderRows(
        contact=change.get("contact", base.contact),
        order=change.get("order", base.order),
        lines=base.lines,
    )
    with pytest.raises(IntakeError, match=message):
        order_change_set(rows)


@pytest.mark.parametrize("customer_key", ["c:42", "e:ann@example.com", "e-a+b@example.com"])
def test_customer_keys_with_characters_dataverse_cannot_address_are_refused(
    customer_key: str,
) -> None:
    # [AKDEF]: ':' and '+' are among / < > * % & : \ ? +, so "c:<id>" cannot be a key value.
    with pytest.raises(IntakeError, match="cannot address by key"):
        order_change_set(order_rows(customer_key=customer_key))


def test_a_line_listed_twice_is_refused() -> None:
    base = order_rows(lines=1)
    with pytest.raises(IntakeError, match="twice"):
        order_change_set(OrderRows(base.contact, base.order, [base.lines[0], base.lines[0]]))
