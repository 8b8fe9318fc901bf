"""The composition root: reads the settings once and wires adapters to the ports.

Trigger adapters in functions/ ask `container()` for what a handler needs. The local host and
tests install other adapters with `override()` before the first invocation, which is how the
one-machine stack swaps Service Bus for the local broker without the core knowing the stack
exists. Clients are created lazily, once per process, inside the event loop that uses them.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.bigcommerce.rate_budget import BudgetPolicy
from shared.bigcommerce.registry import BigCommerceClients
from shared.bigcommerce.session import ClientOptions
from shared.config import ConfigurationError, Settings, load_settings
from shared.dataverse.auth import TokenProvider, azure_token_provider
from shared.dataverse.client import ClientOptions as DataverseOptions
from shared.dataverse.client import DataverseClient
from shared.dataverse.gate import GatePolicy
from shared.handlers.dataverse_changes import DataverseChanges
from shared.handlers.dataverse_poll import DataverseCheckpoints, DataversePoll
from shared.handlers.reconcile import Reconciler
from shared.handlers.webhook_ingress import WebhookIngress
from shared.mapping import MappingConfig, load_mapping
from shared.messaging.ports import MessageSender
from shared.observability.json_logging import configure_logging
from shared.orchestration.flow import FlowConfig, load_flow
from shared.orchestration.go_live import go_live_of
from shared.orchestration.ports import OrderStore, Storefronts
from shared.orchestration.runner import OrderRunner
from shared.reconciliation.webhook_health import WebhookHealth
from shared.state.ports import StateStore


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
    flow: FlowConfig | None = None
    random: Callable[[], float] = random.random
    order_store: OrderStore | None = None
    state: StateStore | None = None
    _ingress: WebhookIngress | None = field(default=None, repr=False)
    _runner: OrderRunner | None = field(default=None, repr=False)

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

    def state_store(self) -> StateStore:
        """Watermarks, sweep results, hook status and leases: one store per process."""
        if self.state is None:
            if self.settings.state_transport == "local":
                raise ConfigurationError(
                    "invalid configuration: STATE_TRANSPORT is 'local', which only the "
                    "local host (make start) provides"
                )
            from shared.state.azure_tables import AzureTableStateStore

            self.state = AzureTableStateStore.from_settings(self.settings)
        return self.state

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
            options = DataverseOptions.from_settings(settings, gate=gate)
            self.dataverse = DataverseClient.from_settings(settings, tokens=tokens, options=options)
        return self.dataverse

    def order_runner(self) -> OrderRunner:
        """The lifecycle runner over this process's clients (one per process). With
        CONNECTOR_BATCHING=adaptive its order reads and Dataverse requests are coalesced across
        the orders in flight (shared/bigcommerce/coalescing.py, shared/dataverse/coalescing.py)."""
        if self._runner is None:
            settings = self.settings
            batching = settings.connector_batching == "adaptive"
            if self.order_store is None:
                from shared.dataverse.coalescing import BatchCoalescer, BatchPolicy
                from shared.dataverse.order_store import DataverseOrderStore

                client = self.dataverse_client()
                policy = BatchPolicy(
                    target_seconds=settings.dataverse_batch_target_seconds,
                    max_operations=settings.dataverse_batch_max_operations,
                )
                self.order_store = DataverseOrderStore(
                    client, coalescer=BatchCoalescer(client, policy) if batching else None
                )
            storefronts: Storefronts = self.bigcommerce_clients()
            if batching:
                from shared.bigcommerce.coalescing import CoalescingStorefronts, ListPolicy

                storefronts = CoalescingStorefronts(
                    self.bigcommerce_clients(),
                    ListPolicy(max_orders=settings.bigcommerce_batch_max_orders),
                )
            self._runner = OrderRunner(
                storefronts=storefronts,
                store=self.order_store,
                flow=self.flow or load_flow(self.settings.flow_file),
                mapping=self.mapping,
                sender=self.message_sender(),
                clock=self.clock,
                random=self.random,
                go_live=go_live_of(self.settings),
            )
        return self._runner

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

    # -- Dataverse change events (dataverse-events queue and the change poll) ------------------
    # Built per call: they only hold the process's clients, so an override() is never stale.

    def dataverse_changes(self) -> DataverseChanges:
        return DataverseChanges(
            self.settings, self.message_sender(), self.dataverse_client(), new_id=self.new_id
        )

    def dataverse_poll(self) -> DataversePoll:
        client = self.dataverse_client()
        return DataversePoll(
            self.settings,
            client,
            self.message_sender(),
            DataverseCheckpoints(client),
            new_id=self.new_id,
        )

    # -- reconciliation (the timer, deliveryException, the CLI) ---------------------------------

    def webhook_health(self) -> WebhookHealth:
        """Each store's hooks checked and repaired; built per call over the process's clients."""
        return WebhookHealth(
            self.settings, self.bigcommerce_clients().get, self.state_store(), clock=self.clock
        )

    def reconciler(self) -> Reconciler:
        """The sweep of every store, each store's webhook health check after its sweep."""
        from shared.dataverse.sync_ledger import DataverseSyncLedger
        from shared.reconciliation.sweep import SweepPolicy

        health = self.webhook_health()

        async def check_hooks(store_hash: str) -> object:
            return await health.check_hooks(store_hash, trigger="reconcile")

        return Reconciler(
            self.bigcommerce_clients(),
            DataverseSyncLedger(self.dataverse_client()),
            self.message_sender(),
            self.state_store(),
            clock=self.clock,
            new_id=self.new_id,
            policy=SweepPolicy.from_settings(self.settings, self.mapping),
            lease_duration=timedelta(seconds=self.settings.reconcile_lease_seconds),
            hooks=check_hooks,
        )


_lock = threading.Lock()
_container: Container | None = None


def startup() -> Container:
    """Validates the configuration and sets up logging; raises ConfigurationError on bad input."""
    global _container
    with _lock:
        if _container is None:
            settings = load_settings()
            mapping = load_mapping(settings.mapping_file)
            flow = load_flow(settings.flow_file)
            configure_logging(settings.log_level)
            _container = Container(settings=settings, mapping=mapping, flow=flow)
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
        current._runner = None
        return current


def reset() -> None:
    global _container
    with _lock:
        _container = None
