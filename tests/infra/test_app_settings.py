"""The app settings the Bicep generates are the ones the code reads: one source of truth.

Every setting the code requires (a Settings field without a default, each store's required
fields, and what the production transports need) is set by infra/modules/function-app.bicep or
is a Key Vault reference to a secret the operator sets; the generated settings, with those
secrets filled in, load through `load_settings()` as a deployed app would.
"""

from __future__ import annotations

import ast
import os
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import AliasChoices
from pydantic.fields import FieldInfo

from shared.config.settings import (
    STORE_FIELDS,
    STORES_SETTING,
    Settings,
    StoreSettings,
    load_settings,
    store_setting_name,
)
from shared.dataverse.gate import GatePolicy
from tests.infra.bicep import (
    FUNCTION_APP_PARAMS,
    MAIN_PARAMS,
    REPO,
    DeploymentFailure,
    Evaluator,
    Unknown,
    module_call,
    template,
)

MODULE = "modules/function-app.bicep"

# Fields with a default in Settings that a deployment on Azure must still set: the identity-based
# Service Bus and Table Storage connections, the identity, and what webhook repair needs.
PRODUCTION_FIELDS = (
    "servicebus_transport",
    "servicebus_namespace",
    "servicebus_credential",
    "servicebus_client_id",
    "managed_identity_client_id",
    "state_transport",
    "state_table_endpoint",
    "webhook_destination_url",
    "webhook_function_key",
    "environment_name",
)
# Connection strings are for development against emulators only: never deployed.
DEVELOPMENT_ONLY_FIELDS = ("servicebus_connection_string", "state_connection_string")
# Settings the Functions host reads, not our code.
HOST_SETTINGS = {
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}
KEY_VAULT_REFERENCE = re.compile(
    r"@Microsoft\.KeyVault\(VaultName=([^;()]+);SecretName=([a-z0-9-]+)\)"
)


def alias(field: FieldInfo) -> str:
    name = field.validation_alias
    if isinstance(name, AliasChoices):
        return str(name.choices[0])
    assert isinstance(name, str)
    return name


def setting(field_name: str) -> str:
    return STORES_SETTING if field_name == "stores" else alias(Settings.model_fields[field_name])


def is_secret(field: FieldInfo) -> bool:
    return "SecretStr" in str(field.annotation)


def required_settings(stores: list[str], checks: set[str]) -> set[str]:
    names = {setting(n) for n, f in Settings.model_fields.items() if f.is_required()}
    names |= {setting(n) for n in PRODUCTION_FIELDS}
    for store in stores:
        for name, field in StoreSettings.model_fields.items():
            if name != "store_hash" and field.is_required():
                names.add(store_setting_name(store, name))
        if "header" in checks:
            names.add(store_setting_name(store, "webhook_secret"))
        if "signature" in checks:
            names.add(store_setting_name(store, "client_secret"))
    return names


def generated(**params: Any) -> dict[str, str]:
    evaluator = Evaluator(template(MODULE), {**FUNCTION_APP_PARAMS, **params})
    pairs = evaluator.variable("appSettings")
    names = [p["name"] for p in pairs]
    assert len(names) == len(set(names)), "an app setting is set twice"
    return {p["name"]: p["value"] for p in pairs}


def stores() -> list[str]:
    return FUNCTION_APP_PARAMS["bigcommerceStores"].split(",")


def test_the_derived_lists_name_real_fields() -> None:
    for name in (*PRODUCTION_FIELDS, *DEVELOPMENT_ONLY_FIELDS):
        assert name in Settings.model_fields
    assert setting("dataverse_url") == "DATAVERSE_URL"
    assert "access_token" in STORE_FIELDS


@pytest.mark.parametrize("checks", ["header", "signature", "header,signature"])
def test_every_required_setting_is_set_or_a_key_vault_reference(checks: str) -> None:
    settings = generated(webhookChecks=checks)
    missing = required_settings(stores(), set(checks.split(","))) - set(settings)
    assert missing == set()


