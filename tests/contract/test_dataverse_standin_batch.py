"""Dataverse stand-in: `$batch` (multipart/mixed) with change sets.

Pinned to MicrosoftDocs/powerapps-docs,
powerapps-docs/developer/data-platform/webapi/execute-batch-operations-using-web-api.md
(ms.date 01/14/2023): "Batch requests" (format, at most 1000 requests, no nested batch), "Batch
responses" (200, fresh batchresponse_ boundary, request order), "Change sets" (atomic, no GET,
Content-ID echoed), "Reference URIs in an operation" ($n in bodies and URLs, `Content-ID
Reference: '$1' does not exist in the batch context.`), "Handling errors" (stop at the first
error: the batch answers with that error; `Prefer: odata.continue-on-error`: 200 and every
part). The request texts below reproduce the article's variants: quoted and unquoted
boundaries, absolute and relative URLs, headers with and without a space after the colon.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from local.dataverse.harness import API, Harness, batch_parts, dataverse_standin


@pytest.fixture
async def dv() -> AsyncIterator[Harness]:
    async with dataverse_standin(provisioned=True) as harness:
        yield harness


async def _send(
    dv: Harness,
    body: str,
    boundary: str,
    *,
    quoted: bool = True,
    crlf: bool = False,
    prefer: str | None = None,
) -> httpx.Response:
    text = body.replace("\n", "\r\n") if crlf else body
    value = f'"{boundary}"' if quoted else boundary
    headers = {"Content-Type": f"multipart/mixed; boundary={value}"}
    if prefer:
        headers["Prefer"] = prefer
    return await dv.api.post("$batch", content=text.encode(), headers=headers)


# The "Change sets" example: three creates in a change set, then a GET outside it.
CHANGE_SET = """--batch_22975cad
Content-Type: multipart/mixed; boundary="changeset_246e6bfe"

--changeset_246e6bfe
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 1

POST /api/data/v9.2/contacts HTTP/1.1
Content-Type: application/json; type=entry

{
  "lastname": "Contact 1 in batch"
}
--changeset_246e6bfe
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 2

POST /api/data/v9.2/contacts HTTP/1.1
Content-Type: application/json; type=entry

{
  "lastname": "Contact 2 in batch"
}
--changeset_246e6bfe
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 3

POST /api/data/v9.2/contacts HTTP/1.1
Content-Type: application/json; type=entry

{
  "lastname": "Contact 3 in batch"
}
--changeset_246e6bfe--

--batch_22975cad
Content-Type: application/http
Content-Transfer-Encoding: binary

GET /api/data/v9.2/contacts?$select=lastname HTTP/1.1


--batch_22975cad--
"""


@pytest.mark.parametrize(("quoted", "crlf"), [(True, False), (False, True), (True, True)])
async def test_a_change_set_and_a_get_come_back_in_order(
    dv: Harness, quoted: bool, crlf: bool
) -> None:
    response = await _send(dv, CHANGE_SET, "batch_22975cad", quoted=quoted, crlf=crlf)
    assert response.status_code == 200
    content_type = response.headers["Content-Type"]
    assert content_type.startswith("multipart/mixed; boundary=batchresponse_")
    assert "batch_22975cad" not in response.text
    assert "boundary=changesetresponse_" in response.text
    parts = batch_parts(response)
    assert [(p.status, p.content_id, p.change_set) for p in parts] == [
        (204, "1", 1),
        (204, "2", 1),
        (204, "3", 1),
        (200, None, None),
    ]
    for part in parts[:3]:
        assert part.headers["odata-entityid"].startswith(API + "contacts(")
    listed = parts[3].json()["value"]
    assert sorted(c["lastname"] for c in listed) == [
        "Contact 1 in batch",
        "Contact 2 in batch",
        "Contact 3 in batch",
    ]


# "Reference URIs in request body" and "... in URL and navigation properties": absolute URLs,
# unquoted boundaries, headers without a space after the colon.
REFERENCES = """--batch_AAA123
Content-Type: multipart/mixed; boundary=changeset_dd81ccab

--changeset_dd81ccab
Content-Type:application/http
Content-Transfer-Encoding:binary
Content-ID:1

POST {api}accounts HTTP/1.1
Content-Type:application/json

{{ "name":"Account Name"}}

--changeset_dd81ccab
Content-Type:application/http
Content-Transfer-Encoding:binary
Content-ID:2

