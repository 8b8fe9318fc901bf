"""Routes one Web API operation (top-level or inside a $batch) to its handler.

Resources below `/api/data/v9.2/`:
- `<set>`: GET (query), POST (create, deep insert); `<set>/$count`;
- `<set>(<key>)`: GET (with `If-None-Match` → 304), PATCH (update/upsert, `If-Match` /
  `If-None-Match`), DELETE (`If-Match`); the key is the primary id or an Active alternate key;
- `<set>(<key>)/<column>`: GET, PUT `{"value": ...}`, DELETE (clear);
- `<set>(<key>)/<single-valued nav>/$ref`: PUT `{"@odata.id": ...}`, DELETE;
- `<set>(<key>)/<collection nav>`: GET (query), POST (create a child);
- `EntityDefinitions...`, `RelationshipDefinitions`: see metadata.py; `$batch`: batch.py;
- `FulfillSalesOrder`, `CancelSalesOrder`: POST, the unbound actions of actions.py;
- `WhoAmI`, `$metadata` (a CSDL outline), and the service document;
- `systemusers` and `systemusers(<id>)/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()`
  (security.py).
Every write runs in a savepoint, so a failing deep insert leaves nothing behind.
"""

from __future__ import annotations

import logging
import uuid
from typing import Final

from local.dataverse import actions, batch, csdl, errors, keys, security
from local.dataverse.catalog import Entity
from local.dataverse.keys import KeyRef, Segment
from local.dataverse.messages import (
    ApiRequest,
    ApiResponse,
    error_response,
    json_response,
    no_content,
)
from local.dataverse.metadata import Metadata
from local.dataverse.odata_query import Options, parse_options
from local.dataverse.reads import Reader, fragment
from local.dataverse.representation import etag
from local.dataverse.store import Store
from local.dataverse.writes import Writer, Written

IDS: Final = {
    name: str(uuid.uuid5(uuid.NAMESPACE_URL, f"local-dataverse/{name}"))
    for name in ("BusinessUnitId", "UserId", "OrganizationId")
}
_METADATA_SETS: Final = ("EntityDefinitions", "RelationshipDefinitions")
logger = logging.getLogger(__name__)


def _not_allowed(method: str) -> errors.DataverseError:
    return errors.DataverseError(
        405, errors.ODATA_ERROR, f"The HTTP method '{method}' is not allowed on this resource."
    )


