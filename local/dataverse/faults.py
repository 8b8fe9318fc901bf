"""Fault injection and what the request log records, for the admin API under /__sim.

A fault forces the next `count` API requests under a path prefix (below /api/data/v9.2/, e.g.
`$batch` or `salesorders`; empty for all) to fail:
- `kind: "status"` answers `status` (500, 502, 503, 504, ...) with an error body; a 429 is the
  service-protection answer for `limit` (`requests`, `execution` or `concurrency`) with
  `Retry-After: retry_after`;
- `kind: "timeout"` holds the request for `delay_ms` and then answers 504, so a client with a
  shorter timeout sees its own timeout.
Random throttling (`throttle_rate`, a share of requests answered 429) lives in the settings.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Final

from local.standin import faults

LIMITS: Final = ("requests", "execution", "concurrency")


@dataclass(slots=True)
class Fault(faults.Fault):
    kind: str = "status"  # status | timeout
    delay_ms: int = 0
    limit: str = "requests"  # for 429s: which service protection limit
    retry_after: int = 1


class FaultInjector(faults.FaultInjector[Fault]):
    def add(
        self,
        path_prefix: str,
        status: int,
        count: int = 1,
        method: str | None = None,
        *,
        kind: str = "status",
        delay_ms: int = 0,
        limit: str = "requests",
        retry_after: int = 1,
    ) -> Fault:
        if kind not in ("status", "timeout"):
            raise ValueError("kind must be 'status' or 'timeout'")
        faults.validate(status, count)
        if limit not in LIMITS:
            raise ValueError(f"limit must be one of {', '.join(LIMITS)}")
        if delay_ms < 0 or retry_after < 0:
            raise ValueError("delay_ms and retry_after cannot be negative")
        fault = Fault(
            self.next_id(),
            path_prefix.lstrip("/"),
            status,
            count,
            faults.method_filter(method),
            kind,
            delay_ms,
            limit,
            retry_after,
        )
        return self.arm(fault)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    time: str  # ISO 8601, UTC
    method: str
    path: str
    query: str
    status: int
    duration_ms: float
    identity: str

    def as_json(self) -> dict[str, Any]:
        # Not dataclasses.asdict, which deep-copies: the admin API lists thousands of these.
        return {f.name: getattr(self, f.name) for f in fields(self)}
