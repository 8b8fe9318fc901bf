"""`queues` commands: counts, dead-letter inspection, replay and purge.

They talk to Azure Service Bus when `ServiceBusConnection__fullyQualifiedNamespace` or
`ServiceBusConnection` is set (the same rule as the local stack), with the app's own settings;
otherwise to the local broker at `LOCAL_BROKER_PATH` or `.local/broker.sqlite3`. `--broker PATH`
always selects the local broker. Replay and purge ask before changing anything: on a terminal they
show what they would do and wait for a yes; elsewhere they refuse unless given `--yes`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

from cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from local.broker import LocalBroker
from local.broker.adapters import LocalQueueAdmin
from shared.config import ConfigurationError, Settings, load_settings
from shared.messaging.azure_servicebus import AzureQueueAdmin
from shared.messaging.message import InboundMessage
from shared.messaging.ports import QueueAdmin, ReplayedMessage

SERVICEBUS_SETTINGS: Final = (
    "ServiceBusConnection__fullyQualifiedNamespace",
    "ServiceBusConnection",
)
DEFAULT_BROKER_PATH: Final = Path(".local") / "broker.sqlite3"
PREVIEW_CHARS: Final = 60


def register(groups: Any) -> None:
    """Adds the `queues` group to the top-level subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--broker", metavar="PATH", help="use the local broker at PATH, whatever the environment"
    )
    parser = groups.add_parser("queues", help="inspect and repair Service Bus queues")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser("list", parents=[common], help="message counts per queue")
    listing.set_defaults(run=list_queues)

    peek = commands.add_parser("peek-dlq", parents=[common], help="show a queue's dead letters")
    peek.add_argument("queue")
    peek.add_argument("--max", type=_positive, default=20, metavar="N", dest="max_messages")
    peek.add_argument("--json", action="store_true", help="print JSON instead of a table")
    peek.set_defaults(run=peek_dead_letters)

    replay = commands.add_parser(
        "replay", parents=[common], help="send dead letters back to their queue with new ids"
    )
    replay.add_argument("queue")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--sequence", type=int, nargs="+", action="extend", metavar="N", dest="sequences"
    )
    which.add_argument("--all", action="store_true", help="every dead letter of the queue")
    replay.add_argument("--dry-run", action="store_true", help="only show what would be replayed")
    replay.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    replay.set_defaults(run=replay_dead_letters)

    purge = commands.add_parser("purge", parents=[common], help="delete a queue's messages")
    purge.add_argument("queue")
    purge.add_argument("--dead-letters", action="store_true", help="purge the dead letters")
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(run=purge_queue)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def local_broker_path(args: argparse.Namespace) -> Path:
    path = Path(args.broker or os.environ.get("LOCAL_BROKER_PATH") or DEFAULT_BROKER_PATH)
    if not path.is_file():
        raise ConfigurationError(
            f"invalid configuration: no local broker at {path} (start the local stack, "
            "set LOCAL_BROKER_PATH or pass --broker; set ServiceBusConnection__"
            "fullyQualifiedNamespace for Azure)"
        )
    return path


@asynccontextmanager
async def admin_of(settings: Settings | None, broker: Path | None) -> AsyncIterator[QueueAdmin]:
    """Azure's queue admin for `settings`, else the local broker's at `broker` (a file that
    exists: opening the SQLite file would create it)."""
    if settings is not None:
        azure = AzureQueueAdmin.from_settings(settings)
        try:
            yield azure
        finally:
            await azure.close()
        return
    assert broker is not None
    local_broker = LocalBroker(broker)
    local = LocalQueueAdmin(local_broker)
    try:
        yield local
    finally:
        await local.close()
        local_broker.close()


