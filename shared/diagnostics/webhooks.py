"""The webhooks check of one store: its hooks exist, are active and point at this deployment
(WEBHOOK_DESTINATION_URL, with the secret header and the function key). It is the webhook health
check of `shared/reconciliation/webhook_health.py` run as a dry run, which plans the repairs it
would make and makes none; every planned repair is a finding. Listing hooks needs no OAuth scope
(webhooks use the API account's default scope), so this runs whatever the access check found.

Without WEBHOOK_DESTINATION_URL only whether each wanted scope has an active hook can be told:
where the hooks point is then not verified (a warning).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Protocol

from shared.bigcommerce.errors import UnauthorizedError
from shared.diagnostics.bigcommerce import token_hint
from shared.diagnostics.result import CheckResult
from shared.reconciliation.webhook_health import HookReport

WORDS: Final[Mapping[str, str]] = {
    "reenable": "inactive",
    "destination": "points elsewhere",
    "headers": "sends other headers",
}


class HookCheck(Protocol):
    """`WebhookHealth` satisfies it."""

    async def check_hooks(
        self, store_hash: str, *, dry_run: bool = ..., trigger: str = ...
    ) -> HookReport: ...


def check_name(store_hash: str) -> str:
    return f"webhooks {store_hash}"


def repair_hint(store_hash: str) -> str:
    return (
        f"`python -m cli webhooks register --store {store_hash} --url <WEBHOOK_DESTINATION_URL>` "
        "creates or fixes them (the app's reconciliation timer does too, every "
        "RECONCILE_SCHEDULE); `python -m cli webhooks status` shows each hook"
    )


NO_DESTINATION_HINT: Final = (
    "set WEBHOOK_DESTINATION_URL (the app's https://<app>.azurewebsites.net/api/webhooks/"
    "bigcommerce) and WEBHOOK_FUNCTION_KEY to the values the app has, then run the doctor again"
)


def findings(report: HookReport) -> list[str]:
    """What is wrong with the store's hooks, one phrase each."""
    found: list[str] = []
    for repair in report.repairs:
        if repair.action == ("create",):
            found.append(f"missing {repair.scope}")
        else:
            words = ", ".join(WORDS[a] for a in repair.action)
            found.append(f"{repair.scope} (hook {repair.hook_id}) {words}")
    found += [f"missing {scope}" for scope in report.missing]
    found += [f"conflict: {c}" for c in report.conflicts]
    found += [
        f"BigCommerce blocks deliveries to {b.destination} ({b.time_left}s left)"
        for b in report.blocked_domains
    ]
    found += list(report.errors)
    return found


async def check_store_hooks(health: HookCheck, store_hash: str) -> CheckResult:
    name = check_name(store_hash)
    try:
        report = await health.check_hooks(store_hash, dry_run=True, trigger="doctor")
    except UnauthorizedError:
        return CheckResult.failed(
            name, "the access token was refused (401)", token_hint(store_hash)
        )
    problems = findings(report)
    if problems:
        return CheckResult.failed(name, "; ".join(problems), repair_hint(store_hash))
    active = [h for h in report.hooks if h.role == "wanted"]
    scopes = ", ".join(h.scope for h in active)
    if not report.complete:
        return CheckResult.warned(
            name,
            f"{len(active)} hooks active ({scopes}); destination not verified: "
            "WEBHOOK_DESTINATION_URL is not set",
            NO_DESTINATION_HINT,
        )
    return CheckResult.passed(
        name, f"{len(active)} hooks active at {report.destination} ({scopes})"
    )
