"""The BigCommerce REST client: Orders V2, Orders V3 (transactions, refunds, metafields) and
Webhooks V3, paced by a per-store rate budget and retried per call idempotency.

Start from `BigCommerceClients` (one client per store per process) and `BigCommerceClient`.
"""

from shared.bigcommerce.client import BigCommerceClient, OrderBundle, OrderFilter
from shared.bigcommerce.errors import (
    ApiError,
    BadRequestError,
    BigCommerceError,
    ClientError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    ResponseFormatError,
    ServerError,
    TransportError,
    UnauthorizedError,
    UnprocessableError,
)
from shared.bigcommerce.rate_budget import BudgetPolicy, RateBudget, RateLimitHeaders, RateStats
from shared.bigcommerce.registry import BigCommerceClients, UnknownStoreError
from shared.bigcommerce.retry import Idempotency, RetryPolicy
from shared.bigcommerce.session import ClientOptions, StoreSession

__all__ = [
    "ApiError",
    "BadRequestError",
    "BigCommerceClient",
    "BigCommerceClients",
    "BigCommerceError",
    "BudgetPolicy",
    "ClientError",
    "ClientOptions",
    "ConflictError",
    "ForbiddenError",
    "Idempotency",
    "NotFoundError",
    "OrderBundle",
    "OrderFilter",
    "OutcomeUnknownError",
    "RateBudget",
    "RateLimitHeaders",
    "RateLimitedError",
    "RateStats",
    "ResponseFormatError",
    "RetryPolicy",
    "ServerError",
    "StoreSession",
    "TransportError",
    "UnauthorizedError",
    "UnknownStoreError",
    "UnprocessableError",
]
