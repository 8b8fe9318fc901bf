"""The BigCommerce client against the store simulator running as a real process, over loopback.

Every test talks to `python -m local.bigcommerce` through the client's own pooled httpx client;
the transport under it (`ConformanceTransport`) wraps a real `httpx.AsyncHTTPTransport` and
holds every request body, query parameter and response to the official OpenAPI files
(orders.v2.oas2.yml, orders.v3.yml, webhooks.v3.yml). A violation fails the call at once and is
checked again at teardown, with any error status the spec does not list that the test did not
provoke on purpose (`traffic.allow`).

Covered here: every Orders V2, Orders V3 and Webhooks V3 operation of `BigCommerceClient`, with
the store's real outcome read back; retries of idempotent calls after injected 503s, and
`OutcomeUnknownError` (one attempt, nothing blindly resent) for creates. Pacing and the rate
budget's acceptance test are in test_bigcommerce_rate_budget_e2e.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import BaseModel, SecretStr

from local.bigcommerce.conformance import NonConformance, check_request
from local.bigcommerce.webhooks.receiver import RecordingReceiver
from shared.bigcommerce import (
    BadRequestError,
    BigCommerceClient,
    BigCommerceClients,
    ConflictError,
    NotFoundError,
    OrderBundle,
    OrderFilter,
    OutcomeUnknownError,
    UnauthorizedError,
    UnprocessableError,
)
from shared.bigcommerce.requests import (
    HookCreate,
    HookUpdate,
    MetafieldWrite,
    RefundCreate,
    RefundLine,
    RefundQuoteRequest,
    ShipmentCreate,
    ShipmentLine,
    ShipmentUpdate,
)
from shared.config.settings import StoreSettings
from tests.support.bigcommerce_sim import (
    STORE_A,
    STORE_B,
    WEBHOOK_SECRET,
    ConformanceTransport,
    SimAdmin,
    SimulatorProcess,
    check_query,
    running_simulator,
)

pytestmark = pytest.mark.e2e

# Roomy enough that no functional test meets the quota; pacing has its own module.
ROOMY_QUOTA = "10000/30"
AWAITING_FULFILLMENT, AWAITING_SHIPMENT = 11, 9
SHIPPED, PARTIALLY_SHIPPED, REFUNDED, PARTIALLY_REFUNDED = 2, 3, 4, 14
ORDER_PREFIX = f"/stores/{STORE_A}/v2/orders"


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorProcess]:
    with running_simulator() as process:
        yield process


@pytest.fixture
async def admin(simulator: SimulatorProcess) -> AsyncIterator[SimAdmin]:
    async with SimAdmin(simulator) as sim_admin:
        await sim_admin.reset()
        await sim_admin.put_settings(quota=ROOMY_QUOTA)
        yield sim_admin


@pytest.fixture
async def traffic() -> AsyncIterator[ConformanceTransport]:
    transport = ConformanceTransport()
    yield transport
    assert transport.violations == []
    assert transport.unexpected() == [], "error statuses the spec does not document"
    assert transport.responses_checked > 0


@pytest.fixture
async def clients(
    simulator: SimulatorProcess, admin: SimAdmin, traffic: ConformanceTransport
) -> AsyncIterator[BigCommerceClients]:
    # Backoff at its shortest (jitter 0): 0.25 s, then 0.5 s.
    registry = simulator.clients(transport=traffic, rng=lambda: 0.0)
    yield registry
    await registry.aclose()


@pytest.fixture
def store(clients: BigCommerceClients) -> BigCommerceClient:
    return clients.get(STORE_A)


async def bundles(store: BigCommerceClient, ids: list[int]) -> list[OrderBundle]:
    return [await store.get_order_bundle(order_id) for order_id in ids]


def declared(model: BaseModel) -> dict[str, Any]:
    """The fields the model declares, without the extras BigCommerce added."""
    return model.model_dump(include=set(type(model).model_fields))


def physical(bundle: OrderBundle) -> list[int]:
    """Indexes of the lines that ship."""
    return [i for i, p in enumerate(bundle.products) if p.type == "physical"]


# -- Orders V2: reading ----------------------------------------------------------------------


async def test_orders_read_back_exactly_what_the_store_holds(
    admin: SimAdmin, store: BigCommerceClient, traffic: ConformanceTransport
) -> None:
    made = await admin.generate(STORE_A, 12, seed=21, incomplete_share=0)
    async with admin.api(STORE_A) as raw:
        for order_id in made.ids:
            order = await store.get_order(order_id)
            assert (order.id, order.status_id) == (order_id, made.statuses[order_id])
            as_stored = (await raw.get(f"/v2/orders/{order_id}")).json()
            assert order == type(order).model_validate(as_stored)

    coupons_seen = 0
    for bundle in await bundles(store, made.ids):
        order = bundle.order
        assert bundle.embedded, "include=consignments.line_items answered in one call"
        assert bundle.products == await store.list_order_products(order.id)
        # Same addresses; only their `shipping_quotes` links name different resources.
        listed = await store.list_shipping_addresses(order.id)
        assert [declared(a) for a in bundle.shipping_addresses] == [declared(a) for a in listed]
        assert sum(p.quantity for p in bundle.products) == order.items_total
        assert {p.order_id for p in bundle.products} == {order.id}
        assert len(bundle.shipping_addresses) == order.shipping_address_count
        coupons = await store.list_order_coupons(order.id)
        coupons_seen += len(coupons)
        assert {c.order_id for c in coupons} <= {order.id}
        assert sum((c.discount or Decimal(0) for c in coupons), Decimal(0)) == (
            order.coupon_discount or Decimal(0)
        )
    assert coupons_seen > 0
    # One request per bundle, then one for each list read back above.
    assert len(await admin.requests(store_hash=STORE_A, path_prefix=ORDER_PREFIX)) == 12 * 6

    statuses = await store.list_order_statuses()
    assert [s.id for s in statuses] == list(range(15))
    assert {s.id: s.name for s in statuses}[SHIPPED] == "Shipped"

    with pytest.raises(NotFoundError) as missing:
        await store.get_order(999_999)
    assert missing.value.status == 404  # documented; its V2 error body was validated too


async def test_a_status_update_is_read_back_and_advances_date_modified(
    admin: SimAdmin, store: BigCommerceClient
) -> None:
    made = await admin.generate(STORE_A, 5, seed=4, incomplete_share=0)
    order_id = next(i for i in made.ids if made.statuses[i] == AWAITING_FULFILLMENT)
    before = await store.get_order(order_id)
    waiting = (await store.count_orders(OrderFilter(status_id=AWAITING_SHIPMENT))).count
    await admin.set_clock(advance_seconds=120)

    updated = await store.update_order_status(order_id, AWAITING_SHIPMENT)

    assert updated.status_id == AWAITING_SHIPMENT
    again = await store.get_order(order_id)
    assert (again.status_id, again.status) == (AWAITING_SHIPMENT, "Awaiting Shipment")
    assert again.date_modified - before.date_modified >= timedelta(seconds=120)
    assert again.date_created == before.date_created
    after = await store.count_orders(OrderFilter(status_id=AWAITING_SHIPMENT))
    assert after.count == waiting + 1
    # What reconciliation reads: changed since a watermark, oldest change first.
    watermark = before.date_modified + timedelta(seconds=60)
    changed = [
        o.id
        async for page in store.iter_order_pages(
            OrderFilter(min_date_modified=watermark), sort="date_modified"
        )
        for o in page
    ]
    assert changed == [order_id]
    (put,) = await admin.requests(store_hash=STORE_A, method="PUT")
    assert (put.path, put.status) == (f"{ORDER_PREFIX}/{order_id}", 200)


async def test_paging_returns_every_order_exactly_once_and_the_count_agrees(
    admin: SimAdmin, store: BigCommerceClient
) -> None:
    made = await admin.generate(STORE_A, 520, seed=8, incomplete_share=0, spread_seconds=86_400)

    pages = [page async for page in store.iter_order_pages()]

    assert [len(page) for page in pages] == [250, 250, 20]
    seen = [order.id for page in pages for order in page]
    assert seen == made.ids, "every order once, in id order"
    listed = await admin.requests(store_hash=STORE_A, path_prefix=ORDER_PREFIX)
    assert [(r.path, r.status) for r in listed] == [(ORDER_PREFIX, 200)] * 3
    assert [parse_qs(r.query)["page"] for r in listed] == [["1"], ["2"], ["3"]]
    assert {parse_qs(r.query)["limit"][0] for r in listed} == {"250"}

    count = await store.count_orders()
    assert count.count == 520
    assert {s.id: s.count for s in count.statuses if s.count} == dict(
        Counter(made.statuses.values())
    )

    tail = made.ids[300:]
    newest_first = [
        o.id
        async for page in store.iter_order_pages(OrderFilter(min_id=tail[0]), descending=True)
        for o in page
    ]
    assert newest_first == tail[::-1]
    assert (await store.count_orders(OrderFilter(min_id=tail[0]))).count == len(tail)

    # Date filters go out as RFC 2822 and are inclusive at both ends.
    created = sorted(o.date_created for page in pages for o in page)
    low, high = created[100], created[399]
    window = OrderFilter(min_date_created=low, max_date_created=high)
    in_window = [o.id async for page in store.iter_order_pages(window, limit=100) for o in page]
    expected = [o.id for page in pages for o in page if low <= o.date_created <= high]
    assert sorted(in_window) == sorted(expected)
    assert len(expected) >= 300
    assert (await store.count_orders(window)).count == len(expected)


# -- Orders V2: shipments --------------------------------------------------------------------


async def test_shipments_move_the_order_through_partially_shipped_to_shipped(
    admin: SimAdmin, store: BigCommerceClient, traffic: ConformanceTransport
) -> None:
    made = await admin.generate(STORE_A, 40, seed=3, incomplete_share=0)
    candidates = [i for i in made.ids if made.statuses[i] == AWAITING_FULFILLMENT]
    bundle = next(
        b
        for b in await bundles(store, candidates)
        if len(b.shipping_addresses) == 1 and sum(b.products[i].quantity for i in physical(b)) >= 2
    )
    order_id, address_id = bundle.order.id, bundle.shipping_addresses[0].id
    lines = [bundle.products[i] for i in physical(bundle)]
    assert await store.list_shipments(order_id) == []  # 204: no shipments yet

    first = await store.create_shipment(
        order_id,
        ShipmentCreate(
            order_address_id=address_id,
            items=[ShipmentLine(order_product_id=lines[0].id, quantity=1)],
            tracking_number="1Z999",
            shipping_provider="ups",
        ),
    )
    assert [(i.order_product_id, i.quantity) for i in first.items] == [(lines[0].id, 1)]
    assert first.tracking_number == "1Z999"
    assert (await store.get_order(order_id)).status_id == PARTIALLY_SHIPPED
    assert await store.get_shipment(order_id, first.id) == first

    renamed = await store.update_shipment(
        order_id, first.id, ShipmentUpdate(tracking_number="1Z-NEW", comments="relabelled")
    )
    assert renamed.tracking_number == "1Z-NEW"
    read = await store.get_shipment(order_id, first.id)
    assert (read.tracking_number, read.comments) == ("1Z-NEW", "relabelled")

    left = {line.id: line.quantity for line in lines}
    left[lines[0].id] -= 1
    traffic.allow(400)  # the spec lists only 201 for this POST
    with pytest.raises(BadRequestError) as refused:
        await store.create_shipment(
            order_id,
            ShipmentCreate(
                order_address_id=address_id,
                items=[ShipmentLine(order_product_id=lines[0].id, quantity=left[lines[0].id] + 1)],
            ),
        )
    assert refused.value.status == 400
    assert "greater than the quantity available to ship" in str(refused.value)
    assert [s.id for s in await store.list_shipments(order_id)] == [first.id]

    rest = [ShipmentLine(order_product_id=i, quantity=q) for i, q in left.items() if q]
    second = await store.create_shipment(
        order_id, ShipmentCreate(order_address_id=address_id, items=rest)
    )
    shipped = await store.get_order(order_id)
    assert shipped.status_id == SHIPPED
    assert shipped.date_shipped is not None
    assert shipped.items_shipped == sum(line.quantity for line in lines)
    products = await store.list_order_products(order_id)
    assert {p.id: p.quantity_shipped for p in products if p.type == "physical"} == {
        line.id: line.quantity for line in lines
    }
    assert [s.id for s in await store.list_shipments(order_id)] == [first.id, second.id]

    # A duplicate made by an overlapping run is deleted: its quantities are unshipped again.
    await store.delete_shipment(order_id, second.id)
    assert [s.id for s in await store.list_shipments(order_id)] == [first.id]
    products = await store.list_order_products(order_id)
    assert {p.id: p.quantity_shipped for p in products if p.type == "physical"} == {
        line.id: line.quantity - left[line.id] for line in lines
    }
    assert traffic.undocumented_statuses() == [400]


# -- Orders V3: transactions, refunds, metafields --------------------------------------------


async def card_paid_order(admin: SimAdmin, store: BigCommerceClient) -> int:
    made = await admin.generate(STORE_A, 40, seed=12, incomplete_share=0)
    for order_id in made.ids:
        if made.statuses[order_id] != AWAITING_FULFILLMENT:
            continue
        order = await store.get_order(order_id)
        if order.payment_method in ("Braintree", "Stripe"):
            return order_id
    raise AssertionError("the generator made no card-paid order")


async def test_refund_quote_then_refund_moves_to_partially_refunded_then_refunded(
    admin: SimAdmin, store: BigCommerceClient
) -> None:
    order_id = await card_paid_order(admin, store)
    order = await store.get_order(order_id)
    (purchase,) = await store.list_transactions(order_id)
    assert (purchase.event, purchase.order_id, purchase.amount) == (
        "purchase",
        order_id,
        order.total_inc_tax,
    )
    line = (await store.list_order_products(order_id))[0]

    one_unit = [RefundLine(item_type="PRODUCT", item_id=line.id, quantity=1, reason="damaged")]
    quote = await store.create_refund_quote(order_id, RefundQuoteRequest(items=one_unit))
    assert Decimal(0) < quote.total_refund_amount < order.total_inc_tax
    assert quote.refund_methods[0][0].provider_id == purchase.gateway  # back to the card
    first = await store.create_refund(order_id, RefundCreate.from_quote(one_unit, quote))
    assert (first.order_id, first.total_amount) == (order_id, quote.total_refund_amount)
    assert (await store.get_order(order_id)).status_id == PARTIALLY_REFUNDED

    with pytest.raises(UnprocessableError) as too_many:  # a documented 422, body validated
        await store.create_refund_quote(
            order_id,
            RefundQuoteRequest(
                items=[RefundLine(item_type="PRODUCT", item_id=line.id, quantity=line.quantity)]
            ),
        )
    assert too_many.value.status == 422

    await admin.set_clock(advance_seconds=3600)
    remainder = order.total_inc_tax - first.total_amount
    whole = [RefundLine(item_type="ORDER", item_id=order_id, amount=remainder)]
    rest_quote = await store.create_refund_quote(order_id, RefundQuoteRequest(items=whole))
    assert rest_quote.total_refund_amount == remainder
    second = await store.create_refund(order_id, RefundCreate.from_quote(whole, rest_quote))
    assert (await store.get_order(order_id)).status_id == REFUNDED

    refunds = await store.list_order_refunds(order_id)
    assert [r.id for r in refunds] == [first.id, second.id]
    assert sum((r.total_amount for r in refunds), Decimal(0)) == order.total_inc_tax
    # The single-refund schema has no payment `transaction_id`: compare what both carry.
    fetched = await store.get_refund(second.id)
    assert (fetched.id, fetched.order_id, fetched.total_amount) == (
        second.id,
        order_id,
        remainder,
    )
    assert [(p.provider_id, p.amount) for p in fetched.payments] == [
        (p.provider_id, p.amount) for p in second.payments
    ]
    everything = [
        r.id async for page in store.iter_refund_pages(order_ids=[order_id]) for r in page
    ]
    assert everything == [first.id, second.id]
    assert first.created is not None
    later = [
        r.id
        async for page in store.iter_refund_pages(created_min=first.created + timedelta(minutes=30))
        for r in page
    ]
    assert later == [second.id]
    events = [t.event for t in await store.list_transactions(order_id)]
    assert events == ["purchase", "refund", "refund"]


async def test_order_metafields_are_created_listed_updated_and_unique(
    admin: SimAdmin, store: BigCommerceClient
) -> None:
    (order_id,) = (await admin.generate(STORE_A, 1, seed=2, incomplete_share=0)).ids
    field = MetafieldWrite(namespace="iom", key="sales_order", value="SO-0001")

    created = await store.create_order_metafield(order_id, field)
    assert (created.namespace, created.key, created.value) == ("iom", "sales_order", "SO-0001")
    assert await store.list_order_metafields(order_id, namespace="iom") == [created]
    assert await store.list_order_metafields(order_id, namespace="other") == []

    updated = await store.update_order_metafield(
        order_id, created.id, field.model_copy(update={"value": "SO-0002"})
    )
    assert updated.value == "SO-0002"
    (listed,) = await store.list_order_metafields(order_id, key="sales_order")
    assert (listed.id, listed.value) == (created.id, "SO-0002")

    with pytest.raises(ConflictError) as duplicate:  # a documented 409, body validated
        await store.create_order_metafield(order_id, field)
    assert duplicate.value.status == 409
    assert len(await store.list_order_metafields(order_id)) == 1


# -- Webhooks V3 -----------------------------------------------------------------------------


async def test_hooks_crud_and_admin_and_a_hook_really_delivers(
    admin: SimAdmin, clients: BigCommerceClients, store: BigCommerceClient
) -> None:
    (order_id,) = (await admin.generate(STORE_A, 1, seed=5, incomplete_share=0)).ids
    scope = "store/order/statusUpdated"
    assert await store.list_hooks() == []
    async with RecordingReceiver() as receiver:
        hook = await store.create_hook(
            HookCreate(
                scope=scope, destination=receiver.url, headers={"X-Webhook-Secret": WEBHOOK_SECRET}
            )
        )
        assert (hook.scope, hook.destination, hook.is_active) == (scope, receiver.url, True)
        assert hook.store_hash == STORE_A
        assert await store.get_hook(hook.id) == hook
        assert await store.list_hooks(scope=scope, is_active=True) == [hook]
        assert await store.list_hooks(scope="store/order/created") == []
        assert await clients.get(STORE_B).list_hooks() == [], "hooks belong to their store"

        await store.update_order_status(order_id, AWAITING_SHIPMENT)
        (call,) = await receiver.wait_for(1, timeout=10)
        assert call.headers["x-webhook-secret"] == WEBHOOK_SECRET
        assert (call.payload["scope"], call.payload["data"]["id"]) == (scope, order_id)

        paused = await store.update_hook(hook.id, HookUpdate(is_active=False))
        assert paused.is_active is False
        assert (await store.get_hook(hook.id)).is_active is False
        await store.update_order_status(order_id, AWAITING_FULFILLMENT)
        await admin.drain_webhooks()
        assert len(receiver.calls) == 1, "an inactive hook delivers nothing"

    status = await store.get_hooks_admin()
    assert [(h.id, h.status) for h in status.hooks_list] == [(hook.id, "inactive")]
    assert (await store.get_hooks_admin(is_active=True)).hooks_list == []
    await store.update_hooks_admin(["ops@example.com", "iom@example.com"])
    assert (await store.get_hooks_admin()).emails == ["ops@example.com", "iom@example.com"]

    deleted = await store.delete_hook(hook.id)
    assert deleted is not None
    assert deleted.id == hook.id
    with pytest.raises(NotFoundError):  # a documented 404, body validated
        await store.get_hook(hook.id)
    assert await store.list_hooks() == []
    deliveries = await admin.deliveries(store_hash=STORE_A)
    assert [(d["hook_id"], d["scope"]) for d in deliveries] == [(hook.id, scope)]


# -- stores and credentials ------------------------------------------------------------------


async def test_each_store_has_its_own_data_budget_and_credentials(
    admin: SimAdmin,
    simulator: SimulatorProcess,
    clients: BigCommerceClients,
    traffic: ConformanceTransport,
) -> None:
    made_a = await admin.generate(STORE_A, 3, seed=1, incomplete_share=0)
    made_b = await admin.generate(STORE_B, 2, seed=1, incomplete_share=0)
    a, b = clients.get(STORE_A), clients.get(STORE_B)
    assert clients.get(STORE_A) is a, "one client per store per process"

    assert [o.id async for page in a.iter_order_pages() for o in page] == made_a.ids
    assert [o.id async for page in b.iter_order_pages() for o in page] == made_b.ids
    assert (await b.count_orders()).count == 2
    with pytest.raises(NotFoundError):
        await b.get_order(made_a.ids[-1])  # store A's third order does not exist in B

    stats = clients.stats()
    for store_hash, client_stats in stats.items():
        logged = await admin.requests(store_hash=store_hash)
        assert client_stats.requests == len(logged), store_hash
        assert client_stats.rate_limited == client_stats.retries == 0

    # A registry closes its transport: the impostor gets its own.
    impostor_traffic = ConformanceTransport(allowed={401})  # /v2/orders/{id}: only 200, 404
    impostor = simulator.clients(transport=impostor_traffic, tokens={STORE_A: "not-the-token"})
    try:
        with pytest.raises(UnauthorizedError) as refused:
            await impostor.get(STORE_A).get_order(made_a.ids[0])
    finally:
        await impostor.aclose()
    assert refused.value.status == 401
    assert "not-the-token" not in str(refused.value)
    assert impostor_traffic.violations == []
    assert impostor_traffic.undocumented_statuses() == [401]
    assert traffic.undocumented == []
    logged = await admin.requests(store_hash=STORE_A, path_prefix=f"{ORDER_PREFIX}/")
    assert [(r.path, r.status) for r in logged] == [(f"{ORDER_PREFIX}/{made_a.ids[0]}", 401)]


# -- retries and unknown outcomes ------------------------------------------------------------


async def test_503s_on_a_read_are_retried_until_it_succeeds(
    admin: SimAdmin,
    clients: BigCommerceClients,
    store: BigCommerceClient,
    traffic: ConformanceTransport,
) -> None:
    made = await admin.generate(STORE_A, 2, seed=6, incomplete_share=0)
    order_id = made.ids[0]
    path = f"{ORDER_PREFIX}/{order_id}"
    await admin.add_fault(path, 503, count=2, method="GET")
    traffic.allow(503)  # GET /orders/{order_id} documents only 200 and 404

    order = await store.get_order(order_id)

    assert (order.id, order.status_id) == (order_id, made.statuses[order_id])
    logged = await admin.requests(store_hash=STORE_A, path_prefix=path)
    assert [(r.method, r.status) for r in logged] == [("GET", 503), ("GET", 503), ("GET", 200)]
    assert clients.stats()[STORE_A].retries == 2
    assert await admin.faults() == [], "both injected faults were used up"
    assert traffic.undocumented_statuses() == [503, 503]


async def test_a_503_on_a_shipment_post_is_an_unknown_outcome_sent_once(
    admin: SimAdmin, store: BigCommerceClient, traffic: ConformanceTransport
) -> None:
    made = await admin.generate(STORE_A, 30, seed=3, incomplete_share=0)
    candidates = [i for i in made.ids if made.statuses[i] == AWAITING_FULFILLMENT]
    bundle = next(b for b in await bundles(store, candidates) if physical(b))
    order_id = bundle.order.id
    line = bundle.products[physical(bundle)[0]]
    assert line.order_address_id is not None
    shipment = ShipmentCreate(
        order_address_id=line.order_address_id,
        items=[ShipmentLine(order_product_id=line.id, quantity=1)],
    )
    path = f"{ORDER_PREFIX}/{order_id}/shipments"
    await admin.add_fault(path, 503, count=3, method="POST")
    traffic.allow(503)  # POST /orders/{order_id}/shipments documents only 201

    with pytest.raises(OutcomeUnknownError) as unknown:
        await store.create_shipment(order_id, shipment)

    assert (unknown.value.status, unknown.value.method) == (503, "POST")
    posts = await admin.requests(store_hash=STORE_A, method="POST", path_prefix=path)
    assert [r.status for r in posts] == [503], "never sent twice blindly"
    # What the docstring asks of the caller: look before sending it again.
    assert await store.list_shipments(order_id) == []
    await admin.clear_faults()
    created = await store.create_shipment(order_id, shipment)
    assert [s.id for s in await store.list_shipments(order_id)] == [created.id]
    posts = await admin.requests(store_hash=STORE_A, method="POST", path_prefix=path)
    assert [r.status for r in posts] == [503, 201]


async def test_a_503_on_a_refund_is_an_unknown_outcome_but_a_quote_is_retried(
    admin: SimAdmin, store: BigCommerceClient, traffic: ConformanceTransport
) -> None:
    order_id = await card_paid_order(admin, store)
    line = (await store.list_order_products(order_id))[0]
    items = [RefundLine(item_type="PRODUCT", item_id=line.id, quantity=1)]
    v3 = f"/stores/{STORE_A}/v3/orders/{order_id}/payment_actions"
    await admin.add_fault(f"{v3}/refund_quotes", 503, count=1, method="POST")
    traffic.allow(503)  # refund_quotes documents 201 and 422; refunds documents its 503

    quote = await store.create_refund_quote(order_id, RefundQuoteRequest(items=items))

    quotes = await admin.requests(store_hash=STORE_A, path_prefix=f"{v3}/refund_quotes")
    assert [r.status for r in quotes] == [503, 201], "a quote creates nothing: retried"
    await admin.add_fault(f"{v3}/refunds", 503, count=3, method="POST")
    with pytest.raises(OutcomeUnknownError):
        await store.create_refund(order_id, RefundCreate.from_quote(items, quote))
    refunds = await admin.requests(store_hash=STORE_A, method="POST", path_prefix=f"{v3}/refunds")
    assert [r.status for r in refunds] == [503], "money is never moved twice blindly"
    assert await store.list_order_refunds(order_id) == []
    assert (await store.get_order(order_id)).status_id == AWAITING_FULFILLMENT
    # The 503 of Create a Refund is documented: its body was validated, not just allowed.
    assert traffic.undocumented_statuses() == [503]


# -- the checker itself ----------------------------------------------------------------------


async def test_the_conformance_checks_are_live_and_fail_the_call() -> None:
    """Non-conforming answers fail the client's call; the Webhooks paths use webhooks.v3.yml."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/v3/hooks/7"):
            return httpx.Response(200, json={"data": {"id": "seven", "is_active": "yes"}})
        return httpx.Response(200, json={"id": "one hundred", "status_id": 11})

    traffic = ConformanceTransport(inner=httpx.MockTransport(answer))
    settings = StoreSettings(
        store_hash=STORE_A,
        access_token=SecretStr("token"),
        webhook_secret=SecretStr(WEBHOOK_SECRET),
        api_url="http://127.0.0.1:9",
    )
    registry = BigCommerceClients([settings], transport=traffic)
    try:
        with pytest.raises(NonConformance, match=r"GET /orders/100 -> 200"):
            await registry.get(STORE_A).get_order(100)
        with pytest.raises(NonConformance, match=r"GET /hooks/7 -> 200(.|\n)*is_active"):
            await registry.get(STORE_A).get_hook(7)
    finally:
        await registry.aclose()
    assert len(traffic.violations) == 2

    hooks = f"/stores/{STORE_A}/v3/hooks"
    with pytest.raises(NonConformance, match="destination"):
        check_request("POST", hooks, {"scope": "store/order/created"})  # webhook_Base
    check_request("PUT", f"{hooks}/admin", {"emails": ["ops@example.com"]})
    check_query("GET", f"/stores/{STORE_A}/v2/orders", [("sort", "id:desc"), ("page", "2")])
    with pytest.raises(NonConformance, match="'bogus' is not documented"):
        check_query("GET", f"/stores/{STORE_A}/v2/orders", [("bogus", "1")])
    with pytest.raises(NonConformance, match="is_active='yes'"):
        check_query("GET", hooks, [("is_active", "yes")])
