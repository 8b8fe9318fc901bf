"""Coalesced `$batch` requests (shared/dataverse/coalescing.py) and their sizing
(batch_sizing.py): the mechanics over a recording fake sender, then the order store's loads and
commits through the in-process Web API stand-in. No timings are asserted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest

from local.dataverse.harness import HOST, TOKEN, dataverse_standin
from shared.dataverse.auth import StaticTokenProvider
from shared.dataverse.batch import (
    BatchItem,
    BatchOperation,
    BatchResult,
    ChangeSet,
    ItemResult,
    OperationResult,
    Outcome,
    parse_batch_request,
)
from shared.dataverse.batch_sizing import LatencyModel, ProtectionLimits, ProtectionPacer
from shared.dataverse.client import DataverseClient
from shared.dataverse.coalescing import BatchCoalescer, BatchPolicy
from shared.dataverse.errors import ApiError, BadRequestError, NotFoundError, TransportError
from shared.dataverse.gate import GatePolicy, ThrottleGate
from shared.dataverse.models import ClientStats
from shared.dataverse.order_store import DataverseOrderStore
from shared.orchestration.ports import JournalEntry
from shared.orchestration.records import Lifecycle

# -- a recording sender -------------------------------------------------------------------------


def upsert(name: str, content_id: str | None = None) -> BatchOperation:
    return BatchOperation("PATCH", f"accounts(name='{name}')", {"x": 1}, content_id=content_id)


def change_set(*names: str) -> ChangeSet:
    return ChangeSet(tuple(upsert(n, str(i)) for i, n in enumerate(names, 1)))


@dataclass
class Sent:
    items: tuple[BatchItem, ...]
    continue_on_error: bool


@dataclass
class FakeSender:
    """Answers every operation 204, except change sets naming a `bad` row (400, rolled back),
    and the last `unanswered` items of a batch (never reached)."""

    gate: ThrottleGate = field(default_factory=lambda: ThrottleGate(GatePolicy(max_concurrency=1)))
    stats: ClientStats = field(default_factory=ClientStats)
    sent: list[Sent] = field(default_factory=list)
    hold: asyncio.Event | None = None
    holding: asyncio.Event = field(default_factory=asyncio.Event)
    unanswered: int = 0
    refuse: ApiError | None = None  # the next combined batch is refused as a whole
    error: Exception | None = None  # every batch fails with this

    async def execute_batch(
        self,
        items: Sequence[BatchItem],
        *,
        continue_on_error: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> BatchResult:
        self.sent.append(Sent(tuple(items), continue_on_error))
        await self.gate.acquire()
        try:
            if self.hold is not None:
                self.holding.set()
                await self.hold.wait()
                self.hold = None
            if self.error is not None:
                raise self.error
            if self.refuse is not None and len(items) > 1:
                refused, self.refuse = self.refuse, None
                raise refused
            answered = len(items) - self.unanswered if len(items) > 1 else len(items)
            return BatchResult(
                200, tuple(_answer(item, i < answered) for i, item in enumerate(items))
            )
        finally:
            self.gate.release()


def _answer(item: BatchItem, reached: bool) -> ItemResult:
    ops = item.operations if isinstance(item, ChangeSet) else (item,)
    if not reached:
        return ItemResult(item, tuple(OperationResult(op, Outcome.NOT_EXECUTED) for op in ops))
    if any("bad" in op.url for op in ops):
        error = BadRequestError("bad row", method="PATCH", path="accounts", status=400)
        results = tuple(
            OperationResult(op, Outcome.FAILED, 400, error=error)
            if "bad" in op.url
            else OperationResult(op, Outcome.ROLLED_BACK)
            for op in ops
        )
        return ItemResult(item, results, error)
    return ItemResult(item, tuple(OperationResult(op, Outcome.SUCCEEDED, 204) for op in ops))


async def busy(sender: FakeSender, coalescer: BatchCoalescer) -> asyncio.Task[object]:
    """Takes the sender's only slot with one call that waits until `sender.hold` is set."""
    sender.hold = asyncio.Event()
    first = asyncio.ensure_future(coalescer.submit([change_set("first")]))
    await sender.holding.wait()
    return first


