"""OData system query options as the Web API supports them (webapi/query/*).

`$filter`: eq ne gt ge lt le, and or not, parentheses, contains/startswith/endswith, literals
(single-quoted strings with `''`, numbers, true/false, null, bare GUIDs and date-times), and the
Dataverse query functions `Microsoft.Dynamics.CRM.In` / `NotIn` with named parameters
(`In(PropertyName='productnumber',PropertyValues=['A','B'])`; webapi/query/filter-rows.md,
"Dataverse query functions"; the values are strings whatever the column's type, so `'3'` matches
a whole number 3). Other query functions are refused with a 400 naming them.
Comparisons follow SQL's three-valued logic, as Dataverse's do: a comparison with a null column
is unknown (neither true nor false), so `ne 'x'` does not match nulls; `eq null` finds them.
Strings compare case-insensitively.

`$select`, `$orderby` (asc/desc, nulls first ascending), `$top`, `$count`, `$expand` with
nested `($select=...;$filter=...;$orderby=...;$top=n)`. `$skip` is refused: Dataverse pages
with `Prefer: odata.maxpagesize` and `@odata.nextLink` only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local.dataverse import errors, values

# --- $filter ------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<dstring>"(?:[^"\\]|\\.)*")
  | (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDfFlL]?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_./]*)
  | (?P<punct>[(),\[\]=])
    """,
    re.VERBOSE,
)
COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
FUNCTIONS = ("contains", "startswith", "endswith")
QUERY_FUNCTION_NAMESPACE = "microsoft.dynamics.crm."
QUERY_FUNCTIONS = {"in": "In", "notin": "NotIn"}


@dataclass(frozen=True, slots=True)
class Literal:
    kind: str  # string number boolean null guid datetime
    value: Any


@dataclass(frozen=True, slots=True)
class Prop:
    name: str


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Prop | Literal
    right: Prop | Literal


@dataclass(frozen=True, slots=True)
class Func:
    name: str
    prop: Prop
    arg: Literal


@dataclass(frozen=True, slots=True)
class QueryFunction:
    """`Microsoft.Dynamics.CRM.In` / `NotIn`: the property and the values it is compared with."""

    name: str  # In, NotIn
    prop: Prop
    values: tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # and / or
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


Node = Compare | Func | QueryFunction | BoolOp | Not


