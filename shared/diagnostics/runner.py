"""Runs the doctor's checks concurrently, each under its own timeout.

A check is a small async function returning a `CheckResult`. The runner never lets one check
take the others down: an exception becomes a failed result with the check's hint, and a check
still waiting when its timeout runs out is cancelled and fails with "no answer within N s", so a
dead endpoint fails fast instead of hanging the command. A check may name checks it `needs`:
it waits for them (their time does not count against its own timeout) and, when one did not
pass, fails without running, pointing at the one to fix first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

from shared.diagnostics.result import CheckResult, Status

DEFAULT_TIMEOUT_SECONDS: Final = 10.0


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    run: Callable[[], Awaitable[CheckResult]]
    hint: str  # what to do when it raises or times out
    needs: tuple[str, ...] = ()
    timeout: float | None = None  # its own, when it must take longer than the others
    where: str = ""  # the endpoint or file it talks to, named when it fails


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _run_one(check: Check, default_timeout: float) -> CheckResult:
    timeout = check.timeout or default_timeout
    where = f"{check.where}: " if check.where else ""
    try:
        result = await asyncio.wait_for(check.run(), timeout)
    except TimeoutError:
        return CheckResult.failed(check.name, f"{where}no answer within {timeout:g}s", check.hint)
    except Exception as exc:  # one check's failure is its row, never the command's end
        return CheckResult.failed(check.name, where + _one_line(exc), check.hint)
    if result.name != check.name:
        raise ValueError(f"check {check.name!r} answered as {result.name!r}")
    return result


async def run_checks(
    checks: Sequence[Check], *, timeout: float = DEFAULT_TIMEOUT_SECONDS
) -> list[CheckResult]:
    """Every check's result, in the order given."""
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    names = [c.name for c in checks]
    if len(set(names)) != len(names):
        raise ValueError("check names must be unique")
    known = set(names)
    for check in checks:
        unknown = set(check.needs) - known
        if unknown:
            raise ValueError(f"check {check.name!r} needs unknown checks {sorted(unknown)}")
    tasks: dict[str, asyncio.Task[CheckResult]] = {}

    async def gated(check: Check) -> CheckResult:
        for needed in check.needs:
            before = await asyncio.shield(tasks[needed])
            if before.status is Status.FAIL:
                return CheckResult.failed(
                    check.name, f"not checked: {needed} failed", f"fix {needed} first"
                )
        return await _run_one(check, timeout)

    # Created in order, so that a check only ever waits for tasks that exist; a cycle is
    # impossible because `needs` may only name checks listed before it.
    for index, check in enumerate(checks):
        earlier = set(names[:index])
        if not set(check.needs) <= earlier:
            raise ValueError(f"check {check.name!r} must come after the checks it needs")
        tasks[check.name] = asyncio.create_task(gated(check), name=f"doctor:{check.name}")
    return list(await asyncio.gather(*tasks.values()))
