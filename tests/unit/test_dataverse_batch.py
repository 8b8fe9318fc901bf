"""$batch: the multipart builder, the parsers, and matching responses to operations.

The byte strings below are copied from Microsoft's page "Execute batch operations using the Web
API" (MicrosoftDocs/powerapps-docs, powerapps-docs/developer/data-platform/webapi/
execute-batch-operations-using-web-api.md, ms.date 01/14/2023), cited per test as [BATCH] with
the section. They are LF-only as published; each parser test also runs them with CRLF.
"""

from __future__ import annotations

import json

import pytest

from shared.dataverse.batch import (
    BatchFormatError,
    BatchItem,
    BatchOperation,
    ChangeSet,
    ChangeSetResponse,
    Outcome,
    ParsedChangeSet,
    ParsedOperation,
    PartResponse,
    boundary_of,
    encode_batch,
    match_responses,
    parse_batch_request,
    parse_batch_response,
    validate_batch,
)
from shared.dataverse.errors import BadRequestError, DuplicateKeyError, PreconditionFailedError

# [BATCH] "Change sets": the response to a change set of three creates plus a GET. The outer
# boundary is not in a header (the doc omits it); the change set's boundary is unquoted.
CHANGESET_RESPONSE = b"""--batchresponse_f27ef42d-51b0-4685-bac9-f468f844de2f
Content-Type: multipart/mixed; boundary=changesetresponse_64cc3fff-023a-45b0-b29d-df21583ffa15

--changesetresponse_64cc3fff-023a-45b0-b29d-df21583ffa15
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 1

HTTP/1.1 204 No Content
OData-Version: 4.0
Location: [Organization Uri]/api/data/v9.2/tasks(e73ffc82-e292-ed11-aad1-000d3a9933c9)
OData-EntityId: [Organization Uri]/api/data/v9.2/tasks(e73ffc82-e292-ed11-aad1-000d3a9933c9)


--changesetresponse_64cc3fff-023a-45b0-b29d-df21583ffa15
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 2

HTTP/1.1 204 No Content
OData-Version: 4.0
Location: [Organization Uri]/api/data/v9.2/tasks(e83ffc82-e292-ed11-aad1-000d3a9933c9)
OData-EntityId: [Organization Uri]/api/data/v9.2/tasks(e83ffc82-e292-ed11-aad1-000d3a9933c9)


--changesetresponse_64cc3fff-023a-45b0-b29d-df21583ffa15
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 3

HTTP/1.1 204 No Content
OData-Version: 4.0
Location: [Organization Uri]/api/data/v9.2/tasks(e93ffc82-e292-ed11-aad1-000d3a9933c9)
OData-EntityId: [Organization Uri]/api/data/v9.2/tasks(e93ffc82-e292-ed11-aad1-000d3a9933c9)


--changesetresponse_64cc3fff-023a-45b0-b29d-df21583ffa15--
--batchresponse_f27ef42d-51b0-4685-bac9-f468f844de2f
Content-Type: application/http
Content-Transfer-Encoding: binary

HTTP/1.1 200 OK
Content-Type: application/json; odata.metadata=minimal; odata.streaming=true
OData-Version: 4.0

{
  "@odata.context": "[Organization Uri]/api/data/v9.2/$metadata#tasks(subject)",
  "value": [
    {
      "@odata.etag": "W/\\"77181173\\"",
      "subject": "Task 1 in batch",
      "activityid": "e73ffc82-e292-ed11-aad1-000d3a9933c9"
    },
    {
      "@odata.etag": "W/\\"77181176\\"",
      "subject": "Task 2 in batch",
      "activityid": "e83ffc82-e292-ed11-aad1-000d3a9933c9"
    },
    {
      "@odata.etag": "W/\\"77181179\\"",
      "subject": "Task 3 in batch",
      "activityid": "e93ffc82-e292-ed11-aad1-000d3a9933c9"
    }
  ]
}
--batchresponse_f27ef42d-51b0-4685-bac9-f468f844de2f--
"""