async def settle(sender: FakeSender) -> None:
    assert sender.hold is not None
    sender.hold.set()
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_lone_call_is_sent_at_once_as_its_own_batch() -> None:
    sender = FakeSender()
    coalescer = BatchCoalescer(sender)
    item = change_set("a", "b")

    [result] = await coalescer.submit([item], continue_on_error=False)

    assert sender.sent == [Sent((item,), False)]
    assert result.ok
    assert result.item is item
    assert coalescer.stats.paced_seconds == 0


async def test_calls_waiting_for_a_slot_go_together_with_continue_on_error() -> None:
    sender = FakeSender()
    coalescer = BatchCoalescer(sender)
    first = await busy(sender, coalescer)
    items = [change_set("a1", "a2"), change_set("b1"), change_set("c1", "c2", "c3")]
    gets = [BatchOperation("GET", "accounts?$top=1"), BatchOperation("GET", "contacts?$top=1")]
    calls = [
        asyncio.ensure_future(coalescer.submit([items[0]], continue_on_error=False)),
        asyncio.ensure_future(coalescer.submit(gets)),
        asyncio.ensure_future(coalescer.submit([items[1]], continue_on_error=False)),
        asyncio.ensure_future(coalescer.submit([items[2]], continue_on_error=False)),
    ]
    await asyncio.sleep(0)
    await settle(sender)
    results = await asyncio.gather(*calls)
    await first

    assert len(sender.sent) == 2
    together = sender.sent[1]
    assert together.continue_on_error
    assert len(together.items) == 5
    ids = [op.content_id for i in together.items if isinstance(i, ChangeSet) for op in i.operations]
    assert ids == [str(n) for n in range(1, 7)]  # unique across the batch
    assert [r.item for r in results[0]] == [items[0]]  # handed back as the caller sent them
    assert [o.operation.content_id for o in results[3][0].operations] == ["1", "2", "3"]
    assert [r.item for r in results[1]] == gets
    assert coalescer.stats.combined_calls == 4


async def test_one_failing_change_set_fails_only_its_caller() -> None:
    sender = FakeSender()
    coalescer = BatchCoalescer(sender)
    first = await busy(sender, coalescer)
    calls = [
        asyncio.ensure_future(coalescer.submit([change_set(name, "ok")]))
        for name in ("good1", "bad", "good2")
    ]
    await asyncio.sleep(0)
    await settle(sender)
    results = await asyncio.gather(*calls)
    await first

    assert [r[0].ok for r in results] == [True, False, True]
    assert isinstance(results[1][0].error, BadRequestError)
    assert len(sender.sent) == 2


async def test_a_batch_refused_as_a_whole_is_sent_again_caller_by_caller() -> None:
    sender = FakeSender(refuse=BadRequestError("batch", method="POST", path="$batch", status=400))
    coalescer = BatchCoalescer(sender)
    first = await busy(sender, coalescer)
    calls = [asyncio.ensure_future(coalescer.submit([change_set(n)])) for n in ("a", "bad", "c")]
    await asyncio.sleep(0)
    await settle(sender)
    results = await asyncio.gather(*calls)
    await first

    assert [len(s.items) for s in sender.sent] == [1, 3, 1, 1, 1]
    assert [r[0].ok for r in results] == [True, False, True]
    assert coalescer.stats.sent_again == 3


async def test_a_caller_the_batch_never_reached_is_sent_again_alone() -> None:
    sender = FakeSender(unanswered=1)
    coalescer = BatchCoalescer(sender)
    first = await busy(sender, coalescer)
    calls = [asyncio.ensure_future(coalescer.submit([change_set(n)])) for n in ("a", "b")]
    await asyncio.sleep(0)
    await settle(sender)
    results = await asyncio.gather(*calls)
    await first

    assert [len(s.items) for s in sender.sent] == [1, 2, 1]
    assert all(r[0].ok for r in results)


