"""The ports the lifecycle steps use. Adapters: `shared.dataverse.order_store` (Dataverse Web
API) and `shared.bigcommerce.client.BigCommerceClient` (which satisfies `Storefront` as is); the
unit tests use in-memory fakes.

Dataverse writes go through a unit of work: a step stages its writes and the runner commits them
as ONE change set (one `$batch` request, all or nothing). A step never leaves half its rows.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal, Protocol

from shared.bigcommerce.client import OrderBundle
from shared.bigcommerce.models import Order, Refund, Shipment
from shared.bigcommerce.requests import ShipmentCreate
from shared.mapping.order import OrderIntake
from shared.orchestration.records import Lifecycle, SalesOrderRecord


class Storefront(Protocol):
    """One store's BigCommerce API, as far as the lifecycle needs it."""

    async def get_order_bundle(self, order_id: int) -> OrderBundle: ...
    async def update_order_status(self, order_id: int, status_id: int) -> Order: ...
    async def list_shipments(self, order_id: int) -> list[Shipment]: ...
    async def create_shipment(self, order_id: int, shipment: ShipmentCreate) -> Shipment: ...
    async def delete_shipment(self, order_id: int, shipment_id: int) -> None: ...
    async def list_order_refunds(self, order_id: int) -> list[Refund]: ...


class Storefronts(Protocol):
    def get(self, store_hash: str) -> Storefront: ...


@dataclass(frozen=True, slots=True)
class PlannedLine:
    order_product_id: int
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class PlannedFulfillment:
    """One fulfillment order to create: `key` is `<order id>-<n>`, stable for the order."""

    key: str
    source: str
    lines: tuple[PlannedLine, ...]


def journal_entry_id(message_id: str, *parts: object) -> str:
    """A journal key: the message and what happened, in characters Dataverse can address by key
    (no `/ < > * % & : \\ ? +` and no spaces), at most 128 characters."""
    words = [message_id[:64], *(str(p) for p in parts)]
    text = ".".join("-".join(re.findall(r"[A-Za-z0-9_]+", w)) for w in words)
    return text[:128]


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One line of the order's timeline (bciom_orderjournal), keyed by `entry_id`."""

    entry_id: str  # unique per message and step: a redelivery rewrites the same entry
    store_hash: str
    order_id: int
    kind: Literal["event", "step", "write", "park", "retry"]
    name: str
    outcome: str
    occurred_on: datetime
    step: str | None = None
    duration_ms: int | None = None
    correlation_id: str | None = None
    details: str | None = None


class OrderWrites(Protocol):
    """Staged Dataverse writes for one order; `commit` sends them as one change set."""

    def intake(self, intake: OrderIntake) -> None:
        """Customer, salesorder and lines (upserts by alternate key, lookups bound)."""

    def update_order(
        self,
        store_hash: str,
        order_id: int,
        *,
        lifecycle: Lifecycle | None = None,
        hold_reason: str | None = None,
        clear_hold: bool = False,
        bc_status_id: int | None = None,
        bc_date_modified: datetime | None = None,
    ) -> None:
        """Patches the salesorder's connector columns; only the arguments given are written
        (`clear_hold` empties bciom_holdreason)."""

    def update_line(
        self,
        store_hash: str,
        order_product_id: int,
        *,
        quantity_shipped: Decimal | None = None,
        quantity_cancelled: Decimal | None = None,
    ) -> None: ...

    def create_fulfillments(
        self, store_hash: str, order_id: int, plans: Sequence[PlannedFulfillment]
    ) -> None:
        """Fulfillment orders and their lines (upserts by key), bound to the salesorder."""

    def update_fulfillment(
        self,
        store_hash: str,
        key: str,
        *,
        bc_shipment_id: int | None = None,
        cancelled: bool | None = None,
    ) -> None: ...

    def record_refund(self, store_hash: str, order_id: int, refund: Refund) -> None:
        """The refund and its items against the order and its lines (upserts by refund id)."""

    def close_order(
        self, store_hash: str, order_id: int, how: Literal["fulfilled", "cancelled"]
    ) -> None:
        """Sets the salesorder's standard state (FulfillSalesOrder / CancelSalesOrder)."""

    def journal(self, entry: JournalEntry) -> None: ...

    def guard(self, store_hash: str, order_id: int, etag: str | None) -> None:
        """Commits of anything but journal entries go through only while the order's open
        salesorder is still at version `etag` (as this run read it, or last wrote it): if
        another run of the same order, or a user, changed it meanwhile, `commit` raises
        `ConcurrencyError` and writes nothing. `etag` None (no salesorder yet): unguarded until
        a commit writes one. A closed salesorder is read-only and cannot guard: `unguard`."""

    def unguard(self) -> None:
        """Commits go through unguarded (the salesorder is closed, or its version unknown)."""

    @property
    def version(self) -> str | None:
        """The guarded salesorder's version after the last commit (what `guard` was given,
        until then); None when it is not known."""
        ...

    @property
    def pending(self) -> int:
        """Staged operations not committed yet (journal entries included)."""
        ...

    async def commit(self) -> None:
        """Sends the staged writes as one change set; raises the Dataverse error if it failed
        (nothing of it was written). Nothing staged: no request."""


class OrderStore(Protocol):
    async def load(self, store_hash: str, order_id: int) -> SalesOrderRecord | None:
        """The salesorder with its lines, fulfillment orders and refunds; None if absent."""
        ...

    async def existing_products(self, product_numbers: Collection[str]) -> set[str]:
        """Which of these product numbers Dataverse has a product for."""
        ...

    async def inventory(self, skus: Collection[str]) -> Mapping[tuple[str, str], Decimal]:
        """Available quantity by (source, sku), for the skus asked; absent means unknown."""
        ...

    def writes(self) -> OrderWrites: ...
