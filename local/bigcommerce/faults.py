"""Fault injection: force the next N responses under a path prefix to an error status.

A forced 429 carries no rate-limit headers, which is how BigCommerce signals platform load
(as opposed to an exhausted quota).
"""

from __future__ import annotations

from local.standin import faults
from local.standin.faults import Fault


class FaultInjector(faults.FaultInjector[Fault]):
    def add(self, path_prefix: str, status: int, count: int, method: str | None = None) -> Fault:
        faults.validate(status, count)
        return self.arm(
            Fault(self.next_id(), path_prefix, status, count, faults.method_filter(method))
        )
