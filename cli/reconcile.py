"""`reconcile`: one reconciliation sweep now, for every store or the ones named, with a report.

    python -m cli reconcile [--store HASH ...] [--json] [--skip-hooks]

It runs exactly what the timer runs (shared/handlers/reconcile.py): each store under its sweep
lease (a store whose lease is held, by the timer for instance, is reported as skipped), the
BigCommerce orders and refunds changed since the store's watermarks compared with Dataverse, the
missing and stale ones enqueued on `order-events` with trigger `reconcile`, the Dataverse changes
BigCommerce lacks enqueued too, then the store's webhooks checked (`--skip-hooks` leaves them
alone). It prints one line per store: what was checked, missing, stale and enqueued, the
coverage, the age of the oldest change out of sync; `--json` prints the whole report. The
runner then does the repairs, as for any other message: run it again to see the coverage back.
Exit codes: 0 every store swept, 1 a store failed or was skipped, 2 usage or configuration error.

It uses the app's settings, as the function app does: BigCommerce and `DATAVERSE_URL` (with
`LOCAL_DATAVERSE_TOKEN` for the local stand-in, otherwise azure-identity's
`DefaultAzureCredential`), Service Bus when `ServiceBusConnection__fullyQualifiedNamespace` or
`ServiceBusConnection` is set, otherwise (or with `SERVICEBUS_TRANSPORT=local` or `--broker
PATH`) the local broker, and the state store of `STATE_TRANSPORT`: Table Storage, or the local
SQLite file (`LOCAL_STATE_DB`, else `<LOCAL_STATE_DIR>/state.sqlite3`; `--state PATH` forces it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from cli.queues import DEFAULT_BROKER_PATH, SERVICEBUS_SETTINGS, local_broker_path, print_table
from shared.bigcommerce.rate_budget import BudgetPolicy
from shared.bigcommerce.registry import BigCommerceClients
from shared.bigcommerce.session import ClientOptions
from shared.config import ConfigurationError, Settings, load_settings
from shared.dataverse.auth import is_loopback_url, token_provider_for
from shared.dataverse.client import DataverseClient
from shared.dataverse.sync_ledger import DataverseSyncLedger
from shared.handlers.reconcile import HookCheck, ReconcileError, Reconciler, ReconcileReport
from shared.mapping import load_mapping
from shared.messaging.ports import MessageSender
from shared.reconciliation.sweep import SweepPolicy
from shared.state.ports import StateStore

LOCAL_TOKEN_SETTING: Final = "LOCAL_DATAVERSE_TOKEN"  # noqa: S105 - a setting name
DEFAULT_STATE_DIR: Final = Path(".local")


def register(groups: Any) -> None:
    """Adds the `reconcile` command to the top-level subparsers."""
    parser = groups.add_parser(
        "reconcile",
        help="sweep BigCommerce against Dataverse now and enqueue what is missing",
        description="One reconciliation sweep now, for every store or those named.",
    )
    parser.add_argument(
        "--store",
        action="append",
        metavar="HASH",
        dest="stores",
        help="sweep only this store (repeat for more); default: every store",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--skip-hooks", action="store_true", help="do not check the stores' webhooks"
    )
    parser.add_argument(
        "--broker", metavar="PATH", help="use the local broker at PATH, whatever the environment"
    )
    parser.add_argument(
        "--state", metavar="PATH", help="use the local state file at PATH, whatever the environment"
    )
    parser.set_defaults(run=reconcile)


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass
class _Adapters:
    settings: Settings
    clients: BigCommerceClients
    dataverse: DataverseClient
    sender: MessageSender
    state: StateStore


def _dataverse(settings: Settings) -> DataverseClient:
    static: str | None = None
    if is_loopback_url(settings.dataverse_url):
        static = os.environ.get(LOCAL_TOKEN_SETTING) or None
        if static is None:
            raise ConfigurationError(
                f"invalid configuration: {LOCAL_TOKEN_SETTING}: required for the local "
                f"Dataverse stand-in at {settings.dataverse_url} (the local stack sets it)"
            )
    tokens = token_provider_for(
        settings.dataverse_url,
        static_token=static,
        managed_identity_client_id=settings.managed_identity_client_id,
    )
    return DataverseClient.from_settings(settings, tokens=tokens)


def _uses_local_broker(args: argparse.Namespace) -> bool:
    if args.broker is not None or os.environ.get("SERVICEBUS_TRANSPORT") == "local":
        return True
    return not any(name in os.environ for name in SERVICEBUS_SETTINGS)


@asynccontextmanager
async def open_adapters(args: argparse.Namespace) -> AsyncIterator[_Adapters]:
    """The app's adapters for this one run, closed at the end."""
    settings = load_settings()
    async with AsyncExitStack() as stack:
        if _uses_local_broker(args):
            from local.broker import LocalBroker
            from local.broker.adapters import LocalBrokerSender

            if args.broker is None:
                args.broker = os.environ.get("LOCAL_BROKER_PATH") or str(DEFAULT_BROKER_PATH)
            broker = LocalBroker(local_broker_path(args))
            stack.callback(broker.close)
            sender: MessageSender = LocalBrokerSender(broker)
        else:
            from shared.messaging.azure_servicebus import AzureServiceBusSender

            sender = AzureServiceBusSender.from_settings(settings)
        stack.push_async_callback(sender.close)
        state = _state_store(args, settings)
        stack.push_async_callback(state.close)
        options = ClientOptions(budget=BudgetPolicy(share=settings.bigcommerce_quota_share))
        clients = BigCommerceClients.from_settings(settings, options=options)
        stack.push_async_callback(clients.aclose)
        dataverse = _dataverse(settings)
        stack.push_async_callback(dataverse.aclose)
        yield _Adapters(settings, clients, dataverse, sender, state)


