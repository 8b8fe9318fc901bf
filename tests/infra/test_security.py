"""No keys anywhere, TLS 1.2 and HTTPS only, one user-assigned identity, least-privilege roles."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.infra.bicep import (
    FUNCTION_APP_PARAMS,
    GUID,
    INFRA,
    MAIN_PARAMS,
    Evaluator,
    bicep_files,
    resources_of_type,
    template,
)

MAIN = "main.bicep"
FUNCTION_APP = "modules/function-app.bicep"

# Words that only appear where a key, a SAS or a connection string is handled.
FORBIDDEN = re.compile(
    r"listKeys|listAccountSas|listServiceSas|AccountKey|SharedAccessKey|SharedAccessSignature"
    r"|authorizationRules|DefaultEndpointsProtocol|primaryKey|secondaryKey|connectionStrings",
    re.IGNORECASE,
)
# The Application Insights connection string names an ingestion endpoint, not a credential
# (local auth is disabled, ingestion is Entra ID): the only "connection string" allowed.
CONNECTION_STRING = re.compile(r"connection_?string", re.IGNORECASE)
ALLOWED_CONNECTION_STRINGS = (
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "appInsightsConnectionString",
)


def _infra_files() -> list[Path]:
    return [*bicep_files(), INFRA / "main.parameters.json"]


@pytest.mark.parametrize("path", _infra_files(), ids=lambda p: p.name)
def test_no_keys_sas_or_connection_strings(path: Path) -> None:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        assert not FORBIDDEN.search(line), f"{path.name}:{number}: {line.strip()}"
        for match in CONNECTION_STRING.finditer(line):
            allowed = any(word in line for word in ALLOWED_CONNECTION_STRINGS)
            outputs = "outputs.connectionString" in line
            assert allowed or outputs, f"{path.name}:{number}: {match.group(0)}"


def test_the_checks_would_catch_a_storage_key_in_a_setting() -> None:
    line = "value: 'DefaultEndpointsProtocol=https;AccountName=x;AccountKey=${storage.listKeys()}'"
    assert FORBIDDEN.search(line)


def _site() -> Any:
    tree = template(FUNCTION_APP)
    return Evaluator(tree, FUNCTION_APP_PARAMS).resource("site")


def test_function_app_is_https_only_with_tls_1_2_and_no_basic_publishing() -> None:
    site = _site()
    assert site["kind"] == "functionapp,linux"
    assert site["properties"]["httpsOnly"] is True
    config = site["properties"]["siteConfig"]
    assert config["minTlsVersion"] == "1.2"
    assert config["scmMinTlsVersion"] == "1.2"
    assert config["ftpsState"] == "Disabled"
    tree = template(FUNCTION_APP)
    evaluator = Evaluator(tree, FUNCTION_APP_PARAMS)
    policies = resources_of_type(tree, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {evaluator.resource(s)["name"] for s in policies} == {"ftp", "scm"}
    assert all(evaluator.resource(s)["properties"]["allow"] is False for s in policies)


def test_function_app_runs_python_3_11_on_flex_consumption() -> None:
    app = _site()["properties"]["functionAppConfig"]
    assert app["runtime"] == {"name": "python", "version": "3.11"}
    plan = template(MAIN)["modules"]["plan"]["config"]["params"]
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["reserved"] is True


def test_one_user_assigned_identity_for_everything() -> None:
    identities = [
        symbol
        for symbol, module in template(MAIN)["modules"].items()
        if module["type"] != "local"
        and module["detail"]["path"] == "avm/res/managed-identity/user-assigned-identity"
    ]
    assert identities == ["identity"]
    for path in bicep_files():
        tree = template(path.relative_to(INFRA).as_posix())
        assert not resources_of_type(tree, "Microsoft.ManagedIdentity/userAssignedIdentities")
    identity_id = FUNCTION_APP_PARAMS["identityId"]
    site = _site()
    assert site["identity"] == {
        "type": "UserAssigned",
        "userAssignedIdentities": {identity_id: {}},
    }
    assert site["properties"]["keyVaultReferenceIdentity"] == identity_id
    storage = site["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert storage["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": identity_id,
    }
    assert storage["value"].startswith("https://")
    calls = template(MAIN)["modules"]
    main = Evaluator(template(MAIN), MAIN_PARAMS)
    app = main.eval(calls["functionApp"]["config"]["params"])
    assert app["identityId"] == "identity.outputs.resourceId"
    assert app["identityClientId"] == "identity.outputs.clientId"
    for symbol in ("serviceBus", "roles"):
        params = main.eval(calls[symbol]["config"]["params"])
        assert params["appPrincipalId"] == "identity.outputs.principalId"


def test_storage_has_shared_keys_off_https_only_and_tls_1_2() -> None:
    params = template(MAIN)["modules"]["storage"]["config"]["params"]
    assert params["allowSharedKeyAccess"] is False
    assert params["supportsHttpsTrafficOnly"] is True
    assert params["minimumTlsVersion"] == "TLS1_2"
    assert params["allowBlobPublicAccess"] is False
    assert params["tableServices"]["tables"] == [{"name": "stateTableName"}]
    main = Evaluator(template(MAIN), MAIN_PARAMS)
    assert main.variable("stateTableName") == "connectorstate"


def test_monitoring_and_key_vault_use_entra_id_only() -> None:
    calls = template(MAIN)["modules"]
    assert calls["appInsights"]["config"]["params"]["disableLocalAuth"] is True
    vault = calls["keyVault"]["config"]["params"]
    assert vault["enableRbacAuthorization"] is True
    assert vault["enableSoftDelete"] is True


# -- role assignments -----------------------------------------------------------------------------

ROLES = {
    "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39": "Azure Service Bus Data Sender",
    "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0": "Azure Service Bus Data Receiver",
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}

SAMPLE_PARAMS = {
    "modules/servicebus.bicep": {"name": "sb", "location": "l", "appPrincipalId": "app"},
    "modules/roles.bicep": {
        "storageAccountName": "st",
        "keyVaultName": "kv",
        "appInsightsName": "appi",
        "appPrincipalId": "app",
        "deployerPrincipalId": "deployer",
    },
}


def role_assignments() -> list[tuple[str, dict[str, Any]]]:
    """Every role assignment any template declares, evaluated for a sample deployment."""
    found = []
    for path in bicep_files():
        relative = path.relative_to(INFRA).as_posix()
        tree = template(relative)
        symbols = resources_of_type(tree, "Microsoft.Authorization/roleAssignments")
        if not symbols:
            continue
        assert relative in SAMPLE_PARAMS, f"{relative} assigns roles: add sample parameters"
        evaluator = Evaluator(tree, SAMPLE_PARAMS[relative])
        for symbol in symbols:
            instances = evaluator.resource(symbol)
            for instance in instances if isinstance(instances, list) else [instances]:
                if instance is not None:
                    found.append((f"{relative}:{symbol}", instance))
    return found


def test_every_role_assignment_has_a_principal_a_scope_and_an_expected_role() -> None:
    assignments = role_assignments()
    assert len(assignments) >= 8
    for where, assignment in assignments:
        properties = assignment["properties"]
        assert properties.get("principalId"), where
        assert properties.get("principalType"), where
        assert isinstance(assignment.get("scope"), dict), f"{where}: no resource scope"
        role = str(properties["roleDefinitionId"]).rsplit("/", 1)[-1]
        assert GUID.match(role), f"{where}: {properties['roleDefinitionId']}"
        assert role in ROLES, f"{where}: unexpected role {role}"


def test_the_app_identity_gets_exactly_these_roles_outside_service_bus() -> None:
    granted = {
        (ROLES[str(a["properties"]["roleDefinitionId"]).rsplit("/", 1)[-1]], a["scope"]["name"])
        for where, a in role_assignments()
        if where.startswith("modules/roles.bicep") and a["properties"]["principalId"] == "app"
    }
    assert granted == {
        ("Storage Blob Data Owner", "st"),
        ("Storage Table Data Contributor", "st"),
        ("Key Vault Secrets User", "kv"),
        ("Monitoring Metrics Publisher", "appi"),
    }
    deployer = [a for _, a in role_assignments() if a["properties"]["principalId"] == "deployer"]
    assert [ROLES[a["properties"]["roleDefinitionId"].rsplit("/", 1)[-1]] for a in deployer] == [
        "Key Vault Secrets Officer"
    ]


def test_no_deployer_assignment_without_a_deployer() -> None:
    params = {**SAMPLE_PARAMS["modules/roles.bicep"], "deployerPrincipalId": ""}
    evaluator = Evaluator(template("modules/roles.bicep"), params)
    assert evaluator.resource("deployerSecretsOfficer") is None
