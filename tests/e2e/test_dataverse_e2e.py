"""The Dataverse client, intake, mapping and provisioning against the Web API stand-in running as a
real process (`python -m local.dataverse`), over loopback HTTP.

What reached the stand-in is read from its own request log (`GET /__sim/requests`), never from
the client's claims alone; rows are read back with the client, by alternate key.

- Intake: a BigCommerce order mapped with the default mapping is ONE `$batch` request; written
  again it is still one request and creates nothing; a guest's orders share one contact; a
  changed order is updated in place.
- Provisioning: a bare environment is checked, provisioned (keys waited for until Active) and
  provisioned again with zero writes; an intake then works. The operator CLI does the same as a
  subprocess.
- Throttling: a burst of concurrent intakes through one client against a small request limit all
  succeed, and no request of our identity goes out before a 429's Retry-After has elapsed.

Times in the stand-in's log (read in local/dataverse/standin.py, `handle` and `_record`): `time`
is `datetime.now(UTC)` with microseconds, taken once the answer is ready, so it is when the
request *ended* (before the answer reached the socket); `duration_ms` is monotonic time from the
start of handling, rounded to 1 µs. `LoggedRequest.started = time - duration`. The log does not
keep headers, so each 429's Retry-After comes from the client's side of the same exchange
(`ExchangeRecorder`, wall clock `time.time()`, the same system clock the stand-in reads).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from typing import Any, Final

import pytest

from local.stack.host_process import REPO
from shared.bigcommerce.models import Order, OrderProduct, OrderShippingAddress
from shared.dataverse.client import DataverseClient
from shared.dataverse.intake import OrderRows, OrderWriteResult, write_order
from shared.dataverse.metadata import MetadataApi, MetadataResponse
from shared.dataverse.provisioning import KeyStatus, Severity, check, provision
from shared.dataverse.schema import CONTACT, SALESORDER, SALESORDERDETAIL, SCHEMA
from shared.mapping import OrderIntake, load_mapping, map_order_intake
from tests.support.dataverse_standin import (
    IDENTITY,
    Exchange,
    ExchangeRecorder,
    LoggedRequest,
    StandinAdmin,
    StandinProcess,
    running_standin,
)

pytestmark = pytest.mark.e2e

STORE: Final = "e2estore1"
MAPPING: Final = load_mapping(environ={})  # the shipped default_mapping.yaml
ORDER_TABLES: Final = ("contact", "salesorder", "salesorderdetail")
AWAITING_PAYMENT, AWAITING_FULFILLMENT = 7, 11
# See test_a_burst_of_intakes_through_one_client_waits_out_every_retry_after.
CLOCK_TOLERANCE: Final = 0.002


# -- stand-ins -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def provisioned() -> Iterator[StandinProcess]:
    """A stand-in whose schema columns and keys are already in place and Active."""
    with running_standin(provisioned=True) as process:
        yield process


@pytest.fixture(scope="module")
def bare() -> Iterator[StandinProcess]:
    """A stand-in with standard tables only; a new key's index takes 1 s to build."""
    with running_standin(
        provisioned=False, settings={"LOCAL_DATAVERSE_KEY_ACTIVATION_SECONDS": "1"}
    ) as process:
        yield process


@pytest.fixture
async def admin(provisioned: StandinProcess) -> AsyncIterator[StandinAdmin]:
    async with StandinAdmin(provisioned) as api:
        await api.reset()
        yield api


@pytest.fixture
async def bare_admin(bare: StandinProcess) -> AsyncIterator[StandinAdmin]:
    async with StandinAdmin(bare) as api:
        await api.reset()  # back to bare: provisioning of an earlier test forgotten
        yield api


@pytest.fixture
async def writer(provisioned: StandinProcess) -> AsyncIterator[DataverseClient]:
    """The client that writes intakes; reads go through `reader`, so its stats are the writes'."""
    client = provisioned.client()
    yield client
    await client.aclose()


@pytest.fixture
async def reader(provisioned: StandinProcess) -> AsyncIterator[DataverseClient]:
    client = provisioned.client()
    yield client
    await client.aclose()


# -- BigCommerce orders (V2 shapes: 4-decimal money strings, RFC 2822 dates) -----------------


def rfc2822(moment: datetime) -> str:
    return format_datetime(moment, usegmt=False)


MODIFIED: Final = datetime(2024, 3, 6, 8, 15, tzinfo=UTC)


