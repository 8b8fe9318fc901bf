"""In-memory fakes of the lifecycle's ports (cosmicpython style) and builders for its messages.

- `FakeStorefront`: one store's BigCommerce orders (pydantic models of
  `shared.bigcommerce.models`), behaving as BigCommerce does where the lifecycle relies on it:
  a status change or a shipment bumps `date_modified`, a shipment moves the order to Shipped (2)
  or Partially Shipped (3), over-shipping a line is refused with 422. Calls are counted per
  method; `fail` raises a given exception on the n-th call of a method (optionally after the
  call took effect: a write whose reply was lost).
- `FakeOrderStore` / `FakeWrites`: Dataverse as `SalesOrderRecord`s in a dict; a unit of work
  applies its staged operations atomically on `commit` (all or nothing), commits are counted
  (all, and those with business writes, i.e. anything but journal entries), and a commit can be
  made to fail. Business commits are guarded by the salesorder's version (`etag`), as the
  Dataverse adapter's are: a stale one raises `ConcurrencyError`, a good one moves the version.
- `FakeSender`: records `(queue, OutboundMessage)` and can fail (for every queue or one).
- `World`: the three fakes, a settable clock and an `OrderRunner` with the default flow and
  mapping, `random=lambda: 0.5`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from shared.bigcommerce import errors as bc
from shared.bigcommerce.client import OrderBundle
from shared.bigcommerce.models import Order, OrderProduct, OrderShippingAddress, Refund, Shipment
from shared.bigcommerce.requests import ShipmentCreate
from shared.dataverse import errors as dv
from shared.mapping import load_mapping
from shared.mapping.config import MappingConfig
from shared.mapping.keys import is_key_safe
from shared.mapping.order import OrderIntake
from shared.messaging.message import OutboundMessage
from shared.messaging.ports import SendError
from shared.orchestration.flow import FlowConfig, Trigger, load_flow
from shared.orchestration.messages import build_order_message
from shared.orchestration.ports import JournalEntry, PlannedFulfillment
from shared.orchestration.records import (
    FulfillmentLineRecord,
    FulfillmentRecord,
    Lifecycle,
    LineRecord,
    RefundRecord,
    SalesOrderRecord,
)
from shared.orchestration.runner import OrderRunner, ReceivedMessage, RunReport
from shared.webhooks.contract import build_message
from shared.webhooks.events import parse_envelope, parse_event

STORE = "abc123"
ORDER_ID = 250
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CREATED = datetime(2026, 3, 2, 8, 55, tzinfo=UTC)
ADDRESS_ID = 7
LINE_A, LINE_B = 1001, 1002
SKU_A, SKU_B = "SKU-A", "SKU-B"


# -- BigCommerce models ---------------------------------------------------------------------------


def make_order(
    order_id: int = ORDER_ID,
    status_id: int = 11,
    *,
    date_modified: datetime = CREATED,
    **changes: Any,
) -> Order:
    body: dict[str, Any] = {
        "id": order_id,
        "status_id": status_id,
        "customer_id": 42,
        "date_created": CREATED.isoformat(),
        "date_modified": date_modified.isoformat(),
        "subtotal_ex_tax": "50.0000",
        "subtotal_inc_tax": "54.0000",
        "total_ex_tax": "50.0000",
        "total_inc_tax": "54.0000",
        "currency_code": "USD",
        "default_currency_code": "USD",
        "payment_status": "captured",
        "payment_method": "Credit Card",
        "billing_address": {
            "first_name": "Jane",
            "last_name": "Doe",
            "street_1": "1 Main St",
            "city": "Austin",
            "zip": "78701",
            "country": "United States",
            "country_iso2": "US",
            "email": "jane@example.com",
        },
    }
    body.update(changes)
    return Order.model_validate(body)


def make_product(
    line_id: int,
    sku: str | None,
    quantity: int = 1,
    *,
    order_id: int = ORDER_ID,
    address_id: int | None = ADDRESS_ID,
    **changes: Any,
) -> OrderProduct:
    body: dict[str, Any] = {
        "id": line_id,
        "order_id": order_id,
        "product_id": line_id + 1,
        "order_address_id": address_id,
        "name": f"Product {sku}",
        "sku": sku,
        "quantity": quantity,
        "price_ex_tax": "25.0000",
        "price_inc_tax": "27.0000",
        "total_ex_tax": f"{25 * quantity}.0000",
        "total_inc_tax": f"{27 * quantity}.0000",
    }
    body.update(changes)
    return OrderProduct.model_validate(body)


def make_address(
    address_id: int = ADDRESS_ID,
    *,
    order_id: int = ORDER_ID,
    country_iso2: str = "US",
    **changes: Any,
) -> OrderShippingAddress:
    body: dict[str, Any] = {
        "id": address_id,
        "order_id": order_id,
        "first_name": "Jane",
        "last_name": "Doe",
        "street_1": "1 Main St",
        "city": "Austin",
        "state": "Texas",
        "zip": "78701",
        "country": "United States",
        "country_iso2": country_iso2,
        "shipping_method": "UPS Ground",
    }
    body.update(changes)
    return OrderShippingAddress.model_validate(body)


# -- BigCommerce ----------------------------------------------------------------------------------


@dataclass
class FakeOrder:
    order: Order
    products: list[OrderProduct]
    addresses: list[OrderShippingAddress]
    shipments: list[Shipment] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)


@dataclass
class _Fault:
    exc: BaseException
    after: bool  # the call takes effect, then the exception is raised (a lost reply)


class FakeStorefront:
    """One store's BigCommerce API, in memory (satisfies the lifecycle's `Storefront` port)."""

    def __init__(self, store_hash: str = STORE) -> None:
        self.store_hash = store_hash
        self.orders: dict[int, FakeOrder] = {}
        self.calls: Counter[str] = Counter()
        self.writes: list[str] = []  # what the connector wrote, in order
        self._faults: dict[tuple[str, int], _Fault] = {}
        self._next_shipment_id = 1
        self._next_refund_id = 1
        # BigCommerce moves the status to Shipped / Partially Shipped on a shipment (widely
        # observed, not in the spec: bigcommerce.md 2.4); False models a store where it does not.
        self.status_follows_shipments = True

    # -- set-up and the merchant's own changes ---------------------------------------------------

    def add_order(
        self,
        order: Order,
        products: Sequence[OrderProduct],
        addresses: Sequence[OrderShippingAddress] = (),
    ) -> FakeOrder:
        fake = FakeOrder(order, list(products), list(addresses))
        self.orders[order.id] = fake
        return fake

    def order(self, order_id: int = ORDER_ID) -> Order:
        return self.orders[order_id].order

    def set_status(self, order_id: int, status_id: int) -> Order:
        """The merchant (or BigCommerce itself) changes the status: `date_modified` moves on."""
        return self._change(order_id, status_id=status_id)

    def add_refund(self, order_id: int, amount: str, *, status_id: int | None = None) -> Refund:
        fake = self.orders[order_id]
        refund = Refund.model_validate(
            {
                "id": self._next_refund_id,
                "order_id": order_id,
                "created": (fake.order.date_modified + timedelta(minutes=1)).isoformat(),
                "total_amount": amount,
                "items": [{"item_type": "ORDER", "item_id": order_id}],
                "payments": [{"provider_id": "braintree", "amount": amount}],
            }
        )
        self._next_refund_id += 1
        fake.refunds.append(refund)
        self._change(order_id, status_id=fake.order.status_id if status_id is None else status_id)
        return refund

    def fail(
        self, method: str, exc: BaseException, *, on_call: int | None = None, after: bool = False
    ) -> None:
        """Raise `exc` on call number `on_call` of `method` (default: its next call)."""
        number = self.calls[method] + 1 if on_call is None else on_call
        self._faults[(method, number)] = _Fault(exc, after)

    def _change(self, order_id: int, **changes: Any) -> Order:
        fake = self.orders[order_id]
        moved = fake.order.date_modified + timedelta(minutes=1)
        fake.order = fake.order.model_copy(update={**changes, "date_modified": moved})
        return fake.order

    def _enter(self, method: str) -> _Fault | None:
        self.calls[method] += 1
        fault = self._faults.pop((method, self.calls[method]), None)
        if fault is not None and not fault.after:
            raise fault.exc
        return fault

    def _get(self, order_id: int, method: str, path: str) -> FakeOrder:
        fake = self.orders.get(order_id)
        if fake is None:
            raise bc.NotFoundError(
                "not found", store_hash=self.store_hash, method=method, path=path, status=404
            )
        return fake

    # -- the Storefront port ---------------------------------------------------------------------

    async def get_order_bundle(self, order_id: int) -> OrderBundle:
        self._enter("get_order_bundle")
        fake = self._get(order_id, "GET", f"/v2/orders/{order_id}")
        return OrderBundle(fake.order, list(fake.products), list(fake.addresses))

    async def update_order_status(self, order_id: int, status_id: int) -> Order:
        fault = self._enter("update_order_status")
        self._get(order_id, "PUT", f"/v2/orders/{order_id}")
        before = self.orders[order_id].order.status_id
        updated = self._change(order_id, status_id=status_id)
        self.writes.append(f"status {before} -> {status_id}")
        if fault is not None:
            raise fault.exc
        return updated

    async def list_shipments(self, order_id: int) -> list[Shipment]:
        self._enter("list_shipments")
        return list(self._get(order_id, "GET", f"/v2/orders/{order_id}/shipments").shipments)

    async def create_shipment(self, order_id: int, shipment: ShipmentCreate) -> Shipment:
        fault = self._enter("create_shipment")
        path = f"/v2/orders/{order_id}/shipments"
        fake = self._get(order_id, "POST", path)
        if shipment.order_address_id not in {a.id for a in fake.addresses}:
            raise self._unprocessable(path, "order_address_id", "no such shipping address")
        shipped = dict.fromkeys((p.id for p in fake.products), 0)
        for item in shipment.items:
            if item.order_product_id not in shipped:
                raise self._unprocessable(path, "order_product_id", "no such order product")
            shipped[item.order_product_id] += item.quantity
        for product in fake.products:
            if product.quantity_shipped + shipped[product.id] > product.quantity:
                raise self._unprocessable(path, "quantity", f"line {product.id} over-shipped")
        fake.products = [
            p.model_copy(update={"quantity_shipped": p.quantity_shipped + shipped[p.id]})
            for p in fake.products
        ]
        created = Shipment.model_validate(
            {
                "id": self._next_shipment_id,
                "order_id": order_id,
                "order_address_id": shipment.order_address_id,
                "tracking_number": shipment.tracking_number or "",
                "tracking_carrier": shipment.tracking_carrier,
                "comments": shipment.comments,
                "items": [
                    {"order_product_id": i.order_product_id, "quantity": i.quantity}
                    for i in shipment.items
                ],
            }
        )
        self._next_shipment_id += 1
        fake.shipments.append(created)
        everything = all(p.quantity_shipped >= p.quantity for p in fake.products)
        if self.status_follows_shipments:
            self._change(order_id, status_id=2 if everything else 3)
        else:
            self._change(order_id)
        self.writes.append(f"shipment {created.id}")
        if fault is not None:
            raise fault.exc
        return created

    async def delete_shipment(self, order_id: int, shipment_id: int) -> None:
        self._enter("delete_shipment")
        fake = self._get(order_id, "DELETE", f"/v2/orders/{order_id}/shipments/{shipment_id}")
        (gone,) = [x for x in fake.shipments if x.id == shipment_id]
        fake.shipments.remove(gone)
        back = {i.order_product_id: i.quantity for i in gone.items}
        fake.products = [
            p.model_copy(update={"quantity_shipped": p.quantity_shipped - back.get(p.id, 0)})
            for p in fake.products
        ]
        self._change(order_id)
        self.writes.append(f"deleted shipment {shipment_id}")

    async def list_order_refunds(self, order_id: int) -> list[Refund]:
        self._enter("list_order_refunds")
        path = f"/v3/orders/{order_id}/payment_actions/refunds"
        return list(self._get(order_id, "GET", path).refunds)

    def _unprocessable(self, path: str, name: str, text: str) -> bc.UnprocessableError:
        return bc.UnprocessableError(
            "invalid shipment",
            store_hash=self.store_hash,
            method="POST",
            path=path,
            status=422,
            errors={name: text},
        )


class FakeStorefronts:
    def __init__(self, *storefronts: FakeStorefront) -> None:
        self.by_hash = {s.store_hash: s for s in storefronts}

    def get(self, store_hash: str) -> FakeStorefront:
        return self.by_hash[store_hash]


# -- Dataverse ------------------------------------------------------------------------------------

Records = dict[tuple[str, int], SalesOrderRecord]
_Op = Callable[[Records, dict[str, JournalEntry]], None]


class FakeOrderStore:
    """Dataverse for the lifecycle, in memory (satisfies `OrderStore`)."""

    def __init__(
        self,
        *,
        products: Collection[str] = (),
        stock: Mapping[tuple[str, str], Decimal] | None = None,
    ) -> None:
        self.records: Records = {}
        self.products: set[str] = set(products)
        self.stock: dict[tuple[str, str], Decimal] = dict(stock or {})
        self.journal: dict[str, JournalEntry] = {}
        self.commits = 0  # successful commits that sent something
        self.business_commits = 0  # ... of which some operation was not a journal entry
        self.applied: list[str] = []  # business operations, as committed
        self.calls: Counter[str] = Counter()
        self.units = 0  # units of work handed out
        self._commit_faults: dict[int, BaseException] = {}
        self._commit_attempts = 0
        self._versions = 0  # the salesorders' versions (ETags) handed out

    # -- set-up and changes made in Dataverse by others ------------------------------------------

    def record(self, order_id: int = ORDER_ID, store_hash: str = STORE) -> SalesOrderRecord:
        return self.records[(store_hash, order_id)]

    def put(self, record: SalesOrderRecord) -> None:
        """Stores the salesorder as it is now; like any Dataverse row it has a version."""
        if record.etag is None:
            self._versions += 1
            record = replace(record, etag=f'W/"{self._versions}"')
        self.records[(record.store_hash, record.order_id)] = record

    def mark_shipped(
        self,
        key: str,
        *,
        order_id: int = ORDER_ID,
        store_hash: str = STORE,
        tracking_number: str | None = None,
        carrier: str | None = None,
        quantities: Mapping[int, Decimal] | None = None,
    ) -> None:
        """The warehouse marks a fulfillment order shipped (optionally with shipped quantities
        per order product id)."""
        record = self.record(order_id, store_hash)
        fulfillments = []
        for f in record.fulfillments:
            if f.key == key:
                lines = tuple(
                    replace(x, quantity_shipped=quantities.get(x.order_product_id, Decimal(0)))
                    if quantities
                    else x
                    for x in f.lines
                )
                f = replace(
                    f, shipped=True, tracking_number=tracking_number, carrier=carrier, lines=lines
                )
            fulfillments.append(f)
        assert any(f.key == key for f in record.fulfillments), key
        self.put(replace(record, fulfillments=tuple(fulfillments)))

    def cancel_in_dataverse(self, order_id: int = ORDER_ID, store_hash: str = STORE) -> None:
        """Someone cancels the salesorder in Dataverse (CancelSalesOrder): a new version."""
        self._versions += 1
        cancelled = replace(self.record(order_id, store_hash), statecode=2, statuscode=4)
        self.put(replace(cancelled, etag=f'W/"{self._versions}"'))

    def fail_commit(self, exc: BaseException, *, on_attempt: int | None = None) -> None:
        """Fail commit attempt number `on_attempt` (default: the next one)."""
        number = self._commit_attempts + 1 if on_attempt is None else on_attempt
        self._commit_faults[number] = exc

    def journal_of(self, order_id: int = ORDER_ID) -> list[JournalEntry]:
        return [e for e in self.journal.values() if e.order_id == order_id]

    # -- the OrderStore port ---------------------------------------------------------------------

    async def load(self, store_hash: str, order_id: int) -> SalesOrderRecord | None:
        self.calls["load"] += 1
        return self.records.get((store_hash, order_id))

    async def existing_products(self, product_numbers: Collection[str]) -> set[str]:
        self.calls["existing_products"] += 1
        return {n for n in product_numbers if n in self.products}

    async def inventory(self, skus: Collection[str]) -> Mapping[tuple[str, str], Decimal]:
        self.calls["inventory"] += 1
        return {k: v for k, v in self.stock.items() if k[1] in skus}

    def writes(self) -> FakeWrites:
        self.units += 1
        return FakeWrites(self)

    def _commit(
        self,
        ops: Sequence[tuple[str, _Op]],
        guarded: tuple[str, int] | None = None,
        etag: str | None = None,
    ) -> str | None:
        """Applies `ops` all or nothing; with `guarded` (an order) and its `etag`, only if the
        salesorder is still at that version, and returns the version it is at afterwards."""
        self._commit_attempts += 1
        fault = self._commit_faults.pop(self._commit_attempts, None)
        if fault is not None:
            raise fault
        records, journal = dict(self.records), dict(self.journal)
        current = records.get(guarded) if guarded is not None else None
        creating = any(name.startswith("intake") for name, _ in ops)
        if guarded is not None and etag is None and creating and current is not None:
            raise dv.ConcurrencyError(
                "the salesorder was created meanwhile",
                method="PATCH",
                path="salesorders",
                status=412,
                code="0x80040237",
            )
        if guarded is not None and etag is not None and (current is None or current.etag != etag):
            raise dv.ConcurrencyError(
                "The version of the existing record doesn't match",
                method="PATCH",
                path="salesorders",
                status=412,
                code="0x80060882",
            )
        for _, op in ops:
            op(records, journal)  # raises before anything is kept: all or nothing
        version: str | None = None
        if guarded is not None and (after := records.get(guarded)) is not None:
            self._versions += 1
            version = f'W/"{self._versions}"'
            records[guarded] = replace(after, etag=version)
        self.records, self.journal = records, journal
        self.commits += 1
        business = [name for name, _ in ops if not name.startswith("journal")]
        if business:
            self.business_commits += 1
            self.applied.extend(business)
        return version


def _find(records: Records, store_hash: str, order_id: int) -> SalesOrderRecord:
    record = records.get((store_hash, order_id))
    if record is None:
        raise LookupError(f"fake Dataverse: no salesorder {store_hash}/{order_id}")
    return record


def _by_line(records: Records, store_hash: str, order_product_id: int) -> SalesOrderRecord:
    for (hash_, _), record in records.items():
        if hash_ == store_hash and record.line(order_product_id) is not None:
            return record
    raise LookupError(f"fake Dataverse: no salesorderdetail {store_hash}/{order_product_id}")


def _by_fulfillment(records: Records, store_hash: str, key: str) -> SalesOrderRecord:
    for (hash_, _), record in records.items():
        if hash_ == store_hash and any(f.key == key for f in record.fulfillments):
            return record
    raise LookupError(f"fake Dataverse: no fulfillment order {store_hash}/{key}")


def _put(records: Records, record: SalesOrderRecord) -> None:
    records[(record.store_hash, record.order_id)] = record


class FakeWrites:
    """A unit of work (satisfies `OrderWrites`): staged operations, applied on `commit`."""

    def __init__(self, store: FakeOrderStore) -> None:
        self._store = store
        self._ops: list[tuple[str, _Op]] = []
        self.commit_calls = 0
        self._guarded: tuple[str, int] | None = None
        self._etag: str | None = None

    def guard(self, store_hash: str, order_id: int, etag: str | None) -> None:
        self._guarded, self._etag = (store_hash, order_id), etag

    def unguard(self) -> None:
        self._guarded, self._etag = None, None

    @property
    def version(self) -> str | None:
        return self._etag

    def _stage(self, name: str, op: _Op) -> None:
        self._ops.append((name, op))

    def intake(self, intake: OrderIntake) -> None:
        row = intake.salesorder
        store_hash = str(row.key["bciom_storehash"])
        order_id = int(row.key["bciom_bcorderid"])
        values = dict(row.values)
        lines = [
            (int(r.key["bciom_bcorderproductid"]), r.values.get("bciom_sku"), r.values["quantity"])
            for r in intake.lines
        ]

        def op(records: Records, _: dict[str, JournalEntry]) -> None:
            record = records.get((store_hash, order_id)) or SalesOrderRecord(
                id=f"salesorder-{store_hash}-{order_id}",
                store_hash=store_hash,
                order_id=order_id,
                lifecycle=Lifecycle.RECEIVED,
            )
            changes: dict[str, Any] = {}
            if "bciom_bcstatusid" in values:
                changes["bc_status_id"] = values["bciom_bcstatusid"]
            if "bciom_bcdatemodified" in values:
                changes["bc_date_modified"] = values["bciom_bcdatemodified"]
            if "bciom_holdreason" in values:
                changes["hold_reason"] = values["bciom_holdreason"]
            merged = {x.order_product_id: x for x in record.lines}
            for line_id, sku, quantity in lines:
                old = merged.get(line_id)
                merged[line_id] = (
                    LineRecord(line_id, sku, Decimal(quantity))
                    if old is None
                    else replace(old, sku=sku, quantity=Decimal(quantity))
                )
            _put(records, replace(record, lines=tuple(merged.values()), **changes))

        self._stage(f"intake {order_id}", op)

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
        changes: dict[str, Any] = {}
        if lifecycle is not None:
            changes["lifecycle"] = lifecycle
        if hold_reason is not None:
            changes["hold_reason"] = hold_reason
        if clear_hold:
            changes["hold_reason"] = None
        if bc_status_id is not None:
            changes["bc_status_id"] = bc_status_id
        if bc_date_modified is not None:
            changes["bc_date_modified"] = bc_date_modified

        def op(records: Records, _: dict[str, JournalEntry]) -> None:
            _put(records, replace(_find(records, store_hash, order_id), **changes))

        text = ", ".join(f"{k}={v}" for k, v in changes.items())
        self._stage(f"update_order {order_id}: {text}", op)

    def update_line(
        self,
        store_hash: str,
        order_product_id: int,
        *,
        quantity_shipped: Decimal | None = None,
        quantity_cancelled: Decimal | None = None,
    ) -> None:
        changes: dict[str, Any] = {}
        if quantity_shipped is not None:
            changes["quantity_shipped"] = quantity_shipped
        if quantity_cancelled is not None:
            changes["quantity_cancelled"] = quantity_cancelled

        def op(records: Records, _: dict[str, JournalEntry]) -> None:
            record = _by_line(records, store_hash, order_product_id)
            lines = tuple(
                replace(x, **changes) if x.order_product_id == order_product_id else x
                for x in record.lines
            )
            _put(records, replace(record, lines=lines))

        text = ", ".join(f"{k}={v}" for k, v in changes.items())
        self._stage(f"update_line {order_product_id}: {text}", op)

    def create_fulfillments(
        self, store_hash: str, order_id: int, plans: Sequence[PlannedFulfillment]
    ) -> None:
        def op(records: Records, _: dict[str, JournalEntry]) -> None:
            record = _find(records, store_hash, order_id)
            by_key = {f.key: f for f in record.fulfillments}
            for plan in plans:
                lines = tuple(
                    FulfillmentLineRecord(f"{plan.key}-{n}", x.order_product_id, x.quantity)
                    for n, x in enumerate(plan.lines, start=1)
                )
                old = by_key.get(plan.key)
                by_key[plan.key] = (
                    FulfillmentRecord(plan.key, plan.source, lines)
                    if old is None
                    else replace(old, source=plan.source, lines=lines)
                )
            _put(records, replace(record, fulfillments=tuple(by_key.values())))

        keys = ", ".join(f"{p.key}@{p.source}" for p in plans)
        self._stage(f"create_fulfillments {order_id}: {keys}", op)

    def update_fulfillment(
        self,
        store_hash: str,
        key: str,
        *,
        bc_shipment_id: int | None = None,
        cancelled: bool | None = None,
    ) -> None:
        changes: dict[str, Any] = {}
        if bc_shipment_id is not None:
            changes["bc_shipment_id"] = bc_shipment_id
        if cancelled is not None:
            changes["cancelled"] = cancelled

        def op(records: Records, _: dict[str, JournalEntry]) -> None:
            record = _by_fulfillment(records, store_hash, key)
            fulfillments = tuple(
                replace(f, **changes) if f.key == key else f for f in record.fulfillments
            )
            _put(records, replace(record, fulfillments=fulfillments))

        text = ", ".join(f"{k}={v}" for k, v in changes.items())
        self._stage(f"update_fulfillment {key}: {text}", op)

    def record_refund(self, store_hash: str, order_id: int, refund: Refund) -> None:
        def op(records: Records, _: dict[str, JournalEntry]) -> None:
            record = _find(records, store_hash, order_id)
            kept = tuple(r for r in record.refunds if r.refund_id != refund.id)
            recorded = RefundRecord(refund.id, refund.total_amount)
            _put(records, replace(record, refunds=(*kept, recorded)))

        self._stage(f"record_refund {order_id}: {refund.id}", op)

    def close_order(
        self, store_hash: str, order_id: int, how: Literal["fulfilled", "cancelled"]
    ) -> None:
        state = (3, 100001) if how == "fulfilled" else (2, 4)

        def op(records: Records, _: dict[str, JournalEntry]) -> None:
            record = _find(records, store_hash, order_id)
            _put(records, replace(record, statecode=state[0], statuscode=state[1]))

        self._stage(f"close_order {order_id}: {how}", op)

    def journal(self, entry: JournalEntry) -> None:
        # Dataverse addresses the entry by this key: it must be a valid alternate-key value.
        assert is_key_safe(entry.entry_id), entry.entry_id
        assert len(entry.entry_id) <= 128, entry.entry_id

        def op(_: Records, journal: dict[str, JournalEntry]) -> None:
            journal[entry.entry_id] = entry

        self._stage(f"journal {entry.kind} {entry.name}", op)

    @property
    def pending(self) -> int:
        return len(self._ops)

    async def commit(self) -> None:
        self.commit_calls += 1
        ops, self._ops = self._ops, []
        if not ops:
            return
        business = any(not name.startswith("journal") for name, _ in ops)
        guarded = self._guarded if business else None
        etag = self._store._commit(ops, guarded, self._etag)
        if guarded is not None:
            self._etag = etag


def dataverse_server_error() -> dv.ServerError:
    return dv.ServerError("Dataverse failed", method="POST", path="/$batch", status=503)


# -- Service Bus ----------------------------------------------------------------------------------


class FakeSender:
    """Records what is sent; `fail_with` makes every send (or only those to `fail_queue`) fail."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, OutboundMessage]] = []
        self.fail_with: BaseException | None = None
        self.fail_queue: str | None = None
        self.closed = False

    async def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        if self.fail_with is not None and self.fail_queue in (None, queue):
            raise self.fail_with
        self.sent.extend((queue, m) for m in messages)

    async def close(self) -> None:
        self.closed = True

    def on(self, queue: str) -> list[OutboundMessage]:
        return [m for q, m in self.sent if q == queue]


