"""The operator CLI: `python -m cli <group> <command> ...`.

Each command group is a module with a `register(subparsers)` function that adds its parser and
sets `run`, an async function from the parsed arguments to an exit code. Exit codes: 0 success,
1 failure, 2 usage or configuration error (a `ConfigurationError` is printed as its one line).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Final, TextIO

from shared.config import ConfigurationError, Settings

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2


def selected_stores(settings: Settings, wanted: str | None) -> list[str]:
    """Every configured store's hash, or just `wanted` (a ConfigurationError when unknown)."""
    known = [s.store_hash for s in settings.stores]
    if wanted is None:
        return known
    if wanted not in known:
        raise ConfigurationError(
            f"invalid configuration: store {wanted!r} is not in BIGCOMMERCE_STORES "
            f"({', '.join(known)})"
        )
    return [wanted]


def build_parser() -> argparse.ArgumentParser:
    # Imported here so that group modules can import the exit codes above without a cycle.
    from cli import backfill, doctor, orders, queues, reconcile, schema, webhooks

    parser = argparse.ArgumentParser(
        prog="python -m cli", description="The connector's operator CLI."
    )
    groups = parser.add_subparsers(dest="group", required=True, metavar="GROUP")
    for group in (backfill, doctor, orders, queues, reconcile, schema, webhooks):
        group.register(groups)
    return parser


def main(argv: Sequence[str] | None = None, *, stdin: TextIO | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    args.stdin = stdin if stdin is not None else sys.stdin
    try:
        code: int = asyncio.run(args.run(args))
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_FAILURE
    except Exception as exc:  # an operator gets the message, not a traceback
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return code
