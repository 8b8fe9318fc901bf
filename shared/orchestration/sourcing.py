"""The fulfillment policy (IOM's fulfillment optimization, in small), as a pure plan.

`plan_fulfillment` decides which fulfillment source ships which order line, from the flow's
`FulfillmentPolicy` and the stock the caller read. It does no I/O: the same input gives the same
plan. The rules:

- **Eligible sources** serve the ship-to country (`Source.serves`; a source without `countries`
  serves everywhere). They are ranked by `(priority, position in the file)`: lower is better.
- **Stock.** `inventory: unlimited` always has stock; `{SKU: quantity}` is the configured stock;
  `inventory: dataverse` reads `stock[(source, sku)]`, a missing entry being 0 available
  (`inventory_skus` says which SKUs to read). A line without a SKU only finds stock at an
  unlimited source.
- **(a) One source.** The best eligible source that has every line (the summed demand of each SKU)
  ships the whole order: one fulfillment order.
- **(b) Line by line.** Otherwise each line, in the order given, goes whole to the best eligible
  source that still has enough of it (stock is decremented on a local copy). A line is never
  split across sources (iom.md §6 fact 8); a line no source has is unsourced.
- **(c) Too many sources, or unsourced lines.**
  - `when_unsourced: hold` gives `Unsourced`, with a reason naming the lines ("inventory not
    found for SKU X (line 12) in any source serving US"), IOM's "Inventory not found".
  - `when_unsourced: backorder` sends lines to `backorder_source`, which takes them whether or not
    it has stock or serves the ship-to country (they wait there, as IOM's "Backorder Hold"):
    every unsourced line, and, when the sources used plus the backorder source number more than
    `max_splits`, the lines of the worst-ranked sources. The rule: keep the best
    `max_splits - 1` sources used other than the backorder source, move the lines of every other
    source there. The backorder source is one of the `max_splits`, so the plan always fits
    (`max_splits` is at least 1: with 1, everything goes to the backorder source). The lines
    moved are listed in `Plan.backordered`.

The fulfillment orders are keyed `<order id>-<n>`, n = 1, 2, … in source rank order, and list
their lines in the order given. Lines with no quantity left (0 or less) are not planned; no lines
give an empty plan. Whether an order needs shipping at all (a digital order) is the caller's
concern.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from shared.orchestration.flow import FulfillmentPolicy, Source
from shared.orchestration.ports import PlannedFulfillment, PlannedLine

_NAMED_LINES_MAX: Final = 10  # a hold reason names at most this many lines, then counts the rest
_SKU_MAX_LENGTH: Final = 60


@dataclass(frozen=True, slots=True)
class SourcingLine:
    """One order line to source: its open quantity and SKU (None for a write-in line)."""

    order_product_id: int
    sku: str | None
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class Plan:
    """The fulfillment orders to create; `backordered` lists the order_product_ids sent to the
    backorder source without stock found for them (or beyond `max_splits`), in line order."""

    fulfillments: tuple[PlannedFulfillment, ...]
    backordered: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Unsourced:
    """No acceptable plan under `when_unsourced: hold`: the order waits, with `reason`.
    `lines` lists the order_product_ids no source had, in line order (empty when the order was
    held for needing more than `max_splits` sources)."""

    reason: str
    lines: tuple[int, ...] = ()


def plan_fulfillment(
    order_id: int,
    lines: Sequence[SourcingLine],
    ship_to_country: str | None,
    policy: FulfillmentPolicy,
    stock: Mapping[tuple[str, str], Decimal],
) -> Plan | Unsourced:
    """The fulfillment plan for an order's lines, or why it cannot be sourced (module doc)."""
    wanted = [line for line in lines if line.quantity > 0]
    if not wanted:
        return Plan(())
    ranked = _ranked(policy.sources)
    eligible = [s for s in ranked if s.serves(ship_to_country)]

    for source in eligible:  # (a) the best single source that has everything
        if _has_all(source, wanted, stock):
            return Plan(_fulfillments(order_id, wanted, [source.name] * len(wanted), ranked))

    source_of: list[str | None] = []  # (b) line by line: the source of each wanted line
    remaining = _Remaining(stock)
    for line in wanted:
        found = next((s for s in eligible if remaining.take(s, line)), None)
        source_of.append(None if found is None else found.name)

    unsourced = [line for line, name in zip(wanted, source_of, strict=True) if name is None]
    used = [s.name for s in ranked if s.name in source_of]
    if not unsourced and len(used) <= policy.max_splits:
        return Plan(_fulfillments(order_id, wanted, source_of, ranked))
    if policy.when_unsourced == "hold" or policy.backorder_source is None:
        reason = _hold_reason(unsourced, used, eligible, ship_to_country, policy.max_splits)
        return Unsourced(reason, tuple(line.order_product_id for line in unsourced))
    backorder = policy.backorder_source
    others = [name for name in used if name != backorder]
    kept = {*others[: policy.max_splits - 1], backorder}
    moved = [name is None or name not in kept for name in source_of]
    final = [backorder if m else name for name, m in zip(source_of, moved, strict=True)]
    backordered = tuple(x.order_product_id for x, m in zip(wanted, moved, strict=True) if m)
    return Plan(_fulfillments(order_id, wanted, final, ranked), backordered)


