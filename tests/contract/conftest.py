"""Fixtures for adapter tests against a provisioned Dataverse stand-in: one process per module,
reset before each test, and a connector client per test. A module may define its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from shared.dataverse.client import DataverseClient
from tests.support.dataverse_standin import StandinAdmin, StandinProcess, running_standin


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinProcess]:
    with running_standin(provisioned=True) as process:
        yield process


@pytest.fixture
async def admin(standin: StandinProcess) -> AsyncIterator[StandinAdmin]:
    async with StandinAdmin(standin) as api:
        await api.reset()
        yield api


@pytest.fixture
async def client(standin: StandinProcess, admin: StandinAdmin) -> AsyncIterator[DataverseClient]:
    dv = standin.client()
    yield dv
    await dv.aclose()
