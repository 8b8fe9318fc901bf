"""What one doctor check found: its name, pass/fail/warn, what it saw and, unless it passed,
what to do about it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 - a status, not a password
    WARN = "warn"  # works, but something could not be verified or is not as it should be
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    hint: str = ""  # what to do; empty when the check passed

    @classmethod
    def passed(cls, name: str, detail: str) -> CheckResult:
        return cls(name, Status.PASS, detail)

    @classmethod
    def failed(cls, name: str, detail: str, hint: str) -> CheckResult:
        return cls(name, Status.FAIL, detail, hint)

    @classmethod
    def warned(cls, name: str, detail: str, hint: str) -> CheckResult:
        return cls(name, Status.WARN, detail, hint)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "hint": self.hint or None,
        }
