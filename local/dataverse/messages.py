"""The request and response of one Web API operation, independent of the HTTP framework.

Top-level requests and the operations inside a `$batch` both become an `ApiRequest`, so every
operation runs through the same code whether it came alone or in a batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

from local.dataverse import errors
from local.dataverse.odata_query import parse_prefer

JSON_TYPE: Final = "application/json; odata.metadata=minimal"
ODATA_VERSION: Final = ("OData-Version", "4.0")


@dataclass(slots=True)
class ApiRequest:
    method: str
    path: str  # below the service root (`salesorders(…)`), decoded, without the query
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    base_url: str  # `http://host:port/api/data/v9.2/`
    content_ids: dict[str, str] = field(default_factory=dict)  # change set: "$1" → entity URL
    in_batch: bool = False

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def prefer(self) -> dict[str, str]:
        raw = self.header("prefer")
        return parse_prefer([raw]) if raw else {}

    def json(self) -> Any:
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body)
        except ValueError:
            raise errors.bad_request("The request body is not valid JSON.") from None

    def url(self, path: str, pairs: list[tuple[str, str]] | None = None) -> str:
        """An absolute service URL for `path` with the query `pairs`."""
        query = "&".join(
            f"{quote(name, safe='$@')}={quote(value, safe=quote_safe())}"
            for name, value in (pairs or [])
        )
        return self.base_url + path + (f"?{query}" if query else "")


def quote_safe() -> str:
    return "$,()'*:@/=!"


@dataclass(slots=True)
class ApiResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    entity_url: str | None = None  # the row written, for $batch Content-ID references

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def json_response(
    status: int, body: Any, headers: list[tuple[str, str]] | None = None
) -> ApiResponse:
    return ApiResponse(
        status,
        [("Content-Type", JSON_TYPE), ODATA_VERSION, *(headers or [])],
        json.dumps(body).encode(),
    )


def no_content(headers: list[tuple[str, str]] | None = None, status: int = 204) -> ApiResponse:
    return ApiResponse(status, [ODATA_VERSION, *(headers or [])])


def error_response(error: errors.DataverseError) -> ApiResponse:
    return ApiResponse(
        error.status,
        [("Content-Type", JSON_TYPE), ODATA_VERSION, *error.headers.items()],
        error.body(),
    )
