"""The stand-in's settings, read once from the environment (the admin API can change most later).

* `LOCAL_DATAVERSE_TOKEN`: the bearer token the stand-in accepts (one identity per token; any
  other token is refused with 401). Extra tokens: `LOCAL_DATAVERSE_EXTRA_TOKENS` (comma-separated),
  so tests can be two callers with separate service-protection budgets.
* `LOCAL_DATAVERSE_DB`: SQLite file holding rows, metadata and the change log (WAL mode). Unset:
  an in-memory database private to the process, gone when it exits.
* `LOCAL_DATAVERSE_PROVISIONED`: `1` starts with every schema.py column and key present and every
  key Active (the state after provisioning); default `0`: standard tables with their standard
  columns only, no custom columns, keys or tables.
* `LOCAL_DATAVERSE_IOM`: `0` leaves out IOM's tables (msdyn_*), as in an environment without IOM;
  default `1`.
* `LOCAL_DATAVERSE_KEY_ACTIVATION_SECONDS`: how long a new alternate key's index takes to build
  (Pending, then InProgress, then Active or Failed); default `2`.
* `LOCAL_DATAVERSE_LATENCY_MS`: `fixed` or `fixed,jitter` added to every API request; default 0.
* `LOCAL_DATAVERSE_REQUEST_LIMIT`: `requests/window_seconds`, default `6000/300`.
* `LOCAL_DATAVERSE_EXECUTION_LIMIT`: `milliseconds/window_seconds` of combined execution time,
  default `1200000/300`.
* `LOCAL_DATAVERSE_CONCURRENCY_LIMIT`: concurrent requests per identity, default `52`.
* `LOCAL_DATAVERSE_DOP_HINT`: the `x-ms-dop-hint` response header value; `0` leaves it out;
  default `4`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from local.standin import settings as standin_settings
from local.standin.settings import Latency


@dataclass(frozen=True, slots=True)
class Window:
    """An amount (requests, or milliseconds of execution time) allowed per sliding window."""

    amount: int
    window_seconds: float

    def __post_init__(self) -> None:
        if self.amount < 1 or self.window_seconds <= 0:
            raise ValueError("a limit needs a positive amount and a positive window")


@dataclass(frozen=True, slots=True)
class Limits:
    """Service protection limits per identity, defaulting to the documented ones (api-limits)."""

    requests: Window = field(default_factory=lambda: Window(6000, 300.0))
    execution_ms: Window = field(default_factory=lambda: Window(1_200_000, 300.0))
    concurrency: int = 52

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("the concurrency limit must be at least 1")


@dataclass(frozen=True, slots=True)
class StandinSettings:
    tokens: tuple[str, ...] = ()
    db_path: str | None = None  # None: in-memory, per process
    provisioned: bool = False
    iom: bool = True
    key_activation_seconds: float = 2.0
    latency: Latency = field(default_factory=Latency)
    limits: Limits = field(default_factory=Limits)
    dop_hint: int = 4

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> StandinSettings:
        tokens = [environ.get("LOCAL_DATAVERSE_TOKEN", "")]
        tokens += environ.get("LOCAL_DATAVERSE_EXTRA_TOKENS", "").split(",")
        return cls(
            tokens=tuple(t.strip() for t in tokens if t.strip()),
            db_path=environ.get("LOCAL_DATAVERSE_DB") or None,
            provisioned=_flag(environ, "LOCAL_DATAVERSE_PROVISIONED", False),
            iom=_flag(environ, "LOCAL_DATAVERSE_IOM", True),
            key_activation_seconds=_number(environ, "LOCAL_DATAVERSE_KEY_ACTIVATION_SECONDS", 2.0),
            latency=parse_latency(environ.get("LOCAL_DATAVERSE_LATENCY_MS", "0")),
            limits=Limits(
                requests=parse_window(
                    environ.get("LOCAL_DATAVERSE_REQUEST_LIMIT", "6000/300"),
                    "LOCAL_DATAVERSE_REQUEST_LIMIT",
                ),
                execution_ms=parse_window(
                    environ.get("LOCAL_DATAVERSE_EXECUTION_LIMIT", "1200000/300"),
                    "LOCAL_DATAVERSE_EXECUTION_LIMIT",
                ),
                concurrency=int(_number(environ, "LOCAL_DATAVERSE_CONCURRENCY_LIMIT", 52)),
            ),
            dop_hint=int(_number(environ, "LOCAL_DATAVERSE_DOP_HINT", 4)),
        )


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be 1 or 0, got {raw!r}")


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc
    if value < 0:
        raise ValueError(f"{name} cannot be negative, got {raw!r}")
    return value


def parse_latency(raw: str) -> Latency:
    """`150` (fixed ms) or `150,30` (fixed ms, plus up to 30 ms of random jitter)."""
    return standin_settings.parse_latency(raw, "LOCAL_DATAVERSE_LATENCY_MS")


def parse_window(raw: str, name: str = "limit") -> Window:
    """`6000/300` (amount per window of seconds) or `6000` (per the documented 300 s window)."""
    return standin_settings.parse_per_window(
        raw, Window, default_window=300.0, name=name, form="'6000/300' (amount/seconds)"
    )
