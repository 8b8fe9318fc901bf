"""The composition root: reads the settings once and wires adapters to the ports.

Trigger adapters in functions/ ask `container()` for what a handler needs. The local host and
tests install other adapters with `override()` before the first invocation, which is how the
one-machine stack swaps Service Bus for the local broker without the core knowing the stack
exists. Clients are created lazily, once per process, inside the event loop that uses them.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.bigcommerce.rate_budget import BudgetPolicy
from shared.bigcommerce.registry import BigCommerceClients
from shared.bigcommerce.session import ClientOptions
from shared.config import ConfigurationError, Settings, load_settings
from shared.dataverse.auth import TokenProvider, azure_token_provider
from shared.dataverse.client import ClientOptions as DataverseOptions
from shared.dataverse.client import DataverseClient
from shared.dataverse.gate import GatePolicy
from shared.handlers.webhook_ingress import WebhookIngress
from shared.mapping import MappingConfig, load_mapping
from shared.messaging.ports import MessageSender
from shared.observability.json_logging import configure_logging


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Container:
    settings: Settings
    mapping: MappingConfig
    clock: Callable[[], datetime] = utc_now
    new_id: Callable[[], str] = new_id
    sender: MessageSender | None = None
    bigcommerce: BigCommerceClients | None = None
    dataverse: DataverseClient | None = None
    dataverse_tokens: TokenProvider | None = None  # default: the Azure identity
    _ingress: WebhookIngress | None = field(default=None, repr=False)

    def bigcommerce_clients(self) -> BigCommerceClients:
        """One API client per store for the whole process, sharing each store's rate budget."""
        if self.bigcommerce is None:
            options = ClientOptions(
                budget=BudgetPolicy(share=self.settings.bigcommerce_quota_share)
            )
            self.bigcommerce = BigCommerceClients.from_settings(self.settings, options=options)
        return self.bigcommerce

    def message_sender(self) -> MessageSender:
        if self.sender is None:
            if self.settings.servicebus_transport == "local":
                raise ConfigurationError(
                    "invalid configuration: SERVICEBUS_TRANSPORT is 'local', which only the "
                    "local host (make start) provides"
                )
            from shared.messaging.azure_servicebus import AzureServiceBusSender

            self.sender = AzureServiceBusSender.from_settings(self.settings)
        return self.sender

    def dataverse_client(self) -> DataverseClient:
        """One Web API client per process; its throttle gate is shared per environment."""
        if self.dataverse is None:
            settings = self.settings
            gate = GatePolicy(
                max_concurrency=settings.dataverse_max_concurrency,
                instances=settings.dataverse_instances,
            )
            tokens = self.dataverse_tokens or azure_token_provider(
                settings.dataverse_url,
                managed_identity_client_id=settings.managed_identity_client_id,
            )
            self.dataverse = DataverseClient.from_settings(
                settings, tokens=tokens, options=DataverseOptions(gate=gate)
            )
        return self.dataverse

    def webhook_ingress(self) -> WebhookIngress:
        if self._ingress is None:
            self._ingress = WebhookIngress(
                self.settings,
                self.message_sender(),
                clock=self.clock,
                new_id=self.new_id,
                send_timeout=self.settings.webhook_enqueue_timeout_seconds,
            )
        return self._ingress


_lock = threading.Lock()
_container: Container | None = None


def startup() -> Container:
    """Validates the configuration and sets up logging; raises ConfigurationError on bad input."""
    global _container
    with _lock:
        if _container is None:
            settings = load_settings()
            mapping = load_mapping(settings.mapping_file)
            configure_logging(settings.log_level)
            _container = Container(settings=settings, mapping=mapping)
        return _container


def container() -> Container:
    return _container or startup()


def override(**adapters: Any) -> Container:
    """Installs adapters in the running container (the local stack and tests use this)."""
    current = startup()
    with _lock:
        for name, value in adapters.items():
            if not hasattr(current, name):
                raise AttributeError(f"the container has no {name!r}")
            setattr(current, name, value)
        current._ingress = None
        return current


def reset() -> None:
    global _container
    with _lock:
        _container = None
