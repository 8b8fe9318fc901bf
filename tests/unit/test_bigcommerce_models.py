"""Reading BigCommerce's responses into models, and the client's requests and paging.

The spec examples (reference/*.yml beside the checkout) are parsed as they are published; the
other cases are small inline bodies aimed at one rule each: money as Decimal, the three date
forms, wrapped and flat bodies, 204 and [] as empty, paging, the one-call order read.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import SecretStr, ValidationError

from shared.bigcommerce import BigCommerceClient, BigCommerceClients, OrderFilter
from shared.bigcommerce.dates import format_rfc2822, format_rfc3339, parse_datetime
from shared.bigcommerce.errors import ResponseFormatError
from shared.bigcommerce.models import (
    HooksAdmin,
    Order,
    OrderConsignments,
    OrderCoupon,
    OrderProduct,
    OrdersCount,
    OrderShippingAddress,
    OrderStatus,
    Refund,
    RefundQuote,
    ResourceLink,
    Shipment,
    Transaction,
    Webhook,
    unwrap,
)
from shared.bigcommerce.money import parse_money
from shared.bigcommerce.requests import (
    HookCreate,
    HookUpdate,
    MetafieldWrite,
    RefundCreate,
    RefundLine,
    ShipmentCreate,
    ShipmentLine,
    ShipmentUpdate,
)
from shared.config.settings import StoreSettings

SPECS = Path(__file__).resolve().parents[3] / "shared" / "specs" / "bigcommerce" / "reference"
STORE = StoreSettings(
    store_hash="abc123", access_token=SecretStr("token"), webhook_secret=SecretStr("s")
)
RFC2822 = "Tue, 05 Mar 2019 21:40:11 +0000"
ORDER = {
    "id": 218,
    "status_id": 11,
    "date_created": RFC2822,
    "date_modified": "Mon, 11 Mar 2019 15:17:25 +0000",
    "date_shipped": "",
    "subtotal_ex_tax": "62.6793",
    "subtotal_inc_tax": "67.8400",
    "total_ex_tax": "64.5300",
    "total_inc_tax": "69.8400",
    "shipping_address_count": 1,
}


def line(line_id: int, address_id: int = 7, **extra: Any) -> dict[str, Any]:
    return {
        "id": line_id,
        "order_id": 218,
        "product_id": 77,
        "order_address_id": address_id,
        "quantity": 1,
        "price_ex_tax": "10.0000",
        "price_inc_tax": "11.0000",
        "total_ex_tax": "10.0000",
        "total_inc_tax": "11.0000",
        **extra,
    }


# -- the published examples ------------------------------------------------------------------------


@cache
def spec(name: str) -> dict[str, Any]:
    path = SPECS / name
    if not path.exists():
        pytest.skip(f"the BigCommerce specs are not beside the checkout ({path})")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=loader)  # noqa: S506 - a safe loader
    return loaded


def v2_examples(response: str) -> list[Any]:
    content = spec("orders.v2.oas2.yml")["components"]["responses"][response]["content"]
    values = [e["value"] for e in content["application/json"]["examples"].values()]
    return [item for v in values for item in (v if isinstance(v, list) else [v])]


@pytest.mark.parametrize(
    ("response", "model", "count"),
    [
        ("order_Resp", Order, 2),
        ("orderCollection_Resp", Order, 1),
        ("orderProductsCollection_Resp", OrderProduct, 2),
        ("orderProductLineItem_Resp", OrderProduct, 4),
        ("orderShippingAddressCollection_Resp", OrderShippingAddress, 2),
        ("orderShippingAddress_Resp", OrderShippingAddress, 1),
        ("orderShipmentCollection_Resp", Shipment, 2),
        ("orderShipment_Resp", Shipment, 1),
        ("orderCouponsCollection_Resp", OrderCoupon, 1),
        ("orderStatusCollection_Resp", OrderStatus, 15),
        ("ordersCount_Resp", OrdersCount, 1),
    ],
)
def test_every_orders_v2_example_parses(response: str, model: type[Any], count: int) -> None:
    examples = v2_examples(response)
    assert len(examples) == count
    assert all(isinstance(model.model_validate(e), model) for e in examples)


def test_the_v2_order_example_reads_into_decimals_and_aware_dates() -> None:
    order = Order.model_validate(v2_examples("order_Resp")[0])
    assert order.total_inc_tax == Decimal("69.8400")
    assert order.subtotal_ex_tax == Decimal("62.6793")
    assert order.date_created == datetime(2019, 3, 5, 21, 40, 11, tzinfo=UTC)
    assert order.date_shipped is None  # "" in the example
    assert isinstance(order.products, ResourceLink)
    assert order.billing_address is not None
    assert order.billing_address.form_fields[0].value == "Leave in backyard"
    assert isinstance(order.fees, list)
    assert order.fees[0].cost_ex_tax == Decimal("12.3000")  # spelt cost_exc_tax there
    statuses = OrdersCount.model_validate(v2_examples("ordersCount_Resp")[0])
    assert statuses.count == 133
    assert {s.id for s in statuses.statuses} == set(range(15))


def test_the_consignment_examples_parse_and_only_link_their_lines() -> None:
    examples = spec("orders.v2.oas2.yml")["components"]["schemas"]["orderConsignment_Get"]
    parsed = [OrderConsignments.model_validate(e) for e in examples["x-examples"].values()]
    assert len(parsed) == 4
    shipping = next(p for p in parsed if p.shipping).shipping[0]
    assert shipping.cost_inc_tax == Decimal("6.2")  # a JSON number there, not a float
    assert all(p.line_items() is None for p in parsed)  # links, not embedded lines


def test_the_orders_v3_and_webhooks_v3_examples_parse() -> None:
    v3 = spec("orders.v3.yml")["components"]
    refund_body = v3["responses"]["RefundID_Response"]["content"]["application/json"]
    refund = Refund.model_validate(unwrap(refund_body["examples"]["Example"]["value"]))
    assert refund.total_amount == Decimal("50")
    assert refund.created == datetime(2022, 6, 16, 16, 44, 15, tzinfo=UTC)
    assert refund.items[0].requested_amount is None
    # The transaction example's order_id is the placeholder "string"; real ones are digits.
    example = {**v3["schemas"]["Transaction"]["x-examples"]["Example 1"], "order_id": "180"}
    transaction = Transaction.model_validate(example)
    assert (transaction.order_id, transaction.amount) == (180, Decimal("3.4"))
    hooks = spec("webhooks.v3.yml")["components"]["responses"]["webhook_Resp"]["content"]
    hook = Webhook.model_validate(
        unwrap(hooks["application/json"]["examples"]["application/json"]["value"])
    )
    assert hook.created_at == datetime.fromtimestamp(1561488106, UTC)
    assert "developer-defined" not in repr(hook)  # custom headers carry our secret


# -- money and dates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("12.9900", "12.9900"), ("0.0000", "0"), (5, "5"), (2.7, "2.7"), (0.1, "0.1"), (" 3 ", "3")],
)
def test_money_is_a_decimal_without_binary_noise(raw: object, expected: str) -> None:
    assert parse_money(raw) == Decimal(expected)


@pytest.mark.parametrize("raw", ["", "abc", True, None, "NaN", [1]])
def test_what_is_not_money_is_refused(raw: object) -> None:
    with pytest.raises(ValueError, match="amount"):
        parse_money(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (RFC2822, datetime(2019, 3, 5, 21, 40, 11, tzinfo=UTC)),
        ("Thu, 20 Apr 2017 11:32:00 -0400", datetime(2017, 4, 20, 15, 32, tzinfo=UTC)),
        ("Thu, 20 Apr 2017 11:32:00 -0000", datetime(2017, 4, 20, 11, 32, tzinfo=UTC)),
        ("2022-06-16T16:44:15+00:00", datetime(2022, 6, 16, 16, 44, 15, tzinfo=UTC)),
        ("2019-08-24T14:15:22Z", datetime(2019, 8, 24, 14, 15, 22, tzinfo=UTC)),
        ("2017-04-20T11:32:00.000-04:00", datetime(2017, 4, 20, 15, 32, tzinfo=UTC)),
        ("2019-09-04T00:00:00", datetime(2019, 9, 4, tzinfo=UTC)),
        (1561488106, datetime(2019, 6, 25, 18, 41, 46, tzinfo=UTC)),
        ("1561488106", datetime(2019, 6, 25, 18, 41, 46, tzinfo=UTC)),
    ],
)
def test_every_date_form_becomes_an_aware_datetime(raw: object, expected: datetime) -> None:
    parsed = parse_datetime(raw)
    assert parsed == expected
    assert parsed is not None
    assert parsed.tzinfo is not None


def test_empty_dates_are_none_and_nonsense_is_refused() -> None:
    assert parse_datetime("") is None
    assert parse_datetime(None) is None
    with pytest.raises(ValueError, match="not an RFC 2822"):
        parse_datetime("last Tuesday")


def test_filter_dates_are_written_in_utc_with_inclusive_upper_bounds() -> None:
    moment = datetime(2017, 4, 20, 11, 32, 0, 500_000, tzinfo=timezone(timedelta(hours=-4)))
    assert format_rfc2822(moment) == "Thu, 20 Apr 2017 15:32:00 +0000"
    assert format_rfc2822(moment, round_up=True) == "Thu, 20 Apr 2017 15:32:01 +0000"
    assert format_rfc3339(moment) == "2017-04-20T15:32:00+00:00"
    with pytest.raises(ValueError, match="naive"):
        format_rfc2822(datetime(2017, 4, 20))


# -- tolerance -------------------------------------------------------------------------------------


def test_extra_fields_are_kept_and_missing_essentials_are_refused() -> None:
    order = Order.model_validate({**ORDER, "brand_new_field": {"x": 1}})
    assert order.model_extra == {"brand_new_field": {"x": 1}}
    missing_total = {k: v for k, v in ORDER.items() if k != "total_inc_tax"}
    with pytest.raises(ValidationError, match="total_inc_tax"):
        Order.model_validate(missing_total)
    with pytest.raises(ValidationError, match="date_modified"):
        Order.model_validate({**ORDER, "date_modified": ""})


def test_wrapped_and_flat_bodies_unwrap_to_the_same_object() -> None:
    hook = {"id": 1, "scope": "store/order/*", "destination": "https://x.test/h"}
    assert unwrap({"data": hook, "meta": {}}) == hook
    assert unwrap({"data": hook}) == hook
    assert unwrap(hook) == hook
    # An object that merely has a `data` field besides others is not an envelope.
    assert unwrap({"data": 1, "id": 2}) == {"data": 1, "id": 2}


def test_hooks_admin_parses_statuses_and_blocked_domains() -> None:
    admin = HooksAdmin.model_validate(
        {
            "emails": ["ops@example.com"],
            "hooks_list": [{**_hook(3), "status": "deactivated", "is_active": False}],
            "blocked_domains": [
                {
                    "destination": "https://x.test",
                    "time_left": 120,
                    "reasons": [{"failure_description": "timeout", "count": 9, "timestamp": 1}],
                }
            ],
        }
    )
    assert admin.hooks_list[0].status == "deactivated"
    assert admin.blocked_domains[0].time_left == 120


def test_a_refund_quote_reads_its_refund_methods() -> None:
    quote = RefundQuote.model_validate(
        unwrap(
            {
                "data": {
                    "total_refund_amount": 21.83,
                    "total_refund_tax_amount": 0.83,
                    "rounding": 0,
                    "adjustment": 0,
                    "refund_methods": [
                        [{"provider_id": "braintree", "amount": 21.83, "offline": False}],
                        [
                            {"provider_id": "bankdeposit", "amount": 80.35, "offline": True},
                            {"provider_id": "storecredit", "amount": 39, "offline": False},
                        ],
                    ],
                },
                "meta": {},
            }
        )
    )
    assert quote.total_refund_amount == Decimal("21.83")
    assert [len(m) for m in quote.refund_methods] == [1, 2]


# -- request bodies --------------------------------------------------------------------------------


def test_a_shipment_body_keeps_to_the_spec_limits_and_v2_money_strings() -> None:
    body = ShipmentCreate(
        order_address_id=7,
        items=[ShipmentLine(order_product_id=5, quantity=2)],
        tracking_number="EJ958083578US",
        shipping_provider="usps",
        merchant_shipping_cost=Decimal("1.5"),
    ).body()
    assert body == {
        "order_address_id": 7,
        "items": [{"order_product_id": 5, "quantity": 2}],
        "tracking_number": "EJ958083578US",
        "shipping_provider": "usps",
        "merchant_shipping_cost": "1.5000",
    }
    with pytest.raises(ValidationError, match="50 characters"):
        ShipmentCreate(order_address_id=7, items=[], tracking_number="x" * 51)
    with pytest.raises(ValidationError, match="at least one field"):
        ShipmentUpdate()


def test_refund_lines_need_a_quantity_or_an_amount_by_type() -> None:
    with pytest.raises(ValidationError, match="take a quantity"):
        RefundLine(item_type="PRODUCT", item_id=1)
    with pytest.raises(ValidationError, match="take an amount"):
        RefundLine(item_type="SHIPPING", item_id=1, quantity=1)
    with pytest.raises(ValidationError, match="Extra inputs"):
        RefundLine.model_validate({"item_type": "ORDER", "item_id": 1, "amount": 1, "x": 1})


def test_a_refund_is_built_from_its_quote_with_amounts_as_json_numbers() -> None:
    quote = RefundQuote.model_validate(
        {
            "total_refund_amount": "20.83",
            "refund_methods": [[{"provider_id": "storecredit", "amount": "20.83"}]],
        }
    )
    items = [
        RefundLine(item_type="PRODUCT", item_id=8, quantity=1),
        RefundLine(item_type="SHIPPING", item_id=9, amount=Decimal("10.00")),
    ]
    body = RefundCreate.from_quote(items, quote).body()
    assert body["payments"] == [{"provider_id": "storecredit", "amount": 20.83, "offline": False}]
    assert body["items"][1] == {"item_type": "SHIPPING", "item_id": 9, "amount": 10.0}
    assert json.dumps(body["payments"][0]["amount"]) == "20.83"
    with pytest.raises(ValueError, match="no method 1"):
        RefundCreate.from_quote(items, quote, method=1)


def test_hook_bodies_refuse_plain_http_except_on_loopback_and_hide_headers() -> None:
    hook = HookCreate(
        scope="store/order/*",
        destination="https://fn.example.net/api/webhooks?code=abc",
        headers={"X-Webhook-Secret": "s3cr3t"},
    )
    assert hook.body()["headers"] == {"X-Webhook-Secret": "s3cr3t"}
    assert "s3cr3t" not in repr(hook)
    HookCreate(scope="s", destination="http://127.0.0.1:7071/api/webhooks")
    with pytest.raises(ValidationError, match="https"):
        HookCreate(scope="s", destination="http://example.net/hooks")
    assert HookUpdate(is_active=True).body() == {"is_active": True}
    assert MetafieldWrite(namespace="iom", key="k", value="v").body()["permission_set"] == (
        "app_only"
    )


# -- the client: requests and responses ------------------------------------------------------------


class Store:
    """Answers by path; records every request."""

    def __init__(self, routes: dict[str, Any]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix("/stores/abc123")
        page = request.url.params.get("page")
        answer = self.routes.get(f"{path}?page={page}", self.routes.get(path))
        if answer is None:
            return httpx.Response(404, json={"status": 404, "title": "Not Found"})
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)

    def paths(self) -> list[str]:
        return [r.url.path.removeprefix("/stores/abc123") for r in self.requests]


def client_for(store: Store) -> BigCommerceClient:
    return BigCommerceClients([STORE], transport=httpx.MockTransport(store)).get("abc123")


def _hook(hook_id: int) -> dict[str, Any]:
    return {"id": hook_id, "scope": "store/order/*", "destination": "https://x.test/h"}


async def test_requests_carry_auth_and_json_headers_under_the_store_base() -> None:
    store = Store({"/v3/hooks/1": {"data": _hook(1), "meta": {}}})
    await client_for(store).get_hook(1)
    request = store.requests[0]
    assert str(request.url) == "https://api.bigcommerce.com/stores/abc123/v3/hooks/1"
    assert request.headers["X-Auth-Token"] == "token"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"


async def test_a_store_base_url_can_point_at_the_simulator() -> None:
    store = Store({"/v3/hooks/1": _hook(1)})  # flat, as the webhooks overview shows it
    clients = BigCommerceClients(
        [STORE],
        base_urls={"abc123": "http://127.0.0.1:7072/"},
        transport=httpx.MockTransport(store),
    )
    hook = await clients.get("abc123").get_hook(1)
    assert hook.id == 1
    assert str(store.requests[0].url) == "http://127.0.0.1:7072/stores/abc123/v3/hooks/1"


@pytest.mark.parametrize("empty", [httpx.Response(204), httpx.Response(200, json=[])])
async def test_204_and_an_empty_list_both_mean_none(empty: httpx.Response) -> None:
    store = Store({"/v2/orders/5/shipments": empty, "/v3/orders/5/transactions": empty})
    client = client_for(store)
    assert await client.list_shipments(5) == []
    assert await client.list_transactions(5) == []


async def test_order_products_are_read_across_pages() -> None:
    first = [line(i) for i in range(1, 251)]
    store = Store(
        {
            "/v2/orders/218/products?page=1": first,
            "/v2/orders/218/products?page=2": [line(251), line(252)],
        }
    )
    products = await client_for(store).list_order_products(218)
    assert [p.id for p in products] == list(range(1, 253))
    assert [r.url.params["limit"] for r in store.requests] == ["250", "250"]


async def test_v3_lists_follow_meta_pagination() -> None:
    def page(ids: list[int], current: int) -> dict[str, Any]:
        return {
            "data": [_hook(i) for i in ids],
            "meta": {"pagination": {"total_pages": 2, "current_page": current}},
        }

    store = Store({"/v3/hooks?page=1": page([1, 2], 1), "/v3/hooks?page=2": page([3], 2)})
    hooks = await client_for(store).list_hooks(is_active=False)
    assert [h.id for h in hooks] == [1, 2, 3]
    assert store.requests[0].url.params["is_active"] == "false"


async def test_a_server_ignoring_the_page_number_is_caught() -> None:
    same = [line(i) for i in range(1, 251)]
    with pytest.raises(ResponseFormatError, match="same page came back twice"):
        await client_for(Store({"/v2/orders/218/products": same})).list_order_products(218)


async def test_order_pages_carry_the_filters_and_stop_at_a_short_page() -> None:
    store = Store(
        {
            "/v2/orders?page=1": [{**ORDER, "id": i} for i in (1, 2, 3)],
            "/v2/orders?page=2": [{**ORDER, "id": i} for i in (4, 5)],
        }
    )
    since = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    filters = OrderFilter(min_date_modified=since, status_id=11)
    client = client_for(store)
    pages = [p async for p in client.iter_order_pages(filters, sort="date_modified", limit=3)]
    assert [[o.id for o in p] for p in pages] == [[1, 2, 3], [4, 5]]
    assert len(store.requests) == 2  # page 2 was short: no third request
    assert dict(store.requests[0].url.params) == {
        "min_date_modified": "Fri, 02 Jan 2026 03:04:05 +0000",
        "status_id": "11",
        "sort": "date_modified:asc",
        "limit": "3",
        "page": "1",
    }
    assert store.requests[1].url.params["page"] == "2"
    with pytest.raises(ValueError, match="limit"):
        await anext(client.iter_order_pages(limit=251))


async def test_an_empty_first_page_yields_nothing() -> None:
    store = Store({"/v2/orders": httpx.Response(204)})
    assert [p async for p in client_for(store).iter_order_pages()] == []
    assert len(store.requests) == 1


async def test_store_refunds_are_filtered_by_rfc3339_creation_time() -> None:
    refund = {"id": 1, "order_id": 5, "total_amount": 3, "payments": []}
    store = Store({"/v3/orders/payment_actions/refunds": {"data": [refund], "meta": {}}})
    since = datetime(2020, 1, 15, 1, 2, 34, tzinfo=timezone(timedelta(hours=-1)))
    pages = [p async for p in client_for(store).iter_refund_pages(created_min=since, limit=10)]
    assert [[r.id for r in p] for p in pages] == [[1]]
    assert store.requests[0].url.params["created:min"] == "2020-01-15T02:02:34+00:00"
    assert "%2B00%3A00" in str(store.requests[0].url)  # "+" must be encoded, not read as " "


async def test_a_status_update_sends_only_the_status() -> None:
    store = Store({"/v2/orders/218": {**ORDER, "status_id": 2}})
    order = await client_for(store).update_order_status(218, 2)
    assert order.status_id == 2
    assert store.requests[0].method == "PUT"
    assert json.loads(store.requests[0].content) == {"status_id": 2}


async def test_an_order_with_embedded_consignment_lines_is_read_in_one_call() -> None:
    consignment = {
        "id": 7,
        "first_name": "Jane",
        "street_1": "1 Main St",
        "city": "Austin",
        "country": "United States",
        "shipping_method": "Flat Rate",
        "cost_inc_tax": 5.1,
        "line_items": [line(1), line(2)],
    }
    store = Store({"/v2/orders/218": {**ORDER, "consignments": {"shipping": [consignment]}}})
    bundle = await client_for(store).get_order_bundle(218)
    assert bundle.embedded
    assert len(store.requests) == 1
    assert [p.id for p in bundle.products] == [1, 2]
    address = bundle.shipping_addresses[0]
    assert (address.id, address.order_id, address.cost_inc_tax) == (7, 218, Decimal("5.1"))
    assert store.requests[0].url.params["include"] == "consignments.line_items"
    assert store.requests[0].url.params["consignment_structure"] == "object"


@pytest.mark.parametrize(
    "consignments",
    [
        None,  # the include was not honoured
        {
            "shipping": [
                {"id": 7, "line_items": [{"url": "u", "resource": "/orders/218/products/1"}]}
            ]
        },
        {"shipping": [{"id": 99, "line_items": [line(1, address_id=7)]}]},  # ids disagree
        {"shipping": []},  # fewer consignments than shipping_address_count
    ],
)
async def test_an_order_falls_back_to_products_and_addresses_when_not_embedded(
    consignments: Any,
) -> None:
    body = dict(ORDER) if consignments is None else {**ORDER, "consignments": consignments}
    address = {"id": 7, "order_id": 218, "first_name": "Jane"}
    store = Store(
        {
            "/v2/orders/218": body,
            "/v2/orders/218/products": [line(1)],
            "/v2/orders/218/shipping_addresses": [address],
        }
    )
    bundle = await client_for(store).get_order_bundle(218)
    assert not bundle.embedded
    assert store.paths() == [
        "/v2/orders/218",
        "/v2/orders/218/products",
        "/v2/orders/218/shipping_addresses",
    ]
    assert [p.id for p in bundle.products] == [1]
    assert [a.id for a in bundle.shipping_addresses] == [7]


async def test_a_body_that_is_not_the_documented_shape_is_a_format_error() -> None:
    store = Store({"/v2/orders/218": {"id": 218}, "/v2/orders/9": [ORDER]})
    client = client_for(store)
    with pytest.raises(ResponseFormatError, match="not a Order: status_id"):
        await client.get_order(218)
    with pytest.raises(ResponseFormatError, match="expected an object"):
        await client.get_order(9)


async def test_one_http_client_per_store_reused_across_calls_and_remade_on_a_new_loop() -> None:
    store = Store({"/v3/hooks/1": _hook(1)})
    clients = BigCommerceClients([STORE], transport=httpx.MockTransport(store))
    client = clients.get("abc123")
    assert clients.get("abc123") is client
    assert client.session._http.current is None  # nothing is opened before the first call
    await client.get_hook(1)
    first = client.session._http.current
    await asyncio.gather(client.get_hook(1), client.get_hook(1))
    assert client.session._http.current is first

    def other_loop() -> object:
        async def call() -> object:
            await client.get_hook(1)
            return client.session._http.current

        return asyncio.run(call())

    assert await asyncio.to_thread(other_loop) is not first
    await clients.aclose()
    with pytest.raises(KeyError):
        clients.get("nosuchstore")
