"""One reconciliation sweep of one store: BigCommerce against what Dataverse recorded.

BigCommerce has no events-history API (reference/bigcommerce.md §1.5): the only way to recover a
webhook it never delivered (or one it gave up retrying after 48 hours, or one dropped while the
hook was deactivated) is to poll the Orders API. Each sweep does, per store (§2.3's recipe):

1. Orders. `GET /v2/orders?min_date_modified=<watermark - overlap>&sort=date_modified:asc&
   limit=250` (a store's first sweep: now - `first_lookback`). For each page, ONE ledger query
   (the salesorders of the page's order ids) and each order is:
   - skipped when its status is not taken in (0, Incomplete, and any status the mapping leaves
     out): nothing would be written for it; skipped too when it was created before the store's
     go-live and Dataverse does not hold it (go_live.py);
   - missing: no salesorder;
   - stale: BigCommerce's `date_modified` is newer than the recorded `bciom_bcdatemodified`, or
     the status differs from `bciom_bcstatusid`. A closed salesorder (statecode 2, 3 or 4) is
     read-only, so its recorded state never moves again: it is stale only if BigCommerce's
     status is not a closed one (e.g. cancelled in Dataverse, still open in BigCommerce);
   - current otherwise.
   Missing and stale orders are sent, per page in ONE `send`, as `connector.order` messages with
   trigger `reconcile` into the order's session, message id `derived_id("reconcile", store,
   order id, date_modified)`: two sweeps, or two instances, that find the same order state send
   one message within the broker's duplicate-detection window, and the runner, for which a
   message is only a hint, re-reads both sides anyway.
   Only after the page's send succeeded does the watermark move, to the page's last
   `date_modified`. A crash mid-sweep therefore loses nothing: the next sweep starts again at or
   before the first order not processed.
2. Refunds, the same way from the store-wide refund feed (`GET /v3/orders/payment_actions/
   refunds?created:min=<watermark - overlap>`): a refund id Dataverse lacks (one
   `bciom_orderrefund` query per page) enqueues its order, message id derived from the refund id.
3. The reverse check (`reverse.py`): Dataverse changes BigCommerce does not reflect.

Paging. The recipe's page numbers are unsafe over a set that changes while it is read, and this
one does: the connector's own writes to BigCommerce (a status set after validation, a shipment)
move an order's `date_modified` past the pages still to come, which shifts every later order one
place back, so that page-number paging would skip one order per move. The sweep therefore
restarts the listing from the last `date_modified` of each full page (page 1 again), a keyset
walk on `(date_modified)`; the orders of that boundary second come back and are de-duplicated on
`(id, date_modified)`, and an order that moved is met again later, with its new date. Only when
a whole page shares one second does it step to the next page number. `min_date_modified` is
inclusive and has whole seconds, so an order whose `date_modified` equals the boundary is never
skipped; the overlap covers clock skew and orders committed late with an earlier date.

The lease (one sweep per store at a time) is the caller's (shared/handlers/reconcile.py); the
sweep calls `renew` between pages and stops with `LeaseLostError` when it was lost.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final, Protocol

from shared.bigcommerce.client import MAX_PAGE_SIZE, OrderFilter, OrderSortField
from shared.bigcommerce.models import Order, Refund
from shared.config import Settings
from shared.mapping.config import MappingConfig
from shared.messaging.message import OutboundMessage
from shared.messaging.ports import MessageSender
from shared.messaging.queues import ORDER_EVENTS
from shared.orchestration.flow import Trigger
from shared.orchestration.go_live import GoLive, before_go_live, go_live_of
from shared.orchestration.messages import build_order_message, derived_id
from shared.reconciliation.metrics import SweepMetrics
from shared.reconciliation.ports import RecordedOrder, SyncLedger
from shared.reconciliation.reverse import DEFAULT_GRACE, check_reverse
from shared.reconciliation.watermarks import Watermarks
from shared.state.ports import StateStore

log = logging.getLogger("connector.reconcile")

ORDERS: Final = "orders"
REFUNDS: Final = "refunds"
INCOMPLETE: Final = 0
# Salesorder states Sales treats as read-only: cancelled, fulfilled, invoiced.
CLOSED_STATECODES: Final = frozenset({2, 3, 4})
# BigCommerce statuses the default mapping maps to a closed salesorder: Shipped, Partially
# Shipped, Refunded, Cancelled, Declined, Completed.
DEFAULT_CLOSED_STATUSES: Final = frozenset({2, 3, 4, 5, 6, 10})

Clock = Callable[[], datetime]
Renew = Callable[[], Awaitable[None]]


class LeaseLostError(Exception):
    """The store's sweep lease was lost: another sweep may be running; this one stops."""


