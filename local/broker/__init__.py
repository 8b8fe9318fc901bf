"""Local stand-in for Azure Service Bus queues: a durable, multi-process SQLite broker."""

from .broker import MAX_DELIVERY_COUNT_EXCEEDED, TTL_EXPIRED, LocalBroker
from .errors import (
    BrokerClosedError,
    BrokerError,
    MessageLockLostError,
    MessageNotFoundError,
    QueueNotFound,
    SessionIdRequired,
    SessionLockedError,
    SessionLockLostError,
)
from .models import QueueInfo, QueueSettings, SessionLock

__all__ = [
    "MAX_DELIVERY_COUNT_EXCEEDED",
    "TTL_EXPIRED",
    "BrokerClosedError",
    "BrokerError",
    "LocalBroker",
    "MessageLockLostError",
    "MessageNotFoundError",
    "QueueInfo",
    "QueueNotFound",
    "QueueSettings",
    "SessionIdRequired",
    "SessionLock",
    "SessionLockLostError",
    "SessionLockedError",
]