async def test_failures_of_the_whole_request_reach_every_caller() -> None:
    sender = FakeSender()
    coalescer = BatchCoalescer(sender)
    first = await busy(sender, coalescer)
    calls = [asyncio.ensure_future(coalescer.submit([change_set(n)])) for n in ("a", "b")]
    await asyncio.sleep(0)
    sender.error = TransportError("connection reset", method="POST", path="$batch")
    await settle(sender)
    results = await asyncio.gather(*calls, return_exceptions=True)

    assert all(isinstance(r, TransportError) for r in results)
    assert isinstance((await asyncio.gather(first, return_exceptions=True))[0], TransportError)


async def test_actions_that_are_not_idempotent_are_never_combined() -> None:
    sender = FakeSender()
    coalescer = BatchCoalescer(sender)
    first = await busy(sender, coalescer)
    close = ChangeSet((BatchOperation("POST", "FulfillSalesOrder", {}, content_id="1"),))
    calls = [
        asyncio.ensure_future(coalescer.submit([change_set("a")])),
        asyncio.ensure_future(coalescer.submit([close])),
        asyncio.ensure_future(coalescer.submit([change_set("c")])),
    ]
    await asyncio.sleep(0)
    await settle(sender)
    await asyncio.gather(*calls)
    await first

    assert [len(s.items) for s in sender.sent] == [1, 1, 1, 1]
    assert sender.sent[2].items == (close,)


async def test_batches_are_sized_by_the_measured_latency() -> None:
    sender = FakeSender()
    model = LatencyModel(base_seconds=0.1, per_operation_seconds=0.5)  # ~3 ops in 2 s
    coalescer = BatchCoalescer(sender, BatchPolicy(target_seconds=2.0), model=model)
    first = await busy(sender, coalescer)
    calls = [asyncio.ensure_future(coalescer.submit([change_set(f"r{n}")])) for n in range(7)]
    await asyncio.sleep(0)
    await settle(sender)
    for _ in range(20):
        await asyncio.sleep(0)
    await asyncio.gather(*calls)
    await first

    assert coalescer.batch_limit() >= 1
    sizes = [len(s.items) for s in sender.sent[1:]]
    assert sum(sizes) == 7
    assert max(sizes) <= 3


def test_the_latency_model_learns_base_and_cost_per_operation() -> None:
    model = LatencyModel(weight=0.3)
    for _ in range(60):
        for n in (3, 30, 300):
            model.observe(n, 0.1 + 0.002 * n)
    assert model.base == pytest.approx(0.1, abs=0.01)
    assert model.per_operation == pytest.approx(0.002, rel=0.05)
    assert model.operations_within(2.0) == pytest.approx(950, rel=0.05)


def test_a_busy_server_still_gets_batches_of_half_the_target() -> None:
    model = LatencyModel(weight=0.5)
    for _ in range(40):
        for n in (10, 100):
            model.observe(n, 2.5 + 0.001 * n)  # 2.5 s before the first operation: queueing
    assert model.base > 2.0
    assert model.operations_within(2.0) == pytest.approx(1000, rel=0.05)


def test_the_pacer_spends_its_share_of_the_limits_evenly() -> None:
    now = [0.0]
    limits = ProtectionLimits(requests=300, execution_seconds=60, window_seconds=300)
    pacer = ProtectionPacer(limits, share=0.5, burst_requests=2, clock=lambda: now[0])
    for _ in range(2):
        assert pacer.delay() == 0
        pacer.sent()
    assert pacer.delay() == pytest.approx(2.0)  # 0.5 requests per second
    now[0] += 2.0
    assert pacer.delay() == 0
    pacer.sent()
    pacer.finished(40.0)  # 10 s more than the 30 s burst of execution time
    assert pacer.delay() == pytest.approx(100.0)  # repaid at 0.5 x 60 / 300 = 0.1 s per second
    now[0] += 50.0
    assert pacer.delay() == pytest.approx(50.0)


