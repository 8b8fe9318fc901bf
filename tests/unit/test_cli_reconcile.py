"""`python -m cli reconcile`: its arguments and its report (the sweep itself is tested in
test_reconcile_sweep.py, the command against the real stack in tests/e2e/test_reconcile_e2e.py).
It is registered through its own `register`, in a parser like `cli.build_parser`'s."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta

import pytest

from cli import reconcile as command
from shared.handlers.reconcile import ReconcileReport, StoreOutcome
from shared.reconciliation.metrics import SweepMetrics

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m cli")
    groups = parser.add_subparsers(dest="group", required=True)
    command.register(groups)
    return parser.parse_args(["reconcile", *argv])


def test_arguments() -> None:
    every = parse()
    assert every.run is command.reconcile
    assert every.stores is None
    assert not every.json
    assert not every.skip_hooks
    some = parse("--store", "abc123", "--store", "def456", "--json", "--skip-hooks")
    assert some.stores == ["abc123", "def456"]
    assert some.json
    assert some.skip_hooks


def report() -> ReconcileReport:
    metrics = SweepMetrics(
        "abc123",
        started_at=NOW,
        finished_at=NOW + timedelta(seconds=3),
        orders_checked=4,
        orders_missing=1,
        orders_stale=1,
        orders_enqueued=2,
        refunds_checked=2,
        refunds_missing=1,
        refunds_enqueued=1,
        oldest_unsynced=NOW - timedelta(minutes=10),
    )
    return ReconcileReport(
        (
            StoreOutcome("abc123", "swept", metrics),
            StoreOutcome("def456", "skipped", reason="another sweep holds the lease sweep.def456"),
        )
    )


def test_the_report_as_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    command._print(report(), as_json=False)
    out, err = capsys.readouterr()
    header, swept, skipped = out.splitlines()[:3]
    assert header.split() == [
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
    ]
    assert swept.split() == ["abc123", "swept", "4", "1", "1", "1/2", "0", "3", "50.00%", "603s"]
    assert skipped.split()[:2] == ["def456", "skipped"]
    assert "def456: skipped: another sweep holds the lease sweep.def456" in err


def test_the_report_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    command._print(report(), as_json=True)
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True  # a skipped store is not a failure of the sweep
    swept, skipped = document["stores"]
    assert swept["metrics"]["coverage"] == 0.5
    assert swept["metrics"]["enqueued"] == 3
    assert skipped["metrics"] is None
