"""The doctor's runner and report: checks run concurrently, each under its own timeout; a check
that raises or hangs becomes a failed row with its hint, and the others still report."""

from __future__ import annotations

import asyncio
import io
import json

import pytest

from cli import EXIT_USAGE, main
from shared.diagnostics import Check, CheckResult, Status, run_checks
from shared.diagnostics.report import all_passed, render_table, summary, to_json


def passing(name: str, detail: str = "fine") -> Check:
    async def run() -> CheckResult:
        return CheckResult.passed(name, detail)

    return Check(name, run, hint=f"fix {name}")


async def test_checks_run_concurrently_and_report_in_the_order_given() -> None:
    # Each check finishes only once the other has started: run one after the other, they would
    # wait forever (and the timeout would fail both).
    first_started, second_started = asyncio.Event(), asyncio.Event()

    async def first() -> CheckResult:
        first_started.set()
        await second_started.wait()
        return CheckResult.passed("first", "saw the second")

    async def second() -> CheckResult:
        second_started.set()
        await first_started.wait()
        return CheckResult.passed("second", "saw the first")

    results = await run_checks(
        [Check("first", first, "h1"), Check("second", second, "h2")], timeout=30
    )

    assert [(r.name, r.status) for r in results] == [
        ("first", Status.PASS),
        ("second", Status.PASS),
    ]


async def test_a_hanging_check_fails_with_its_hint_and_the_others_still_report() -> None:
    never = asyncio.Event()

    async def hangs() -> CheckResult:
        await never.wait()
        raise AssertionError("unreachable")

    checks = [
        passing("before"),
        Check("dead endpoint", hangs, "start the endpoint", where="http://127.0.0.1:1"),
        passing("after"),
    ]

    results = await run_checks(checks, timeout=0.2)

    assert [r.status for r in results] == [Status.PASS, Status.FAIL, Status.PASS]
    assert results[1].detail == "http://127.0.0.1:1: no answer within 0.2s"
    assert results[1].hint == "start the endpoint"


async def test_an_exception_is_a_failed_row_in_one_line() -> None:
    async def raises() -> CheckResult:
        raise ConnectionRefusedError("[Errno 111]\nConnection refused")

    [result] = await run_checks([Check("store", raises, "start the store")], timeout=5)

    assert result.status is Status.FAIL
    assert result.detail == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert result.hint == "start the store"


async def test_a_check_whose_dependency_failed_is_not_run() -> None:
    ran: list[str] = []

    async def down() -> CheckResult:
        return CheckResult.failed("api", "refused", "start it")

    async def needs_api() -> CheckResult:
        ran.append("privileges")
        return CheckResult.passed("privileges", "all there")

    async def warns() -> CheckResult:
        return CheckResult.warned("queue", "not verified", "needs Reader")

    async def needs_queue() -> CheckResult:
        ran.append("after warning")
        return CheckResult.passed("peek", "fine")

    results = await run_checks(
        [
            Check("api", down, "h"),
            Check("privileges", needs_api, "h", needs=("api",)),
            Check("queue", warns, "h"),
            Check("peek", needs_queue, "h", needs=("queue",)),
        ],
        timeout=5,
    )

    assert ran == ["after warning"]  # a warning does not stop what needs it
    assert (results[1].status, results[1].detail) == (Status.FAIL, "not checked: api failed")
    assert results[1].hint == "fix api first"


async def test_a_check_may_take_longer_than_the_default_when_it_says_so() -> None:
    released, never = asyncio.Event(), asyncio.Event()
    asyncio.get_running_loop().call_later(0.3, released.set)

    async def slow() -> CheckResult:
        await released.wait()
        return CheckResult.passed("schema", "read")

    async def hangs() -> CheckResult:
        await never.wait()
        raise AssertionError("unreachable")

    results = await run_checks(
        [Check("schema", slow, "h", timeout=30), Check("other", hangs, "h")], timeout=0.05
    )

    assert [r.status for r in results] == [Status.PASS, Status.FAIL]


async def test_checks_must_be_named_once_and_after_what_they_need() -> None:
    with pytest.raises(ValueError, match="unique"):
        await run_checks([passing("a"), passing("a")])
    with pytest.raises(ValueError, match="must come after"):
        await run_checks([Check("b", passing("b").run, "h", needs=("a",)), passing("a")])


# -- the report -----------------------------------------------------------------------------------

RESULTS = [
    CheckResult.passed("settings", "1 store"),
    CheckResult.warned("queue order-events", "properties not verified", "needs Reader/Manage"),
    CheckResult.failed("dataverse", "http://127.0.0.1:7073: no answer within 10s", "start it"),
]


def test_the_table_puts_each_hint_under_its_row_and_ends_with_a_summary() -> None:
    lines = render_table(RESULTS).splitlines()

    assert lines[0].split() == ["CHECK", "STATUS", "DETAIL"]
    assert lines[1].split()[:2] == ["settings", "PASS"]
    assert lines[2].split()[:3] == ["queue", "order-events", "WARN"]
    assert lines[3].strip() == "hint: needs Reader/Manage"
    assert lines[4].split()[:2] == ["dataverse", "FAIL"]
    assert lines[5].strip() == "hint: start it"
    assert lines[-1] == "some checks failed: 1 passed, 1 warning(s), 1 failed"
    detail_column = lines[0].index("DETAIL")
    assert lines[3].index("hint") == detail_column


def test_long_details_wrap_in_their_column_without_breaking_words() -> None:
    long = CheckResult.passed("dataverse", "user 16072072-88a0-5ead-a1fa-ac5424a7dc6e " * 4)

    lines = render_table([long], width=80).splitlines()

    column = lines[0].index("DETAIL")
    assert len(lines) > 4
    assert all(line[:column].strip() == "" for line in lines[2:-2])
    assert all("16072072-88a0-5ead-a1fa-ac5424a7dc6e" in line for line in lines[1:-2])


def test_warnings_do_not_fail_the_doctor_and_json_keeps_every_row() -> None:
    assert all_passed(RESULTS[:2])
    assert not all_passed(RESULTS)
    assert summary(RESULTS[:2]) == "all checks passed: 1 passed, 1 warning(s), 0 failed"
    body = to_json(RESULTS)
    assert body["ok"] is False
    assert body["counts"] == {"pass": 1, "warn": 1, "fail": 1}
    assert body["checks"][0] == {
        "name": "settings",
        "status": "pass",
        "detail": "1 store",
        "hint": None,
    }


# -- the command ----------------------------------------------------------------------------------


def test_invalid_settings_show_both_rows_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("BIGCOMMERCE_STORES", "DATAVERSE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WEBHOOK_FUNCTION_KEY", "@Microsoft.KeyVault(VaultName=kv;SecretName=k)")

    assert main(["doctor", "--json"], stdin=io.StringIO()) == EXIT_USAGE

    body = json.loads(capsys.readouterr().out)
    assert [(c["name"], c["status"]) for c in body["checks"]] == [
        ("settings", "fail"),
        ("secrets", "fail"),
    ]
    assert "BIGCOMMERCE_STORES" in body["checks"][0]["detail"]
    assert "WEBHOOK_FUNCTION_KEY (kv/k)" in body["checks"][1]["detail"]
