"""Parsing dates and times typed by users.

A stdlib fast path handles ISO forms and simple words (``today``, ``tomorrow 6pm``, ``next monday 18:00``,
``in 3 days``) so most invocations never import dateparser (~170 ms on first use). Anything else falls back
to dateparser, imported lazily here and nowhere else. Local wall-clock input is read in the user's zone under
the one time-zone policy (:mod:`practiceplan.domain.tz`): a local time that does not exist (DST gap) moves
forward by the gap, an ambiguous one takes its first instance.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from practiceplan.domain.models import FIRST_DAY, LAST_DAY, day_supported
from practiceplan.domain.tz import localize
from practiceplan.errors import InvalidInputError

UTC = timezone.utc
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME_RE = re.compile(r"^(?:at\s+)?(\d{1,2})(?::(\d{2}))?(?::(\d{2}))?\s*(am|pm)?$")
_IN_RE = re.compile(r"^in\s+(\d{1,4})\s+(minute|hour|day|week)s?$")
_AGO_RE = re.compile(r"^(\d{1,4})\s+(minute|hour|day|week)s?\s+ago$")
_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1),
          "week": timedelta(weeks=1)}


def parse_time(text: str) -> time:
    """``18:00``, ``6pm``, ``6:30pm``, ``18:00:30`` -> time. Raises InvalidInputError."""
    match = _TIME_RE.match(text.strip().lower())
    if match:
        hour, minute, second = int(match[1]), int(match[2] or 0), int(match[3] or 0)
        if match[4]:
            if not 1 <= hour <= 12:
                match = None
            else:
                hour = hour % 12 + (12 if match[4] == "pm" else 0)
        if match and hour < 24 and minute < 60 and second < 60:
            return time(hour, minute, second)
    raise InvalidInputError(f"'{text}' is not a time of day", hint="use HH:MM, e.g. 18:00 or 6pm")


def _weekday_date(word: str, today: date) -> date | None:
    strict = word.startswith("next ")
    name = word[5:] if strict else word
    for index, day in enumerate(_DAYS):
        if len(name) >= 3 and day.startswith(name):
            delta = (index - today.weekday()) % 7
            if strict and delta == 0:
                delta = 7
            return today + timedelta(days=delta)
    return None


def _simple_date(word: str, today: date) -> date | None:
    if word == "today":
        return today
    if word == "tomorrow":
        return today + timedelta(days=1)
    if word == "yesterday":
        return today - timedelta(days=1)
    try:
        return date.fromisoformat(word)
    except ValueError:
        pass
    return _weekday_date(word, today)


def local_to_utc(naive: datetime, zone: ZoneInfo) -> datetime:
    """Wall-clock time in ``zone`` -> UTC; gaps move forward, folds take the first instance."""
    return localize(naive, zone).astimezone(UTC)


def _fast_datetime(text: str, zone: ZoneInfo, now: datetime) -> datetime | None:
    word = " ".join(text.strip().lower().split())
    if word == "now":
        return now
    local_now = now.astimezone(zone)
    match = _IN_RE.match(word) or _AGO_RE.match(word)
    if match:
        offset = int(match[1]) * _UNITS[match[2]]
        if word.endswith("ago"):
            offset = -offset
        if match[2] in ("day", "week"):  # calendar days: keep the wall-clock time across DST
            return local_to_utc(local_now.replace(tzinfo=None) + offset, zone)
        return now + offset
    try:
        iso = text.strip()
        dt = datetime.fromisoformat(iso[:-1] + "+00:00" if iso.endswith(("Z", "z")) else iso)
    except ValueError:
        dt = None
    if dt is not None:
        if dt.tzinfo is not None:
            return dt.astimezone(UTC)
        if len(text.strip()) == 10:  # a bare date: the start of that local day
            dt = datetime.combine(dt.date(), time())
        return local_to_utc(dt, zone)
    # "<date words> [at] <time>" or "<time>" alone (today at that time)
    parts = word.split(" ")
    for cut in range(len(parts), -1, -1):
        day_part, time_part = " ".join(parts[:cut]), " ".join(parts[cut:])
        day = _simple_date(day_part, local_now.date()) if day_part else local_now.date()
        if day is None:
            continue
        if not time_part:
            return local_to_utc(datetime.combine(day, time()), zone)
        try:
            at = parse_time(time_part)
        except InvalidInputError:
            continue
        return local_to_utc(datetime.combine(day, at), zone)
    return None


def _dateparser(text: str, zone: ZoneInfo, now: datetime) -> datetime | None:
    import dateparser  # noqa: PLC0415 - deliberately lazy: ~170 ms

    settings = {
        "TIMEZONE": zone.key,
        "TO_TIMEZONE": "UTC",
        "RETURN_AS_TIMEZONE_AWARE": True,
        "RELATIVE_BASE": now.astimezone(zone).replace(tzinfo=None),
        "PREFER_DATES_FROM": "current_period",
    }
    try:
        result = dateparser.parse(text, settings=settings)
    except (ValueError, OverflowError, TypeError):
        return None
    return result.astimezone(UTC) if result else None


def out_of_range(what: str, text: str) -> InvalidInputError:
    return InvalidInputError(
        f"{what} '{text}' is outside the supported dates ({FIRST_DAY} to {LAST_DAY})",
        hint="give a date between 1970 and 2199",
    )


def parse_datetime(text: str, zone: ZoneInfo, now: datetime, what: str = "date") -> datetime:
    """User text -> aware UTC datetime within the supported range. Raises InvalidInputError naming ``what``."""
    if not text or not text.strip() or len(text) > 200:
        raise InvalidInputError(f"empty or overlong {what}", hint="e.g. 2026-03-01T18:00 or 'tomorrow 6pm'")
    try:
        result = _fast_datetime(text, zone, now)
        if result is None and not re.fullmatch(r"[\d\-:T.+ ]+", text.strip()):
            result = _dateparser(text, zone, now)
        local_day = result.astimezone(zone).date() if result is not None else None
    except (OverflowError, ValueError):  # beyond what a datetime holds (year 1..9999) in UTC or the zone
        raise out_of_range(what, text) from None
    if result is None or local_day is None:
        raise InvalidInputError(
            f"cannot understand {what} '{text}'",
            hint="use an ISO date like 2026-03-01 or 2026-03-01T18:00, or words like 'tomorrow 6pm'",
        )
    if not day_supported(local_day):
        raise out_of_range(what, text)
    return result


def parse_date(text: str, zone: ZoneInfo, now: datetime, what: str = "date") -> date:
    """User text -> a local calendar date in ``zone``, within the supported range."""
    word = " ".join(text.strip().lower().split())
    try:
        day = _simple_date(word, now.astimezone(zone).date()) if word else None
    except OverflowError:
        raise out_of_range(what, text) from None
    if day is None:
        return parse_datetime(text, zone, now, what).astimezone(zone).date()
    if not day_supported(day):
        raise out_of_range(what, text)
    return day