class Service:
    """The Web API over one store."""

    def __init__(self, store: Store, key_activation_seconds: float = 2.0) -> None:
        self.store = store
        self.key_activation_seconds = key_activation_seconds
        self.metadata = Metadata(store, store.clock)
        self.revoked_privileges: frozenset[str] = frozenset()  # set by the admin API

    def dispatch(self, request: ApiRequest) -> ApiResponse:
        with self.store.lock:  # one operation at a time, as a single writer
            try:
                self.store.refresh_keys(self.key_activation_seconds)
                return self._route(request)
            except errors.DataverseError as error:
                return error_response(error)
            except Exception as exc:  # a stand-in bug: answer like the service's generic fault
                logger.exception("unexpected error in %s %s", request.method, request.path)
                return error_response(
                    errors.DataverseError(500, errors.UNEXPECTED, f"Unexpected error: {exc!r}")
                )

    def _route(self, request: ApiRequest) -> ApiResponse:
        segments = keys.split_path(request.path)
        if not segments:
            return self._service_document(request)
        head = segments[0]
        if head.name == "$batch" and len(segments) == 1:
            if request.method != "POST":
                raise _not_allowed(request.method)
            if request.in_batch:
                raise errors.bad_request("A $batch request cannot contain another $batch request.")
            return batch.execute(self.store, self.dispatch, request)
        if head.name == "WhoAmI" and len(segments) == 1:
            return self._who_am_i(request)
        if head.name == "$metadata" and len(segments) == 1:
            return csdl.document(self.store.catalog)
        if head.name in actions.ACTIONS and len(segments) == 1 and head.key is None:
            if request.method != "POST":
                raise _not_allowed(request.method)
            with self.store.savepoint():
                return actions.run(self.store, request, head.name)
        if head.name == security.USERS:
            catalog = self.store.catalog.values()
            return security.handle(request, segments, IDS, catalog, self.revoked_privileges)
        if head.name in _METADATA_SETS:
            if request.method == "GET":
                return self.metadata.handle(request, segments)
            with self.store.savepoint():
                return self.metadata.handle(request, segments)
        entity = self.store.entity_by_set(head.name)
        if entity is None:
            raise errors.no_segment(head.name)
        options = parse_options(request.query)
        if request.method == "GET":
            return self._read(request, entity, segments, options)
        with self.store.savepoint():
            return self._write(request, entity, segments, options)

    # --- reads ------------------------------------------------------------------------------

    def _read(
        self, request: ApiRequest, entity: Entity, segments: list[Segment], options: Options
    ) -> ApiResponse:
        reader = Reader(self.store, request)
        head = segments[0]
        if head.key is None:
            if len(segments) == 1:
                return reader.collection(entity, options, head.name)
            if len(segments) == 2 and segments[1].name == "$count":
                return reader.count(entity, options)
            raise errors.no_segment(segments[1].name)
        ref = keys.resolve(entity, head.key)
        writer = Writer(self.store, request.content_ids)
        record_id = writer.locate(ref)
        if record_id is None:
            raise writer.missing(ref)
        row = self.store.fetch(entity, record_id)
        assert row is not None
        if len(segments) == 1:
            return reader.single(entity, row, options)
        name = segments[1].name
        path = "/".join(f"{s.name}({s.key})" if s.key is not None else s.name for s in segments)
        if name in entity.collections and len(segments) == 2:
            collection = entity.collections[name]
            child = self.store.catalog[collection.child]
            return reader.collection(child, options, path, {collection.attribute: record_id})
        attribute = entity.attributes.get(name)
        if attribute is not None and attribute.kind != "lookup" and len(segments) == 2:
            value = reader.shape(entity, row, Options(select=[name]))[name]
            context = f"{request.base_url}$metadata#{entity.entity_set}({record_id})/{name}"
            return json_response(200, {"@odata.context": context, "value": value})
        raise errors.no_segment(name)

    # --- writes -----------------------------------------------------------------------------

    def _write(
        self, request: ApiRequest, entity: Entity, segments: list[Segment], options: Options
    ) -> ApiResponse:
        writer = Writer(self.store, request.content_ids)
        head = segments[0]
        if head.key is None:
            if len(segments) != 1:
                raise errors.no_segment(segments[1].name)
            if request.method != "POST":
                raise _not_allowed(request.method)
            return self._created(request, writer.create(entity, request.json()), options)
        ref = keys.resolve(entity, head.key)
        if len(segments) == 1:
            if request.method == "PATCH":
                return self._patch(request, writer, ref, options)
            if request.method == "DELETE":
                return self._delete(request, writer, ref)
            raise _not_allowed(request.method)
        record_id = writer.locate(ref)
        if record_id is None:
            raise writer.missing(ref)
        return self._write_part(request, writer, entity, record_id, segments[1:], options)

    def _write_part(
        self,
        request: ApiRequest,
        writer: Writer,
        entity: Entity,
        record_id: str,
        segments: list[Segment],
        options: Options,
    ) -> ApiResponse:
        name = segments[0].name
        body = request.json()
        if len(segments) == 2 and segments[1].name == "$ref":
            if entity.navigation(name) is not None:
                if request.method == "PUT":
                    target = body.get("@odata.id") if isinstance(body, dict) else None
                    writer.update(entity, record_id, {f"{name}@odata.bind": target})
                    return no_content()
                if request.method == "DELETE":
                    writer.update(entity, record_id, {name: None})
                    return no_content()
                raise _not_allowed(request.method)
            if name in entity.collections and request.method == "POST":
                target = body.get("@odata.id") if isinstance(body, dict) else None
                writer.update(entity, record_id, {f"{name}@odata.bind": [target]})
                return no_content()
            raise errors.no_segment(name)
        if len(segments) != 1:
            raise errors.no_segment(segments[1].name)
        if name in entity.collections and request.method == "POST":
            collection = entity.collections[name]
            child = self.store.catalog[collection.child]
            written = writer.create(
                child,
                body,
                forced={
                    collection.attribute: record_id,
                    collection.attribute + "__target": entity.logical_name,
                },
            )
            return self._created(request, written, options)
        attribute = entity.attributes.get(name)
        if attribute is None or attribute.kind == "lookup":
            raise errors.no_segment(name)
        if request.method == "PUT":
            if not isinstance(body, dict) or "value" not in body:
                raise errors.bad_request('A property update needs a body of {"value": ...}.')
            writer.update(entity, record_id, {name: body["value"]})
        elif request.method == "DELETE":
            writer.update(entity, record_id, {name: None})
        else:
            raise _not_allowed(request.method)
        response = no_content()
        response.entity_url = self._url(request, entity, record_id)
        return response

    def _url(self, request: ApiRequest, entity: Entity, record_id: str) -> str:
        return f"{request.base_url}{entity.entity_set}({record_id})"

    def _represent(
        self, request: ApiRequest, written: Written, options: Options, status: int
    ) -> ApiResponse:
        row = self.store.fetch(written.entity, written.record_id)
        assert row is not None
        reader = Reader(self.store, request)
        reader.validate(written.entity, options)
        body = {
            "@odata.context": f"{request.base_url}$metadata#"
            f"{fragment(written.entity, options)}/$entity",
            **reader.shape(written.entity, row, options),
        }
        response = json_response(
            status,
            body,
            [
                ("ETag", etag(int(row["versionnumber"]))),
                ("Preference-Applied", "return=representation"),
            ],
        )
        response.entity_url = self._url(request, written.entity, written.record_id)
        return response

    def _created(self, request: ApiRequest, written: Written, options: Options) -> ApiResponse:
        if request.prefer.get("return") == "representation":
            return self._represent(request, written, options, 201)
        location = self._url(request, written.entity, written.record_id)
        response = no_content([("OData-EntityId", location)])
        response.entity_url = location
        return response

    def _patch(
        self, request: ApiRequest, writer: Writer, ref: KeyRef, options: Options
    ) -> ApiResponse:
        existing = writer.locate(ref)
        if_match = (request.header("if-match") or "").strip()
        if_none_match = (request.header("if-none-match") or "").strip()
        body = request.json()
        if if_match:
            if existing is None:
                raise writer.missing(ref)
            if if_match != "*":
                row = self.store.fetch(ref.entity, existing)
                assert row is not None
                if etag(int(row["versionnumber"])) != if_match:
                    raise errors.DataverseError(
                        412,
                        errors.CONCURRENCY_VERSION_MISMATCH,
                        "The version of the existing record doesn't match the RowVersion "
                        "property provided.",
                    )
            strip = tuple(n for c, _ in ref.columns for n in (c, c + "__target"))
            written = writer.update(ref.entity, existing, body, strip)
        elif if_none_match == "*":
            if existing is not None:
                raise errors.DataverseError(
                    412,
                    errors.DUPLICATE_RECORD,
                    "A record with matching key values already exists.",
                )
            written = writer.upsert(ref, body, None)
        else:
            written = writer.upsert(ref, body, existing)
        if request.prefer.get("return") == "representation":
            shown = options if written.created else Options(select=options.select)
            return self._represent(request, written, shown, 201 if written.created else 200)
        location = f"{request.base_url}{ref.entity.entity_set}({ref.text})"
        response = no_content([("OData-EntityId", location)])
        response.entity_url = location
        return response

    def _delete(self, request: ApiRequest, writer: Writer, ref: KeyRef) -> ApiResponse:
        existing = writer.locate(ref)
        if existing is None:
            raise writer.missing(ref)
        if_match = (request.header("if-match") or "").strip()
        if if_match and if_match != "*":
            row = self.store.fetch(ref.entity, existing)
            assert row is not None
            if etag(int(row["versionnumber"])) != if_match:
                raise errors.DataverseError(
                    412,
                    errors.CONCURRENCY_VERSION_MISMATCH,
                    "The version of the existing record doesn't match the RowVersion property "
                    "provided.",
                )
        writer.delete(ref.entity, existing)
        return no_content()

    # --- service ----------------------------------------------------------------------------

    def _who_am_i(self, request: ApiRequest) -> ApiResponse:
        if request.method != "GET":
            raise _not_allowed(request.method)
        body = {
            "@odata.context": f"{request.base_url}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
            **IDS,
        }
        return json_response(200, body)

    def _service_document(self, request: ApiRequest) -> ApiResponse:
        value = [
            {"name": e.entity_set, "kind": "EntitySet", "url": e.entity_set}
            for e in self.store.catalog.values()
        ]
        return json_response(
            200, {"@odata.context": f"{request.base_url}$metadata", "value": value}
        )
