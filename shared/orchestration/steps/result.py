"""What a step reports: its outcome for the journal, and whether the flow goes on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal["done", "skipped", "waiting", "hold"]


@dataclass(frozen=True, slots=True)
class StepResult:
    outcome: Outcome
    summary: str
    stop: bool = False  # later steps of this run do not run
    park: bool = False  # a new hold: the message is parked for an operator to replay

    @classmethod
    def done(cls, summary: str) -> StepResult:
        return cls("done", summary)

    @classmethod
    def skipped(cls, summary: str, *, stop: bool = False) -> StepResult:
        return cls("skipped", summary, stop=stop)

    @classmethod
    def waiting(cls, summary: str) -> StepResult:
        return cls("waiting", summary, stop=True)

    @classmethod
    def hold(cls, summary: str, *, new: bool) -> StepResult:
        return cls("hold", summary, stop=True, park=new)
