"""`orders` commands: list the orders parked on `order-parked`, and replay them after the fix.

The lifecycle runner parks a message it cannot process for a permanent reason (a hold, a mapping
error, a 4xx, an unreadable message) on `order-parked`, with `park_reason`, `park_description`,
`parked_at` and, when it could read the message, `store_hash`, `order_id` and `trigger` as
application properties (shared/orchestration/runner.py).

`orders parked` lists them. `orders replay` sends one `connector.order` message with trigger
`replay` per selected order back to the order's session on `order-events`, under a new message id
(so duplicate detection keeps it) and with the parked message's correlation id, then completes
every parked message of that order: several parked messages of one order make one replay. A
replayed order that still fails is parked again. A parked message that names no order (its body
was unreadable) is listed but never replayed. Exit codes: 0 done, 1 nothing matched or something
could not be replayed, 2 usage or configuration error.

Like `queues`, they talk to Azure Service Bus when `ServiceBusConnection__fullyQualifiedNamespace`
or `ServiceBusConnection` is set, otherwise to the local broker; `SERVICEBUS_TRANSPORT=local` or
`--broker PATH` always selects the local broker.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

from cli import EXIT_FAILURE, EXIT_OK
from cli.queues import DEFAULT_BROKER_PATH, PREVIEW_CHARS, _positive, open_admin, print_table
from shared.messaging.message import InboundMessage, OutboundMessage
from shared.messaging.ports import MovedMessage, QueueAdmin
from shared.messaging.queues import ORDER_EVENTS, ORDER_PARKED
from shared.orchestration.flow import Trigger
from shared.orchestration.messages import build_order_message

DEFAULT_MAX: Final = 100
NO_ORDER: Final = "-"

OrderKey = tuple[str, int]


def register(groups: Any) -> None:
    """Adds the `orders` group to the top-level subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--broker", metavar="PATH", help="use the local broker at PATH, whatever the environment"
    )
    common.add_argument(
        "--max",
        type=_positive,
        default=DEFAULT_MAX,
        metavar="N",
        dest="max_messages",
        help=f"look at the first N parked messages (default {DEFAULT_MAX})",
    )
    parser = groups.add_parser("orders", help="list and replay parked orders")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    parked = commands.add_parser("parked", parents=[common], help="list the parked orders")
    parked.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parked.set_defaults(run=list_parked)

    replay = commands.add_parser(
        "replay", parents=[common], help="send parked orders back to order-events"
    )
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--order",
        type=order_key,
        nargs="+",
        action="extend",
        metavar="STORE:ID",
        dest="orders",
        help="the order(s) to replay, e.g. abc123:250",
    )
    which.add_argument("--all", action="store_true", help="every parked order")
    replay.add_argument("--dry-run", action="store_true", help="only show what would be replayed")
    replay.set_defaults(run=replay_parked)


def order_key(value: str) -> OrderKey:
    """`STORE:ID` as typed on the command line."""
    store_hash, _, order_id = value.rpartition(":")
    if not store_hash or not order_id.isdigit() or int(order_id) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not STORE:ID (e.g. abc123:250)")
    return store_hash, int(order_id)


@dataclass(frozen=True, slots=True)
class Parked:
    """A parked message as the operator sees it."""

    message: InboundMessage

    def _text(self, name: str) -> str | None:
        value = self.message.application_properties.get(name)
        return None if value is None else str(value)

    @property
    def order(self) -> OrderKey | None:
        """The order the runner recorded, or None when it could not read the message."""
        properties = self.message.application_properties
        store_hash, order_id = properties.get("store_hash"), properties.get("order_id")
        if isinstance(order_id, str) and order_id.isdigit():
            order_id = int(order_id)
        if not isinstance(store_hash, str) or not store_hash:
            return None
        if not isinstance(order_id, int) or isinstance(order_id, bool) or order_id < 1:
            return None
        return store_hash, order_id

    @property
    def order_label(self) -> str:
        order = self.order
        return NO_ORDER if order is None else f"{order[0]}:{order[1]}"

    @property
    def trigger(self) -> str | None:
        return self._text("trigger")

    @property
    def reason(self) -> str | None:
        return self._text("park_reason")

    @property
    def description(self) -> str | None:
        return self._text("park_description")

    @property
    def parked_at(self) -> str | None:
        return self._text("parked_at")

    @property
    def correlation_id(self) -> str:
        return (
            self.message.correlation_id
            or self._text("correlation_id")
            or self._text("origin_message_id")
            or self.message.message_id
        )

    def to_json(self) -> dict[str, object]:
        order = self.order
        return {
            "order": None if order is None else self.order_label,
            "store_hash": None if order is None else order[0],
            "order_id": None if order is None else order[1],
            "replayable": order is not None,
            "trigger": self.trigger,
            "park_reason": self.reason,
            "park_description": self.description,
            "parked_at": self.parked_at,
            "origin_queue": self._text("origin_queue"),
            "origin_message_id": self._text("origin_message_id"),
            "correlation_id": self.correlation_id,
            "sequence_number": self.message.sequence_number,
            "message_id": self.message.message_id,
            "delivery_count": self.message.delivery_count,
            "enqueued_time": self.message.enqueued_time.isoformat(),
            "application_properties": dict(self.message.application_properties),
            "body": self.message.body.decode("utf-8", "replace"),
        }


def _short(text: str | None) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"


@asynccontextmanager
async def _open_admin(args: argparse.Namespace) -> AsyncIterator[QueueAdmin]:
    """As `queues` does, except that `SERVICEBUS_TRANSPORT=local` also means the local broker."""
    if args.broker is None and os.environ.get("SERVICEBUS_TRANSPORT") == "local":
        args.broker = os.environ.get("LOCAL_BROKER_PATH") or str(DEFAULT_BROKER_PATH)
    async with open_admin(args) as admin:
        yield admin


