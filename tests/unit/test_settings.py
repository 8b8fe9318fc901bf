"""Configuration: valid multi-store settings load; each bad setting fails with one named line."""

from __future__ import annotations

import logging

import pytest

from shared.config import ConfigurationError, Settings, WebhookCheck, load_settings
from shared.observability.json_logging import JsonFormatter
from tests.support.host_process import run_host_expecting_failure

VALID = {
    "SERVICEBUS_TRANSPORT": "local",
    "STATE_TRANSPORT": "local",
    "BIGCOMMERCE_STORES": "abc123, def456",
    "BIGCOMMERCE_ABC123_ACCESS_TOKEN": "token-abc-s3cr3t",
    "BIGCOMMERCE_ABC123_WEBHOOK_SECRET": "hook-abc-s3cr3t",
    "BIGCOMMERCE_DEF456_ACCESS_TOKEN": "token-def-s3cr3t",
    "BIGCOMMERCE_DEF456_CLIENT_SECRET": "client-def-s3cr3t",
    "BIGCOMMERCE_DEF456_CHANNEL_IDS": "1,7",
    "BIGCOMMERCE_DEF456_API_URL": "https://proxy.example.com",
    "DATAVERSE_URL": "https://contoso.crm.dynamics.com/",
}


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for name in list(__import__("os").environ):
        if name.startswith(
            (
                "BIGCOMMERCE_",
                "DATAVERSE_",
                "ServiceBusConnection",
                "LOG_LEVEL",
                "SERVICEBUS_",
                "STATE_",
                "WEBHOOK_",
            )
        ):
            monkeypatch.delenv(name)

    def apply(values: dict[str, str | None]) -> None:
        for name, value in values.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)

    return apply


def test_several_stores_with_their_own_settings(environ) -> None:  # type: ignore[no-untyped-def]
    environ(VALID)
    settings = load_settings()
    abc, def_ = settings.stores
    assert (abc.store_hash, def_.store_hash) == ("abc123", "def456")
    assert abc.webhook_checks == {WebhookCheck.HEADER}
    assert def_.webhook_checks == {WebhookCheck.SIGNATURE}
    assert def_.channel_ids == {1, 7}
    assert abc.api_url == "https://api.bigcommerce.com"
    assert def_.api_url == "https://proxy.example.com"
    assert settings.dataverse_url == "https://contoso.crm.dynamics.com"
    assert settings.store("def456") is def_
    assert settings.store("nope") is None
    assert not settings.uses_servicebus_namespace


