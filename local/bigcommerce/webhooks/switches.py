"""Delivery options and the network-realism switches, with their seeded random source.

The switches model what the docs warn about (`overview.mdx` §Troubleshooting, and the retry
design): duplicated callbacks and callbacks out of order. They are off by default.

* `duplicate_probability`: each attempt is, with this probability, sent twice (same body, same
  `webhook-id`). The copy counts towards the domain's blocklist statistics like any request, but
  its outcome never schedules a retry or a delivery exception: the original does that.
* `reorder_window`: fresh deliveries (first attempts and their duplicates) are held back until
  this many are waiting, or `reorder_hold_seconds` of real time has passed since the first, then
  sent in a shuffled order. 1 turns it off. Retries are not held back: their timing already
  reorders them.
* `drop_probability`: each attempt is, with this probability, lost before it leaves: nothing is
  sent, and the simulator records the attempt as `dropped` and treats the event as delivered: no
  retry, no blocklist count, no delivery exception. This models an event BigCommerce silently
  never delivers, which only a reconciliation poll can recover. (A packet lost on the wire would
  instead surface as a timeout and be retried; a receiver that does not answer simulates that.)
* `seed`: seeds `random.Random`, so duplicates, drops and shuffles repeat run after run. All
  draws happen in one task in the order jobs are dispatched: with the same seed and the same
  sequence of events, the same attempts are duplicated, dropped and shuffled the same way.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Final

from local.bigcommerce.webhooks.validation import InvalidBody

DEFAULT_TIMEOUT_SECONDS: Final = 10.0
MAX_REORDER_WINDOW: Final = 1000


@dataclass(frozen=True, slots=True)
class NetworkSwitches:
    duplicate_probability: float = 0.0
    reorder_window: int = 1
    reorder_hold_seconds: float = 0.5  # real seconds
    drop_probability: float = 0.0
    seed: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    """Constructor options of the deliverer; `switches` are also settable at run time."""

    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS  # real seconds per request; 2xx in time = ok
    switches: NetworkSwitches = NetworkSwitches()
    log_size: int = 20_000  # attempts kept for /__sim/webhooks/deliveries
    paused: bool = False


def _probability(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidBody({name: "must be a number from 0 to 1"})
    return float(value)


def updated_switches(current: NetworkSwitches, body: Mapping[str, Any]) -> NetworkSwitches:
    """Applies a partial update (the admin API's PUT body); unknown fields are refused."""
    known = {f.name for f in fields(NetworkSwitches)}
    unknown = sorted(set(body) - known - {"timeout_seconds"})
    if unknown:
        raise InvalidBody({name: "unknown switch" for name in unknown})
    changes: dict[str, Any] = {}
    for name in ("duplicate_probability", "drop_probability"):
        if name in body:
            changes[name] = _probability(name, body[name])
    if "reorder_window" in body:
        window = body["reorder_window"]
        if isinstance(window, bool) or not isinstance(window, int):
            raise InvalidBody({"reorder_window": "must be an integer"})
        if not 1 <= window <= MAX_REORDER_WINDOW:
            raise InvalidBody({"reorder_window": f"must be from 1 to {MAX_REORDER_WINDOW}"})
        changes["reorder_window"] = window
    if "reorder_hold_seconds" in body:
        hold = body["reorder_hold_seconds"]
        if isinstance(hold, bool) or not isinstance(hold, int | float) or not 0 < hold <= 60:
            raise InvalidBody({"reorder_hold_seconds": "must be a number in (0, 60]"})
        changes["reorder_hold_seconds"] = float(hold)
    if "seed" in body:
        seed = body["seed"]
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise InvalidBody({"seed": "must be an integer or null"})
        changes["seed"] = seed
    return replace(current, **changes)


def timeout_from(body: Mapping[str, Any], current: float) -> float:
    if "timeout_seconds" not in body:
        return current
    value = body["timeout_seconds"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 300:
        raise InvalidBody({"timeout_seconds": "must be a number in (0, 300]"})
    return float(value)


def new_random(switches: NetworkSwitches) -> random.Random:
    return random.Random(switches.seed)
