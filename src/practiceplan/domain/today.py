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

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from practiceplan.domain.models import (
    counts_from_by_plan,
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
    owed,
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
    me: str | None = None,
) -> dict[str, Any]:
    """The `today` view of ``plans`` and their ``occurrences`` (see the module docstring); ``me``: this account's
    sync user name (a plan shared with me counts from when I joined it)."""
    plan_by_id = {p["id"]: p for p in plans}
    live = [
        o
        for o in occurrences
        if not o.get("deletedAt") and o.get("planId") in plan_by_id and occurrence_start(o) is not None
    ]
    live.sort(key=lambda o: (o["scheduledStart"], o["id"]))
    today = now.astimezone(zone).date()
    buckets = _Buckets.of(live, plan_by_id, now=now, zone=zone, today=today, week_start=week_start, me=me)
    week_first = week_start_date(today, week_start)
    week = (local_day_start(week_first, zone), local_day_start(week_first + timedelta(days=7), zone))
    return {
        "now": iso_z(now),
        "timezone": zone.key,
        "today": today.isoformat(),
        "weekStart": week_first.isoformat(),
        "overdue": buckets.overdue,
        "dueToday": buckets.due_today,
        "upcoming": buckets.upcoming[:upcoming_limit],
        "next": (buckets.overdue or buckets.due_today or buckets.upcoming or [None])[0],
        "plans": _rails(plans, live, buckets.state, week),
    }


@dataclass
class _Buckets:
    """The live sessions sorted into the view's lists, and each one's state (completed, skipped, expired,
    missed, before-plan, due or upcoming) for the rails. A session whose deadline passed before its plan was
    created is ``before-plan``: never owed, so it is neither missed nor shown (docs/metrics.md)."""

    overdue: list[dict[str, Any]] = field(default_factory=list)  # earliest deadline first
    due_today: list[dict[str, Any]] = field(default_factory=list)
    upcoming: list[dict[str, Any]] = field(default_factory=list)
    state: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls, live: list[dict[str, Any]], plan_by_id: dict[str, dict[str, Any]], *, now: datetime, zone: ZoneInfo,
        today: date, week_start: int, me: str | None = None,
    ) -> _Buckets:
        result = cls()
        following = next_starts(live)
        counts_from = counts_from_by_plan(plan_by_id.values(), me)
        tomorrow_start = local_day_start(today + timedelta(days=1), zone)
        overdue: list[tuple[datetime, dict[str, Any]]] = []
        for occ in live:
            start = occurrence_start(occ)
            assert start is not None
            status = occ.get("status", "scheduled")
            if is_completed(occ) or status != "scheduled":
                result.state[occ["id"]] = "completed" if is_completed(occ) else status
                continue
            due_by = deadline(occ, zone, next_start=following.get(occ["id"]), week_start=week_start)
            assert due_by is not None
            local_day = start.astimezone(zone).date()
            if due_by <= now:
                counted = owed(due_by, counts_from.get(occ["planId"]))
                result.state[occ["id"]] = "missed" if counted else "before-plan"
                continue
            timed = plan_has_time(plan_by_id[occ["planId"]])
            ended = (occurrence_end(occ) or start) < now if timed else local_day < today
            if local_day < today or (local_day == today and ended):
                overdue.append((due_by, occ))
                result.state[occ["id"]] = "due"
            elif local_day == today:
                result.due_today.append(occ)
                result.state[occ["id"]] = "due"
            elif start >= tomorrow_start:
                result.upcoming.append(occ)
                result.state[occ["id"]] = "upcoming"
        overdue.sort(key=lambda item: (item[0], item[1]["scheduledStart"], item[1]["id"]))
        result.overdue = [occ for _, occ in overdue]
        return result


_RAIL_COUNT = {"completed": "completed", "skipped": "skipped", "expired": "skipped", "missed": "missed",
               "due": "due", "upcoming": "remaining"}


def _rails(
    plans: list[dict[str, Any]], live: list[dict[str, Any]], state: dict[str, str], week: tuple[datetime, datetime],
) -> list[dict[str, Any]]:
    """Per active plan (by title), this week's sessions: completed, due, remaining, missed and skipped."""
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
            if not week[0] <= start < week[1]:
                continue
            kind = _RAIL_COUNT.get(state.get(occ["id"], ""))
            if kind is not None:
                counts[kind] += 1
        rails.append({"plan": plan, **counts})
    return rails
