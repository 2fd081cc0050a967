"""Building and editing practice plans from user input (pure).

``apply_input`` validates everything before anything is built, so a bad option never produces a
half-made plan. The user's exact RRULE drives expansion; ``schedule.rule`` always holds the nearest rule a
Mirubato server accepts, with the exact one in ``schedule.metadata.rrule`` when they differ.
"""

from __future__ import annotations

import calendar
import copy
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from practiceplan.domain import recurrence as rec
from practiceplan.domain.models import (
    FLEX_KINDS,
    MAX_ITEMS,
    clean_line,
    iso_z,
    new_id,
    parse_local_date,
)
from practiceplan.domain.occurrences import parse_time_of_day, plan_recurrence
from practiceplan.domain.tz import localize, spoken
from practiceplan.errors import InvalidInputError

MAX_SEGMENTS = 10
MAX_PROMPTS = 10
DEFAULT_MINUTES = 30
_RULE_HINT = "see RFC 5545, e.g. FREQ=WEEKLY;BYDAY=MO,WE,FR, or use --every daily|weekly|monthly"
EVERY = ("daily", "weekly", "monthly", "yearly")
WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_WEEKDAY_WORDS = {
    "mo": "MO", "mon": "MO", "monday": "MO", "tu": "TU", "tue": "TU", "tues": "TU", "tuesday": "TU",
    "we": "WE", "wed": "WE", "wednesday": "WE", "th": "TH", "thu": "TH", "thur": "TH", "thurs": "TH",
    "thursday": "TH", "fr": "FR", "fri": "FR", "friday": "FR", "sa": "SA", "sat": "SA", "saturday": "SA",
    "su": "SU", "sun": "SU", "sunday": "SU",
}


@dataclass
class PlanInput:
    """What the user asked for. ``None`` means "not given" (keep the current value when editing)."""

    title: str | None = None
    description: str | None = None
    once: datetime | None = None
    rrule: str | None = None
    every: str | None = None
    on: list[str] | None = None
    interval: int | None = None
    start: date | None = None
    end: date | None = None
    clear_end: bool = False
    at: time | None = None
    minutes: int | None = None
    zone: str | None = None
    flex: str | None = None
    instrument: str | None = None
    focus: list[str] | None = None
    techniques: list[str] | None = None
    pieces: list[dict[str, Any]] | None = None
    segments: list[dict[str, Any]] | None = None
    prompts: list[str] | None = None
    targets: dict[str, Any] | None = None
    exdates: list[date] | None = None
    last_day: bool = False  # monthly on the last day of each month (BYMONTHDAY=-1); implies --every monthly
    backfill: bool = False  # a new plan: its sessions before it was created count too (and a past --once is fine)
    extra_metadata: dict[str, Any] = field(default_factory=dict)

    def schedule_given(self) -> bool:
        return any(
            v is not None
            for v in (self.once, self.rrule, self.every, self.on, self.interval, self.start, self.end, self.at,
                      self.minutes, self.zone, self.flex, self.exdates, self.segments)
        ) or self.clear_end or self.last_day


class PastSessionError(InvalidInputError):
    """A new one-off session (``--once``) that is already past; on a terminal the CLI may confirm it instead."""


def once_in_past(once: datetime, zone: ZoneInfo, now: datetime) -> bool:
    """Whether a ``--once`` moment is past: its time has gone, or (a day without a time) its day has."""
    local = once.astimezone(zone)
    if local.time() == time():
        return local.date() < now.astimezone(zone).date()
    return once < now


def parse_weekdays(values: list[str]) -> list[str]:
    codes: list[str] = []
    for value in values:
        for word in value.replace(" ", ",").split(","):
            if not word:
                continue
            code = _WEEKDAY_WORDS.get(word.strip().lower())
            if code is None:
                raise InvalidInputError(f"'{word}' is not a weekday", hint="use mo,tu,we,th,fr,sa,su")
            if code not in codes:
                codes.append(code)
    return sorted(codes, key=WEEKDAY_CODES.index)


def _rule_from_every(every: str, on: list[str] | None, interval: int | None, last_day: bool = False) -> str:
    if last_day and every != "monthly":
        raise InvalidInputError(f"--last-day goes with --every monthly, not --every {every}",
                                hint="e.g. --every monthly --last-day (the 28th-31st, whichever ends the month)")
    if every not in EVERY:
        raise InvalidInputError(f"--every must be one of {', '.join(EVERY)}, not '{every}'",
                                hint="for anything else use --rrule, e.g. --rrule 'FREQ=WEEKLY;INTERVAL=2'")
    days = parse_weekdays(on) if on else []
    freq = every.upper()
    if days and every == "daily":
        freq = "WEEKLY"  # "daily on mo,we,fr" is weekly on those days
    if days and every in ("monthly", "yearly"):
        raise InvalidInputError(
            f"--on does not combine with --every {every}",
            hint='use --rrule, e.g. --rrule "FREQ=MONTHLY;BYDAY=1MO" for the first Monday',
        )
    parts = [f"FREQ={freq}", f"INTERVAL={interval or 1}"]
    if days:
        parts.append("BYDAY=" + ",".join(days))
    if last_day:
        parts.append("BYMONTHDAY=-1")
    return ";".join(parts)


