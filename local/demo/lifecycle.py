"""One run of the order lifecycle on a running stack, from seeding to the verdict.

The demo (`python -m local.demo`) and the chaos run (`python -m local.chaos`) both run it; the
chaos run adds its faults around it and a condition of its own to the settle check.

1. Dataverse is seeded and the store's webhooks registered; the store's network duplicates,
   reorders (and, for the chaos run, drops) deliveries.
2. The warehouse and the merchant start (`scenario.py`), `orders` orders are created, and the
   first wave settles (`settle.py`).
3. The operator creates the missing product and replays the parked orders
   (`python -m cli orders replay --all`); that settles too.
4. Both sides are read in full and judged (`judge.py`); what is still parked or held is listed.

A run that did not settle says so in `problems` and is still read and judged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from local.demo import seed
from local.demo.judge import (
    BigCommerceSide,
    DataverseSide,
    Verdict,
    judge,
    read_bigcommerce,
    read_dataverse,
)
from local.demo.report import Bars
from local.demo.scenario import TICK_SECONDS, Scenario, Tally, cast
from local.demo.settle import PROGRESS_SECONDS, NotSettled, Snapshot, parked_count, settle
from local.demo.stack import Stack
from local.demo.traffic import Traffic
from local.stack.cli_process import run_cli
from shared.messaging.message import InboundMessage
from shared.messaging.queues import ORDER_PARKED

# A check the settle loop makes last, once all else is quiet: a reason not to call it settled yet.
ExtraCheck = Callable[[], Awaitable[str | None]]


@dataclass(frozen=True)
class RunOptions:
    orders: int
    duplicates: float  # share of webhooks delivered twice
    seed: int
    timeout: float  # seconds each wave may take to settle
    drops: float = 0.0  # share of webhook deliveries lost for good
    webhook_retries: bool = True  # settling waits for the store's scheduled webhook retries

    @property
    def tick_seconds(self) -> float:
        """How often the warehouse and the merchant look: each look reads Dataverse, so a big
        store is looked at less often, leaving the stand-ins to the connector."""
        return max(TICK_SECONDS, self.orders / 1000)

    @property
    def progress_seconds(self) -> float:
        """How often both sides are read in full for the progress bar while work is queued."""
        return max(PROGRESS_SECONDS, self.orders / 100)


@dataclass
class Outcome:
    created: list[seed.CreatedOrder]
    scenario: Scenario
    traffic: Traffic
    bigcommerce: BigCommerceSide
    dataverse: DataverseSide
    verdict: Verdict
    parked: list[dict[str, Any]]
    held: set[int]  # held for the missing product after the first wave
    replay_output: str
    problems: list[str] = field(default_factory=list)  # a wave that did not settle, a replay


async def run_lifecycle(
    stack: Stack,
    options: RunOptions,
    bars: Bars,
    started: float,
    *,
    extra_check: ExtraCheck | None = None,
) -> Outcome:
    products = await seed.seed_dataverse(stack)
    await seed.register_webhooks(stack)
    await seed.switch_on_bad_network(stack, options.duplicates, options.seed, options.drops)
    lost = f", ~{options.drops:.0%} never" if options.drops else ""
    bars.note(
        f"Dataverse has {products} products (not {seed.MISSING_SKU}); creating "
        f"{options.orders} orders; the store delivers ~{options.duplicates:.0%} of webhooks "
        f"twice and out of order{lost}; the warehouse ships in Dataverse, the merchant cancels "
        "and refunds ..."
    )
    traffic = Traffic(stack)
    await traffic.start()

    def warehouse_bar(tally: Tally) -> None:
        seen = len(tally.fulfillments_seen)
        if seen:
            bars.update("fulfillment orders", len(tally.fulfillments_done), seen)

    scenario = Scenario(stack, options.seed, warehouse_bar, tick_seconds=options.tick_seconds)
    stop = asyncio.Event()
    floor = asyncio.create_task(scenario.run(stop))
    created = await seed.create_orders(
        stack,
        options.orders,
        options.seed,
        lambda done: bars.update("orders created", done, options.orders),
    )
    scenario.add(cast([c.order_id for c in created], options.seed))
    problems: list[str] = []
    held: set[int] = set()
    replay_output = ""

    def settling_bar(agreeing: int, total: int) -> None:
        bars.update("orders settled", agreeing, total)

    async def wave() -> Snapshot:
        return await settle(
            stack,
            scenario,
            options.timeout,
            settling_bar,
            extra_check,
            webhook_retries=options.webhook_retries,
            progress_seconds=options.progress_seconds,
        )

    try:
        first = await wave()
        held = held_for(first, seed.MISSING_SKU)
        bars.note(
            f"First wave settled after {time.monotonic() - started:.0f} s: {len(held)} "
            f"orders held for the missing product {seed.MISSING_SKU}. The operator creates "
            "it and runs `python -m cli orders replay --all` ..."
        )
        await seed.create_product(stack, seed.MISSING_SKU)
        if parked_count(stack):
            replay_output = await replay(stack)
        await wave()
    except NotSettled as exc:
        problems.append(str(exc))
    finally:
        stop.set()
        await floor
        bars.close()
    await traffic.stop()
    order_ids = [c.order_id for c in created]
    bigcommerce = await read_bigcommerce(stack, order_ids)
    dataverse = await read_dataverse(stack)
    return Outcome(
        created=created,
        scenario=scenario,
        traffic=traffic,
        bigcommerce=bigcommerce,
        dataverse=dataverse,
        verdict=judge(bigcommerce, dataverse),
        parked=parked(stack, dataverse),
        held=held,
        replay_output=replay_output,
        problems=problems,
    )


def held_for(snapshot: Snapshot, sku: str) -> set[int]:
    return {int(r[0]) for r in snapshot.salesorders if r[4] and f"'{sku}'" in str(r[4])}


async def replay(stack: Stack) -> str:
    """`python -m cli orders replay --all` on the stack's broker, as the operator runs it."""
    args = ("orders", "replay", "--all", "--broker", str(stack.broker_path), "--max", "100000")
    done = await run_cli(*args)
    text = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise NotSettled(f"the replay failed ({done.returncode}): {text}")
    return text


def parked(stack: Stack, dataverse: DataverseSide) -> list[dict[str, Any]]:
    """Still parked (on order-parked) or held (a hold reason on an open salesorder). A parked
    message's `reason` is its park reason and description as the runner wrote them."""
    found: dict[int, dict[str, Any]] = {}
    for message in peek_all(stack, ORDER_PARKED.name):
        properties = message.application_properties
        order = properties.get("order_id")
        order_id = int(order) if isinstance(order, int | str) and str(order).isdigit() else 0
        reason = f"{properties.get('park_reason')}: {properties.get('park_description')}"
        found.setdefault(
            order_id,
            {
                "order": order_id,
                "reason": reason,
                "where": "order-parked",
                "category": str(properties.get("park_reason")),
            },
        )
    for row in dataverse.salesorders:
        order_id = int(row["bciom_bcorderid"])
        hold = row.get("bciom_holdreason")
        if hold and row.get("statecode") == 0 and order_id not in found:
            found[order_id] = {"order": order_id, "reason": str(hold), "where": "held"}
    return [found[k] for k in sorted(found)]


def peek_all(stack: Stack, queue: str) -> list[InboundMessage]:
    messages: list[InboundMessage] = []
    start = 0
    while page := stack.broker.peek(queue, max_messages=500, from_sequence=start):
        messages += page
        start = page[-1].sequence_number + 1
    return messages
