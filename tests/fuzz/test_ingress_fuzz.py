"""Fuzzing the webhook ingress over real HTTP: the local host, the function, the local broker.

Properties, whatever is sent: the status is never 5xx; a refused request gets a 4xx with a small
RFC 9457 problem body and enqueues nothing; an unsubscribed scope is a 202 that enqueues nothing;
a valid callback is a 200 that enqueues exactly one message in its entity's session, and the same
callback again enqueues nothing more. Hypothesis settings come from the profile in
tests/conftest.py (HYPOTHESIS_PROFILE=deep for a longer run).
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from local.broker import LocalBroker
from shared.messaging.message import InboundMessage
from shared.messaging.queues import ORDER_EVENTS
from tests.fuzz.strategies import (
    CLIENT_SECRET,
    KNOWN_METHODS,
    SECRET_HEADER,
    SIGNATURE_HEADERS,
    STORE_HASH,
    STORE_ID,
    VALID,
    WEBHOOK_SECRET,
    Case,
    Event,
    any_documented_case,
    auth_failure_cases,
    deep_data_cases,
    events,
    foreign_producer_cases,
    header_text,
    malformed_cases,
    oversized_cases,
    unknown_scope_cases,
    valid_cases,
    wrong_content_type_cases,
    wrong_method_cases,
    wrongly_typed,
)
from tests.support.host_process import HostProcess, running_host

pytestmark = pytest.mark.e2e
URL = "/api/webhooks/bigcommerce"
PREFIX = f"BIGCOMMERCE_{STORE_HASH.upper()}_"
# One store that requires both the custom header and the signature, and names its store id.
# Only the ingress runs: no other function adds to or takes from the queues being counted.
HOST_ENV = {
    "BIGCOMMERCE_STORES": STORE_HASH,
    PREFIX + "ACCESS_TOKEN": "fuzz-access-token",
    PREFIX + "WEBHOOK_SECRET": WEBHOOK_SECRET,
    PREFIX + "CLIENT_SECRET": CLIENT_SECRET,
    PREFIX + "STORE_ID": STORE_ID,
    PREFIX + "WEBHOOK_CHECKS": "header,signature",
    "DATAVERSE_URL": "https://contoso.crm.dynamics.com",
    **{
        f"AzureWebJobs.{name}.Disabled": "true"
        for name in ("order_events", "dataverse_events", "dataverse_poll", "reconcile")
    },
}
# Costlier or less varied examples get a quarter of the profile's count.
FEWER = settings(max_examples=max(5, settings().max_examples // 4))
PROBLEM_FIELDS = {"type", "title", "status", "detail"}


@dataclass
class Ingress:
    host: HostProcess
    client: httpx.Client
    key: str
    broker: LocalBroker
    _hashes: Iterator[int] = field(default_factory=itertools.count)
    _seen: int = 0

    def render(self, case: Case) -> bytes:
        if case.raw is not None:
            return case.raw
        assert case.payload is not None
        payload: dict[str, Any] = dict(case.payload)
        if not case.keep_hash:
            # A fresh event each time: the broker drops a repeated one by design.
            payload["hash"] = f"fuzz-{next(self._hashes)}"
        return json.dumps(payload).encode()

    def headers(self, case: Case, body: bytes) -> dict[str, str]:
        headers = {"x-functions-key": self.key, **case.auth.headers(body, datetime.now(UTC))}
        if case.content_type is not None:
            headers["content-type"] = case.content_type
        return headers | case.extra_headers

    def post(self, case: Case, body: bytes, headers: dict[str, str]) -> httpx.Response:
        with contextlib.suppress(InvalidArgument):  # outside a @given test there is no note
            note(f"{case.label}: {case.method} {len(body)} bytes, {body[:200]!r}, {headers}")
        content: bytes | Iterator[bytes] = body
        if case.chunked:
            content = iter([body[i : i + 16384] for i in range(0, len(body), 16384)] or [b""])
        return self.client.request(case.method, URL, content=content, headers=headers)

    def send(self, case: Case) -> tuple[httpx.Response, bytes]:
        body = self.render(case)
        return self.post(case, body, self.headers(case, body)), body

    def mark(self) -> int:
        """Starts an example: what is stored now, with earlier examples' messages set aside."""
        self.new_messages()
        return self.stored()

    def stored(self) -> int:
        """Every message in every queue, in any state."""
        return sum(
            q.active_count + q.scheduled_count + q.dead_letter_count for q in self.broker.queues()
        )

    def new_messages(self) -> list[InboundMessage]:
        """order-events messages enqueued since the last call."""
        found = self.broker.peek(ORDER_EVENTS.name, max_messages=100, from_sequence=self._seen + 1)
        if found:
            self._seen = found[-1].sequence_number
        return found


