"""The simulator's own webhook controls, under /__sim/webhooks (no authentication: local only).

GET  /__sim/webhooks                 status: paused, pending, scheduled retries, switches,
                                     and `counts`: every attempt by status (the log keeps the
                                     latest only), `duplicate` copies, `reordered` deliveries
GET  /__sim/webhooks/hooks           every store's hooks, with status
GET  /__sim/webhooks/deliveries      the attempt log; filters store_hash, hook_id, scope,
                                     event_hash, status; `limit` keeps the latest n
GET  /__sim/webhooks/switches        the network switches and the delivery timeout
PUT  /__sim/webhooks/switches        partial update: duplicate_probability, drop_probability,
                                     reorder_window, reorder_hold_seconds, seed,
                                     timeout_seconds (giving `seed` restarts the sequence)
POST /__sim/webhooks/pause           stop sending (events still queue; retries still fall due)
POST /__sim/webhooks/resume
POST /__sim/webhooks/drain?timeout=  wait up to `timeout` real seconds (default 30) until no
                                     event, delivery or retry is pending: 200 when drained,
                                     504 otherwise; both answer {drained, pending}
POST /__sim/webhooks/reset           forget pending deliveries, the log, the blocklist and
                                     notifications, and restore the switches; with body
                                     {"hooks": true} also delete every hook and email list
GET  /__sim/webhooks/notifications   the "emails" BigCommerce would have sent (domain blocked,
                                     hook deactivated)
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from local.bigcommerce.webhooks.delivery import Deliverer
from local.bigcommerce.webhooks.registry import HookRegistry
from local.bigcommerce.webhooks.switches import timeout_from, updated_switches
from local.bigcommerce.webhooks.validation import InvalidBody

PREFIX = "/__sim/webhooks"


def _problem(status: int, detail: str, errors: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"status": status, "title": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status)


async def _object_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    body = json.loads(raw)
    if not isinstance(body, dict):
        raise InvalidBody({"body": "must be a JSON object"})
    return body


class AdminApi:
    def __init__(self, registry: HookRegistry, deliverer: Deliverer) -> None:
        self._registry = registry
        self._deliverer = deliverer

    @property
    def routes(self) -> list[BaseRoute]:
        return [
            Route(PREFIX, self.status, methods=["GET"]),
            Route(PREFIX + "/hooks", self.hooks, methods=["GET"]),
            Route(PREFIX + "/deliveries", self.deliveries, methods=["GET"]),
            Route(PREFIX + "/switches", self.switches, methods=["GET", "PUT"]),
            Route(PREFIX + "/pause", self.pause, methods=["POST"]),
            Route(PREFIX + "/resume", self.resume, methods=["POST"]),
            Route(PREFIX + "/drain", self.drain, methods=["POST"]),
            Route(PREFIX + "/reset", self.reset, methods=["POST"]),
            Route(PREFIX + "/notifications", self.notifications, methods=["GET"]),
        ]

    def _switches_json(self) -> dict[str, Any]:
        return {
            **self._deliverer.switches.to_json(),
            "timeout_seconds": self._deliverer.timeout_seconds,
        }

    async def status(self, _: Request) -> Response:
        return JSONResponse(
            {
                "paused": self._deliverer.paused,
                "pending": self._deliverer.pending,
                "scheduled_retries": self._deliverer.scheduled_retries(),
                "switches": self._switches_json(),
                "counts": self._deliverer.counts(),
            }
        )

    async def hooks(self, _: Request) -> Response:
        data = [{**h.to_json(), "status": h.status} for h in self._registry]
        return JSONResponse({"data": data})

    async def deliveries(self, request: Request) -> Response:
        query = request.query_params
        rows = [a.to_json() for a in self._deliverer.attempts()]
        for name in ("store_hash", "hook_id", "scope", "event_hash", "status"):
            if query.get(name):
                rows = [r for r in rows if str(r[name]) == query[name]]
        limit = query.get("limit", "")
        if limit:
            if not limit.isdigit():
                return _problem(422, "limit must be a non-negative integer")
            rows = rows[-int(limit) :] if int(limit) else []
        return JSONResponse({"data": rows, "meta": {"total": len(rows)}})

    async def switches(self, request: Request) -> Response:
        if request.method == "PUT":
            try:
                body = await _object_body(request)
                switches = updated_switches(self._deliverer.switches, body)
                timeout = timeout_from(body, self._deliverer.timeout_seconds)
            except (json.JSONDecodeError, UnicodeDecodeError):
                return _problem(400, "The body is not JSON.")
            except InvalidBody as exc:
                return _problem(422, "Invalid switches", exc.errors)
            self._deliverer.set_switches(switches, timeout, reseed="seed" in body)
        return JSONResponse(self._switches_json())

    async def pause(self, _: Request) -> Response:
        self._deliverer.pause()
        return JSONResponse({"paused": True})

    async def resume(self, _: Request) -> Response:
        self._deliverer.resume()
        return JSONResponse({"paused": False})

    async def drain(self, request: Request) -> Response:
        raw = request.query_params.get("timeout", "30")
        try:
            timeout = float(raw)
        except ValueError:
            return _problem(422, "timeout must be a number of seconds")
        if not 0 <= timeout <= 3600:
            return _problem(422, "timeout must be from 0 to 3600 seconds")
        drained = await self._deliverer.drain(timeout)
        body = {"drained": drained, "pending": self._deliverer.pending}
        return JSONResponse(body, status_code=200 if drained else 504)

    async def reset(self, request: Request) -> Response:
        try:
            body = await _object_body(request)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _problem(400, "The body is not JSON.")
        except InvalidBody as exc:
            return _problem(422, "Invalid body", exc.errors)
        hooks = body.get("hooks", False)
        if not isinstance(hooks, bool):
            return _problem(422, "Invalid body", {"hooks": "must be a boolean"})
        self._deliverer.reset(hooks=hooks)
        return JSONResponse({"reset": True, "hooks_deleted": hooks})

    async def notifications(self, _: Request) -> Response:
        return JSONResponse({"data": self._deliverer.notifications()})
