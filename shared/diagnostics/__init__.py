"""The operator's doctor: checks that a configured environment works end to end, changing
nothing. Each check is a small async function over a port, returning a `CheckResult`; the
runner runs them concurrently, each under its own timeout; `report` renders the results.
`python -m cli doctor` wires the checks to the real adapters."""

from shared.diagnostics.result import CheckResult, Status
from shared.diagnostics.runner import DEFAULT_TIMEOUT_SECONDS, Check, run_checks

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "Check", "CheckResult", "Status", "run_checks"]