def _limit_note(count: int, max_messages: int) -> None:
    if count >= max_messages:
        print(f"(looked at the first {max_messages} parked messages only: --max for more)")


async def list_parked(args: argparse.Namespace) -> int:
    async with _open_admin(args) as admin:
        parked = [Parked(m) for m in await admin.peek(ORDER_PARKED.name, args.max_messages)]
    if args.json:
        print(json.dumps([p.to_json() for p in parked], indent=2))
        return EXIT_OK
    if not parked:
        print(f"no parked orders in {ORDER_PARKED.name}")
        return EXIT_OK
    print_table(
        ("SEQUENCE", "ORDER", "TRIGGER", "REASON", "PARKED-AT", "DESCRIPTION"),
        [
            (
                p.message.sequence_number,
                p.order_label,
                p.trigger,
                p.reason,
                p.parked_at,
                _short(p.description),
            )
            for p in parked
        ],
    )
    unreadable = sum(1 for p in parked if p.order is None)
    if unreadable:
        print(f"{unreadable} parked message(s) name no order ({NO_ORDER}): they cannot be replayed")
    _limit_note(len(parked), args.max_messages)
    return EXIT_OK


class _Replays:
    """The transform of a replay: one new `connector.order` message per order, reused for every
    parked message of that order, so that the admin sends it once and completes them all."""

    def __init__(self) -> None:
        self.messages: dict[OrderKey, OutboundMessage] = {}

    def __call__(self, message: InboundMessage) -> OutboundMessage | None:
        parked = Parked(message)
        order = parked.order
        if order is None:
            return None
        replay = self.messages.get(order)
        if replay is None:
            properties = message.application_properties
            traceparent = properties.get("traceparent")
            replay = build_order_message(
                trigger=Trigger.REPLAY,
                store_hash=order[0],
                order_id=order[1],
                message_id=uuid.uuid4().hex,  # new: duplicate detection must not drop it
                correlation_id=parked.correlation_id,
                origin_message_id=str(properties.get("origin_message_id") or message.message_id),
                detail=f"parked: {parked.reason or 'unknown reason'}",
                traceparent=traceparent if isinstance(traceparent, str) else None,
            )
            self.messages[order] = replay
        return replay


def _print_replays(title: str, moved: Sequence[MovedMessage]) -> None:
    """One row per replay message, with how many parked messages it stands for and why."""
    rows: dict[str, tuple[str, list[str], MovedMessage]] = {}
    for item in moved:
        parked = Parked(item.source)
        _, reasons, _ = rows.setdefault(item.sent.message_id, (parked.order_label, [], item))
        reasons.append(parked.reason or "?")
    print(title)
    print_table(
        ("ORDER", "PARKED", "REASON", "SESSION", "NEW-ID"),
        [
            (
                label,
                len(reasons),
                ", ".join(dict.fromkeys(reasons)),
                first.sent.session_id,
                first.sent.message_id,
            )
            for label, reasons, first in rows.values()
        ],
    )


async def replay_parked(args: argparse.Namespace) -> int:
    wanted: set[OrderKey] | None = None if args.all else set(args.orders)
    async with _open_admin(args) as admin:
        parked = [Parked(m) for m in await admin.peek(ORDER_PARKED.name, args.max_messages)]
        unreadable = [p for p in parked if p.order is None]
        chosen = [
            p for p in parked if p.order is not None and (wanted is None or p.order in wanted)
        ]
        chosen_sequences = {p.message.sequence_number for p in chosen}
        moved: list[MovedMessage] = []
        if chosen:
            moved = await admin.move(
                ORDER_PARKED.name,
                ORDER_EVENTS.name,
                _Replays(),
                max_messages=args.max_messages,
                dry_run=args.dry_run,
                select=lambda m: m.sequence_number in chosen_sequences,
            )
    if moved:
        orders = len({m.sent.message_id for m in moved})
        verb = "dry run: would replay" if args.dry_run else "replayed"
        _print_replays(
            f"{verb} {orders} order(s) from {len(moved)} parked message(s) to {ORDER_EVENTS.name}",
            moved,
        )
    problems = _report_problems(parked, unreadable, chosen, moved, wanted, args.all)
    if not moved and not problems:
        print(f"no parked orders to replay in {ORDER_PARKED.name}")
    if not moved or problems:
        _limit_note(len(parked), args.max_messages)
    return EXIT_OK if moved and not problems else EXIT_FAILURE


def _report_problems(
    parked: Sequence[Parked],
    unreadable: Sequence[Parked],
    chosen: Sequence[Parked],
    moved: Sequence[MovedMessage],
    wanted: Collection[OrderKey] | None,
    every: bool,
) -> bool:
    """Prints, one line each, what was asked for and not replayed; True if anything was."""
    problems = False
    found = {p.order for p in parked}
    for store_hash, order_id in sorted(set(wanted or ()) - found):
        print(f"not replayed: no parked message for order {store_hash}:{order_id}", file=sys.stderr)
        problems = True
    if every:
        for p in unreadable:
            print(
                f"not replayed: parked message {p.message.sequence_number} "
                f"({p.message.message_id}) names no order ({p.reason}: {_short(p.description)})",
                file=sys.stderr,
            )
            problems = True
    elif unreadable:
        print(
            f"note: {len(unreadable)} parked message(s) name no order and were not considered "
            "(see `orders parked`)"
        )
    done = {m.sequence_number for m in moved}
    for p in chosen:
        if p.message.sequence_number not in done:
            print(
                f"not replayed: parked message {p.message.sequence_number} of order "
                f"{p.order_label} could not be received (locked by another receiver?); "
                "run the replay again",
                file=sys.stderr,
            )
            problems = True
    return problems
