"""Runs the lifecycle for one order message: the configured steps, the journal, retries, parking.

Settlement follows the host's rules: returning completes the message, raising abandons it (the
broker redelivers it to the same session). The runner returns normally after any outcome it could
record, and raises only when it could not schedule the retry or park the message, so a message is
never completed before its follow-up is durably queued:
- a transient failure (throttling, 5xx, timeout, anything unexpected) schedules a new message in
  the same session, `attempt + 1`, after an exponential back-off with jitter; after
  `retry.max_attempts` it is parked instead;
- a permanent failure (mapping, a 4xx, an unreadable message) and a new hold park the message on
  `order-parked` with the reason and description; the order's hold and journal in Dataverse say
  why. `python -m cli orders replay` sends it back after the fix.
A worker that dies mid-run leaves the message locked; it is redelivered and the steps, which only
write what is missing, finish the job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

from shared.mapping.config import MappingConfig
from shared.messaging.message import OutboundMessage, PropertyValue
from shared.messaging.ports import MessageSender, SendError
from shared.messaging.queues import ORDER_EVENTS, ORDER_PARKED
from shared.observability import correlation
from shared.orchestration.context import OrderContext
from shared.orchestration.failures import Failure, classify
from shared.orchestration.flow import FlowConfig, StepName, Trigger
from shared.orchestration.go_live import GoLive, before_go_live
from shared.orchestration.messages import (
    MessageFormatError,
    OrderMessage,
    Skip,
    build_order_message,
    derived_id,
    read_message,
)
from shared.orchestration.ports import JournalEntry, OrderStore, Storefronts, journal_entry_id
from shared.orchestration.records import Lifecycle
from shared.orchestration.steps import STEPS, StepResult

log = logging.getLogger("shared.orchestration")

CONNECTOR_ERROR: Final = "connector error"
Outcome = Literal["done", "skipped", "retry", "parked"]


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """What a queue trigger hands over."""

    body: bytes
    message_id: str
    application_properties: Mapping[str, PropertyValue] = field(default_factory=dict)
    correlation_id: str | None = None
    delivery_count: int = 1


@dataclass(frozen=True, slots=True)
class RunReport:
    outcome: Outcome
    steps: tuple[tuple[str, str, str], ...] = ()  # (step, outcome, summary)
    detail: str = ""
    bigcommerce_writes: tuple[str, ...] = ()


class OrderRunner:
    def __init__(
        self,
        *,
        storefronts: Storefronts,
        store: OrderStore,
        flow: FlowConfig,
        mapping: MappingConfig,
        sender: MessageSender,
        clock: Callable[[], datetime],
        random: Callable[[], float],
        go_live: GoLive | None = None,
    ) -> None:
        self._go_live = go_live or {}
        self._storefronts = storefronts
        self._store = store
        self._flow = flow
        self._mapping = mapping
        self._sender = sender
        self._clock = clock
        self._random = random

    async def handle(self, received: ReceivedMessage) -> RunReport:
        try:
            message = read_message(
                received.body,
                message_id=received.message_id,
                application_properties=received.application_properties,
                correlation_id=received.correlation_id,
            )
        except MessageFormatError as exc:
            failure = classify(exc)
            await self._park(received, None, failure)
            return RunReport("parked", detail=failure.description)
        if isinstance(message, Skip):
            log.info("message skipped: %s", message.reason)
            return RunReport("skipped", detail=message.reason)
        with correlation.bind(
            correlation_id=message.correlation_id,
            store_hash=message.store_hash,
            order_id=message.order_id,
            message_id=message.message_id,
            session_id=message.session_id,
        ):
            return await self._run(received, message)

    async def _run(self, received: ReceivedMessage, message: OrderMessage) -> RunReport:
        ctx = OrderContext(
            message=message,
            storefront=self._storefronts.get(message.store_hash),
            store=self._store,
            flow=self._flow,
            mapping=self._mapping,
            clock=self._clock,
            writes=self._store.writes(),
        )
        self._journal(ctx, "event", message.trigger.value, "received", details=message.detail)
        results: list[tuple[str, str, str]] = []
        current: StepName | None = None
        replayed = message.trigger is Trigger.REPLAY  # a replay still held goes back to parking
        # An earlier delivery of this message (or the run this retry follows) may have held the
        # order and died before parking it: a hold it finds is parked again. A redelivery's
        # park has the same message id, so the broker keeps one of the two.
        unsure = received.delivery_count > 1 or message.attempt > 0
        try:
            if await ctx.reload() is None and await self._not_ours(ctx):
                detail = "created before the store's go-live and not in Dataverse: left alone"
                log.info("order skipped: %s", detail)
                return RunReport("skipped", detail=detail)  # nothing staged is committed
            for name in self._flow.steps_for(message.trigger):
                current = name
                started = time.monotonic()
                result = await STEPS[name](ctx)
                took = int((time.monotonic() - started) * 1000)
                self._journal(
                    ctx,
                    "step",
                    name.value,
                    result.outcome,
                    step=name,
                    took=took,
                    details=result.summary,
                )
                results.append((name.value, result.outcome, result.summary))
                log.info("step %s: %s (%s)", name.value, result.outcome, result.summary)
                if result.stop:
                    if result.park or (result.outcome == "hold" and (replayed or unsure)):
                        await ctx.writes.commit()
                        await self._park(
                            received, message, Failure("permanent", "hold", result.summary)
                        )
                        return self._report("parked", results, ctx, result.summary)
                    break
            await self._lift_error_hold(ctx)
            await ctx.writes.commit()
        except SendError:
            raise  # the park could not be queued: the host must redeliver this message
        except Exception as exc:  # every failure is classified; the host sees only send errors
            failure = classify(exc)
            log.warning(
                "step %s failed (%s, %s): %s",
                current.value if current else "load",
                failure.kind,
                failure.category,
                failure.description,
            )
            results.append((current.value if current else "load", "failed", failure.description))
            return await self._fail(received, message, ctx, current, failure, results)
        outcome: Outcome = "done" if any(r[1] == "done" for r in results) else "skipped"
        return self._report(outcome, results, ctx, "")

    async def _fail(
        self,
        received: ReceivedMessage,
        message: OrderMessage,
        failed: OrderContext,
        step: StepName | None,
        failure: Failure,
        results: list[tuple[str, str, str]],
    ) -> RunReport:
        ctx = OrderContext(  # what the failed run staged is dropped; its record is kept
            message=message,
            storefront=failed.storefront,
            store=self._store,
            flow=self._flow,
            mapping=self._mapping,
            clock=self._clock,
            writes=self._store.writes(),
            record=failed.record,
        )
        # The failure's hold is based on what the failed run read: it must not land if another
        # run of the order changed the salesorder since.
        if failed.writes.version is not None:
            ctx.writes.guard(message.store_hash, message.order_id, failed.writes.version)
        where = step.value if step else "load"
        retry = failure.kind == "transient" and message.attempt < self._flow.retry.max_attempts
        if retry:
            delay = self._backoff(message.attempt)
            await self._sender.send(ORDER_EVENTS.name, [self._retry_message(message, delay)])
            self._journal(
                ctx,
                "retry",
                where,
                failure.category,
                step=step,
                details=f"attempt {message.attempt + 1} in {delay:.1f} s: {failure.description}",
            )
            await self._best_effort(ctx)
            return self._report("retry", results, failed, failure.description)
        if failure.kind == "transient":
            failure = Failure(
                "permanent",
                "retries_exhausted",
                f"{message.attempt} retries: {failure.description}",
            )
        await self._park(received, message, failure)
        self._journal(ctx, "park", where, failure.category, step=step, details=failure.description)
        record = ctx.record
        if record and record.lifecycle is not Lifecycle.ON_HOLD and record.statecode not in (2, 3):
            reason = f"{CONNECTOR_ERROR} in {where}: {failure.description}"[:4000]
            ctx.writes.update_order(message.store_hash, message.order_id, hold_reason=reason)
        await self._best_effort(ctx)
        return self._report("parked", results, failed, failure.description)

    async def _not_ours(self, ctx: OrderContext) -> bool:
        if ctx.store_hash not in self._go_live:
            return False
        return before_go_live(self._go_live, ctx.store_hash, await ctx.order())

    async def _lift_error_hold(self, ctx: OrderContext) -> None:
        record = ctx.record
        if record is None or record.lifecycle is Lifecycle.ON_HOLD or record.statecode in (2, 3):
            return
        if (record.hold_reason or "").startswith(CONNECTOR_ERROR):
            ctx.writes.update_order(ctx.store_hash, ctx.order_id, clear_hold=True)

    def _backoff(self, attempt: int) -> float:
        policy = self._flow.retry
        ceiling = min(policy.max_seconds, policy.base_seconds * 2.0**attempt)
        return ceiling / 2 + self._random() * ceiling / 2

    def _retry_message(self, message: OrderMessage, delay: float) -> OutboundMessage:
        origin = message.origin_message_id or message.message_id
        return build_order_message(
            trigger=message.trigger,
            store_hash=message.store_hash,
            order_id=message.order_id,
            message_id=derived_id("retry", origin, message.attempt + 1),
            correlation_id=message.correlation_id,
            attempt=message.attempt + 1,
            origin_message_id=origin,
            detail=message.detail,
            scheduled_enqueue_time=self._clock() + timedelta(seconds=delay),
        )

    async def _park(
        self, received: ReceivedMessage, message: OrderMessage | None, failure: Failure
    ) -> None:
        properties: dict[str, PropertyValue] = dict(received.application_properties)
        properties.update(
            park_reason=failure.category,
            park_description=failure.description[:1000],
            parked_at=self._clock().isoformat(),
            origin_queue=ORDER_EVENTS.name,
            origin_message_id=received.message_id,
        )
        if message is not None:
            properties.update(
                store_hash=message.store_hash,
                order_id=message.order_id,
                trigger=message.trigger.value,
            )
        parked = OutboundMessage(
            body=received.body,
            message_id=derived_id("parked", received.message_id),
            application_properties=properties,
            correlation_id=received.correlation_id,
            subject=f"parked/{failure.category}",
        )
        await self._sender.send(ORDER_PARKED.name, [parked])
        log.warning("message parked (%s): %s", failure.category, failure.description)

    async def _best_effort(self, ctx: OrderContext) -> None:
        """The failure's journal and hold: wanted, but Dataverse may be what failed."""
        try:
            await ctx.writes.commit()
        except Exception as exc:  # the retry or park is already queued; log and go on
            log.warning("could not record the failure in Dataverse: %s", classify(exc).description)

    def _journal(
        self,
        ctx: OrderContext,
        kind: Literal["event", "step", "write", "park", "retry"],
        name: str,
        outcome: str,
        *,
        step: StepName | None = None,
        took: int | None = None,
        details: str = "",
    ) -> None:
        message = ctx.message
        ctx.writes.journal(
            JournalEntry(
                entry_id=journal_entry_id(message.message_id, kind, name),
                store_hash=message.store_hash,
                order_id=message.order_id,
                kind=kind,
                name=name,
                outcome=outcome,
                occurred_on=self._clock(),
                step=step.value if step else None,
                duration_ms=took,
                correlation_id=message.correlation_id,
                details=details or None,
            )
        )

    @staticmethod
    def _report(
        outcome: Outcome, results: list[tuple[str, str, str]], ctx: OrderContext, detail: str
    ) -> RunReport:
        return RunReport(outcome, tuple(results), detail, tuple(ctx.bigcommerce_writes))


__all__ = ["OrderRunner", "ReceivedMessage", "RunReport", "StepResult"]
