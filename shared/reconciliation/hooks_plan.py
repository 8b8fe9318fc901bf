"""The webhooks a store should have, and the least it takes to get there. Pure: no I/O.

Desired hooks (`desired_hooks`): one per configured scope (`BIGCOMMERCE_WEBHOOK_SCOPES`) at the
ingress URL, active, with the store's secret header and the function key; plus one
`store/hook/deliveryException` hook, whose destination must differ from every other hook's
(bigcommerce.md §1.4): the same URL with `source=delivery-exception` in its query string. The
ingress does not look at the query string, so both land on the same function.

`plan_hooks` compares them with what `GET /v3/hooks` lists (only our API account's hooks are
visible, so every listed hook is ours) and answers a `HookPlan`:

- a desired hook is matched by scope and destination; failing that, a hook of the same scope at
  the same URL path (our endpoint on another host, or with another query string) is repointed
  rather than a second one created; the deliveryException hook, of which BigCommerce allows one,
  is always repointed;
- a matched hook that is inactive is re-enabled (`PUT {is_active: true}`), one whose destination
  or headers differ is fixed, all in one PUT;
- the required headers are compared by name without regard to case; headers the hook has beyond
  them are kept (so a hook keeps its `x-functions-key` when we do not know the key);
- a desired hook with no match is created, unless another hook already holds its destination
  (BigCommerce would refuse it): that is a conflict, reported;
- any other hook is extra: left alone, reported.

Applying the plan and listing again yields an empty plan: it is idempotent. Updates go before
creates, the deliveryException hook's first, so a destination it gives up is free for the hook
created after it. `plan_reenable` is what can be done without the ingress URL: re-enable every
inactive hook of a wanted scope, and report the scopes that have none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from shared.bigcommerce.models import Webhook
from shared.bigcommerce.requests import HookCreate, HookUpdate

DELIVERY_EXCEPTION: Final = "store/hook/deliveryException"
EXCEPTION_SOURCE: Final = ("source", "delivery-exception")
FUNCTION_KEY_HEADER: Final = "x-functions-key"
MASK: Final = "***"
# Query parameters that carry a secret in a destination (the Functions key as `?code=`).
SECRET_QUERY_PARAMETERS: Final = frozenset({"code"})

Fix = Literal["reenable", "destination", "headers"]


@dataclass(frozen=True, slots=True)
class DesiredHook:
    """Identified by scope and destination (BigCommerce allows one hook per pair)."""

    scope: str
    destination: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def request(self) -> HookCreate:
        return HookCreate(
            scope=self.scope,
            destination=self.destination,
            is_active=True,
            headers=dict(self.headers) or None,
        )


def exception_destination(destination_url: str) -> str:
    """The deliveryException hook's destination: the URL with `source=delivery-exception`."""
    parts = urlsplit(destination_url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if EXCEPTION_SOURCE in query:
        return destination_url
    if not parts.query:
        return urlunsplit(parts._replace(query=urlencode([EXCEPTION_SOURCE])))
    return urlunsplit(parts._replace(query=f"{parts.query}&{urlencode([EXCEPTION_SOURCE])}"))


def webhook_headers(
    secret_header: str, webhook_secret: str | None, function_key: str | None
) -> dict[str, str]:
    """The custom headers BigCommerce must send: the store's secret and the function key,
    each when known."""
    headers: dict[str, str] = {}
    if webhook_secret:
        headers[secret_header] = webhook_secret
    if function_key:
        headers[FUNCTION_KEY_HEADER] = function_key
    return headers


def desired_hooks(
    destination_url: str, scopes: Iterable[str], headers: Mapping[str, str]
) -> tuple[DesiredHook, ...]:
    """One hook per scope at the URL, and the deliveryException hook beside it."""
    ordinary = [s for s in dict.fromkeys(scopes) if s != DELIVERY_EXCEPTION]
    hooks = [DesiredHook(scope, destination_url, dict(headers)) for scope in ordinary]
    hooks.append(
        DesiredHook(DELIVERY_EXCEPTION, exception_destination(destination_url), dict(headers))
    )
    return tuple(hooks)


def wanted_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The configured scopes and the deliveryException scope, once each."""
    return tuple(dict.fromkeys([*scopes, DELIVERY_EXCEPTION]))


# -- the plan --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateHook:
    desired: DesiredHook

    def request(self) -> HookCreate:
        return self.desired.request()


@dataclass(frozen=True, slots=True)
class UpdateHook:
    hook: Webhook
    fixes: tuple[Fix, ...]
    destination: str | None = None  # the new destination, when fixing it
    headers: Mapping[str, str] | None = field(default=None, repr=False)  # all of them, when fixing

    def request(self) -> HookUpdate:
        return HookUpdate(
            is_active=True if "reenable" in self.fixes else None,
            destination=self.destination,
            headers=None if self.headers is None else dict(self.headers),
        )


@dataclass(frozen=True, slots=True)
class Conflict:
    """A desired hook that cannot be created or repointed: another hook holds its destination."""

    desired: DesiredHook
    hook: Webhook

    @property
    def reason(self) -> str:
        return (
            f"{self.desired.scope}: destination {mask_destination(self.desired.destination)} "
            f"is held by hook {self.hook.id} ({self.hook.scope})"
        )


@dataclass(frozen=True, slots=True)
class HookPlan:
    creates: tuple[CreateHook, ...] = ()
    updates: tuple[UpdateHook, ...] = ()
    healthy: tuple[Webhook, ...] = ()  # wanted and right as they are
    extra: tuple[Webhook, ...] = ()  # not wanted: left alone
    missing: tuple[str, ...] = ()  # wanted scopes without a hook that this plan cannot create
    conflicts: tuple[Conflict, ...] = ()
    complete: bool = True  # False: made without the destination URL (re-enable only)

    @property
    def changes(self) -> int:
        return len(self.creates) + len(self.updates)

    @property
    def empty(self) -> bool:
        return self.changes == 0

    def wanted(self, hook_id: int) -> bool:
        return any(h.id == hook_id for h in self.healthy) or any(
            u.hook.id == hook_id for u in self.updates
        )


def same_headers(actual: Mapping[str, str] | None, required: Mapping[str, str]) -> bool:
    """Whether the hook sends every required header with its value (names without case)."""
    have = {k.lower(): v for k, v in (actual or {}).items()}
    return all(have.get(k.lower()) == v for k, v in required.items())


def merged_headers(actual: Mapping[str, str] | None, required: Mapping[str, str]) -> dict[str, str]:
    """The hook's headers with the required ones set (replacing any spelling of their names)."""
    names = {k.lower() for k in required}
    kept = {k: v for k, v in (actual or {}).items() if k.lower() not in names}
    return {**kept, **required}


def _path(url: str) -> str:
    return urlsplit(url).path.rstrip("/")


def _update(hook: Webhook, desired: DesiredHook) -> UpdateHook | None:
    fixes: list[Fix] = []
    if not hook.is_active:
        fixes.append("reenable")
    destination = None
    if hook.destination != desired.destination:
        fixes.append("destination")
        destination = desired.destination
    headers = None
    if not same_headers(hook.headers, desired.headers):
        fixes.append("headers")
        headers = merged_headers(hook.headers, desired.headers)
    if not fixes:
        return None
    return UpdateHook(hook, tuple(fixes), destination, headers)


def plan_hooks(actual: Sequence[Webhook], desired: Sequence[DesiredHook]) -> HookPlan:
    """What to create and fix so that `actual` has every `desired` hook (see the module doc)."""
    hooks = sorted(actual, key=lambda h: h.id)
    wanted = list(dict.fromkeys(desired))  # a desired hook named twice is one hook
    matched: dict[int, Webhook] = {}  # index in wanted -> hook
    taken: set[int] = set()
    for index, want in enumerate(wanted):
        for candidate in hooks:
            if candidate.id not in taken and (candidate.scope, candidate.destination) == (
                want.scope,
                want.destination,
            ):
                matched[index] = candidate
                taken.add(candidate.id)
                break
    for index, want in enumerate(wanted):
        if index in matched:
            continue
        candidates = [
            h
            for h in hooks
            if h.id not in taken
            and h.scope == want.scope
            and (
                want.scope == DELIVERY_EXCEPTION or _path(h.destination) == _path(want.destination)
            )
        ]
        if candidates:
            chosen = min(candidates, key=lambda h: (not h.is_active, h.id))
            matched[index] = chosen
            taken.add(chosen.id)
    extra = tuple(h for h in hooks if h.id not in taken)
    creates: list[CreateHook] = []
    updates: list[UpdateHook] = []
    healthy: list[Webhook] = []
    conflicts: list[Conflict] = []
    for index, want in enumerate(wanted):
        hook = matched.get(index)
        if hook is not None and hook.destination == want.destination:
            update = _update(hook, want)
            if update is None:
                healthy.append(hook)
            else:
                updates.append(update)
            continue
        # A new destination, by a create or a repoint: no extra hook may hold it if either is
        # the deliveryException hook (the hooks we match move to destinations of their own).
        holder = next(
            (
                h
                for h in extra
                if h.destination == want.destination
                and (want.scope == DELIVERY_EXCEPTION or h.scope == DELIVERY_EXCEPTION)
            ),
            None,
        )
        if holder is not None:
            conflicts.append(Conflict(want, holder))
            if hook is not None and hook.is_active:  # still ours: left where it is
                healthy.append(hook)
            elif hook is not None:  # still ours: at least bring it back
                updates.append(UpdateHook(hook, ("reenable",)))
            continue
        if hook is None:
            creates.append(CreateHook(want))
        else:
            update = _update(hook, want)
            assert update is not None  # its destination differs
            updates.append(update)
    updates.sort(key=lambda u: (u.hook.scope != DELIVERY_EXCEPTION, u.hook.id))
    return HookPlan(
        creates=tuple(creates),
        updates=tuple(updates),
        healthy=tuple(healthy),
        extra=extra,
        conflicts=tuple(conflicts),
    )


def plan_reenable(actual: Sequence[Webhook], scopes: Iterable[str]) -> HookPlan:
    """Without the destination URL: re-enable every inactive hook of a wanted scope (the
    configured ones and deliveryException), report wanted scopes without a hook as missing."""
    wanted = wanted_scopes(scopes)
    hooks = sorted(actual, key=lambda h: h.id)
    mine = [h for h in hooks if h.scope in wanted]
    return HookPlan(
        updates=tuple(UpdateHook(h, ("reenable",)) for h in mine if not h.is_active),
        healthy=tuple(h for h in mine if h.is_active),
        extra=tuple(h for h in hooks if h.scope not in wanted),
        missing=tuple(s for s in wanted if not any(h.scope == s for h in mine)),
        complete=False,
    )


# -- showing hooks without their secrets -------------------------------------------------------


def mask_destination(url: str) -> str:
    """The URL with secret query values (`code=`) masked."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not any(k.lower() in SECRET_QUERY_PARAMETERS for k, _ in query):
        return url
    masked = "&".join(
        f"{k}={MASK if k.lower() in SECRET_QUERY_PARAMETERS else v}" for k, v in query
    )
    return urlunsplit(parts._replace(query=masked))


def header_names(headers: Mapping[str, str] | None) -> tuple[str, ...]:
    return tuple(sorted(headers or {}, key=str.lower))
