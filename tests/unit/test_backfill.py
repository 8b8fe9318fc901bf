"""The backfill (shared/reconciliation/backfill.py) and its CLI argument parsing (cli/backfill.py)
with fakes: a storefront listing orders by id (min_id/max_id honoured, filters recorded), a
ledger of recorded salesorders, a sender that can fail on its n-th send, the SQLite state store.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli.backfill import parse_range
from local.state import SqliteStateStore
from shared.bigcommerce.client import OrderFilter, OrderSortField
from shared.bigcommerce.models import Order, OrdersCount
from shared.messaging.message import OutboundMessage
from shared.messaging.ports import SendError
from shared.orchestration.messages import derived_id
from shared.reconciliation.backfill import (
    PARTITION,
    BackfillRange,
    BackfillResult,
    bar,
    eta,
    run_backfill,
)
from shared.reconciliation.ports import RecordedOrder
from shared.reconciliation.sweep import SweepPolicy
from tests.unit.lifecycle_fakes import make_order

NOW = datetime(2024, 6, 1, tzinfo=UTC)
STORE = "abc123"


class Storefront:
    def __init__(self, orders: Sequence[Order]) -> None:
        self.orders = sorted(orders, key=lambda o: o.id)
        self.filters: list[OrderFilter] = []
        self.counts: list[OrderFilter] = []

    def _match(self, f: OrderFilter) -> list[Order]:
        return [
            o
            for o in self.orders
            if (f.min_id is None or o.id >= f.min_id) and (f.max_id is None or o.id <= f.max_id)
        ]

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
        assert sort == "id"
        assert not descending
        f = filters or OrderFilter()
        self.filters.append(f)
        rows = self._match(f)
        for start in range((first_page - 1) * limit, len(rows), limit):
            yield rows[start : start + limit]

    async def count_orders(self, filters: OrderFilter | None = None) -> OrdersCount:
        f = filters or OrderFilter()
        self.counts.append(f)
        return OrdersCount(count=len(self._match(f)))


class Ledger:
    def __init__(self, recorded: Mapping[int, RecordedOrder]) -> None:
        self.recorded = dict(recorded)

    async def orders(self, store_hash: str, order_ids: Collection[int]) -> dict[int, RecordedOrder]:
        return {i: self.recorded[i] for i in order_ids if i in self.recorded}

    async def refunds(self, store_hash: str, refund_ids: Collection[int]) -> set[int]:
        return set()

    async def pending_changes(self, store_hash: str, **_: datetime) -> list[object]:
        return []


class Sender:
    def __init__(self, fail_on: int | None = None) -> None:
        self.sent: list[OutboundMessage] = []
        self.calls = 0
        self.fail_on = fail_on

    async def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        self.calls += 1
        if self.calls == self.fail_on:
            raise SendError("broker unavailable")
        self.sent.extend(messages)

    async def close(self) -> None:
        return None

    def ids(self) -> list[object]:
        return [m.application_properties["order_id"] for m in self.sent]


MODIFIED = NOW - timedelta(days=1)


def orders() -> list[Order]:
    return [make_order(i, 11, date_modified=MODIFIED) for i in range(1, 8)]


def current(order_id: int) -> RecordedOrder:
    return RecordedOrder(order_id, 11, MODIFIED)


@pytest.fixture
async def state(tmp_path: Path) -> AsyncIterator[SqliteStateStore]:
    store = SqliteStateStore(tmp_path / "state.sqlite3")
    yield store
    await store.close()


async def run(
    storefront: Storefront,
    ledger: Ledger,
    sender: Sender,
    state: SqliteStateStore,
    span: BackfillRange | None = None,
    *,
    dry_run: bool = False,
    restart: bool = False,
) -> BackfillResult:
    lines: list[str] = []
    result = await run_backfill(
        STORE,
        span or BackfillRange(min_id=1, max_id=100),
        storefront=storefront,
        ledger=ledger,  # type: ignore[arg-type]
        sender=sender,
        state=state,
        clock=lambda: NOW,
        correlation_id="c1",
        page_size=2,
        progress=lines.append,
        dry_run=dry_run,
        restart=restart,
    )
    assert len(lines) == result.pages
    return result


async def test_enqueues_only_missing_and_stale(state: SqliteStateStore) -> None:
    stale = RecordedOrder(3, 11, MODIFIED - timedelta(hours=1))
    other_status = RecordedOrder(4, 10, MODIFIED)
    ledger = Ledger({1: current(1), 2: current(2), 3: stale, 4: other_status, 6: current(6)})
    sender = Sender()
    await run(Storefront(orders()), ledger, sender, state)
    assert sender.ids() == [3, 4, 5, 7]
    first = sender.sent[0]
    assert first.message_id == derived_id("backfill", STORE, 3, MODIFIED.isoformat())
    assert first.application_properties["trigger"] == "reconcile"
    saved = await state.get(PARTITION, BackfillRange(min_id=1, max_id=100).key(STORE))
    assert saved is not None
    assert saved.value["last_id"] == 7
    assert saved.value["enqueued"] == 4
    assert saved.value["checked"] == 7


async def test_dry_run_sends_nothing_and_writes_no_checkpoint(state: SqliteStateStore) -> None:
    sender = Sender()
    result = await run(Storefront(orders()), Ledger({}), sender, state, dry_run=True)
    assert sender.calls == 0
    assert await state.list(PARTITION) == []
    assert [p.order_id for p in result.planned] == [1, 2, 3, 4, 5, 6, 7]


async def test_interrupted_run_resumes_from_the_checkpoint(state: SqliteStateStore) -> None:
    storefront = Storefront(orders())
    failing = Sender(fail_on=2)
    with pytest.raises(SendError):
        await run(storefront, Ledger({}), failing, state)
    assert failing.ids() == [1, 2]
    again = Sender()
    result = await run(storefront, Ledger({}), again, state)
    assert again.ids() == [3, 4, 5, 6, 7]
    assert result.resumed
    assert result.enqueued == 7
    assert result.checked == 7
    assert storefront.filters[-1].min_id == 7  # the walk continued after the checkpoint

    restarted = Sender()
    await run(storefront, Ledger({}), restarted, state, restart=True)
    assert restarted.ids() == [1, 2, 3, 4, 5, 6, 7]


async def test_filters_are_passed_through(state: SqliteStateStore) -> None:
    storefront = Storefront(orders())
    await run(storefront, Ledger({}), Sender(), state, BackfillRange(min_id=2, max_id=4))
    assert (storefront.filters[0].min_id, storefront.filters[0].max_id) == (2, 4)
    assert (storefront.counts[0].min_id, storefront.counts[0].max_id) == (2, 4)

    start, stop = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 31, tzinfo=UTC)
    storefront = Storefront(orders())
    await run(
        storefront, Ledger({}), Sender(), state, BackfillRange(created_from=start, created_to=stop)
    )
    f = storefront.filters[0]
    assert (f.min_date_created, f.max_date_created, f.min_id) == (start, stop, None)
    assert storefront.counts[0].min_date_created == start


def args(**values: object) -> argparse.Namespace:
    base: dict[str, object] = {"date_from": None, "date_to": None, "min_id": None, "max_id": None}
    return argparse.Namespace(**{**base, **values})


def test_cli_ranges() -> None:
    span = parse_range(args(date_from="2024-01-01", date_to="2024-01-31"))
    assert span.created_from == datetime(2024, 1, 1, tzinfo=UTC)
    assert span.created_to is not None
    assert span.created_to.date().day == 31
    assert parse_range(args(min_id=1, max_id=9)) == BackfillRange(min_id=1, max_id=9)
    for bad in (args(), args(min_id=1), args(min_id=1, max_id=2, date_from="2024-01-01")):
        with pytest.raises(ValueError, match="--"):
            parse_range(bad)
    assert eta(timedelta(seconds=10), 5, 5) == timedelta(seconds=10)


@pytest.mark.parametrize(
    ("done", "total", "shown"),
    [
        (0, 10, "[--------------------]   0%"),
        (5, 10, "[##########----------]  50%"),
        (10, 10, "[####################] 100%"),
        (12, 10, "[####################] 100%"),
        (0, 0, "[####################] 100%"),
    ],
)
def test_the_progress_bar_shows_the_share_of_the_range_read(
    done: int, total: int, shown: str
) -> None:
    assert bar(done, total) == shown


async def test_orders_created_before_go_live_and_not_in_dataverse_are_left_out(
    state: SqliteStateStore,
) -> None:
    go_live = MODIFIED
    early = (go_live - timedelta(days=1)).isoformat()
    store_orders = [
        make_order(1, 11, date_modified=MODIFIED, date_created=early),
        make_order(2, 11, date_modified=MODIFIED, date_created=early),
        make_order(3, 11, date_modified=MODIFIED, date_created=go_live.isoformat()),
    ]
    ledger = Ledger({2: RecordedOrder(2, 11, MODIFIED - timedelta(hours=1))})
    sender = Sender()
    result = await run_backfill(
        STORE,
        BackfillRange(min_id=1, max_id=100),
        storefront=Storefront(store_orders),
        ledger=ledger,  # type: ignore[arg-type]
        sender=sender,
        state=state,
        clock=lambda: NOW,
        correlation_id="c1",
        policy=SweepPolicy(go_live={STORE: go_live}),
    )
    assert sender.ids() == [2, 3]
    assert (result.checked, result.enqueued) == (3, 2)
