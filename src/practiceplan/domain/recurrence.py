"""Turn a practice plan's schedule into concrete occurrence slots.

A plan's schedule is an RFC 5545 recurrence rule (the value of an ``RRULE``
property, the full grammar apart from ``FREQ=SECONDLY``) anchored at a local
start date and an optional local time of day in an IANA time zone. This module
is pure: it reads no clock, does no I/O and depends only on the standard
library and :mod:`dateutil`.

Time policy
-----------
* **Recurrence runs on naive local wall-clock time.** ``DTSTART`` is the naive
  local ``start`` date at ``time`` (00:00 when the plan has no time of day, that
  is "any time that day"). The rule is expanded on naive datetimes, so an 18:00
  plan stays at 18:00 local time on both sides of a DST change.
* **Each naive occurrence is then localized with** ``fold=0``
  (:func:`practiceplan.domain.tz.localize`, the one time-zone policy). A
  wall-clock time that does not exist (spring-forward gap) therefore moves
  forward by the length of the gap: 02:30 on 2024-03-10 in America/New_York
  becomes 03:30 EDT (07:30Z). A time that exists twice
  (fall back) takes its first instance. Returned instants are aware UTC
  datetimes; ``Slot.local`` is the same instant in the plan zone, so it is
  never an imaginary time.
* **Slot keys keep the original wall clock.** ``Slot.key`` is the naive local
  occurrence before any gap shift (``YYYY-MM-DDTHH:MM:SS``); occurrence ids and
  ``exdates`` (excluded local dates) are based on it.
* **Output is strictly increasing and unique in UTC.** The gap rule can reorder
  occurrences or make two of them collide (sub-daily rules, or a whole skipped
  day such as Pacific/Apia on 2011-12-30). Slots are sorted by UTC instant and
  duplicates dropped; the survivor is the one that comes first in recurrence
  order (the smaller key).
* **Cut-offs are local.** The plan ``end`` date ends at 23:59:59 local on that
  day. A date-only ``UNTIL`` means 23:59:59 local on that date, a floating
  ``UNTIL`` is a local wall clock, and a UTC ``UNTIL`` (``...Z``) is converted
  into the plan zone first. The earlier cut-off wins. ``COUNT`` always counts
  from ``DTSTART`` and ``exdates`` remove occurrences after ``COUNT`` has been
  applied, as with an RFC 5545 ``EXDATE``.

Rule semantics are dateutil's (which follows RFC 5545 closely). Note that,
like dateutil, a ``DTSTART`` that does not match the rule is *not* an extra
occurrence (RFC 5545 leaves that case undefined); a practice plan starting on a
Sunday with ``FREQ=MONTHLY;BYDAY=2TU`` begins on the next second Tuesday.

Bounded work
------------
dateutil stops iterating only when it produces an occurrence past the bound,
when ``COUNT`` runs out, or when it reaches the year 9999. A rule that never
(or rarely) matches would make it grind through millennia. This module keeps
every query bounded:

* a query never starts iterating at ``DTSTART`` when it does not have to: for
  rules without ``COUNT`` iteration is re-anchored on the start of the rule
  period (year, month, week, day, hour or minute lattice point) that contains
  the query window, with every ``DTSTART``-derived default made explicit;
* the query is then moved, by whole years, to a stretch of calendar right
  below the year 9999 whose years have exactly the same layout (leap years
  and weekday of 1 January), so if nothing matches after the window dateutil
  runs out of calendar after a few decades of iteration at most;
* constraints that can never be met are detected up front: day-of-year
  filters (``BYMONTH=2;BYMONTHDAY=30``), DAILY/HOURLY/MINUTELY lattices that
  never meet their BYDAY/BYHOUR/BYMINUTE (``FREQ=DAILY;INTERVAL=7;BYDAY=TU``
  from a Monday) and BYSETPOS positions a sub-weekly period cannot have.
"""

from __future__ import annotations

import calendar
import itertools
import math
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from dateutil import rrule as _rr

from practiceplan.domain.tz import localize

__all__ = [
    "MAX_SESSIONS_PER_YEAR",
    "NAMESPACE",
    "Recurrence",
    "RecurrenceError",
    "Slot",
    "canonical_rule",
    "expand",
    "first_slots",
    "get_zone",
    "occurrence_id",
    "parse_rule",
    "skipped_months",
    "until_date",
    "validate",
    "why_no_sessions",
    "wire_rule",
]

#: Namespace of the UUIDv5 behind :func:`occurrence_id`. Never change it:
#: occurrence ids must be the same on every device and in every version.
NAMESPACE = uuid.UUID("6f1f0a6e-8d5e-4c1e-9a57-5f2d6b1c3a90")

#: :func:`validate` refuses rules producing more sessions than this in a year.
MAX_SESSIONS_PER_YEAR = 2000


class RecurrenceError(ValueError):
    """A schedule that cannot be used; the message is one human-readable line."""


@dataclass(frozen=True)
class Slot:
    """One occurrence of a plan.

    Compare and order slots by ``start``. (``local`` is the same instant, but
    per PEP 495 an aware datetime inside a DST fold compares unequal to every
    datetime with another tzinfo, even to that very instant in UTC.)
    """

    key: str  # original naive local wall clock, "YYYY-MM-DDTHH:MM:SS" (before gap shifting)
    start: datetime  # aware, UTC
    local: datetime  # aware, in the plan zone (normalized, never imaginary)


