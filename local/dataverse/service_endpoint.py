"""The stand-in plays a Dataverse Service Bus service endpoint, posting to the local broker.

In Dataverse an operator registers a service endpoint (message format JSON) with the Plugin
Registration Tool and steps on it; after each matching operation the asynchronous service posts
the operation's `RemoteExecutionContext` to the queue. Here `LOCAL_DATAVERSE_SERVICE_ENDPOINT`
(the local broker's SQLite file) switches that on, with the steps the connector's documentation
asks for, all post-operation, asynchronous, with a post image `PostImage` holding every column:
Create and Update of `msdyn_fulfillmentorder`, Update of `salesorder`. Messages go to the
`dataverse-events` queue (created if missing) in the wire format
`shared/dataverse/remote_context.py` parses (its docstring cites the sources): DataContract JSON
with escaped slashes, `/Date(ms)/` dates, `__type` hints, key/value arrays, lookups as
EntityReference, money as Money, `statecode`/`statuscode` as OptionSetValue; content type
`application/json`; the message properties Dataverse adds (organization, user, initiating user,
table logical name, request name).

No committed change is lost. The stand-in's change log (`_dv_changes`) is written in the same
transaction as the row it records. This endpoint keeps a cursor, the last change it posted, in
the stand-in's own database, and after every commit (`Store.on_commit`: the outermost savepoint's
release, inside the request, before the answer is sent) it posts every change after the cursor,
then moves the cursor. If the broker cannot take them, the cursor stays: a background retry every
second, the next commit, or the next start posts them. A change posted twice has the same message
id (table, row, change sequence) and the queue's duplicate detection drops the second one.
Enabling the endpoint on an existing database starts from its current last change, as a newly
registered step would.

Where it differs from Dataverse, knowingly: the post image is read when the change is posted, so
several changes to one row in one commit (or a post delayed by a broker outage) all carry the
row's latest columns and version; an Update's `Target` carries the row id and `modifiedon` only,
because the stand-in does not record which columns an update set; Create's `Target` carries the
row as created.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from local.broker import LocalBroker
from local.broker.adapters import provision
from local.dataverse.catalog import Attribute, Entity
from local.dataverse.service import IDS
from local.dataverse.store import Row, Store
from shared.dataverse import remote_context as rc
from shared.messaging.message import OutboundMessage, PropertyValue
from shared.messaging.queues import DATAVERSE_EVENTS

log = logging.getLogger("local.dataverse.service_endpoint")

SETTING: Final = "LOCAL_DATAVERSE_SERVICE_ENDPOINT"
QUEUE: Final = DATAVERSE_EVENTS.name
IMAGE_ALIAS: Final = "PostImage"
ORGANIZATION: Final = "local-dataverse"
STEPS: Final = frozenset(
    {
        ("msdyn_fulfillmentorder", "Create"),
        ("msdyn_fulfillmentorder", "Update"),
        ("salesorder", "Update"),
    }
)
# Standard State and Status columns are OptionSetValues in the SDK's types; the stand-in keeps
# them as whole numbers.
OPTION_SET_COLUMNS: Final = frozenset({"statecode", "statuscode"})
_CURSOR_TABLE: Final = "_dv_service_endpoint"
_CURSOR: Final = "posted"
_ID_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "local-dataverse/service-endpoint")
_STEP_ID: Final = str(uuid.uuid5(_ID_NAMESPACE, "sdkmessageprocessingstep"))


def _typed(kind: str, **members: Any) -> dict[str, Any]:
    return {"__type": f"{kind}:{rc.CONTRACTS_NAMESPACE}", **members}


def _date(stored: str) -> str:
    moment = datetime.strptime(stored, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return f"/Date({int(moment.timestamp() * 1000)})/"


def _value(attribute: Attribute, row: Row) -> Any:
    """A stored column in DataContract JSON (the SDK's attribute types)."""
    stored = row.get(attribute.logical_name)
    if stored is None:
        return None
    kind = attribute.kind
    if attribute.logical_name in OPTION_SET_COLUMNS:
        return _typed("OptionSetValue", Value=int(stored))
    if kind == "lookup":
        target = row.get(attribute.logical_name + "__target") or attribute.targets[0]
        return _typed(
            "EntityReference",
            Id=str(stored),
            KeyAttributes=[],
            LogicalName=target,
            Name=None,
            RowVersion=None,
        )
    if kind == "money":
        return _typed("Money", Value=float(stored))
    if kind == "boolean":
        return bool(stored)
    if kind == "datetime":
        return _date(str(stored))
    if kind in ("integer", "bigint"):
        return int(stored)
    if kind == "decimal":
        return float(stored)
    return stored


def _attributes(entity: Entity, row: Row, names: list[str] | None = None) -> list[dict[str, Any]]:
    chosen = names if names is not None else list(entity.attributes)
    pairs = []
    for name in chosen:
        attribute = entity.attributes.get(name)
        if attribute is None:
            continue
        value = _value(attribute, row)
        if value is not None:
            pairs.append({"key": name, "value": value})
    return pairs


def _entity(
    entity: Entity, record_id: str, attributes: list[dict[str, Any]], row_version: str | None
) -> dict[str, Any]:
    return {
        "Attributes": attributes,
        "EntityState": None,
        "FormattedValues": [],
        "Id": record_id,
        "KeyAttributes": [],
        "LogicalName": entity.logical_name,
        "RelatedEntities": [],
        "RowVersion": row_version,
    }


def remote_execution_context(
    entity: Entity, row: Row, message_name: str, sequence: int, *, organization: str = ORGANIZATION
) -> dict[str, Any]:
    """The body Dataverse posts for one step: a post-operation (40), asynchronous (mode 1)
    execution context with a Target and a post image of every column."""
    record_id = str(row[entity.primary_id])
    if message_name == "Create":
        target_names = list(entity.attributes)
    else:
        target_names = [entity.primary_id, "modifiedon"]
    target = {
        "__type": f"Entity:{rc.CONTRACTS_NAMESPACE}",
        **_entity(entity, record_id, _attributes(entity, row, target_names), None),
    }
    image = _entity(entity, record_id, _attributes(entity, row), str(row["versionnumber"]))
    operation = str(uuid.uuid5(_ID_NAMESPACE, f"{entity.logical_name}|{record_id}|{sequence}"))
    stamp = row.get("modifiedon") or row.get("createdon")
    return {
        "BusinessUnitId": IDS["BusinessUnitId"],
        "CorrelationId": str(uuid.uuid4()),
        "Depth": 1,
        "InitiatingUserAzureActiveDirectoryObjectId": "00000000-0000-0000-0000-000000000000",
        "InitiatingUserId": IDS["UserId"],
        "InputParameters": [{"key": "Target", "value": target}],
        "IsExecutingOffline": False,
        "IsInTransaction": False,
        "IsOfflinePlayback": False,
        "IsolationMode": 1,
        "MessageName": message_name,
        "Mode": 1,
        "OperationCreatedOn": _date(str(stamp)) if stamp else None,
        "OperationId": operation,
        "OrganizationId": IDS["OrganizationId"],
        "OrganizationName": organization,
        "OutputParameters": [{"key": "id", "value": record_id}] if message_name == "Create" else [],
        "OwningExtension": {
            "Id": _STEP_ID,
            "KeyAttributes": [],
            "LogicalName": "sdkmessageprocessingstep",
            "Name": None,
            "RowVersion": None,
        },
        "ParentContext": None,
        "PostEntityImages": [{"key": IMAGE_ALIAS, "value": image}],
        "PreEntityImages": [],
        "PrimaryEntityId": record_id,
        "PrimaryEntityName": entity.logical_name,
        "RequestId": None,
        "SecondaryEntityName": "none",
        "SharedVariables": [],
        "Stage": 40,
        "UserAzureActiveDirectoryObjectId": "00000000-0000-0000-0000-000000000000",
        "UserId": IDS["UserId"],
    }


def encode(context: Mapping[str, Any]) -> bytes:
    """JSON as DataContractJsonSerializer writes it: every `/` escaped as `\\/` (a `/` only ever
    appears inside a JSON string, so the replacement is safe)."""
    text = json.dumps(context, separators=(",", ":"), ensure_ascii=False)
    return text.replace("/", "\\/").encode("utf-8")


class ServiceEndpoint:
    """Posts the registered steps' execution contexts for every committed change."""

    def __init__(
        self,
        store: Store,
        broker_path: str,
        *,
        organization: str = ORGANIZATION,
        retry_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.broker_path = broker_path
        self.organization = organization
        self.retry_seconds = retry_seconds
        self.posted = 0
        self._broker: LocalBroker | None = None
        self._retry: threading.Thread | None = None
        self._stop = threading.Event()

    def attach(self) -> ServiceEndpoint:
        """Starts following the store's commits; posts what an earlier run left unposted."""
        store = self.store
        with store.lock:
            store.conn.execute(
                f"CREATE TABLE IF NOT EXISTS {_CURSOR_TABLE} "
                "(name TEXT PRIMARY KEY, seq INTEGER NOT NULL)"
            )
            store.conn.execute(
                "CREATE INDEX IF NOT EXISTS _dv_changes_row ON _dv_changes(entity, id, seq)"
            )
            if self._cursor() is None:
                self._move_cursor(store.last_change())  # a new step sees changes from now on
            store.on_commit = self.flush
        try:
            self._open()  # the queue exists from the start, as a registered endpoint's does
        except Exception as exc:
            log.warning("service endpoint: cannot open %s yet (%s)", self.broker_path, exc)
        self.flush()
        return self

    def close(self) -> None:
        self._stop.set()
        if self.store.on_commit == self.flush:
            self.store.on_commit = None
        if self._broker is not None:
            self._broker.close()
            self._broker = None

    def flush(self) -> None:
        """Posts every change after the cursor. Never raises: it runs inside a write's request,
        after its commit; a failure leaves the cursor for the retry."""
        with self.store.lock:
            try:
                self._flush()
            except Exception as exc:
                log.warning(
                    "service endpoint: posting to %s failed (%s); retrying", self.broker_path, exc
                )
                self._retry_later()

    def _flush(self) -> None:
        cursor = self._cursor() or 0
        changes = self.store.conn.execute(
            "SELECT seq, entity, id, op FROM _dv_changes WHERE seq > ? ORDER BY seq", (cursor,)
        ).fetchall()
        if not changes:
            return
        messages = [m for c in changes if (m := self._message(c)) is not None]
        if messages:
            self._open().send(QUEUE, messages)
            self.posted += len(messages)
        self._move_cursor(int(changes[-1]["seq"]))

    def _message(self, change: sqlite3.Row) -> OutboundMessage | None:
        if change["op"] == "delete":
            return None
        entity = self.store.catalog.get(str(change["entity"]))
        if entity is None:
            return None
        sequence, record_id = int(change["seq"]), str(change["id"])
        message_name = self._message_name(entity, record_id, sequence)
        if (entity.logical_name, message_name) not in STEPS:
            return None
        row = self.store.fetch(entity, record_id)
        if row is None:
            return None  # deleted since; no step is registered on Delete
        body = remote_execution_context(
            entity, row, message_name, sequence, organization=self.organization
        )
        properties: dict[str, PropertyValue] = {
            rc.PROPERTY_ORGANIZATION: self.organization,
            rc.PROPERTY_USER: IDS["UserId"],
            rc.PROPERTY_INITIATING_USER: IDS["UserId"],
            rc.PROPERTY_ENTITY: entity.logical_name,
            rc.PROPERTY_REQUEST: message_name,
        }
        return OutboundMessage(
            body=encode(body),
            message_id=str(
                uuid.uuid5(_ID_NAMESPACE, f"{entity.logical_name}|{record_id}|{sequence}")
            ),
            application_properties=properties,
            content_type=rc.JSON_CONTENT_TYPE,
        )

    def _message_name(self, entity: Entity, record_id: str, sequence: int) -> str:
        """Create when nothing earlier wrote the row (or the last thing was its deletion)."""
        before = self.store.conn.execute(
            "SELECT op FROM _dv_changes WHERE entity = ? AND id = ? AND seq < ? "
            "ORDER BY seq DESC LIMIT 1",
            (entity.logical_name, record_id, sequence),
        ).fetchone()
        return "Create" if before is None or before["op"] == "delete" else "Update"

    def _open(self) -> LocalBroker:
        if self._broker is None:
            broker = LocalBroker(self.broker_path)
            provision(broker, [DATAVERSE_EVENTS])
            self._broker = broker
        return self._broker

    def _cursor(self) -> int | None:
        row = self.store.conn.execute(
            f"SELECT seq FROM {_CURSOR_TABLE} WHERE name = ?",  # noqa: S608 (a constant name)
            (_CURSOR,),
        ).fetchone()
        return None if row is None else int(row[0])

    def _move_cursor(self, sequence: int) -> None:
        self.store.conn.execute(
            f"INSERT INTO {_CURSOR_TABLE}(name, seq) VALUES (?, ?) "  # noqa: S608 (a constant name)
            "ON CONFLICT(name) DO UPDATE SET seq = excluded.seq",
            (_CURSOR, sequence),
        )

    def _retry_later(self) -> None:
        if self._retry is not None and self._retry.is_alive():
            return
        self._retry = threading.Thread(
            target=self._retry_loop, name="service-endpoint-retry", daemon=True
        )
        self._retry.start()

    def _retry_loop(self) -> None:
        while not self._stop.wait(self.retry_seconds):
            with self.store.lock:
                try:
                    self._flush()
                except Exception as exc:
                    log.warning("service endpoint: still cannot post (%s)", exc)
                    continue
            log.info("service endpoint: pending changes posted")
            return


def attach_from_env(store: Store, environ: Mapping[str, str]) -> ServiceEndpoint | None:
    """The endpoint `LOCAL_DATAVERSE_SERVICE_ENDPOINT` asks for, following `store`; or None."""
    path = (environ.get(SETTING) or "").strip()
    if not path:
        return None
    endpoint = ServiceEndpoint(store, path).attach()
    log.info("service endpoint: posting Dataverse changes to %s in %s", QUEUE, path)
    return endpoint
