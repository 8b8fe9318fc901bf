"""Coalesced order reads: concurrent `get_order_bundle` calls served by one `GET /v2/orders`.

The lifecycle reads one order per session, and many sessions run at once. Each call waits for
its own bundle, so a session's steps, its ordering and its idempotency checks are unchanged;
only how the bundles are fetched changes, by load:

* Idle: a call that finds nothing else waiting and the pace free is served at once by the plain
  per-order read (`BigCommerceClient.get_order_bundle`), with no added wait.
* Busy: calls that wait together are served by one list request with the same include
  (`include=consignments.line_items&consignment_structure=object`, orders.v2.oas2.yml
  `order_includes`, documented for the list as for the single GET), up to 250 orders per
  request (the documented page maximum). New orders have neighbouring ids, so the list asks an
  id range (`min_id`/`max_id`) no wider than the page, which therefore holds every order of the
  range; ids with no neighbours (updates of older orders) are asked by a `min_date_modified`
  window, most recently modified first. An order a list does not return (archived, Incomplete
  status 0, which listings leave out, or modified before the window) is read on its own later.
  The bundle is built from the listed order exactly as from the single GET (`embedded_bundle`),
  reading products and shipping addresses separately only when the embedded ones are incomplete.
* Pace: coalesced reads take at most `read_share` of the connector's share of the store's quota
  (the rate budget's cap per window, as the store reports it), through a token bucket with a
  small burst, so that writes (statuses, shipments) always find room in the budget, and a burst
  of orders never spends the whole window at once and stalls until it resets. While the pace
  holds a read back, more calls gather, so lists grow with the load.

A read always starts after the call it serves was made: a call never joins a request already
sent. Failures of a list are every waiting caller's failure, as their own GETs would have been.
State lives per event loop (the worker's loop; a CLI's or a test's second loop gets its own).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from shared.bigcommerce.client import (
    MAX_PAGE_SIZE,
    ONE_CALL_INCLUDE,
    BigCommerceClient,
    OrderBundle,
    OrderFilter,
    embedded_bundle,
)
from shared.bigcommerce.models import Order, Refund, Shipment
from shared.bigcommerce.registry import BigCommerceClients
from shared.bigcommerce.requests import ShipmentCreate

log = logging.getLogger("connector.bigcommerce")

Clock = Callable[[], float]
WallClock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]

_MIN_SLEEP: Final = 0.001


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ListPolicy:
    """`max_orders` per list request (at most the page maximum, 250); `read_share` of the
    connector's quota share that coalesced reads may use, refilled evenly over the window, with
    `burst` reads in hand; `lookback` before the oldest waiting call for a date window."""

    max_orders: int = MAX_PAGE_SIZE
    read_share: float = 0.5
    burst: int = 4
    max_in_flight: int = 4
    lookback: timedelta = timedelta(minutes=5)

    def __post_init__(self) -> None:
        if not 2 <= self.max_orders <= MAX_PAGE_SIZE:
            raise ValueError(f"max_orders must be between 2 and {MAX_PAGE_SIZE}")
        if not 0 < self.read_share <= 1:
            raise ValueError("read_share must be in (0, 1]")
        if self.burst < 1 or self.max_in_flight < 1:
            raise ValueError("burst and max_in_flight must be at least 1")


@dataclass(slots=True)
class CoalescingStats:
    calls: int = 0
    single_reads: int = 0  # plain per-order reads (idle, or not returned by a list)
    list_reads: int = 0
    listed: int = 0  # calls served by a list
    completed: int = 0  # listed orders whose sub-resources had to be read on their own
    paced_seconds: float = 0.0


@dataclass(slots=True)
class _Waiting:
    futures: list[asyncio.Future[OrderBundle]]
    since: datetime  # wall clock: the date window starts before the oldest call
    alone: bool = False  # a list did not return it: read it on its own


@dataclass(slots=True)
class _LoopState:
    loop: asyncio.AbstractEventLoop
    waiting: dict[int, _Waiting] = field(default_factory=dict)  # by arrival
    in_flight: int = 0
    tokens: float = 0.0
    refilled_at: float = -math.inf
    dispatcher: asyncio.Task[None] | None = None
    flights: set[asyncio.Task[None]] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True, slots=True)
class _Fetch:
    ids: tuple[int, ...]
    filters: OrderFilter | None = None  # None: one plain per-order read of ids[0]
    by_date: bool = False


def id_window(ids: list[int], oldest: int, span: int) -> list[int]:
    """The ids (sorted ascending) in the range of `span` consecutive ids that holds `oldest`
    and as many others as possible; such a range holds at most `span` orders."""
    best: list[int] = [oldest]
    start = bisect.bisect_left(ids, oldest - span + 1)
    stop = bisect.bisect_right(ids, oldest)
    for low in ids[start:stop]:
        inside = ids[bisect.bisect_left(ids, low) : bisect.bisect_right(ids, low + span - 1)]
        if len(inside) > len(best):
            best = inside
    return best


class CoalescingStorefront:
    """A store's `Storefront` (shared/orchestration/ports.py) whose order reads are coalesced;
    every other call goes straight to the client."""

    def __init__(
        self,
        client: BigCommerceClient,
        policy: ListPolicy | None = None,
        *,
        clock: Clock = time.monotonic,
        now: WallClock = _utc_now,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.client = client
        self.policy = policy or ListPolicy()
        self.stats = CoalescingStats()
        self._clock = clock
        self._now = now
        self._sleep = sleep
        self._state: _LoopState | None = None

    def __repr__(self) -> str:
        return f"CoalescingStorefront({self.client!r})"

    # -- the Storefront port --------------------------------------------------------------------

    async def get_order_bundle(self, order_id: int) -> OrderBundle:
        state = self._loop_state()
        future: asyncio.Future[OrderBundle] = state.loop.create_future()
        entry = state.waiting.get(order_id)
        if entry is None:
            state.waiting[order_id] = _Waiting([future], self._now())
        else:
            entry.futures.append(future)
        self.stats.calls += 1
        if state.dispatcher is None or state.dispatcher.done():
            state.dispatcher = state.loop.create_task(self._dispatch(state))
        state.changed.set()
        return await future

    async def update_order_status(self, order_id: int, status_id: int) -> Order:
        return await self.client.update_order_status(order_id, status_id)

    async def list_shipments(self, order_id: int) -> list[Shipment]:
        return await self.client.list_shipments(order_id)

    async def create_shipment(self, order_id: int, shipment: ShipmentCreate) -> Shipment:
        return await self.client.create_shipment(order_id, shipment)

    async def delete_shipment(self, order_id: int, shipment_id: int) -> None:
        await self.client.delete_shipment(order_id, shipment_id)

    async def list_order_refunds(self, order_id: int) -> list[Refund]:
        return await self.client.list_order_refunds(order_id)

    # -- dispatching ----------------------------------------------------------------------------

    def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        if self._state is None or self._state.loop is not loop:
            self._state = _LoopState(loop, tokens=float(self.policy.burst))
        return self._state

    async def _dispatch(self, state: _LoopState) -> None:
        try:
            await self._dispatch_waiting(state)
        except Exception as exc:  # never leave a caller waiting for a read nobody will make
            log.exception("coalesced order reads failed")
            waiting, state.waiting = state.waiting, {}
            for entry in waiting.values():
                _fail(entry, exc)

    async def _dispatch_waiting(self, state: _LoopState) -> None:
        while state.waiting:
            if state.in_flight >= self.policy.max_in_flight:
                state.changed.clear()
                await state.changed.wait()
                continue
            delay = self._take_token(state)
            if delay > 0:
                self.stats.paced_seconds += delay
                await self._sleep(max(delay, _MIN_SLEEP))
                continue
            fetch = self._plan(state)
            taken = {i: state.waiting.pop(i) for i in fetch.ids}
            state.in_flight += 1
            task = state.loop.create_task(self._fly(state, fetch, taken))
            state.flights.add(task)
            task.add_done_callback(state.flights.discard)

    def _rate(self) -> float:
        """Coalesced reads per second: `read_share` of our cap per window."""
        snapshot = self.client.session.budget.snapshot()
        return snapshot.cap * self.policy.read_share / snapshot.window_seconds

    def _take_token(self, state: _LoopState) -> float:
        """Takes a read from the bucket, or says how long until one is there."""
        now = self._clock()
        rate = self._rate()
        if state.refilled_at > -math.inf:
            state.tokens = min(
                float(self.policy.burst), state.tokens + (now - state.refilled_at) * rate
            )
        state.refilled_at = now
        if state.tokens >= 1:
            state.tokens -= 1
            return 0.0
        return (1 - state.tokens) / rate

    def _plan(self, state: _LoopState) -> _Fetch:
        waiting = state.waiting
        oldest = next(iter(waiting))
        if len(waiting) == 1 or waiting[oldest].alone:
            return _Fetch((oldest,))
        listable = sorted(i for i, w in waiting.items() if not w.alone)
        chosen = id_window(listable, oldest, self.policy.max_orders)
        if len(chosen) >= 2:
            return _Fetch(tuple(chosen), OrderFilter(min_id=chosen[0], max_id=chosen[-1]))
        since = min(waiting[i].since for i in listable) - self.policy.lookback
        by_arrival = [i for i, w in waiting.items() if not w.alone][: self.policy.max_orders]
        return _Fetch(tuple(by_arrival), OrderFilter(min_date_modified=since), by_date=True)

    async def _fly(self, state: _LoopState, fetch: _Fetch, taken: dict[int, _Waiting]) -> None:
        try:
            if fetch.filters is None:
                await self._read_alone(taken)
            else:
                await self._read_listed(state, fetch, taken)
        except Exception as exc:  # a bug here must not leave callers waiting
            log.exception("a coalesced order read failed")
            for entry in taken.values():
                _fail(entry, exc)
        finally:
            state.in_flight -= 1
            state.changed.set()

    async def _read_alone(self, taken: dict[int, _Waiting]) -> None:
        for order_id, entry in taken.items():
            self.stats.single_reads += 1
            try:
                bundle = await self.client.get_order_bundle(order_id)
            except Exception as exc:
                _fail(entry, exc)
            else:
                _resolve(entry, bundle)

    async def _read_listed(
        self, state: _LoopState, fetch: _Fetch, taken: dict[int, _Waiting]
    ) -> None:
        assert fetch.filters is not None
        self.stats.list_reads += 1
        try:
            orders = await self._first_page(fetch)
        except Exception as exc:
            for entry in taken.values():
                _fail(entry, exc)
            return
        listed = {o.id: o for o in orders}
        for order_id, entry in taken.items():
            order = listed.get(order_id)
            if order is None:
                self._again_alone(state, order_id, entry)
                continue
            self.stats.listed += len(entry.futures)
            try:
                bundle = embedded_bundle(order)
                if bundle is None:
                    self.stats.completed += 1
                    bundle = await self.client.complete_bundle(order)
            except Exception as exc:
                _fail(entry, exc)
                continue
            _resolve(entry, bundle)

    async def _first_page(self, fetch: _Fetch) -> list[Order]:
        return await self.client.list_orders_page(
            fetch.filters,
            sort="date_modified" if fetch.by_date else "id",
            descending=fetch.by_date,
            limit=self.policy.max_orders,
            include=(ONE_CALL_INCLUDE,),
        )

    def _again_alone(self, state: _LoopState, order_id: int, entry: _Waiting) -> None:
        """Back in line, to be read on its own; calls for it made since join it (the read
        comes after all of them)."""
        newer = state.waiting.pop(order_id, None)
        if newer is not None:
            entry.futures.extend(newer.futures)
        entry.alone = True
        state.waiting = {order_id: entry, **state.waiting}
        if state.dispatcher is None or state.dispatcher.done():
            state.dispatcher = state.loop.create_task(self._dispatch(state))


def _resolve(entry: _Waiting, bundle: OrderBundle) -> None:
    for future in entry.futures:
        if not future.done():
            future.set_result(bundle)


def _fail(entry: _Waiting, exc: Exception) -> None:
    for future in entry.futures:
        if not future.done():
            future.set_exception(exc)


class CoalescingStorefronts:
    """`Storefronts` over the process's clients: one coalescing storefront per store."""

    def __init__(self, clients: BigCommerceClients, policy: ListPolicy | None = None) -> None:
        self.clients = clients
        self.policy = policy or ListPolicy()
        self._stores: dict[str, CoalescingStorefront] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CoalescingStorefronts({self.clients!r})"

    def get(self, store_hash: str) -> CoalescingStorefront:
        with self._lock:
            storefront = self._stores.get(store_hash)
            if storefront is None:
                storefront = CoalescingStorefront(self.clients.get(store_hash), self.policy)
                self._stores[store_hash] = storefront
            return storefront

    def stats(self) -> dict[str, CoalescingStats]:
        with self._lock:
            return {h: s.stats for h, s in self._stores.items()}
