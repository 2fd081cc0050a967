"""The progress review in words: per piece a clean-tempo sparkline under its target line, latest vs target,
trend, projection, fastest tempo tried and tension hotspots; the same per passage; the one-line tempo summary
`stats` shows.

One builder of (text, style) pieces serves the plain text (pipes, NO_COLOR: the words alone) and the Rich view
(terminal, --svg): both say the same. Never colour alone: the target is also a number and a percentage. Piece
and passage names came from the user or another device: control characters are made visible (``safe``).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from practiceplan.domain.progress import HORIZON_DAYS, MIN_POINTS, MIN_SPAN_DAYS, SPARK_POINTS
from practiceplan.render.output import safe

TICKS = "▁▂▃▄▅▆▇█"
Line = list[tuple[str, str]]  # (text, Rich style; "" for none)


def _day(iso: str) -> str:
    return date.fromisoformat(iso).strftime("%a %d %b %Y")


def _bpm(value: float | int | None) -> str:
    if value is None:
        return "—"
    return f"{value:g}"


def spark(values: list[float], target: float | None) -> list[tuple[str, bool]]:
    """(tick, reached target) per value. The scale runs from the lowest value (▁) to the target (█), or to the
    highest value when it is above the target; no target: lowest to highest."""
    if not values:
        return []
    low = min(values)
    top = max([*values, target]) if target else max(values)
    result = []
    for value in values:
        level = len(TICKS) - 1 if top <= low else round((min(value, top) - low) / (top - low) * (len(TICKS) - 1))
        result.append((TICKS[level], target is not None and value >= target))
    return result


def trend_words(row: dict[str, Any]) -> str:
    per_week = row["trendBpmPerWeek"]
    if per_week is None:
        return f"— (too few points: {MIN_POINTS} days over at least {MIN_SPAN_DAYS} are needed)"
    return f"{per_week:+.1f} BPM/week over {row['trendPoints']} days"


def projection_words(row: dict[str, Any]) -> str:
    projection = row["projection"]
    status = projection["status"]
    if status == "projected":
        days = projection["days"]
        when = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
        return f"target by {_day(projection['date'])} ({when}) at this rate"
    if status == "reached":
        return f"target reached (first on {_day(projection['date'])})"
    if status == "not-at-this-rate":
        if (row["trendBpmPerWeek"] or 0) > 0:
            return f"not at this rate (more than {HORIZON_DAYS} days away)"
        return "not at this rate (the trend is flat or falling)"
    if status == "no-target":
        return "no target tempo (set one with plan edit PLAN --segment \"NAME:MIN:target=BPM\")"
    return "too few points for a projection"


def _spark_cells(row: dict[str, Any]) -> Line:
    values = [p["bpm"] for p in row["points"]][-SPARK_POINTS:]
    return [(tick, "green" if reached else "cyan") for tick, reached in spark(values, row["target"])]


def _latest(row: dict[str, Any]) -> str:
    latest = row["latest"]
    if latest is None:
        return "no clean tempo yet"
    text = f"latest {_bpm(latest['bpm'])} BPM ({_day(latest['day'])})"
    if row["target"] is not None:
        text += f" = {row['percentOfTarget']}% of {_bpm(row['target'])}"
    return text


def piece_lines(row: dict[str, Any], hotspot_days: int) -> list[Line]:
    target = row["target"]
    head = f"{safe(row['piece'])} — target {_bpm(target)} BPM" if target is not None else f"{safe(row['piece'])} — no target"
    if row.get("targetFrom") == "plan":
        head += " (the plan's tempo target)"
    lines: list[Line] = [[(head, "bold")]]
    cells = _spark_cells(row)
    if cells:
        width = len(cells)
        if target is not None:
            lines.append([("  target  ", "dim"), ("┈" * width, "yellow"), (f"  {_bpm(target)} BPM", "dim")])
        lines.append([("  clean   ", "dim"), *cells, (f"  {_latest(row)}", "")])
    else:
        lines.append([("  clean   ", "dim"), (_latest(row) + " in this window" if row["latest"] else _latest(row), "")])
    lines.append([("  trend   ", "dim"), (trend_words(row), "")])
    lines.append([("  goal    ", "dim"), (projection_words(row), "")])
    if row.get("ceiling"):
        lines.append([("  fastest ", "dim"), (f"{_bpm(row['ceiling']['bpm'])} BPM tried ({_day(row['ceiling']['day'])})", "")])
    spots = row.get("hotspots") or []
    if spots:
        words = ", ".join(f"{safe(s['passage'])} ×{s['count']}" for s in spots[:5])
        lines.append([("  tension ", "dim"), (f"{words} (last {hotspot_days} days)", "magenta")])
    for passage in row.get("passages") or []:
        summary = [f"{safe(passage['passage'])}: {_bpm((passage['latest'] or {}).get('bpm'))} BPM"]
        if passage["percentOfTarget"] is not None:
            summary[0] += f" ({passage['percentOfTarget']}%)"
        summary += [trend_words(passage).split(" over ")[0], projection_words(passage)]
        lines.append([("  passage ", "dim"), *_spark_cells(passage), ("  " + " · ".join(summary), "")])
    return lines


def progress_parts(data: dict[str, Any]) -> list[Line]:
    pieces = data["pieces"]
    lines: list[Line] = [[(f"Progress — clean tempo since {_day(data['from'])}, tension spots in the last "
                           f"{data['hotspotDays']} days", "bold")]]
    if not pieces:
        lines.append([("No tempo or tension recorded yet: check in with "
                       "--tempo \"PIECE=BPM\", --ceiling \"PIECE=BPM\" or --tension \"PIECE:PASSAGE\".", "")])
        return lines
    for row in pieces:
        lines.append([])
        lines += piece_lines(row, data["hotspotDays"])
    lines += [[], [("█ = the target tempo (green: reached); the scale starts at the lowest clean tempo shown. "
                    "See docs/metrics.md.", "dim")]]
    return lines


def progress_lines(data: dict[str, Any]) -> list[str]:
    """The plain text of the review (pipes, NO_COLOR)."""
    return ["".join(text for text, _ in line).rstrip() for line in progress_parts(data)]


def print_progress(data: dict[str, Any], out: Any = None) -> None:
    """The Rich view (terminal, --svg)."""
    from rich.text import Text

    from practiceplan.render.output import console

    out = out or console()
    for line in progress_parts(data):
        text = Text()
        for part, style in line:
            text.append(part, style=style or None)
        out.print(text)


def summary_line(row: dict[str, Any]) -> str:
    """`stats`: one line per piece — latest against target, trend, projection."""
    latest = row["latest"]
    text = f"Tempo  {safe(row['piece'])}: {_bpm(latest['bpm'])}"
    text += f" of {_bpm(row['target'])} BPM ({row['percentOfTarget']}%)" if row["target"] is not None else " BPM"
    if row["trendBpmPerWeek"] is not None:
        text += f" · {row['trendBpmPerWeek']:+.1f} BPM/week"
    if row["target"] is not None:
        text += " · " + projection_words(row)
    return text
