"""Validates hooks API bodies as BigCommerce does: field errors become one 422 `errors` object.

`webhook_Base` (POST) requires `scope` and `destination`; `webhook_Put` takes any of the four
fields but at least one. Beyond the types in `reference/webhooks.v3.yml`:

* `scope` must be a documented scope (`scopes.py`), with a real channel id where it has one;
* `destination` must be an absolute https URL on port 443 (the docs: custom ports are not
  supported). As this is a local simulator, plain http and any port are also accepted when the
  host is 127.0.0.1, ::1 or localhost, so hooks can point at a receiver on this machine;
* `headers` is null or an object of header-name -> string value;
* `is_active` is a boolean.

Error values follow the spec's example (`"destination": "error.path.missing"`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import SplitResult, urlsplit

from local.bigcommerce.webhooks.registry import Hook, HookSpec
from local.bigcommerce.webhooks.scopes import is_documented

MAX_DESTINATION_LENGTH: Final = 2048
_HEADER_NAME: Final = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_FIELDS: Final = ("scope", "destination", "is_active", "headers")


class InvalidBody(Exception):
    """The body's field errors, keyed by field name."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


@dataclass(frozen=True, slots=True)
class _Fields:
    values: dict[str, Any]
    errors: dict[str, str]


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def destination_error(value: str) -> str | None:
    if not value or len(value) > MAX_DESTINATION_LENGTH:
        return f"must be a URL of 1 to {MAX_DESTINATION_LENGTH} characters"
    try:
        parts: SplitResult = urlsplit(value)
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute https URL"
    if parts.fragment or parts.username or parts.password:
        return "must not carry credentials or a fragment"
    if is_loopback(parts.hostname):
        return None  # local receivers: http and any port (a simulator-only allowance)
    if parts.scheme != "https":
        return "must use https (http is accepted only for 127.0.0.1/localhost in the simulator)"
    if port not in (None, 443):
        return "must be served on port 443; custom ports are not supported"
    return None


def _headers_error(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return "error.expected.jsobject"
    for name, header_value in value.items():
        if not _HEADER_NAME.match(name):
            return f"{name!r} is not a valid header name"
        if not isinstance(header_value, str):
            return f"{name}: error.expected.jsstring"
        if "\r" in header_value or "\n" in header_value or len(header_value) > 8192:
            return f"{name}: the value must be one line of at most 8192 characters"
    return None


def _fields(body: object) -> _Fields:
    if not isinstance(body, dict):
        raise InvalidBody({"body": "error.expected.jsobject"})
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in _FIELDS:
        if name not in body:
            continue
        value = body[name]
        if name in ("scope", "destination"):
            if not isinstance(value, str):
                errors[name] = "error.expected.jsstring"
            elif name == "scope" and not is_documented(value):
                errors[name] = f"{value!r} is not a valid webhook scope"
            elif name == "destination" and (problem := destination_error(value)):
                errors[name] = problem
        elif name == "is_active" and not isinstance(value, bool):
            errors[name] = "error.expected.jsboolean"
        elif name == "headers" and (problem := _headers_error(value)):
            errors[name] = problem
        values[name] = value
    return _Fields(values, errors)


def spec_for_create(body: object) -> HookSpec:
    """A `webhook_Base` body as a HookSpec, or InvalidBody."""
    fields = _fields(body)
    errors = dict(fields.errors)
    for required in ("scope", "destination"):
        if required not in fields.values:
            errors[required] = "error.path.missing"
    if errors:
        raise InvalidBody(errors)
    values = fields.values
    return HookSpec(
        scope=values["scope"],
        destination=values["destination"],
        is_active=values.get("is_active", True),
        headers=values.get("headers"),
    )


def spec_for_update(hook: Hook, body: object) -> HookSpec:
    """A `webhook_Put` body applied over the hook, or InvalidBody."""
    fields = _fields(body)
    if fields.errors:
        raise InvalidBody(fields.errors)
    if not fields.values:
        raise InvalidBody({"body": "at least one of scope, destination, is_active, headers"})
    values = fields.values
    return HookSpec(
        scope=values.get("scope", hook.scope),
        destination=values.get("destination", hook.destination),
        is_active=values.get("is_active", hook.is_active),
        headers=values.get("headers", hook.headers),
    )


def emails(body: object) -> list[str]:
    """The `PUT /hooks/admin` body's email list, or InvalidBody."""
    if not isinstance(body, dict):
        raise InvalidBody({"body": "error.expected.jsobject"})
    if "emails" not in body:
        raise InvalidBody({"emails": "error.path.missing"})
    value = body["emails"]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidBody({"emails": "error.expected.jsarray of strings"})
    bad = [v for v in value if not _EMAIL.match(v)]
    if bad:
        raise InvalidBody({"emails": f"not email addresses: {', '.join(bad)}"})
    return list(dict.fromkeys(value))
