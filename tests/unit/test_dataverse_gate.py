"""The throttle gate and the retry decisions, in simulated time (injected clock and sleep).

Sources (MicrosoftDocs/powerapps-docs, powerapps-docs/developer/data-platform/):
[LIMITS] api-limits.md ("Retry operations", "How to re-try"): wait Retry-After seconds after a
429, back off exponentially without it, treat 5xx/408/network errors as transient.
[PARALLEL] send-parallel-requests.md: x-ms-dop-hint is the recommended degree of parallelism.
[OPTBULK] optimize-performance-create-update.md: split the DOP between client instances.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from shared.dataverse.gate import GatePolicy, ThrottleGate
from shared.dataverse.retry import Action, Delivery, RetryPolicy


class SimTime:
    """A clock that only moves when someone sleeps: a sleeper yields to the other tasks first,
    then wakes at its deadline (concurrent sleepers overlap, as in real time)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        deadline = self.now + seconds
        await asyncio.sleep(0)
        self.now = max(self.now, deadline)


def _gate(time: SimTime, **policy: int) -> ThrottleGate:
    return ThrottleGate(GatePolicy(**policy), clock=time.clock, sleep=time.sleep)  # type: ignore[arg-type]


# -- pauses ---------------------------------------------------------------------------------------


async def test_after_a_429_no_caller_gets_through_before_retry_after() -> None:
    # [LIMITS]: the limit is per user, so every caller of the identity waits, not just one.
    time = SimTime()
    gate = _gate(time, max_concurrency=8)
    gate.throttled(30.0)

    async def caller() -> float:
        await gate.acquire()
        admitted = time.now
        gate.release()
        return admitted

    admitted = await asyncio.gather(*(caller() for _ in range(5)))

    assert all(t >= 30.0 for t in admitted)
    assert gate.stats.paused == 5
    assert gate.snapshot().in_flight == 0


async def test_a_pause_that_grows_while_waiting_is_honoured() -> None:
    time = SimTime()
    gate = _gate(time)
    gate.throttled(10.0)
    original_sleep = time.sleep

    async def sleep_and_get_throttled_again(seconds: float) -> None:
        await original_sleep(seconds)
        if time.now <= 10.0:
            gate.throttled(25.0)  # another caller's 429 at t=10: pause until t=35

    gate._sleep = sleep_and_get_throttled_again  # the injected sleep

    paused = await gate.acquire()

    assert time.now >= 35.0
    assert paused == pytest.approx(35.0)


async def test_acquire_without_a_pause_does_not_sleep() -> None:
    time = SimTime()
    gate = _gate(time)

    assert await gate.acquire() == 0.0
    assert time.sleeps == []


# -- concurrency ----------------------------------------------------------------------------------


async def test_dop_hint_is_split_between_instances_and_capped_by_configuration() -> None:
    # [PARALLEL] x-ms-dop-hint; [OPTBULK] two clients with DOP 50 -> 25 each.
    time = SimTime()
    split = _gate(time, max_concurrency=100, instances=2)
    split.observe({"x-ms-dop-hint": "50"})
    capped = _gate(time, max_concurrency=16)
    capped.observe({"x-ms-dop-hint": "50"})
    tiny = _gate(time, max_concurrency=16, instances=8)
    tiny.observe({"x-ms-dop-hint": "4"})

    assert split.snapshot().limit == 25
    assert capped.snapshot().limit == 16
    assert tiny.snapshot().limit == 1
    capped.observe({"x-ms-dop-hint": "not a number"})
    assert capped.snapshot().dop_hint == 50


async def test_callers_beyond_the_limit_wait_for_a_release_in_arrival_order() -> None:
    time = SimTime()
    gate = _gate(time, max_concurrency=2)
    await gate.acquire()
    await gate.acquire()
    order: list[str] = []

    async def waiter(name: str) -> None:
        await gate.acquire()
        order.append(name)

    first = asyncio.create_task(waiter("first"))
    await asyncio.sleep(0)
    second = asyncio.create_task(waiter("second"))
    await asyncio.sleep(0)

    assert gate.snapshot().waiting == 2
    assert order == []
    gate.release()
    await first
    assert order == ["first"]
    assert not second.done()
    gate.release()
    await second
    assert order == ["first", "second"]
    assert gate.snapshot().in_flight == 2
    assert gate.stats.queued == 2


async def test_a_cancelled_waiter_leaves_no_slot_behind() -> None:
    time = SimTime()
    gate = _gate(time, max_concurrency=1)
    await gate.acquire()
    doomed = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed

    gate.release()

    assert gate.snapshot().in_flight == 0
    assert await gate.acquire() == 0.0
    assert gate.snapshot().in_flight == 1


