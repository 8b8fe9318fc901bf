"""Dataverse stand-in: the security reads, in their documented shapes.

- webapi/reference/entitymetadata: `Privileges`, Collection(SecurityPrivilegeMetadata) with
  `PrivilegeId`, `Name`, `PrivilegeType` and the `CanBe…` depths;
- webapi/reference/systemuser: `applicationid` (the Entra app of an application user);
- webapi/reference/retrieveuserprivileges: bound to `systemuser`, no parameters, returns
  RetrieveUserPrivilegesResponse (`RolePrivileges`: RolePrivilege `Depth`, `PrivilegeId`,
  `BusinessUnitId`, `PrivilegeName`, `RecordFilterId`, `RecordFilterUniqueName`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from local.dataverse.harness import Harness, dataverse_standin
from local.dataverse.security import APPLICATION_ID

FUNCTION = "Microsoft.Dynamics.CRM.RetrieveUserPrivileges()"


@pytest.fixture
async def dv() -> AsyncIterator[Harness]:
    async with dataverse_standin(provisioned=True) as harness:
        yield harness


async def test_a_table_definition_lists_its_privileges(dv: Harness) -> None:
    response = await dv.api.get("EntityDefinitions(LogicalName='contact')?$select=Privileges")

    assert response.status_code == 200
    privileges = {p["PrivilegeType"]: p for p in response.json()["Privileges"]}
    assert set(privileges) >= {"Create", "Read", "Write", "Delete", "Append", "AppendTo"}
    assert privileges["Write"]["Name"].startswith("prvWrite")
    assert privileges["Write"]["CanBeGlobal"] is True


async def test_the_application_user_is_found_by_its_app_id(dv: Harness) -> None:
    who = (await dv.api.get("WhoAmI")).json()
    query = f"systemusers?$select=systemuserid,isdisabled&$filter=applicationid eq {APPLICATION_ID}"

    found = (await dv.api.get(query)).json()["value"]
    other = await dv.api.get(query.replace(APPLICATION_ID, "00000000-0000-0000-0000-000000000001"))

    assert found == [{"systemuserid": who["UserId"], "isdisabled": False}]
    assert other.json()["value"] == []


async def test_retrieve_user_privileges_answers_role_privileges(dv: Harness) -> None:
    user = (await dv.api.get("WhoAmI")).json()["UserId"]

    response = await dv.api.get(f"systemusers({user})/{FUNCTION}")

    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"].endswith("RetrieveUserPrivilegesResponse")
    held = {p["PrivilegeName"]: p for p in body["RolePrivileges"]}
    assert held["prvWritecontact"]["Depth"] == "Global"
    assert set(held["prvWritecontact"]) == {
        "Depth",
        "PrivilegeId",
        "BusinessUnitId",
        "PrivilegeName",
        "RecordFilterId",
        "RecordFilterUniqueName",
    }


async def test_revoked_privileges_are_no_longer_held_until_reset(dv: Harness) -> None:
    user = (await dv.api.get("WhoAmI")).json()["UserId"]
    await dv.admin.put("/__sim/settings", json={"revoked_privileges": ["prvWritecontact"]})

    held = (await dv.api.get(f"systemusers({user})/{FUNCTION}")).json()["RolePrivileges"]
    assert "prvWritecontact" not in {p["PrivilegeName"] for p in held}

    await dv.admin.post("/__sim/reset")
    held = (await dv.api.get(f"systemusers({user})/{FUNCTION}")).json()["RolePrivileges"]
    assert "prvWritecontact" in {p["PrivilegeName"] for p in held}


async def test_an_unknown_user_is_not_found(dv: Harness) -> None:
    response = await dv.api.get(f"systemusers(00000000-0000-0000-0000-000000000001)/{FUNCTION}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "0x80040217"
