"""Coalesced `$batch` requests: what concurrent callers submit, sent together.

The order store (`order_store.py`) submits each order's load (three GETs) and each unit of work
(one change set) here instead of sending its own `$batch`. Each caller awaits the results of its
own items, so per-order ordering and every level-triggered check in the lifecycle are unchanged.

* Idle: a call that finds a free slot and the pace free is sent at once, as its own `$batch`
  with its own `continue_on_error`: exactly what it would have sent without coalescing.
* Busy: when every slot the throttle gate allows is taken (`x-ms-dop-hint`, halved after a
  429), or the pace holds requests back, calls gather; the next request takes them in arrival
  order, up to what the latency model says fits in the target duration (`batch_sizing.py`) and
  never above 1,000 operations, as ONE `$batch` with `Prefer: odata.continue-on-error`: every
  GET and every change set is answered on its own, and a failing change set rolls back only
  itself (execute-batch-operations-using-web-api.md), so one bad order fails only its caller.
  Content-IDs are renumbered across the batch; the results are handed back with the caller's
  own items.
* Whatever the service does not answer for a caller, it is sent again alone: the documented
  behaviour is an answer for every part, but Dataverse without continue-on-error stops at the
  first failure, and a 2023 report has a batch skip its last operation. A batch refused as a
  whole with a 4xx (its payload, not one caller's data, is at fault, or one part is malformed)
  is split: each caller is sent alone and gets its own answer. Transport errors, 5xx and
  throttling that outlast the client's retries fail every caller of the batch, as they would
  have failed each one's own request; the lifecycle retries them.
* Items that are not idempotent (a POST action such as FulfillSalesOrder) or that refer to
  Content-IDs are always sent alone: combined, one of them would make the whole batch unsafe to
  resend after a lost answer, or would need rewriting.

State lives per event loop (the worker's loop; a test's or a CLI's later loop gets its own).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from shared.dataverse.batch import (
    MAX_BATCH_OPERATIONS,
    BatchFormatError,
    BatchItem,
    BatchOperation,
    BatchResult,
    ChangeSet,
    ItemResult,
    OperationResult,
    has_references,
    operation_count,
    validate_batch,
)
from shared.dataverse.batch_sizing import LatencyModel, ProtectionLimits, ProtectionPacer
from shared.dataverse.errors import ApiError
from shared.dataverse.gate import ThrottleGate
from shared.dataverse.models import ClientStats

log = logging.getLogger("connector.dataverse")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

_MIN_SLEEP: Final = 0.001
# A whole batch refused with one of these is not about its payload: every caller alone would
# get the same answer (authentication), or the client already retried it (408, 429).
_NOT_SPLIT: Final = frozenset({401, 403, 408, 429})


class BatchSender(Protocol):
    """What the coalescer needs of `DataverseClient`."""

    gate: ThrottleGate
    stats: ClientStats

    async def execute_batch(
        self,
        items: Sequence[BatchItem],
        *,
        continue_on_error: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> BatchResult: ...


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """`target_seconds` a coalesced batch should last (by the latency model), `max_operations`
    per batch (at most 1,000), and `share` of the service protection limits they may use."""

    target_seconds: float = 2.0
    max_operations: int = MAX_BATCH_OPERATIONS
    share: float = 0.8
    limits: ProtectionLimits = field(default_factory=ProtectionLimits)

    def __post_init__(self) -> None:
        if self.target_seconds <= 0:
            raise ValueError("target_seconds must be positive")
        if not 1 <= self.max_operations <= MAX_BATCH_OPERATIONS:
            raise ValueError(f"max_operations must be between 1 and {MAX_BATCH_OPERATIONS}")


@dataclass(slots=True)
class CoalescerStats:
    calls: int = 0
    requests: int = 0  # $batch requests sent (alone or combined)
    combined: int = 0  # of which several callers together
    combined_calls: int = 0  # calls served by combined requests
    sent_again: int = 0  # calls sent alone after a combined batch did not answer them
    largest: int = 0  # operations in the largest batch sent
    paced_seconds: float = 0.0


@dataclass(slots=True)
class _Call:
    items: tuple[BatchItem, ...]
    continue_on_error: bool
    future: asyncio.Future[tuple[ItemResult, ...]]
    operations: int
    alone: bool


@dataclass(slots=True)
class _LoopState:
    loop: asyncio.AbstractEventLoop
    pending: deque[_Call] = field(default_factory=deque)
    in_flight: int = 0
    dispatcher: asyncio.Task[None] | None = None
    flights: set[asyncio.Task[None]] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class BatchCoalescer:
    """One per Dataverse client per process (the composition root builds it)."""

    def __init__(
        self,
        client: BatchSender,
        policy: BatchPolicy | None = None,
        *,
        model: LatencyModel | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.client = client
        self.policy = policy or BatchPolicy()
        self.model = model or LatencyModel()
        self.pacer = ProtectionPacer(self.policy.limits, share=self.policy.share, clock=clock)
        self.stats = CoalescerStats()
        self._clock = clock
        self._sleep = sleep
        self._state: _LoopState | None = None

    def __repr__(self) -> str:
        return f"BatchCoalescer({self.client!r})"

    async def submit(
        self, items: Sequence[BatchItem], *, continue_on_error: bool = True
    ) -> tuple[ItemResult, ...]:
        """The results of `items`, in order, as `execute_batch` would give them; raises what
        `execute_batch` would raise for them."""
        items = tuple(items)
        validate_batch(items)  # a malformed call fails alone, before it joins anything
        state = self._loop_state()
        future: asyncio.Future[tuple[ItemResult, ...]] = state.loop.create_future()
        alone = any(not item.is_idempotent or has_references(item) for item in items)
        state.pending.append(_Call(items, continue_on_error, future, operation_count(items), alone))
        self.stats.calls += 1
        if state.dispatcher is None or state.dispatcher.done():
            state.dispatcher = state.loop.create_task(self._dispatch(state))
        state.changed.set()
        return await future

    def batch_limit(self) -> int:
        """Operations a combined batch may hold now."""
        fits = self.model.operations_within(self.policy.target_seconds)
        return max(1, min(self.policy.max_operations, MAX_BATCH_OPERATIONS, fits))

    # -- dispatching ----------------------------------------------------------------------------

    def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        if self._state is None or self._state.loop is not loop:
            self._state = _LoopState(loop)
        return self._state

    async def _dispatch(self, state: _LoopState) -> None:
        try:
            await self._dispatch_pending(state)
        except Exception as exc:  # never leave a caller waiting for a request nobody will send
            log.exception("coalesced Dataverse requests failed")
            while state.pending:
                _fail(state.pending.popleft(), exc)

    async def _dispatch_pending(self, state: _LoopState) -> None:
        while state.pending:
            if state.in_flight >= max(1, self.client.gate.snapshot().limit):
                state.changed.clear()
                await state.changed.wait()
                continue
            delay = self.pacer.delay()
            if delay > 0:
                self.stats.paced_seconds += delay
                await self._sleep(max(delay, _MIN_SLEEP))
                continue
            group = self._take(state)
            self.pacer.sent()
            state.in_flight += 1
            task = state.loop.create_task(self._fly(state, group))
            state.flights.add(task)
            task.add_done_callback(state.flights.discard)

    def _take(self, state: _LoopState) -> list[_Call]:
        first = state.pending.popleft()
        group = [first]
        if first.alone:
            return group
        limit, operations = self.batch_limit(), first.operations
        while state.pending:
            call = state.pending[0]
            if call.alone or operations + call.operations > limit:
                break
            group.append(state.pending.popleft())
            operations += call.operations
        return group

    async def _fly(self, state: _LoopState, group: list[_Call]) -> None:
        operations = sum(c.operations for c in group)
        retries = self.client.stats.retries
        started = self._clock()
        try:
            if len(group) == 1:
                await self._alone(group[0])
            else:
                await self._together(group)
        except Exception as exc:  # a bug here must not leave callers waiting
            log.exception("a coalesced Dataverse request failed")
            for call in group:
                _fail(call, exc)
        finally:
            took = self._clock() - started
            self.pacer.finished(took)
            if self.client.stats.retries == retries:  # a throttled wait is not latency
                self.model.observe(operations, took)
            self.stats.largest = max(self.stats.largest, operations)
            state.in_flight -= 1
            state.changed.set()

    async def _alone(self, call: _Call) -> None:
        self.stats.requests += 1
        try:
            result = await self.client.execute_batch(
                call.items, continue_on_error=call.continue_on_error
            )
        except Exception as exc:
            _fail(call, exc)
        except BaseException:
            call.future.cancel()
            raise
        else:
            _resolve(call, result.items)

    async def _together(self, group: list[_Call]) -> None:
        self.stats.requests += 1
        self.stats.combined += 1
        self.stats.combined_calls += len(group)
        combined, spans = _combine(group)
        try:
            result = await self.client.execute_batch(combined, continue_on_error=True)
        except (ApiError, BatchFormatError) as exc:
            if isinstance(exc, ApiError) and (exc.status is None or _not_split(exc.status)):
                for call in group:
                    _fail(call, exc)
                return
            log.warning(
                "Dataverse refused a $batch of %d callers as a whole (%s); sending each alone",
                len(group),
                exc,
            )
            for call in group:
                self.stats.sent_again += 1
                await self._alone(call)
            return
        except Exception as exc:
            for call in group:
                _fail(call, exc)
            return
        except BaseException:
            for call in group:
                call.future.cancel()
            raise
        for call, (start, stop) in zip(group, spans, strict=True):
            answered = result.items[start:stop]
            if not any(item.executed for item in answered):
                self.stats.sent_again += 1
                await self._alone(call)
                continue
            _resolve(call, tuple(_as_sent(i, r) for i, r in zip(call.items, answered, strict=True)))


def _not_split(status: int) -> bool:
    return status in _NOT_SPLIT or not 400 <= status < 500


def _combine(group: Sequence[_Call]) -> tuple[list[BatchItem], list[tuple[int, int]]]:
    """The callers' items as one batch, Content-IDs numbered across it (they must be unique in
    the batch); and where each caller's items are in it."""
    items: list[BatchItem] = []
    spans: list[tuple[int, int]] = []
    next_id = 1
    for call in group:
        start = len(items)
        for item in call.items:
            if isinstance(item, ChangeSet):
                numbered = []
                for op in item.operations:
                    numbered.append(dataclasses.replace(op, content_id=str(next_id)))
                    next_id += 1
                items.append(ChangeSet(tuple(numbered)))
            else:
                items.append(item)
        spans.append((start, len(items)))
    return items, spans


def _as_sent(item: BatchItem, result: ItemResult) -> ItemResult:
    """A result as if the caller's own item (with its own Content-IDs) had been sent."""
    if result.item is item:
        return result
    own: tuple[BatchOperation, ...] = item.operations if isinstance(item, ChangeSet) else (item,)
    operations = tuple(_with_operation(r, op) for r, op in zip(result.operations, own, strict=True))
    return dataclasses.replace(result, item=item, operations=operations)


def _with_operation(result: OperationResult, operation: BatchOperation) -> OperationResult:
    return dataclasses.replace(result, operation=operation)


def _resolve(call: _Call, results: tuple[ItemResult, ...]) -> None:
    if not call.future.done():
        call.future.set_result(results)


def _fail(call: _Call, exc: Exception) -> None:
    if not call.future.done():
        call.future.set_exception(exc)
