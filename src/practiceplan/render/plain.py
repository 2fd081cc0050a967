"""Plain-text rendering (no Rich) for output that is not going to a terminal.

Rich output is for people at a terminal; scripts, pipes and cron read plain text. The `today` view (the one
cron jobs and status bars run most) is rendered here without importing Rich at all; the words and numbers are
the same as the Rich view's, only the styling is absent. The rail and summary text are shared with it.
"""

from __future__ import annotations

import sys
import unicodedata
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from practiceplan.domain.models import parse_instant
from practiceplan.render.output import safe


def local(value: object, zone: ZoneInfo, fmt: str = "%a %d %b %Y %H:%M") -> str:
    instant = parse_instant(value)
    return instant.astimezone(zone).strftime(fmt) if instant else "-"


def rail_parts(completed: int, due: int, remaining: int, missed: int, width: int = 12) -> list[tuple[str, str]]:
    """(characters, style) pieces of a progress rail: done █, missed █, due ▒, left ░ (· when empty)."""
    total = completed + due + remaining + missed
    if total == 0:
        return [("·" * width, "dim")]
    parts = [(completed, "█", "green"), (missed, "█", "red"), (due, "▒", "yellow"), (remaining, "░", "cyan")]
    pieces = []
    used = 0
    for index, (count, char, style) in enumerate(parts):
        cells = round(count / total * width) if index < len(parts) - 1 else width - used
        cells = max(0, min(cells, width - used))
        if count and cells == 0 and used < width:
            cells = 1
        pieces.append((char * cells, style))
        used += cells
    return pieces


def rail_counts(rail: dict[str, Any]) -> str:
    text = f"{rail['completed']} done · {rail['due']} due · {rail['remaining']} left"
    if rail["missed"]:
        text += f" · {rail['missed']} missed"
    if rail["skipped"]:
        text += f" · {rail['skipped']} skipped"
    return text


def summary_text(summary: dict[str, Any]) -> str:
    week = summary["thisWeek"]
    adherence = f"{week['percent']}%" if week["percent"] is not None else "—"
    return (f"This week: {adherence} adherence ({week['completed']} done, {week['missed']} missed) · "
            f"practice streak {summary['practiceStreak']} day(s)")


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(_width(str(x)) for x in column) for column in zip(headers, *rows)]

    def line(cells: list[str]) -> str:
        return "  ".join(c + " " * (w - _width(c)) for c, w in zip(cells, widths)).rstrip()

    return [line(headers), "  ".join("─" * w for w in widths), *(line([str(c) for c in row]) for row in rows)]


def today_lines(view: dict[str, Any], plans: dict[str, dict[str, Any]], short: dict[str, str],
                zone: ZoneInfo) -> list[str]:
    now = parse_instant(view["now"]) or datetime.now()
    lines = [f"Today, {now.astimezone(zone).strftime('%A %d %B %Y %H:%M')} ({view['timezone']})"]
    for title, items in (("Overdue — still catchable", view["overdue"]), ("Due today", view["dueToday"]),
                         ("Upcoming", view["upcoming"])):
        if not items:
            continue
        rows = []
        for occ in items:
            start, end = parse_instant(occ.get("scheduledStart")), parse_instant(occ.get("scheduledEnd"))
            minutes = str(int((end - start).total_seconds() // 60)) if start and end else "-"
            rows.append([short.get(occ["id"], occ["id"]), local(occ.get("scheduledStart"), zone, "%a %d %b %H:%M"),
                         minutes, safe((plans.get(occ.get("planId", "")) or {}).get("title", "?"))])
        lines += ["", title, *table(["ID", "When", "Min", "Plan"], rows)]
    if not (view["overdue"] or view["dueToday"] or view["upcoming"]):
        lines += ["", 'Nothing planned. Add a plan with: practiceplan plan add "Scales" --every daily --at 18:00']
    if view["plans"]:
        lines += ["", f"This week (from {view['weekStart']})"]
        if view.get("summary"):
            lines.append(summary_text(view["summary"]))
        titles = [safe(rail["plan"].get("title")) for rail in view["plans"]]
        pad = max(_width(t) for t in titles)
        for title, rail in zip(titles, view["plans"]):
            bar = "".join(chars for chars, _ in rail_parts(rail["completed"], rail["due"], rail["remaining"],
                                                           rail["missed"]))
            lines.append(f"{title}{' ' * (pad - _width(title))}  {bar}  {rail_counts(rail)}")
    nxt = view.get("next")
    if nxt:
        title = safe((plans.get(nxt.get("planId", "")) or {}).get("title", "?"))
        lines += ["", f"Next: {title} — {local(nxt.get('scheduledStart'), zone, '%a %d %b %H:%M')}",
                  f"Check in with: practiceplan checkin {short.get(nxt['id'], nxt['id'])}"]
    if view.get("suggestion"):
        item = view["suggestion"]
        lines += ["", f"Suggestion: {safe(item['message'])}", f"  {item['command']}"]
    return lines


def print_today(view: dict[str, Any], plans: dict[str, dict[str, Any]], short: dict[str, str], zone: ZoneInfo) -> None:
    sys.stdout.write("\n".join(today_lines(view, plans, short, zone)) + "\n")
