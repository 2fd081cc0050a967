"""The one time-zone policy, kept apart from recurrence so read paths do not load dateutil.

A local wall-clock time that does not exist (a DST gap) moves forward by the gap; an ambiguous one (a
fold) takes its first instance. ``naive.replace(tzinfo=zone, fold=0)`` does exactly that once the result is
converted to UTC, because zoneinfo reads a gap time with the offset in force before the gap.
"""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

UTC = timezone.utc


def localize(naive: datetime, zone: ZoneInfo) -> datetime:
    """Naive local wall clock in ``zone`` -> aware datetime (may be imaginary until converted)."""
    if naive.tzinfo is not None:
        raise ValueError("localize() needs a naive datetime")
    return naive.replace(tzinfo=zone, fold=0)


def to_utc(naive: datetime, zone: ZoneInfo) -> datetime:
    """Naive local wall clock in ``zone`` -> the UTC instant under the gap/fold policy."""
    return localize(naive, zone).astimezone(UTC)
