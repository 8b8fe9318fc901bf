"""The BigCommerce access check of one store: the token is accepted and the API account has the
scopes the connector reads with. Only reads are made, so write access (Orders: modify) cannot be
proved here; the first status update or shipment proves it.

Probes, in order (bigcommerce.md §5), only reads the connector itself makes: the order list
(Orders), the order statuses (Orders), the store's refunds (Orders or Transactions), and, when
the store has an order, that order's shipments (Orders) and refunds (Orders or Transactions). A
401 means the token itself is refused; a 403 means the account lacks the probe's scope; a 404 on
the first probe means no such store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Final, Protocol

from shared.bigcommerce.errors import ForbiddenError, NotFoundError, UnauthorizedError
from shared.bigcommerce.models import Order, Refund
from shared.diagnostics.result import CheckResult

HINT: Final = (
    "check BIGCOMMERCE_API_URL (or BIGCOMMERCE_<HASH>_API_URL) and the network path to "
    "api.bigcommerce.com; locally, that the store simulator is running"
)


def check_name(store_hash: str) -> str:
    return f"bigcommerce {store_hash}"


def token_hint(store_hash: str) -> str:
    return (
        f"BIGCOMMERCE_{store_hash.upper()}_ACCESS_TOKEN was refused: set the access token of "
        f"the store-level API account (Key Vault secret bigcommerce-{store_hash}-access-token)"
    )


SCOPE_HINT: Final = (
    "give the store-level API account (Settings > Store-level API accounts) the OAuth scopes "
    "Orders: modify and Transactions: read-only"
)


class StoreReads(Protocol):
    """The reads the check makes; `BigCommerceClient` satisfies it."""

    def iter_order_pages(self, *, limit: int = ...) -> AsyncIterator[list[Order]]: ...

    async def list_order_statuses(self) -> Sequence[object]: ...

    def iter_refund_pages(self, *, limit: int = ...) -> AsyncIterator[list[Refund]]: ...

    async def list_shipments(self, order_id: int) -> Sequence[object]: ...

    async def list_order_refunds(self, order_id: int) -> Sequence[object]: ...


async def _close(pages: AsyncIterator[object]) -> None:
    """Closes a page generator left after its first page, so no request is left pending."""
    close = getattr(pages, "aclose", None)
    if close is not None:
        await close()


async def _first_order(reads: StoreReads) -> int | None:
    """The id of one order of the store (None when it has none); one page of one."""
    pages = reads.iter_order_pages(limit=1)
    try:
        async for page in pages:
            return page[0].id if page else None
        return None
    finally:
        await _close(pages)


async def _any_refund(reads: StoreReads) -> None:
    pages = reads.iter_refund_pages(limit=1)
    try:
        async for _ in pages:
            return  # one page is enough: the rest is never requested
    finally:
        await _close(pages)


Probe = tuple[str, str, Callable[[], Awaitable[object]]]  # what, scope, the read


async def check_store_access(reads: StoreReads, store_hash: str) -> CheckResult:
    name = check_name(store_hash)
    refused = CheckResult.failed(name, "the access token was refused (401)", token_hint(store_hash))
    missing: list[str] = []
    order_id: int | None = None
    try:
        order_id = await _first_order(reads)
    except UnauthorizedError:
        return refused
    except NotFoundError:
        return CheckResult.failed(name, f"no store {store_hash} at the API URL (404)", HINT)
    except ForbiddenError:
        missing.append("orders (Orders)")
    probes: list[Probe] = [
        ("order statuses", "Orders", reads.list_order_statuses),
        ("refunds", "Orders or Transactions", lambda: _any_refund(reads)),
    ]
    if order_id is not None:
        found = order_id
        probes += [
            ("order shipments", "Orders", lambda: reads.list_shipments(found)),
            ("order refunds", "Orders or Transactions", lambda: reads.list_order_refunds(found)),
        ]
    for what, scope, probe in probes:
        try:
            await probe()
        except UnauthorizedError:
            return refused
        except ForbiddenError:
            missing.append(f"{what} ({scope})")
    if missing:
        return CheckResult.failed(
            name, f"403, a scope is missing for: {', '.join(missing)}", SCOPE_HINT
        )
    read = ", ".join(["orders", *(what for what, _, _ in probes)])
    note = "" if order_id is not None else "; no order yet to probe shipments and refunds with"
    return CheckResult.passed(
        name, f"token accepted; reads {read}{note} (write scopes show on the first write)"
    )
