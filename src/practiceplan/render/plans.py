"""Rich views of plans: the list and one plan in detail."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from rich.table import Table
from rich.text import Text

from practiceplan.domain.models import parse_local_date, plan_flex, plan_prompts, plan_segments, plural
from practiceplan.render.logbook import piece_text
from practiceplan.render.occurrences import print_occurrences
from practiceplan.render.output import console, safe
from practiceplan.render.tables import bare_table


WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
WEEKDAY_SHORT = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
WEEKDAY_LONG = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTH_SHORT = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTH_LONG = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December")
_SIMPLE_KEYS = {"FREQ", "INTERVAL", "BYMONTH", "BYMONTHDAY", "BYDAY", "BYSETPOS", "WKST", "COUNT", "UNTIL"}


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 11th, 22nd; -1 is "last", -2 "2nd to last"."""
    if n < 0:
        return "last" if n == -1 else f"{ordinal(-n)} to last"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _day_text(day: date, today: date | None) -> str:
    """"Fri 6 Mar", with the year when it is not this year (or this year is not known)."""
    text = f"{WEEKDAY_SHORT[day.weekday()]} {day.day} {MONTH_SHORT[day.month - 1]}"
    return text if today is not None and day.year == today.year else f"{text} {day.year}"


def _weekdays(codes: list[str]) -> str:
    """"Mon, Wed, Fri"; "every day", "Mon–Fri" and "Sat, Sun" for the usual sets."""
    ordered = sorted(set(codes), key=WEEKDAY_CODES.index)
    if len(ordered) == 7:
        return "every day"
    if ordered == list(WEEKDAY_CODES[:5]):
        return "Mon–Fri"
    return ", ".join(WEEKDAY_SHORT[WEEKDAY_CODES.index(c)] for c in ordered)


def _byday(value: str) -> list[tuple[int | None, str]]:
    items = []
    for item in value.split(","):
        number, code = item[:-2], item[-2:]
        items.append((int(number) if number not in ("", "+") else None, code))
    return items


def _nth_weekdays(parts: dict[str, str]) -> str | None:
    """"the 2nd Tuesday", "the last Friday", "the last weekday" (BYDAY with numbers, or BYDAY + BYSETPOS)."""
    days = _byday(parts["BYDAY"])
    if all(n is not None for n, _ in days) and "BYSETPOS" not in parts:
        return "the " + _and([f"{ordinal(n)} {WEEKDAY_LONG[WEEKDAY_CODES.index(c)]}" for n, c in days if n])
    if any(n is not None for n, _ in days):
        return None
    codes = sorted({c for _, c in days}, key=WEEKDAY_CODES.index)
    noun = ("weekday" if codes == list(WEEKDAY_CODES[:5]) else "day" if len(codes) == 7
            else " or ".join(WEEKDAY_LONG[WEEKDAY_CODES.index(c)] for c in codes))
    if "BYSETPOS" not in parts:
        return f"every {noun}"
    return "the " + _and([f"{ordinal(int(n))} {noun}" for n in parts["BYSETPOS"].split(",")])


def _month_days(parts: dict[str, str], start: date | None) -> str | None:
    """What a monthly rule picks in a month: "the 2nd Tuesday", "the 1st and 15th", "the last day"."""
    if "BYDAY" in parts and "BYMONTHDAY" in parts:
        return None
    if "BYDAY" in parts:
        return _nth_weekdays(parts)
    if "BYSETPOS" in parts:
        return None
    if "BYMONTHDAY" in parts:
        days = [int(d) for d in parts["BYMONTHDAY"].split(",")]
        return "the " + _and(["last day" if d == -1 else ordinal(d) for d in days])
    return f"the {ordinal(start.day)}" if start else None


def _year_days(parts: dict[str, str], start: date | None) -> str | None:
    """What a yearly rule picks: "14 Feb", "the 1st Sunday of March"."""
    months = [int(m) for m in parts["BYMONTH"].split(",")] if "BYMONTH" in parts else [start.month] if start else []
    if not months:
        return None
    if "BYDAY" in parts:
        picked = _nth_weekdays(parts)
        return picked and f"{picked} of {_and([MONTH_LONG[m - 1] for m in months])}"
    days = [int(d) for d in parts["BYMONTHDAY"].split(",")] if "BYMONTHDAY" in parts else [start.day] if start else []
    if not days or any(d < 0 for d in days) or "BYSETPOS" in parts:
        return None
    return _and([f"{d} {MONTH_SHORT[m - 1]}" for m in months for d in days])


