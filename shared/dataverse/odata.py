"""OData text for the Dataverse Web API: key segments, filter literals, query strings, binds, JSON.

Hand-written because there is no maintained Python OData v4 URL builder, and the rules are few
but exact (use-alternate-key-reference-record.md, define-alternate-keys-entity.md,
webapi/query/filter-rows.md):

* A row is addressed as `/set(<guid>)` by primary id, or `/set(col='text',col2=5)` by an
  alternate key: text values single-quoted with `'` doubled, numbers and GUIDs bare, date-times
  as unquoted ISO 8601 UTC literals.
* A key value containing any of `/ < > * % & : \\ ? +` cannot be addressed by key at all (GET
  and PATCH by key "do not work"); we refuse such values with `KeyValueError` before anything
  is sent, rather than let the server fail in an undocumented way. Whoever builds a key value
  must avoid or replace those characters.
* What remains is percent-encoded for the URL (spaces, `#`, non-ASCII), so the same text is a
  valid URL path segment and a valid `@odata.bind` reference.
* Query strings are built here rather than by httpx's `params`, which would encode the `$` of
  `$select` and turn spaces into `+`; values keep `$ ' ( ) , = : ; @ / *` literal and encode the
  rest (`&`, `#`, `+`, `%`, spaces), as filter-rows.md asks for special characters.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final
from urllib.parse import quote, unquote, urlsplit

from shared.dataverse.models import Bind, EntityRef, KeyScalar, RowKey

#: Characters that make a row unaddressable by alternate key (define-alternate-keys-entity.md).
FORBIDDEN_KEY_CHARACTERS: Final = frozenset("/<>*%&:\\?+")

_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KEY_SAFE: Final = "'(),=;!$@~"
_QUERY_SAFE: Final = "$'(),=:;@/*!~"
_GUID: Final = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_ENTITY_ID: Final = re.compile(r"/?(?P<set>[A-Za-z_][A-Za-z0-9_]*)\((?P<key>.*)\)$")


class KeyValueError(ValueError):
    """A key value that Dataverse cannot address, or a malformed key; raised before sending."""


def check_name(name: str, what: str = "name") -> str:
    """Entity sets, columns and navigation properties are OData identifiers; anything else would
    change the meaning of the URL or body it is pasted into."""
    if not _NAME.match(name):
        raise KeyValueError(f"{what} {name!r} is not an OData identifier")
    return name


def key_literal(column: str, value: KeyScalar) -> str:
    """One key value as it appears in a URL: `'text'`, `5`, `12.50`, a bare GUID or a date-time."""
    if isinstance(value, bool):
        raise KeyValueError(f"{column}: booleans cannot be alternate-key values")
    if isinstance(value, str):
        if not value:
            raise KeyValueError(f"{column}: an empty string cannot address a row")
        bad = sorted(FORBIDDEN_KEY_CHARACTERS.intersection(value))
        if bad:
            raise KeyValueError(
                f"{column}: the key value contains {' '.join(bad)}, which Dataverse cannot "
                "address by key (/ < > * % & : \\ ? + are not allowed in key values)"
            )
        return quote("'" + value.replace("'", "''") + "'", safe=_KEY_SAFE)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise KeyValueError(f"{column}: {value} is not a finite number")
        return format(value, "f")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return _datetime_literal(column, value)
    raise KeyValueError(
        f"{column}: {type(value).__name__} is not a key type (use str, int, Decimal, UUID or "
        "an aware datetime)"
    )


def key_segment(key: RowKey) -> str:
    """`(<guid>)` for a primary id, `(col='v',col2=5)` for an alternate key (columns in the
    order given)."""
    if isinstance(key, uuid.UUID):
        return f"({key})"
    if not key:
        raise KeyValueError("an alternate key needs at least one column")
    parts = [f"{check_name(c, 'key column')}={key_literal(c, v)}" for c, v in key.items()]
    return "(" + ",".join(parts) + ")"


def entity_path(entity_set: str, key: RowKey) -> str:
    """`salesorders(bciom_storehash='abc',bciom_bcorderid=100)`, relative to the service root."""
    return check_name(entity_set, "entity set") + key_segment(key)


def bind_reference(entity_set: str, key: RowKey) -> str:
    """The value of an `@odata.bind` annotation: `/contacts(...)` (create-entity-web-api.md)."""
    return "/" + entity_path(entity_set, key)


def filter_literal(value: object) -> str:
    """A value in a `$filter` expression: strings quoted with `'` doubled, `null`, `true`/`false`,
    numbers and GUIDs bare, date-times as UTC ISO 8601 (filter-rows.md)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a finite number")
        return format(value, "f")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a finite number")
        return repr(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return _datetime_literal("filter", value)
    if isinstance(value, date):
        return value.isoformat()
    raise ValueError(f"{type(value).__name__} has no OData literal")


def eq(column: str, value: object) -> str:
    """`column eq <literal>`."""
    return f"{check_name(column, 'column')} eq {filter_literal(value)}"


def all_of(*conditions: str) -> str:
    """Conditions joined with `and`, each parenthesised."""
    return " and ".join(f"({c})" for c in conditions)


def query_string(options: Mapping[str, object]) -> str:
    """`$select=a,b&$filter=...` from system query options; None values are left out, sequences
    are comma-joined, booleans become `true`/`false`."""
    pieces: list[str] = []
    for name, value in options.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str):
            text = value
        elif isinstance(value, Iterable):
            text = ",".join(str(v) for v in value)
        else:
            text = str(value)
        pieces.append(f"{name}={quote(text, safe=_QUERY_SAFE)}")
    return "&".join(pieces)


def with_query(path: str, options: Mapping[str, object]) -> str:
    query = query_string(options)
    return f"{path}?{query}" if query else path


def row_body(row: Mapping[str, Any]) -> dict[str, Any]:
    """A request body from column values: `Bind` values become `<nav>@odata.bind` references,
    everything else is copied (None clears a column)."""
    body: dict[str, Any] = {}
    for column, value in row.items():
        if isinstance(value, Bind):
            nav = check_name(value.navigation or column, "navigation property")
            body[f"{nav}@odata.bind"] = bind_reference(value.entity_set, value.key)
        else:
            body[column] = value
    return body


def json_bytes(body: object) -> bytes:
    """Compact UTF-8 JSON; Decimal as a number, UUID as text, date-times in UTC ISO 8601."""
    return json.dumps(
        body, separators=(",", ":"), ensure_ascii=False, default=_json_default
    ).encode("utf-8")


def parse_entity_id(url: str) -> EntityRef | None:
    """The row an `OData-EntityId` (or `Location`) header names, or None if it names none."""
    path = unquote(urlsplit(url.strip()).path)
    match = _ENTITY_ID.search(path)
    if match is None:
        return None
    key_text = match.group("key")
    candidate = key_text.split("=", 1)[1] if "=" in key_text and "," not in key_text else key_text
    row_id = uuid.UUID(candidate) if _GUID.match(candidate) else None
    return EntityRef(match.group("set"), key_text, row_id)


def select_list(columns: Sequence[str]) -> str:
    return ",".join(check_name(c, "column") for c in columns)


def _datetime_literal(column: str, value: datetime) -> str:
    if value.tzinfo is None:
        raise KeyValueError(f"{column}: date-times must be timezone-aware")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a finite number")
        return float(value) if value != value.to_integral_value() else int(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return _datetime_literal("value", value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Bind):
        raise TypeError("Bind values belong in a row passed through row_body()")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
