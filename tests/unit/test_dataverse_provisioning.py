"""Provisioning against an in-memory metadata endpoint, and the httpx adapter of its port.

The fake (tests/support/dataverse_metadata.py) answers the documented metadata requests and
builds key indexes one step per read, so waiting is driven by a fake clock that only moves when
provisioning sleeps: no test depends on real time.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shared.dataverse.metadata import HttpMetadataApi, MetadataApiError, MetadataResponse
from shared.dataverse.provisioning import (
    KeyStatus,
    Severity,
    check,
    diff,
    provision,
    read_environment,
)
from shared.dataverse.schema import (
    CONTACT,
    FULFILLMENT_ORDER,
    FULFILLMENT_ORDER_DETAIL,
    INVENTORY_LEVEL,
    JOURNAL,
    ORDER_REFUND,
    ORDER_REFUND_LINE,
    PRODUCT,
    SALESORDER,
    SCHEMA,
    SYNC_STATE,
)
from tests.support.dataverse_metadata import (
    FakeAttribute,
    FakeKey,
    FakeMetadataApi,
    over_http,
    standard_environment,
)

ALL_KEYS = [(t.logical_name, k.logical_name) for t in SCHEMA for k in t.keys]


class FakeClock:
    """Monotonic time that advances only when provisioning sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def our_columns(*, iom: bool = True) -> set[tuple[str, str]]:
    return {
        (t.logical_name, c.logical_name)
        for t in SCHEMA
        if t.required or iom
        for c in t.columns
        if c.ours and not (t.ours and c.logical_name == t.primary_name)
    }


def created(api: FakeMetadataApi) -> set[tuple[str, str]]:
    """(table, column or key) of every creation the fake received."""
    made: set[tuple[str, str]] = set()
    for path, body in api.posts:
        if path == "RelationshipDefinitions":
            made.add((body["ReferencingEntity"], body["Lookup"]["SchemaName"]))
        elif path.endswith(("/Attributes", "/Keys")):
            table = path.split("'")[1]
            made.add((table, body["SchemaName"]))
    return made


async def run(api: FakeMetadataApi, clock: FakeClock | None = None, **options: Any) -> Any:
    clock = clock or FakeClock()
    return await provision(api, clock=clock, sleep=clock.sleep, poll_seconds=5, **options)


# -- check ----------------------------------------------------------------------------------------


async def test_check_lists_every_missing_piece_of_a_fresh_environment_and_writes_nothing() -> None:
    api = FakeMetadataApi(standard_environment())

    plan = await check(api)

    assert api.posts == []
    creations = {(d.table, d.subject) for d in plan.of(Severity.CREATE)}
    our_tables = {(t.logical_name, "table") for t in SCHEMA if t.ours}
    assert (JOURNAL.logical_name, "table") in our_tables <= creations
    assert {(t, f"column {c}") for t, c in our_columns()} <= creations
    assert {(t, f"key {k}") for t, k in ALL_KEYS} <= creations
    assert len(creations) == len(our_tables) + len(our_columns()) + len(ALL_KEYS)
    assert plan.conflicts == ()
    assert not plan.in_sync
    # Tables first, then columns, then keys: a key never precedes its columns.
    phases = [w.phase for w in plan.writes()]
    assert phases == sorted(phases)
    assert plan.writes()[0].path == "EntityDefinitions"


async def test_check_names_conflicts_it_will_not_fix() -> None:
    tables = standard_environment()
    contact = tables[CONTACT.logical_name]
    contact.attributes["bciom_bccustomerid"] = FakeAttribute("String", 20)
    contact.attributes["bciom_customerkey"] = FakeAttribute("String", 50)
    contact.attributes["bciom_storehash"] = FakeAttribute("String", 100)  # longer is fine
    del tables[SALESORDER.logical_name].attributes["totalamount"]
    tables[PRODUCT.logical_name].keys["bciom_product_number"] = FakeKey(("name",), "Active")
    api = FakeMetadataApi(tables)

    plan = await check(api)

    assert {(d.table, d.subject, d.detail) for d in plan.conflicts} == {
        ("contact", "column bciom_bccustomerid", "type is String, schema says Integer"),
        ("contact", "column bciom_customerkey", "max length is 50, schema says 120"),
        ("salesorder", "column totalamount", "standard column missing (not ours)"),
        ("product", "key bciom_product_number", "is on name, schema says productnumber"),
    }
    report = await run(api)
    assert report.refused
    assert not report.ok
    assert api.posts == []


