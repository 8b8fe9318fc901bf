"""OData `$batch` for Dataverse: the multipart/mixed request builder, the response parser, and
the matching of every response part back to the operation that asked for it.

Format (webapi/execute-batch-operations-using-web-api.md, OData 4.0 part 1 §11.7): the body is
`multipart/mixed; boundary="batch_<id>"`; each item is a part with `Content-Type: application/http`
and `Content-Transfer-Encoding: binary` holding a whole HTTP request; a change set is a part
`multipart/mixed; boundary="changeset_<id>"` whose own parts are the operations, applied
atomically. Operations in a change set carry `Content-ID`, echoed on their response parts.
GET is not allowed in a change set; a batch holds at most 1,000 operations; `$n` refers to an
earlier Content-ID of the same change set only.

Hand-written rather than through the stdlib `email` package: that parser does not read an
embedded HTTP message, folds or rewrites headers, and needs its input normalised, whereas the
documented exchanges vary in ways a batch parser must simply accept, all of which appear in
Microsoft's own examples: quoted and unquoted boundaries (`boundary="batch_…"` /
`boundary=changesetresponse_…`), LF or CRLF line endings, relative (`/api/data/v9.2/tasks`) or
absolute (`[Organization URI]/api/data/v9.2/leads`) request URLs, header lines with or without a
space after the colon (`Location:[Organization URI]/…`, `Content-ID:1`), and blank lines before
a closing delimiter. The parser reads lines, not offsets, so all of these come out the same.

Matching responses to requests: responses come in request order; a change set answers with a
nested `changesetresponse` part whose parts echo the Content-IDs, and when one of its
operations fails the change set is rolled back and may answer with the failing part only, or
(without `odata.continue-on-error`) with one bare part for the whole change set. Without that
preference the batch also stops at the first failure, leaving later items unanswered. Every
operation therefore gets an `Outcome`: succeeded, failed, rolled back, or not executed.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, TypeAlias, TypeVar

import httpx

from shared.dataverse.errors import ApiError, error_for
from shared.dataverse.odata import json_bytes

SERVICE_ROOT_PATH: Final = "/api/data/v9.2"
MAX_BATCH_OPERATIONS: Final = 1000

# The URL may hold a space only in Microsoft's placeholder "[Organization URI]/api/...".
_REQUEST_LINE: Final = re.compile(
    r"^(?P<method>[A-Za-z]+)[ \t]+(?P<url>.+?)(?:[ \t]+HTTP/\d(?:\.\d)?)?[ \t]*$"
)
_STATUS_LINE: Final = re.compile(
    r"^HTTP(?:/\d(?:\.\d)?)?[ \t]+(?P<status>\d{3})(?:[ \t]+(?P<reason>.*))?$"
)
_REFERENCE: Final = re.compile(r"^\$(\w+)(?=$|/)")
_WHITESPACE: Final = re.compile(r"\s")
_BOUNDARY_PARAM: Final = re.compile(r"""boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))""", re.IGNORECASE)


class BatchFormatError(ValueError):
    """A batch that cannot be built, or a body that cannot be read as one."""


# -- the request side ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchOperation:
    """One request inside a batch.

    `url` is relative to the service root (`salesorders(...)`), a Content-ID reference (`$1`,
    `$1/lastname`) or absolute. `idempotent` says whether sending it twice is harmless; by default
    every method but POST is (our writes are upserts by key).
    """

    method: str
    url: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_id: str | None = None
    idempotent: bool | None = None

    @property
    def is_idempotent(self) -> bool:
        return self.idempotent if self.idempotent is not None else self.method.upper() != "POST"


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """Operations applied atomically: all succeed or all are rolled back."""

    operations: tuple[BatchOperation, ...]

    @property
    def is_idempotent(self) -> bool:
        return all(op.is_idempotent for op in self.operations)


BatchItem: TypeAlias = BatchOperation | ChangeSet


@dataclass(frozen=True, slots=True)
class EncodedBatch:
    content_type: str
    body: bytes
    boundary: str
    operations: int


def operation_count(items: Iterable[BatchItem]) -> int:
    return sum(len(i.operations) if isinstance(i, ChangeSet) else 1 for i in items)


def validate_batch(items: Sequence[BatchItem]) -> None:
    """Refuses what Dataverse would refuse, before sending: an empty batch or change set, more
    than 1,000 operations, GET in a change set, duplicate Content-IDs, and `$n` references to a
    Content-ID not declared earlier in the same change set (the documented HTTP 400)."""
    if not items:
        raise BatchFormatError("a batch needs at least one operation")
    total = operation_count(items)
    if total > MAX_BATCH_OPERATIONS:
        raise BatchFormatError(
            f"a batch holds at most {MAX_BATCH_OPERATIONS} operations, this one has {total}"
        )
    seen_ids: set[str] = set()
    for item in items:
        operations = item.operations if isinstance(item, ChangeSet) else (item,)
        if isinstance(item, ChangeSet) and not operations:
            raise BatchFormatError("a change set needs at least one operation")
        declared: set[str] = set()
        for op in operations:
            if not re.fullmatch(r"[A-Za-z]+", op.method):
                raise BatchFormatError(f"{op.method!r} is not an HTTP method")
            if isinstance(item, ChangeSet) and op.method.upper() == "GET":
                raise BatchFormatError("GET is not allowed inside a change set")
            if _WHITESPACE.search(op.url):
                raise BatchFormatError(f"{op.url!r}: a request URL cannot contain spaces")
            for reference in _references(op):
                if not isinstance(item, ChangeSet) or reference not in declared:
                    raise BatchFormatError(
                        f"Content-ID reference ${reference} does not refer to an earlier "
                        "operation of the same change set"
                    )
            if op.content_id is not None:
                if not isinstance(item, ChangeSet):
                    raise BatchFormatError("Content-ID is only used inside a change set")
                if op.content_id in seen_ids:
                    raise BatchFormatError(f"Content-ID {op.content_id} is used twice")
                seen_ids.add(op.content_id)
                declared.add(op.content_id)


def encode_batch(
    items: Sequence[BatchItem],
    *,
    service_root: str = SERVICE_ROOT_PATH,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> EncodedBatch:
    """The body and Content-Type of a `POST $batch` (CRLF line endings, quoted boundaries)."""
    validate_batch(items)
    boundary = f"batch_{new_id()}"
    out: list[bytes] = []
    for item in items:
        out.append(f"--{boundary}\r\n".encode())
        if isinstance(item, ChangeSet):
            inner = f"changeset_{new_id()}"
            out.append(f'Content-Type: multipart/mixed; boundary="{inner}"\r\n\r\n'.encode())
            for op in item.operations:
                out.append(f"--{inner}\r\n".encode())
                out.append(_encode_operation(op, service_root))
            out.append(f"--{inner}--\r\n\r\n".encode())
        else:
            out.append(_encode_operation(item, service_root))
    out.append(f"--{boundary}--\r\n".encode())
    return EncodedBatch(
        content_type=f'multipart/mixed; boundary="{boundary}"',
        body=b"".join(out),
        boundary=boundary,
        operations=operation_count(items),
    )


def _encode_operation(op: BatchOperation, service_root: str) -> bytes:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if op.content_id is not None:
        lines.append(f"Content-ID: {op.content_id}")
    lines += ["", f"{op.method.upper()} {_part_url(op.url, service_root)} HTTP/1.1"]
    body = b""
    if op.body is not None:
        lines.append("Content-Type: application/json")
        body = json_bytes(op.body)
    for name, value in op.headers.items():
        if name.lower() == "content-type" and op.body is not None:
            continue
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise BatchFormatError(f"header {name!r} contains a line break")
        lines.append(f"{name}: {value}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    return head + body + b"\r\n"


def _part_url(url: str, service_root: str) -> str:
    if url.startswith(("$", "http://", "https://", "/")):
        return url
    return f"{service_root.rstrip('/')}/{url}"


def has_references(item: BatchItem) -> bool:
    """Whether any operation of the item refers to a Content-ID (`$n`): such an item cannot be
    renumbered into a larger batch without rewriting it."""
    operations = item.operations if isinstance(item, ChangeSet) else (item,)
    return any(_references(op) for op in operations)


def _references(op: BatchOperation) -> list[str]:
    found: list[str] = []
    url_ref = _REFERENCE.match(op.url)
    if url_ref:
        found.append(url_ref.group(1))
    for value in _strings(op.body):
        ref = _REFERENCE.match(value)
        if ref and value == f"${ref.group(1)}":
            found.append(ref.group(1))
    return found


def _strings(value: object) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


# -- reading multipart bodies -----------------------------------------------------------------


def boundary_of(content_type: str | None) -> str | None:
    """The boundary parameter of a multipart Content-Type, quoted or not."""
    if not content_type:
        return None
    match = _BOUNDARY_PARAM.search(content_type)
    if match is None:
        return None
    return match.group(1) or match.group(2)


def is_multipart(content_type: str | None) -> bool:
    return content_type is not None and content_type.strip().lower().startswith("multipart/")


def _sniff_boundary(body: bytes) -> str | None:
    for line in body.splitlines():
        text = line.strip()
        if not text:
            continue
        if text.startswith(b"--") and len(text) > 2:
            return text[2:].decode("latin-1")
        return None
    return None


def _split_parts(body: bytes, boundary: str) -> list[bytes]:
    """The parts between `--boundary` lines, up to `--boundary--`. The line break before a
    delimiter belongs to the delimiter (RFC 2046), so it is taken off the part."""
    opening = b"--" + boundary.encode("latin-1")
    closing = opening + b"--"
    parts: list[bytes] = []
    current: list[bytes] | None = None
    for line in body.splitlines(keepends=True):
        bare = line.rstrip(b"\r\n").rstrip(b" \t")
        if bare == closing:
            if current is not None:
                parts.append(_without_last_break(current))
            return parts
        if bare == opening:
            if current is not None:
                parts.append(_without_last_break(current))
            current = []
            continue
        if current is not None:
            current.append(line)
    if current is not None:
        raise BatchFormatError(f"the multipart body has no closing --{boundary}--")
    raise BatchFormatError(f"the multipart body has no --{boundary} delimiter")


def _without_last_break(lines: list[bytes]) -> bytes:
    if lines:
        last = lines[-1]
        if last.endswith(b"\r\n"):
            lines[-1] = last[:-2]
        elif last.endswith((b"\n", b"\r")):
            lines[-1] = last[:-1]
    return b"".join(lines)


def _read_headers(block: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Header lines up to the first empty line, and what follows it."""
    headers: list[tuple[bytes, bytes]] = []
    lines = block.splitlines(keepends=True)
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        bare = line.rstrip(b"\r\n")
        if not bare.strip():
            break
        name, colon, value = bare.partition(b":")
        if not colon or not name.strip():
            raise BatchFormatError(f"not a header line: {bare[:80]!r}")
        headers.append((name.strip(), value.strip()))
    return headers, b"".join(lines[index:])


