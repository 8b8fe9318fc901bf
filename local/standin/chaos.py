"""Random faults: a share of one caller's API requests fail, drawn from a seeded `random.Random`.

Where `faults.py` arms the next N requests under a path, this fails requests at a rate, the way a
busy service does, for the chaos run (`python -m local.chaos`). Each stand-in names the kinds it
knows and answers them itself; this module only decides which request gets which kind, and
counts what it injected. Settings (`PUT /__sim/chaos`, a partial update):

* `rate`: the share of matching requests that fail, 0 to 1 (0 switches it off);
* `kinds`: `{kind: weight}`, which fault a failing request gets, by relative weight;
* `caller`: only requests of this caller fail (a stand-in says what a caller is: the Dataverse
  identity, the BigCommerce User-Agent); a prefix, empty for every caller. The chaos run aims
  at the connector, so that its own warehouse and merchant are not the ones failing;
* `delays_ms`: `{kind: milliseconds}` for the kinds that hold the answer back;
* `seed`: restarts the random sequence (same seed, same requests in the same order, same faults).

`GET /__sim/chaos` shows the settings and `injected`, the count per kind since the last reset.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.standin.admin import error, json_object

PATH: Final = "/__sim/chaos"


@dataclass(frozen=True, slots=True)
class ChaosSettings:
    rate: float = 0.0
    kinds: Mapping[str, float] = field(default_factory=dict)
    caller: str = ""
    delays_ms: Mapping[str, int] = field(default_factory=dict)
    seed: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "kinds": dict(self.kinds),
            "caller": self.caller,
            "delays_ms": dict(self.delays_ms),
            "seed": self.seed,
        }


def updated(
    current: ChaosSettings, body: Mapping[str, Any], known: Collection[str]
) -> ChaosSettings:
    """`current` with the fields of `body` (the admin API's PUT); ValueError names a bad one."""
    unknown = sorted(set(body) - {"rate", "kinds", "caller", "delays_ms", "seed"})
    if unknown:
        raise ValueError(f"unknown chaos settings: {', '.join(unknown)}")
    changes: dict[str, Any] = {}
    if "rate" in body:
        rate = body["rate"]
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise ValueError("rate must be a number from 0 to 1")
        changes["rate"] = float(rate)
    for name in ("kinds", "delays_ms"):
        if name in body:
            changes[name] = _per_kind(name, body[name], known)
    if "caller" in body:
        if not isinstance(body["caller"], str):
            raise ValueError("caller must be a string")
        changes["caller"] = body["caller"]
    if "seed" in body:
        seed = body["seed"]
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("seed must be an integer or null")
        changes["seed"] = seed
    settings = replace(current, **changes)
    if settings.rate and not any(w > 0 for w in settings.kinds.values()):
        raise ValueError("a rate above 0 needs at least one kind with a positive weight")
    return settings


def _per_kind(name: str, value: object, known: Collection[str]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be an object of kind: number")
    checked: dict[str, Any] = {}
    for kind, number in value.items():
        if kind not in known:
            raise ValueError(f"{name}: unknown kind {kind!r} (known: {', '.join(sorted(known))})")
        if isinstance(number, bool) or not isinstance(number, int | float) or number < 0:
            raise ValueError(f"{name}: {kind} must be a non-negative number")
        checked[kind] = int(number) if name == "delays_ms" else float(number)
    return checked


class RandomFaults:
    """Thread-safe: the stand-ins draw from their event loop and from worker threads."""

    def __init__(
        self,
        known: Collection[str],
        new_random: Callable[[int | None], random.Random] = random.Random,
    ) -> None:
        self.known = frozenset(known)
        self._new_random = new_random
        self._lock = threading.Lock()
        self._settings = ChaosSettings()
        self._random = new_random(None)
        self._injected: Counter[str] = Counter()

    @property
    def settings(self) -> ChaosSettings:
        return self._settings

    def configure(self, body: Mapping[str, Any]) -> ChaosSettings:
        settings = updated(self._settings, body, self.known)
        with self._lock:
            if "seed" in body:
                self._random = self._new_random(settings.seed)
            self._settings = settings
        return settings

    def draw(self, caller: str) -> str | None:
        """The fault this request gets, counted, or None."""
        settings = self._settings
        if not settings.rate or not caller.startswith(settings.caller):
            return None
        with self._lock:
            if self._random.random() >= settings.rate:
                return None
            kinds = [k for k, w in settings.kinds.items() if w > 0]
            kind = self._random.choices(kinds, [settings.kinds[k] for k in kinds])[0]
            self._injected[kind] += 1
        return kind

    def delay_seconds(self, kind: str) -> float:
        return self._settings.delays_ms.get(kind, 0) / 1000

    def injected(self) -> dict[str, int]:
        with self._lock:
            return dict(self._injected)

    def as_json(self) -> dict[str, Any]:
        return {**self._settings.as_json(), "injected": self.injected()}

    def reset(self) -> None:
        with self._lock:
            self._settings = ChaosSettings()
            self._random = self._new_random(None)
            self._injected.clear()


def routes(of: Callable[[Request], RandomFaults]) -> list[Route]:
    """`GET` and `PUT /__sim/chaos` over the stand-in's `RandomFaults` (`of(request)`)."""

    async def show(request: Request) -> Response:
        return JSONResponse(of(request).as_json())

    async def change(request: Request) -> Response:
        faults = of(request)
        try:
            faults.configure(await json_object(request))
        except ValueError as exc:
            return error(400, str(exc))
        return JSONResponse(faults.as_json())

    return [
        Route(PATH, show, methods=["GET"]),
        Route(PATH, change, methods=["PUT"]),
    ]
