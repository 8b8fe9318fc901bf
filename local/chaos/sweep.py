"""The chaos run's last word on settling: the worker is up and a reconciliation sweep, run by
the operator's `python -m cli reconcile`, finds nothing missing and leaves nothing to do.

Webhooks the store dropped are healed by the host's reconciliation timer during the run
(every two minutes here); this sweep proves none is left. It runs with the host's settings,
against the same broker and state store, so it shares the timer's lease (a sweep the timer holds
is reported as skipped and tried again) and its watermarks. What it finds missing or stale it
enqueues; the settle loop then waits for that work and sweeps again.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from local.chaos.killer import Killer
from local.chaos.stack import ChaosStack
from local.demo.settle import busy_queues
from local.demo.stack import Stack
from local.stack.cli_process import run_cli


@dataclass
class FinalSweep:
    chaos: ChaosStack
    stack: Stack
    killer: Killer
    sweeps: list[dict[str, Any]] = field(default_factory=list)  # each sweep's metrics
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # a wave settled

    async def __call__(self) -> str | None:
        """None when settled; else why not."""
        if self.killer.restarting:
            return "the worker is being restarted"
        code, output = await self._reconcile()
        try:
            report: dict[str, Any] = json.loads(output)
            [store] = report["stores"]
        except (ValueError, KeyError, TypeError):
            return f"python -m cli reconcile failed ({code}): {output.strip()[-300:]}"
        metrics = store.get("metrics")
        if store.get("status") != "swept" or not metrics or metrics.get("errors"):
            reason = store.get("reason") or (metrics or {}).get("errors")
            return f"the reconciliation sweep did not complete: {store.get('status')}: {reason}"
        self.sweeps.append(metrics)
        missing = int(metrics["orders_missing"]) + int(metrics["refunds_missing"])
        if missing:
            return f"the reconciliation sweep found {missing} orders or refunds missing"
        if busy := busy_queues(self.stack):
            return f"the reconciliation sweep enqueued work: {busy}"
        self.settled.set()
        return None

    async def _reconcile(self) -> tuple[int, str]:
        done = await run_cli("reconcile", "--skip-hooks", "--json", env=self.chaos.env)
        return done.returncode, done.stdout or done.stderr

    def figures(self) -> dict[str, Any]:
        return {
            "final_sweeps": len(self.sweeps),
            "found_missing": sum(
                int(m["orders_missing"]) + int(m["refunds_missing"]) for m in self.sweeps
            ),
            "found_stale": sum(int(m["orders_stale"]) for m in self.sweeps),
            "last": self.sweeps[-1] if self.sweeps else None,
        }