@asynccontextmanager
async def open_admin(args: argparse.Namespace) -> AsyncIterator[QueueAdmin]:
    # The CLI runs one coroutine at a time, so opening the SQLite file inline blocks nothing.
    if args.broker is None and any(name in os.environ for name in SERVICEBUS_SETTINGS):
        async with admin_of(load_settings(), None) as azure:
            yield azure
        return
    async with admin_of(None, local_broker_path(args)) as local:
        yield local


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def body_preview(body: bytes) -> str:
    text = " ".join(body.decode("utf-8", "replace").split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


class _Refused(Exception):
    pass


def confirm(args: argparse.Namespace, question: str) -> bool:
    """True on --yes or a typed yes; raises _Refused when nobody can be asked."""
    if args.yes:
        return True
    if not args.stdin.isatty():
        raise _Refused
    print(f"{question} [y/N] ", end="", flush=True)
    return args.stdin.readline().strip().lower() in ("y", "yes")


async def list_queues(args: argparse.Namespace) -> int:
    async with open_admin(args) as admin:
        counts = await admin.queue_counts()
    print_table(
        ("QUEUE", "ACTIVE", "SCHEDULED", "DEAD-LETTER"),
        [(c.name, c.active, c.scheduled, c.dead_letter) for c in counts],
    )
    return EXIT_OK


def _dead_letter_json(message: InboundMessage) -> dict[str, object]:
    return {
        "sequence_number": message.sequence_number,
        "message_id": message.message_id,
        "session_id": message.session_id,
        "dead_letter_reason": message.dead_letter_reason,
        "dead_letter_error_description": message.dead_letter_error_description,
        "delivery_count": message.delivery_count,
        "enqueued_time": message.enqueued_time.isoformat(),
        "application_properties": dict(message.application_properties),
        "body": message.body.decode("utf-8", "replace"),
    }


async def peek_dead_letters(args: argparse.Namespace) -> int:
    async with open_admin(args) as admin:
        dead = await admin.peek_dead_letters(args.queue, args.max_messages)
    if args.json:
        print(json.dumps([_dead_letter_json(m) for m in dead], indent=2))
        return EXIT_OK
    if not dead:
        print(f"no dead letters in {args.queue}")
        return EXIT_OK
    print_table(
        (
            "SEQUENCE",
            "MESSAGE-ID",
            "SESSION",
            "REASON",
            "DESCRIPTION",
            "DELIVERIES",
            "ENQUEUED",
            "BODY",
        ),
        [
            (
                m.sequence_number,
                m.message_id,
                m.session_id,
                m.dead_letter_reason,
                m.dead_letter_error_description,
                m.delivery_count,
                m.enqueued_time.isoformat(timespec="seconds"),
                body_preview(m.body),
            )
            for m in dead
        ],
    )
    return EXIT_OK


def _print_replays(title: str, replays: Sequence[ReplayedMessage]) -> None:
    print(title)
    print_table(
        ("SEQUENCE", "ORIGINAL-ID", "NEW-ID", "SESSION", "REASON"),
        [
            (
                r.sequence_number,
                r.original_message_id,
                r.new_message_id,
                r.session_id,
                r.dead_letter_reason,
            )
            for r in replays
        ],
    )


async def replay_dead_letters(args: argparse.Namespace) -> int:
    selection: list[int] | None = None if args.all else list(args.sequences)
    async with open_admin(args) as admin:
        if args.dry_run or not args.yes:
            plan = await admin.replay_dead_letters(args.queue, selection, dry_run=True)
            if not plan:
                print(f"no dead letters to replay in {args.queue}")
                return EXIT_OK
            _print_replays(
                f"dry run: would replay {len(plan)} dead letter(s) of {args.queue}", plan
            )
            if args.dry_run:
                return EXIT_OK
            try:
                if not confirm(args, f"Replay these {len(plan)} dead letter(s)?"):
                    print("aborted: nothing was replayed")
                    return EXIT_FAILURE
            except _Refused:
                print(
                    "refusing to replay without --yes when not run interactively", file=sys.stderr
                )
                return EXIT_USAGE
            # Exactly what was shown, not what may have been dead-lettered since.
            selection = [r.sequence_number for r in plan]
        done = await admin.replay_dead_letters(args.queue, selection, dry_run=False)
    if not done:
        print(f"no dead letters to replay in {args.queue}")
    else:
        _print_replays(f"replayed {len(done)} dead letter(s) of {args.queue}", done)
    return EXIT_OK


async def purge_queue(args: argparse.Namespace) -> int:
    what = "dead letter" if args.dead_letters else "active and scheduled message"
    try:
        if not confirm(args, f"Delete every {what} of {args.queue}?"):
            print("aborted: nothing was deleted")
            return EXIT_FAILURE
    except _Refused:
        print("refusing to purge without --yes when not run interactively", file=sys.stderr)
        return EXIT_USAGE
    async with open_admin(args) as admin:
        count = await admin.purge(args.queue, dead_letters=args.dead_letters)
    print(f"purged {count} {what}(s) from {args.queue}")
    return EXIT_OK
