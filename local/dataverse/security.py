"""Security as the connector reads it: the privileges each table defines, the one user the
stand-in knows, and `RetrieveUserPrivileges`.

- A table's definition carries `Privileges` (SecurityPrivilegeMetadata: `PrivilegeId`, `Name`,
  `PrivilegeType`, the `CanBe…` depths), one per privilege type of a user-owned table, named
  `prv<Type><SchemaName>` as Dataverse names them (prvReadContact, prvAppendTobciom_Refund).
- `GET systemusers` lists the stand-in's identity (every bearer token acts as it, as WhoAmI
  says), with its `applicationid`, so that the application user of an app id can be looked up.
- `GET systemusers(<id>)/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()` answers a
  RetrieveUserPrivilegesResponse: `RolePrivileges`, each a RolePrivilege (`Depth`,
  `PrivilegeId`, `BusinessUnitId`, `PrivilegeName`, `RecordFilterId`,
  `RecordFilterUniqueName`). The identity holds every privilege of every table at Global depth
  (a System Administrator), except those the admin API revoked.
Sources: webapi/reference entitymetadata (Privileges), securityprivilegemetadata, privilegetype,
retrieveuserprivileges, retrieveuserprivilegesresponse, roleprivilege, privilegedepth.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, Final

from local.dataverse import errors
from local.dataverse.catalog import Entity, metadata_id
from local.dataverse.keys import Segment
from local.dataverse.messages import ApiRequest, ApiResponse, json_response
from local.dataverse.odata_query import bind, parse_filter, parse_options

PRIVILEGE_TYPES: Final = (
    "Create",
    "Read",
    "Write",
    "Delete",
    "Assign",
    "Share",
    "Append",
    "AppendTo",
)
USERS: Final = "systemusers"
RETRIEVE_USER_PRIVILEGES: Final = "Microsoft.Dynamics.CRM.RetrieveUserPrivileges"
APPLICATION_ID: Final = str(uuid.uuid5(uuid.NAMESPACE_URL, "local-dataverse/ApplicationId"))


def privilege_name(entity: Entity, kind: str) -> str:
    return f"prv{kind}{entity.schema_name}"


def privileges_json(entity: Entity) -> list[dict[str, Any]]:
    return [
        {
            "PrivilegeId": metadata_id(entity.logical_name, "privilege", kind),
            "Name": privilege_name(entity, kind),
            "PrivilegeType": kind,
            "CanBeBasic": True,
            "CanBeLocal": True,
            "CanBeDeep": True,
            "CanBeGlobal": True,
            "CanBeEntityReference": False,
            "CanBeParentEntityReference": False,
            "CanBeRecordFilter": False,
        }
        for kind in PRIVILEGE_TYPES
    ]


def user_json(ids: dict[str, str]) -> dict[str, Any]:
    return {
        "systemuserid": ids["UserId"],
        "fullname": "# BigCommerce connector (local stand-in)",
        "applicationid": APPLICATION_ID,
        "isdisabled": False,
        "_businessunitid_value": ids["BusinessUnitId"],
    }


def handle(
    request: ApiRequest,
    segments: list[Segment],
    ids: dict[str, str],
    entities: Iterable[Entity],
    revoked: frozenset[str],
) -> ApiResponse:
    """`systemusers` and the user's `RetrieveUserPrivileges`; GET only."""
    if request.method != "GET":
        raise errors.DataverseError(
            405, errors.ODATA_ERROR, f"The HTTP method '{request.method}' is not allowed."
        )
    head = segments[0]
    user = user_json(ids)
    if head.key is None and len(segments) == 1:
        return _list_users(request, [user])
    if head.key is None or head.key.strip("'") != user["systemuserid"]:
        raise errors.DataverseError(
            404, errors.OBJECT_DOES_NOT_EXIST, f"systemuser With Id = {head.key} Does Not Exist"
        )
    if len(segments) == 2 and segments[1].name == RETRIEVE_USER_PRIVILEGES:
        if segments[1].key not in ("", None):
            raise errors.bad_request("RetrieveUserPrivileges takes no parameters.")
        held = [
            {
                "Depth": "Global",
                "PrivilegeId": metadata_id(entity.logical_name, "privilege", kind),
                "BusinessUnitId": ids["BusinessUnitId"],
                "PrivilegeName": privilege_name(entity, kind),
                "RecordFilterId": None,
                "RecordFilterUniqueName": None,
            }
            for entity in entities
            for kind in PRIVILEGE_TYPES
            if privilege_name(entity, kind) not in revoked
        ]
        context = (
            f"{request.base_url}$metadata#Microsoft.Dynamics.CRM.RetrieveUserPrivilegesResponse"
        )
        return json_response(200, {"@odata.context": context, "RolePrivileges": held})
    if len(segments) == 1:
        return json_response(
            200, {"@odata.context": f"{request.base_url}$metadata#{USERS}/$entity", **user}
        )
    raise errors.no_segment(segments[1].name)


def _list_users(request: ApiRequest, users: list[dict[str, Any]]) -> ApiResponse:
    options = parse_options(request.query)
    rows = users
    if options.filter:
        predicate = bind(
            parse_filter(options.filter),
            lambda _: "any",
            lambda row, name: row.get(name),
            options.filter,
        )
        rows = [row for row in rows if predicate(row) is True]
    if options.select is not None:
        kept = set(options.select)
        rows = [{k: v for k, v in row.items() if k in kept} for row in rows]
    return json_response(
        200, {"@odata.context": f"{request.base_url}$metadata#{USERS}", "value": rows}
    )
