"""The worker killed at random moments, and started again, as a crash and a supervisor would.

After a wait drawn from the run's seeded `random.Random`, and only while the worker has work in
flight (a message active or locked on `order-events` or `dataverse-events`), the function host
is SIGKILLed wherever it is: mid-step, mid-write, between a BigCommerce write and the Dataverse
write recording it. A new host starts at once on the same state; the dead one's messages come
back when their locks expire, and webhooks sent meanwhile fail and are retried by the store.

Kills wait for a moment when the store has few webhooks on their way (`MAX_BACKLOG`): a kill
during a burst fails the whole burst at once, and below 90% of deliveries succeeding over two
minutes BigCommerce blocks the destination for three (local/bigcommerce/webhooks/blocklist.py),
which the reconciliation sweep survives, but slowly. Only the first wave is killed: once it has
settled, the killer stops (`stop`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field

from local.chaos.stack import ChaosStack
from local.demo.settle import busy_queues
from local.demo.stack import Stack

BUSY_POLL_SECONDS = 0.2
MAX_BACKLOG = 25  # webhooks the store is about to send (not counting scheduled retries)


@dataclass
class Killer:
    chaos: ChaosStack
    stack: Stack  # the driver's view; its host is swapped for the new one
    rng: random.Random
    interval: tuple[float, float]
    max_kills: int
    kills: int = 0
    restarting: bool = False
    down_seconds: list[float] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        while self.kills < self.max_kills:
            if await _stopped(stop, self.rng.uniform(*self.interval)):
                return
            while not await self._good_moment():
                if await _stopped(stop, BUSY_POLL_SECONDS):
                    return
            await self.kill_and_restart()

    async def _good_moment(self) -> bool:
        """Work in flight, and few webhooks about to go out."""
        if not busy_queues(self.stack):
            return False
        status = (await self.stack.sim.get("/__sim/webhooks")).json()
        return int(status["pending"]) - len(status["scheduled_retries"]) <= MAX_BACKLOG

    async def kill_and_restart(self) -> None:
        self.restarting = True
        try:
            killed = time.monotonic()
            await asyncio.to_thread(self.chaos.kill)
            self.kills += 1
            await asyncio.to_thread(self.chaos.restart)
            self.stack.host = self.chaos.host
            self.down_seconds.append(round(time.monotonic() - killed, 1))
        finally:
            self.restarting = False


async def _stopped(stop: asyncio.Event, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
