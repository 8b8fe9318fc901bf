"""Maps handler results to HTTP responses: JSON bodies and RFC 9457 problems."""

from __future__ import annotations

import json
from collections.abc import Mapping

import azure.functions as func

from shared.handlers.webhook_ingress import IngressResponse


def json_response(body: Mapping[str, object], status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, separators=(",", ":")), status_code=status, mimetype="application/json"
    )


def from_handler(result: IngressResponse) -> func.HttpResponse:
    if result.body is None:
        # BigCommerce asks receivers not to send a body with a success.
        return func.HttpResponse(status_code=result.status, headers=dict(result.headers))
    return func.HttpResponse(
        json.dumps(result.body, separators=(",", ":")),
        status_code=result.status,
        headers=dict(result.headers),
        mimetype="application/problem+json" if result.is_problem else "application/json",
    )