# [BATCH] "Change sets": the request that produced CHANGESET_RESPONSE (quoted boundaries,
# relative URLs, "Content-ID: n").
CHANGESET_REQUEST_CONTENT_TYPE = (
    'multipart/mixed; boundary="batch_22975cad-7f57-410d-be15-6363209367ea"'
)
CHANGESET_REQUEST = b"""--batch_22975cad-7f57-410d-be15-6363209367ea
Content-Type: multipart/mixed; boundary="changeset_246e6bfe-89a4-4c77-b293-7a433f082e8a"

--changeset_246e6bfe-89a4-4c77-b293-7a433f082e8a
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 1

POST /api/data/v9.2/tasks HTTP/1.1
Content-Type: application/json; type=entry

{
  "subject": "Task 1 in batch",
  "regardingobjectid_account_task@odata.bind": "accounts(00000000-0000-0000-0000-000000000001)"
}
--changeset_246e6bfe-89a4-4c77-b293-7a433f082e8a
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 2

POST /api/data/v9.2/tasks HTTP/1.1
Content-Type: application/json; type=entry

{
  "subject": "Task 2 in batch",
  "regardingobjectid_account_task@odata.bind": "accounts(00000000-0000-0000-0000-000000000001)"
}
--changeset_246e6bfe-89a4-4c77-b293-7a433f082e8a
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 3

POST /api/data/v9.2/tasks HTTP/1.1
Content-Type: application/json; type=entry

{
  "subject": "Task 3 in batch",
  "regardingobjectid_account_task@odata.bind": "accounts(00000000-0000-0000-0000-000000000001)"
}
--changeset_246e6bfe-89a4-4c77-b293-7a433f082e8a--

--batch_22975cad-7f57-410d-be15-6363209367ea
Content-Type: application/http
Content-Transfer-Encoding: binary

GET /api/data/v9.2/accounts(00000000-0000-0000-0000-000000000001)/Account_Tasks?$select=subject HTTP/1.1


--batch_22975cad-7f57-410d-be15-6363209367ea--
"""  # noqa: E501 (verbatim from the doc)

# [BATCH] "Reference URIs in URL and request body using @odata.id": the request. Unquoted
# boundary, no space after the header colons, absolute URLs with the doc's placeholder host.
ODATA_ID_REQUEST_CONTENT_TYPE = "multipart/mixed;boundary=batch_AAA123"
ODATA_ID_REQUEST = b"""--batch_AAA123
Content-Type: multipart/mixed; boundary=changeset_dd81ccab-11ce-4d57-b91d-12c4e25c3cab

--changeset_dd81ccab-11ce-4d57-b91d-12c4e25c3cab
Content-Type:application/http
Content-Transfer-Encoding:binary
Content-ID:1

POST [Organization URI]/api/data/v9.2/accounts HTTP/1.1
Content-Type: application/json

{ "name":"Account Name"}

--changeset_dd81ccab-11ce-4d57-b91d-12c4e25c3cab
Content-Type:application/http
Content-Transfer-Encoding:binary
Content-ID:2

POST [Organization URI]/api/data/v9.2/contacts HTTP/1.1
Content-Type:application/json

{ "firstname":"Contact first name"}

--changeset_dd81ccab-11ce-4d57-b91d-12c4e25c3cab
Content-Type:application/http
Content-Transfer-Encoding:binary
Content-ID:3

PUT $1/primarycontactid/$ref HTTP/1.1
Content-Type:application/json

{"@odata.id":"$2"}

--changeset_dd81ccab-11ce-4d57-b91d-12c4e25c3cab--
--batch_AAA123--
"""

# [BATCH] "Reference URI in request URL": the response. No space after "Location:" and
# "OData-EntityId:", and a part (Content-ID 2) without either header.
URL_REFERENCE_RESPONSE = b"""--batchresponse_2cb48f48-39a8-41ea-aa52-132fa8ab3c2d
Content-Type: multipart/mixed; boundary=changesetresponse_d7528170-3ef3-41bd-be8e-eac971a8d9d4

--changesetresponse_d7528170-3ef3-41bd-be8e-eac971a8d9d4
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 1

HTTP/1.1 204 No Content
OData-Version: 4.0
Location:[Organization URI]/api/data/v9.2/contacts(f8ea5d2c-8c75-e911-a97a-000d3a34a1bd)
OData-EntityId:[Organization URI]/api/data/v9.2/contacts(f8ea5d2c-8c75-e911-a97a-000d3a34a1bd)


--changesetresponse_d7528170-3ef3-41bd-be8e-eac971a8d9d4
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 2

HTTP/1.1 204 No Content
OData-Version: 4.0


--changesetresponse_d7528170-3ef3-41bd-be8e-eac971a8d9d4--
--batchresponse_2cb48f48-39a8-41ea-aa52-132fa8ab3c2d--
"""

