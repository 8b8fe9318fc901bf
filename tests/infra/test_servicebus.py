"""infra/modules/servicebus.bicep provisions exactly the queues of shared/messaging/queues.py,
with the properties the code relies on, and grants the app only what its code does on each."""

from __future__ import annotations

import ast
import copy
import re
from datetime import timedelta
from typing import Any

from shared.messaging import queues as queue_specs
from shared.messaging.queues import ALL_QUEUES, QueueSpec
from tests.infra.bicep import REPO, Evaluator, resources_of_type, template

MODULE = "modules/servicebus.bicep"
SENDER = "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"
RECEIVER = "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"
PARAMS = {"name": "sb-token", "location": "westeurope", "appPrincipalId": "app-principal"}

_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")


def duration(text: str) -> timedelta:
    match = _DURATION.fullmatch(text)
    assert match, f"not an ISO 8601 duration: {text!r}"
    assert text not in ("P", "PT"), f"an empty duration: {text!r}"
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def provisioned_queues(tree: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The queues a deployment creates, by name: the properties of each queue resource."""
    evaluator = Evaluator(tree, PARAMS)
    found: dict[str, dict[str, Any]] = {}
    for symbol in resources_of_type(tree, "Microsoft.ServiceBus/namespaces/queues"):
        instances = evaluator.resource(symbol)
        for queue in instances if isinstance(instances, list) else [instances]:
            found[queue["name"]] = queue["properties"]
    return found


def mismatches(tree: dict[str, Any], specs: tuple[QueueSpec, ...]) -> list[str]:
    """How the template's queues differ from the specs (empty: they match exactly)."""
    queues = provisioned_queues(tree)
    problems = []
    if set(queues) != {s.name for s in specs}:
        problems.append(f"queues {sorted(queues)} != {sorted(s.name for s in specs)}")
    for spec in specs:
        queue = queues.get(spec.name)
        if queue is None:
            continue
        window = spec.duplicate_detection_window
        expected: dict[str, Any] = {
            "requiresSession": spec.requires_session,
            "lockDuration": spec.lock_duration,
            "maxDeliveryCount": spec.max_delivery_count,
            "requiresDuplicateDetection": window is not None,
            "defaultMessageTimeToLive": spec.default_time_to_live,
            "deadLetteringOnMessageExpiration": spec.dead_lettering_on_expiration,
        }
        if window is not None:
            expected["duplicateDetectionHistoryTimeWindow"] = window
        for key, want in expected.items():
            got = queue.get(key)
            if isinstance(want, timedelta) and isinstance(got, str):
                got = duration(got)
            if got != want:
                problems.append(f"{spec.name}.{key} is {got!r}, the code needs {want!r}")
    return problems


def test_the_queues_are_exactly_those_of_queues_py() -> None:
    assert mismatches(template(MODULE), ALL_QUEUES) == []


def test_a_queue_without_sessions_or_with_another_window_would_be_caught() -> None:
    tree = copy.deepcopy(template(MODULE))
    queues = tree["variables"]["queues"]["value"]
    order_events = next(q for q in queues if q["name"] == "order-events")
    order_events["requiresSession"] = False
    order_events["duplicateDetectionHistoryTimeWindow"] = "PT10M"
    del queues[-1]
    problems = mismatches(tree, ALL_QUEUES)
    assert any("order-events.requiresSession" in p for p in problems)
    assert any("order-events.duplicateDetectionHistoryTimeWindow" in p for p in problems)
    assert any(p.startswith("queues ") for p in problems)


def test_duplicate_detection_windows_are_within_service_bus_limits() -> None:
    for properties in provisioned_queues(template(MODULE)).values():
        assert duration(properties["lockDuration"]) <= timedelta(minutes=5)
        if properties["requiresDuplicateDetection"]:
            window = duration(properties["duplicateDetectionHistoryTimeWindow"])
            assert timedelta(seconds=20) <= window <= timedelta(days=7)


def test_namespace_is_standard_with_entra_id_only_and_tls_1_2() -> None:
    tree = template(MODULE)
    namespaces = resources_of_type(tree, "Microsoft.ServiceBus/namespaces")
    assert len(namespaces) == 1
    namespace = Evaluator(tree, PARAMS).resource(next(iter(namespaces)))
    assert namespace["sku"]["name"] in ("Standard", "Premium")  # sessions, duplicate detection
    assert namespace["properties"]["disableLocalAuth"] is True
    assert namespace["properties"]["minimumTlsVersion"] == "1.2"


def test_no_shared_access_authorization_rules_are_declared() -> None:
    for relative in ("main.bicep", MODULE):
        for declaration in template(relative)["resources"].values():
            assert "authorizationrules" not in declaration["type"].lower()
    text = (REPO / "infra" / MODULE).read_text()
    assert "authorizationRules" not in text


# -- what the code does with each queue ---------------------------------------------------------


def _queue_names_by_constant() -> dict[str, str]:
    return {
        name: value.name
        for name, value in vars(queue_specs).items()
        if isinstance(value, QueueSpec)
    }


def _queue_constant(node: ast.AST) -> str | None:
    """`ORDER_EVENTS.name` -> "ORDER_EVENTS"."""
    if isinstance(node, ast.Attribute) and node.attr == "name" and isinstance(node.value, ast.Name):
        return node.value.id
    return None


def code_usage() -> tuple[set[str], set[str]]:
    """(queues the deployed code sends to, queues a function is triggered by), read from the
    source: `<sender>.send(QUEUE.name, ...)` in shared/ and functions/, and
    `service_bus_queue_trigger(queue_name=QUEUE.name)` in functions/."""
    names = _queue_names_by_constant()
    sends: set[str] = set()
    receives: set[str] = set()
    for folder in ("shared", "functions"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                    continue
                if node.func.attr == "send" and node.args:
                    constant = _queue_constant(node.args[0])
                    if constant in names:
                        sends.add(names[constant])
                if node.func.attr == "service_bus_queue_trigger":
                    for keyword in node.keywords:
                        constant = _queue_constant(keyword.value)
                        if keyword.arg == "queue_name" and constant in names:
                            receives.add(names[constant])
    return sends, receives


def granted(role: str) -> set[str]:
    tree = template(MODULE)
    evaluator = Evaluator(tree, PARAMS)
    queues = set()
    for symbol in resources_of_type(tree, "Microsoft.Authorization/roleAssignments"):
        instances = evaluator.resource(symbol)
        for assignment in instances if isinstance(instances, list) else [instances]:
            if assignment is None or not assignment["properties"]["roleDefinitionId"].endswith(
                role
            ):
                continue
            assert assignment["properties"]["principalId"] == PARAMS["appPrincipalId"]
            scope = assignment["scope"]
            assert isinstance(scope, dict), "a Service Bus role must be scoped to a queue"
            queues.add(scope["name"])
    return queues


def test_the_code_uses_the_queues_it_is_expected_to() -> None:
    sends, receives = code_usage()
    assert "order-events" in sends
    assert "order-parked" in sends
    assert receives == {"order-events", "dataverse-events"}


def test_the_app_may_send_exactly_where_its_code_sends() -> None:
    sends, _ = code_usage()
    assert granted(SENDER) == sends


def test_the_app_may_receive_exactly_where_a_function_is_triggered() -> None:
    _, receives = code_usage()
    assert granted(RECEIVER) == receives


def test_service_bus_roles_are_never_granted_on_the_namespace() -> None:
    tree = template(MODULE)
    for declaration in resources_of_type(tree, "Microsoft.Authorization/roleAssignments").values():
        scope = declaration["config"]["config"]["scope"]
        assert scope["operator"]["operands"]["operand_1"] == "queue"
