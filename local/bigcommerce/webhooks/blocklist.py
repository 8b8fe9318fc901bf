"""The per-domain blocklist (`overview.mdx` §Callback retry mechanism).

Every request sent to a destination domain counts as a success (2xx) or a failure. Over a sliding
two-minute window of simulated time, once at least 100 requests have been sent, a success ratio
below 90% blocks the domain for three minutes. Blocking is per API account (client id), and all
paths of a domain count together (`domain.com/webhook-1` and `/webhook-2` affect each other).

A "domain" is the destination's host, plus its port when that is not the scheme's default: on
BigCommerce every destination is on port 443, whereas local receivers all live on 127.0.0.1 and
differ only by port, so the port stands in for what would be distinct domains.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

WINDOW: Final = timedelta(minutes=2)
MIN_REQUESTS: Final = 100
MIN_SUCCESS_RATIO: Final = 0.9
BLOCK_FOR: Final = timedelta(minutes=3)

DomainKey = tuple[str, str]  # (client_id, domain)


def domain_of(destination: str) -> str:
    parts = urlsplit(destination)
    host = (parts.hostname or "").lower()
    default = 443 if parts.scheme == "https" else 80
    port = parts.port
    return host if port in (None, default) else f"{host}:{port}"


def origin_of(destination: str) -> str:
    parts = urlsplit(destination)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(slots=True)
class _Domain:
    origin: str
    window: deque[tuple[datetime, bool, str]] = field(default_factory=deque)
    blocked_until: datetime | None = None
    blocked_at: datetime | None = None
    reasons: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BlockedDomain:
    client_id: str
    domain: str
    destination: str  # the domain's origin, e.g. https://example.com
    time_left: int  # seconds
    reasons: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        """An item of `GET /hooks/admin`'s `blocked_domains`."""
        return {
            "destination": self.destination,
            "time_left": self.time_left,
            "reasons": [dict(r) for r in self.reasons],
        }


class DomainBlocklist:
    def __init__(self) -> None:
        self._domains: dict[DomainKey, _Domain] = {}

    def _domain(self, client_id: str, destination: str) -> _Domain:
        key = (client_id, domain_of(destination))
        if key not in self._domains:
            self._domains[key] = _Domain(origin_of(destination))
        return self._domains[key]

    def blocked_until(self, client_id: str, destination: str, now: datetime) -> datetime | None:
        state = self._domains.get((client_id, domain_of(destination)))
        if state is None or state.blocked_until is None or state.blocked_until <= now:
            return None
        return state.blocked_until

    def record(
        self, client_id: str, destination: str, ok: bool, failure: str, now: datetime
    ) -> bool:
        """Counts one sent request; True when it gets the domain blocked."""
        state = self._domain(client_id, destination)
        window = state.window
        window.append((now, ok, failure))
        while window and window[0][0] <= now - WINDOW:
            window.popleft()
        if len(window) < MIN_REQUESTS:
            return False
        successes = sum(1 for _, success, _ in window if success)
        if successes / len(window) >= MIN_SUCCESS_RATIO:
            return False
        failures = Counter(reason for _, success, reason in window if not success)
        stamp = int(now.timestamp())
        state.reasons = [
            {"failure_description": reason, "count": count, "timestamp": stamp}
            for reason, count in failures.most_common()
        ]
        state.blocked_at, state.blocked_until = now, now + BLOCK_FOR
        window.clear()
        return True

    def blocked(self, client_id: str, now: datetime) -> list[BlockedDomain]:
        out = []
        for (client, domain), state in sorted(self._domains.items()):
            if client != client_id or state.blocked_until is None or state.blocked_until <= now:
                continue
            left = int((state.blocked_until - now).total_seconds() + 0.999)
            out.append(BlockedDomain(client, domain, state.origin, left, state.reasons))
        return out

    def block_started(self, client_id: str, destination: str) -> datetime | None:
        state = self._domains.get((client_id, domain_of(destination)))
        return None if state is None else state.blocked_at

    def reset(self) -> None:
        self._domains.clear()
