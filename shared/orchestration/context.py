"""What one run of the lifecycle knows about one order, shared by its steps.

Both sides are read lazily and at most once per run: the BigCommerce order (with lines and
shipping addresses), its shipments and refunds, and the Dataverse record. A step that writes
BigCommerce goes through `set_status`, which records the status and `date_modified` BigCommerce
answers with in Dataverse, so the webhook our own write causes (the echo) finds nothing new.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from shared.bigcommerce.client import OrderBundle
from shared.bigcommerce.models import Order, Refund, Shipment
from shared.mapping.config import MappingConfig
from shared.orchestration.flow import FlowConfig
from shared.orchestration.messages import OrderMessage
from shared.orchestration.ports import (
    JournalEntry,
    OrderStore,
    OrderWrites,
    Storefront,
    journal_entry_id,
)
from shared.orchestration.records import SalesOrderRecord


@dataclass
class OrderContext:
    message: OrderMessage
    storefront: Storefront
    store: OrderStore
    flow: FlowConfig
    mapping: MappingConfig
    clock: Callable[[], datetime]
    writes: OrderWrites
    record: SalesOrderRecord | None = None
    bigcommerce_writes: list[str] = field(default_factory=list)
    hold_lifted: bool = False  # validation passed this run for an order that was on hold
    _bundle: OrderBundle | None = None
    _shipments: list[Shipment] | None = None
    _refunds: list[Refund] | None = None

    @property
    def store_hash(self) -> str:
        return self.message.store_hash

    @property
    def order_id(self) -> int:
        return self.message.order_id

    async def bundle(self) -> OrderBundle:
        if self._bundle is None:
            self._bundle = await self.storefront.get_order_bundle(self.order_id)
        return self._bundle

    async def order(self) -> Order:
        return (await self.bundle()).order

    async def fresh_order(self) -> Order:
        """Re-reads the order after a write of ours changed it (e.g. a shipment)."""
        self._bundle = await self.storefront.get_order_bundle(self.order_id)
        return self._bundle.order

    async def shipments(self, *, fresh: bool = False) -> list[Shipment]:
        """The order's shipments, read once per run (`fresh` reads them again)."""
        if self._shipments is None or fresh:
            self._shipments = await self.storefront.list_shipments(self.order_id)
        return self._shipments

    def shipment_created(self, shipment: Shipment) -> None:
        self._shipments = [*(self._shipments or []), shipment]

    def shipment_deleted(self, shipment_id: int) -> None:
        self._shipments = [x for x in self._shipments or [] if x.id != shipment_id]

    async def refunds(self) -> list[Refund]:
        if self._refunds is None:
            self._refunds = await self.storefront.list_order_refunds(self.order_id)
        return self._refunds

    async def reload(self) -> SalesOrderRecord | None:
        """Reads the record; what this run writes from now on is based on it, so the writes
        are guarded by its version (another run of the same order may have changed it since)."""
        self.record = await self.store.load(self.store_hash, self.order_id)
        if self.record is None or self.record.statecode == 0:
            etag = self.record.etag if self.record is not None else None
            self.writes.guard(self.store_hash, self.order_id, etag)
        else:
            self.writes.unguard()  # closed: read-only, nothing of it is written any more
        return self.record

    def remember(self, record: SalesOrderRecord) -> None:
        self.record = record

    async def set_status(self, status_id: int) -> Order:
        """Moves the BigCommerce order to `status_id` unless it is there already, and stages
        the status and date BigCommerce answered with for Dataverse."""
        current = await self.order()
        if current.status_id == status_id:
            return current
        started = time.monotonic()
        updated = await self.storefront.update_order_status(self.order_id, status_id)
        took = int((time.monotonic() - started) * 1000)
        if self._bundle is not None:
            self._bundle = replace(self._bundle, order=updated)
        self.note_bigcommerce(updated)
        write = f"status {current.status_id} -> {updated.status_id}"
        self.bigcommerce_writes.append(write)
        self.journal_write(f"bigcommerce status {status_id}", write, took)
        return updated

    def note_bigcommerce(self, order: Order) -> None:
        """Stages the order's BigCommerce status and date on the salesorder (if it exists)."""
        if self.record is None or self.record.statecode in (2, 3):
            return  # a closed salesorder is not written again
        self.writes.update_order(
            self.store_hash,
            self.order_id,
            bc_status_id=order.status_id,
            bc_date_modified=order.date_modified,
        )
        self.record = replace(
            self.record, bc_status_id=order.status_id, bc_date_modified=order.date_modified
        )

    def journal_write(self, name: str, details: str, duration_ms: int | None = None) -> None:
        message = self.message
        self.writes.journal(
            JournalEntry(
                entry_id=journal_entry_id(
                    message.message_id, "write", len(self.bigcommerce_writes), name
                ),
                store_hash=self.store_hash,
                order_id=self.order_id,
                kind="write",
                name=name,
                outcome="done",
                occurred_on=self.clock(),
                duration_ms=duration_ms,
                correlation_id=message.correlation_id,
                details=details,
            )
        )
