"""The schedule feature: skip/unskip, moves, cascades (shift, spread), defer and the sessions already missed.

No I/O, no clock reads: callers pass ``now``, zones, and the occurrences they loaded. Everything written back
stays inside the wire format (ARCHITECTURE.md "Where extensions live"): a moved occurrence keeps its id and
its ``scheduled`` status, ``metrics.originalStart`` remembers its first slot, and every decision appends one
plain object to ``metrics.history`` (string values only).

Days (capacity, "one session of a plan per day", defer's free day) are calendar dates in the user's zone;
a cascade shift keeps wall-clock times in the plan's zone, so it is DST-safe. Views of the schedule (the
calendar grid, the history of a session) are in :mod:`.calendar`, suggestions in :mod:`.suggestions`,
reminders in :mod:`.reminders`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from practiceplan.domain.models import (
    plural,
    is_completed,
    is_touched,
    iso_z,
    occurrence_end,
    occurrence_history,
    occurrence_start,
)
from practiceplan.domain.occurrences import deadline, next_starts, owed
from practiceplan.domain.tz import day_of, local_instant, localize, spoken, wall_clock
from practiceplan.errors import InvalidInputError

UTC = timezone.utc

CATCH_UP_DAYS = 7  # spread / catch-up look at sessions missed in the last 7 days
SPREAD_DAYS = 14  # how many days (from the first one) a spread may use


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


def _require_to_do(occ: dict[str, Any], verb: str, *, if_skipped: tuple[str, str]) -> None:
    """A live session still to do: not checked in, not skipped (``if_skipped``: message and hint), not expired.
    ``verb`` ("skipped", "moved") words the errors."""
    _require_live(occ)
    status = occ.get("status", "scheduled")
    if is_completed(occ):
        raise InvalidInputError(
            f"this session is checked in, so it cannot be {verb}",
            hint="undo the check-in first with `practiceplan uncheck`",
        )
    if status == "skipped":
        raise InvalidInputError(*if_skipped)
    if status != "scheduled":
        raise InvalidInputError(f"this session is {status}; only scheduled sessions can be {verb}",
                                hint="see what happened to it with `practiceplan occurrences --history OCC`")


# --------------------------------------------------------------------------- skip / unskip


def skip(occ: dict[str, Any], *, now: datetime, reason: str | None) -> dict[str, Any]:
    """Excuse a session: status ``skipped`` (it is neither completed nor missed) plus a history record."""
    _require_to_do(occ, "skipped", if_skipped=("this session is already skipped", "`practiceplan unskip` reverts it"))
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
    _require_to_do(occ, "moved", if_skipped=("this session is skipped", "unskip it first with `practiceplan unskip`"))
    if occurrence_start(occ) is None:
        raise InvalidInputError("this session has no scheduled start, so it cannot be moved",
                                hint="it came from another device without a time; edit it there")


def move(
    occ: dict[str, Any],
    new_start: datetime,
    *,
    now: datetime,
    zone: ZoneInfo,
    reason: str | None = None,
    length: timedelta | None = None,
    via: str | None = None,
) -> dict[str, Any]:
    """Move one occurrence: same id, new start (and end), ``metrics.originalStart`` set on the first move.

    ``length`` is the new duration (default: the session's own); ``zone`` (the user's) words the errors.
    History gets ``{"at", "action": "reschedule", "from", "to", "reason"?, "via"?}``.
    """
    check_movable(occ)
    start = occurrence_start(occ)
    assert start is not None
    new_start = new_start.astimezone(UTC)
    if new_start == start:
        raise InvalidInputError(f"this session is already at {spoken(start, zone)}", hint="give --to another time")
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


def cascade_shift(
    target: dict[str, Any],
    plan_occurrences: Iterable[dict[str, Any]],
    new_start: datetime,
    *,
    now: datetime,
    zone: ZoneInfo,
    user_zone: ZoneInfo | None = None,
    reason: str | None = None,
    length: timedelta | None = None,
) -> list[Move]:
    """Move ``target`` to ``new_start`` and every later *untouched* live occurrence of its plan by the same
    wall-clock offset in ``zone`` (the plan's zone: 18:00 stays 18:00 across DST). Touched occurrences
    (completed, skipped, moved, with history) stay where they are. Result in schedule order. Errors speak of
    times in ``user_zone`` (default: ``zone``)."""
    check_movable(target)
    start = occurrence_start(target)
    assert start is not None
    shown = user_zone or zone
    offset = wall_clock(new_start, zone) - wall_clock(start, zone)
    if offset == timedelta(0):
        raise InvalidInputError(f"this session is already at {spoken(start, shown)}", hint="give --to another time")
    moves = [Move(target, move(target, new_start, now=now, zone=shown, reason=reason, length=length, via="shift"))]
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
        shifted = localize(wall_clock(old, zone) + offset, zone).astimezone(UTC)
        moves.append(Move(occ, move(occ, shifted, now=now, zone=shown, reason=reason, via="shift")))
    return moves


@dataclass(frozen=True)
class Booking:
    """Something occupying a day: a live session (of any plan) with its minutes."""

    occ_id: str
    plan_id: str
    day: date
    minutes: int


def bookings_of(
    occurrences: Iterable[dict[str, Any]], minutes_of: Callable[[dict[str, Any]], int], *, now: datetime,
    zone: ZoneInfo, week_start: int = 0,
) -> list[Booking]:
    """Days' loads, as the forecast counts them: a session still to do uses its minutes; a completed one marks
    its plan's day (one session of a plan per day) but is no longer load, as what is done is no longer planned;
    skipped and missed ones use nothing."""
    live = live_sessions(occurrences)
    gone = _missed_ids(live, now=now, zone=zone, week_start=week_start)
    result = []
    for occ in live:
        done = is_completed(occ)
        if occ["id"] in gone or (not done and occ.get("status", "scheduled") != "scheduled"):
            continue
        start = occurrence_start(occ)
        assert start is not None
        result.append(Booking(occ["id"], occ.get("planId", ""), day_of(start, zone), 0 if done else minutes_of(occ)))
    return result


def local_time(instant: datetime, zone: ZoneInfo) -> time:
    """The local time of day of ``instant`` in ``zone`` (naive): a move to another day keeps it."""
    return wall_clock(instant, zone).time()


def not_past(instant: datetime, day: date, *, now: datetime, zone: ZoneInfo, all_day: bool) -> bool:
    """A slot a session may move to: it starts after ``now``, or (no time of day) its ``day`` is not over."""
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
        at = local_time(start, zone)
        day = earliest
        placed = None
        while day <= last_day:
            instant = local_instant(day, at, zone)
            if (
                day not in plan_days
                and load.get(day, 0) + minutes <= capacity(day)
                and not_past(instant, day, now=now, zone=zone, all_day=all_day)
            ):
                placed = (day, instant)
                break
            day += timedelta(days=1)
        if placed is None:
            raise InvalidInputError(
                f"cannot fit {plural(len(ordered), 'session')} of '{title}' into the {days} days from {first_day} "
                "with one session of the plan per day and within the daily capacity",
                hint="raise --cap, allow more --days, or skip some with `practiceplan skip`",
            )
        day, instant = placed
        plan_days.add(day)
        load[day] = load.get(day, 0) + minutes
        earliest = day + timedelta(days=1)
        if instant != start:
            moves.append(Move(occ, move(occ, instant, now=now, zone=zone, reason=reason, via="spread")))
    return moves


def missed(
    occurrences: Iterable[dict[str, Any]], *, now: datetime, zone: ZoneInfo, week_start: int = 0,
    counts_from: Mapping[str, datetime] | None = None,
) -> list[dict[str, Any]]:
    """Live, still-scheduled occurrences whose deadline has passed (schedule order), except those whose
    deadline had passed before their plan was created (``counts_from``: plan id -> creation; see
    :func:`.occurrences.owed`): those were never owed, so there is nothing to catch up."""
    live = live_sessions(occurrences)
    gone = _missed_ids(live, now=now, zone=zone, week_start=week_start, counts_from=counts_from or {})
    return [occ for occ in sorted(live, key=lambda o: (o["scheduledStart"], o["id"])) if occ["id"] in gone]


def live_sessions(occurrences: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The occurrences that are not deleted and have a start."""
    return [o for o in occurrences if not o.get("deletedAt") and occurrence_start(o) is not None]


def _missed_ids(live: list[dict[str, Any]], *, now: datetime, zone: ZoneInfo, week_start: int,
                counts_from: Mapping[str, datetime] | None = None) -> set[str]:
    """Ids of the still-scheduled sessions among ``live`` whose deadline has passed (an anytime session's
    deadline is the next start of its plan among ``live``); with ``counts_from``, only those that were owed."""
    following = next_starts(live)
    result = set()
    for occ in live:
        if occ.get("status", "scheduled") != "scheduled" or is_completed(occ):
            continue
        due_by = deadline(occ, zone, next_start=following.get(occ["id"]), week_start=week_start)
        if due_by is not None and due_by <= now:
            if counts_from is None or owed(due_by, counts_from.get(occ.get("planId", ""))):
                result.add(occ["id"])
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
    at = local_time(start, zone)
    day = day_of(start, zone) + timedelta(days=1)
    for _ in range(limit_days):
        instant = local_instant(day, at, zone)
        if day not in occupied and not_past(instant, day, now=now, zone=zone, all_day=all_day):
            return instant
        day += timedelta(days=1)
    raise InvalidInputError(
        f"the plan has no free day in the {limit_days} days after {day_of(start, zone)}",
        hint="move it to a given time with `practiceplan reschedule OCC --to WHEN`",
    )
