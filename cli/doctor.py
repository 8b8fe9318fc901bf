"""`doctor`: check a configured environment end to end, changing nothing.

`python -m cli doctor [--json] [--store HASH] [--timeout SECONDS]` reads the app's settings from
the environment, as the function app does, and checks, concurrently, each under its own timeout
(a dead endpoint fails its row with a hint instead of hanging the command):

- settings: they load and validate; secrets: no setting still holds an unresolved Key Vault
  reference (`@Microsoft.KeyVault(...)`, what App Service passes on when it cannot read one);
- each Service Bus queue: exists, answers, and has the properties shared/messaging/queues.py
  specifies (with only Data Sender/Receiver rights the properties cannot be read: a warning,
  and the queue is peeked instead); the local broker file when SERVICEBUS_TRANSPORT=local;
- Dataverse: WhoAmI answers; the app's identity (the application user of AZURE_CLIENT_ID, else
  the doctor's own) holds Create/Read/Write on the connector's tables; the schema and its
  alternate keys are in place and Active (what `schema check` compares);
- each BigCommerce store: the token is accepted and the API account has the read scopes;
  its hooks are active and point at WEBHOOK_DESTINATION_URL (the webhook health check, dry run);
- the state store (Table Storage, or the local SQLite file) answers, without creating anything.

The Dataverse privileges and schema checks need WhoAmI to answer: they are not run when it
failed. Identity-based checks run as the identity the doctor
gets (DefaultAzureCredential: a managed identity in Azure, `az login` on a workstation), except
the Dataverse privileges, which are read for the app's application user.

Exit codes: 0 nothing failed (warnings allowed), 1 a check failed, 2 invalid settings or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Final

from cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, selected_stores
from cli.queues import DEFAULT_BROKER_PATH, admin_of
from cli.schema import token_provider
from cli.webhooks import local_state_path
from local.state import SqliteStateStore
from shared.bigcommerce.registry import BigCommerceClients
from shared.bigcommerce.retry import RetryPolicy
from shared.bigcommerce.session import ClientOptions
from shared.config import ConfigurationError, Settings, load_settings
from shared.dataverse.metadata import HttpMetadataApi, MetadataApi
from shared.diagnostics import (
    DEFAULT_TIMEOUT_SECONDS,
    Check,
    CheckResult,
    bigcommerce,
    dataverse,
    queues,
    run_checks,
    state,
    webhooks,
)
from shared.diagnostics.configuration import check_settings
from shared.diagnostics.keyvault import check_secrets
from shared.diagnostics.report import all_passed, render_table, to_json
from shared.messaging.ports import QueueAdmin
from shared.messaging.queues import ALL_QUEUES, QueueSpec
from shared.reconciliation.webhook_health import WebhookHealth
from shared.state.azure_tables import AzureTableStateStore

# Reading every table, column and key definition is dozens of requests: the schema check gets
# at least this long (it runs only once WhoAmI answered, so a dead endpoint still fails fast).
SCHEMA_TIMEOUT_SECONDS: Final = 60.0


def register(groups: Any) -> None:
    """Adds the `doctor` command to the top-level subparsers."""
    parser = groups.add_parser(
        "doctor", help="check the configured environment end to end; change nothing"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--store", metavar="HASH", help="check only this BigCommerce store")
    parser.add_argument(
        "--app-client-id",
        metavar="ID",
        help="the app identity's client id, whose Dataverse privileges are checked (default "
        "AZURE_CLIENT_ID; from a workstation pass it here and leave AZURE_CLIENT_ID unset, "
        "which would make the state store sign in as that managed identity)",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"how long each check may take (default {DEFAULT_TIMEOUT_SECONDS:g})",
    )
    parser.set_defaults(run=run_doctor)


def _seconds(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError("must be a number of seconds above 0")
    return number


# -- what the checks talk to ----------------------------------------------------------------------


def _failing(error: Exception) -> Callable[[], Awaitable[CheckResult]]:
    async def run() -> CheckResult:
        raise error

    return run


async def _in_turn(
    turn: asyncio.Lock,
    check: Callable[[QueueAdmin, QueueSpec], Awaitable[CheckResult]],
    admin: QueueAdmin,
    spec: QueueSpec,
) -> CheckResult:
    async with turn:
        return await check(admin, spec)


def _local_broker_path() -> Path:
    path = Path(os.environ.get("LOCAL_BROKER_PATH") or DEFAULT_BROKER_PATH)
    if not path.is_file():
        raise FileNotFoundError(
            "no local broker file (start the local stack or set LOCAL_BROKER_PATH)"
        )
    return path


@asynccontextmanager
async def _queue_admin(settings: Settings) -> AsyncIterator[QueueAdmin]:
    """The admin of the app's transport; raises FileNotFoundError for a missing local broker."""
    azure = settings.servicebus_transport == "azure"
    broker = None if azure else _local_broker_path()
    async with admin_of(settings if azure else None, broker) as admin:
        yield admin


@asynccontextmanager
async def _metadata_api(settings: Settings, timeout: float) -> AsyncIterator[MetadataApi]:
    url = settings.dataverse_url
    async with (
        token_provider(url) as token,
        HttpMetadataApi.for_environment(url, token, timeout=timeout) as api,
    ):
        yield api