# [BATCH] "Handling errors": without Prefer: odata.continue-on-error the outer status is the
# failure's (400) and the body holds only the failed part, which carries REQ_ID.
STOPPED_RESPONSE = b"""--batchresponse_156da4b8-cd2c-4862-a911-4aaab97c001a
Content-Type: application/http
Content-Transfer-Encoding: binary

HTTP/1.1 400 Bad Request
REQ_ID: 5ecd1cb3-1730-4ffc-909c-d44c22270026
Content-Type: application/json; odata.metadata=minimal
OData-Version: 4.0

{"error":{"code":"0x80044331","message":"A validation error occurred.  The length of the 'subject' attribute of the 'task' entity exceeded the maximum allowed length of '200'."}}
--batchresponse_156da4b8-cd2c-4862-a911-4aaab97c001a--

"""  # noqa: E501 (verbatim from the doc)

# [BATCH] "Handling errors": with Prefer: odata.continue-on-error, 200 and one part per request.
CONTINUED_RESPONSE = b"""--batchresponse_f44bd09d-573f-4a30-bca0-2e500ee7e139
Content-Type: application/http
Content-Transfer-Encoding: binary

HTTP/1.1 400 Bad Request
REQ_ID: de4c5227-4a28-4ebd-8ced-3392ece1697b
Content-Type: application/json; odata.metadata=minimal
OData-Version: 4.0

{"error":{"code":"0x80044331","message":"A validation error occurred.  The length of the 'subject' attribute of the 'task' entity exceeded the maximum allowed length of '200'."}}
--batchresponse_f44bd09d-573f-4a30-bca0-2e500ee7e139
Content-Type: application/http
Content-Transfer-Encoding: binary

HTTP/1.1 204 No Content
OData-Version: 4.0
Location: [Organization Uri]/api/data/v9.2/tasks(aed2ae8b-3c94-ed11-aad1-000d3a9933c9)
OData-EntityId: [Organization Uri]/api/data/v9.2/tasks(aed2ae8b-3c94-ed11-aad1-000d3a9933c9)


--batchresponse_f44bd09d-573f-4a30-bca0-2e500ee7e139
Content-Type: application/http
Content-Transfer-Encoding: binary

HTTP/1.1 204 No Content
OData-Version: 4.0
Location: [Organization Uri]/api/data/v9.2/tasks(b181a991-3c94-ed11-aad1-000d3a9933c9)
OData-EntityId: [Organization Uri]/api/data/v9.2/tasks(b181a991-3c94-ed11-aad1-000d3a9933c9)


--batchresponse_f44bd09d-573f-4a30-bca0-2e500ee7e139--

"""  # noqa: E501 (verbatim from the doc)

LINE_ENDINGS = pytest.mark.parametrize("crlf", [False, True], ids=["LF", "CRLF"])


def _ending(body: bytes, crlf: bool) -> bytes:
    return body.replace(b"\n", b"\r\n") if crlf else body


def _tasks(n: int) -> list[BatchOperation]:
    return [
        BatchOperation("POST", "tasks", {"subject": f"Task {i} in batch"}, content_id=str(i))
        for i in range(1, n + 1)
    ]


# -- parsing responses ----------------------------------------------------------------------------


@LINE_ENDINGS
def test_change_set_response_parts_keep_status_headers_and_content_ids(crlf: bool) -> None:
    # [BATCH] "Change sets", response: sniffed outer boundary, unquoted inner boundary.
    units = parse_batch_response(_ending(CHANGESET_RESPONSE, crlf))

    assert len(units) == 2
    change_set, query = units
    assert isinstance(change_set, ChangeSetResponse)
    assert [p.content_id for p in change_set.parts] == ["1", "2", "3"]
    assert [p.status for p in change_set.parts] == [204, 204, 204]
    assert change_set.parts[1].headers["OData-EntityId"] == (
        "[Organization Uri]/api/data/v9.2/tasks(e83ffc82-e292-ed11-aad1-000d3a9933c9)"
    )
    assert change_set.parts[0].body == b""
    assert isinstance(query, PartResponse)
    assert query.status == 200
    assert query.reason == "OK"
    assert [row["subject"] for row in query.json()["value"]] == [
        "Task 1 in batch",
        "Task 2 in batch",
        "Task 3 in batch",
    ]