def _skip_blank_lines(block: bytes) -> bytes:
    lines = block.splitlines(keepends=True)
    while lines and not lines[0].strip():
        lines.pop(0)
    return b"".join(lines)


def _first_line(block: bytes) -> tuple[str, bytes]:
    block = _skip_blank_lines(block)
    line, _, rest = block.partition(b"\n")
    return line.rstrip(b"\r").decode("utf-8", errors="replace"), rest


def _get(headers: Sequence[tuple[bytes, bytes]], name: str) -> str | None:
    wanted = name.lower().encode()
    for key, value in headers:
        if key.lower() == wanted:
            return value.decode("latin-1")
    return None


# -- the response side --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartResponse:
    """One HTTP response inside a batch response."""

    status: int
    reason: str
    headers: httpx.Headers
    body: bytes
    content_id: str | None = None

    def json(self) -> Any:
        """The decoded JSON body; None when empty or not JSON."""
        text = self.body.strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class ChangeSetResponse:
    parts: tuple[PartResponse, ...]


ResponseUnit: TypeAlias = PartResponse | ChangeSetResponse
_Part = TypeVar("_Part")


def parse_batch_response(body: bytes, content_type: str | None = None) -> tuple[ResponseUnit, ...]:
    """The response units of a batch response body, in order.

    The boundary comes from `content_type` when given (the outer `Content-Type` header), else
    from the body's first delimiter line (Microsoft's examples do not show the header).
    """
    return tuple(
        ChangeSetResponse(item) if isinstance(item, tuple) else item
        for item in _walk(body, content_type, _read_response)
    )


