"""Random faults on both stand-ins (`PUT /__sim/chaos`, local/standin/chaos.py), as the chaos run
sets them: a share of one caller's requests fail, each kind answered as the service would, and
every fault counted; a seed repeats the same faults."""

from __future__ import annotations

import random

import pytest

from local.bigcommerce.harness import simulated_store
from local.dataverse.harness import OTHER_TOKEN, dataverse_standin
from local.standin.chaos import RandomFaults

CONNECTOR = {"User-Agent": "connector/1.0"}
SOMEONE_ELSE = {"User-Agent": "merchant-app/2.0"}
ORDER = {
    "billing_address": {"first_name": "Jane", "zip": "78751"},
    "products": [{"name": "Mug", "quantity": 1, "price_inc_tax": 5, "price_ex_tax": 5}],
}


def test_draws_follow_the_seed_the_rate_the_weights_and_the_caller() -> None:
    faults = RandomFaults(("a", "b"))
    faults.configure({"rate": 0.5, "kinds": {"a": 3, "b": 1}, "caller": "me/", "seed": 4})
    first = [faults.draw("me/1") for _ in range(400)]
    assert all(faults.draw("you/1") is None for _ in range(50))
    faults.configure({"seed": 4})
    assert [faults.draw("me/2") for _ in range(400)] == first
    drawn = [k for k in first if k is not None]
    assert 150 < len(drawn) < 250
    assert drawn.count("a") > 2 * drawn.count("b") > 0
    assert faults.injected() == {"a": 2 * drawn.count("a"), "b": 2 * drawn.count("b")}
    faults.reset()
    assert faults.draw("me/1") is None
    assert faults.injected() == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"rate": 2}, "rate must be a number from 0 to 1"),
        ({"rate": 0.1}, "needs at least one kind"),
        ({"kinds": {"c": 1}}, "unknown kind 'c'"),
        ({"delays_ms": {"a": -1}}, "non-negative"),
        ({"seed": "x"}, "seed must be an integer"),
        ({"speed": 1}, "unknown chaos settings: speed"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(body: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RandomFaults(("a", "b"), random.Random).configure(body)


async def test_the_store_fails_the_callers_requests_before_or_after_making_the_change() -> None:
    async with simulated_store(conformance=False) as store:
        always = {"rate": 1, "caller": "connector/", "seed": 1}
        await store.admin.put("/__sim/chaos", json={**always, "kinds": {"503": 1}})
        assert (await store.api.get("/v2/orders", headers=SOMEONE_ELSE)).status_code == 200
        refused = await store.api.post("/v2/orders", json=ORDER, headers=CONNECTOR)
        assert refused.status_code == 503
        assert len((await store.api.get("/v2/orders", headers=SOMEONE_ELSE)).json()) == 0

        await store.admin.put("/__sim/chaos", json={"kinds": {"504": 1}})
        late = await store.api.post("/v2/orders", json=ORDER, headers=CONNECTOR)
        assert late.status_code == 504  # the gateway gave up, the order was made
        assert len((await store.api.get("/v2/orders", headers=SOMEONE_ELSE)).json()) == 1

        await store.admin.put("/__sim/chaos", json={"kinds": {"429": 1}})
        throttled = await store.api.get("/v2/orders", headers=CONNECTOR)
        assert throttled.status_code == 429
        assert "x-rate-limit-requests-left" not in throttled.headers  # platform load

        await store.admin.put("/__sim/chaos", json={"kinds": {"slow": 1}, "delays_ms": {"slow": 1}})
        slow = await store.api.get("/v2/orders", headers=CONNECTOR)
        assert (slow.status_code, len(slow.json())) == (200, 1)

        shown = (await store.admin.get("/__sim/chaos")).json()
        assert shown["injected"] == {"503": 1, "504": 1, "429": 1, "slow": 1}
        assert (await store.admin.put("/__sim/chaos", json={"rate": 7})).status_code == 400
        await store.admin.post("/__sim/reset")
        assert (await store.admin.get("/__sim/chaos")).json()["rate"] == 0


async def test_dataverse_fails_one_identitys_requests_as_the_service_does() -> None:
    async with dataverse_standin(provisioned=True) as dv:
        always = {"rate": 1, "caller": "identity-1", "seed": 1}
        await dv.admin.put("/__sim/chaos", json={**always, "kinds": {"429": 1}})
        throttled = await dv.api.get("WhoAmI")
        assert throttled.status_code == 429
        assert throttled.headers["Retry-After"] == "1"
        assert throttled.json()["error"]["code"] == "0x80072322"
        async with dv.client(OTHER_TOKEN) as other:
            assert (await other.get("WhoAmI")).status_code == 200

        await dv.admin.put("/__sim/chaos", json={"kinds": {"503": 1}})
        refused = await dv.api.post("contacts", json={"lastname": "Refused"})
        assert refused.status_code == 503

        delays = {"timeout": 1, "slow": 1}
        await dv.admin.put("/__sim/chaos", json={"kinds": {"timeout": 1}, "delays_ms": delays})
        late = await dv.api.post("contacts", json={"lastname": "Late"})
        assert late.status_code == 204  # answered late (after the client gave up, in a run)
        await dv.admin.put("/__sim/chaos", json={"rate": 0})
        names = [r["lastname"] for r in (await dv.api.get("contacts")).json()["value"]]
        assert names == ["Late"]

        shown = (await dv.admin.get("/__sim/chaos")).json()
        assert shown["injected"] == {"429": 1, "503": 1, "timeout": 1}
        assert (await dv.admin.put("/__sim/chaos", json={"kinds": {"504": 1}})).status_code == 400
