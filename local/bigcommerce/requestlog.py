"""What the simulator records about each API request, for tests and the admin API to inspect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RequestRecord:
    time: str  # ISO 8601, simulated time
    method: str
    path: str
    query: str
    status: int
    store_hash: str

    def as_json(self) -> dict[str, Any]:
        # Not dataclasses.asdict, which deep-copies: the admin API lists thousands of these.
        return {
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "store_hash": self.store_hash,
        }