def test_every_generated_setting_is_one_the_code_or_the_host_reads() -> None:
    known = {setting(n) for n in Settings.model_fields} | HOST_SETTINGS
    known |= {store_setting_name(s, f) for s in stores() for f in STORE_FIELDS}
    settings = generated(
        webhookChecks="header,signature",
        goLive=[{"store": store, "instant": "2026-11-01"} for store in stores()],
    )
    unknown = set(settings) - known
    assert unknown == set()


def test_connection_strings_are_never_deployed() -> None:
    settings = generated()
    for name in DEVELOPMENT_ONLY_FIELDS:
        assert setting(name) not in settings
    assert "AzureWebJobsStorage" not in settings  # the keyed form of the host's storage setting


def test_every_secret_is_a_key_vault_reference_named_as_the_contract_says() -> None:
    settings = generated(webhookChecks="header,signature")
    secret_settings = {setting(n) for n, f in Settings.model_fields.items() if is_secret(f)}
    for store in stores():
        secret_settings |= {
            store_setting_name(store, n)
            for n, f in StoreSettings.model_fields.items()
            if is_secret(f)
        }
    referenced = {}
    for name, value in settings.items():
        match = KEY_VAULT_REFERENCE.fullmatch(value)
        if name in secret_settings:
            assert match, f"{name} is a secret but not a Key Vault reference"
        if match:
            assert match.group(1) == FUNCTION_APP_PARAMS["keyVaultName"]
            referenced[name] = match.group(2)
    assert set(referenced) == secret_settings & set(settings)
    expected = {"WEBHOOK_FUNCTION_KEY": "webhook-function-key"}
    for store in stores():
        expected[store_setting_name(store, "access_token")] = f"bigcommerce-{store}-access-token"
        expected[store_setting_name(store, "webhook_secret")] = (
            f"bigcommerce-{store}-webhook-secret"
        )
        expected[store_setting_name(store, "client_secret")] = f"bigcommerce-{store}-client-secret"
    assert referenced == expected


def test_only_the_secrets_of_the_required_checks_are_referenced() -> None:
    settings = generated(webhookChecks="signature")
    assert store_setting_name("abc123", "client_secret") in settings
    assert store_setting_name("abc123", "webhook_secret") not in settings
    assert settings[store_setting_name("abc123", "webhook_checks")] == "signature"


def test_the_generated_settings_load_as_the_deployed_app_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith("BIGCOMMERCE_") or name in {setting(n) for n in Settings.model_fields}:
            monkeypatch.delenv(name)
    for name, value in generated(bigcommerceStores="ABC123, def456").items():
        reference = KEY_VAULT_REFERENCE.fullmatch(value)
        # What App Service puts in the environment once the reference resolves.
        monkeypatch.setenv(name, f"resolved-{reference.group(2)}" if reference else value)

    settings = load_settings()

    assert [s.store_hash for s in settings.stores] == ["abc123", "def456"]
    assert settings.servicebus_transport == "azure"
    assert settings.servicebus_namespace == FUNCTION_APP_PARAMS["serviceBusNamespace"]
    assert settings.servicebus_credential == "managedidentity"
    assert settings.servicebus_client_id == FUNCTION_APP_PARAMS["identityClientId"]
    assert settings.managed_identity_client_id == FUNCTION_APP_PARAMS["identityClientId"]
    assert settings.servicebus_connection_string is None
    assert settings.state_transport == "azure"
    assert settings.state_table_endpoint == "https://sttoken.table.core.windows.net"
    assert settings.state_connection_string is None
    assert settings.webhook_destination_url == (
        "https://func-token.azurewebsites.net/api/webhooks/bigcommerce"
    )
    assert settings.webhook_function_key is not None
    assert settings.webhook_function_key.get_secret_value() == "resolved-webhook-function-key"
    store = settings.stores[0]
    assert store.access_token.get_secret_value() == "resolved-bigcommerce-abc123-access-token"
    assert {c.value for c in store.webhook_checks} == {"header"}
    assert settings.environment_name == FUNCTION_APP_PARAMS["environmentName"]
    assert settings.dataverse_change_source == "poll"


