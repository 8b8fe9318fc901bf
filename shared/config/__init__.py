"""Typed configuration, read once at start-up."""

from shared.config.errors import ConfigurationError
from shared.config.settings import Settings, StoreSettings, WebhookCheck, load_settings

__all__ = ["ConfigurationError", "Settings", "StoreSettings", "WebhookCheck", "load_settings"]