def _pattern(parts: dict[str, str], start: date | None) -> str | None:
    """The repeating part of a rule in words, or None when it is beyond these phrases."""
    freq, n = parts["FREQ"], int(parts.get("INTERVAL", "1"))
    if not set(parts) <= _SIMPLE_KEYS and freq not in ("HOURLY", "MINUTELY"):
        return None
    if freq in ("HOURLY", "MINUTELY"):
        unit = "hour" if freq == "HOURLY" else "minute"
        return None if set(parts) - {"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST"} else (
            f"every {unit}" if n == 1 else f"every {n} {unit}s")
    if freq == "DAILY" or (freq == "WEEKLY" and "BYSETPOS" not in parts and "BYMONTHDAY" not in parts):
        codes = [c for _, c in _byday(parts["BYDAY"])] if "BYDAY" in parts else (
            [WEEKDAY_CODES[start.weekday()]] if freq == "WEEKLY" and start else [])
        if "BYMONTH" in parts or "BYSETPOS" in parts or "BYMONTHDAY" in parts:
            return None
        if freq == "DAILY" and not codes:
            return "every day" if n == 1 else f"every {n} days"
        days = _weekdays(codes)
        unit = "days" if freq == "DAILY" else "weeks"
        if n > 1:
            return f"every {n} {unit}, {days}" if days == "every day" else f"every {n} {unit} on {days}"
        return f"every {days}" if len(codes) == 1 else days
    if freq == "MONTHLY":
        picked = _month_days(parts, start)
        if picked is None:
            return None
        within = f" in {', '.join(MONTH_SHORT[int(m) - 1] for m in parts['BYMONTH'].split(','))}" if "BYMONTH" in parts else ""
        return (f"monthly on {picked}" if n == 1 else f"every {n} months on {picked}") + within
    picked = _year_days(parts, start)
    return picked and (f"yearly on {picked}" if n == 1 else f"every {n} years on {picked}")


def rule_words(rule: str, start: date | None = None) -> str:
    """Only the repeating part of a rule in words ("Mon, Wed, Fri"), or the rule itself when it cannot be said."""
    from practiceplan.domain import recurrence as rec

    try:
        return _pattern(rec.parse_rule(rule), start) or rule
    except rec.RecurrenceError:
        return rule


def describe_schedule(owner: dict[str, Any], today: date | None = None) -> str:
    """A plan's (or template's) schedule as a person would say it: "Mon, Wed, Fri at 07:30, Europe/Berlin",
    "every 2 weeks on Tue", "monthly on the 2nd Tuesday at 19:00", "once on Fri 6 Mar at 17:00".

    Pure: ``today`` (the user's date) only decides whether a year is worth printing and whether the start date is
    still to come. A rule beyond these phrases (BYWEEKNO, BYHOUR...) is given as its frequency plus "custom rule";
    `plan show` and ``--json`` always carry the exact rule.
    """
    from practiceplan.domain import recurrence as rec

    schedule = owner.get("schedule") or {}
    meta = schedule.get("metadata") or {}
    start, at = parse_local_date(schedule.get("startDate")), schedule.get("timeOfDay")
    zone = meta.get("timezone")
    if schedule.get("kind") != "recurring":
        when = _day_text(start, today) if start else str(schedule.get("target") or "?")
        return f"once on {when}" + (f" at {at}" if at else ", any time of day") + (f", {zone}" if zone else "")
    rule = meta.get("rrule") or schedule.get("rule") or ""
    try:
        parts = rec.parse_rule(rule)
    except rec.RecurrenceError:
        return str(rule) + (f", {zone}" if zone else "")
    pattern = _pattern(parts, start) or f"{parts['FREQ'].lower()} (custom rule)"
    sub_daily = parts["FREQ"] in ("HOURLY", "MINUTELY")
    text = pattern + (f" {'from' if sub_daily else 'at'} {at}" if at else ", any time of day")
    if "COUNT" in parts:
        text += f", {plural(int(parts['COUNT']), 'time')}"
    if start and today and start > today:
        text += f" from {_day_text(start, today)}"
    ends = [d for d in (parse_local_date(schedule.get("endDate")), rec.until_date(parts)) if d]
    if ends:
        text += f" until {_day_text(min(ends), today)}"
    return text + (f", {zone}" if zone else "")


def segment_line(segment: dict[str, Any]) -> str:
    """"  • Warm-up — 10 min: slowly" (the instructions only when there are any)."""
    line = f"  • {segment.get('label')} — {segment.get('durationMinutes', '?')} min"
    if segment.get("instructions"):
        line += f": {segment['instructions']}"
    return line


