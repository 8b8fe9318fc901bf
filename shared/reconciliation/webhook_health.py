"""Self-healing webhooks: check a store's hooks, repair them, and sweep what they missed.

BigCommerce deactivates a hook after about 48 hours of failed deliveries, or after 90 days of
inactivity, and drops what was still queued for it; it blocks a whole domain for 3 minutes when
too many deliveries fail (bigcommerce.md §1.4). `WebhookHealth.check_hooks(store_hash)`:

1. lists the store's hooks (`GET /v3/hooks`) and reads `GET /v3/hooks/admin` (each hook's status,
   the blocked domains);
2. plans (`hooks_plan.py`): with `WEBHOOK_DESTINATION_URL` it creates what is missing and fixes
   what differs; without it, it can only re-enable inactive hooks and report missing ones; without
   the function key (`WEBHOOK_FUNCTION_KEY`, or the CLI's) it fixes existing hooks, keeping
   their key, but reports missing ones rather than create hooks every delivery of would get 401;
3. applies the plan through the connector's BigCommerce client;
4. sets the store's order watermark (`watermarks/<store>.orders`) back to when a repaired hook
   stopped delivering, less a margin, so that the next reconciliation sweep fetches every order
   changed since; the watermark only ever moves back here, never forward;
5. records the outcome in the state store (partition `hooks`, key `<store>`, last writer wins):
   each hook's state and since when it is inactive, the repairs made, the blocked domains;
6. logs one structured line (`event: webhook_health`) with the counts.

When did a hook stop delivering? A hook the platform deactivated (`status: deactivated`, or any
inactive hook whose status is unknown) failed its oldest dropped event's first delivery a whole
retry window (60 s + ... + 86,400 s, about 48 h) before it was switched off; the moment it was
switched off is when we first saw it inactive, taken as its `updated_at`. A hook the app set
inactive (`status: inactive`) stopped at its `updated_at`. A repointed hook delivered elsewhere
since its `updated_at`; a hook whose headers were wrong failed since its `updated_at`, but within
the retry window only (older failures would have deactivated it). A hook created again was last
known to deliver at the previous check. The deliveryException hook carries notices, not orders:
repairing it sets nothing back.

A store's checks do not overlap: each takes the lease `hooks.<store>` (shared/state/lease.py);
one that cannot is skipped, since the one running does the same work. A dry run (what
`python -m cli webhooks status` shows) plans, changes nothing and records nothing.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, Protocol

from shared.bigcommerce.dates import parse_datetime
from shared.bigcommerce.errors import BigCommerceError
from shared.bigcommerce.models import HooksAdmin, Webhook
from shared.bigcommerce.registry import UnknownStoreError
from shared.bigcommerce.requests import HookCreate, HookUpdate
from shared.config import Settings
from shared.reconciliation.hooks_plan import (
    DELIVERY_EXCEPTION,
    CreateHook,
    Fix,
    HookPlan,
    UpdateHook,
    desired_hooks,
    header_names,
    mask_destination,
    plan_hooks,
    plan_reenable,
    webhook_headers,
)
from shared.reconciliation.watermarks import PARTITION as WATERMARKS_PARTITION
from shared.reconciliation.watermarks import watermark_key
from shared.state import lease
from shared.state.ports import ConcurrencyError, StateError, StateStore

log = logging.getLogger("shared.reconciliation.webhooks")

HOOKS_PARTITION: Final = "hooks"
ORDERS_STREAM: Final = "orders"
DESTINATION_SETTING: Final = "WEBHOOK_DESTINATION_URL"
FUNCTION_KEY_SETTING: Final = "WEBHOOK_FUNCTION_KEY"
# BigCommerce's retry delays after a failed delivery (overview.mdx §Callback retry mechanism);
# the hook is deactivated when the last retry fails.
RETRY_DELAYS_SECONDS: Final = (60, 180, 300, 600, 900, 1800, 3600, 7200, 21600, 50400, 86400)
RETRY_WINDOW: Final = timedelta(seconds=sum(RETRY_DELAYS_SECONDS))
DEFAULT_MARGIN: Final = timedelta(minutes=5)
LEASE_DURATION: Final = timedelta(minutes=2)
MAX_RECORDED_REPAIRS: Final = 20
_WATERMARK_ATTEMPTS: Final = 3

Clock = Callable[[], datetime]
HookStatusName = Literal["active", "inactive", "deactivated"]
Role = Literal["wanted", "extra"]
RepairAction = Literal["create", "reenable", "destination", "headers"]


class HooksApi(Protocol):
    """The Webhooks V3 calls the check makes; `BigCommerceClient` satisfies it."""

    async def list_hooks(self) -> list[Webhook]: ...

    async def create_hook(self, hook: HookCreate) -> Webhook: ...

    async def update_hook(self, hook_id: int, update: HookUpdate) -> Webhook: ...

    async def get_hooks_admin(self) -> HooksAdmin: ...


# -- the report -----------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _when(value: object) -> datetime | None:
    try:
        return parse_datetime(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class HookState:
    """One hook as the check left it. The destination is masked; headers are named, not shown."""

    id: int
    scope: str
    destination: str
    is_active: bool
    status: HookStatusName
    role: Role
    updated_at: datetime | None = None
    inactive_since: datetime | None = None
    headers: tuple[str, ...] = ()
    problem: str = ""  # what the plan says about it ("" when it is fine)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scope": self.scope,
            "destination": self.destination,
            "is_active": self.is_active,
            "status": self.status,
            "role": self.role,
            "updated_at": _iso(self.updated_at),
            "inactive_since": _iso(self.inactive_since),
            "headers": list(self.headers),
            "problem": self.problem,
        }


@dataclass(frozen=True, slots=True)
class Repair:
    """A change the check made (or, in a dry run, would make)."""

    action: tuple[RepairAction, ...]
    scope: str
    destination: str  # masked
    hook_id: int | None  # None for a create that failed (or was not made)
    ok: bool | None  # None: planned, not made (dry run)
    error: str | None = None
    stopped_at: datetime | None = None  # since when the hook missed events, when known

    @property
    def label(self) -> str:
        return "+".join(self.action)

    def to_json(self) -> dict[str, Any]:
        return {
            "action": list(self.action),
            "scope": self.scope,
            "destination": self.destination,
            "hook_id": self.hook_id,
            "ok": self.ok,
            "error": self.error,
            "stopped_at": _iso(self.stopped_at),
        }


@dataclass(frozen=True, slots=True)
class BlockedDomainState:
    destination: str
    time_left: int | None
    reasons: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "time_left": self.time_left,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True, slots=True)
class DeliveryNotice:
    """What a `store/hook/deliveryException` callback said."""

    hook_id: int | None
    error_code: int | None
    message: str
    created_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "hook_id": self.hook_id,
            "error_code": self.error_code,
            "message": self.message,
            "created_at": _iso(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class HookReport:
    store_hash: str
    checked_at: datetime
    trigger: str
    dry_run: bool = False
    complete: bool = True  # False: no destination URL, so only re-enabling was possible
    destination: str | None = None  # the ingress URL the hooks should use (masked)
    hooks: tuple[HookState, ...] = ()
    repairs: tuple[Repair, ...] = ()
    missing: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    blocked_domains: tuple[BlockedDomainState, ...] = ()
    errors: tuple[str, ...] = ()
    watermark_target: datetime | None = None  # where the repairs say the sweep must restart
    watermark_rewound_to: datetime | None = None  # where it was set (None: left as it was)
    previous_check: datetime | None = None
    skipped: str | None = None  # why the check did not run (another check held the lease)
    recorded: bool = False

    @property
    def hooks_created(self) -> int:
        return sum(1 for r in self.repairs if r.ok and r.action == ("create",))

    @property
    def hooks_repaired(self) -> int:
        return sum(1 for r in self.repairs if r.ok and r.action != ("create",))

    @property
    def failed_repairs(self) -> tuple[Repair, ...]:
        return tuple(r for r in self.repairs if r.ok is False)

    @property
    def healthy(self) -> bool:
        """Every wanted hook active and right, nothing missing, blocked or failed."""
        if self.skipped is not None:
            return True
        return not (
            self.missing
            or self.conflicts
            or self.blocked_domains
            or self.errors
            or self.failed_repairs
            or any(r.ok is None for r in self.repairs)
            or any(h.role == "wanted" and not h.is_active for h in self.hooks)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "store_hash": self.store_hash,
            "checked_at": self.checked_at.isoformat(),
            "trigger": self.trigger,
            "dry_run": self.dry_run,
            "complete": self.complete,
            "destination": self.destination,
            "healthy": self.healthy,
            "hooks": [h.to_json() for h in self.hooks],
            "repairs": [r.to_json() for r in self.repairs],
            "hooks_created": self.hooks_created,
            "hooks_repaired": self.hooks_repaired,
            "missing": list(self.missing),
            "conflicts": list(self.conflicts),
            "blocked_domains": [b.to_json() for b in self.blocked_domains],
            "errors": list(self.errors),
            "watermark_target": _iso(self.watermark_target),
            "watermark_rewound_to": _iso(self.watermark_rewound_to),
            "previous_check": _iso(self.previous_check),
            "skipped": self.skipped,
        }


# -- the check ------------------------------------------------------------------------------------


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Previous:
    """What the last recorded check knew."""

    checked_at: datetime | None = None
    inactive_since: Mapping[int, datetime] = field(default_factory=dict)
    scopes_seen: Mapping[str, datetime] = field(default_factory=dict)  # scope -> last seen at
    repairs: tuple[Mapping[str, Any], ...] = ()
    value: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, value: Mapping[str, Any] | None) -> _Previous:
        if not value:
            return cls()
        checked_at = _when(value.get("checked_at"))
        inactive: dict[int, datetime] = {}
        seen: dict[str, datetime] = {}
        for raw in value.get("hooks") or ():
            if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), int):
                continue
            since = _when(raw.get("inactive_since"))
            if since is not None:
                inactive[raw["id"]] = since
            scope = raw.get("scope")
            if isinstance(scope, str) and raw.get("role") == "wanted" and checked_at is not None:
                last = since if since is not None else checked_at
                seen[scope] = min(last, seen.get(scope, last))
        repairs = tuple(r for r in value.get("repairs") or () if isinstance(r, Mapping))
        return cls(checked_at, inactive, seen, repairs, value)


class WebhookHealth:
    def __init__(
        self,
        settings: Settings,
        clients: Callable[[str], HooksApi],
        state: StateStore | None,
        *,
        clock: Clock = _utc_now,
        margin: timedelta = DEFAULT_MARGIN,
        owner: str | None = None,
    ) -> None:
        self._settings = settings
        self._clients = clients
        self._state = state
        self._clock = clock
        self._margin = margin
        self._owner = owner or f"webhook-health-{uuid.uuid4().hex[:12]}"

    async def check_all(self, *, trigger: str = "timer") -> list[HookReport]:
        """Every configured store; a store whose check fails is logged and the others go on."""
        reports: list[HookReport] = []
        for store in self._settings.stores:
            try:
                reports.append(await self.check_hooks(store.store_hash, trigger=trigger))
            except (BigCommerceError, StateError) as exc:
                log.error(
                    "webhook health check of store %s failed: %s",
                    store.store_hash,
                    exc,
                    extra={"event": "webhook_health_failed", "store_hash": store.store_hash},
                )
        return reports

    async def handle_notice(
        self, application_properties: Mapping[str, object], body: bytes
    ) -> HookReport | None:
        """A `store/hook/deliveryException` message from `order-events`: check that store's
        hooks at once. Never raises for BigCommerce or state failures (the timer's next check
        is the fallback), so the message is completed rather than redelivered in a loop."""
        notice = read_notice(body)
        store_hash = application_properties.get("store_hash")
        fields = {"event": "webhook_delivery_exception", "store_hash": store_hash}
        if notice is not None:
            fields |= {"hook_id": notice.hook_id, "error_code": notice.error_code}
        log.warning(
            "BigCommerce reports a delivery exception: %s",
            notice.message if notice is not None else "(unreadable body)",
            extra=fields,
        )
        if not isinstance(store_hash, str) or self._settings.store(store_hash) is None:
            log.error("delivery exception for an unknown store %r: ignored", store_hash)
            return None
        try:
            return await self.check_hooks(store_hash, trigger="delivery_exception", notice=notice)
        except (BigCommerceError, StateError) as exc:
            log.error(
                "webhook health check of store %s failed: %s",
                store_hash,
                exc,
                extra={"event": "webhook_health_failed", "store_hash": store_hash},
            )
            return None

    async def check_hooks(
        self,
        store_hash: str,
        *,
        destination_url: str | None = None,
        function_key: str | None = None,
        dry_run: bool = False,
        trigger: str = "check",
        notice: DeliveryNotice | None = None,
    ) -> HookReport:
        """Checks and repairs one store's hooks (see the module doc). `destination_url` and
        `function_key` override WEBHOOK_DESTINATION_URL and WEBHOOK_FUNCTION_KEY (the CLI's
        `register`). Raises BigCommerceError when the hooks cannot be listed, StateError when
        the state store fails; a repair that fails is reported, not raised."""
        if self._settings.store(store_hash) is None:
            raise UnknownStoreError(store_hash)
        if dry_run or self._state is None:
            return await self._check(
                store_hash, destination_url, function_key, dry_run, trigger, notice
            )
        held = await lease.acquire(
            self._state, f"hooks.{store_hash}", self._owner, LEASE_DURATION, self._clock
        )
        if held is None:
            log.info(
                "webhook health check of store %s skipped: another check is running",
                store_hash,
                extra={"event": "webhook_health", "store_hash": store_hash, "skipped": True},
            )
            return HookReport(
                store_hash, self._clock(), trigger, skipped="another check of this store is running"
            )
        try:
            return await self._check(
                store_hash, destination_url, function_key, dry_run, trigger, notice
            )
        finally:
            await lease.release(self._state, held)

    async def _check(
        self,
        store_hash: str,
        destination_url: str | None,
        function_key: str | None,
        dry_run: bool,
        trigger: str,
        notice: DeliveryNotice | None,
    ) -> HookReport:
        api = self._clients(store_hash)
        started = self._clock()
        actual = await api.list_hooks()
        errors: list[str] = []
        admin: HooksAdmin | None = None
        try:
            admin = await api.get_hooks_admin()
        except BigCommerceError as exc:
            errors.append(f"hooks admin unavailable: {exc}")
        statuses: dict[int, HookStatusName] = {}
        for item in admin.hooks_list if admin is not None else ():
            status = _STATUS_NAMES.get(item.status or "")
            if status is not None:
                statuses[item.id] = status
        url = destination_url or self._settings.webhook_destination_url
        plan = self._plan(store_hash, actual, url, function_key, quiet=dry_run)
        previous = _Previous.read(await self._previous(store_hash))
        since = {
            h.id: previous.inactive_since.get(h.id) or h.updated_at or started
            for h in actual
            if not h.is_active
        }
        planned = self._planned(plan, statuses, since, previous, started)
        target = self._target(r for _, r in planned)
        rewound = None
        if dry_run:
            repairs, after = [r for _, r in planned], {h.id: h for h in actual}
        else:
            # The watermark first: were it set back after the repair and that write failed, the
            # next check would find the hook healthy and the orders it missed would stay missed.
            if target is not None and self._state is not None:
                rewound = await self._rewind(store_hash, target, started)
            repairs, after = await self._apply(api, plan, planned)
        blocked = tuple(
            BlockedDomainState(
                mask_destination(b.destination),
                b.time_left,
                tuple(r.failure_description or "" for r in b.reasons if r.failure_description),
            )
            for b in (admin.blocked_domains if admin is not None else ())
        )
        hooks = self._states(after, plan, statuses, since)
        report = HookReport(
            store_hash=store_hash,
            checked_at=started,
            trigger=trigger,
            dry_run=dry_run,
            complete=plan.complete,
            destination=None if url is None else mask_destination(url),
            hooks=hooks,
            repairs=tuple(repairs),
            missing=plan.missing,
            conflicts=tuple(c.reason for c in plan.conflicts),
            blocked_domains=blocked,
            errors=tuple(errors),
            watermark_target=target,
            watermark_rewound_to=rewound,
            previous_check=previous.checked_at,
        )
        if not dry_run and self._state is not None:
            await self._record(report, previous, notice)
            report = replace(report, recorded=True)
        self._log(report)
        return report

    # -- planning and applying ----------------------------------------------------------------

    def _plan(
        self,
        store_hash: str,
        actual: Sequence[Webhook],
        url: str | None,
        function_key: str | None,
        *,
        quiet: bool,
    ) -> HookPlan:
        settings = self._settings
        if url is None:
            self._incomplete(store_hash, DESTINATION_SETTING, quiet=quiet)
            return plan_reenable(actual, settings.webhook_scopes)
        store = settings.store(store_hash)
        assert store is not None
        key = function_key
        if key is None and settings.webhook_function_key is not None:
            key = settings.webhook_function_key.get_secret_value()
        secret = None if store.webhook_secret is None else store.webhook_secret.get_secret_value()
        headers = webhook_headers(settings.webhook_secret_header, secret, key)
        plan = plan_hooks(actual, desired_hooks(url, settings.webhook_scopes, headers))
        if key is None and plan.creates:
            # A new hook without the function key would get 401 for every delivery.
            self._incomplete(store_hash, FUNCTION_KEY_SETTING, quiet=quiet)
            missing = tuple(c.desired.scope for c in plan.creates)
            return replace(plan, creates=(), missing=plan.missing + missing, complete=False)
        return plan

    @staticmethod
    def _incomplete(store_hash: str, setting: str, *, quiet: bool) -> None:
        log.log(
            logging.INFO if quiet else logging.WARNING,
            "%s is not set: missing webhooks of store %s are reported, not created",
            setting,
            store_hash,
            extra={"event": "webhook_health_incomplete", "store_hash": store_hash},
        )

    def _planned(
        self,
        plan: HookPlan,
        statuses: Mapping[int, HookStatusName],
        since: Mapping[int, datetime],
        previous: _Previous,
        now: datetime,
    ) -> list[tuple[UpdateHook | CreateHook, Repair]]:
        """Each change of the plan with the repair it will be, not made yet (`ok` None)."""
        planned: list[tuple[UpdateHook | CreateHook, Repair]] = []
        for update in plan.updates:
            hook = update.hook
            moment = None
            if hook.scope != DELIVERY_EXCEPTION:  # it delivers notices, not orders
                moment = self._stopped_at(update, statuses.get(hook.id), since.get(hook.id), now)
            destination = mask_destination(update.destination or hook.destination)
            repair = Repair(update.fixes, hook.scope, destination, hook.id, None, None, moment)
            planned.append((update, repair))
        for create in plan.creates:
            wanted = create.desired
            stopped = None
            if wanted.scope != DELIVERY_EXCEPTION:
                stopped = previous.scopes_seen.get(wanted.scope)
            destination = mask_destination(wanted.destination)
            planned.append(
                (create, Repair(("create",), wanted.scope, destination, None, None, None, stopped))
            )
        return planned

    async def _apply(
        self,
        api: HooksApi,
        plan: HookPlan,
        planned: Sequence[tuple[UpdateHook | CreateHook, Repair]],
    ) -> tuple[list[Repair], dict[int, Webhook]]:
        """Makes the changes, updates first; a failed one is reported and the others go on."""
        after = {h.id: h for h in [*plan.healthy, *plan.extra, *(u.hook for u in plan.updates)]}
        repairs: list[Repair] = []
        for change, repair in planned:
            made: Webhook | None
            try:
                if isinstance(change, UpdateHook):
                    made = await api.update_hook(change.hook.id, change.request())
                else:
                    made = await api.create_hook(change.request())
            except BigCommerceError as exc:
                # A create may have gone through unanswered, or a concurrent check made it.
                made = await self._find(api, change) if isinstance(change, CreateHook) else None
                if made is None:
                    repairs.append(replace(repair, ok=False, error=str(exc), stopped_at=None))
                    continue
            after[made.id] = made
            repairs.append(replace(repair, hook_id=made.id, ok=True))
        return repairs, after

    @staticmethod
    async def _find(api: HooksApi, create: CreateHook) -> Webhook | None:
        try:
            hooks = await api.list_hooks()
        except BigCommerceError:
            return None
        wanted = create.desired
        return next(
            (h for h in hooks if (h.scope, h.destination) == (wanted.scope, wanted.destination)),
            None,
        )

    @staticmethod
    def _stopped_at(
        update: UpdateHook,
        status: HookStatusName | None,
        inactive_since: datetime | None,
        now: datetime,
    ) -> datetime:
        """Since when the hook missed events (see the module doc)."""
        hook = update.hook
        changed = hook.updated_at or now
        moments: list[datetime] = []
        if "reenable" in update.fixes:
            since = inactive_since or changed
            moments.append(since if status == "inactive" else since - RETRY_WINDOW)
        if "destination" in update.fixes:
            moments.append(changed)
        if "headers" in update.fixes:
            moments.append(max(changed, now - RETRY_WINDOW))
        return min(moments)

    def _target(self, repairs: Iterable[Repair]) -> datetime | None:
        moments = [r.stopped_at for r in repairs if r.stopped_at is not None]
        return min(moments) - self._margin if moments else None

    def _states(
        self,
        after: Mapping[int, Webhook],
        plan: HookPlan,
        statuses: Mapping[int, HookStatusName],
        since: Mapping[int, datetime],
    ) -> tuple[HookState, ...]:
        problems: dict[int, str] = {}
        for update in plan.updates:
            problems[update.hook.id] = ", ".join(_FIX_WORDS[f] for f in update.fixes)
        for conflict in plan.conflicts:
            problems.setdefault(conflict.hook.id, f"holds the {conflict.desired.scope} destination")
        extra_ids = {h.id for h in plan.extra}
        states: list[HookState] = []
        for hook in sorted(after.values(), key=lambda h: h.id):
            changed = hook is not _original(plan, hook.id)
            status: HookStatusName
            if hook.is_active:
                status = "active"
            elif changed:
                status = "inactive"
            else:
                status = statuses.get(hook.id, "inactive")
            states.append(
                HookState(
                    id=hook.id,
                    scope=hook.scope,
                    destination=mask_destination(hook.destination),
                    is_active=hook.is_active,
                    status=status,
                    role="extra" if hook.id in extra_ids else "wanted",
                    updated_at=hook.updated_at,
                    inactive_since=None if hook.is_active else since.get(hook.id),
                    headers=header_names(hook.headers),
                    problem="" if changed else problems.get(hook.id, ""),
                )
            )
        return tuple(states)

    # -- state ----------------------------------------------------------------------------------

    async def _previous(self, store_hash: str) -> Mapping[str, Any] | None:
        if self._state is None:
            return None
        entity = await self._state.get(HOOKS_PARTITION, store_hash)
        return None if entity is None else entity.value

    async def _record(
        self, report: HookReport, previous: _Previous, notice: DeliveryNotice | None
    ) -> None:
        assert self._state is not None
        made = [
            {**r.to_json(), "at": report.checked_at.isoformat(), "trigger": report.trigger}
            for r in report.repairs
            if r.ok is not None
        ]
        history = [*previous.repairs, *made][-MAX_RECORDED_REPAIRS:]
        value: dict[str, Any] = {
            "store_hash": report.store_hash,
            "checked_at": report.checked_at.isoformat(),
            "trigger": report.trigger,
            "complete": report.complete,
            "destination": report.destination,
            "healthy": report.healthy,
            "hooks": [h.to_json() for h in report.hooks],
            "missing": list(report.missing),
            "conflicts": list(report.conflicts),
            "blocked_domains": [b.to_json() for b in report.blocked_domains],
            "errors": list(report.errors),
            "repairs": history,
            "last_repair_at": (
                report.checked_at.isoformat()
                if any(r["ok"] for r in made)
                else previous.value.get("last_repair_at")
            ),
            "watermark_rewound_to": (
                _iso(report.watermark_rewound_to)
                if report.watermark_rewound_to is not None
                else previous.value.get("watermark_rewound_to")
            ),
            "last_notice": (
                notice.to_json() if notice is not None else previous.value.get("last_notice")
            ),
        }
        await self._state.upsert(HOOKS_PARTITION, report.store_hash, value)

    async def _rewind(self, store_hash: str, target: datetime, now: datetime) -> datetime | None:
        """Sets `watermarks/<store>.orders` back to `target` unless it is already earlier; a
        store without a watermark yet gets one only if `target` is before the first sweep's
        lookback. Returns the watermark set, or None when it was left alone."""
        assert self._state is not None
        key = watermark_key(store_hash, ORDERS_STREAM)
        lookback = timedelta(hours=self._settings.reconcile_first_lookback_hours)
        document = {
            "watermark": target.isoformat(),
            "updated_at": now.isoformat(),
            "rewound_at": now.isoformat(),
            "rewound_by": "webhook_health",
        }
        for _ in range(_WATERMARK_ATTEMPTS):
            entity = await self._state.get(WATERMARKS_PARTITION, key)
            try:
                if entity is None:
                    if target >= now - lookback:
                        return None  # the first sweep looks back further than that anyway
                    await self._state.create(WATERMARKS_PARTITION, key, document)
                    return target
                current = _when(entity.value.get("watermark"))
                if current is not None and current <= target:
                    return None
                await self._state.replace(entity, {**entity.value, **document})
                return target
            except ConcurrencyError:
                continue
        raise ConcurrencyError(f"watermark {key}: kept changing while it was set back")

    # -- logging --------------------------------------------------------------------------------

    def _log(self, report: HookReport) -> None:
        fields = {
            "event": "webhook_health",
            "store_hash": report.store_hash,
            "trigger": report.trigger,
            "dry_run": report.dry_run,
            "complete": report.complete,
            "hooks": len(report.hooks),
            "hooks_created": report.hooks_created,
            "hooks_repaired": report.hooks_repaired,
            "repairs_failed": len(report.failed_repairs),
            "hooks_missing": list(report.missing),
            "hooks_extra": sum(1 for h in report.hooks if h.role == "extra"),
            "conflicts": list(report.conflicts),
            "blocked_domains": [b.to_json() for b in report.blocked_domains],
            "watermark_rewound_to": _iso(report.watermark_rewound_to),
            "healthy": report.healthy,
        }
        for blocked in report.blocked_domains:
            log.warning(
                "BigCommerce blocks deliveries to %s for %s more seconds",
                blocked.destination,
                blocked.time_left,
                extra={"event": "webhook_domain_blocked", "store_hash": report.store_hash},
            )
        for repair in report.failed_repairs:
            log.error(
                "could not %s the %s hook of store %s: %s",
                repair.label,
                repair.scope,
                report.store_hash,
                repair.error,
                extra={"event": "webhook_repair_failed", "store_hash": report.store_hash},
            )
        level = logging.INFO if report.healthy or report.dry_run else logging.WARNING
        log.log(
            level,
            "webhook health of store %s: %d created, %d repaired%s",
            report.store_hash,
            report.hooks_created,
            report.hooks_repaired,
            "" if report.healthy else " (needs attention)",
            extra=fields,
        )


_STATUS_NAMES: Final[Mapping[str, HookStatusName]] = {
    "active": "active",
    "inactive": "inactive",
    "deactivated": "deactivated",
}
_FIX_WORDS: Final[Mapping[Fix, str]] = {
    "reenable": "inactive: re-enable",
    "destination": "destination differs",
    "headers": "headers differ",
}


def _original(plan: HookPlan, hook_id: int) -> Webhook | None:
    for hook in [*plan.healthy, *plan.extra, *(u.hook for u in plan.updates)]:
        if hook.id == hook_id:
            return hook
    return None


def read_notice(body: bytes) -> DeliveryNotice | None:
    """The deliveryException callback inside an `order-events` message body, if readable."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    event = document.get("event") if isinstance(document, Mapping) else None
    data = event.get("data") if isinstance(event, Mapping) else None
    if not isinstance(event, Mapping) or not isinstance(data, Mapping):
        return None
    hook_id = data.get("id")
    code = data.get("error_code")
    message = data.get("message")
    return DeliveryNotice(
        hook_id=hook_id if isinstance(hook_id, int) else None,
        error_code=code if isinstance(code, int) else None,
        message=message if isinstance(message, str) else "",
        created_at=_when(event.get("created_at")),
    )


__all__ = [
    "DELIVERY_EXCEPTION",
    "HOOKS_PARTITION",
    "RETRY_WINDOW",
    "BlockedDomainState",
    "DeliveryNotice",
    "HookReport",
    "HookState",
    "HooksApi",
    "Repair",
    "WebhookHealth",
    "read_notice",
]