def test_secrets_never_appear_in_dumps_reprs_or_logs(environ, caplog) -> None:  # type: ignore[no-untyped-def]
    environ({**VALID, "ServiceBusConnection": "Endpoint=sb://x/;SharedAccessKey=KEY-s3cr3t"})
    settings = load_settings()
    shown = [str(settings.redacted()), repr(settings), str(settings)]
    record = logging.LogRecord("t", logging.INFO, "", 0, "settings %s", (settings,), None)
    shown.append(JsonFormatter().format(record))
    for text in shown:
        assert "s3cr3t" not in text
    assert settings.stores[0].access_token.get_secret_value() == "token-abc-s3cr3t"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"BIGCOMMERCE_STORES": None}, "BIGCOMMERCE_STORES: required"),
        ({"BIGCOMMERCE_STORES": " , "}, "BIGCOMMERCE_STORES: must list at least one"),
        ({"BIGCOMMERCE_STORES": "Abc-1"}, "BIGCOMMERCE_STORES has 'Abc-1'"),
        ({"BIGCOMMERCE_STORES": "abc123,abc123"}, "store abc123 is listed twice"),
        ({"BIGCOMMERCE_ABC123_ACCESS_TOKEN": None}, "BIGCOMMERCE_ABC123_ACCESS_TOKEN: required"),
        ({"BIGCOMMERCE_ABC123_ACCESS_TOKEN": " "}, "BIGCOMMERCE_ABC123_ACCESS_TOKEN: must not"),
        ({"BIGCOMMERCE_ABC123_WEBHOOK_SECRET": ""}, "BIGCOMMERCE_ABC123_WEBHOOK_SECRET: at least"),
        (
            {"BIGCOMMERCE_ABC123_WEBHOOK_CHECKS": "header,signature"},
            "BIGCOMMERCE_ABC123_CLIENT_SECRET: required because",
        ),
        ({"BIGCOMMERCE_ABC123_WEBHOOK_CHECKS": "hmac"}, "BIGCOMMERCE_ABC123_WEBHOOK_CHECKS:"),
        ({"BIGCOMMERCE_DEF456_CHANNEL_IDS": "1,two"}, "BIGCOMMERCE_DEF456_CHANNEL_IDS:"),
        ({"BIGCOMMERCE_DEF456_API_URL": "http://proxy.example.com"}, "_DEF456_API_URL: must use"),
        ({"DATAVERSE_URL": None}, "DATAVERSE_URL: required but not set"),
        ({"DATAVERSE_URL": "contoso"}, "DATAVERSE_URL: must be an absolute"),
        ({"BIGCOMMERCE_API_URL": "ftp://x"}, "BIGCOMMERCE_API_URL: must be an absolute"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL: must be one of"),
        ({"ServiceBusConnection__credential": "key"}, "ServiceBusConnection__credential: must"),
        (
            {"SERVICEBUS_TRANSPORT": None},
            "ServiceBusConnection__fullyQualifiedNamespace: required",
        ),
        ({"SERVICEBUS_TRANSPORT": "amqp"}, "SERVICEBUS_TRANSPORT: input should be"),
        ({"STATE_TRANSPORT": None}, "STATE_TABLE_ENDPOINT: required"),
        (
            {"STATE_TRANSPORT": "azure", "STATE_TABLE_ENDPOINT": "http://acct.example.com"},
            "STATE_TABLE_ENDPOINT: must use https",
        ),
        ({"STATE_TRANSPORT": "tables"}, "STATE_TRANSPORT: input should be"),
        ({"BIGCOMMERCE_ABC123_STORE_ID": "abc"}, "BIGCOMMERCE_ABC123_STORE_ID: string should"),
        ({"BIGCOMMERCE_WEBHOOK_SECRET_HEADER": "X Bad"}, "BIGCOMMERCE_WEBHOOK_SECRET_HEADER:"),
        ({"WEBHOOK_ENQUEUE_TIMEOUT_SECONDS": "0"}, "WEBHOOK_ENQUEUE_TIMEOUT_SECONDS:"),
        ({"BIGCOMMERCE_QUOTA_SHARE": "1.5"}, "BIGCOMMERCE_QUOTA_SHARE: input should be less"),
        (
            {"BIGCOMMERCE_ABC123_CLIENT_SECRET_PREVIOUS": "old"},
            "BIGCOMMERCE_ABC123_CLIENT_SECRET_PREVIOUS: set only with client_secret",
        ),
    ],
)
def test_bad_setting_fails_with_one_line_naming_it(environ, change, expected) -> None:  # type: ignore[no-untyped-def]
    environ({**VALID, **change})
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("invalid configuration: ")
    assert expected in message
    assert "s3cr3t" not in message


def test_state_in_table_storage_by_identity_or_connection_string(environ) -> None:  # type: ignore[no-untyped-def]
    endpoint = "https://acct.table.core.windows.net/"
    environ({**VALID, "STATE_TRANSPORT": None, "STATE_TABLE_ENDPOINT": endpoint})
    settings = load_settings()
    assert settings.state_transport == "azure"
    assert settings.state_table_endpoint == "https://acct.table.core.windows.net"
    environ({"STATE_TABLE_ENDPOINT": None, "STATE_CONNECTION_STRING": "AccountKey=s3cr3t"})
    assert "s3cr3t" not in str(load_settings().redacted())


def test_loopback_http_is_allowed_for_the_local_stack(environ) -> None:  # type: ignore[no-untyped-def]
    environ({**VALID, "BIGCOMMERCE_API_URL": "http://127.0.0.1:7072"})
    settings = load_settings()
    assert settings.stores[0].api_url == "http://127.0.0.1:7072"
    assert settings.stores[1].api_url == "https://proxy.example.com"