def send_error() -> SendError:
    return SendError("broker unavailable")


# -- messages -------------------------------------------------------------------------------------


def received(message: OutboundMessage, *, delivery_count: int = 1) -> ReceivedMessage:
    """What the queue trigger hands over for a message that was sent."""
    return ReceivedMessage(
        body=message.body,
        message_id=message.message_id,
        application_properties=dict(message.application_properties),
        correlation_id=message.correlation_id,
        delivery_count=delivery_count,
    )


def webhook_outbound(
    scope: str,
    data: Mapping[str, Any],
    *,
    store_hash: str = STORE,
    created_at: int = 1_772_440_000,
    hash_: str | None = None,
    correlation_id: str = "corr-1",
) -> OutboundMessage:
    envelope = parse_envelope(
        {
            "scope": scope,
            "store_id": "1025646",
            "producer": f"stores/{store_hash}",
            "hash": hash_ or f"{scope}|{json.dumps(data, sort_keys=True)}|{created_at}",
            "created_at": created_at,
            "data": dict(data),
        }
    )
    event = parse_event(envelope)
    assert event is not None, scope
    return build_message(
        event,
        received_at=T0,
        correlation_id=correlation_id,
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )


def order_webhook(
    order_id: int = ORDER_ID,
    scope: str = "store/order/created",
    *,
    created_at: int = 1_772_440_000,
    status: tuple[int, int] | None = None,
) -> ReceivedMessage:
    data: dict[str, Any] = {"type": "order", "id": order_id}
    if status is not None:
        scope = "store/order/statusUpdated"
        data["status"] = {"previous_status_id": status[0], "new_status_id": status[1]}
    return received(webhook_outbound(scope, data, created_at=created_at))


