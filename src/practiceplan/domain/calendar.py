"""Views of the schedule: each session's effective state, the week-by-week calendar grid and the audit
history of one session.

Pure: occurrences in, JSON-ready dicts out. A session's state (done, skipped, missed, before-plan, moved, due,
upcoming) follows the deadline rule of :func:`.occurrences.deadline`, as `stats` does; days are calendar dates
in the user's zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from practiceplan.domain.models import (
    is_completed,
    iso_z,
    occurrence_history,
    occurrence_start,
    parse_instant,
    plan_zone_name,
)
from practiceplan.domain.occurrences import deadline, local_day_start, next_starts, owed
from practiceplan.domain.schedule import is_moved, live_sessions
from practiceplan.domain.tz import day_of


# --------------------------------------------------------------------------- the calendar grid


def session_state(occ: dict[str, Any], due_by: datetime | None, now: datetime, *,
                  counts_from: datetime | None = None, upcoming_from: datetime | None = None) -> str:
    """done | skipped | missed | before-plan | moved | due | upcoming.

    Past its deadline (or ``expired`` by a peer) a session is missed, or ``before-plan`` when that deadline had
    passed before the plan was created (``counts_from``, see :func:`.occurrences.owed`). A session still to do
    is ``moved`` when rescheduled, ``upcoming`` when it starts at or after ``upcoming_from`` (tomorrow), else
    ``due``; without ``upcoming_from`` (the calendar grid) it is due."""
    if is_completed(occ):
        return "done"
    status = occ.get("status", "scheduled")
    if status == "skipped":
        return "skipped"
    if status == "expired" or (due_by is not None and due_by <= now):
        return "missed" if due_by is None or owed(due_by, counts_from) else "before-plan"
    if is_moved(occ):
        return "moved"
    start = occurrence_start(occ)
    return "upcoming" if upcoming_from is not None and start is not None and start >= upcoming_from else "due"


def session_states(
    occurrences: Iterable[dict[str, Any]], plans: Mapping[str, dict[str, Any]], *, now: datetime, zone: ZoneInfo,
    counts_from: Mapping[str, datetime], week_start: int = 0,
) -> dict[str, str]:
    """The effective state of each live occurrence (:func:`session_state`, with upcoming from tomorrow), by the
    rule `stats` uses: deadlines in the plan's zone, an ``anytime`` session's deadline being the next start of
    its plan among ``occurrences`` (so pass the plan's next sessions beyond the range you show too)."""
    live = live_sessions(occurrences)
    following = next_starts(live)
    tomorrow = local_day_start(day_of(now, zone) + timedelta(days=1), zone)
    zones: dict[str, ZoneInfo] = {}
    states = {}
    for occ in live:
        plan_id = occ.get("planId", "")
        if plan_id not in zones:
            zones[plan_id] = _zone_of(plans.get(plan_id) or {}, zone)
        due_by = deadline(occ, zones[plan_id], next_start=following.get(occ["id"]), week_start=week_start)
        states[occ["id"]] = session_state(occ, due_by, now, counts_from=counts_from.get(plan_id),
                                          upcoming_from=tomorrow)
    return states


def _zone_of(plan: dict[str, Any], default: ZoneInfo) -> ZoneInfo:
    """The plan's zone (its day decides its deadlines, as in `stats`); the user's when it has none or a bad one."""
    name = plan_zone_name(plan, default.key)
    try:
        return default if name == default.key else ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return default


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
    counts_from: Mapping[str, datetime] | None = None,
) -> dict[str, Any]:
    """Week rows of seven day cells. Each cell lists its sessions (state, local time, title; a moved one
    with its original slot) and ``movedAway``: sessions whose original slot was that day. ``counts_from``: plan
    id -> when its sessions count (before that, a session past its deadline is ``before-plan``)."""
    first = first_day - timedelta(days=(first_day.weekday() - week_start) % 7)
    last = first + timedelta(days=7 * weeks)
    live = live_sessions(occurrences)
    following = next_starts(live)
    cells: dict[date, dict[str, Any]] = {
        first + timedelta(days=i): {"date": (first + timedelta(days=i)).isoformat(), "sessions": [], "movedAway": []}
        for i in range(7 * weeks)
    }
    for occ in sorted(live, key=lambda o: (o["scheduledStart"], o["id"])):
        start = occurrence_start(occ)
        assert start is not None
        due_by = deadline(occ, zone, next_start=following.get(occ["id"]), week_start=week_start)
        state = session_state(occ, due_by, now, counts_from=(counts_from or {}).get(occ.get("planId", "")))
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
    counts = {state: 0 for state in ("done", "due", "missed", "skipped", "moved", "before-plan")}
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