@LINE_ENDINGS
def test_headers_without_a_space_after_the_colon_are_read(crlf: bool) -> None:
    # [BATCH] "Reference URI in request URL", response: "OData-EntityId:[Organization URI]/…".
    (change_set,) = parse_batch_response(
        _ending(URL_REFERENCE_RESPONSE, crlf),
        "multipart/mixed; boundary=batchresponse_2cb48f48-39a8-41ea-aa52-132fa8ab3c2d",
    )

    assert isinstance(change_set, ChangeSetResponse)
    first, second = change_set.parts
    assert first.headers["odata-entityid"] == (
        "[Organization URI]/api/data/v9.2/contacts(f8ea5d2c-8c75-e911-a97a-000d3a34a1bd)"
    )
    assert first.headers["location"].startswith("[Organization URI]/api/data/v9.2/contacts(")
    assert second.content_id == "2"
    assert "odata-entityid" not in second.headers


def test_the_boundary_is_taken_from_the_header_quoted_or_not() -> None:
    # [BATCH]: requests quote it (boundary="batch_…"), responses do not (boundary=changeset…).
    assert boundary_of('multipart/mixed; boundary="batch_80dd1615"') == "batch_80dd1615"
    assert boundary_of("multipart/mixed;boundary=batch_AAA123") == "batch_AAA123"
    assert boundary_of("multipart/mixed; boundary=changesetresponse_64cc; x=y") == (
        "changesetresponse_64cc"
    )
    assert boundary_of("application/json") is None


@LINE_ENDINGS
def test_error_part_without_continue_on_error_is_the_only_part(crlf: bool) -> None:
    # [BATCH] "Handling errors", first response (outer HTTP/1.1 400 BadRequest).
    (part,) = parse_batch_response(_ending(STOPPED_RESPONSE, crlf))

    assert isinstance(part, PartResponse)
    assert part.status == 400
    assert part.headers["REQ_ID"] == "5ecd1cb3-1730-4ffc-909c-d44c22270026"
    assert part.json()["error"]["code"] == "0x80044331"


def test_a_body_without_its_closing_delimiter_is_refused() -> None:
    truncated = CHANGESET_RESPONSE.rsplit(b"--batchresponse_", 1)[0]

    with pytest.raises(BatchFormatError, match="no closing"):
        parse_batch_response(truncated)


# -- parsing requests (what the stand-in reads) ---------------------------------------------------


@LINE_ENDINGS
def test_request_with_quoted_boundaries_and_relative_urls(crlf: bool) -> None:
    # [BATCH] "Change sets", request.
    items = parse_batch_request(_ending(CHANGESET_REQUEST, crlf), CHANGESET_REQUEST_CONTENT_TYPE)

    change_set, query = items
    assert isinstance(change_set, ParsedChangeSet)
    assert [(op.method, op.url, op.content_id) for op in change_set.operations] == [
        ("POST", "/api/data/v9.2/tasks", "1"),
        ("POST", "/api/data/v9.2/tasks", "2"),
        ("POST", "/api/data/v9.2/tasks", "3"),
    ]
    assert change_set.operations[2].json()["subject"] == "Task 3 in batch"
    assert isinstance(query, ParsedOperation)
    assert query.method == "GET"
    assert query.url == (
        "/api/data/v9.2/accounts(00000000-0000-0000-0000-000000000001)/Account_Tasks"
        "?$select=subject"
    )
    assert query.body == b""


@LINE_ENDINGS
def test_request_with_unquoted_boundary_absolute_urls_and_no_space_after_colons(
    crlf: bool,
) -> None:
    # [BATCH] "Reference URIs in URL and request body using @odata.id", request.
    (change_set,) = parse_batch_request(
        _ending(ODATA_ID_REQUEST, crlf), ODATA_ID_REQUEST_CONTENT_TYPE
    )

    assert isinstance(change_set, ParsedChangeSet)
    assert [(op.method, op.url, op.content_id) for op in change_set.operations] == [
        ("POST", "[Organization URI]/api/data/v9.2/accounts", "1"),
        ("POST", "[Organization URI]/api/data/v9.2/contacts", "2"),
        ("PUT", "$1/primarycontactid/$ref", "3"),
    ]
    assert change_set.operations[2].json() == {"@odata.id": "$2"}
    assert change_set.operations[1].headers["content-type"] == "application/json"