POST {api}contacts HTTP/1.1
Content-Type:application/json

{{ "firstname":"Contact first name"}}

--changeset_dd81ccab
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 3

POST {api}salesorders HTTP/1.1
Content-Type: application/json

{{"name":"bound","customerid_contact@odata.bind":"$2"}}

--changeset_dd81ccab
Content-Transfer-Encoding: binary
Content-Type: application/http
Content-ID: 4

PUT $2/lastname HTTP/1.1
Content-Type: application/json

{{
  "value":"BBBBB"
}}

--changeset_dd81ccab
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 5

PATCH $1 HTTP/1.1
Content-Type: application/json

{{
  "name":"renamed by reference"
}}

--changeset_dd81ccab--
--batch_AAA123--
"""


async def test_content_id_references_resolve_in_bodies_and_urls(dv: Harness) -> None:
    response = await _send(dv, REFERENCES.format(api=API), "batch_AAA123", quoted=False)
    assert response.status_code == 200
    parts = batch_parts(response)
    assert [(p.status, p.content_id) for p in parts] == [
        (204, "1"),
        (204, "2"),
        (204, "3"),
        (204, "4"),
        (204, "5"),
    ]
    account_url = parts[0].headers["odata-entityid"]
    assert parts[4].headers["odata-entityid"] == account_url
    assert parts[0].headers["location"] == account_url
    contact_id = parts[1].headers["odata-entityid"].removeprefix(API + "contacts(")[:-1]
    order = (await dv.api.get("salesorders?$select=name,_customerid_value")).json()["value"][0]
    assert order["_customerid_value"] == contact_id
    contact = (await dv.api.get(f"contacts({contact_id})?$select=lastname")).json()
    assert contact["lastname"] == "BBBBB"
    account = (await dv.api.get(account_url.removeprefix(API) + "?$select=name")).json()
    assert account["name"] == "renamed by reference"


FORWARD_REFERENCE = """--batch_AAA123
Content-Type: multipart/mixed; boundary=changeset_BBB456

--changeset_BBB456
Content-Type: application/http
Content-Transfer-Encoding:binary
Content-ID: 2

POST /api/data/v9.2/salesorders HTTP/1.1
Content-Type: application/json;type=entry

{
    "name":"911",
    "customerid_account@odata.bind" : "$1"
}

--changeset_BBB456
Content-Type: application/http
Content-Transfer-Encoding:binary
Content-ID: 1

POST /api/data/v9.2/accounts HTTP/1.1
Content-Type: application/json;type=entry

{
    "name":"QQQQ"
}

