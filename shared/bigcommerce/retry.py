"""When a failed BigCommerce call is sent again, and after how long. Pure decisions, no I/O.

Retried: 429 (BigCommerce refused it before doing anything), 502, 503 and 504 (the documented
"retry the request" answers), and transport failures. Never retried: any other 4xx (the request
is wrong) and 500 (the docs ask for minute-long pauses, which belong to the queue's redelivery,
not to a worker holding a message lock).

Whether a call may be repeated depends on what it does:

* `Idempotency.SAFE`: GET, PUT, DELETE, and the refund-quote POST, which only calculates
  (amounts and refund methods) and creates nothing, so asking twice gives the same answer.
* `Idempotency.UNSAFE`: POSTs that create something: shipments, refunds, hooks and metafields.
  A repeat could ship twice or refund twice (hooks and metafields are unique per key, so a
  repeat would fail with a 4xx that hides the first call's success). These are repeated only
  when BigCommerce surely did not act on them: a 429, or a failure before the request left
  (connection refused, connect timeout, no free connection). After a read timeout, a broken
  connection or a 502/503/504 the outcome is unknown, and the call raises
  `OutcomeUnknownError` for the caller to look before writing again.

Backoff is capped exponential with "equal jitter" (half fixed, half random), so delays grow
and callers that failed together spread out. The RNG is injected for tests.

Hand-written rather than tenacity or stamina: the decision turns on the call's idempotency and
on how far a failed request got, and a 429's wait comes from its headers and pauses the store's
whole budget; a retry library would need each of these as a callback, leaving it little to do.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from shared.bigcommerce.rate_budget import RateLimitHeaders

Random = Callable[[], float]  # uniform in [0, 1)

RETRYABLE_STATUSES: Final = frozenset({429, 502, 503, 504})


class Idempotency(StrEnum):
    SAFE = "safe"
    UNSAFE = "unsafe"


class Delivery(StrEnum):
    """How far a request that got no response had gone."""

    NOT_SENT = "not_sent"  # refused, connect timeout, pool timeout: BigCommerce never saw it
    MAYBE_SENT = "maybe_sent"  # read/write timeout, connection dropped mid-exchange


class Action(StrEnum):
    RETRY = "retry"
    FAIL = "fail"  # raise the error the response or the failure maps to
    OUTCOME_UNKNOWN = "outcome_unknown"  # raise OutcomeUnknownError


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    delay: float = 0.0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`max_attempts` counts the first try: 5 means up to 4 retries."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay <= 0 or self.max_delay < self.base_delay:
            raise ValueError("need 0 < base_delay <= max_delay")

    def backoff(self, retry: int, rng: Random = random.random) -> float:
        """The delay before retry number `retry` (1 for the first): half of
        min(max_delay, base_delay * 2**(retry-1)) fixed, the other half random."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** max(0, retry - 1))
        return ceiling / 2 + ceiling / 2 * float(rng())

    def after_status(
        self, status: int, idempotency: Idempotency, attempt: int, rng: Random = random.random
    ) -> Decision:
        """What to do after HTTP `status` (not 429; see `after_rate_limit`) on try `attempt`."""
        if status not in RETRYABLE_STATUSES or status == 429:
            return Decision(Action.FAIL, reason=f"HTTP {status} is not retried")
        if idempotency is Idempotency.UNSAFE:
            return Decision(Action.OUTCOME_UNKNOWN, reason=f"HTTP {status} on a create")
        if attempt >= self.max_attempts:
            return Decision(Action.FAIL, reason=f"HTTP {status} after {attempt} attempts")
        return Decision(Action.RETRY, self.backoff(attempt, rng), f"HTTP {status}")

    def after_transport_error(
        self,
        delivery: Delivery,
        idempotency: Idempotency,
        attempt: int,
        rng: Random = random.random,
    ) -> Decision:
        if delivery is Delivery.MAYBE_SENT and idempotency is Idempotency.UNSAFE:
            return Decision(Action.OUTCOME_UNKNOWN, reason="no response to a create")
        if attempt >= self.max_attempts:
            return Decision(Action.FAIL, reason=f"no response after {attempt} attempts")
        return Decision(Action.RETRY, self.backoff(attempt, rng), f"transport ({delivery})")

    def after_rate_limit(
        self,
        headers: RateLimitHeaders,
        attempt: int,
        consecutive: int,
        rng: Random = random.random,
    ) -> Decision:
        """After a 429: wait for the quota to reset (the longer of Reset-Ms and X-Retry-After),
        adding backoff when 429s repeat; without rate headers (platform load) back off only.
        Safe for every call: a 429 is refused before BigCommerce acts on it."""
        if attempt >= self.max_attempts:
            return Decision(Action.FAIL, reason=f"HTTP 429 after {attempt} attempts")
        reset = headers.reset_wait()
        if reset is None:
            return Decision(Action.RETRY, self.backoff(consecutive, rng), "429 without headers")
        extra = self.backoff(consecutive - 1, rng) if consecutive > 1 else 0.0
        return Decision(Action.RETRY, reset + extra, "429: quota exhausted")
