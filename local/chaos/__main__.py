"""`python -m local.chaos` (`make chaos`): see the package's docstring."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from local.chaos import faults
from local.chaos import stack as chaos_stack
from local.chaos.killer import Killer
from local.chaos.profile import Profile
from local.chaos.stack import ChaosStack
from local.chaos.sweep import FinalSweep
from local.demo import seed
from local.demo.figures import figures, problems
from local.demo.lifecycle import RunOptions, peek_all, run_lifecycle
from local.demo.report import Bars, summary, write_json
from local.demo.stack import Stack
from local.stack.host_process import REPO
from shared.messaging.queues import ORDER_PARKED

FLOW_FILE: Final = REPO / "local" / "demo" / "flow.yaml"
COUNTERS: Final = (
    "lost",
    "duplicate_records",
    "duplicate_shipments",
    "duplicate_refunds",
    "state_mismatches",
    "parked_without_reason",
)


@dataclass(frozen=True)
class Options:
    orders: int
    report: Path
    seed: int
    timeout: float


def main(argv: list[str] | None = None) -> int:
    from local.chaos import __doc__ as about

    parser = argparse.ArgumentParser(
        prog="python -m local.chaos",
        description=about,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--orders", type=int, default=int(os.environ.get("ORDERS") or "2000"))
    parser.add_argument(
        "--report", type=Path, default=Path(os.environ.get("REPORT") or "chaos-report.json")
    )
    parser.add_argument("--seed", type=int, default=11, help="seeds every choice and every fault")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds each wave may take to settle (default: 300 + 0.6 per order)",
    )
    args = parser.parse_args(argv)
    if args.orders < 1:
        parser.error("--orders must be at least 1")
    timeout = args.timeout if args.timeout is not None else 300 + 0.6 * args.orders
    return run(Options(args.orders, args.report, args.seed, timeout))


def run(options: Options) -> int:
    started = time.monotonic()
    profile = Profile()
    state_dir = Path(os.environ.get("LOCAL_STATE_DIR") or REPO / ".local" / "chaos")
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True)
    mapping = seed.write_mapping(state_dir / "mapping.yaml")
    print(
        f"Starting the chaos stack (worker logs in {state_dir / 'host.log'}) ...", file=sys.stderr
    )
    chaos = chaos_stack.start(state_dir, profile, flow_file=FLOW_FILE, mapping_file=mapping)
    try:
        report = asyncio.run(_chaos(chaos, profile, options, started))
    finally:
        chaos.stop()
    report["seconds"] = round(time.monotonic() - started, 1)
    write_json(options.report, report)
    print()
    print(summary(report))
    print(_faults_table(report))
    for problem in report["problems"]:
        print(f"  problem: {problem}", file=sys.stderr)
    failed = not report["settled"] or any(report[name] for name in COUNTERS)
    verdict = "FAIL" if failed else "PASS"
    print(f"\n{verdict}: report written to {options.report}")
    return 1 if failed else 0


async def _chaos(
    chaos: ChaosStack, profile: Profile, options: Options, started: float
) -> dict[str, Any]:
    stack = Stack(chaos.host, chaos.demo_token)
    rng = random.Random(f"{options.seed}/chaos")
    kills, interval = profile.kills(options.orders)
    killer = Killer(chaos, stack, rng, interval, kills)
    sweep = FinalSweep(chaos, stack, killer)
    run = RunOptions(
        options.orders,
        profile.duplicates,
        options.seed,
        options.timeout,
        drops=profile.drops,
        webhook_retries=False,
    )
    try:
        await faults.switch_on(stack, profile, options.seed)
        killing = asyncio.create_task(killer.run(sweep.settled))  # the first wave only
        try:
            outcome = await run_lifecycle(stack, run, Bars(), started, extra_check=sweep)
        finally:
            sweep.settled.set()
            await killing
        report = await figures(stack, run, outcome)
        found = problems(report, outcome)
        report.update(await faults.counted(stack, killer, chaos.log_path))
        unexplained = _parked_without_reason(stack)
        return {
            "orders": report.pop("orders"),
            "faults": report.pop("faults"),
            **{name: report.get(name, 0) for name in COUNTERS[:-1]},
            "parked_without_reason": len(unexplained),
            "settled": not outcome.problems,
            "problems": found + [f"parked without a reason: {m}" for m in unexplained],
            "worker": {"kills": killer.kills, "down_seconds": killer.down_seconds},
            "reconcile": sweep.figures(),
            "profile": {"seed": options.seed, **_profile(profile)},
            **report,
        }
    finally:
        await stack.aclose()


def _parked_without_reason(stack: Stack) -> list[str]:
    """Parked messages missing the reason or the description an operator needs to act."""
    return [
        message.message_id
        for message in peek_all(stack, ORDER_PARKED.name)
        if not message.application_properties.get("park_reason")
        or not message.application_properties.get("park_description")
    ]


def _profile(profile: Profile) -> dict[str, Any]:
    return {
        "dataverse": dict(profile.dataverse),
        "bigcommerce": dict(profile.bigcommerce),
        "webhook_duplicates": profile.duplicates,
        "webhook_drops": profile.drops,
        "store_quota": profile.store_quota,
    }


def _faults_table(report: dict[str, Any]) -> str:
    lines = ["", "  faults injected"]
    lines += [f"    {kind:<40} {count}" for kind, count in report["faults"].items()]
    lines += ["", f"  {'parked without a reason':<42} {report['parked_without_reason']}"]
    if not report["settled"]:
        lines.append("  the run did NOT settle in time (see problems)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
