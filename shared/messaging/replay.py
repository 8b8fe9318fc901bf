"""What a replayed dead letter looks like, shared by the Azure and the local adapters.

A replay's message id is derived from the dead letter, never random: if a replay is interrupted
after the copy was sent but before the dead letter was removed, running it again produces the same
id, and the queue's duplicate detection drops the second copy.
"""

from __future__ import annotations

import hashlib
from typing import Final

from shared.messaging.message import InboundMessage, OutboundMessage
from shared.messaging.ports import ReplayedMessage

MAX_MESSAGE_ID_LENGTH: Final = 128
REPLAYED_FROM_PROPERTY: Final = "replayed_from"


def replay_message_id(original_id: str, sequence_number: int) -> str:
    """`{original_id}:replay:{sequence_number}`, shortened with a hash when over 128 characters."""
    candidate = f"{original_id}:replay:{sequence_number}"
    if len(candidate) <= MAX_MESSAGE_ID_LENGTH:
        return candidate
    digest = hashlib.sha256(candidate.encode()).hexdigest()[:24]
    tail = f"~{digest}:replay:{sequence_number}"
    return original_id[: MAX_MESSAGE_ID_LENGTH - len(tail)] + tail


def replay_copy(dead_letter: InboundMessage) -> OutboundMessage:
    """The message a replay sends: same body, session and properties, a new deterministic id."""
    properties = dict(dead_letter.application_properties)
    properties[REPLAYED_FROM_PROPERTY] = dead_letter.message_id
    return OutboundMessage(
        body=dead_letter.body,
        message_id=replay_message_id(dead_letter.message_id, dead_letter.sequence_number),
        session_id=dead_letter.session_id,
        application_properties=properties,
        content_type=dead_letter.content_type,
        correlation_id=dead_letter.correlation_id,
        subject=dead_letter.subject,
        time_to_live=dead_letter.time_to_live,
    )


def replay_report(dead_letter: InboundMessage) -> ReplayedMessage:
    """What the operator is told about one replayed (or, in a dry run, replayable) dead letter."""
    return ReplayedMessage(
        sequence_number=dead_letter.sequence_number,
        original_message_id=dead_letter.message_id,
        new_message_id=replay_message_id(dead_letter.message_id, dead_letter.sequence_number),
        session_id=dead_letter.session_id,
        dead_letter_reason=dead_letter.dead_letter_reason,
    )
