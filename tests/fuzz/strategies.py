"""Hypothesis strategies for webhook requests: valid BigCommerce callbacks, and ways to spoil one.

Each strategy yields a `Case`: what to send and the status the documented behaviour gives it.
Callback shapes follow ../shared/reference/bigcommerce.md §1.1-1.2; the store the host serves is
configured by the test module with the constants below.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from hypothesis import strategies as st
from standardwebhooks import Webhook

from shared.handlers.webhook_ingress import MAX_BODY_BYTES, MAX_NESTING
from shared.webhooks.events import MAX_ID, kind_of

STORE_HASH: Final = "fuzzstore1"
STORE_ID: Final = "1025646"
WEBHOOK_SECRET: Final = "fuzz-header-secret-0123456789"
CLIENT_SECRET: Final = "fuzz-client-secret-0123456789"
SECRET_HEADER: Final = "x-webhook-secret"
SIGNATURE_HEADERS: Final = ("webhook-id", "webhook-timestamp", "webhook-signature")
MISSING: Final = "<missing>"
PRODUCER_FORMAT: Final = re.compile(r"stores/[a-z0-9]{1,32}")


# -- authentication ---------------------------------------------------------------------------


def _sign(body: bytes, secret: str, msg_id: str, at: datetime) -> str:
    signer = Webhook(base64.b64encode(secret.encode()).decode())
    return signer.sign(msg_id, at, body.decode("utf-8", "replace"))


@dataclass(frozen=True)
class Auth:
    """How a request authenticates: correctly ("valid"), or spoiled in one way (`kind`)."""

    kind: str = "valid"
    value: str | int | None = None

    def headers(self, body: bytes, now: datetime) -> dict[str, str]:
        msg_id, at, secret, signed = "msg_fuzz", now, CLIENT_SECRET, body
        if self.kind == "expired-or-future":
            assert isinstance(self.value, int)
            at = now + timedelta(seconds=self.value)
        elif self.kind == "wrong-client-secret":
            secret = str(self.value)
        elif self.kind == "other-body":
            signed = body + b" "
        headers = {
            SECRET_HEADER: WEBHOOK_SECRET,
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": _sign(signed, secret, msg_id, at),
        }
        match self.kind:
            case "no-secret-header":
                del headers[SECRET_HEADER]
            case "wrong-secret-header":
                headers[SECRET_HEADER] = str(self.value)
            case "drop-signature-header":
                del headers[str(self.value)]
            case "bad-timestamp":
                headers["webhook-timestamp"] = str(self.value)
            case "bad-signature":
                headers["webhook-signature"] = str(self.value)
            case "other-webhook-id":
                headers["webhook-id"] = str(self.value)
        return headers


VALID: Final = Auth()
# Visible ASCII with inner spaces: what an HTTP client can put in a header value.
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80).map(
    str.strip
)
_TOLERANCE_PLUS = 6 * 60  # Standard Webhooks allows ±5 minutes; a minute clear of the edge


def _bad_timestamps() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(["", "now", "nan", "inf", "-inf", "1e400", "-1", "0", "0x10", "1_700"]),
        st.integers(min_value=-(10**30), max_value=10**30).map(str),
        header_text,
    ).filter(lambda t: not _near_now(t))


def _near_now(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return abs(value - datetime.now(UTC).timestamp()) < 2 * _TOLERANCE_PLUS


def _bad_signatures() -> st.SearchStrategy[str]:
    b64 = st.binary(min_size=0, max_size=40).map(lambda b: base64.b64encode(b).decode())
    return st.one_of(
        st.sampled_from(["", "v1", "v1,", ",", "v1,v1,", "v2,abc", "v1,!!!!", "v1,abc v1"]),
        b64.map(lambda s: f"v1,{s}"),
        st.lists(b64.map(lambda s: f"v1,{s}"), min_size=2, max_size=4).map(" ".join),
        header_text,
    )


def auth_failures() -> st.SearchStrategy[Auth]:
    """Every way the custom header or the signature can be wrong; each must be a 401."""
    return st.one_of(
        st.just(Auth("no-secret-header")),
        st.one_of(
            header_text,
            st.sampled_from(
                ["", WEBHOOK_SECRET.upper(), WEBHOOK_SECRET[:-1], WEBHOOK_SECRET + "0"]
            ),
        )
        .filter(lambda s: s != WEBHOOK_SECRET)
        .map(lambda s: Auth("wrong-secret-header", s)),
        st.sampled_from(SIGNATURE_HEADERS).map(lambda h: Auth("drop-signature-header", h)),
        st.one_of(
            st.integers(min_value=-2 * 86400, max_value=-_TOLERANCE_PLUS),
            st.integers(min_value=_TOLERANCE_PLUS, max_value=2 * 86400),
        ).map(lambda s: Auth("expired-or-future", s)),
        header_text.filter(lambda s: s not in ("", CLIENT_SECRET)).map(
            lambda s: Auth("wrong-client-secret", s)
        ),
        st.just(Auth("other-body")),
        _bad_timestamps().map(lambda t: Auth("bad-timestamp", t)),
        _bad_signatures().map(lambda s: Auth("bad-signature", s)),
        header_text.filter(lambda s: s != "msg_fuzz").map(lambda s: Auth("other-webhook-id", s)),
    )


# -- callbacks --------------------------------------------------------------------------------

ids = st.integers(min_value=1, max_value=MAX_ID)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
# BigCommerce adds fields over time; unknown ones are accepted and kept.
extras = st.dictionaries(st.from_regex(r"\Ax_[a-z]{1,8}\Z"), json_values, max_size=2)


@dataclass(frozen=True)
class Event:
    """A valid callback, the session it belongs to, and the typed fields it relies on."""

    payload: dict[str, Any]
    session: str
    typed: tuple[tuple[tuple[str, ...], str], ...]  # (path, kind) of fields the model checks


@st.composite
def _family(
    draw: st.DrawFn,
) -> tuple[str, dict[str, Any], str, tuple[tuple[tuple[str, ...], str], ...]]:
    family = draw(
        st.sampled_from(
            [
                "order",
                "status",
                "message",
                "refund",
                "transaction",
                "shipment",
                "channel",
                "customer",
                "address",
                "product",
                "sku",
                "hook",
                "app",
            ]
        )
    )
    a, b = draw(ids), draw(ids)
    match family:
        case "order":
            scope = "store/order/" + draw(st.sampled_from(["created", "updated", "archived"]))
            return (
                scope,
                {"type": "order", "id": a},
                f"order:{a}",
                (
                    (("data", "id"), "id"),
                    (("data", "type"), "literal:order"),
                ),
            )
        case "status":
            status = {
                "previous_status_id": draw(st.integers(0, 14)),
                "new_status_id": draw(st.integers(0, 14)),
            }
            return (
                "store/order/statusUpdated",
                {"type": "order", "id": a, "status": status},
                f"order:{a}",
                (
                    (("data", "id"), "id"),
                    (("data", "status"), "object"),
                    (("data", "status", "previous_status_id"), "count"),
                    (("data", "status", "new_status_id"), "count"),
                ),
            )
        case "message":
            data = {"type": "order", "id": a, "message": {"order_message_id": b}}
            return (
                "store/order/message/created",
                data,
                f"order:{a}",
                (
                    (("data", "id"), "id"),
                    (("data", "message", "order_message_id"), "id"),
                ),
            )
        case "refund":
            data = {"type": "order", "id": a, "refund": {"refund_id": b}}
            return (
                "store/order/refund/created",
                data,
                f"order:{a}",
                (
                    (("data", "refund"), "object"),
                    (("data", "refund", "refund_id"), "id"),
                ),
            )
        case "transaction":
            # Transaction callbacks carry their ids as strings.
            order_id = draw(st.sampled_from([a, str(a)]))
            data = {
                "type": "transaction",
                "order_id": order_id,
                "transaction_id": draw(st.one_of(st.text(max_size=12), ids)),
                "transaction_status": draw(st.sampled_from(["ok", "error", "pending"])),
                "transaction_type": draw(st.sampled_from(["purchase", "refund", "void"])),
            }
            action = draw(st.sampled_from(["created", "updated"]))
            return (
                f"store/order/transaction/{action}",
                data,
                f"order:{a}",
                (
                    (("data", "order_id"), "id"),
                    (("data", "type"), "optional-literal:transaction"),
                ),
            )
        case "shipment":
            scope = "store/shipment/" + draw(st.sampled_from(["created", "updated", "deleted"]))
            return (
                scope,
                {"type": "shipment", "id": a, "orderId": b},
                f"order:{b}",
                (
                    (("data", "id"), "id"),
                    (("data", "orderId"), "id"),
                    (("data", "type"), "literal:shipment"),
                ),
            )
        case "channel":
            action = draw(
                st.sampled_from(
                    [
                        "created",
                        "updated",
                        "archived",
                        "statusUpdated",
                        "message/created",
                        "refund/created",
                    ]
                )
            )
            channel = draw(st.integers(1, 10**6))
            return (
                f"store/channel/{channel}/order/{action}",
                {"order_id": a},
                f"order:{a}",
                ((("data", "order_id"), "id"),),
            )
        case "customer":
            scope = "store/customer/" + draw(st.sampled_from(["created", "updated", "deleted"]))
            return (
                scope,
                {"type": "customer", "id": a},
                f"customer:{a}",
                (
                    (("data", "id"), "id"),
                    (("data", "type"), "literal:customer"),
                ),
            )
        case "address":
            scope = "store/customer/address/" + draw(
                st.sampled_from(["created", "updated", "deleted"])
            )
            data = {"type": "customer", "id": a, "address": {"customer_id": b}}
            return (
                scope,
                data,
                f"customer:{b}",
                (
                    (("data", "address"), "object"),
                    (("data", "address", "customer_id"), "id"),
                ),
            )
        case "product" | "sku":
            inventory: dict[str, Any] = {
                "product_id": b,
                "method": draw(st.sampled_from(["absolute", "relative"])),
                "value": draw(st.integers(-1000, 1000)),
            }
            typed: tuple[tuple[tuple[str, ...], str], ...] = (
                (("data", "id"), "id"),
                (("data", "inventory"), "object"),
                (("data", "inventory", "product_id"), "id"),
                (("data", "inventory", "method"), "method"),
                (("data", "inventory", "value"), "int"),
            )
            typed += ((("data", "type"), f"literal:{family}"),)
            if family == "sku":
                inventory["variant_id"] = draw(ids)
                typed += ((("data", "inventory", "variant_id"), "optional-id"),)
            which = draw(st.sampled_from(["updated", "order/updated"]))
            data = {"type": family, "id": a, "inventory": inventory}
            return f"store/{family}/inventory/{which}", data, f"{family}:{a}", typed
        case "hook":
            data = {
                "type": "webhook",
                "id": a,
                "error_code": draw(st.sampled_from([90001, 90002, 90003])),
                "message": draw(st.text(max_size=40)),
            }
            return (
                "store/hook/deliveryException",
                data,
                "hooks",
                (
                    (("data", "id"), "id"),
                    (("data", "type"), "literal:webhook"),
                    (("data", "error_code"), "int"),
                ),
            )
        case _:
            return "store/app/uninstalled", {"type": "store"}, "store", ()


@st.composite
def events(draw: st.DrawFn) -> Event:
    """A valid callback of any scope family we subscribe to, with random ids and extra fields."""
    scope, data, session, typed = draw(_family())
    payload = {
        "scope": scope,
        "store_id": STORE_ID,
        "data": {**draw(extras), **data},
        "hash": draw(st.from_regex(r"\A[0-9a-f]{40}\Z")),
        "created_at": draw(st.integers(0, 2**33)),
        "producer": f"stores/{STORE_HASH}",
        **draw(extras),
    }
    envelope_typed = (
        (("scope",), "scope"),
        (("data",), "object"),
        (("created_at",), "created_at"),
        (("hash",), "hash"),
    )
    assert kind_of(scope) is not None
    return Event(payload, f"{STORE_HASH}:{session}", typed + envelope_typed)


def replaced(payload: dict[str, Any], path: tuple[str, ...], value: object) -> dict[str, Any]:
    changed = copy.deepcopy(payload)
    target = changed
    for key in path[:-1]:
        target = target[key]
    if value == MISSING:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return changed


# -- wrong values -----------------------------------------------------------------------------

_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.lists(_scalars, max_size=2),
    st.dictionaries(st.text(max_size=4), _scalars, max_size=2),
)
# Floats, whole or not: 2.0 is not an id either.
_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**40), 2**40).map(float),
)
_not_digits = st.text(max_size=12).filter(lambda s: not (s.isascii() and s.isdigit()))
_decorated_digits = ids.flatmap(
    lambda i: st.sampled_from([f" {i}", f"{i} ", f"+{i}", f"{i}.0", f"{i}e0", f"{i:_}", "\uff10"])
).filter(lambda s: not (s.isascii() and s.isdigit()))


def bad_values(kind: str) -> st.SearchStrategy[object]:
    """Values a field of this kind must refuse (MISSING removes a required field)."""
    required = st.just(MISSING)
    kind, _, literal = kind.partition(":")
    match kind:
        case "id":
            return st.one_of(
                required,
                _junk,
                _floats,
                _not_digits,
                _decorated_digits,
                st.integers(max_value=0),
                st.integers(min_value=MAX_ID + 1),
                st.integers(min_value=MAX_ID + 1, max_value=10**200).map(str),
            )
        case "optional-id":
            return st.one_of(
                st.booleans(),
                _floats,
                _not_digits,
                st.integers(max_value=0),
                st.integers(min_value=MAX_ID + 1),
            )
        case "count":
            return st.one_of(required, _junk, _floats, _not_digits, st.integers(max_value=-1))
        case "int":
            return st.one_of(required, _junk, _floats, _not_digits)
        case "literal":
            return st.one_of(required, _junk, st.text(max_size=10).filter(lambda s: s != literal))
        case "optional-literal":
            return st.one_of(
                st.booleans(), st.integers(), st.text(max_size=10).filter(lambda s: s != literal)
            )
        case "method":
            return st.one_of(
                required,
                _junk,
                st.text(max_size=10).filter(lambda s: s not in ("absolute", "relative")),
            )
        case "object":
            return st.one_of(
                required,
                st.none(),
                st.booleans(),
                st.integers(),
                st.text(max_size=8),
                st.lists(_scalars, max_size=2),
            )
        case "scope":
            return st.one_of(
                required,
                _junk,
                st.integers(),
                _floats,
                st.just(""),
                st.text(min_size=201, max_size=260),
            )
        case "created_at":
            return st.one_of(required, _junk, _floats, _not_digits, st.integers(max_value=-1))
        case "hash":
            return st.one_of(
                st.booleans(),
                st.integers(),
                st.lists(_scalars, max_size=2),
                st.text(min_size=201, max_size=260),
            )
    raise AssertionError(f"no bad values for {kind}")


@dataclass(frozen=True)
class Case:
    """A request to send and the status the ingress documents for it."""

    label: str
    expect: int
    payload: dict[str, Any] | None = None  # sent as JSON with a fresh hash unless keep_hash
    raw: bytes | None = field(default=None, repr=False)  # the label and the test's note say enough
    method: str = "POST"
    content_type: str | None = "application/json"
    auth: Auth = VALID
    chunked: bool = False
    session: str | None = None
    keep_hash: bool = False
    extra_headers: dict[str, str] = field(default_factory=dict)


@st.composite
def wrongly_typed(draw: st.DrawFn) -> Case:
    event = draw(events())
    path, kind = draw(st.sampled_from(event.typed))
    value = draw(bad_values(kind))
    payload = replaced(event.payload, path, value)
    return Case(f"{'.'.join(path)}={value!r}", 400, payload, keep_hash=path == ("hash",))


valid_content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/json;charset=UTF-8",
    ]
)


@st.composite
def valid_cases(draw: st.DrawFn) -> Case:
    event = draw(events())
    return Case(
        "valid",
        200,
        event.payload,
        content_type=draw(valid_content_types),
        chunked=draw(st.booleans()),
        session=event.session,
    )


def _encode(payload: object) -> bytes:
    return json.dumps(payload).encode()


@st.composite
def _truncated(draw: st.DrawFn) -> bytes:
    body = _encode(draw(events()).payload)
    return body[: draw(st.integers(0, len(body) - 1))]


@st.composite
def _deeply_nested(draw: st.DrawFn) -> bytes:
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
    # Deep enough to pass the interpreter's recursion limit, and still under the size limit.
    deepest = MAX_BODY_BYTES // (len(opener) + len(closer)) - 1
    depth = draw(st.one_of(st.integers(1, 64), st.integers(64, 2000), st.integers(2000, deepest)))
    closed = draw(st.booleans())
    return opener * depth + b"1" + (closer * depth if closed else b"")


@st.composite
def _invalid_utf8(draw: st.DrawFn) -> bytes:
    body = _encode(draw(events()).payload)
    at = body.index(b'"scope": "') + len(b'"scope": "')
    return (
        body[:at]
        + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80"]))
        + body[at:]
    )


@st.composite
def _non_json_constant(draw: st.DrawFn) -> bytes:
    """A valid callback with NaN or Infinity somewhere: Python's json reads them, JSON has none."""
    event = draw(events())
    constant = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity"]))
    body = _encode({**event.payload, "data": {**event.payload["data"], "x_number": "@"}})
    return body.replace(b'"@"', constant)


