"""What happens to each order after the connector released it, and the loop that makes it so.

Every order gets a script when it is created, drawn from the demo's seeded `random.Random` in
order id order, so a seed always tells the same story whatever the timing:

- ship: the warehouse ships every fulfillment order in full; the connector creates the
  BigCommerce shipments and completes the order;
- partial: the warehouse ships part of the order and stops there: a split order ships one of its
  fulfillment orders, any other a short line (Partially Shipped on both sides); what is left, and
  the fulfillment order the connector makes of a short line's remainder, stays open;
- cancel before fulfillment: the merchant cancels in BigCommerce once the order is released;
- cancel after a partial shipment: as partial, then the merchant cancels the rest in BigCommerce;
- cancel in Dataverse: a Dynamics user cancels the released salesorder (one or two orders);
- refund: shipped in full, then refunded in BigCommerce once completed (a line or everything).

The loop reads Dataverse about twice a second: the open fulfillment orders (what the warehouse
sees), and the salesorders of the orders waiting for a state before their next act (released and
quiet for a cancellation, partially shipped for the cancellation after it, completed for a
refund). Each act happens once. `actions` counts them, for the settle check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from local.demo import merchant, warehouse
from local.demo.stack import Stack
from local.demo.warehouse import OpenFulfillment

log = logging.getLogger("local.demo")

TICK_SECONDS: Final = 0.4  # for a few hundred orders; a bigger store looks less often
RELEASED, PARTIALLY_SHIPPED, SHIPPED_STATUS, COMPLETED = 11, 3, 2, 10
CHUNK: Final = 40  # order ids per salesorder query


class Script(StrEnum):
    SHIP = "ship"
    PARTIAL = "partial"
    CANCEL_BEFORE = "cancel before fulfillment"
    CANCEL_AFTER_PARTIAL = "cancel after a partial shipment"
    CANCEL_IN_DATAVERSE = "cancel in Dataverse"
    REFUND = "refund"


# (script, share) for the orders not cancelled in Dataverse; the rest ship in full.
SHARES: Final = (
    (Script.PARTIAL, 0.10),
    (Script.CANCEL_BEFORE, 0.07),
    (Script.CANCEL_AFTER_PARTIAL, 0.06),
    (Script.REFUND, 0.16),
)


@dataclass
class Plan:
    order_id: int
    script: Script
    rng: random.Random
    partial_done: bool = False
    cancelled: bool = False
    refunded: bool = False

    @property
    def waiting(self) -> bool:
        """Waiting for a salesorder state before the next act."""
        if self.script is Script.REFUND:
            return not self.refunded
        if self.script is Script.CANCEL_AFTER_PARTIAL:
            return self.partial_done and not self.cancelled
        return False


@dataclass
class Tally:
    """What the warehouse and the merchant did."""

    fulfillments_seen: set[str] = field(default_factory=set)
    fulfillments_done: set[str] = field(default_factory=set)  # shipped, or left as planned
    shipped: int = 0
    short_shipped: int = 0
    held_back: int = 0  # fulfillment orders of partial orders left unshipped on purpose
    cancelled_in_bigcommerce: int = 0
    cancelled_in_dataverse: int = 0
    refunds: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


def cast(order_ids: Iterable[int], seed: int) -> dict[int, Plan]:
    """A script for each order, from the seed alone."""
    rng = random.Random(seed)
    ids = sorted(order_ids)
    scripts: dict[int, Script] = {}
    for order_id in ids:
        draw, script = rng.random(), Script.SHIP
        for candidate, share in SHARES:
            if draw < share:
                script = candidate
                break
            draw -= share
        scripts[order_id] = script
    shipping = [i for i in ids if scripts[i] is Script.SHIP]
    for order_id in rng.sample(shipping, min(len(shipping), 1 if len(ids) < 25 else 2)):
        scripts[order_id] = Script.CANCEL_IN_DATAVERSE
    return {i: Plan(i, scripts[i], random.Random(f"{seed}/order/{i}")) for i in ids}


class Scenario:
    def __init__(
        self,
        stack: Stack,
        seed: int,
        on_progress: Callable[[Tally], None] | None = None,
        *,
        tick_seconds: float = TICK_SECONDS,
    ) -> None:
        self.stack = stack
        self.seed = seed
        self.tick_seconds = tick_seconds
        self.plans: dict[int, Plan] = {}
        self.tally = Tally()
        self.actions = 0  # acts so far: a settled system sees this stand still
        self.idle = False  # the last pass found nothing to do
        self._on_progress = on_progress

    def add(self, plans: dict[int, Plan]) -> None:
        self.plans.update(plans)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                acted = await self.tick()
            except Exception as exc:  # a stand-in hiccup: note it and look again
                self.tally.errors.append(f"{type(exc).__name__}: {exc}")
                log.warning("demo pass failed: %s", exc)
                acted = 1
            self.actions += acted
            self.idle = acted == 0
            if self._on_progress is not None:
                self._on_progress(self.tally)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.tick_seconds)

    async def tick(self) -> int:
        open_now = await warehouse.open_fulfillments(self.stack)
        states = await self._salesorders(self._needing_state(open_now))
        acted = 0
        for order_id, fulfillments in sorted(open_now.items()):
            plan = self.plans.get(order_id)
            if plan is None:
                continue
            self.tally.fulfillments_seen.update(f.key for f in fulfillments)
            acted += await self._on_open(plan, fulfillments, states.get(order_id))
        for plan in self.plans.values():
            if plan.waiting and plan.order_id in states:
                acted += await self._on_state(plan, states[plan.order_id])
        return acted

    # -- the acts --------------------------------------------------------------------------

    async def _on_open(
        self, plan: Plan, fulfillments: Sequence[OpenFulfillment], state: dict[str, Any] | None
    ) -> int:
        script = plan.script
        if script in (Script.CANCEL_BEFORE, Script.CANCEL_IN_DATAVERSE):
            if plan.cancelled or not _released_and_quiet(state):
                return 0
            return await self._cancel(plan, fulfillments)
        if script in (Script.PARTIAL, Script.CANCEL_AFTER_PARTIAL):
            if plan.partial_done:  # what is left (and any remainder) stays open, or is cancelled
                left = [f.key for f in fulfillments if f.key not in self.tally.fulfillments_done]
                self.tally.held_back += len(left)
                self.tally.fulfillments_done.update(left)
                return 0
            return await self._ship_part(plan, fulfillments, state)
        for fulfillment in fulfillments:
            await warehouse.ship(self.stack, fulfillment, self.seed)
            self._shipped(fulfillment)
        return len(fulfillments)

    async def _ship_part(
        self, plan: Plan, fulfillments: Sequence[OpenFulfillment], state: dict[str, Any] | None
    ) -> int:
        if len(fulfillments) >= 2:
            first, *rest = fulfillments
            await warehouse.ship(self.stack, first, self.seed)
            self._shipped(first)
            self.tally.held_back += len(rest)
            self.tally.fulfillments_done.update(f.key for f in rest)
            plan.partial_done = True
            return 1
        only = fulfillments[0]
        short = warehouse.short_line(only)
        if short is None:  # one unit of one line: it ships whole, or is cancelled whole
            if plan.script is Script.CANCEL_AFTER_PARTIAL:
                if not _released_and_quiet(state):
                    return 0
                plan.script = Script.CANCEL_BEFORE
                return await self._cancel(plan, fulfillments)
            plan.script = Script.SHIP
            await warehouse.ship(self.stack, only, self.seed)
            self._shipped(only)
            return 1
        await warehouse.ship(self.stack, only, self.seed, short=short)
        self._shipped(only)
        self.tally.short_shipped += 1
        plan.partial_done = True
        return 1

    async def _cancel(self, plan: Plan, fulfillments: Sequence[OpenFulfillment]) -> int:
        if plan.script is Script.CANCEL_IN_DATAVERSE:
            await merchant.cancel_in_dataverse(self.stack, plan.order_id)
            self.tally.cancelled_in_dataverse += 1
        else:
            await merchant.cancel_in_bigcommerce(self.stack, plan.order_id)
            self.tally.cancelled_in_bigcommerce += 1
        plan.cancelled = True
        self.tally.fulfillments_done.update(f.key for f in fulfillments)
        return 1

    async def _on_state(self, plan: Plan, state: dict[str, Any]) -> int:
        lifecycle, status = state.get("bciom_lifecycle"), state.get("bciom_bcstatusid")
        if plan.script is Script.CANCEL_AFTER_PARTIAL:
            if lifecycle != "partially_shipped" or status != PARTIALLY_SHIPPED:
                return 0
            await merchant.cancel_in_bigcommerce(self.stack, plan.order_id)
            self.tally.cancelled_in_bigcommerce += 1
            plan.cancelled = True
            return 1
        if lifecycle != "completed" or status != COMPLETED:
            return 0
        plan.refunded = True  # once, whatever happens
        try:
            done = await merchant.refund(self.stack, plan.order_id, plan.rng)
        except Exception as exc:  # the store refused: say so in the report
            self.tally.errors.append(f"refund of order {plan.order_id}: {exc}")
            return 1
        if done is not None:
            self.tally.refunds[done[0]] += 1
        return 1

    def _shipped(self, fulfillment: OpenFulfillment) -> None:
        self.tally.shipped += 1
        self.tally.fulfillments_done.add(fulfillment.key)

    # -- reading Dataverse -----------------------------------------------------------------

    def _needing_state(self, open_now: dict[int, list[OpenFulfillment]]) -> list[int]:
        wanted = {p.order_id for p in self.plans.values() if p.waiting}
        for order_id in open_now:
            plan = self.plans.get(order_id)
            if plan is not None and not plan.cancelled and plan.script in _CANCELLING:
                wanted.add(order_id)
        return sorted(wanted)

    async def _salesorders(self, order_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        found: dict[int, dict[str, Any]] = {}
        for start in range(0, len(order_ids), CHUNK):
            chunk = order_ids[start : start + CHUNK]
            ids = " or ".join(f"bciom_bcorderid eq {i}" for i in chunk)
            async for row in self.stack.dataverse.rows(
                "salesorders",
                select=["bciom_bcorderid", "bciom_lifecycle", "bciom_bcstatusid", "statecode"],
                filter=f"bciom_storehash eq '{self.stack.store_hash}' and ({ids})",
            ):
                found[int(row["bciom_bcorderid"])] = row
        return found


_CANCELLING: Final = (Script.CANCEL_BEFORE, Script.CANCEL_IN_DATAVERSE, Script.CANCEL_AFTER_PARTIAL)


def _released_and_quiet(state: dict[str, Any] | None) -> bool:
    """Released, and the connector's own run is over: BigCommerce shows Awaiting Fulfillment and
    Dataverse has recorded it (cancelling under a run that is still writing would race it)."""
    return (
        state is not None
        and state.get("bciom_lifecycle") == "released"
        and state.get("bciom_bcstatusid") == RELEASED
        and state.get("statecode") == 0
    )
