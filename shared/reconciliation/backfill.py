"""Backfill: sync every order of one store in an id or creation-date range.

The sweep (sweep.py) follows `date_modified` from a watermark; a backfill walks a fixed range
instead: `GET /v2/orders` sorted by id ascending, 250 a page, filtered on `min_id`/`max_id` or
`min_date_created`/`max_date_created`. Each page is a keyset step: the next page is asked for
with `min_id = last id + 1`, so orders created or modified meanwhile never shift the walk.

Per page, ONE ledger query, and each order is decided exactly as the sweep decides
(`sweep.classify`, with the policy's skipped and closed statuses): missing and stale orders are
sent in ONE `send` as `connector.order` messages with trigger `reconcile`, message id
`derived_id("backfill", store, order id, date_modified)`.

Resumable: only after a page's send succeeded is the checkpoint stored (state partition
`backfill`, key `<store>.<hash of the range>`: last_id, enqueued, checked, started_at); a rerun
of the same range continues after last_id unless `restart`. A dry run sends nothing and writes
no checkpoint. Progress: `progress` gets one line per page (checked/total, enqueued, ETA).

Pacing: nothing here; the BigCommerce client's rate budget (shared/bigcommerce/rate_budget.py)
paces every request, so a backfill shares the store's quota with the app as any caller does.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Protocol

from shared.bigcommerce.client import MAX_PAGE_SIZE, OrderFilter
from shared.bigcommerce.models import Order, OrdersCount
from shared.messaging.message import OutboundMessage
from shared.messaging.ports import MessageSender
from shared.messaging.queues import ORDER_EVENTS
from shared.orchestration.flow import Trigger
from shared.orchestration.go_live import before_go_live
from shared.orchestration.messages import build_order_message, derived_id
from shared.reconciliation.ports import SyncLedger
from shared.reconciliation.sweep import OrderPages, SweepPolicy, Verdict, classify
from shared.state.ports import StateStore

PARTITION: Final = "backfill"

decide = classify  # the sweep's decision, public here for the backfill's callers

Clock = Callable[[], datetime]
Progress = Callable[[str], None]


class BackfillStorefront(OrderPages, Protocol):
    """What the backfill needs of `BigCommerceClient`."""

    async def count_orders(self, filters: OrderFilter | None = ...) -> OrdersCount: ...


@dataclass(frozen=True, slots=True)
class BackfillRange:
    """Ids (inclusive) or creation dates (inclusive, timezone-aware); at least one bound."""

    min_id: int | None = None
    max_id: int | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None

    def __post_init__(self) -> None:
        bounds = (self.min_id, self.max_id, self.created_from, self.created_to)
        if all(b is None for b in bounds):
            raise ValueError("a backfill needs an id or a date range")
        for d in (self.created_from, self.created_to):
            if d is not None and d.tzinfo is None:
                raise ValueError("dates must be timezone-aware")

    def filter(self, after_id: int | None = None) -> OrderFilter:
        min_id = self.min_id
        if after_id is not None:
            min_id = max(min_id or 0, after_id + 1)
        return OrderFilter(
            min_id=min_id,
            max_id=self.max_id,
            min_date_created=self.created_from,
            max_date_created=self.created_to,
        )

    def key(self, store_hash: str) -> str:
        parts = (self.min_id, self.max_id, self.created_from, self.created_to)
        text = "|".join("" if p is None else str(p) for p in parts)
        return f"{store_hash}.{hashlib.sha256(text.encode()).hexdigest()[:12]}"


@dataclass(frozen=True, slots=True)
class Planned:
    order_id: int
    verdict: Verdict


@dataclass(slots=True)
class BackfillResult:
    store_hash: str
    key: str
    started_at: datetime
    total: int = 0
    checked: int = 0
    enqueued: int = 0
    last_id: int | None = None
    pages: int = 0
    resumed: bool = False
    dry_run: bool = False
    planned: list[Planned] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "store_hash": self.store_hash,
            "key": self.key,
            "started_at": self.started_at.isoformat(),
            "total": self.total,
            "checked": self.checked,
            "enqueued": self.enqueued,
            "last_id": self.last_id,
            "pages": self.pages,
            "resumed": self.resumed,
            "dry_run": self.dry_run,
            "planned": [{"order_id": p.order_id, "verdict": p.verdict.value} for p in self.planned],
        }


def message_id(store_hash: str, order: Order) -> str:
    return derived_id("backfill", store_hash, order.id, order.date_modified.isoformat())


def eta(elapsed: timedelta, done: int, remaining: int) -> timedelta | None:
    """Remaining time at the pace so far; None before anything was done."""
    if done <= 0:
        return None
    return elapsed * (max(remaining, 0) / done)


async def _first(pages: AsyncIterator[list[Order]]) -> list[Order]:
    try:
        return await anext(pages, [])
    finally:
        close = getattr(pages, "aclose", None)
        if close is not None:
            await close()


async def run_backfill(
    store_hash: str,
    span: BackfillRange,
    *,
    storefront: BackfillStorefront,
    ledger: SyncLedger,
    sender: MessageSender,
    state: StateStore,
    clock: Clock,
    correlation_id: str,
    policy: SweepPolicy | None = None,
    dry_run: bool = False,
    restart: bool = False,
    progress: Progress | None = None,
    page_size: int = MAX_PAGE_SIZE,
) -> BackfillResult:
    """Walks the range; raises what a page's read or send raised (the checkpoint stays at the
    last page sent, so a rerun continues there)."""
    policy = policy or SweepPolicy()
    key = span.key(store_hash)
    now = clock()
    result = BackfillResult(store_hash, key, started_at=now, dry_run=dry_run)
    if not restart:
        saved = await state.get(PARTITION, key)
        if saved is not None:
            value = saved.value
            result.last_id = value.get("last_id")
            result.enqueued = int(value.get("enqueued", 0))
            result.checked = int(value.get("checked", 0))
            started = value.get("started_at")
            if isinstance(started, str):
                result.started_at = datetime.fromisoformat(started)
            result.resumed = True
    result.total = (
        result.checked + (await storefront.count_orders(span.filter(result.last_id))).count
    )
    checked_before = result.checked
    while True:
        page = await _first(
            storefront.iter_order_pages(span.filter(result.last_id), sort="id", limit=page_size)
        )
        if not page:
            break
        result.pages += 1
        candidates = [o for o in page if o.status_id not in policy.skip_statuses]
        recorded = await ledger.orders(store_hash, [o.id for o in candidates]) if candidates else {}
        messages: list[OutboundMessage] = []
        for o in candidates:
            found = recorded.get(o.id)
            if found is None and before_go_live(policy.go_live, store_hash, o):
                continue
            verdict = decide(o, found, policy.closed_statuses)
            if verdict is Verdict.CURRENT:
                continue
            result.planned.append(Planned(o.id, verdict))
            messages.append(_message(store_hash, o, verdict, correlation_id))
        if messages and not dry_run:
            await sender.send(ORDER_EVENTS.name, messages)
        result.enqueued += len(messages)
        result.checked += len(page)
        result.last_id = max(o.id for o in page)
        if not dry_run:
            await state.upsert(PARTITION, key, _checkpoint(result))
        if progress is not None:
            progress(_line(result, clock() - now, result.checked - checked_before))
        if len(page) < page_size:
            break
    return result


def _checkpoint(result: BackfillResult) -> dict[str, object]:
    return {
        "last_id": result.last_id,
        "enqueued": result.enqueued,
        "checked": result.checked,
        "started_at": result.started_at.isoformat(),
    }


def bar(done: int, total: int, width: int = 20) -> str:
    """`[#######-------------]  35%`: the share of the range read so far."""
    share = 1.0 if total <= 0 else min(done / total, 1.0)
    filled = int(share * width)
    return f"[{'#' * filled}{'-' * (width - filled)}] {share:4.0%}"


def _line(result: BackfillResult, elapsed: timedelta, done: int) -> str:
    left = eta(elapsed, done, result.total - result.checked)
    shown = "?" if left is None else f"{left.total_seconds():.0f}s"
    verb = "would enqueue" if result.dry_run else "enqueued"
    return (
        f"{result.store_hash}: {bar(result.checked, result.total)} page {result.pages}: "
        f"checked {result.checked}/{result.total}, "
        f"{verb} {result.enqueued}, last id {result.last_id}, ETA {shown}"
    )


def _message(
    store_hash: str, order: Order, verdict: Verdict, correlation_id: str
) -> OutboundMessage:
    return build_order_message(
        trigger=Trigger.RECONCILE,
        store_hash=store_hash,
        order_id=order.id,
        message_id=message_id(store_hash, order),
        correlation_id=correlation_id,
        detail=f"backfill: {verdict.value}",
    )


__all__ = [
    "PARTITION",
    "BackfillRange",
    "BackfillResult",
    "BackfillStorefront",
    "Planned",
    "bar",
    "decide",
    "eta",
    "message_id",
    "run_backfill",
]
