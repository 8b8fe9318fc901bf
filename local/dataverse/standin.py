"""One simulated Dataverse environment: its store and Web API, and the gateway in front of it.

The gateway, for every request under /api/data/v9.2/, in order: the bearer token (401 without a
known one; each token is its own identity), an injected fault, random throttling, a chaos
fault (`local/standin/chaos.py`, by identity), the service protection limits (429), the
configured latency, then the operation. It records every request (method, path, status, time)
for the admin API and adds `x-ms-dop-hint` and the debug rate-limit headers to the answer.

The chaos kinds: `429` (the requests limit's answer, `Retry-After: 1`) and `503` are answered
before anything is done, as Dataverse refuses them; `timeout` and `slow` do the operation and
then hold the answer back for their `delays_ms`: a `timeout` longer than the client waits (the
write happened, the client cannot know), a `slow` one shorter (a long step, whose message lock
may expire meanwhile).
"""

from __future__ import annotations

import asyncio
import hmac
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import anyio.to_thread

from local.dataverse import catalog as cat
from local.dataverse import errors, protection
from local.dataverse.config import Latency, Limits, StandinSettings
from local.dataverse.faults import Fault, FaultInjector, RequestRecord
from local.dataverse.messages import ApiRequest, ApiResponse, error_response
from local.dataverse.service import Service
from local.dataverse.store import Store
from local.standin.chaos import RandomFaults
from local.standin.requestlog import RequestLog