def _recurrence_metadata(wire: str) -> dict[str, Any]:
    parts = rec.parse_rule(wire)
    meta: dict[str, Any] = {"frequency": parts["FREQ"], "interval": int(parts.get("INTERVAL", "1"))}
    if parts.get("BYDAY"):
        meta["weekdays"] = parts["BYDAY"].split(",")
    if parts.get("COUNT"):
        meta["count"] = int(parts["COUNT"])
    until = rec.until_date(parts)
    if until:
        meta["until"] = until.isoformat()
    return meta


def _check_list(values: list[str] | None, what: str, max_len: int = 100) -> list[str] | None:
    if values is None:
        return None
    if len(values) > MAX_ITEMS:
        raise InvalidInputError(f"too many {what} (at most {MAX_ITEMS})", hint="keep the most important ones")
    return [clean_line(v, what, max_len=max_len) for v in values]


def apply_input(
    plan: dict[str, Any] | None,
    inp: PlanInput,
    *,
    now: datetime,
    default_zone: str,
) -> dict[str, Any]:
    """A new plan (``plan`` is None) or an edited copy of ``plan``; raises InvalidInputError on bad input."""
    creating = plan is None
    result: dict[str, Any] = copy.deepcopy(plan) if plan else {}
    stamp = iso_z(now)
    if creating:
        if inp.title is None:
            raise InvalidInputError("a plan needs a title", hint='e.g. practiceplan plan add "Scales" --every daily')
        result = {
            "id": new_id("plan"),
            "title": "",
            "description": None,
            "type": "custom",
            "focusAreas": [],
            "techniques": [],
            "pieceRefs": [],
            "schedule": {},
            "visibility": "private",
            "status": "active",
            "sourceTemplateId": None,
            "tags": [],
            "metadata": {},
            "createdAt": stamp,
            "updatedAt": stamp,
            "archivedAt": None,
        }
    if inp.title is not None:
        result["title"] = clean_line(inp.title, "title")
    if inp.description is not None:
        result["description"] = clean_line(inp.description, "description", max_len=2000, allow_empty=True) or None
    for key, values in (("focusAreas", inp.focus), ("techniques", inp.techniques)):
        checked = _check_list(values, key)
        if checked is not None:
            result[key] = checked
    if inp.pieces is not None:
        if len(inp.pieces) > MAX_ITEMS:
            raise InvalidInputError(f"too many pieces (at most {MAX_ITEMS})", hint="split them over several plans")
        result["pieceRefs"] = [dict(p) for p in inp.pieces]
    metadata = dict(result.get("metadata") or {})
    if inp.instrument is not None:
        metadata["instrument"] = clean_line(inp.instrument, "instrument", max_len=60).lower()
    if inp.segments is not None:
        if len(inp.segments) > MAX_SEGMENTS:
            raise InvalidInputError(f"too many segments (at most {MAX_SEGMENTS} per session)",
                                    hint="merge some segments, or split the session over two plans")
        metadata["segments"] = [dict(s) for s in inp.segments]
    if inp.prompts is not None:
        if len(inp.prompts) > MAX_PROMPTS:
            raise InvalidInputError(f"too many reflection prompts (at most {MAX_PROMPTS})",
                                    hint="keep the most useful ones")
        metadata["reflectionPrompts"] = [clean_line(p, "reflection prompt", max_len=300) for p in inp.prompts]
    if inp.targets is not None:
        metadata["targets"] = dict(inp.targets)
    metadata.update(inp.extra_metadata)
    if creating and inp.backfill:
        metadata["backfill"] = True  # see models.plan_counts_from
    result["metadata"] = metadata
    if creating or inp.schedule_given():
        result["schedule"] = _schedule(result, inp, creating=creating, now=now, default_zone=default_zone)
    result["updatedAt"] = stamp
    _check_schedule(result, default_zone)
    return result


