"""Rich views for scheduling: before/after tables of moves, the week-by-week calendar grid, suggestions,
an occurrence's history and reminders. Plain data in (see practiceplan.services.schedule); every state is a word
too, never colour alone.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from rich.text import Text

from practiceplan.domain.models import parse_instant, plural
from practiceplan.render.output import console, message, safe
from practiceplan.render.plain import local
from practiceplan.render.tables import STATE_STYLE, bare_table

STATE_MARK = {"done": "✓", "due": "•", "missed": "✗", "skipped": "–", "moved": "→", "before-plan": "∘"}
MOVED_AWAY = "↷"


def _delta(before: object, after: object) -> str:
    old, new = parse_instant(before), parse_instant(after)
    if old is None or new is None or old == new:
        return ""
    minutes = int((new - old).total_seconds() // 60)
    sign = "+" if minutes > 0 else "-"
    minutes = abs(minutes)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{mins} min" if mins else ""]
    return sign + " ".join(p for p in parts if p)


def print_moves(outcome: dict[str, Any], plans: dict[str, dict[str, Any]], short: dict[str, str], zone: ZoneInfo) -> None:
    """The before/after table of a skip, move or cascade (``outcome`` is Outcome.as_json())."""
    out = console()
    moves = outcome["moves"]
    if not moves:
        out.print("Nothing to change.")
        return
    table = bare_table()
    for column in ("ID", "Plan", "Before", "After", "Change"):
        table.add_column(column, overflow="fold")
    fmt = "%a %d %b %Y %H:%M"
    for move in moves:
        occ = move["occurrence"]
        before = f"{local(move['from'], zone, fmt)} {move['statusBefore']}"
        after = f"{local(move['to'], zone, fmt)} {move['statusAfter']}"
        change = _delta(move["from"], move["to"])
        if move["statusBefore"] != move["statusAfter"]:
            change = (change + " " if change else "") + f"{move['statusBefore']} → {move['statusAfter']}"
        table.add_row(
            short.get(move["id"], move["id"]),
            Text(safe((plans.get(occ.get("planId", "")) or {}).get("title", "?"))),
            before,
            Text(after, style=STATE_STYLE.get("moved" if move["from"] != move["to"] else move["statusAfter"], "")),
            change,
        )
    out.print(table)
    for warning in outcome.get("warnings") or []:
        message(f"warning: {warning}")
    sessions = plural(len(moves), "session")
    if outcome["dryRun"]:
        message(f"Dry run: {sessions} would change; nothing was written.")
    else:
        message(f"{outcome['action'].capitalize()}: {sessions} changed.")


GRID_MIN_WIDTH = 7 * 16  # narrower terminals get one line per day instead of seven columns


def _cell_items(cell: dict[str, Any], inline: bool) -> list[Text]:
    """One Text per session of a day (state mark, local time, title; where a moved one came from or went to)."""
    items = []
    for item in cell["sessions"]:
        state = item["state"]
        text = Text(f"{STATE_MARK.get(state, '?')} {item['localTime']} ", style=STATE_STYLE.get(state, ""))
        text.append(safe(item["title"]))
        if item["moved"] and item["originalLocal"]:
            text.append(f" (from {item['originalDay']})" if inline else f"\n  from {item['originalDay']}", style="dim")
        items.append(text)
    for away in cell["movedAway"]:
        text = Text(f"{MOVED_AWAY} {away['originalLocalTime']} ", style="dim")
        text.append(safe(away["title"]), style="dim")
        text.append(f" (to {away['toDay']})" if inline else f"\n  to {away['toDay']}", style="dim")
        items.append(text)
    return items


def _week_grid(week: dict[str, Any], today: str) -> Any:
    """Seven day columns; words wrap whole (a word too long for its column ends in "…", never splits)."""
    table = bare_table(expand=True)
    for cell in week["days"]:
        label = date.fromisoformat(cell["date"]).strftime("%a %d")
        table.add_column(f"[{label}]" if cell["date"] == today else label, overflow="ellipsis", ratio=1,
                         header_style="bold reverse" if cell["date"] == today else "bold")
    table.add_row(*(Text("\n").join(items) if (items := _cell_items(cell, False)) else Text("·", style="dim")
                    for cell in week["days"]))
    return table


def _week_agenda(week: dict[str, Any], today: str) -> Any:
    """One row per day, one line per session: fits 80 columns."""
    table = bare_table(show_header=False)
    table.add_column(no_wrap=True, min_width=len("[Mon 01]"))
    table.add_column(overflow="ellipsis")
    for cell in week["days"]:
        label = date.fromisoformat(cell["date"]).strftime("%a %d")
        items = _cell_items(cell, True)
        table.add_row(Text(f"[{label}]" if cell["date"] == today else label,
                           style="bold reverse" if cell["date"] == today else "bold"),
                      Text("\n").join(items) if items else Text("·", style="dim"))
    return table


def print_calendar(data: dict[str, Any]) -> None:
    """Weeks as rows of seven day columns (one day per line on a terminal narrower than GRID_MIN_WIDTH); one
    line per session: state mark, local time, plan title."""
    out = console()
    out.print(Text(f"Calendar {data['from']} to {data['to']} ({data['timezone']})", style="bold"))
    layout = _week_grid if out.width >= GRID_MIN_WIDTH else _week_agenda
    for week in data["weeks"]:
        out.print(Text(f"\nWeek of {date.fromisoformat(week['weekStart']):%d %b %Y}", style="bold"))
        out.print(layout(week, data["today"]))
    counts = data["counts"]
    legend = "  ".join(f"{STATE_MARK[k]} {k} ({v})" for k, v in counts.items() if v or k != "before-plan")
    out.print(Text(f"\n{legend}  {MOVED_AWAY} moved away (original slot)  [..] today", style="dim"), soft_wrap=False)


def print_suggestions(items: list[dict[str, Any]]) -> None:
    out = console()
    if not items:
        out.print("No suggestions: your plan fits your capacity and nothing needs catching up.")
        return
    for item in items:
        out.print(Text(f"{item['number']}. ", style="bold") + Text(safe(item["message"])))
        out.print(Text(f"   {item['command']}", style="cyan"))
    out.print(Text("Apply one with: practiceplan suggest --apply N (add --dry-run to preview)", style="dim"))


def suggestion_line(item: dict[str, Any]) -> Text:
    return Text("Suggestion: ", style="bold") + Text(safe(item["message"])) + Text(f"\n  {item['command']}",
                                                                                   style="cyan")


def print_history(occ: dict[str, Any], lines: list[dict[str, Any]], title: str, short: str, zone: ZoneInfo) -> None:
    out = console()
    out.print(Text(f"{safe(title)} — {local(occ.get('scheduledStart'), zone)} ({short}, {occ.get('status')})",
                   style="bold"))
    original = (occ.get("metrics") or {}).get("originalStart")
    if original and original != occ.get("scheduledStart"):
        out.print(Text(f"Originally planned for {local(original, zone)}", style="magenta"))
    if not lines:
        out.print("No recorded changes.")
        return
    for line in lines:
        out.print(Text(f"  {local(line.get('at'), zone, '%Y-%m-%d %H:%M')}  ") + Text(safe(line["text"])))


def print_reminders(result: dict[str, Any]) -> None:
    """One line per reminder (stdout: cron mails it), then the summary line; nothing when nothing is new."""
    out = console()
    prefix = "(dry run) " if result["dryRun"] else ""
    for item in result["reminders"]:
        out.print(Text(prefix + safe(item["message"])) + Text(f"  ·  {item['checkin']}", style="dim"))
    summary = result.get("summary")
    if summary:
        out.print(Text(prefix + safe(summary["message"]), style="bold"))