def _state_store(args: argparse.Namespace, settings: Settings) -> StateStore:
    if args.state is None and settings.state_transport != "local":
        from shared.state.azure_tables import AzureTableStateStore

        return AzureTableStateStore.from_settings(settings)
    from local.state import SqliteStateStore, state_db_path

    if args.state is not None:
        return SqliteStateStore(Path(args.state))
    state_dir = Path(os.environ.get("LOCAL_STATE_DIR") or DEFAULT_STATE_DIR)
    return SqliteStateStore(state_db_path(os.environ, state_dir))


def _hooks(adapters: _Adapters, skip: bool) -> HookCheck | None:
    if skip:
        return None
    from shared.reconciliation.webhook_health import WebhookHealth

    health = WebhookHealth(adapters.settings, adapters.clients.get, adapters.state, clock=_now)

    async def check(store_hash: str) -> object:
        return await health.check_hooks(store_hash, trigger="reconcile")

    return check


async def reconcile(args: argparse.Namespace) -> int:
    async with open_adapters(args) as adapters:
        known = adapters.clients.store_hashes
        unknown = [s for s in args.stores or () if s not in known]
        if unknown:
            print(
                f"no store {', '.join(unknown)} in BIGCOMMERCE_STORES ({', '.join(known)})",
                file=sys.stderr,
            )
            return EXIT_USAGE
        reconciler = Reconciler(
            adapters.clients,
            DataverseSyncLedger(adapters.dataverse),
            adapters.sender,
            adapters.state,
            clock=_now,
            new_id=_new_id,
            policy=SweepPolicy.from_settings(
                adapters.settings, load_mapping(adapters.settings.mapping_file)
            ),
            owner=f"cli-{_new_id()[:12]}",
            lease_duration=timedelta(seconds=adapters.settings.reconcile_lease_seconds),
            hooks=_hooks(adapters, args.skip_hooks),
        )
        try:
            report = await reconciler.run_all(args.stores)
        except ReconcileError as exc:
            report = exc.report
    _print(report, as_json=args.json)
    swept = all(s.status == "swept" and not s.failed for s in report.stores)
    return EXIT_OK if swept else EXIT_FAILURE


def _print(report: ReconcileReport, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_json(), indent=2, default=str))
        return
    rows: list[tuple[object, ...]] = []
    for outcome in report.stores:
        m = outcome.metrics
        if m is None:
            rows.append((outcome.store_hash, outcome.status, *("-",) * 8))
            continue
        rows.append(
            (
                outcome.store_hash,
                outcome.status,
                m.orders_checked,
                m.orders_missing,
                m.orders_stale,
                f"{m.refunds_missing}/{m.refunds_checked}",
                m.reverse_found,
                m.enqueued,
                f"{m.coverage:.2%}",
                f"{m.oldest_unsynced_seconds:.0f}s",
            )
        )
    print_table(
        (
            "STORE",
            "STATUS",
            "CHECKED",
            "MISSING",
            "STALE",
            "REFUNDS-MISSING",
            "DATAVERSE-PENDING",
            "ENQUEUED",
            "COVERAGE",
            "OLDEST-UNSYNCED",
        ),
        rows,
    )
    for outcome in report.stores:
        if outcome.reason:
            stream = sys.stdout if outcome.status == "swept" else sys.stderr
            print(f"{outcome.store_hash}: {outcome.status}: {outcome.reason}", file=stream)
        if outcome.hooks_error:
            print(
                f"{outcome.store_hash}: webhook check failed: {outcome.hooks_error}",
                file=sys.stderr,
            )
        elif outcome.hooks is not None:
            healthy = getattr(outcome.hooks, "healthy", None)
            state = {True: "healthy", False: "NOT healthy", None: "checked"}.get(healthy, "checked")
            print(
                f"{outcome.store_hash}: webhooks {state} (python -m cli reconcile --json shows why)"
            )