--changeset_BBB456--
--batch_AAA123--
"""


async def test_a_forward_content_id_reference_is_a_400(dv: Harness) -> None:
    response = await _send(dv, FORWARD_REFERENCE, "batch_AAA123")
    assert response.status_code == 400
    parts = batch_parts(response)
    assert len(parts) == 1
    assert parts[0].status == 400
    assert parts[0].content_id == "2"
    assert parts[0].json()["error"]["message"] == (
        "Content-ID Reference: '$1' does not exist in the batch context."
    )
    assert await dv.count("account") == 0
    assert await dv.count("salesorder") == 0


def _upsert_change_set(order_id: int, lines: list[str], boundary: str = "changeset_x") -> str:
    operations = [
        f"PATCH /api/data/v9.2/salesorders(bciom_storehash='s1',bciom_bcorderid={order_id}) "
        f'HTTP/1.1\nContent-Type: application/json\n\n{{"name":"order {order_id}"}}'
    ]
    for n, description in enumerate(lines, start=1):
        operations.append(
            f"PATCH /api/data/v9.2/salesorderdetails(bciom_storehash='s1',"
            f"bciom_bcorderproductid={order_id * 10 + n}) HTTP/1.1\n"
            "Content-Type: application/json\n\n"
            f'{{"productdescription":"{description}","salesorderid@odata.bind":"$1"}}'
        )
    parts = [
        f"--{boundary}\nContent-Type: application/http\nContent-Transfer-Encoding: binary\n"
        f"Content-ID: {n}\n\n{operation}\n"
        for n, operation in enumerate(operations, start=1)
    ]
    return (
        f"Content-Type: multipart/mixed; boundary={boundary}\n\n"
        + "".join(parts)
        + f"--{boundary}--\n"
    )


def _batch(*change_sets: str) -> str:
    return "".join(f"--batch_b\n{c}" for c in change_sets) + "--batch_b--\n"


async def test_a_failing_operation_rolls_its_change_set_back(dv: Harness) -> None:
    good = _upsert_change_set(1, ["Mug", "Cap"], "changeset_a")
    bad = _upsert_change_set(2, ["Mug", "x" * 600], "changeset_b")
    response = await _send(dv, _batch(good, bad), "batch_b")
    assert response.status_code == 400
    parts = batch_parts(response)
    assert [(p.status, p.change_set) for p in parts] == [(204, 1), (204, 1), (204, 1), (400, 2)]
    assert parts[3].content_id == "3"
    assert parts[3].json()["error"]["code"] == "0x80044331"
    orders = (await dv.api.get("salesorders?$select=bciom_bcorderid")).json()["value"]
    assert [o["bciom_bcorderid"] for o in orders] == [1]
    assert await dv.count("salesorderdetail") == 2


async def test_stop_at_the_first_failure_without_continue_on_error(dv: Harness) -> None:
    failing = _upsert_change_set(3, ["x" * 600], "changeset_c")
    never = _upsert_change_set(4, ["Mug"], "changeset_d")
    response = await _send(dv, _batch(failing, never), "batch_b")
    assert response.status_code == 400
    assert [p.status for p in batch_parts(response)] == [400]
    assert await dv.count("salesorder") == 0


async def test_continue_on_error_answers_200_with_every_part(dv: Harness) -> None:
    failing = _upsert_change_set(5, ["x" * 600], "changeset_e")
    fine = _upsert_change_set(6, ["Mug"], "changeset_f")
    response = await _send(dv, _batch(failing, fine), "batch_b", prefer="odata.continue-on-error")
    assert response.status_code == 200
    assert response.headers["Preference-Applied"] == "odata.continue-on-error"
    parts = batch_parts(response)
    assert [(p.status, p.change_set) for p in parts] == [(400, 1), (204, 2), (204, 2)]
    orders = (await dv.api.get("salesorders?$select=bciom_bcorderid")).json()["value"]
    assert [o["bciom_bcorderid"] for o in orders] == [6]


_GET_ORDERS = (
    "Content-Type: application/http\nContent-Transfer-Encoding: binary\n\n"
    "GET /api/data/v9.2/salesorders?$select=bciom_bcorderid HTTP/1.1\n\n"
)


async def test_continue_on_error_answers_many_change_sets_and_gets_each_on_its_own(
    dv: Harness,
) -> None:
    """The shape adaptive batching sends: GETs and one change set per order, in one batch; a
    failing change set rolls back only itself and the batch goes on, in request order."""
    body = _batch(
        _GET_ORDERS,
        _upsert_change_set(7, ["Mug"], "changeset_7"),
        _upsert_change_set(8, ["Mug", "x" * 600], "changeset_8"),
        _GET_ORDERS,
        _upsert_change_set(9, ["Cap", "Mug"], "changeset_9"),
    )
    response = await _send(dv, body, "batch_b", prefer="odata.continue-on-error")
    assert response.status_code == 200
    parts = batch_parts(response)
    assert [(p.status, p.change_set) for p in parts] == [
        (200, None),
        (204, 1),
        (204, 1),
        (400, 2),
        (200, None),
        (204, 3),
        (204, 3),
        (204, 3),
    ]
    assert parts[3].content_id == "3"
    assert parts[0].json()["value"] == []
    assert [o["bciom_bcorderid"] for o in parts[4].json()["value"]] == [7]
    orders = (await dv.api.get("salesorders?$select=bciom_bcorderid")).json()["value"]
    assert sorted(o["bciom_bcorderid"] for o in orders) == [7, 9]
    assert await dv.count("salesorderdetail") == 3


INDEPENDENT = """--batch_431faf5a
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-Length: 436

POST /api/data/v9.2/contacts HTTP/1.1
Content-Type: application/json; type=entry

{{"lastname": "{first}"}}
--batch_431faf5a
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-Length: 250

POST /api/data/v9.2/contacts HTTP/1.1
Content-Type: application/json; type=entry