def bc_order(
    order_id: int,
    *,
    customer_id: int = 11,
    status_id: int = AWAITING_FULFILLMENT,
    modified: datetime = MODIFIED,
    email: str = "Jane.Doe@Example.com",
) -> Order:
    return Order.model_validate(
        {
            "id": order_id,
            "customer_id": customer_id,
            "date_created": "Tue, 05 Mar 2024 21:40:11 +0000",
            "date_modified": rfc2822(modified),
            "status_id": status_id,
            "status": {AWAITING_PAYMENT: "Awaiting Payment"}.get(status_id, "Awaiting Fulfillment"),
            "channel_id": 1,
            "subtotal_ex_tax": "72.5000",
            "subtotal_inc_tax": "78.3000",
            "total_ex_tax": "80.4900",
            "total_inc_tax": "86.2900",
            "total_tax": "5.8000",
            "currency_code": "USD",
            "default_currency_code": "USD",
            "payment_method": "Credit Card",
            "billing_address": {
                "first_name": "Jane",
                "last_name": "Doe",
                "company": "Terrarium Works",
                "street_1": "1 Main St",
                "city": "Austin",
                "state": "Texas",
                "zip": "78701",
                "country": "United States",
                "country_iso2": "US",
                "phone": "+1 512 555 0100",
                "email": email,
            },
            "products": {
                "url": f"https://api.bigcommerce.com/stores/{STORE}/v2/orders/{order_id}/products",
                "resource": f"/orders/{order_id}/products",
            },
        }
    )


def bc_lines(order_id: int, count: int = 3) -> list[OrderProduct]:
    first = order_id * 10
    lines = [
        {
            "id": first + 1,
            "product_id": 77,
            "name": "Orbit Terrarium - Large",
            "sku": "OTL-1",
            "quantity": 2,
            "price_ex_tax": "25.0000",
            "price_inc_tax": "27.0000",
            "total_ex_tax": "50.0000",
            "total_inc_tax": "54.0000",
            "total_tax": "4.0000",
            "applied_discounts": [{"id": "coupon", "amount": "5.0000", "code": "SPRING"}],
        },
        {
            "id": first + 2,
            "product_id": 81,
            "name": "Moss pack",
            "sku": "MOSS-PACK",
            "quantity": 1,
            "price_ex_tax": "5.0000",
            "price_inc_tax": "5.4000",
            "total_ex_tax": "5.0000",
            "total_inc_tax": "5.4000",
            "total_tax": None,  # the mapping takes the tax from the totals
            "applied_discounts": [],
        },
        {
            "id": first + 3,
            "product_id": 90,
            "name": "Glass mister",
            "sku": "MIST-300",
            "quantity": 3,
            "price_ex_tax": "5.8333",
            "price_inc_tax": "6.3000",
            "total_ex_tax": "17.5000",
            "total_inc_tax": "18.9000",
            "total_tax": "1.4000",
            "applied_discounts": [],
        },
    ]
    return [
        OrderProduct.model_validate({"order_id": order_id, "order_address_id": 9, **line})
        for line in lines[:count]
    ]


def bc_shipping(order_id: int) -> list[OrderShippingAddress]:
    return [
        OrderShippingAddress.model_validate(
            {
                "id": 9,
                "order_id": order_id,
                "first_name": "Jane",
                "last_name": "Doe",
                "street_1": "1 Main St",
                "city": "Austin",
                "zip": "78701",
                "country": "United States",
                "country_iso2": "US",
                "shipping_method": "Flat Rate",
            }
        )
    ]


REGISTERED: Final = {
    "id": 11,
    "first_name": "Janet",
    "last_name": "Doe",
    "email": "janet.doe@example.com",
}


def mapped(order: Order, lines: int = 3, customer: Mapping[str, Any] | None = None) -> OrderIntake:
    intake = map_order_intake(
        order,
        bc_lines(order.id, lines),
        bc_shipping(order.id),
        store_hash=STORE,
        mapping=MAPPING,
        customer=customer,
    )
    assert intake is not None, f"status {order.status_id} is not taken in"
    return intake


def rows_of(intake: OrderIntake) -> OrderRows:
    return OrderRows(*intake.plain_rows())


# -- intake and reading back -----------------------------------------------------------------