@pytest.mark.parametrize("relative", [MODULE, "main.bicep"])
def test_schedule_defaults_are_the_code_defaults(relative: str) -> None:
    tree = template(relative)
    params = FUNCTION_APP_PARAMS if relative == MODULE else MAIN_PARAMS
    evaluator = Evaluator(tree, params)
    for parameter, field in (
        ("dataversePollSchedule", "dataverse_poll_schedule"),
        ("reconcileSchedule", "reconcile_schedule"),
    ):
        assert evaluator.param(parameter) == Settings.model_fields[field].default


def test_state_table_name_is_the_code_default() -> None:
    evaluator = Evaluator(template(MODULE), FUNCTION_APP_PARAMS)
    assert evaluator.param("stateTableName") == Settings.model_fields["state_table_name"].default


# -- settings an operator sets through azd, never by hand -----------------------------------------


def deployed(**params: Any) -> dict[str, str]:
    """The app settings a deployment of main.bicep sets for MAIN_PARAMS updated with `params`
    (main.bicep's parameters, checked as Azure Resource Manager checks the module's)."""
    passed = module_call("main.bicep", "functionApp", {**MAIN_PARAMS, **params})
    return generated(**{k: v for k, v in passed.items() if not isinstance(v, Unknown)})


TWO_STORES = {"bigcommerceStores": "ABC123, def456"}


def test_go_live_is_set_for_each_store_the_parameter_names() -> None:
    settings = deployed(
        **TWO_STORES, bigcommerceGoLive=" ABC123 = 2026-11-01T06:00:00Z,def456=2026-11-08"
    )
    assert settings[store_setting_name("abc123", "go_live")] == "2026-11-01T06:00:00Z"
    assert settings[store_setting_name("def456", "go_live")] == "2026-11-08"
    assert "go_live" in STORE_FIELDS  # the name the code reads


def test_go_live_is_set_only_for_the_stores_named() -> None:
    settings = deployed(**TWO_STORES, bigcommerceGoLive="def456=2026-11-08T06:00:00Z")
    assert store_setting_name("abc123", "go_live") not in settings
    assert store_setting_name("def456", "go_live") in settings
    assert not any(name.endswith("_GO_LIVE") for name in deployed(**TWO_STORES))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc999=2026-11-01T06:00:00Z", '"abc999=2026-11-01T06:00:00Z" names a store that is not'),
        ("abc123=2026-11-01T06:00:00Z,ABC123=2026-11-02", '"ABC123=2026-11-02" names a store a'),
        ("abc123", '"abc123" is not <store hash>=<ISO 8601 instant>'),
        ("abc123=", '"abc123=" has no instant'),
        ("abc123=2026-11-01,", '"" is not <store hash>=<ISO 8601 instant>'),
    ],
)
def test_a_go_live_entry_the_app_could_not_use_fails_the_deployment(
    value: str, message: str
) -> None:
    with pytest.raises(DeploymentFailure, match=re.escape(message)):
        deployed(**TWO_STORES, bigcommerceGoLive=value)


def test_extra_app_settings_are_added_and_override_the_templates() -> None:
    go_live = "abc123=2026-11-01T06:00:00Z"
    settings = deployed(
        extraAppSettings={"LOG_LEVEL": "DEBUG", "DATAVERSE_MAX_CONCURRENCY": "2"},
        bigcommerceGoLive=go_live,
    )
    assert settings["LOG_LEVEL"] == "DEBUG"
    assert settings["DATAVERSE_MAX_CONCURRENCY"] == "2"  # once: generated() checks for twice
    assert settings[store_setting_name("abc123", "go_live")] == "2026-11-01T06:00:00Z"
    without = deployed(bigcommerceGoLive=go_live)
    assert without["DATAVERSE_MAX_CONCURRENCY"] != "2"
    assert set(without) | {"LOG_LEVEL"} == set(settings)


