"""The connector's one typed settings object, read from environment variables.

Azure app settings and the "Values" of local.settings.json both arrive as environment variables,
so that is the only source. Several BigCommerce stores are first-class: `BIGCOMMERCE_STORES` lists
their hashes and each store's own settings are named `BIGCOMMERCE_<HASH>_<NAME>`, one app setting
each, so that every secret can be its own Key Vault reference.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from shared.config.errors import ConfigurationError
from shared.config.keyvault import UNRESOLVED, is_key_vault_reference

STORES_SETTING: Final = "BIGCOMMERCE_STORES"
STORE_HASH_PATTERN: Final = re.compile(r"^[a-z0-9]{1,32}$")
DEFAULT_BIGCOMMERCE_API_URL: Final = "https://api.bigcommerce.com"


class WebhookCheck(StrEnum):
    """A check the webhook ingress makes; which ones are required is per-store configuration."""

    HEADER = "header"
    SIGNATURE = "signature"


def store_setting_name(store_hash: str, field: str) -> str:
    return f"BIGCOMMERCE_{store_hash.upper()}_{field.upper()}"


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_https_unless_loopback(value: str) -> str:
    """Service URLs must be https; plain http is only accepted on this machine's loopback."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an absolute http(s) URL, got {value!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError("must use https (plain http is accepted only for 127.0.0.1/localhost)")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query string or fragment")
    return value.rstrip("/")


