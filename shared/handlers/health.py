"""Liveness: what an anonymous probe may learn, which is nothing about tenants or secrets."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from shared.config import Settings
from shared.version import VERSION


@dataclass(frozen=True)
class HealthReport:
    status: str
    version: str
    environment: str
    stores: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def check_health(settings: Settings) -> HealthReport:
    return HealthReport(
        status="ok",
        version=VERSION,
        environment=settings.environment_name,
        stores=len(settings.stores),
    )
