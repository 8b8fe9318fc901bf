"""One contract for the state port, run against both adapters: the embedded SQLite store and
the Table Storage adapter against Azurite (the official emulator, started for this module)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from local.state import SqliteStateStore
from shared.state.azure_tables import MAX_VALUE_BYTES, AzureTableStateStore
from shared.state.ports import ConcurrencyError, Entity, StateError, StateStore
from tests.support.azurite import Azurite, azurite_tables, connection_string, missing_reason

StoreFactory = Callable[[], StateStore]


@pytest.fixture(scope="module")
def azurite() -> Iterator[Azurite]:
    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with azurite_tables() as running:
        yield running


@pytest.fixture(params=["sqlite", "azurite"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Makes stores over one backing table or file: each its own client or connection."""
    if request.param == "azurite":
        running: Azurite = request.getfixturevalue("azurite")
        table = f"t{uuid.uuid4().hex}"
        return lambda: AzureTableStateStore.from_connection_string(running.connection_string, table)
    path = tmp_path / "state.sqlite3"
    return lambda: SqliteStateStore(path)


@pytest.fixture
async def store(new_store: StoreFactory) -> AsyncIterator[StateStore]:
    opened = new_store()
    try:
        yield opened
    finally:
        await opened.close()


async def test_create_then_get_and_list(store: StateStore) -> None:
    value = {"watermark": "2026-11-01T00:00:00+00:00", "orders": [1, 2], "nested": {"ok": True}}
    created = await store.create("sweeps", "abc123", value)
    await store.create("sweeps", "aaa111", {"n": 1})
    await store.create("other", "abc123", {"n": 2})
    assert created == Entity("sweeps", "abc123", value, created.etag)
    assert created.etag

    found = await store.get("sweeps", "abc123")
    assert found == created
    listed = await store.list("sweeps")
    assert [(e.key, e.value) for e in listed] == [("aaa111", {"n": 1}), ("abc123", value)]
    assert listed[1].etag == created.etag
    assert await store.list("empty") == []


async def test_missing_entity_reads_as_none(store: StateStore) -> None:
    assert await store.get("sweeps", "nope") is None


async def test_create_of_an_existing_entity_fails(store: StateStore) -> None:
    await store.create("sweeps", "abc123", {"n": 1})
    with pytest.raises(ConcurrencyError):
        await store.create("sweeps", "abc123", {"n": 2})
    found = await store.get("sweeps", "abc123")
    assert found is not None
    assert found.value == {"n": 1}


async def test_replace_needs_the_current_etag(store: StateStore) -> None:
    first = await store.create("sweeps", "abc123", {"n": 1})
    second = await store.replace(first, {"n": 2})
    assert second.value == {"n": 2}
    assert second.etag != first.etag
    with pytest.raises(ConcurrencyError):
        await store.replace(first, {"n": 3})  # stale
    assert await store.get("sweeps", "abc123") == second
    third = await store.replace(second, {"n": 3})
    assert (await store.get("sweeps", "abc123")) == third


async def test_replace_of_a_vanished_entity_fails(store: StateStore) -> None:
    entity = await store.create("sweeps", "abc123", {"n": 1})
    await store.delete(entity)
    with pytest.raises(ConcurrencyError):
        await store.replace(entity, {"n": 2})
    assert await store.get("sweeps", "abc123") is None


async def test_an_etag_never_comes_back_after_delete_and_create(store: StateStore) -> None:
    old = await store.create("sweeps", "abc123", {"n": 1})
    await store.delete(old)
    await store.create("sweeps", "abc123", {"n": 2})
    with pytest.raises(ConcurrencyError):
        await store.replace(old, {"n": 3})


async def test_delete_needs_the_current_etag(store: StateStore) -> None:
    first = await store.create("sweeps", "abc123", {"n": 1})
    second = await store.replace(first, {"n": 2})
    with pytest.raises(ConcurrencyError):
        await store.delete(first)  # stale
    assert await store.get("sweeps", "abc123") == second
    await store.delete(second)
    assert await store.get("sweeps", "abc123") is None
    with pytest.raises(ConcurrencyError):
        await store.delete(second)  # already gone


async def test_upsert_writes_whatever_is_there(store: StateStore) -> None:
    created = await store.upsert("reports", "abc123", {"n": 1})
    assert await store.get("reports", "abc123") == created
    overwritten = await store.upsert("reports", "abc123", {"n": 2})
    assert overwritten.etag != created.etag
    assert await store.get("reports", "abc123") == overwritten
    with pytest.raises(ConcurrencyError):
        await store.replace(created, {"n": 3})


ODD_KEYS = [
    "abc123:250",
    "store/order".replace("/", "|"),
    "with space",
    "it's",
    'quote"d',
    "100%",
    "a&b=c+d",
    "*~!@$^()[]{};,.",
    "ünïcødé-注文-🛒",
    "x" * 400,
]


