"""What one sweep of one store found and did, logged once and kept for `reconcile` and a doctor.

`SweepMetrics` is filled in by the sweep (`sweep.py`). When the sweep ends, `emit` writes:

- ONE structured event, logger `connector.reconcile`, message `reconciliation sweep of <store>:
  …`, with every figure as a field (`extra`, so the JSON formatter of
  shared/observability/json_logging.py puts them on the line): `"metric": "reconcile.sweep"`,
  `store_hash`, `outcome`, `orders_checked`, `orders_missing`, `orders_stale`,
  `orders_enqueued`, `refunds_checked`, `refunds_missing`, `reverse_found`, `enqueued`,
  `coverage`, `oldest_unsynced_seconds`, `duration_seconds`, …;
- one record per custom metric (`CUSTOM_METRICS`), `"customMetric": "reconcile.<figure>"`,
  `"value": <number>`, `"store": <store hash>`.

Application Insights receives these as traces (the Functions host forwards the worker's log
records). No OpenTelemetry dependency is needed to chart or alert on them: Azure Monitor turns
them into log-based metrics and log alerts over a KQL query, for example

    traces
    | extend m = parse_json(message)
    | where tostring(m.customMetric) == "reconcile.coverage"
    | summarize coverage = min(todouble(m.value)) by tostring(m.store), bin(timestamp, 15m)

(an alert when coverage stays below 1, or when `reconcile.oldest_unsynced_seconds` grows: orders
the connector keeps failing to sync).

`store_result` upserts the last result in the state store, partition `sweeps`, key the store hash,
for `python -m cli reconcile` and the doctor to show.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from shared.state.ports import StateStore

SWEEPS_PARTITION: Final = "sweeps"
METRIC_EVENT: Final = "reconcile.sweep"

Outcome = Literal["ok", "failed", "lease_lost"]

# The figures also emitted one by one as custom metrics.
CUSTOM_METRICS: Final = (
    "orders_checked",
    "orders_missing",
    "orders_stale",
    "enqueued",
    "refunds_missing",
    "reverse_found",
    "coverage",
    "oldest_unsynced_seconds",
    "duration_seconds",
)

log = logging.getLogger("connector.reconcile")


@dataclass
class SweepMetrics:
    """One sweep of one store. Counts are of distinct (order id, date_modified) states."""

    store_hash: str
    started_at: datetime
    finished_at: datetime | None = None
    outcome: Outcome = "ok"
    errors: list[str] = field(default_factory=list)
    pages: int = 0  # BigCommerce pages read (orders and refunds)
    orders_checked: int = 0  # orders compared with Dataverse
    orders_missing: int = 0  # no salesorder
    orders_stale: int = 0  # a salesorder older than BigCommerce, or another status
    orders_skipped: int = 0  # not compared: incomplete (status 0) or not taken in
    orders_enqueued: int = 0
    refunds_checked: int = 0
    refunds_missing: int = 0
    refunds_enqueued: int = 0
    reverse_found: int = 0  # Dataverse changes BigCommerce does not reflect yet
    reverse_enqueued: int = 0
    oldest_unsynced: datetime | None = None  # the oldest change found not in sync
    watermarks: dict[str, str] = field(default_factory=dict)  # stream -> ISO 8601, as stored

    def unsynced(self, since: datetime | None) -> None:
        if since is not None and (self.oldest_unsynced is None or since < self.oldest_unsynced):
            self.oldest_unsynced = since

    def fail(self, part: str, error: BaseException | str) -> None:
        self.outcome = "failed"
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self.errors.append(f"{part}: {text}")

    @property
    def enqueued(self) -> int:
        """Messages sent to repair something (orders, refunds, reverse changes)."""
        return self.orders_enqueued + self.refunds_enqueued + self.reverse_enqueued

    @property
    def coverage(self) -> float:
        """The share of the BigCommerce orders checked that were present and current in
        Dataverse; 1.0 when none was checked."""
        if not self.orders_checked:
            return 1.0
        current = self.orders_checked - self.orders_missing - self.orders_stale
        return round(current / self.orders_checked, 6)

    @property
    def oldest_unsynced_seconds(self) -> float:
        """How long the oldest change found out of sync has waited; 0 when none was."""
        if self.oldest_unsynced is None:
            return 0.0
        end = self.finished_at or self.started_at
        return round(max((end - self.oldest_unsynced).total_seconds(), 0.0), 3)

    @property
    def duration_seconds(self) -> float:
        end = self.finished_at or self.started_at
        return round(max((end - self.started_at).total_seconds(), 0.0), 3)

    def to_json(self) -> dict[str, Any]:
        return {
            "store_hash": self.store_hash,
            "outcome": self.outcome,
            "errors": list(self.errors),
            "started_at": self.started_at.isoformat(),
            "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
            "duration_seconds": self.duration_seconds,
            "pages": self.pages,
            "orders_checked": self.orders_checked,
            "orders_missing": self.orders_missing,
            "orders_stale": self.orders_stale,
            "orders_skipped": self.orders_skipped,
            "orders_enqueued": self.orders_enqueued,
            "refunds_checked": self.refunds_checked,
            "refunds_missing": self.refunds_missing,
            "refunds_enqueued": self.refunds_enqueued,
            "reverse_found": self.reverse_found,
            "reverse_enqueued": self.reverse_enqueued,
            "enqueued": self.enqueued,
            "coverage": self.coverage,
            "oldest_unsynced": (
                None if self.oldest_unsynced is None else self.oldest_unsynced.isoformat()
            ),
            "oldest_unsynced_seconds": self.oldest_unsynced_seconds,
            "watermarks": dict(self.watermarks),
        }

    def summary(self) -> str:
        return (
            f"{self.orders_checked} orders checked, {self.orders_missing} missing, "
            f"{self.orders_stale} stale; {self.refunds_checked} refunds checked, "
            f"{self.refunds_missing} missing; {self.reverse_found} Dataverse changes pending; "
            f"{self.enqueued} enqueued; coverage {self.coverage:.2%}"
        )


def emit(metrics: SweepMetrics, logger: logging.Logger = log) -> None:
    """The sweep's one structured event, then its custom metrics (see the module docstring)."""
    document = metrics.to_json()
    level = logging.INFO if metrics.outcome == "ok" else logging.WARNING
    logger.log(
        level,
        "reconciliation sweep of %s: %s (%s)",
        metrics.store_hash,
        metrics.summary(),
        metrics.outcome,
        extra={"metric": METRIC_EVENT, **document},
    )
    for name in CUSTOM_METRICS:
        value = document[name]
        logger.info(
            "customMetric reconcile.%s=%s store=%s",
            name,
            value,
            metrics.store_hash,
            extra={
                "customMetric": f"reconcile.{name}",
                "value": value,
                "store": metrics.store_hash,
            },
        )


async def store_result(state: StateStore, metrics: SweepMetrics) -> None:
    """The last sweep's result, for `python -m cli reconcile` and the doctor (last writer wins)."""
    await state.upsert(SWEEPS_PARTITION, metrics.store_hash, metrics.to_json())


async def last_result(state: StateStore, store_hash: str) -> dict[str, Any] | None:
    entity = await state.get(SWEEPS_PARTITION, store_hash)
    return None if entity is None else dict(entity.value)