def _bus_where(settings: Settings) -> str:
    if settings.servicebus_transport == "local":
        return str(os.environ.get("LOCAL_BROKER_PATH") or DEFAULT_BROKER_PATH)
    return settings.servicebus_namespace or "ServiceBusConnection"


def _state_read(settings: Settings) -> tuple[state.StateRead, str, Callable[[], Awaitable[None]]]:
    """How to read the app's state store, where it is, and how to close what was opened."""
    if settings.state_transport == "local":
        path = local_state_path()

        async def read_file() -> bool:
            if not path.is_file():
                return False  # opening it would create it
            store = SqliteStateStore(path)
            try:
                await store.get("doctor", "probe")
            finally:
                await store.close()
            return True

        async def nothing() -> None:
            return None

        return read_file, str(path), nothing
    table = AzureTableStateStore.from_settings(settings)
    where = f"{settings.state_table_endpoint or 'STATE_CONNECTION_STRING'} table {table.table_name}"
    return table.table_exists, where, table.close


# -- the checks -----------------------------------------------------------------------------------


async def _opened(stack: AsyncExitStack, opener: Callable[[], Any]) -> tuple[Any, Exception | None]:
    try:
        return await stack.enter_async_context(opener()), None
    except (ConfigurationError, OSError, ValueError) as exc:
        return None, exc


async def _checks(
    settings: Settings,
    stores: list[str],
    timeout: float,
    stack: AsyncExitStack,
    app_client_id: str | None = None,
) -> list[Check]:
    checks: list[Check] = []
    bus = _bus_where(settings)
    admin, admin_error = await _opened(stack, lambda: _queue_admin(settings))
    # The Service Bus SDK's clients are not coroutine-safe: the queue checks take turns (each
    # one's timeout runs while it waits, so a namespace that does not answer still fails fast).
    turn = asyncio.Lock()
    for spec in ALL_QUEUES:
        run = (
            _failing(admin_error)
            if admin_error is not None
            else functools.partial(_in_turn, turn, queues.check_queue, admin, spec)
        )
        checks.append(Check(queues.check_name(spec), run, queues.HINT, where=bus))

    api, api_error = await _opened(stack, lambda: _metadata_api(settings, timeout))
    url = settings.dataverse_url
    reach = _failing(api_error) if api_error else lambda: dataverse.check_reachable(api, url)
    checks.append(Check(dataverse.REACHABLE, reach, dataverse.HINT, where=url))
    client_id = app_client_id or settings.managed_identity_client_id
    checks += [
        Check(
            dataverse.PRIVILEGES,
            lambda: dataverse.check_privileges(api, client_id),
            dataverse.HINT,
            needs=(dataverse.REACHABLE,),
            where=url,
        ),
        Check(
            dataverse.SCHEMA_CHECK,
            lambda: dataverse.check_schema(api),
            dataverse.SCHEMA_HINT,
            needs=(dataverse.REACHABLE,),
            timeout=max(timeout, SCHEMA_TIMEOUT_SECONDS),
            where=url,
        ),
    ]

    # One attempt per call: the doctor reports a failure rather than waiting out retries.
    options = ClientOptions(
        connect_timeout=min(5.0, timeout), timeout=timeout, retry=RetryPolicy(max_attempts=1)
    )
    clients = BigCommerceClients.from_settings(settings, options=options)
    stack.push_async_callback(clients.aclose)
    health = WebhookHealth(settings, clients.get, None)
    for store_hash in stores:
        access = bigcommerce.check_name(store_hash)
        store = settings.store(store_hash)
        api_url = store.api_url if store is not None else settings.bigcommerce_api_url
        checks += [
            Check(
                access,
                functools.partial(
                    bigcommerce.check_store_access, clients.get(store_hash), store_hash
                ),
                bigcommerce.HINT,
                where=api_url,
            ),
            Check(
                webhooks.check_name(store_hash),
                functools.partial(webhooks.check_store_hooks, health, store_hash),
                bigcommerce.HINT,
                where=api_url,
            ),
        ]

    read, where, close = _state_read(settings)
    stack.push_async_callback(close)
    run_state = functools.partial(state.check_state, read, where)
    checks.append(Check(state.NAME, run_state, state.HINT, where=where))
    return checks


# -- the command ----------------------------------------------------------------------------------


def _print(args: argparse.Namespace, results: list[CheckResult]) -> None:
    if args.json:
        print(json.dumps(to_json(results), indent=2))
    else:
        print(render_table(results))


async def run_doctor(args: argparse.Namespace) -> int:
    settings_result, settings = check_settings(load_settings)
    secrets_result = check_secrets(os.environ)
    if settings is None:
        _print(args, [settings_result, secrets_result])
        if not args.json:
            print("(the other checks need valid settings)")
        return EXIT_USAGE
    stores = selected_stores(settings, args.store)
    stack = AsyncExitStack()
    try:
        checks = await _checks(settings, stores, args.timeout, stack, args.app_client_id)
        ran = await run_checks(checks, timeout=args.timeout)
    finally:
        with contextlib.suppress(Exception):  # a check that timed out may leave a client broken
            await stack.aclose()
    results = [settings_result, secrets_result, *ran]
    _print(args, results)
    return EXIT_OK if all_passed(results) else EXIT_FAILURE
