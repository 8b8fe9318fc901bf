"""Orders V3 endpoints under `/stores/{store_hash}/v3`: transactions, refund quotes, refunds and
order metafields."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from local.bigcommerce import metafields, refunds
from local.bigcommerce.errors import ApiError, not_found
from local.bigcommerce.listing import parse_page
from local.bigcommerce.model import Metafield, Order
from local.bigcommerce.state import Store
from local.bigcommerce.timefmt import parse_date
from local.bigcommerce.views_v3 import (
    metafield_json,
    pagination,
    quote_json,
    refund_json,
    transaction_json,
)
from local.bigcommerce.web import json_body, no_content, ok, order_or_404, store_of

ORDER_NOT_FOUND = "Order not found"


def _order(store: Store, request: Request) -> Order:
    return order_or_404(store, request.path_params["order_id"], title=ORDER_NOT_FOUND)


async def list_transactions(request: Request) -> Response:
    _, store = store_of(request)
    page = parse_page(request.query_params)
    with store.lock:
        order = _order(store, request)
        chosen = page.slice(order.transactions)
        if not chosen:
            return no_content()
        return ok(
            {
                "data": [transaction_json(order, t) for t in chosen],
                "meta": {
                    "pagination": pagination(
                        len(order.transactions), len(chosen), page.number, page.limit
                    )
                },
            }
        )


async def create_refund_quote(request: Request) -> Response:
    _, store = store_of(request)
    body = await json_body(request, status=422)
    with store.lock:
        quote = refunds.quote(_order(store, request), body)
        return ok({"data": quote_json(quote), "meta": {}}, 201)


async def create_refund(request: Request) -> Response:
    sim, store = store_of(request)
    body = await json_body(request, status=422)
    order_id = request.path_params["order_id"]
    with store.lock:
        refunds.plan(_order(store, request), body)
        if order_id in store.refunds_in_flight:
            raise ApiError(
                422,
                "A refund is already being processed for this order; refunds on one order must "
                "be made one after another.",
                wrap_in_data=True,
            )
        store.refunds_in_flight.add(order_id)
    try:
        await asyncio.sleep(sim.refund_processing_ms / 1000 / sim.clock.scale)
        with sim.change(store) as events:
            order = _order(store, request)
            refund = refunds.commit(store, order, refunds.plan(order, body), sim.now(), events)
            view = refund_json(refund)
    finally:
        with store.lock:
            store.refunds_in_flight.discard(order_id)
    return ok({"data": view, "meta": {}}, 201)


async def list_order_refunds(request: Request) -> Response:
    _, store = store_of(request)
    transaction_id = request.query_params.get("transaction_id")
    with store.lock:
        order = _order(store, request)
        chosen = [store.refunds[i] for i in sorted(order.refund_ids)]
        if transaction_id:
            chosen = [
                r for r in chosen if any(p.transaction_id == transaction_id for p in r.payments)
            ]
        return ok({"data": [refund_json(r) for r in chosen], "meta": {}})


def _ids(params: Mapping[str, str], name: str) -> set[int] | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        return {int(part) for part in raw.split(",") if part.strip()}
    except ValueError:
        raise ApiError(400, f"The filter '{name}' must be a comma-separated list of ids.") from None


async def list_all_refunds(request: Request) -> Response:
    _, store = store_of(request)
    params = request.query_params
    page = parse_page(params)
    order_ids, refund_ids = _ids(params, "order_id:in"), _ids(params, "id:in")
    bounds = []
    for name in ("created:min", "created:max"):
        raw = params.get(name)
        moment = parse_date(raw) if raw else None
        if raw and moment is None:
            raise ApiError(400, f"The filter '{name}' must be an RFC 3339 date-time.")
        bounds.append(moment)
    low, high = bounds
    transaction_id = params.get("transaction_id")
    with store.lock:
        chosen = [
            r
            for _, r in sorted(store.refunds.items())
            if (order_ids is None or r.order_id in order_ids)
            and (refund_ids is None or r.id in refund_ids)
            and (low is None or r.created >= low)
            and (high is None or r.created <= high)
            and (not transaction_id or any(p.transaction_id == transaction_id for p in r.payments))
        ]
        shown = page.slice(chosen)
        return ok(
            {
                "data": [refund_json(r) for r in shown],
                "meta": {
                    "pagination": pagination(len(chosen), len(shown), page.number, page.limit)
                },
            }
        )


async def get_refund(request: Request) -> Response:
    _, store = store_of(request)
    with store.lock:
        refund = store.refunds.get(request.path_params["refund_id"])
        if refund is None:
            raise not_found("Refund not found")
        return ok({"data": refund_json(refund, single=True), "meta": {}})


def _metafield(store: Store, request: Request) -> Metafield:
    metafield = store.metafields.get(request.path_params["metafield_id"])
    if metafield is None or metafield.order_id != request.path_params["order_id"]:
        raise ApiError(404, "Metafield not found", errors=[])  # `NotFound`: errors is an array
    return metafield


async def list_metafields(request: Request) -> Response:
    _, store = store_of(request)
    params = request.query_params
    page = parse_page(params)
    keys = {k for k in params.get("key:in", "").split(",") if k} | (
        {params["key"]} if params.get("key") else set()
    )
    spaces = {n for n in params.get("namespace:in", "").split(",") if n} | (
        {params["namespace"]} if params.get("namespace") else set()
    )
    with store.lock:
        order = _order(store, request)
        chosen = sorted(
            (
                m
                for m in store.metafields.values()
                if m.order_id == order.id
                and (not keys or m.key in keys)
                and (not spaces or m.namespace in spaces)
            ),
            key=lambda m: m.id,
            reverse=params.get("direction") == "desc",
        )
        shown = page.slice(chosen)
        return ok(
            {
                "data": [metafield_json(m) for m in shown],
                "meta": {
                    "pagination": pagination(len(chosen), len(shown), page.number, page.limit)
                },
            }
        )


async def create_metafield(request: Request) -> Response:
    sim, store = store_of(request)
    body = await json_body(request, status=422)
    with sim.change(store) as events:
        order = _order(store, request)
        metafield = metafields.create(store, order.id, body, sim.now(), events)
        view = metafield_json(metafield)
    return ok({"data": view, "meta": {}})


async def get_metafield(request: Request) -> Response:
    _, store = store_of(request)
    with store.lock:
        _order(store, request)
        return ok({"data": metafield_json(_metafield(store, request)), "meta": {}})


async def update_metafield(request: Request) -> Response:
    sim, store = store_of(request)
    body = await json_body(request, status=422)
    with sim.change(store) as events:
        _order(store, request)
        metafield = _metafield(store, request)
        metafields.update(store, metafield, body, sim.now(), events)
        view = metafield_json(metafield)
    return ok({"data": view, "meta": {}})


async def delete_metafield(request: Request) -> Response:
    sim, store = store_of(request)
    with sim.change(store) as events:
        _order(store, request)
        metafields.delete(store, _metafield(store, request), events)
    return no_content()


V3 = "/stores/{store_hash}/v3"
ORDER = V3 + "/orders/{order_id:int}"
METAFIELD = ORDER + "/metafields/{metafield_id:int}"

routes = [
    Route(V3 + "/orders/payment_actions/refunds", list_all_refunds, methods=["GET"]),
    Route(V3 + "/orders/payment_actions/refunds/{refund_id:int}", get_refund, methods=["GET"]),
    Route(ORDER + "/transactions", list_transactions, methods=["GET"]),
    Route(ORDER + "/payment_actions/refund_quotes", create_refund_quote, methods=["POST"]),
    Route(ORDER + "/payment_actions/refunds", create_refund, methods=["POST"]),
    Route(ORDER + "/payment_actions/refunds", list_order_refunds, methods=["GET"]),
    Route(ORDER + "/metafields", list_metafields, methods=["GET"]),
    Route(ORDER + "/metafields", create_metafield, methods=["POST"]),
    Route(METAFIELD, get_metafield, methods=["GET"]),
    Route(METAFIELD, update_metafield, methods=["PUT"]),
    Route(METAFIELD, delete_metafield, methods=["DELETE"]),
]
