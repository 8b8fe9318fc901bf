"""BigCommerce's date formats, read into timezone-aware datetimes and written back.

Orders V2 sends RFC 2822 (`Tue, 05 Mar 2019 21:40:11 +0000`) and `""` for an unset date; Orders
V3 sends ISO 8601 / RFC 3339; hooks send Unix seconds. The reader accepts all three wherever a
date is expected, since the same field has been seen in more than one form across API versions.
Only the standard library is needed: `email.utils` reads and writes RFC 2822 and
`datetime.fromisoformat` reads ISO 8601 (including `Z` since Python 3.11).

A date without an offset is taken as UTC: the V2 spec states `date_modified` is always UTC, and
RFC 2822's `-0000` ("no offset information") comes back from `email.utils` as naive.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated, Final

from pydantic import BeforeValidator

_UNIX: Final = re.compile(r"^\d{9,11}(\.\d+)?$")


def parse_datetime(value: object) -> datetime | None:
    """Any BigCommerce date as an aware datetime; None for null or an empty string."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str):
        raise ValueError(f"expected a date string, got {type(value).__name__}")
    text = value.strip()
    if not text:
        return None
    if _UNIX.match(text):
        return datetime.fromtimestamp(float(text), UTC)
    try:
        return _aware(datetime.fromisoformat(text))
    except ValueError:
        pass
    try:
        return _aware(parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError):
        raise ValueError(f"not an RFC 2822, ISO 8601 or Unix date: {text[:40]!r}") from None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def format_rfc2822(value: datetime, *, round_up: bool = False) -> str:
    """RFC 2822 in UTC, as V2 filters take it. It has whole seconds only: `round_up` makes an
    upper bound (`max_date_modified`) inclusive of its fractional second instead of cutting it."""
    return format_datetime(_whole_seconds(value, round_up))


def format_rfc3339(value: datetime, *, round_up: bool = False) -> str:
    """RFC 3339 in UTC with whole seconds (`2020-01-15T01:02:34+00:00`), as V3 filters take it."""
    return _whole_seconds(value, round_up).isoformat(timespec="seconds")


def _whole_seconds(value: datetime, round_up: bool) -> datetime:
    if value.tzinfo is None:
        raise ValueError("refusing a naive datetime: give it a timezone")
    utc = value.astimezone(UTC)
    if round_up and utc.microsecond:
        utc += timedelta(seconds=1)
    return utc.replace(microsecond=0)


# A date field of a response model: aware datetime, or None when BigCommerce sends "" or null.
Timestamp = Annotated[datetime | None, BeforeValidator(parse_datetime)]
# A date the integration cannot do without (an order's date_modified is its watermark).
RequiredTimestamp = Annotated[datetime, BeforeValidator(parse_datetime)]