class OrderPages(Protocol):
    """The order listing of `BigCommerceClient`, page by page."""

    def iter_order_pages(
        self,
        filters: OrderFilter | None = ...,
        *,
        sort: OrderSortField = ...,
        descending: bool = ...,
        limit: int = ...,
        first_page: int = ...,
        include: Sequence[str] = ...,
    ) -> AsyncIterator[list[Order]]: ...


class SweepStorefront(OrderPages, Protocol):
    """What the sweep needs of `BigCommerceClient`: the two listing feeds."""

    def iter_refund_pages(
        self,
        *,
        created_min: datetime | None = ...,
        created_max: datetime | None = ...,
        order_ids: Sequence[int] = ...,
        limit: int = ...,
    ) -> AsyncIterator[list[Refund]]: ...


@dataclass(frozen=True, slots=True)
class SweepPolicy:
    overlap: timedelta = timedelta(seconds=300)
    first_lookback: timedelta = timedelta(hours=72)
    page_size: int = MAX_PAGE_SIZE
    skip_statuses: frozenset[int] = frozenset({INCOMPLETE})
    closed_statuses: frozenset[int] = DEFAULT_CLOSED_STATUSES
    reverse_grace: timedelta = DEFAULT_GRACE
    go_live: GoLive = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        if self.overlap < timedelta(0) or self.reverse_grace < timedelta(0):
            raise ValueError("overlap and reverse_grace must not be negative")
        if self.first_lookback <= timedelta(0):
            raise ValueError("first_lookback must be positive")

    @classmethod
    def from_settings(cls, settings: Settings, mapping: MappingConfig | None = None) -> SweepPolicy:
        """The policy of RECONCILE_OVERLAP_SECONDS and RECONCILE_FIRST_LOOKBACK_HOURS, with the
        skipped and closed statuses of the mapping's status map when given."""
        skip, closed = frozenset({INCOMPLETE}), DEFAULT_CLOSED_STATUSES
        if mapping is not None:
            skip = skip | {s for s, rule in mapping.status_map.items() if not rule.intake}
            closed = frozenset(
                s
                for s, rule in mapping.status_map.items()
                if rule.intake and rule.statecode in CLOSED_STATECODES
            )
        return cls(
            go_live=go_live_of(settings),
            overlap=timedelta(seconds=settings.reconcile_overlap_seconds),
            first_lookback=timedelta(hours=settings.reconcile_first_lookback_hours),
            skip_statuses=skip,
            closed_statuses=closed,
        )


class Verdict(StrEnum):
    CURRENT = "current"
    MISSING = "missing"
    STALE = "stale"


def classify(
    order: Order,
    recorded: RecordedOrder | None,
    closed_statuses: frozenset[int] = DEFAULT_CLOSED_STATUSES,
) -> Verdict:
    """Whether Dataverse holds the order's BigCommerce state (see the module docstring)."""
    if recorded is None:
        return Verdict.MISSING
    if recorded.statecode in CLOSED_STATECODES:
        return Verdict.CURRENT if order.status_id in closed_statuses else Verdict.STALE
    if recorded.bc_date_modified is None or order.date_modified > recorded.bc_date_modified:
        return Verdict.STALE
    if recorded.bc_status_id != order.status_id:
        return Verdict.STALE
    return Verdict.CURRENT


def order_message_id(store_hash: str, order: Order) -> str:
    return derived_id("reconcile", store_hash, order.id, order.date_modified.isoformat())


