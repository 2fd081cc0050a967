"""Schedule as a service: skip, unskip, reschedule (with cascades), defer, the calendar grid, suggestions,
reminders and the ICS export. Each change is computed from occurrences re-read inside one ``BEGIN IMMEDIATE``
transaction and saved (with its outbox rows) in that same transaction; ``dry_run`` computes the same result
without opening a write transaction. The decisions themselves live in :mod:`practiceplan.domain.schedule`
(and ``calendar``, ``suggestions``, ``reminders``); the ICS text in :mod:`practiceplan.formats.ics`.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from practiceplan.domain import calendar as cal
from practiceplan.domain import reminders as rem
from practiceplan.domain import schedule as sch
from practiceplan.domain import suggestions as sug
from practiceplan.domain.models import (
    counts_from_by_plan,
    plural,
    is_completed,
    iso_z,
    occurrence_start,
    parse_instant,
    plan_duration,
    plan_has_time,
    plan_is_live,
    plan_zone_name,
)
from practiceplan.domain.occurrences import local_day_start, occurrence_minutes
from practiceplan.domain.tz import spoken
from practiceplan.errors import InvalidInputError, NotFoundError, UsageError

if TYPE_CHECKING:
    from practiceplan.services.insights import Insights
    from practiceplan.services.session import Session
    from practiceplan.settings import Settings


RATE_WINDOW_DAYS = 84  # suggestions learn completion rates from the last 12 weeks (as the stats trend)
REMIND_LOOKBACK = timedelta(days=8)  # a session is reminded of at most this long after it started
SPREAD_DEFAULT_DAYS = sch.SPREAD_DAYS
_DATE_ONLY = re.compile(
    r"^(today|tomorrow|yesterday|\d{4}-\d{2}-\d{2}|(next )?(mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)"
    r"(day|nesday|rsday|urday|sday)?)$"
)


@dataclass
class Outcome:
    """What a skip / move / cascade did (or, for a dry run, would do)."""

    action: str
    moves: list[sch.Move]
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"action": self.action, "dryRun": self.dry_run, "changed": 0 if self.dry_run else len(self.moves),
                "moves": [m.as_json() for m in self.moves], "warnings": self.warnings}


class Schedule:
    def __init__(self, session: Session) -> None:
        self.s = session

    # ------------------------------------------------------------------ helpers

    @property
    def now(self) -> datetime:
        return self.s.now

    @cached_property
    def plans(self) -> dict[str, dict[str, Any]]:
        return self.s.plans.by_id(include_deleted=True)

    def plan_of(self, occ: dict[str, Any]) -> dict[str, Any]:
        plan = self.plans.get(occ.get("planId", ""))
        if plan is None:
            raise NotFoundError(f"the plan of occurrence {occ['id']} is missing")
        return plan

    def minutes_of(self, occ: dict[str, Any]) -> int:
        return occurrence_minutes(occ, self.plans.get(occ.get("planId", ""))) or 30

    def has_time(self, plan_id: str) -> bool:
        plan = self.plans.get(plan_id)
        return plan_has_time(plan) if plan else True

    def capacity(self, cap: int | None = None) -> Callable[[date], int]:
        if cap is not None:
            return lambda day: cap
        from practiceplan.settings import parse_weekday_capacity

        config = self.s.settings.config
        table = {day: config["daily_capacity"] for day in range(7)}
        if config["weekday_capacity"]:
            table.update(parse_weekday_capacity(config["weekday_capacity"]))
        return lambda day: table[day.weekday()]

    def today(self) -> date:
        return self.now.astimezone(self.s.zone).date()

    @cached_property
    def counts_from(self) -> dict[str, datetime]:
        """Plan id -> when its sessions start to count (a session owed only after that can be missed)."""
        return counts_from_by_plan(self.plans.values(), self.s.me)

    def short(self, occ_id: str) -> str:
        return self.s.store.short_id("plan_occurrence", occ_id)

    def _fresh(self, occ: dict[str, Any]) -> dict[str, Any]:
        current = self.s.store.get("plan_occurrence", occ["id"])
        if current is None:
            raise NotFoundError(f"occurrence {occ['id']} was deleted meanwhile")
        return current

    def _commit(self, action: str, compute: Callable[[], list[sch.Move]], dry_run: bool) -> Outcome:
        """Compute inside the write transaction (or without one for a dry run) and save every change at once.
        Everything that can fail (the warnings included) runs before the commit: the answer is either "done"
        or "nothing changed"."""
        if dry_run:
            moves = compute()
            return Outcome(action, moves, dry_run, self._same_day_warnings(moves))
        with self.s.store.write():
            moves = compute()
            self.s.store.save_many("plan_occurrence", [m.after for m in moves], iso_z(self.now))
            warnings = self._same_day_warnings(moves)  # reads the saved moves inside the transaction
        return Outcome(action, moves, dry_run, warnings)

    def _same_day_warnings(self, moves: list[sch.Move]) -> list[str]:
        zone = self.s.zone
        moving = {m.id for m in moves}
        warnings = []
        for step in moves:
            start = occurrence_start(step.after)
            if start is None or step.after.get("status") != "scheduled" or step.before.get("scheduledStart") == step.after.get("scheduledStart"):
                continue
            day = sch.day_of(start, zone)
            others = self.s.store.occurrences(
                plan_id=step.after["planId"], start_from=iso_z(local_day_start(day, zone)),
                start_before=iso_z(local_day_start(day + timedelta(days=1), zone)),
            )
            clash = [o for o in others if o["id"] not in moving and o.get("status") != "skipped"]
            if clash:
                title = self.plans.get(step.after["planId"], {}).get("title", "?")
                warnings.append(f"{day:%a %d %b} now has {len(clash) + 1} sessions of '{title}'")
        return warnings

    # ------------------------------------------------------------------ skip / unskip

    def skip(self, ref: str, reason: str | None, dry_run: bool = False) -> Outcome:
        occ = self.s.store.resolve("plan_occurrence", ref)

        def compute() -> list[sch.Move]:
            current = occ if dry_run else self._fresh(occ)
            return [sch.Move(current, sch.skip(current, now=self.now, reason=reason))]

        return self._commit("skip", compute, dry_run)

    def unskip(self, ref: str, reason: str | None, dry_run: bool = False) -> Outcome:
        occ = self.s.store.resolve("plan_occurrence", ref)

        def compute() -> list[sch.Move]:
            current = occ if dry_run else self._fresh(occ)
            return [sch.Move(current, sch.unskip(current, now=self.now, reason=reason))]

        return self._commit("unskip", compute, dry_run)

    # ------------------------------------------------------------------ moves

    def target_instant(self, text: str, occ: dict[str, Any]) -> datetime:
        """``--to``: a date-time, or a bare day (``2026-03-05``, ``friday``) which keeps the session's time."""
        from practiceplan import dates

        zone = self.s.zone
        word = " ".join(text.strip().lower().split())
        if _DATE_ONLY.match(word):
            day = dates.parse_date(text, zone, self.now, "--to")
            start = occurrence_start(occ) or self.now
            at = start.astimezone(zone).time().replace(tzinfo=None)
            return dates.local_to_utc(datetime.combine(day, at), zone)
        return dates.parse_datetime(text, zone, self.now, "--to")

    def _check_not_past(self, instant: datetime) -> None:
        floor = local_day_start(self.today(), self.s.zone)
        if instant < floor:
            raise InvalidInputError(
                f"cannot move a session into the past ({spoken(instant, self.s.zone)})",
                hint="pick today or a later day",
            )

    def reschedule(
        self,
        ref: str,
        to: str | datetime | None,
        *,
        cascade: str | None = None,
        cap: int | None = None,
        days: int = SPREAD_DEFAULT_DAYS,
        keep_duration: bool = False,
        reason: str | None = None,
        dry_run: bool = False,
        via: str | None = None,
    ) -> Outcome:
        """Move one session (same id); ``cascade="shift"`` moves every later untouched session of the plan by
        the same offset, ``cascade="spread"`` spreads the plan's recently missed sessions (see domain.schedule)."""
        if cascade not in (None, "shift", "spread"):
            raise InvalidInputError(f"--cascade takes 'spread' or nothing, not '{cascade}'",
                                    hint="--cascade shifts later sessions; --cascade spread spreads missed ones")
        if to is None and cascade != "spread":
            raise UsageError("--to WHEN is required", hint="e.g. --to 'tomorrow 18:00' (or use `practiceplan defer`)")
        occ = self.s.store.resolve("plan_occurrence", ref)
        plan = self.plan_of(occ)
        sch.check_movable(occ)
        if cascade == "spread":
            first_day = self.today()
            if to is not None:
                instant = to if isinstance(to, datetime) else self.target_instant(to, occ)
                self._check_not_past(instant)
                first_day = sch.day_of(instant, self.s.zone)
            return self._spread(occ, plan, first_day=first_day, cap=cap, days=days, reason=reason, dry_run=dry_run)
        assert to is not None
        instant = to if isinstance(to, datetime) else self.target_instant(to, occ)
        self._check_not_past(instant)
        length = None
        if not keep_duration and plan_duration(plan):
            length = timedelta(minutes=plan_duration(plan) or 0)
        if cascade == "shift":
            from zoneinfo import ZoneInfo

            zone = ZoneInfo(plan_zone_name(plan, self.s.zone.key))

            def compute() -> list[sch.Move]:
                current = occ if dry_run else self._fresh(occ)
                siblings = self.s.store.occurrences(plan_id=occ["planId"], start_from=current["scheduledStart"])
                return sch.cascade_shift(current, siblings, instant, now=self.now, zone=zone, user_zone=self.s.zone,
                                         reason=reason, length=length)

            return self._commit("reschedule", compute, dry_run)

        def single() -> list[sch.Move]:
            current = occ if dry_run else self._fresh(occ)
            return [sch.Move(current, sch.move(current, instant, now=self.now, zone=self.s.zone, reason=reason,
                                               length=length, via=via))]

        return self._commit("reschedule", single, dry_run)

    def _spread(self, occ: dict[str, Any], plan: dict[str, Any], *, first_day: date, cap: int | None, days: int,
                reason: str | None, dry_run: bool) -> Outcome:
        zone = self.s.zone
        week_start = self.s.settings.week_start
        today = self.today()
        recent = local_day_start(today - timedelta(days=sch.CATCH_UP_DAYS), zone)
        lo = min(recent, occurrence_start(occ) or recent) - timedelta(days=8)
        hi = local_day_start(first_day + timedelta(days=days + 1), zone)
        capacity = self.capacity(cap)

        def compute() -> list[sch.Move]:
            current = occ if dry_run else self._fresh(occ)
            window = self.s.store.occurrences(start_from=iso_z(lo), start_before=iso_z(hi))
            window = [o for o in window if plan_is_live(self.plans.get(o.get("planId", ""), {"status": "x"}))]
            group = [o for o in sch.missed([o for o in window if o["planId"] == current["planId"]], now=self.now,
                                            zone=zone, week_start=week_start, counts_from=self.counts_from)
                     if (occurrence_start(o) or self.now) >= recent and o["id"] != current["id"]]
            movers = [(o, self.minutes_of(o)) for o in [current, *group]]
            bookings = sch.bookings_of(window, self.minutes_of, now=self.now, zone=zone, week_start=week_start)
            return sch.spread(movers, bookings, capacity=capacity, first_day=first_day, days=days, now=self.now,
                              zone=zone, all_day=not plan_has_time(plan), reason=reason,
                              title=str(plan.get("title") or "?"))

        return self._commit("spread", compute, dry_run)

    def defer(self, ref: str, reason: str | None, dry_run: bool = False) -> Outcome:
        """Move a session to the plan's next free day (no other session of the plan), same time of day."""
        occ = self.s.store.resolve("plan_occurrence", ref)
        plan = self.plan_of(occ)
        sch.check_movable(occ)
        zone = self.s.zone

        def compute() -> list[sch.Move]:
            current = occ if dry_run else self._fresh(occ)
            start = occurrence_start(current)
            assert start is not None
            first = max(sch.day_of(start, zone), self.today())
            lo, hi = local_day_start(first, zone), local_day_start(first + timedelta(days=400), zone)
            mine = self.s.store.occurrences(plan_id=current["planId"], start_from=iso_z(lo), start_before=iso_z(hi),
                                            include_deleted=True)
            occupied = {
                sch.day_of(occurrence_start(o) or start, zone) for o in mine
                if not o.get("deletedAt") and o["id"] != current["id"] and o.get("status") != "skipped"
            }
            occupied |= self._unmaterialised_days(plan, {o["id"] for o in mine}, lo, hi)
            instant = sch.next_free_day(current, occupied, now=self.now, zone=zone, all_day=not plan_has_time(plan))
            return [sch.Move(current, sch.move(current, instant, now=self.now, zone=zone, reason=reason, via="defer"))]

        return self._commit("defer", compute, dry_run)

    def _unmaterialised_days(self, plan: dict[str, Any], known: set[str], lo: datetime, hi: datetime) -> set[date]:
        """Days of the plan's recurrence slots in [lo, hi) that have no occurrence yet (beyond the horizon)."""
        if not plan_is_live(plan):
            return set()
        from practiceplan.domain import recurrence as rec
        from practiceplan.domain.occurrences import plan_recurrence

        recurrence = plan_recurrence(plan, self.s.zone.key)
        if recurrence is None:
            return set()
        return {
            sch.day_of(slot.start, self.s.zone) for slot in rec.expand(recurrence, lo, hi)
            if rec.occurrence_id(plan["id"], slot.key) not in known
        }

    # ------------------------------------------------------------------ views

    def history(self, ref: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        occ = self.s.store.resolve("plan_occurrence", ref)
        return occ, cal.describe_history(occ, self.s.zone)

    def calendar(self, plan_id: str | None, first_day: date | None, weeks: int) -> dict[str, Any]:
        zone = self.s.zone
        self.s.plans.extend_horizon()
        first_day = first_day or self.today() - timedelta(days=7)
        lo = local_day_start(first_day - timedelta(days=15), zone)
        hi = local_day_start(first_day + timedelta(days=7 * weeks + 15), zone)
        found = self.s.store.occurrences(plan_id=plan_id, start_from=iso_z(lo), start_before=iso_z(hi))
        found = [o for o in found if o.get("planId") in self.plans and not self.plans[o["planId"]].get("deletedAt")]
        titles = {pid: str(plan.get("title") or "?") for pid, plan in self.plans.items()}
        grid_lo = local_day_start(first_day - timedelta(days=7), zone)
        shown = [o["id"] for o in found if o["scheduledStart"] >= iso_z(grid_lo) and o["scheduledStart"] < iso_z(hi)]
        return cal.calendar(found, titles, now=self.now, zone=zone, first_day=first_day, weeks=weeks,
                            week_start=self.s.settings.week_start,
                            short_ids=self.s.store.short_ids("plan_occurrence", shown),
                            counts_from=self.counts_from)

    # ------------------------------------------------------------------ suggestions

    def suggestions(self, days: int = 7, limit: int | None = None, near: Insights | None = None) -> list[dict[str, Any]]:
        """Numbered, deterministic suggestions, each with a ready-to-run command (see domain.suggestions.suggest).

        Loads come from the analytics forecast (with capacity) over the coming days; completion rates from the
        RateModel fitted on the last RATE_WINDOW_DAYS, only when the better-time step needs them. ``near`` may be
        an Insights over a window that already covers the last 16 days and the next days + 22 (as `today`'s)."""
        from practiceplan.services.insights import Insights

        p = self.s
        zone = p.zone
        p.plans.extend_horizon()
        today = self.today()
        end = local_day_start(today + timedelta(days=max(days, sch.SPREAD_DAYS) + 8), zone)
        if near is None or (near.window and (near.window[0] > iso_z(self.now - timedelta(days=16))
                                              or near.window[1] < iso_z(end))):
            near = Insights(p, (iso_z(self.now - timedelta(days=16)), iso_z(end)))
        forecast = near.forecast(days, predict=False)
        live_plans = {pid: plan for pid, plan in self.plans.items() if plan_is_live(plan)}
        occurrences = [
            o for o in p.store.occurrences(
                start_from=iso_z(local_day_start(today - timedelta(days=sch.CATCH_UP_DAYS + 1), zone)),
                start_before=iso_z(end),
            )
            if o.get("planId") in live_plans
        ]

        def rates() -> sug.Rates:
            history = Insights(p, (iso_z(self.now - timedelta(days=RATE_WINDOW_DAYS)), iso_z(end)))
            return sug.rates_from_model(history.model)

        found = sug.suggest(
            now=self.now, zone=zone, plans=live_plans, occurrences=occurrences, forecast_days=forecast["days"],
            capacity=self.capacity(), minutes_of=self.minutes_of, has_time=self.has_time, rates=rates,
            week_start=p.settings.week_start, limit=limit, counts_from=self.counts_from,
        )
        result = []
        for number, item in enumerate(found, start=1):
            data = item.as_json()
            args = ["reschedule", self.short(item.occurrence_id)]
            if item.cascade == "spread":
                args += ["--cascade", "spread"]
            elif item.to:
                instant = parse_instant(item.to)
                assert instant is not None
                local = instant.astimezone(zone)
                args += ["--to", local.strftime("%Y-%m-%d") if not self.has_time(item.plan_id)
                         else local.strftime("%Y-%m-%dT%H:%M")]
            import shlex

            data.update(number=number, args=args, command="practiceplan " + " ".join(shlex.quote(a) for a in args))
            result.append(data)
        return result

    def top_suggestion(self, near: Insights | None = None) -> dict[str, Any] | None:
        """The first of `suggest`'s list (computed only as far as needed), or None."""
        found = self.suggestions(limit=1, near=near)
        return found[0] if found else None

    def apply_suggestion(self, number: int, days: int = 7, dry_run: bool = False) -> tuple[dict[str, Any], Outcome]:
        found = self.suggestions(days)
        if not 1 <= number <= len(found):
            raise InvalidInputError(
                f"there is no suggestion {number}" + (f" (there are {len(found)})" if found else " (there are none)"),
                hint="list them with `practiceplan suggest`",
            )
        item = found[number - 1]
        reason = f"suggestion: {item['kind']}"
        if item["cascade"] == "spread":
            outcome = self.reschedule(item["occurrenceId"], None, cascade="spread", reason=reason, dry_run=dry_run)
        else:
            instant = parse_instant(item["to"])
            outcome = self.reschedule(item["occurrenceId"], instant, reason=reason, dry_run=dry_run, via="suggest",
                                      keep_duration=True)
        return item, outcome

    # ------------------------------------------------------------------ reminders

    def _reminder_candidates(self, within: timedelta) -> list[rem.Reminder]:
        from practiceplan.domain.occurrences import deadline, next_starts

        zone = self.s.zone
        now = self.now
        occurrences = self.s.store.occurrences(
            start_from=iso_z(now - REMIND_LOOKBACK), start_before=iso_z(now + max(within, REMIND_LOOKBACK))
        )
        following = next_starts(occurrences)
        result = []
        for occ in occurrences:
            plan = self.plans.get(occ.get("planId", ""))
            start = occurrence_start(occ)
            if plan is None or not plan_is_live(plan) or start is None:
                continue
            if occ.get("status", "scheduled") != "scheduled" or is_completed(occ) or start > now + within:
                continue
            all_day = not plan_has_time(plan)
            due_by = deadline(occ, zone, next_start=following.get(occ["id"]), week_start=self.s.settings.week_start)
            assert due_by is not None
            result.append(rem.Reminder(
                occ["id"], occ["planId"], str(plan.get("title") or "Practice"), start,
                occurrence_minutes(occ, plan), rem.fire_time(start, within=within, all_day=all_day, zone=zone),
                due_by, all_day,
            ))
        return result

    def due(self, within: timedelta) -> list[rem.Reminder]:
        """Everything due now on any channel: reminder time reached, not done, not past its deadline."""
        now = self.now
        return sorted((r for r in self._reminder_candidates(within) if r.fire_at <= now < r.deadline),
                      key=lambda r: (r.start, r.occ_id))

    def remind(self, *, within: timedelta, grace: timedelta, channel: str, dry_run: bool = False) -> dict[str, Any]:
        """Decide and record, in one transaction, the reminders this channel has not had yet."""
        from practiceplan.store import schedule as sent_store

        p = self.s
        p.plans.extend_horizon()
        conn = p.store.conn
        stamp = iso_z(self.now)

        def decide() -> tuple[list[rem.Reminder], list[rem.Reminder], str | None]:
            candidates = self._reminder_candidates(within)
            sent = sent_store.sent(conn, channel, [c.occ_id for c in candidates])
            individual, summary = rem.select_reminders(candidates, sent, now=self.now, grace=grace)
            return individual, summary, sent_store.last_run(conn, channel)

        if dry_run:
            individual, summary, last = decide()
        else:
            with p.store.write():
                individual, summary, last = decide()
                recorded = set(sent_store.record(conn, channel, "reminder", [r.occ_id for r in individual], stamp))
                recorded |= set(sent_store.record(conn, channel, "summary", [r.occ_id for r in summary], stamp))
                individual = [r for r in individual if r.occ_id in recorded]
                summary = [r for r in summary if r.occ_id in recorded]
                sent_store.set_last_run(conn, channel, stamp)
        zone = p.zone
        shorts = p.store.short_ids("plan_occurrence", [r.occ_id for r in [*individual, *summary]])

        def item(r: rem.Reminder, kind: str) -> dict[str, Any]:
            return {**r.as_json(zone, self.now), "kind": kind, "shortId": shorts.get(r.occ_id, r.occ_id),
                    "checkin": f"practiceplan checkin {shorts.get(r.occ_id, r.occ_id)}"}

        return {
            "now": stamp,
            "channel": channel,
            "withinMinutes": int(within.total_seconds() // 60),
            "graceMinutes": int(grace.total_seconds() // 60),
            "lastRun": last,
            "dryRun": dry_run,
            "reminders": [item(r, "reminder") for r in individual],
            "summary": {"message": rem.summary_message(summary, self.now, zone), "count": len(summary),
                        "reminders": [item(r, "summary") for r in summary]} if summary else None,
        }

    def send_reminders(self, notify_cmd: str, *, within: timedelta, grace: timedelta, channel: str
                       ) -> tuple[dict[str, Any], list[str]]:
        """`remind --notify-cmd`: record this channel's new reminders, run ``notify_cmd`` once per reminder (and
        once for the summary), and forget the ones whose command failed so that the next run sends them again.
        Returns the result (with ``failed`` occurrence ids) and one warning per failed notification."""
        split_command(notify_cmd)  # refuse a malformed command before recording anything
        result = self.remind(within=within, grace=grace, channel=channel)
        failed: list[str] = []
        warnings: list[str] = []
        for item in result["reminders"]:
            error = notify(notify_cmd, item, channel=channel)
            if error:
                warnings.append(f"reminder for {item['shortId']} not sent: {error}")
                failed.append(item["occurrenceId"])
        summary = result["summary"]
        if summary:
            payload = {"kind": "summary", "message": summary["message"], "count": summary["count"],
                       "title": "practiceplan", "reminders": summary["reminders"]}
            error = notify(notify_cmd, payload, channel=channel)
            if error:
                warnings.append(f"summary of {plural(summary['count'], 'reminder')} not sent: {error}")
                failed += [r["occurrenceId"] for r in summary["reminders"]]
        self.forget(channel, failed)
        result["failed"] = failed
        return result, warnings

    def forget(self, channel: str, occurrence_ids: list[str]) -> None:
        """A notification failed: drop its records so that the next run sends it again."""
        from practiceplan.store import schedule as sent_store

        if not occurrence_ids:
            return
        with self.s.store.write():
            sent_store.forget(self.s.store.conn, channel, occurrence_ids)

    # ------------------------------------------------------------------ calendar export

    def ics(self, plan_id: str | None, first_day: date | None, days: int) -> str:
        from practiceplan import __version__
        from practiceplan.formats.ics import build_ics

        zone = self.s.zone
        self.s.plans.extend_horizon()
        first_day = first_day or self.today()
        found = self.s.store.occurrences(
            plan_id=plan_id, start_from=iso_z(local_day_start(first_day, zone)),
            start_before=iso_z(local_day_start(first_day + timedelta(days=days), zone)),
        )
        events = [(o, self.plans[o["planId"]]) for o in found
                  if o.get("planId") in self.plans and not self.plans[o["planId"]].get("deletedAt")]
        return build_ics(events, now=self.now, zone=zone,
                         reminder_minutes=self.s.settings.config["reminder_minutes"],
                         has_time=plan_has_time, version=__version__)


# --------------------------------------------------------------------------- notification commands


def channel_for(notify_cmd: str | None, channel: str | None) -> str:
    """``--channel`` if given; else one channel per notify command (a hash of it), else ``stdout``."""
    if channel:
        from practiceplan.domain.models import clean_line

        return clean_line(channel, "--channel", max_len=100)
    if notify_cmd:
        import hashlib

        return "cmd:" + hashlib.sha256(notify_cmd.strip().encode()).hexdigest()[:12]
    return "stdout"


def split_command(command: str) -> list[str]:
    """The words of a ``--notify-cmd``; a command that cannot be run is refused before anything is recorded."""
    from practiceplan import hooks

    try:
        argv = hooks.split(command)
    except ValueError as exc:
        raise InvalidInputError(f"--notify-cmd cannot be split into words: {exc}",
                                hint="quote it like a shell word list, e.g. --notify-cmd 'notify-send Practice {message}'") from None
    if not argv:
        raise InvalidInputError("--notify-cmd is empty", hint="e.g. --notify-cmd 'notify-send Practice {message}'")
    return argv


def notify(command: str, payload: dict[str, Any], *, channel: str) -> str | None:
    """Run the command once (no shell, see :mod:`practiceplan.hooks`): ``{message}``-style words are replaced
    inside argv items, details go in ``PRACTICEPLAN_*`` variables and as JSON on stdin. Returns an error text,
    or None on success."""
    from practiceplan import hooks

    values = {
        "message": str(payload.get("message") or ""),
        "title": str(payload.get("title") or ""),
        "start": str(payload.get("start") or ""),
        "id": str(payload.get("occurrenceId") or ""),
        "plan": str(payload.get("planId") or ""),
        "kind": str(payload.get("kind") or ""),
        "minutes": "" if payload.get("minutes") is None else str(payload.get("minutes")),
    }
    env = {
        "PRACTICEPLAN_EVENT": "reminder.summary" if payload.get("kind") == "summary" else "reminder",
        "PRACTICEPLAN_CHANNEL": channel,
        "PRACTICEPLAN_MESSAGE": values["message"],
        "PRACTICEPLAN_TITLE": values["title"],
        "PRACTICEPLAN_START": values["start"],
        "PRACTICEPLAN_START_LOCAL": str(payload.get("startLocal") or ""),
        "PRACTICEPLAN_OCCURRENCE_ID": values["id"],
        "PRACTICEPLAN_PLAN_ID": values["plan"],
        "PRACTICEPLAN_MINUTES": values["minutes"],
        "PRACTICEPLAN_COUNT": str(payload.get("count") or 1),
    }
    return hooks.run(command, env=env, details=payload, timeout=30, placeholders=values)


def cron_line(settings: Settings, *, every: int, notify_cmd: str | None, within: int | None,
              sync_every: int | None = None) -> dict[str, Any]:
    """A crontab line for this install: absolute executable, the environment that locates the data. With
    ``sync_every`` (minutes) also a line that runs `sync` (``sync_line``); the token is never in it (sync reads
    it from the keyring or the credentials file, or the cron environment's ``PRACTICEPLAN_TOKEN``)."""
    import shlex
    import shutil

    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0).startswith("practiceplan") and os.path.isfile(argv0):
        program = [os.path.abspath(argv0)]
    elif shutil.which("practiceplan"):
        program = [os.path.abspath(shutil.which("practiceplan") or "practiceplan")]
    else:
        program = [os.path.abspath(sys.executable), "-m", "practiceplan"]
    env: dict[str, str] = {}
    for name in ("PRACTICEPLAN_HOME", "PRACTICEPLAN_DB", "PRACTICEPLAN_TZ"):
        if settings.env.get(name):
            env[name] = settings.env[name]
    if notify_cmd:
        for name in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR"):
            if settings.env.get(name):
                env[name] = settings.env[name]
    args = [*program]
    if settings.db_flag:
        args += ["--db", os.path.abspath(settings.db_flag)]
    args.append("remind")
    if within is not None:
        args += ["--within", f"{within}m"]
    if notify_cmd:
        args += ["--notify-cmd", notify_cmd]
    def when(minutes: int) -> str:
        return f"*/{minutes} * * * *" if minutes < 60 else "0 * * * *"

    def line(schedule: str, argv: list[str]) -> str:
        return f"{schedule} " + " ".join([*(f"{k}={shlex.quote(v)}" for k, v in env.items()),
                                          *(shlex.quote(a) for a in argv)])

    schedule = when(every)
    data = {"line": line(schedule, args), "schedule": schedule, "env": env, "argv": args}
    if sync_every is not None:
        sync_args = [*args[:args.index("remind")], "sync"]
        data["sync_line"] = line(when(sync_every), sync_args)
        data["sync_argv"] = sync_args
    return data
