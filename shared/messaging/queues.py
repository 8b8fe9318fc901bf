"""The Service Bus queues the code uses, with the properties it relies on.

One source of truth: the trigger bindings name these queues, the local stack creates them, and
the Bicep test checks that infra/ provisions exactly these with these properties.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: str
    requires_session: bool
    lock_duration: timedelta
    max_delivery_count: int
    duplicate_detection_window: timedelta | None
    default_time_to_live: timedelta
    dead_lettering_on_expiration: bool = True


BIGCOMMERCE_EVENTS: Final = QueueSpec(
    name="bigcommerce-events",
    requires_session=True,  # one order per session: in order, one worker at a time
    lock_duration=timedelta(minutes=1),
    max_delivery_count=10,
    # BigCommerce retries a failed delivery for about 48 hours; redeliveries inside the window
    # are dropped by the broker, later ones by the consumers' idempotency.
    duplicate_detection_window=timedelta(days=2),
    default_time_to_live=timedelta(days=14),
)

ALL_QUEUES: Final = (BIGCOMMERCE_EVENTS,)
