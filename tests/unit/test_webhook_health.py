"""The webhook health check with a fake BigCommerce client and an in-memory state store.

The fake keeps its hooks in the store simulator's registry (local/bigcommerce/webhooks), so the
platform limits apply; the test moves time by hand. What is checked: repairs, the state record,
the order watermark set back to when a repaired hook stopped delivering, the report and its log
line, and that `functions/orders.py` hands deliveryException messages to the check.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import replace as dc_replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from local.bigcommerce.webhooks.registry import HookConflict, HookRegistry, HookSpec
from shared.bigcommerce.errors import BigCommerceError, ServerError, UnprocessableError
from shared.bigcommerce.models import HooksAdmin, Webhook
from shared.bigcommerce.registry import UnknownStoreError
from shared.bigcommerce.requests import HookCreate, HookUpdate
from shared.config import Settings, load_settings
from shared.reconciliation.hooks_plan import DELIVERY_EXCEPTION
from shared.reconciliation.webhook_health import (
    DEFAULT_MARGIN,
    HOOKS_PARTITION,
    RETRY_WINDOW,
    HookReport,
    WebhookHealth,
    read_notice,
)
from shared.state import lease
from tests.unit import state_fakes

STORE = "teststore1"  # tests/conftest.py configures it, with its webhook secret
SECRET = "test-webhook-secret"
FUNCTION_KEY = "function-key-123"
URL = "https://connector.example.com/api/webhooks/bigcommerce"
EXCEPTION_URL = URL + "?source=delivery-exception"
START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
HEADERS = {"X-Webhook-Secret": SECRET, "x-functions-key": FUNCTION_KEY}
WATERMARK_KEY = f"{STORE}.orders"


# -- fakes ----------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta

    @property
    def epoch(self) -> int:
        return int(self.now.timestamp())


class MemoryState(state_fakes.MemoryState):
    def set_watermark(self, value: datetime) -> None:
        self.put("watermarks", WATERMARK_KEY, {"watermark": value.isoformat()})

    def watermark(self) -> datetime | None:
        value = self.value("watermarks", WATERMARK_KEY)
        return None if value is None else datetime.fromisoformat(value["watermark"])


def _error(kind: type[BigCommerceError], method: str, status: int) -> BigCommerceError:
    return kind("refused", store_hash=STORE, method=method, path="/v3/hooks", status=status)


class FakeHooks:
    """`HooksApi` over the simulator's registry; `statuses` and `blocked` shape /hooks/admin."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.registry = HookRegistry()
        self.blocked: list[dict[str, Any]] = []
        self.fail_updates: dict[int, BigCommerceError] = {}
        self.fail_creates: dict[str, BigCommerceError] = {}  # by scope
        self.create_anyway = False  # a failed create that went through all the same
        self.admin_error: BigCommerceError | None = None
        self.list_error: BigCommerceError | None = None
        self.calls: list[str] = []

    def add(
        self,
        scope: str,
        destination: str = URL,
        *,
        active: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> int:
        spec = HookSpec(scope, destination, active, dict(HEADERS if headers is None else headers))
        return self.registry.create(STORE, "client", spec, self.clock.epoch).id

    def add_desired(self) -> dict[str, int]:
        return {
            "order": self.add("store/order/*"),
            "shipment": self.add("store/shipment/*"),
            "exception": self.add(DELIVERY_EXCEPTION, EXCEPTION_URL),
        }

    def deactivate(self, hook_id: int) -> None:
        self.registry.deactivate(hook_id, self.clock.epoch)

    def switch_off(self, hook_id: int) -> None:
        """The app (or someone with its token) sets the hook inactive."""
        hook = self.registry.get(hook_id)
        assert hook is not None
        spec = HookSpec(hook.scope, hook.destination, False, hook.headers)
        self.registry.update(hook, spec, self.clock.epoch)

    def hook(self, hook_id: int) -> Webhook:
        found = self.registry.get(hook_id)
        assert found is not None
        return Webhook.model_validate(found.to_json())

    def hooks(self) -> list[Webhook]:
        return [Webhook.model_validate(h.to_json()) for h in self.registry.for_store(STORE)]

    async def list_hooks(self) -> list[Webhook]:
        self.calls.append("GET /hooks")
        if self.list_error is not None:
            raise self.list_error
        return self.hooks()

    async def create_hook(self, hook: HookCreate) -> Webhook:
        self.calls.append(f"POST /hooks {hook.scope}")
        body = hook.body()
        spec = HookSpec(body["scope"], body["destination"], body["is_active"], body.get("headers"))
        failure = self.fail_creates.get(hook.scope)
        if failure is not None:
            if self.create_anyway:
                self.registry.create(STORE, "client", spec, self.clock.epoch)
            raise failure
        try:
            made = self.registry.create(STORE, "client", spec, self.clock.epoch)
        except HookConflict as exc:
            raise _error(UnprocessableError, "POST", 422) from exc
        return Webhook.model_validate(made.to_json())

    async def update_hook(self, hook_id: int, update: HookUpdate) -> Webhook:
        self.calls.append(f"PUT /hooks/{hook_id} {sorted(update.body())}")
        if hook_id in self.fail_updates:
            raise self.fail_updates[hook_id]
        hook = self.registry.get(hook_id)
        assert hook is not None
        body = update.body()
        spec = HookSpec(
            body.get("scope", hook.scope),
            body.get("destination", hook.destination),
            body.get("is_active", hook.is_active),
            body.get("headers", hook.headers),
        )
        return Webhook.model_validate(self.registry.update(hook, spec, self.clock.epoch).to_json())

    async def get_hooks_admin(self) -> HooksAdmin:
        self.calls.append("GET /hooks/admin")
        if self.admin_error is not None:
            raise self.admin_error
        hooks = [{**h.to_json(), "status": h.status} for h in self.registry.for_store(STORE)]
        return HooksAdmin.model_validate(
            {"emails": [], "hooks_list": hooks, "blocked_domains": self.blocked}
        )

    @property
    def writes(self) -> list[str]:
        return [c for c in self.calls if not c.startswith("GET")]


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("WEBHOOK_DESTINATION_URL", "WEBHOOK_FUNCTION_KEY", "BIGCOMMERCE_WEBHOOK_SCOPES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WEBHOOK_DESTINATION_URL", URL)
    monkeypatch.setenv("WEBHOOK_FUNCTION_KEY", FUNCTION_KEY)
    return monkeypatch


@pytest.fixture
def settings(env: pytest.MonkeyPatch) -> Settings:
    return load_settings()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> FakeHooks:
    return FakeHooks(clock)


@pytest.fixture
def state() -> MemoryState:
    return MemoryState()


def health_of(
    settings: Settings, fake: FakeHooks, state: MemoryState | None, clock: Clock
) -> WebhookHealth:
    def clients(store_hash: str) -> FakeHooks:
        assert store_hash == STORE
        return fake

    return WebhookHealth(settings, clients, state, clock=clock)


@pytest.fixture
def health(settings: Settings, fake: FakeHooks, state: MemoryState, clock: Clock) -> WebhookHealth:
    return health_of(settings, fake, state, clock)


def record(state: MemoryState) -> dict[str, Any]:
    value = state.value(HOOKS_PARTITION, STORE)
    assert value is not None
    return value


def recorded_hook(state: MemoryState, hook_id: int) -> dict[str, Any]:
    hooks: list[dict[str, Any]] = record(state)["hooks"]
    return next(h for h in hooks if h["id"] == hook_id)


# -- creating and idempotence ---------------------------------------------------------------------


async def test_an_empty_store_gets_its_hooks_and_a_second_check_changes_nothing(
    health: WebhookHealth, fake: FakeHooks, state: MemoryState, clock: Clock
) -> None:
    report = await health.check_hooks(STORE)
    assert report.hooks_created == 3
    assert report.healthy
    assert sorted((h.scope, h.destination) for h in fake.hooks()) == [
        ("store/hook/deliveryException", EXCEPTION_URL),
        ("store/order/*", URL),
        ("store/shipment/*", URL),
    ]
    assert all(h.headers == HEADERS and h.is_active for h in fake.hooks())
    assert report.watermark_target is None  # never had hooks: the first sweep's lookback
    assert state.watermark() is None
    assert record(state)["healthy"] is True

    fake.calls.clear()
    clock.advance(timedelta(minutes=5))
    again = await health.check_hooks(STORE)
    assert again.repairs == ()
    assert fake.calls == ["GET /hooks", "GET /hooks/admin"]
    assert again.previous_check == START


async def test_a_check_takes_the_stores_lease_and_gives_it_back(
    health: WebhookHealth, state: MemoryState, clock: Clock
) -> None:
    held = await lease.acquire(state, f"hooks.{STORE}", "the-timer", timedelta(minutes=2), clock)
    assert held is not None
    skipped = await health.check_hooks(STORE)
    assert skipped.skipped is not None
    assert skipped.repairs == ()
    await lease.release(state, held)
    done = await health.check_hooks(STORE)
    assert done.hooks_created == 3
    assert await state.get(lease.LEASES_PARTITION, f"hooks.{STORE}") is None


async def test_an_unknown_store_is_refused(health: WebhookHealth) -> None:
    with pytest.raises(UnknownStoreError):
        await health.check_hooks("nosuchstore")


# -- re-enabling and the watermark ----------------------------------------------------------------


async def test_a_deactivated_hook_is_re_enabled_and_the_sweep_goes_back_a_retry_window(
    health: WebhookHealth, fake: FakeHooks, state: MemoryState, clock: Clock
) -> None:
    ids = fake.add_desired()
    clock.advance(timedelta(days=3))
    fake.deactivate(ids["order"])  # after ~48 h of failed deliveries
    deactivated_at = clock.now
    state.set_watermark(clock.now - timedelta(minutes=5))
    clock.advance(timedelta(minutes=3))

    report = await health.check_hooks(STORE)

    assert fake.hook(ids["order"]).is_active
    assert fake.writes == [f"PUT /hooks/{ids['order']} ['is_active']"]
    assert report.hooks_repaired == 1
    (repair,) = report.repairs
    assert repair.action == ("reenable",)
    assert repair.ok
    assert repair.stopped_at == deactivated_at - RETRY_WINDOW
    expected = deactivated_at - RETRY_WINDOW - DEFAULT_MARGIN
    assert report.watermark_rewound_to == expected
    assert state.watermark() == expected
    value = state.value("watermarks", WATERMARK_KEY)
    assert value is not None
    assert value["rewound_by"] == "webhook_health"
    stored = record(state)
    assert stored["repairs"][-1]["action"] == ["reenable"]
    assert stored["last_repair_at"] == clock.now.isoformat()
    assert recorded_hook(state, ids["order"])["inactive_since"] is None
    assert recorded_hook(state, ids["order"])["status"] == "active"


async def test_a_hook_the_app_switched_off_sweeps_back_from_when_it_was_switched_off(
    health: WebhookHealth, fake: FakeHooks, state: MemoryState, clock: Clock
) -> None:
    ids = fake.add_desired()
    clock.advance(timedelta(hours=1))
    fake.switch_off(ids["shipment"])
    switched_off = clock.now
    clock.advance(timedelta(hours=2))
    state.set_watermark(clock.now)
    report = await health.check_hooks(STORE)
    assert fake.hook(ids["shipment"]).is_active
    assert report.watermark_rewound_to == switched_off - DEFAULT_MARGIN


async def test_a_watermark_already_earlier_is_left_alone(
    health: WebhookHealth, fake: FakeHooks, state: MemoryState, clock: Clock
) -> None:
    ids = fake.add_desired()
    clock.advance(timedelta(hours=1))
    fake.switch_off(ids["order"])
    early = START - timedelta(days=30)
    state.set_watermark(early)
    report = await health.check_hooks(STORE)
    assert report.watermark_target == clock.now - DEFAULT_MARGIN
    assert report.watermark_rewound_to is None
    assert state.watermark() == early


async def test_without_a_watermark_one_is_written_only_beyond_the_first_lookback(
    health: WebhookHealth, fake: FakeHooks, state: MemoryState, clock: Clock, settings: Settings
) -> None:
    ids = fake.add_desired()
    fake.switch_off(ids["order"])
    clock.advance(timedelta(hours=1))
    await health.check_hooks(STORE)
    assert state.watermark() is None  # the first sweep looks back further anyway

    fake.deactivate(ids["order"])
    clock.advance(timedelta(hours=settings.reconcile_first_lookback_hours))
    report = await health.check_hooks(STORE)
    assert report.watermark_rewound_to is not None
    assert state.watermark() == report.watermark_rewound_to


async def test_the_watermark_is_set_back_before_a_repair_that_then_fails(
    health: WebhookHealth, fake: FakeHooks, state: MemoryState, clock: Clock
) -> None:
    ids = fake.add_desired()
    clock.advance(timedelta(days=3))
    fake.deactivate(ids["order"])
    deactivated_at = clock.now
    state.set_watermark(clock.now)
    fake.fail_updates[ids["order"]] = _error(ServerError, "PUT", 503)
    clock.advance(timedelta(minutes=5))

    first = await health.check_hooks(STORE)

    assert not first.healthy
    (failed,) = first.failed_repairs
    assert "HTTP 503" in (failed.error or "")
    assert not fake.hook(ids["order"]).is_active
    target = deactivated_at - RETRY_WINDOW - DEFAULT_MARGIN
    assert state.watermark() == target
    assert recorded_hook(state, ids["order"])["inactive_since"] == deactivated_at.isoformat()
    assert record(state)["repairs"][-1]["ok"] is False

    # Someone fixes the headers of the still deactivated hook (its updated_at moves), the sweep
    # runs meanwhile; the next check re-enables and goes back to when it was first seen off.
    del fake.fail_updates[ids["order"]]
    clock.advance(timedelta(minutes=5))
    hook = fake.registry.get(ids["order"])
    assert hook is not None
    fake.registry.update(
        hook, HookSpec(hook.scope, hook.destination, False, hook.headers), clock.epoch
    )
    state.set_watermark(clock.now)
    second = await health.check_hooks(STORE)
    assert fake.hook(ids["order"]).is_active
    assert second.watermark_rewound_to == target


async def test_fixed_headers_sweep_back_at_most_a_retry_window(
    health: WebhookHealth, fake: FakeHooks, state: MemoryState, clock: Clock
) -> None:
    order = fake.add("store/order/*", headers={"X-Webhook-Secret": "rotated"})
    fake.add("store/shipment/*")
    fake.add(DELIVERY_EXCEPTION, EXCEPTION_URL)
    clock.advance(timedelta(days=10))
    state.set_watermark(clock.now)
    report = await health.check_hooks(STORE)
    assert fake.hook(order).headers == HEADERS
    assert report.repairs[0].action == ("headers",)
    assert report.watermark_rewound_to == clock.now - RETRY_WINDOW - DEFAULT_MARGIN


async def test_a_repointed_hook_sweeps_back_to_when_it_was_pointed_away(
    health: WebhookHealth, fake: FakeHooks, state: MemoryState, clock: Clock
) -> None:
    clock.advance(timedelta(hours=1))
    pointed_away = clock.now
    order = fake.add("store/order/*", "https://old.example.com/api/webhooks/bigcommerce")
    fake.add("store/shipment/*")
    fake.add(DELIVERY_EXCEPTION, EXCEPTION_URL)
    clock.advance(timedelta(days=10))
    state.set_watermark(clock.now)
    report = await health.check_hooks(STORE)
    assert fake.hook(order).destination == URL
    assert report.watermark_rewound_to == pointed_away - DEFAULT_MARGIN


async def test_a_deleted_hook_is_created_again_and_the_sweep_goes_back_to_the_last_check(
    health: WebhookHealth, fake: FakeHooks, state: MemoryState, clock: Clock
) -> None:
    ids = fake.add_desired()
    await health.check_hooks(STORE)
    last_check = clock.now
    clock.advance(timedelta(hours=2))
    fake.registry.delete(ids["shipment"])
    state.set_watermark(clock.now)
    report = await health.check_hooks(STORE)
    assert report.hooks_created == 1
    assert report.watermark_rewound_to == last_check - DEFAULT_MARGIN


# -- what can go wrong ----------------------------------------------------------------------------


async def test_without_the_destination_url_hooks_are_only_re_enabled(
    env: pytest.MonkeyPatch,
    fake: FakeHooks,
    state: MemoryState,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    env.delenv("WEBHOOK_DESTINATION_URL")
    health = health_of(load_settings(), fake, state, clock)
    order = fake.add("store/order/*", headers={"X-Webhook-Secret": "wrong"})
    fake.deactivate(order)
    with caplog.at_level(logging.WARNING):
        report = await health.check_hooks(STORE)
    assert not report.complete
    assert fake.hook(order).is_active
    assert fake.hook(order).headers == {"X-Webhook-Secret": "wrong"}  # not known to be wrong
    assert report.missing == ("store/shipment/*", DELIVERY_EXCEPTION)
    assert not report.healthy
    assert len(fake.hooks()) == 1
    assert any("WEBHOOK_DESTINATION_URL is not set" in r.getMessage() for r in caplog.records)


async def test_blocked_domains_are_reported_as_a_warning(
    health: WebhookHealth,
    fake: FakeHooks,
    state: MemoryState,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.add_desired()
    fake.blocked = [
        {
            "destination": "https://connector.example.com",
            "time_left": 120,
            "reasons": [{"failure_description": "HTTP 500", "count": 100, "timestamp": 1}],
        }
    ]
    with caplog.at_level(logging.WARNING):
        report = await health.check_hooks(STORE)
    (blocked,) = report.blocked_domains
    assert blocked.time_left == 120
    assert blocked.reasons == ("HTTP 500",)
    assert not report.healthy
    assert record(state)["blocked_domains"][0]["time_left"] == 120
    assert any("blocks deliveries" in r.getMessage() for r in caplog.records)


async def test_without_the_admin_endpoint_an_inactive_hook_counts_as_deactivated(
    health: WebhookHealth, fake: FakeHooks, state: MemoryState, clock: Clock
) -> None:
    ids = fake.add_desired()
    fake.switch_off(ids["order"])
    switched_off = clock.now
    fake.admin_error = _error(ServerError, "GET", 500)
    state.set_watermark(clock.now)
    report = await health.check_hooks(STORE)
    assert report.errors
    assert fake.hook(ids["order"]).is_active
    assert report.watermark_rewound_to == switched_off - RETRY_WINDOW - DEFAULT_MARGIN


async def test_a_create_that_went_through_unanswered_is_found_and_counted(
    health: WebhookHealth, fake: FakeHooks
) -> None:
    fake.fail_creates["store/order/*"] = _error(ServerError, "POST", 504)
    fake.create_anyway = True
    report = await health.check_hooks(STORE)
    assert report.hooks_created == 3
    assert not report.failed_repairs
    assert len(fake.hooks()) == 3


async def test_a_failed_create_is_reported_and_the_others_are_made(
    health: WebhookHealth, fake: FakeHooks, state: MemoryState
) -> None:
    fake.fail_creates["store/shipment/*"] = _error(UnprocessableError, "POST", 422)
    report = await health.check_hooks(STORE)
    assert report.hooks_created == 2
    (failed,) = report.failed_repairs
    assert failed.scope == "store/shipment/*"
    assert failed.hook_id is None
    assert not report.healthy
    assert record(state)["healthy"] is False


async def test_a_hook_list_that_fails_raises(health: WebhookHealth, fake: FakeHooks) -> None:
    fake.list_error = _error(ServerError, "GET", 500)
    with pytest.raises(BigCommerceError):
        await health.check_hooks(STORE)


# -- dry runs, reports, secrets -------------------------------------------------------------------


async def test_a_dry_run_plans_but_changes_and_records_nothing(
    health: WebhookHealth, fake: FakeHooks, state: MemoryState, clock: Clock
) -> None:
    ids = fake.add_desired()
    fake.deactivate(ids["order"])
    state.set_watermark(clock.now)
    report = await health.check_hooks(STORE, dry_run=True)
    assert report.dry_run
    assert [(r.action, r.ok) for r in report.repairs] == [(("reenable",), None)]
    assert report.watermark_target is not None
    assert report.watermark_rewound_to is None
    assert fake.writes == []
    assert state.value(HOOKS_PARTITION, STORE) is None
    assert state.watermark() == clock.now
    (order,) = [h for h in report.hooks if h.id == ids["order"]]
    assert order.status == "deactivated"
    assert order.problem == "inactive: re-enable"
    assert not report.healthy


async def test_the_url_and_key_given_override_the_settings(
    health: WebhookHealth, fake: FakeHooks
) -> None:
    other = "https://new.example.com/api/webhooks/bigcommerce"
    report = await health.check_hooks(STORE, destination_url=other, function_key="k2")
    assert report.destination == other
    assert {h.destination for h in fake.hooks()} == {other, other + "?source=delivery-exception"}
    assert all(
        h.headers == {"X-Webhook-Secret": SECRET, "x-functions-key": "k2"} for h in fake.hooks()
    )


async def test_secrets_stay_out_of_reports_records_and_logs(
    health: WebhookHealth,
    fake: FakeHooks,
    state: MemoryState,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.add("store/order/*", URL + "?code=query-key-999", active=False)
    fake.add("store/customer/*", URL + "?code=query-key-999")
    with caplog.at_level(logging.DEBUG):
        report = await health.check_hooks(STORE)
    texts = [
        json.dumps(report.to_json()),
        json.dumps(record(state)),
        caplog.text,
        json.dumps([vars(r) for r in caplog.records], default=str),
        repr(report),
    ]
    for text in texts:
        assert SECRET not in text
        assert FUNCTION_KEY not in text
        assert "query-key-999" not in text
    assert any("code=***" in h.destination for h in report.hooks)
    assert all(set(h.headers) <= {"X-Webhook-Secret", "x-functions-key"} for h in report.hooks)


async def test_one_structured_log_line_per_check(
    health: WebhookHealth,
    fake: FakeHooks,
    state: MemoryState,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids = fake.add_desired()
    fake.deactivate(ids["exception"])
    state.set_watermark(clock.now)
    with caplog.at_level(logging.INFO, logger="shared.reconciliation.webhooks"):
        report = await health.check_hooks(STORE, trigger="timer")
    assert report.watermark_target is None
    assert state.watermark() == clock.now
    (line,) = [r for r in caplog.records if getattr(r, "event", None) == "webhook_health"]
    fields = vars(line)
    assert fields["store_hash"] == STORE
    assert fields["trigger"] == "timer"
    assert fields["hooks_repaired"] == 1
    assert fields["hooks_created"] == 0
    assert fields["hooks_missing"] == []
    assert fields["healthy"] is True
    assert fields["watermark_rewound_to"] is None  # it carries notices, not orders


async def test_check_all_goes_on_after_a_failing_store(
    health: WebhookHealth, fake: FakeHooks
) -> None:
    fake.list_error = _error(ServerError, "GET", 500)
    assert await health.check_all() == []
    fake.list_error = None
    (report,) = await health.check_all()
    assert report.trigger == "timer"


# -- deliveryException ----------------------------------------------------------------------------


def notice_body(hook_id: int, code: int = 90002) -> bytes:
    return json.dumps(
        {
            "schema": "bigcommerce.webhook",
            "store_hash": STORE,
            "event": {
                "scope": DELIVERY_EXCEPTION,
                "store_id": "1",
                "producer": f"stores/{STORE}",
                "hash": "abc",
                "created_at": int(START.timestamp()),
                "data": {
                    "type": "webhook",
                    "id": hook_id,
                    "error_code": code,
                    "message": "retries exhausted; the hook is disabled",
                },
            },
        }
    ).encode()


def test_a_notice_is_read_from_the_message_body() -> None:
    notice = read_notice(notice_body(42))
    assert notice is not None
    assert (notice.hook_id, notice.error_code, notice.created_at) == (42, 90002, START)
    assert read_notice(b"not json") is None


async def test_a_delivery_exception_runs_the_check_at_once(
    health: WebhookHealth, fake: FakeHooks, state: MemoryState
) -> None:
    ids = fake.add_desired()
    fake.deactivate(ids["order"])
    properties = {"family": "hook", "store_hash": STORE, "scope": DELIVERY_EXCEPTION}
    report = await health.handle_notice(properties, notice_body(ids["order"]))
    assert report is not None
    assert report.trigger == "delivery_exception"
    assert fake.hook(ids["order"]).is_active
    assert record(state)["last_notice"]["error_code"] == 90002


async def test_a_delivery_exception_never_raises(
    health: WebhookHealth, fake: FakeHooks, caplog: pytest.LogCaptureFixture
) -> None:
    assert await health.handle_notice({"store_hash": "nosuchstore"}, b"{}") is None
    fake.list_error = _error(ServerError, "GET", 500)
    with caplog.at_level(logging.ERROR):
        assert await health.handle_notice({"store_hash": STORE}, notice_body(1)) is None
    assert any(getattr(r, "event", None) == "webhook_health_failed" for r in caplog.records)


class _Runner:
    def __init__(self) -> None:
        self.handled: list[Any] = []

    async def handle(self, received: Any) -> Any:
        self.handled.append(received)
        return SimpleNamespace(outcome="done")


class _Health:
    def __init__(self) -> None:
        self.notices: list[tuple[dict[str, Any], bytes]] = []

    async def handle_notice(self, properties: Mapping[str, Any], body: bytes) -> HookReport:
        self.notices.append((dict(properties), body))
        return HookReport(STORE, START, "delivery_exception")


@pytest.fixture
def dispatch(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, _Runner, _Health]:
    import functions.orders as orders

    runner, checker = _Runner(), _Health()
    fake_container = SimpleNamespace(order_runner=lambda: runner, webhook_health=lambda: checker)
    monkeypatch.setattr(orders, "container", lambda: fake_container)
    return orders.order_events._function.get_user_function(), runner, checker


def _message(properties: dict[str, Any], body: bytes = b"{}") -> Any:
    return SimpleNamespace(
        get_body=lambda: body,
        message_id="m-1",
        application_properties=properties,
        correlation_id="c-1",
        delivery_count=1,
    )


async def test_the_order_function_hands_hook_messages_to_the_health_check(
    dispatch: tuple[Any, _Runner, _Health],
) -> None:
    function, runner, checker = dispatch
    context = SimpleNamespace(invocation_id="inv-1", trace_context=None)
    body = notice_body(7)
    await function(_message({"family": "hook", "store_hash": STORE}, body), context)
    assert checker.notices == [({"family": "hook", "store_hash": STORE}, body)]
    assert runner.handled == []
    await function(_message({"family": "order", "store_hash": STORE, "order_id": 5}), context)
    assert len(runner.handled) == 1
    assert len(checker.notices) == 1


def test_reports_say_what_they_count() -> None:
    report = HookReport(STORE, START, "check")
    assert report.healthy
    skipped = dc_replace(report, skipped="busy", missing=("x",))
    assert skipped.healthy