@pytest.fixture(scope="module")
def ingress(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingress]:
    tmp = tmp_path_factory.mktemp("fuzz")
    with contextlib.ExitStack() as stack:
        host = stack.enter_context(running_host(tmp, env=HOST_ENV))
        client = stack.enter_context(httpx.Client(base_url=host.url, timeout=30))
        broker = LocalBroker(host.state_dir / "broker.sqlite3")
        stack.callback(broker.close)
        ingress = Ingress(host, client, host.keys()["default"], broker)
        ingress.new_messages()
        yield ingress


def explain(response: httpx.Response) -> str:
    return f"{response.status_code} {response.headers.get('content-type')} {response.text[:300]}"


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.headers["content-type"].startswith("application/problem+json")
    assert len(response.content) < 1024, "a small body"
    problem = response.json()
    assert set(problem) == PROBLEM_FIELDS
    assert problem["status"] == status
    assert isinstance(problem["type"], str)
    assert isinstance(problem["detail"], str)


def assert_refused(ingress: Ingress, case: Case, response: httpx.Response, before: int) -> None:
    assert response.status_code == case.expect, explain(response)
    if case.method != "HEAD":
        assert_problem(response, case.expect)
    assert ingress.new_messages() == []
    assert ingress.stored() == before


def assert_enqueued_once(
    ingress: Ingress, case: Case, response: httpx.Response, body: bytes, before: int
) -> InboundMessage:
    assert response.status_code == 200, explain(response)
    assert response.content == b""
    [message] = ingress.new_messages()
    sent = json.loads(body)
    assert message.session_id == case.session
    assert message.subject == sent["scope"]
    assert json.loads(message.body)["event"] == sent
    assert ingress.stored() == before + 1
    return message


@given(case=valid_cases(), correlation=st.one_of(st.none(), header_text))
def test_valid_callbacks_are_acknowledged_and_enqueued_once(
    ingress: Ingress, case: Case, correlation: str | None
) -> None:
    if correlation is not None:
        case = replace(
            case, extra_headers={"x-correlation-id": correlation, "traceparent": correlation}
        )
    before = ingress.mark()
    response, body = ingress.send(case)
    assert_enqueued_once(ingress, case, response, body, before)


@given(case=valid_cases(), as_retry=st.booleans())
def test_a_redelivered_callback_is_acknowledged_and_not_enqueued_again(
    ingress: Ingress, case: Case, as_retry: bool
) -> None:
    """The same request replayed, or BigCommerce's retry of it with fresh signature headers:
    both are acknowledged (so BigCommerce stops retrying) and duplicate detection keeps one."""
    before = ingress.mark()
    body = ingress.render(case)
    headers = ingress.headers(case, body)
    first = ingress.post(case, body, headers)
    message = assert_enqueued_once(ingress, case, first, body, before)
    again = ingress.post(case, body, ingress.headers(case, body) if as_retry else headers)
    assert again.status_code == 200, explain(again)
    assert ingress.new_messages() == []
    assert ingress.stored() == before + 1
    assert message.message_id


@given(case=malformed_cases())
def test_malformed_bodies_are_400(ingress: Ingress, case: Case) -> None:
    before = ingress.mark()
    response, _ = ingress.send(case)
    assert_refused(ingress, case, response, before)


@given(case=deep_data_cases())
def test_nesting_past_the_limit_is_400_and_up_to_it_is_accepted(
    ingress: Ingress, case: Case
) -> None:
    before = ingress.mark()
    response, body = ingress.send(case)
    if case.expect == 200:
        assert_enqueued_once(ingress, case, response, body, before)
    else:
        assert_refused(ingress, case, response, before)


@FEWER
@given(case=oversized_cases())
def test_bodies_over_the_size_limit_are_413(ingress: Ingress, case: Case) -> None:
    before = ingress.mark()
    response, _ = ingress.send(case)
    assert_refused(ingress, case, response, before)


@given(case=wrongly_typed())
def test_wrongly_typed_or_missing_fields_are_400(ingress: Ingress, case: Case) -> None:
    before = ingress.mark()
    response, _ = ingress.send(case)
    assert_refused(ingress, case, response, before)


@given(case=foreign_producer_cases())
def test_other_stores_are_403_and_malformed_producers_400(ingress: Ingress, case: Case) -> None:
    before = ingress.mark()
    response, _ = ingress.send(case)
    assert_refused(ingress, case, response, before)


