"""Retries and errors: what is sent again, after how long, and what the caller finally sees.

The policy's decisions are tested as pure functions; the session's behaviour through
`httpx.MockTransport` with a fake clock whose `sleep` only advances the time it reports.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr

from shared.bigcommerce import (
    BigCommerceClient,
    BigCommerceClients,
    ClientOptions,
    ConflictError,
    Idempotency,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    RateLimitHeaders,
    RetryPolicy,
    ServerError,
    TransportError,
    UnauthorizedError,
    UnprocessableError,
)
from shared.bigcommerce.requests import (
    HookCreate,
    RefundCreate,
    RefundLine,
    RefundPaymentLine,
    RefundQuoteRequest,
    ShipmentCreate,
    ShipmentLine,
)
from shared.bigcommerce.retry import Action, Delivery
from shared.config.settings import StoreSettings

TOKEN = "tok_5uper5ecret_do_not_leak"
STORE = StoreSettings(
    store_hash="abc123", access_token=SecretStr(TOKEN), webhook_secret=SecretStr("s")
)
HOOK = {"id": 9, "scope": "store/order/created", "destination": "https://x.test/hooks"}
SHIPMENT = {"id": 3, "order_id": 100, "order_address_id": 7, "items": []}
QUOTE = {"total_refund_amount": 10.5, "refund_methods": [[{"provider_id": "x", "amount": 10.5}]]}
REFUND = {"id": 1, "order_id": 100, "total_amount": 10.5, "payments": []}

Handler = Callable[[httpx.Request], httpx.Response]


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Script:
    """Answers requests from a list of responses or exceptions, recording what was asked."""

    def __init__(self, *steps: httpx.Response | Exception) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        return step


def client_for(
    handler: Handler, time: FakeTime | None = None, max_attempts: int = 5
) -> BigCommerceClient:
    time = time or FakeTime()
    clients = BigCommerceClients(
        [STORE],
        options=ClientOptions(retry=RetryPolicy(max_attempts=max_attempts)),
        transport=httpx.MockTransport(handler),
        clock=time.clock,
        sleep=time.sleep,
        rng=lambda: 0.5,
    )
    return clients.get("abc123")


def ok(body: object, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


def shipment() -> ShipmentCreate:
    return ShipmentCreate(order_address_id=7, items=[ShipmentLine(order_product_id=5, quantity=1)])


def refund() -> RefundCreate:
    return RefundCreate(
        items=[RefundLine(item_type="PRODUCT", item_id=5, quantity=1)],
        payments=[RefundPaymentLine(provider_id="x", amount=Decimal("10.50"), offline=False)],
    )


# -- the policy's decisions ------------------------------------------------------------------------


def test_backoff_doubles_from_the_base_up_to_the_cap_with_half_of_it_random() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0)
    assert [policy.backoff(n, lambda: 0.0) for n in range(1, 7)] == [0.25, 0.5, 1, 2, 4, 4]
    assert [policy.backoff(n, lambda: 0.999999) for n in range(1, 7)] == pytest.approx(
        [0.5, 1, 2, 4, 8, 8], abs=1e-4
    )


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_and_unavailable_answers_are_retried_for_safe_calls(status: int) -> None:
    decision = RetryPolicy().after_status(status, Idempotency.SAFE, 1, lambda: 0.0)
    assert decision.action is Action.RETRY
    assert decision.delay == 0.25


@pytest.mark.parametrize("status", [502, 503, 504])
def test_the_same_answers_to_a_create_leave_its_outcome_unknown(status: int) -> None:
    decision = RetryPolicy().after_status(status, Idempotency.UNSAFE, 1)
    assert decision.action is Action.OUTCOME_UNKNOWN


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 500])
def test_other_errors_are_never_retried(status: int) -> None:
    assert RetryPolicy().after_status(status, Idempotency.SAFE, 1).action is Action.FAIL


def test_retries_stop_at_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.after_status(503, Idempotency.SAFE, 2).action is Action.RETRY
    assert policy.after_status(503, Idempotency.SAFE, 3).action is Action.FAIL
    assert policy.after_rate_limit(RateLimitHeaders(reset_ms=1), 3, 3).action is Action.FAIL


def test_a_request_that_never_left_is_retried_even_for_a_create() -> None:
    policy = RetryPolicy()
    for idempotency in Idempotency:
        decision = policy.after_transport_error(Delivery.NOT_SENT, idempotency, 1)
        assert decision.action is Action.RETRY
    unsafe = policy.after_transport_error(Delivery.MAYBE_SENT, Idempotency.UNSAFE, 1)
    safe = policy.after_transport_error(Delivery.MAYBE_SENT, Idempotency.SAFE, 1)
    assert (unsafe.action, safe.action) == (Action.OUTCOME_UNKNOWN, Action.RETRY)


def test_a_429_waits_the_reset_then_adds_backoff_when_429s_repeat() -> None:
    policy = RetryPolicy(base_delay=1.0)
    headers = RateLimitHeaders(requests_left=0, reset_ms=15_000)
    assert policy.after_rate_limit(headers, 1, 1, lambda: 0.0).delay == 15.0
    assert policy.after_rate_limit(headers, 2, 2, lambda: 0.0).delay == 15.5
    assert policy.after_rate_limit(headers, 3, 3, lambda: 0.0).delay == 16.0
    longer = RateLimitHeaders(reset_ms=2_000, retry_after_s=6)
    assert policy.after_rate_limit(longer, 1, 1).delay == 6.0


def test_a_429_without_rate_headers_backs_off_exponentially() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=60)
    delays = [
        policy.after_rate_limit(RateLimitHeaders(), n, n, lambda: 0.0).delay for n in (1, 2, 3)
    ]
    assert delays == [0.5, 1.0, 2.0]


# -- the session -----------------------------------------------------------------------------------


async def test_a_read_is_retried_through_503_and_timeouts_then_succeeds() -> None:
    time = FakeTime()
    script = Script(
        httpx.Response(503, json={"status": 503, "title": "Service Unavailable"}),
        httpx.ReadTimeout("slow"),
        ok({"data": HOOK, "meta": {}}),
    )
    hook = await client_for(script, time).get_hook(9)
    assert hook.id == 9
    assert len(script.requests) == 3
    assert time.sleeps == [0.375, 0.75]  # backoff(1) and backoff(2) with the RNG at 0.5


async def test_a_read_gives_up_after_max_attempts_with_the_last_error() -> None:
    script = Script(httpx.Response(504, json={"status": 504, "title": "Gateway Timeout"}))
    with pytest.raises(ServerError) as caught:
        await client_for(script, max_attempts=3).get_hook(9)
    assert len(script.requests) == 3
    assert caught.value.status == 504
    assert caught.value.title == "Gateway Timeout"


async def test_a_connection_failure_exhausting_attempts_is_a_transport_error() -> None:
    script = Script(httpx.ConnectError("refused"))
    with pytest.raises(TransportError) as caught:
        await client_for(script, max_attempts=2).list_hooks()
    assert caught.value.status is None
    assert len(script.requests) == 2


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(502, json={"status": 502, "title": "Bad Gateway"}),
        httpx.Response(504, json={}),
        httpx.ReadTimeout("no answer"),
        httpx.RemoteProtocolError("connection dropped"),
    ],
)
async def test_a_create_whose_outcome_is_unknown_is_not_sent_again(
    failure: httpx.Response | Exception,
) -> None:
    script = Script(failure, ok(SHIPMENT, 201))
    with pytest.raises(OutcomeUnknownError) as caught:
        await client_for(script).create_shipment(100, shipment())
    assert len(script.requests) == 1
    assert caught.value.path == "/v2/orders/100/shipments"
    assert "check before sending it again" in str(caught.value)


async def test_refunds_and_hooks_are_creates_too() -> None:
    script = Script(httpx.ReadTimeout("no answer"))
    client = client_for(script)
    with pytest.raises(OutcomeUnknownError):
        await client.create_refund(100, refund())
    with pytest.raises(OutcomeUnknownError):
        await client.create_hook(HookCreate(scope="store/order/*", destination="https://x.test"))
    assert [r.method for r in script.requests] == ["POST", "POST"]


async def test_a_create_that_never_left_is_sent_again() -> None:
    script = Script(httpx.ConnectError("refused"), ok(SHIPMENT, 201))
    created = await client_for(script).create_shipment(100, shipment())
    assert created.id == 3
    assert len(script.requests) == 2


async def test_a_create_refused_with_429_is_sent_again_after_the_reset() -> None:
    time = FakeTime()
    limited = httpx.Response(
        429, headers={"X-Rate-Limit-Requests-Left": "0", "X-Rate-Limit-Time-Reset-Ms": "7000"}
    )
    script = Script(limited, ok({"data": REFUND, "meta": {}}, 201))
    created = await client_for(script, time).create_refund(100, refund())
    assert created.total_amount == Decimal("10.5")
    assert len(script.requests) == 2
    assert sum(time.sleeps) == pytest.approx(7.0, abs=0.01)


async def test_a_refund_quote_is_retried_like_a_read() -> None:
    script = Script(httpx.Response(503, json={}), ok({"data": QUOTE, "meta": {}}, 201))
    request = RefundQuoteRequest(items=[RefundLine(item_type="PRODUCT", item_id=5, quantity=1)])
    quote = await client_for(script).create_refund_quote(100, request)
    assert quote.total_refund_amount == Decimal("10.5")
    assert len(script.requests) == 2


async def test_repeated_429s_end_in_rate_limited_error() -> None:
    limited = httpx.Response(429, headers={"X-Rate-Limit-Time-Reset-Ms": "1000"})
    script = Script(limited)
    with pytest.raises(RateLimitedError) as caught:
        await client_for(script, max_attempts=3).get_hook(1)
    assert caught.value.retry_after == 1.0
    assert len(script.requests) == 3


async def test_a_delete_retried_after_no_answer_treats_404_as_done() -> None:
    script = Script(httpx.ReadTimeout("no answer"), httpx.Response(404, json={"status": 404}))
    assert await client_for(script).delete_hook(9) is None
    assert len(script.requests) == 2


async def test_a_404_on_a_first_delete_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        await client_for(Script(httpx.Response(404, json={"status": 404}))).delete_hook(9)


# -- errors ----------------------------------------------------------------------------------------


async def test_422_carries_bigcommerce_title_and_field_errors_and_is_not_retried() -> None:
    body = {
        "status": 422,
        "title": "JSON data is missing or invalid",
        "type": "/api-docs/getting-started/api-status-codes",
        "errors": {"destination": "error.path.missing."},
    }
    script = Script(httpx.Response(422, json=body))
    with pytest.raises(UnprocessableError) as caught:
        await client_for(script).create_hook(HookCreate(scope="s", destination="https://x.test"))
    error = caught.value
    assert (error.status, error.method, error.path) == (422, "POST", "/v3/hooks")
    assert error.title == "JSON data is missing or invalid"
    assert dict(error.errors) == {"destination": "error.path.missing."}
    assert len(script.requests) == 1


async def test_payment_action_errors_wrapped_in_data_are_read() -> None:
    body = {"data": [{"status": 422, "title": "Unable to provide store credit for a guest."}]}
    with pytest.raises(UnprocessableError) as caught:
        await client_for(Script(httpx.Response(422, json=body))).create_refund(100, refund())
    assert caught.value.title == "Unable to provide store credit for a guest."


async def test_v2_error_lists_and_409_are_typed() -> None:
    v2 = [{"status": 404, "message": "The requested resource was not found."}]
    with pytest.raises(NotFoundError) as caught:
        await client_for(Script(httpx.Response(404, json=v2))).get_order(1)
    assert caught.value.title == "The requested resource was not found."
    assert caught.value.path == "/v2/orders/1"
    conflict = {"status": 409, "title": "Metafield already exists"}
    with pytest.raises(ConflictError):
        await client_for(Script(httpx.Response(409, json=conflict))).get_hook(1)


async def test_500_is_a_server_error_without_retry() -> None:
    script = Script(httpx.Response(500, text="<html>oops</html>"))
    with pytest.raises(ServerError) as caught:
        await client_for(script).get_hook(1)
    assert caught.value.status == 500
    assert len(script.requests) == 1


async def test_the_access_token_never_reaches_messages_reprs_or_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = {"status": 401, "title": f"Bad token {TOKEN}", "errors": {"X-Auth-Token": TOKEN}}
    failures: list[BaseException] = []
    for script in (
        Script(httpx.Response(401, json=echo)),
        Script(httpx.ReadTimeout(f"timeout talking with {TOKEN}")),
        Script(httpx.ConnectError("refused")),
    ):
        client = client_for(script, max_attempts=2)
        for call in (
            client.get_hook(1),
            client.create_hook(HookCreate(scope="s", destination="https://x.test")),
        ):
            try:
                await call
            except Exception as exc:
                failures.append(exc)
        assert script.requests[0].headers["X-Auth-Token"] == TOKEN  # it is sent, only sent
    unauthorized, unknown = UnauthorizedError, OutcomeUnknownError
    assert [type(f) for f in failures] == [
        *(unauthorized, unauthorized),  # the token was refused and echoed back
        *(TransportError, unknown),  # the token was in the network error's text
        *(TransportError, TransportError),
    ]
    texts = [str(f) for f in failures] + [repr(f) for f in failures]
    texts += ["".join(traceback.format_exception(f)) for f in failures]
    texts += [repr(client), repr(client.session), repr(STORE)]
    texts += [r.getMessage() + str(r.__dict__) for r in caplog.records]
    assert all(TOKEN not in text for text in texts)
    assert any("[redacted]" in text for text in texts)
