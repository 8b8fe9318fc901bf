"""Dates as the APIs write and read them: V2 uses RFC 2822, V3 uses ISO 8601 (RFC 3339).

The store keeps whole seconds in UTC, as the responses show them; filters accept RFC 2822 or
ISO 8601 (`Thu, 20 Apr 2017 11:32:00 -0400`, `2017-04-20T11:32:00.000-04:00`, `2017-04-20`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

# An unencoded `+` in a query string arrives as a space: `...T01:02:34 01:00`.
_PLUS_AS_SPACE = re.compile(r"(?<=\d) (\d{2}:?\d{2})$")


def whole_seconds(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def rfc2822(moment: datetime | None) -> str:
    """`Tue, 05 Mar 2019 21:40:11 +0000`; an unset date is `''`, as `date_shipped` shows."""
    if moment is None:
        return ""
    return format_datetime(moment.astimezone(UTC))


def iso8601(moment: datetime) -> str:
    """`2022-06-16T16:44:15+00:00`."""
    return whole_seconds(moment).isoformat()


def parse_date(raw: str) -> datetime | None:
    """RFC 2822 or ISO 8601; a date or time without an offset is taken as UTC."""
    text = raw.strip()
    if not text:
        return None
    parsed: datetime | None
    try:
        parsed = datetime.fromisoformat(_PLUS_AS_SPACE.sub(r"+\1", text.replace("Z", "+00:00")))
    except ValueError:
        parsed = None
    if parsed is None and not text[:4].isdigit():
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            parsed = None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
