"""Rich views of the analytics: adherence table, streaks, trend sparkline, planned vs actual, heatmap, forecast.

Never colour alone: every state is also a word or a number, and charts carry labels and legends.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from practiceplan.render import plain
from practiceplan.render.output import console
from practiceplan.render.tables import bare_table


def _pct(block: dict[str, Any]) -> Text:
    percent = block.get("percent")
    style = "dim" if percent is None else "green" if percent >= 80 else "yellow" if percent >= 50 else "red"
    return Text(plain.pct(block), style=style)


def _table(columns: tuple[str, ...], left: tuple[str, ...]) -> Table:
    table = bare_table()
    for column in columns:
        table.add_column(column, justify="left" if column in left else "right")
    return table


def print_stats(stats: dict[str, Any], out: Any = None) -> None:
    out = out or console()
    out.print(Text(plain.stats_heading(stats), style="bold"))
    table = bare_table()
    table.add_column("Plan", min_width=12, max_width=22, overflow="ellipsis", no_wrap=True)
    for column in plain.STATS_COLUMNS[1:]:
        table.add_column(column, justify="right", no_wrap=True, min_width=max(len(column), 5))
    rows = plain.stats_rows(stats)
    for index, (title, block, cells) in enumerate(rows):
        pcts = [_pct(block["thisWeek"]), _pct(block["thisMonth"]), _pct(block)]
        table.add_row(Text(title, style="bold" if index == len(rows) - 1 else ""), *pcts, *cells[3:],
                      end_section=index == len(rows) - 2)
    out.print(table)
    out.print(Text(plain.STATS_LEGEND, style="dim"))
    out.print(Text(plain.streak_line(stats)))
    for line in plain.tempo_lines(stats):
        out.print(Text(line))
    label, spark, summary = plain.trend_parts(stats)
    out.print(Text("\n" + label, style="bold") + Text(spark, style="cyan") + Text(summary))
    out.print(Text("\nPlanned vs actual minutes", style="bold"))
    weeks = _table(plain.WEEK_COLUMNS, ("Week of",))
    for week in stats["weeks"]:
        cells = plain.week_cells(week)
        weeks.add_row(*cells[:-1], _pct(week))
    out.print(weeks)
    if stats["heatmap"]:
        title, heat_rows, legend = plain.heatmap_parts(stats["heatmap"])
        out.print(Text("\n" + title, style="bold"))
        for day_label, levels in heat_rows:
            line = Text(f"{day_label} ")
            for level in levels:
                line.append(plain.SHADES[level] * 2, style="green" if level else "dim")
            out.print(line)
        out.print(Text(legend, style="dim"))
    out.print()
    print_forecast(stats["forecast"], out)
    from practiceplan.render.sharing import member_stats_lines

    for line in member_stats_lines(stats):  # shared plans you own: each member's adherence
        out.print(Text(line, style="bold" if line.startswith("Members of") else ""))


def print_forecast(forecast: dict[str, Any], out: Any = None) -> None:
    out = out or console()
    label, spark, summary = plain.forecast_heading(forecast)
    out.print(Text(label, style="bold") + Text(spark, style="cyan") + Text(summary))
    table = _table(plain.FORECAST_COLUMNS, ("Day", "Load"))
    for day in forecast["days"]:
        cells, kind = plain.forecast_cells(day)
        load = Text(cells[4], style={"over": "bold red", "ok": "green", "free": "dim"}[kind])
        table.add_row(*cells[:4], load, cells[5])
    out.print(table)
    peak = plain.peak_line(forecast)
    if peak:
        out.print(Text(peak))