@pytest.mark.parametrize("key", ODD_KEYS)
async def test_keys_with_odd_but_legal_characters(store: StateStore, key: str) -> None:
    created = await store.create("odd keys", key, {"key": key})
    assert await store.get("odd keys", key) == created
    assert [e.key for e in await store.list("odd keys")] == [key]
    replaced = await store.replace(created, {"key": key, "n": 2})
    await store.delete(replaced)
    assert await store.get("odd keys", key) is None


@pytest.mark.parametrize(
    "key", ["a/b", "a\\b", "a#b", "a?b", "tab\there", "line\nbreak", "nul\x00", "del\x7f", ""]
)
async def test_illegal_keys_are_refused(store: StateStore, key: str) -> None:
    with pytest.raises(ValueError, match="state"):
        await store.create("sweeps", key, {})
    with pytest.raises(ValueError, match="state"):
        await store.get(key, "abc123")


async def test_an_oversized_value_is_refused(store: StateStore) -> None:
    # ASCII JSON is 2 bytes a character in UTF-16, the unit of Table Storage's 64 KiB.
    fits = {"blob": "x" * (MAX_VALUE_BYTES // 2 - 100)}
    created = await store.create("sweeps", "big", fits)
    assert (await store.get("sweeps", "big")) == created
    too_big = {"blob": "x" * (MAX_VALUE_BYTES // 2)}
    with pytest.raises(StateError, match="more than"):
        await store.replace(created, too_big)
    with pytest.raises(StateError, match="more than"):
        await store.upsert("sweeps", "bigger", too_big)
    assert (await store.get("sweeps", "big")) == created
    assert await store.get("sweeps", "bigger") is None


async def test_a_value_that_is_not_json_is_refused(store: StateStore) -> None:
    with pytest.raises(ValueError, match="not JSON"):
        await store.create("sweeps", "abc123", {"when": object()})
    with pytest.raises(ValueError, match="not JSON"):
        await store.upsert("sweeps", "abc123", {"n": float("nan")})
    assert await store.get("sweeps", "abc123") is None


async def test_concurrent_creates_exactly_one_wins(new_store: StoreFactory) -> None:
    stores = [new_store() for _ in range(2)]
    try:
        # Each store is its own client (or connection): the race is decided by the backend.
        await stores[0].upsert("warmup", "w", {})
        await stores[1].upsert("warmup", "w", {})
        attempts = [
            stores[i % 2].create("leases", "sweep-abc123", {"owner": f"owner-{i}"})
            for i in range(6)
        ]
        results = await asyncio.gather(*attempts, return_exceptions=True)
        won = [r for r in results if isinstance(r, Entity)]
        lost = [r for r in results if isinstance(r, ConcurrencyError)]
        assert (len(won), len(lost)) == (1, 5), results
        assert await stores[1].get("leases", "sweep-abc123") == won[0]
    finally:
        for opened in stores:
            await opened.close()


async def test_concurrent_replaces_of_one_version_exactly_one_wins(
    new_store: StoreFactory,
) -> None:
    stores = [new_store() for _ in range(2)]
    try:
        read = await stores[0].create("leases", "sweep-abc123", {"owner": "nobody"})
        attempts = [stores[i % 2].replace(read, {"owner": f"owner-{i}"}) for i in range(6)]
        results = await asyncio.gather(*attempts, return_exceptions=True)
        won = [r for r in results if isinstance(r, Entity)]
        assert len(won) == 1, results
        assert all(isinstance(r, ConcurrencyError) for r in results if r is not won[0])
        assert await stores[1].get("leases", "sweep-abc123") == won[0]
    finally:
        for opened in stores:
            await opened.close()


async def test_table_storage_failures_are_one_safe_line() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    unreachable = connection_string(port)
    store = AzureTableStateStore.from_connection_string(unreachable, "tnowhere", retries=0)
    try:
        with pytest.raises(StateError) as raised:
            await store.get("sweeps", "abc123")
    finally:
        await store.close()
    message = str(raised.value)
    assert message.startswith("Table Storage create table failed (ServiceRequestError")
    assert "\n" not in message
    assert "AccountKey" not in message


async def test_table_exists_reads_without_creating_the_table(azurite: Azurite) -> None:
    table = f"t{uuid.uuid4().hex}"
    store = AzureTableStateStore.from_connection_string(azurite.connection_string, table)
    try:
        assert await store.table_exists() is False
        assert await store.table_exists() is False  # the first look created nothing
        await store.upsert("sweeps", "abc123", {"at": 1})  # creates the table on first use
        assert await store.table_exists() is True
    finally:
        await store.close()


async def test_table_exists_fails_in_one_safe_line_when_unreachable() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = AzureTableStateStore.from_connection_string(connection_string(port), "t", retries=0)
    try:
        with pytest.raises(StateError) as raised:
            await store.table_exists()
    finally:
        await store.close()
    assert str(raised.value).startswith("Table Storage read failed (ServiceRequestError")
