"""The templates parse, hang together, and meet the deployment contract (azd, parameters,
outputs)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.bicep import (
    FUNCTION_APP_PARAMS,
    INFRA,
    MAIN_PARAMS,
    REPO,
    DeploymentFailure,
    Evaluator,
    Unknown,
    bicep_files,
    module_call,
    template,
)

MAIN = "main.bicep"


def _relative(path: Path) -> str:
    return path.relative_to(INFRA).as_posix()


def test_there_are_templates() -> None:
    names = {_relative(p) for p in bicep_files()}
    assert {MAIN, "modules/function-app.bicep", "modules/servicebus.bicep"} <= names


@pytest.mark.parametrize("path", bicep_files(), ids=_relative)
def test_every_template_parses(path: Path) -> None:
    tree = template(_relative(path))
    assert tree["resources"] or tree["modules"]


def test_main_creates_the_resource_group_at_subscription_scope() -> None:
    tree = template(MAIN)
    assert tree["globals"]["scope"]["value"] == "subscription"
    groups = [
        r for r in tree["resources"].values() if r["type"] == "Microsoft.Resources/resourceGroups"
    ]
    assert len(groups) == 1
    assert all(m["config"]["scope"] == "rg" for m in tree["modules"].values())


def _local_modules() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path in bicep_files():
        for symbol, module in template(_relative(path)).get("modules", {}).items():
            if module["type"] == "local":
                target = (path.parent / module["detail"]["path"]).resolve()
                found.append((f"{_relative(path)}:{symbol}", _relative(target), module))
    return found


@pytest.mark.parametrize(
    ("caller", "target", "module"), _local_modules(), ids=lambda v: str(v)[:40]
)
def test_local_module_calls_pass_every_required_parameter_and_no_unknown_one(
    caller: str, target: str, module: dict[str, Any]
) -> None:
    declared = template(target)["parameters"]
    given = set(module["config"]["params"])
    required = {name for name, p in declared.items() if p["default"] is None}
    assert given - set(declared) == set(), f"{caller} passes parameters {target} does not declare"
    assert required - given == set(), f"{caller} leaves required parameters of {target} unset"


def test_registry_modules_are_pinned_azure_verified_modules() -> None:
    for path in bicep_files():
        for symbol, module in template(_relative(path)).get("modules", {}).items():
            if module["type"] == "local":
                continue
            detail = module["detail"]
            assert detail["public"], symbol
            assert detail["path"].startswith("avm/res/"), symbol
            assert re.fullmatch(r"\d+\.\d+\.\d+", detail["tag"]), f"{symbol} is not pinned"


def test_azure_yaml_deploys_this_directory_as_one_python_function_app() -> None:
    document = yaml.safe_load((REPO / "azure.yaml").read_text())
    assert document["services"] == {
        "api": {"project": ".", "language": "python", "host": "function"}
    }
    assert document["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}


CONTRACT_PARAMETERS = {
    "environmentName": "AZURE_ENV_NAME",
    "location": "AZURE_LOCATION",
    "alertEmail": "ALERT_EMAIL",
    "dataverseUrl": "DATAVERSE_URL",
    "bigcommerceStores": "BIGCOMMERCE_STORES",
    "webhookChecks": "BIGCOMMERCE_WEBHOOK_CHECKS",
    "deployerPrincipalId": "AZURE_PRINCIPAL_ID",
    # Settings that `azd provision` would otherwise remove if set by hand (infra/README.md).
    "maximumInstanceCount": "CONNECTOR_MAXIMUM_INSTANCE_COUNT",
    "bigcommerceGoLive": "BIGCOMMERCE_GO_LIVE",
    "extraAppSettings": "CONNECTOR_EXTRA_APP_SETTINGS",
}


def test_parameters_file_maps_the_contract_variables() -> None:
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = template(MAIN)["parameters"]
    mapped = {}
    for name, entry in values.items():
        assert name in declared, f"main.parameters.json sets {name}, which main.bicep lacks"
        match = re.fullmatch(r"\$\{([A-Z_]+)(?:=([^}]*))?\}", entry["value"])
        assert match, f"{name} is not an azd ${{VAR}} substitution"
        mapped[name] = match.group(1)
    for name, variable in CONTRACT_PARAMETERS.items():
        assert mapped.get(name) == variable
    required = {name for name, p in declared.items() if p["default"] is None}
    assert required <= set(values), "a required parameter has no value in main.parameters.json"
    assert values["webhookChecks"]["value"] == "${BIGCOMMERCE_WEBHOOK_CHECKS=header}"


def test_environment_type_switches_dev_and_prod() -> None:
    declared = template(MAIN)["parameters"]["environmentType"]
    allowed = next(d for d in declared["decorators"] if d["type"] == "allowed")["argument"]
    assert set(allowed) == {"dev", "prod"}
    assert declared["default"] == "dev"
    params = MAIN_PARAMS
    calls = template(MAIN)["modules"]
    dev = Evaluator(template(MAIN), params)
    prod = Evaluator(template(MAIN), {**params, "environmentType": "prod"})

    def app(evaluator: Evaluator) -> Any:
        return evaluator.eval(calls["functionApp"]["config"]["params"])

    assert app(dev)["alwaysReadyHttpInstances"] == 0
    assert app(prod)["alwaysReadyHttpInstances"] == 1
    assert app(dev)["maximumInstanceCount"] == 4
    assert app(prod)["maximumInstanceCount"] == 10
    chosen = Evaluator(
        template(MAIN), {**params, "environmentType": "prod", "maximumInstanceCount": 3}
    )
    assert app(chosen)["maximumInstanceCount"] == 3
    vault = calls["keyVault"]["config"]["params"]
    assert dev.eval(vault)["enablePurgeProtection"] is False
    assert prod.eval(vault)["enablePurgeProtection"] is True


def test_main_passes_the_operator_settings_to_the_function_app() -> None:
    params = {
        **MAIN_PARAMS,
        "bigcommerceGoLive": "abc123=2026-11-01T06:00:00Z",
        "extraAppSettings": {"LOG_LEVEL": "DEBUG"},
    }
    call = template(MAIN)["modules"]["functionApp"]["config"]["params"]
    passed = Evaluator(template(MAIN), params).eval(call)
    assert passed["goLive"] == [{"store": "abc123", "instant": "2026-11-01T06:00:00Z"}]
    assert passed["goLiveProblems"] == ""
    assert passed["extraAppSettings"] == params["extraAppSettings"]
    defaults = Evaluator(template(MAIN), MAIN_PARAMS).eval(call)
    assert defaults["goLive"] == []
    assert defaults["goLiveProblems"] == ""
    assert defaults["extraAppSettings"] == {}


@pytest.mark.parametrize("environment_type", ["dev", "prod"])
def test_main_passes_values_every_module_accepts(environment_type: str) -> None:
    params = {**MAIN_PARAMS, "environmentType": environment_type}
    for symbol, module in template(MAIN)["modules"].items():
        if module["type"] == "local":
            module_call(MAIN, symbol, params)  # raises on a value outside @allowed/@min/@max


def test_an_instance_cap_above_the_modules_bound_would_be_refused() -> None:
    with pytest.raises(DeploymentFailure, match="maximumInstanceCount"):
        module_call(MAIN, "functionApp", {**MAIN_PARAMS, "maximumInstanceCount": 51})


CONTRACT_OUTPUTS = {
    "AZURE_RESOURCE_GROUP",
    "AZURE_FUNCTION_APP_NAME",
    "FUNCTION_URL",
    "SERVICEBUS_NAMESPACE",
    "KEY_VAULT_NAME",
    "AZURE_CLIENT_ID",
    "MANAGED_IDENTITY_PRINCIPAL_ID",
    "STATE_TABLE_ENDPOINT",
    "APPLICATIONINSIGHTS_NAME",
}


def _webhook_route() -> str:
    tree = ast.parse((REPO / "functions" / "webhooks.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "route":
            assert isinstance(node.value, ast.Constant)
            return str(node.value.value)
    raise AssertionError("functions/webhooks.py declares no route")


def test_outputs_cover_the_contract_and_the_function_url_is_the_webhook_route() -> None:
    outputs = template(MAIN)["outputs"]
    assert set(outputs) >= CONTRACT_OUTPUTS
    prefix = json.loads((REPO / "host.json").read_text())["extensions"]["http"]["routePrefix"]
    app = Evaluator(template("modules/function-app.bicep"), FUNCTION_APP_PARAMS)
    url = app.eval(template("modules/function-app.bicep")["outputs"]["webhookUrl"]["value"])
    assert url.endswith(f"/{prefix}/{_webhook_route()}")
    assert url.startswith("https://")
    main = Evaluator(template(MAIN), MAIN_PARAMS)
    assert main.eval(outputs["FUNCTION_URL"]["value"]) == Unknown("functionApp.outputs.webhookUrl")


def test_resource_names_are_an_abbreviation_and_the_resource_token() -> None:
    main = Evaluator(template(MAIN), MAIN_PARAMS)
    token = main.variable("resourceToken")
    calls = template(MAIN)["modules"]
    names = {
        symbol: main.eval(call["config"]["params"]["name"])
        for symbol, call in calls.items()
        if "name" in call["config"]["params"]
    }
    names["functionApp"] = main.variable("functionAppName")
    for symbol, name in names.items():
        abbreviation = name[: -len(token)]
        assert name.endswith(token), (symbol, name)
        assert 1 <= len(abbreviation) <= 5, (symbol, name)