# -- building -------------------------------------------------------------------------------------


def test_built_batch_has_the_documented_shape_and_parses_back() -> None:
    # [BATCH] "Batch requests" / "Change sets": application/http parts, binary transfer
    # encoding, a nested multipart/mixed change set, Content-ID per operation, closing line.
    ids = iter(["b1", "c1"])
    items: list[BatchItem] = [
        ChangeSet(
            (
                BatchOperation("PATCH", "contacts(k='a')", {"firstname": "Ann"}, content_id="1"),
                BatchOperation(
                    "PATCH",
                    "salesorders(k=1)",
                    {"customerid_contact@odata.bind": "/contacts(k='a')"},
                    {"If-Match": "*"},
                    content_id="2",
                ),
            )
        ),
        BatchOperation("GET", "WhoAmI"),
    ]

    encoded = encode_batch(items, new_id=lambda: next(ids))

    assert encoded.content_type == 'multipart/mixed; boundary="batch_b1"'
    assert encoded.operations == 3
    text = encoded.body.decode()
    assert text.startswith("--batch_b1\r\nContent-Type: multipart/mixed; boundary=")
    assert "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n" in text
    assert "PATCH /api/data/v9.2/contacts(k='a') HTTP/1.1\r\n" in text
    assert "GET /api/data/v9.2/WhoAmI HTTP/1.1\r\n" in text
    assert text.endswith("--batch_b1--\r\n")
    change_set, who = parse_batch_request(encoded.body, encoded.content_type)
    assert isinstance(change_set, ParsedChangeSet)
    assert isinstance(who, ParsedOperation)
    order = change_set.operations[1]
    assert order.content_id == "2"
    assert order.headers["if-match"] == "*"
    assert order.json() == {"customerid_contact@odata.bind": "/contacts(k='a')"}


def test_get_inside_a_change_set_is_refused() -> None:
    # [BATCH] "Change sets": "GET request are not allowed within change sets."
    with pytest.raises(BatchFormatError, match="GET"):
        validate_batch([ChangeSet((BatchOperation("GET", "accounts"),))])


def test_more_than_1000_operations_are_refused() -> None:
    # [BATCH] "Batch requests can contain up to 1000 individual requests".
    ops = [BatchOperation("DELETE", f"tasks({i})") for i in range(1001)]

    with pytest.raises(BatchFormatError, match="1000"):
        validate_batch(ops)
    validate_batch(ops[:1000])


def test_a_content_id_reference_must_point_back_within_the_change_set() -> None:
    # [BATCH] note: referencing a Content-ID before it is declared returns HTTP 400.
    forward = ChangeSet(
        (
            BatchOperation(
                "POST",
                "phonecalls",
                {"regardingobjectid_account_phonecall@odata.bind": "$1"},
                content_id="2",
            ),
            BatchOperation("POST", "accounts", {"name": "QQQQ"}, content_id="1"),
        )
    )
    backward = ChangeSet((forward.operations[1], forward.operations[0]))

    with pytest.raises(BatchFormatError, match=r"\$1"):
        validate_batch([forward])
    validate_batch([backward])
    with pytest.raises(BatchFormatError, match="twice"):
        validate_batch([backward, ChangeSet((BatchOperation("PATCH", "x(1)", content_id="1"),))])


# -- matching responses to operations --------------------------------------------------------------


def test_change_set_results_are_matched_by_content_id() -> None:
    # [BATCH] "Change sets": three creates answered 204 with OData-EntityId each, then the GET.
    items: list[BatchItem] = [
        ChangeSet(tuple(_tasks(3))),
        BatchOperation("GET", "accounts(1)/Account_Tasks"),
    ]

    result = match_responses(items, parse_batch_response(CHANGESET_RESPONSE), status=200)

    assert result.ok
    assert [r.outcome for r in result.operations] == [Outcome.SUCCEEDED] * 4
    assert result.items[0].operations[2].entity_id == (
        "[Organization Uri]/api/data/v9.2/tasks(e93ffc82-e292-ed11-aad1-000d3a9933c9)"
    )
    assert len(result.items[1].operations[0].body["value"]) == 3