@dataclass(frozen=True)
class Recurrence:
    """A plan's schedule (see the module docstring for the time policy)."""

    rule: str | None  # RRULE value without "RRULE:"; None = a single session
    start: date  # local start date (DTSTART date)
    time: time | None  # local time of day; None => 00:00, "any time that day"
    zone: str  # IANA zone name
    end: date | None = None  # inclusive local end date
    exdates: tuple[date, ...] = ()  # local dates on which no slot is produced


# --------------------------------------------------------------------------
# RRULE grammar
# --------------------------------------------------------------------------

_FREQS: dict[str, int] = {
    "YEARLY": _rr.YEARLY,
    "MONTHLY": _rr.MONTHLY,
    "WEEKLY": _rr.WEEKLY,
    "DAILY": _rr.DAILY,
    "HOURLY": _rr.HOURLY,
    "MINUTELY": _rr.MINUTELY,
}
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")  # index = date.weekday()
_WIRE_DAY_ORDER = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")

#: Stable key order of :func:`canonical_rule`: FREQ, INTERVAL, BY* parts from
#: the largest unit to the smallest, BYSETPOS, WKST, COUNT, UNTIL.
_KEY_ORDER = (
    "FREQ",
    "INTERVAL",
    "BYMONTH",
    "BYWEEKNO",
    "BYYEARDAY",
    "BYMONTHDAY",
    "BYDAY",
    "BYHOUR",
    "BYMINUTE",
    "BYSECOND",
    "BYSETPOS",
    "WKST",
    "COUNT",
    "UNTIL",
)
_BY_KEYS = tuple(k for k in _KEY_ORDER if k.startswith("BY"))

#: Integer list parts: (smallest, largest, may be negative). Negative values
#: count from the end of the period and run from -largest to -smallest.
_INT_LIST_RANGES: dict[str, tuple[int, int, bool]] = {
    "BYSECOND": (0, 59, False),
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False),
    "BYSETPOS": (1, 366, True),
}
_RRULE_KWARG = {
    "BYSECOND": "bysecond",
    "BYMINUTE": "byminute",
    "BYHOUR": "byhour",
    "BYMONTHDAY": "bymonthday",
    "BYYEARDAY": "byyearday",
    "BYWEEKNO": "byweekno",
    "BYMONTH": "bymonth",
    "BYSETPOS": "bysetpos",
}

_SIGNED_INT = re.compile(r"[+-]?[0-9]+")
_UNSIGNED_INT = re.compile(r"[0-9]+")
_BYDAY_ITEM = re.compile(r"([+-]?[0-9]{1,2})?([A-Z]{2})")
_UNTIL = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})(?:T([0-9]{2})([0-9]{2})([0-9]{2})(Z)?)?")

#: DTSTART used when parse_rule() test-builds a rule (a Monday at midnight).
_PROBE_DTSTART = datetime(2001, 1, 1)


def parse_rule(text: str) -> dict[str, str]:
    """Parse and check an RRULE value; return its parts, keys and values uppercase.

    An optional leading ``RRULE:`` and surrounding whitespace are accepted.
    The parts come back in canonical key order. Raises :class:`RecurrenceError`
    for anything that is not a usable RFC 5545 rule.
    """
    if not isinstance(text, str):
        raise RecurrenceError("bad RRULE: the rule must be text")
    body = text.strip()
    if "DTSTART" in body.upper():
        raise RecurrenceError("bad RRULE: DTSTART is not allowed in the rule; use --start/--at")
    if body[:6].upper() == "RRULE:":
        body = body[6:].strip()
    if not body:
        raise RecurrenceError("bad RRULE: the rule is empty")
    if "\n" in body or "\r" in body:
        raise RecurrenceError("bad RRULE: give only the RRULE value, on one line")
    parts: dict[str, str] = {}
    for raw in body.split(";"):
        piece = raw.strip()
        if not piece:
            raise RecurrenceError("bad RRULE: empty part (check for a stray ';')")
        key, sep, value = piece.partition("=")
        key = key.strip().upper()
        value = ",".join(item.strip() for item in value.upper().split(","))
        if not sep:
            raise RecurrenceError(f"bad RRULE: part {piece!r} is not KEY=VALUE")
        if key not in _KEY_ORDER:
            raise RecurrenceError(f"bad RRULE: unknown part {key!r}")
        if key in parts:
            raise RecurrenceError(f"bad RRULE: {key} is given more than once")
        if not value:
            raise RecurrenceError(f"bad RRULE: {key} has no value")
        parts[key] = value
    _check_parts(parts)
    _probe_build(parts)
    return {k: parts[k] for k in _KEY_ORDER if k in parts}


def canonical_rule(parts: Mapping[str, str]) -> str:
    """The exact rule as a string, parts in a stable order (FREQ, INTERVAL, BY*, WKST, COUNT, UNTIL)."""
    norm = _normalized(parts)
    return ";".join(f"{k}={norm[k]}" for k in _KEY_ORDER if k in norm)


def until_date(parts: Mapping[str, str]) -> date | None:
    """The rule's UNTIL as a date (a UTC ``...Z`` UNTIL gives its UTC date), or None."""
    norm = _normalized(parts)
    if "UNTIL" not in norm:
        return None
    return _parse_until(norm["UNTIL"])[0].date()