def test_settings_are_immutable(environ) -> None:  # type: ignore[no-untyped-def]
    environ(VALID)
    settings: Settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.log_level = "DEBUG"  # type: ignore[misc]


def test_local_host_start_up_prints_one_line_naming_the_bad_setting(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = run_host_expecting_failure(
        tmp_path,
        {
            "BIGCOMMERCE_STORES": "abc123",
            "BIGCOMMERCE_ABC123_ACCESS_TOKEN": "t",
            "BIGCOMMERCE_ABC123_WEBHOOK_SECRET": "s",
            "DATAVERSE_URL": "http://contoso.crm.dynamics.com",
        },
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "invalid configuration: DATAVERSE_URL: must use https "
        "(plain http is accepted only for 127.0.0.1/localhost)"
    ]


def test_a_bad_mapping_file_fails_start_up_with_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "mapping.yaml"
    bad.write_text("version: 1\nstatus_map: {}\n")
    result = run_host_expecting_failure(tmp_path, {"CONNECTOR_MAPPING_FILE": str(bad)})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("invalid mapping: ")


REFERENCE = "@Microsoft.KeyVault(SecretUri=https://kv1.vault.azure.net/secrets/bc-token/)"


@pytest.mark.parametrize(
    "name",
    [
        "BIGCOMMERCE_ABC123_ACCESS_TOKEN",
        "BIGCOMMERCE_ABC123_WEBHOOK_SECRET",
        "BIGCOMMERCE_DEF456_CLIENT_SECRET",
        "STATE_CONNECTION_STRING",
    ],
)
def test_an_unresolved_key_vault_reference_stops_start_up_naming_the_setting(  # type: ignore[no-untyped-def]
    environ, name: str
) -> None:
    environ({**VALID, name: REFERENCE})
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert str(raised.value).startswith(f"invalid configuration: {name}: is a Key Vault reference")


def test_an_unresolved_function_key_counts_as_unset(environ) -> None:  # type: ignore[no-untyped-def]
    environ({**VALID, "WEBHOOK_FUNCTION_KEY": "@Microsoft.KeyVault(VaultName=kv1;SecretName=k)"})
    assert load_settings().webhook_function_key is None
    environ({"WEBHOOK_FUNCTION_KEY": "real-key"})
    key = load_settings().webhook_function_key
    assert key is not None
    assert key.get_secret_value() == "real-key"


def test_an_unresolved_previous_secret_counts_as_unset(environ) -> None:  # type: ignore[no-untyped-def]
    # Deleting the rotated-out secret before its setting must not stop the app.
    environ({**VALID, "BIGCOMMERCE_ABC123_WEBHOOK_SECRET_PREVIOUS": REFERENCE})
    store = load_settings().store("abc123")
    assert store is not None
    assert store.webhook_secret_previous is None
    assert store.webhook_secrets() == ("hook-abc-s3cr3t",)
    environ({"BIGCOMMERCE_ABC123_WEBHOOK_SECRET_PREVIOUS": "old-s3cr3t"})
    store = load_settings().store("abc123")
    assert store is not None
    assert store.webhook_secrets() == ("hook-abc-s3cr3t", "old-s3cr3t")


def test_go_live_is_an_instant_naive_meaning_utc(environ) -> None:  # type: ignore[no-untyped-def]
    environ({**VALID, "BIGCOMMERCE_ABC123_GO_LIVE": "2026-11-01T06:00:00"})
    abc, def_ = load_settings().stores
    assert abc.go_live is not None
    assert abc.go_live.isoformat() == "2026-11-01T06:00:00+00:00"
    assert def_.go_live is None
    environ({"BIGCOMMERCE_ABC123_GO_LIVE": "soon"})
    with pytest.raises(ConfigurationError, match="BIGCOMMERCE_ABC123_GO_LIVE"):
        load_settings()
