"""The stand-in's admin API under `/__sim` (no auth, loopback clients only), for tests and demos.

* `GET  /__sim/tables`: every table with its entity set, row count and keys' index status.
* `GET  /__sim/keys`; `POST /__sim/keys/activate` `{table?, key?}`: finish index jobs now
  (Pending, InProgress or Failed keys become Active, or Failed if their columns hold duplicates).
* `POST /__sim/provision`: add every schema.py table, column and key that is missing, keys Active,
  and the reference rows the default mapping binds to (price list, unit).
* `GET/POST/DELETE /__sim/faults` `{path_prefix, status, count?, method?, kind?: status|timeout,
  delay_ms?, limit?: requests|execution|concurrency, retry_after?}`.
* `GET/PUT /__sim/settings` `{latency_ms?: "150,30", request_limit?: "6000/300",
  execution_limit?: "1200000/300", concurrency_limit?, dop_hint?, key_activation_seconds?,
  throttle_rate?: 0..1, revoked_privileges?: ["prvWriteContact", ...]}` (privileges the
  identity no longer holds, as `RetrieveUserPrivileges` reports).
* `GET/PUT /__sim/chaos` `{rate?, kinds?: {429|503|timeout|slow: weight}, caller?: identity,
  delays_ms?, seed?}`: random faults on a share of requests (local/standin/chaos.py).
* `GET/DELETE /__sim/requests` (`?method=&path_prefix=&status=&limit=`): requests received.
* `POST /__sim/reset` `{provisioned?: bool}`: forget every row and table change, faults,
  requests and setting changes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.dataverse import catalog as cat
from local.dataverse.config import parse_latency, parse_window
from local.dataverse.standin import StandIn
from local.standin import chaos
from local.standin.admin import error, json_object


def _standin(request: Request) -> StandIn:
    standin: StandIn = request.app.state.standin
    return standin


async def tables(request: Request) -> Response:
    store = _standin(request).store
    with store.lock:
        store.refresh_keys(_standin(request).runtime.key_activation_seconds)
        listing = [
            {
                "table": e.logical_name,
                "entity_set": e.entity_set,
                "rows": store.count(e),
                "columns": len(e.attributes),
                "keys": {k.logical_name: k.status for k in e.keys.values()},
            }
            for e in store.catalog.values()
        ]
    return JSONResponse(listing)


def _keys(standin: StandIn) -> list[dict[str, Any]]:
    return [
        {
            "table": e.logical_name,
            "key": k.logical_name,
            "columns": list(k.attributes),
            "status": k.status,
        }
        for e in standin.store.catalog.values()
        for k in e.keys.values()
    ]


async def list_keys(request: Request) -> Response:
    standin = _standin(request)
    with standin.store.lock:
        standin.store.refresh_keys(standin.runtime.key_activation_seconds)
        return JSONResponse(_keys(standin))


async def activate_keys(request: Request) -> Response:
    standin = _standin(request)
    try:
        body = await json_object(request)
    except ValueError as exc:
        return error(400, str(exc))
    store = standin.store
    with store.lock:
        for entity in list(store.catalog.values()):
            if body.get("table") not in (None, entity.logical_name):
                continue
            for key in list(entity.keys.values()):
                if body.get("key") not in (None, key.logical_name):
                    continue
                if key.status != cat.STATUS_ACTIVE:
                    store.activate_key(store.catalog[entity.logical_name], key)
        return JSONResponse(_keys(standin))


async def provision(request: Request) -> Response:
    standin = _standin(request)
    standin.provision()
    return JSONResponse(_keys(standin))


async def list_faults(request: Request) -> Response:
    return JSONResponse([f.as_json() for f in _standin(request).faults.list()])


async def add_fault(request: Request) -> Response:
    try:
        body = await json_object(request)
        fault = _standin(request).faults.add(
            str(body.get("path_prefix", "")),
            int(body["status"]) if "status" in body else 504,
            int(body.get("count", 1)),
            body.get("method"),
            kind=str(body.get("kind", "status")),
            delay_ms=int(body.get("delay_ms", 0)),
            limit=str(body.get("limit", "requests")),
            retry_after=int(body.get("retry_after", 1)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        return error(400, f"send {{path_prefix, status, count?, method?, kind?, ...}}: {exc}")
    return JSONResponse(fault.as_json(), 201)


async def clear_faults(request: Request) -> Response:
    _standin(request).faults.clear()
    return Response(status_code=204)


def _settings_json(standin: StandIn) -> dict[str, Any]:
    runtime = standin.runtime
    limits = standin.protection.limits
    return {
        "latency_ms": f"{runtime.latency.fixed_ms:g},{runtime.latency.jitter_ms:g}",
        "request_limit": f"{limits.requests.amount}/{limits.requests.window_seconds:g}",
        "execution_limit": f"{limits.execution_ms.amount}/{limits.execution_ms.window_seconds:g}",
        "concurrency_limit": limits.concurrency,
        "dop_hint": runtime.dop_hint,
        "key_activation_seconds": runtime.key_activation_seconds,
        "throttle_rate": runtime.throttle_rate,
        "revoked_privileges": sorted(standin.service.revoked_privileges),
        "provisioned_at_start": standin.settings.provisioned,
        "database": standin.settings.db_path or ":memory:",
    }


async def get_settings(request: Request) -> Response:
    return JSONResponse(_settings_json(_standin(request)))


async def put_settings(request: Request) -> Response:
    standin = _standin(request)
    try:
        body = await json_object(request)
        limits = standin.protection.limits
        if "request_limit" in body:
            limits = replace(limits, requests=parse_window(str(body["request_limit"])))
        if "execution_limit" in body:
            limits = replace(limits, execution_ms=parse_window(str(body["execution_limit"])))
        if "concurrency_limit" in body:
            limits = replace(limits, concurrency=int(body["concurrency_limit"]))
        latency = standin.runtime.latency
        if "latency_ms" in body:
            latency = parse_latency(str(body["latency_ms"]))
        dop_hint = int(body.get("dop_hint", standin.runtime.dop_hint))
        activation = float(
            body.get("key_activation_seconds", standin.runtime.key_activation_seconds)
        )
        rate = float(body.get("throttle_rate", standin.runtime.throttle_rate))
        if dop_hint < 0 or activation < 0 or not 0 <= rate <= 1:
            raise ValueError("dop_hint and key_activation_seconds >= 0, throttle_rate in 0..1")
        revoked = standin.service.revoked_privileges
        if "revoked_privileges" in body:
            names = body["revoked_privileges"]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ValueError("revoked_privileges must be a list of privilege names")
            revoked = frozenset(names)
    except (TypeError, ValueError) as exc:
        return error(400, str(exc))
    standin.set_limits(limits)
    standin.runtime.latency = latency
    standin.runtime.dop_hint = dop_hint
    standin.runtime.throttle_rate = rate
    standin.set_key_activation(activation)
    standin.service.revoked_privileges = revoked
    return JSONResponse(_settings_json(standin))


async def list_requests(request: Request) -> Response:
    params = request.query_params
    records = _standin(request).requests.records()
    if params.get("method"):
        records = [r for r in records if r.method == params["method"].upper()]
    if params.get("path_prefix"):
        records = [r for r in records if r.path.startswith(params["path_prefix"])]
    if params.get("status"):
        records = [r for r in records if str(r.status) == params["status"]]
    if params.get("limit", "").isdigit():
        records = records[-int(params["limit"]) :]
    return JSONResponse([r.as_json() for r in records])


async def clear_requests(request: Request) -> Response:
    _standin(request).requests.clear()
    return Response(status_code=204)


async def reset(request: Request) -> Response:
    try:
        body = await json_object(request)
    except ValueError as exc:
        return error(400, str(exc))
    provisioned = body.get("provisioned")
    _standin(request).reset(None if provisioned is None else bool(provisioned))
    return Response(status_code=204)


routes = [
    Route("/__sim/tables", tables, methods=["GET"]),
    Route("/__sim/keys", list_keys, methods=["GET"]),
    Route("/__sim/keys/activate", activate_keys, methods=["POST"]),
    Route("/__sim/provision", provision, methods=["POST"]),
    Route("/__sim/faults", list_faults, methods=["GET"]),
    Route("/__sim/faults", add_fault, methods=["POST"]),
    Route("/__sim/faults", clear_faults, methods=["DELETE"]),
    *chaos.routes(lambda request: _standin(request).chaos),
    Route("/__sim/settings", get_settings, methods=["GET"]),
    Route("/__sim/settings", put_settings, methods=["PUT"]),
    Route("/__sim/requests", list_requests, methods=["GET"]),
    Route("/__sim/requests", clear_requests, methods=["DELETE"]),
    Route("/__sim/reset", reset, methods=["POST"]),
]