def inventory_skus(policy: FulfillmentPolicy, lines: Iterable[SourcingLine]) -> set[str]:
    """The SKUs whose stock `plan_fulfillment` reads from Dataverse: those of the lines to plan
    when some source has `inventory: dataverse`, else none (no query needed)."""
    if not any(s.inventory == "dataverse" for s in policy.sources):
        return set()
    return {line.sku for line in lines if line.sku and line.quantity > 0}


# -- stock -----------------------------------------------------------------------------------------


def _ranked(sources: Sequence[Source]) -> list[Source]:
    order = sorted(range(len(sources)), key=lambda i: (sources[i].priority, i))
    return [sources[i] for i in order]


def _available(
    source: Source, sku: str | None, stock: Mapping[tuple[str, str], Decimal]
) -> Decimal | None:
    """What the source has of the SKU; None for unlimited."""
    inventory = source.inventory
    if inventory == "unlimited":
        return None
    if sku is None:
        return Decimal(0)
    if inventory == "dataverse":
        quantity = stock.get((source.name, sku), Decimal(0))
    else:
        quantity = inventory.get(sku, Decimal(0))
    return max(quantity, Decimal(0))


def _has_all(
    source: Source, lines: Sequence[SourcingLine], stock: Mapping[tuple[str, str], Decimal]
) -> bool:
    demand: dict[str | None, Decimal] = {}
    for line in lines:
        demand[line.sku] = demand.get(line.sku, Decimal(0)) + line.quantity
    for sku, quantity in demand.items():
        available = _available(source, sku, stock)
        if available is not None and available < quantity:
            return False
    return True


class _Remaining:
    """The stock left while lines are assigned one by one (a local copy: `stock` is untouched)."""

    def __init__(self, stock: Mapping[tuple[str, str], Decimal]) -> None:
        self._stock = stock
        self._left: dict[tuple[str, str | None], Decimal | None] = {}

    def take(self, source: Source, line: SourcingLine) -> bool:
        """Takes the whole line from the source if it has enough left."""
        key = (source.name, line.sku)
        if key not in self._left:
            self._left[key] = _available(source, line.sku, self._stock)
        left = self._left[key]
        if left is None:
            return True
        if left < line.quantity:
            return False
        self._left[key] = left - line.quantity
        return True


# -- plans -----------------------------------------------------------------------------------------


def _fulfillments(
    order_id: int,
    lines: Sequence[SourcingLine],
    sources: Sequence[str | None],
    ranked: Sequence[Source],
) -> tuple[PlannedFulfillment, ...]:
    """One fulfillment order per source with lines (`sources[i]` ships `lines[i]`), in rank
    order, keyed `<order id>-<n>`; each lists its lines in the order given."""
    names = [s.name for s in ranked if s.name in sources]
    return tuple(
        PlannedFulfillment(
            key=f"{order_id}-{n}",
            source=name,
            lines=tuple(
                PlannedLine(line.order_product_id, line.quantity)
                for line, source in zip(lines, sources, strict=True)
                if source == name
            ),
        )
        for n, name in enumerate(names, start=1)
    )


def _hold_reason(
    unsourced: Sequence[SourcingLine],
    used: Sequence[str],
    eligible: Sequence[Source],
    country: str | None,
    max_splits: int,
) -> str:
    code = (country or "").strip().upper()
    if not eligible:
        if code:
            return f"no fulfillment source serves ship-to country {code}"
        return "no fulfillment source serves an order without a ship-to country"
    parts: list[str] = []
    if unsourced:
        named = [_line_name(line) for line in unsourced[:_NAMED_LINES_MAX]]
        if len(unsourced) > _NAMED_LINES_MAX:
            named.append(f"{len(unsourced) - _NAMED_LINES_MAX} more lines")
        where = f"serving {code}" if code else "serving every country"
        parts.append(f"inventory not found for {', '.join(named)} in any source {where}")
    if len(used) > max_splits:
        parts.append(
            f"the lines need {len(used)} sources ({', '.join(used)}), "
            f"more than max_splits {max_splits}"
        )
    return "; ".join(parts)


def _line_name(line: SourcingLine) -> str:
    sku = " ".join((line.sku or "").split())
    if not sku:
        return f"line {line.order_product_id} (no SKU)"
    if len(sku) > _SKU_MAX_LENGTH:
        sku = sku[: _SKU_MAX_LENGTH - 1] + "…"
    return f"SKU {sku} (line {line.order_product_id})"
