"""Resource paths and keys: `salesorders(<guid>)`, `salesorders(salesorderid=<guid>)`,
`salesorders(bciom_storehash='abc',bciom_bcorderid=42)` (use-alternate-key-reference-record).

String values are single-quoted with `''` for a quote; numbers, GUIDs, booleans and date-times
are bare. A lookup column in a key is named by its lookup property (`_<name>_value`). A key must
match a defined alternate key exactly (names and number) and that key's index must be Active;
otherwise the documented "The key in the request URI is not valid..." 400 is returned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from local.dataverse import catalog as cat
from local.dataverse import errors, values
from local.dataverse.catalog import Entity

API_ROOT: Final = "/api/data/v9.2/"
# Characters with which GET/PATCH by key "don't work" (define-alternate-keys-entity).
UNSUPPORTED_KEY_CHARACTERS: Final = "/<>*%&:\\?+"
_GUID = re.compile(
    r"^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$"
)


class Bare(str):
    """An unquoted key literal (number, GUID, boolean, date-time), kept as its text."""


@dataclass(frozen=True, slots=True)
class Segment:
    name: str
    key: str | None  # the text inside the parentheses, if any


@dataclass(frozen=True, slots=True)
class KeyRef:
    """A parsed key: the primary id, or alternate-key column values (stored form)."""

    entity: Entity
    record_id: str | None = None
    columns: tuple[tuple[str, Any], ...] = ()
    text: str = ""  # as written in the URL, for OData-EntityId

    @property
    def alternate(self) -> bool:
        return self.record_id is None


def split_path(path: str) -> list[Segment]:
    """`a(x='1/2')/b` → segments, splitting on `/` outside quotes and parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    quoted = False
    for char in path:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == "/" and depth == 0 and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    segments = []
    for part in parts:
        if not part:
            continue
        name, paren, rest = part.partition("(")
        if paren and not rest.endswith(")"):
            raise errors.bad_request(f"Bad Request - Error in query syntax: '{part}'.")
        segments.append(Segment(name, rest[:-1] if paren else None))
    return segments


def parse_predicate(text: str) -> list[tuple[str | None, Any]]:
    """`'a',b=2` style key predicates into (name or None, value) pairs."""
    pairs: list[tuple[str | None, Any]] = []
    i = 0
    n = len(text)
    while i < n:
        name: str | None = None
        match = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=", text[i:])
        if match:
            name = match.group(1)
            i += match.end()
        while i < n and text[i] == " ":
            i += 1
        value: Any
        if i < n and text[i] == "'":
            i += 1
            chars: list[str] = []
            while True:
                if i >= n:
                    raise errors.bad_request(f"Unterminated string literal in key '{text}'.")
                if text[i] == "'":
                    if i + 1 < n and text[i + 1] == "'":
                        chars.append("'")
                        i += 2
                        continue
                    i += 1
                    break
                chars.append(text[i])
                i += 1
            value = "".join(chars)
        else:
            end = text.find(",", i)
            end = n if end < 0 else end
            value = Bare(text[i:end].strip())
            i = end
        pairs.append((name, value))
        while i < n and text[i] == " ":
            i += 1
        if i < n:
            if text[i] != ",":
                raise errors.bad_request(f"Bad Request - Error in query syntax: '({text})'.")
            i += 1
    return pairs


def _key_value(entity: Entity, column: str, raw: Any) -> Any:
    attribute = entity.attributes[column]
    if isinstance(raw, Bare):
        text = str(raw)
        if text == "null":
            return None
        if attribute.kind in ("string", "memo"):
            raise errors.invalid_key(entity.logical_name)
        value: Any = text
        if attribute.kind == "boolean":
            value = {"true": True, "false": False}.get(text, text)
        return values.to_storage(attribute, value, entity.logical_name)
    if attribute.kind not in ("string", "memo"):
        raise errors.invalid_key(entity.logical_name)
    if any(c in UNSUPPORTED_KEY_CHARACTERS for c in raw):
        raise errors.bad_request(
            f"The key value '{raw}' contains a character that cannot be used in a key in a URL "
            f"({UNSUPPORTED_KEY_CHARACTERS})."
        )
    return values.to_storage(attribute, raw, entity.logical_name)


def resolve(entity: Entity, text: str) -> KeyRef:
    """A key predicate for `entity` as a KeyRef; 400 if it is not a usable key."""
    pairs = parse_predicate(text)
    if len(pairs) == 1:
        name, raw = pairs[0]
        if name in (None, entity.primary_id):
            if not isinstance(raw, Bare) or not _GUID.match(raw):
                raise errors.invalid_key(entity.logical_name)
            return KeyRef(entity, record_id=values.parse_guid(raw), text=text)
    if any(name is None for name, _ in pairs):
        raise errors.invalid_key(entity.logical_name)
    named: dict[str, Any] = {}
    for name, raw in pairs:
        assert name is not None
        lookup = entity.by_lookup_property(name)
        named[lookup.logical_name if lookup else name] = raw
    for key in entity.keys.values():
        if set(key.attributes) == set(named):
            if key.status != cat.STATUS_ACTIVE:
                raise errors.invalid_key(entity.logical_name)
            columns = tuple((c, _key_value(entity, c, named[c])) for c in key.attributes)
            return KeyRef(entity, columns=columns, text=text)
    raise errors.invalid_key(entity.logical_name)


def service_path(url: str) -> str:
    """An absolute, root-relative or service-relative URL as a path below /api/data/v9.2/."""
    parts = urlsplit(url)
    path = unquote(parts.path) if parts.scheme else unquote(url.split("?", 1)[0])
    query = parts.query if parts.scheme else url.split("?", 1)[1] if "?" in url else ""
    marker = path.find(API_ROOT)
    path = path[marker + len(API_ROOT) :] if marker >= 0 else path.lstrip("/")
    return path + (f"?{query}" if query else "")