def refund_webhook(
    refund_id: int, order_id: int = ORDER_ID, *, created_at: int = 1_772_440_100
) -> ReceivedMessage:
    data = {"type": "order", "id": order_id, "refund": {"refund_id": refund_id}}
    return received(webhook_outbound("store/order/refund/created", data, created_at=created_at))


def shipment_webhook(
    shipment_id: int, order_id: int = ORDER_ID, *, created_at: int = 1_772_440_200
) -> ReceivedMessage:
    data = {"type": "shipment", "id": shipment_id, "orderId": order_id}
    return received(webhook_outbound("store/shipment/created", data, created_at=created_at))


def connector_message(
    trigger: Trigger,
    order_id: int = ORDER_ID,
    *,
    message_id: str | None = None,
    attempt: int = 0,
    detail: str = "",
) -> ReceivedMessage:
    return received(
        build_order_message(
            trigger=trigger,
            store_hash=STORE,
            order_id=order_id,
            message_id=message_id or f"{trigger.value}-{order_id}-{attempt}",
            correlation_id=f"corr-{trigger.value}",
            attempt=attempt,
            detail=detail,
        )
    )


# -- the world ------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


DEFAULT_FLOW = load_flow(environ={})
DEFAULT_MAPPING = load_mapping(environ={})


