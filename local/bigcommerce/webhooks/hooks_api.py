"""The V3 hooks API of each simulated store (`reference/webhooks.v3.yml`).

    GET    /stores/{store_hash}/v3/hooks               list (page, limit, is_active, scope,
                                                       destination), {data, meta.pagination}
    POST   /stores/{store_hash}/v3/hooks               create (webhook_Base) -> 200 {data, meta}
    GET    /stores/{store_hash}/v3/hooks/admin         emails, hooks_list (+status), blocked_domains
    PUT    /stores/{store_hash}/v3/hooks/admin         {emails: [...]} -> 204
    GET    /stores/{store_hash}/v3/hooks/{webhook_id}  one hook
    PUT    /stores/{store_hash}/v3/hooks/{webhook_id}  update (webhook_Put, at least one field)
    DELETE /stores/{store_hash}/v3/hooks/{webhook_id}  delete; answers with the deleted hook

Requests authenticate with `X-Auth-Token` against the store's access token: an unknown store is
404, a missing or wrong token 401. Hooks belong to the token's API account (client id), and an
account sees only its own. Errors use the V3 shape `{status, title, type[, errors]}`: 400 for a
body that is not JSON, 422 for field errors and platform limits (`errors` names the field),
404 for an unknown hook.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from local.bigcommerce.clock import SimClock
from local.bigcommerce.webhooks.accounts import StoreAccount
from local.bigcommerce.webhooks.delivery import Deliverer
from local.bigcommerce.webhooks.registry import Hook, HookConflict, HookRegistry
from local.bigcommerce.webhooks.validation import (
    InvalidBody,
    emails,
    spec_for_create,
    spec_for_update,
)

STATUS_CODES_DOC: Final = (
    "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes"
)
DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 250

Handler = Callable[[Request, StoreAccount], Any]


def error(status: int, title: str, errors: Mapping[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"status": status, "title": title, "type": STATUS_CODES_DOC}
    if errors is not None:
        body["errors"] = dict(errors)
    return JSONResponse(body, status_code=status)


def invalid(errors: Mapping[str, str]) -> JSONResponse:
    return error(422, "JSON data is missing or invalid", errors)


class _BadQuery(Exception):
    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__(str(errors))
        self.errors = dict(errors)


def _positive_int(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise _BadQuery({name: "must be a positive integer"})
    return int(raw)


def _bool(query: Mapping[str, str], name: str) -> bool | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    lowered = raw.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise _BadQuery({name: "must be true or false"})


def _pagination(
    total: int, count: int, page: int, limit: int, extra: Mapping[str, str]
) -> dict[str, Any]:
    pages = max(1, -(-total // limit))

    def link(to: int) -> str:
        return "?" + urlencode({**extra, "page": to, "limit": limit})

    links = {"current": link(page)}
    if page > 1:
        links["previous"] = link(page - 1)
    if page < pages:
        links["next"] = link(page + 1)
    return {
        "total": total,
        "count": count,
        "per_page": limit,
        "current_page": page,
        "total_pages": pages,
        "links": links,
    }


async def _json_body(request: Request) -> object:
    raw = await request.body()
    return json.loads(raw) if raw.strip() else None


class HooksApi:
    def __init__(
        self,
        registry: HookRegistry,
        deliverer: Deliverer,
        clock: SimClock,
        accounts: Mapping[str, StoreAccount],
    ) -> None:
        self._registry = registry
        self._deliverer = deliverer
        self._clock = clock
        self._accounts = dict(accounts)

    @property
    def routes(self) -> list[BaseRoute]:
        base = "/stores/{store_hash}/v3/hooks"
        return [
            Route(base, self._guard(self._collection), methods=["GET", "POST"]),
            Route(base + "/admin", self._guard(self._admin), methods=["GET", "PUT"]),
            Route(base + "/{webhook_id}", self._guard(self._one), methods=["GET", "PUT", "DELETE"]),
        ]

    def _guard(self, handler: Handler) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            account = self._accounts.get(request.path_params["store_hash"])
            if account is None:
                return error(404, "Store not found")
            presented = request.headers.get("x-auth-token", "")
            if not account.access_token or not hmac.compare_digest(
                presented.encode(), account.access_token.encode()
            ):
                return error(
                    401,
                    "Unauthorized - the v3 Auth client ID or token in the request are not a "
                    "valid combination for this store.",
                )
            try:
                response: Response = await handler(request, account)
            except _BadQuery as exc:
                return invalid(exc.errors)
            except (json.JSONDecodeError, UnicodeDecodeError):
                return error(400, "Input is invalid.")
            except InvalidBody as exc:
                return invalid(exc.errors)
            except HookConflict as exc:
                return invalid({exc.field: exc.message})
            return response

        return endpoint

    def _now(self) -> int:
        return int(self._clock.now().timestamp())

    def _own(self, account: StoreAccount) -> list[Hook]:
        return [
            h
            for h in self._registry.for_store(account.store_hash)
            if h.client_id == account.client_id
        ]

    async def _collection(self, request: Request, account: StoreAccount) -> Response:
        if request.method == "POST":
            spec = spec_for_create(await _json_body(request))
            hook = self._registry.create(account.store_hash, account.client_id, spec, self._now())
            return JSONResponse({"data": hook.to_json(), "meta": {}})
        query = request.query_params
        page = _positive_int(query, "page", 1)
        limit = min(_positive_int(query, "limit", DEFAULT_LIMIT), MAX_LIMIT)
        is_active = _bool(query, "is_active")
        hooks = [
            h
            for h in self._own(account)
            if (is_active is None or h.is_active == is_active)
            and (not query.get("scope") or h.scope == query["scope"])
            and (not query.get("destination") or h.destination == query["destination"])
        ]
        shown = hooks[(page - 1) * limit : page * limit]
        extra = {k: query[k] for k in ("is_active", "scope", "destination") if query.get(k)}
        return JSONResponse(
            {
                "data": [h.to_json() for h in shown],
                "meta": {"pagination": _pagination(len(hooks), len(shown), page, limit, extra)},
            }
        )

    async def _one(self, request: Request, account: StoreAccount) -> Response:
        raw_id = request.path_params["webhook_id"]
        hook = None
        if raw_id.isdigit():
            hook = self._registry.get(int(raw_id), account.store_hash)
        if hook is None or hook.client_id != account.client_id:
            return error(404, f"Webhook with id [{raw_id}] not found")
        if request.method == "PUT":
            spec = spec_for_update(hook, await _json_body(request))
            hook = self._registry.update(hook, spec, self._now())
        elif request.method == "DELETE":
            self._registry.delete(hook.id)
        return JSONResponse({"data": hook.to_json(), "meta": {}})

    async def _admin(self, request: Request, account: StoreAccount) -> Response:
        if request.method == "PUT":
            addresses = emails(await _json_body(request))
            self._deliverer.set_emails(account.store_hash, addresses)
            return Response(status_code=204)
        is_active = _bool(request.query_params, "is_active")
        hooks = [h for h in self._own(account) if is_active is None or h.is_active == is_active]
        hooks_list = [{**h.to_json(), "status": h.status} for h in hooks]
        data = {
            "emails": self._deliverer.emails(account.store_hash),
            "hooks_list": hooks_list,
            "blocked_domains": self._deliverer.blocked_domains(account.client_id),
        }
        total = len(hooks_list)
        pagination = _pagination(total, total, 1, max(total, 1), {})
        return JSONResponse({"data": data, "meta": {"pagination": pagination}})