def wire_rule(parts: Mapping[str, str]) -> tuple[str, bool]:
    """Map a rule onto the subset a Mirubato server accepts.

    Returns ``(wire, exact_needed)``. ``wire`` is
    ``FREQ=<DAILY|WEEKLY|MONTHLY>;INTERVAL=<n>[;BYDAY=<days>][;COUNT=<n>][;UNTIL=<YYYYMMDD>T235959Z]``.
    ``exact_needed`` is False only when ``wire`` means exactly what the rule
    means (so the exact rule need not be stored alongside).
    """
    norm = _normalized(parts)
    _check_parts(norm)
    freq = norm["FREQ"]
    interval = int(norm.get("INTERVAL", "1"))
    if freq == "YEARLY":
        wire_freq, wire_interval = "MONTHLY", interval * 12
    elif freq in ("HOURLY", "MINUTELY"):
        wire_freq, wire_interval = "DAILY", 1
    else:
        wire_freq, wire_interval = freq, interval
    out = [f"FREQ={wire_freq}", f"INTERVAL={wire_interval}"]
    byday = _parse_byday(norm["BYDAY"]) if "BYDAY" in norm else []
    days = sorted({wd for _, wd in byday}, key=_WIRE_DAY_ORDER.index)
    if wire_freq == "WEEKLY" and days:
        out.append("BYDAY=" + ",".join(days))
    if "COUNT" in norm:
        out.append(f"COUNT={int(norm['COUNT'])}")
    until = until_date(norm)
    if until is not None:
        out.append(f"UNTIL={until.year:04d}{until.month:02d}{until.day:02d}T235959Z")

    exact = (
        freq in ("DAILY", "WEEKLY", "MONTHLY")
        and set(norm) <= {"FREQ", "INTERVAL", "BYDAY", "COUNT", "UNTIL"}
        and (not byday or (freq == "WEEKLY" and all(n is None for n, _ in byday)))
        and ("UNTIL" not in norm or len(norm["UNTIL"]) == 8 or norm["UNTIL"].endswith("T235959Z"))
        and not (freq == "WEEKLY" and interval > 1 and "SU" in days)
    )
    return ";".join(out), not exact


def _normalized(parts: Mapping[str, str]) -> dict[str, str]:
    norm: dict[str, str] = {}
    for key, value in parts.items():
        k = str(key).strip().upper()
        if k not in _KEY_ORDER:
            raise RecurrenceError(f"bad RRULE: unknown part {k!r}")
        norm[k] = str(value).strip().upper()
    if "FREQ" not in norm:
        raise RecurrenceError("bad RRULE: FREQ is required")
    return norm


def _check_parts(parts: Mapping[str, str]) -> None:
    """Check values, ranges and the RFC 5545 combination rules."""
    if "FREQ" not in parts:
        raise RecurrenceError("bad RRULE: FREQ is required")
    freq = parts["FREQ"]
    if freq == "SECONDLY":
        raise RecurrenceError(
            "bad RRULE: FREQ=SECONDLY is not supported (practice sessions are at least a minute apart)"
        )
    if freq not in _FREQS:
        raise RecurrenceError(
            f"bad RRULE: FREQ={freq} is not one of YEARLY, MONTHLY, WEEKLY, DAILY, HOURLY, MINUTELY"
        )
    if "COUNT" in parts and "UNTIL" in parts:
        raise RecurrenceError("bad RRULE: COUNT and UNTIL cannot both be given")
    for key in ("INTERVAL", "COUNT"):
        if key in parts:
            value = parts[key]
            if not _UNSIGNED_INT.fullmatch(value) or int(value) < 1:
                raise RecurrenceError(f"bad RRULE: {key} must be a positive integer")
    if "UNTIL" in parts:
        _parse_until(parts["UNTIL"])
    for key in _INT_LIST_RANGES:
        if key in parts:
            _parse_int_list(key, parts[key])
    byday = _parse_byday(parts["BYDAY"]) if "BYDAY" in parts else []
    if "WKST" in parts and parts["WKST"] not in _WEEKDAYS:
        raise RecurrenceError(f"bad RRULE: WKST value {parts['WKST']!r} is not a weekday")

    # RFC 5545 section 3.3.10: combinations that MUST NOT be used.
    if any(n is not None for n, _ in byday):
        if freq not in ("MONTHLY", "YEARLY"):
            raise RecurrenceError(
                "bad RRULE: BYDAY with a number (like 2TU) needs FREQ=MONTHLY or FREQ=YEARLY"
            )
        if "BYWEEKNO" in parts:
            raise RecurrenceError("bad RRULE: BYDAY with a number (like 2TU) cannot be combined with BYWEEKNO")
    if "BYMONTHDAY" in parts and freq == "WEEKLY":
        raise RecurrenceError("bad RRULE: BYMONTHDAY cannot be used with FREQ=WEEKLY")
    if "BYYEARDAY" in parts and freq in ("MONTHLY", "WEEKLY", "DAILY"):
        raise RecurrenceError(f"bad RRULE: BYYEARDAY cannot be used with FREQ={freq}")
    if "BYWEEKNO" in parts and freq != "YEARLY":
        raise RecurrenceError("bad RRULE: BYWEEKNO needs FREQ=YEARLY")
    if "BYSETPOS" in parts and not any(k in parts for k in _BY_KEYS if k != "BYSETPOS"):
        raise RecurrenceError("bad RRULE: BYSETPOS needs another BY... part to pick from")