def test_without_continue_on_error_later_items_are_not_executed() -> None:
    # [BATCH] "Handling errors": the batch stops at the first failure.
    items = _tasks_standalone(3)

    result = match_responses(items, parse_batch_response(STOPPED_RESPONSE), status=400)

    assert [r.outcome for r in result.operations] == [
        Outcome.FAILED,
        Outcome.NOT_EXECUTED,
        Outcome.NOT_EXECUTED,
    ]
    error = result.items[0].error
    assert isinstance(error, BadRequestError)
    assert error.code == "0x80044331"
    assert error.request_id == "5ecd1cb3-1730-4ffc-909c-d44c22270026"
    assert "maximum allowed length of '200'" in (error.message or "")


def test_with_continue_on_error_each_item_has_its_own_outcome() -> None:
    # [BATCH] "Handling errors": 200, the first part failed, the other two created.
    items = _tasks_standalone(3)

    result = match_responses(items, parse_batch_response(CONTINUED_RESPONSE), status=200)

    assert [r.outcome for r in result.operations] == [
        Outcome.FAILED,
        Outcome.SUCCEEDED,
        Outcome.SUCCEEDED,
    ]
    assert not result.ok
    assert [e.request_id for e in result.errors] == ["de4c5227-4a28-4ebd-8ced-3392ece1697b"]


def test_a_failed_change_set_rolls_back_its_other_operations() -> None:
    # [BATCH] "Change sets": atomic. The failing operation's part carries its Content-ID; the
    # others are rolled back even though nothing else was said about them.
    items = [ChangeSet(tuple(_tasks(3)))]
    body = _change_set_answer(
        [(2, "412 Precondition Failed", {"code": "0x80060892", "message": "Entity Key violated"})]
    )

    result = match_responses(items, parse_batch_response(body), status=200)

    assert [r.outcome for r in result.operations] == [
        Outcome.ROLLED_BACK,
        Outcome.FAILED,
        Outcome.ROLLED_BACK,
    ]
    error = result.items[0].error
    assert isinstance(error, DuplicateKeyError)
    assert isinstance(error, PreconditionFailedError)
    assert result.operations[1].error is error


def test_a_change_set_failure_answered_as_one_bare_part_fails_the_whole_change_set() -> None:
    # Not documented for change sets (inference): [BATCH] "Handling errors" shows a failure
    # without continue-on-error as one bare application/http part with no Content-ID. If a
    # change set answers that way, no operation is blamed, all are rolled back, the error is
    # the change set's, and the batch stopped there.
    items: list[BatchItem] = [ChangeSet(tuple(_tasks(2))), BatchOperation("GET", "WhoAmI")]

    result = match_responses(items, parse_batch_response(STOPPED_RESPONSE), status=400)

    assert [r.outcome for r in result.operations] == [
        Outcome.ROLLED_BACK,
        Outcome.ROLLED_BACK,
        Outcome.NOT_EXECUTED,
    ]
    assert isinstance(result.items[0].error, BadRequestError)


def test_more_responses_than_requests_is_a_format_error() -> None:
    with pytest.raises(BatchFormatError):
        match_responses(_tasks_standalone(1), parse_batch_response(CONTINUED_RESPONSE), status=200)


def _tasks_standalone(n: int) -> list[BatchOperation]:
    return [BatchOperation("POST", "tasks", {"subject": f"Task {i}"}) for i in range(1, n + 1)]


def _change_set_answer(failures: list[tuple[int, str, dict[str, str]]]) -> bytes:
    lines = ["--batchresponse_1", "Content-Type: multipart/mixed; boundary=changesetresponse_1", ""]
    for content_id, status, error in failures:
        lines += [
            "--changesetresponse_1",
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            f"Content-ID: {content_id}",
            "",
            f"HTTP/1.1 {status}",
            "Content-Type: application/json; odata.metadata=minimal",
            "",
            json.dumps({"error": error}),
        ]
    lines += ["--changesetresponse_1--", "--batchresponse_1--", ""]
    return "\r\n".join(lines).encode()
