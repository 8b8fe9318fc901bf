"""Request plumbing shared by the API handlers: the store, the JSON body, the answers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from local.bigcommerce.errors import ApiError, not_found
from local.bigcommerce.model import Order
from local.bigcommerce.simulator import Simulator
from local.bigcommerce.state import Store


def simulator(request: Request) -> Simulator:
    sim = request.app.state.simulator
    assert isinstance(sim, Simulator)
    return sim


def store_of(request: Request) -> tuple[Simulator, Store]:
    sim = simulator(request)
    store = sim.store(request.path_params["store_hash"])
    if store is None:  # the gateway answers unknown stores before any handler runs
        raise not_found("The requested store was not found.")
    return sim, store


def api_base(request: Request, version: str) -> str:
    """`http://host/stores/{hash}/v2`: where the links in a response point."""
    return (
        f"{str(request.base_url).rstrip('/')}/stores/{request.path_params['store_hash']}/{version}"
    )


async def json_body(request: Request, *, status: int = 400) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise ApiError(status, "The request body is empty; send a JSON object.")
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, "The request body is not valid JSON.") from None


def order_or_404(store: Store, order_id: int, *, title: str | None = None) -> Order:
    order = store.order(order_id)
    if order is None:
        raise not_found(title or "The requested resource was not found.")
    return order


def ok(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def no_content() -> Response:
    return Response(status_code=204)


def v2_list(sim: Simulator, items: list[Any]) -> Response:
    """A V2 collection: `[]` when empty, or 204 when the simulator is set to answer that way."""
    if not items and sim.empty_v2_list_status == 204:
        return no_content()
    return ok(items)


def includes(params: Mapping[str, str]) -> set[str]:
    return {part.strip() for part in params.get("include", "").split(",") if part.strip()}