def _parse_int_list(key: str, value: str) -> tuple[int, ...]:
    low, high, signed = _INT_LIST_RANGES[key]
    pattern = _SIGNED_INT if signed else _UNSIGNED_INT
    span = f"{low}..{high} or -{high}..-{low}" if signed else f"{low}..{high}"
    out = []
    for item in value.split(","):
        item = item.strip()
        if not pattern.fullmatch(item):
            raise RecurrenceError(f"bad RRULE: {key} value {item!r} is not a number in {span}")
        number = int(item)
        if not (low <= abs(number) <= high if signed else low <= number <= high):
            raise RecurrenceError(f"bad RRULE: {key} value {item!r} is out of range ({span})")
        out.append(number)
    return tuple(out)


def _parse_byday(value: str) -> list[tuple[int | None, str]]:
    """BYDAY items as (ordinal or None, two-letter weekday)."""
    out: list[tuple[int | None, str]] = []
    for item in value.split(","):
        item = item.strip()
        match = _BYDAY_ITEM.fullmatch(item)
        if match is None or match.group(2) not in _WEEKDAYS:
            raise RecurrenceError(f"bad RRULE: BYDAY value {item!r} is not a weekday")
        ordinal = int(match.group(1)) if match.group(1) else None
        if ordinal is not None and not 1 <= abs(ordinal) <= 53:
            raise RecurrenceError(
                f"bad RRULE: BYDAY value {item!r} has an ordinal out of range (1..53 or -53..-1)"
            )
        out.append((ordinal, match.group(2)))
    return out


def _parse_until(value: str) -> tuple[datetime, str]:
    """UNTIL as (naive datetime, kind) with kind "date", "floating" or "utc"."""
    match = _UNTIL.fullmatch(value)
    bad = f"bad RRULE: UNTIL {value!r} is not YYYYMMDD, YYYYMMDDTHHMMSS or YYYYMMDDTHHMMSSZ"
    if match is None:
        raise RecurrenceError(bad)
    y, mo, d, h, mi, s, z = match.groups()
    try:
        if h is None:
            return datetime(int(y), int(mo), int(d)), "date"
        return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s)), ("utc" if z else "floating")
    except ValueError:
        raise RecurrenceError(bad) from None


def _rrule_kwargs(parts: Mapping[str, str], dtstart: datetime) -> dict[str, Any]:
    """dateutil rrule keyword arguments, every DTSTART-derived default made explicit.

    Making the defaults explicit is what allows re-anchoring the rule on a
    later DTSTART without changing its meaning (see :func:`_anchor_for`).
    ``until`` is never passed: cut-offs are applied while iterating.
    """
    freq = _FREQS[parts["FREQ"]]
    kw: dict[str, Any] = {
        "freq": freq,
        "interval": int(parts.get("INTERVAL", "1")),
        "wkst": _WEEKDAYS.index(parts.get("WKST", "MO")),  # RFC default; never calendar.firstweekday()
    }
    for key, name in _RRULE_KWARG.items():
        if key in parts:
            kw[name] = _parse_int_list(key, parts[key])
    if "BYDAY" in parts:
        kw["byweekday"] = tuple(_rr.weekday(_WEEKDAYS.index(wd), n) for n, wd in _parse_byday(parts["BYDAY"]))
    if "COUNT" in parts:
        kw["count"] = int(parts["COUNT"])

    # The defaults dateutil (and RFC 5545) take from DTSTART.
    if freq < _rr.HOURLY and "byhour" not in kw:
        kw["byhour"] = (dtstart.hour,)
    if freq < _rr.MINUTELY and "byminute" not in kw:
        kw["byminute"] = (dtstart.minute,)
    if "bysecond" not in kw:
        kw["bysecond"] = (dtstart.second,)
    if not any(name in kw for name in ("byweekno", "byyearday", "bymonthday", "byweekday")):
        if freq == _rr.YEARLY:
            kw.setdefault("bymonth", (dtstart.month,))
            kw["bymonthday"] = (dtstart.day,)
        elif freq == _rr.MONTHLY:
            kw["bymonthday"] = (dtstart.day,)
        elif freq == _rr.WEEKLY:
            kw["byweekday"] = (dtstart.weekday(),)
    return kw


def _build(kwargs: Mapping[str, Any], dtstart: datetime) -> _rr.rrule:
    try:
        return _rr.rrule(dtstart=dtstart, cache=False, **kwargs)
    except (ValueError, TypeError, OverflowError) as exc:
        raise _dateutil_error(exc, dtstart) from None


def _probe_build(parts: Mapping[str, str]) -> None:
    """Let dateutil itself check the rule (parse_rule has no real DTSTART).

    BYHOUR with FREQ=HOURLY and BYMINUTE with FREQ=MINUTELY are left out: whether
    the INTERVAL lattice reaches them depends on the start time, which
    :func:`validate` checks.
    """
    probe = dict(parts)
    if probe["FREQ"] == "HOURLY":
        probe.pop("BYHOUR", None)
    if probe["FREQ"] == "MINUTELY":
        probe.pop("BYMINUTE", None)
    _build(_rrule_kwargs(probe, _PROBE_DTSTART), _PROBE_DTSTART)


def _dateutil_error(exc: Exception, dtstart: datetime) -> RecurrenceError:
    text = str(exc)
    if "empty" in text:  # "Invalid rrule byxxx generates an empty set", "... resulting in empty rule"
        return RecurrenceError(
            f"bad RRULE: with this INTERVAL the rule never reaches its BYHOUR/BYMINUTE values "
            f"from the start time {dtstart:%H:%M}"
        )
    return RecurrenceError(f"bad RRULE: {text}")


