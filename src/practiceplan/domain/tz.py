"""The one time-zone policy, kept apart from recurrence so read paths do not load dateutil.

A local wall-clock time that does not exist (a DST gap) moves forward by the gap; an ambiguous one (a
fold) takes its first instance. ``naive.replace(tzinfo=zone, fold=0)`` does exactly that once the result is
converted to UTC, because zoneinfo reads a gap time with the offset in force before the gap.

Everything that turns a local wall clock into an instant (recurrence, user dates, ``PRACTICEPLAN_NOW``,
day boundaries, moves) goes through :func:`localize`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone, tzinfo

UTC = timezone.utc


def localize(naive: datetime, zone: tzinfo) -> datetime:
    """Naive local wall clock in ``zone`` -> aware datetime (may be imaginary until converted)."""
    if naive.tzinfo is not None:
        raise ValueError("localize() needs a naive datetime")
    return naive.replace(tzinfo=zone, fold=0)


def local_instant(day: date, at: time, zone: tzinfo) -> datetime:
    """``at`` o'clock on the local ``day`` in ``zone`` as a UTC instant (under the gap/fold policy)."""
    return localize(datetime.combine(day, at), zone).astimezone(UTC)


def wall_clock(instant: datetime, zone: tzinfo) -> datetime:
    """The naive local wall clock of an aware ``instant`` in ``zone`` (the inverse of :func:`localize`)."""
    return instant.astimezone(zone).replace(tzinfo=None)


def day_of(instant: datetime, zone: tzinfo) -> date:
    """The local calendar date of an aware ``instant`` in ``zone``."""
    return instant.astimezone(zone).date()


def spoken(instant: datetime, zone: tzinfo) -> str:
    """An instant as a person reads it in messages: the local weekday, date and time in ``zone`` (the user's),
    e.g. ``Tue 03 Mar 2026 19:00``. Messages never show UTC instants."""
    return instant.astimezone(zone).strftime("%a %d %b %Y %H:%M")