def refund_message_id(store_hash: str, refund: Refund) -> str:
    return derived_id("reconcile", store_hash, "refund", refund.id)


def _second(value: datetime) -> datetime:
    return value.replace(microsecond=0)


async def _first(pages: AsyncIterator[list[Order]]) -> list[Order]:
    try:
        return await anext(pages, [])
    finally:
        close = getattr(pages, "aclose", None)
        if close is not None:
            await close()


class StoreSweep:
    """One sweep of one store; build one per run. `run` does not raise when a part fails (the
    metrics say which and why, and the other parts still run) nor when the lease is lost (the
    sweep stops there, as `lease_lost`)."""

    def __init__(
        self,
        store_hash: str,
        *,
        storefront: SweepStorefront,
        ledger: SyncLedger,
        sender: MessageSender,
        state: StateStore,
        clock: Clock,
        correlation_id: str,
        policy: SweepPolicy | None = None,
        traceparent: str | None = None,
        renew: Renew | None = None,
    ) -> None:
        self.store_hash = store_hash
        self._storefront = storefront
        self._ledger = ledger
        self._sender = sender
        self._clock = clock
        self._policy = policy or SweepPolicy()
        self._correlation_id = correlation_id
        self._traceparent = traceparent
        self._renew = renew
        self.watermarks = Watermarks(state, store_hash)
        self.enqueued_orders: set[int] = set()  # orders sent a message in this sweep

    async def run(self) -> SweepMetrics:
        metrics = SweepMetrics(self.store_hash, started_at=self._clock())
        parts = ((ORDERS, self._orders), (REFUNDS, self._refunds), ("reverse", self._reverse))
        try:
            for name, part in parts:
                try:
                    await part(metrics)
                except LeaseLostError:
                    raise
                except Exception as exc:  # each part has its own watermark: go on with the next
                    log.exception("reconciliation of %s: %s failed", self.store_hash, name)
                    metrics.fail(name, exc)
        except LeaseLostError as exc:
            metrics.outcome = "lease_lost"
            metrics.errors.append(f"lease: {exc}")
            log.warning("reconciliation of %s stopped: %s", self.store_hash, exc)
        metrics.finished_at = self._clock()
        return metrics

    # -- orders -------------------------------------------------------------------------------

    async def _orders(self, metrics: SweepMetrics) -> None:
        policy = self._policy
        bound = self._start(await self.watermarks.load(ORDERS))
        page_number = 1
        seen: set[tuple[int, datetime]] = set()
        while True:
            page = await _first(
                self._storefront.iter_order_pages(
                    OrderFilter(min_date_modified=bound),
                    sort="date_modified",
                    limit=policy.page_size,
                    first_page=page_number,
                )
            )
            if not page:
                return
            metrics.pages += 1
            fresh: list[Order] = []
            for order in page:
                if (order.id, order.date_modified) not in seen:
                    seen.add((order.id, order.date_modified))
                    fresh.append(order)
            if not fresh and page_number > 1:
                raise RuntimeError(
                    f"GET /v2/orders page {page_number} repeated earlier orders (paging ignored?)"
                )
            await self._check_orders(fresh, metrics)
            last = max(order.date_modified for order in page)
            await self._advance(ORDERS, last, metrics)
            if len(page) < policy.page_size:
                return
            await self._keep_lease()
            if _second(last) > _second(bound):
                bound, page_number = last, 1
            else:  # a whole page within one second: the next page of the same listing
                page_number += 1

    async def _check_orders(self, orders: Sequence[Order], metrics: SweepMetrics) -> None:
        policy = self._policy
        candidates = [o for o in orders if o.status_id not in policy.skip_statuses]
        metrics.orders_skipped += len(orders) - len(candidates)
        if not candidates:
            return
        recorded = await self._ledger.orders(self.store_hash, [o.id for o in candidates])
        messages: list[OutboundMessage] = []
        repaired: list[int] = []
        for order in candidates:
            found = recorded.get(order.id)
            if found is None and before_go_live(policy.go_live, self.store_hash, order):
                metrics.orders_skipped += 1
                continue
            metrics.orders_checked += 1
            verdict = classify(order, found, policy.closed_statuses)
            if verdict is Verdict.CURRENT:
                continue
            if verdict is Verdict.MISSING:
                metrics.orders_missing += 1
                detail = "reconcile: no salesorder"
            else:
                metrics.orders_stale += 1
                detail = f"reconcile: stale salesorder ({_recorded(found)})"
            metrics.unsynced(order.date_modified)
            messages.append(
                self._message(order.id, order_message_id(self.store_hash, order), detail)
            )
            repaired.append(order.id)
        if messages:
            await self._sender.send(ORDER_EVENTS.name, messages)
            metrics.orders_enqueued += len(messages)
            self.enqueued_orders.update(repaired)

    # -- refunds ------------------------------------------------------------------------------

    async def _refunds(self, metrics: SweepMetrics) -> None:
        since = self._start(await self.watermarks.load(REFUNDS))
        seen: set[int] = set()
        async for page in self._storefront.iter_refund_pages(
            created_min=since, limit=self._policy.page_size
        ):
            metrics.pages += 1
            fresh = [r for r in page if r.id not in seen]
            seen.update(r.id for r in fresh)
            if fresh:
                recorded = await self._ledger.refunds(self.store_hash, [r.id for r in fresh])
                missing = [r for r in fresh if r.id not in recorded]
                metrics.refunds_checked += len(fresh)
                metrics.refunds_missing += len(missing)
                messages = [
                    self._message(
                        r.order_id,
                        refund_message_id(self.store_hash, r),
                        f"reconcile: refund {r.id} not recorded",
                    )
                    for r in missing
                ]
                for refund in missing:
                    metrics.unsynced(refund.created)
                if messages:
                    await self._sender.send(ORDER_EVENTS.name, messages)
                    metrics.refunds_enqueued += len(messages)
                    self.enqueued_orders.update(r.order_id for r in missing)
            created = [r.created for r in page if r.created is not None]
            if created:
                await self._advance(REFUNDS, max(created), metrics)
            await self._keep_lease()

    # -- Dataverse -> BigCommerce -------------------------------------------------------------

    async def _reverse(self, metrics: SweepMetrics) -> None:
        policy = self._policy
        result = await check_reverse(
            store_hash=self.store_hash,
            ledger=self._ledger,
            sender=self._sender,
            watermarks=self.watermarks,
            now=self._clock(),
            overlap=policy.overlap,
            first_lookback=policy.first_lookback,
            grace=policy.reverse_grace,
            already_enqueued=self.enqueued_orders,
            correlation_id=self._correlation_id,
            traceparent=self._traceparent,
        )
        metrics.reverse_found += result.found
        metrics.reverse_enqueued += result.enqueued
        metrics.unsynced(result.oldest)
        if result.watermark is not None:
            metrics.watermarks["reverse"] = result.watermark.isoformat()

    # -- helpers ------------------------------------------------------------------------------

    def _start(self, watermark: datetime | None) -> datetime:
        if watermark is None:
            return self._clock() - self._policy.first_lookback
        return watermark - self._policy.overlap

    async def _advance(self, stream: str, value: datetime, metrics: SweepMetrics) -> None:
        stored = await self.watermarks.advance(stream, value, now=self._clock())
        if stored is not None:
            metrics.watermarks[stream] = stored.isoformat()

    async def _keep_lease(self) -> None:
        if self._renew is not None:
            await self._renew()

    def _message(self, order_id: int, message_id: str, detail: str) -> OutboundMessage:
        return build_order_message(
            trigger=Trigger.RECONCILE,
            store_hash=self.store_hash,
            order_id=order_id,
            message_id=message_id,
            correlation_id=self._correlation_id,
            detail=detail,
            traceparent=self._traceparent,
        )


def _recorded(found: RecordedOrder | None) -> str:
    if found is None:
        return "none"
    modified = None if found.bc_date_modified is None else found.bc_date_modified.isoformat()
    return f"status {found.bc_status_id}, modified {modified}, statecode {found.statecode}"
