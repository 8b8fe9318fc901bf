"""The message shapes that cross the transport port, independent of any broker SDK.

`OutboundMessage` is what a producer hands to a sender; `InboundMessage` is what a consumer is
given, with the broker's delivery metadata. Both mirror the Service Bus message properties this
project relies on, so the Azure adapter and the local broker map them one to one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

PropertyValue = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    body: bytes
    message_id: str
    session_id: str | None = None
    application_properties: Mapping[str, PropertyValue] = field(default_factory=dict)
    content_type: str | None = "application/json"
    correlation_id: str | None = None
    subject: str | None = None
    scheduled_enqueue_time: datetime | None = None
    time_to_live: timedelta | None = None

    def __post_init__(self) -> None:
        if not self.message_id:
            raise ValueError("message_id must not be empty")
        if len(self.message_id) > 128:
            raise ValueError("message_id is longer than 128 characters")
        if self.session_id is not None and len(self.session_id) > 128:
            raise ValueError("session_id is longer than 128 characters")
        if self.scheduled_enqueue_time is not None and self.scheduled_enqueue_time.tzinfo is None:
            raise ValueError("scheduled_enqueue_time must be timezone-aware")


@dataclass(frozen=True, slots=True)
class InboundMessage:
    body: bytes
    message_id: str
    sequence_number: int
    delivery_count: int
    enqueued_time: datetime
    session_id: str | None = None
    application_properties: Mapping[str, PropertyValue] = field(default_factory=dict)
    content_type: str | None = None
    correlation_id: str | None = None
    subject: str | None = None
    lock_token: str | None = None
    locked_until: datetime | None = None
    expires_at: datetime | None = None
    scheduled_enqueue_time: datetime | None = None
    time_to_live: timedelta | None = None
    dead_letter_reason: str | None = None
    dead_letter_error_description: str | None = None
    dead_letter_source: str | None = None
