"""Alternate-key values Dataverse can address, and the customer key.

Dataverse cannot GET, PATCH or upsert by a key whose value contains `/ < > * % & : \\ ? +`
([AKDEF]). Values we build ourselves are escaped reversibly: each of those characters, and the
escape character `~` itself, becomes `~` and two upper-case hex digits (`:` -> `~3A`). Nothing
else changes, so ordinary values stay readable and `unescape_key_value` restores the original.

The customer key names the contact an order belongs to within a store:
- `c:<BigCommerce customer id>` for a registered customer;
- `e:<lower-cased e-mail>` for a guest, so a guest's repeat orders land on one contact;
- `h:<sha-256 of the lower-cased e-mail>` when the escaped `e:` form would not fit the column
  (this one cannot be reversed; the contact keeps the address itself in `emailaddress1`).
The stored value (`bciom_customerkey`) is the escaped form: `c:42` is stored as `c~3A42`.
"""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum
from typing import Final

from shared.dataverse.schema import CONTACT, PREFIX

FORBIDDEN_KEY_CHARACTERS: Final = frozenset("/<>*%&:\\?+")
ESCAPE: Final = "~"
_ESCAPED: Final = FORBIDDEN_KEY_CHARACTERS | {ESCAPE}
_SEQUENCE: Final = re.compile(r"~([0-9A-F]{2})")
CUSTOMER_KEY_MAX_LENGTH: Final = CONTACT.column(PREFIX + "customerkey").max_length or 0


class CustomerKeyKind(StrEnum):
    CUSTOMER = "c"  # a registered BigCommerce customer, by id
    EMAIL = "e"  # a guest, by lower-cased e-mail
    HASHED = "h"  # a guest whose e-mail is too long for the key column, by its hash


def is_key_safe(value: str) -> bool:
    """True when Dataverse can address a row by this key value as it is."""
    return not any(c in FORBIDDEN_KEY_CHARACTERS for c in value)


def escape_key_value(value: str) -> str:
    return "".join(f"{ESCAPE}{ord(c):02X}" if c in _ESCAPED else c for c in value)


def unescape_key_value(value: str) -> str:
    """The inverse of `escape_key_value`; ValueError for text it could not have produced."""
    if ESCAPE in _SEQUENCE.sub("", value) or not is_key_safe(value):
        raise ValueError(f"not an escaped key value: {value!r}")
    text = _SEQUENCE.sub(lambda m: chr(int(m[1], 16)), value)
    if escape_key_value(text) != value:
        raise ValueError(f"not an escaped key value: {value!r}")
    return text


def normalize_email(email: str) -> str:
    return email.strip().lower()


def customer_key(customer_id: int, email: str | None) -> str:
    """The stored (escaped) customer key: by id when registered, else by e-mail."""
    if customer_id > 0:
        return escape_key_value(f"{CustomerKeyKind.CUSTOMER}:{customer_id}")
    address = normalize_email(email or "")
    if not address:
        raise ValueError("a guest customer key needs an e-mail address")
    key = escape_key_value(f"{CustomerKeyKind.EMAIL}:{address}")
    if len(key) <= CUSTOMER_KEY_MAX_LENGTH:
        return key
    digest = hashlib.sha256(address.encode()).hexdigest()
    return escape_key_value(f"{CustomerKeyKind.HASHED}:{digest}")


def parse_customer_key(stored: str) -> tuple[CustomerKeyKind, str]:
    """The kind and value of a stored customer key: `c~3A42` -> (CUSTOMER, "42")."""
    kind, sep, value = unescape_key_value(stored).partition(":")
    if not sep or not value or kind not in tuple(CustomerKeyKind):
        raise ValueError(f"not a customer key: {stored!r}")
    return CustomerKeyKind(kind), value