def malformed_bodies() -> st.SearchStrategy[tuple[str, bytes]]:
    """Bodies that are not a JSON object with a producer: each must be a 400."""
    return st.one_of(
        st.binary(max_size=512).map(lambda b: ("bytes", b)),
        st.text(max_size=200).map(lambda t: ("text", t.encode())),
        _truncated().map(lambda b: ("truncated", b)),
        json_values.filter(lambda v: not isinstance(v, dict)).map(
            lambda v: ("not an object", _encode(v))
        ),
        st.dictionaries(
            st.text(max_size=10).filter(lambda k: k != "producer"), json_values, max_size=5
        ).map(lambda d: ("no producer", _encode(d))),
        _deeply_nested().map(lambda b: ("nested", b)),
        _invalid_utf8().map(lambda b: ("invalid utf-8", b)),
        _non_json_constant().map(lambda b: ("non-JSON constant", b)),
    )


@st.composite
def malformed_cases(draw: st.DrawFn) -> Case:
    label, body = draw(malformed_bodies())
    return Case(label, 400, raw=body)


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@st.composite
def deep_data_cases(draw: st.DrawFn) -> Case:
    """A valid callback with a nested extra field in its data: past MAX_NESTING levels, a 400.

    Bodies too deep for the JSON parser itself are in `malformed_bodies`."""
    event = draw(events())
    depth = draw(st.one_of(st.integers(1, 2 * MAX_NESTING), st.integers(2 * MAX_NESTING, 500)))
    payload = replaced(event.payload, ("data", "x_deep"), nested(depth))
    levels = depth + 2  # inside the envelope and data objects
    expect = 400 if levels > MAX_NESTING else 200
    return Case(f"{levels} levels", expect, payload, session=event.session)