def _walk(
    body: bytes,
    content_type: str | None,
    read: Callable[[list[tuple[bytes, bytes]], bytes], _Part],
) -> list[_Part | tuple[_Part, ...]]:
    """The parts of a batch body read with `read`; a change set's parts come as one tuple.

    Requests and responses nest the same way, so both parsers walk them here.
    """
    boundary = boundary_of(content_type) or _sniff_boundary(body)
    if boundary is None:
        raise BatchFormatError("no multipart boundary in the Content-Type or the body")
    items: list[_Part | tuple[_Part, ...]] = []
    for part in _split_parts(body, boundary):
        headers, content = _read_headers(part)
        part_type = _get(headers, "content-type")
        if is_multipart(part_type):
            inner = boundary_of(part_type) or _sniff_boundary(content)
            if inner is None:
                raise BatchFormatError("a change set part has no boundary")
            items.append(tuple(read(*_read_headers(sub)) for sub in _split_parts(content, inner)))
        else:
            items.append(read(headers, content))
    return items


def _read_response(mime_headers: list[tuple[bytes, bytes]], message: bytes) -> PartResponse:
    status_line, rest = _first_line(message)
    match = _STATUS_LINE.match(status_line.strip())
    if match is None:
        raise BatchFormatError(f"not an HTTP status line: {status_line[:80]!r}")
    headers, body = _read_headers(rest)
    content_id = _get(mime_headers, "content-id") or _get(headers, "content-id")
    return PartResponse(
        status=int(match.group("status")),
        reason=(match.group("reason") or "").strip(),
        headers=httpx.Headers(headers),
        body=body.strip(),
        content_id=content_id.strip() if content_id else None,
    )


