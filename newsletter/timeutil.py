"""Time values every layer reads the same way: UTC instants and durations such as "7d" or "1d12h"."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

_DURATION = re.compile(r"\s*(?:\d+\s*[smhdw]\s*)+\Z", re.I)
_DURATION_PART = re.compile(r"(\d+)\s*([smhdw])", re.I)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """Return value as an aware UTC datetime, or None for None.

    A naive value is taken as UTC (SQLite hands back naive ones); an aware one is converted.
    """
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def parse_duration(text: str) -> timedelta:
    """Return the timedelta of "90s", "30m", "6h", "7d", "1d12h" or "2w" (units case-insensitive).

    Raises ValueError when text is not such a duration; callers name the key or option.
    """
    if not _DURATION.match(text or ""):
        raise ValueError(f"{text!r} is not a duration")
    return timedelta(seconds=sum(int(n) * _UNIT_SECONDS[u.lower()] for n, u in _DURATION_PART.findall(text)))


def parse_moment(text: str) -> datetime:
    """Return the UTC moment of an ISO date ("2026-05-01", midnight UTC) or date-time (UTC unless
    it carries an offset). Raises ValueError when text is neither."""
    value = (text or "").strip()
    if len(value) == 10:
        day = date.fromisoformat(value)
        return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return as_utc(datetime.fromisoformat(value))
