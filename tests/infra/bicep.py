"""Reads the Bicep templates of infra/ for the structural tests.

No Bicep compiler runs offline here, so the tests read pycep-parser's parse trees and evaluate
the expressions the templates use with the small evaluator below: enough to see which queues,
role assignments and app settings a deployment would create for given parameters. What only
Azure knows at deployment (resource ids, module outputs, guid()) evaluates to `Unknown`, a string
naming where the value comes from.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pycep import BicepParser

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"

_PARSER = BicepParser()


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@functools.cache
def template(relative: str) -> dict[str, Any]:
    """The parse tree of infra/<relative>."""
    return dict(_PARSER.parse(file_path=INFRA / relative))


@functools.cache
def _expression(text: str) -> Any:
    return _PARSER.parse(text=f"var v = {text}")["variables"]["v"]["value"]


class Unknown(str):
    """A value only Azure knows at deployment; the text says where it comes from."""


class DeploymentFailure(Exception):
    """What a template's `fail(message)` does to a deployment: it stops, with the message."""


def _key(key: str) -> str:
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == "'" else key


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _interpolations(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each `${...}` in a string literal, braces and quotes balanced."""
    index = 0
    while (start := text.find("${", index)) >= 0:
        depth, quoted, position = 0, False, start + 1
        while position < len(text):
            char = text[position]
            if char == "'":
                quoted = not quoted
            elif not quoted and char == "{":
                depth += 1
            elif not quoted and char == "}":
                depth -= 1
                if depth == 0:
                    break
            position += 1
        yield start, position + 1
        index = position + 1


ENVIRONMENT = {"name": "AzureCloud", "suffixes": {"storage": "core.windows.net"}}


class Evaluator:
    """Evaluates the expressions of one template for the given parameter values (the others take
    their defaults; a required one missing raises KeyError when used)."""

    def __init__(self, tree: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> None:
        self.tree = tree
        self.params = dict(params or {})
        self._variables: dict[str, Any] = {}
        self._resources: dict[str, Any] = {}

    # -- symbols ------------------------------------------------------------------------------

    def param(self, name: str) -> Any:
        if name in self.params:
            return self.params[name]
        default = self.tree["parameters"][name]["default"]
        if default is None:
            raise KeyError(f"parameter {name} has no default and was not given")
        return self.eval(default)

    def variable(self, name: str) -> Any:
        if name not in self._variables:
            self._variables[name] = self.eval(self.tree["variables"][name]["value"])
        return self._variables[name]

    def resource(self, symbol: str) -> Any:
        """A resource as deployed: its evaluated declaration plus an unknown id (a list for a
        loop; None for a condition that is false)."""
        if symbol not in self._resources:
            declaration = self.tree["resources"][symbol]
            self._resources[symbol] = self._instances(symbol, declaration["config"])
        return self._resources[symbol]

    def _instances(self, symbol: str, config: Mapping[str, Any]) -> Any:
        if "loop_type" in config:
            return [
                {**body, "id": Unknown(f"{symbol}[{i}].id")}
                for i, body in enumerate(self.loop(config))
            ]
        if "condition" in config and "config" in config:
            if not self.eval(config["condition"]):
                return None
            config = config["config"]
        return {**self.eval(config), "id": Unknown(f"{symbol}.id")}

    def loop(self, node: Mapping[str, Any], local: Mapping[str, Any] | None = None) -> list[Any]:
        detail = node["loop_type"]["detail"]
        items = self.eval(detail["array_name"], local)
        out = []
        for index, item in enumerate(items):
            scope = {**(local or {}), detail["item_name"]: item}
            if detail.get("index_name"):
                scope[detail["index_name"]] = index
            if node.get("condition") is not None and not self.eval(node["condition"], scope):
                continue
            out.append(self.eval(node["config"], scope))
        return out

    def _name(self, name: str, local: Mapping[str, Any]) -> Any:
        if name in local:
            return local[name]
        if name in self.tree.get("parameters", {}):
            return self.param(name)
        if name in self.tree.get("variables", {}):
            return self.variable(name)
        if name in self.tree.get("resources", {}):
            return self.resource(name)
        if name in self.tree.get("modules", {}):
            return Unknown(name)
        return self._literal(name, local)

    def _literal(self, text: str, local: Mapping[str, Any]) -> str:
        if "${" not in text:
            return text
        parts, last = [], 0
        for start, end in _interpolations(text):
            parts.append(text[last:start])
            parts.append(_text(self.eval(_expression(text[start + 2 : end - 1]), local)))
            last = end
        parts.append(text[last:])
        return "".join(parts)

    # -- expressions --------------------------------------------------------------------------

    def eval(self, node: Any, local: Mapping[str, Any] | None = None) -> Any:
        local = local or {}
        if isinstance(node, str):
            return self._name(node, local)
        if isinstance(node, list):
            return [self.eval(item, local) for item in node]
        if not isinstance(node, dict):
            return node
        if node.get("type") == "lambda_expression" and set(node) == {"type", "detail"}:
            return self._lambda(node["detail"], local)
        if "loop_type" in node:
            return self.loop(node, local)
        if set(node) == {"operator"} and isinstance(node["operator"], dict):
            return self._operator(node["operator"]["type"], node["operator"]["operands"], local)
        if set(node) == {"function"} and isinstance(node["function"], dict):
            function = node["function"]
            return self._function(function["type"], function.get("parameters") or {}, local)
        return {
            self._literal(_key(key), local): self.eval(value, local) for key, value in node.items()
        }

    def _lambda(self, detail: Mapping[str, Any], local: Mapping[str, Any]) -> Callable[..., Any]:
        names = [detail[k] for k in sorted(detail) if k.startswith("var_")]

        def call(*values: Any) -> Any:
            return self.eval(
                detail["expression"], {**local, **dict(zip(names, values, strict=True))}
            )

        return call

    def _access(self, target: Any, path: Any, local: Mapping[str, Any]) -> Any:
        if isinstance(path, dict) and "operator" in path:
            operator = path["operator"]
            operands = operator["operands"]
            if operator["type"] == "property_accessor":
                inner = self._access(target, operands["operand_1"], local)
                return self._access(inner, operands["operand_2"], local)
            if operator["type"] == "index_accessor":
                inner = self._access(target, operands["operand_1"], local)
                return self._index(inner, self.eval(operands["operand_2"], local))
            if operator["type"] == "coalesce":  # a.?b ?? c
                value = self._access(target, operands["operand_1"], local)
                return self.eval(operands["operand_2"], local) if value is None else value
            raise NotImplementedError(operator["type"])
        key = str(path)
        if isinstance(target, dict):
            return target[key] if key in target else Unknown(f"{target.get('id', '?')}.{key}")
        return Unknown(f"{target}.{key}")

    @staticmethod
    def _index(target: Any, index: Any) -> Any:
        if isinstance(target, list | dict) and not isinstance(target, Unknown):
            return target[index]
        return Unknown(f"{target}[{index}]")

    def _operator(self, kind: str, operands: Mapping[str, Any], local: Mapping[str, Any]) -> Any:
        def value(name: str) -> Any:
            return self.eval(operands[name], local)

        if kind == "property_accessor":
            return self._access(value("operand_1"), operands["operand_2"], local)
        if kind == "index_accessor":
            return self._index(value("operand_1"), value("operand_2"))
        if kind == "conditional":
            branch = "true_value" if value("condition") else "false_value"
            return value(branch)
        binary: dict[str, Callable[[Any, Any], Any]] = {
            "equals": lambda a, b: a == b,
            "not_equals": lambda a, b: a != b,
            "greater_than": lambda a, b: a > b,
            "less_than": lambda a, b: a < b,
            "and": lambda a, b: a and b,
            "or": lambda a, b: a or b,
            "add": lambda a, b: a + b,
            "minus": lambda a, b: a - b,
            "multiply": lambda a, b: a * b,
            "divide": lambda a, b: a // b,  # integers, as in ARM
        }
        if kind in binary:
            return binary[kind](value("operand_1"), value("operand_2"))
        if kind == "not":
            return not value("bool_value")
        raise NotImplementedError(f"operator {kind}")

    def _function(self, kind: str, parameters: Mapping[str, Any], local: Mapping[str, Any]) -> Any:
        args = {name: self.eval(node, local) for name, node in parameters.items()}
        positional = [args[name] for name in sorted(args) if name.startswith("arg_")]
        match kind:
            case "split":
                return str(args["input_string"]).split(args["delimiter"])
            case "replace":
                return str(args["original_string"]).replace(args["old_string"], args["new_string"])
            case "to_lower":
                return str(args["string_to_change"]).lower()
            case "to_upper":
                return str(args["string_to_change"]).upper()
            case "join":
                return str(args["delimiter"]).join(args["input_array"])
            case "contains":
                container, item = args["container"], args["item_to_find"]
                if isinstance(container, dict):  # ARM compares an object's keys case-insensitively
                    return str(item).lower() in {str(key).lower() for key in container}
                return item in container
            case "trim":
                return str(args["string_to_trim"]).strip()
            case "length":
                return len(positional[0])
            case "index_of":
                found = args["string_to_search"]
                item = args["string_to_find"]
                if isinstance(found, list):
                    return found.index(item) if item in found else -1
                return str(found).find(str(item))
            case "min":
                return min(positional)
            case "max":
                return max(positional)
            case "string":
                value = args["value_to_convert"]
                if isinstance(value, bool):
                    return "True" if value else "False"  # ARM's string(true)
                return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
            case "items":  # ARM sorts the entries by key
                return [{"key": k, "value": v} for k, v in sorted(positional[0].items())]
            case "filter":
                return [item for item in args["input_array"] if args["expression"](item)]
            case "fail":
                raise DeploymentFailure(str(positional[0]))
            case "empty":
                return not args["item_to_test"]
            case "concat":
                if all(isinstance(a, list) for a in positional):
                    return [item for a in positional for item in a]
                return "".join(_text(a) for a in positional)
            case "flatten":
                return [item for inner in args["array_to_flattern"] for item in inner]
            case "union":
                merged: dict[str, Any] = {}
                for item in positional:
                    merged.update(item)
                return merged
            case "take":
                return args["original_value"][: args["number_to_take"]]
            case "environment":
                return ENVIRONMENT
            case "subscription_resource_id":
                names = [args[k] for k in ("resource_name_1", "resource_name_2") if args.get(k)]
                return "/".join(
                    ["/subscriptions/<subscription>/providers", args["resource_type"], *names]
                )
        return Unknown(f"{kind}({', '.join(_text(v) for v in args.values())})")


# -- helpers the tests share --------------------------------------------------------------------


def module_call(caller: str, symbol: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters infra/<caller> passes to its local module <symbol> for the given
    parameters, checked against the module's @allowed, @minValue and @maxValue as Azure Resource
    Manager checks a nested deployment's: a value outside them raises DeploymentFailure."""
    module = template(caller)["modules"][symbol]
    target = ((INFRA / caller).parent / module["detail"]["path"]).resolve().relative_to(INFRA)
    declared = template(target.as_posix())["parameters"]
    passed = dict(Evaluator(template(caller), params).eval(module["config"]["params"]))
    for name, value in passed.items():
        if isinstance(value, Unknown):
            continue
        rules = {d["type"]: d.get("argument") for d in declared[name]["decorators"]}
        if "allowed" in rules and value not in rules["allowed"]:
            raise DeploymentFailure(
                f"The provided value '{value}' for the template parameter '{name}' is not valid."
            )
        if "min_value" in rules and value < rules["min_value"]:
            raise DeploymentFailure(f"{name}: {value} is below {rules['min_value']}")
        if "max_value" in rules and value > rules["max_value"]:
            raise DeploymentFailure(f"{name}: {value} is above {rules['max_value']}")
    return passed


def resources_of_type(tree: Mapping[str, Any], resource_type: str) -> dict[str, Any]:
    return {
        symbol: declaration
        for symbol, declaration in tree.get("resources", {}).items()
        if declaration["type"].lower() == resource_type.lower()
    }


def body(declaration: Mapping[str, Any]) -> Mapping[str, Any]:
    """The object of a resource declaration, unwrapped from its loop or condition."""
    config = declaration["config"]
    while "config" in config and ("loop_type" in config or "condition" in config):
        config = config["config"]
    return config


GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# -- sample deployments -------------------------------------------------------------------------

MAIN_PARAMS: Mapping[str, Any] = {
    "environmentName": "contoso",
    "location": "westeurope",
    "alertEmail": "ops@example.com",
    "dataverseUrl": "https://contoso.crm.dynamics.com",
    "bigcommerceStores": "abc123",
}

FUNCTION_APP_PARAMS: Mapping[str, Any] = {
    "name": "func-token",
    "location": "westeurope",
    "planId": "/plan",
    "identityId": "/identities/id-token",
    "identityClientId": "00000000-0000-0000-0000-00000000c11e",
    "storageAccountName": "sttoken",
    "deploymentContainerName": "app-package-token",
    "appInsightsConnectionString": "InstrumentationKey=00000000-0000-0000-0000-000000000000",
    "serviceBusNamespace": "sb-token.servicebus.windows.net",
    "keyVaultName": "kv-token",
    "dataverseUrl": "https://contoso.crm.dynamics.com",
    "bigcommerceStores": "abc123,def456",
    "environmentName": "contoso",
    "maximumInstanceCount": 4,
}
