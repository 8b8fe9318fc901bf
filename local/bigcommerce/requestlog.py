"""What the simulator records about each API request, for tests and the admin API to inspect."""

from __future__ import annotations

from dataclasses import asdict, dataclass
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
        return asdict(self)
