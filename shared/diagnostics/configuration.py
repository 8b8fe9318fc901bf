"""The settings check: do the settings load and validate, as they must for the app to start."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from shared.config import ConfigurationError, Settings
from shared.diagnostics.result import CheckResult

NAME: Final = "settings"
HINT: Final = (
    "fix the setting named above (README, Configuration); in Azure it is an app setting the "
    "Bicep sets from the azd environment"
)


def describe(settings: Settings) -> str:
    stores = ", ".join(s.store_hash for s in settings.stores)
    if settings.servicebus_transport == "local":
        bus = "local broker"
    else:
        bus = settings.servicebus_namespace or "connection string"
    if settings.state_transport == "local":
        state = "local file"
    else:
        state = settings.state_table_endpoint or "connection string"
    return (
        f"{len(settings.stores)} store(s) ({stores}); Dataverse {settings.dataverse_url}; "
        f"Service Bus {bus}; state {state}"
    )


def check_settings(load: Callable[[], Settings]) -> tuple[CheckResult, Settings | None]:
    """The result, and the settings when they are valid (every other check needs them)."""
    try:
        settings = load()
    except ConfigurationError as exc:
        return CheckResult.failed(NAME, str(exc), HINT), None
    return CheckResult.passed(NAME, describe(settings)), settings
