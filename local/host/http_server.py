"""Serves the app's HTTP triggers as a raw ASGI application.

Routes follow the Functions host: `/<routePrefix>/<route>`, route templates with `{name}`,
`{name:int}`, `{name?}` and `{*rest}`, matched case-insensitively; a function key in the
`x-functions-key` header or the `code` query parameter for FUNCTION and ADMIN levels.
Raw ASGI rather than a framework keeps the host's own cost per request near zero, which the
ingest benchmark compares against.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

import azure.functions as func

from local.host.indexing import HttpFunction
from local.host.invoker import Invoker
from local.host.keys import HostKeys

log = logging.getLogger("local.host.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY_BYTES = 100 * 1024 * 1024
_SEGMENT = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?(\?)?\}")
_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "alpha": r"[A-Za-z]+",
    "guid": r"[0-9a-fA-F-]{36}",
}


def compile_route(prefix: str, template: str) -> re.Pattern[str]:
    parts = [p for p in (prefix.strip("/"), template.strip("/")) if p]
    pattern = ""
    for segment in "/".join(parts).split("/"):
        match = _SEGMENT.fullmatch(segment)
        if match is None:
            pattern += "/" + re.escape(segment)
            continue
        catch_all, name, constraint, optional = match.groups()
        body = ".*" if catch_all else _CONSTRAINTS.get(constraint or "", "[^/]+")
        group = f"(?P<{name}>{body})"
        pattern += f"(?:/{group})?" if optional or catch_all else f"/{group}"
    return re.compile(f"^{pattern or '/'}/?$", re.IGNORECASE)


@dataclass(frozen=True)
class _Route:
    pattern: re.Pattern[str]
    function: HttpFunction


def _problem(status: int, title: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return status, [(b"content-type", b"text/plain; charset=utf-8")], title.encode()


class HttpHost:
    def __init__(
        self,
        functions: tuple[HttpFunction, ...],
        route_prefix: str,
        keys: HostKeys,
        invoker: Invoker,
    ) -> None:
        self._routes = [_Route(compile_route(route_prefix, f.route), f) for f in functions]
        self._keys = keys
        self._invoker = invoker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        status, headers, body = await self._handle(scope, receive)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _handle(
        self, scope: Scope, receive: Receive
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        path = scope["path"]
        method = scope["method"].upper()
        matched = [(r, m) for r in self._routes if (m := r.pattern.match(path))]
        if not matched:
            return _problem(404, "Not Found")
        allowed = [
            (r, m) for r, m in matched if r.function.methods is None or method in r.function.methods
        ]
        if not allowed:
            return _problem(405, "Method Not Allowed")
        route, match = allowed[0]
        function = route.function
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        params = dict(
            parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        )
        presented = headers.get("x-functions-key") or params.get("code")
        if not self._keys.allows(function.auth_level, presented):
            return 401, [], b""
        body = await _read_body(receive)
        if body is None:
            return _problem(413, "Request Entity Too Large")
        host = headers.get("host", "127.0.0.1")
        query = scope.get("query_string", b"").decode("latin-1")
        url = f"http://{host}{scope.get('raw_path', path.encode()).decode('latin-1')}"
        if query and "?" not in url:
            url += f"?{query}"
        route_params = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
        request = func.HttpRequest(
            method=method,
            url=url,
            headers=headers,
            params=params,
            route_params=route_params,
            body=body,
        )
        try:
            result = await self._invoker.invoke(
                function.user_function,
                function.name,
                {function.arg_name: request},
                trace_parent=headers.get("traceparent", ""),
            )
        except Exception:
            log.exception("function %s failed", function.name, extra={"function": function.name})
            return 500, [], b""
        return _response(result)


def _response(result: object) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    if result is None:
        return 204, [], b""
    if isinstance(result, str | bytes):
        body = result.encode() if isinstance(result, str) else result
        return 200, [(b"content-type", b"text/plain; charset=utf-8")], body
    if not isinstance(result, func.HttpResponse):
        raise TypeError(f"HTTP function returned {type(result).__name__}, not HttpResponse")
    headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in result.headers.items()
    ]
    if not any(k == b"content-type" for k, _ in headers) and result.mimetype:
        content_type = result.mimetype + (f"; charset={result.charset}" if result.charset else "")
        headers.append((b"content-type", content_type.encode("latin-1")))
    return result.status_code, headers, result.get_body() or b""


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