def _split_list(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _resolved_secret(value: SecretStr | None) -> SecretStr | None:
    if value is not None and is_key_vault_reference(value.get_secret_value()):
        raise ValueError(UNRESOLVED)
    return value


def _unset_if_unresolved(value: SecretStr | None) -> SecretStr | None:
    """For optional secrets: an unresolved Key Vault reference reads as not set."""
    if value is not None and is_key_vault_reference(value.get_secret_value()):
        return None
    return value


class StoreSettings(BaseModel):
    """One BigCommerce store served by this deployment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    store_hash: str
    access_token: SecretStr
    webhook_secret: SecretStr | None = None
    client_secret: SecretStr | None = None
    # The secrets being rotated out: accepted as well until every hook sends the new one, so a
    # rotation refuses no delivery. An unresolved reference counts as unset (the end of one).
    webhook_secret_previous: SecretStr | None = None
    client_secret_previous: SecretStr | None = None
    webhook_checks: frozenset[WebhookCheck] = frozenset()
    channel_ids: frozenset[int] = frozenset()
    api_url: str = DEFAULT_BIGCOMMERCE_API_URL
    store_id: str | None = Field(default=None, pattern=r"^\d+$")
    # Orders created before this instant, and not already in Dataverse, belong to whatever
    # served the store before (e.g. IOM's own BigCommerce provider): the connector leaves them.
    go_live: datetime | None = None

    @field_validator(
        "webhook_secret",
        "client_secret",
        "webhook_secret_previous",
        "client_secret_previous",
        "store_id",
        "go_live",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("go_live")
    @classmethod
    def _go_live_utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # a naive instant is read as UTC
        return value

    @field_validator("access_token")
    @classmethod
    def _token_present(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("access_token", "webhook_secret", "client_secret")
    @classmethod
    def _resolved(cls, value: SecretStr | None) -> SecretStr | None:
        return _resolved_secret(value)

    @field_validator("webhook_secret_previous", "client_secret_previous")
    @classmethod
    def _previous(cls, value: SecretStr | None) -> SecretStr | None:
        return _unset_if_unresolved(value)

    @field_validator("webhook_checks", "channel_ids", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return require_https_unless_loopback(value)

    @model_validator(mode="after")
    def _checks_have_secrets(self) -> StoreSettings:
        checks = self.webhook_checks or self.default_checks()
        if not checks:
            raise ValueError(
                "webhook_secret: at least one webhook secret is required "
                "(WEBHOOK_SECRET for the custom header, or CLIENT_SECRET for signatures)"
            )
        if WebhookCheck.HEADER in checks and self.webhook_secret is None:
            raise ValueError("webhook_secret: required because webhook_checks includes 'header'")
        if WebhookCheck.SIGNATURE in checks and self.client_secret is None:
            raise ValueError("client_secret: required because webhook_checks includes 'signature'")
        if self.webhook_secret_previous is not None and self.webhook_secret is None:
            raise ValueError("webhook_secret_previous: set only with webhook_secret (the new one)")
        if self.client_secret_previous is not None and self.client_secret is None:
            raise ValueError("client_secret_previous: set only with client_secret (the new one)")
        object.__setattr__(self, "webhook_checks", frozenset(checks))
        return self

    def webhook_secrets(self) -> tuple[str, ...]:
        """The header values accepted: the current secret, then the one being rotated out."""
        return _values(self.webhook_secret, self.webhook_secret_previous)

    def client_secrets(self) -> tuple[str, ...]:
        """The signing keys accepted: the current client secret, then the previous one."""
        return _values(self.client_secret, self.client_secret_previous)

    def default_checks(self) -> frozenset[WebhookCheck]:
        checks = set()
        if self.webhook_secret is not None:
            checks.add(WebhookCheck.HEADER)
        if self.client_secret is not None:
            checks.add(WebhookCheck.SIGNATURE)
        return frozenset(checks)


def _values(*secrets: SecretStr | None) -> tuple[str, ...]:
    return tuple(s.get_secret_value() for s in secrets if s is not None)


STORE_FIELDS: Final = tuple(name for name in StoreSettings.model_fields if name != "store_hash")


class _StoresSource(PydanticBaseSettingsSource):
    """Builds `stores` from BIGCOMMERCE_STORES and the per-store BIGCOMMERCE_<HASH>_* settings."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        raw = self._environ.get(STORES_SETTING)
        if raw is None:
            return {}
        hashes = _split_list(raw)
        assert isinstance(hashes, list)
        stores: list[dict[str, str]] = []
        for store_hash in hashes:
            store: dict[str, str] = {"store_hash": store_hash}
            for name in STORE_FIELDS:
                value = self._environ.get(store_setting_name(store_hash, name))
                if value:
                    store[name] = value
            stores.append(store)
        return {"stores": stores}


class Settings(BaseSettings):
    """Everything the function app reads from its environment.

    Field aliases are the exact app-setting names; the README's configuration table and
    local.settings.json.example list each of them.
    """

    # An empty app setting counts as unset: Bicep and the portal often leave settings blank.
    model_config = SettingsConfigDict(
        case_sensitive=True,
        extra="ignore",
        frozen=True,
        populate_by_name=False,
        env_ignore_empty=True,
    )

    stores: tuple[StoreSettings, ...] = Field(min_length=1)
    bigcommerce_api_url: str = Field(
        DEFAULT_BIGCOMMERCE_API_URL, validation_alias="BIGCOMMERCE_API_URL"
    )
    dataverse_url: str = Field(validation_alias="DATAVERSE_URL")
    dataverse_max_concurrency: int = Field(
        16, validation_alias="DATAVERSE_MAX_CONCURRENCY", ge=1, le=52
    )
    dataverse_instances: int = Field(1, validation_alias="DATAVERSE_INSTANCES", ge=1, le=100)
    dataverse_timeout_seconds: float = Field(
        60.0, validation_alias="DATAVERSE_TIMEOUT_SECONDS", gt=0, le=600
    )
    managed_identity_client_id: str | None = Field(None, validation_alias="AZURE_CLIENT_ID")
    servicebus_namespace: str | None = Field(
        None, validation_alias="ServiceBusConnection__fullyQualifiedNamespace"
    )
    servicebus_connection_string: SecretStr | None = Field(
        None, validation_alias="ServiceBusConnection"
    )
    servicebus_credential: str | None = Field(
        None, validation_alias="ServiceBusConnection__credential"
    )
    servicebus_client_id: str | None = Field(
        None, validation_alias="ServiceBusConnection__clientId"
    )
    bigcommerce_quota_share: float = Field(
        0.5, validation_alias="BIGCOMMERCE_QUOTA_SHARE", gt=0, le=1
    )
    webhook_secret_header: str = Field(
        "X-Webhook-Secret",
        validation_alias="BIGCOMMERCE_WEBHOOK_SECRET_HEADER",
        pattern=r"^[A-Za-z0-9-]{1,64}$",
    )
    webhook_enqueue_timeout_seconds: float = Field(
        5.0, validation_alias="WEBHOOK_ENQUEUE_TIMEOUT_SECONDS", gt=0, le=30
    )
    servicebus_transport: Literal["azure", "local"] = Field(
        "azure", validation_alias="SERVICEBUS_TRANSPORT"
    )
    mapping_file: str | None = Field(None, validation_alias="CONNECTOR_MAPPING_FILE")
    flow_file: str | None = Field(None, validation_alias="CONNECTOR_FLOW_FILE")
    dataverse_change_source: Literal["poll", "service_endpoint"] = Field(
        "poll", validation_alias="DATAVERSE_CHANGE_SOURCE"
    )
    dataverse_poll_schedule: str = Field(
        "*/30 * * * * *", validation_alias="DATAVERSE_POLL_SCHEDULE", min_length=11
    )
    reconcile_schedule: str = Field(
        "0 */5 * * * *", validation_alias="RECONCILE_SCHEDULE", min_length=11
    )
    reconcile_overlap_seconds: int = Field(
        300, validation_alias="RECONCILE_OVERLAP_SECONDS", ge=0, le=86400
    )
    reconcile_lease_seconds: int = Field(
        600, validation_alias="RECONCILE_LEASE_SECONDS", ge=30, le=3600
    )
    reconcile_first_lookback_hours: int = Field(
        72, validation_alias="RECONCILE_FIRST_LOOKBACK_HOURS", ge=1, le=24 * 90
    )
    state_transport: Literal["azure", "local"] = Field("azure", validation_alias="STATE_TRANSPORT")
    state_table_endpoint: str | None = Field(None, validation_alias="STATE_TABLE_ENDPOINT")
    state_table_name: str = Field(
        "connectorstate",
        validation_alias="STATE_TABLE_NAME",
        pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$",
    )
    state_connection_string: SecretStr | None = Field(
        None, validation_alias="STATE_CONNECTION_STRING"
    )
    webhook_destination_url: str | None = Field(None, validation_alias="WEBHOOK_DESTINATION_URL")
    webhook_function_key: SecretStr | None = Field(None, validation_alias="WEBHOOK_FUNCTION_KEY")
    webhook_scopes: Annotated[tuple[str, ...], NoDecode] = Field(
        ("store/order/*", "store/shipment/*"), validation_alias="BIGCOMMERCE_WEBHOOK_SCOPES"
    )
    connector_batching: Literal["adaptive", "off"] = Field(
        "adaptive", validation_alias="CONNECTOR_BATCHING"
    )
    bigcommerce_batch_max_orders: int = Field(
        250, validation_alias="BIGCOMMERCE_BATCH_MAX_ORDERS", ge=2, le=250
    )
    dataverse_batch_target_seconds: float = Field(
        2.0, validation_alias="DATAVERSE_BATCH_TARGET_SECONDS", gt=0, le=60
    )
    dataverse_batch_max_operations: int = Field(
        1000, validation_alias="DATAVERSE_BATCH_MAX_OPERATIONS", ge=3, le=1000
    )
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    environment_name: str = Field(
        "local", validation_alias=AliasChoices("CONNECTOR_ENVIRONMENT", "AZURE_ENV_NAME")
    )

    @field_validator("bigcommerce_api_url", "dataverse_url")
    @classmethod
    def _urls(cls, value: str) -> str:
        return require_https_unless_loopback(value)

    @field_validator("webhook_scopes", mode="before")
    @classmethod
    def _scopes(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("state_table_endpoint")
    @classmethod
    def _state_endpoint(cls, value: str | None) -> str | None:
        return require_https_unless_loopback(value) if value else None

    @field_validator("webhook_destination_url")
    @classmethod
    def _destination(cls, value: str | None) -> str | None:
        return require_https_unless_loopback(value) if value else None

    @field_validator("servicebus_connection_string", "state_connection_string")
    @classmethod
    def _resolved(cls, value: SecretStr | None) -> SecretStr | None:
        return _resolved_secret(value)

    @field_validator("webhook_function_key")
    @classmethod
    def _function_key(cls, value: SecretStr | None) -> SecretStr | None:
        # Optional, and set only after the first deployment: until its secret exists the health
        # check re-enables hooks but cannot rewrite them, and the doctor names the setting.
        return _unset_if_unresolved(value)

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("servicebus_credential")
    @classmethod
    def _credential(cls, value: str | None) -> str | None:
        if value is not None and value != "managedidentity":
            raise ValueError("must be 'managedidentity' when set")
        return value

    @model_validator(mode="before")
    @classmethod
    def _inherit_api_url(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not data.get("BIGCOMMERCE_API_URL"):
            return data
        try:
            base = require_https_unless_loopback(data["BIGCOMMERCE_API_URL"])
        except ValueError:
            return data  # reported against BIGCOMMERCE_API_URL itself, not against each store
        for store in data.get("stores") or ():
            if isinstance(store, dict):
                store.setdefault("api_url", base)
        return data

    @model_validator(mode="after")
    def _servicebus_configured(self) -> Settings:
        if self.servicebus_transport == "azure" and not self.uses_servicebus_namespace:
            raise ValueError(
                "ServiceBusConnection__fullyQualifiedNamespace: required (or a "
                "ServiceBusConnection connection string) unless SERVICEBUS_TRANSPORT is 'local'"
            )
        return self

    @model_validator(mode="after")
    def _state_configured(self) -> Settings:
        if (
            self.state_transport == "azure"
            and self.state_table_endpoint is None
            and self.state_connection_string is None
        ):
            raise ValueError(
                "STATE_TABLE_ENDPOINT: required (or a STATE_CONNECTION_STRING connection "
                "string) unless STATE_TRANSPORT is 'local'"
            )
        return self

    @model_validator(mode="after")
    def _distinct_stores(self) -> Settings:
        seen: set[str] = set()
        for store in self.stores:
            if store.store_hash in seen:
                raise ValueError(f"{STORES_SETTING}: store {store.store_hash} is listed twice")
            seen.add(store.store_hash)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _StoresSource(settings_cls, os.environ))

    def store(self, store_hash: str) -> StoreSettings | None:
        for store in self.stores:
            if store.store_hash == store_hash:
                return store
        return None

    @property
    def uses_servicebus_namespace(self) -> bool:
        return (
            self.servicebus_namespace is not None or self.servicebus_connection_string is not None
        )

    def redacted(self) -> dict[str, Any]:
        """A dump safe to log or print: every secret is masked."""
        return self.model_dump(mode="json")


def _setting_name(error_loc: tuple[int | str, ...], raw_stores: list[dict[str, str]]) -> str:
    """Maps a pydantic error location back to the app-setting name a person must fix."""
    if not error_loc:
        return "configuration"
    head = error_loc[0]
    if head == "stores":
        if len(error_loc) >= 2 and isinstance(error_loc[1], int):
            index = error_loc[1]
            store_hash = raw_stores[index]["store_hash"] if index < len(raw_stores) else "?"
            if len(error_loc) >= 3 and isinstance(error_loc[2], str):
                return store_setting_name(store_hash, error_loc[2])
            return store_setting_name(store_hash, "*")
        return STORES_SETTING
    alias = (
        Settings.model_fields[str(head)].validation_alias if head in Settings.model_fields else None
    )
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return str(alias or head)


def _one_line(error: Mapping[str, Any], raw_stores: list[dict[str, str]]) -> str:
    loc = tuple(error.get("loc", ()))
    message = str(error.get("msg", "is invalid"))
    message = message.removeprefix("Value error, ")
    field, sep, rest = message.partition(": ")
    if sep and field in STORE_FIELDS and len(loc) >= 2:
        loc = (*loc[:2], field)
        message = rest
    if error.get("type") == "missing":
        message = "required but not set"
        if loc and loc[0] == "stores" and len(loc) < 2:
            message = "required: a comma-separated list of BigCommerce store hashes"
    elif error.get("type") == "too_short" and loc == ("stores",):
        loc, message = ("stores",), "must list at least one BigCommerce store hash"
    name = _setting_name(loc, raw_stores)
    if not loc and sep and " " not in field:
        return f"invalid configuration: {message}"  # a model-level rule that names its setting
    return f"invalid configuration: {name}: {message[:1].lower()}{message[1:]}"


def load_settings() -> Settings:
    """Reads and validates the settings, or raises ConfigurationError with one readable line."""
    raw_stores = _StoresSource(Settings, os.environ)().get("stores", [])
    for store in raw_stores:
        if not STORE_HASH_PATTERN.match(store["store_hash"]):
            raise ConfigurationError(
                f"invalid configuration: {STORES_SETTING} has {store['store_hash']!r}, "
                "which is not a store hash (lowercase letters and digits, as in stores/<hash>)"
            )
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigurationError(_one_line(exc.errors()[0], raw_stores)) from None
