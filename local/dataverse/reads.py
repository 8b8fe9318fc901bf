"""Retrieve and query: single rows, collections, `$count`, `$expand`, paging, change tracking.

Paging (query/page-results): `Prefer: odata.maxpagesize=N` (at most 5,000, also the default
page) gives `@odata.nextLink` while rows remain; its `$skiptoken` is opaque and the link is
followed unchanged. `$top` is ignored when a page size is asked for.

Change tracking (use-change-tracking-synchronize-data-external-systems): `Prefer:
odata.track-changes` answers with `Preference-Applied: odata.track-changes` and an
`@odata.deltaLink` (on the last page); GET on the delta link returns the rows created or changed
since, then `$deletedEntity` entries for rows deleted since, and a new delta link. `$filter`,
`$orderby`, `$expand` and `$top` are refused with the documented message. `/$count` with a
delta token counts the changes.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any, Final

from local.dataverse import errors
from local.dataverse.catalog import Entity
from local.dataverse.messages import ApiRequest, ApiResponse, json_response
from local.dataverse.odata_query import Expand, Options, bind, integer_equalities, parse_filter
from local.dataverse.representation import (
    annotation_filter,
    check_select,
    etag,
    getter,
    properties,
    represent,
    resolver,
)
from local.dataverse.store import Row, Store

MAX_PAGE: Final = 5000


def encode_skiptoken(offset: int, anchor: int | None) -> str:
    raw = json.dumps({"o": offset, "a": anchor}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_skiptoken(text: str | None) -> tuple[int, int | None]:
    if not text:
        return 0, None
    try:
        raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        offset, anchor = int(raw["o"]), raw["a"]
        return offset, None if anchor is None else int(anchor)
    except (ValueError, KeyError, TypeError):
        raise errors.bad_request("The $skiptoken is not valid.") from None


def delta_token(seq: int) -> str:
    """Shaped like the service's (`919042!08/22/2017 08:10:44`); only the number matters."""
    return f"{seq}!{datetime.now(UTC).strftime('%m/%d/%Y %H:%M:%S')}"


def parse_delta_token(text: str) -> int:
    number = text.split("!", 1)[0].strip()
    if not number.isdigit():
        raise errors.bad_request(f"The delta token '{text}' is not valid.")
    return int(number)


def page_size(prefer: dict[str, str]) -> int | None:
    raw = prefer.get("odata.maxpagesize")
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise errors.bad_request(f"Invalid odata.maxpagesize preference '{raw}'.")
    return min(int(raw), MAX_PAGE)


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    return (1, value.casefold() if isinstance(value, str) else value)


def fragment(entity: Entity, options: Options) -> str:
    """The `@odata.context` part after `$metadata#`: `salesorders(name,order_details(...))`."""
    parts = list(options.select or [])
    for item in options.expand:
        parts.append(f"{item.name}({_inner(item.options)})")
    return entity.entity_set + (f"({','.join(parts)})" if parts else "")


def _inner(options: Options) -> str:
    parts = list(options.select or [])
    parts += [f"{e.name}({_inner(e.options)})" for e in options.expand]
    return ",".join(parts)


