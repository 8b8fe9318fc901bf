"""The simulator's admin API under `/__sim` (no auth, loopback only), for tests and demos.

* `GET  /__sim/stores`: stores and their order counts.
* `POST /__sim/stores/{hash}/orders/generate` `{count, seed?, spread_seconds?, incomplete_share?,
  complete_after_seconds?, channel_id?}`: seeded realistic orders, announced as created.
* `POST /__sim/stores/{hash}/orders/{id}/status` `{status_id}`: the merchant changes a status.
* `POST /__sim/tick`: incomplete orders that are due complete now (the server also does this
  every 0.2 s of real time).
* `GET/POST/DELETE /__sim/faults` `{path_prefix, status, count?, method?}`: force the next
  `count` responses under a path prefix to 500/503/429/...
* `GET/PUT /__sim/chaos` `{rate?, kinds?: {429|500|502|503|504|slow: weight}, caller?:
  User-Agent prefix, delays_ms?, seed?}`: random faults on a share of requests
  (local/standin/chaos.py; the kinds in gateway.py).
* `GET/POST /__sim/clock` `{advance_seconds?, scale?}`: the simulated time.
* `GET/PUT /__sim/settings` `{quota?: "150/30", latency_ms?: "150,30",
  empty_v2_list_status?: 200|204, refund_processing_ms?}`.
* `GET/DELETE /__sim/requests` (`?store=&method=&path_prefix=&limit=`): requests received.
* `POST /__sim/reset`: forget all orders, faults, requests and setting changes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.bigcommerce import generator, orders
from local.bigcommerce.config import parse_latency, parse_quota
from local.bigcommerce.simulator import Simulator
from local.bigcommerce.timefmt import iso8601
from local.bigcommerce.views_v2 import order_json
from local.bigcommerce.web import api_base, simulator
from local.standin import chaos
from local.standin.admin import error, json_object


def tick(sim: Simulator) -> list[int]:
    done: list[int] = []
    for store in sim.stores.values():
        with sim.change(store) as events:
            done += orders.complete_due(store, sim.now(), events, sim.rng)
    return done


async def list_stores(request: Request) -> Response:
    sim = simulator(request)
    return JSONResponse([{"store_hash": h, "orders": len(s.orders)} for h, s in sim.stores.items()])


async def generate_orders(request: Request) -> Response:
    sim = simulator(request)
    store = sim.store(request.path_params["store_hash"])
    if store is None:
        return error(404, "unknown store")
    try:
        body = await json_object(request)
        options = generator.Options(
            count=int(body.get("count", 10)),
            seed=None if body.get("seed") is None else int(body["seed"]),
            spread_seconds=float(body.get("spread_seconds", 0)),
            incomplete_share=float(body.get("incomplete_share", 0.08)),
            complete_after_seconds=float(body.get("complete_after_seconds", 300)),
            channel_id=int(body.get("channel_id", 1)),
        )
        if not 0 < options.count <= 10_000:
            raise ValueError("count must be 1 to 10000")
    except (TypeError, ValueError) as exc:
        return error(400, str(exc))
    with sim.change(store) as events:
        made = generator.generate(store, sim.now(), options, events)
    return JSONResponse(
        {"ids": [o.id for o in made], "statuses": {o.id: o.status_id for o in made}}, 201
    )


async def change_status(request: Request) -> Response:
    sim = simulator(request)
    store = sim.store(request.path_params["store_hash"])
    if store is None:
        return error(404, "unknown store")
    try:
        status_id = int((await json_object(request))["status_id"])
    except (KeyError, TypeError, ValueError):
        return error(400, 'send {"status_id": <0-14>}')
    with sim.change(store) as events:
        order = store.order(request.path_params["order_id"])
        if order is None:
            return error(404, "unknown order")
        orders.set_status(store, order, status_id, sim.now(), events)
        view = order_json(order, api_base(request, "v2"))
    return JSONResponse(view)


async def force_tick(request: Request) -> Response:
    return JSONResponse({"completed": tick(simulator(request))})


async def list_faults(request: Request) -> Response:
    return JSONResponse([f.as_json() for f in simulator(request).faults.list()])


async def add_fault(request: Request) -> Response:
    try:
        body = await json_object(request)
        fault = simulator(request).faults.add(
            str(body["path_prefix"]),
            int(body["status"]),
            int(body.get("count", 1)),
            body.get("method"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        return error(400, f"send {{path_prefix, status, count?, method?}}: {exc}")
    return JSONResponse(fault.as_json(), 201)


async def clear_faults(request: Request) -> Response:
    simulator(request).faults.clear()
    return Response(status_code=204)


def _clock_json(sim: Simulator) -> dict[str, Any]:
    return {
        "now": iso8601(sim.clock.now()),
        "epoch": int(sim.clock.now().timestamp()),
        "scale": sim.clock.scale,
    }


async def get_clock(request: Request) -> Response:
    return JSONResponse(_clock_json(simulator(request)))


async def set_clock(request: Request) -> Response:
    sim = simulator(request)
    try:
        body = await json_object(request)
        if "scale" in body:
            sim.clock.set_scale(float(body["scale"]))
        if "advance_seconds" in body:
            seconds = float(body["advance_seconds"])
            if seconds < 0:
                raise ValueError("the clock only moves forward")
            sim.clock.advance(timedelta(seconds=seconds))
    except (TypeError, ValueError) as exc:
        return error(400, str(exc))
    tick(sim)
    return JSONResponse(_clock_json(sim))


def _settings_json(sim: Simulator) -> dict[str, Any]:
    quota = sim.limiter.quota
    return {
        "quota": {"requests": quota.requests, "window_seconds": quota.window_seconds},
        "latency_ms": {"fixed": sim.latency.fixed_ms, "jitter": sim.latency.jitter_ms},
        "empty_v2_list_status": sim.empty_v2_list_status,
        "refund_processing_ms": sim.refund_processing_ms,
    }


async def get_settings(request: Request) -> Response:
    return JSONResponse(_settings_json(simulator(request)))


async def put_settings(request: Request) -> Response:
    sim = simulator(request)
    try:
        body = await json_object(request)
        quota = parse_quota(str(body["quota"])) if "quota" in body else None
        latency = parse_latency(str(body["latency_ms"])) if "latency_ms" in body else None
        empty = int(body.get("empty_v2_list_status", sim.empty_v2_list_status))
        if empty not in (200, 204):
            raise ValueError("empty_v2_list_status must be 200 or 204")
        processing = float(body.get("refund_processing_ms", sim.refund_processing_ms))
        if processing < 0:
            raise ValueError("refund_processing_ms cannot be negative")
    except (TypeError, ValueError) as exc:
        return error(400, str(exc))
    if quota is not None:
        sim.limiter.set_quota(quota)
    if latency is not None:
        sim.latency = latency
    sim.empty_v2_list_status, sim.refund_processing_ms = empty, processing
    return JSONResponse(_settings_json(sim))


async def list_requests(request: Request) -> Response:
    params = request.query_params
    records = simulator(request).requests.records()
    store, method, prefix = params.get("store"), params.get("method"), params.get("path_prefix")
    chosen = [
        r
        for r in records
        if (not store or r.store_hash == store)
        and (not method or r.method == method.upper())
        and (not prefix or r.path.startswith(prefix))
    ]
    limit = params.get("limit")
    if limit and limit.isdigit():
        chosen = chosen[-int(limit) :]
    return JSONResponse([r.as_json() for r in chosen])


async def clear_requests(request: Request) -> Response:
    simulator(request).requests.clear()
    return Response(status_code=204)


async def reset(request: Request) -> Response:
    simulator(request).reset()
    return Response(status_code=204)


routes = [
    Route("/__sim/stores", list_stores, methods=["GET"]),
    Route("/__sim/stores/{store_hash}/orders/generate", generate_orders, methods=["POST"]),
    Route(
        "/__sim/stores/{store_hash}/orders/{order_id:int}/status", change_status, methods=["POST"]
    ),
    Route("/__sim/tick", force_tick, methods=["POST"]),
    Route("/__sim/faults", list_faults, methods=["GET"]),
    Route("/__sim/faults", add_fault, methods=["POST"]),
    Route("/__sim/faults", clear_faults, methods=["DELETE"]),
    *chaos.routes(lambda request: simulator(request).chaos),
    Route("/__sim/clock", get_clock, methods=["GET"]),
    Route("/__sim/clock", set_clock, methods=["POST"]),
    Route("/__sim/settings", get_settings, methods=["GET"]),
    Route("/__sim/settings", put_settings, methods=["PUT"]),
    Route("/__sim/requests", list_requests, methods=["GET"]),
    Route("/__sim/requests", clear_requests, methods=["DELETE"]),
    Route("/__sim/reset", reset, methods=["POST"]),
]