def _days_possible(parts: Mapping[str, str]) -> bool:
    """False when BYMONTH, BYMONTHDAY and BYYEARDAY can never all hold on one day.

    These three are plain per-day filters in every frequency, so checking one
    leap and one common year settles it (e.g. BYMONTH=2;BYMONTHDAY=30).
    """
    months = set(_parse_int_list("BYMONTH", parts["BYMONTH"])) if "BYMONTH" in parts else None
    monthdays = set(_parse_int_list("BYMONTHDAY", parts["BYMONTHDAY"])) if "BYMONTHDAY" in parts else None
    yeardays = set(_parse_int_list("BYYEARDAY", parts["BYYEARDAY"])) if "BYYEARDAY" in parts else None
    if months is None and monthdays is None and yeardays is None:
        return True
    for year in (2023, 2024):
        year_len = 365 + calendar.isleap(year)
        for month in months or range(1, 13):
            month_len = calendar.monthrange(year, month)[1]
            first_yday = date(year, month, 1).timetuple().tm_yday
            for mday in range(1, month_len + 1):
                if monthdays is not None and not ({mday, mday - month_len - 1} & monthdays):
                    continue
                yday = first_yday + mday - 1
                if yeardays is not None and not ({yday, yday - year_len - 1} & yeardays):
                    continue
                return True
    return False


def _lattice_possible(kwargs: Mapping[str, Any], dtstart: datetime) -> bool:
    """Whether a DAILY/HOURLY/MINUTELY lattice ever meets its BYDAY/BYHOUR/BYMINUTE.

    The occurrences of such a rule lie on ``DTSTART + k * INTERVAL`` (days,
    hours or minutes). Taken modulo one week that is a fixed residue class, so
    enumerating one week of lattice points settles the question. A lattice
    that never reaches BYHOUR/BYMINUTE is an invalid rule (dateutil raises for
    it too, sometimes only while iterating): RecurrenceError. One that never
    meets BYDAY (``FREQ=DAILY;INTERVAL=7;BYDAY=TU`` from a Monday) is merely
    a rule without occurrences: False.
    """
    freq = kwargs["freq"]
    if freq not in (_rr.DAILY, _rr.HOURLY, _rr.MINUTELY):
        return True
    unit = {_rr.DAILY: 1440, _rr.HOURLY: 60, _rr.MINUTELY: 1}[freq]  # minutes per lattice step
    week = 10080 // unit
    first = (dtstart.weekday() * 1440 + dtstart.hour * 60 + dtstart.minute) // unit
    step = math.gcd(kwargs["interval"], week)
    weekdays = {wd.weekday for wd in kwargs["byweekday"]} if "byweekday" in kwargs else None
    hours = set(kwargs["byhour"]) if freq != _rr.DAILY and "byhour" in kwargs else None
    minutes = set(kwargs["byminute"]) if freq == _rr.MINUTELY and "byminute" in kwargs else None
    time_reached = False
    for point in range(first % step, week, step):
        minute_of_week = point * unit
        if hours is not None and minute_of_week % 1440 // 60 not in hours:
            continue
        if minutes is not None and minute_of_week % 60 not in minutes:
            continue
        time_reached = True
        if weekdays is None or minute_of_week // 1440 in weekdays:
            return True
    if not time_reached:
        raise _dateutil_error(ValueError("empty"), dtstart)
    return False


def _setpos_possible(kwargs: Mapping[str, Any]) -> bool:
    """False when BYSETPOS asks for positions a DAILY/HOURLY/MINUTELY period never has.

    Such a period holds a single day, so its set is just the times of day:
    BYHOUR x BYMINUTE x BYSECOND for DAILY, BYMINUTE x BYSECOND within the hour
    for HOURLY, BYSECOND within the minute for MINUTELY.
    """
    freq = kwargs["freq"]
    if "bysetpos" not in kwargs or freq not in (_rr.DAILY, _rr.HOURLY, _rr.MINUTELY):
        return True
    size = len(set(kwargs["bysecond"]))
    if freq in (_rr.DAILY, _rr.HOURLY):
        size *= len(set(kwargs["byminute"]))
    if freq == _rr.DAILY:
        size *= len(set(kwargs["byhour"]))
    return any(abs(pos) <= size for pos in kwargs["bysetpos"])


# --------------------------------------------------------------------------
# Zones and localization
# --------------------------------------------------------------------------


#: Files found in system zoneinfo directories that are not IANA zone names:
#: "right/..." zones count leap seconds (their offsets disagree with POSIX
#: time around transitions), "posix/..." are duplicates, and "localtime" /
#: "posixrules" depend on the machine.
_NOT_IANA_PREFIXES = ("right/", "posix/")
_NOT_IANA_NAMES = frozenset({"localtime", "posixrules"})


