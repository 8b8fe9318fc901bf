"""Listing and counting orders (`GET /v2/orders`, `/v2/orders/count`): filters, sort, pages.

Filters are those of the spec (`min_id` ... `external_order_id`) plus `is_deleted`. As on a
store, archived orders are left out unless `is_deleted=true`, and a listing leaves out
Incomplete (status 0) orders unless `status_id=0` asks for them; the count reports every status.
Date filters accept RFC 2822 or ISO 8601 and are inclusive. Sorting is stable, ties by id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from local.bigcommerce.errors import ApiError
from local.bigcommerce.model import Order
from local.bigcommerce.money import parse_amount
from local.bigcommerce.payload import query_bool, query_int
from local.bigcommerce.pricing import totals
from local.bigcommerce.statuses import INCOMPLETE, STATUSES
from local.bigcommerce.timefmt import parse_date

MAX_LIMIT = 250
DEFAULT_LIMIT = 50
SORT_KEYS: dict[str, Callable[[Order], Any]] = {
    "id": lambda o: o.id,
    "customer_id": lambda o: o.customer_id,
    "date_created": lambda o: o.date_created,
    "date_modified": lambda o: o.date_modified,
    "status_id": lambda o: o.status_id,
    "channel_id": lambda o: o.channel_id,
    "external_id": lambda o: o.external_id or "",
}


@dataclass(frozen=True, slots=True)
class OrderFilter:
    min_id: int | None = None
    max_id: int | None = None
    min_total: Decimal | None = None
    max_total: Decimal | None = None
    customer_id: int | None = None
    email: str | None = None
    status_id: int | None = None
    cart_id: str | None = None
    payment_method: str | None = None
    min_date_created: datetime | None = None
    max_date_created: datetime | None = None
    min_date_modified: datetime | None = None
    max_date_modified: datetime | None = None
    channel_id: int | None = None
    external_order_id: str | None = None
    is_deleted: bool = False

    def matches(self, order: Order, *, listing: bool) -> bool:
        if order.is_deleted != self.is_deleted:
            return False
        if self.status_id is None:
            if listing and order.status_id == INCOMPLETE:
                return False
        elif order.status_id != self.status_id:
            return False
        checks = (
            self.min_id is None or order.id >= self.min_id,
            self.max_id is None or order.id <= self.max_id,
            self.customer_id is None or order.customer_id == self.customer_id,
            self.email is None or order.email.lower() == self.email.lower(),
            self.cart_id is None or order.cart_id == self.cart_id,
            self.payment_method is None or order.payment_method == self.payment_method,
            self.channel_id is None or order.channel_id == self.channel_id,
            self.external_order_id is None or order.external_order_id == self.external_order_id,
            self.min_date_created is None or order.date_created >= self.min_date_created,
            self.max_date_created is None or order.date_created <= self.max_date_created,
            self.min_date_modified is None or order.date_modified >= self.min_date_modified,
            self.max_date_modified is None or order.date_modified <= self.max_date_modified,
        )
        if not all(checks):
            return False
        if self.min_total is None and self.max_total is None:
            return True
        total = totals(order).total_inc
        return (self.min_total is None or total >= self.min_total) and (
            self.max_total is None or total <= self.max_total
        )


def _date(params: Mapping[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if not raw:
        return None
    parsed = parse_date(raw)
    if parsed is None:
        raise ApiError(400, f"The filter '{name}' is invalid: use RFC 2822 or ISO 8601.")
    return parsed


def _total(params: Mapping[str, str], name: str) -> Decimal | None:
    raw = params.get(name)
    if not raw:
        return None
    value = parse_amount(raw)
    if value is None:
        raise ApiError(400, f"The filter '{name}' is invalid.")
    return value


def parse_filter(params: Mapping[str, str]) -> OrderFilter:
    status = query_int(params, "status_id")
    if status is not None and status not in STATUSES:
        raise ApiError(400, "The filter 'status_id' is invalid.")
    return OrderFilter(
        min_id=query_int(params, "min_id"),
        max_id=query_int(params, "max_id"),
        min_total=_total(params, "min_total"),
        max_total=_total(params, "max_total"),
        customer_id=query_int(params, "customer_id"),
        email=params.get("email") or None,
        status_id=status,
        cart_id=params.get("cart_id") or None,
        payment_method=params.get("payment_method") or None,
        min_date_created=_date(params, "min_date_created"),
        max_date_created=_date(params, "max_date_created"),
        min_date_modified=_date(params, "min_date_modified"),
        max_date_modified=_date(params, "max_date_modified"),
        channel_id=query_int(params, "channel_id"),
        external_order_id=params.get("external_order_id") or None,
        is_deleted=bool(query_bool(params, "is_deleted")),
    )


@dataclass(frozen=True, slots=True)
class Page:
    number: int
    limit: int

    def slice(self, items: list[Any]) -> list[Any]:
        start = (self.number - 1) * self.limit
        return items[start : start + self.limit]


def parse_page(params: Mapping[str, str], default_limit: int = DEFAULT_LIMIT) -> Page:
    number = query_int(params, "page", 1, minimum=1)
    limit = query_int(params, "limit", default_limit, minimum=1)
    assert number is not None
    assert limit is not None
    if limit > MAX_LIMIT:
        raise ApiError(413, f"The 'limit' parameter cannot exceed {MAX_LIMIT}.")
    return Page(number, limit)


def parse_sort(params: Mapping[str, str]) -> tuple[Callable[[Order], Any], bool]:
    raw = params.get("sort") or "id"
    field, _, direction = raw.partition(":")
    if field not in SORT_KEYS or direction.lower() not in ("", "asc", "desc"):
        raise ApiError(400, f"The sort '{raw}' is invalid.")
    return SORT_KEYS[field], direction.lower() == "desc"


def select(orders: list[Order], params: Mapping[str, str]) -> list[Order]:
    wanted = parse_filter(params)
    key, descending = parse_sort(params)
    chosen = [o for o in orders if wanted.matches(o, listing=True)]
    chosen.sort(key=lambda o: o.id)
    chosen.sort(key=key, reverse=descending)
    return chosen
