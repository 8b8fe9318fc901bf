"""The simulator's settings, read once from the environment.

* `BIGCOMMERCE_STORES`: comma-separated store hashes the simulator serves.
* `BIGCOMMERCE_<HASH>_ACCESS_TOKEN`: the `X-Auth-Token` each store accepts.
* `BIGCOMMERCE_<HASH>_CLIENT_SECRET`: the API account's client secret (webhook signatures).
* `LOCAL_BIGCOMMERCE_QUOTA`: `requests/window_seconds`, default `150/30` (Standard plan).
* `LOCAL_BIGCOMMERCE_LATENCY_MS`: `fixed` or `fixed,jitter` added to every API response, default 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from local.standin import settings as standin_settings
from local.standin.settings import Latency


@dataclass(frozen=True, slots=True)
class StoreConfig:
    store_hash: str
    access_token: str
    client_secret: str = ""


@dataclass(frozen=True, slots=True)
class Quota:
    requests: int = 150
    window_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.requests < 1 or self.window_seconds <= 0:
            raise ValueError("a quota needs at least one request and a positive window")


@dataclass(frozen=True, slots=True)
class SimSettings:
    stores: tuple[StoreConfig, ...] = ()
    quota: Quota = field(default_factory=Quota)
    latency: Latency = field(default_factory=Latency)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SimSettings:
        hashes = [s.strip() for s in environ.get("BIGCOMMERCE_STORES", "").split(",") if s.strip()]
        stores = tuple(
            StoreConfig(
                h,
                environ.get(f"BIGCOMMERCE_{h.upper()}_ACCESS_TOKEN", ""),
                environ.get(f"BIGCOMMERCE_{h.upper()}_CLIENT_SECRET", ""),
            )
            for h in hashes
        )
        quota = parse_quota(environ.get("LOCAL_BIGCOMMERCE_QUOTA", "150/30"))
        latency = parse_latency(environ.get("LOCAL_BIGCOMMERCE_LATENCY_MS", "0"))
        return cls(stores, quota, latency)


def parse_quota(raw: str) -> Quota:
    """`150/30` (requests per window of seconds) or `150` (per the standard 30 s window)."""
    return standin_settings.parse_per_window(
        raw,
        Quota,
        default_window=30.0,
        name="LOCAL_BIGCOMMERCE_QUOTA",
        form="'150/30' (requests/seconds)",
    )


def parse_latency(raw: str) -> Latency:
    """`150` (fixed ms) or `150,30` (fixed ms, plus up to 30 ms of random jitter)."""
    return standin_settings.parse_latency(raw, "LOCAL_BIGCOMMERCE_LATENCY_MS")
