"""`webhooks` commands: register a store's BigCommerce webhooks, and show how they are.

`webhooks register --store HASH --url URL [--function-key KEY] [--dry-run] [--json]` creates
or fixes the store's hooks so that they point at URL (the public `POST /api/webhooks/bigcommerce`
of the function app): one hook per scope of BIGCOMMERCE_WEBHOOK_SCOPES, active, with the store's
secret header (BIGCOMMERCE_<HASH>_WEBHOOK_SECRET) and the function key (`--function-key`, else
WEBHOOK_FUNCTION_KEY) as `x-functions-key`, plus the `store/hook/deliveryException` hook at
`URL?source=delivery-exception`. It is the webhook health check (shared/reconciliation/
webhook_health.py) with the URL given: it re-enables deactivated hooks, repoints and fixes
headers, never creates a duplicate, leaves other hooks alone (listed as extra), and sets the
order watermark back when a repaired hook missed events. A second run prints "nothing to change".

`webhooks status [--store HASH] [--json]` changes nothing: each hook's scope, destination,
state (active, inactive, deactivated), last update, and what the health check would do about it
(planned with WEBHOOK_DESTINATION_URL when set), the blocked domains, and the last recorded check.

Both read the app's settings from the environment, like the function app. The state store is
the app's: the local SQLite file (STATE_TRANSPORT=local; LOCAL_STATE_DB, else
<LOCAL_STATE_DIR or .local>/state.sqlite3) or Table Storage (STATE_TABLE_ENDPOINT or
STATE_CONNECTION_STRING). Without one, `register` still repairs and says where the order sweep
must restart. Destinations are shown with secret query values masked, headers by name only.

Exit codes: 0 done (`status`: every hook healthy), 1 a repair failed or (`status`) something
needs attention, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from cli import EXIT_FAILURE, EXIT_OK, selected_stores
from cli.queues import print_table
from local.state import SqliteStateStore, state_db_path
from shared.bigcommerce.errors import BigCommerceError
from shared.bigcommerce.registry import BigCommerceClients
from shared.config import Settings, load_settings
from shared.config.settings import require_https_unless_loopback
from shared.reconciliation.webhook_health import (
    HOOKS_PARTITION,
    HookReport,
    Repair,
    WebhookHealth,
)
from shared.state.ports import StateError, StateStore

DEFAULT_STATE_DIR: Final = Path(".local")
ACTION_WORDS: Final = {
    "create": "create",
    "reenable": "re-enable",
    "destination": "repoint",
    "headers": "fix headers of",
}


def register(groups: Any) -> None:
    """Adds the `webhooks` group to the top-level subparsers."""
    parser = groups.add_parser("webhooks", help="register and check the stores' webhooks")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    registering = commands.add_parser(
        "register", help="create or fix a store's webhooks so that they point at URL"
    )
    registering.add_argument("--store", required=True, metavar="HASH", help="the store hash")
    registering.add_argument(
        "--url",
        required=True,
        type=_url,
        help="the public URL of POST /api/webhooks/bigcommerce",
    )
    registering.add_argument(
        "--function-key",
        metavar="KEY",
        help="the function key hooks send as x-functions-key (default WEBHOOK_FUNCTION_KEY)",
    )
    registering.add_argument("--dry-run", action="store_true", help="only show what would change")
    registering.add_argument("--json", action="store_true", help="print JSON instead of text")
    registering.set_defaults(run=register_hooks)

    status = commands.add_parser("status", help="show each store's webhooks; change nothing")
    status.add_argument("--store", metavar="HASH", help="one store (default: every store)")
    status.add_argument("--json", action="store_true", help="print JSON instead of text")
    status.set_defaults(run=show_status)


def _url(value: str) -> str:
    try:
        return require_https_unless_loopback(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# -- what the commands open -----------------------------------------------------------------------


def local_state_path() -> Path:
    """The local stack's state file, found as the local host finds it."""
    state_dir = Path(os.environ.get("LOCAL_STATE_DIR") or DEFAULT_STATE_DIR)
    return state_db_path(os.environ, state_dir)


