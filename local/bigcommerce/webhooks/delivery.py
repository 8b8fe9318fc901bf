"""The delivery worker: store events in, signed callbacks out, with BigCommerce's retry rules.

Pipeline, all on the event loop:

1. `on_event` (the bus subscriber, callable from any thread) queues the event.
2. The dispatcher turns each event into one job per active hook whose scope receives it (plus
   the channel-scoped order event, see `scopes.channel_variant`), applies the network switches
   (drop, duplicate, reorder; `switches.py`) and hands jobs to lanes.
3. One lane per destination domain sends its jobs one at a time, in order, with a single
   `httpx.AsyncClient`. Success is a 2xx within `timeout_seconds` (real time, the whole
   exchange) whose response headers stay within the documented limits (at most 64 headers,
   names up to 64 bytes, values up to 8 KB); anything else is a failure.
4. A failed attempt n (1..11) is retried `RETRY_SCHEDULE[n-1]` simulated seconds after it failed
   (`SimClock.sleep`, re-checked against `clock.now()` at least every 0.25 s of real time, so
   `clock.advance()` also brings retries forward). When attempt 12 fails, the hook is set
   `is_active: false` (status `deactivated`), an "email" is recorded, and the store's
   deliveryException hook gets code 90002.
5. Blocklist (`blocklist.py`): a job whose domain is blocked is not sent; it is logged `blocked`
   and goes to the retry queue like a failure (it uses up that attempt), and the exception hook
   gets 90003 once per blocking per destination. A failure that will be retried sends 90001, at
   most once per 10 simulated minutes per destination. Failures of the deliveryException hook's
   own callbacks raise no further exceptions.

Retries and new events use the hook as it is at send time: a deleted or inactive hook's pending
deliveries are logged `skipped` and dropped (re-activating a hook does not replay them).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import httpx

from local.bigcommerce.clock import SimClock
from local.bigcommerce.events import StoreEvent
from local.bigcommerce.webhooks.accounts import StoreAccount
from local.bigcommerce.webhooks.blocklist import DomainBlocklist, domain_of
from local.bigcommerce.webhooks.payloads import (
    DOMAIN_BLOCKED,
    EXHAUSTED,
    RETRYING,
    Callback,
    build_callback,
    delivery_exception,
    message_id,
    request_headers,
)
from local.bigcommerce.webhooks.registry import Hook, HookRegistry
from local.bigcommerce.webhooks.scopes import channel_variant
from local.bigcommerce.webhooks.switches import DeliveryOptions, NetworkSwitches, new_random

log = logging.getLogger("simulator.bigcommerce.webhooks")

RETRY_SCHEDULE: Final = (60, 180, 300, 600, 900, 1800, 3600, 7200, 21600, 50400, 86400)
MAX_ATTEMPTS: Final = len(RETRY_SCHEDULE) + 1
RETRY_NOTICE_INTERVAL: Final = timedelta(minutes=10)
RETRY_POLL_REAL_SECONDS: Final = 0.25
MAX_RESPONSE_HEADERS: Final = 64
MAX_RESPONSE_HEADER_NAME: Final = 64
MAX_RESPONSE_HEADER_VALUE: Final = 8 * 1024

Status = Literal["delivered", "failed", "blocked", "dropped", "skipped"]


@dataclass(frozen=True, slots=True)
class Job:
    job_id: int
    generation: int
    hook_id: int
    callback: Callback
    attempt: int = 1
    duplicate: bool = False
    dropped: bool = False
    notice: bool = False  # a deliveryException callback
    scheduled_for: datetime | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One line of the attempt log (`GET /__sim/webhooks/deliveries`)."""

    id: int
    store_hash: str
    hook_id: int
    scope: str
    event_hash: str
    webhook_id: str
    destination: str | None
    attempt: int
    status: Status
    http_status: int | None
    error: str | None
    duplicate: bool
    scheduled_for: datetime | None
    started_at: datetime
    at: datetime
    next_attempt_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "id": self.id,
            "store_hash": self.store_hash,
            "hook_id": self.hook_id,
            "scope": self.scope,
            "event_hash": self.event_hash,
            "webhook_id": self.webhook_id,
            "destination": self.destination,
            "attempt": self.attempt,
            "status": self.status,
            "http_status": self.http_status,
            "error": self.error,
            "duplicate": self.duplicate,
            "scheduled_for": iso(self.scheduled_for),
            "started_at": iso(self.started_at),
            "at": iso(self.at),
            "next_attempt_at": iso(self.next_attempt_at),
        }


