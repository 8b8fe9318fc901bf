"""The HTTP exchange with one store: auth headers, the rate budget, retries and typed errors.

One `httpx.AsyncClient` per store per process, so connections are pooled and reused across
calls; a `LoopClient` creates it inside the running event loop on the first request, and again
on another loop (a CLI's second `asyncio.run`, or a test). The base URL is the store's
`api_url` (api.bigcommerce.com, or the local simulator) plus `/stores/{store_hash}`; paths
start with `/v2/` or `/v3/`.

The access token lives only in the `AsyncClient`'s default headers. It is never part of a
message, a repr or a log line, and is redacted from any error text BigCommerce sends back.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, Final, TypeAlias

import httpx

from shared.bigcommerce.errors import (
    BigCommerceError,
    ErrorBody,
    OutcomeUnknownError,
    RateLimitedError,
    ResponseFormatError,
    TransportError,
    error_class,
)
from shared.bigcommerce.rate_budget import BudgetPolicy, RateBudget, RateLimitHeaders
from shared.bigcommerce.retry import Action, Decision, Delivery, Idempotency, Random, RetryPolicy
from shared.config.settings import StoreSettings
from shared.http.loop_client import LoopClient
from shared.version import VERSION

log = logging.getLogger("connector.bigcommerce")

ParamValue: TypeAlias = str | int | bool
Params: TypeAlias = Mapping[str, ParamValue | None]
JsonBody: TypeAlias = Mapping[str, Any] | Sequence[Any]

_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, slots=True)
class ClientOptions:
    connect_timeout: float = 5.0
    timeout: float = 30.0
    max_connections: int = 20
    user_agent: str = f"bigcommerce-iom-connector/{VERSION}"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    budget: BudgetPolicy = field(default_factory=BudgetPolicy)


@dataclass(frozen=True, slots=True)
class Reply:
    store_hash: str
    method: str
    path: str
    status: int
    body: object  # the decoded JSON; None for 204 and empty bodies


class StoreSession:
    """Sends requests to one store's API through its rate budget, with retries."""

    def __init__(
        self,
        store: StoreSettings,
        *,
        budget: RateBudget,
        options: ClientOptions | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: Random = random.random,
    ) -> None:
        self.store_hash = store.store_hash
        self.base_url = f"{store.api_url.rstrip('/')}/stores/{store.store_hash}"
        self.budget = budget
        self.options = options or ClientOptions()
        self._token = store.access_token
        self._transport = transport
        self._rng = rng
        self._http = LoopClient(self._new_client)

    def __repr__(self) -> str:
        return f"StoreSession(store_hash={self.store_hash!r}, base_url={self.base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    def _new_client(self) -> httpx.AsyncClient:
        options = self.options
        return httpx.AsyncClient(
            base_url=self.base_url,
            headers={
                "X-Auth-Token": self._token.get_secret_value(),
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": options.user_agent,
            },
            timeout=httpx.Timeout(options.timeout, connect=options.connect_timeout),
            limits=httpx.Limits(
                max_connections=options.max_connections,
                max_keepalive_connections=options.max_connections,
            ),
            # Stateless by design: a cookie a load balancer sets must not follow later calls.
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            follow_redirects=False,
            transport=self._transport,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: JsonBody | None = None,
        idempotency: Idempotency | None = None,
    ) -> Reply:
        """One API call, paced by the store's budget and retried per the policy.

        `idempotency` defaults to UNSAFE for POST and SAFE otherwise; the refund-quote POST
        passes SAFE. Raises a `BigCommerceError` subclass when the call finally fails.
        """
        method = method.upper()
        if idempotency is None:
            idempotency = Idempotency.UNSAFE if method == "POST" else Idempotency.SAFE
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        content = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        policy = self.options.retry
        attempt = 0
        consecutive_429 = 0
        maybe_applied = False  # an earlier attempt may have taken effect
        while True:
            attempt += 1
            ticket = await self.budget.acquire()
            try:
                response = await self._http.get().request(
                    method, path, params=query, content=content
                )
            except BaseException as exc:
                # Cancelled or failed, the ticket is given back (and counted as used).
                self.budget.abandon(ticket)
                if not isinstance(exc, httpx.RequestError):
                    raise
                self.budget.stats.transport_errors += 1
                delivery = Delivery.NOT_SENT if isinstance(exc, _NOT_SENT) else Delivery.MAYBE_SENT
                decision = policy.after_transport_error(delivery, idempotency, attempt, self._rng)
                if decision.action is Action.RETRY:
                    maybe_applied |= delivery is Delivery.MAYBE_SENT
                    await self._retry_after(decision, method, path, attempt)
                    continue
                raise self._transport_error(exc, decision, method, path) from None

            headers = RateLimitHeaders.parse(response.headers)
            self.budget.observe(ticket, headers)
            status = response.status_code
            if 200 <= status < 300:
                return Reply(
                    self.store_hash, method, path, status, self._decode(response, method, path)
                )
            if status == 404 and method == "DELETE" and maybe_applied:
                # An earlier, unanswered attempt did delete it.
                return Reply(self.store_hash, method, path, 204, None)

            if status == 429:
                consecutive_429 += 1
                self.budget.stats.rate_limited += 1
                decision = policy.after_rate_limit(headers, attempt, consecutive_429, self._rng)
                if decision.action is Action.RETRY:
                    # Every caller of this store waits, not just this one.
                    self.budget.pause(decision.delay)
                    self.budget.stats.retries += 1
                    log.info(
                        "BigCommerce rate limit: waiting %.1f s",
                        decision.delay,
                        extra=_fields(self.store_hash, method, path, status, attempt),
                    )
                    continue
                raise self._api_error(response, method, path, headers)
            consecutive_429 = 0

            decision = policy.after_status(status, idempotency, attempt, self._rng)
            if decision.action is Action.RETRY:
                maybe_applied = True
                await self._retry_after(decision, method, path, attempt, status)
                continue
            error = self._api_error(response, method, path, headers)
            if decision.action is Action.OUTCOME_UNKNOWN:
                raise OutcomeUnknownError(
                    "the create may or may not have been applied; check before sending it again",
                    store_hash=self.store_hash,
                    method=method,
                    path=path,
                    status=status,
                    title=error.title,
                ) from None
            raise error

    async def _retry_after(
        self, decision: Decision, method: str, path: str, attempt: int, status: int | None = None
    ) -> None:
        self.budget.stats.retries += 1
        log.warning(
            "BigCommerce call failed (%s); retrying in %.1f s",
            decision.reason,
            decision.delay,
            extra=_fields(self.store_hash, method, path, status, attempt),
        )
        await self.budget.wait(decision.delay)

    def _decode(self, response: httpx.Response, method: str, path: str) -> object:
        if response.status_code == 204 or not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            raise ResponseFormatError(
                "the response is not JSON",
                store_hash=self.store_hash,
                method=method,
                path=path,
                status=response.status_code,
            ) from None

    def _api_error(
        self, response: httpx.Response, method: str, path: str, headers: RateLimitHeaders
    ) -> BigCommerceError:
        try:
            body: object = response.json()
        except ValueError:
            body = None
        said = ErrorBody.parse(body, redact=self._token.get_secret_value())
        status = response.status_code
        common: dict[str, Any] = {
            "store_hash": self.store_hash,
            "method": method,
            "path": path,
            "status": status,
            "title": said.title,
            "detail": said.detail,
            "errors": said.errors,
        }
        summary = response.reason_phrase or "error"
        if status == 429:
            return RateLimitedError(summary, retry_after=headers.reset_wait(), **common)
        return error_class(status)(summary, **common)

    def _transport_error(
        self, exc: httpx.RequestError, decision: Decision, method: str, path: str
    ) -> BigCommerceError:
        # Not chained: the httpx exception holds the request, headers and token included.
        said = str(exc).replace(self._token.get_secret_value(), "[redacted]")[:200]
        cause = f"{type(exc).__name__}: {said}" if said else type(exc).__name__
        if decision.action is Action.OUTCOME_UNKNOWN:
            return OutcomeUnknownError(
                f"no response ({cause}); the create may or may not have been applied, "
                "check before sending it again",
                store_hash=self.store_hash,
                method=method,
                path=path,
            )
        return TransportError(
            f"no response ({cause}): {decision.reason}",
            store_hash=self.store_hash,
            method=method,
            path=path,
        )


def _param(value: ParamValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fields(
    store_hash: str, method: str, path: str, status: int | None, attempt: int
) -> dict[str, object]:
    return {
        "store_hash": store_hash,
        "bc_method": method,
        "bc_path": path,
        "bc_status": status,
        "bc_attempt": attempt,
    }
