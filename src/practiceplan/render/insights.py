"""Rich views of the analytics: adherence table, streaks, trend sparkline, planned vs actual, heatmap, forecast.

Never colour alone: every state is also a word or a number, and charts carry labels and legends.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from practiceplan.domain.analytics import sparkline
from practiceplan.render.output import console, safe

SHADES = " ░▒▓█"


def _pct(block: dict[str, Any]) -> Text:
    percent = block.get("percent")
    if percent is None:
        return Text("—", style="dim")
    style = "green" if percent >= 80 else "yellow" if percent >= 50 else "red"
    return Text(f"{percent}%", style=style)


def _counts(block: dict[str, Any]) -> str:
    return f"{block['completed']}/{block['completed'] + block['missed']}"


def _weekday(iso: str) -> str:
    return date.fromisoformat(iso).strftime("%a %d %b")


def print_stats(stats: dict[str, Any], out: Any = None) -> None:
    out = out or console()
    range_label = "all time"
    if stats.get("from") or stats.get("to"):
        range_label = f"{stats.get('from') or '…'} to {stats.get('to') or '…'}"
    out.print(Text(f"Adherence — completed ÷ (completed + missed); skipped and open sessions left out ({range_label})",
                   style="bold"))
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("Plan", min_width=12, max_width=22, overflow="ellipsis", no_wrap=True)
    for column in ("Week", "Month", "Range", "Done", "Skip", "Streak", "Best", "Miss7d", "Miss30d"):
        table.add_column(column, justify="right", no_wrap=True, min_width=max(len(column), 5))
    rows = [(p.get("title") or p["planId"], p) for p in stats["plans"]] + [("All plans", stats["overall"])]
    for index, (title, block) in enumerate(rows):
        table.add_row(
            Text(safe(title), style="bold" if index == len(rows) - 1 else ""),
            _pct(block["thisWeek"]), _pct(block["thisMonth"]), _pct(block), _counts(block), str(block["skipped"]),
            str(block["currentStreak"]), str(block["longestStreak"]),
            str(block["missedWindows"]["last7Days"]), str(block["missedWindows"]["last30Days"]),
            end_section=index == len(rows) - 2,
        )
    out.print(table)
    out.print(Text("Done = completed/(completed+missed) in the range; Streak/Best = sessions in a row; "
                   "Miss7d/30d = sessions missed in the last 7/30 days", style="dim"))
    streak = stats["practiceStreak"]
    out.print(Text(f"Practice-day streak: {streak['current']} day(s) (best {streak['longest']}) · "
                   f"missed sessions: {stats['missed']['last7Days']} in 7 days, "
                   f"{stats['missed']['last30Days']} in 30 days, {stats['missed']['total']} in total"))
    trend = stats["trend"]
    values = [t["adherence"] for t in trend]
    known = [t for t in trend if t["percent"] is not None]
    summary = f"  {known[0]['percent']}% → {known[-1]['percent']}%" if known else "  no finished sessions yet"
    out.print(Text(f"\nAdherence, last {len(trend)} weeks: ", style="bold")
              + Text(sparkline(values), style="cyan") + Text(summary + "  (· = nothing due that week)"))
    print_weeks(stats["weeks"], out)
    print_heatmap(stats["heatmap"], out)
    out.print()
    print_forecast(stats["forecast"], out)


def print_weeks(weeks: list[dict[str, Any]], out: Any) -> None:
    out.print(Text("\nPlanned vs actual minutes", style="bold"))
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("Week of", "Planned", "Logged for plans", "Unplanned", "Total", "Adherence"):
        table.add_column(column, justify="left" if column == "Week of" else "right")
    for week in weeks:
        table.add_row(_weekday(week["weekStart"]), str(week["plannedMinutes"]), str(week["loggedPlannedMinutes"]),
                      str(week["unplannedMinutes"]), str(week["totalMinutes"]), _pct(week))
    out.print(table)


def print_heatmap(cells: list[dict[str, Any]], out: Any) -> None:
    if not cells:
        return
    top = max(c["minutes"] for c in cells)
    out.print(Text(f"\nPractice minutes per day, last {len(cells) // 7} weeks", style="bold"))
    weeks = [cells[i : i + 7] for i in range(0, len(cells), 7)]
    for weekday in range(7):
        label = date.fromisoformat(weeks[0][weekday]["date"]).strftime("%a")
        line = Text(f"{label} ")
        for week in weeks:
            minutes = week[weekday]["minutes"]
            level = 0 if minutes == 0 or top == 0 else 1 + min(3, int(minutes / top * 4 - 1e-9))
            line.append(SHADES[level] * 2, style="green" if level else "dim")
        out.print(line)
    steps = [0] + [round(top * k / 4) for k in range(1, 5)]
    legend = "  ".join(f"{SHADES[i] * 2 if i else '··'} {'0' if i == 0 else f'≤{steps[i]}'}" for i in range(5))
    out.print(Text(f"    legend (minutes): {legend}   columns: weeks from {_weekday(weeks[0][0]['date'])}", style="dim"))


def print_forecast(forecast: dict[str, Any], out: Any = None) -> None:
    out = out or console()
    days = forecast["days"]
    out.print(Text(f"Forecast, next {len(days)} days — planned ", style="bold")
              + Text(sparkline([d["minutes"] for d in days]), style="cyan")
              + Text(f"  ({forecast['totalCount']} sessions, {forecast['totalMinutes']} min)"))
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("Day", "Sessions", "Minutes", "Capacity", "Load", "Expected done (80 % band)"):
        table.add_column(column, justify="left" if column in ("Day", "Load") else "right")
    for day in days:
        if day["overload"]:
            load = Text(f"OVER by {day['minutes'] - day['capacity']} min", style="bold red")
        elif day["minutes"]:
            load = Text("ok", style="green")
        else:
            load = Text("free", style="dim")
        expected = (f"{day['expected']:.1f} ({day['expectedLow']:.1f}–{day['expectedHigh']:.1f})"
                    if day["count"] else "—")
        table.add_row(_weekday(day["date"]), str(day["count"]), str(day["minutes"]), str(day["capacity"]), load,
                      expected)
    out.print(table)
    peak = forecast.get("peakDay")
    if peak:
        out.print(Text(f"Busiest day: {_weekday(peak['date'])} with {peak['minutes']} min in {peak['count']} session(s)"
                       f"; {forecast['overloadDays']} day(s) over capacity."))


