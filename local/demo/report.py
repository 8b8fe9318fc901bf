"""What the demo shows: progress bars while it runs, then the summary table and the JSON report.

On a terminal the bars redraw in place, one line each; in a log (no terminal) each bar is written
once, when it is finished, so CI output stays readable.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO


def bar_line(label: str, done: int, total: int, width: int = 30) -> str:
    filled = int(width * min(done, total) / max(total, 1))
    return f"  {label:<24} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


class Bars:
    """Named progress bars, drawn in the order first seen."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._rows: dict[str, str] = {}
        self._final: set[str] = set()
        self._drawn = 0

    def update(self, label: str, done: int, total: int) -> None:
        line = bar_line(label, done, total)
        if self._rows.get(label) == line:
            return
        self._rows[label] = line
        if self._tty:
            self._redraw()

    def finish(self, label: str) -> None:
        """The bar is done: written once when not on a terminal, left in place on one."""
        if label in self._final or label not in self._rows:
            return
        self._final.add(label)
        if not self._tty:
            print(self._rows[label], file=self._stream, flush=True)

    def note(self, text: str) -> None:
        """A line of its own above the bars."""
        if self._tty and self._drawn:
            self._stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0
            print(text, file=self._stream, flush=True)
            self._redraw()
        else:
            print(text, file=self._stream, flush=True)

    def close(self) -> None:
        """Forget the bars drawn so far: what follows is written below them."""
        for label in list(self._rows):
            self.finish(label)
        self._rows.clear()
        self._drawn = 0

    def _redraw(self) -> None:
        if self._drawn:
            self._stream.write(f"\x1b[{self._drawn}F")
        for line in self._rows.values():
            self._stream.write(f"\x1b[2K{line}\n")
        self._stream.flush()
        self._drawn = len(self._rows)


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")


def summary(report: dict[str, Any]) -> str:
    """The table a first-time user reads."""
    r = report
    latency = r["latency_ms"]
    rows: list[tuple[str, object]] = [
        ("orders created in the store", r["orders"]),
        ("order lines", r["lines"]),
        ("synced to Dataverse", r["synced"]),
        ("fulfillment orders (split orders)", f"{r['fulfillment_orders']} ({r['split_orders']})"),
        ("BigCommerce shipments", r["shipments"]),
        ("refunds (BigCommerce = Dataverse)", r["refunds"]),
        ("webhook deliveries (of them duplicates)", _deliveries(r)),
        ("parked, then replayed after the fix", _replay(r)),
    ]
    lines = [_title(r), ""]
    lines += [f"  {label:<42} {value}" for label, value in rows]
    lines += ["", "  orders per final state"]
    for state, count in sorted(r["final_states"].items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"    {state:<40} {count}")
    lines += [
        "",
        f"  {'API calls per order':<42} BigCommerce {r['bigcommerce_requests_per_order']}, "
        f"Dataverse {r['dataverse_requests_per_order']}",
        f"  {'created -> fulfillment order (latency)':<42} p50 {_ms(latency['p50'])}, "
        f"p99 {_ms(latency['p99'])} ({latency['orders']} orders)",
        "",
        f"  {'lost':<42} {r['lost']}",
        f"  {'duplicate records / shipments / refunds':<42} {r['duplicate_records']} / "
        f"{r['duplicate_shipments']} / {r['duplicate_refunds']}",
        f"  {'state mismatches (orders and lines)':<42} {r['state_mismatches']}",
        f"  {'still parked or held':<42} {len(r['parked'])}",
        f"  {'seconds':<42} {r['seconds']}",
    ]
    for item in r["parked"][:8]:
        lines.append(f"    order {item['order']}: {item['reason']}")
    if len(r["parked"]) > 8:
        lines.append(f"    … and {len(r['parked']) - 8} more (see the report)")
    return "\n".join(lines)


def _title(r: dict[str, Any]) -> str:
    return (
        f"BigCommerce -> Dataverse order lifecycle: {r['orders']} orders "
        f"(seed {r['seed']}, ~{r['duplicate_share']:.0%} of webhooks delivered twice)"
    )


def _deliveries(r: dict[str, Any]) -> str:
    webhooks = r["webhooks"]
    return f"{webhooks['delivered']} ({webhooks['duplicates']})"


def _replay(r: dict[str, Any]) -> str:
    replay = r["replay"]
    return (
        f"{replay['held_for_missing_product']} held for {replay['missing_sku']}, "
        f"{replay['released']} released"
    )


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"
