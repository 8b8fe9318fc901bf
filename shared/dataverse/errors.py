"""Typed failures of Dataverse Web API calls, keyed on the HTTP status first, then the error code.

Dataverse answers errors as `{"error": {"code": "...", "message": "..."}}`; the code "is not
related to the http status code and is frequently empty" (compose-http-requests-handle-errors.md).
So the HTTP status picks the base class (`BadRequestError`, `NotFoundError`,
`PreconditionFailedError`, `ThrottledError`, `ServerError`, ...), and a known code adds a kind
(`DuplicateKeyError`, `ConcurrencyError`, `RecordNotFoundError`, `DuplicateDetectedError`,
`KeyNotDefinedError`). The raised class derives from both, so `except DuplicateKeyError` works
whichever status the server chose (a duplicate key on create is 412 in every public client we
know of, but no Microsoft page says so), and `except PreconditionFailedError` still catches it.

Codes arrive in hex from the Web API (`0x80060892`) and in decimal from the SDK and some clients
(`-2147088238`); both parse to the same 32-bit value. When the code is empty, a 412 is read from
the request's own conditions: `If-None-Match: *` means the row exists, an ETag in `If-Match`
means the row changed (perform-conditional-operations-using-web-api.md).

Every error carries the method, the path (never the query, which can hold customer data in a
filter, never a header, so never the token), the status, the code, the server's message and the
request id (`x-ms-service-request-id`, or `REQ_ID` in batch parts) for support.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import Any, Final, cast
from urllib.parse import urlsplit

_MAX_TEXT: Final = 500

#: The service protection codes (api-limits.md): facet by code.
SERVICE_PROTECTION_FACETS: Final[Mapping[int, str]] = MappingProxyType(
    {
        0x80072322: "requests",  # -2147015902: number of requests in the 300 s window
        0x80072321: "execution_time",  # -2147015903: combined execution time
        0x80072326: "concurrency",  # -2147015898: concurrent requests
    }
)


def parse_code(code: object) -> int | None:
    """An error code as an unsigned 32-bit value: `0x80060892`, `-2147088238` and `2147879058`
    are the same code. Empty or unreadable codes are None."""
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        value = code
    elif isinstance(code, str):
        text = code.strip()
        try:
            if text[:2].lower() == "0x":
                value = int(text[2:], 16)
            elif re.fullmatch(r"[-+]?\d+", text):
                value = int(text)
            else:
                return None
        except ValueError:
            return None
    else:
        return None
    if not -(2**31) <= value <= 0xFFFFFFFF:
        return None
    return value & 0xFFFFFFFF


def code_hex(value: int) -> str:
    return f"0x{value:08x}"


class DataverseError(Exception):
    """A Dataverse call failed; `str()` is one line that is safe to log."""

    def __init__(
        self,
        summary: str,
        *,
        method: str,
        path: str,
        status: int | None = None,
        code: str | None = None,
        message: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.summary = summary
        self.method = method
        self.path = path
        self.status = status
        self.code = code or None
        self.code_value = parse_code(code)
        self.message = message
        self.request_id = request_id
        super().__init__(self._render())

    @property
    def code_name(self) -> str | None:
        """The documented name of the code (e.g. DuplicateRecordEntityKey), when we know it."""
        if self.code_value is None:
            return None
        known = KNOWN_CODES.get(self.code_value)
        return known[0] if known else None

    def _render(self) -> str:
        status = f" HTTP {self.status}" if self.status is not None else ""
        text = f"Dataverse {self.method} {self.path}{status}: {self.summary}"
        if self.code:
            name = self.code_name
            text += f" [{self.code}{' ' + name if name else ''}]"
        if self.message and self.message not in self.summary:
            text += f": {self.message}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text[:1000]


class TransportError(DataverseError):
    """No HTTP answer: connection refused, timeout, connection dropped."""


class OutcomeUnknownError(DataverseError):
    """A write that is not idempotent (a POST create) may or may not have been applied, so it
    was not sent again; look for the row before writing again. Upserts never raise this: they
    are retried, since applying one twice is harmless."""


class ResponseFormatError(DataverseError):
    """The server answered with a body that is not the documented shape."""


class ApiError(DataverseError):
    """Dataverse answered with an HTTP error status."""

    def __init__(self, summary: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        self.details: Mapping[str, str] = MappingProxyType({})
        super().__init__(summary, **kwargs)


class ClientError(ApiError):
    """A 4xx: repeating the request unchanged will not help (except 408 and 429, retried)."""


class BadRequestError(ClientError):
    """400: an invalid argument, column, value or batch payload."""


class UnauthorizedError(ClientError):
    """401: no valid token (wrong scope, expired, not an application user of this environment)."""


class ForbiddenError(ClientError):
    """403: the application user's security role lacks a privilege."""