@st.composite
def oversized_cases(draw: st.DrawFn) -> Case:
    extra = draw(st.integers(1, 200 * 1024))
    event = draw(events())
    payload = {**event.payload, "x_pad": ""}
    body = _encode(payload)
    body = body.replace(
        b'"x_pad": ""', b'"x_pad": "' + b"x" * (MAX_BODY_BYTES - len(body) + extra) + b'"'
    )
    assert len(body) > MAX_BODY_BYTES
    content_type = draw(st.one_of(valid_content_types, st.none(), st.just("text/plain")))
    return Case("oversized", 413, raw=body, content_type=content_type, chunked=draw(st.booleans()))


def _not_json_media(value: str) -> bool:
    media = value.split(";", 1)[0].strip().lower()
    return media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    )


@st.composite
def wrong_content_type_cases(draw: st.DrawFn) -> Case:
    content_type = draw(
        st.one_of(
            st.none(),
            st.sampled_from(
                [
                    "",
                    "text/plain",
                    "text/json",
                    "application/x-www-form-urlencoded",
                    "multipart/form-data; boundary=x",
                    "application/xml",
                    "application/jsonl",
                    "application/json-seq",
                    "json",
                    "application",
                    "*/*",
                ]
            ),
            st.from_regex(r"\A[a-z]{1,12}/[a-z0-9.+-]{1,20}(; ?charset=[a-z0-9-]{1,10})?\Z"),
            header_text,
        ).filter(lambda c: c is None or _not_json_media(c))
    )
    event = draw(events())
    return Case(
        f"content-type {content_type!r}",
        415,
        event.payload,
        content_type=content_type,
        session=event.session,
    )


