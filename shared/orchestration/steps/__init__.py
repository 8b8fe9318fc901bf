"""The lifecycle steps, by name. Each takes the run's `OrderContext` and returns a `StepResult`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from shared.orchestration.context import OrderContext
from shared.orchestration.flow import StepName
from shared.orchestration.steps.cancel import cancel
from shared.orchestration.steps.choose_source import choose_source
from shared.orchestration.steps.complete import complete
from shared.orchestration.steps.record_refunds import record_refunds
from shared.orchestration.steps.result import StepResult
from shared.orchestration.steps.ship import ship
from shared.orchestration.steps.sync_order import sync_order
from shared.orchestration.steps.validate import validate

Step = Callable[[OrderContext], Awaitable[StepResult]]

STEPS: Final[Mapping[StepName, Step]] = {
    StepName.SYNC_ORDER: sync_order,
    StepName.CANCEL: cancel,
    StepName.VALIDATE: validate,
    StepName.CHOOSE_SOURCE: choose_source,
    StepName.SHIP: ship,
    StepName.COMPLETE: complete,
    StepName.RECORD_REFUNDS: record_refunds,
}

__all__ = ["STEPS", "Step", "StepResult"]
