"""How the state store is wired: the container builds the Table Storage adapter from the
settings (no request until first use), refuses `local` outside the local host, and the local
stack picks the SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local.stack.plan import plan
from local.state import SqliteStateStore, state_db_path
from shared import bootstrap
from shared.config import ConfigurationError
from shared.state.azure_tables import AzureTableStateStore


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in ("STATE_TABLE_ENDPOINT", "STATE_CONNECTION_STRING", "STATE_TABLE_NAME"):
        monkeypatch.delenv(name, raising=False)
    bootstrap.reset()
    yield monkeypatch
    bootstrap.reset()


def test_local_state_is_only_provided_by_the_local_host(fresh: pytest.MonkeyPatch) -> None:
    fresh.setenv("STATE_TRANSPORT", "local")
    with pytest.raises(ConfigurationError, match="STATE_TRANSPORT is 'local'"):
        bootstrap.container().state_store()


async def test_the_local_host_installs_its_store(fresh: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fresh.setenv("STATE_TRANSPORT", "local")
    store = SqliteStateStore(tmp_path / "state.sqlite3")
    bootstrap.override(state=store)
    assert bootstrap.container().state_store() is store
    await store.close()


async def test_table_storage_by_identity_is_built_once(fresh: pytest.MonkeyPatch) -> None:
    fresh.setenv("STATE_TRANSPORT", "azure")
    fresh.setenv("STATE_TABLE_ENDPOINT", "https://acct.table.core.windows.net")
    fresh.setenv("STATE_TABLE_NAME", "sweeps")
    container = bootstrap.container()
    store = container.state_store()
    assert isinstance(store, AzureTableStateStore)
    assert container.state_store() is store
    assert store.table_name == "sweeps"
    assert "acct.table.core.windows.net" in repr(store)
    await store.close()


async def test_table_storage_by_connection_string(fresh: pytest.MonkeyPatch) -> None:
    fresh.setenv("STATE_TRANSPORT", "azure")
    fresh.setenv("STATE_CONNECTION_STRING", "UseDevelopmentStorage=true")
    store = bootstrap.container().state_store()
    assert isinstance(store, AzureTableStateStore)
    assert "UseDevelopmentStorage" not in repr(store)
    await store.close()


def test_the_local_stack_uses_the_sqlite_file_unless_tables_are_configured(
    tmp_path: Path,
) -> None:
    assert plan({}, tmp_path).env["STATE_TRANSPORT"] == "local"
    configured = {"STATE_TABLE_ENDPOINT": "https://acct.table.core.windows.net"}
    assert "STATE_TRANSPORT" not in plan(configured, tmp_path).env
    blank = {"STATE_TABLE_ENDPOINT": "", "STATE_CONNECTION_STRING": ""}  # as the example file
    assert plan(blank, tmp_path).env["STATE_TRANSPORT"] == "local"
    assert state_db_path({}, tmp_path) == tmp_path / "state.sqlite3"
    assert state_db_path({"LOCAL_STATE_DB": ""}, tmp_path) == tmp_path / "state.sqlite3"
    assert state_db_path({"LOCAL_STATE_DB": "/x/s.db"}, tmp_path) == Path("/x/s.db")
