"""Runs one stand-in ASGI app on a loopback port until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import uvicorn


def serve(name: str, build_app: Callable[[], Any], argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m local.{name}")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(
        build_app(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )
