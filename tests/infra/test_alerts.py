"""infra/modules/alerts.bicep alerts on each failure mode, over the names the code really emits.

The log alerts read the worker's JSON log lines (`traces`, `parse_json(message)`): every field
a query reads (`m.<field>`) and every value it compares a field with must be in the lines the
code writes, which these tests produce by running the code's own emitters.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import shlex
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cli import build_parser
from shared.config import load_settings
from shared.messaging.queues import ALL_QUEUES
from shared.observability.json_logging import JsonFormatter
from shared.reconciliation.metrics import CUSTOM_METRICS, METRIC_EVENT, SweepMetrics, emit
from shared.reconciliation.webhook_health import HookReport, HooksApi, Repair, WebhookHealth
from tests.infra.bicep import MAIN_PARAMS, REPO, Evaluator, body, resources_of_type, template

MODULE = "modules/alerts.bicep"
NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
PARAMS = {
    "namePrefix": "alert-token",
    "location": "westeurope",
    "actionGroupId": "/actionGroups/ag",
    "serviceBusNamespaceId": "/namespaces/sb",
    "appInsightsId": "/components/appi",
}


def alerts() -> dict[str, dict[str, Any]]:
    tree = template(MODULE)
    evaluator = Evaluator(tree, PARAMS)
    found = {}
    for kind in ("Microsoft.Insights/metricAlerts", "Microsoft.Insights/scheduledQueryRules"):
        for symbol in resources_of_type(tree, kind):
            found[symbol] = {"type": kind, **evaluator.resource(symbol)}
    return found


def query(symbol: str) -> str:
    criteria = alerts()[symbol]["properties"]["criteria"]["allOf"]
    assert len(criteria) == 1
    return str(criteria[0]["query"])


# -- each failure mode has its alert -------------------------------------------------------------


def test_dead_letters_on_any_queue() -> None:
    alert = alerts()["deadLetters"]
    assert alert["properties"]["scopes"] == [PARAMS["serviceBusNamespaceId"]]
    (criterion,) = alert["properties"]["criteria"]["allOf"]
    assert criterion["metricName"] == "DeadletteredMessages"
    assert criterion["operator"] == "GreaterThan"
    assert criterion["threshold"] == 0
    assert criterion["dimensions"] == [
        {"name": "EntityName", "operator": "Include", "values": ["*"]}
    ]


def test_failed_executions() -> None:
    text = query("failedExecutions")
    assert text.lstrip().startswith("requests")
    assert "success == false" in text


def test_ingress_5xx_rate() -> None:
    text = query("ingressErrors")
    assert ">= 500" in text
    (criterion,) = alerts()["ingressErrors"]["properties"]["criteria"]["allOf"]
    assert criterion["metricMeasureColumn"] in text
    assert criterion["threshold"] == 5


def test_reconciliation_coverage_and_oldest_unsynced() -> None:
    assert '"reconcile.coverage"' in query("reconcileCoverage")
    assert "best < 1" in query("reconcileCoverage")
    assert '"reconcile.oldest_unsynced_seconds"' in query("oldestUnsynced")
    (criterion,) = alerts()["oldestUnsynced"]["properties"]["criteria"]["allOf"]
    assert criterion["threshold"] == 3600


def test_hook_deactivated() -> None:
    text = query("hookDeactivated")
    assert '"webhook_health"' in text
    assert "hooks_repaired" in text
    assert "healthy" in text


def test_every_alert_notifies_the_action_group() -> None:
    found = alerts()
    assert len(found) >= 6
    for symbol, alert in found.items():
        properties = alert["properties"]
        assert properties["enabled"] is True, symbol
        if alert["type"] == "Microsoft.Insights/metricAlerts":
            assert properties["actions"] == [{"actionGroupId": PARAMS["actionGroupId"]}], symbol
        else:
            assert properties["actions"] == {"actionGroups": [PARAMS["actionGroupId"]]}, symbol
            assert properties["scopes"] == [PARAMS["appInsightsId"]], symbol


def test_main_wires_the_alerts_to_an_e_mail_action_group() -> None:
    calls = template("main.bicep")["modules"]
    main = Evaluator(template("main.bicep"), MAIN_PARAMS)
    group = main.eval(calls["actionGroup"]["config"]["params"])
    assert [r["emailAddress"] for r in group["emailReceivers"]] == [MAIN_PARAMS["alertEmail"]]
    assert len(group["groupShortName"]) <= 12
    wired = main.eval(calls["alerts"]["config"]["params"])
    assert wired["actionGroupId"] == "actionGroup.outputs.resourceId"
    assert wired["appInsightsId"] == "appInsights.outputs.resourceId"
    assert wired["serviceBusNamespaceId"] == "serviceBus.outputs.resourceId"


# -- the commands an alert names are ones the CLI accepts --------------------------------------

CLI_COMMAND = re.compile(r"`python -m cli ([^`]+)`")
# What an operator puts in for each placeholder; every queue is tried for <queue>.
PLACEHOLDERS = {"<hash>": ["abc123"], "<id>": ["250"], "<n>": ["7"]}
PLACEHOLDERS["<queue>"] = [spec.name for spec in ALL_QUEUES]


def cli_accepts(command: str) -> bool:
    """True when `python -m cli <command>` parses down to a runnable command."""
    try:
        args = build_parser().parse_args(shlex.split(command))
    except SystemExit:
        return False
    return callable(getattr(args, "run", None))


def filled_in(command: str) -> list[str]:
    commands = [command]
    for placeholder, values in PLACEHOLDERS.items():
        commands = [c.replace(placeholder, v) for c in commands for v in values]
    assert not any(re.search(r"<[^>]*>", c) for c in commands), f"unknown placeholder: {command}"
    return commands


def alert_commands() -> dict[str, list[str]]:
    return {
        symbol: CLI_COMMAND.findall(str(alert["properties"]["description"]))
        for symbol, alert in alerts().items()
    }


def test_every_command_an_alert_names_is_one_the_cli_accepts() -> None:
    for symbol, commands in alert_commands().items():
        for command in commands:
            for filled in filled_in(command):
                assert cli_accepts(filled), f"{symbol}: `python -m cli {filled}` does not parse"


def test_the_dead_letter_and_parked_alerts_name_the_replay_commands() -> None:
    commands = alert_commands()
    assert any(c.startswith("queues replay <queue> ") for c in commands["deadLetters"])
    assert any(c.startswith("queues peek-dlq <queue>") for c in commands["deadLetters"])
    assert any(c.startswith("orders replay ") for c in commands["parkedOrders"])


def test_an_incomplete_command_would_be_caught() -> None:
    assert not cli_accepts("queues replay")  # no queue, and neither --all nor --sequence
    assert not cli_accepts("queues replay order-events")
    assert not cli_accepts("orders replay")
    assert cli_accepts("queues replay order-events --all")


# -- the queries read what the code writes -------------------------------------------------------


def _lines(records: list[logging.LogRecord]) -> list[dict[str, Any]]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(record)) for record in records]


def reconcile_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    metrics = SweepMetrics("abc123", started_at=NOW, finished_at=NOW + timedelta(seconds=3))
    metrics.orders_checked, metrics.orders_missing = 4, 1
    metrics.unsynced(NOW - timedelta(hours=2))
    metrics.fail("orders", "BigCommerce unavailable")
    with caplog.at_level(logging.INFO):
        caplog.clear()
        emit(metrics)
    return _lines(caplog.records)


def webhook_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    report = HookReport(
        store_hash="abc123",
        checked_at=NOW,
        trigger="timer",
        repairs=(Repair(("reenable",), "store/order/*", "https://x/…", 7, True),),
    )

    def no_client(store_hash: str) -> HooksApi:
        raise AssertionError("logging a report calls no API")

    health = WebhookHealth(load_settings(), no_client, None)
    with caplog.at_level(logging.INFO):
        caplog.clear()
        health._log(report)
    return _lines(caplog.records)


TRACE_ALERTS = {
    "reconcileCoverage": "reconcile",
    "oldestUnsynced": "reconcile",
    "reconcileFailed": "reconcile",
    "reconcileSilent": "reconcile",
    "hookDeactivated": "webhook",
}


def _comparisons(text: str) -> list[tuple[str, str]]:
    """(field, value) for each `tostring(m.<field>) == "<value>"` of a query."""
    return re.findall(r'tostring\(m\.(\w+)\) == "([^"]+)"', text)


@pytest.mark.parametrize("symbol", sorted(TRACE_ALERTS))
def test_trace_queries_read_fields_and_values_the_code_logs(
    symbol: str, caplog: pytest.LogCaptureFixture
) -> None:
    lines = (
        reconcile_lines(caplog) if TRACE_ALERTS[symbol] == "reconcile" else webhook_lines(caplog)
    )
    text = query(symbol)
    assert "parse_json(message)" in text
    comparisons = _comparisons(text)
    assert comparisons, f"{symbol} selects no event"
    matching = [line for line in lines if all(str(line.get(f)) == v for f, v in comparisons)]
    assert matching, f"{symbol}: no line the code writes has {comparisons}"
    fields = set(re.findall(r"\bm\.(\w+)", text))
    missing = fields - set().union(*(set(line) for line in matching))
    assert missing == set(), f"{symbol} reads fields the code does not log: {missing}"


def test_metric_names_in_queries_are_the_codes() -> None:
    emitted = {f"reconcile.{name}" for name in CUSTOM_METRICS} | {METRIC_EVENT}
    for symbol, kind in TRACE_ALERTS.items():
        if kind == "reconcile":
            for _, value in _comparisons(query(symbol)):
                assert value in emitted | {"failed"}, (symbol, value)


def test_a_misspelled_metric_would_be_caught(caplog: pytest.LogCaptureFixture) -> None:
    lines = reconcile_lines(caplog)
    assert not [line for line in lines if line.get("customMetric") == "reconcile.coverge"]
    assert [line for line in lines if line.get("customMetric") == "reconcile.coverage"]


def _function_names() -> set[str]:
    names = set()
    for path in sorted((REPO / "functions").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.decorator_list:
                names.add(node.name)
    return names


def test_request_queries_name_functions_that_exist() -> None:
    functions = _function_names()
    assert "bigcommerce_webhook" in functions
    for symbol in alerts():
        if alerts()[symbol]["type"].endswith("scheduledQueryRules"):
            for name in re.findall(r'operation_Name == "(\w+)"', query(symbol)):
                assert name in functions, (symbol, name)
    assert re.search(r'operation_Name == "bigcommerce_webhook"', query("ingressErrors"))


def test_every_trace_query_is_checked_against_the_code() -> None:
    trace_alerts = {
        s for s in alerts() if "parse_json(message)" in str(body(template(MODULE)["resources"][s]))
    }
    assert trace_alerts == set(TRACE_ALERTS)