async def intake_in_one_request(
    admin: StandinAdmin, client: DataverseClient, intake: OrderIntake
) -> OrderWriteResult:
    """Writes one intake and proves from the stand-in's log that it was one `$batch` request."""
    await admin.clear_requests()
    stats = client.stats
    before = (stats.requests, stats.batches, stats.batch_operations)

    result = await write_order(client, rows_of(intake), return_order_id=True)

    assert result.ok, result.error
    log = await admin.requests()
    assert [(r.method, r.operation, r.status, r.identity) for r in log] == [
        ("POST", "$batch", 200, IDENTITY)
    ]
    operations = 2 + len(intake.lines)  # contact, order, lines: one change set
    assert (stats.requests, stats.batches, stats.batch_operations) == (
        before[0] + 1,
        before[1] + 1,
        before[2] + operations,
    )
    return result


@dataclass(frozen=True)
class ReadBack:
    contact: dict[str, Any]
    order: dict[str, Any]

    @property
    def lines(self) -> list[dict[str, Any]]:
        return sorted(self.order["order_details"], key=lambda r: r["bciom_bcorderproductid"])

    def ids(self) -> tuple[str, str, list[str]]:
        return (
            self.contact[CONTACT.primary_id],
            self.order[SALESORDER.primary_id],
            [line[SALESORDERDETAIL.primary_id] for line in self.lines],
        )

    def values(self) -> dict[str, Any]:
        """Every column read, without the ETags (a rewrite bumps the row version)."""
        return _without_etags({"contact": self.contact, "order": self.order})


def _without_etags(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_etags(v) for k, v in value.items() if k != "@odata.etag"}
    if isinstance(value, list):
        return [_without_etags(v) for v in value]
    return value


async def read_back(client: DataverseClient, intake: OrderIntake) -> ReadBack:
    """The contact and the order with `$expand=order_details`, each by its alternate key."""
    contact = await client.retrieve(
        CONTACT.entity_set,
        intake.contact.key,
        select=[CONTACT.primary_id, *intake.contact.plain()],
    )
    line_columns = sorted({name for line in intake.lines for name in line.plain()})
    details = ",".join([SALESORDERDETAIL.primary_id, "_salesorderid_value", *line_columns])
    order = await client.retrieve(
        SALESORDER.entity_set,
        intake.salesorder.key,
        select=[SALESORDER.primary_id, "_customerid_value", *intake.salesorder.plain()],
        expand=f"order_details($select={details})",
    )
    assert contact.row is not None
    assert order.row is not None
    return ReadBack(contact.row, order.row)


def as_mapped(row: Mapping[str, Any], expected: Mapping[str, Any]) -> dict[str, Any]:
    """`row`'s values of `expected`'s columns, read as the mapping's Python types."""
    return {name: _like(row.get(name, "<not returned>"), model) for name, model in expected.items()}


def _like(value: Any, model: Any) -> Any:
    if value is None:
        return None
    if isinstance(model, Decimal):
        return Decimal(str(value))  # JSON numbers: 64.8 for 64.8000
    if isinstance(model, datetime):
        return datetime.fromisoformat(str(value))  # "2024-03-06T08:15:00Z"
    return value


def assert_holds(read: ReadBack, intake: OrderIntake) -> None:
    """The rows read back are the mapped rows, bound to each other."""
    contact = intake.contact.plain()
    order = intake.salesorder.plain()
    lines = sorted(
        (line.plain() for line in intake.lines), key=lambda r: r["bciom_bcorderproductid"]
    )
    assert as_mapped(read.contact, contact) == contact
    assert as_mapped(read.order, order) == order
    assert [as_mapped(row, line) for row, line in zip(read.lines, lines, strict=True)] == lines
    assert read.order["_customerid_value"] == read.contact[CONTACT.primary_id]
    assert {row["_salesorderid_value"] for row in read.lines} == {read.order[SALESORDER.primary_id]}


# -- 1. intake -------------------------------------------------------------------------------


async def test_an_order_intake_is_one_batch_request_and_reads_back_as_mapped(
    admin: StandinAdmin, writer: DataverseClient, reader: DataverseClient
) -> None:
    intake = mapped(bc_order(120), lines=3, customer=REGISTERED)
    assert await admin.row_counts(*ORDER_TABLES) == dict.fromkeys(ORDER_TABLES, 0)

    result = await intake_in_one_request(admin, writer, intake)

    assert result.order.status == 201  # created (return=representation answers 201 / 200)
    assert [line.status for line in result.lines] == [204, 204, 204]
    assert await admin.row_counts(*ORDER_TABLES) == {
        "contact": 1,
        "salesorder": 1,
        "salesorderdetail": 3,
    }
    read = await read_back(reader, intake)
    assert_holds(read, intake)
    assert read.contact["firstname"] == "Janet"  # the customer record, not the billing name
    assert read.order["name"] == "BC-120"
    assert [row["bciom_sku"] for row in read.lines] == ["OTL-1", "MOSS-PACK", "MIST-300"]
    assert writer.stats.throttled == writer.stats.retries == 0


