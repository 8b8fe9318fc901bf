"""The composition root builds each client once per process, from the settings, lazily."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared import bootstrap
from shared.dataverse.auth import StaticTokenProvider


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATAVERSE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("DATAVERSE_MAX_CONCURRENCY", "7")
    bootstrap.reset()
    yield bootstrap.startup()
    bootstrap.reset()


def test_clients_are_built_once_and_follow_the_settings(fresh) -> None:  # type: ignore[no-untyped-def]
    bootstrap.override(dataverse_tokens=StaticTokenProvider("local-token"))
    container = bootstrap.container()
    dataverse = container.dataverse_client()
    assert container.dataverse_client() is dataverse
    assert dataverse.gate.policy.max_concurrency == 7
    bigcommerce = container.bigcommerce_clients()
    assert container.bigcommerce_clients() is bigcommerce
    store = container.settings.stores[0].store_hash
    assert bigcommerce.get(store) is bigcommerce.get(store)


def test_the_mapping_is_loaded_and_validated_at_start_up(fresh) -> None:  # type: ignore[no-untyped-def]
    assert fresh.mapping.version >= 1


def test_override_refuses_unknown_adapters(fresh) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AttributeError, match="no 'mailer'"):
        bootstrap.override(mailer=object())


@pytest.mark.parametrize("batching", ["adaptive", "off"])
def test_the_runner_coalesces_its_requests_unless_batching_is_off(
    monkeypatch: pytest.MonkeyPatch, batching: str
) -> None:
    from shared.bigcommerce.coalescing import CoalescingStorefronts
    from shared.bigcommerce.registry import BigCommerceClients
    from shared.dataverse.order_store import DataverseOrderStore
    from tests.unit.lifecycle_fakes import FakeSender

    monkeypatch.setenv("DATAVERSE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CONNECTOR_BATCHING", batching)
    monkeypatch.setenv("DATAVERSE_BATCH_TARGET_SECONDS", "3.5")
    bootstrap.reset()
    try:
        container = bootstrap.override(
            dataverse_tokens=StaticTokenProvider("local-token"), sender=FakeSender()
        )
        runner = container.order_runner()
        store = container.order_store
        assert isinstance(store, DataverseOrderStore)
        storefronts = runner._storefronts
        if batching == "adaptive":
            assert store.coalescer is not None
            assert store.coalescer.policy.target_seconds == 3.5
            assert isinstance(storefronts, CoalescingStorefronts)
            assert storefronts.policy.max_orders == 250
        else:
            assert store.coalescer is None
            assert isinstance(storefronts, BigCommerceClients)
    finally:
        bootstrap.reset()


def test_the_dataverse_timeout_setting_bounds_reads_and_writes_twice_as_long(
    fresh, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    defaults = fresh.dataverse_client().options
    assert (defaults.read_timeout, defaults.write_timeout) == (60, 120)
    monkeypatch.setenv("DATAVERSE_TIMEOUT_SECONDS", "4")
    bootstrap.reset()
    options = bootstrap.startup().dataverse_client().options
    assert (options.read_timeout, options.write_timeout) == (4, 8)
    assert options.gate.max_concurrency == 7


def test_the_sweep_lease_follows_its_setting(fresh, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RECONCILE_LEASE_SECONDS", "45")
    bootstrap.reset()
    container = bootstrap.startup()
    bootstrap.override(
        dataverse_tokens=StaticTokenProvider("local-token"), state=object(), sender=object()
    )
    assert container.reconciler()._lease_duration == timedelta(seconds=45)
