"""The go-live cut-over: which orders a store's connector leaves to what served it before.

A store moving over from another integration (IOM's own BigCommerce provider, say) has orders
that integration already took to Dataverse under its own keys, which the connector would not find
and would write again. With `BIGCOMMERCE_<HASH>_GO_LIVE` set, an order created before that
instant is left alone unless Dataverse already holds it under the connector's key, so an order
the connector took in keeps its lifecycle. Moving the instant later is always safe; moving it
earlier takes in the orders between (a backfill of that range does it at once), which is right
only for orders the previous integration did not import.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from shared.bigcommerce.models import Order
from shared.config import Settings

GoLive = Mapping[str, datetime]


def go_live_of(settings: Settings) -> dict[str, datetime]:
    """The stores that have a go-live instant, by store hash."""
    return {s.store_hash: s.go_live for s in settings.stores if s.go_live is not None}


def before_go_live(go_live: GoLive, store_hash: str, order: Order) -> bool:
    """True when the store has a go-live and the order was created before it."""
    instant = go_live.get(store_hash)
    return instant is not None and order.date_created < instant
