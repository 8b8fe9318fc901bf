"""What the Functions host will index from function_app: our guard against "0 functions found".

The expectation is written out in full: a renamed route, queue, setting or a lost binding fails.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

EXPECTED: dict[str, list[dict[str, Any]]] = {
    "health": [
        {
            "direction": "IN",
            "type": "httpTrigger",
            "name": "req",
            "methods": ["GET"],
            "authLevel": "ANONYMOUS",
            "route": "health",
        },
        {"direction": "OUT", "type": "http", "name": "$return"},
    ],
    "bigcommerce_webhook": [
        {
            "direction": "IN",
            "type": "httpTrigger",
            "name": "req",
            "authLevel": "FUNCTION",
            "route": "webhooks/bigcommerce",
        },
        {"direction": "OUT", "type": "http", "name": "$return"},
    ],
    "order_events": [
        {
            "direction": "IN",
            "type": "serviceBusTrigger",
            "name": "message",
            "connection": "ServiceBusConnection",
            "queueName": "order-events",
            "isSessionsEnabled": True,
        }
    ],
    "dataverse_events": [
        {
            "direction": "IN",
            "type": "serviceBusTrigger",
            "name": "message",
            "connection": "ServiceBusConnection",
            "queueName": "dataverse-events",
        }
    ],
    "dataverse_poll": [
        {
            "direction": "IN",
            "type": "timerTrigger",
            "name": "timer",
            "schedule": "%DATAVERSE_POLL_SCHEDULE%",
            "runOnStartup": False,
            "useMonitor": False,
        }
    ],
    "reconcile": [
        {
            "direction": "IN",
            "type": "timerTrigger",
            "name": "timer",
            "schedule": "%RECONCILE_SCHEDULE%",
            "runOnStartup": False,
            "useMonitor": True,
        }
    ],
}


@pytest.fixture(scope="module")
def indexed() -> dict[str, dict[str, Any]]:
    import function_app

    # get_functions() may be called once per app instance (it records names as it validates).
    functions = function_app.app.get_functions()
    return {str(f.get_function_name()): json.loads(f.get_function_json()) for f in functions}


def test_every_function_and_binding_is_indexed(indexed: dict[str, dict[str, Any]]) -> None:
    assert {name: meta["bindings"] for name, meta in indexed.items()} == EXPECTED


def test_the_script_file_is_function_app(indexed: dict[str, dict[str, Any]]) -> None:
    assert {meta["scriptFile"] for meta in indexed.values()} == {"function_app.py"}


def test_exactly_one_function_app_instance() -> None:
    import azure.functions as func

    import function_app

    apps = [v for v in vars(function_app).values() if isinstance(v, func.FunctionRegister)]
    assert len(apps) == 1