async def test_the_same_intake_again_is_one_request_and_creates_nothing(
    admin: StandinAdmin, writer: DataverseClient, reader: DataverseClient
) -> None:
    intake = mapped(bc_order(121), lines=3, customer=REGISTERED)
    first = await intake_in_one_request(admin, writer, intake)
    counts = await admin.row_counts(*ORDER_TABLES)
    before = await read_back(reader, intake)

    again = await intake_in_one_request(admin, writer, intake)

    assert (first.order.status, again.order.status) == (201, 200)  # 200: updated, not created
    assert again.order.body[SALESORDER.primary_id] == before.order[SALESORDER.primary_id]
    assert counts == {"contact": 1, "salesorder": 1, "salesorderdetail": 3}
    assert await admin.row_counts(*ORDER_TABLES) == counts
    after = await read_back(reader, intake)
    assert after.ids() == before.ids()
    assert after.values() == before.values()
    assert_holds(after, intake)
    assert writer.stats.requests == 2


async def test_a_guests_orders_land_on_one_contact(
    admin: StandinAdmin, writer: DataverseClient, reader: DataverseClient
) -> None:
    first = mapped(bc_order(130, customer_id=0, email="Jane.Doe@Example.com"), lines=1)
    second = mapped(bc_order(131, customer_id=0, email="jane.doe@EXAMPLE.com"), lines=2)
    assert first.customer_key == second.customer_key == "e~3Ajane.doe@example.com"

    await intake_in_one_request(admin, writer, first)
    await intake_in_one_request(admin, writer, first)  # the same guest order twice
    await intake_in_one_request(admin, writer, second)

    assert await admin.row_counts(*ORDER_TABLES) == {
        "contact": 1,
        "salesorder": 2,
        "salesorderdetail": 3,
    }
    one, two = await read_back(reader, first), await read_back(reader, second)
    assert one.contact[CONTACT.primary_id] == two.contact[CONTACT.primary_id]
    assert one.order["_customerid_value"] == two.order["_customerid_value"]
    assert one.contact["bciom_bccustomerid"] == 0
    assert_holds(two, second)  # the last write's e-mail spelling is the contact's


async def test_a_changed_order_is_updated_in_place(
    admin: StandinAdmin, writer: DataverseClient, reader: DataverseClient
) -> None:
    placed = mapped(bc_order(140, status_id=AWAITING_PAYMENT), customer=REGISTERED)
    await intake_in_one_request(admin, writer, placed)
    before = await read_back(reader, placed)
    assert before.order["bciom_holdreason"] == "awaiting payment"

    paid = mapped(
        bc_order(
            140, status_id=AWAITING_FULFILLMENT, modified=MODIFIED + timedelta(hours=1, seconds=7)
        ),
        customer=REGISTERED,
    )
    result = await intake_in_one_request(admin, writer, paid)

    assert result.order.status == 200
    assert await admin.row_counts(*ORDER_TABLES) == {
        "contact": 1,
        "salesorder": 1,
        "salesorderdetail": 3,
    }
    after = await read_back(reader, paid)
    assert after.ids() == before.ids()
    assert_holds(after, paid)
    assert after.order["bciom_bcstatusid"] == AWAITING_FULFILLMENT
    assert datetime.fromisoformat(after.order["bciom_bcdatemodified"]) == datetime(
        2024, 3, 6, 9, 15, 7, tzinfo=UTC
    )
    assert after.order["bciom_holdreason"] is None  # the hold is lifted, not left behind


# -- 2. provisioning -------------------------------------------------------------------------


def expected_creations() -> set[tuple[str, str]]:
    """What a bare environment lacks: our tables, our columns and every key of the schema."""
    wanted: set[tuple[str, str]] = set()
    for table in SCHEMA:
        if table.ours:
            wanted.add((table.logical_name, "table"))
        for column in table.columns:
            if column.ours and column.logical_name != table.primary_name:
                wanted.add((table.logical_name, f"column {column.logical_name}"))
        wanted |= {(table.logical_name, f"key {key.logical_name}") for key in table.keys}
    return wanted


SCHEMA_KEYS: Final = {(t.logical_name, k.logical_name) for t in SCHEMA for k in t.keys}