def _check_schedule(plan: dict[str, Any], default_zone: str) -> None:
    """The plan's schedule is usable: a start, a valid rule, and at least one session (a rule that never
    matches is refused with the reason)."""
    recurrence = plan_recurrence(plan, default_zone)
    if recurrence is None:
        raise InvalidInputError("the plan's schedule has no usable start date", hint="give one with --start DATE")
    try:
        rec.validate(recurrence)
        empty = rec.why_no_sessions(recurrence)
    except rec.RecurrenceError as exc:
        raise InvalidInputError(str(exc), hint=_RULE_HINT) from None
    if empty is not None:
        raise InvalidInputError(f"this schedule never has a session: {empty}", hint=_empty_hint(recurrence))


def _empty_hint(recurrence: rec.Recurrence) -> str:
    if recurrence.rule and "BYMONTHDAY" in recurrence.rule.upper():
        return "for the last day of each month use BYMONTHDAY=-1 (or --every monthly --last-day)"
    if recurrence.end is not None or (recurrence.rule and "UNTIL" in recurrence.rule.upper()):
        return "check --start, --end and the rule's UNTIL/COUNT"
    return "check the rule's BY... parts against --start; `practiceplan plan add --help` has examples"


def schedule_notes(plan: dict[str, Any], default_zone: str) -> list[str]:
    """What a person should know about a valid schedule: a monthly rule on the 29th-31st has no session in
    the months without that day (and the alternative for "the last day of each month")."""
    recurrence = plan_recurrence(plan, default_zone)
    skipped = rec.skipped_months(recurrence) if recurrence else {}
    notes = []
    for day, months in skipped.items():
        names = [calendar.month_name[m] + (" in common years" if m == 2 and day == 29 else "") for m in months]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        notes.append(f"sessions on day {day} of the month skip months without one ({listed}); for the last day "
                     "of every month use --last-day (BYMONTHDAY=-1)")
    return notes


_MANAGED = {"kind", "rule", "durationMinutes", "timeOfDay", "flexibility", "startDate", "endDate", "target"}


@dataclass(frozen=True)
class _When:
    """When a plan's sessions happen, after the user's options."""

    kind: str  # single | recurring
    exact: str | None  # the exact RRULE of a recurring plan
    start: date
    at: time | None  # local time of day
    end: date | None


def _schedule(
    plan: dict[str, Any], inp: PlanInput, *, creating: bool, now: datetime, default_zone: str
) -> dict[str, Any]:
    """The plan's ``schedule`` after ``inp`` (fields we do not manage are kept); raises InvalidInputError."""
    old = dict(plan.get("schedule") or {})
    meta = dict(old.get("metadata") or {})
    _check_sources(inp, creating=creating)
    zone = _zone(inp.zone or meta.get("timezone") or default_zone)
    meta["timezone"] = zone.key
    when = _when(old, meta, inp, zone, now)
    if creating and inp.once is not None and not inp.backfill and once_in_past(inp.once, zone, now):
        local = inp.once.astimezone(zone)
        said = f"{local:%a %d %b %Y}" if when.at is None else spoken(inp.once, zone)
        raise PastSessionError(f"--once {said} is already past",
                               hint="give a later time (e.g. --once 'next friday 9am'), or add --backfill to plan "
                                    "one that already happened")
    end = when.end
    schedule: dict[str, Any] = {"kind": when.kind}
    if when.kind == "recurring":
        end = _set_rule(schedule, meta, when.exact, end)
    else:
        meta.pop("rrule", None)
        meta.pop("recurrence", None)
    segments = (plan.get("metadata") or {}).get("segments") or []
    minutes = inp.minutes if inp.minutes is not None else old.get("durationMinutes")
    schedule["durationMinutes"] = minutes or sum(s.get("durationMinutes") or 0 for s in segments) or DEFAULT_MINUTES
    if when.at is not None:
        schedule["timeOfDay"] = when.at.strftime("%H:%M")
    _set_flex(schedule, meta, inp.flex or meta.get("flex") or old.get("flexibility"), when.at)
    schedule["startDate"] = when.start.isoformat()
    schedule["endDate"] = end.isoformat() if end else None
    if when.kind == "single":
        schedule["target"] = iso_z(localize(datetime.combine(when.start, when.at or time()), zone))
    elif "target" in old:
        schedule["target"] = old["target"]
    if inp.exdates is not None:
        meta["exdates"] = sorted({d.isoformat() for d in inp.exdates})
    meta["segmentsCount"] = len(segments)
    schedule["metadata"] = meta
    for key, value in old.items():  # keep fields we do not manage
        if key not in _MANAGED:
            schedule.setdefault(key, value)
    return schedule