KNOWN_METHODS: Final = ("GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE")


@st.composite
def wrong_method_cases(draw: st.DrawFn) -> Case:
    method = draw(st.sampled_from(KNOWN_METHODS))
    event = draw(events())
    return Case(f"method {method}", 405, event.payload, method=method, session=event.session)


@st.composite
def foreign_producer_cases(draw: st.DrawFn) -> Case:
    event = draw(events())
    choice = draw(st.sampled_from(["unknown store", "bad producer", "other store id"]))
    if choice == "unknown store":
        other = draw(st.from_regex(r"\A[a-z0-9]{1,32}\Z").filter(lambda h: h != STORE_HASH))
        return Case(choice, 403, replaced(event.payload, ("producer",), f"stores/{other}"))
    if choice == "other store id":
        value = draw(
            st.one_of(_scalars, st.integers(0, 10**12).map(str), _junk).filter(
                lambda v: str(v) != STORE_ID
            )
        )
        return Case(f"store_id={value!r}", 403, replaced(event.payload, ("store_id",), value))
    producer = draw(
        st.one_of(
            st.just(MISSING),
            _junk,
            st.integers(),
            st.sampled_from(
                [
                    "",
                    STORE_HASH,
                    f"store/{STORE_HASH}",
                    f"stores/{STORE_HASH.upper()}",
                    f"stores/{STORE_HASH}/",
                    f" stores/{STORE_HASH}",
                    f"stores/{STORE_HASH}\n",
                    "stores/" + "a" * 33,
                    "stores/",
                ]
            ),
            st.text(max_size=40),
        ).filter(lambda p: not (isinstance(p, str) and PRODUCER_FORMAT.fullmatch(p)))
    )
    return Case(f"producer={producer!r}", 400, replaced(event.payload, ("producer",), producer))


