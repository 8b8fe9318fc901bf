"""The transport ports: how the core sends messages and how operators inspect queues.

Two adapters implement each: Azure Service Bus (shared/messaging/azure_servicebus.py) and the
local SQLite broker (local/broker/adapters.py). Receiving belongs to the Functions host, so the
core needs no receiver port.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from shared.messaging.message import InboundMessage, OutboundMessage


class SendError(Exception):
    """The broker did not confirm the send: the caller must not acknowledge upstream."""


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
class ReplayedMessage:
    """One dead letter sent back to its queue (or that would be, in a dry run)."""

    sequence_number: int
    original_message_id: str
    new_message_id: str
    session_id: str | None
    dead_letter_reason: str | None


class QueueAdmin(Protocol):
    async def queue_counts(self) -> list[QueueCounts]: ...

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
