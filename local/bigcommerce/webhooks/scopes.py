"""Webhook scopes: which ones BigCommerce documents, and which events a hook's scope receives.

The catalogue is the union of the scope tables in BigCommerce's docs
(`docs/integrations/webhooks/events/index.mdx`, `events/channels.mdx` and
`events/inventory-location.mdx`), with `{channel_id}` standing for a channel id. A few table rows
carry a stray trailing slash (`store/priceList/created/`); the scope is the name without it.

Matching, as the docs describe it:

* an exact scope receives that event only;
* a trailing `/*` receives every event below it at any depth (`store/cart/*` also fires for
  `store/cart/lineItem/created`), except that a wildcard never reaches into a channel: the
  `store/channel/*` hook gets `store/channel/created`, not `store/channel/1/order/created`,
  which needs `store/channel/1/order/*`;
* a `*` in the middle (`store/channel/*/inventory/product/stock_changed`) stands for one segment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

DELIVERY_EXCEPTION: Final = "store/hook/deliveryException"

_CHANNEL: Final = "store/channel/{channel_id}/"

_STORE_SCOPES: Final = """
store/app/uninstalled
store/brand/metafield/* store/brand/metafield/created store/brand/metafield/deleted
store/brand/metafield/updated
store/cart/* store/cart/abandoned store/cart/converted store/cart/couponApplied store/cart/created
store/cart/deleted store/cart/updated store/cart/lineItem/* store/cart/lineItem/created
store/cart/lineItem/deleted store/cart/lineItem/updated store/cart/metafield/created
store/cart/metafield/deleted store/cart/metafield/updated
store/category/* store/category/created store/category/deleted store/category/updated
store/category/metafield/created store/category/metafield/deleted store/category/metafield/updated
store/channel/* store/channel/created store/channel/updated store/channel/metafield/created
store/channel/metafield/deleted store/channel/metafield/updated
store/channel/*/inventory/product/low_stock_reached
store/channel/*/inventory/product/out_of_stock_reached
store/channel/*/inventory/product/settings_changed
store/channel/*/inventory/product/stock_changed
store/customer/* store/customer/created store/customer/deleted store/customer/updated
store/customer/address/* store/customer/address/created store/customer/address/deleted
store/customer/address/updated store/customer/channel/login/access/updated
store/customer/payment/instrument/default/updated
store/hook/deliveryException
store/information/updated
store/inventory/location/created store/inventory/location/updated
store/inventory/location/metafield/* store/inventory/location/metafield/created
store/inventory/location/metafield/deleted store/inventory/location/metafield/updated
store/metafield/* store/metafield/created store/metafield/deleted store/metafield/updated
store/modifier/updated store/option/updated
store/order/* store/order/archived store/order/created store/order/updated
store/order/statusUpdated store/order/message/created store/order/refund/created
store/order/metafield/created store/order/metafield/deleted store/order/metafield/updated
store/order/transaction/created store/order/transaction/updated
store/priceList/activated store/priceList/created store/priceList/deactivated
store/priceList/deleted store/priceList/updated store/priceList/assignment/deleted
store/priceList/assignment/updated store/priceList/record/created store/priceList/record/deleted
store/priceList/record/updated store/priceList/records/created store/priceList/records/deleted
store/priceList/records/updated store/priceLists/deleted
store/product/* store/product/created store/product/deleted store/product/updated
store/product/inventory/updated store/product/inventory/order/updated
store/product/metafield/* store/product/metafield/created store/product/metafield/deleted
store/product/metafield/updated store/product/variant/metafield/*
store/product/variant/metafield/created store/product/variant/metafield/deleted
store/product/variant/metafield/updated
store/shipment/* store/shipment/created store/shipment/deleted store/shipment/updated
store/sku/* store/sku/created store/sku/deleted store/sku/updated store/sku/inventory/updated
store/sku/inventory/order/updated
store/subscriber/* store/subscriber/created store/subscriber/deleted store/subscriber/updated
"""

_CHANNEL_SCOPES: Final = """
cart/* cart/abandoned cart/converted cart/couponApplied cart/created cart/deleted cart/updated
cart/lineItem/* cart/lineItem/created cart/lineItem/deleted cart/lineItem/updated
category/* category/created category/deleted category/updated category/product/assigned
category/product/unassigned categoryTree/updated
email/templates/deleted email/templates/updated
notifications/abandonedCart/updated notifications/inventory/updated
order/* order/archived order/created order/updated order/statusUpdated order/message/created
order/refund/created
page/created page/updated product/assigned product/unassigned script/created script/updated
settings/* settings/SEO/updated settings/catalog/updated settings/category/updated
settings/checkout/updated settings/currency/updated settings/customerPrivacy/updated
settings/defaultCustomerGroup/updated settings/emailStatus/deleted settings/emailStatus/updated
settings/favicon/image/updated settings/locale/added settings/locale/deleted
settings/locale/updated settings/logo/image/updated settings/logo/updated
settings/product/updated settings/profile/updated settings/robots/updated settings/route/updated
settings/searchContextFilters/updated settings/security/updated settings/site/checkoutUrl/deleted
settings/site/checkoutUrl/updated settings/site/updated socialMediaLinks/updated
theme/configuration/activated theme/configuration/created
"""

STORE_SCOPES: Final = frozenset(_STORE_SCOPES.split())
CHANNEL_SCOPES: Final = frozenset(_CHANNEL + s for s in _CHANNEL_SCOPES.split())

_CHANNEL_SCOPE: Final = re.compile(r"^store/channel/([1-9][0-9]{0,9})/(.+)$")

# Store-level events that also fire on the order's channel, with the channel scope's data shape
# (`events/channels.mdx` §Orders: `{"order_id": <id>}`).
_CHANNEL_ORDER_EVENTS: Final = frozenset(
    {"created", "updated", "archived", "statusUpdated", "message/created", "refund/created"}
)


def is_documented(scope: str) -> bool:
    """True for a scope a hook may subscribe to: documented, with a real channel id if any."""
    if scope in STORE_SCOPES:
        return True
    match = _CHANNEL_SCOPE.match(scope)
    return match is not None and _CHANNEL + match.group(2) in CHANNEL_SCOPES


def matches(hook_scope: str, event_scope: str) -> bool:
    """Whether a hook subscribed to `hook_scope` receives an event raised as `event_scope`."""
    if hook_scope == event_scope:
        return True
    hook, event = hook_scope.split("/"), event_scope.split("/")
    if hook[-1] == "*":
        prefix = hook[:-1]
        if len(event) <= len(prefix):
            return False
        if _enters_channel(prefix, event):
            return False
        return all(h in ("*", e) for h, e in zip(prefix, event, strict=False))
    return len(hook) == len(event) and all(h in ("*", e) for h, e in zip(hook, event, strict=True))


def _enters_channel(prefix: list[str], event: list[str]) -> bool:
    """A trailing wildcard ending at `store/channel` must not swallow a channel id segment."""
    return prefix == ["store", "channel"] and event[2].isdigit()


def channel_variant(
    scope: str, data: Mapping[str, Any], channel_id: int | None
) -> tuple[str, dict[str, Any]] | None:
    """The channel-scoped copy of a store-level order event, or None if it has none.

    The store publishes an order change once, as `store/order/...` with the order's channel; the
    deliverer then also raises `store/channel/{channel_id}/order/...` with `{"order_id": id}`.
    Other resources have no derived channel event: publish their channel scope explicitly.
    """
    if channel_id is None or not scope.startswith("store/order/"):
        return None
    suffix = scope.removeprefix("store/order/")
    order_id = data.get("id")
    if suffix not in _CHANNEL_ORDER_EVENTS or order_id is None:
        return None
    return f"store/channel/{channel_id}/order/{suffix}", {"order_id": order_id}