@dataclass
class KeyStatusSpy:
    """A `MetadataApi` that notes every key index status provisioning reads."""

    inner: MetadataApi
    seen: list[str] = field(default_factory=list)

    async def get(self, path: str) -> MetadataResponse:
        response = await self.inner.get(path)
        if "/Keys" in path and response.ok:
            self.seen += [str(k.get("EntityKeyIndexStatus")) for k in response.body["value"]]
        return response

    async def post(self, path: str, body: Mapping[str, Any]) -> MetadataResponse:
        return await self.inner.post(path, body)


def metadata_posts(log: Sequence[LoggedRequest]) -> list[LoggedRequest]:
    return [r for r in log if r.method == "POST"]


async def test_provisioning_a_bare_environment_waits_for_the_keys_and_is_idempotent(
    bare: StandinProcess, bare_admin: StandinAdmin
) -> None:
    async with bare.metadata_api() as http:
        api = KeyStatusSpy(http)
        plan = await check(api)
        assert not plan.in_sync
        assert plan.conflicts == ()
        assert {(d.table, d.subject) for d in plan.of(Severity.CREATE)} == expected_creations()
        assert await bare_admin.keys() == []
        await bare_admin.clear_requests()

        report = await provision(api, wait_seconds=30, poll_seconds=0.1)

        assert report.ok, report.error
        assert not report.timed_out
        assert report.written == plan.writes()
        assert {(k.table, k.key) for k in report.keys} == SCHEMA_KEYS
        assert {k.status for k in report.keys} == {KeyStatus.ACTIVE}
        assert {"Pending", "InProgress"} & set(api.seen), "provision never saw a key building"
        posts = metadata_posts(await bare_admin.requests())
        assert len(posts) == len(plan.writes())
        assert {r.status for r in posts} <= {200, 201, 204}
        assert {(k["table"], k["key"], k["status"]) for k in await bare_admin.keys()} == {
            (table, key, "Active") for table, key in SCHEMA_KEYS
        }

        await bare_admin.clear_requests()
        again = await provision(api, wait_seconds=30, poll_seconds=0.1)

        assert again.ok
        assert again.plan.in_sync
        assert again.written == ()
        log = await bare_admin.requests()
        assert log, "the second run read nothing"
        assert metadata_posts(log) == []  # zero writes
        assert {(r.method, r.status) for r in log} == {("GET", 200)}
        final = await check(api)
        assert final.in_sync
        assert final.differences == ()

    # An intake works against the freshly provisioned environment.
    intake = mapped(bc_order(150), lines=2, customer=REGISTERED)
    client, reading = bare.client(), bare.client()
    try:
        await intake_in_one_request(bare_admin, client, intake)
        assert await bare_admin.row_counts(*ORDER_TABLES) == {
            "contact": 1,
            "salesorder": 1,
            "salesorderdetail": 2,
        }
        assert_holds(await read_back(reading, intake), intake)
    finally:
        await client.aclose()
        await reading.aclose()


