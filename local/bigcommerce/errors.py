"""Errors as the two API generations report them.

V2 answers `[{"status": 404, "message": "The requested resource was not found."}]`; V3 answers
`{"status": 422, "title": "...", "type": "...", "errors": {...}}`, and Create a Refund wraps that
object in `{"data": [...]}`. Handlers raise `ApiError`; the app renders it for the path's version.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

ERROR_TYPE = "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes"
NOT_FOUND = "The requested resource was not found."


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: dict[str, Any] | list[Any] | None = None,
        wrap_in_data: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors: dict[str, Any] | list[Any] = {} if errors is None else errors
        self.wrap_in_data = wrap_in_data
        self.headers = headers


def v2_body(
    status: int, message: str, details: dict[str, Any] | list[Any] | None = None
) -> list[Any]:
    entry: dict[str, Any] = {"status": status, "message": message}
    if details:
        entry["details"] = details
    return [entry]


def v3_body(
    status: int, title: str, errors: dict[str, Any] | list[Any] | None = None
) -> dict[str, Any]:
    return {
        "status": status,
        "title": title,
        "type": ERROR_TYPE,
        "errors": {} if errors is None else errors,
    }


def body_for(path: str, status: int, message: str) -> Any:
    """The error body a request to `path` gets: V3 shape under `/v3/`, V2 shape otherwise."""
    return v3_body(status, message) if "/v3/" in path else v2_body(status, message)


def render(error: ApiError, path: str) -> JSONResponse:
    if "/v3/" in path:
        body: Any = v3_body(error.status, error.message, error.errors)
        if error.wrap_in_data:
            body = {"data": [body]}
    else:
        body = v2_body(error.status, error.message, error.errors)
    return JSONResponse(body, status_code=error.status, headers=error.headers)


def not_found(message: str = NOT_FOUND) -> ApiError:
    return ApiError(404, message)


def bad_request(message: str, **details: Any) -> ApiError:
    return ApiError(400, message, errors=details or None)