@given(case=auth_failure_cases())
def test_a_wrong_or_missing_secret_or_signature_is_401(ingress: Ingress, case: Case) -> None:
    before = ingress.mark()
    response, _ = ingress.send(case)
    assert_refused(ingress, case, response, before)


@given(case=wrong_content_type_cases())
def test_bodies_that_are_not_declared_json_are_415(ingress: Ingress, case: Case) -> None:
    before = ingress.mark()
    response, _ = ingress.send(case)
    assert_refused(ingress, case, response, before)


@FEWER
@given(case=wrong_method_cases())
def test_methods_other_than_post_are_405(ingress: Ingress, case: Case) -> None:
    before = ingress.mark()
    response, _ = ingress.send(case)
    assert_refused(ingress, case, response, before)
    assert response.headers["allow"] == "POST"


@given(case=unknown_scope_cases())
def test_unsubscribed_scopes_are_202_and_not_enqueued(ingress: Ingress, case: Case) -> None:
    before = ingress.mark()
    response, _ = ingress.send(case)
    assert response.status_code == 202, explain(response)
    assert response.content == b""
    assert ingress.new_messages() == []
    assert ingress.stored() == before


@FEWER
@given(
    event=events(),
    key=st.one_of(st.none(), header_text.filter(lambda k: k != "")),
    method=st.sampled_from(("POST", *KNOWN_METHODS)),
)
def test_without_the_function_key_the_host_refuses_before_the_function(
    ingress: Ingress, event: Event, key: str | None, method: str
) -> None:
    case = Case("function key", 401, event.payload, method=method)
    body = ingress.render(case)
    headers = ingress.headers(case, body)
    del headers["x-functions-key"]
    if key is not None:
        headers["x-functions-key"] = key
    before = ingress.mark()
    response = ingress.post(case, body, headers)
    assert response.status_code == 401, explain(response)
    assert ingress.new_messages() == []
    assert ingress.stored() == before


_HEADER_NAMES = st.sampled_from(
    [
        SECRET_HEADER,
        *SIGNATURE_HEADERS,
        "content-type",
        "x-correlation-id",
        "traceparent",
        "x-webhook-secret-2",
        "x-forwarded-for",
        "accept",
    ]
)


@given(
    case=any_documented_case(),
    overrides=st.dictionaries(_HEADER_NAMES, header_text, max_size=3),
    drop=st.lists(_HEADER_NAMES, max_size=2),
    method=st.one_of(
        st.just("POST"), st.sampled_from(KNOWN_METHODS), st.from_regex(r"\A[A-Z]{3,9}\Z")
    ),
)
def test_no_mix_of_spoiled_parts_is_a_server_error_or_a_stray_enqueue(
    ingress: Ingress, case: Case, overrides: dict[str, str], drop: list[str], method: str
) -> None:
    """Any documented case with headers overridden or dropped and any method, judged only by
    the properties that hold for every request."""
    if method == "CONNECT":
        method = "POST"
    case = replace(case, method=method)
    body = ingress.render(case)
    headers = {k: v for k, v in ingress.headers(case, body).items() if k not in drop}
    headers |= overrides
    before = ingress.mark()
    response = ingress.post(case, body, headers)
    assert response.status_code < 500, explain(response)
    if response.status_code == 200:
        assert case.auth is VALID
        [message] = ingress.new_messages()
        assert message.session_id == case.session is not None
        assert ingress.stored() == before + 1
        return
    assert ingress.new_messages() == []
    assert ingress.stored() == before
    if response.status_code == 202:
        assert case.expect == 202
    else:
        assert 400 <= response.status_code < 500, explain(response)
        from_function = response.headers.get("content-type", "").startswith("application/")
        if from_function and method != "HEAD":
            assert_problem(response, response.status_code)


def test_the_host_logged_the_refusals_and_no_failure(ingress: Ingress) -> None:
    """Runs last in this module: the host's own record of everything sent above."""
    response, _ = ingress.send(Case("not json", 400, raw=b"{"))
    assert response.status_code == 400
    lines = [json.loads(line) for line in ingress.host.output if line.startswith("{")]
    refused = [line for line in lines if str(line.get("message", "")).startswith("webhook refused")]
    assert refused, "the refusals above were logged"
    assert not [line for line in lines if line.get("level") in ("ERROR", "CRITICAL")]
    assert not [line for line in ingress.host.output if "Traceback" in line]