async def test_absent_iom_tables_are_skipped_and_a_missing_standard_table_is_a_conflict() -> None:
    tables = standard_environment(iom=False)
    plan = await check(FakeMetadataApi(tables))
    skipped = {d.table for d in plan.of(Severity.INFO)}
    assert skipped == {FULFILLMENT_ORDER.logical_name, FULFILLMENT_ORDER_DETAIL.logical_name}
    assert plan.conflicts == ()

    del tables[PRODUCT.logical_name]
    plan = await check(FakeMetadataApi(tables))
    assert [(d.table, d.detail) for d in plan.conflicts] == [
        ("product", "standard table missing (not created by us)")
    ]


async def test_an_existing_key_on_the_same_columns_counts_whatever_its_name() -> None:
    tables = standard_environment()
    product = tables[PRODUCT.logical_name]
    product.keys["msdyn_productnumber"] = FakeKey(("productnumber",), "Active")

    plan = await check(FakeMetadataApi(tables))

    assert [d for d in plan.differences if d.table == "product"] == []


# -- provision ------------------------------------------------------------------------------------


async def test_first_run_creates_exactly_what_is_missing_then_waits_until_keys_are_active() -> None:
    api = FakeMetadataApi(standard_environment())
    clock = FakeClock()

    report = await run(api, clock)

    assert report.ok
    assert report.error is None
    assert not report.timed_out
    assert created(api) == our_columns() | set(ALL_KEYS)
    tables = {t["SchemaName"]: t for t in api.posted("EntityDefinitions")}
    assert set(tables) == {t.logical_name for t in SCHEMA if t.ours}
    for ours in (JOURNAL, ORDER_REFUND, ORDER_REFUND_LINE, INVENTORY_LEVEL, SYNC_STATE):
        assert tables[ours.logical_name]["EntitySetName"] == ours.entity_set
        assert tables[ours.logical_name]["Attributes"][0]["SchemaName"] == ours.primary_name
    lookups = api.posted("RelationshipDefinitions")
    assert {
        (b["ReferencingEntity"], b["ReferencedEntity"], b["ReferencedAttribute"]) for b in lookups
    } == {
        (JOURNAL.logical_name, "salesorder", "salesorderid"),
        (FULFILLMENT_ORDER.logical_name, "salesorder", "salesorderid"),
        (ORDER_REFUND.logical_name, "salesorder", "salesorderid"),
        (ORDER_REFUND_LINE.logical_name, ORDER_REFUND.logical_name, ORDER_REFUND.primary_id),
        (ORDER_REFUND_LINE.logical_name, "salesorderdetail", "salesorderdetailid"),
    }
    assert {(k.table, k.key, k.status) for k in report.keys} == {
        (t, k, KeyStatus.ACTIVE) for t, k in ALL_KEYS
    }
    assert clock.sleeps, "the keys were Pending after creation, so provisioning had to wait"
    # The environment now matches the schema.
    assert (await check(api)).in_sync


async def test_each_column_kind_is_created_with_its_documented_metadata_type() -> None:
    api = FakeMetadataApi(standard_environment())
    await run(api)

    kinds = {
        body["SchemaName"]: (body["@odata.type"], body.get("MaxLength"))
        for path, body in api.posts
        if path.endswith("/Attributes")
    }
    crm = "Microsoft.Dynamics.CRM."
    assert kinds["bciom_customerkey"] == (crm + "StringAttributeMetadata", 120)
    assert kinds["bciom_holdreason"] == (crm + "MemoAttributeMetadata", 4000)
    assert kinds["bciom_bcorderid"][0] == crm + "IntegerAttributeMetadata"
    assert kinds["bciom_bcdatemodified"][0] == crm + "DateTimeAttributeMetadata"
    assert kinds["bciom_shipped"][0] == crm + "BooleanAttributeMetadata"
    assert kinds["bciom_quantity"][0] == crm + "DecimalAttributeMetadata"


async def test_second_run_makes_no_writes() -> None:
    api = FakeMetadataApi(standard_environment())
    assert (await run(api)).ok
    api.posts.clear()

    report = await run(api)

    assert api.posts == []
    assert report.written == ()
    assert report.ok
    assert report.plan.in_sync


async def test_failed_keys_are_reported_and_reactivated_only_when_asked() -> None:
    failing = "bciom_contact_customer"
    api = FakeMetadataApi(standard_environment(), failing_keys=frozenset({failing}))

    report = await run(api)

    assert not report.ok
    assert not report.timed_out
    assert [(k.table, k.key) for k in report.failed_keys] == [("contact", failing)]
    assert api.posted("ReactivateEntityKey") == []
    plan = await check(api)
    assert [(d.table, d.subject, d.severity) for d in plan.differences] == [
        ("contact", f"key {failing}", Severity.FAILED)
    ]

    api.posts.clear()
    report = await run(api, reactivate_failed=True)

    assert api.posts == [
        ("ReactivateEntityKey", {"EntityLogicalName": "contact", "EntityKeyLogicalName": failing})
    ]
    assert report.ok
    assert report.failed_keys == ()


