"""The app settings the Bicep generates are the ones the code reads: one source of truth.

Every setting the code requires (a Settings field without a default, each store's required
fields, and what the production transports need) is set by infra/modules/function-app.bicep or
is a Key Vault reference to a secret the operator sets; the generated settings, with those
secrets filled in, load through `load_settings()` as a deployed app would.
"""

from __future__ import annotations

import os
import re
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
from tests.infra.bicep import FUNCTION_APP_PARAMS, MAIN_PARAMS, Evaluator, template

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
    unknown = set(generated(webhookChecks="header,signature")) - known
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
