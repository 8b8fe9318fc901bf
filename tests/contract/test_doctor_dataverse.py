"""The doctor's Dataverse checks against the Web API stand-in (in-process, over HTTP), through
the production metadata adapter: WhoAmI, the application user's privileges read with
`RetrieveUserPrivileges` and the tables' `Privileges`, and the schema with its keys.

Sources for the shapes the stand-in answers: webapi/reference whoami, systemuser
(applicationid), retrieveuserprivileges (bound to systemuser, no parameters),
retrieveuserprivilegesresponse (RolePrivileges), roleprivilege (Depth, PrivilegeId,
BusinessUnitId, PrivilegeName), entitymetadata (Privileges), securityprivilegemetadata (Name,
PrivilegeType).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from local.dataverse.harness import HOST, TOKEN, Harness, dataverse_standin
from local.dataverse.security import APPLICATION_ID
from shared.dataverse.metadata import HttpMetadataApi
from shared.diagnostics import Status
from shared.diagnostics.dataverse import check_privileges, check_reachable, check_schema


@asynccontextmanager
async def metadata_api(dv: Harness, token: str = TOKEN) -> AsyncIterator[HttpMetadataApi]:
    async def bearer() -> str:
        return token

    transport = httpx.ASGITransport(app=dv.app)
    async with HttpMetadataApi.for_environment(HOST, bearer, transport=transport) as api:
        yield api


@pytest.fixture
async def dv() -> AsyncIterator[Harness]:
    async with dataverse_standin(provisioned=True) as harness:
        yield harness


async def revoke(dv: Harness, *names: str) -> None:
    response = await dv.admin.put("/__sim/settings", json={"revoked_privileges": list(names)})
    assert response.status_code == 200, response.text


async def test_who_am_i_answers_with_the_token_and_refuses_another(dv: Harness) -> None:
    async with metadata_api(dv) as api:
        result = await check_reachable(api, HOST)
    assert result.status is Status.PASS
    assert "WhoAmI" in result.detail

    async with metadata_api(dv, token="not-a-token") as api:
        refused = await check_reachable(api, HOST)
    assert refused.status is Status.FAIL
    assert "HTTP 401" in refused.detail
    assert "application user" in refused.hint


async def test_the_identity_holds_every_privilege_of_a_provisioned_environment(
    dv: Harness,
) -> None:
    async with metadata_api(dv) as api:
        own = await check_privileges(api, None)
        app = await check_privileges(api, APPLICATION_ID)

    assert own.status is Status.PASS, own.detail
    assert own.detail.startswith("the doctor's identity (user ")
    assert app.status is Status.PASS, app.detail
    assert app.detail.startswith("application user ")


async def test_a_revoked_privilege_fails_naming_the_table_and_the_privilege(dv: Harness) -> None:
    await revoke(dv, "prvWritecontact", "prvReadproduct", "prvDeletesalesorder")

    async with metadata_api(dv) as api:
        result = await check_privileges(api, APPLICATION_ID)

    assert result.status is Status.FAIL
    assert "write contact (prvWritecontact)" in result.detail
    assert "read product (prvReadproduct)" in result.detail
    assert "salesorder" not in result.detail  # delete is not needed
    assert "Create, Read and Write" in result.hint


async def test_an_app_id_without_an_application_user_fails(dv: Harness) -> None:
    async with metadata_api(dv) as api:
        result = await check_privileges(api, "00000000-0000-0000-0000-000000000042")

    assert result.status is Status.FAIL
    assert "no application user" in result.detail


async def test_the_schema_passes_when_provisioned_and_fails_when_not() -> None:
    async with dataverse_standin(provisioned=True) as provisioned, metadata_api(provisioned) as api:
        result = await check_schema(api)
    assert result.status is Status.PASS, result.detail
    assert "alternate keys Active" in result.detail

    async with dataverse_standin(provisioned=False) as bare, metadata_api(bare) as api:
        missing = await check_schema(api)
    assert missing.status is Status.FAIL
    assert missing.detail.startswith("not in sync (")
    assert " create): create: contact column bciom_storehash, " in missing.detail
    assert "schema provision" in missing.hint
