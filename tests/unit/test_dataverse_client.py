"""The Web API client over an in-process transport (httpx.MockTransport), in simulated time.

The answers are Microsoft's documented ones (MicrosoftDocs/powerapps-docs,
powerapps-docs/developer/data-platform/), with "[Organization URI]" replaced by the test host:
[COMPOSE] webapi/compose-http-requests-handle-errors.md (04/14/2023), [UPSERT]
use-upsert-insert-update-record.md (03/09/2026), [CREATE] webapi/create-entity-web-api.md,
[COND] webapi/perform-conditional-operations-using-web-api.md, [PAGE] webapi/query/page-results.md
(07/01/2024), [CT] use-change-tracking-synchronize-data-external-systems.md (06/23/2023),
[LIMITS] api-limits.md, [PARALLEL] send-parallel-requests.md, [BATCH]
webapi/execute-batch-operations-using-web-api.md (01/14/2023).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shared.dataverse.auth import StaticTokenProvider
from shared.dataverse.batch import (
    BatchOperation,
    ChangeSet,
    Outcome,
    ParsedChangeSet,
    parse_batch_request,
)
from shared.dataverse.client import ClientOptions, DataverseClient
from shared.dataverse.errors import (
    BadRequestError,
    ConcurrencyError,
    DuplicateKeyError,
    NotFoundError,
    OutcomeUnknownError,
    PreconditionFailedError,
    ThrottledError,
)
from shared.dataverse.gate import GatePolicy, ThrottleGate
from shared.dataverse.models import KeyScalar, UpsertMode
from shared.dataverse.retry import RetryPolicy

HOST = "https://org.crm.dynamics.com"
API = f"{HOST}/api/data/v9.2"
KEY: dict[str, KeyScalar] = {"bciom_storehash": "s1", "bciom_bcorderid": 100}
KEY_PATH = "/api/data/v9.2/salesorders(bciom_storehash='s1',bciom_bcorderid=100)"

Handler = Callable[[httpx.Request], httpx.Response]


class SimTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        deadline = self.now + seconds
        await asyncio.sleep(0)
        self.now = max(self.now, deadline)


class Server:
    """Answers with the queued handlers in order, recording each request and when it came."""

    def __init__(self, time: SimTime, *answers: Handler) -> None:
        self.time = time
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(self.time.now)
        if not self.answers:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        return self.answers.pop(0)(request)


def reply(status: int, body: Any = None, **headers: str) -> Handler:
    def answer(_: httpx.Request) -> httpx.Response:
        hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
        if body is None:
            return httpx.Response(status, headers=hdrs)
        if isinstance(body, bytes):
            return httpx.Response(status, content=body, headers=hdrs)
        hdrs.setdefault("Content-Type", "application/json; odata.metadata=minimal")
        return httpx.Response(status, content=json.dumps(body).encode(), headers=hdrs)

    return answer


def failing(exc: type[httpx.RequestError]) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc("simulated", request=request)

    return answer


def make_client(
    server: Server, *, max_concurrency: int = 8, retry: RetryPolicy | None = None
) -> DataverseClient:
    options = ClientOptions(
        gate=GatePolicy(max_concurrency=max_concurrency),
        retry=retry or RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=8.0),
    )
    gate = ThrottleGate(options.gate, clock=server.time.clock, sleep=server.time.sleep)
    return DataverseClient(
        HOST,
        StaticTokenProvider("t0k3n"),
        options=options,
        gate=gate,
        transport=httpx.MockTransport(server),
        rng=lambda: 0.5,
    )


# -- headers and connection behaviour --------------------------------------------------------------


async def test_every_request_carries_the_baseline_headers_and_the_token_but_no_cookie() -> None:
    # [COMPOSE] "HTTP headers"; [PARALLEL]: no ARR affinity cookie, so load spreads.
    time = SimTime()
    server = Server(
        time,
        reply(200, {"UserId": "u"}, Set_Cookie="ARRAffinity=abc123; Path=/; HttpOnly"),
        reply(200, {"UserId": "u"}),
    )
    client = make_client(server)

    await client.who_am_i()
    await client.who_am_i()

    second = server.requests[1]
    assert second.headers["Accept"] == "application/json"
    assert second.headers["OData-MaxVersion"] == "4.0"
    assert second.headers["OData-Version"] == "4.0"
    assert second.headers["If-None-Match"] == "null"
    assert second.headers["Authorization"] == "Bearer t0k3n"
    assert "cookie" not in second.headers
    assert second.url.path == "/api/data/v9.2/WhoAmI"
    assert "t0k3n" not in repr(client)


async def test_writes_get_the_long_timeout_and_reads_the_short_one() -> None:
    time = SimTime()
    server = Server(time, reply(204, OData_EntityId=f"{API}/x"), reply(200, {"UserId": "u"}))
    client = make_client(server)

    await client.upsert("salesorders", KEY, {"name": "n"})
    await client.who_am_i()

    assert server.requests[0].extensions["timeout"]["read"] == 120.0
    assert server.requests[1].extensions["timeout"]["read"] == 60.0


async def test_the_dop_hint_of_any_response_sizes_the_gate() -> None:
    # [PARALLEL]: read x-ms-dop-hint from any response, e.g. WhoAmI.
    time = SimTime()
    server = Server(time, reply(200, {"UserId": "u"}, x_ms_dop_hint="4"))
    client = make_client(server, max_concurrency=16)

    await client.who_am_i()

    assert client.gate.snapshot().limit == 4


# -- writes ---------------------------------------------------------------------------------------


async def test_upsert_patches_the_key_url_without_conditions_or_key_columns() -> None:
    # [UPSERT] "Create with upsert": PATCH .../example_records(example_key1=2,example_key2=2),
    # 204 + OData-EntityId; key columns stay out of the body.
    time = SimTime()
    server = Server(
        time,
        reply(204, OData_EntityId=f"{API}/salesorders(bciom_storehash='s1',bciom_bcorderid=100)"),
    )
    client = make_client(server)

    result = await client.upsert("salesorders", KEY, {"name": "BC #100"})

    request = server.requests[0]
    assert request.method == "PATCH"
    assert request.url.raw_path.decode() == KEY_PATH
    assert "if-match" not in request.headers
    assert request.headers["If-None-Match"] == "null"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {"name": "BC #100"}
    assert result.status == 204
    assert result.created is None
    assert result.ref is not None
    assert result.ref.key_text == "bciom_storehash='s1',bciom_bcorderid=100"


@pytest.mark.parametrize(
    ("mode", "header", "value"),
    [(UpsertMode.UPDATE_ONLY, "If-Match", "*"), (UpsertMode.CREATE_ONLY, "If-None-Match", "*")],
)
async def test_upsert_modes_send_the_documented_conditions(
    mode: UpsertMode, header: str, value: str
) -> None:
    # [COND] "Prevent create in upsert" / "Prevent update in upsert".
    time = SimTime()
    server = Server(time, reply(204, OData_EntityId=f"{API}/x(1)"))
    client = make_client(server)

    await client.upsert("salesorders", KEY, {"name": "n"}, mode=mode)

    assert server.requests[0].headers[header] == value


async def test_upsert_with_select_tells_created_from_updated() -> None:
    # [UPSERT] "return=representation preference": 201 Created, then 200 OK.
    time = SimTime()
    row = {
        "@odata.context": f"{API}/$metadata#example_records(example_recordid)/$entity",
        "@odata.etag": 'W/"71004878"',
        "example_recordid": "ef0d112e-d70e-ed11-82e5-00224822577b",
    }
    server = Server(
        time,
        reply(201, row, ETag='W/"71004878"', Preference_Applied="return=representation"),
        reply(200, row | {"@odata.etag": 'W/"71004880"'}, ETag='W/"71004880"'),
    )
    client = make_client(server)
    key = {"example_key1": 3, "example_key2": 3}

    created = await client.upsert(
        "example_records", key, {"example_name": "3:3"}, select=["example_recordid"]
    )
    updated = await client.upsert(
        "example_records", key, {"example_name": "3:3 Updated"}, select=["example_recordid"]
    )

    first = server.requests[0]
    assert first.url.raw_path == (
        b"/api/data/v9.2/example_records(example_key1=3,example_key2=3)?$select=example_recordid"
    )
    assert first.headers["Prefer"] == "return=representation"
    assert (created.created, created.etag) == (True, 'W/"71004878"')
    assert created.row is not None
    assert created.row["example_recordid"] == "ef0d112e-d70e-ed11-82e5-00224822577b"
    assert (updated.created, updated.etag) == (False, 'W/"71004880"')


async def test_create_returns_the_new_rows_id_from_odata_entityid() -> None:
    # [CREATE] "Basic create": 204 No Content + OData-EntityId.
    time = SimTime()
    server = Server(
        time,
        reply(204, OData_EntityId=f"{API}/accounts(7eb682f1-ca75-e511-80d4-00155d2a68d1)"),
    )
    client = make_client(server)

    result = await client.create("accounts", {"name": "Sample Account"})

    assert server.requests[0].method == "POST"
    assert server.requests[0].url.path == "/api/data/v9.2/accounts"
    assert result.created is True
    assert result.ref is not None
    assert result.ref.id == uuid.UUID("7eb682f1-ca75-e511-80d4-00155d2a68d1")


async def test_update_with_an_etag_sends_it_in_if_match() -> None:
    # [COND] "Apply optimistic concurrency on update".
    time = SimTime()
    body = (
        b'{"error":{"code":"","message":"The version of the existing record doesn\'t match the '
        b'RowVersion property provided."}}'
    )
    server = Server(time, reply(412, body, Content_Type="application/json"))
    client = make_client(server)

    with pytest.raises(ConcurrencyError) as raised:
        await client.update("accounts", uuid.UUID(int=1), {"name": "x"}, etag='W/"470867"')

    assert server.requests[0].headers["If-Match"] == 'W/"470867"'
    assert isinstance(raised.value, PreconditionFailedError)
    assert len(server.requests) == 1


# -- retries and throttling -----------------------------------------------------------------------


async def test_a_429_holds_every_caller_until_retry_after_then_resends() -> None:
    # [LIMITS] "Retry operations": 429 with Retry-After in seconds; the limit is per user, so
    # no request of this identity is sent before the wait is over.
    time = SimTime()
    throttled = {"error": {"code": "0x80072322", "message": "Number of requests exceeded"}}
    server = Server(
        time,
        reply(429, throttled, Retry_After="7"),
        reply(204, OData_EntityId=f"{API}/x(1)"),
        reply(204, OData_EntityId=f"{API}/x(2)"),
    )
    client = make_client(server)

    first = asyncio.create_task(client.upsert("salesorders", KEY, {"name": "a"}))
    while client.gate.paused_for() == 0:  # noqa: ASYNC110 (start the second caller mid-pause)
        await asyncio.sleep(0)
    second = asyncio.create_task(client.upsert("salesorders", KEY, {"name": "b"}))
    await asyncio.gather(first, second)

    assert server.times[0] == 0.0
    assert server.times[1:] == [7.0, 7.0]
    assert client.stats.requests == 3
    assert client.stats.throttled == 1
    assert client.stats.retries == 1
    assert client.stats.by_status == {429: 1, 204: 2}


async def test_a_429_that_persists_ends_in_a_throttled_error() -> None:
    time = SimTime()
    server = Server(time, *[reply(429, None, Retry_After="1") for _ in range(4)])
    client = make_client(server)

    with pytest.raises(ThrottledError) as raised:
        await client.who_am_i()

    assert len(server.requests) == 4  # max_attempts
    assert raised.value.retry_after == 1.0


@pytest.mark.parametrize(("status", "error"), [(400, BadRequestError), (404, NotFoundError)])
async def test_client_errors_are_raised_at_once(status: int, error: type[Exception]) -> None:
    time = SimTime()
    server = Server(time, reply(status, {"error": {"code": "", "message": "no"}}))
    client = make_client(server)

    with pytest.raises(error):
        await client.upsert("salesorders", KEY, {"name": "x"}, mode=UpsertMode.UPDATE_ONLY)
    assert len(server.requests) == 1


async def test_a_create_only_upsert_on_an_existing_row_is_a_duplicate_key() -> None:
    # [COND] "Prevent update in upsert": 412 "A record with matching key values already exists."
    time = SimTime()
    body = {"error": {"code": "", "message": "A record with matching key values already exists."}}
    server = Server(time, reply(412, body))
    client = make_client(server)

    with pytest.raises(DuplicateKeyError):
        await client.upsert("salesorders", KEY, {"name": "x"}, mode=UpsertMode.CREATE_ONLY)
    assert len(server.requests) == 1


async def test_a_503_is_retried_for_an_upsert_but_not_for_a_create() -> None:
    time = SimTime()
    server = Server(
        time,
        reply(503, None),
        reply(204, OData_EntityId=f"{API}/x(1)"),
        reply(503, None),
    )
    client = make_client(server)

    await client.upsert("salesorders", KEY, {"name": "x"})
    with pytest.raises(OutcomeUnknownError):
        await client.create("accounts", {"name": "x"})

    assert [r.method for r in server.requests] == ["PATCH", "PATCH", "POST"]
    assert client.stats.waits == 1
    assert client.stats.waited_seconds == 0.75


async def test_a_create_is_resent_only_when_it_surely_never_left() -> None:
    time = SimTime()
    server = Server(
        time,
        failing(httpx.ConnectError),
        reply(204, OData_EntityId=f"{API}/accounts(7eb682f1-ca75-e511-80d4-00155d2a68d1)"),
        failing(httpx.ReadTimeout),
    )
    client = make_client(server)

    created = await client.create("accounts", {"name": "x"})
    with pytest.raises(OutcomeUnknownError):
        await client.create("accounts", {"name": "y"})

    assert created.created is True
    assert len(server.requests) == 3
    assert client.stats.transport_errors == 2


# -- reads ----------------------------------------------------------------------------------------

PAGE_1 = {
    "@odata.context": f"{API}/$metadata#contacts(fullname)",
    "value": [
        {
            "@odata.etag": 'W/"72201545"',
            "fullname": "Yvonne McKay (sample)",
            "contactid": "49b0be2e-d01c-ed11-b83e-000d3a572421",
        },
        {
            "@odata.etag": 'W/"80648695"',
            "fullname": "Susanna Stubberod (sample)",
            "contactid": "70bf4d48-34cb-ed11-b596-0022481d68cd",
        },
    ],
    "@odata.nextLink": f"{API}/contacts?$select=fullname&$skiptoken="
    "%3Ccookie%20pagenumber=%222%22%20pagingcookie=%22%253ccookie%2520page%253d%25221"
    "%2522%253e%253ccontactid%2520last%253d%2522%257bD5026A4D-D01C-ED11-B83E-000D3A57"
    "2421%257d%2522%2520first%253d%2522%257b49B0BE2E-D01C-ED11-B83E-000D3A572421%257d"
    "%2522%2520%252f%253e%253c%252fcookie%253e%22%20istracking=%22False%22%20/%3E",
}
PAGE_2 = {
    "@odata.context": f"{API}/$metadata#contacts(fullname)",
    "value": [
        {
            "@odata.etag": 'W/"80648710"',
            "fullname": "Nancy Anderson (sample)",
            "contactid": "72bf4d48-34cb-ed11-b596-0022481d68cd",
        },
        {
            "@odata.etag": 'W/"80648724"',
            "fullname": "Maria Campbell (sample)",
            "contactid": "74bf4d48-34cb-ed11-b596-0022481d68cd",
        },
    ],
}


async def test_paging_follows_the_next_link_unchanged_with_the_same_page_size() -> None:
    # [PAGE]: "Don't change the @odata.nextLink URL value or append any query options to it",
    # and send the same odata.maxpagesize each time.
    time = SimTime()
    applied = {"Preference_Applied": "odata.maxpagesize=2"}
    server = Server(time, reply(200, PAGE_1, **applied), reply(200, PAGE_2, **applied))
    client = make_client(server)

    names = [
        row["fullname"] async for row in client.rows("contacts", select=["fullname"], page_size=2)
    ]

    assert names == [
        "Yvonne McKay (sample)",
        "Susanna Stubberod (sample)",
        "Nancy Anderson (sample)",
        "Maria Campbell (sample)",
    ]
    first, second = server.requests
    assert first.url.raw_path == b"/api/data/v9.2/contacts?$select=fullname"
    assert str(second.url) == PAGE_1["@odata.nextLink"]
    assert first.headers["Prefer"] == second.headers["Prefer"] == "odata.maxpagesize=2"


async def test_a_link_to_another_host_is_not_followed() -> None:
    time = SimTime()
    server = Server(
        time,
        reply(200, PAGE_1 | {"@odata.nextLink": "https://evil.example/api/data/v9.2/contacts"}),
    )
    client = make_client(server)

    page = await client.query("contacts", select=["fullname"], page_size=2)
    with pytest.raises(ValueError, match="refusing to send the Dataverse token"):
        await client.next_page(page)

    assert len(server.requests) == 1


async def test_query_options_are_encoded_in_the_url() -> None:
    time = SimTime()
    server = Server(time, reply(200, {"value": [], "@odata.count": 0}))
    client = make_client(server)

    page = await client.query(
        "contacts",
        select=["fullname", "emailaddress1"],
        filter="emailaddress1 eq 'o''brien@example.com'",
        orderby="fullname desc",
        top=5,
        count=True,
    )

    assert server.requests[0].url.raw_path == (
        b"/api/data/v9.2/contacts?$select=fullname,emailaddress1"
        b"&$filter=emailaddress1%20eq%20'o''brien@example.com'"
        b"&$orderby=fullname%20desc&$top=5&$count=true"
    )
    assert page.count == 0
    assert page.rows == ()


async def test_retrieve_by_key_and_conditional_retrieve() -> None:
    # [COND] "Conditional retrievals": If-None-Match: W/"468026" -> 304 Not Modified.
    time = SimTime()
    row = {"@odata.etag": 'W/"468026"', "name": "A"}
    server = Server(time, reply(200, row), reply(304, None))
    client = make_client(server)

    fresh = await client.retrieve("accounts", {"accountnumber": "ABC123"}, select=["name"])
    again = await client.retrieve(
        "accounts", {"accountnumber": "ABC123"}, select=["name"], if_none_match='W/"468026"'
    )

    assert (
        server.requests[0].url.raw_path
        == b"/api/data/v9.2/accounts(accountnumber='ABC123')?$select=name"
    )
    assert (fresh.row, fresh.etag) == (row, 'W/"468026"')
    assert server.requests[1].headers["If-None-Match"] == 'W/"468026"'
    assert again.not_modified
    assert again.row is None


async def test_change_tracking_reads_rows_deletions_and_the_next_delta_link() -> None:
    # [CT] "Retrieve changes in tables using Web API example" (v9.0 URLs as in the doc).
    time = SimTime()
    first_link = (
        f"{HOST}/api/data/v9.0/accounts?$select=name,accountnumber,telephone1,fax"
        "&$deltatoken=919042%2108%2f22%2f2017%2008%3a10%3a44"
    )
    initial = {
        "@odata.context": (
            f"{HOST}/api/data/v9.0/$metadata#accounts(name,accountnumber,telephone1,fax)"
        ),
        "@odata.deltaLink": first_link,
        "value": [
            {
                "@odata.etag": 'W/"915244"',
                "name": "Monte Orton",
                "accountnumber": None,
                "telephone1": "555000",
                "fax": "10101",
                "accountid": "60c4e274-0d87-e711-80e5-00155db19e6d",
            }
        ],
    }
    delta = {
        "@odata.context": f"{HOST}/data/v9.0/$metadata#accounts(name,telephone1,fax)/$delta",
        "@odata.deltaLink": (
            f"{HOST}/api/data/v9.0/accounts?$select=name,telephone1,fax"
            "&$deltatoken=919058%2108%2f22%2f2017%2008%3a21%3a20"
        ),
        "value": [
            {
                "@odata.etag": 'W/"915244"',
                "name": "Monte Orton",
                "telephone1": "555000",
                "fax": "10101",
                "accountid": "60c4e274-0d87-e711-80e5-00155db19e6d",
            },
            {
                "@odata.context": f"{HOST}/api/data/v9.0/$metadata#accounts/$deletedEntity",
                "id": "2e451703-c686-e711-80e5-00155db19e6d",
                "reason": "deleted",
            },
        ],
    }
    server = Server(
        time,
        reply(200, initial, Preference_Applied="odata.track-changes"),
        reply(200, delta),
        reply(200, b""),
    )
    client = make_client(server)

    start = await client.start_tracking(
        "accounts", select=["name", "accountnumber", "telephone1", "fax"]
    )
    changes = await client.changes_since(start.delta_link or "")
    nothing = await client.changes_since(changes.delta_link or "")

    assert server.requests[0].headers["Prefer"] == "odata.track-changes"
    assert start.delta_link == first_link
    assert len(start.rows) == 1
    assert str(server.requests[1].url) == first_link
    assert [row["name"] for row in changes.rows] == ["Monte Orton"]
    assert changes.deleted == (uuid.UUID("2e451703-c686-e711-80e5-00155db19e6d"),)
    assert changes.delta_link is not None
    assert changes.delta_link.endswith("919058%2108%2f22%2f2017%2008%3a21%3a20")
    assert nothing.rows == ()
    assert nothing.delta_link == changes.delta_link


async def test_errors_can_be_returned_instead_of_raised() -> None:
    time = SimTime()
    server = Server(time, reply(404, {"error": {"code": "", "message": "no table"}}))
    client = make_client(server)

    response = await client.request(
        "GET", "EntityDefinitions(LogicalName='x')", raise_for_status=False
    )

    assert response.status_code == 404


# -- $batch ---------------------------------------------------------------------------------------


def batch_answer(*units: list[tuple[str, int, str]] | tuple[int, str]) -> bytes:
    """A multipart response: a list is a change set of (content-id, status, reason-and-headers)."""
    lines = []
    for unit in units:
        lines.append("--batchresponse_x")
        if isinstance(unit, list):
            lines += ["Content-Type: multipart/mixed; boundary=changesetresponse_y", ""]
            for content_id, status, extra in unit:
                lines += [
                    "--changesetresponse_y",
                    "Content-Type: application/http",
                    "Content-Transfer-Encoding: binary",
                    f"Content-ID: {content_id}",
                    "",
                    f"HTTP/1.1 {status} {extra}",
                    "",
                ]
            lines.append("--changesetresponse_y--")
        else:
            status, extra = unit
            lines += [
                "Content-Type: application/http",
                "Content-Transfer-Encoding: binary",
                "",
                f"HTTP/1.1 {status} {extra}",
                "",
            ]
    lines += ["--batchresponse_x--", ""]
    return "\r\n".join(lines).encode()


def multipart(status: int, body: bytes, **headers: str) -> Handler:
    return reply(status, body, Content_Type="multipart/mixed; boundary=batchresponse_x", **headers)


async def test_batch_items_refused_with_429_are_resent_alone_after_the_wait() -> None:
    # [BATCH] continue-on-error gives one answer per item; a throttled change set was rolled
    # back, so it alone is sent again after Retry-After ([LIMITS]); the other is not repeated.
    time = SimTime()
    first = batch_answer(
        [("1", 429, "Too Many Requests\r\nRetry-After: 5")],
        [("2", 204, "No Content")],
    )
    second = batch_answer([("1", 204, "No Content")])
    server = Server(time, multipart(200, first), multipart(200, second))
    client = make_client(server)
    items = [
        ChangeSet((BatchOperation("PATCH", "contacts(k='a')", {"x": 1}, content_id="1"),)),
        ChangeSet((BatchOperation("PATCH", "contacts(k='b')", {"x": 2}, content_id="2"),)),
    ]

    result = await client.execute_batch(items)

    assert result.ok
    assert server.times == [0.0, 5.0]
    assert server.requests[0].headers["Prefer"] == "odata.continue-on-error"
    resent = parse_batch_request(
        server.requests[1].content, server.requests[1].headers["content-type"]
    )
    assert len(resent) == 1
    assert isinstance(resent[0], ParsedChangeSet)
    assert resent[0].operations[0].url == "/api/data/v9.2/contacts(k='a')"
    assert client.stats.batches == 2
    assert client.stats.batch_operations == 3
    assert client.stats.throttled == 1
    assert client.stats.retries == 1


async def test_a_batch_that_stopped_on_an_error_reports_it_without_raising() -> None:
    # [BATCH] "Handling errors": without continue-on-error the outer status is 400 and only the
    # failed part comes back.
    time = SimTime()
    server = Server(time, multipart(400, batch_answer((400, "Bad Request"))))
    client = make_client(server)
    items = [
        BatchOperation("POST", "tasks", {"subject": "x"}),
        BatchOperation("POST", "tasks", {"subject": "y"}),
    ]

    result = await client.execute_batch(items, continue_on_error=False)

    assert result.status == 400
    assert [r.outcome for r in result.operations] == [Outcome.FAILED, Outcome.NOT_EXECUTED]
    assert "prefer" not in server.requests[0].headers
    assert len(server.requests) == 1


async def test_a_batch_refused_as_a_whole_raises() -> None:
    time = SimTime()
    server = Server(time, reply(400, {"error": {"code": "0x80048d19", "message": "bad batch"}}))
    client = make_client(server)

    with pytest.raises(BadRequestError, match="bad batch"):
        await client.execute_batch([BatchOperation("PATCH", "contacts(k='a')", {"x": 1})])


async def test_a_whole_batch_429_is_retried_like_any_request() -> None:
    time = SimTime()
    server = Server(
        time,
        reply(429, {"error": {"code": "0x80072326", "message": "concurrent"}}, Retry_After="3"),
        multipart(200, batch_answer((204, "No Content"))),
    )
    client = make_client(server)

    result = await client.execute_batch([BatchOperation("PATCH", "contacts(k='a')", {"x": 1})])

    assert result.ok
    assert server.times == [0.0, 3.0]
