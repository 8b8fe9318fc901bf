"""The reconciliation sweep (shared/reconciliation) and its handler (shared/handlers/reconcile.py)
with fakes of every port: a storefront listing orders by date_modified page by page (as
`GET /v2/orders` does: min_date_modified inclusive at whole seconds, incomplete orders left out,
ties by id), a ledger of recorded salesorders and refunds that counts its queries, a sender that
behaves like the broker's duplicate detection (a message id seen before is accepted and dropped),
and an in-memory state store with ETags (the SQLite one where two sweeps race for real).

What is checked:
- missing, stale (newer date, other status), current, closed salesorders, incomplete orders;
- one ledger query and one send per page; messages are `reconcile` order messages in the order's
  session, with ids derived from (store, order, date_modified);
- an order whose date_modified equals the boundary (watermark, page edge) is never skipped, and
  an order modified while the sweep pages is met again rather than skipping its neighbour;
- the watermark moves only after the page's send; a crash on page 2 leaves it at page 1's end,
  and the rerun enqueues page 2;
- two sweeps at once on one store: the second skips; a double run enqueues each state once;
- a lost lease stops the sweep; the webhook health check's rewind of the watermark wins;
- refunds, the reverse check (grace period, window, version-derived ids), metrics and the
  stored result, the webhook check after the sweep.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local.state import SqliteStateStore
from shared.bigcommerce.client import OrderFilter, OrderSortField
from shared.bigcommerce.models import Order, Refund
from shared.handlers.reconcile import (
    LEASE_PREFIX,
    ReconcileError,
    Reconciler,
    StoreOutcome,
)
from shared.mapping import load_mapping
from shared.messaging.message import OutboundMessage
from shared.messaging.ports import SendError
from shared.messaging.queues import ORDER_EVENTS
from shared.observability.json_logging import JsonFormatter
from shared.orchestration.flow import Trigger
from shared.orchestration.messages import derived_id, order_session, read_message
from shared.reconciliation.metrics import (
    CUSTOM_METRICS,
    METRIC_EVENT,
    SWEEPS_PARTITION,
    SweepMetrics,
    last_result,
)
from shared.reconciliation.ports import ChangeKind, PendingChange, RecordedOrder
from shared.reconciliation.reverse import change_message_id
from shared.reconciliation.sweep import (
    DEFAULT_CLOSED_STATUSES,
    LeaseLostError,
    StoreSweep,
    SweepPolicy,
    Verdict,
    classify,
    refund_message_id,
)
from shared.reconciliation.watermarks import PARTITION, Watermarks, watermark_key
from shared.state.lease import LEASES_PARTITION
from shared.state.ports import Entity, StateStore
from tests.unit import state_fakes
from tests.unit.lifecycle_fakes import make_order

STORE = "abc123"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
T0 = NOW - timedelta(hours=2)


# -- fakes ----------------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


MemoryState = state_fakes.MemoryState


def order(order_id: int, modified: datetime, status_id: int = 11) -> Order:
    return make_order(order_id, status_id, date_modified=modified)


def refund(refund_id: int, order_id: int, created: datetime) -> Refund:
    return Refund.model_validate(
        {"id": refund_id, "order_id": order_id, "created": created.isoformat(), "total_amount": "5"}
    )


@dataclass
class FakeStorefront:
    """`GET /v2/orders` by date_modified and `GET /v3/orders/payment_actions/refunds` by id."""

    orders: dict[int, Order] = field(default_factory=dict)
    refunds: list[Refund] = field(default_factory=list)
    order_requests: list[tuple[datetime | None, int]] = field(default_factory=list)
    after_page: Any = None  # called with the page number served, to change the store meanwhile
    gate: asyncio.Event | None = None  # when set, order pages wait for it
    waiting: asyncio.Event = field(default_factory=asyncio.Event)  # a page waits on the gate

    def put(self, *orders: Order) -> None:
        for o in orders:
            self.orders[o.id] = o

    async def iter_order_pages(
        self,
        filters: OrderFilter | None = None,
        *,
        sort: OrderSortField = "id",
        descending: bool = False,
        limit: int = 250,
        first_page: int = 1,
        include: Sequence[str] = (),
    ) -> AsyncIterator[list[Order]]:
        assert sort == "date_modified"
        assert not descending
        bound = None if filters is None else filters.min_date_modified
        page_number = first_page
        while True:
            if self.gate is not None:
                self.waiting.set()
                await self.gate.wait()
            self.order_requests.append((bound, page_number))
            since = None if bound is None else bound.replace(microsecond=0)  # RFC 2822 seconds
            listed = sorted(
                (
                    o
                    for o in self.orders.values()
                    if o.status_id != 0 and (since is None or o.date_modified >= since)
                ),
                key=lambda o: (o.date_modified, o.id),
            )
            page = listed[(page_number - 1) * limit : page_number * limit]
            if self.after_page is not None:  # the store changes once the page has been read
                self.after_page(page_number)
            if page:
                yield page
            if len(page) < limit:
                return
            page_number += 1

    async def iter_refund_pages(
        self,
        *,
        created_min: datetime | None = None,
        created_max: datetime | None = None,
        order_ids: Sequence[int] = (),
        limit: int = 250,
    ) -> AsyncIterator[list[Refund]]:
        since = None if created_min is None else created_min.replace(microsecond=0)
        listed = sorted(
            (r for r in self.refunds if since is None or (r.created and r.created >= since)),
            key=lambda r: r.id,
        )
        for start in range(0, len(listed), limit):
            yield listed[start : start + limit]
        if not listed:
            return


@dataclass
class FakeLedger:
    recorded: dict[int, RecordedOrder] = field(default_factory=dict)
    refund_ids: set[int] = field(default_factory=set)
    changes: list[PendingChange] = field(default_factory=list)
    order_queries: list[list[int]] = field(default_factory=list)
    refund_queries: list[list[int]] = field(default_factory=list)
    change_windows: list[tuple[datetime, datetime]] = field(default_factory=list)

    def record(self, o: Order, **changes: Any) -> None:
        values: dict[str, Any] = {
            "order_id": o.id,
            "bc_status_id": o.status_id,
            "bc_date_modified": o.date_modified,
            "statecode": 0,
        }
        values.update(changes)
        self.recorded[o.id] = RecordedOrder(**values)

    async def orders(
        self, store_hash: str, order_ids: Collection[int]
    ) -> Mapping[int, RecordedOrder]:
        assert store_hash == STORE
        self.order_queries.append(list(order_ids))
        return {i: self.recorded[i] for i in order_ids if i in self.recorded}

    async def refunds(self, store_hash: str, refund_ids: Collection[int]) -> set[int]:
        self.refund_queries.append(list(refund_ids))
        return {i for i in refund_ids if i in self.refund_ids}

    async def pending_changes(
        self, store_hash: str, *, modified_from: datetime, modified_before: datetime
    ) -> list[PendingChange]:
        self.change_windows.append((modified_from, modified_before))
        return [
            c
            for c in self.changes
            if c.modified_on is None or modified_from <= c.modified_on < modified_before
        ]


class BrokerSender:
    """A sender with the broker's duplicate detection: a known message id is accepted and
    dropped. `fail_on` makes the n-th send (1-based) fail, sending nothing."""

    def __init__(self) -> None:
        self.sends: list[list[OutboundMessage]] = []
        self.kept: dict[str, OutboundMessage] = {}
        self.fail_on: set[int] = set()
        self.calls = 0

    async def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        assert queue == ORDER_EVENTS.name
        self.calls += 1
        if self.calls in self.fail_on:
            raise SendError("broker unavailable")
        self.sends.append(list(messages))
        for message in messages:
            self.kept.setdefault(message.message_id, message)

    async def close(self) -> None:
        return None

    @property
    def sent(self) -> list[OutboundMessage]:
        return [m for batch in self.sends for m in batch]

    def order_ids(self) -> list[int]:
        ids = []
        for message in self.sent:
            value = message.application_properties["order_id"]
            assert isinstance(value, int)
            ids.append(value)
        return ids


@dataclass
class World:
    storefront: FakeStorefront = field(default_factory=FakeStorefront)
    ledger: FakeLedger = field(default_factory=FakeLedger)
    sender: BrokerSender = field(default_factory=BrokerSender)
    state: StateStore = field(default_factory=MemoryState)
    clock: Clock = field(default_factory=Clock)
    policy: SweepPolicy = field(default_factory=SweepPolicy)
    ids: Iterator[int] = field(default_factory=itertools.count)

    def sweep(self, **options: Any) -> StoreSweep:
        return StoreSweep(
            STORE,
            storefront=self.storefront,
            ledger=self.ledger,
            sender=self.sender,
            state=self.state,
            clock=self.clock,
            correlation_id="corr-1",
            policy=options.pop("policy", self.policy),
            **options,
        )

    def reconciler(self, **options: Any) -> Reconciler:
        storefront = self.storefront

        class Storefronts:
            store_hashes = [STORE]

            def get(self, store_hash: str) -> FakeStorefront:
                if store_hash != STORE:
                    raise KeyError(store_hash)
                return storefront

        return Reconciler(
            Storefronts(),
            self.ledger,
            self.sender,
            self.state,
            clock=self.clock,
            new_id=lambda: f"id-{next(self.ids)}",
            policy=options.pop("policy", self.policy),
            **options,
        )

    async def watermark(self, stream: str) -> datetime | None:
        entity = await self.state.get(PARTITION, watermark_key(STORE, stream))
        return None if entity is None else datetime.fromisoformat(entity.value["watermark"])


@pytest.fixture
def world() -> World:
    return World()


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# -- classification -------------------------------------------------------------------------------


def recorded(o: Order, **changes: Any) -> RecordedOrder:
    base = RecordedOrder(o.id, o.status_id, o.date_modified, 0)
    return replace(base, **changes)


def test_classify_missing_stale_current_and_closed() -> None:
    o = order(1, T0, status_id=11)
    assert classify(o, None) is Verdict.MISSING
    assert classify(o, recorded(o)) is Verdict.CURRENT
    assert classify(o, recorded(o, bc_date_modified=T0 - minutes(1))) is Verdict.STALE
    assert classify(o, recorded(o, bc_date_modified=None)) is Verdict.STALE
    assert classify(o, recorded(o, bc_status_id=12)) is Verdict.STALE
    # Dataverse ahead of BigCommerce (our own write answered with a later date): current.
    assert classify(o, recorded(o, bc_date_modified=T0 + minutes(1))) is Verdict.CURRENT
    # A closed salesorder never records newer BigCommerce states: only the status tells.
    closed = recorded(o, statecode=2, bc_date_modified=T0 - minutes(60), bc_status_id=11)
    assert classify(order(1, T0, status_id=5), closed) is Verdict.CURRENT
    assert classify(order(1, T0, status_id=10), recorded(o, statecode=3)) is Verdict.CURRENT
    assert classify(order(1, T0, status_id=11), closed) is Verdict.STALE


def test_the_policy_follows_the_settings_and_the_mapping() -> None:
    from shared.config import load_settings

    settings = load_settings()
    policy = SweepPolicy.from_settings(settings, load_mapping(environ={}))
    assert policy.overlap == timedelta(seconds=settings.reconcile_overlap_seconds)
    assert policy.first_lookback == timedelta(hours=settings.reconcile_first_lookback_hours)
    assert policy.skip_statuses == {0}
    assert policy.closed_statuses == DEFAULT_CLOSED_STATUSES == {2, 3, 4, 5, 6, 10}
    with pytest.raises(ValueError, match="page_size"):
        SweepPolicy(page_size=251)


# -- the order sweep ------------------------------------------------------------------------------


async def test_missing_and_stale_orders_are_enqueued_current_and_closed_ones_are_not(
    world: World,
) -> None:
    missing = order(1, T0)
    older = order(2, T0 + minutes(1))
    other_status = order(3, T0 + minutes(2), status_id=12)
    current = order(4, T0 + minutes(3))
    closed_both = order(5, T0 + minutes(4), status_id=5)
    closed_here_open_there = order(6, T0 + minutes(5), status_id=11)
    incomplete = order(7, T0 + minutes(6), status_id=0)
    world.storefront.put(
        missing, older, other_status, current, closed_both, closed_here_open_there, incomplete
    )
    world.ledger.record(older, bc_date_modified=T0 - minutes(30))
    world.ledger.record(other_status, bc_status_id=11)
    world.ledger.record(current)
    world.ledger.record(closed_both, statecode=2, bc_status_id=11, bc_date_modified=T0)
    world.ledger.record(closed_here_open_there, statecode=2, bc_date_modified=T0)

    metrics = await world.sweep().run()

    assert metrics.outcome == "ok", metrics.errors
    assert sorted(world.sender.order_ids()) == [1, 2, 3, 6]
    assert (metrics.orders_checked, metrics.orders_missing, metrics.orders_stale) == (6, 1, 3)
    assert metrics.orders_enqueued == 4
    assert metrics.coverage == pytest.approx(2 / 6, abs=1e-6)
    assert metrics.oldest_unsynced == T0
    for message in world.sender.sent:
        body = read_message(
            message.body,
            message_id=message.message_id,
            application_properties=message.application_properties,
        )
        assert not isinstance(body, type(None))
        assert getattr(body, "trigger", None) is Trigger.RECONCILE
        order_id = message.application_properties["order_id"]
        assert isinstance(order_id, int)
        assert message.session_id == order_session(STORE, order_id)
        modified = world.storefront.orders[order_id].date_modified
        assert message.message_id == derived_id("reconcile", STORE, order_id, modified.isoformat())
        assert message.correlation_id == "corr-1"


async def test_one_ledger_query_and_one_send_per_page(world: World) -> None:
    world.storefront.put(*(order(i, T0 + timedelta(seconds=i)) for i in range(1, 601)))
    metrics = await world.sweep().run()
    assert metrics.orders_checked == 600
    pages = len(world.storefront.order_requests)
    assert pages == metrics.pages == 3
    assert len(world.ledger.order_queries) == len(world.sender.sends) == pages
    # Each page restarts at the last date of the one before: that order comes back once and is
    # not checked twice.
    assert [len(q) for q in world.ledger.order_queries] == [250, 249, 101]
    assert [len(batch) for batch in world.sender.sends] == [250, 249, 101]
    assert sorted(world.sender.order_ids()) == list(range(1, 601))


async def test_the_first_sweep_looks_back_and_later_ones_start_at_the_watermark_less_overlap(
    world: World,
) -> None:
    world.storefront.put(order(1, T0), order(2, T0 + minutes(10)))
    await world.sweep().run()
    first_bound, _ = world.storefront.order_requests[0]
    assert first_bound == NOW - world.policy.first_lookback
    assert await world.watermark("orders") == T0 + minutes(10)

    world.storefront.order_requests.clear()
    await world.sweep().run()
    second_bound, _ = world.storefront.order_requests[0]
    assert second_bound == T0 + minutes(10) - world.policy.overlap


async def test_an_order_modified_at_the_watermark_second_is_never_skipped(world: World) -> None:
    """Even without any overlap: the boundary is inclusive (min_date_modified is `>=`)."""
    world.policy = SweepPolicy(overlap=timedelta(0))
    edge = T0 + minutes(10)
    world.storefront.put(order(1, T0), order(2, edge))
    for o in world.storefront.orders.values():
        world.ledger.record(o)
    await world.sweep().run()
    assert await world.watermark("orders") == edge

    # An order committed late with the same date_modified as the watermark.
    late = order(3, edge)
    world.storefront.put(late)
    metrics = await world.sweep().run()
    assert 3 in world.sender.order_ids()
    assert metrics.orders_missing == 1


async def test_orders_sharing_the_boundary_second_across_pages_are_all_checked(
    world: World,
) -> None:
    """Page size 3: a page ending inside a run of orders of one second, and a whole page
    within one second; every order is checked once."""
    world.policy = SweepPolicy(page_size=3)
    same = T0 + minutes(5)
    world.storefront.put(
        order(1, T0),
        order(2, T0 + minutes(1)),
        *(order(i, same) for i in range(3, 10)),
        order(10, T0 + minutes(9)),
    )
    metrics = await world.sweep().run()
    assert metrics.outcome == "ok", metrics.errors
    assert sorted(world.sender.order_ids()) == list(range(1, 11))
    assert metrics.orders_checked == 10  # de-duplicated on (id, date_modified)


async def test_an_order_modified_while_the_sweep_pages_skips_no_neighbour(world: World) -> None:
    """Our own runner sets statuses while the sweep runs: an order of page 1 moves to the end.
    With page numbers, the first order of page 2 would slide onto page 1 and be skipped."""
    world.policy = SweepPolicy(page_size=3)
    world.storefront.put(*(order(i, T0 + minutes(i)) for i in range(1, 8)))

    def modify(page_number: int) -> None:
        if page_number == 1 and world.storefront.orders[2].date_modified < NOW:
            world.storefront.put(order(2, NOW - minutes(1), status_id=12))

    world.storefront.after_page = modify
    metrics = await world.sweep().run()
    assert set(world.sender.order_ids()) == set(range(1, 8))
    assert world.sender.order_ids().count(2) == 2  # its old state and its new one
    assert metrics.orders_checked == 8


async def test_the_watermark_moves_only_after_the_send(world: World) -> None:
    world.storefront.put(order(1, T0), order(2, T0 + minutes(1)))
    world.sender.fail_on = {1}
    metrics = await world.sweep().run()
    assert metrics.outcome == "failed"
    assert any("orders: SendError" in e for e in metrics.errors)
    assert await world.watermark("orders") is None


async def test_a_crash_on_page_two_leaves_the_watermark_at_page_one_and_the_rerun_catches_up(
    world: World,
) -> None:
    world.policy = SweepPolicy(page_size=2, overlap=timedelta(0))
    world.storefront.put(*(order(i, T0 + minutes(i)) for i in range(1, 6)))
    world.sender.fail_on = {2}
    metrics = await world.sweep().run()
    assert metrics.outcome == "failed"
    assert world.sender.order_ids() == [1, 2]
    assert await world.watermark("orders") == T0 + minutes(2)

    world.sender.fail_on = set()
    rerun = await world.sweep().run()
    assert rerun.outcome == "ok", rerun.errors
    # It starts at the watermark: order 2 (at the watermark) again, then what page 2 held.
    assert world.sender.order_ids()[2:] == [2, 3, 4, 5]
    kept = sorted(str(m.application_properties["order_id"]) for m in world.sender.kept.values())
    assert kept == ["1", "2", "3", "4", "5"]  # order 2's repeat was dropped by the broker
    assert await world.watermark("orders") == T0 + minutes(5)


async def test_a_double_run_enqueues_each_order_state_once(world: World) -> None:
    world.storefront.put(*(order(i, T0 + minutes(i)) for i in range(1, 4)))
    await world.sweep().run()
    other = World(storefront=world.storefront, ledger=world.ledger, sender=world.sender)
    await other.sweep().run()  # another instance, another state store: no lease, no watermark
    assert len(world.sender.sent) == 6
    assert len(world.sender.kept) == 3  # the broker drops the repeated ids


# -- refunds --------------------------------------------------------------------------------------


async def test_refunds_dataverse_lacks_enqueue_their_order(world: World) -> None:
    world.storefront.refunds = [
        refund(11, 1, T0),
        refund(12, 2, T0 + minutes(1)),
        refund(13, 2, T0 + minutes(2)),
    ]
    world.ledger.refund_ids = {12}
    metrics = await world.sweep().run()
    assert (metrics.refunds_checked, metrics.refunds_missing, metrics.refunds_enqueued) == (3, 2, 2)
    ids = {m.message_id for m in world.sender.sent}
    assert ids == {
        refund_message_id(STORE, world.storefront.refunds[0]),
        refund_message_id(STORE, world.storefront.refunds[2]),
    }
    assert refund_message_id(STORE, world.storefront.refunds[0]) == derived_id(
        "reconcile", STORE, "refund", 11
    )
    assert sorted(world.sender.order_ids()) == [1, 2]
    assert world.ledger.refund_queries == [[11, 12, 13]]
    assert await world.watermark("refunds") == T0 + minutes(2)

    await world.sweep().run()  # the overlap reads them again: same ids, dropped
    assert len(world.sender.kept) == 2


# -- the reverse check ----------------------------------------------------------------------------


def change(kind: ChangeKind, order_id: int, version: str, modified: datetime) -> PendingChange:
    table = "msdyn_fulfillmentorder" if kind is ChangeKind.SHIPMENT else "salesorder"
    return PendingChange(kind, table, f"row-{order_id}-{kind}", version, order_id, modified)


async def test_the_reverse_check_enqueues_dataverse_changes_after_the_grace_period(
    world: World,
) -> None:
    shipped = change(ChangeKind.SHIPMENT, 40, "1001", NOW - minutes(10))
    cancelled = change(ChangeKind.CANCELLATION, 41, "2002", NOW - minutes(30))
    in_flight = change(ChangeKind.SHIPMENT, 42, "3003", NOW - minutes(1))
    world.ledger.changes = [shipped, cancelled, in_flight]
    metrics = await world.sweep().run()

    assert world.ledger.change_windows == [(NOW - world.policy.first_lookback, NOW - minutes(2))]
    assert (metrics.reverse_found, metrics.reverse_enqueued) == (2, 2)
    assert {m.message_id for m in world.sender.sent} == {
        change_message_id(STORE, shipped),
        change_message_id(STORE, cancelled),
    }
    assert change_message_id(STORE, shipped) == derived_id(
        "reconcile", STORE, "msdyn_fulfillmentorder", shipped.row_id, "1001"
    )
    assert sorted(world.sender.order_ids()) == [40, 41]
    assert await world.watermark("reverse") == NOW - minutes(2)
    assert metrics.oldest_unsynced == NOW - minutes(30)

    # Five minutes later: the window starts at the watermark less the overlap, so the change
    # that was in flight is taken now, and the two older ones are not read again.
    world.clock.now = NOW + minutes(5)
    again = await world.sweep().run()
    assert world.ledger.change_windows[-1] == (
        NOW - minutes(2) - world.policy.overlap,
        NOW + minutes(3),
    )
    assert (again.reverse_found, again.reverse_enqueued) == (1, 1)
    assert world.sender.sent[-1].message_id == change_message_id(STORE, in_flight)

    # A third sweep whose window still holds that change sends its id again: dropped.
    world.clock.now = NOW + minutes(6)
    await world.sweep().run()
    assert len(world.sender.sent) == 4
    assert len(world.sender.kept) == 3


async def test_the_reverse_check_skips_orders_the_sweep_already_enqueued(world: World) -> None:
    world.storefront.put(order(40, T0))
    world.ledger.changes = [change(ChangeKind.SHIPMENT, 40, "7", NOW - minutes(10))]
    metrics = await world.sweep().run()
    assert (metrics.reverse_found, metrics.reverse_enqueued) == (1, 0)
    assert world.sender.order_ids() == [40]


# -- the handler: leases, concurrency, metrics, hooks ---------------------------------------------


async def test_two_sweeps_at_once_on_one_store_the_second_skips(tmp_path: Path) -> None:
    state = SqliteStateStore(tmp_path / "state.sqlite3")
    world = World(state=state)
    world.storefront.put(*(order(i, T0 + minutes(i)) for i in range(1, 4)))
    world.storefront.gate = asyncio.Event()
    first = asyncio.create_task(world.reconciler().run_store(STORE))
    await asyncio.wait_for(world.storefront.waiting.wait(), 5)  # holding the lease, listing
    assert await state.get(LEASES_PARTITION, LEASE_PREFIX + STORE) is not None
    second = await world.reconciler().run_store(STORE)
    world.storefront.gate.set()
    done = await first
    await state.close()

    assert second.status == "skipped"
    assert "holds the lease" in second.reason
    assert done.status == "swept"
    assert sorted(world.sender.order_ids()) == [1, 2, 3]  # enqueued once, by the first


async def test_the_lease_is_released_after_the_sweep_and_renewed_between_pages(
    world: World,
) -> None:
    world.policy = SweepPolicy(page_size=2)
    world.storefront.put(*(order(i, T0 + minutes(i)) for i in range(1, 6)))
    expiries: list[str] = []

    state = world.state
    assert isinstance(state, MemoryState)

    def watch(page_number: int) -> None:
        lease = state.entities.get((LEASES_PARTITION, LEASE_PREFIX + STORE))
        expiries.append("free" if lease is None else str(lease.value["expires_at"]))
        world.clock.now += timedelta(seconds=30)

    world.storefront.after_page = watch
    outcome = await world.reconciler().run_store(STORE)
    assert outcome.status == "swept"
    # Held on every page, and pushed out by each renewal (the clock moved 30 s per page).
    assert len(expiries) == len(world.storefront.order_requests) == 5
    assert "free" not in expiries
    assert expiries == sorted(set(expiries))
    assert await world.state.get(LEASES_PARTITION, LEASE_PREFIX + STORE) is None


async def test_a_lost_lease_stops_the_sweep_where_it_was(world: World) -> None:
    world.policy = SweepPolicy(page_size=2)
    world.storefront.put(*(order(i, T0 + minutes(i)) for i in range(1, 6)))
    state = world.state
    assert isinstance(state, MemoryState)

    def take_over(page_number: int) -> None:
        key = (LEASES_PARTITION, LEASE_PREFIX + STORE)
        held = state.entities[key]
        state.entities[key] = Entity(held.partition, held.key, {"owner": "other"}, "other-etag")

    world.storefront.after_page = take_over
    outcome = await world.reconciler().run_store(STORE)
    assert outcome.status == "lease_lost"
    assert outcome.failed
    assert world.sender.order_ids() == [1, 2]
    assert await world.watermark("orders") == T0 + minutes(2)
    # The other owner's lease is left alone.
    assert state.entities[(LEASES_PARTITION, LEASE_PREFIX + STORE)].value == {"owner": "other"}


async def test_a_sweep_with_a_renew_that_fails_ends_as_lease_lost(world: World) -> None:
    world.policy = SweepPolicy(page_size=1)
    world.storefront.put(order(1, T0), order(2, T0 + minutes(1)))

    async def lost() -> None:
        raise LeaseLostError("taken over")

    metrics = await world.sweep(renew=lost).run()
    assert metrics.outcome == "lease_lost"
    assert world.sender.order_ids() == [1]


async def test_a_rewind_of_the_watermark_during_the_sweep_wins(world: World) -> None:
    """The webhook health check sets `<store>.orders` back after repairing a hook; a sweep
    running meanwhile must not move it forward again over the rewind."""
    world.policy = SweepPolicy(page_size=1)
    world.storefront.put(order(1, T0 + minutes(30)), order(2, T0 + minutes(31)))
    marks = Watermarks(world.state, STORE)
    await marks.advance("orders", T0 + minutes(20), now=NOW)
    rewound = T0 - minutes(60)

    def rewind(page_number: int) -> None:
        state = world.state
        assert isinstance(state, MemoryState)
        key = (PARTITION, watermark_key(STORE, "orders"))
        entity = state.entities[key]
        state.entities[key] = Entity(
            entity.partition, entity.key, {"watermark": rewound.isoformat()}, "rewound"
        )

    world.storefront.after_page = rewind
    metrics = await world.sweep().run()
    assert metrics.outcome == "ok", metrics.errors
    assert await world.watermark("orders") == rewound


async def test_a_watermark_created_by_someone_else_during_the_first_sweep_stands(
    world: World,
) -> None:
    """The webhook check may create `<store>.orders` (earlier than the lookback) while a store's
    first sweep runs: the sweep's create then conflicts, and the other writer's value stands."""
    marks = Watermarks(world.state, STORE)
    assert await marks.load("orders") is None
    theirs = NOW - timedelta(days=5)
    await world.state.create(
        PARTITION, watermark_key(STORE, "orders"), {"watermark": theirs.isoformat()}
    )
    assert await marks.advance("orders", T0, now=NOW) == theirs
    assert await marks.advance("orders", T0 + minutes(1), now=NOW) == theirs  # still gives way
    assert await world.watermark("orders") == theirs

    fresh = Watermarks(world.state, STORE)  # the next sweep moves it on
    assert await fresh.advance("orders", T0, now=NOW) == T0
    assert await fresh.advance("orders", T0 - minutes(1), now=NOW) == T0  # never backwards


async def test_metrics_are_logged_once_with_custom_metrics_and_stored(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.storefront.put(order(1, T0), order(2, T0 + minutes(1)), order(3, T0 + minutes(2)))
    world.ledger.record(world.storefront.orders[2])
    world.ledger.record(world.storefront.orders[3], bc_status_id=12)
    world.storefront.refunds = [refund(9, 2, T0)]

    def tick(page_number: int) -> None:
        world.clock.now += timedelta(seconds=4)

    world.storefront.after_page = tick
    caplog.set_level(logging.INFO, logger="connector.reconcile")
    outcome = await world.reconciler().run_store(STORE)
    assert outcome.metrics is not None

    events = [r for r in caplog.records if getattr(r, "metric", None) == METRIC_EVENT]
    assert len(events) == 1
    line = json.loads(JsonFormatter().format(events[0]))
    assert line["store_hash"] == STORE
    assert line["orders_checked"] == 3
    assert line["orders_missing"] == 1
    assert line["orders_stale"] == 1
    assert line["refunds_missing"] == 1
    assert line["enqueued"] == 3
    assert line["coverage"] == pytest.approx(1 / 3, abs=1e-6)
    assert line["oldest_unsynced_seconds"] == (NOW + timedelta(seconds=4) - T0).total_seconds()
    assert line["duration_seconds"] == 4.0
    assert line["outcome"] == "ok"

    custom = {
        str(getattr(r, "customMetric")): (getattr(r, "value"), getattr(r, "store"))  # noqa: B009
        for r in caplog.records
        if hasattr(r, "customMetric")
    }
    assert set(custom) == {f"reconcile.{name}" for name in CUSTOM_METRICS}
    assert custom["reconcile.coverage"] == (pytest.approx(1 / 3, abs=1e-6), STORE)
    assert custom["reconcile.orders_missing"] == (1, STORE)
    assert custom["reconcile.enqueued"] == (3, STORE)

    stored = await last_result(world.state, STORE)
    assert stored is not None
    assert stored["orders_missing"] == 1
    assert stored["coverage"] == pytest.approx(1 / 3, abs=1e-6)
    assert (await world.state.get(SWEEPS_PARTITION, STORE)) is not None


def test_coverage_and_ages_of_an_empty_sweep() -> None:
    metrics = SweepMetrics(STORE, started_at=NOW, finished_at=NOW + timedelta(seconds=2))
    assert metrics.coverage == 1.0
    assert metrics.oldest_unsynced_seconds == 0.0
    assert metrics.duration_seconds == 2.0
    assert metrics.to_json()["enqueued"] == 0


async def test_the_webhook_check_runs_after_each_sweep_and_its_failure_is_reported(
    world: World,
) -> None:
    checked: list[str] = []

    @dataclass
    class Report:
        healthy: bool

        def to_json(self) -> dict[str, object]:
            return {"healthy": self.healthy}

    async def hooks(store_hash: str) -> object:
        assert await world.state.get(SWEEPS_PARTITION, store_hash) is not None  # after the sweep
        checked.append(store_hash)
        return Report(healthy=True)

    report = await world.reconciler(hooks=hooks).run_all()
    assert checked == [STORE]
    assert report.to_json()["stores"][0]["hooks"] == {"healthy": True}

    async def broken(store_hash: str) -> object:
        raise RuntimeError("hooks API down")

    with pytest.raises(ReconcileError) as raised:
        await world.reconciler(hooks=broken).run_all()
    (outcome,) = raised.value.report.stores
    assert outcome.status == "swept"
    assert outcome.hooks_error == "RuntimeError: hooks API down"


async def test_run_all_tries_every_store_and_raises_with_the_report(world: World) -> None:
    reconciler = world.reconciler()
    with pytest.raises(ReconcileError) as raised:
        await reconciler.run_all([STORE, "nosuchstore"])
    statuses = {s.store_hash: s.status for s in raised.value.report.stores}
    assert statuses == {STORE: "swept", "nosuchstore": "failed"}
    assert "nosuchstore" in str(raised.value)


async def test_a_failing_part_does_not_stop_the_others(world: World) -> None:
    world.storefront.put(order(1, T0))
    world.ledger.changes = [change(ChangeKind.SHIPMENT, 40, "1", NOW - minutes(10))]

    async def broken(*args: Any, **kwargs: Any) -> set[int]:
        raise RuntimeError("refunds query refused")

    world.storefront.refunds = [refund(5, 1, T0)]
    world.ledger.refunds = broken  # type: ignore[method-assign]
    metrics = await world.sweep().run()
    assert metrics.outcome == "failed"
    assert metrics.errors == ["refunds: RuntimeError: refunds query refused"]
    assert sorted(world.sender.order_ids()) == [1, 40]
    outcome = StoreOutcome(STORE, "failed", metrics, reason="; ".join(metrics.errors))
    assert outcome.to_json()["metrics"]["orders_enqueued"] == 1


async def test_orders_created_before_go_live_are_skipped_unless_dataverse_holds_them(
    world: World,
) -> None:
    go_live = T0 - minutes(60)
    before = make_order(1, 11, date_modified=T0, date_created=(go_live - minutes(1)).isoformat())
    before_but_ours = make_order(
        2, 11, date_modified=T0 + minutes(1), date_created=(go_live - minutes(1)).isoformat()
    )
    after = make_order(3, 11, date_modified=T0 + minutes(2), date_created=go_live.isoformat())
    world.storefront.put(before, before_but_ours, after)
    world.ledger.record(before_but_ours, bc_date_modified=T0 - minutes(30))
    world.policy = SweepPolicy(go_live={STORE: go_live})

    metrics = await world.sweep().run()

    assert metrics.outcome == "ok", metrics.errors
    assert sorted(world.sender.order_ids()) == [2, 3]
    assert (metrics.orders_checked, metrics.orders_skipped) == (2, 1)
    assert metrics.coverage == 0.0