# -- the order store through the stand-in ----------------------------------------------------


@dataclass
class Recorder(httpx.AsyncBaseTransport):
    inner: httpx.AsyncBaseTransport
    requests: list[httpx.Request] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    def batches(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path.endswith("$batch")]


@pytest.fixture
async def stores() -> AsyncIterator[tuple[DataverseOrderStore, DataverseOrderStore, Recorder]]:
    async with dataverse_standin(provisioned=True) as dv:
        recorder = Recorder(httpx.ASGITransport(app=dv.app))
        client = DataverseClient(HOST, StaticTokenProvider(TOKEN), transport=recorder)
        plain = DataverseOrderStore(client)
        yield DataverseOrderStore(client, coalescer=BatchCoalescer(client)), plain, recorder
        await client.aclose()


def entry(order_id: int, name: str) -> JournalEntry:
    return JournalEntry(
        entry_id=f"m{order_id}.{name}",
        store_hash="s1",
        order_id=order_id,
        kind="event",
        name=name,
        outcome="received",
        occurred_on=datetime(2026, 1, 1, tzinfo=UTC),
    )


async def test_concurrent_commits_share_a_batch_and_a_bad_order_fails_alone(
    stores: tuple[DataverseOrderStore, DataverseOrderStore, Recorder],
) -> None:
    store, plain, recorder = stores
    units = []
    for order_id in (1, 2, 3, 4):
        writes = store.writes()
        writes.journal(entry(order_id, "hello"))
        if order_id == 3:  # an update of a salesorder that does not exist: 404, rolled back
            writes.update_order("s1", order_id, lifecycle=Lifecycle.RELEASED)
        units.append(writes)

    results = await asyncio.gather(*(u.commit() for u in units), return_exceptions=True)

    assert [r is None for r in results] == [True, True, False, True]
    assert isinstance(results[2], NotFoundError)
    [request] = recorder.batches()
    assert request.headers["prefer"] == "odata.continue-on-error"
    assert len(parse_batch_request(request.content, request.headers["content-type"])) == 4
    journal = await plain.client.query(
        "bciom_orderjournals", select=["bciom_bcorderid"], page_size=50
    )
    assert sorted(row["bciom_bcorderid"] for row in journal.rows) == [1, 2, 4]
    assert units[2].pending == 2  # kept, to be committed again
    assert units[0].pending == 0


async def test_concurrent_loads_share_a_batch_and_read_the_same(
    stores: tuple[DataverseOrderStore, DataverseOrderStore, Recorder],
) -> None:
    store, plain, recorder = stores
    await plain.client.upsert(
        "salesorders", {"bciom_storehash": "s1", "bciom_bcorderid": 2}, {"name": "order 2"}
    )
    recorder.requests.clear()
    loads = await asyncio.gather(*(store.load("s1", n) for n in (1, 2, 3)))
    assert loads[0] is None
    assert loads[2] is None
    assert loads[1] is not None
    assert loads[1].order_id == 2
    [request] = recorder.batches()
    assert len(parse_batch_request(request.content, request.headers["content-type"])) == 9
    assert [await plain.load("s1", n) for n in (1, 2, 3)] == loads


class BrokenGate(ThrottleGate):
    def snapshot(self):  # type: ignore[no-untyped-def]
        raise RuntimeError("gate is broken")


async def test_a_failure_of_the_coalescer_itself_fails_its_callers_rather_than_hang() -> None:
    sender = FakeSender(gate=BrokenGate())
    coalescer = BatchCoalescer(sender)
    calls = [coalescer.submit([change_set(n)]) for n in ("a", "b")]
    results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 5)
    assert [str(r) for r in results] == ["gate is broken", "gate is broken"]
    assert sender.sent == []
