"""Typed failures of BigCommerce API calls, and the reading of BigCommerce's error bodies.

Every error carries the store, the method, the endpoint path (never the query string, which can
hold e-mail addresses, and never a header, so never the access token), the HTTP status and
BigCommerce's own error title and field errors. The session redacts the token from any text the
server sends back before it reaches a message, in case a proxy or the simulator echoes it.

BigCommerce answers errors in three shapes, all read here:
V3 `{"status", "title", "type", "errors": {field: message}, "detail"}`, V3 payment actions
`{"data": [{"status", "title"}]}` and V2 `[{"status", "message"}]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

_MAX_TEXT: Final = 300


class BigCommerceError(Exception):
    """A BigCommerce call failed; `str()` is one line that is safe to log."""

    def __init__(
        self,
        summary: str,
        *,
        store_hash: str,
        method: str,
        path: str,
        status: int | None = None,
        title: str | None = None,
        detail: str | None = None,
        errors: Mapping[str, Any] | None = None,
    ) -> None:
        self.store_hash = store_hash
        self.method = method
        self.path = path
        self.status = status
        self.title = title
        self.detail = detail
        self.errors: Mapping[str, Any] = MappingProxyType(dict(errors or {}))
        super().__init__(self._render(summary))

    def _render(self, summary: str) -> str:
        status = f" HTTP {self.status}" if self.status is not None else ""
        text = f"BigCommerce {self.method} {self.path} (store {self.store_hash}){status}: {summary}"
        if self.title and self.title not in summary:
            text += f": {self.title}"
        if self.detail:
            text += f" ({self.detail})"
        if self.errors:
            fields = "; ".join(f"{key}: {value}" for key, value in self.errors.items())
            text += f" [{fields}]"
        return text[:1000]


class TransportError(BigCommerceError):
    """The request got no HTTP answer (connection refused, timeout, broken connection)."""


class OutcomeUnknownError(BigCommerceError):
    """A non-idempotent write may or may not have been applied; it was not retried.

    Raised for creates (shipments, refunds, hooks, metafields) when the request may have reached
    BigCommerce but no definite answer came back (a read timeout, a dropped connection, 502, 503,
    504). Resending could duplicate the write, so the caller must first look for it (list the
    order's shipments or refunds, the hooks, the metafields) and only then decide to send again.
    """


class ResponseFormatError(BigCommerceError):
    """BigCommerce answered 2xx with a body that is not the documented shape."""


class ApiError(BigCommerceError):
    """BigCommerce answered with an HTTP error status."""


class ClientError(ApiError):
    """A 4xx: the request itself is wrong; repeating it unchanged will not help."""


class BadRequestError(ClientError):
    """400: malformed request."""


class UnauthorizedError(ClientError):
    """401: the access token is missing, wrong or revoked."""


class ForbiddenError(ClientError):
    """403: the API account lacks the OAuth scope for this call."""


class NotFoundError(ClientError):
    """404: no such order, shipment, refund, hook, …"""


class ConflictError(ClientError):
    """409: the change conflicts with the resource's state (e.g. a duplicate metafield key)."""


class UnprocessableError(ClientError):
    """422: missing or invalid data; `errors` maps fields to BigCommerce's messages."""


class RateLimitedError(ClientError):
    """429 on every attempt: the store's quota stayed exhausted."""

    def __init__(self, summary: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(summary, **kwargs)


class ServerError(ApiError):
    """5xx: BigCommerce failed; 502/503/504 were retried before this was raised."""


_BY_STATUS: Final[Mapping[int, type[ApiError]]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableError,
    429: RateLimitedError,
}


def error_class(status: int) -> type[ApiError]:
    if status >= 500:
        return ServerError
    if status >= 400:
        return _BY_STATUS.get(status, ClientError)
    return ApiError


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """What BigCommerce said about an error, whichever of its shapes the body used."""

    title: str | None = None
    detail: str | None = None
    errors: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, body: object, redact: str = "") -> ErrorBody:
        first = _first_error(body)
        if first is None:
            return cls()
        title = _text(first.get("title") or first.get("message") or first.get("error"), redact)
        detail = _text(first.get("detail"), redact)
        raw = first.get("errors")
        errors: dict[str, Any] = {}
        if isinstance(raw, Mapping):
            errors = {str(k): _text(v, redact) for k, v in list(raw.items())[:20]}
        elif isinstance(raw, list):
            errors = {str(i): _text(v, redact) for i, v in enumerate(raw[:20])}
        return cls(title, detail, errors)


def _first_error(body: object) -> Mapping[str, Any] | None:
    if isinstance(body, list):
        body = body[0] if body else None
    if isinstance(body, Mapping):
        data = body.get("data")
        if isinstance(data, list) and data and isinstance(data[0], Mapping) and "title" not in body:
            return data[0]
        return body
    return None


def _text(value: object, redact: str) -> str | None:
    if value is None or value == "":
        return None
    text = value if isinstance(value, str) else str(value)
    if redact:
        text = text.replace(redact, "[redacted]")
    return text[:_MAX_TEXT]
