"""`BigCommerceClient`: the typed Orders V2, Orders V3 and Webhooks V3 calls the connector makes.

Each method is one documented endpoint (paths as in reference/*.yml), returns pydantic models
and raises `BigCommerceError` subclasses (errors.py). Lists read every page; `iter_order_pages`
and `iter_refund_pages` yield page by page for the reconciliation job, which moves its watermark
as pages are processed. HTTP 204 and `[]` both mean "none".

Get an instance from `BigCommerceClients` (registry.py), which keeps one per store per process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from shared.bigcommerce.dates import format_rfc2822, format_rfc3339
from shared.bigcommerce.errors import BigCommerceError, ResponseFormatError
from shared.bigcommerce.models import (
    V2_DEFAULT_PAGE_SIZE,
    HooksAdmin,
    Metafield,
    Order,
    OrderConsignments,
    OrderCoupon,
    OrderProduct,
    OrdersCount,
    OrderShippingAddress,
    OrderStatus,
    Pagination,
    Refund,
    RefundQuote,
    Shipment,
    Transaction,
    Webhook,
    unwrap,
)
from shared.bigcommerce.requests import (
    HookCreate,
    HookUpdate,
    MetafieldWrite,
    RefundCreate,
    RefundQuoteRequest,
    ShipmentCreate,
    ShipmentUpdate,
)
from shared.bigcommerce.retry import Idempotency
from shared.bigcommerce.session import Params, Reply, StoreSession

M = TypeVar("M", bound=BaseModel)

MAX_PAGE_SIZE: Final = 250  # docs/start/about/common-query-params.mdx
ONE_CALL_INCLUDE: Final = "consignments.line_items"

OrderSortField = Literal[
    "id", "customer_id", "date_created", "date_modified", "status_id", "channel_id", "external_id"
]


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """Filters of `GET /v2/orders` and `/v2/orders/count`. Dates must be timezone-aware; they
    are sent as RFC 2822 in UTC, the max bounds rounded up to stay inclusive."""

    min_date_modified: datetime | None = None
    max_date_modified: datetime | None = None
    min_date_created: datetime | None = None
    max_date_created: datetime | None = None
    min_id: int | None = None
    max_id: int | None = None
    status_id: int | None = None
    channel_id: int | None = None
    customer_id: int | None = None
    cart_id: str | None = None
    external_order_id: str | None = None

    def params(self) -> dict[str, str | int | None]:
        def date(value: datetime | None, upper: bool) -> str | None:
            return None if value is None else format_rfc2822(value, round_up=upper)

        return {
            "min_date_modified": date(self.min_date_modified, False),
            "max_date_modified": date(self.max_date_modified, True),
            "min_date_created": date(self.min_date_created, False),
            "max_date_created": date(self.max_date_created, True),
            "min_id": self.min_id,
            "max_id": self.max_id,
            "status_id": self.status_id,
            "channel_id": self.channel_id,
            "customer_id": self.customer_id,
            "cart_id": self.cart_id,
            "external_order_id": self.external_order_id,
        }


@dataclass(frozen=True, slots=True)
class OrderBundle:
    """An order with its lines and shipping addresses; `embedded` when one call sufficed."""

    order: Order
    products: list[OrderProduct]
    shipping_addresses: list[OrderShippingAddress]
    embedded: bool = field(default=False, compare=False)


class BigCommerceClient:
    """The API of one store. Cheap to hold; all state lives in its `StoreSession`."""

    def __init__(self, session: StoreSession) -> None:
        self.session = session

    @property
    def store_hash(self) -> str:
        return self.session.store_hash

    def __repr__(self) -> str:
        return f"BigCommerceClient(store_hash={self.store_hash!r})"

    # -- Orders V2: orders ------------------------------------------------------------------------

    async def get_order(self, order_id: int, *, include: Sequence[str] = ()) -> Order:
        """`GET /v2/orders/{id}`. Any consignment include is sent with
        `consignment_structure=object`, as the spec requires."""
        return _one(Order, await self._get(f"/v2/orders/{order_id}", _include(include)))

    async def get_order_bundle(self, order_id: int) -> OrderBundle:
        """The order, all its lines and its shipping addresses, in one call when possible.

        `include=consignments.line_items&consignment_structure=object` embeds the products
        response in each consignment and the shipping consignments carry the addresses
        (orders.v2.oas2.yml, `order_includes`). The spec does not say whether the embedded lines
        are paged like `/products` (50 by default), nor that a shipping consignment's `id` is
        the `order_address_id`, so the embedded data is used only when it is complete by the
        order's own counts; otherwise (and when the include is not honoured) the products and
        shipping addresses are read from their own endpoints.
        """
        order = await self.get_order(order_id, include=(ONE_CALL_INCLUDE,))
        return embedded_bundle(order) or await self.complete_bundle(order)

    async def complete_bundle(self, order: Order) -> OrderBundle:
        """The bundle of an order read without usable embedded lines: its products and shipping
        addresses from their own endpoints."""
        products = await self.list_order_products(order.id)
        addresses = await self.list_shipping_addresses(order.id)
        return OrderBundle(order, products, addresses)

    async def iter_order_pages(
        self,
        filters: OrderFilter | None = None,
        *,
        sort: OrderSortField = "id",
        descending: bool = False,
        limit: int = MAX_PAGE_SIZE,
        first_page: int = 1,
        include: Sequence[str] = (),
    ) -> AsyncIterator[list[Order]]:
        """`GET /v2/orders`, one list per page, until a page is short or empty (204 or `[]`).

        For reconciliation: `OrderFilter(min_date_modified=watermark - overlap)` with
        `sort="date_modified"`; page-based paging over a changing set can skip or repeat rows,
        so de-duplicate on (id, date_modified) and overlap the watermark.
        """
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        params: dict[str, Any] = {
            **(filters or OrderFilter()).params(),
            **_include(include),
            "sort": f"{sort}:{'desc' if descending else 'asc'}",
            "limit": limit,
        }
        async for page in self._pages(Order, "/v2/orders", params, limit, first_page):
            yield page

    async def list_orders_page(
        self,
        filters: OrderFilter | None = None,
        *,
        sort: OrderSortField = "id",
        descending: bool = False,
        limit: int = MAX_PAGE_SIZE,
        page: int = 1,
        include: Sequence[str] = (),
    ) -> list[Order]:
        """One page of `GET /v2/orders` (204 or `[]`: none), for callers that know one page
        holds what they want (an id range no wider than `limit`)."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        params: dict[str, Any] = {
            **(filters or OrderFilter()).params(),
            **_include(include),
            "sort": f"{sort}:{'desc' if descending else 'asc'}",
            "limit": limit,
            "page": page,
        }
        return _many(Order, await self._get("/v2/orders", params))

    async def count_orders(self, filters: OrderFilter | None = None) -> OrdersCount:
        """`GET /v2/orders/count`: the total and the count per status."""
        params = (filters or OrderFilter()).params()
        return _one(OrdersCount, await self._get("/v2/orders/count", params))

    async def update_order_status(self, order_id: int, status_id: int) -> Order:
        """`PUT /v2/orders/{id}` with only `status_id`: a PUT that names products or fees would
        reset discounts or replace fees (orders.v2.oas2.yml, Update an Order)."""
        reply = await self.session.request(
            "PUT", f"/v2/orders/{order_id}", body={"status_id": status_id}
        )
        return _one(Order, reply)

    async def list_order_statuses(self) -> list[OrderStatus]:
        """`GET /v2/order_statuses`."""
        return _many(OrderStatus, await self._get("/v2/order_statuses"))

    # -- Orders V2: sub-resources -----------------------------------------------------------------

    async def list_order_products(self, order_id: int) -> list[OrderProduct]:
        """`GET /v2/orders/{id}/products`, every page."""
        return await self._all(OrderProduct, f"/v2/orders/{order_id}/products")

    async def list_shipping_addresses(self, order_id: int) -> list[OrderShippingAddress]:
        """`GET /v2/orders/{id}/shipping_addresses`, every page."""
        return await self._all(OrderShippingAddress, f"/v2/orders/{order_id}/shipping_addresses")

    async def list_order_coupons(self, order_id: int) -> list[OrderCoupon]:
        """`GET /v2/orders/{id}/coupons`, every page."""
        return await self._all(OrderCoupon, f"/v2/orders/{order_id}/coupons")

    # -- Orders V2: shipments ---------------------------------------------------------------------

    async def list_shipments(self, order_id: int) -> list[Shipment]:
        """`GET /v2/orders/{id}/shipments`, every page; 204 (no shipments) is an empty list."""
        return await self._all(Shipment, f"/v2/orders/{order_id}/shipments")

    async def get_shipment(self, order_id: int, shipment_id: int) -> Shipment:
        path = f"/v2/orders/{order_id}/shipments/{shipment_id}"
        return _one(Shipment, await self._get(path))

    async def create_shipment(self, order_id: int, shipment: ShipmentCreate) -> Shipment:
        """`POST /v2/orders/{id}/shipments`. Not retried once it may have reached BigCommerce:
        on `OutcomeUnknownError`, list the shipments before creating it again."""
        reply = await self.session.request(
            "POST", f"/v2/orders/{order_id}/shipments", body=shipment.body()
        )
        return _one(Shipment, reply)

    async def delete_shipment(self, order_id: int, shipment_id: int) -> None:
        """`DELETE /v2/orders/{id}/shipments/{shipment_id}` (a retry finding it gone is done)."""
        await self.session.request("DELETE", f"/v2/orders/{order_id}/shipments/{shipment_id}")

    async def update_shipment(
        self, order_id: int, shipment_id: int, update: ShipmentUpdate
    ) -> Shipment:
        """`PUT /v2/orders/{id}/shipments/{shipment_id}`."""
        path = f"/v2/orders/{order_id}/shipments/{shipment_id}"
        return _one(Shipment, await self.session.request("PUT", path, body=update.body()))

    # -- Orders V3: transactions, refunds, metafields ---------------------------------------------

    async def list_transactions(self, order_id: int) -> list[Transaction]:
        """`GET /v3/orders/{id}/transactions`; 204 (none) is an empty list."""
        return await self._all_v3(Transaction, f"/v3/orders/{order_id}/transactions", paged=False)

    async def create_refund_quote(self, order_id: int, request: RefundQuoteRequest) -> RefundQuote:
        """`POST /v3/orders/{id}/payment_actions/refund_quotes`. Retried like a read: a quote
        only calculates amounts and refund methods and creates nothing."""
        reply = await self.session.request(
            "POST",
            f"/v3/orders/{order_id}/payment_actions/refund_quotes",
            body=request.body(),
            idempotency=Idempotency.SAFE,
        )
        return _one(RefundQuote, reply)

    async def create_refund(self, order_id: int, refund: RefundCreate) -> Refund:
        """`POST /v3/orders/{id}/payment_actions/refunds`. Moves money, so never sent twice
        blindly: on `OutcomeUnknownError`, read the order's refunds first. Refunds of one order
        must be sequential (the spec); serialise them per order."""
        reply = await self.session.request(
            "POST", f"/v3/orders/{order_id}/payment_actions/refunds", body=refund.body()
        )
        return _one(Refund, reply)

    async def list_order_refunds(self, order_id: int) -> list[Refund]:
        """`GET /v3/orders/{id}/payment_actions/refunds`."""
        path = f"/v3/orders/{order_id}/payment_actions/refunds"
        return await self._all_v3(Refund, path, paged=False)

    async def get_refund(self, refund_id: int) -> Refund:
        """`GET /v3/orders/payment_actions/refunds/{refund_id}`."""
        path = f"/v3/orders/payment_actions/refunds/{refund_id}"
        return _one(Refund, await self._get(path))

    async def iter_refund_pages(
        self,
        *,
        created_min: datetime | None = None,
        created_max: datetime | None = None,
        order_ids: Sequence[int] = (),
        limit: int = MAX_PAGE_SIZE,
    ) -> AsyncIterator[list[Refund]]:
        """`GET /v3/orders/payment_actions/refunds` across the store, by refund id ascending,
        one list per page: the refund-reconciliation feed (`created:min` in RFC 3339)."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        params: dict[str, Any] = {
            "created:min": None if created_min is None else format_rfc3339(created_min),
            "created:max": (
                None if created_max is None else format_rfc3339(created_max, round_up=True)
            ),
            "order_id:in": ",".join(str(i) for i in order_ids) or None,
            "limit": limit,
        }
        async for page in self._pages(Refund, "/v3/orders/payment_actions/refunds", params, limit):
            yield page

    async def list_order_metafields(
        self, order_id: int, *, namespace: str | None = None, key: str | None = None
    ) -> list[Metafield]:
        """`GET /v3/orders/{id}/metafields`, every page (only our API account's metafields)."""
        params = {"namespace": namespace, "key": key}
        return await self._all_v3(Metafield, f"/v3/orders/{order_id}/metafields", params)

    async def create_order_metafield(self, order_id: int, metafield: MetafieldWrite) -> Metafield:
        """`POST /v3/orders/{id}/metafields`. On `OutcomeUnknownError` list before retrying
        (a second create of the same namespace and key is refused with 409)."""
        reply = await self.session.request(
            "POST", f"/v3/orders/{order_id}/metafields", body=metafield.body()
        )
        return _one(Metafield, reply)

    async def update_order_metafield(
        self, order_id: int, metafield_id: int, metafield: MetafieldWrite
    ) -> Metafield:
        """`PUT /v3/orders/{id}/metafields/{metafield_id}`."""
        path = f"/v3/orders/{order_id}/metafields/{metafield_id}"
        return _one(Metafield, await self.session.request("PUT", path, body=metafield.body()))

    # -- Webhooks V3 ------------------------------------------------------------------------------

    async def list_hooks(
        self,
        *,
        is_active: bool | None = None,
        scope: str | None = None,
        destination: str | None = None,
    ) -> list[Webhook]:
        """`GET /v3/hooks`, every page: the hooks of this token's API account."""
        params = {"is_active": is_active, "scope": scope, "destination": destination}
        return await self._all_v3(Webhook, "/v3/hooks", params)

    async def get_hook(self, hook_id: int) -> Webhook:
        return _one(Webhook, await self._get(f"/v3/hooks/{hook_id}"))

    async def create_hook(self, hook: HookCreate) -> Webhook:
        """`POST /v3/hooks`. On `OutcomeUnknownError` list the hooks first (one hook per scope
        and destination is allowed, so a blind repeat would be refused)."""
        return _one(Webhook, await self.session.request("POST", "/v3/hooks", body=hook.body()))

    async def update_hook(self, hook_id: int, update: HookUpdate) -> Webhook:
        """`PUT /v3/hooks/{id}`, e.g. `HookUpdate(is_active=True)` to re-enable a hook."""
        reply = await self.session.request("PUT", f"/v3/hooks/{hook_id}", body=update.body())
        return _one(Webhook, reply)

    async def delete_hook(self, hook_id: int) -> Webhook | None:
        """`DELETE /v3/hooks/{id}`: the deleted hook, or None when the body is empty (also when
        a retry found it already deleted by an unanswered earlier attempt)."""
        reply = await self.session.request("DELETE", f"/v3/hooks/{hook_id}")
        return None if _payload(reply) is None else _one(Webhook, reply)

    async def get_hooks_admin(self, *, is_active: bool | None = None) -> HooksAdmin:
        """`GET /v3/hooks/admin`: notification e-mails, hook statuses, blocked domains."""
        return _one(HooksAdmin, await self._get("/v3/hooks/admin", {"is_active": is_active}))

    async def update_hooks_admin(self, emails: Sequence[str]) -> None:
        """`PUT /v3/hooks/admin`: upsert the e-mails told about deactivation and blocklisting."""
        await self.session.request("PUT", "/v3/hooks/admin", body={"emails": list(emails)})

    # -- plumbing ---------------------------------------------------------------------------------

    async def _get(self, path: str, params: Params | None = None) -> Reply:
        return await self.session.request("GET", path, params=params)

    async def _pages(
        self,
        model: type[M],
        path: str,
        params: dict[str, Any],
        limit: int,
        first_page: int = 1,
    ) -> AsyncIterator[list[M]]:
        """Page-numbered paging. Stops at an empty page, at the last page V3's
        `meta.pagination` announces, or (V2, which has no meta) at a page shorter than `limit`."""
        page = first_page
        previous: object = None
        while True:
            reply = await self._get(path, {**params, "page": page, "limit": limit})
            payload = _payload(reply)
            if payload is not None and payload == previous:
                raise self._format_error(path, "the same page came back twice (page ignored?)")
            items = _many(model, reply)
            if items:
                yield items
            total_pages = _total_pages(reply)
            if len(items) == 0 or (
                page >= total_pages if total_pages is not None else len(items) < limit
            ):
                return
            previous = payload
            page += 1

    async def _all(
        self, model: type[M], path: str, params: dict[str, Any] | None = None
    ) -> list[M]:
        result: list[M] = []
        async for page in self._pages(model, path, params or {}, MAX_PAGE_SIZE):
            result.extend(page)
        return result

    async def _all_v3(
        self,
        model: type[M],
        path: str,
        params: dict[str, Any] | None = None,
        *,
        paged: bool = True,
    ) -> list[M]:
        if not paged:
            return _many(model, await self._get(path, params))
        return await self._all(model, path, params)

    def _format_error(self, path: str, summary: str) -> ResponseFormatError:
        return ResponseFormatError(summary, store_hash=self.store_hash, method="GET", path=path)


def _include(include: Sequence[str]) -> dict[str, str]:
    if not include:
        return {}
    params = {"include": ",".join(include)}
    if any(item.startswith("consignments") for item in include):
        params["consignment_structure"] = "object"
    return params


def _payload(reply: Reply) -> object:
    return unwrap(reply.body)


def _total_pages(reply: Reply) -> int | None:
    """V3's `meta.pagination.total_pages`, when the response has one."""
    body = reply.body
    if isinstance(body, dict):
        meta = body.get("meta")
        if isinstance(meta, dict) and isinstance(meta.get("pagination"), dict):
            return Pagination.model_validate(meta["pagination"]).total_pages
    return None


def _one(model: type[M], reply: Reply) -> M:
    payload = _payload(reply)
    if not isinstance(payload, dict):
        raise _shape_error(reply, model, "expected an object")
    return _validate(model, payload, reply)


def _many(model: type[M], reply: Reply) -> list[M]:
    payload = _payload(reply)
    if payload is None or payload == []:
        return []
    if not isinstance(payload, list):
        raise _shape_error(reply, model, "expected a list")
    return [_validate(model, item, reply) for item in payload]


def _validate(model: type[M], item: object, reply: Reply) -> M:
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise _shape_error(reply, model, f"{where}: {first['msg']}") from None


def _shape_error(reply: Reply, model: type[BaseModel], why: str) -> BigCommerceError:
    return ResponseFormatError(
        f"not a {model.__name__}: {why}",
        store_hash=reply.store_hash,
        method=reply.method,
        path=reply.path,
        status=reply.status,
    )


def embedded_bundle(order: Order) -> OrderBundle | None:
    """The bundle an order read with `ONE_CALL_INCLUDE` carries, when it is complete by the
    order's own counts (see `get_order_bundle`); None when its sub-resources must be read. The
    same for an order from `GET /v2/orders` with that include as from `GET /v2/orders/{id}`."""
    consignments = order.consignments
    if isinstance(consignments, OrderConsignments):
        lines = consignments.line_items()
        addresses = _addresses_from(consignments, order)
        if lines is not None and addresses is not None and len(lines) < V2_DEFAULT_PAGE_SIZE:
            return OrderBundle(order, lines, addresses, embedded=True)
    return None


def _addresses_from(
    consignments: OrderConsignments, order: Order
) -> list[OrderShippingAddress] | None:
    """The shipping consignments as shipping addresses, when they can be trusted to be all of
    them and their ids are the lines' `order_address_id`s."""
    shipping = consignments.shipping
    if order.shipping_address_count is not None and len(shipping) != order.shipping_address_count:
        return None
    addresses: list[OrderShippingAddress] = []
    for consignment in shipping:
        ids = {
            line.order_address_id
            for line in consignment.line_items
            if isinstance(line, OrderProduct) and line.order_address_id is not None
        }
        if ids != {consignment.id}:
            return None
        fields = consignment.model_dump(exclude={"line_items"})
        addresses.append(OrderShippingAddress.model_validate({**fields, "order_id": order.id}))
    return addresses