CHAOS_KINDS = ("429", "503", "timeout", "slow")
_FAULT_MESSAGES = {
    500: "An unexpected error occurred.",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(slots=True)
class Runtime:
    """Settings the admin API can change while the stand-in runs."""

    latency: Latency
    dop_hint: int
    key_activation_seconds: float
    throttle_rate: float = 0.0


class StandIn:
    def __init__(self, settings: StandinSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = Store(settings.db_path, clock)
        self.store.open(provisioned=settings.provisioned, iom=settings.iom)
        self.runtime = self._initial_runtime()
        self.service = Service(self.store, settings.key_activation_seconds)
        self.protection = protection.ServiceProtection(settings.limits)
        self.faults = FaultInjector()
        self.chaos = RandomFaults(CHAOS_KINDS)
        self.requests: RequestLog[RequestRecord] = RequestLog()
        self.rng = random.Random()
        self._identities = {t: f"identity-{n}" for n, t in enumerate(settings.tokens, start=1)}

    def _initial_runtime(self) -> Runtime:
        return Runtime(
            self.settings.latency, self.settings.dop_hint, self.settings.key_activation_seconds
        )

    def set_key_activation(self, seconds: float) -> None:
        self.runtime.key_activation_seconds = seconds
        self.service.key_activation_seconds = seconds

    def set_limits(self, limits: Limits) -> None:
        self.protection.limits = limits

    def reset(self, provisioned: bool | None = None) -> None:
        """Back to a fresh environment and the settings the process started with."""
        self.store.reset(
            provisioned=self.settings.provisioned if provisioned is None else provisioned,
            iom=self.settings.iom,
        )
        self.runtime = self._initial_runtime()
        self.service.key_activation_seconds = self.runtime.key_activation_seconds
        self.service.revoked_privileges = frozenset()
        self.protection.limits = self.settings.limits
        self.protection.reset()
        self.faults.clear()
        self.chaos.reset()
        self.requests.clear()

    def provision(self) -> None:
        """Adds every schema.py table, column and key that is missing, all keys ending Active,
        and the reference rows of a provisioned environment (catalog.REFERENCE_ROWS)."""
        store = self.store
        with store.lock, store.savepoint():
            wanted = cat.seed(provisioned=True, iom=self.settings.iom, started=store.clock())
            for name, target in wanted.items():
                have = store.catalog.get(name)
                if have is None:
                    store.create_table(target)
                    continue
                for attribute in target.attributes.values():
                    if attribute.logical_name not in have.attributes:
                        store.add_attribute(have, attribute)
                for key in target.keys.values():
                    if key.logical_name not in have.keys:
                        store.add_key(have, replace(key, status=cat.STATUS_PENDING))
            cat.link_collections(store.catalog)
            for entity in list(store.catalog.values()):
                for key in entity.keys.values():
                    if key.status != cat.STATUS_ACTIVE:
                        store.activate_key(entity, key)
                store.save_entity(entity)
            store.seed_reference_rows()

    # --- the gateway ------------------------------------------------------------------------

    def identity(self, authorization: str | None) -> str | None:
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return None
        for token, name in self._identities.items():
            if hmac.compare_digest(presented.strip().encode(), token.encode()):
                return name
        return None

    async def handle(self, request: ApiRequest, authorization: str | None) -> ApiResponse:
        started = time.monotonic()
        identity = self.identity(authorization)
        if identity is None:
            response = error_response(
                errors.DataverseError(
                    401, errors.NOT_AUTHENTICATED, "The user is not authenticated."
                )
            )
            response.headers.append(("WWW-Authenticate", "Bearer"))
        else:
            response = await self._guarded(identity, request)
            if self.runtime.dop_hint > 0:
                response.headers.append(("x-ms-dop-hint", str(self.runtime.dop_hint)))
        self._record(request, response.status, time.monotonic() - started, identity or "-")
        request_id = str(uuid.uuid4())
        response.headers += [("REQ_ID", request_id), ("x-ms-service-request-id", request_id)]
        return response

    async def _guarded(self, identity: str, request: ApiRequest) -> ApiResponse:
        fault = self.faults.take(request.method, request.path)
        if fault is not None:
            return await self._fault(fault)
        if self.runtime.throttle_rate and self.rng.random() < self.runtime.throttle_rate:
            return error_response(protection.requests_exceeded(self.protection.limits, 1))
        chaos = self.chaos.draw(identity)
        if chaos == "429":
            return error_response(protection.requests_exceeded(self.protection.limits, 1))
        if chaos == "503":
            return error_response(
                errors.DataverseError(503, errors.UNEXPECTED, _FAULT_MESSAGES[503])
            )
        try:
            self.protection.admit(identity)
        except errors.DataverseError as refused:
            return error_response(refused)
        started = time.monotonic()
        try:
            await self.runtime.latency.wait(self.rng)
            response = await anyio.to_thread.run_sync(self.service.dispatch, request)
        finally:
            self.protection.release(identity, time.monotonic() - started)
        if chaos is not None:  # timeout or slow: done, but answered late
            await asyncio.sleep(self.chaos.delay_seconds(chaos))
        requests_left, time_left = self.protection.remaining(identity)
        response.headers += [
            ("x-ms-ratelimit-burst-remaining-xrm-requests", str(requests_left)),
            ("x-ms-ratelimit-time-remaining-xrm-requests", str(time_left)),
        ]
        return response

    async def _fault(self, fault: Fault) -> ApiResponse:
        if fault.kind == "timeout":
            await asyncio.sleep(fault.delay_ms / 1000)
            status = 504
        else:
            status = fault.status
        if status == 429:
            limits = self.protection.limits
            make = {
                "requests": protection.requests_exceeded,
                "execution": protection.execution_exceeded,
                "concurrency": protection.concurrency_exceeded,
            }[fault.limit]
            return error_response(make(limits, fault.retry_after))
        message = _FAULT_MESSAGES.get(status, "The request failed (injected fault).")
        return error_response(errors.DataverseError(status, errors.UNEXPECTED, message))

    def _record(self, request: ApiRequest, status: int, seconds: float, identity: str) -> None:
        query = "&".join(f"{k}={v}" for k, v in request.query)
        self.requests.add(
            RequestRecord(
                datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                request.method,
                "/api/data/v9.2/" + request.path,
                query,
                status,
                round(seconds * 1000, 3),
                identity,
            )
        )
