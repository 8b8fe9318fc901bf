"""`schema` commands: compare a Dataverse environment with `shared/dataverse/schema.py`, and
create what is missing.

`schema check` lists the differences and changes nothing: exit 0 when the environment matches
(every key index Active), 1 when something is missing, building, failed or in conflict.
`schema provision` shows what it would create and asks before writing (on a terminal it waits for
a yes; elsewhere it refuses unless given `--yes`), creates it, then waits up to `--wait` seconds
for the alternate-key indexes to become Active: exit 0 when everything is in place and Active.

Both talk to `DATAVERSE_URL`. For a loopback `http://` URL (the local stand-in) the bearer token
is `LOCAL_DATAVERSE_TOKEN`; otherwise it comes from azure-identity's `DefaultAzureCredential`
with the scope `<DATAVERSE_URL>/.default` (az login, a managed identity, or service-principal
environment variables).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from shared.config import ConfigurationError
from shared.config.settings import require_https_unless_loopback
from shared.dataverse.metadata import HttpMetadataApi, MetadataApi, TokenProvider
from shared.dataverse.provisioning import (
    DEFAULT_LANGUAGE_CODE,
    DEFAULT_POLL_SECONDS,
    DEFAULT_WAIT_SECONDS,
    Plan,
    ProvisionReport,
    Severity,
    check,
    provision,
)

URL_SETTING: Final = "DATAVERSE_URL"
LOCAL_TOKEN_SETTING: Final = "LOCAL_DATAVERSE_TOKEN"  # noqa: S105 - a setting name
# Tests replace this to serve the Web API from memory; None is a real network transport.
HTTP_TRANSPORT: httpx.AsyncBaseTransport | None = None


def register(groups: Any) -> None:
    """Adds the `schema` group to the top-level subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--language",
        type=int,
        default=DEFAULT_LANGUAGE_CODE,
        metavar="LCID",
        help="language code of the labels we create (the environment's base language)",
    )
    parser = groups.add_parser("schema", help="check and provision the Dataverse schema")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    checking = commands.add_parser(
        "check", parents=[common], help="list what is missing or different; change nothing"
    )
    checking.add_argument("--json", action="store_true", help="print JSON instead of lines")
    checking.set_defaults(run=check_schema)

    provisioning = commands.add_parser(
        "provision", parents=[common], help="create what is missing and wait for the keys"
    )
    provisioning.add_argument(
        "--wait",
        type=_seconds,
        default=DEFAULT_WAIT_SECONDS,
        metavar="SECONDS",
        help=f"how long to wait for the key indexes (default {DEFAULT_WAIT_SECONDS:g})",
    )
    provisioning.add_argument(
        "--poll",
        type=_seconds,
        default=DEFAULT_POLL_SECONDS,
        metavar="SECONDS",
        help=f"pause between key status reads (default {DEFAULT_POLL_SECONDS:g})",
    )
    provisioning.add_argument(
        "--reactivate-failed",
        action="store_true",
        help="reactivate Failed key indexes (after fixing their cause, e.g. duplicate rows)",
    )
    provisioning.add_argument(
        "--solution", metavar="NAME", help="add what is created to this unmanaged solution"
    )
    provisioning.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    provisioning.set_defaults(run=provision_schema)


def _seconds(value: str) -> float:
    number = float(value)
    if not number >= 0:
        raise argparse.ArgumentTypeError("must be a number of seconds, 0 or more")
    return number


# -- connecting -----------------------------------------------------------------------------------


def dataverse_url() -> str:
    value = os.environ.get(URL_SETTING, "").strip()
    if not value:
        raise ConfigurationError(f"invalid configuration: {URL_SETTING}: required but not set")
    try:
        return require_https_unless_loopback(value)
    except ValueError as exc:
        raise ConfigurationError(f"invalid configuration: {URL_SETTING}: {exc}") from None


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


