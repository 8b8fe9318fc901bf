"""`make start`: the function app and the local stand-ins on loopback, like `func start`.

Loads local.settings.json, decides which services are stand-ins, starts them, indexes the app,
prints every URL and key, and serves until SIGINT or SIGTERM, then stops everything it started.
The settings it ends up with go to `<state dir>/stack.env` for the operator CLI to source.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from local.broker.adapters import LocalBrokerSender
from local.host import host_json
from local.host.broker_source import BrokerSource, open_broker, threads_for
from local.host.indexing import IndexingError, find_app, index
from local.host.keys import load_or_create
from local.host.queue_pump import QueueSource
from local.host.runtime import FunctionHost
from local.host.servicebus_source import AzureQueueSource
from local.stack.env_file import ENV_FILE, write_env_file
from local.stack.plan import StackPlan, plan
from local.stack.processes import Children
from local.stack.settings_file import load_values
from local.state import SqliteStateStore, state_db_path
from shared import bootstrap
from shared.config import ConfigurationError
from shared.dataverse.auth import is_loopback_url, token_provider_for
from shared.messaging.azure_servicebus import ServiceBusConnection


def _print_banner(
    stack: StackPlan, host: FunctionHost, master: str, default: str, env_file: Path
) -> None:
    base = f"http://127.0.0.1:{host.port}/{host.options.route_prefix}".rstrip("/")
    lines = ["", "Functions:"]
    for fn in host.app.http:
        methods = ",".join(sorted(fn.methods)) if fn.methods else "ALL"
        lines.append(f"  {fn.name}: [{methods}] {base}/{fn.route} ({fn.auth_level.lower()})")
    for q in host.app.queues:
        kind = "sessions" if q.sessions else "queue"
        lines.append(f"  {q.name}: serviceBusTrigger {q.queue_name} ({kind})")
    for t in host.app.timers:
        lines.append(f"  {t.name}: timerTrigger '{t.schedule}'")
    lines += ["", "Keys (x-functions-key header or ?code=):"]
    lines += [f"  default (function): {default}", f"  master (admin):     {master}", ""]
    lines.append("Services:")
    if stack.simulate_bigcommerce:
        lines.append(f"  BigCommerce simulator: {stack.bigcommerce_url}")
    else:
        lines.append("  BigCommerce: the stores configured in BIGCOMMERCE_STORES")
    if stack.simulate_dataverse:
        lines.append(f"  Dataverse stand-in:    {stack.dataverse_url}/api/data/v9.2/")
    else:
        lines.append(f"  Dataverse: {os.environ['DATAVERSE_URL']}")
    if stack.local_broker:
        lines.append(f"  Service Bus:           local broker {stack.broker_path}")
    else:
        lines.append("  Service Bus: the namespace in ServiceBusConnection")
    lines += ["", f"Operator CLI settings: . {env_file} && python -m cli doctor"]
    lines.append("\nPress Ctrl-C to stop.")
    print("\n".join(lines), flush=True)


def _webhook_defaults(root: Path, stack: StackPlan, function_key: str) -> dict[str, str]:
    """The simulated store's hooks belong at this host's webhook function: unless configured,
    WEBHOOK_DESTINATION_URL and WEBHOOK_FUNCTION_KEY name it and its default key, so the
    reconciliation timer's webhook health check creates and repairs them. An empty value (the
    demo, benchmarks and tests, which register the hooks they want) turns that off."""
    prefix = host_json.load(root / "host.json").route_prefix
    path = "/".join(p for p in (prefix, "webhooks/bigcommerce") if p)
    defaults = {
        "WEBHOOK_DESTINATION_URL": f"{stack.functions_url}/{path}",
        "WEBHOOK_FUNCTION_KEY": function_key,
    }
    return {name: value for name, value in defaults.items() if name not in os.environ}


async def _serve(host: FunctionHost, stop: asyncio.Event, started: asyncio.Event) -> None:
    task = asyncio.create_task(host.serve(started))
    waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    task.cancel()
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    if task in done and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (it is, with uvicorn[standard]): the host's own overhead is what
    the ingest benchmark's floor measures, and uvloop halves it. Function code sees asyncio."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.host", description=__doc__)
    parser.add_argument("--script-root", default=".", help="folder holding function_app.py")
    parser.add_argument(
        "--no-settings-file",
        action="store_true",
        help="ignore local.settings.json (the demo runs on the embedded default)",
    )
    args = parser.parse_args(argv)
    root = Path(args.script_root).resolve()
    sys.path.insert(0, str(root))
    state_dir = Path(os.environ.get("LOCAL_STATE_DIR", root / ".local")).resolve()
    try:
        if not args.no_settings_file:
            load_values(root / "local.settings.json")
        stack = plan(os.environ, state_dir)
    except ValueError as exc:
        print(f"invalid configuration: {exc}", file=sys.stderr)
        return 2
    os.environ.update(stack.env)
    # Before indexing, which reads the settings: the function key may be one of them.
    keys = load_or_create(state_dir / "host-keys.json")
    if stack.simulate_bigcommerce:
        os.environ.update(_webhook_defaults(root, stack, keys.default))
    files = {"LOCAL_STATE_DIR": str(state_dir), "LOCAL_BROKER_PATH": str(stack.broker_path)}
    write_env_file(state_dir / ENV_FILE, {**files, **os.environ})

    children = Children()
    stop = asyncio.Event()

    def request_stop(*_: object) -> None:
        stop.set()

    try:
        try:
            module = os.environ.get("PYTHON_SCRIPT_FILE_NAME", "function_app.py").removesuffix(
                ".py"
            )
            indexed = index(find_app(module))
        except ConfigurationError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        except IndexingError as exc:
            print(f"indexing failed: {exc}", file=sys.stderr)
            return 2
        url = bootstrap.container().settings.dataverse_url
        local_token = os.environ.get("LOCAL_DATAVERSE_TOKEN")
        # The stand-in's token: the one this host starts, or one running apart on loopback.
        if stack.simulate_dataverse or (local_token and is_loopback_url(url)):
            token = token_provider_for(url, static_token=local_token)
            bootstrap.override(dataverse_tokens=token)
        source: QueueSource | None = None
        if stack.local_broker:
            broker = open_broker(stack, indexed)
            bootstrap.override(sender=LocalBrokerSender(broker))
            service_bus = host_json.load(root / "host.json").service_bus
            source = BrokerSource(broker, threads_for(indexed, service_bus))
        elif indexed.queues:
            settings = bootstrap.container().settings
            source = AzureQueueSource(ServiceBusConnection.from_settings(settings))
        if bootstrap.container().settings.state_transport == "local":
            bootstrap.override(state=SqliteStateStore(state_db_path(os.environ, state_dir)))
        host = FunctionHost.from_files(indexed, keys, root, source, stack.ports.functions)
        if stack.simulate_bigcommerce:
            children.start("bigcommerce", "local.bigcommerce", stack.ports.bigcommerce)
        if stack.simulate_dataverse:
            children.start("dataverse", "local.dataverse", stack.ports.dataverse)

        async def run() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, request_stop)
            started = asyncio.Event()
            serving = asyncio.create_task(_serve(host, stop, started))
            started_wait = asyncio.create_task(started.wait())
            await asyncio.wait({serving, started_wait}, return_when=asyncio.FIRST_COMPLETED)
            if started.is_set():
                _print_banner(stack, host, keys.master, keys.default, state_dir / ENV_FILE)
            started_wait.cancel()
            await serving

        # Everything loaded so far lives as long as the host: keep it out of the collector's
        # full passes, which otherwise scan it all and pause requests for tens of ms.
        gc.collect()
        gc.freeze()
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(run())
        return 0
    except RuntimeError as exc:
        print(f"local host failed: {exc}", file=sys.stderr)
        return 1
    finally:
        children.stop()


if __name__ == "__main__":
    sys.exit(main())
