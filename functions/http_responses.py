"""JSON and RFC 9457 problem responses, shared by the HTTP trigger adapters."""

from __future__ import annotations

import json
from collections.abc import Mapping

import azure.functions as func


def json_response(body: Mapping[str, object], status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, separators=(",", ":")), status_code=status, mimetype="application/json"
    )


def problem(status: int, title: str, detail: str, type_: str = "about:blank") -> func.HttpResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail}
    return func.HttpResponse(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        mimetype="application/problem+json",
    )