async def test_waiting_is_bounded_by_the_injected_clock() -> None:
    api = FakeMetadataApi(standard_environment(), stalled=True)
    clock = FakeClock()

    report = await run(api, clock, wait_seconds=60)

    assert report.timed_out
    assert not report.ok
    assert {(k.table, k.key) for k in report.pending_keys} == set(ALL_KEYS)
    assert sum(clock.sleeps) == 60
    assert len(clock.sleeps) == 12


async def test_wait_zero_reports_key_states_without_sleeping() -> None:
    api = FakeMetadataApi(standard_environment())
    clock = FakeClock()

    report = await run(api, clock, wait_seconds=0)

    assert clock.sleeps == []
    assert report.timed_out
    assert created(api) == our_columns() | set(ALL_KEYS)


async def test_a_refused_write_stops_provisioning_and_names_the_write() -> None:
    api = FakeMetadataApi(standard_environment(), refuse=frozenset({"bciom_customerkey"}))

    report = await run(api)

    assert not report.ok
    assert report.error is not None
    assert report.error.startswith("create column contact.bciom_customerkey (string): POST ")
    assert "HTTP 400 0x80044363: bciom_customerkey is not a valid name." in report.error
    assert api.posts[-1][1]["SchemaName"] == "bciom_customerkey"
    assert api.posted("EntityDefinitions(LogicalName='contact')/Keys") == []


async def test_an_unreadable_definition_raises_with_the_dataverse_message() -> None:
    class Forbidden(FakeMetadataApi):
        async def get(self, path: str) -> MetadataResponse:
            return MetadataResponse(403, {"error": {"code": "0x80040220", "message": "No."}})

    with pytest.raises(MetadataApiError, match=r"GET EntityDefinitions\(LogicalName='contact'\)"):
        await read_environment(Forbidden())


def test_diff_is_pure_and_reads_nothing() -> None:
    plan = diff({}, [CONTACT])
    assert [d.line() for d in plan.differences][:1] == [
        "conflict: contact: table: standard table missing (not created by us)"
    ]


# -- the httpx adapter ----------------------------------------------------------------------------


async def token() -> str:
    return "t0ken"


async def test_provisioning_over_http_reaches_the_documented_urls() -> None:
    fake = FakeMetadataApi(standard_environment())
    seen: list[httpx.Request] = []
    transport = over_http(fake, token="t0ken", seen=seen)
    async with HttpMetadataApi.for_environment(
        "http://127.0.0.1:7073/", token, solution="bciom", transport=transport
    ) as api:
        report = await provision(api, poll_seconds=0, wait_seconds=30)
        second = await provision(api, poll_seconds=0)

    assert report.ok
    assert second.written == ()
    urls = {str(r.url) for r in seen}
    assert (
        "http://127.0.0.1:7073/api/data/v9.2/EntityDefinitions(LogicalName='contact')"
        "/Keys?$select=LogicalName,KeyAttributes,EntityKeyIndexStatus"
    ) in urls
    posts = [r for r in seen if r.method == "POST"]
    assert posts
    assert all(r.headers["MSCRM.SolutionUniqueName"] == "bciom" for r in posts)
    assert all(r.headers["Content-Type"].startswith("application/json") for r in posts)
    assert all("Consistency" in r.headers for r in seen if r.method == "GET")


async def test_the_adapter_returns_statuses_and_bodies_as_they_come() -> None:
    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("Missing')"):
            return httpx.Response(404, json={"error": {"code": "0x80040217", "message": "gone"}})
        return httpx.Response(204, headers={"OData-EntityId": "x"})

    async with HttpMetadataApi.for_environment(
        "https://contoso.crm.dynamics.com", token, transport=httpx.MockTransport(handle)
    ) as api:
        missing = await api.get("EntityDefinitions(LogicalName='Missing')")
        made = await api.post("EntityDefinitions", {"SchemaName": "x"})

    assert (missing.status, missing.body["error"]["message"]) == (404, "gone")
    assert (made.status, made.body, made.headers["odata-entityid"]) == (204, None, "x")
    assert str(MetadataApiError("GET", "EntityDefinitions(x)?$select=a", missing)) == (
        "GET EntityDefinitions(x): HTTP 404 0x80040217: gone"
    )