def open_state(settings: Settings, *, create: bool) -> StateStore | None:
    """The app's state store, or None when none is configured (or, unless `create`, when the
    local file does not exist yet)."""
    if settings.state_transport == "local":
        path = local_state_path()
        if not create and not path.is_file():
            return None
        return SqliteStateStore(path)
    if settings.state_connection_string is None and settings.state_table_endpoint is None:
        return None
    from shared.state.azure_tables import AzureTableStateStore

    return AzureTableStateStore.from_settings(settings)


@asynccontextmanager
async def _opened(
    settings: Settings, *, create_state: bool
) -> AsyncIterator[tuple[BigCommerceClients, StateStore | None]]:
    clients = BigCommerceClients.from_settings(settings)
    state = open_state(settings, create=create_state)
    try:
        yield clients, state
    finally:
        await clients.aclose()
        if state is not None:
            await state.close()


# -- printing -------------------------------------------------------------------------------------


def _time(value: datetime | None) -> str:
    return "-" if value is None else value.isoformat(timespec="seconds")


def _repair_line(repair: Repair, dry_run: bool) -> str:
    words = " + ".join(ACTION_WORDS[a] for a in repair.action)
    hook = "" if repair.hook_id is None else f" hook {repair.hook_id}"
    if repair.ok is None or dry_run:
        return f"would {words}{hook}: {repair.scope} at {repair.destination}"
    if repair.ok:
        done = words.replace("re-enable", "re-enabled").replace("create", "created")
        done = done.replace("repoint", "repointed").replace("fix headers of", "fixed headers of")
        return f"{done}{hook}: {repair.scope} at {repair.destination}"
    return f"FAILED to {words}{hook}: {repair.scope}: {repair.error}"


def _print_hooks(report: HookReport) -> None:
    if not report.hooks:
        print("no hooks")
        return
    print_table(
        ("ID", "SCOPE", "STATE", "UPDATED", "DESTINATION", "HEADERS", "NOTE"),
        [
            (
                h.id,
                h.scope,
                h.status,
                _time(h.updated_at),
                h.destination,
                ",".join(h.headers) or "-",
                h.problem or ("extra: left alone" if h.role == "extra" else ""),
            )
            for h in report.hooks
        ],
    )


def _print_findings(report: HookReport) -> None:
    for scope in report.missing:
        print(f"missing: {scope} (set WEBHOOK_DESTINATION_URL or run `webhooks register`)")
    for conflict in report.conflicts:
        print(f"conflict: {conflict}")
    for blocked in report.blocked_domains:
        reasons = f" ({'; '.join(blocked.reasons)})" if blocked.reasons else ""
        left = "?" if blocked.time_left is None else f"{blocked.time_left}s"
        print(f"blocked by BigCommerce: {blocked.destination}, {left} left{reasons}")
    for error in report.errors:
        print(f"error: {error}")


def _print_watermark(report: HookReport, state: StateStore | None) -> None:
    target = report.watermark_target
    if target is None:
        return
    if report.dry_run:
        print(f"would set the order sweep of {report.store_hash} back to {_time(target)}")
    elif report.watermark_rewound_to is not None:
        print(
            f"order sweep of {report.store_hash} set back to {_time(report.watermark_rewound_to)}"
        )
    elif state is None:
        print(
            f"warning: no state store, so the order sweep was not set back: reconcile "
            f"{report.store_hash}'s orders modified since {_time(target)}",
            file=sys.stderr,
        )


# -- register -------------------------------------------------------------------------------------