def get_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``, or RecurrenceError("unknown time zone '...'")."""
    if (
        not isinstance(name, str)
        or not name
        or name != name.strip()
        or name.startswith(_NOT_IANA_PREFIXES)
        or name in _NOT_IANA_NAMES
    ):
        raise RecurrenceError(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    except Exception:  # ZoneInfoNotFoundError, ValueError (bad key), OSError, ...
        raise RecurrenceError(f"unknown time zone {name!r}") from None


# --------------------------------------------------------------------------
# Compiled plans and bounded naive iteration
# --------------------------------------------------------------------------

_END_OF_DAY = time(23, 59, 59)
_LAST_NAIVE = datetime(9999, 12, 31, 23, 59, 59)
#: How far a naive local wall clock can be from its UTC instant (offsets are
#: within +-16 h, gap shifts within a day); used to widen naive query windows.
_NAIVE_MARGIN = timedelta(days=2)
#: Length of one first_slots() search chunk, before adding two rule periods.
_CHUNK = timedelta(days=366 * 40)
_PERIOD_DAYS = {
    _rr.YEARLY: 366.0,
    _rr.MONTHLY: 31.0,
    _rr.WEEKLY: 7.0,
    _rr.DAILY: 1.0,
    _rr.HOURLY: 1 / 24,
    _rr.MINUTELY: 1 / 1440,
}


@dataclass(frozen=True)
class _Plan:
    """A Recurrence resolved into what the iteration needs."""

    zone: ZoneInfo
    dtstart: datetime  # naive local DTSTART
    kwargs: Mapping[str, Any] | None  # rrule kwargs; None for a single session
    cutoff: datetime | None  # naive local, inclusive (plan end and UNTIL)
    exdates: frozenset[date]
    possible: bool  # False when the rule provably never matches


def _compile(rec: Recurrence) -> _Plan:
    zone = get_zone(rec.zone)
    if not isinstance(rec.start, date) or isinstance(rec.start, datetime):
        raise RecurrenceError(f"start must be a date, not {rec.start!r}")
    if rec.time is not None and (not isinstance(rec.time, time) or rec.time.tzinfo is not None):
        raise RecurrenceError(f"time of day must be a naive local time, not {rec.time!r}")
    if rec.end is not None and (not isinstance(rec.end, date) or isinstance(rec.end, datetime)):
        raise RecurrenceError(f"end must be a date, not {rec.end!r}")
    exdates = frozenset(rec.exdates or ())
    if any(not isinstance(d, date) or isinstance(d, datetime) for d in exdates):
        raise RecurrenceError("exdates must be dates")

    # dateutil drops microseconds from DTSTART; do the same everywhere.
    dtstart = datetime.combine(rec.start, rec.time or time()).replace(microsecond=0)
    cutoff = datetime.combine(rec.end, _END_OF_DAY) if rec.end is not None else None
    if rec.rule is None:
        return _Plan(zone, dtstart, None, cutoff, exdates, True)

    parts = parse_rule(rec.rule)
    if "UNTIL" in parts:
        until, kind = _parse_until(parts["UNTIL"])
        if kind == "date":
            until = datetime.combine(until.date(), _END_OF_DAY)
        elif kind == "utc":
            try:
                until = until.replace(tzinfo=timezone.utc).astimezone(zone).replace(tzinfo=None)
            except OverflowError:
                pass  # at the very edge of the calendar; the UTC wall clock is as good
        cutoff = until if cutoff is None else min(cutoff, until)
    kwargs = _rrule_kwargs(parts, dtstart)
    _build(kwargs, dtstart)  # dateutil's own checks against the real DTSTART
    possible = _days_possible(parts) and _lattice_possible(kwargs, dtstart) and _setpos_possible(kwargs)
    return _Plan(zone, dtstart, kwargs, cutoff, exdates, possible)


def _anchor_for(plan: _Plan, lo: datetime) -> datetime:
    """The latest DTSTART, at most ``lo``, from which the rule yields the same occurrences.

    That is the start of the rule period (on the INTERVAL lattice counted from
    DTSTART) containing ``lo``: 1 January, the 1st of the month, the WKST day,
    midnight, the full hour or the full minute. Only valid without COUNT,
    which counts from the real DTSTART.
    """
    start = plan.dtstart
    if lo <= start:
        return start
    kw = plan.kwargs
    assert kw is not None
    freq, interval = kw["freq"], kw["interval"]
    try:
        if freq == _rr.YEARLY:
            k = (lo.year - start.year) // interval
            return datetime(start.year + k * interval, 1, 1) if k > 0 else start
        if freq == _rr.MONTHLY:
            k = ((lo.year - start.year) * 12 + lo.month - start.month) // interval
            if k <= 0:
                return start
            index = start.year * 12 + start.month - 1 + k * interval
            return datetime(index // 12, index % 12 + 1, 1)
        if freq == _rr.WEEKLY:
            week0 = start.date() - timedelta(days=(start.weekday() - kw["wkst"]) % 7)
            k = (lo.date() - week0).days // (7 * interval)
            return datetime.combine(week0 + timedelta(days=7 * interval * k), time()) if k > 0 else start
        if freq == _rr.DAILY:
            k = (lo.date() - start.date()).days // interval
            return datetime.combine(start.date() + timedelta(days=interval * k), time()) if k > 0 else start
        step = timedelta(hours=interval) if freq == _rr.HOURLY else timedelta(minutes=interval)
        k = (lo - start) // step
        if k <= 0:
            return start
        point = start + k * step
        return point.replace(minute=0, second=0) if freq == _rr.HOURLY else point.replace(second=0)
    except (OverflowError, ValueError):  # absurd INTERVALs: just start at DTSTART
        return start


def _year_type(year: int) -> tuple[bool, int]:
    return calendar.isleap(year), date(year, 1, 1).weekday()


@lru_cache(maxsize=4096)
def _year_shift(first_year: int, last_year: int) -> int:
    """Whole years to add so [first_year, last_year] lands just below the year 9999.

    The target years must have the same layout as the originals (leap year and
    weekday of 1 January, for the years around them too), so every date keeps
    its weekday, week number and day of year and dateutil computes the very
    same occurrences there. Near the top of the calendar dateutil stops within
    decades when nothing matches, instead of running for millennia. Falls
    back to a multiple of 400 years (the Gregorian cycle, always exact).
    """
    if first_year <= 1 or last_year >= 9998:
        return 0
    years = range(first_year - 1, last_year + 2)
    layout = [_year_type(y) for y in years]
    for target_last in range(9998, 9998 - 84, -1):
        shift = target_last - last_year
        if shift <= 0:
            break
        if all(_year_type(y + shift) == t for y, t in zip(years, layout)):
            return shift
    return max(0, 400 * ((9998 - last_year) // 400))


def _shift_years(moment: datetime, years: int) -> datetime:
    return moment.replace(year=moment.year + years) if years else moment


def _naive_between(plan: _Plan, lo: datetime, hi: datetime) -> Iterator[datetime]:
    """Naive local occurrences in [lo, hi] (inclusive), in order, lazily, with bounded work.

    Honours COUNT (counted from DTSTART), UNTIL and the plan end. Exdates are
    not applied here.
    """
    lo = max(lo, plan.dtstart)
    if plan.cutoff is not None:
        hi = min(hi, plan.cutoff)
    if lo > hi:
        return
    if plan.kwargs is None:  # single session
        if lo <= plan.dtstart <= hi:
            yield plan.dtstart
        return
    if not plan.possible:
        return

    anchor = plan.dtstart if "count" in plan.kwargs else _anchor_for(plan, lo)
    shift = _year_shift(anchor.year, hi.year)
    lo_s, hi_s = _shift_years(lo, shift), _shift_years(hi, shift)
    occurrences = iter(_build(plan.kwargs, _shift_years(anchor, shift)))
    while True:
        try:
            moment = next(occurrences)
        except StopIteration:
            return
        except (ValueError, OverflowError) as exc:
            if "out of range" in str(exc) or isinstance(exc, OverflowError):
                return  # dateutil ran past the year 9999, far beyond hi
            raise _dateutil_error(exc, plan.dtstart) from None
        if moment > hi_s:
            return
        if moment >= lo_s:
            yield _shift_years(moment, -shift)


def _naive_from_start(plan: _Plan) -> Iterator[datetime]:
    """All naive occurrences from DTSTART, lazily, searched in bounded chunks.

    A chunk (40 years plus two rule periods) without any occurrence ends the
    search: the rule is over, or matches so rarely it is not a practice plan.
    """
    if plan.kwargs is None:
        yield from _naive_between(plan, plan.dtstart, plan.dtstart)
        return
    period_days = _PERIOD_DAYS[plan.kwargs["freq"]] * plan.kwargs["interval"]
    span = _CHUNK + timedelta(days=min(2 * period_days, 3_000_000.0))
    limit = plan.cutoff or _LAST_NAIVE
    lo = plan.dtstart
    while lo <= limit:
        hi = _LAST_NAIVE if _LAST_NAIVE - lo <= span else lo + span
        hi = min(hi, limit)
        found = False
        for moment in _naive_between(plan, lo, hi):
            found = True
            yield moment
        if not found or hi >= limit:
            return
        lo = hi + timedelta(seconds=1)


def _to_slot(naive: datetime, zone: ZoneInfo) -> Slot | None:
    try:
        start = localize(naive, zone).astimezone(timezone.utc)
        local = start.astimezone(zone)
    except OverflowError:  # within a day of year 1 or 9999: not representable
        return None
    return Slot(key=naive.isoformat(timespec="seconds"), start=start, local=local)


def _sorted_unique(slots: list[Slot]) -> list[Slot]:
    """Sort by UTC instant; of colliding slots keep the first in recurrence order."""
    slots.sort(key=lambda s: (s.start, s.key))
    out: list[Slot] = []
    for slot in slots:
        if not out or slot.start != out[-1].start:
            out.append(slot)
    return out


def _clamped(moment: datetime, delta: timedelta) -> datetime:
    try:
        return moment + delta
    except OverflowError:
        return datetime.max if delta > timedelta(0) else datetime.min


# --------------------------------------------------------------------------
# Public expansion API
# --------------------------------------------------------------------------


def validate(rec: Recurrence) -> None:
    """Raise RecurrenceError if ``rec`` cannot be used as a plan schedule.

    Checks the zone, that the end is not before the start, the rule, and that
    the rule is not denser than MAX_SESSIONS_PER_YEAR sessions in the 366 days
    from its first session (which is the 366 days from the start when the
    first session is on the start date). Always bounded work.
    """
    get_zone(rec.zone)
    if isinstance(rec.end, date) and isinstance(rec.start, date) and rec.end < rec.start:
        raise RecurrenceError(f"end date {rec.end.isoformat()} is before start date {rec.start.isoformat()}")
    plan = _compile(rec)
    if plan.kwargs is None:
        return
    first = next(_naive_from_start(plan), None)
    if first is None:
        return
    year_end = first + timedelta(days=366) - timedelta(seconds=1)
    within_year = itertools.islice(_naive_between(plan, first, year_end), MAX_SESSIONS_PER_YEAR + 1)
    if sum(1 for _ in within_year) > MAX_SESSIONS_PER_YEAR:
        raise RecurrenceError(
            f"rule expands to more than {MAX_SESSIONS_PER_YEAR} sessions a year; that is not a practice plan"
        )


def expand(rec: Recurrence, window_start: datetime, window_end: datetime) -> list[Slot]:
    """All slots with ``window_start <= slot.start < window_end`` (aware datetimes).

    Slots on an excluded date (by their original local date) are left out.
    The result is strictly increasing and unique by ``start``.
    """
    if window_start.tzinfo is None or window_end.tzinfo is None:
        raise TypeError("expand() needs time-zone aware window bounds")
    plan = _compile(rec)
    ws = window_start.astimezone(timezone.utc)
    we = window_end.astimezone(timezone.utc)
    if we <= ws:
        return []
    lo = _clamped(ws.replace(tzinfo=None), -_NAIVE_MARGIN)
    hi = _clamped(we.replace(tzinfo=None), _NAIVE_MARGIN)
    slots = []
    for naive in _naive_between(plan, lo, hi):
        if naive.date() in plan.exdates:
            continue
        slot = _to_slot(naive, plan.zone)
        if slot is not None and ws <= slot.start < we:
            slots.append(slot)
    return _sorted_unique(slots)


def first_slots(rec: Recurrence, n: int) -> list[Slot]:
    """The first ``n`` slots of the plan (fewer if it has fewer), e.g. for previews.

    The search gives up after 40 years (plus two rule periods) without any
    occurrence, so a rule that never matches returns ``[]`` quickly.
    """
    plan = _compile(rec)
    if n <= 0:
        return []
    slots: list[Slot] = []
    # Occurrences come in naive order but are ranked by UTC. Once a naive
    # occurrence is more than _NAIVE_MARGIN past the n-th UTC instant found so
    # far, nothing later can rank among the first n.
    horizon: datetime | None = None
    for naive in _naive_from_start(plan):
        if horizon is not None and naive > horizon:
            break
        if naive.date() in plan.exdates:
            continue
        slot = _to_slot(naive, plan.zone)
        if slot is None:
            continue
        slots.append(slot)
        if horizon is None and len(slots) >= n:
            ranked = _sorted_unique(list(slots))
            if len(ranked) >= n:
                slots = ranked
                horizon = _clamped(ranked[n - 1].start.replace(tzinfo=None), _NAIVE_MARGIN)
    return _sorted_unique(slots)[:n]


def why_no_sessions(rec: Recurrence) -> str | None:
    """None when the plan has at least one session; otherwise why it has none, in words (such a plan is refused:
    a rule that never matches is a mistake, not a plan). Bounded work, like :func:`first_slots`."""
    if first_slots(rec, 1):
        return None
    plan = _compile(rec)
    if plan.kwargs is None or rec.rule is None:
        return "its only day is excluded"
    parts = parse_rule(rec.rule)
    if not _days_possible(parts):
        return _impossible_days(parts)
    if not (_lattice_possible(plan.kwargs, plan.dtstart) and _setpos_possible(plan.kwargs)):
        return (f"counted from the start ({plan.dtstart:%a %d %b %Y %H:%M}) its steps never land on the days or "
                "times it asks for")
    if plan.cutoff is not None:
        return f"no session falls between the start ({plan.dtstart:%d %b %Y}) and the end ({plan.cutoff:%d %b %Y})"
    return f"it has no session in the {_CHUNK.days // 366} years after the start"


def _impossible_days(parts: Mapping[str, str]) -> str:
    """Why BYMONTH/BYMONTHDAY/BYYEARDAY never meet, e.g. ``February has no day 30``."""
    months = _parse_int_list("BYMONTH", parts["BYMONTH"]) if "BYMONTH" in parts else ()
    days = _parse_int_list("BYMONTHDAY", parts["BYMONTHDAY"]) if "BYMONTHDAY" in parts else ()
    if months and days and "BYYEARDAY" not in parts and min(days) > 0:
        names = [calendar.month_name[m] for m in sorted(set(months))]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        which = " or ".join(str(d) for d in sorted(set(days)))
        return f"{listed} {'has' if len(names) == 1 else 'have'} no day {which}"
    filters = ";".join(f"{key}={parts[key]}" for key in ("BYMONTH", "BYMONTHDAY", "BYYEARDAY") if key in parts)
    return f"no calendar day matches {filters}"


def skipped_months(rec: Recurrence) -> dict[int, list[int]]:
    """A monthly rule on the 29th, 30th or 31st (``BYMONTHDAY``, or the start's day) has no session in the
    months without that day. For each such day, those months (1-12; February counts for the 29th, as it lacks
    one in common years). Empty for any other rule."""
    if rec.rule is None:
        return {}
    kwargs = _compile(rec).kwargs
    if kwargs is None or kwargs["freq"] != _rr.MONTHLY:
        return {}
    if any(key in kwargs for key in ("byweekday", "byyearday", "byweekno", "bysetpos")):
        return {}
    months = kwargs.get("bymonth") or range(1, 13)
    result: dict[int, list[int]] = {}
    for day in sorted({d for d in kwargs.get("bymonthday", ()) if d >= 29}):
        lacking = [month for month in sorted(set(months)) if calendar.monthrange(2023, month)[1] < day]
        if lacking:
            result[day] = lacking
    return result


def occurrence_id(plan_id: str, slot_key: str) -> str:
    """Deterministic occurrence id: the same plan and slot give the same id on every device."""
    return "plan_occ_" + uuid.uuid5(NAMESPACE, f"{plan_id}|{slot_key}").hex[:20]
