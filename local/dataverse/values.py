"""Column values between their JSON form (payloads, query literals) and their stored form.

Stored forms: text as is, whole numbers as int, decimals and money as float, booleans as 0/1,
date-times as `YYYY-MM-DDTHH:MM:SSZ` in UTC (so they compare as text), GUIDs lower-case.
Invalid values are refused the way the Web API does: a conversion error (400) or the
documented validation error for a too-long string (0x80044331, as in the $batch article).
"""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from local.dataverse import errors
from local.dataverse.catalog import Attribute

EDM_TYPES = {
    "string": "Edm.String",
    "memo": "Edm.String",
    "integer": "Edm.Int32",
    "bigint": "Edm.Int64",
    "decimal": "Edm.Decimal",
    "money": "Edm.Decimal",
    "datetime": "Edm.DateTimeOffset",
    "boolean": "Edm.Boolean",
    "uniqueidentifier": "Edm.Guid",
    "lookup": "Edm.Guid",
}
_INT_RANGES = {"integer": (-(2**31), 2**31 - 1), "bigint": (-(2**63), 2**63 - 1)}
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _cannot_convert(value: Any, kind: str) -> errors.DataverseError:
    return errors.bad_request(
        f"Cannot convert the literal '{value}' to the expected type '{EDM_TYPES[kind]}'."
    )


def parse_datetime(raw: str) -> str:
    """An ISO 8601 date or date-time as the stored UTC form; ValueError if it is neither."""
    text = raw.strip()
    if _DATE_ONLY.match(text):
        text += "T00:00:00Z"
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_guid(raw: str) -> str:
    return str(uuid.UUID(raw.strip().strip("{}")))


def to_storage(attribute: Attribute, value: Any, entity: str) -> Any:
    """A payload value for `attribute` in its stored form (None clears the column)."""
    if value is None:
        return None
    kind = attribute.kind
    if kind in ("string", "memo"):
        if not isinstance(value, str):
            raise _cannot_convert(value, kind)
        if attribute.max_length is not None and len(value) > attribute.max_length:
            raise errors.DataverseError(
                400,
                errors.VALIDATION,
                f"A validation error occurred.  The length of the '{attribute.logical_name}' "
                f"attribute of the '{entity}' entity exceeded the maximum allowed length of "
                f"'{attribute.max_length}'.",
            )
        return value
    if kind in ("integer", "bigint"):
        number = _number(value, kind)
        if isinstance(number, float):
            if not number.is_integer():
                raise _cannot_convert(value, kind)
            number = int(number)
        low, high = _INT_RANGES[kind]
        if not low <= number <= high:
            raise errors.DataverseError(
                400,
                errors.VALIDATION,
                f"A validation error occurred. The value {number} of '{attribute.logical_name}' "
                f"on record of type '{entity}' is outside the valid range.",
            )
        return number
    if kind in ("decimal", "money"):
        return float(_number(value, kind))
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _cannot_convert(value, kind)
        return int(value)
    if kind == "datetime":
        if not isinstance(value, str):
            raise _cannot_convert(value, kind)
        try:
            return parse_datetime(value)
        except ValueError:
            raise _cannot_convert(value, kind) from None
    if kind in ("uniqueidentifier", "lookup"):
        if not isinstance(value, str):
            raise _cannot_convert(value, kind)
        try:
            return parse_guid(value)
        except ValueError:
            raise _cannot_convert(value, kind) from None
    raise _cannot_convert(value, kind)


def _number(value: Any, kind: str) -> int | float:
    if isinstance(value, bool):
        raise _cannot_convert(value, kind)
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise _cannot_convert(value, kind)
        return value
    if isinstance(value, str):  # the Web API also accepts numbers sent as JSON strings
        try:
            return int(value) if re.fullmatch(r"-?\d+", value.strip()) else float(value)
        except ValueError:
            raise _cannot_convert(value, kind) from None
    raise _cannot_convert(value, kind)


def to_json(attribute: Attribute, value: Any) -> Any:
    """A stored value in its JSON form."""
    if value is None:
        return None
    if attribute.kind == "boolean":
        return bool(value)
    if attribute.kind in ("decimal", "money"):
        number = float(value)
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    return value
