"""The `today` view: overdue, due today, upcoming, the next actionable session and per-plan progress.

Pure: plans and occurrences in, a JSON-ready dict out. Days are calendar dates in the user's zone.

* **overdue**: still ``scheduled``, its scheduled time has passed, but its deadline (see
  :func:`occurrences.deadline`) has not, so it can still be caught up today. Sessions without a time of
  day are never overdue on their own day.
* **dueToday**: still ``scheduled``, starts today, not overdue.
* **upcoming**: still ``scheduled``, starts after today (the first ``limit`` of them).
* **next**: the first overdue (earliest deadline), else the first due today, else the first upcoming.
* **plans**: per active plan, for the current week: completed, due (overdue + due today), remaining (later
  this week), and also missed and skipped.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from practiceplan.domain.models import (
    is_completed,
    iso_z,
    occurrence_end,
    occurrence_start,
    plan_has_time,
)
from practiceplan.domain.occurrences import (
    deadline,
    local_day_start,
    next_starts,
    week_start_date,
)

# How far back an occurrence can still be catchable (weekly flex: one week), besides each plan's latest.
LOOKBACK = timedelta(days=8)


def agenda(
    plans: list[dict[str, Any]],
    occurrences: list[dict[str, Any]],
    *,
    now: datetime,
    zone: ZoneInfo,
    week_start: int = 0,
    upcoming_limit: int = 5,
) -> dict[str, Any]:
    plan_by_id = {p["id"]: p for p in plans}
    live = [
        o
        for o in occurrences
        if not o.get("deletedAt") and o.get("planId") in plan_by_id and occurrence_start(o) is not None
    ]
    live.sort(key=lambda o: (o["scheduledStart"], o["id"]))
    following = next_starts(live)
    today = now.astimezone(zone).date()
    tomorrow_start = local_day_start(today + timedelta(days=1), zone)
    overdue: list[tuple[datetime, dict[str, Any]]] = []
    due_today: list[dict[str, Any]] = []
    upcoming: list[dict[str, Any]] = []
    state: dict[str, str] = {}
    for occ in live:
        plan = plan_by_id[occ["planId"]]
        start = occurrence_start(occ)
        assert start is not None
        status = occ.get("status", "scheduled")
        if is_completed(occ):
            state[occ["id"]] = "completed"
            continue
        if status != "scheduled":
            state[occ["id"]] = status
            continue
        due_by = deadline(occ, zone, next_start=following.get(occ["id"]), week_start=week_start)
        assert due_by is not None
        local_day = start.astimezone(zone).date()
        if due_by <= now:
            state[occ["id"]] = "missed"
            continue
        ended = (occurrence_end(occ) or start) < now if plan_has_time(plan) else local_day < today
        if local_day < today or (local_day == today and ended):
            overdue.append((due_by, occ))
            state[occ["id"]] = "due"
        elif local_day == today:
            due_today.append(occ)
            state[occ["id"]] = "due"
        elif start >= tomorrow_start:
            upcoming.append(occ)
            state[occ["id"]] = "upcoming"
    overdue.sort(key=lambda item: (item[0], item[1]["scheduledStart"], item[1]["id"]))
    overdue_list = [occ for _, occ in overdue]
    next_occ = (overdue_list or due_today or upcoming or [None])[0]

    week_first = week_start_date(today, week_start)
    week_lo = local_day_start(week_first, zone)
    week_hi = local_day_start(week_first + timedelta(days=7), zone)
    rails = []
    for plan in sorted(plans, key=lambda p: (p.get("title") or "", p["id"])):
        if plan.get("status", "active") != "active" or plan.get("deletedAt"):
            continue
        counts = {"completed": 0, "due": 0, "remaining": 0, "missed": 0, "skipped": 0}
        for occ in live:
            if occ["planId"] != plan["id"]:
                continue
            start = occurrence_start(occ)
            assert start is not None
            if not week_lo <= start < week_hi:
                continue
            kind = state.get(occ["id"])
            if kind == "completed":
                counts["completed"] += 1
            elif kind in ("skipped", "expired"):
                counts["skipped"] += 1
            elif kind == "missed":
                counts["missed"] += 1
            elif kind == "due":
                counts["due"] += 1
            elif kind == "upcoming":
                counts["remaining"] += 1
        rails.append({"plan": plan, **counts})
    return {
        "now": iso_z(now),
        "timezone": zone.key,
        "today": today.isoformat(),
        "weekStart": week_first.isoformat(),
        "overdue": overdue_list,
        "dueToday": due_today,
        "upcoming": upcoming[:upcoming_limit],
        "next": next_occ,
        "plans": rails,
    }
