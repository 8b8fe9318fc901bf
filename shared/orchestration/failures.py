"""Which failures pass with time (retry later) and which need a person (park the order).

Transient: throttling, 5xx, timeouts, transport errors, a write whose outcome is unknown (the
next run reads what is there before writing again), and anything unexpected: an unknown error is
retried with back-off a bounded number of times and then parked, never redelivered in a hot loop.
Permanent: the order cannot be expressed (mapping), Dataverse or BigCommerce refused the request
(4xx other than 408/429), or the message cannot be read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.bigcommerce import errors as bc
from shared.dataverse import errors as dv
from shared.dataverse.intake import IntakeError
from shared.mapping.order import MappingError
from shared.orchestration.messages import MessageFormatError

Kind = Literal["transient", "permanent"]


class DataError(ValueError):
    """The two sides' data contradict each other in a way only a person can resolve."""


@dataclass(frozen=True, slots=True)
class Failure:
    kind: Kind
    category: str  # mapping, bigcommerce_4xx, dataverse_4xx, format, throttled, server, ...
    description: str  # one line, safe to log


def classify(exc: BaseException) -> Failure:
    text = _one_line(exc)
    if isinstance(exc, MappingError | IntakeError):
        return Failure("permanent", "mapping", text)
    if isinstance(exc, DataError):
        return Failure("permanent", "data", text)
    if isinstance(exc, MessageFormatError):
        return Failure("permanent", "format", text)
    if isinstance(exc, bc.RateLimitedError | dv.ThrottledError):
        return Failure("transient", "throttled", text)
    if isinstance(exc, bc.ServerError | dv.ServerError):
        return Failure("transient", "server", text)
    if isinstance(exc, bc.TransportError | dv.TransportError | TimeoutError):
        return Failure("transient", "transport", text)
    if isinstance(exc, bc.OutcomeUnknownError | dv.OutcomeUnknownError):
        return Failure("transient", "outcome_unknown", text)
    if isinstance(exc, dv.RequestTimeoutError | dv.ConcurrencyError):
        return Failure("transient", "dataverse_conflict", text)
    if isinstance(exc, bc.NotFoundError):
        return Failure("permanent", "bigcommerce_not_found", text)
    if isinstance(exc, bc.ClientError):
        return Failure("permanent", "bigcommerce_4xx", text)
    if isinstance(exc, dv.ClientError | dv.ApiError):
        status = getattr(exc, "status", None)
        if status is not None and status >= 500:
            return Failure("transient", "server", text)
        return Failure("permanent", "dataverse_4xx", text)
    return Failure("transient", "unexpected", f"{type(exc).__name__}: {text}")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:1000] or type(exc).__name__
