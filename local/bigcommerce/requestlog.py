"""What the simulator records about each API request, for tests and the admin API to inspect."""

from __future__ import annotations

from dataclasses import dataclass, fields
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
        return {f.name: getattr(self, f.name) for f in fields(self)}
