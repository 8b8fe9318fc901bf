"""Webhook ingress: authenticate, validate and durably enqueue a BigCommerce callback.

The answer is 200 only once the broker has accepted the message; if the send fails or takes too
long the answer is 503, so BigCommerce retries and an acknowledged webhook is never lost. Every
refusal is a small RFC 9457 problem, one log line, and nothing enqueued. No other work is done in
the request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from shared.config import Settings
from shared.messaging.ports import MessageSender, SendError
from shared.messaging.queues import ORDER_EVENTS
from shared.observability import correlation
from shared.webhooks.authentication import AuthenticationFailed, authenticate
from shared.webhooks.contract import build_message
from shared.webhooks.events import PRODUCER, EventValidationError, parse_envelope, parse_event

log = logging.getLogger("connector.ingress")

MAX_BODY_BYTES: Final = 256 * 1024
# BigCommerce callbacks nest four levels at most; deeper bodies are refused before validation,
# whose serializers have their own (lower than the parser's) recursion limits.
MAX_NESTING: Final = 32
PROBLEM_BASE: Final = "https://github.com/bigcommerce-iom-connector/problems/"


@dataclass(frozen=True, slots=True)
class IngressRequest:
    method: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True, slots=True)
class IngressResponse:
    status: int
    body: Mapping[str, object] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_problem(self) -> bool:
        return self.status >= 400


def _problem(
    status: int, slug: str, title: str, detail: str, headers: Mapping[str, str] | None = None
) -> IngressResponse:
    body = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    return IngressResponse(status, body, headers or {})


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _nesting(value: object) -> int:
    """How deeply arrays and objects nest in a parsed body (iteratively: the body is untrusted)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack and deepest <= MAX_NESTING:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class WebhookIngress:
    def __init__(
        self,
        settings: Settings,
        sender: MessageSender,
        *,
        clock: Callable[[], datetime],
        new_id: Callable[[], str],
        send_timeout: float = 5.0,
    ) -> None:
        self._settings = settings
        self._sender = sender
        self._clock = clock
        self._new_id = new_id
        self._send_timeout = send_timeout
        self._secret_header = settings.webhook_secret_header

    async def handle(self, request: IngressRequest) -> IngressResponse:
        started = time.perf_counter()
        correlation_id = (
            correlation.usable_correlation_id(request.headers.get("x-correlation-id"))
            or self._new_id()
        )
        parent = request.headers.get("traceparent") or correlation.current().get("traceparent")
        traceparent = correlation.child_traceparent(parent)
        with correlation.bind(correlation_id=correlation_id, traceparent=traceparent):
            response, fields = await self._handle(request, correlation_id, traceparent)
            level = logging.INFO if response.status < 400 else logging.WARNING
            if response.status >= 500:
                level = logging.ERROR
            log.log(
                level,
                "webhook %s",
                "accepted" if response.status < 300 else f"refused ({response.status})",
                extra={
                    "status": response.status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    **fields,
                },
            )
            return response

    async def _handle(
        self, request: IngressRequest, correlation_id: str, traceparent: str
    ) -> tuple[IngressResponse, dict[str, object]]:
        if request.method.upper() != "POST":
            return _problem(
                405,
                "method-not-allowed",
                "Method not allowed",
                "Send webhooks with POST.",
                {"Allow": "POST"},
            ), {}
        declared = request.headers.get("content-length", "")
        # str.isdigit() is also true of "²", which int() refuses.
        if len(request.body) > MAX_BODY_BYTES or (
            declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES
        ):
            return _problem(
                413, "too-large", "Payload too large", f"The body exceeds {MAX_BODY_BYTES} bytes."
            ), {}
        if not _is_json(request.headers.get("content-type", "")):
            return _problem(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                "The body must be application/json.",
            ), {}
        try:
            # JSON between systems is UTF-8 (RFC 8259), with no NaN or Infinity: json.loads alone
            # would also take UTF-16, encoded lone surrogates and those constants.
            text = request.body.decode("utf-8")
            payload = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            return _problem(400, "invalid-json", "Invalid body", "The body is not JSON."), {}
        if _nesting(payload) > MAX_NESTING:
            return _problem(
                400,
                "invalid-json",
                "Invalid body",
                f"The body nests deeper than {MAX_NESTING} levels.",
            ), {}
        producer = payload.get("producer") if isinstance(payload, dict) else None
        match = PRODUCER.fullmatch(producer) if isinstance(producer, str) else None
        if match is None:
            return _problem(
                400,
                "invalid-event",
                "Invalid event",
                "producer: expected 'stores/<store_hash>'.",
            ), {}
        store_hash = match.group(1)
        store = self._settings.store(store_hash)
        store_id = payload.get("store_id")
        if store is None or (store.store_id is not None and str(store_id) != store.store_id):
            reason = "unknown store" if store is None else "store_id does not match the store"
            return _problem(
                403, "forbidden", "Forbidden", "This endpoint does not accept the event."
            ), {"store_hash": store_hash, "reason": reason}
        fields: dict[str, object] = {"store_hash": store_hash}
        try:
            if authenticate(store, request.headers, request.body, self._secret_header):
                # Until `webhooks register` or the health check moves the store's hooks on.
                fields["previous_secret"] = True
        except AuthenticationFailed as exc:
            return _problem(
                401, "unauthorized", "Unauthorized", "The webhook could not be authenticated."
            ), {**fields, "reason": str(exc)}
        try:
            envelope = parse_envelope(payload)
            event = parse_event(envelope)
        except EventValidationError as exc:
            return _problem(400, "invalid-event", "Invalid event", str(exc)), fields
        fields["scope"] = envelope.scope
        if event is None:
            return IngressResponse(202), {**fields, "reason": "scope not subscribed"}
        if event.kind.family == "hook":
            log.warning(
                "BigCommerce reports a webhook delivery problem",
                extra={**fields, "data": envelope.data},
            )
        message = build_message(
            event, received_at=self._clock(), correlation_id=correlation_id, traceparent=traceparent
        )
        fields |= {"message_id": message.message_id, "session_id": message.session_id}
        if event.kind.entity == "order":
            fields["order_id"] = event.entity_id
        try:
            # A timeout scope rather than wait_for: the same cancellation, without a task per send.
            async with asyncio.timeout(self._send_timeout):
                await self._sender.send(ORDER_EVENTS.name, [message])
        except (SendError, TimeoutError) as exc:
            return _problem(
                503,
                "unavailable",
                "Try again later",
                "The event could not be queued.",
                {"Retry-After": "60"},
            ), {**fields, "reason": f"{type(exc).__name__}: {exc}"}
        return IngressResponse(200), fields
