"""The reverse check: Dataverse changes that have not reached BigCommerce.

Dataverse changes reach the connector through a service endpoint or the change-tracking poll
(shared/handlers/dataverse_poll.py). Either can miss one: an endpoint that failed, a delta link
that expired ("changes since the last poll are left to reconciliation"). So each sweep also asks
the ledger for rows whose change BigCommerce does not reflect:

- fulfillment orders marked shipped (`bciom_shipped`) that have no `bciom_bcshipmentid` and are
  not cancelled: the shipment was never created in BigCommerce;
- salesorders cancelled in Dataverse (statecode 2) whose recorded BigCommerce status is not a
  cancelled one (5, 6): BigCommerce was never told.

Only rows modified more than `grace` ago are taken (default 2 minutes: the change's own message
may still be in flight), and only since this stream's watermark (less the overlap; a store's
first sweep looks back `first_lookback`). The window is what keeps the check bounded: a
salesorder closed in Dataverse is read-only, so its recorded BigCommerce status is never
rewritten after the connector cancelled the order in BigCommerce, and without a window such a
row would be found again on every sweep, forever.

Each row found becomes a `connector.order` message with trigger `reconcile` in the order's
session, with the message id `derived_id("reconcile", store, table, row id, versionnumber)`: two
sweeps that find the same row version send one message (the broker drops the second within its
duplicate-detection window), and a later change of the row is a new version, so a new message.
Orders the forward sweep already enqueued in the same sweep are not enqueued again (the same
message runs every step). The watermark moves to `now - grace` once the messages are sent.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from shared.messaging.message import OutboundMessage
from shared.messaging.ports import MessageSender
from shared.messaging.queues import ORDER_EVENTS
from shared.orchestration.flow import Trigger
from shared.orchestration.messages import build_order_message, derived_id
from shared.reconciliation.ports import PendingChange, SyncLedger
from shared.reconciliation.watermarks import Watermarks

STREAM: Final = "reverse"
DEFAULT_GRACE: Final = timedelta(minutes=2)
SEND_BATCH: Final = 250

log = logging.getLogger("connector.reconcile")


@dataclass(frozen=True, slots=True)
class ReverseResult:
    found: int = 0
    enqueued: int = 0
    oldest: datetime | None = None  # the oldest change found
    watermark: datetime | None = None  # as stored after the check


def change_message_id(store_hash: str, change: PendingChange) -> str:
    return derived_id("reconcile", store_hash, change.table, change.row_id, change.version)


def change_message(
    store_hash: str,
    change: PendingChange,
    *,
    correlation_id: str,
    traceparent: str | None = None,
) -> OutboundMessage:
    what = f" {change.detail}" if change.detail else ""
    return build_order_message(
        trigger=Trigger.RECONCILE,
        store_hash=store_hash,
        order_id=change.order_id,
        message_id=change_message_id(store_hash, change),
        correlation_id=correlation_id,
        detail=f"reconcile: {change.kind} in Dataverse not in BigCommerce ({change.table}{what})",
        traceparent=traceparent,
    )


async def check_reverse(
    *,
    store_hash: str,
    ledger: SyncLedger,
    sender: MessageSender,
    watermarks: Watermarks,
    now: datetime,
    overlap: timedelta,
    first_lookback: timedelta,
    grace: timedelta = DEFAULT_GRACE,
    already_enqueued: Collection[int] = (),
    correlation_id: str,
    traceparent: str | None = None,
) -> ReverseResult:
    """Finds the pending Dataverse changes of one store and enqueues their orders."""
    mark = await watermarks.load(STREAM)
    start = now - first_lookback if mark is None else mark - overlap
    until = now - grace
    if until <= start:
        return ReverseResult(watermark=mark)
    changes = await ledger.pending_changes(store_hash, modified_from=start, modified_before=until)
    messages: dict[str, OutboundMessage] = {}
    oldest: datetime | None = None
    for change in changes:
        if change.modified_on is not None and (oldest is None or change.modified_on < oldest):
            oldest = change.modified_on
        if change.order_id in already_enqueued:
            continue
        message = change_message(
            store_hash, change, correlation_id=correlation_id, traceparent=traceparent
        )
        messages.setdefault(message.message_id, message)
    outgoing = list(messages.values())
    for first in range(0, len(outgoing), SEND_BATCH):
        await sender.send(ORDER_EVENTS.name, outgoing[first : first + SEND_BATCH])
    if changes:
        log.info(
            "reverse check of %s: %d Dataverse changes not in BigCommerce, %d enqueued",
            store_hash,
            len(changes),
            len(outgoing),
        )
    stored = await watermarks.advance(STREAM, until, now=now)
    return ReverseResult(len(changes), len(outgoing), oldest, stored)