# -- reading a batch request (tests, and the Web API stand-in) ----------------------------------


@dataclass(frozen=True, slots=True)
class ParsedOperation:
    method: str
    url: str
    headers: httpx.Headers
    body: bytes
    content_id: str | None = None

    def json(self) -> Any:
        text = self.body.strip()
        return json.loads(text) if text else None


@dataclass(frozen=True, slots=True)
class ParsedChangeSet:
    operations: tuple[ParsedOperation, ...]


def parse_batch_request(
    body: bytes, content_type: str | None = None
) -> tuple[ParsedOperation | ParsedChangeSet, ...]:
    """The items of a batch request body: the inverse of `encode_batch`, and tolerant of the
    same variations as `parse_batch_response`."""
    return tuple(
        ParsedChangeSet(item) if isinstance(item, tuple) else item
        for item in _walk(body, content_type, _read_request)
    )


def _read_request(mime_headers: list[tuple[bytes, bytes]], message: bytes) -> ParsedOperation:
    request_line, rest = _first_line(message)
    match = _REQUEST_LINE.match(request_line.strip())
    if match is None:
        raise BatchFormatError(f"not an HTTP request line: {request_line[:80]!r}")
    headers, body = _read_headers(rest)
    content_id = _get(mime_headers, "content-id") or _get(headers, "content-id")
    return ParsedOperation(
        method=match.group("method").upper(),
        url=match.group("url"),
        headers=httpx.Headers(headers),
        body=body.strip(),
        content_id=content_id.strip() if content_id else None,
    )


# -- matching responses to requests -------------------------------------------------------------


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # this operation's own error
    ROLLED_BACK = "rolled_back"  # its change set failed, so it was undone (or never applied)
    NOT_EXECUTED = "not_executed"  # the batch stopped before reaching it


@dataclass(frozen=True, slots=True)
class OperationResult:
    operation: BatchOperation
    outcome: Outcome
    status: int | None = None
    headers: httpx.Headers = field(default_factory=httpx.Headers)
    body: Any = None
    error: ApiError | None = None

    @property
    def entity_id(self) -> str | None:
        """`OData-EntityId`: the new row's URL after a create, the key URL after an upsert."""
        return _header(self.headers, "odata-entityid")

    @property
    def etag(self) -> str | None:
        return _header(self.headers, "etag")


@dataclass(frozen=True, slots=True)
class ItemResult:
    """The result of one batch item: a single operation, or a whole change set."""

    item: BatchItem
    operations: tuple[OperationResult, ...]
    error: ApiError | None = None  # what failed this item, when it failed

    @property
    def ok(self) -> bool:
        return all(r.outcome is Outcome.SUCCEEDED for r in self.operations)

    @property
    def executed(self) -> bool:
        return any(r.outcome is not Outcome.NOT_EXECUTED for r in self.operations)