@dataclass(frozen=True, slots=True)
class _Event:
    event: StoreEvent
    created_at: int
    generation: int


@dataclass(frozen=True, slots=True)
class _Outcome:
    ok: bool
    http_status: int | None = None
    error: str | None = None


def _response_problem(response: httpx.Response) -> str | None:
    raw = response.headers.raw
    if len(raw) > MAX_RESPONSE_HEADERS:
        return f"more than {MAX_RESPONSE_HEADERS} response headers"
    for name, value in raw:
        if len(name) > MAX_RESPONSE_HEADER_NAME or len(value) > MAX_RESPONSE_HEADER_VALUE:
            return "a response header exceeds the size limits"
    return None


class Deliverer:
    def __init__(
        self,
        registry: HookRegistry,
        clock: SimClock,
        accounts: Mapping[str, StoreAccount],
        options: DeliveryOptions,
    ) -> None:
        self._registry = registry
        self._clock = clock
        self._accounts = dict(accounts)
        self._options = options
        self._timeout = options.timeout_seconds
        self._switches = options.switches
        self._random = new_random(options.switches)
        self._blocklist = DomainBlocklist()
        self._log: deque[Attempt] = deque(maxlen=options.log_size)
        self._counts: Counter[str] = (
            Counter()
        )  # attempts by status, all of them (the log is capped)
        self._attempt_ids = itertools.count(1)
        self._job_ids = itertools.count(1)
        self._emails: dict[str, list[str]] = {}
        self._notifications: list[dict[str, Any]] = []
        self._retry_notices: dict[tuple[str, str], datetime] = {}
        self._block_notices: set[tuple[str, str, datetime | None, str]] = set()
        self._generation = 0
        self._outstanding = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._running = asyncio.Event()
        self._want_paused = options.paused
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False
        self._early: list[tuple[StoreEvent, int]] = []
        self._early_lock = threading.Lock()
        self._inbound: asyncio.Queue[_Event] = asyncio.Queue()
        self._lanes: dict[str, asyncio.Queue[Job]] = {}
        self._buffer: list[Job] = []
        self._batch = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._retries: dict[int, tuple[Job, asyncio.Task[None]]] = {}
        self._client: httpx.AsyncClient | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Runs the worker on the current loop; events published before it are then queued."""
        if self._loop is not None:
            return
        # Fresh loop-bound primitives: a stopped service may be started again on another loop
        # (Starlette's TestClient runs each lifespan on a loop of its own).
        self._inbound = asyncio.Queue()
        self._idle, self._running = asyncio.Event(), asyncio.Event()
        self._count(0)
        if not self._want_paused:
            self._running.set()
        self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        self._stopped = False
        self._spawn(self._dispatch())
        with self._early_lock:
            self._loop = asyncio.get_running_loop()
            early, self._early = self._early, []
        for event, created_at in early:
            self._accept(event, created_at)

    async def stop(self) -> None:
        """Stops the worker; whatever was pending is forgotten, and later events are ignored."""
        self._stopped = True
        self._loop = None
        self._generation += 1
        self._outstanding = 0
        self._buffer.clear()
        tasks = list(self._tasks) + [task for _, task in self._retries.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._retries.clear()
        self._lanes.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _spawn(self, coroutine: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- intake ----------------------------------------------------------------------------

    def on_event(self, event: StoreEvent) -> None:
        """The bus subscriber. Thread-safe; events published before `start()` wait for it."""
        if self._stopped:
            return
        created_at = int(self._clock.now().timestamp())
        with self._early_lock:
            loop = self._loop
            if loop is None:
                self._early.append((event, created_at))
                return
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is loop:
            self._accept(event, created_at)
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._accept, event, created_at)

    def _accept(self, event: StoreEvent, created_at: int) -> None:
        if self._stopped:
            return
        self._count(1)
        self._inbound.put_nowait(_Event(event, created_at, self._generation))

    async def _dispatch(self) -> None:
        while True:
            item = await self._inbound.get()
            if item.generation != self._generation:
                continue
            jobs = self._expand(item)
            self._count(len(jobs) - 1)
            for job in jobs:
                self._route(job, fresh=True)

    def _expand(self, item: _Event) -> list[Job]:
        event = item.event
        account = self._accounts.get(event.store_hash)
        if account is None:
            return []
        variants = [(event.scope, dict(event.data))]
        channel = channel_variant(event.scope, event.data, event.channel_id)
        if channel is not None:
            variants.append(channel)
        jobs: list[Job] = []
        for scope, data in variants:
            hooks = [
                h
                for h in self._registry.receiving(event.store_hash, scope)
                if h.client_id == account.client_id
            ]
            if not hooks:
                continue
            callback = build_callback(
                event.store_hash, account.store_id, scope, data, item.created_at
            )
            jobs.extend(self._new_job(hook.id, callback) for hook in hooks)
        return jobs

    def _new_job(self, hook_id: int, callback: Callback, *, notice: bool = False) -> Job:
        return Job(next(self._job_ids), self._generation, hook_id, callback, notice=notice)

    # -- switches and lanes ----------------------------------------------------------------

    def _route(self, job: Job, *, fresh: bool) -> None:
        switches = self._switches
        if switches.drop_probability and self._random.random() < switches.drop_probability:
            job = replace(job, dropped=True)
        copies = [job]
        if (
            not job.dropped
            and switches.duplicate_probability
            and self._random.random() < switches.duplicate_probability
        ):
            copies.append(replace(job, job_id=next(self._job_ids), duplicate=True))
            self._count(1)
        for copy in copies:
            if fresh and switches.reorder_window > 1:
                self._hold(copy)
            else:
                self._enqueue(copy)

    def _hold(self, job: Job) -> None:
        self._buffer.append(job)
        if len(self._buffer) >= self._switches.reorder_window:
            self._flush_buffer()
        elif len(self._buffer) == 1:
            self._spawn(self._flush_later(self._batch, self._switches.reorder_hold_seconds))

    async def _flush_later(self, batch: int, hold: float) -> None:
        await asyncio.sleep(hold)
        if batch == self._batch:
            self._flush_buffer()

    def _flush_buffer(self) -> None:
        held, self._buffer = self._buffer, []
        self._batch += 1
        arrived = list(held)
        self._random.shuffle(held)
        self._counts["reordered"] += sum(
            1 for a, b in zip(arrived, held, strict=True) if a is not b
        )
        for job in held:
            self._enqueue(job)

    def _enqueue(self, job: Job) -> None:
        hook = self._registry.get(job.hook_id)
        domain = domain_of(hook.destination) if hook is not None else ""
        lane = self._lanes.get(domain)
        if lane is None:
            lane = self._lanes[domain] = asyncio.Queue()
            self._spawn(self._run_lane(lane))
        lane.put_nowait(job)

    async def _run_lane(self, lane: asyncio.Queue[Job]) -> None:
        while True:
            job = await lane.get()
            await self._running.wait()
            if job.generation != self._generation:
                continue
            try:
                await self._attempt(job)
            except Exception:
                log.exception("webhook delivery failed unexpectedly")
                self._finish(job)

    # -- one attempt -----------------------------------------------------------------------

    async def _attempt(self, job: Job) -> None:
        started = self._clock.now()
        hook = self._registry.get(job.hook_id)
        if hook is None or not hook.is_active:
            reason = "hook deleted" if hook is None else f"hook {hook.status}"
            self._record(job, hook, "skipped", started, started, error=reason)
            self._finish(job)
            return
        account = self._accounts[hook.store_hash]
        until = self._blocklist.blocked_until(account.client_id, hook.destination, started)
        if until is not None:
            error = f"domain blocked until {until.isoformat()}"
            if job.duplicate:
                self._record(job, hook, "blocked", started, started, error=error)
                self._finish(job)
            else:
                self._failed(job, hook, account, "blocked", started, started, _Outcome(False))
            return
        if job.dropped:
            self._record(job, hook, "dropped", started, started, error="dropped (switch)")
            self._finish(job)
            return
        outcome = await self._send(job, hook, account)
        finished = self._clock.now()
        if job.generation != self._generation:
            return  # reset while in flight
        failure = outcome.error or ""
        if self._blocklist.record(
            account.client_id, hook.destination, outcome.ok, failure, finished
        ):
            self._email(hook.store_hash, "domain_blocked", f"{domain_of(hook.destination)}")
        if outcome.ok or job.duplicate:
            status: Status = "delivered" if outcome.ok else "failed"
            self._record(job, hook, status, started, finished, outcome)
            self._finish(job)
            return
        self._failed(job, hook, account, "failed", started, finished, outcome)

    async def _send(self, job: Job, hook: Hook, account: StoreAccount) -> _Outcome:
        assert self._client is not None
        callback = job.callback
        headers = request_headers(
            hook.headers,
            msg_id=message_id(callback.event_hash, hook.id),
            body=callback.body,
            client_secret=account.client_secret,
            now=datetime.now(UTC),
        )
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client.post(
                    hook.destination, content=callback.body, headers=headers, timeout=None
                )
        except TimeoutError:
            return _Outcome(False, error="timeout")
        except httpx.HTTPError as exc:
            return _Outcome(False, error=f"{type(exc).__name__}: {exc}".strip().rstrip(":"))
        if not 200 <= response.status_code < 300:
            return _Outcome(False, response.status_code, f"HTTP {response.status_code}")
        problem = _response_problem(response)
        return _Outcome(problem is None, response.status_code, problem)

    def _failed(
        self,
        job: Job,
        hook: Hook,
        account: StoreAccount,
        status: Status,
        started: datetime,
        at: datetime,
        outcome: _Outcome,
    ) -> None:
        error = outcome.error
        if status == "blocked":
            error = "domain blocked"
        if job.attempt < MAX_ATTEMPTS:
            due = at + timedelta(seconds=RETRY_SCHEDULE[job.attempt - 1])
            self._record(job, hook, status, started, at, outcome, error=error, next_at=due)
            self._schedule(replace(job, attempt=job.attempt + 1, scheduled_for=due))
            if not job.notice:
                self._notice_will_retry(job, hook, account, status, error, at)
            return
        self._record(job, hook, status, started, at, outcome, error=error)
        self._registry.deactivate(hook.id, int(at.timestamp()))
        self._email(hook.store_hash, "hook_deactivated", f"webhook {hook.id} ({hook.scope})")
        if not job.notice:
            message = (
                f"Webhook delivery to {hook.destination} failed after {MAX_ATTEMPTS} attempts; "
                "the hook is disabled"
            )
            self._notice(account, hook, EXHAUSTED, message, at)
        self._finish(job)  # after queueing the notice, so the worker never looks idle between

    def _notice_will_retry(
        self,
        job: Job,
        hook: Hook,
        account: StoreAccount,
        status: Status,
        error: str | None,
        at: datetime,
    ) -> None:
        if status == "blocked":
            started = self._blocklist.block_started(account.client_id, hook.destination)
            key = (account.client_id, domain_of(hook.destination), started, hook.destination)
            if key in self._block_notices:
                return
            self._block_notices.add(key)
            message = (
                f"Domain of {hook.destination} is temporarily blocked after too many "
                "unsuccessful deliveries, will retry"
            )
            self._notice(account, hook, DOMAIN_BLOCKED, message, at)
            return
        notice_key = (account.client_id, hook.destination)
        last = self._retry_notices.get(notice_key)
        if last is not None and at - last < RETRY_NOTICE_INTERVAL:
            return
        self._retry_notices[notice_key] = at
        message = f"Non-2xx response ({error}) received when delivering to {hook.destination}"
        self._notice(account, hook, RETRYING, message + ", will retry", at)

    def _notice(
        self, account: StoreAccount, about: Hook, code: int, message: str, at: datetime
    ) -> None:
        hook = self._registry.exception_hook(about.store_hash, account.client_id)
        if hook is None or not hook.is_active or hook.id == about.id:
            return
        callback = delivery_exception(
            about.store_hash, account.store_id, about.id, code, message, int(at.timestamp())
        )
        self._count(1)
        self._route(self._new_job(hook.id, callback, notice=True), fresh=True)

    def _schedule(self, job: Job) -> None:
        task = asyncio.get_running_loop().create_task(self._retry_when_due(job))
        self._retries[job.job_id] = (job, task)

    async def _retry_when_due(self, job: Job) -> None:
        assert job.scheduled_for is not None
        while (left := (job.scheduled_for - self._clock.now()).total_seconds()) > 0:
            await self._clock.sleep(min(left, self._clock.scale * RETRY_POLL_REAL_SECONDS))
        self._retries.pop(job.job_id, None)
        if job.generation == self._generation:
            self._route(job, fresh=False)

    # -- bookkeeping -----------------------------------------------------------------------

    def _count(self, delta: int) -> None:
        self._outstanding += delta
        if self._outstanding <= 0:
            self._outstanding = 0
            self._idle.set()
        else:
            self._idle.clear()

    def _finish(self, job: Job) -> None:
        if job.generation == self._generation:
            self._count(-1)

    def _record(
        self,
        job: Job,
        hook: Hook | None,
        status: Status,
        started: datetime,
        at: datetime,
        outcome: _Outcome | None = None,
        *,
        error: str | None = None,
        next_at: datetime | None = None,
    ) -> None:
        callback = job.callback
        self._counts[status] += 1
        if job.duplicate:
            self._counts["duplicate"] += 1
        self._log.append(
            Attempt(
                id=next(self._attempt_ids),
                store_hash=callback.store_hash,
                hook_id=job.hook_id,
                scope=callback.scope,
                event_hash=callback.event_hash,
                webhook_id=message_id(callback.event_hash, job.hook_id),
                destination=None if hook is None else hook.destination,
                attempt=job.attempt,
                status=status,
                http_status=None if outcome is None else outcome.http_status,
                error=error if error is not None else (outcome.error if outcome else None),
                duplicate=job.duplicate,
                scheduled_for=job.scheduled_for,
                started_at=started,
                at=at,
                next_attempt_at=next_at,
            )
        )

    def _email(self, store_hash: str, kind: str, subject: str) -> None:
        """BigCommerce emails the app's addresses on blocking and deactivation; recorded here."""
        self._notifications.append(
            {
                "store_hash": store_hash,
                "kind": kind,
                "to": list(self._emails.get(store_hash, [])),
                "subject": subject,
                "at": self._clock.now().isoformat(),
            }
        )

    # -- admin -----------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Events and deliveries not yet finished, scheduled retries included."""
        return self._outstanding

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def switches(self) -> NetworkSwitches:
        return self._switches

    @property
    def timeout_seconds(self) -> float:
        return self._timeout

    def set_switches(
        self, switches: NetworkSwitches, timeout_seconds: float, *, reseed: bool
    ) -> None:
        """New switches; `reseed` restarts the random sequence from `switches.seed`."""
        if reseed:
            self._random = new_random(switches)
        self._switches = switches
        self._timeout = timeout_seconds
        if switches.reorder_window <= 1 and self._buffer:
            self._flush_buffer()

    def pause(self) -> None:
        self._want_paused = True
        self._running.clear()

    def resume(self) -> None:
        self._want_paused = False
        self._running.set()

    async def drain(self, timeout: float) -> bool:
        """Waits (real seconds) until nothing is pending; False if that did not happen in time."""
        try:
            async with asyncio.timeout(timeout):
                while self._outstanding:
                    await self._idle.wait()
        except TimeoutError:
            return False
        return True

    def attempts(self) -> list[Attempt]:
        return list(self._log)

    def counts(self) -> dict[str, int]:
        """Every attempt since the start (or reset) by status, plus `duplicate` (attempts that
        were a copy) and `reordered` (fresh deliveries the reorder window sent out of turn)."""
        return dict(self._counts)

    def scheduled_retries(self) -> list[dict[str, Any]]:
        return [
            {
                "hook_id": job.hook_id,
                "event_hash": job.callback.event_hash,
                "scope": job.callback.scope,
                "attempt": job.attempt,
                "due": job.scheduled_for.isoformat() if job.scheduled_for else None,
            }
            for job, _ in sorted(self._retries.values(), key=lambda r: r[0].job_id)
        ]

    def blocked_domains(self, client_id: str) -> list[dict[str, Any]]:
        return [b.to_json() for b in self._blocklist.blocked(client_id, self._clock.now())]

    def emails(self, store_hash: str) -> list[str]:
        return list(self._emails.get(store_hash, []))

    def set_emails(self, store_hash: str, emails: list[str]) -> None:
        self._emails[store_hash] = list(emails)

    def notifications(self) -> list[dict[str, Any]]:
        return [dict(n) for n in self._notifications]

    def reset(self, *, hooks: bool) -> None:
        """Forgets every pending delivery, the log, the blocklist and the switches' state."""
        self._generation += 1
        self._outstanding = 0
        self._idle.set()
        self._buffer.clear()
        self._batch += 1
        for _, task in self._retries.values():
            task.cancel()
        self._retries.clear()
        self._log.clear()
        self._counts.clear()
        self._notifications.clear()
        self._retry_notices.clear()
        self._block_notices.clear()
        self._blocklist.reset()
        self._switches = self._options.switches
        self._timeout = self._options.timeout_seconds
        self._random = new_random(self._switches)
        if self._options.paused:
            self.pause()
        else:
            self.resume()
        if hooks:
            self._registry.clear()
            self._emails.clear()
