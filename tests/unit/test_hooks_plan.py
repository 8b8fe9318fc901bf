"""The webhook plan: desired hooks against the listed ones, every case, and idempotence.

Plans are applied to the store simulator's hook registry (local/bigcommerce/webhooks), which
enforces BigCommerce's platform limits (one hook per scope and destination, one
deliveryException hook with a destination of its own): a plan that broke one would raise there.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from local.bigcommerce.webhooks.registry import HookRegistry, HookSpec
from shared.bigcommerce.models import Webhook
from shared.reconciliation.hooks_plan import (
    DELIVERY_EXCEPTION,
    CreateHook,
    DesiredHook,
    HookPlan,
    UpdateHook,
    desired_hooks,
    exception_destination,
    mask_destination,
    merged_headers,
    plan_hooks,
    plan_reenable,
    same_headers,
    webhook_headers,
)

STORE = "store1"
CLIENT = "client-1"
URL = "https://connector.example.com/api/webhooks/bigcommerce"
EXCEPTION_URL = URL + "?source=delivery-exception"
SCOPES = ("store/order/*", "store/shipment/*")
HEADERS = {"X-Webhook-Secret": "s3cret", "x-functions-key": "fkey"}
NOW = 1_790_000_000


def desired(headers: dict[str, str] | None = None) -> tuple[DesiredHook, ...]:
    return desired_hooks(URL, SCOPES, HEADERS if headers is None else headers)


class Store:
    """A store's hooks, kept by the simulator's registry (with its platform limits)."""

    def __init__(self) -> None:
        self.registry = HookRegistry()
        self.clock = NOW

    def add(
        self,
        scope: str,
        destination: str,
        *,
        active: bool = True,
        headers: dict[str, str] | None = None,
    ) -> int:
        self.clock += 1
        spec = HookSpec(scope, destination, active, HEADERS if headers is None else headers)
        return self.registry.create(STORE, CLIENT, spec, self.clock).id

    def hooks(self) -> list[Webhook]:
        return [Webhook.model_validate(h.to_json()) for h in self.registry.for_store(STORE)]

    def apply(self, plan: HookPlan) -> None:
        """What the health check does: updates first, then creates."""
        for update in plan.updates:
            self.clock += 1
            hook = self.registry.get(update.hook.id)
            assert hook is not None
            body = update.request().body()
            spec = HookSpec(
                body.get("scope", hook.scope),
                body.get("destination", hook.destination),
                body.get("is_active", hook.is_active),
                body.get("headers", hook.headers),
            )
            self.registry.update(hook, spec, self.clock)
        for create in plan.creates:
            body = create.request().body()
            self.clock += 1
            spec = HookSpec(body["scope"], body["destination"], body["is_active"], body["headers"])
            self.registry.create(STORE, CLIENT, spec, self.clock)


def scopes_of(items: Sequence[CreateHook | UpdateHook]) -> list[str]:
    return [i.desired.scope if isinstance(i, CreateHook) else i.hook.scope for i in items]


# -- the desired hooks -----------------------------------------------------------------------------


def test_one_hook_per_scope_and_a_delivery_exception_hook_at_a_destination_of_its_own() -> None:
    hooks = desired()
    assert [(h.scope, h.destination) for h in hooks] == [
        ("store/order/*", URL),
        ("store/shipment/*", URL),
        (DELIVERY_EXCEPTION, EXCEPTION_URL),
    ]
    assert all(h.headers == HEADERS for h in hooks)


def test_scopes_named_twice_or_the_exception_scope_configured_give_one_hook_each() -> None:
    hooks = desired_hooks(URL, ["store/order/*", DELIVERY_EXCEPTION, "store/order/*"], {})
    assert [h.scope for h in hooks] == ["store/order/*", DELIVERY_EXCEPTION]


def test_headers_carry_the_secret_and_the_function_key_when_known() -> None:
    assert webhook_headers("X-Webhook-Secret", "s", "k") == {
        "X-Webhook-Secret": "s",
        "x-functions-key": "k",
    }
    assert webhook_headers("X-Webhook-Secret", None, "k") == {"x-functions-key": "k"}
    assert webhook_headers("X-Secret", "s", None) == {"X-Secret": "s"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (URL, EXCEPTION_URL),
        (URL + "?code=abc", URL + "?code=abc&source=delivery-exception"),
        (EXCEPTION_URL, EXCEPTION_URL),
    ],
)
def test_the_exception_destination_appends_the_source(url: str, expected: str) -> None:
    assert exception_destination(url) == expected


def test_secret_query_values_are_masked() -> None:
    assert mask_destination(URL + "?code=abc&source=x") == URL + "?code=***&source=x"
    assert mask_destination(EXCEPTION_URL) == EXCEPTION_URL


def test_header_comparison_ignores_the_case_of_names_and_keeps_other_headers() -> None:
    assert same_headers({"x-webhook-secret": "s3cret", "X-Functions-Key": "fkey"}, HEADERS)
    assert not same_headers({"X-Webhook-Secret": "old"}, HEADERS)
    assert not same_headers(None, HEADERS)
    assert same_headers(None, {})
    merged = merged_headers({"x-webhook-secret": "old", "X-Other": "1"}, HEADERS)
    assert merged == {"X-Other": "1", **HEADERS}


# -- planning --------------------------------------------------------------------------------------


def test_a_store_without_hooks_gets_every_hook_created() -> None:
    plan = plan_hooks([], desired())
    assert scopes_of(plan.creates) == [*SCOPES, DELIVERY_EXCEPTION]
    assert not plan.updates
    assert not plan.extra
    assert not plan.conflicts
    assert plan.complete
    body = plan.creates[0].request().body()
    assert body == {
        "scope": "store/order/*",
        "destination": URL,
        "is_active": True,
        "headers": HEADERS,
    }


def test_hooks_as_desired_need_nothing() -> None:
    store = Store()
    for hook in desired():
        store.add(hook.scope, hook.destination)
    plan = plan_hooks(store.hooks(), desired())
    assert plan.empty
    assert len(plan.healthy) == 3


def test_a_deactivated_hook_is_re_enabled_and_nothing_else() -> None:
    store = Store()
    order = store.add("store/order/*", URL, active=False)
    store.add("store/shipment/*", URL)
    store.add(DELIVERY_EXCEPTION, EXCEPTION_URL)
    plan = plan_hooks(store.hooks(), desired())
    assert [(u.hook.id, u.fixes) for u in plan.updates] == [(order, ("reenable",))]
    assert plan.updates[0].request().body() == {"is_active": True}
    assert not plan.creates


def test_a_hook_with_another_secret_gets_its_headers_fixed_keeping_the_others() -> None:
    store = Store()
    store.add("store/order/*", URL, headers={"X-Webhook-Secret": "rotated", "X-Trace": "1"})
    store.add("store/shipment/*", URL)
    store.add(DELIVERY_EXCEPTION, EXCEPTION_URL)
    plan = plan_hooks(store.hooks(), desired())
    (update,) = plan.updates
    assert update.fixes == ("headers",)
    assert update.request().body() == {"headers": {"X-Trace": "1", **HEADERS}}


def test_an_unknown_function_key_leaves_the_hooks_key_alone() -> None:
    store = Store()
    for hook in desired():
        store.add(hook.scope, hook.destination)
    plan = plan_hooks(store.hooks(), desired({"X-Webhook-Secret": "s3cret"}))
    assert plan.empty


def test_our_endpoint_on_another_host_is_repointed_not_duplicated() -> None:
    store = Store()
    old = "https://old-app.azurewebsites.net/api/webhooks/bigcommerce"
    order = store.add("store/order/*", old, active=False)
    plan = plan_hooks(store.hooks(), desired())
    (update,) = [u for u in plan.updates if u.hook.id == order]
    assert update.fixes == ("reenable", "destination")
    assert update.request().body() == {"is_active": True, "destination": URL}
    assert scopes_of(plan.creates) == ["store/shipment/*", DELIVERY_EXCEPTION]


def test_every_fix_of_a_hook_goes_in_one_put() -> None:
    store = Store()
    order = store.add(
        "store/order/*",
        "https://old.example.com/api/webhooks/bigcommerce/",
        active=False,
        headers={},
    )
    plan = plan_hooks(store.hooks(), desired())
    (update,) = [u for u in plan.updates if u.hook.id == order]
    assert update.fixes == ("reenable", "destination", "headers")
    assert update.request().body() == {"is_active": True, "destination": URL, "headers": HEADERS}


def test_hooks_we_do_not_want_are_left_alone_and_reported() -> None:
    store = Store()
    for hook in desired():
        store.add(hook.scope, hook.destination)
    customer = store.add("store/customer/*", URL, active=False)
    elsewhere = store.add("store/order/*", "https://monitor.example.com/hooks", active=False)
    plan = plan_hooks(store.hooks(), desired())
    assert plan.empty
    assert [h.id for h in plan.extra] == [customer, elsewhere]


def test_a_hook_of_the_scope_at_another_path_is_extra_and_ours_is_created() -> None:
    store = Store()
    elsewhere = store.add("store/order/*", "https://monitor.example.com/hooks")
    plan = plan_hooks(store.hooks(), desired())
    assert [h.id for h in plan.extra] == [elsewhere]
    assert scopes_of(plan.creates) == [*SCOPES, DELIVERY_EXCEPTION]


def test_the_exact_hook_wins_over_a_stale_copy_which_stays_extra() -> None:
    store = Store()
    stale = store.add("store/order/*", "https://old.example.com/api/webhooks/bigcommerce")
    exact = store.add("store/order/*", URL, active=False)
    plan = plan_hooks(store.hooks(), desired())
    assert [u.hook.id for u in plan.updates] == [exact]
    assert [h.id for h in plan.extra] == [stale]


def test_the_one_delivery_exception_hook_is_repointed_wherever_it_points() -> None:
    store = Store()
    exception = store.add(DELIVERY_EXCEPTION, "https://alerts.example.com/bc")
    plan = plan_hooks(store.hooks(), desired())
    (update,) = plan.updates
    assert update.hook.id == exception
    assert update.destination == EXCEPTION_URL
    assert scopes_of(plan.creates) == list(SCOPES)


def test_an_exception_hook_on_our_url_moves_first_so_the_order_hook_can_take_it() -> None:
    store = Store()
    shipment = store.add("store/shipment/*", "https://old.example.com/api/webhooks/bigcommerce")
    exception = store.add(DELIVERY_EXCEPTION, URL)
    plan = plan_hooks(store.hooks(), desired())
    assert [u.hook.id for u in plan.updates] == [exception, shipment]
    assert scopes_of(plan.creates) == ["store/order/*"]
    store.apply(plan)  # the registry refuses any order that breaks the destination rule
    assert plan_hooks(store.hooks(), desired()).empty


def test_an_extra_hook_holding_the_exception_destination_is_a_conflict() -> None:
    store = Store()
    holder = store.add("store/order/created", EXCEPTION_URL)
    plan = plan_hooks(store.hooks(), desired())
    (conflict,) = plan.conflicts
    assert conflict.hook.id == holder
    assert conflict.desired.scope == DELIVERY_EXCEPTION
    assert "held by hook" in conflict.reason
    assert scopes_of(plan.creates) == list(SCOPES)
    store.apply(plan)
    again = plan_hooks(store.hooks(), desired())
    assert again.empty
    assert len(again.conflicts) == 1


def test_a_conflicted_exception_hook_of_ours_is_still_re_enabled_where_it_is() -> None:
    store = Store()
    exception = store.add(DELIVERY_EXCEPTION, "https://alerts.example.com/bc", active=False)
    store.add("store/order/created", EXCEPTION_URL)
    plan = plan_hooks(store.hooks(), desired())
    assert [(u.hook.id, u.fixes) for u in plan.updates] == [(exception, ("reenable",))]
    assert len(plan.conflicts) == 1


def test_a_desired_hook_named_twice_is_created_once() -> None:
    hooks = desired()
    plan = plan_hooks([], [*hooks, hooks[0]])
    assert scopes_of(plan.creates) == [*SCOPES, DELIVERY_EXCEPTION]


# -- idempotence -----------------------------------------------------------------------------------

STARTS: dict[str, list[tuple[str, str, bool, dict[str, str] | None]]] = {
    "empty": [],
    "complete": [
        ("store/order/*", URL, True, None),
        ("store/shipment/*", URL, True, None),
        (DELIVERY_EXCEPTION, EXCEPTION_URL, True, None),
    ],
    "deactivated": [
        ("store/order/*", URL, False, None),
        ("store/shipment/*", URL, False, None),
        (DELIVERY_EXCEPTION, EXCEPTION_URL, False, None),
    ],
    "stale": [
        ("store/order/*", "https://old.example.com/api/webhooks/bigcommerce", False, {}),
        ("store/shipment/*", URL, True, {"X-Webhook-Secret": "old"}),
        (DELIVERY_EXCEPTION, "https://alerts.example.com/bc", False, None),
        ("store/customer/*", URL, False, None),
    ],
    "crowded": [
        ("store/order/*", "https://monitor.example.com/hooks", True, None),
        ("store/order/*", "https://old.example.com/api/webhooks/bigcommerce", True, None),
        ("store/order/*", "https://older.example.com/api/webhooks/bigcommerce", False, None),
        ("store/order/created", EXCEPTION_URL, True, None),
    ],
}


@pytest.mark.parametrize("start", sorted(STARTS))
def test_a_second_plan_after_applying_the_first_changes_nothing(start: str) -> None:
    store = Store()
    for scope, destination, active, headers in STARTS[start]:
        store.add(scope, destination, active=active, headers=headers)
    before = {h.id for h in store.hooks()}
    store.apply(plan_hooks(store.hooks(), desired()))
    after = store.hooks()
    again = plan_hooks(after, desired())
    assert again.empty, again
    wanted = [h for h in after if again.wanted(h.id)]
    assert all(h.is_active for h in wanted)
    # never two hooks of one scope at one destination, and nothing deleted
    assert len({(h.scope, h.destination) for h in after}) == len(after)
    assert before <= {h.id for h in after}


# -- without the destination URL -------------------------------------------------------------------


def test_without_the_url_inactive_hooks_of_wanted_scopes_are_re_enabled_only() -> None:
    store = Store()
    order = store.add("store/order/*", "https://somewhere.example.com/x", active=False)
    store.add("store/shipment/*", URL, headers={"X-Webhook-Secret": "wrong"})
    store.add("store/customer/*", URL, active=False)
    plan = plan_reenable(store.hooks(), SCOPES)
    assert not plan.complete
    assert [(u.hook.id, u.fixes) for u in plan.updates] == [(order, ("reenable",))]
    assert [h.scope for h in plan.extra] == ["store/customer/*"]
    assert plan.missing == (DELIVERY_EXCEPTION,)
    assert not plan.creates
    store.apply(plan)
    assert plan_reenable(store.hooks(), SCOPES).empty