async def register_hooks(args: argparse.Namespace) -> int:
    settings = load_settings()
    (store_hash,) = selected_stores(settings, args.store)
    async with _opened(settings, create_state=not args.dry_run) as (clients, state):
        health = WebhookHealth(settings, clients.get, state)
        report = await health.check_hooks(
            store_hash,
            destination_url=args.url,
            function_key=args.function_key,
            dry_run=args.dry_run,
            trigger="cli",
        )
    failed = bool(report.failed_repairs or report.conflicts or report.skipped)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
        return EXIT_FAILURE if failed else EXIT_OK
    print(f"store {store_hash}: webhooks at {report.destination}")
    if report.skipped is not None:
        print(f"not done: {report.skipped}; try again", file=sys.stderr)
        return EXIT_FAILURE
    if not report.repairs:
        print("nothing to change")
    for repair in report.repairs:
        print(_repair_line(repair, report.dry_run), file=sys.stderr if repair.ok is False else None)
    if report.dry_run and report.repairs:
        print(f"dry run: {len(report.repairs)} change(s), nothing changed")
    _print_hooks(report)
    _print_findings(report)
    _print_watermark(report, state)
    return EXIT_FAILURE if failed else EXIT_OK


# -- status ---------------------------------------------------------------------------------------


async def _recorded(state: StateStore | None, store_hash: str) -> dict[str, Any] | None:
    if state is None:
        return None
    try:
        entity = await state.get(HOOKS_PARTITION, store_hash)
    except StateError as exc:
        print(f"warning: state store unreadable: {exc}", file=sys.stderr)
        return None
    return None if entity is None else dict(entity.value)


def _print_recorded(recorded: dict[str, Any] | None) -> None:
    if recorded is None:
        print("last check: none recorded")
        return
    line = f"last check: {recorded.get('checked_at')} ({recorded.get('trigger')})"
    if recorded.get("last_repair_at"):
        line += f", last repair: {recorded['last_repair_at']}"
    print(line)
    notice = recorded.get("last_notice")
    if isinstance(notice, dict):
        print(
            f"last delivery exception: {notice.get('error_code')} for hook "
            f"{notice.get('hook_id')} at {notice.get('created_at')}: {notice.get('message')}"
        )


async def show_status(args: argparse.Namespace) -> int:
    settings = load_settings()
    stores = selected_stores(settings, args.store)
    results: list[tuple[str, HookReport | None, dict[str, Any] | None, str | None]] = []
    async with _opened(settings, create_state=False) as (clients, state):
        health = WebhookHealth(settings, clients.get, state)
        for store_hash in stores:
            recorded = await _recorded(state, store_hash)
            try:
                checked = await health.check_hooks(store_hash, dry_run=True, trigger="status")
            except (BigCommerceError, StateError) as exc:
                results.append((store_hash, None, recorded, str(exc)))
                continue
            results.append((store_hash, checked, recorded, None))
    healthy = all(r is not None and r.healthy for _, r, _, _ in results)
    if args.json:
        print(json.dumps([_status_json(*row) for row in results], indent=2))
        return EXIT_OK if healthy else EXIT_FAILURE
    for index, (store_hash, report, recorded, error) in enumerate(results):
        if index:
            print()
        if report is None:
            print(f"store {store_hash}: error: {error}", file=sys.stderr)
            continue
        where = report.destination or "? (WEBHOOK_DESTINATION_URL not set: re-enable only)"
        state_word = "healthy" if report.healthy else "needs attention"
        print(f"store {store_hash}: {state_word}; webhooks belong at {where}")
        _print_hooks(report)
        _print_findings(report)
        for repair in report.repairs:
            print(_repair_line(repair, dry_run=True))
        _print_watermark(report, None)
        _print_recorded(recorded)
    return EXIT_OK if healthy else EXIT_FAILURE


def _status_json(
    store_hash: str,
    report: HookReport | None,
    recorded: dict[str, Any] | None,
    error: str | None,
) -> dict[str, Any]:
    last = (
        None
        if recorded is None
        else {
            name: recorded.get(name)
            for name in ("checked_at", "trigger", "last_repair_at", "last_notice", "repairs")
        }
    )
    if report is None:
        return {"store_hash": store_hash, "healthy": False, "error": error, "recorded": last}
    return {**report.to_json(), "error": None, "recorded": last}
