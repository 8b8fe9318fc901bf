"""Error mapping: HTTP status first, then the error code in hex or decimal, then the request's
own condition for a 412 without a code.

Error bodies are Microsoft's documented ones (MicrosoftDocs/powerapps-docs,
powerapps-docs/developer/data-platform/): [COND] webapi/perform-conditional-operations-using-
web-api.md (04/06/2022), [COMPOSE] webapi/compose-http-requests-handle-errors.md (04/14/2023),
[DUPDET] webapi/manage-duplicate-detection-create-update.md (12/31/2022), [LIMITS]
api-limits.md, [ERRCODES] includes/data-service-error-codes.md.
"""

from __future__ import annotations

import pytest

from shared.dataverse.errors import (
    BadRequestError,
    ConcurrencyError,
    DuplicateDetectedError,
    DuplicateKeyError,
    ErrorBody,
    KeyNotDefinedError,
    NotFoundError,
    PreconditionFailedError,
    ServerError,
    ThrottledError,
    error_for,
    parse_code,
    retry_after_seconds,
)

# [COMPOSE] "Include more details with errors": the documented response body, verbatim. It is
# not valid JSON (no comma after the TraceText value); the parser must still get the code.
ANNOTATED_400 = """{
    "error": {
        "code": "0x80040265",
        "message": "Example Error Message.",
        "@Microsoft.PowerApps.CDS.ErrorDetails.OperationStatus": "1",
        "@Microsoft.PowerApps.CDS.ErrorDetails.SubErrorCode": "12345",
        "@Microsoft.PowerApps.CDS.HelpLink": "http://go.microsoft.com/fwlink/?LinkID=398563&error=Microsoft.Crm.CrmException%3a80040265&client=platform",
        "@Microsoft.PowerApps.CDS.TraceText": "\\r\\n[MyNamespace: MyNamespace.MyClass ]\\r\\n"
        "@Microsoft.PowerApps.CDS.InnerError.Message": "Example Error Message."
    }
}"""


@pytest.mark.parametrize(
    "code",
    ["0x80060892", "0X80060892", "-2147088238", "2147879058", -2147088238, " 0x80060892 "],
)
def test_hex_and_decimal_codes_are_the_same_code(code: object) -> None:
    # [ERRCODES]: DuplicateRecordEntityKey = 0x80060892 = -2147088238.
    assert parse_code(code) == 0x80060892


@pytest.mark.parametrize("code", ["", None, "DuplicateRecord", "0xZZ", True, 2**40])
def test_empty_or_foreign_codes_are_none(code: object) -> None:
    assert parse_code(code) is None


def test_not_found_on_update_only_upsert() -> None:
    # [COND] "Prevent create in upsert": 404 with an empty code.
    body = (
        '{"error": {"code": "", "message": '
        '"account With Id = 00000000-0000-0000-0000-000000000001 Does Not Exist"}}'
    )
    error = error_for(
        404, {}, body, method="PATCH", url="accounts(1)", request_headers={"If-Match": "*"}
    )

    assert type(error) is NotFoundError
    assert error.code is None
    assert error.message == "account With Id = 00000000-0000-0000-0000-000000000001 Does Not Exist"


def test_412_on_a_create_only_upsert_means_the_row_exists() -> None:
    # [COND] "Prevent update in upsert": If-None-Match: * and the row exists: 412, empty code.
    body = '{"error":{"code":"","message":"A record with matching key values already exists."}}'
    error = error_for(
        412, {}, body, method="PATCH", url="accounts(1)", request_headers={"If-None-Match": "*"}
    )

    assert isinstance(error, DuplicateKeyError)
    assert isinstance(error, PreconditionFailedError)


def test_412_on_a_stale_etag_is_a_concurrency_error() -> None:
    # [COND] "Apply optimistic concurrency on update": If-Match: W/"470867" -> 412, empty code.
    body = (
        '{"error":{"code":"","message":"The version of the existing record doesn\'t match the '
        'RowVersion property provided."}}'
    )
    error = error_for(
        412, {}, body, method="PATCH", url="accounts(1)", request_headers={"If-Match": 'W/"470867"'}
    )

    assert isinstance(error, ConcurrencyError)
    assert isinstance(error, PreconditionFailedError)
    assert not isinstance(error, DuplicateKeyError)


