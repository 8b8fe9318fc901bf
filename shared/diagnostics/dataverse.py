"""The Dataverse checks, over the metadata port (`MetadataApi`: GET on Web API paths).

- `dataverse`: `GET WhoAmI` answers, so the URL, the network path and the token are right.
- `dataverse privileges`: the app's identity holds Create, Read and Write (Read only, on the
  tables it only reads) at Global depth on every table of the schema. The identity is the
  application user of AZURE_CLIENT_ID (the app's managed identity) when that is set, found by its
  `applicationid`, so the doctor checks the app's rights even when run as someone else;
  otherwise whoever the doctor's token belongs to (WhoAmI).
- `dataverse schema`: what `python -m cli schema check` compares (tables, columns, alternate
  keys and their Active index), through `shared/dataverse/provisioning.check`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from shared.dataverse.metadata import MetadataApi, MetadataApiError, MetadataResponse
from shared.dataverse.provisioning import Severity, check
from shared.dataverse.schema import SCHEMA
from shared.diagnostics.dataverse_access import (
    definitions_path,
    held_privileges,
    shortfalls,
    table_privileges,
)
from shared.diagnostics.result import CheckResult

REACHABLE: Final = "dataverse"
PRIVILEGES: Final = "dataverse privileges"
SCHEMA_CHECK: Final = "dataverse schema"
HINT: Final = (
    "check DATAVERSE_URL (https://<org>.crm.dynamics.com), the network path to it, and the "
    "token: in Azure the managed identity (AZURE_CLIENT_ID) must be an application user of the "
    "environment; locally, the stand-in must be running"
)
REFUSED_HINT: Final = (
    "the token was refused: the identity must be an application user of this environment "
    "(Power Platform admin center > Environment > Settings > Application users), enabled"
)
PRIVILEGES_HINT: Final = (
    "give the application user a security role with Organization-level Create, Read and Write "
    "on these tables (Read on product, pricelevel, uom, bciom_inventorylevel)"
)
APP_USER_HINT: Final = (
    "add the app's managed identity (AZURE_CLIENT_ID) as an application user of the "
    "environment with the connector's security role, and enable it"
)
SCHEMA_HINT: Final = (
    "`python -m cli schema check` lists the differences; `python -m cli schema provision` "
    "creates what is missing and waits for the keys to be Active"
)
_SHOWN: Final = 6  # differences or privileges named in a row; the rest are counted


def _body(response: MetadataResponse, path: str) -> Any:
    if not response.ok:
        raise MetadataApiError("GET", path, response)
    return response.body


async def who_am_i(api: MetadataApi) -> Mapping[str, Any]:
    body = _body(await api.get("WhoAmI"), "WhoAmI")
    if not isinstance(body, Mapping) or not body.get("UserId"):
        raise MetadataApiError("GET", "WhoAmI", MetadataResponse(200, "no UserId in the answer"))
    return body


async def check_reachable(api: MetadataApi, url: str) -> CheckResult:
    response = await api.get("WhoAmI")
    if response.status in (401, 403):
        return CheckResult.failed(REACHABLE, f"{url}: HTTP {response.status}", REFUSED_HINT)
    body = _body(response, "WhoAmI")
    user = body.get("UserId") if isinstance(body, Mapping) else None
    return CheckResult.passed(REACHABLE, f"{url} answers WhoAmI (user {user})")


def _more(items: list[str], shown: int = _SHOWN) -> str:
    listed = ", ".join(items[:shown])
    return listed if len(items) <= shown else f"{listed} and {len(items) - shown} more"


async def _principal(api: MetadataApi, app_client_id: str | None) -> tuple[str, str] | CheckResult:
    """(systemuserid, who) of the identity to check, or a failed result."""
    if not app_client_id:
        user = str((await who_am_i(api))["UserId"])
        return user, f"the doctor's identity (user {user})"
    path = (
        "systemusers?$select=systemuserid,fullname,isdisabled"
        f"&$filter=applicationid eq {app_client_id}"
    )
    rows = _body(await api.get(path), path)
    users = rows.get("value") if isinstance(rows, Mapping) else None
    if not isinstance(users, list) or not users or not isinstance(users[0], Mapping):
        return CheckResult.failed(
            PRIVILEGES, f"no application user for app client id {app_client_id}", APP_USER_HINT
        )
    row: Mapping[str, Any] = users[0]
    if row.get("isdisabled") is True:
        return CheckResult.failed(
            PRIVILEGES, f"the application user {row.get('fullname')} is disabled", APP_USER_HINT
        )
    return str(row["systemuserid"]), f"application user {row.get('fullname')}"


async def check_privileges(api: MetadataApi, app_client_id: str | None) -> CheckResult:
    principal = await _principal(api, app_client_id)
    if isinstance(principal, CheckResult):
        return principal
    user, who = principal
    definitions_query = definitions_path(SCHEMA)
    defined = table_privileges(_body(await api.get(definitions_query), definitions_query))
    path = f"systemusers({user})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()"
    held = held_privileges(_body(await api.get(path), path))
    short = shortfalls(SCHEMA, defined, held)
    missing = [s.describe() for s in short if s.depth is None]
    shallow = [s.describe() for s in short if s.depth is not None]
    if missing:
        return CheckResult.failed(PRIVILEGES, f"{who} lacks: {_more(missing)}", PRIVILEGES_HINT)
    if shallow:
        return CheckResult.warned(PRIVILEGES, f"{who} has {_more(shallow)}", PRIVILEGES_HINT)
    return CheckResult.passed(PRIVILEGES, f"{who}: create, read and write on {len(defined)} tables")


async def check_schema(api: MetadataApi) -> CheckResult:
    plan = await check(api)
    if plan.in_sync:
        skipped = [d.table for d in plan.of(Severity.INFO)]
        installed = [t for t in SCHEMA if t.logical_name not in skipped]
        keys = sum(len(t.keys) for t in installed)
        note = f" ({', '.join(skipped)} not installed: skipped)" if skipped else ""
        return CheckResult.passed(
            SCHEMA_CHECK,
            f"{len(installed)} tables with their columns; {keys} alternate keys Active{note}",
        )
    order = (Severity.CONFLICT, Severity.FAILED, Severity.WAIT, Severity.CREATE)
    counts = ", ".join(f"{len(plan.of(s))} {s.value}" for s in order if plan.of(s))
    first = [f"{d.severity.value}: {d.table} {d.subject}" for s in order for d in plan.of(s)]
    return CheckResult.failed(
        SCHEMA_CHECK, f"not in sync ({counts}): {_more(first, 3)}", SCHEMA_HINT
    )
