"""How hard the chaos run hits, in one place: the fault rates and the settings that make each
fault both happen and cost little enough for 2,000 orders to settle on a small machine.

Time is compressed, not faked: the connector runs its production code and defaults except for
settings an operator could set too (DATAVERSE_TIMEOUT_SECONDS, LOCAL_BROKER_LOCK_SECONDS, host.json
through an `AzureFunctionsJobHost__` app setting), chosen so that a Dataverse timeout costs
seconds rather than minutes and a step slower than ~18 s outlives its message lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from local.demo.stack import CONNECTOR_IDENTITY, DATAVERSE_EXECUTION_LIMIT, DATAVERSE_REQUEST_LIMIT
from shared.bigcommerce.session import ClientOptions

CONNECTOR_USER_AGENT: Final = ClientOptions().user_agent  # the connector's calls to the store
LOCK_SECONDS: Final = 3
LOCK_RENEWAL: Final = "00:00:15"  # maxAutoLockRenewalDuration: a lock lasts 15 to 18 s at most
DATAVERSE_TIMEOUT: Final = 4  # seconds for a read; writes and $batch get twice that


@dataclass(frozen=True)
class Profile:
    # Dataverse: ~10% of the connector's requests fail. A 429 holds every caller for its
    # Retry-After (1 s), so it is the rarest; a timeout is answered after the client gave up on
    # a write too (2 x DATAVERSE_TIMEOUT), once the operation was done.
    dataverse: Mapping[str, float] = field(
        default_factory=lambda: {"429": 0.005, "503": 0.08, "timeout": 0.015}
    )
    dataverse_delays_ms: Mapping[str, int] = field(
        default_factory=lambda: {"timeout": (2 * DATAVERSE_TIMEOUT + 1) * 1000}
    )
    # BigCommerce: ~5% of the connector's requests fail (429 from platform load, 5xx; a 504
    # after the store made the change); a few more are slow enough for the message lock to
    # expire while the step still waits, so that the message is redelivered meanwhile.
    bigcommerce: Mapping[str, float] = field(
        default_factory=lambda: {
            "429": 0.02,
            "500": 0.005,
            "502": 0.005,
            "503": 0.01,
            "504": 0.01,
            "slow": 0.005,
        }
    )
    # Under the client's 30 s timeout, over the longest a message lock can last.
    bigcommerce_delays_ms: Mapping[str, int] = field(default_factory=lambda: {"slow": 25_000})
    duplicates: float = 0.30  # webhook deliveries sent twice (and shuffled in windows of eight)
    drops: float = 0.03  # webhook deliveries lost for good: the reconciliation sweep heals them
    # The store's quota: a Pro plan's 450 per 30 s would make 2,000 orders wait on it for an
    # hour; this is a large store's, of which the connector takes its usual half.
    store_quota: str = "3000/30"
    # Service protection per identity: ten web servers' worth, as the demo's (a busy connector
    # on one web server's execution-time limit waits minutes on its Retry-After).
    dataverse_request_limit: str = DATAVERSE_REQUEST_LIMIT
    dataverse_execution_limit: str = DATAVERSE_EXECUTION_LIMIT
    dataverse_dop_hint: int = 48
    dataverse_concurrency: int = 48  # DATAVERSE_MAX_CONCURRENCY (52 per user): timeouts hold slots
    # Orders in flight at once (host.json's maxConcurrentSessions, 32): the one local worker
    # stands for a scaled-out app, so that waiting on faults does not leave the cores idle.
    sessions: int = 96
    # Every two minutes: a sweep also enqueues the orders whose webhooks are still on their
    # way (they look stale), so while the worker has a backlog each sweep adds to it.
    reconcile_schedule: str = "0 */2 * * * *"
    reconcile_overlap_seconds: int = 60
    # A sweep killed with the worker holds the store's lease until it expires (600 s by
    # default); a minute is plenty for a page and short enough to wait.
    reconcile_lease_seconds: int = 60

    def kills(self, orders: int) -> tuple[int, tuple[float, float]]:
        """How many times the worker is killed, and the seconds between kills: several over
        a run of this size, spaced so that the store does not block the webhook destination
        for too many failed deliveries (below 90% success over two minutes) at every kill."""
        mean = min(60.0, max(30.0, 0.03 * orders))
        return 4 + orders // 400, (mean / 2, mean * 1.5)

    def host_settings(self) -> dict[str, str]:
        return {
            "LOG_LEVEL": "WARNING",
            "LOCAL_BROKER_LOCK_SECONDS": str(LOCK_SECONDS),
            "AzureFunctionsJobHost__extensions__serviceBus__maxAutoLockRenewalDuration": (
                LOCK_RENEWAL
            ),
            "AzureFunctionsJobHost__extensions__serviceBus__maxConcurrentSessions": str(
                self.sessions
            ),
            "DATAVERSE_TIMEOUT_SECONDS": str(DATAVERSE_TIMEOUT),
            "DATAVERSE_MAX_CONCURRENCY": str(self.dataverse_concurrency),
            "RECONCILE_SCHEDULE": self.reconcile_schedule,
            "RECONCILE_OVERLAP_SECONDS": str(self.reconcile_overlap_seconds),
            "RECONCILE_LEASE_SECONDS": str(self.reconcile_lease_seconds),
        }

    def dataverse_settings(self) -> dict[str, str]:
        return {
            "LOCAL_DATAVERSE_REQUEST_LIMIT": self.dataverse_request_limit,
            "LOCAL_DATAVERSE_EXECUTION_LIMIT": self.dataverse_execution_limit,
            "LOCAL_DATAVERSE_DOP_HINT": str(self.dataverse_dop_hint),
        }

    def dataverse_chaos(self, seed: int) -> dict[str, Any]:
        return _chaos(self.dataverse, self.dataverse_delays_ms, CONNECTOR_IDENTITY, seed)

    def bigcommerce_chaos(self, seed: int) -> dict[str, Any]:
        return _chaos(self.bigcommerce, self.bigcommerce_delays_ms, CONNECTOR_USER_AGENT, seed)


def _chaos(
    rates: Mapping[str, float], delays: Mapping[str, int], caller: str, seed: int
) -> dict[str, Any]:
    """The `PUT /__sim/chaos` body (local/standin/chaos.py) for these per-kind rates."""
    total = sum(rates.values())
    return {
        "rate": total,
        "kinds": {kind: rate / total for kind, rate in rates.items()},
        "caller": caller,
        "delays_ms": dict(delays),
        "seed": seed,
    }
