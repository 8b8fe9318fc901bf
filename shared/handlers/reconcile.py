"""The reconciliation handler the timer (functions/reconcile.py) and `python -m cli reconcile`
call: one sweep (shared/reconciliation/sweep.py) of every store, each under a lease, then the
store's webhook health check.

One sweep per store at a time. A store's sweep holds the lease `sweep.<store>` (the state
store's `leases` partition, shared/state/lease.py) for `lease_duration`, renews it between pages
and releases it at the end. Two timers firing at once, two instances, or the timer and an
operator's `reconcile` therefore never sweep the same store together: whoever finds the lease
held skips the store and says so. The lease bounds but does not fence (a holder that stalls past
its expiry finds it taken when it renews, and stops); the deterministic message ids make even
that overlap harmless, since the broker drops the second copy of each message.

Stores are swept concurrently (at most `concurrency` at a time): each has its own BigCommerce
rate budget, and they share the Dataverse throttle gate. A store whose sweep fails does not stop
the others; `run_all` raises `ReconcileError`, carrying the whole report, once all are done.
After each sweep: one structured metrics event and the custom metrics are logged, and the result
is upserted in the state store (`sweeps`, key the store hash) for the CLI and the doctor.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal, Protocol

from shared.messaging.ports import MessageSender
from shared.observability import correlation
from shared.reconciliation.metrics import SweepMetrics, emit, store_result
from shared.reconciliation.ports import SyncLedger
from shared.reconciliation.sweep import LeaseLostError, StoreSweep, SweepPolicy, SweepStorefront
from shared.state import lease as leases
from shared.state.ports import StateError, StateStore

log = logging.getLogger("connector.reconcile")

LEASE_PREFIX: Final = "sweep."
# Well above one page's work (a BigCommerce page, one Dataverse query, one send): the lease is
# renewed between pages, so this bounds how long a crashed sweep blocks the store.
DEFAULT_LEASE_DURATION: Final = timedelta(minutes=10)
DEFAULT_CONCURRENCY: Final = 4

Status = Literal["swept", "failed", "lease_lost", "skipped"]
HookCheck = Callable[[str], Awaitable[object]]


class Storefronts(Protocol):
    """What the handler needs of `BigCommerceClients`."""

    @property
    def store_hashes(self) -> list[str]: ...

    def get(self, store_hash: str) -> SweepStorefront: ...


@dataclass(frozen=True, slots=True)
class StoreOutcome:
    store_hash: str
    status: Status
    metrics: SweepMetrics | None = None
    reason: str = ""  # why it was skipped or failed
    hooks: object | None = None  # the webhook health report, when checked
    hooks_error: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "lease_lost") or self.hooks_error is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "store_hash": self.store_hash,
            "status": self.status,
            "reason": self.reason,
            "metrics": None if self.metrics is None else self.metrics.to_json(),
            "hooks": _jsonable(self.hooks),
            "hooks_error": self.hooks_error,
        }


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    stores: tuple[StoreOutcome, ...]

    @property
    def failed(self) -> tuple[StoreOutcome, ...]:
        return tuple(s for s in self.stores if s.failed)

    def to_json(self) -> dict[str, Any]:
        return {"ok": not self.failed, "stores": [s.to_json() for s in self.stores]}


class ReconcileError(Exception):
    """Some store could not be swept (or its hooks checked); `report` says which and why."""

    def __init__(self, report: ReconcileReport) -> None:
        self.report = report
        reasons = "; ".join(
            f"{s.store_hash}: {s.reason or s.hooks_error or s.status}" for s in report.failed
        )
        super().__init__(f"reconciliation failed for {len(report.failed)} store(s): {reasons}")


class Reconciler:
    def __init__(
        self,
        storefronts: Storefronts,
        ledger: SyncLedger,
        sender: MessageSender,
        state: StateStore,
        *,
        clock: Callable[[], datetime],
        new_id: Callable[[], str],
        policy: SweepPolicy | None = None,
        owner: str | None = None,
        lease_duration: timedelta = DEFAULT_LEASE_DURATION,
        hooks: HookCheck | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        if lease_duration <= timedelta(0):
            raise ValueError("lease_duration must be positive")
        self._storefronts = storefronts
        self._ledger = ledger
        self._sender = sender
        self._state = state
        self._clock = clock
        self._new_id = new_id
        self._policy = policy or SweepPolicy()
        self._owner = owner or f"reconciler-{new_id()}"
        self._lease_duration = lease_duration
        self._hooks = hooks
        self._concurrency = max(1, concurrency)

    @property
    def store_hashes(self) -> list[str]:
        return self._storefronts.store_hashes

    async def run_all(self, store_hashes: Sequence[str] | None = None) -> ReconcileReport:
        """Sweeps every store (or those named); ReconcileError if any failed."""
        stores = list(dict.fromkeys(self.store_hashes if store_hashes is None else store_hashes))
        gate = asyncio.Semaphore(self._concurrency)

        async def one(store_hash: str) -> StoreOutcome:
            async with gate:
                return await self.run_store(store_hash)

        report = ReconcileReport(tuple(await asyncio.gather(*(one(s) for s in stores))))
        if report.failed:
            raise ReconcileError(report)
        return report

    async def run_store(self, store_hash: str) -> StoreOutcome:
        """One sweep of one store under its lease, then its webhook check. Never raises for
        the store's own failures: the outcome says what happened."""
        traceparent = correlation.child_traceparent(correlation.current().get("traceparent"))
        correlation_id = self._new_id()
        with correlation.bind(correlation_id=correlation_id, traceparent=traceparent):
            try:
                storefront = self._storefronts.get(store_hash)
            except KeyError:
                return StoreOutcome(store_hash, "failed", reason="no such store is configured")
            name = LEASE_PREFIX + store_hash
            try:
                lease = await leases.acquire(
                    self._state, name, self._owner, self._lease_duration, self._clock
                )
            except (StateError, ValueError) as exc:
                log.error("reconciliation of %s: the lease could not be taken: %s", store_hash, exc)
                return StoreOutcome(store_hash, "failed", reason=f"lease {name}: {exc}")
            if lease is None:
                log.info("reconciliation of %s skipped: another sweep holds %s", store_hash, name)
                return StoreOutcome(
                    store_hash, "skipped", reason=f"another sweep holds the lease {name}"
                )
            held = lease

            async def renew() -> None:
                nonlocal held
                try:
                    renewed = await leases.renew(
                        self._state, held, self._lease_duration, self._clock
                    )
                except StateError as exc:
                    raise LeaseLostError(f"lease {name} could not be renewed: {exc}") from exc
                if renewed is None:
                    raise LeaseLostError(f"lease {name} was taken over")
                held = renewed

            try:
                metrics = await StoreSweep(
                    store_hash,
                    storefront=storefront,
                    ledger=self._ledger,
                    sender=self._sender,
                    state=self._state,
                    clock=self._clock,
                    correlation_id=correlation_id,
                    policy=self._policy,
                    traceparent=traceparent,
                    renew=renew,
                ).run()
            finally:
                try:
                    await leases.release(self._state, held)
                except StateError as exc:
                    log.warning("lease %s not released (it expires by itself): %s", name, exc)
            emit(metrics, log)
            try:
                await store_result(self._state, metrics)
            except StateError as exc:
                log.warning("the sweep result of %s was not stored: %s", store_hash, exc)
            hooks, hooks_error = await self._check_hooks(store_hash)
        status: Status = "swept" if metrics.outcome == "ok" else metrics.outcome
        return StoreOutcome(
            store_hash,
            status,
            metrics,
            reason="; ".join(metrics.errors),
            hooks=hooks,
            hooks_error=hooks_error,
        )

    async def _check_hooks(self, store_hash: str) -> tuple[object | None, str | None]:
        if self._hooks is None:
            return None, None
        try:
            return await self._hooks(store_hash), None
        except Exception as exc:  # the sweep is done; report the check's failure with it
            log.exception("webhook health check of %s failed", store_hash)
            return None, f"{type(exc).__name__}: {exc}"


def _jsonable(value: object) -> object:
    """A hook report as JSON: its own `to_json()`, a dataclass's fields, or its text."""
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        return to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    return str(value)
