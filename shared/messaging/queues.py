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


ORDER_EVENTS: Final = QueueSpec(
    name="order-events",
    requires_session=True,  # one order per session: in order, one worker at a time
    lock_duration=timedelta(minutes=1),
    max_delivery_count=10,
    # BigCommerce retries a failed delivery for about 48 hours; redeliveries inside the window
    # are dropped by the broker, later ones by the consumers' idempotency.
    duplicate_detection_window=timedelta(days=2),
    default_time_to_live=timedelta(days=14),
)

# Messages Dataverse's Service Bus integration sends (RemoteExecutionContext JSON from a registered
# service endpoint). Dataverse sets no session id, so this queue has no sessions; its function
# forwards each change into the order's session on order-events.
DATAVERSE_EVENTS: Final = QueueSpec(
    name="dataverse-events",
    requires_session=False,
    lock_duration=timedelta(minutes=1),
    max_delivery_count=10,
    duplicate_detection_window=timedelta(minutes=10),
    default_time_to_live=timedelta(days=14),
)

# Order messages a step could not process for a permanent reason (a hold, a mapping error, a
# 4xx), with the reason and description as properties, until an operator replays them
# (`python -m cli orders replay`). Functions cannot dead-letter a message without the preview
# settlement extension, so parking is a send to this queue followed by completing the original.
ORDER_PARKED: Final = QueueSpec(
    name="order-parked",
    requires_session=False,
    lock_duration=timedelta(minutes=1),
    # A selective replay receives and puts back the parked messages ahead of the ones it wants;
    # each time counts as a delivery, so the limit is high enough not to dead-letter them.
    max_delivery_count=100,
    duplicate_detection_window=timedelta(days=2),
    default_time_to_live=timedelta(days=60),
)

ALL_QUEUES: Final = (ORDER_EVENTS, DATAVERSE_EVENTS, ORDER_PARKED)