def print_plans(plans: list[dict[str, Any]], short: dict[str, str], today: date | None = None, *,
                me: str | None = None) -> None:
    """The plan table; a "Shared" column when a plan carries ``sharing`` (services/sharing.py with_sharing)."""
    from practiceplan.render.sharing import shared_cell

    out = console()
    if not plans:
        out.print("No plans yet. Add one with: practiceplan plan add \"Scales\" --every daily --at 18:00")
        return
    table = bare_table()
    shared = any(plan.get("sharing") for plan in plans)
    for column in ("ID", "Title", "Status", "Schedule", "Min", "Flex", *(("Shared",) if shared else ())):
        table.add_column(column, overflow="fold" if column in ("Title", "Shared") else "ellipsis")
    for plan in plans:
        table.add_row(
            short.get(plan["id"], plan["id"]),
            Text(safe(plan.get("title"))),
            Text(plan.get("status", "?"), style="green" if plan.get("status") == "active" else "dim"),
            Text(safe(describe_schedule(plan, today))),
            str((plan.get("schedule") or {}).get("durationMinutes") or "-"),
            plan_flex(plan),
            *((Text(shared_cell(plan.get("sharing"), me)),) if shared else ()),
        )
    out.print(table)


def detail_rows(plan: dict[str, Any], today: date | None = None) -> list[tuple[str, str]]:
    """(label, text) of a plan's details: the schedule in words, then the exact rule and the rest."""
    schedule = plan.get("schedule") or {}
    meta = plan.get("metadata") or {}
    exact = (schedule.get("metadata") or {}).get("rrule") or schedule.get("rule")
    rows = [("title", str(plan.get("title") or "")), ("status", str(plan.get("status", ""))),
            ("schedule", describe_schedule(plan, today))]
    if plan.get("description"):
        rows.append(("description", str(plan["description"])))
    if schedule.get("kind") == "recurring":
        rows.append(("rule", str(exact or "-")))
        if schedule.get("rule") and schedule.get("rule") != exact:
            rows.append(("wire rule", str(schedule["rule"])))
    rows += [
        ("starts", str(schedule.get("startDate") or "-")),
        ("ends", str(schedule.get("endDate") or "-")),
        ("minutes", str(schedule.get("durationMinutes") or "-")),
        ("flexibility", plan_flex(plan)),
        ("instrument", meta.get("instrument") or "-"),
        ("focus", ", ".join(plan.get("focusAreas") or []) or "-"),
        ("techniques", ", ".join(plan.get("techniques") or []) or "-"),
        ("pieces", "; ".join(piece_text(p) for p in plan.get("pieceRefs") or []) or "-"),
        ("targets", ", ".join(f"{k}={v}" for k, v in (meta.get("targets") or {}).items()) or "-"),
        ("segments", "; ".join(segment_line(s).strip(" •") for s in plan_segments(plan)) or "-"),
        ("prompts", "; ".join(plan_prompts(plan)) or "-"),
    ]
    return rows


def print_plan(plan: dict[str, Any], upcoming: list[dict[str, Any]], short: dict[str, str], zone: ZoneInfo,
               today: date | None = None) -> None:
    out = console()
    out.print(Text(safe(plan.get("title")), style="bold"))
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    table.add_row("id", plan["id"])
    for key, value in detail_rows(plan, today)[1:]:
        if key not in ("segments", "prompts"):
            table.add_row(key, Text(safe(value)))
    out.print(table)
    segments = plan_segments(plan)
    if segments:
        out.print(Text("Segments", style="bold"))
        for segment in segments:
            out.print(Text(safe(segment_line(segment))))
    prompts = plan_prompts(plan)
    if prompts:
        out.print(Text("Reflection prompts", style="bold"))
        for prompt in prompts:
            out.print(Text(safe(f"  ? {prompt}")))
    if upcoming:
        out.print(Text("Next sessions", style="bold"))
        print_occurrences(upcoming, {plan["id"]: plan}, short, zone, show_plan=False)


def sessions_text(counts: dict[str, int]) -> str:
    """What a change did to a plan's sessions: "7 sessions moved", "26 sessions moved, 13 removed",
    "no sessions changed" (``counts``: SessionChanges.as_json())."""
    parts = [(counts.get(key, 0), key) for key in ("added", "moved", "removed", "updated") if counts.get(key)]
    if not parts:
        return "no sessions changed"
    (count, word), rest = parts[0], parts[1:]
    return ", ".join([f"{plural(count, 'session')} {word}", *(f"{n:,} {w}" for n, w in rest)])


def plan_changes(before: dict[str, Any], after: dict[str, Any], today: date | None = None) -> list[tuple[str, str, str]]:
    """(label, before, after) for each detail of a plan that an edit changes."""
    old, new = dict(detail_rows(before, today)), detail_rows(after, today)
    return [(label, old.get(label, "-"), value) for label, value in new if old.get(label, "-") != value]