{{"lastname": "Contact 2 in batch"}}
--batch_431faf5a--
"""


async def test_the_documented_error_example_with_and_without_continue_on_error(
    dv: Harness,
) -> None:
    body = INDEPENDENT.format(first="too long " + "x" * 60)
    stopped = await _send(dv, body, "batch_431faf5a")
    assert stopped.status_code == 400
    only = batch_parts(stopped)
    assert [p.status for p in only] == [400]
    assert only[0].json()["error"]["message"] == (
        "A validation error occurred.  The length of the 'lastname' attribute of the 'contact' "
        "entity exceeded the maximum allowed length of '50'."
    )
    assert await dv.count("contact") == 0
    continued = await _send(dv, body, "batch_431faf5a", prefer="odata.continue-on-error")
    assert continued.status_code == 200
    assert [p.status for p in batch_parts(continued)] == [400, 204]
    assert await dv.count("contact") == 1


async def test_earlier_independent_operations_stay_done_when_a_later_one_fails(
    dv: Harness,
) -> None:
    body = (
        INDEPENDENT.replace('"{first}"', '"ok"')
        .replace('"Contact 2 in batch"', '"' + "y" * 60 + '"')
        .replace("{{", "{")
        .replace("}}", "}")
    )
    response = await _send(dv, body, "batch_431faf5a")
    assert response.status_code == 400
    assert [p.status for p in batch_parts(response)] == [204, 400]
    assert await dv.count("contact") == 1


async def test_refusals_before_anything_runs(dv: Harness) -> None:
    get_in_change_set = (
        "--batch_g\nContent-Type: multipart/mixed; boundary=changeset_g\n\n--changeset_g\n"
        "Content-Type: application/http\nContent-Transfer-Encoding: binary\n\n"
        "GET /api/data/v9.2/contacts HTTP/1.1\n\n\n--changeset_g--\n--batch_g--\n"
    )
    response = await _send(dv, get_in_change_set, "batch_g")
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/json")
    assert "change set" in response.json()["error"]["message"]
    operation = (
        "--batch_m\nContent-Type: application/http\nContent-Transfer-Encoding: binary\n\n"
        "GET /api/data/v9.2/WhoAmI HTTP/1.1\n\n"
    )
    too_many = await _send(dv, operation * 1001 + "--batch_m--\n", "batch_m")
    assert too_many.status_code == 400
    assert "1000" in too_many.json()["error"]["message"]
    just_enough = await _send(dv, operation * 1000 + "--batch_m--\n", "batch_m")
    assert just_enough.status_code == 200
    assert len(batch_parts(just_enough)) == 1000
    nested = (
        "--batch_n\nContent-Type: application/http\nContent-Transfer-Encoding: binary\n\n"
        "POST /api/data/v9.2/$batch HTTP/1.1\n\n\n--batch_n--\n"
    )
    assert (await _send(dv, nested, "batch_n")).status_code == 400
    unterminated = await _send(dv, operation, "batch_m")
    assert unterminated.status_code == 400


async def test_a_content_id_of_another_change_set_does_not_resolve(dv: Harness) -> None:
    first = (
        "Content-Type: multipart/mixed; boundary=changeset_1\n\n--changeset_1\n"
        "Content-Type: application/http\nContent-Transfer-Encoding: binary\nContent-ID: 1\n\n"
        'POST /api/data/v9.2/accounts HTTP/1.1\nContent-Type: application/json\n\n{"name":"a"}\n'
        "--changeset_1--\n"
    )
    second = (
        "Content-Type: multipart/mixed; boundary=changeset_2\n\n--changeset_2\n"
        "Content-Type: application/http\nContent-Transfer-Encoding: binary\nContent-ID: 2\n\n"
        'PATCH $1 HTTP/1.1\nContent-Type: application/json\n\n{"name":"b"}\n--changeset_2--\n'
    )
    response = await _send(dv, _batch(first, second), "batch_b", prefer="odata.continue-on-error")
    parts = batch_parts(response)
    assert [(p.status, p.content_id) for p in parts] == [(204, "1"), (400, "2")]
    names = [a["name"] for a in (await dv.api.get("accounts?$select=name")).json()["value"]]
    assert names == ["a"]


async def test_return_representation_inside_a_batch_part(dv: Harness) -> None:
    body = (
        "--batch_r\nContent-Type: application/http\nContent-Transfer-Encoding: binary\n\n"
        "POST /api/data/v9.2/accounts?$select=name HTTP/1.1\nContent-Type: application/json\n"
        'Prefer: return=representation\n\n{"name":"shown"}\n--batch_r--\n'
    )
    part = batch_parts(await _send(dv, body, "batch_r"))[0]
    assert part.status == 201
    assert part.json()["name"] == "shown"
    assert "odata-entityid" not in part.headers