# Scopes we do not subscribe to, including near misses of ones we do.
UNSUBSCRIBED_SCOPES: Final = (
    "store/cart/created",
    "store/product/created",
    "store/category/updated",
    "store/customer/payment/instrument/default/updated",
    "store/order/metafield/created",
    "store/channel/1/order/deleted",
    "store/channel/x/order/created",
    "store/channel//order/created",
    "store/channel/\u0663/order/created",
    "store/order/*",
    "STORE/ORDER/CREATED",
    "store/order/created/",
    "store/order/created\n",
    " store/order/created",
)


@st.composite
def unknown_scope_cases(draw: st.DrawFn) -> Case:
    scope = draw(
        st.one_of(
            st.sampled_from(UNSUBSCRIBED_SCOPES),
            st.text(min_size=1, max_size=200).filter(lambda s: kind_of(s) is None),
        )
    )
    data = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3))
    payload = draw(events()).payload | {"scope": scope, "data": data}
    return Case(f"scope={scope!r}", 202, payload)


@st.composite
def auth_failure_cases(draw: st.DrawFn) -> Case:
    auth = draw(auth_failures())
    event = draw(events())
    return Case(f"auth {auth}", 401, event.payload, auth=auth, session=event.session)


def any_documented_case() -> st.SearchStrategy[Case]:
    return st.one_of(
        valid_cases(),
        wrongly_typed(),
        malformed_cases(),
        wrong_content_type_cases(),
        wrong_method_cases(),
        foreign_producer_cases(),
        unknown_scope_cases(),
        auth_failure_cases(),
        deep_data_cases(),
    )