async def test_a_429_halves_concurrency_and_successes_win_it_back() -> None:
    # [LIMITS] "starting with a lower number of requests and gradually increasing".
    time = SimTime()
    gate = _gate(time, max_concurrency=8)
    gate.throttled(1.0)
    assert gate.snapshot().limit == 4

    for _ in range(4):
        gate.succeeded()
    assert gate.snapshot().limit == 5
    for _ in range(5 + 6 + 7):
        gate.succeeded()
    assert gate.snapshot().limit == 8
    gate.succeeded()
    assert gate.snapshot().limit == 8  # never above the ceiling


def test_callers_on_two_event_loops_share_one_slot() -> None:
    # Functions workers and CLIs may run several loops (threads) in one process.
    gate = ThrottleGate(GatePolicy(max_concurrency=1))
    held = threading.Event()
    waiting = threading.Event()
    got_slot = threading.Event()
    early: list[bool] = []

    async def holder() -> None:
        await gate.acquire()
        held.set()
        await asyncio.to_thread(waiting.wait, 10)
        while gate.snapshot().waiting == 0:  # noqa: ASYNC110 (the waiter is on another loop)
            await asyncio.sleep(0.001)
        early.append(got_slot.is_set())  # the other loop must still be waiting here
        gate.release()

    async def other() -> None:
        await asyncio.to_thread(held.wait, 10)
        task = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0)
        waiting.set()
        await task
        got_slot.set()
        gate.release()

    threads = [threading.Thread(target=asyncio.run, args=(f(),)) for f in (holder, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert early == [False]
    assert got_slot.is_set()
    assert gate.snapshot().in_flight == 0


# -- retry decisions ------------------------------------------------------------------------------

POLICY = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=8.0, max_total_wait=100.0)


def test_429_waits_retry_after_for_everyone_even_for_a_create() -> None:
    # [LIMITS]: "wait for the duration to pass before sending the request again".
    decision = POLICY.after_status(429, idempotent=False, attempt=1, retry_after=12.0)

    assert decision.action is Action.RETRY
    assert decision.delay == 12.0
    assert decision.pause_all


def test_429_without_retry_after_backs_off_exponentially() -> None:
    # [LIMITS] Polly sample: 2^count seconds without the header; here capped, with jitter.
    delays = [
        POLICY.after_status(
            429, idempotent=True, attempt=1, consecutive_429=n, rng=lambda: 1.0
        ).delay
        for n in (1, 2, 3, 4, 5)
    ]
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]
    low = POLICY.after_status(429, idempotent=True, attempt=1, consecutive_429=3, rng=lambda: 0.0)
    assert low.delay == 2.0  # half fixed, half random


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 412, 413, 500, 501])
def test_client_errors_and_500_are_never_retried(status: int) -> None:
    decision = POLICY.after_status(status, idempotent=True, attempt=1)
    assert decision.action is Action.FAIL


@pytest.mark.parametrize("status", [408, 502, 503, 504])
def test_transient_statuses_are_retried_when_repeating_is_harmless(status: int) -> None:
    retried = POLICY.after_status(status, idempotent=True, attempt=1, rng=lambda: 0.5)
    unknown = POLICY.after_status(status, idempotent=False, attempt=1)

    assert retried.action is Action.RETRY
    assert not retried.pause_all
    assert retried.delay == 0.75
    assert unknown.action is Action.OUTCOME_UNKNOWN


def test_a_503_with_retry_after_waits_at_least_that_long() -> None:
    decision = POLICY.after_status(503, idempotent=True, attempt=1, retry_after=20.0)
    assert decision.delay == 20.0


def test_transport_failures_depend_on_how_far_the_request_got() -> None:
    never_sent = POLICY.after_transport_error(Delivery.NOT_SENT, idempotent=False, attempt=1)
    maybe_sent_create = POLICY.after_transport_error(
        Delivery.MAYBE_SENT, idempotent=False, attempt=1
    )
    maybe_sent_upsert = POLICY.after_transport_error(
        Delivery.MAYBE_SENT, idempotent=True, attempt=1
    )

    assert never_sent.action is Action.RETRY
    assert maybe_sent_create.action is Action.OUTCOME_UNKNOWN
    assert maybe_sent_upsert.action is Action.RETRY


def test_attempts_and_the_wait_budget_are_bounded() -> None:
    last = POLICY.after_status(429, idempotent=True, attempt=4, retry_after=1.0)
    over_budget = POLICY.after_status(429, idempotent=True, attempt=2, waited=95.0, retry_after=10)

    assert last.action is Action.FAIL
    assert "4 attempts" in last.reason
    assert over_budget.action is Action.FAIL
    assert "wait budget" in over_budget.reason
