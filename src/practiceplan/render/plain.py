"""Plain-text rendering (no Rich) for output that is not going to a terminal.

Rich output is for people at a terminal; scripts, pipes and cron read plain text. The `today` view (the one
cron jobs and status bars run most) is rendered here without importing Rich at all; the words and numbers are
the same as the Rich view's, only the styling is absent. The rail and summary text are shared with it.
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from practiceplan.domain.models import parse_instant, plural
from practiceplan.render.output import safe


def local(value: object, zone: ZoneInfo, fmt: str = "%a %d %b %Y %H:%M") -> str:
    instant = parse_instant(value)
    return instant.astimezone(zone).strftime(fmt) if instant else "-"


RAIL_GLYPHS = {"done": "█", "missed": "✗", "due": "▒", "left": "░"}


def rail_parts(completed: int, due: int, remaining: int, missed: int, width: int = 12) -> list[tuple[str, str]]:
    """(characters, style) pieces of a progress rail: done █, missed ✗, due ▒, left ░ (· when empty). Each state
    has its own glyph, so the rail reads the same without colour (NO_COLOR, pipes)."""
    total = completed + due + remaining + missed
    if total == 0:
        return [("·" * width, "dim")]
    parts = [(completed, RAIL_GLYPHS["done"], "green"), (missed, RAIL_GLYPHS["missed"], "red"),
             (due, RAIL_GLYPHS["due"], "yellow"), (remaining, RAIL_GLYPHS["left"], "cyan")]
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
            f"practice streak {plural(summary['practiceStreak'], 'day')}")


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


# --------------------------------------------------------------------------- stats and forecast (shared words)

SHADES = " ░▒▓█"
STATS_COLUMNS = ("Plan", "Week", "Month", "Range", "Done", "Skip", "Streak", "Best", "Miss7d", "Miss30d")
STATS_LEGEND = ("Done = completed/(completed+missed) in the range; Streak/Best = sessions in a row; "
                "Miss7d/30d = sessions missed in the last 7/30 days")
WEEK_COLUMNS = ("Week of", "Planned", "Logged for plans", "Unplanned", "Total", "Adherence")
FORECAST_COLUMNS = ("Day", "Sessions", "Minutes", "Capacity", "Load", "Expected done (80 % band)")


def pct(block: dict[str, Any]) -> str:
    return "—" if block.get("percent") is None else f"{block['percent']}%"


def weekday(iso: str) -> str:
    from datetime import date

    return date.fromisoformat(iso).strftime("%a %d %b")


def stats_heading(stats: dict[str, Any]) -> str:
    label = "all time"
    if stats.get("from") or stats.get("to"):
        label = f"{stats.get('from') or '…'} to {stats.get('to') or '…'}"
    return f"Adherence — completed ÷ (completed + missed); skipped and open sessions left out ({label})"


def stats_rows(stats: dict[str, Any]) -> list[tuple[str, dict[str, Any], list[str]]]:
    """(title, block, cells after the title) for each plan, then "All plans"."""
    rows = [(p.get("title") or p["planId"], p) for p in stats["plans"]] + [("All plans", stats["overall"])]
    return [
        (safe(title), block, [pct(block["thisWeek"]), pct(block["thisMonth"]), pct(block),
                              f"{block['completed']}/{block['completed'] + block['missed']}", str(block["skipped"]),
                              str(block["currentStreak"]), str(block["longestStreak"]),
                              str(block["missedWindows"]["last7Days"]), str(block["missedWindows"]["last30Days"])])
        for title, block in rows
    ]


def streak_line(stats: dict[str, Any]) -> str:
    streak, missed = stats["practiceStreak"], stats["missed"]
    return (f"Practice-day streak: {plural(streak['current'], 'day')} (best {streak['longest']}) · missed sessions: "
            f"{missed['last7Days']} in 7 days, {missed['last30Days']} in 30 days, {missed['total']} in total")


def tempo_lines(stats: dict[str, Any]) -> list[str]:
    """One line per piece with a clean tempo (render/progress.py words); none when nothing was recorded."""
    if not stats.get("tempo"):
        return []
    from practiceplan.render.progress import summary_line

    return [summary_line(row) for row in stats["tempo"]]


def trend_parts(stats: dict[str, Any]) -> tuple[str, str, str]:
    trend = stats["trend"]
    known = [t for t in trend if t["percent"] is not None]
    summary = f"  {known[0]['percent']}% → {known[-1]['percent']}%" if known else "  no finished sessions yet"
    return (f"Adherence, last {plural(len(trend), 'week')}: ", sparkline([t["adherence"] for t in trend]),
            summary + "  (· = nothing due that week)")


def week_cells(week: dict[str, Any]) -> list[str]:
    return [weekday(week["weekStart"]), str(week["plannedMinutes"]), str(week["loggedPlannedMinutes"]),
            str(week["unplannedMinutes"]), str(week["totalMinutes"]), pct(week)]


def heatmap_parts(cells: list[dict[str, Any]]) -> tuple[str, list[tuple[str, list[int]]], str]:
    """(title, [(weekday label, shade level per week)], legend)."""
    from datetime import date

    top = max(c["minutes"] for c in cells)
    weeks = [cells[i : i + 7] for i in range(0, len(cells), 7)]
    rows = []
    for day in range(7):
        levels = []
        for week in weeks:
            minutes = week[day]["minutes"]
            levels.append(0 if minutes == 0 or top == 0 else 1 + min(3, int(minutes / top * 4 - 1e-9)))
        rows.append((date.fromisoformat(weeks[0][day]["date"]).strftime("%a"), levels))
    steps = [0] + [round(top * k / 4) for k in range(1, 5)]
    legend = "  ".join(f"{SHADES[i] * 2 if i else '··'} {'0' if i == 0 else f'≤{steps[i]}'}" for i in range(5))
    return (f"Practice minutes per day, last {plural(len(weeks), 'week')}", rows,
            f"    legend (minutes): {legend}   columns: weeks from {weekday(weeks[0][0]['date'])}")


def forecast_heading(forecast: dict[str, Any]) -> tuple[str, str, str]:
    days = forecast["days"]
    return (f"Forecast, next {plural(len(days), 'day')} — planned ", sparkline([d["minutes"] for d in days]),
            f"  ({plural(forecast['totalCount'], 'session')}, {forecast['totalMinutes']} min)")


def forecast_cells(day: dict[str, Any]) -> tuple[list[str], str]:
    """Cells of one forecast row and the load kind (over / ok / free)."""
    if day["overload"]:
        load, kind = f"OVER by {day['minutes'] - day['capacity']} min", "over"
    elif day["minutes"]:
        load, kind = "ok", "ok"
    else:
        load, kind = "free", "free"
    expected = (f"{day['expected']:.1f} ({day['expectedLow']:.1f}–{day['expectedHigh']:.1f})" if day["count"] else "—")
    return [weekday(day["date"]), str(day["count"]), str(day["minutes"]), str(day["capacity"]), load, expected], kind


def peak_line(forecast: dict[str, Any]) -> str | None:
    peak = forecast.get("peakDay")
    if not peak:
        return None
    return (f"Busiest day: {weekday(peak['date'])} with {peak['minutes']} min in {plural(peak['count'], 'session')}"
            f"; {plural(forecast['overloadDays'], 'day')} over capacity.")


def forecast_lines(forecast: dict[str, Any]) -> list[str]:
    lines = ["".join(forecast_heading(forecast))]
    lines += table(list(FORECAST_COLUMNS), [forecast_cells(day)[0] for day in forecast["days"]])
    peak = peak_line(forecast)
    return lines + ([peak] if peak else [])


def stats_lines(stats: dict[str, Any]) -> list[str]:
    lines = [stats_heading(stats)]
    lines += table(list(STATS_COLUMNS), [[title, *cells] for title, _, cells in stats_rows(stats)])
    lines += [STATS_LEGEND, streak_line(stats), *tempo_lines(stats), "", "".join(trend_parts(stats)), "",
              "Planned vs actual minutes"]
    lines += table(list(WEEK_COLUMNS), [week_cells(week) for week in stats["weeks"]])
    if stats["heatmap"]:
        title, rows, legend = heatmap_parts(stats["heatmap"])
        lines += ["", title, *(f"{label} " + "".join(SHADES[level] * 2 for level in levels) for label, levels in rows),
                  legend]
    return [*lines, "", *forecast_lines(stats["forecast"])]


def print_lines(lines: list[str]) -> None:
    sys.stdout.write("\n".join(lines) + "\n")


def sparkline(values: Sequence[float | None]) -> str:
    """Unicode block sparkline; None is a gap (·)."""
    ticks = "▁▂▃▄▅▆▇█"
    present = [v for v in values if v is not None]
    top = max(present) if present else 0
    out = []
    for value in values:
        if value is None:
            out.append("·")
        elif top <= 0:
            out.append(ticks[0])
        else:
            out.append(ticks[min(len(ticks) - 1, int(value / top * (len(ticks) - 1) + 0.5))])
    return "".join(out)