@pytest.mark.parametrize("code", ["0x80060892", "-2147088238"])
def test_duplicate_key_code_is_caught_as_duplicate_whatever_the_status(code: str) -> None:
    # The code is documented; that it comes with 412 is community knowledge only, so a 400 or
    # 500 carrying it is still a DuplicateKeyError (and still a BadRequest/ServerError).
    body = f'{{"error":{{"code":"{code}","message":"Entity Key violated."}}}}'
    at_412 = error_for(412, {}, body, method="POST", url="salesorders")
    at_400 = error_for(400, {}, body, method="POST", url="salesorders")
    at_500 = error_for(500, {}, body, method="POST", url="salesorders")

    assert isinstance(at_412, DuplicateKeyError)
    assert isinstance(at_412, PreconditionFailedError)
    assert isinstance(at_400, DuplicateKeyError)
    assert isinstance(at_400, BadRequestError)
    assert isinstance(at_500, DuplicateKeyError)
    assert isinstance(at_500, ServerError)
    assert at_412.code_name == "DuplicateRecordEntityKey"


def test_duplicate_detection_is_a_500_that_is_not_a_duplicate_key() -> None:
    # [DUPDET]: HTTP/1.1 500 Internal Server Error, code 0x80040333.
    body = (
        '{"error": {"code": "0x80040333", "message": "A record was not created or updated '
        'because a duplicate of the current record already exists."}}'
    )
    error = error_for(500, {}, body, method="POST", url="leads")

    assert isinstance(error, DuplicateDetectedError)
    assert isinstance(error, ServerError)
    assert not isinstance(error, DuplicateKeyError)


@pytest.mark.parametrize(
    ("code", "facet"),
    [
        ("0x80072322", "requests"),
        ("-2147015903", "execution_time"),
        ("0x80072326", "concurrency"),
        ("", None),
    ],
)
def test_throttling_facets_from_hex_or_decimal_codes(code: str, facet: str | None) -> None:
    # [LIMITS] "Service protection API limit errors returned": three codes, 429 + Retry-After.
    body = f'{{"error":{{"code":"{code}","message":"limit"}}}}'
    error = error_for(429, {"Retry-After": "17"}, body, method="GET", url="accounts")

    assert isinstance(error, ThrottledError)
    assert error.facet == facet
    assert error.retry_after == 17.0


def test_key_not_defined_is_its_own_kind() -> None:
    body = '{"error":{"code":"0x80060890","message":"key not defined"}}'
    error = error_for(400, {}, body, method="PATCH", url="salesorders(k=1)")
    assert isinstance(error, KeyNotDefinedError)
    assert isinstance(error, BadRequestError)


def test_the_documented_annotated_error_is_read_despite_its_missing_comma() -> None:
    # [COMPOSE] "Include more details with errors".
    said = ErrorBody.parse(ANNOTATED_400)

    assert said.code == "0x80040265"
    assert said.message == "Example Error Message."


def test_annotations_and_innererror_are_kept_as_details() -> None:
    said = ErrorBody.parse(
        {
            "error": {
                "code": "0x80040265",
                "message": "m",
                "@Microsoft.PowerApps.CDS.ErrorDetails.SubErrorCode": "12345",
                "innererror": {"message": "inner", "type": "X"},
            }
        }
    )
    assert said.details["Microsoft.PowerApps.CDS.ErrorDetails.SubErrorCode"] == "12345"
    assert said.details["innererror.message"] == "inner"


def test_a_plain_text_error_keeps_its_text() -> None:
    # [BATCH] Content-ID note: "Content-ID Reference: '$1' does not exist in the batch context."
    said = ErrorBody.parse(b"Content-ID Reference: '$1' does not exist in the batch context.")
    assert said.code is None
    assert said.message == "Content-ID Reference: '$1' does not exist in the batch context."


def test_request_id_comes_from_the_service_header_or_req_id() -> None:
    body = '{"error":{"code":"","message":"x"}}'
    a = error_for(400, {"x-ms-service-request-id": "abc"}, body, method="GET", url="a")
    b = error_for(400, {"REQ_ID": "def"}, body, method="GET", url="a")
    assert (a.request_id, b.request_id) == ("abc", "def")
    assert "(request id abc)" in str(a)


def test_the_error_text_names_the_path_without_the_query() -> None:
    # A $filter can hold an e-mail address; errors and logs carry the path only.
    error = error_for(
        400,
        {},
        '{"error":{"code":"0x80044331","message":"bad"}}',
        method="GET",
        url="https://org.crm.dynamics.com/api/data/v9.2/contacts?$filter=emailaddress1 eq 'a@b.c'",
    )
    assert error.path == "/api/data/v9.2/contacts"
    assert "a@b.c" not in str(error)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "30"}, 30.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"Retry-After": "-3"}, 0.0),
        ({"Retry-After": "soon"}, None),
        ({}, None),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, 10.0),
    ],
)
def test_retry_after_in_seconds_or_as_a_date(
    headers: dict[str, str], seconds: float | None
) -> None:
    now = 1445412480.0  # 2015-10-21 07:28:00 GMT
    assert retry_after_seconds(headers, now=now) == seconds