@dataclass(frozen=True, slots=True)
class BatchResult:
    status: int  # the outer HTTP status (of the last attempt)
    items: tuple[ItemResult, ...]

    @property
    def ok(self) -> bool:
        return all(item.ok for item in self.items)

    @property
    def operations(self) -> tuple[OperationResult, ...]:
        return tuple(r for item in self.items for r in item.operations)

    @property
    def errors(self) -> tuple[ApiError, ...]:
        return tuple(item.error for item in self.items if item.error is not None)


def match_responses(
    items: Sequence[BatchItem], units: Sequence[ResponseUnit], *, status: int
) -> BatchResult:
    """Pairs the response units with the request items, in order, and decides each outcome."""
    if len(units) > len(items):
        raise BatchFormatError(f"{len(units)} responses to a batch of {len(items)} items")
    results: list[ItemResult] = []
    for index, item in enumerate(items):
        unit = units[index] if index < len(units) else None
        if unit is None:
            ops = item.operations if isinstance(item, ChangeSet) else (item,)
            results.append(ItemResult(item, tuple(_not_executed(op) for op in ops)))
        elif isinstance(item, BatchOperation):
            if isinstance(unit, ChangeSetResponse):
                raise BatchFormatError(f"item {index + 1}: a change set answered an operation")
            results.append(_single(item, unit))
        else:
            results.append(_change_set(item, unit))
    return BatchResult(status, tuple(results))


def _single(op: BatchOperation, part: PartResponse) -> ItemResult:
    if part.ok:
        return ItemResult(op, (_result(op, part, Outcome.SUCCEEDED),))
    failed = _result(op, part, Outcome.FAILED)
    return ItemResult(op, (failed,), failed.error)


def _change_set(change_set: ChangeSet, unit: ResponseUnit) -> ItemResult:
    ops = change_set.operations
    parts = unit.parts if isinstance(unit, ChangeSetResponse) else (unit,)
    by_id = {op.content_id: op for op in ops if op.content_id is not None}
    paired: dict[int, PartResponse] = {}
    unattributed: list[PartResponse] = []
    positional = (
        isinstance(unit, ChangeSetResponse)
        and len(parts) == len(ops)
        and all(p.content_id is None for p in parts)
    )
    for position, part in enumerate(parts):
        target = by_id.get(part.content_id) if part.content_id is not None else None
        if target is not None:
            paired[ops.index(target)] = part
        elif positional:
            paired[position] = part  # no Content-IDs at all: responses are in request order
        else:
            unattributed.append(part)
    failures = [p for p in parts if not p.ok]
    if not failures:
        if isinstance(unit, PartResponse) or len(paired) != len(ops):
            raise BatchFormatError(
                f"a change set of {len(ops)} operations got {len(parts)} successful responses"
            )
        return ItemResult(
            change_set, tuple(_result(op, paired[i], Outcome.SUCCEEDED) for i, op in enumerate(ops))
        )
    # One failure rolls the whole change set back.
    results: list[OperationResult] = []
    first_error: ApiError | None = None
    for i, op in enumerate(ops):
        answer = paired.get(i)
        if answer is not None and not answer.ok:
            result = _result(op, answer, Outcome.FAILED)
            first_error = first_error or result.error
        else:
            result = OperationResult(op, Outcome.ROLLED_BACK)
        results.append(result)
    if first_error is None:
        # The failure names no operation of ours: charge it to the change set as a whole.
        failed = unattributed[0] if unattributed else failures[0]
        first_error = _error(ops[0], failed, method="POST", url="$batch")
    return ItemResult(change_set, tuple(results), first_error)


def _result(op: BatchOperation, part: PartResponse, outcome: Outcome) -> OperationResult:
    body = part.json()
    error = _error(op, part) if outcome is Outcome.FAILED else None
    return OperationResult(op, outcome, part.status, part.headers, body, error)


def _error(
    op: BatchOperation, part: PartResponse, *, method: str | None = None, url: str | None = None
) -> ApiError:
    return error_for(
        part.status,
        part.headers,
        part.body,
        method=method or op.method.upper(),
        url=url or op.url,
        request_headers=op.headers if method is None else None,
        reason=part.reason,
    )


def _header(headers: httpx.Headers, name: str) -> str | None:
    value = headers.get(name)
    return str(value) if value is not None else None


def _not_executed(op: BatchOperation) -> OperationResult:
    return OperationResult(op, Outcome.NOT_EXECUTED)