class NotFoundError(ClientError):
    """404: no such row (also a PATCH with If-Match: * on a missing row), set or key."""


class MethodNotAllowedError(ClientError):
    """405: a method and resource that do not go together."""


class RequestTimeoutError(ClientError):
    """408: retried as transient before this is raised."""


class PreconditionFailedError(ClientError):
    """412: a condition failed: the row exists (If-None-Match: *), the ETag changed, or a
    duplicate key on create."""


class PayloadTooLargeError(ClientError):
    """413: the request is too large."""


class ThrottledError(ClientError):
    """429: a service protection limit, still hit after waiting Retry-After as allowed."""

    @property
    def facet(self) -> str | None:
        """requests, execution_time or concurrency (api-limits.md), when the code says."""
        return None if self.code_value is None else SERVICE_PROTECTION_FACETS.get(self.code_value)


class ServerError(ApiError):
    """5xx. 502/503/504 are retried before this is raised; 500 is not (it is also how duplicate
    detection answers, manage-duplicate-detection-create-update.md)."""


# -- kinds keyed on the error code, combined with the status class at raise time ------------------


class DuplicateKeyError(ApiError):
    """A row with these key values already exists: DuplicateRecordEntityKey (0x80060892),
    DuplicateRecord (0x80040237), a unique index violation (0x80073002), or a 412 to a
    create-only upsert (If-None-Match: *)."""


class ConcurrencyError(ApiError):
    """The ETag sent in If-Match no longer matches (ConcurrencyVersionMismatch, 0x80060882), or
    optimistic concurrency cannot be used on the table (0x80060883, 0x8006088d)."""

    @classmethod
    def because_of(cls, summary: str, cause: DataverseError) -> ConcurrencyError:
        """A concurrent change told apart from `cause`, the error Dataverse answered with."""
        return cls(
            summary,
            method=cause.method,
            path=cause.path,
            status=cause.status,
            code=cause.code,
            message=cause.message,
            request_id=cause.request_id,
        )


class RecordNotFoundError(ApiError):
    """ObjectDoesNotExist (0x80040217): a row the request names, perhaps in a bind, is missing."""


class DuplicateDetectedError(ApiError):
    """A duplicate-detection rule matched (DuplicateRecordsFound, 0x80040333); not transient."""


class KeyNotDefinedError(ApiError):
    """EntityKeyNotDefined (0x80060890): the alternate key is missing or not yet active."""


KNOWN_CODES: Final[Mapping[int, tuple[str, type[ApiError] | None]]] = MappingProxyType(
    {
        0x80060892: ("DuplicateRecordEntityKey", DuplicateKeyError),
        0x80040237: ("DuplicateRecord", DuplicateKeyError),
        0x80073002: ("CrmSQLUniqueIndexOrConstraintViolation", DuplicateKeyError),
        0x80060882: ("ConcurrencyVersionMismatch", ConcurrencyError),
        0x80060883: ("ConcurrencyVersionNotProvided", ConcurrencyError),
        0x8006088D: ("OptimisticConcurrencyNotEnabled", ConcurrencyError),
        0x80040217: ("ObjectDoesNotExist", RecordNotFoundError),
        0x80040333: ("DuplicateRecordsFound", DuplicateDetectedError),
        0x80060890: ("EntityKeyNotDefined", KeyNotDefinedError),
        0x80072322: ("ServiceProtection: number of requests", None),
        0x80072321: ("ServiceProtection: execution time", None),
        0x80072326: ("ServiceProtection: concurrent requests", None),
    }
)

_BY_STATUS: Final[Mapping[int, type[ApiError]]] = MappingProxyType(
    {
        400: BadRequestError,
        401: UnauthorizedError,
        403: ForbiddenError,
        404: NotFoundError,
        405: MethodNotAllowedError,
        408: RequestTimeoutError,
        412: PreconditionFailedError,
        413: PayloadTooLargeError,
        429: ThrottledError,
    }
)
_COMBINED: dict[tuple[type[ApiError], type[ApiError]], type[ApiError]] = {}


def status_class(status: int) -> type[ApiError]:
    if status >= 500:
        return ServerError
    if status >= 400:
        return _BY_STATUS.get(status, ClientError)
    return ApiError


