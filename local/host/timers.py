"""Fires timer triggers on their schedules: six-field NCRONTAB, or a TimeSpan interval."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from azure.functions.timer import TimerRequest
from croniter import croniter

from local.host.host_json import parse_timespan
from local.host.indexing import TimerFunction
from local.host.invoker import Invoker

log = logging.getLogger("local.host.timers")


class Schedule:
    """The next occurrence after a moment, in UTC as the Functions host computes it by default."""

    def __init__(self, expression: str) -> None:
        fields = expression.split()
        self._interval: timedelta | None = None
        if len(fields) == 1 and ":" in expression:
            self._interval = parse_timespan(expression)
            if self._interval <= timedelta(0):
                raise ValueError(f"timer interval must be positive: {expression!r}")
        elif len(fields) == 6:
            if not croniter.is_valid(expression, second_at_beginning=True):
                raise ValueError(f"invalid NCRONTAB expression: {expression!r}")
        else:
            raise ValueError(
                f"NCRONTAB schedules have six fields (second minute hour day month weekday): "
                f"{expression!r}"
            )
        self._expression = expression

    def next_after(self, moment: datetime) -> datetime:
        if self._interval is not None:
            return moment + self._interval
        it = croniter(self._expression, moment, second_at_beginning=True)
        result: datetime = it.get_next(datetime)
        return result


async def run_timer(
    timer: TimerFunction,
    invoker: Invoker,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    schedule = Schedule(timer.schedule)
    if timer.run_on_startup:
        await _fire(timer, invoker, past_due=False)
    due = schedule.next_after(clock())
    while True:
        await asyncio.sleep(max(0.0, (due - clock()).total_seconds()))
        now = clock()
        # A tick that fires more than a second late is past due, as the Functions host reports it.
        await _fire(timer, invoker, past_due=(now - due) > timedelta(seconds=1))
        due = schedule.next_after(max(due, clock()))


async def _fire(timer: TimerFunction, invoker: Invoker, *, past_due: bool) -> None:
    try:
        request = TimerRequest(past_due=past_due)
        await invoker.invoke(timer.user_function, timer.name, {timer.arg_name: request})
    except Exception:
        log.exception("timer function %s failed", timer.name, extra={"function": timer.name})
