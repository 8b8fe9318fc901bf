"""Orders V2 endpoints under `/stores/{store_hash}/v2`: orders, their sub-resources, shipments,
statuses and the store time."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from local.bigcommerce import orders, shipments
from local.bigcommerce.errors import not_found
from local.bigcommerce.listing import parse_filter, parse_page, select
from local.bigcommerce.model import Order
from local.bigcommerce.payload import query_bool
from local.bigcommerce.statuses import STATUSES
from local.bigcommerce.views_v2 import (
    consignments_json,
    count_json,
    coupons_json,
    fees_json,
    order_json,
    product_json,
    shipment_json,
    shipping_address_json,
    status_json,
    taxes_json,
)
from local.bigcommerce.web import (
    api_base,
    includes,
    json_body,
    no_content,
    ok,
    order_or_404,
    store_of,
    v2_list,
)


def _order_view(request: Request, order: Order) -> dict[str, object]:
    wanted = includes(request.query_params)
    line_items = "consignments.line_items" in wanted
    return order_json(
        order,
        api_base(request, "v2"),
        consignments=line_items or "consignments" in wanted,
        line_items=line_items,
        fees="fees" in wanted,
    )


async def list_orders(request: Request) -> Response:
    sim, store = store_of(request)
    page = parse_page(request.query_params)
    with store.lock:
        chosen = page.slice(select(list(store.orders.values()), request.query_params))
        return v2_list(sim, [_order_view(request, o) for o in chosen])


async def count_orders(request: Request) -> Response:
    _, store = store_of(request)
    wanted = parse_filter(request.query_params)
    with store.lock:
        return ok(
            count_json([o for o in store.orders.values() if wanted.matches(o, listing=False)])
        )


async def get_order(request: Request) -> Response:
    _, store = store_of(request)
    with store.lock:
        return ok(_order_view(request, order_or_404(store, request.path_params["order_id"])))


async def create_order(request: Request) -> Response:
    sim, store = store_of(request)
    body = await json_body(request)
    with sim.change(store) as events:
        order = orders.create_order(store, body, sim.now(), events)
        view = _order_view(request, order)
    return ok(view)


async def update_order(request: Request) -> Response:
    sim, store = store_of(request)
    body = await json_body(request)
    with sim.change(store) as events:
        order = order_or_404(store, request.path_params["order_id"])
        orders.update_order(store, order, body, sim.now(), events)
        view = _order_view(request, order)
    return ok(view)


async def archive_order(request: Request) -> Response:
    sim, store = store_of(request)
    with sim.change(store) as events:
        orders.archive(
            store, order_or_404(store, request.path_params["order_id"]), sim.now(), events
        )
    return no_content()


async def archive_all(request: Request) -> Response:
    sim, store = store_of(request)
    with sim.change(store) as events:
        for order in list(store.orders.values()):
            orders.archive(store, order, sim.now(), events)
    return no_content()


def _order(request: Request) -> Order:
    _, store = store_of(request)
    return order_or_404(store, request.path_params["order_id"])


async def list_products(request: Request) -> Response:
    sim, store = store_of(request)
    page = parse_page(request.query_params)
    with store.lock:
        order = _order(request)
        return v2_list(sim, [product_json(order, p) for p in page.slice(order.products)])


async def get_product(request: Request) -> Response:
    _, store = store_of(request)
    with store.lock:
        order = _order(request)
        line = order.product(request.path_params["product_id"])
        if line is None:
            raise not_found()
        return ok(product_json(order, line))


async def list_shipping_addresses(request: Request) -> Response:
    sim, store = store_of(request)
    page = parse_page(request.query_params)
    base = api_base(request, "v2")
    with store.lock:
        order = _order(request)
        chosen = page.slice(order.addresses)
        return v2_list(sim, [shipping_address_json(order, a, base) for a in chosen])


def _address_id(request: Request) -> int:
    raw = request.path_params["address_id"]
    if not raw.isdigit():
        raise not_found()
    return int(raw)


async def get_shipping_address(request: Request) -> Response:
    _, store = store_of(request)
    with store.lock:
        order = _order(request)
        address = order.address(_address_id(request))
        if address is None:
            raise not_found()
        return ok(shipping_address_json(order, address, api_base(request, "v2")))


async def update_shipping_address(request: Request) -> Response:
    sim, store = store_of(request)
    body = await json_body(request)
    with sim.change(store) as events:
        order = _order(request)
        address_id = _address_id(request)
        if order.address(address_id) is None:
            raise not_found()
        update = dict(body) if isinstance(body, dict) else body
        if isinstance(update, dict):
            update["id"] = address_id
        orders.update_order(store, order, {"shipping_addresses": [update]}, sim.now(), events)
        view = shipping_address_json(order, order.address(address_id), api_base(request, "v2"))  # type: ignore[arg-type]
    return ok(view)


async def shipping_quotes(request: Request) -> Response:
    _, store = store_of(request)
    with store.lock:
        _order(request)
    return no_content()  # orders made by API or control panel have no quotes (spec)


async def list_coupons(request: Request) -> Response:
    sim, store = store_of(request)
    page = parse_page(request.query_params)
    with store.lock:
        return v2_list(sim, page.slice(coupons_json(_order(request))))


async def list_taxes(request: Request) -> Response:
    sim, store = store_of(request)
    page = parse_page(request.query_params)
    details = bool(query_bool(request.query_params, "details"))
    with store.lock:
        return v2_list(sim, page.slice(taxes_json(_order(request), details=details)))


async def list_messages(request: Request) -> Response:
    sim, store = store_of(request)
    with store.lock:
        _order(request)
    return v2_list(sim, [])


async def get_consignments(request: Request) -> Response:
    _, store = store_of(request)
    line_items = "consignments.line_items" in includes(request.query_params)
    with store.lock:
        order = _order(request)
        return ok(consignments_json(order, api_base(request, "v2"), line_items=line_items))


async def get_fees(request: Request) -> Response:
    _, store = store_of(request)
    with store.lock:
        return ok({"fees": fees_json(_order(request))})


async def list_statuses(request: Request) -> Response:
    store_of(request)
    return ok([status_json(s) for s in STATUSES.values()])


async def get_status(request: Request) -> Response:
    store_of(request)
    status = STATUSES.get(request.path_params["status_id"])
    if status is None:
        raise not_found()
    return ok(status_json(status))


async def store_time(request: Request) -> Response:
    sim, _ = store_of(request)
    return ok({"time": int(sim.clock.now().timestamp())})


def _shipment(request: Request, order: Order) -> int:
    shipment_id = request.path_params["shipment_id"]
    if shipment_id not in order.shipments:
        raise not_found()
    return int(shipment_id)


async def list_shipments(request: Request) -> Response:
    _, store = store_of(request)
    page = parse_page(request.query_params)
    with store.lock:
        order = _order(request)
        chosen = page.slice(sorted(order.shipments))
        if not chosen:
            return no_content()  # "No Content (No shipments exist)"
        return ok([shipment_json(order, s) for s in chosen])


async def create_shipment(request: Request) -> Response:
    sim, store = store_of(request)
    body = await json_body(request)
    with sim.change(store) as events:
        order = _order(request)
        shipment = shipments.create(store, order, body, sim.now(), events)
        view = shipment_json(order, shipment.id)
    return ok(view, 201)


async def count_shipments(request: Request) -> Response:
    _, store = store_of(request)
    with store.lock:
        return ok({"count": len(_order(request).shipments)})


async def get_shipment(request: Request) -> Response:
    _, store = store_of(request)
    with store.lock:
        order = _order(request)
        return ok(shipment_json(order, _shipment(request, order)))


async def update_shipment(request: Request) -> Response:
    sim, store = store_of(request)
    body = await json_body(request)
    with sim.change(store) as events:
        order = _order(request)
        shipment_id = _shipment(request, order)
        shipments.update(store, order, order.shipments[shipment_id], body, events)
        view = shipment_json(order, shipment_id)
    return ok(view)


async def delete_shipment(request: Request) -> Response:
    sim, store = store_of(request)
    with sim.change(store) as events:
        order = _order(request)
        shipment_id = _shipment(request, order)
        shipments.delete(store, order, order.shipments[shipment_id], sim.now(), events)
    return no_content()


async def delete_shipments(request: Request) -> Response:
    sim, store = store_of(request)
    with sim.change(store) as events:
        order = _order(request)
        for shipment in list(order.shipments.values()):
            shipments.delete(store, order, shipment, sim.now(), events)
    return no_content()


V2 = "/stores/{store_hash}/v2"
ORDER = V2 + "/orders/{order_id:int}"

routes = [
    Route(V2 + "/time", store_time, methods=["GET"]),
    Route(V2 + "/order_statuses", list_statuses, methods=["GET"]),
    Route(V2 + "/order_statuses/{status_id:int}", get_status, methods=["GET"]),
    Route(V2 + "/orders/count", count_orders, methods=["GET"]),
    Route(V2 + "/orders", list_orders, methods=["GET"]),
    Route(V2 + "/orders", create_order, methods=["POST"]),
    Route(V2 + "/orders", archive_all, methods=["DELETE"]),
    Route(ORDER, get_order, methods=["GET"]),
    Route(ORDER, update_order, methods=["PUT"]),
    Route(ORDER, archive_order, methods=["DELETE"]),
    Route(ORDER + "/products", list_products, methods=["GET"]),
    Route(ORDER + "/products/{product_id:int}", get_product, methods=["GET"]),
    Route(ORDER + "/shipping_addresses", list_shipping_addresses, methods=["GET"]),
    Route(ORDER + "/shipping_addresses/{address_id}", get_shipping_address, methods=["GET"]),
    Route(ORDER + "/shipping_addresses/{address_id}", update_shipping_address, methods=["PUT"]),
    Route(
        ORDER + "/shipping_addresses/{address_id}/shipping_quotes", shipping_quotes, methods=["GET"]
    ),
    Route(ORDER + "/coupons", list_coupons, methods=["GET"]),
    Route(ORDER + "/taxes", list_taxes, methods=["GET"]),
    Route(ORDER + "/messages", list_messages, methods=["GET"]),
    Route(ORDER + "/consignments", get_consignments, methods=["GET"]),
    Route(ORDER + "/fees", get_fees, methods=["GET"]),
    Route(ORDER + "/shipments/count", count_shipments, methods=["GET"]),
    Route(ORDER + "/shipments", list_shipments, methods=["GET"]),
    Route(ORDER + "/shipments", create_shipment, methods=["POST"]),
    Route(ORDER + "/shipments", delete_shipments, methods=["DELETE"]),
    Route(ORDER + "/shipments/{shipment_id:int}", get_shipment, methods=["GET"]),
    Route(ORDER + "/shipments/{shipment_id:int}", update_shipment, methods=["PUT"]),
    Route(ORDER + "/shipments/{shipment_id:int}", delete_shipment, methods=["DELETE"]),
]