def _syntax(text: str, detail: str = "") -> errors.DataverseError:
    return errors.bad_request(f"Syntax error in $filter '{text}'{': ' + detail if detail else ''}.")


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise _syntax(text, f"unexpected character at position {position}")
        position = match.end()
        kind = match.lastgroup
        assert kind is not None
        if kind != "ws":
            tokens.append((kind, match.group()))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise _syntax(self.text, "unexpected end")
        self.i += 1
        return token

    def expect(self, value: str) -> None:
        token = self.take()
        if token[1] != value:
            raise _syntax(self.text, f"expected '{value}'")

    def word(self, value: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "name" and token[1].lower() == value

    def parse(self) -> Node:
        node = self.or_expr()
        if self.peek() is not None:
            raise _syntax(self.text, f"unexpected '{self.peek()[1]}'")  # type: ignore[index]
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.word("or"):
            self.take()
            node = BoolOp("or", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.unary()
        while self.word("and"):
            self.take()
            node = BoolOp("and", node, self.unary())
        return node

    def unary(self) -> Node:
        if self.word("not"):
            self.take()
            return Not(self.unary())
        token = self.peek()
        if token is not None and token[1] == "(":
            self.take()
            node = self.or_expr()
            self.expect(")")
            return node
        if token is not None and token[0] == "name" and token[1].lower() in FUNCTIONS:
            return self.function()
        if (
            token is not None
            and token[0] == "name"
            and token[1].lower().startswith(QUERY_FUNCTION_NAMESPACE)
        ):
            return self.query_function()
        left = self.operand()
        op = self.take()
        if op[0] != "name" or op[1].lower() not in COMPARISONS:
            raise _syntax(self.text, f"expected a comparison operator, found '{op[1]}'")
        return Compare(op[1].lower(), left, self.operand())

    def function(self) -> Func:
        name = self.take()[1].lower()
        self.expect("(")
        prop = self.operand()
        self.expect(",")
        arg = self.operand()
        self.expect(")")
        if not isinstance(prop, Prop) or not isinstance(arg, Literal) or arg.kind != "string":
            raise _syntax(self.text, f"{name} takes a property and a string")
        return Func(name, prop, arg)

    def query_function(self) -> QueryFunction:
        full = self.take()[1]
        name = QUERY_FUNCTIONS.get(full[len(QUERY_FUNCTION_NAMESPACE) :].lower())
        if name is None:
            raise errors.bad_request(
                f"The query function '{full}' is not supported by this Web API stand-in "
                f"(supported: {', '.join(QUERY_FUNCTIONS.values())})."
            )
        self.expect("(")
        parameters: dict[str, Literal | tuple[Literal, ...]] = {}
        while True:
            kind, parameter = self.take()
            if kind != "name":
                raise _syntax(self.text, f"expected a parameter name in {name}")
            self.expect("=")
            parameters[parameter.lower()] = self.parameter_value()
            closing = self.take()[1]
            if closing == ")":
                break
            if closing != ",":
                raise _syntax(self.text, f"expected ',' or ')' in {name}")
        prop = parameters.get("propertyname")
        values = parameters.get("propertyvalues")
        if not isinstance(prop, Literal) or prop.kind != "string" or not isinstance(values, tuple):
            raise errors.bad_request(
                f"{name} needs PropertyName='<column>' and PropertyValues=[...] in $filter "
                f"'{self.text}'."
            )
        return QueryFunction(name, Prop(str(prop.value)), values)

    def parameter_value(self) -> Literal | tuple[Literal, ...]:
        token = self.peek()
        if token is None or token[1] != "[":
            value = self.operand()
            if not isinstance(value, Literal):
                raise _syntax(self.text, "a query function parameter must be a literal")
            return value
        self.take()
        items: list[Literal] = []
        while True:
            kind, text = self.take()
            if text == "]" and not items:
                break
            if kind == "dstring":
                items.append(Literal("string", json.loads(text)))
            else:
                self.i -= 1
                item = self.operand()
                if not isinstance(item, Literal):
                    raise _syntax(self.text, "PropertyValues holds literals only")
                items.append(item)
            closing = self.take()[1]
            if closing == "]":
                break
            if closing != ",":
                raise _syntax(self.text, "expected ',' or ']' in PropertyValues")
        return tuple(items)

    def operand(self) -> Prop | Literal:
        kind, text = self.take()
        if kind == "string":
            return Literal("string", text[1:-1].replace("''", "'"))
        if kind == "number":
            number = text.rstrip("mMdDfFlL")
            return Literal("number", float(number) if re.search(r"[.eE]", number) else int(number))
        if kind == "guid":
            return Literal("guid", text.lower())
        if kind == "datetime":
            return Literal("datetime", text)
        if kind == "name":
            lowered = text.lower()
            if lowered in ("true", "false"):
                return Literal("boolean", lowered == "true")
            if lowered == "null":
                return Literal("null", None)
            return Prop(text)
        raise _syntax(self.text, f"unexpected '{text}'")


def parse_filter(text: str) -> Node:
    return _Parser(text).parse()


# A property's type for binding: the attribute kind (values.EDM_TYPES keys) or "any".
Resolver = Callable[[str], str]
Getter = Callable[[dict[str, Any], str], Any]
Predicate = Callable[[dict[str, Any]], bool | None]

_LITERAL_FITS = {
    "string": {"string", "memo"},
    "number": {"integer", "bigint", "decimal", "money"},
    "boolean": {"boolean"},
    "guid": {"uniqueidentifier", "lookup"},
    "datetime": {"datetime"},
}


def _coerce(literal: Literal, kind: str, text: str) -> Any:
    """The literal in the JSON form of a property of `kind`; 400 if the types don't mix."""
    if literal.kind == "null" or kind == "any":
        return literal.value
    if kind not in _LITERAL_FITS.get(literal.kind, set()):
        raise errors.bad_request(
            f"A binary operator with incompatible types was detected. Found operand types "
            f"'{values.EDM_TYPES.get(kind, kind)}' and '{_edm(literal)}' in $filter '{text}'."
        )
    if literal.kind == "datetime":
        try:
            return values.parse_datetime(literal.value)
        except ValueError:
            raise errors.bad_request(f"Invalid date-time '{literal.value}' in $filter.") from None
    return literal.value


def _edm(literal: Literal) -> str:
    return {
        "string": "Edm.String",
        "number": "Edm.Decimal",
        "boolean": "Edm.Boolean",
        "guid": "Edm.Guid",
        "datetime": "Edm.DateTimeOffset",
    }.get(literal.kind, "null")


def _norm(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _compare(op: str, left: Any, right: Any) -> bool | None:
    if left is None or right is None:
        return None
    a, b = _norm(left), _norm(right)
    try:
        if op == "eq":
            return bool(a == b)
        if op == "ne":
            return bool(a != b)
        if op == "gt":
            return bool(a > b)
        if op == "ge":
            return bool(a >= b)
        if op == "lt":
            return bool(a < b)
        return bool(a <= b)
    except TypeError:
        return None


def bind(node: Node, resolve: Resolver, get: Getter, text: str) -> Predicate:
    """A predicate over rows for `node`; `resolve` checks names (raising 400 for unknown ones)."""
    if isinstance(node, BoolOp):
        left = bind(node.left, resolve, get, text)
        right = bind(node.right, resolve, get, text)
        if node.op == "and":

            def both(row: dict[str, Any]) -> bool | None:
                a, b = left(row), right(row)
                if a is False or b is False:
                    return False
                return None if a is None or b is None else True

            return both

        def either(row: dict[str, Any]) -> bool | None:
            a, b = left(row), right(row)
            if a is True or b is True:
                return True
            return None if a is None or b is None else False

        return either
    if isinstance(node, Not):
        inner = bind(node.operand, resolve, get, text)

        def negate(row: dict[str, Any]) -> bool | None:
            result = inner(row)
            return None if result is None else not result

        return negate
    if isinstance(node, QueryFunction):
        return _membership(node, resolve, get)
    if isinstance(node, Func):
        name = node.prop.name
        kind = resolve(name)
        if kind not in ("string", "memo", "any"):
            raise errors.bad_request(f"The function '{node.name}' needs a string property: {name}.")
        needle = str(node.arg.value).casefold()
        function = node.name

        def call(row: dict[str, Any]) -> bool | None:
            value = get(row, name)
            if value is None:
                return None
            haystack = str(value).casefold()
            if function == "contains":
                return needle in haystack
            if function == "startswith":
                return haystack.startswith(needle)
            return haystack.endswith(needle)

        return call
    left_side, right_side = node.left, node.right
    if isinstance(left_side, Literal) and isinstance(right_side, Prop):
        flipped = {"gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}.get(node.op, node.op)
        return bind(Compare(flipped, right_side, left_side), resolve, get, text)
    if not isinstance(left_side, Prop):
        raise _syntax(text, "a comparison needs a property")
    prop = left_side.name
    kind = resolve(prop)
    op = node.op
    if isinstance(right_side, Prop):
        other = right_side.name
        resolve(other)
        return lambda row: _compare(op, get(row, prop), get(row, other))
    if right_side.kind == "null":
        if op not in ("eq", "ne"):
            raise _syntax(text, "null can only be compared with eq or ne")
        wanted = op == "eq"
        return lambda row: (get(row, prop) is None) == wanted
    constant = _coerce(right_side, kind, text)
    return lambda row: _compare(op, get(row, prop), constant)


def integer_equalities(node: Node, kinds: Callable[[str], str | None]) -> dict[str, int]:
    """`property eq <integer>` terms that every matching row must satisfy (those joined by
    `and` at the top), for integer properties: a store can narrow its rows by them before the
    predicate decides. Strings are left out: `eq` compares them case-insensitively (casefold)."""
    if isinstance(node, BoolOp):
        if node.op != "and":
            return {}
        left, right = integer_equalities(node.left, kinds), integer_equalities(node.right, kinds)
        both = {**left, **right}
        return {n: v for n, v in both.items() if left.get(n, v) == right.get(n, v)}
    if not isinstance(node, Compare) or node.op != "eq":
        return {}
    prop, literal = node.left, node.right
    if isinstance(prop, Literal) and isinstance(literal, Prop):
        prop, literal = literal, prop
    if not isinstance(prop, Prop) or not isinstance(literal, Literal):
        return {}
    value = literal.value
    if literal.kind != "number" or not isinstance(value, int) or isinstance(value, bool):
        return {}
    return {prop.name: value} if kinds(prop.name) in ("integer", "bigint") else {}


def _member_value(value: Any, kind: str) -> Any:
    """A PropertyValues item or a row value, in one comparable form for a column of `kind`."""
    if value is None:
        return None
    if kind in ("integer", "bigint", "decimal", "money"):
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    if kind == "boolean":
        return str(value).strip().lower() in ("true", "1")
    if kind == "datetime":
        try:
            return values.parse_datetime(str(value))
        except ValueError:
            return None
    return str(value).casefold()


def _membership(node: QueryFunction, resolve: Resolver, get: Getter) -> Predicate:
    name = node.prop.name
    kind = resolve(name)
    wanted = {_member_value(v.value, kind) for v in node.values if v.kind != "null"}
    inside = node.name == "In"

    def member(row: dict[str, Any]) -> bool | None:
        value = _member_value(get(row, name), kind)
        if value is None:
            return None
        return (value in wanted) == inside

    return member


# --- $select, $orderby, $expand -----------------------------------------------------------


@dataclass(slots=True)
class Options:
    """The system query options of one resource (or of one $expand item)."""

    select: list[str] | None = None
    filter: str | None = None
    orderby: list[tuple[str, bool]] = field(default_factory=list)  # (name, descending)
    top: int | None = None
    count: bool = False
    expand: list[Expand] = field(default_factory=list)
    skiptoken: str | None = None
    deltatoken: str | None = None


@dataclass(slots=True)
class Expand:
    name: str
    options: Options


_SUPPORTED = {
    "$select",
    "$filter",
    "$orderby",
    "$top",
    "$count",
    "$expand",
    "$skiptoken",
    "$deltatoken",
}


def split_top_level(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    quote = ""
    for char in text:
        if char in "'\"" and quote in ("", char):
            quote = "" if quote else char
        elif not quote and char == "(":
            depth += 1
        elif not quote and char == ")":
            depth -= 1
        if char == separator and depth == 0 and not quote:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_options(pairs: list[tuple[str, str]]) -> Options:
    options = Options()
    for name, value in pairs:
        key = name.strip()
        if not key.startswith("$"):
            if key.startswith("@"):
                continue  # parameter aliases
            continue
        if key == "$skip":
            raise errors.bad_request(
                "The query parameter $skip is not supported. Use Prefer: odata.maxpagesize and "
                "@odata.nextLink to page results."
            )
        if key not in _SUPPORTED:
            raise errors.bad_request(f"The query parameter '{key}' is not supported.")
        if key == "$select":
            options.select = [s.strip() for s in value.split(",") if s.strip()]
        elif key == "$filter":
            options.filter = value
        elif key == "$orderby":
            options.orderby = parse_orderby(value)
        elif key == "$top":
            if not value.strip().isdigit():
                raise errors.bad_request(f"Invalid value for $top: '{value}'.")
            options.top = int(value)
        elif key == "$count":
            if value.strip().lower() not in ("true", "false"):
                raise errors.bad_request(f"Invalid value for $count: '{value}'.")
            options.count = value.strip().lower() == "true"
        elif key == "$expand":
            options.expand = parse_expand(value)
        elif key == "$skiptoken":
            options.skiptoken = value
        elif key == "$deltatoken":
            options.deltatoken = value
    return options


def parse_orderby(text: str) -> list[tuple[str, bool]]:
    order: list[tuple[str, bool]] = []
    for part in split_top_level(text, ","):
        words = part.split()
        if len(words) == 1 or (len(words) == 2 and words[1].lower() in ("asc", "desc")):
            order.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
        else:
            raise errors.bad_request(f"Invalid $orderby clause '{part}'.")
    return order


def parse_expand(text: str) -> list[Expand]:
    items: list[Expand] = []
    for part in split_top_level(text, ","):
        name, paren, rest = part.partition("(")
        nested: list[tuple[str, str]] = []
        if paren:
            if not rest.endswith(")"):
                raise errors.bad_request(f"Invalid $expand clause '{part}'.")
            for option in split_top_level(rest[:-1], ";"):
                key, equals, value = option.partition("=")
                if not equals:
                    raise errors.bad_request(f"Invalid $expand option '{option}'.")
                nested.append((key.strip(), value))
        items.append(Expand(name.strip(), parse_options(nested)))
    return items


def parse_prefer(headers: list[str]) -> dict[str, str]:
    """`Prefer` header values as {preference: value} (value "" when it has none)."""
    preferences: dict[str, str] = {}
    for header in headers:
        for item in split_top_level(header, ","):
            name, _, value = item.partition("=")
            preferences[name.strip().lower()] = value.strip().strip('"')
    return preferences