@asynccontextmanager
async def token_provider(url: str) -> AsyncIterator[TokenProvider]:
    """The stand-in's static token for loopback http, else DefaultAzureCredential's."""
    if _is_local(url):
        static = os.environ.get(LOCAL_TOKEN_SETTING, "")
        if not static:
            raise ConfigurationError(
                f"invalid configuration: {LOCAL_TOKEN_SETTING}: required for the local "
                f"Dataverse stand-in at {url} (the local stack sets it)"
            )

        async def local() -> str:
            return static

        yield local
        return

    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential()
    scope = f"{url}/.default"

    async def azure() -> str:
        # The sync credential caches and refreshes; a thread keeps the event loop free.
        return (await asyncio.to_thread(credential.get_token, scope)).token

    try:
        yield azure
    finally:
        credential.close()


@asynccontextmanager
async def open_metadata_api(solution: str | None = None) -> AsyncIterator[MetadataApi]:
    url = dataverse_url()
    async with (
        token_provider(url) as token,
        HttpMetadataApi.for_environment(
            url, token, solution=solution, transport=HTTP_TRANSPORT
        ) as api,
    ):
        yield api


# -- output ---------------------------------------------------------------------------------------


def print_plan(plan: Plan) -> None:
    for difference in plan.differences:
        print(difference.line())


def _plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "in_sync": plan.in_sync,
        "differences": [
            {
                "table": d.table,
                "subject": d.subject,
                "severity": d.severity.value,
                "detail": d.detail,
                "write": d.write.description if d.write else None,
            }
            for d in plan.differences
        ],
    }


def _summary(plan: Plan) -> str:
    counts = {s: len(plan.of(s)) for s in Severity if s is not Severity.INFO}
    return ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)


def print_report(report: ProvisionReport) -> None:
    for write in report.written:
        print(f"done: {write.description}")
    for key in report.keys:
        print(f"key: {key.line()}")
    if report.error:
        print(f"error: {report.error}", file=sys.stderr)


# -- commands -------------------------------------------------------------------------------------


async def check_schema(args: argparse.Namespace) -> int:
    async with open_metadata_api() as api:
        plan = await check(api, language_code=args.language)
    if args.json:
        print(json.dumps(_plan_json(plan), indent=2))
    else:
        print_plan(plan)
        print("in sync with the schema" if plan.in_sync else f"not in sync: {_summary(plan)}")
    return EXIT_OK if plan.in_sync else EXIT_FAILURE


class _Refused(Exception):
    pass


def _confirm(args: argparse.Namespace, question: str) -> bool:
    if args.yes:
        return True
    if not args.stdin.isatty():
        raise _Refused
    print(f"{question} [y/N] ", end="", flush=True)
    return str(args.stdin.readline()).strip().lower() in ("y", "yes")


async def provision_schema(args: argparse.Namespace) -> int:
    async with open_metadata_api(args.solution) as api:
        plan = await check(api, language_code=args.language)
        print_plan(plan)
        if plan.conflicts:
            print(
                f"refusing to provision: resolve the {len(plan.conflicts)} conflict(s) above "
                "first; nothing was changed",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        writes = plan.writes()
        if writes:
            print(f"would make {len(writes)} change(s):")
            for write in writes:
                print(f"  {write.description}")
            try:
                if not _confirm(args, f"Make these {len(writes)} change(s)?"):
                    print("aborted: nothing was changed")
                    return EXIT_FAILURE
            except _Refused:
                print(
                    "refusing to provision without --yes when not run interactively",
                    file=sys.stderr,
                )
                return EXIT_USAGE
        report = await provision(
            api,
            plan=plan,
            wait_seconds=args.wait,
            poll_seconds=args.poll,
            reactivate_failed=args.reactivate_failed,
            language_code=args.language,
        )
    print_report(report)
    if report.ok:
        print("provisioned: the environment matches the schema and every key is Active")
        return EXIT_OK
    if report.failed_keys:
        names = ", ".join(f"{k.table}.{k.key}" for k in report.failed_keys)
        hint = "" if args.reactivate_failed else "; fix the cause, then --reactivate-failed"
        print(f"failed key index(es): {names}{hint}", file=sys.stderr)
    if report.timed_out:
        names = ", ".join(f"{k.table}.{k.key}" for k in report.pending_keys)
        print(
            f"still building after {args.wait:g}s: {names}; run provision again to keep waiting",
            file=sys.stderr,
        )
    return EXIT_FAILURE
