"""Analytics as a service: loads exactly the data the metrics need, once per invocation, and calls the pure
functions in :mod:`practiceplan.domain.insights`. CLI views, JSON output and (later) the server reuse it.
"""

from __future__ import annotations

import sys
from datetime import date, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from practiceplan.domain import insights as an
from practiceplan.domain.models import (
    counts_from_by_plan,
    iso_z,
    parse_instant,
    plan_duration,
    plan_is_live,
    plan_zone_name,
)
from practiceplan.errors import InvalidInputError
from practiceplan.settings import parse_weekday_capacity
from practiceplan.store import insights as queries

if TYPE_CHECKING:
    from practiceplan.services.session import Session

TREND_WEEKS = 12
HEATMAP_WEEKS = 12
RECENT_WEEKS = 8


class Insights:
    """``window`` (ISO-Z instants) restricts which occurrences are read, for views that need only recent weeks."""

    def __init__(self, session: Session, window: tuple[str, str] | None = None) -> None:
        self.s = session
        self.window = window

    # ------------------------------------------------------------------ loading (memoised)

    @cached_property
    def now_ms(self) -> int:
        return int(self.s.now.timestamp() * 1000)

    @cached_property
    def plans(self) -> dict[str, dict[str, Any]]:
        return {plan["id"]: plan for plan in self.s.store.plans()}

    @cached_property
    def rows(self) -> list[tuple[Any, ...]]:
        self.s.plans.extend_horizon()
        lo, hi = self.window or (None, None)
        return queries.occurrence_rows(self.s.store.conn, include_deleted=True, start_from=lo, start_before=hi)

    @cached_property
    def clock(self) -> an.DayClock:
        starts = [row[2] for row in self.rows if row[2] is not None]
        lo, hi = (None, None) if self.window else queries.entry_range(self.s.store.conn)
        points = [self.now_ms, *(x for x in (lo, hi) if x is not None)]
        if starts:
            points += [min(starts), max(starts)]
        margin = (40 if self.window else 400) * an.DAY_MS
        self._clock_range = (min(points) - margin, max(points) + margin)
        return an.DayClock(self.s.zone, *self._clock_range)

    @cached_property
    def plan_clocks(self) -> dict[str, an.DayClock]:
        """Plans whose zone differs from the user's get their own clock for deadlines (the plan's days)."""
        from zoneinfo import ZoneInfo

        clocks: dict[str, an.DayClock] = {}
        by_zone: dict[str, an.DayClock] = {}
        starts = [row[2] for row in self.rows if row[2] is not None]
        if not starts:
            return clocks
        # deadlines fall at most a week (weekly flex) or one gap between sessions (anytime) after a start
        lo, hi = min(starts) - 2 * an.DAY_MS, max(starts) + 40 * an.DAY_MS
        for plan_id, plan in self.plans.items():
            zone = plan_zone_name(plan, self.s.zone.key)
            if zone == self.s.zone.key:
                continue
            try:
                if zone not in by_zone:
                    by_zone[zone] = an.DayClock(ZoneInfo(zone), lo, hi)
            except (ValueError, KeyError, OSError):
                continue
            clocks[plan_id] = by_zone[zone]
        return clocks

    @cached_property
    def facts(self) -> list[an.OccFact]:
        minutes = {pid: plan_duration(plan) for pid, plan in self.plans.items()}
        return [
            an.OccFact(occ_id, plan_id, start, end, status or "scheduled", flex, bool(pending), entry,
                       minutes.get(plan_id))
            for occ_id, plan_id, start, end, status, flex, pending, entry, deleted in self.rows
            if not deleted and start is not None and plan_id in self.plans
        ]

    @cached_property
    def horizons(self) -> dict[str, int]:
        """Plans -> epoch ms their occurrences are materialised up to (the forecast expands rules beyond it)."""
        result = {}
        for plan_id, horizon in self.s.store.plan_horizons().items():
            instant = parse_instant(horizon) if horizon else None
            if instant is not None:
                result[plan_id] = int(instant.timestamp() * 1000)
        return result

    @cached_property
    def deleted_ids(self) -> set[str]:
        return {row[0] for row in self.rows if row[8]}

    @cached_property
    def judged(self) -> list[an.Judged]:
        counts_from = {pid: int(t.timestamp() * 1000) for pid, t in counts_from_by_plan(self.plans.values(), self.s.me).items()}
        return an.judge(self.facts, self.now_ms, self.clock, plan_clocks=self.plan_clocks,
                        week_start=self.s.settings.week_start, counts_from=counts_from)

    @cached_property
    def by_plan(self) -> dict[str, list[an.Judged]]:
        groups: dict[str, list[an.Judged]] = {pid: [] for pid in self.plans}
        for item in self.judged:
            groups.setdefault(item.fact.plan_id, []).append(item)
        return groups

    @cached_property
    def day_totals(self) -> dict[int, an.DayTotals]:
        """Logbook minutes and entries per local day, from the per-hour rollup (exact in every zone)."""
        return {
            day: an.DayTotals(minutes, count, linked)
            for day, minutes, count, linked in queries.day_totals(self.s.store.conn, self.clock.segments())
        }

    @cached_property
    def today(self) -> int:
        return self.clock.day(self.now_ms)

    @cached_property
    def model(self) -> an.RateModel:
        return an.RateModel.fit(self.judged, self.clock)

    def capacity(self) -> dict[int, int]:
        config = self.s.settings.config
        result = {day: config["daily_capacity"] for day in range(7)}
        if config["weekday_capacity"]:
            result.update(parse_weekday_capacity(config["weekday_capacity"]))
        return result

    # ------------------------------------------------------------------ views

    def _block(self, judged: list[an.Judged], first: int | None, last: int | None) -> dict[str, Any]:
        return an.block(judged, first_day=first, last_day=last, today=self.today,
                        week_start=self.s.settings.week_start, now_ms=self.now_ms, clock=self.clock)

    def stats(self, *, plan_id: str | None = None, first: date | None = None, last: date | None = None) -> dict[str, Any]:
        first_day = an.day_number(first) if first else None
        last_day = an.day_number(last) if last else None
        plan_ids = [plan_id] if plan_id else sorted(
            (pid for pid, plan in self.plans.items() if plan.get("status") != "archived" or self.by_plan.get(pid)),
            key=lambda pid: ((self.plans[pid].get("title") or "").lower(), pid),
        )
        judged = self.by_plan.get(plan_id, []) if plan_id else self.judged
        plans = []
        for pid in plan_ids:
            entry = {"planId": pid, "title": self.plans[pid].get("title"), "status": self.plans[pid].get("status")}
            entry.update(self._block(self.by_plan.get(pid, []), first_day, last_day))
            plans.append(entry)
        self._add_members(plans, first, last)
        current, longest = an.day_streak(self.day_totals, self.today)
        week_rows = an.weeks(judged, self.day_totals, self._linked_minutes, now_ms=self.now_ms, clock=self.clock,
                             count=max(TREND_WEEKS, RECENT_WEEKS), week_start=self.s.settings.week_start)
        result = {
            "now": iso_z(self.s.now),
            "timezone": self.s.zone.key,
            "from": first.isoformat() if first else None,
            "to": last.isoformat() if last else None,
            "overall": self._block(judged, first_day, last_day),
            "plans": plans,
            "practiceStreak": {"current": current, "longest": longest},
            "missed": an.missed_windows(judged, self.now_ms, self.clock),
            "forecast": self.forecast(7, plan_id=plan_id),
            "weeks": week_rows[-RECENT_WEEKS:],
            "trend": [{"weekStart": row["weekStart"], "adherence": row["adherence"], "percent": row["percent"],
                       "completed": row["completed"], "missed": row["missed"]} for row in week_rows[-TREND_WEEKS:]],
            "heatmap": an.heatmap(self.day_totals, today=self.today, weeks_back=HEATMAP_WEEKS,
                                  week_start=self.s.settings.week_start),
            # one line per piece with a clean tempo (services/progress.py): latest vs target, trend, projection
            "tempo": self.s.progress.summary(plan_id),
        }
        return result

    def _add_members(self, plans: list[dict[str, Any]], first: date | None, last: date | None) -> None:
        """Shared plans you own get ``members``: each member's adherence from their shared sessions."""
        from practiceplan.services.sharing import member_stats

        found = member_stats(self, [entry["planId"] for entry in plans], first, last)
        for entry in plans:
            if entry["planId"] in found:
                entry["members"] = found[entry["planId"]]

    @cached_property
    def _linked_minutes(self) -> dict[str, int]:
        return queries.minutes_by_occurrence(self.s.store.conn)

    def forecast(self, days: int, *, plan_id: str | None = None, predict: bool = True) -> dict[str, Any]:
        """The forecast; ``predict=False`` skips the expected-completion model (callers needing only load)."""
        plans = {pid: plan for pid, plan in self.plans.items() if plan_is_live(plan) and (not plan_id or pid == plan_id)}
        judged = [item for item in self.judged if item.fact.plan_id in plans]
        return an.forecast(judged, plans, now_ms=self.now_ms, clock=self.clock, days=days,
                           capacity=self.capacity(), model=self.model if predict else None,
                           default_zone=self.s.zone.key,
                           week_start=self.s.settings.week_start, known_ids=self.deleted_ids,
                           horizons=self.horizons)

    def report(self, *, plan_id: str | None = None, first: date | None = None, last: date | None = None
               ) -> dict[str, Any]:
        """The `stats` command: the statistics, after noting adherence dips (once per plan and week)."""
        if first and last and last < first:
            raise InvalidInputError(f"--to {last} is before --from {first}", hint="swap them, or give a later --to")
        data = self.stats(plan_id=plan_id, first=first, last=last)
        self.check_dips()
        return data

    def summary(self) -> dict[str, Any]:
        """The one-line summary `today` shows: this week's adherence, practice streak, missed this week."""
        week = an.week_first(self.today, self.s.settings.week_start)
        this_week = an.tally(self.judged, week, week + 6).as_json()
        current = self.current_practice_streak()
        return {"thisWeek": this_week, "practiceStreak": current,
                "missedThisWeek": this_week["missed"]}

    def current_practice_streak(self) -> int:
        """The practice-day streak. From the hint the last logbook write left (:meth:`record_streak_hint`)
        while it is current for this logbook and zone; otherwise counted back from today in the rollup (the last
        40 days in one query, a longer streak one index probe per day). Either way a read writes nothing."""
        hinted = self._hinted_streak()
        if hinted is not None:
            return hinted
        recent = queries.entry_day_numbers(self.s.store.conn, self.clock.segments(),
                                           since_ms=self.clock.midnight(self.today - 40))
        current, _ = an.day_streak(recent, self.today)
        if current < 39:
            return current
        return self._streak_back(self.today if self.today in recent else self.today - 1)

    def _hinted_streak(self) -> int | None:
        """The streak from the hint, or None when the hint is missing or stale (or knows a day after today)."""
        hint = queries.streak_hint(self.s.store.conn)
        if not hint or hint.get("zone") != self.s.zone.key or hint.get("rev") != self.s.store.logbook_revision():
            return None
        last = hint.get("last")
        if last is None:
            return 0
        if last > self.today:
            return None
        return int(hint["run"]) if last >= self.today - 1 else 0

    def record_streak_hint(self) -> None:
        """Inside a write that changed the logbook (Session calls it before COMMIT): remember, for this zone and
        the new logbook revision, the latest local day with an entry and how many consecutive days with entries
        end there, so `today` reads its streak in two lookups however long it is. A hint gone stale (another
        zone, a change made without a Session, such as a restore) is ignored and the streak counted instead."""
        hint: dict[str, Any] = {"zone": self.s.zone.key, "rev": self.s.store.logbook_revision(), "last": None,
                                "run": 0}
        newest = queries.latest_entry(self.s.store.conn)
        if newest is not None:
            last = self.full_clock.day(newest)
            hint.update(last=last, run=self._streak_back(last))
        queries.store_streak_hint(self.s.store.conn, hint)

    def _streak_back(self, anchor: int) -> int:
        """Count consecutive days with entries back from ``anchor``: runs of days with one UTC offset are probed
        in SQL (a rollup index seek a day), the days around a DST change with the exact local midnights."""
        clock, conn, day, count = self.full_clock, self.s.store.conn, anchor, 0
        while True:
            start, end = clock.midnight(day), clock.midnight(day + 1)
            offset = clock.offset(start)
            regular = end - start == an.DAY_MS and start == day * an.DAY_MS - offset
            if not regular:  # a DST day or a gap at midnight: check it exactly
                if not queries.has_entries(conn, start, end):
                    return count
                count, day = count + 1, day - 1
                continue
            # the days back to the previous change of offset all start at day * DAY_MS - offset
            segment_start = clock.segment_start(start)
            first = min(day, max(-((-(segment_start + offset)) // an.DAY_MS), day - 100_000))
            run = queries.days_with_entries_back(conn, first, day, offset)
            count += run
            if run < day - first + 1:
                return count
            day = first - 1

    @cached_property
    def full_clock(self) -> an.DayClock:
        """A clock over the whole logbook (the window clock may not reach back far enough)."""
        lo, hi = queries.entry_range(self.s.store.conn)
        return an.DayClock(self.s.zone, min(lo or self.now_ms, self.now_ms), max(hi or self.now_ms, self.now_ms))

    # ------------------------------------------------------------------ telemetry (changes only: reads write nothing)

    def events(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The local event log (template actions, adherence dips), newest first."""
        return queries.events(self.s.store.conn, limit)

    def check_dips(self) -> list[dict[str, Any]]:
        """Record an `adherence.dip` event (once per plan per week) and run the hook for each new dip.

        Writes only the first time a dip is seen; views are not recorded, so read commands leave the
        database unchanged (and a read-only database is never written)."""
        if self.s.store.read_only:
            return []
        threshold = self.s.settings.config["adherence_alert"]
        week = an.week_first(self.today, self.s.settings.week_start)
        week_start = an.day_date(week).isoformat()
        dips = []
        for pid, judged in self.by_plan.items():
            if pid not in self.plans or not plan_is_live(self.plans[pid]):
                continue
            counts = an.tally(judged, week, week + 6).as_json()
            if counts["adherence"] is None or counts["adherence"] >= threshold:
                continue
            dips.append({"planId": pid, "weekStart": week_start, "adherence": counts["adherence"],
                         "completed": counts["completed"], "missed": counts["missed"], "threshold": threshold})
        if not dips:
            return []
        seen = queries.dip_keys(self.s.store.conn)
        new = [d for d in dips if (d["planId"], d["weekStart"]) not in seen]
        if not new:
            return []
        with self.s.store.write():
            fresh = queries.dip_keys(self.s.store.conn)
            new = [d for d in new if (d["planId"], d["weekStart"]) not in fresh]
            for dip in new:
                self.s.add_event("adherence.dip", dip)
        for dip in new:
            run_hook(self.s.settings.config["dip_hook"], dip)
        return new


def run_hook(command: str, details: dict[str, Any]) -> None:
    """Run the configured hook with details in PRACTICEPLAN_* variables and as JSON on stdin (no shell)."""
    if not command.strip():
        return
    from practiceplan import hooks

    env = {f"PRACTICEPLAN_{key.upper()}": str(value) for key, value in details.items()}
    env["PRACTICEPLAN_EVENT"] = "adherence.dip"
    # quiet and forgiving, as it runs inside read commands: its output is dropped, its exit status ignored
    error = hooks.run(command, env=env, details=details, timeout=10, keep_stderr=False, check_status=False)
    if error:
        sys.stderr.write(f"practiceplan: warning: dip_hook failed: {error}\n")


def for_today(session: Session) -> Insights:
    """Insights over just the occurrences `today`'s summary needs (this week, plus what decides deadlines)."""
    now = session.now
    return Insights(session, (iso_z(now - timedelta(days=16)), iso_z(now + timedelta(days=70))))