async def run_cli(standin: StandinProcess, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        cwd=REPO,
        env=standin.cli_environ(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_cli_provisions_a_bare_environment(
    bare: StandinProcess, bare_admin: StandinAdmin
) -> None:
    # The CLI reads DATAVERSE_URL and LOCAL_DATAVERSE_TOKEN only: no other setting is given.
    code, out, err = await run_cli(bare, "schema", "provision", "--yes", "--poll", "0.2")

    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[-1] == "provisioned: the environment matches the schema and every key is Active"
    assert {line for line in lines if line.startswith("key: ")} == {
        f"key: {table}: key {key}: Active" for table, key in SCHEMA_KEYS
    }
    posts = metadata_posts(await bare_admin.requests())
    assert len(posts) == len(expected_creations())  # one POST per creation, all to this stand-in
    assert {r.identity for r in posts} == {IDENTITY}

    await bare_admin.clear_requests()
    code, out, err = await run_cli(bare, "schema", "check", "--json")

    assert code == 0, out + err
    assert json.loads(out) == {"in_sync": True, "differences": []}
    assert metadata_posts(await bare_admin.requests()) == []


# -- 3. throttling ---------------------------------------------------------------------------


def pair_with_exchanges(
    log: Sequence[LoggedRequest], exchanges: Sequence[Exchange]
) -> list[Exchange]:
    """The client's exchange of each logged request: one whose send-to-answer interval holds the
    stand-in's handling interval, same status; a perfect matching (Kuhn's augmenting paths)."""
    fits = [
        [
            j
            for j, e in enumerate(exchanges)
            if e.status == r.status
            and e.sent <= r.started + CLOCK_TOLERANCE
            and e.received >= r.ended - CLOCK_TOLERANCE
        ]
        for r in log
    ]
    owner: dict[int, int] = {}  # exchange index -> log index

    def place(i: int, tried: set[int]) -> bool:
        for j in fits[i]:
            if j in tried:
                continue
            tried.add(j)
            if j not in owner or place(owner[j], tried):
                owner[j] = i
                return True
        return False

    for i in range(len(log)):
        assert place(i, set()), f"no client exchange fits {log[i]}"
    by_log = {i: exchanges[j] for j, i in owner.items()}
    return [by_log[i] for i in range(len(log))]


def burst_intake(n: int) -> OrderIntake:
    customer = {**REGISTERED, "id": 20 + n % 4, "email": f"buyer{n % 4}@example.com"}
    order = bc_order(3000 + n, customer_id=20 + n % 4)
    return mapped(order, lines=1 + n % 3, customer=customer)


async def test_a_burst_of_intakes_through_one_client_waits_out_every_retry_after() -> None:
    """20 concurrent intakes, one client, a limit of 5 requests per 2 s window.

    Ordering, on the stand-in's log: after a 429 that ended at t with Retry-After r, every request
    of our identity the stand-in began before t + r had already left the client before that 429
    reached it (requests in flight cannot be recalled; the gate's docstring says so, and with a
    16-slot start the client has up to 16 in flight). Which ones those were, and r, come from the
    client's side of each exchange, paired with the log by time (`pair_with_exchanges`). The same
    property is also checked on the client's side alone: after receiving a 429 at c with
    Retry-After r, nothing left the client before c + r.

    Tolerance: 2 ms. The log's times have 1 µs resolution (`started` is off by at most ~2 µs
    after rounding), and both processes read the same system wall clock; but the gate measures the
    pause on time.monotonic, which NTP slewing may move up to 500 ppm against the wall clock,
    at most 1 ms over a 2 s Retry-After. 2 ms is far below the 1-2 s waits, so it cannot hide a
    request that ignored Retry-After.
    """
    intakes = [burst_intake(n) for n in range(20)]
    with running_standin(settings={"LOCAL_DATAVERSE_REQUEST_LIMIT": "5/2"}) as standin:
        async with StandinAdmin(standin) as admin:
            recorder = ExchangeRecorder()
            client = standin.client(transport=recorder)
            try:
                results = await asyncio.gather(
                    *(write_order(client, rows_of(intake)) for intake in intakes)
                )
            finally:
                await client.aclose()
            log = await admin.requests()
            counts = await admin.row_counts(*ORDER_TABLES)

    assert all(result.ok for result in results), [r.error for r in results if not r.ok]
    assert counts == {
        "contact": 4,
        "salesorder": 20,
        "salesorderdetail": sum(len(i.lines) for i in intakes),
    }
    assert {(r.method, r.operation, r.identity) for r in log} == {("POST", "$batch", IDENTITY)}
    refused = [r for r in log if r.status == 429]
    assert refused, "the stand-in never throttled: the test proves nothing"
    assert sorted({r.status for r in log}) == [200, 429]
    assert sum(r.status == 200 for r in log) == 20
    # The client's account of the exchange agrees with the stand-in's.
    exchanges = recorder.exchanges
    assert len(exchanges) == len(log) == client.stats.requests
    assert sum(e.status == 429 for e in exchanges) == len(refused) == client.stats.throttled
    assert all(e.retry_after in (1, 2) for e in exchanges if e.status == 429)

    paired = pair_with_exchanges(log, exchanges)
    early: list[str] = []
    for throttled, its in zip(log, paired, strict=True):
        if throttled.status != 429:
            continue
        assert its.retry_after is not None
        resume = throttled.ended + its.retry_after - CLOCK_TOLERANCE
        for request, exchange in zip(log, paired, strict=True):
            in_flight = exchange.sent < its.received
            if throttled.ended < request.started < resume and not in_flight:
                early.append(
                    f"a request began {request.started - throttled.ended:.4f}s after a 429 "
                    f"with Retry-After {its.retry_after:g}"
                )
    assert early == []

    for throttle in (e for e in exchanges if e.status == 429):
        assert throttle.retry_after is not None
        resume = throttle.received + throttle.retry_after - CLOCK_TOLERANCE
        sent_early = [
            e.sent - throttle.received for e in exchanges if throttle.received < e.sent < resume
        ]
        assert sent_early == [], f"sent during a {throttle.retry_after:g}s Retry-After"
