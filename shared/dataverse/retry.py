"""When a failed Dataverse request is sent again, and after how long. Pure decisions, no I/O.

Retried (api-limits.md "How to retry": 429 plus the transient HTTP errors, 5xx-gateway, 408 and
network failures):

* 429: always, since Dataverse refused it before doing anything. Wait `Retry-After` (seconds);
  without the header back off exponentially. The wait is imposed on every caller (gate pause).
* 408, 502, 503, 504 and transport failures: backoff with jitter, for this caller only.

Never retried: 400, 401, 403, 404, 405, 412, 413, and 500 (a duplicate-detection hit is a 500,
manage-duplicate-detection-create-update.md); repeating them unchanged cannot help.

Whether a request may be repeated depends on what it does. Upserts (PATCH by key), updates,
deletes, reads and batches of those are idempotent. A POST create is not: it is repeated only
when Dataverse surely did not act on it (a 429, or a failure before the request left: connection
refused, connect timeout, no free connection); after a read timeout, a dropped connection or a
502/503/504 the outcome is unknown and the client raises `OutcomeUnknownError` instead.

Backoff is capped exponential with "equal jitter" (half fixed, half random), so callers that
failed together spread out. Every wait counts against `max_total_wait`, so a request gives up
(raising the error) rather than hold a Service Bus message lock past its renewal; the message is
then redelivered, which the idempotent writes make harmless. The RNG is injected for tests.

Hand-written rather than tenacity or stamina: the decision turns on how far a request got and
on its idempotency, and a 429's wait comes from the server and applies to every caller.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

Random = Callable[[], float]  # uniform in [0, 1)

TRANSIENT_STATUSES: Final = frozenset({408, 502, 503, 504})
RETRYABLE_STATUSES: Final = TRANSIENT_STATUSES | {429}


class Delivery(StrEnum):
    """How far a request that got no response had gone."""

    NOT_SENT = "not_sent"  # refused, connect timeout, pool timeout: Dataverse never saw it
    MAYBE_SENT = "maybe_sent"  # read/write timeout, connection dropped mid-exchange


class Action(StrEnum):
    RETRY = "retry"
    FAIL = "fail"  # raise the error the response or failure maps to
    OUTCOME_UNKNOWN = "outcome_unknown"  # raise OutcomeUnknownError


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    delay: float = 0.0
    pause_all: bool = False  # a 429: the delay holds every caller of the identity
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`max_attempts` counts the first try (6: up to 5 retries); `max_total_wait` bounds the
    seconds one request may spend waiting across its retries."""

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_total_wait: float = 240.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay <= 0 or self.max_delay < self.base_delay:
            raise ValueError("need 0 < base_delay <= max_delay")
        if self.max_total_wait < 0:
            raise ValueError("max_total_wait must be >= 0")

    def backoff(self, retry: int, rng: Random = random.random) -> float:
        """The delay before retry number `retry` (1 for the first): half of
        min(max_delay, base_delay * 2**(retry-1)) fixed, the other half random."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** max(0, retry - 1))
        return ceiling / 2 + ceiling / 2 * float(rng())

    def after_status(
        self,
        status: int,
        *,
        idempotent: bool,
        attempt: int,
        waited: float = 0.0,
        retry_after: float | None = None,
        consecutive_429: int = 1,
        rng: Random = random.random,
    ) -> Decision:
        """What to do after HTTP `status` on try `attempt`, having waited `waited` seconds."""
        if status not in RETRYABLE_STATUSES:
            return Decision(Action.FAIL, reason=f"HTTP {status} is not retried")
        if status == 429:
            delay = retry_after if retry_after is not None else self.backoff(consecutive_429, rng)
            return self._bounded(Decision(Action.RETRY, delay, True, "429"), attempt, waited)
        if not idempotent:
            return Decision(Action.OUTCOME_UNKNOWN, reason=f"HTTP {status} on a create")
        delay = max(self.backoff(attempt, rng), retry_after or 0.0)
        return self._bounded(
            Decision(Action.RETRY, delay, False, f"HTTP {status}"), attempt, waited
        )

    def after_transport_error(
        self,
        delivery: Delivery,
        *,
        idempotent: bool,
        attempt: int,
        waited: float = 0.0,
        rng: Random = random.random,
    ) -> Decision:
        if delivery is Delivery.MAYBE_SENT and not idempotent:
            return Decision(Action.OUTCOME_UNKNOWN, reason="no response to a create")
        delay = self.backoff(attempt, rng)
        return self._bounded(
            Decision(Action.RETRY, delay, False, f"no response ({delivery})"), attempt, waited
        )

    def _bounded(self, decision: Decision, attempt: int, waited: float) -> Decision:
        if attempt >= self.max_attempts:
            return Decision(Action.FAIL, reason=f"{decision.reason} after {attempt} attempts")
        if waited + decision.delay > self.max_total_wait:
            return Decision(
                Action.FAIL,
                reason=f"{decision.reason}: waiting {decision.delay:.0f} s more would exceed "
                f"the {self.max_total_wait:.0f} s wait budget",
            )
        return decision
