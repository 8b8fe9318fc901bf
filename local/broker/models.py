"""Value types of the local broker's public API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """The Service Bus queue properties the local broker honours, with Service Bus defaults."""

    requires_session: bool = False
    lock_duration: timedelta = timedelta(seconds=60)
    max_delivery_count: int = 10
    # None switches duplicate detection off.
    duplicate_detection_window: timedelta | None = timedelta(minutes=10)
    default_time_to_live: timedelta | None = timedelta(days=14)
    dead_lettering_on_expiration: bool = True

    def __post_init__(self) -> None:
        if self.lock_duration <= timedelta(0):
            raise ValueError("lock_duration must be positive")
        if self.max_delivery_count < 1:
            raise ValueError("max_delivery_count must be at least 1")
        window = self.duplicate_detection_window
        if window is not None and window <= timedelta(0):
            raise ValueError("duplicate_detection_window must be positive or None")
        ttl = self.default_time_to_live
        if ttl is not None and ttl <= timedelta(0):
            raise ValueError("default_time_to_live must be positive or None")


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """Counts at one instant. `active_count` includes locked messages, as in Service Bus."""

    name: str
    settings: QueueSettings
    active_count: int
    scheduled_count: int
    dead_letter_count: int
    locked_count: int


@dataclass(frozen=True, slots=True)
class SessionLock:
    """A receiver's exclusive hold on one session; `locked_until` is as of acquisition."""

    queue: str
    session_id: str
    lock_token: str
    locked_until: datetime
