"""The doctor's report: a table with a hint under each row that did not pass, a summary line,
or JSON; and the exit status the results call for. Pure."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any, Final

from shared.diagnostics.result import CheckResult, Status

LABELS: Final = {Status.PASS: "PASS", Status.WARN: "WARN", Status.FAIL: "FAIL"}
WIDTH: Final = 100  # the detail and hint column wraps at this line width


def all_passed(results: Sequence[CheckResult]) -> bool:
    """True when nothing failed (warnings do not fail the doctor)."""
    return not any(r.status is Status.FAIL for r in results)


def counts(results: Sequence[CheckResult]) -> dict[str, int]:
    return {s.value: sum(1 for r in results if r.status is s) for s in Status}


def summary(results: Sequence[CheckResult]) -> str:
    counted = counts(results)
    verdict = "all checks passed" if all_passed(results) else "some checks failed"
    return (
        f"{verdict}: {counted['pass']} passed, {counted['warn']} warning(s), "
        f"{counted['fail']} failed"
    )


def render_table(results: Sequence[CheckResult], width: int = WIDTH) -> str:
    """CHECK, STATUS and DETAIL columns; the detail wraps in its column and a row that did not
    pass is followed by its hint, indented under the detail."""
    name_width = max([len("CHECK"), *(len(r.name) for r in results)])
    indent = name_width + 2 + len("STATUS") + 2
    room = max(30, width - indent)
    lines = [f"{'CHECK'.ljust(name_width)}  STATUS  DETAIL"]
    for result in results:
        detail = textwrap.wrap(result.detail, room, break_on_hyphens=False) or [""]
        head = f"{result.name.ljust(name_width)}  {LABELS[result.status].ljust(6)}  "
        lines.append((head + detail[0]).rstrip())
        lines += [" " * indent + more for more in detail[1:]]
        if result.status is not Status.PASS and result.hint:
            hint = textwrap.wrap(
                f"hint: {result.hint}", room, subsequent_indent="  ", break_on_hyphens=False
            )
            lines += [" " * indent + line for line in hint]
    lines += ["", summary(results)]
    return "\n".join(lines)


def to_json(results: Sequence[CheckResult]) -> dict[str, Any]:
    return {
        "ok": all_passed(results),
        "counts": counts(results),
        "checks": [r.to_json() for r in results],
    }