@dataclass
class World:
    storefront: FakeStorefront
    store: FakeOrderStore
    sender: FakeSender
    clock: FakeClock
    runner: OrderRunner
    flow: FlowConfig
    reports: list[RunReport] = field(default_factory=list)

    async def handle(self, message: ReceivedMessage) -> RunReport:
        report = await self.runner.handle(message)
        self.reports.append(report)
        return report

    @property
    def record(self) -> SalesOrderRecord:
        return self.store.record()

    @property
    def order(self) -> Order:
        return self.storefront.order()


def make_world(
    *,
    flow: FlowConfig = DEFAULT_FLOW,
    mapping: MappingConfig = DEFAULT_MAPPING,
    products: Collection[str] = (SKU_A, SKU_B),
    stock: Mapping[tuple[str, str], Decimal] | None = None,
    go_live: Mapping[str, datetime] | None = None,
) -> World:
    storefront = FakeStorefront()
    store = FakeOrderStore(products=products, stock=stock)
    sender = FakeSender()
    clock = FakeClock()
    runner = OrderRunner(
        storefronts=FakeStorefronts(storefront),
        store=store,
        flow=flow,
        mapping=mapping,
        sender=sender,
        clock=clock,
        random=lambda: 0.5,
        go_live=go_live,
    )
    return World(storefront, store, sender, clock, runner, flow)


def standard_order(
    world: World,
    *,
    status_id: int = 11,
    order_id: int = ORDER_ID,
    lines: Sequence[tuple[int, str | None, int]] = ((LINE_A, SKU_A, 2), (LINE_B, SKU_B, 1)),
    shipping: bool = True,
    **changes: Any,
) -> FakeOrder:
    """An order of two lines to one US address (none for a digital order)."""
    address_id = ADDRESS_ID if shipping else None
    return world.storefront.add_order(
        make_order(order_id, status_id, **changes),
        [make_product(i, sku, q, order_id=order_id, address_id=address_id) for i, sku, q in lines],
        [make_address(order_id=order_id)] if shipping else [],
    )
