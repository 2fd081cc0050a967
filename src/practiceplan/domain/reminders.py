"""Reminders: when a session is reminded of, which reminders are due on a channel, and their wording.

Pure: callers pass ``now``, the zone and the candidates they loaded (with their deadlines, see
:func:`.occurrences.deadline`); what was already sent on a channel is the store's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from practiceplan.domain.models import iso_z
from practiceplan.domain.tz import day_of, local_instant

ALL_DAY_REMINDER = time(8, 0)  # sessions without a time of day are reminded at 08:00 local


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
        return local_instant(day_of(start, zone), ALL_DAY_REMINDER, zone)
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
