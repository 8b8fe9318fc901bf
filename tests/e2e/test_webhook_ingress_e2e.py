"""Webhooks through the local host into the durable local broker, as BigCommerce sends them."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from local.broker import LocalBroker
from local.stack.plan import LOCAL_STORE_HASH
from tests.support.host_process import running_host
from tests.support.webhooks import callback, encode, signed_headers

pytestmark = pytest.mark.e2e
URL = "/api/webhooks/bigcommerce"


# The lifecycle function would consume the queue; it is disabled the way Azure disables one.
INGRESS_ONLY = {"AzureWebJobs.order_events.Disabled": "true"}


def test_webhooks_are_enqueued_once_and_bad_ones_not_at_all(tmp_path: Path) -> None:
    with (
        running_host(tmp_path, env=INGRESS_ONLY) as host,
        httpx.Client(base_url=host.url, timeout=10) as client,
    ):
        secrets = json.loads((host.state_dir / "stack-secrets.json").read_text())
        key = host.keys()["default"]

        def post(body: bytes, secret: str | None = None, **headers: str) -> int:
            sent = {
                "content-type": "application/json",
                "x-functions-key": key,
                "x-webhook-secret": secret or secrets["webhook_secret"],
                **signed_headers(body, secrets["client_secret"]),
                **headers,
            }
            return client.post(URL, content=body, headers=sent).status_code

        created = encode(callback(store_hash=LOCAL_STORE_HASH))
        updated = encode(callback("store/order/updated", store_hash=LOCAL_STORE_HASH, hash_="h2"))
        shipped = encode(
            callback(
                "store/shipment/created",
                {"type": "shipment", "id": 5, "orderId": 250},
                store_hash=LOCAL_STORE_HASH,
                hash_="h3",
            )
        )
        assert [post(created), post(updated), post(created), post(shipped)] == [200] * 4
        assert post(created, secret="wrong") == 401
        assert post(encode(callback(store_hash="other1"))) == 403
        assert post(b"not json") == 400
        assert client.post(URL, content=created).status_code == 401  # no function key

        broker = LocalBroker(host.state_dir / "broker.sqlite3")
        messages = broker.peek("order-events")
        assert len(messages) == 3, "the redelivered event was dropped by duplicate detection"
        assert {m.session_id for m in messages} == {f"{LOCAL_STORE_HASH}:order:250"}
        assert [m.subject for m in messages] == [
            "store/order/created",
            "store/order/updated",
            "store/shipment/created",
        ]
        wrong_method = client.get(URL, headers={"x-functions-key": key})
        assert (wrong_method.status_code, wrong_method.headers["allow"]) == (405, "POST")
        assert wrong_method.json()["status"] == 405
        huge = b'{"pad": "' + b"x" * (300 * 1024) + b'"}'
        assert post(huge) == 413
        assert len(broker.peek("order-events")) == 3, "refused requests queued nothing"
        accepted = [
            json.loads(line)
            for line in host.output
            if line.startswith("{") and '"webhook accepted"' in line
        ]
        assert len(accepted) == 4
        for line in accepted:
            assert line["invocation_id"]
            assert line["correlation_id"]
            assert line["store_hash"] == LOCAL_STORE_HASH
            assert line["order_id"] == 250
        problem = client.post(URL, content=b"x", headers={"x-functions-key": key})
        assert problem.status_code == 415
        assert problem.headers["content-type"].startswith("application/problem+json")
        assert problem.json()["status"] == 415