def _check_sources(inp: PlanInput, *, creating: bool) -> None:
    """One of --once, --rrule and --every (a new plan needs one); --on and --interval only with --every."""
    sources = [name for name, v in (("--once", inp.once), ("--rrule", inp.rrule),
                                    ("--every", inp.every or (inp.last_day and "monthly"))) if v]
    if inp.last_day and (inp.once or inp.rrule):
        sources[sources.index("--every")] = "--last-day"
    if len(sources) > 1:
        raise InvalidInputError(f"{' and '.join(sources)} cannot be combined; give one of them",
                                hint="--once for one session, --every or --rrule for a recurring plan")
    if (inp.on or inp.interval) and not inp.every:
        raise InvalidInputError("--on and --interval go with --every", hint="e.g. --every weekly --on mo,we,fr")
    if creating and not sources:
        raise InvalidInputError(
            "say when to practise: --once WHEN, --every daily|weekly|monthly, or --rrule RULE",
            hint='e.g. practiceplan plan add "Scales" --every weekly --on mo,we,fr --at 18:00',
        )


def _zone(name: str) -> ZoneInfo:
    try:
        return rec.get_zone(name)
    except rec.RecurrenceError as exc:
        raise InvalidInputError(str(exc), hint="use an IANA name such as Europe/Berlin") from None


def _when(old: dict[str, Any], meta: dict[str, Any], inp: PlanInput, zone: ZoneInfo, now: datetime) -> _When:
    """The current schedule's kind, rule, start, time of day and end, with ``inp``'s options applied."""
    kind = old.get("kind", "single")
    exact: str | None = meta.get("rrule") or old.get("rule")
    start = parse_local_date(old.get("startDate"))
    at = parse_time_of_day(old.get("timeOfDay"))
    end = parse_local_date(old.get("endDate"))
    if inp.once is not None:
        kind, exact, end = "single", None, None
        local = inp.once.astimezone(zone)
        start = local.date()
        at = local.time().replace(second=0, microsecond=0) if local.time() != time() else None
        if inp.at is not None or inp.start is not None:
            raise InvalidInputError("--once already gives the day and time; drop --start/--at",
                                    hint="e.g. --once 'friday 18:00'")
    elif inp.rrule is not None or inp.every is not None or inp.last_day:
        kind = "recurring"
        every = inp.every or "monthly"  # --last-day alone is monthly
        text = inp.rrule if inp.rrule is not None else _rule_from_every(every, inp.on, inp.interval, inp.last_day)
        try:
            exact = rec.canonical_rule(rec.parse_rule(text))
        except rec.RecurrenceError as exc:
            raise InvalidInputError(str(exc), hint=_RULE_HINT) from None
    if inp.start is not None:
        start = inp.start
    if start is None:
        start = now.astimezone(zone).date()
    if inp.at is not None:
        at = inp.at
    if inp.clear_end:
        end = None
    if inp.end is not None:
        end = inp.end
    if kind == "single":
        end = None
    if end is not None and end < start:
        raise InvalidInputError(f"end date {end} is before start date {start}",
                                hint="give an --end on or after --start")
    return _When(kind, exact, start, at, end)


def _set_rule(schedule: dict[str, Any], meta: dict[str, Any], exact: str | None, end: date | None) -> date | None:
    """A recurring plan's wire ``rule`` and ``recurrence`` metadata, with the exact rule in ``metadata.rrule``
    when the wire cannot carry it. Returns the end date: a rule's UNTIL before it brings it forward."""
    assert exact is not None
    parts = rec.parse_rule(exact)
    wire, exact_needed = rec.wire_rule(parts)
    until = rec.until_date(parts)
    if until and (end is None or until < end):
        end = until
    schedule["rule"] = wire
    meta["recurrence"] = _recurrence_metadata(wire)
    if exact_needed:
        meta["rrule"] = exact
    else:
        meta.pop("rrule", None)
    return end


def _set_flex(schedule: dict[str, Any], meta: dict[str, Any], given: str | None, at: time | None) -> None:
    """``schedule.flexibility`` (the wire's kinds) and ``metadata.flex`` (our ``weekly``); the default is
    ``fixed`` with a time of day, else ``same-day``."""
    flex = given or ("same-day" if at is None else "fixed")
    if flex not in FLEX_KINDS:
        raise InvalidInputError(f"--flex must be one of {', '.join(FLEX_KINDS)}, not '{flex}'",
                                hint="see `practiceplan plan add --help`")
    if flex == "fixed" and at is None:
        raise InvalidInputError("--flex fixed needs a time of day (--at HH:MM)",
                                hint="add --at 18:00, or use --flex same-day for any time that day")
    schedule["flexibility"] = "anytime" if flex == "weekly" else flex
    if flex == "weekly":
        meta["flex"] = "weekly"
    else:
        meta.pop("flex", None)
