"""The Rich `today` screen: due sessions, weekly rails, the next session and the top suggestion.
Its plain-text twin is render/plain.py's ``print_today`` (same words, no Rich)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.table import Table
from rich.text import Text

from practiceplan.domain.models import parse_instant
from practiceplan.render.output import console, safe
from practiceplan.render.plain import local, rail_counts, rail_parts, summary_text
from practiceplan.render.schedule import suggestion_line
from practiceplan.render.tables import new_table


def rail_text(completed: int, due: int, remaining: int, missed: int) -> Text:
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
        table = new_table("ID", "When", "Min", "Plan")
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
                rail_text(rail["completed"], rail["due"], rail["remaining"], rail["missed"]),
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
        out.print()
        out.print(suggestion_line(view["suggestion"]))
