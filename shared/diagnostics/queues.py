"""The queue checks: each queue of `shared/messaging/queues.py` exists, answers, and has the
properties the code relies on (sessions, lock duration, deliveries before dead-lettering,
duplicate detection, time to live, dead-lettering on expiry).

Reading a queue's properties needs Manage rights; the app's identity usually has only Data
Sender and Data Receiver. Then the properties are reported as not verified (a
warning), and the queue is still proved reachable by peeking its dead-letter sub-queue, which
any receiver may do and which has no sessions even when the queue has.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from shared.diagnostics.result import CheckResult
from shared.messaging.ports import (
    AccessDeniedError,
    QueueAdmin,
    QueueNotFoundError,
    QueueProperties,
)
from shared.messaging.queues import QueueSpec

HINT: Final = (
    "check ServiceBusConnection__fullyQualifiedNamespace (or SERVICEBUS_TRANSPORT=local and "
    "LOCAL_BROKER_PATH), the network path to the namespace, and that the identity has Azure "
    "Service Bus Data Sender and Data Receiver"
)
MISSING_HINT: Final = (
    "create the queue as shared/messaging/queues.py specifies (azd provision creates every "
    "queue; the local host creates them when it starts)"
)
DIFFERENT_HINT: Final = (
    "set the queue's properties as shared/messaging/queues.py specifies (azd provision applies "
    "them; sessions cannot be changed on an existing queue: delete and recreate it when empty)"
)
FORBIDDEN_HINT: Final = (
    "cannot verify the properties (needs Reader/Manage): run the doctor as an identity that may "
    "read them (Azure Service Bus Data Owner, or a Manage connection string), or compare them "
    "in the portal (Reader) with shared/messaging/queues.py"
)


def check_name(spec: QueueSpec) -> str:
    return f"queue {spec.name}"


def span(value: timedelta | None) -> str:
    """`1m`, `2d`, `10m`, `14d`, `1h30m`, or `off`."""
    if value is None:
        return "off"
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def _on(value: bool) -> str:
    return "on" if value else "off"


def _described(
    requires_session: bool,
    lock_duration: timedelta,
    max_delivery_count: int,
    duplicate_detection_window: timedelta | None,
    default_time_to_live: timedelta | None,
    dead_lettering_on_expiration: bool,
) -> dict[str, str]:
    return {
        "sessions": _on(requires_session),
        "lock duration": span(lock_duration),
        "max delivery count": str(max_delivery_count),
        "duplicate detection": span(duplicate_detection_window),
        "time to live": span(default_time_to_live),
        "dead-lettering on expiration": _on(dead_lettering_on_expiration),
    }


def differences(spec: QueueSpec, found: QueueProperties) -> list[str]:
    """What differs from the spec, one phrase each; empty when the queue is as required."""
    expected = _described(
        spec.requires_session,
        spec.lock_duration,
        spec.max_delivery_count,
        spec.duplicate_detection_window,
        spec.default_time_to_live,
        spec.dead_lettering_on_expiration,
    )
    actual = _described(
        found.requires_session,
        found.lock_duration,
        found.max_delivery_count,
        found.duplicate_detection_window,
        found.default_time_to_live,
        found.dead_lettering_on_expiration,
    )
    return [
        f"{name} {actual[name]} (needs {expected[name]})"
        for name in expected
        if actual[name] != expected[name]
    ]


def summary(found: QueueProperties) -> str:
    return (
        f"sessions {_on(found.requires_session)}, lock {span(found.lock_duration)}, "
        f"{found.max_delivery_count} deliveries, "
        f"duplicate detection {span(found.duplicate_detection_window)}, "
        f"TTL {span(found.default_time_to_live)}, "
        f"dead-letter on expiry {_on(found.dead_lettering_on_expiration)}"
    )


async def check_queue(admin: QueueAdmin, spec: QueueSpec) -> CheckResult:
    name = check_name(spec)
    try:
        found = await admin.queue_properties(spec.name)
    except QueueNotFoundError:
        return CheckResult.failed(name, "the queue does not exist", MISSING_HINT)
    except AccessDeniedError:
        await admin.peek_dead_letters(spec.name, 1)  # raises when the queue cannot be reached
        return CheckResult.warned(
            name, "reachable (peeked); properties not verified", FORBIDDEN_HINT
        )
    different = differences(spec, found)
    if different:
        return CheckResult.failed(name, "; ".join(different), DIFFERENT_HINT)
    return CheckResult.passed(name, summary(found))
