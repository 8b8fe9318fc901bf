"""`$batch` in the documented multipart format (execute-batch-operations-using-web-api).

Parsing accepts every variant the article's examples use: quoted or unquoted boundaries,
LF or CRLF line ends, absolute or root-relative request URLs (and service-relative ones),
headers with or without a space after the colon, Content-ID in the MIME part or in the request.

Semantics:
- at most 1,000 operations per batch, no nested batches, no GET inside a change set: the whole
  batch is refused (400, JSON error) before anything runs;
- operations run in order; a change set runs inside one savepoint, all-or-nothing;
- `$n` (Content-ID) references, in URLs and in `@odata.bind` / `@odata.id` values, resolve to
  rows written earlier in the same change set; anything else (a forward reference, another
  change set's id) fails that operation with 400 "Content-ID Reference: '$n' does not exist in
  the batch context.";
- without `Prefer: odata.continue-on-error` processing stops at the first failure: the batch
  answers with that failure's status and holds the responses so far plus the failure; with it
  the batch answers 200 and every part has its own response;
- a failed change set is answered by a change-set response holding only the failing operation
  (with its Content-ID);
- responses come in request order under fresh `batchresponse_<guid>` /
  `changesetresponse_<guid>` boundaries, announced in the outer Content-Type header.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Final
from urllib.parse import parse_qsl

from local.dataverse import errors
from local.dataverse.keys import service_path
from local.dataverse.messages import ApiRequest, ApiResponse, error_response
from local.dataverse.store import Store

MAX_OPERATIONS: Final = 1000
CRLF: Final = "\r\n"


@dataclass(slots=True)
class Operation:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    content_id: str | None = None


@dataclass(slots=True)
class ChangeSet:
    operations: list[Operation] = field(default_factory=list)


Part = Operation | ChangeSet


def boundary_of(content_type: str) -> str:
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/mixed":
        raise errors.bad_request("A $batch request needs Content-Type: multipart/mixed.")
    match = re.search(r'boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))', params, re.IGNORECASE)
    if match is None:
        raise errors.bad_request("The multipart Content-Type has no boundary.")
    return match.group(1) or match.group(2)


def split_parts(body: bytes, boundary: str) -> list[bytes]:
    """The parts between `--boundary` lines (the line break before a delimiter is its own)."""
    delimiter = re.compile(
        rb"(?:^|\r?\n)--" + re.escape(boundary.encode()) + rb"(--)?[ \t]*(?:\r?\n|$)"
    )
    parts: list[bytes] = []
    position: int | None = None
    for match in delimiter.finditer(body):
        if position is not None:
            parts.append(body[position : match.start()])
        if match.group(1):
            return parts
        position = match.end()
    raise errors.bad_request(f"The multipart body does not end with --{boundary}--.")


def _headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in re.split(rb"\r?\n", block):
        if not line.strip():
            continue
        name, colon, value = line.decode("utf-8").partition(":")
        if not colon:
            raise errors.bad_request(f"Malformed header line in $batch: {line!r}.")
        headers[name.strip().lower()] = value.strip()
    return headers


def _split_head(raw: bytes) -> tuple[bytes, bytes]:
    match = re.search(rb"\r?\n\r?\n", raw)
    if match is None:
        return raw, b""
    return raw[: match.start()], raw[match.end() :]


def _operation(raw: bytes, part_headers: dict[str, str]) -> Operation:
    content_type = part_headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/http":
        raise errors.bad_request("Each $batch operation part needs Content-Type: application/http.")
    message = raw.lstrip(b"\r\n")
    line_end = re.search(rb"\r?\n", message)
    request_line = (message[: line_end.start()] if line_end else message).decode("utf-8").strip()
    rest = message[line_end.end() :] if line_end else b""
    words = request_line.split()
    if len(words) < 2:
        raise errors.bad_request(f"Malformed request line in $batch: '{request_line}'.")
    if rest[:2] == b"\r\n" or rest[:1] == b"\n":
        head, body = b"", rest.lstrip(b"\r").removeprefix(b"\n")
    else:
        head, body = _split_head(rest)
    headers = _headers(head)
    content_id = part_headers.get("content-id") or headers.get("content-id")
    return Operation(words[0].upper(), words[1], headers, body.strip(), content_id)


def parse(content_type: str, body: bytes) -> list[Part]:
    """The parts of a batch; 400 for the things the service refuses up front."""
    parts: list[Part] = []
    for raw in split_parts(body, boundary_of(content_type)):
        head, content = _split_head(raw)
        headers = _headers(head)
        if headers.get("content-type", "").lower().startswith("multipart/mixed"):
            change_set = ChangeSet()
            for inner in split_parts(content, boundary_of(headers["content-type"])):
                inner_head, inner_content = _split_head(inner)
                operation = _operation(inner_content, _headers(inner_head))
                if operation.method == "GET":
                    raise errors.bad_request("GET requests are not allowed inside a change set.")
                change_set.operations.append(operation)
            parts.append(change_set)
        else:
            parts.append(_operation(content, headers))
    count = sum(len(p.operations) if isinstance(p, ChangeSet) else 1 for p in parts)
    if count > MAX_OPERATIONS:
        raise errors.bad_request(
            f"The batch contains {count} operations. A maximum number of '{MAX_OPERATIONS}' "
            f"operations are allowed in a batch."
        )
    for part in parts:
        operations = part.operations if isinstance(part, ChangeSet) else [part]
        if any(
            service_path(o.url).split("?")[0].rstrip("/").endswith("$batch") for o in operations
        ):
            raise errors.bad_request("A $batch request cannot contain another $batch request.")
    return parts


# --- execution ------------------------------------------------------------------------------

Dispatch = Callable[[ApiRequest], ApiResponse]


class _ChangeSetFailed(Exception):
    def __init__(self, content_id: str | None, response: ApiResponse) -> None:
        super().__init__(response.status)
        self.content_id = content_id
        self.response = response


def _request(outer: ApiRequest, operation: Operation, content_ids: dict[str, str]) -> ApiRequest:
    url = operation.url
    if url.startswith("$"):
        name, slash, rest = url.partition("/")
        if name not in content_ids:
            raise errors.bad_request(
                f"Content-ID Reference: '{name}' does not exist in the batch context."
            )
        url = content_ids[name] + (slash + rest if slash else "")
    path, _, query = service_path(url).partition("?")
    return ApiRequest(
        method=operation.method,
        path=path,
        query=parse_qsl(query, keep_blank_values=True),
        headers=operation.headers,
        body=operation.body,
        base_url=outer.base_url,
        content_ids=content_ids,
        in_batch=True,
    )


def _run(
    dispatch: Dispatch, outer: ApiRequest, operation: Operation, ids: dict[str, str]
) -> ApiResponse:
    try:
        request = _request(outer, operation, ids)
    except errors.DataverseError as error:
        return error_response(error)
    return dispatch(request)


@dataclass(slots=True)
class _Answer:
    single: ApiResponse | None = None
    change_set: list[tuple[str | None, ApiResponse]] = field(default_factory=list)


def execute(store: Store, dispatch: Dispatch, request: ApiRequest) -> ApiResponse:
    parts = parse(request.header("content-type") or "", request.body)
    keep_going = "odata.continue-on-error" in request.prefer
    answers: list[_Answer] = []
    status = 200
    for part in parts:
        if isinstance(part, Operation):
            response = _run(dispatch, request, part, {})
            answers.append(_Answer(single=response))
            if response.status >= 400 and not keep_going:
                status = response.status
                break
            continue
        ids: dict[str, str] = {}
        done: list[tuple[str | None, ApiResponse]] = []
        try:
            with store.savepoint():
                for operation in part.operations:
                    response = _run(dispatch, request, operation, ids)
                    if response.status >= 400:
                        raise _ChangeSetFailed(operation.content_id, response)
                    done.append((operation.content_id, response))
                    if operation.content_id and response.entity_url:
                        ids[f"${operation.content_id}"] = response.entity_url
        except _ChangeSetFailed as failed:
            answers.append(_Answer(change_set=[(failed.content_id, failed.response)]))
            if not keep_going:
                status = failed.response.status
                break
            continue
        answers.append(_Answer(change_set=done))
    boundary = f"batchresponse_{uuid.uuid4()}"
    headers = [
        ("Content-Type", f"multipart/mixed; boundary={boundary}"),
        ("OData-Version", "4.0"),
    ]
    if keep_going:
        headers.append(("Preference-Applied", "odata.continue-on-error"))
    return ApiResponse(status, headers, write(answers, boundary))


def _http(response: ApiResponse) -> str:
    reason = HTTPStatus(response.status).phrase
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    for name, value in response.headers:
        if name.lower() == "odata-entityid" and response.header("Location") is None:
            lines.append(f"Location: {value}")  # as the article's batch responses show
        lines.append(f"{name}: {value}")
    text = CRLF.join(lines) + CRLF + CRLF
    if response.body:
        text += response.body.decode("utf-8") + CRLF
    return text


def _part(response: ApiResponse, content_id: str | None) -> str:
    head = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        head.append(f"Content-ID: {content_id}")
    return CRLF.join(head) + CRLF + CRLF + _http(response)


def write(answers: list[_Answer], boundary: str) -> bytes:
    out: list[str] = []
    for answer in answers:
        out.append(f"--{boundary}{CRLF}")
        if answer.single is not None:
            out.append(_part(answer.single, None))
            continue
        inner = f"changesetresponse_{uuid.uuid4()}"
        out.append(f"Content-Type: multipart/mixed; boundary={inner}{CRLF}{CRLF}")
        for content_id, response in answer.change_set:
            out.append(f"--{inner}{CRLF}")
            out.append(_part(response, content_id))
        out.append(f"--{inner}--{CRLF}")
    out.append(f"--{boundary}--{CRLF}")
    return "".join(out).encode("utf-8")
