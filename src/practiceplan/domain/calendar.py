"""Views of the schedule: the week-by-week calendar grid and the audit history of one session.

Pure: occurrences in, JSON-ready dicts out. A session's state (done, skipped, missed, moved, due) follows the
deadline rule of :func:`.occurrences.deadline`; days are calendar dates in the user's zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from practiceplan.domain.models import is_completed, iso_z, occurrence_history, occurrence_start, parse_instant
from practiceplan.domain.occurrences import deadline, next_starts
from practiceplan.domain.schedule import is_moved, live_sessions
from practiceplan.domain.tz import day_of


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
