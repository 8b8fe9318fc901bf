"""`backfill`: sync every order of one store in an id or creation-date range.

    python -m cli backfill --store HASH (--from DATE --to DATE | --min-id N --max-id N)
        [--dry-run] [--restart] [--json]

Orders are read by id ascending, 250 a page; each page's missing and stale orders (decided as
the reconciliation sweep decides) are enqueued on `order-events` with trigger `reconcile`
(shared/reconciliation/backfill.py). `--dry-run` prints what would be enqueued and changes
nothing. A rerun of the same range continues after the last page sent (`--restart` starts over).
One progress line per page goes to stderr. Pacing is the BigCommerce client's rate budget.
Dates are ISO dates (`2024-01-31`: the whole day, UTC) or ISO datetimes (UTC when naive).
Exit codes: 0 done, 1 failure, 2 usage or configuration error. It uses the adapters of
`python -m cli reconcile` (same settings, `--broker`, `--state`).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from cli.reconcile import _new_id, _now, open_adapters
from shared.dataverse.sync_ledger import DataverseSyncLedger
from shared.mapping import load_mapping
from shared.reconciliation.backfill import BackfillRange, BackfillResult, run_backfill
from shared.reconciliation.sweep import SweepPolicy


def register(groups: Any) -> None:
    """Adds the `backfill` command to the top-level subparsers."""
    parser = groups.add_parser(
        "backfill",
        help="sync every order of a store in an id or date range",
        description="Enqueue the missing and stale orders of an id or creation-date range.",
    )
    parser.add_argument("--store", required=True, metavar="HASH")
    parser.add_argument("--from", dest="date_from", metavar="DATE", help="created from (ISO)")
    parser.add_argument("--to", dest="date_to", metavar="DATE", help="created up to (ISO)")
    parser.add_argument("--min-id", type=int, metavar="N")
    parser.add_argument("--max-id", type=int, metavar="N")
    parser.add_argument("--dry-run", action="store_true", help="print, send nothing")
    parser.add_argument("--restart", action="store_true", help="ignore the checkpoint")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--broker", metavar="PATH", help="use the local broker at PATH")
    parser.add_argument("--state", metavar="PATH", help="use the local state file at PATH")
    parser.set_defaults(run=backfill)


def parse_when(text: str, *, end: bool) -> datetime:
    """An ISO date (its start, or its last instant when `end`) or datetime; naive means UTC."""
    if len(text) == 10:
        day = date.fromisoformat(text)
        value = datetime.combine(day, time.min, tzinfo=UTC)
        return value + timedelta(days=1, microseconds=-1) if end else value
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parse_range(args: argparse.Namespace) -> BackfillRange:
    """The range of the arguments; ValueError with the reason when they are not one."""
    dates = args.date_from is not None or args.date_to is not None
    ids = args.min_id is not None or args.max_id is not None
    if dates == ids:
        raise ValueError("give either --from/--to or --min-id/--max-id")
    if dates:
        if args.date_from is None or args.date_to is None:
            raise ValueError("--from and --to go together")
        start = parse_when(args.date_from, end=False)
        stop = parse_when(args.date_to, end=True)
        if start > stop:
            raise ValueError("--from is after --to")
        return BackfillRange(created_from=start, created_to=stop)
    if args.min_id is None or args.max_id is None:
        raise ValueError("--min-id and --max-id go together")
    if args.min_id > args.max_id:
        raise ValueError("--min-id is above --max-id")
    return BackfillRange(min_id=args.min_id, max_id=args.max_id)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def backfill(args: argparse.Namespace) -> int:
    try:
        span = parse_range(args)
    except ValueError as exc:
        print(f"backfill: {exc}", file=sys.stderr)
        return EXIT_USAGE
    async with open_adapters(args) as adapters:
        known = adapters.clients.store_hashes
        if args.store not in known:
            print(
                f"no store {args.store} in BIGCOMMERCE_STORES ({', '.join(known)})",
                file=sys.stderr,
            )
            return EXIT_USAGE
        policy = SweepPolicy.from_settings(
            adapters.settings, load_mapping(adapters.settings.mapping_file)
        )
        try:
            result = await run_backfill(
                args.store,
                span,
                storefront=adapters.clients.get(args.store),
                ledger=DataverseSyncLedger(adapters.dataverse),
                sender=adapters.sender,
                state=adapters.state,
                clock=_now,
                correlation_id=_new_id(),
                policy=policy,
                dry_run=args.dry_run,
                restart=args.restart,
                progress=_stderr,
            )
        except Exception as exc:
            print(f"backfill failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            print("rerun the same command to continue from the checkpoint", file=sys.stderr)
            return EXIT_FAILURE
    _print(result, as_json=args.json)
    return EXIT_OK


def _print(result: BackfillResult, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
        return
    if result.dry_run:
        for planned in result.planned:
            print(f"would enqueue order {planned.order_id} ({planned.verdict.value})")
    resumed = " (resumed)" if result.resumed else ""
    verb = "would enqueue" if result.dry_run else "enqueued"
    print(
        f"{result.store_hash}: checked {result.checked}, {verb} {result.enqueued}, "
        f"last id {result.last_id}{resumed}"
    )
