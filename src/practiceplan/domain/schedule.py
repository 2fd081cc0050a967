"""Pure scheduling decisions: skip/unskip, reschedule, cascades (shift, spread), defer, catch-up suggestions,
the calendar grid, the audit-history view, reminder selection and the iCalendar (RFC 5545) text.

No I/O, no clock reads: callers pass ``now``, zones, and the occurrences they loaded. Everything written back
stays inside the wire format (ARCHITECTURE.md "Where extensions live"): a moved occurrence keeps its id and
its ``scheduled`` status, ``metrics.originalStart`` remembers its first slot, and every decision appends one
plain object to ``metrics.history`` (string values only).

Days (capacity, "one session of a plan per day", defer's free day) are calendar dates in the user's zone;
a cascade shift keeps wall-clock times in the plan's zone, so it is DST-safe.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from practiceplan.domain.models import (
    is_completed,
    is_touched,
    iso_z,
    occurrence_end,
    occurrence_history,
    occurrence_start,
    parse_instant,
)
from practiceplan.domain.occurrences import deadline, local_day_start, next_starts
from practiceplan.domain.tz import localize
from practiceplan.errors import InvalidInputError

UTC = timezone.utc

CATCH_UP_DAYS = 7  # spread / catch-up look at sessions missed in the last 7 days
SPREAD_DAYS = 14  # how many days (from the first one) a spread may use
MIN_EVIDENCE = 3  # finished sessions a (weekday, daypart) cell needs before a better-time suggestion
MIN_GAIN = 0.25  # predicted completion must rise by at least 25 points
MAX_PER_DAY = 3  # overload suggestions per overloaded day
DAYPART_TIMES = {"morning": time(9, 0), "afternoon": time(15, 0), "evening": time(19, 0)}
ALL_DAY_REMINDER = time(8, 0)  # sessions without a time of day are reminded at 08:00 local
SUGGESTION_KINDS = ("overload", "catch-up", "better-time")


# --------------------------------------------------------------------------- small parsers


_DURATION = re.compile(r"^(?:(\d{1,4})\s*h(?:ours?|rs?)?)?\s*(?:(\d{1,5})\s*m(?:in(?:utes?|s)?)?)?$")


def parse_minutes(text: str, what: str, *, minimum: int = 0, maximum: int = 10_080) -> int:
    """``"45m"``, ``"45"``, ``"1h"``, ``"1h30"``, ``"1h30m"``, ``"90 min"`` -> minutes."""
    value = (text or "").strip().lower()
    minutes: int | None = None
    if value.isdigit():
        minutes = int(value)
    elif value:
        match = _DURATION.match(value)
        if match is None and re.fullmatch(r"\d{1,4}\s*h\s*\d{1,2}", value):
            hours, _, rest = value.partition("h")
            minutes = int(hours) * 60 + int(rest)
        elif match and (match[1] or match[2]):
            minutes = int(match[1] or 0) * 60 + int(match[2] or 0)
    if minutes is None:
        raise InvalidInputError(f"{what} '{text}' is not a duration", hint="use minutes or hours, e.g. 45m, 90, 1h30")
    if not minimum <= minutes <= maximum:
        raise InvalidInputError(f"{what} must be between {minimum} and {maximum} minutes, not {minutes}",
                                hint="use minutes or hours, e.g. 45m, 90, 1h30")
    return minutes


# --------------------------------------------------------------------------- history


def history_record(now: datetime, action: str, **fields: Any) -> dict[str, Any]:
    """One audit record: ``{"at", "action", ...}`` with the None-valued fields left out."""
    record: dict[str, Any] = {"at": iso_z(now), "action": action}
    record.update({key: value for key, value in fields.items() if value is not None})
    return record


def _with_history(occ: dict[str, Any], record: dict[str, Any], now: datetime) -> dict[str, Any]:
    updated = copy.deepcopy(occ)
    metrics = dict(updated.get("metrics") or {})
    metrics["history"] = [*occurrence_history(occ), record]
    updated["metrics"] = metrics
    updated["updatedAt"] = iso_z(now)
    return updated


@dataclass(frozen=True)
class Move:
    """One occurrence before and after a decision (a skip, a move, a cascade step)."""

    before: dict[str, Any]
    after: dict[str, Any]

    @property
    def id(self) -> str:
        return self.after["id"]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "planId": self.after.get("planId"),
            "from": self.before.get("scheduledStart"),
            "to": self.after.get("scheduledStart"),
            "statusBefore": self.before.get("status", "scheduled"),
            "statusAfter": self.after.get("status", "scheduled"),
            "occurrence": self.after,
        }


def _require_live(occ: dict[str, Any]) -> None:
    if occ.get("deletedAt"):
        raise InvalidInputError("this session was deleted", hint="list sessions with `practiceplan occurrences`")


# --------------------------------------------------------------------------- skip / unskip


def skip(occ: dict[str, Any], *, now: datetime, reason: str | None) -> dict[str, Any]:
    """Excuse a session: status ``skipped`` (it is neither completed nor missed) plus a history record."""
    _require_live(occ)
    status = occ.get("status", "scheduled")
    if is_completed(occ):
        raise InvalidInputError(
            "this session is checked in, so it cannot be skipped",
            hint="undo the check-in first with `practiceplan uncheck`",
        )
    if status == "skipped":
        raise InvalidInputError("this session is already skipped", hint="`practiceplan unskip` reverts it")
    if status != "scheduled":
        raise InvalidInputError(f"this session is {status}; only scheduled sessions can be skipped",
                                hint="see what happened to it with `practiceplan occurrences --history OCC`")
    updated = _with_history(occ, history_record(now, "skip", reason=reason), now)
    updated["status"] = "skipped"
    return updated


def unskip(occ: dict[str, Any], *, now: datetime, reason: str | None) -> dict[str, Any]:
    """Revert a skip: the session is scheduled again (its slot, moved or not, is unchanged)."""
    _require_live(occ)
    if occ.get("status") != "skipped":
        raise InvalidInputError(
            f"this session is {occ.get('status', 'scheduled')}, not skipped, so there is nothing to unskip",
            hint="see what happened to it with `practiceplan occurrences --history OCC`",
        )
    updated = _with_history(occ, history_record(now, "unskip", reason=reason), now)
    updated["status"] = "scheduled"
    return updated


# --------------------------------------------------------------------------- moves


def occurrence_length(occ: dict[str, Any]) -> timedelta | None:
    start, end = occurrence_start(occ), occurrence_end(occ)
    return end - start if start and end and end > start else None


def check_movable(occ: dict[str, Any]) -> None:
    _require_live(occ)
    if is_completed(occ):
        raise InvalidInputError(
            "this session is checked in, so it cannot be moved",
            hint="undo the check-in first with `practiceplan uncheck`",
        )
    status = occ.get("status", "scheduled")
    if status == "skipped":
        raise InvalidInputError("this session is skipped", hint="unskip it first with `practiceplan unskip`")
    if status != "scheduled":
        raise InvalidInputError(f"this session is {status}; only scheduled sessions can be moved",
                                hint="see what happened to it with `practiceplan occurrences --history OCC`")
    if occurrence_start(occ) is None:
        raise InvalidInputError("this session has no scheduled start, so it cannot be moved",
                                hint="it came from another device without a time; edit it there")


def move(
    occ: dict[str, Any],
    new_start: datetime,
    *,
    now: datetime,
    reason: str | None = None,
    length: timedelta | None = None,
    via: str | None = None,
) -> dict[str, Any]:
    """Move one occurrence: same id, new start (and end), ``metrics.originalStart`` set on the first move.

    ``length`` is the new duration (default: the session's own). History gets
    ``{"at", "action": "reschedule", "from", "to", "reason"?, "via"?}``.
    """
    check_movable(occ)
    start = occurrence_start(occ)
    assert start is not None
    new_start = new_start.astimezone(UTC)
    if new_start == start:
        raise InvalidInputError(f"this session is already at {iso_z(start)}", hint="give --to another time")
    length = length if length is not None else occurrence_length(occ)
    record = history_record(now, "reschedule", **{"from": occ["scheduledStart"], "to": iso_z(new_start),
                                                  "reason": reason, "via": via})
    updated = _with_history(occ, record, now)
    updated["scheduledStart"] = iso_z(new_start)
    updated["scheduledEnd"] = iso_z(new_start + length) if length else None
    if not updated["metrics"].get("originalStart"):
        updated["metrics"]["originalStart"] = occ["scheduledStart"]
    return updated


def is_moved(occ: dict[str, Any]) -> bool:
    original = (occ.get("metrics") or {}).get("originalStart")
    return bool(original) and original != occ.get("scheduledStart")


def _local_naive(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def cascade_shift(
    target: dict[str, Any],
    plan_occurrences: Iterable[dict[str, Any]],
    new_start: datetime,
    *,
    now: datetime,
    zone: ZoneInfo,
    reason: str | None = None,
    length: timedelta | None = None,
) -> list[Move]:
    """Move ``target`` to ``new_start`` and every later *untouched* live occurrence of its plan by the same
    wall-clock offset in ``zone`` (the plan's zone: 18:00 stays 18:00 across DST). Touched occurrences
    (completed, skipped, moved, with history) stay where they are. Result in schedule order."""
    check_movable(target)
    start = occurrence_start(target)
    assert start is not None
    offset = _local_naive(new_start, zone) - _local_naive(start, zone)
    if offset == timedelta(0):
        raise InvalidInputError(f"this session is already at {iso_z(start)}", hint="give --to another time")
    moves = [Move(target, move(target, new_start, now=now, reason=reason, length=length, via="shift"))]
    later = sorted(
        (
            o for o in plan_occurrences
            if o["id"] != target["id"] and not o.get("deletedAt") and not is_touched(o)
            and o.get("planId") == target.get("planId")
            and (occurrence_start(o) or start) > start
        ),
        key=lambda o: (o["scheduledStart"], o["id"]),
    )
    for occ in later:
        old = occurrence_start(occ)
        assert old is not None
        shifted = localize(_local_naive(old, zone) + offset, zone).astimezone(UTC)
        moves.append(Move(occ, move(occ, shifted, now=now, reason=reason, via="shift")))
    return moves


@dataclass(frozen=True)
class Booking:
    """Something occupying a day: a live session (of any plan) with its minutes."""

    occ_id: str
    plan_id: str
    day: date
    minutes: int


def day_of(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


def bookings_of(
    occurrences: Iterable[dict[str, Any]], minutes_of: Callable[[dict[str, Any]], int], *, now: datetime,
    zone: ZoneInfo, week_start: int = 0,
) -> list[Booking]:
    """Days' loads: live sessions that are completed or still to do (skipped and missed ones use no time)."""
    live = [o for o in occurrences if not o.get("deletedAt") and occurrence_start(o) is not None]
    following = next_starts(live)
    result = []
    for occ in live:
        status = occ.get("status", "scheduled")
        if not is_completed(occ):
            if status != "scheduled":
                continue
            due_by = deadline(occ, zone, next_start=following.get(occ["id"]), week_start=week_start)
            if due_by is not None and due_by <= now:
                continue  # missed: it takes no time on its day
        start = occurrence_start(occ)
        assert start is not None
        result.append(Booking(occ["id"], occ.get("planId", ""), day_of(start, zone), minutes_of(occ)))
    return result


def _candidate(day: date, at: time, zone: ZoneInfo) -> datetime:
    return localize(datetime.combine(day, at), zone).astimezone(UTC)


def _acceptable(instant: datetime, day: date, *, now: datetime, zone: ZoneInfo, all_day: bool) -> bool:
    return instant > now or (all_day and day >= day_of(now, zone))


def spread(
    movers: Sequence[tuple[dict[str, Any], int]],
    bookings: Iterable[Booking],
    *,
    capacity: Callable[[date], int],
    first_day: date,
    days: int,
    now: datetime,
    zone: ZoneInfo,
    all_day: bool = False,
    reason: str | None = None,
    title: str = "this plan",
) -> list[Move]:
    """Place each of ``movers`` ((occurrence, minutes), one plan) on its own day from ``first_day`` on, at its
    own local time of day, in schedule order, each on the earliest day that (a) has no other session of the
    plan, (b) stays within ``capacity(day)`` minutes with everything already booked, and (c) is not in the
    past. Raises InvalidInputError when one does not fit within ``days`` days (nothing is moved then)."""
    ordered = sorted(movers, key=lambda item: (item[0]["scheduledStart"], item[0]["id"]))
    moving = {occ["id"] for occ, _ in ordered}
    plan_ids = {occ.get("planId") for occ, _ in ordered}
    load: dict[date, int] = {}
    plan_days: set[date] = set()
    for booking in bookings:
        if booking.occ_id in moving:
            continue
        load[booking.day] = load.get(booking.day, 0) + booking.minutes
        if booking.plan_id in plan_ids:
            plan_days.add(booking.day)
    moves: list[Move] = []
    earliest = first_day
    last_day = first_day + timedelta(days=days - 1)
    for occ, minutes in ordered:
        check_movable(occ)
        start = occurrence_start(occ)
        assert start is not None
        at = start.astimezone(zone).time().replace(tzinfo=None)
        day = earliest
        placed = None
        while day <= last_day:
            instant = _candidate(day, at, zone)
            if (
                day not in plan_days
                and load.get(day, 0) + minutes <= capacity(day)
                and _acceptable(instant, day, now=now, zone=zone, all_day=all_day)
            ):
                placed = (day, instant)
                break
            day += timedelta(days=1)
        if placed is None:
            raise InvalidInputError(
                f"cannot fit {len(ordered)} session(s) of '{title}' into the {days} days from {first_day} "
                "with one session of the plan per day and within the daily capacity",
                hint="raise --cap, allow more --days, or skip some with `practiceplan skip`",
            )
        day, instant = placed
        plan_days.add(day)
        load[day] = load.get(day, 0) + minutes
        earliest = day + timedelta(days=1)
        if instant != start:
            moves.append(Move(occ, move(occ, instant, now=now, reason=reason, via="spread")))
    return moves


def missed(
    occurrences: Iterable[dict[str, Any]], *, now: datetime, zone: ZoneInfo, week_start: int = 0,
) -> list[dict[str, Any]]:
    """Live, still-scheduled occurrences whose deadline has passed (schedule order)."""
    live = [o for o in occurrences if not o.get("deletedAt") and occurrence_start(o) is not None]
    following = next_starts(live)
    result = []
    for occ in sorted(live, key=lambda o: (o["scheduledStart"], o["id"])):
        if occ.get("status", "scheduled") != "scheduled" or is_completed(occ):
            continue
        due_by = deadline(occ, zone, next_start=following.get(occ["id"]), week_start=week_start)
        if due_by is not None and due_by <= now:
            result.append(occ)
    return result


def next_free_day(
    occ: dict[str, Any], occupied: set[date], *, now: datetime, zone: ZoneInfo, all_day: bool = False,
    limit_days: int = 366,
) -> datetime:
    """Defer: the first day after the session's own day (and not in the past) on which the plan has no other
    session, at the session's local time of day."""
    check_movable(occ)
    start = occurrence_start(occ)
    assert start is not None
    at = start.astimezone(zone).time().replace(tzinfo=None)
    day = day_of(start, zone) + timedelta(days=1)
    for _ in range(limit_days):
        instant = _candidate(day, at, zone)
        if day not in occupied and _acceptable(instant, day, now=now, zone=zone, all_day=all_day):
            return instant
        day += timedelta(days=1)
    raise InvalidInputError(
        f"the plan has no free day in the {limit_days} days after {day_of(start, zone)}",
        hint="move it to a given time with `practiceplan reschedule OCC --to WHEN`",
    )


# --------------------------------------------------------------------------- the calendar grid


def session_state(occ: dict[str, Any], due_by: datetime | None, now: datetime) -> str:
    """done | skipped | missed | moved | due."""
    if is_completed(occ):
        return "done"
    status = occ.get("status", "scheduled")
    if status == "skipped":
        return "skipped"
    if status == "expired" or (due_by is not None and due_by <= now):
        return "missed"
    return "moved" if is_moved(occ) else "due"


def calendar(
    occurrences: Iterable[dict[str, Any]],
    titles: dict[str, str],
    *,
    now: datetime,
    zone: ZoneInfo,
    first_day: date,
    weeks: int,
    week_start: int = 0,
    short_ids: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Week rows of seven day cells. Each cell lists its sessions (state, local time, title; a moved one
    with its original slot) and ``movedAway``: sessions whose original slot was that day."""
    first = first_day - timedelta(days=(first_day.weekday() - week_start) % 7)
    last = first + timedelta(days=7 * weeks)
    live = [o for o in occurrences if not o.get("deletedAt") and occurrence_start(o) is not None]
    following = next_starts(live)
    cells: dict[date, dict[str, Any]] = {
        first + timedelta(days=i): {"date": (first + timedelta(days=i)).isoformat(), "sessions": [], "movedAway": []}
        for i in range(7 * weeks)
    }
    for occ in sorted(live, key=lambda o: (o["scheduledStart"], o["id"])):
        start = occurrence_start(occ)
        assert start is not None
        due_by = deadline(occ, zone, next_start=following.get(occ["id"]), week_start=week_start)
        state = session_state(occ, due_by, now)
        original = parse_instant((occ.get("metrics") or {}).get("originalStart")) if is_moved(occ) else None
        item: dict[str, Any] = {
            "id": occ["id"],
            "shortId": (short_ids or {}).get(occ["id"], occ["id"]),
            "planId": occ.get("planId"),
            "title": titles.get(occ.get("planId", ""), "?"),
            "start": occ["scheduledStart"],
            "localTime": start.astimezone(zone).strftime("%H:%M"),
            "state": state,
            "status": occ.get("status", "scheduled"),
            "moved": original is not None,
            "originalStart": iso_z(original) if original else None,
            "originalLocal": original.astimezone(zone).strftime("%a %d %b %H:%M") if original else None,
            "originalDay": original.astimezone(zone).strftime("%a %d") if original else None,
        }
        cell = cells.get(day_of(start, zone))
        if cell is not None:
            cell["sessions"].append(item)
        if original is not None:
            away = cells.get(day_of(original, zone))
            if away is not None:
                away["movedAway"].append({
                    "id": occ["id"], "shortId": item["shortId"], "planId": item["planId"], "title": item["title"],
                    "originalLocalTime": original.astimezone(zone).strftime("%H:%M"),
                    "to": occ["scheduledStart"], "toLocal": start.astimezone(zone).strftime("%a %d %b %H:%M"),
                    "toDay": start.astimezone(zone).strftime("%a %d"),
                })
    days = [cells[first + timedelta(days=i)] for i in range(7 * weeks)]
    counts = {state: 0 for state in ("done", "due", "missed", "skipped", "moved")}
    for cell in days:
        for item in cell["sessions"]:
            counts[item["state"]] += 1
    return {
        "now": iso_z(now),
        "timezone": zone.key,
        "from": first.isoformat(),
        "to": (last - timedelta(days=1)).isoformat(),
        "today": day_of(now, zone).isoformat(),
        "weeks": [{"weekStart": days[i]["date"], "days": days[i : i + 7]} for i in range(0, len(days), 7)],
        "counts": counts,
    }


# --------------------------------------------------------------------------- history view


def _short_day(instant: datetime | None, zone: ZoneInfo) -> str:
    if instant is None:
        return "?"
    local = instant.astimezone(zone)
    return f"{local.day} {local:%b}"


def _slot(value: object, zone: ZoneInfo) -> str:
    instant = parse_instant(value)
    return instant.astimezone(zone).strftime("%a %d %b %H:%M") if instant else "?"


def describe_history(occ: dict[str, Any], zone: ZoneInfo) -> list[dict[str, Any]]:
    """Each history record with a one-line text, e.g. ``Skipped on 12 Jun: travelling``."""
    lines = []
    for record in occurrence_history(occ):
        action = record.get("action")
        when = _short_day(parse_instant(record.get("at")), zone)
        reason = record.get("reason")
        if action == "skip":
            text = f"Skipped on {when}"
        elif action == "unskip":
            text = f"Unskipped on {when}"
        elif action == "reschedule":
            via = {"shift": " (cascade)", "spread": " (spread)", "defer": " (deferred)",
                   "suggest": " (suggestion)"}.get(str(record.get("via")), "")
            text = f"Rescheduled on {when}{via} from {_slot(record.get('from'), zone)} to {_slot(record.get('to'), zone)}"
        elif action == "checkin":
            minutes = record.get("minutes")
            text = f"Checked in on {when}" + (f" ({minutes} min)" if minutes else "")
        elif action == "uncheck":
            text = f"Check-in undone on {when}"
            if reason == "user_initiated":
                reason = None
        else:
            text = f"{str(action or 'change').capitalize()} on {when}"
        if reason:
            text += f": {reason}"
        lines.append({**record, "text": text})
    return lines


# --------------------------------------------------------------------------- suggestions


@dataclass
class Suggestion:
    kind: str  # overload | catch-up | better-time
    message: str
    occurrence_id: str
    plan_id: str
    to: str | None = None  # ISO-Z target of a single move
    cascade: str | None = None  # "spread" for catch-up
    cap: int | None = None
    moves: list[dict[str, Any]] = field(default_factory=list)  # [{"id", "from", "to"}]
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "occurrenceId": self.occurrence_id,
                "planId": self.plan_id, "to": self.to, "cascade": self.cascade, "cap": self.cap,
                "moves": self.moves, "details": self.details}


@dataclass(frozen=True)
class Rates:
    """Predicted completion rates: ``plan(plan_id, weekday, daypart)`` and evidence counts, from a RateModel."""

    predict: Callable[[tuple[str, int, str]], float]
    plan_evidence: Callable[[tuple[str, int, str]], int]
    overall: Callable[[int, str], tuple[float, int]]  # (weekday, daypart) -> (predicted rate, evidence) over plans


def rates_from_model(model: Any) -> Rates:
    """Wrap an :class:`analytics.RateModel` (plan cells, and the same Beta posterior over all plans)."""
    from practiceplan.domain.insights import PRIOR_STRENGTH

    pooled: dict[tuple[int, str], list[int]] = {}
    for (_plan, weekday, part), (done, miss) in model.counts.items():
        cell = pooled.setdefault((weekday, part), [0, 0])
        cell[0] += done
        cell[1] += miss
    base = (model.completed + 1) / (model.completed + model.missed + 2)

    def overall(weekday: int, part: str) -> tuple[float, int]:
        done, miss = pooled.get((weekday, part), (0, 0))
        a, b = PRIOR_STRENGTH * base + done, PRIOR_STRENGTH * (1 - base) + miss
        return a / (a + b), done + miss

    def mean(key: tuple[str, int, str]) -> float:
        a, b = model.posterior(key)  # the posterior mean, as RateModel.predict()[0], without the interval
        return a / (a + b)

    return Rates(
        predict=mean,
        plan_evidence=lambda key: sum(model.counts.get(key, (0, 0))),
        overall=overall,
    )


def _daypart(local: datetime) -> str:
    hour = local.hour
    return "morning" if hour < 12 else "afternoon" if hour < 17 else "evening"


def _day_label(day: date, today: date) -> str:
    if day == today:
        return "Today"
    if day == today + timedelta(days=1):
        return "Tomorrow"
    return day.strftime("%A")


def suggest(
    *,
    now: datetime,
    zone: ZoneInfo,
    plans: dict[str, dict[str, Any]],
    occurrences: list[dict[str, Any]],
    forecast_days: list[dict[str, Any]],
    capacity: Callable[[date], int],
    minutes_of: Callable[[dict[str, Any]], int],
    has_time: Callable[[str], bool],
    rates: Rates | Callable[[], Rates | None] | None = None,
    week_start: int = 0,
    limit: int | None = None,
) -> list[Suggestion]:
    """Concrete, deterministic moves (same data -> same list, in the same order):

    1. **overload** — for each forecast day over capacity (nearest first), move its smallest session that
       removes the excess (else its largest) to the nearest later (else earlier) day with room and no session
       of the same plan, same time of day; up to MAX_PER_DAY per day while the day is still over.
    2. **catch-up** — per plan with sessions missed in the last CATCH_UP_DAYS days: spread them over the
       coming days (the same placement as ``reschedule --cascade spread``), when they fit.
    3. **better-time** — an upcoming session in a (weekday, daypart) where the plan's predicted completion
       rate (with >= MIN_EVIDENCE finished sessions behind it) is at least MIN_GAIN below another slot within
       three days that has its own evidence (the plan's, else all plans').

    ``rates`` may be a function returning them, called only when step 3 runs; ``limit`` stops as soon as the
    first ``limit`` suggestions are known (``today`` asks for one).
    ``occurrences``: live occurrences of live plans from CATCH_UP_DAYS + 1 days ago to a week past the
    forecast's end. Every suggestion is computed against the current plan, so each is valid on its own and its
    command reproduces it; only the overload moves off one day (and better-time moves after them) see the loads
    as if the moves before them were applied.
    """
    today = day_of(now, zone)
    by_id = {o["id"]: o for o in occurrences}
    live = [o for o in occurrences if not o.get("deletedAt") and o.get("planId") in plans]
    from_today = iso_z(local_day_start(today, zone))
    bookings = bookings_of([o for o in live if o["scheduledStart"] >= from_today], minutes_of, now=now, zone=zone,
                           week_start=week_start)
    load: dict[date, int] = {}
    plan_days: dict[str, set[date]] = {}
    for booking in bookings:
        load[booking.day] = load.get(booking.day, 0) + booking.minutes
        plan_days.setdefault(booking.plan_id, set()).add(booking.day)
    horizon = [date.fromisoformat(d["date"]) for d in forecast_days]
    last_day = horizon[-1] if horizon else today
    moved: set[str] = set()
    stuck: set[str] = set()  # overloaded sessions with nowhere to go
    result: list[Suggestion] = []

    def title(plan_id: str) -> str:
        return str((plans.get(plan_id) or {}).get("title") or "?")

    def book(occ: dict[str, Any], old_day: date, new_day: date, minutes: int) -> None:
        load[old_day] = load.get(old_day, 0) - minutes
        load[new_day] = load.get(new_day, 0) + minutes
        days = plan_days.setdefault(occ.get("planId", ""), set())
        days.discard(old_day)
        days.add(new_day)
        moved.add(occ["id"])

    def fits(plan_id: str, day: date, minutes: int) -> bool:
        return day not in plan_days.get(plan_id, set()) and load.get(day, 0) + minutes <= capacity(day)

    catch_ups: list[Suggestion] = []
    # Each kind works on the current plan, so that every suggestion is a fix on its own (a catch-up's command,
    # `reschedule OCC --cascade spread`, recomputes exactly this placement); only several overload moves off
    # one day build on each other. After applying one, `suggest` recomputes the rest.
    # 2. catch-up: spread the sessions missed in the last CATCH_UP_DAYS days, per plan
    recent = local_day_start(today - timedelta(days=CATCH_UP_DAYS), zone)
    missed_now = [o for o in missed([o for o in live if o["scheduledStart"] >= iso_z(recent)], now=now, zone=zone,
                                    week_start=week_start)
                  if o["id"] not in moved]
    by_plan: dict[str, list[dict[str, Any]]] = {}
    for occ in missed_now:
        by_plan.setdefault(occ["planId"], []).append(occ)
    for plan_id in sorted(by_plan, key=lambda pid: (title(pid).lower(), pid)):
        group = by_plan[plan_id]
        current = list(bookings)  # each catch-up on its own: what its command will compute
        try:
            moves = spread([(o, minutes_of(o)) for o in group], current, capacity=capacity, first_day=today,
                           days=SPREAD_DAYS, now=now, zone=zone, all_day=not has_time(plan_id), title=title(plan_id))
        except InvalidInputError:
            continue
        if not moves:
            continue
        moved.update(step.id for step in moves)
        new_days = [day_of(occurrence_start(m.after) or now, zone) for m in moves]
        span = f"{new_days[0]:%a}" if len(new_days) == 1 else f"{new_days[0]:%a}–{new_days[-1]:%a}"
        count = len(group)
        message = (f"{count} session{'s' if count != 1 else ''} of '{title(plan_id)}' missed in the last "
                   f"{CATCH_UP_DAYS} days: spread {'them' if count != 1 else 'it'} over {span} "
                   f"({', '.join(f'{d:%a %d %b}' for d in new_days)})?")
        catch_ups.append(Suggestion(
            "catch-up", message, group[0]["id"], plan_id, cascade="spread",
            moves=[{"id": m.id, "from": m.before["scheduledStart"], "to": m.after["scheduledStart"]} for m in moves],
            details={"missed": [o["id"] for o in group]},
        ))

    # the forecast also counts sessions beyond the materialised horizon: take the larger load per day
    for bucket in forecast_days:
        day = date.fromisoformat(bucket["date"])
        load[day] = max(load.get(day, 0), bucket["minutes"])
    # 1. overload (listed first)
    for bucket in forecast_days:
        day = date.fromisoformat(bucket["date"])
        for _ in range(MAX_PER_DAY):
            over = load.get(day, 0) - capacity(day)
            if over <= 0:
                break
            candidates = []
            for occ_id in bucket["occurrenceIds"]:
                occ = by_id.get(occ_id)
                start = occurrence_start(occ) if occ else None
                if occ is None or start is None or occ_id in moved or occ_id in stuck or start <= now:
                    continue
                if occ.get("status", "scheduled") != "scheduled" or is_completed(occ) or occ.get("planId") not in plans:
                    continue
                candidates.append((occ, start, minutes_of(occ)))
            if not candidates:
                break
            enough = sorted((c for c in candidates if c[2] >= over), key=lambda c: (c[2], c[1], c[0]["id"]))
            rest = sorted(candidates, key=lambda c: (-c[2], c[1], c[0]["id"]))
            occ, start, minutes = (enough or rest)[0]
            at = start.astimezone(zone).time().replace(tzinfo=None)
            all_day = not has_time(occ["planId"])
            options = [day + timedelta(days=i) for i in range(1, 7)] + [day - timedelta(days=i) for i in range(1, 7)]
            target = None
            for other in options:
                if other < today or other > last_day + timedelta(days=6):
                    continue
                instant = _candidate(other, at, zone)
                if fits(occ["planId"], other, minutes) and _acceptable(instant, other, now=now, zone=zone,
                                                                         all_day=all_day):
                    target = (other, instant)
                    break
            if target is None:
                stuck.add(occ["id"])  # nowhere to go: do not try it again
                continue
            other, instant = target
            book(occ, day, other, minutes)
            when = instant.astimezone(zone).strftime("%H:%M")
            message = (f"{_day_label(day, today)} ({day:%a %d %b}) is {over} min over capacity: move "
                       f"'{title(occ['planId'])}' ({minutes} min) to {_day_label(other, today)} "
                       f"{other:%d %b} {when if not all_day else ''}".rstrip() + "?")
            result.append(Suggestion(
                "overload", message, occ["id"], occ["planId"], to=iso_z(instant),
                moves=[{"id": occ["id"], "from": occ["scheduledStart"], "to": iso_z(instant)}],
                details={"day": day.isoformat(), "overMinutes": over, "capacity": capacity(day),
                         "toDay": other.isoformat()},
            ))

    result.extend(catch_ups)
    if limit is not None and len(result) >= limit:
        return result[:limit]  # the rates model is not even needed

    # 3. better-time, from predicted completion rates (fitted only now, when they are needed)
    if rates is not None and not isinstance(rates, Rates):
        rates = rates()
    if rates is not None:
        seen_plans: set[str] = set()
        now_iso, end_iso = iso_z(now), iso_z(local_day_start(last_day + timedelta(days=1), zone))
        upcoming = sorted(
            (o for o in live if now_iso < o["scheduledStart"] < end_iso and o["id"] not in moved
             and has_time(o["planId"]) and not is_touched(o)),
            key=lambda o: (o["scheduledStart"], o["id"]),
        )
        found: list[tuple[float, Suggestion]] = []
        for occ in upcoming:
            plan_id = occ["planId"]
            if plan_id in seen_plans:
                continue
            start = occurrence_start(occ)
            assert start is not None
            local = start.astimezone(zone)
            key = (plan_id, local.weekday(), _daypart(local))
            if rates.plan_evidence(key) < MIN_EVIDENCE:
                continue
            current = rates.predict(key)
            minutes = minutes_of(occ)
            best = None
            day = local.date()
            for offset in (1, 2, 3, -1, -2, -3):
                other = day + timedelta(days=offset)
                if other < today or not fits(plan_id, other, minutes):
                    continue
                for part, default_at in DAYPART_TIMES.items():
                    at = local.time().replace(tzinfo=None) if part == key[2] else default_at
                    instant = _candidate(other, at, zone)
                    if instant <= now:
                        continue
                    cell = (plan_id, other.weekday(), part)
                    if rates.plan_evidence(cell) >= MIN_EVIDENCE:
                        rate, source = rates.predict(cell), "plan"
                    else:
                        rate, evidence = rates.overall(other.weekday(), part)
                        if evidence < 2 * MIN_EVIDENCE:
                            continue
                        source = "all plans"
                    if rate - current < MIN_GAIN:
                        continue
                    rank = (-round(rate, 6), abs(offset), offset < 0, instant)
                    if best is None or rank < best[0]:
                        best = (rank, other, instant, part, rate, source)
            if best is None:
                continue
            _, other, instant, part, rate, source = best
            seen_plans.add(plan_id)
            book(occ, day, other, minutes)
            message = (f"you complete {round(current * 100)} % of '{title(plan_id)}' sessions on "
                       f"{local:%A} {_daypart(local)}s: move {local:%a %d %b %H:%M} to {other:%A} {part} "
                       f"({instant.astimezone(zone):%a %d %b %H:%M}), where you complete {round(rate * 100)} %?")
            found.append((rate - current, Suggestion(
                "better-time", message, occ["id"], plan_id, to=iso_z(instant),
                moves=[{"id": occ["id"], "from": occ["scheduledStart"], "to": iso_z(instant)}],
                details={"currentRate": round(current, 3), "newRate": round(rate, 3), "evidence": source},
            )))
        found.sort(key=lambda item: (-round(item[0], 6), item[1].moves[0]["from"], item[1].occurrence_id))
        result.extend(s for _, s in found)
    return result if limit is None else result[:limit]


# --------------------------------------------------------------------------- reminders


@dataclass(frozen=True)
class Reminder:
    """One occurrence that can be reminded of."""

    occ_id: str
    plan_id: str
    title: str
    start: datetime
    minutes: int | None
    fire_at: datetime  # when its reminder is due
    deadline: datetime  # after this it is missed, and no longer reminded of
    all_day: bool = False

    def as_json(self, zone: ZoneInfo, now: datetime) -> dict[str, Any]:
        return {
            "occurrenceId": self.occ_id,
            "planId": self.plan_id,
            "title": self.title,
            "start": iso_z(self.start),
            "startLocal": self.start.astimezone(zone).strftime("%a %d %b %H:%M") if not self.all_day
            else self.start.astimezone(zone).strftime("%a %d %b"),
            "minutes": self.minutes,
            "allDay": self.all_day,
            "fireAt": iso_z(self.fire_at),
            "deadline": iso_z(self.deadline),
            "message": reminder_message(self, now, zone),
        }


def fire_time(start: datetime, *, within: timedelta, all_day: bool, zone: ZoneInfo) -> datetime:
    """A timed session is reminded ``within`` before it starts; an all-day one at 08:00 local on its day."""
    if all_day:
        return _candidate(start.astimezone(zone).date(), ALL_DAY_REMINDER, zone)
    return start - within


def select_reminders(
    candidates: Iterable[Reminder], sent: set[str], *, now: datetime, grace: timedelta,
) -> tuple[list[Reminder], list[Reminder]]:
    """(individual, summarised) reminders to send now.

    A reminder is due when ``fire_at <= now < deadline`` and its occurrence was not yet reminded on this
    channel (``sent``). It goes out on its own when it became due at most ``grace`` ago, else it is one line
    of a single summary message (the machine slept, cron did not run).
    """
    individual, summary = [], []
    for item in sorted(candidates, key=lambda r: (r.start, r.occ_id)):
        if item.occ_id in sent or not item.fire_at <= now < item.deadline:
            continue
        (individual if now - item.fire_at <= grace else summary).append(item)
    return individual, summary


def reminder_message(item: Reminder, now: datetime, zone: ZoneInfo) -> str:
    local = item.start.astimezone(zone)
    if item.all_day:
        when = "today" if local.date() == day_of(now, zone) else f"on {local:%a %d %b}"
        return f"{item.title} {when}" + (f" ({item.minutes} min)" if item.minutes else "")
    delta = int((item.start - now).total_seconds() // 60)
    at = f"{local:%H:%M}" if local.date() == day_of(now, zone) else f"{local:%a %d %b %H:%M}"
    if delta > 0:
        return f"{item.title} at {at} (in {delta} min)"
    if delta == 0:
        return f"{item.title} starts now ({at})"
    return f"{item.title} was due at {at} and is not done yet"


def summary_message(items: Sequence[Reminder], now: datetime, zone: ZoneInfo) -> str:
    listed = ", ".join(
        f"{r.title} {r.start.astimezone(zone):%a %H:%M}" if not r.all_day else f"{r.title} {r.start.astimezone(zone):%a}"
        for r in items[:10]
    )
    more = f" and {len(items) - 10} more" if len(items) > 10 else ""
    count = len(items)
    return (f"{count} practice reminder{'s' if count != 1 else ''} missed while reminders were not running; "
            f"still to do: {listed}{more}")


# --------------------------------------------------------------------------- iCalendar (RFC 5545)


_ICS_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


def ics_escape(text: str) -> str:
    """TEXT escaping (RFC 5545 §3.3.11): backslash, semicolon, comma, newline; other controls dropped."""
    value = _ICS_UNSAFE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def ics_fold(line: str) -> str:
    """Fold a content line into CRLF-separated pieces of at most 75 octets (never inside a UTF-8 character);
    continuation lines start with one space (RFC 5545 §3.1)."""
    raw = line.encode("utf-8")
    if len(raw) <= 75:
        return line + "\r\n"
    pieces = []
    limit = 75
    current = b""
    for char in line:
        encoded = char.encode("utf-8")
        if len(current) + len(encoded) > limit:
            pieces.append(current)
            current = b" "
            limit = 75
        current += encoded
    pieces.append(current)
    return "\r\n".join(p.decode("utf-8") for p in pieces) + "\r\n"


def _ics_instant(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def build_ics(
    events: Sequence[tuple[dict[str, Any], dict[str, Any]]],
    *,
    now: datetime,
    zone: ZoneInfo,
    reminder_minutes: int,
    has_time: Callable[[dict[str, Any]], bool],
    version: str = "",
    name: str = "practiceplan",
) -> str:
    """A VCALENDAR with one VEVENT per (occurrence, plan), CRLF line endings, folded and escaped.

    UID ``<occurrence id>@practiceplan`` (stable: a moved session updates its event); DTSTART/DTEND in UTC,
    or as dates for sessions without a time of day; STATUS CONFIRMED, or CANCELLED when skipped; a completed
    session says so in its summary and description; SEQUENCE counts its recorded decisions; a VALARM
    ``reminder_minutes`` before each session still to do (none when 0)."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:-//practiceplan//practiceplan {version}//EN".replace(" //", "//"),
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{ics_escape(name)}",
    ]
    stamp = _ics_instant(now)
    for occ, plan in sorted(events, key=lambda item: (item[0]["scheduledStart"], item[0]["id"])):
        start = occurrence_start(occ)
        if start is None:
            continue
        end = occurrence_end(occ)
        title = str(plan.get("title") or "Practice")
        status = occ.get("status", "scheduled")
        done = is_completed(occ)
        summary = title + (" (done)" if done else " (skipped)" if status == "skipped" else "")
        notes: list[str] = []
        if done:
            minutes = (occ.get("metrics") or {}).get("actualDuration")
            notes.append("Completed" + (f": {minutes} min logged" if isinstance(minutes, (int, float)) else "") + ".")
        if status == "skipped":
            skips = [h for h in occurrence_history(occ) if h.get("action") == "skip"]
            reason = skips[-1].get("reason") if skips else None
            notes.append("Skipped" + (f": {reason}" if reason else "") + ".")
        if is_moved(occ):
            original = parse_instant((occ.get("metrics") or {}).get("originalStart"))
            if original:
                notes.append(f"Moved from {original.astimezone(zone):%a %d %b %Y %H:%M} ({zone.key}).")
        for segment in occ.get("segments") or []:
            if isinstance(segment, dict) and segment.get("label"):
                minutes = segment.get("durationMinutes")
                notes.append(f"- {segment['label']}" + (f" ({minutes} min)" if minutes else ""))
        if plan.get("description"):
            notes.append(str(plan["description"]))
        lines += ["BEGIN:VEVENT", f"UID:{occ['id']}@practiceplan", f"DTSTAMP:{stamp}"]
        if has_time(plan):
            lines.append(f"DTSTART:{_ics_instant(start)}")
            lines.append(f"DTEND:{_ics_instant(end if end and end > start else start + timedelta(minutes=30))}")
        else:
            day = start.astimezone(zone).date()
            lines.append(f"DTSTART;VALUE=DATE:{day:%Y%m%d}")
            lines.append(f"DTEND;VALUE=DATE:{day + timedelta(days=1):%Y%m%d}")
        lines.append(f"SUMMARY:{ics_escape(summary)}")
        if notes:
            lines.append(f"DESCRIPTION:{ics_escape(chr(10).join(notes))}")
        lines.append(f"STATUS:{'CANCELLED' if status in ('skipped', 'expired') else 'CONFIRMED'}")
        lines.append(f"SEQUENCE:{len(occurrence_history(occ))}")
        modified = parse_instant(occ.get("updatedAt"))
        if modified:
            lines.append(f"LAST-MODIFIED:{_ics_instant(modified)}")
        lines.append("CATEGORIES:Practice")
        lines.append("TRANSP:OPAQUE")
        if reminder_minutes > 0 and status == "scheduled" and not done and start > now:
            lines += ["BEGIN:VALARM", "ACTION:DISPLAY", f"DESCRIPTION:{ics_escape(title)}",
                      f"TRIGGER:-PT{reminder_minutes}M", "END:VALARM"]
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "".join(ics_fold(line) for line in lines)
