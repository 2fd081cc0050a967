"""Rich views for people: tables, detail panels, the today screen and progress rails.

Every function takes plain data (wire-format dicts, short-id maps, a zone) and prints to a console; none
computes domain values itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich import box
from rich.table import Table
from rich.text import Text

from practiceplan.domain.models import parse_instant, plan_flex, plan_prompts, plan_segments
from practiceplan.render.output import console, safe
from practiceplan.render.plain import local, rail_counts, rail_parts, summary_text

STATE_STYLE = {
    "completed": "green",
    "done": "green",
    "skipped": "dim",
    "expired": "dim",
    "missed": "red",
    "overdue": "bold red",
    "due": "yellow",
    "upcoming": "cyan",
    "scheduled": "cyan",
    "moved": "magenta",
}


def _table(*columns: str) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def schedule_summary(plan: dict[str, Any]) -> str:
    schedule = plan.get("schedule") or {}
    meta = schedule.get("metadata") or {}
    at = schedule.get("timeOfDay")
    when = f" at {at}" if at else " (any time of day)"
    if schedule.get("kind") == "recurring":
        rule = meta.get("rrule") or schedule.get("rule") or "?"
        text = f"{rule}{when} from {schedule.get('startDate')}"
        if schedule.get("endDate"):
            text += f" to {schedule['endDate']}"
    else:
        text = f"once on {schedule.get('startDate')}{when}"
    zone = meta.get("timezone")
    return text + (f" ({zone})" if zone else "")


def print_plans(plans: list[dict[str, Any]], short: dict[str, str]) -> None:
    out = console()
    if not plans:
        out.print("No plans yet. Add one with: practiceplan plan add \"Scales\" --every daily --at 18:00")
        return
    table = _table("ID", "Title", "Status", "Schedule", "Min", "Flex")
    for plan in plans:
        table.add_row(
            short.get(plan["id"], plan["id"]),
            Text(safe(plan.get("title"))),
            Text(plan.get("status", "?"), style="green" if plan.get("status") == "active" else "dim"),
            Text(safe(schedule_summary(plan))),
            str((plan.get("schedule") or {}).get("durationMinutes") or "-"),
            plan_flex(plan),
        )
    out.print(table)


def print_plan(plan: dict[str, Any], upcoming: list[dict[str, Any]], short: dict[str, str], zone: ZoneInfo) -> None:
    out = console()
    out.print(Text(safe(plan.get("title")), style="bold"))
    rows = [
        ("id", plan["id"]),
        ("status", plan.get("status", "")),
        ("schedule", schedule_summary(plan)),
        ("wire rule", (plan.get("schedule") or {}).get("rule") or "-"),
        ("minutes", (plan.get("schedule") or {}).get("durationMinutes")),
        ("flexibility", plan_flex(plan)),
        ("instrument", (plan.get("metadata") or {}).get("instrument") or "-"),
        ("focus", ", ".join(plan.get("focusAreas") or []) or "-"),
        ("techniques", ", ".join(plan.get("techniques") or []) or "-"),
        ("pieces", "; ".join(_piece(p) for p in plan.get("pieceRefs") or []) or "-"),
        ("targets", ", ".join(f"{k}={v}" for k, v in ((plan.get("metadata") or {}).get("targets") or {}).items()) or "-"),
    ]
    if plan.get("description"):
        rows.insert(2, ("description", plan["description"]))
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    for key, value in rows:
        table.add_row(key, Text(safe(value)))
    out.print(table)
    segments = plan_segments(plan)
    if segments:
        out.print(Text("Segments", style="bold"))
        for segment in segments:
            line = f"  • {segment.get('label')} — {segment.get('durationMinutes', '?')} min"
            if segment.get("instructions"):
                line += f": {segment['instructions']}"
            out.print(Text(safe(line)))
    prompts = plan_prompts(plan)
    if prompts:
        out.print(Text("Reflection prompts", style="bold"))
        for prompt in prompts:
            out.print(Text(safe(f"  ? {prompt}")))
    if upcoming:
        out.print(Text("Next sessions", style="bold"))
        print_occurrences(upcoming, {plan["id"]: plan}, short, zone, show_plan=False)


def _piece(piece: dict[str, Any]) -> str:
    title = piece.get("title") or piece.get("scoreId") or "?"
    return f"{title} — {piece['composer']}" if piece.get("composer") else str(title)


def occurrence_state(occ: dict[str, Any]) -> str:
    status = occ.get("status", "scheduled")
    original = (occ.get("metrics") or {}).get("originalStart")
    if status == "scheduled" and original and original != occ.get("scheduledStart"):
        return "moved"
    return status


def print_occurrences(
    occurrences: list[dict[str, Any]],
    plans: dict[str, dict[str, Any]],
    short: dict[str, str],
    zone: ZoneInfo,
    *,
    show_plan: bool = True,
    states: dict[str, str] | None = None,
) -> None:
    out = console()
    if not occurrences:
        out.print("No sessions in this range.")
        return
    columns = ["ID", "When", "Min"] + (["Plan"] if show_plan else []) + ["State"]
    table = _table(*columns)
    for occ in occurrences:
        start, end = parse_instant(occ.get("scheduledStart")), parse_instant(occ.get("scheduledEnd"))
        minutes = str(int((end - start).total_seconds() // 60)) if start and end else "-"
        state = (states or {}).get(occ["id"]) or occurrence_state(occ)
        row = [short.get(occ["id"], occ["id"]), local(occ.get("scheduledStart"), zone), minutes]
        if show_plan:
            row.append(Text(safe((plans.get(occ.get("planId", "")) or {}).get("title", "?"))))
        row.append(Text(state, style=STATE_STYLE.get(state, "")))
        table.add_row(*row)
    out.print(table)


def print_entries(entries: list[dict[str, Any]], short: dict[str, str], zone: ZoneInfo) -> None:
    out = console()
    if not entries:
        out.print("No logbook entries in this range.")
        return
    table = _table("ID", "When", "Min", "Type", "Instrument", "Pieces", "Notes")
    for entry in entries:
        table.add_row(
            short.get(entry["id"], entry["id"]),
            local(entry.get("timestamp"), zone),
            str(entry.get("duration", "-")),
            entry.get("type", "practice"),
            Text(safe(entry.get("instrument") or "-")),
            Text(safe("; ".join(_piece(p) for p in entry.get("pieces") or []) or "-")),
            Text(safe((entry.get("notes") or "")[:60])),
        )
    out.print(table)


def print_entry(entry: dict[str, Any], zone: ZoneInfo) -> None:
    out = console()
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    metadata = entry.get("metadata") or {}
    rows = [
        ("id", entry["id"]),
        ("when", local(entry.get("timestamp"), zone)),
        ("minutes", entry.get("duration")),
        ("type", entry.get("type")),
        ("instrument", entry.get("instrument") or "-"),
        ("pieces", "; ".join(_piece(p) for p in entry.get("pieces") or []) or "-"),
        ("techniques", ", ".join(entry.get("techniques") or []) or "-"),
        ("mood", entry.get("mood") or "-"),
        ("tags", ", ".join(entry.get("tags") or []) or "-"),
        ("source", metadata.get("source", "manual")),
    ]
    if metadata.get("planOccurrenceId"):
        rows.append(("plan", f"{metadata.get('planTitle') or metadata.get('planId')} ({metadata['planOccurrenceId']})"))
    for key, value in rows:
        table.add_row(key, Text(safe(value)))
    out.print(table)
    if entry.get("notes"):
        out.print(Text(safe(entry["notes"], single_line=False)))
    for response in metadata.get("reflectionResponses") or []:
        out.print(Text(safe(f"? {response.get('prompt')}: {response.get('response')}")))


def _rail(completed: int, due: int, remaining: int, missed: int) -> Text:
    text = Text()
    for chars, style in rail_parts(completed, due, remaining, missed):
        text.append(chars, style=style)
    return text


def print_today(view: dict[str, Any], plans: dict[str, dict[str, Any]], short: dict[str, str], zone: ZoneInfo) -> None:
    out = console()
    now = parse_instant(view["now"]) or datetime.now()
    out.print(Text(f"Today, {now.astimezone(zone).strftime('%A %d %B %Y %H:%M')} ({view['timezone']})", style="bold"))

    def section(title: str, items: list[dict[str, Any]], style: str, label: str) -> None:
        if not items:
            return
        out.print(Text(f"\n{title}", style=f"bold {style}"))
        table = _table("ID", "When", "Min", "Plan")
        for occ in items:
            start, end = parse_instant(occ.get("scheduledStart")), parse_instant(occ.get("scheduledEnd"))
            minutes = str(int((end - start).total_seconds() // 60)) if start and end else "-"
            table.add_row(
                short.get(occ["id"], occ["id"]),
                local(occ.get("scheduledStart"), zone, "%a %d %b %H:%M"),
                minutes,
                Text(safe((plans.get(occ.get("planId", "")) or {}).get("title", "?"))),
            )
        out.print(table)

    section("Overdue — still catchable", view["overdue"], "red", "overdue")
    section("Due today", view["dueToday"], "yellow", "due")
    section("Upcoming", view["upcoming"], "cyan", "upcoming")
    if not (view["overdue"] or view["dueToday"] or view["upcoming"]):
        out.print("\nNothing planned. Add a plan with: practiceplan plan add \"Scales\" --every daily --at 18:00")
    if view["plans"]:
        out.print(Text(f"\nThis week (from {view['weekStart']})", style="bold"))
        if view.get("summary"):
            out.print(summary_text(view["summary"]))
        grid = Table.grid(padding=(0, 2))
        for _ in range(3):
            grid.add_column()
        for rail in view["plans"]:
            grid.add_row(
                Text(safe(rail["plan"].get("title"))),
                _rail(rail["completed"], rail["due"], rail["remaining"], rail["missed"]),
                rail_counts(rail),
            )
        out.print(grid)
    nxt = view.get("next")
    if nxt:
        title = safe((plans.get(nxt.get("planId", "")) or {}).get("title", "?"))
        out.print(
            Text(f"\nNext: {title} — {local(nxt.get('scheduledStart'), zone, '%a %d %b %H:%M')}", style="bold")
        )
        out.print(f"Check in with: practiceplan checkin {short.get(nxt['id'], nxt['id'])}")
    if view.get("suggestion"):
        from practiceplan.render.schedule import suggestion_line

        out.print()
        out.print(suggestion_line(view["suggestion"]))
