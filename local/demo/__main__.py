"""`python -m local.demo` (`make demo`): see the package's docstring."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from local.demo import seed
from local.demo.figures import figures, problems
from local.demo.lifecycle import RunOptions, run_lifecycle
from local.demo.report import Bars, summary, write_json
from local.demo.stack import Stack, new_demo_token, start_host
from local.stack.host_process import REPO, HostProcess

FLOW_FILE: Final = Path(__file__).with_name("flow.yaml")


@dataclass(frozen=True)
class Options:
    orders: int
    report: Path
    duplicates: float
    seed: int
    timeout: float


def main(argv: list[str] | None = None) -> int:
    from local.demo import __doc__ as about

    parser = argparse.ArgumentParser(
        prog="python -m local.demo",
        description=about,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--orders", type=int, default=int(os.environ.get("ORDERS") or "50"))
    parser.add_argument(
        "--report", type=Path, default=Path(os.environ.get("REPORT") or "demo-report.json")
    )
    parser.add_argument(
        "--duplicates", type=float, default=0.2, help="share of webhooks delivered twice"
    )
    parser.add_argument("--seed", type=int, default=7, help="seeds every choice the demo makes")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds each wave may take to settle (default: 120 + 1 per order)",
    )
    args = parser.parse_args(argv)
    if args.orders < 1:
        parser.error("--orders must be at least 1")
    timeout = args.timeout if args.timeout is not None else 120 + 1.0 * args.orders
    return run(Options(args.orders, args.report, args.duplicates, args.seed, timeout))


def run(options: Options) -> int:
    started = time.monotonic()
    state_dir = Path(os.environ.get("LOCAL_STATE_DIR") or REPO / ".local" / "demo")
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True)
    mapping = seed.write_mapping(state_dir / "mapping.yaml")
    token = new_demo_token()
    print(f"Starting the local stack (logs in {state_dir / 'host.log'}) ...", file=sys.stderr)
    with (state_dir / "host.log").open("w") as log:
        host = start_host(
            state_dir, log, flow_file=FLOW_FILE, mapping_file=mapping, demo_token=token
        )
        try:
            report, found = asyncio.run(_demo(host, token, options, started))
        finally:
            host.stop()
    report["seconds"] = round(time.monotonic() - started, 1)
    report["problems"] = found
    write_json(options.report, report)
    print()
    print(summary(report))
    for problem in found:
        print(f"  problem: {problem}", file=sys.stderr)
    verdict = "PASS" if not found else "FAIL"
    print(f"\n{verdict}: report written to {options.report}")
    return 0 if not found else 1


async def _demo(
    host: HostProcess, token: str, options: Options, started: float
) -> tuple[dict[str, Any], list[str]]:
    stack = Stack(host, token)
    run = RunOptions(options.orders, options.duplicates, options.seed, options.timeout)
    try:
        outcome = await run_lifecycle(stack, run, Bars(), started)
        report = await figures(stack, run, outcome)
        return report, problems(report, outcome)
    finally:
        await stack.aclose()


if __name__ == "__main__":
    sys.exit(main())