def error_class(
    status: int, code: object = None, request_headers: Mapping[str, str] | None = None
) -> type[ApiError]:
    """The class to raise for `status` and `code`: the status class, combined with the code's
    kind when the code is known (or, for an empty code on 412, the request's condition)."""
    base = status_class(status)
    value = parse_code(code)
    kind = KNOWN_CODES[value][1] if value is not None and value in KNOWN_CODES else None
    if kind is None and status == 412 and request_headers is not None:
        kind = _precondition_kind(request_headers)
    if kind is None or issubclass(base, kind):
        return base
    combined = _COMBINED.get((kind, base))
    if combined is None:
        # Multiple inheritance, so both `except <kind>` and `except <status class>` catch it.
        namespace = {"__module__": __name__, "__doc__": kind.__doc__}
        combined = cast(type[ApiError], type(kind.__name__, (kind, base), namespace))
        _COMBINED[(kind, base)] = combined
    return combined


def _precondition_kind(request_headers: Mapping[str, str]) -> type[ApiError] | None:
    lower = {k.lower(): v.strip() for k, v in request_headers.items()}
    if lower.get("if-none-match") == "*":
        return DuplicateKeyError
    if_match = lower.get("if-match")
    if if_match and if_match != "*":
        return ConcurrencyError
    return None


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """What the server said about an error."""

    code: str | None = None
    message: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, body: bytes | str | object) -> ErrorBody:
        """Reads `{"error": {"code", "message", "innererror", "@Microsoft.PowerApps.CDS.*"}}`.

        Tolerant on purpose: the documented annotated example itself is not valid JSON (a comma
        is missing after TraceText in compose-http-requests-handle-errors.md), and a $batch
        error can be plain text ("Content-ID Reference: '$1' does not exist in the batch
        context."). Then the code and message are picked out of the text, or the text kept.
        """
        if isinstance(body, bytes):
            body = body.decode("utf-8", errors="replace")
        if isinstance(body, str):
            text = body.strip()
            if not text:
                return cls()
            try:
                body = json.loads(text)
            except ValueError:
                return cls._from_text(text)
        if not isinstance(body, Mapping):
            return cls()
        error = body.get("error")
        if not isinstance(error, Mapping):
            return cls()
        details: dict[str, str] = {}
        for name, value in error.items():
            if isinstance(name, str) and name.startswith("@") and value is not None:
                details[name.lstrip("@")] = _clip(str(value))
        inner = error.get("innererror")
        if isinstance(inner, Mapping) and inner.get("message"):
            details.setdefault("innererror.message", _clip(str(inner["message"])))
        code = error.get("code")
        message = error.get("message")
        return cls(
            code=str(code) if code not in (None, "") else None,
            message=_clip(str(message)) if message else None,
            details=details,
        )

    @classmethod
    def _from_text(cls, text: str) -> ErrorBody:
        code = re.search(r'"code"\s*:\s*"([^"]*)"', text)
        message = re.search(r'"message"\s*:\s*"((?:[^"\\]|\\.)*)"', text)
        if code or message:
            return cls(
                code=(code.group(1) or None) if code else None,
                message=_clip(message.group(1)) if message else None,
            )
        return cls(message=_clip(text))


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """`Retry-After` in seconds (api-limits.md sends seconds; an HTTP date is also accepted,
    measured from `now`, a POSIX timestamp). None when absent or unreadable."""
    raw = _header(headers, "retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        if now is None:
            return None
        seconds = when.timestamp() - now
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(0.0, seconds)


def request_id(headers: Mapping[str, str]) -> str | None:
    return _header(headers, "x-ms-service-request-id") or _header(headers, "req_id")


def error_for(
    status: int,
    headers: Mapping[str, str],
    body: bytes | str | object,
    *,
    method: str,
    url: str,
    request_headers: Mapping[str, str] | None = None,
    reason: str = "",
) -> ApiError:
    """The typed error for one error response (a whole response or one $batch part)."""
    said = ErrorBody.parse(body)
    cls = error_class(status, said.code, request_headers)
    error = cls(
        reason or _REASONS.get(status, "error"),
        method=method,
        path=safe_path(url),
        status=status,
        code=said.code,
        message=said.message,
        request_id=request_id(headers),
        retry_after=retry_after_seconds(headers),
    )
    error.details = MappingProxyType(dict(said.details))
    return error


def safe_path(url: str) -> str:
    """The path of a URL, without scheme, host, query or fragment."""
    return urlsplit(url).path or url.split("?", 1)[0]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    for key, candidate in headers.items():
        if key.lower() == name:
            return candidate
    return None


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


_REASONS: Final[Mapping[int, str]] = MappingProxyType(
    {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        405: "Method Not Allowed",
        408: "Request Timeout",
        412: "Precondition Failed",
        413: "Payload Too Large",
        429: "Too Many Requests",
        500: "Internal Server Error",
        501: "Not Implemented",
        502: "Bad Gateway",
        503: "Service Unavailable",
        504: "Gateway Timeout",
    }
)
