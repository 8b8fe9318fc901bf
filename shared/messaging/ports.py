"""The transport ports: how the core sends messages and how operators inspect queues.

Two adapters implement each: Azure Service Bus (shared/messaging/azure_servicebus.py) and the
local SQLite broker (local/broker/adapters.py). Receiving belongs to the Functions host, so the
core needs no receiver port; the admin's `move` receives for the operator CLI only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from shared.messaging.message import InboundMessage, OutboundMessage


class SendError(Exception):
    """The broker did not confirm the send: the caller must not acknowledge upstream."""


class QueueNotFoundError(LookupError):
    """The queue does not exist."""


class AccessDeniedError(Exception):
    """The identity may not do this (reading queue properties needs Manage rights, which Data
    Sender/Receiver do not give)."""


class MessageSender(Protocol):
    async def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        """Returns only once the broker has durably accepted every message; raises SendError.

        A message whose id the broker has seen within its duplicate-detection window is accepted
        and silently dropped, as Service Bus does.
        """
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class QueueCounts:
    name: str
    active: int
    scheduled: int
    dead_letter: int


@dataclass(frozen=True, slots=True)
class QueueProperties:
    """The properties of a queue that `shared/messaging/queues.py` specifies, as the broker
    reports them. `duplicate_detection_window` is None when duplicate detection is off."""

    name: str
    requires_session: bool
    lock_duration: timedelta
    max_delivery_count: int
    duplicate_detection_window: timedelta | None
    default_time_to_live: timedelta | None
    dead_lettering_on_expiration: bool


@dataclass(frozen=True, slots=True)
class ReplayedMessage:
    """One dead letter sent back to its queue (or that would be, in a dry run)."""

    sequence_number: int
    original_message_id: str
    new_message_id: str
    session_id: str | None
    dead_letter_reason: str | None


@dataclass(frozen=True, slots=True)
class MovedMessage:
    """One message sent to the target queue and completed in its source (or that would be, in a
    dry run). Sources whose transform gave the same message id share one `sent` message."""

    source: InboundMessage
    sent: OutboundMessage

    @property
    def sequence_number(self) -> int:
        return self.source.sequence_number


class QueueAdmin(Protocol):
    async def queue_counts(self) -> list[QueueCounts]: ...

    async def queue_properties(self, queue: str) -> QueueProperties:
        """Reads the queue's properties; changes nothing. QueueNotFoundError when it does not
        exist, AccessDeniedError when the identity may not read them."""
        ...

    async def peek(self, queue: str, max_messages: int) -> list[InboundMessage]:
        """Up to `max_messages` of the queue's messages, lowest sequence number first, unchanged.

        What Service Bus's peek shows: active messages, locked ones included, and scheduled ones;
        never dead letters. Only queues without sessions (Service Bus peeks a session queue one
        session at a time): a session-enabled queue raises ValueError.
        """
        ...

    async def move(
        self,
        source_queue: str,
        target_queue: str,
        transform: Callable[[InboundMessage], OutboundMessage | None],
        *,
        max_messages: int,
        dry_run: bool,
        select: Callable[[InboundMessage], bool] | None = None,
    ) -> list[MovedMessage]:
        """Moves messages of a queue without sessions to another queue, at least once.

        Looks at the first `max_messages` messages of `source_queue` (as `peek` does) and takes
        those `select` accepts (all when None). Then it receives them with a peek-lock and, for
        each, sends `transform(message)` to `target_queue` and completes the source message only
        once the send succeeded: a crash in between leaves the source message to be moved again.
        A transform that returns None leaves its message in the source (abandoned). A message id
        the transform already returned in this call is not sent again: its source is completed,
        so several sources can be folded into one message. Messages received on the way that were
        not selected are abandoned at the end; each receive counts as a delivery, as on Service
        Bus. Selected messages that could not be received (locked by another receiver, scheduled)
        are left, and missing from the result.

        In a dry run it only peeks (the transform is called on the peeked messages) and returns
        what it would move; nothing changes. A failed send raises SendError once every message
        still held is abandoned; those moved before it stay moved. A session-enabled source
        raises ValueError.
        """
        ...

    async def peek_dead_letters(self, queue: str, max_messages: int) -> list[InboundMessage]: ...

    async def replay_dead_letters(
        self, queue: str, sequence_numbers: Sequence[int] | None, *, dry_run: bool
    ) -> list[ReplayedMessage]:
        """Sends dead letters back with a new message id and the same session id.

        `sequence_numbers` None means all. In a dry run nothing changes.
        """
        ...

    async def purge(self, queue: str, *, dead_letters: bool) -> int: ...

    async def close(self) -> None: ...