def test_go_live_and_extra_settings_load_as_the_deployed_app_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith("BIGCOMMERCE_") or name in {setting(n) for n in Settings.model_fields}:
            monkeypatch.delenv(name)
    for name, value in deployed(
        **TWO_STORES,
        bigcommerceGoLive="abc123=2026-11-01T06:00:00Z",
        extraAppSettings={"BIGCOMMERCE_QUOTA_SHARE": "0.25"},
    ).items():
        reference = KEY_VAULT_REFERENCE.fullmatch(value)
        monkeypatch.setenv(name, f"resolved-{reference.group(2)}" if reference else value)

    settings = load_settings()

    go_live = {s.store_hash: s.go_live for s in settings.stores}
    assert go_live == {"abc123": datetime(2026, 11, 1, 6, tzinfo=UTC), "def456": None}
    assert settings.bigcommerce_quota_share == 0.25


# -- Dataverse concurrency follows the instance cap ------------------------------------------------

DATAVERSE_LIMIT = 52  # concurrent requests per user per web server (api-limits.md)


def _timer_functions() -> int:
    count = 0
    for path in (REPO / "functions").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "timer_trigger":
                count += 1
    return count


def _instance_bounds() -> range:
    decorators = template(MODULE)["parameters"]["maximumInstanceCount"]["decorators"]
    bound = {d["type"]: d["argument"] for d in decorators}
    return range(bound["min_value"], bound["max_value"] + 1)


SERVICE_ENDPOINT = {"DATAVERSE_CHANGE_SOURCE": "service_endpoint"}


def test_dataverse_instances_count_every_process_that_calls_dataverse() -> None:
    # order_events scales to maximumInstanceCount instances (Flex caps each scale group); each
    # timer runs on one instance of its own; dataverse_events gets messages only from a service
    # endpoint, and then scales out like order_events.
    timers = _timer_functions()
    assert timers == 2  # dataverse_poll, reconcile: a new timer changes the sums below
    for instances in (1, 4, 10, 50):
        settings = generated(maximumInstanceCount=instances)
        assert settings["DATAVERSE_CHANGE_SOURCE"] == "poll"
        assert int(settings["DATAVERSE_INSTANCES"]) == instances + timers
        settings = generated(maximumInstanceCount=instances, extraAppSettings=SERVICE_ENDPOINT)
        assert settings["DATAVERSE_CHANGE_SOURCE"] == "service_endpoint"
        assert int(settings["DATAVERSE_INSTANCES"]) == 2 * instances + timers


def _within_the_limit(settings: dict[str, str]) -> bool:
    processes = int(settings["DATAVERSE_INSTANCES"])
    policy = GatePolicy(
        max_concurrency=int(settings["DATAVERSE_MAX_CONCURRENCY"]), instances=processes
    )
    # Before the first x-ms-dop-hint, and with the hint at the limit.
    return all(
        policy.ceiling(hint) >= 1 and processes * policy.ceiling(hint) <= DATAVERSE_LIMIT
        for hint in (None, DATAVERSE_LIMIT)
    )


def test_every_allowed_instance_cap_keeps_dataverse_within_its_concurrency_limit() -> None:
    for instances in _instance_bounds():
        assert _within_the_limit(generated(maximumInstanceCount=instances)), instances
    # With a service endpoint, up to 25 (docs/deployment.md, step 12).
    for instances in range(1, 26):
        settings = generated(maximumInstanceCount=instances, extraAppSettings=SERVICE_ENDPOINT)
        assert _within_the_limit(settings), instances
    assert not _within_the_limit({"DATAVERSE_INSTANCES": "40", "DATAVERSE_MAX_CONCURRENCY": "16"})


def test_the_instance_cap_reaches_the_function_app() -> None:
    evaluator = Evaluator(template(MODULE), {**FUNCTION_APP_PARAMS, "maximumInstanceCount": 7})
    scale = evaluator.resource("site")["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    assert scale["maximumInstanceCount"] == 7
    assert evaluator.variable("dataverseInstances") == 9
