"""The hooks of every simulated store, and the platform limits BigCommerce puts on them.

Limits (`overview.mdx` §Platform limits, `events/index.mdx` §Delivery exception hooks), all per
store and API account (client id):

* at most 10 hooks per scope;
* at most one hook per scope and destination;
* at most one `store/hook/deliveryException` hook, and its destination differs from every other
  hook's destination (checked both ways: no ordinary hook may take the exception hook's URL).

The registry lives on the event loop: the hooks API and the deliverer both run there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from local.bigcommerce.webhooks.scopes import DELIVERY_EXCEPTION, matches

MAX_HOOKS_PER_SCOPE: Final = 10
FIRST_HOOK_ID: Final = 20_172_984  # the id in BigCommerce's example, so ids look familiar

HookStatus = Literal["active", "inactive", "deactivated"]


@dataclass(frozen=True, slots=True)
class Hook:
    id: int
    store_hash: str
    client_id: str
    scope: str
    destination: str
    is_active: bool
    headers: dict[str, str] | None
    created_at: int
    updated_at: int
    deactivated: bool = False  # switched off by the deliverer after its retries ran out

    @property
    def status(self) -> HookStatus:
        """`GET /hooks/admin`'s status: deactivated (by the platform) or inactive (by the app)."""
        if self.is_active:
            return "active"
        return "deactivated" if self.deactivated else "inactive"

    def to_json(self) -> dict[str, Any]:
        """`webhook_Full`."""
        return {
            "id": self.id,
            "client_id": self.client_id,
            "store_hash": self.store_hash,
            "scope": self.scope,
            "destination": self.destination,
            "headers": None if self.headers is None else dict(self.headers),
            "is_active": self.is_active,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


class HookConflict(Exception):
    """A platform limit the request would break; `field` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class HookSpec:
    """The writable fields of a hook."""

    scope: str
    destination: str
    is_active: bool = True
    headers: dict[str, str] | None = None


class HookRegistry:
    def __init__(self) -> None:
        self._hooks: dict[int, Hook] = {}
        self._next_id = FIRST_HOOK_ID

    def __iter__(self) -> Iterator[Hook]:
        return iter(sorted(self._hooks.values(), key=lambda h: h.id))

    def for_store(self, store_hash: str) -> list[Hook]:
        return [h for h in self if h.store_hash == store_hash]

    def get(self, hook_id: int, store_hash: str | None = None) -> Hook | None:
        hook = self._hooks.get(hook_id)
        if hook is None or (store_hash is not None and hook.store_hash != store_hash):
            return None
        return hook

    def create(self, store_hash: str, client_id: str, spec: HookSpec, now: int) -> Hook:
        self._check(store_hash, client_id, spec, exclude=None)
        hook = Hook(
            id=self._next_id,
            store_hash=store_hash,
            client_id=client_id,
            scope=spec.scope,
            destination=spec.destination,
            is_active=spec.is_active,
            headers=None if spec.headers is None else dict(spec.headers),
            created_at=now,
            updated_at=now,
        )
        self._next_id += 1
        self._hooks[hook.id] = hook
        return hook

    def update(self, hook: Hook, spec: HookSpec, now: int) -> Hook:
        self._check(hook.store_hash, hook.client_id, spec, exclude=hook.id)
        updated = replace(
            hook,
            scope=spec.scope,
            destination=spec.destination,
            is_active=spec.is_active,
            headers=None if spec.headers is None else dict(spec.headers),
            updated_at=now,
            deactivated=hook.deactivated and not spec.is_active,
        )
        self._hooks[hook.id] = updated
        return updated

    def delete(self, hook_id: int) -> Hook | None:
        return self._hooks.pop(hook_id, None)

    def deactivate(self, hook_id: int, now: int) -> Hook | None:
        """The platform switches a hook off once a delivery has used up all its retries."""
        hook = self._hooks.get(hook_id)
        if hook is None:
            return None
        hook = replace(hook, is_active=False, deactivated=True, updated_at=now)
        self._hooks[hook_id] = hook
        return hook

    def clear(self) -> None:
        self._hooks.clear()

    def receiving(self, store_hash: str, event_scope: str) -> list[Hook]:
        """Active hooks of the store whose scope receives the event, by id."""
        return [
            h
            for h in self.for_store(store_hash)
            if h.is_active and h.scope != DELIVERY_EXCEPTION and matches(h.scope, event_scope)
        ]

    def exception_hook(self, store_hash: str, client_id: str) -> Hook | None:
        for hook in self.for_store(store_hash):
            if hook.client_id == client_id and hook.scope == DELIVERY_EXCEPTION:
                return hook
        return None

    def _check(self, store_hash: str, client_id: str, spec: HookSpec, exclude: int | None) -> None:
        others = [
            h for h in self.for_store(store_hash) if h.client_id == client_id and h.id != exclude
        ]
        same_scope = [h for h in others if h.scope == spec.scope]
        if any(h.destination == spec.destination for h in same_scope):
            raise HookConflict(
                "destination",
                "A webhook with this scope and destination already exists "
                "(one per store, client, scope and destination).",
            )
        if spec.scope == DELIVERY_EXCEPTION:
            if same_scope:
                raise HookConflict(
                    "scope", "Only one store/hook/deliveryException webhook is allowed per store."
                )
            if any(h.destination == spec.destination for h in others):
                raise HookConflict(
                    "destination",
                    "The deliveryException webhook's destination must differ from every "
                    "other webhook's destination.",
                )
        elif any(
            h.scope == DELIVERY_EXCEPTION and h.destination == spec.destination for h in others
        ):
            raise HookConflict(
                "destination",
                "This destination belongs to the deliveryException webhook; it must differ "
                "from every other webhook's destination.",
            )
        if len(same_scope) >= MAX_HOOKS_PER_SCOPE:
            raise HookConflict(
                "scope",
                f"At most {MAX_HOOKS_PER_SCOPE} webhooks are allowed per store, client and scope.",
            )
