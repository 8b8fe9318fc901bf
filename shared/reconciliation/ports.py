"""What the reconciliation sweep reads of Dataverse: the `SyncLedger` port.

The ledger answers, in bulk and cheaply, what the connector recorded: which BigCommerce orders have
a salesorder and which BigCommerce state (status id, `date_modified`) it recorded, which refunds
have a `bciom_orderrefund`, and which Dataverse changes have not reached BigCommerce yet. The sweep
asks once per page of BigCommerce orders or refunds, never once per order.

Adapters: `shared/dataverse/sync_ledger.py` (the Web API), in-memory fakes in unit tests.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RecordedOrder:
    """The salesorder of one BigCommerce order, as far as the sweep needs it."""

    order_id: int
    bc_status_id: int | None  # bciom_bcstatusid: the BigCommerce status last synced
    bc_date_modified: datetime | None  # bciom_bcdatemodified: BigCommerce's date of that state
    statecode: int = 0  # 0 active, 1 submitted, 2 cancelled, 3 fulfilled, 4 invoiced


class ChangeKind(StrEnum):
    """A Dataverse change the connector carries to BigCommerce."""

    SHIPMENT = "shipment"  # a fulfillment order marked shipped, without a BigCommerce shipment
    CANCELLATION = "cancellation"  # a salesorder cancelled in Dataverse, not in BigCommerce


@dataclass(frozen=True, slots=True)
class PendingChange:
    """One Dataverse row whose change BigCommerce does not reflect yet."""

    kind: ChangeKind
    table: str  # the row's logical name
    row_id: str  # its primary id
    version: str  # its versionnumber: a new change of the row is a new version
    order_id: int
    modified_on: datetime | None = None
    detail: str = ""  # e.g. the fulfillment key


class SyncLedger(Protocol):
    async def orders(
        self, store_hash: str, order_ids: Collection[int]
    ) -> Mapping[int, RecordedOrder]:
        """The salesorders of these BigCommerce orders, by order id; absent ids have none.
        One query for up to 250 ids."""
        ...

    async def refunds(self, store_hash: str, refund_ids: Collection[int]) -> set[int]:
        """Which of these BigCommerce refund ids Dataverse recorded. One query for up to 250."""
        ...

    async def pending_changes(
        self, store_hash: str, *, modified_from: datetime, modified_before: datetime
    ) -> list[PendingChange]:
        """Rows modified in [modified_from, modified_before) whose change BigCommerce does not
        reflect: fulfillment orders shipped (not cancelled) without a BigCommerce shipment id,
        and salesorders cancelled in Dataverse whose recorded BigCommerce status is not a
        cancelled one."""
        ...