class Reader:
    """Answers GETs for one request."""

    def __init__(self, store: Store, request: ApiRequest) -> None:
        self.store = store
        self.request = request
        self.annotate = annotation_filter(request.prefer.get("odata.include-annotations"))

    # --- shaping --------------------------------------------------------------------------

    def name_of(self, table: str, record_id: str) -> str | None:
        entity = self.store.catalog.get(table)
        if entity is None:
            return None
        row = self.store.fetch(entity, record_id)
        return None if row is None else row.get(entity.primary_name)

    def validate(self, entity: Entity, options: Options) -> None:
        check_select(entity, options.select)
        for item in options.expand:
            target = self._expand_target(entity, item)
            self.validate(target, item.options)

    def _expand_target(self, entity: Entity, item: Expand) -> Entity:
        attribute = entity.navigation(item.name)
        if attribute is not None:
            table = next(t for t, nav in attribute.navigation.items() if nav == item.name)
            return self._entity(table, item.name)
        collection = entity.collections.get(item.name)
        if collection is not None:
            return self._entity(collection.child, item.name)
        raise errors.unknown_property(item.name, entity.logical_name)

    def _entity(self, table: str, name: str) -> Entity:
        entity = self.store.catalog.get(table)
        if entity is None:
            raise errors.no_segment(name)
        return entity

    def shape(self, entity: Entity, row: Row, options: Options) -> dict[str, Any]:
        select = check_select(entity, options.select)
        body = represent(entity, row, select, annotate=self.annotate, name_of=self.name_of)
        for item in options.expand:
            body[item.name] = self._expand(entity, row, item)
        return body

    def _expand(self, entity: Entity, row: Row, item: Expand) -> Any:
        target = self._expand_target(entity, item)
        attribute = entity.navigation(item.name)
        if attribute is not None:
            record_id = row.get(attribute.logical_name)
            table = row.get(attribute.logical_name + "__target") or attribute.targets[0]
            if record_id is None or table != target.logical_name:
                return None
            related = self.store.fetch(target, record_id)
            return None if related is None else self.shape(target, related, item.options)
        collection = entity.collections[item.name]
        rows = self.matching(target, item.options, {collection.attribute: row[entity.primary_id]})
        if item.options.top is not None:
            rows = rows[: item.options.top]
        return [self.shape(target, r, item.options) for r in rows]

    def matching(self, entity: Entity, options: Options, where: Row | None = None) -> list[Row]:
        get = getter(entity)
        if options.filter:
            node = parse_filter(options.filter)
            predicate = bind(node, resolver(entity), get, options.filter)
            # Rows are narrowed in SQL by the filter's integer equalities (an order id), so a
            # lookup does not read the whole table; the predicate still decides.
            known = properties(entity)
            narrow = integer_equalities(node, lambda n: known[n].kind if n in known else None)
            where = {**{known[n].logical_name: v for n, v in narrow.items()}, **(where or {})}
            rows = [r for r in self.store.rows(entity, where) if predicate(r) is True]
        else:
            rows = self.store.rows(entity, where)
        if options.orderby:
            resolve = resolver(entity)
            for name, _ in options.orderby:
                resolve(name)
            for name, descending in reversed(options.orderby):
                rows.sort(key=lambda r, n=name: _sort_key(get(r, n)), reverse=descending)  # type: ignore[misc]
        return rows

    # --- answers ----------------------------------------------------------------------------

    def single(self, entity: Entity, row: Row, options: Options) -> ApiResponse:
        self.validate(entity, options)
        tag = etag(int(row["versionnumber"]))
        conditional = self.request.header("if-none-match")
        if (
            conditional == tag
            and not options.expand
            and "odata.include-annotations" not in self.request.prefer
        ):
            return ApiResponse(304, [("OData-Version", "4.0")])
        context = f"{self.request.base_url}$metadata#{fragment(entity, options)}/$entity"
        body = {"@odata.context": context, **self.shape(entity, row, options)}
        return json_response(200, body, [("ETag", tag)])

    def collection(
        self, entity: Entity, options: Options, path: str, where: Row | None = None
    ) -> ApiResponse:
        self.validate(entity, options)
        prefer = self.request.prefer
        tracking = "odata.track-changes" in prefer or options.deltatoken is not None
        if tracking:
            for name, used in (
                ("$filter", options.filter is not None),
                ("$orderby", bool(options.orderby)),
                ("$expand", bool(options.expand)),
                ("$top", options.top is not None),
            ):
                if used:
                    raise errors.bad_request(
                        f'The "{name}" query parameter isn\'t supported when Change Tracking is '
                        f"enabled."
                    )
        if options.deltatoken is not None:
            return self._delta(entity, options, path)
        offset, anchor = decode_skiptoken(options.skiptoken)
        tracking = tracking or anchor is not None  # a tracked query's later pages
        if tracking and anchor is None:
            anchor = self.store.last_change()
        rows = self.matching(entity, options, where)
        size = page_size(prefer)
        applied = [f"odata.maxpagesize={size}"] if size else []
        if size is None and options.top is not None:
            page, more, limit = rows[: options.top], False, options.top
        else:
            limit = size or MAX_PAGE
            page, more = rows[offset : offset + limit], offset + limit < len(rows)
        body: dict[str, Any] = {
            "@odata.context": f"{self.request.base_url}$metadata#{fragment(entity, options)}"
        }
        if options.count:
            body["@odata.count"] = min(len(rows), MAX_PAGE)
            if len(rows) > MAX_PAGE:
                body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] = True
        body["value"] = [self.shape(entity, r, options) for r in page]
        if more:
            body["@odata.nextLink"] = self._link(
                path, "$skiptoken", encode_skiptoken(offset + limit, anchor)
            )
        elif tracking:
            assert anchor is not None
            body["@odata.deltaLink"] = self._link(path, "$deltatoken", delta_token(anchor))
        if tracking:
            applied.append("odata.track-changes")
        headers = [("Preference-Applied", ",".join(applied))] if applied else []
        return json_response(200, body, headers)

    def count(self, entity: Entity, options: Options, where: Row | None = None) -> ApiResponse:
        if options.deltatoken is not None:
            start = parse_delta_token(options.deltatoken)
            number = len(self.store.changed_ids(entity, start, self.store.last_change()))
        else:
            number = len(self.matching(entity, options, where))
        return ApiResponse(
            200,
            [("Content-Type", "text/plain"), ("OData-Version", "4.0")],
            str(min(number, MAX_PAGE)).encode(),
        )

    def _delta(self, entity: Entity, options: Options, path: str) -> ApiResponse:
        start = parse_delta_token(options.deltatoken or "")
        offset, upto = decode_skiptoken(options.skiptoken)
        if upto is None:
            upto = self.store.last_change()
        changed: list[Row] = []
        deleted: list[str] = []
        for record_id, _ in self.store.changed_ids(entity, start, upto):
            row = self.store.fetch(entity, record_id)
            if row is None:
                deleted.append(record_id)
            else:
                changed.append(row)
        entries: list[Row | str] = [*changed, *deleted]
        size = page_size(self.request.prefer) or MAX_PAGE
        page, more = entries[offset : offset + size], offset + size < len(entries)
        value: list[dict[str, Any]] = []
        for entry in page:
            if isinstance(entry, str):
                value.append(
                    {
                        "@odata.context": f"{self.request.base_url}$metadata#"
                        f"{entity.entity_set}/$deletedEntity",
                        "id": entry,
                        "reason": "deleted",
                    }
                )
            else:
                value.append(self.shape(entity, entry, options))
        body: dict[str, Any] = {
            "@odata.context": f"{self.request.base_url}$metadata#{fragment(entity, options)}/$delta"
        }
        if more:
            body["@odata.nextLink"] = self._link(
                path, "$skiptoken", encode_skiptoken(offset + size, upto)
            )
        else:
            body["@odata.deltaLink"] = self._link(path, "$deltatoken", delta_token(upto))
        body["value"] = value
        return json_response(200, body)

    def _link(self, path: str, name: str, token: str) -> str:
        """The request's own URL with `name` (skiptoken or deltatoken) set to `token`."""
        pairs = [
            (k, v)
            for k, v in self.request.query
            if k not in ("$skiptoken", "$deltatoken")
            or (name == "$skiptoken" and k == "$deltatoken")
        ]
        return self.request.url(path, [*pairs, (name, token)])
