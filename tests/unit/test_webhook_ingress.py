"""The ingress handler: every refusal is a problem with nothing enqueued; success enqueues once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from shared.config import load_settings
from shared.handlers.webhook_ingress import IngressRequest, IngressResponse, WebhookIngress
from shared.messaging.message import OutboundMessage
from shared.messaging.ports import SendError
from tests.support.webhooks import callback, encode, signed_headers

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SECRET_HEADER = "x-webhook-secret"


class RecordingSender:
    """A fake of the MessageSender port: records what was durably accepted."""

    def __init__(self, fail: Exception | None = None, delay: float = 0.0) -> None:
        self.sent: list[tuple[str, OutboundMessage]] = []
        self.fail = fail
        self.delay = delay

    async def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise self.fail
        self.sent.extend((queue, m) for m in messages)

    async def close(self) -> None:
        return None


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    values = {
        "BIGCOMMERCE_STORES": "abc123,sig456,both789",
        "BIGCOMMERCE_ABC123_ACCESS_TOKEN": "t1",
        "BIGCOMMERCE_ABC123_WEBHOOK_SECRET": "header-secret",
        "BIGCOMMERCE_ABC123_STORE_ID": "1025646",
        "BIGCOMMERCE_SIG456_ACCESS_TOKEN": "t2",
        "BIGCOMMERCE_SIG456_CLIENT_SECRET": "client-secret",
        "BIGCOMMERCE_BOTH789_ACCESS_TOKEN": "t3",
        "BIGCOMMERCE_BOTH789_WEBHOOK_SECRET": "header-secret-3",
        "BIGCOMMERCE_BOTH789_CLIENT_SECRET": "client-secret-3",
        "DATAVERSE_URL": "https://contoso.crm.dynamics.com",
        "SERVICEBUS_TRANSPORT": "local",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def ingress(settings, sender: RecordingSender, timeout: float = 5.0) -> WebhookIngress:  # type: ignore[no-untyped-def]
    ids = iter(f"corr-{i}" for i in range(1000))
    return WebhookIngress(
        settings, sender, clock=lambda: NOW, new_id=lambda: next(ids), send_timeout=timeout
    )


def post(
    body: bytes, headers: dict[str, str] | None = None, method: str = "POST"
) -> IngressRequest:
    base = {"content-type": "application/json", SECRET_HEADER: "header-secret"}
    return IngressRequest(
        method, {k.lower(): v for k, v in {**base, **(headers or {})}.items()}, body
    )


def assert_problem(response: IngressResponse, status: int) -> None:
    assert response.status == status
    assert response.body is not None
    assert set(response.body) == {"type", "title", "status", "detail"}
    assert response.body["status"] == status


async def test_valid_order_event_is_enqueued_once_with_the_contract(settings) -> None:  # type: ignore[no-untyped-def]
    sender = RecordingSender()
    response = await ingress(settings, sender).handle(post(encode(callback())))
    assert (response.status, response.body) == (200, None)
    [(queue, message)] = sender.sent
    assert queue == "order-events"
    assert message.session_id == "abc123:order:250"
    assert len(message.message_id) == 64
    assert message.application_properties["scope"] == "store/order/created"
    assert message.application_properties["order_id"] == 250
    assert message.application_properties["correlation_id"] == "corr-0"
    assert str(message.application_properties["traceparent"]).startswith("00-")
    body = json.loads(message.body)
    assert body["schema_version"] == 1
    assert body["received_at"] == NOW.isoformat()
    assert body["event"]["data"] == {"type": "order", "id": 250}


async def test_redelivery_has_the_same_message_id_and_a_new_event_does_not(settings) -> None:  # type: ignore[no-untyped-def]
    sender = RecordingSender()
    handler = ingress(settings, sender)
    await handler.handle(post(encode(callback())))
    await handler.handle(post(encode(callback())))
    await handler.handle(post(encode(callback(scope="store/order/updated", hash_="other"))))
    ids = [m.message_id for _, m in sender.sent]
    assert ids[0] == ids[1] != ids[2]
    assert {m.session_id for _, m in sender.sent} == {"abc123:order:250"}


@pytest.mark.parametrize(
    ("scope", "data", "session"),
    [
        ("store/shipment/created", {"type": "shipment", "id": 12, "orderId": 251}, "order:251"),
        ("store/channel/3/order/updated", {"order_id": 127}, "order:127"),
        (
            "store/order/transaction/created",
            {"type": "transaction", "order_id": "88", "transaction_id": "t-1"},
            "order:88",
        ),
        (
            "store/order/refund/created",
            {"type": "order", "id": 250, "refund": {"refund_id": 3}},
            "order:250",
        ),
        (
            "store/order/statusUpdated",
            {"type": "order", "id": 9, "status": {"previous_status_id": 0, "new_status_id": 11}},
            "order:9",
        ),
        (
            "store/customer/address/updated",
            {"type": "customer", "id": 60, "address": {"customer_id": 32}},
            "customer:32",
        ),
        (
            "store/sku/inventory/updated",
            {
                "type": "sku",
                "id": 461,
                "inventory": {
                    "product_id": 206,
                    "method": "absolute",
                    "value": 5,
                    "variant_id": 509,
                },
            },
            "sku:461",
        ),
        (
            "store/hook/deliveryException",
            {"type": "webhook", "id": 123, "error_code": 90002, "message": "x"},
            "hooks",
        ),
        ("store/app/uninstalled", {"type": "store"}, "store"),
    ],
)
async def test_each_scope_family_gets_its_session(settings, scope, data, session) -> None:  # type: ignore[no-untyped-def]
    sender = RecordingSender()
    response = await ingress(settings, sender).handle(post(encode(callback(scope, data))))
    assert response.status == 200
    assert sender.sent[0][1].session_id == f"abc123:{session}"


async def test_unknown_scope_from_an_authenticated_store_is_202_not_enqueued(settings) -> None:  # type: ignore[no-untyped-def]
    sender = RecordingSender()
    body = encode(callback("store/cart/created", {"type": "cart", "id": "abc"}))
    response = await ingress(settings, sender).handle(post(body))
    assert (response.status, sender.sent) == (202, [])


def nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


BAD_INPUTS = [
    ("method", post(encode(callback()), method="GET"), 405),
    ("too large", post(b"{" + b" " * (256 * 1024) + b"}"), 413),
    ("declared too large", post(encode(callback()), {"content-length": str(300 * 1024)}), 413),
    ("content type", post(encode(callback()), {"content-type": "text/plain"}), 415),
    ("no content type", IngressRequest("POST", {SECRET_HEADER: "header-secret"}, b"{}"), 415),
    ("not json", post(b"{not json"), 400),
    ("json but not an object", post(b"[1,2]"), 400),
    ("no producer", post(encode({**callback(), "producer": None})), 400),
    ("unknown store", post(encode(callback(store_hash="zzz999"))), 403),
    ("store_id mismatch", post(encode(callback(store_id="999"))), 403),
    ("missing secret", post(encode(callback()), {SECRET_HEADER: ""}), 401),
    ("wrong secret", post(encode(callback()), {SECRET_HEADER: "header-secreT"}), 401),
    ("order id not an int", post(encode(callback(data={"type": "order", "id": "x"}))), 400),
    ("order id missing", post(encode(callback(data={"type": "order"}))), 400),
    (
        "shipment without orderId",
        post(encode(callback("store/shipment/created", {"type": "shipment", "id": 1}))),
        400,
    ),
    ("created_at not a number", post(encode({**callback(), "created_at": "yesterday"})), 400),
    ("producer with a newline", post(encode(callback()).replace(b'abc123"', b'abc123\\n"')), 400),
    # Found by tests/fuzz: each of these was a 500 or an enqueue.
    ("nesting past the parser's limit", post(b"[" * 100_000 + b"]" * 100_000), 400),
    (
        "deeply nested data",
        post(encode(callback(data={"type": "order", "id": 1, "x": nested(40)}))),
        400,
    ),
    ("order id true", post(encode(callback(data={"type": "order", "id": True}))), 400),
    ("order id 250.0", post(encode(callback(data={"type": "order", "id": 250.0}))), 400),
    ("order id ' 250'", post(encode(callback(data={"type": "order", "id": " 250"}))), 400),
    ("order id past int32", post(encode(callback(data={"type": "order", "id": 2**31}))), 400),
    ("order id of 200 digits", post(encode(callback(data={"type": "order", "id": 10**200}))), 400),
    ("NaN", post(encode(callback(data={"type": "order", "id": 1, "x": float("nan")}))), 400),
    ("UTF-16", post(encode(callback()).decode().encode("utf-16")), 400),
    (
        "encoded surrogate",
        post(
            encode(callback(data={"type": "order", "id": 1, "x": "@"})).replace(
                b'"@"', b'"\xed\xa0\x80"'
            )
        ),
        400,
    ),
]


@pytest.mark.parametrize(("case", "request_", "status"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
async def test_bad_input_is_a_problem_and_nothing_is_enqueued(
    settings, case, request_, status, caplog
) -> None:  # type: ignore[no-untyped-def]
    sender = RecordingSender()
    with caplog.at_level("INFO", logger="connector.ingress"):
        response = await ingress(settings, sender).handle(request_)
    assert_problem(response, status)
    assert sender.sent == []
    assert [r.status for r in caplog.records] == [status]  # type: ignore[attr-defined]


async def test_refusals_do_not_say_which_check_failed(settings) -> None:  # type: ignore[no-untyped-def]
    handler = ingress(settings, RecordingSender())
    unknown = await handler.handle(post(encode(callback(store_hash="zzz999"))))
    mismatch = await handler.handle(post(encode(callback(store_id="1"))))
    assert unknown.body == mismatch.body
    wrong = await handler.handle(post(encode(callback()), {SECRET_HEADER: "nope"}))
    missing = await handler.handle(post(encode(callback()), {SECRET_HEADER: ""}))
    assert wrong.body == missing.body


def _sig_request(
    store: str,
    secret: str,
    *,
    at: datetime | None = None,
    tamper: bool = False,
    header: str | None = None,
) -> IngressRequest:
    body = encode(callback(store_hash=store, store_id="1"))
    headers = signed_headers(body, secret, at=at)
    if tamper:
        body = body.replace(b"250", b"251")
    extra = {SECRET_HEADER: header} if header is not None else {SECRET_HEADER: ""}
    return post(body, {**headers, **extra})


async def test_standard_webhooks_signature(settings) -> None:  # type: ignore[no-untyped-def]
    sender = RecordingSender()
    handler = ingress(settings, sender)
    assert (await handler.handle(_sig_request("sig456", "client-secret"))).status == 200
    for bad in (
        _sig_request("sig456", "wrong-secret"),
        _sig_request("sig456", "client-secret", tamper=True),
        _sig_request("sig456", "client-secret", at=datetime.now(UTC) - timedelta(minutes=6)),
        _sig_request("sig456", "client-secret", at=datetime.now(UTC) + timedelta(minutes=6)),
        post(encode(callback(store_hash="sig456", store_id="1")), {SECRET_HEADER: ""}),
    ):
        assert_problem(await handler.handle(bad), 401)
    assert len(sender.sent) == 1


async def test_a_store_requiring_both_checks_needs_both(settings) -> None:  # type: ignore[no-untyped-def]
    sender = RecordingSender()
    handler = ingress(settings, sender)
    good = _sig_request("both789", "client-secret-3", header="header-secret-3")
    assert (await handler.handle(good)).status == 200
    assert_problem(await handler.handle(_sig_request("both789", "client-secret-3")), 401)
    assert_problem(
        await handler.handle(_sig_request("both789", "nope", header="header-secret-3")), 401
    )
    assert len(sender.sent) == 1


async def test_during_a_rotation_both_secrets_pass_and_the_old_one_is_logged(
    settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BIGCOMMERCE_ABC123_WEBHOOK_SECRET", "new-header-secret")
    monkeypatch.setenv("BIGCOMMERCE_ABC123_WEBHOOK_SECRET_PREVIOUS", "header-secret")
    monkeypatch.setenv("BIGCOMMERCE_SIG456_CLIENT_SECRET", "new-client-secret")
    monkeypatch.setenv("BIGCOMMERCE_SIG456_CLIENT_SECRET_PREVIOUS", "client-secret")
    sender = RecordingSender()
    handler = ingress(load_settings(), sender)
    caplog.set_level("INFO", logger="connector")
    for request in (
        post(
            encode(callback(data={"type": "order", "id": 1})), {SECRET_HEADER: "new-header-secret"}
        ),
        post(encode(callback(data={"type": "order", "id": 2})), {SECRET_HEADER: "header-secret"}),
        _sig_request("sig456", "new-client-secret"),
        _sig_request("sig456", "client-secret"),
    ):
        assert (await handler.handle(request)).status == 200
    assert_problem(await handler.handle(post(encode(callback()), {SECRET_HEADER: "older"})), 401)
    assert_problem(await handler.handle(_sig_request("sig456", "older")), 401)
    assert len(sender.sent) == 4
    accepted = [r for r in caplog.records if r.getMessage() == "webhook accepted"]
    assert [getattr(r, "previous_secret", False) for r in accepted] == [False, True, False, True]


async def test_without_a_rotation_the_previous_secret_is_refused(settings) -> None:  # type: ignore[no-untyped-def]
    handler = ingress(settings, RecordingSender())
    assert_problem(
        await handler.handle(post(encode(callback()), {SECRET_HEADER: "header-secret-3"})), 401
    )


async def test_failed_or_slow_send_is_503_so_bigcommerce_retries(settings) -> None:  # type: ignore[no-untyped-def]
    failing = await ingress(settings, RecordingSender(fail=SendError("broker down"))).handle(
        post(encode(callback()))
    )
    assert_problem(failing, 503)
    assert failing.headers["Retry-After"] == "60"
    slow_sender = RecordingSender(delay=1.0)
    slow = await ingress(settings, slow_sender, timeout=0.05).handle(post(encode(callback())))
    assert_problem(slow, 503)
    assert slow_sender.sent == []


@pytest.mark.parametrize(
    "scope", ["store/order/created\n", "store/channel/\u0663/order/created", "store/order/created/"]
)
async def test_near_misses_of_subscribed_scopes_are_not_subscribed(settings, scope) -> None:  # type: ignore[no-untyped-def]
    sender = RecordingSender()
    response = await ingress(settings, sender).handle(post(encode(callback(scope, {}))))
    assert (response.status, sender.sent) == (202, [])


async def test_ids_may_be_digit_strings_as_transaction_callbacks_send_them(settings) -> None:  # type: ignore[no-untyped-def]
    sender = RecordingSender()
    body = encode(callback(data={"type": "order", "id": "2147483647"}))
    assert (await ingress(settings, sender).handle(post(body))).status == 200
    assert sender.sent[0][1].session_id == "abc123:order:2147483647"


async def test_a_content_length_of_other_digits_is_not_a_crash(settings) -> None:  # type: ignore[no-untyped-def]
    sender = RecordingSender()
    response = await ingress(settings, sender).handle(
        post(encode(callback()), {"content-length": "\u00b2"})
    )
    assert (response.status, len(sender.sent)) == (200, 1)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("trace-42", "trace-42"),
        ("x" * 128, "x" * 128),
        ("x" * 129, "corr-0"),  # longer than a Service Bus CorrelationId may be
        ("two words", "corr-0"),
        ("caf\u00e9", "corr-0"),
        ("line\nbreak", "corr-0"),
    ],
)
async def test_a_caller_correlation_id_is_kept_only_when_it_can_travel(  # type: ignore[no-untyped-def]
    settings, given: str, kept: str
) -> None:
    sender = RecordingSender()
    request = post(encode(callback()), {"X-Correlation-Id": given})
    response = await ingress(settings, sender).handle(request)
    assert response.status == 200
    [(_, message)] = sender.sent
    assert message.correlation_id == kept
    assert message.application_properties["correlation_id"] == kept
