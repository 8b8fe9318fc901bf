"""Exceptions raised by the local broker, named after their Service Bus counterparts."""

from __future__ import annotations


class BrokerError(Exception):
    """Base class of every error the local broker raises on purpose."""


class QueueNotFound(BrokerError, LookupError):
    """The queue was never created with `ensure_queue`."""


class SessionIdRequired(BrokerError, ValueError):
    """A message without a session id was sent to a session-enabled queue."""


class MessageLockLostError(BrokerError):
    """The message lock expired, was settled already, or the token is unknown."""


class SessionLockLostError(BrokerError):
    """The session lock expired, was released, or was taken over by another receiver."""


class SessionLockedError(BrokerError):
    """Another receiver holds the lock of the requested session."""


class MessageNotFoundError(BrokerError, LookupError):
    """No dead letter with that sequence number exists in the queue."""


class BrokerClosedError(BrokerError):
    """The broker was used after `close()`."""
