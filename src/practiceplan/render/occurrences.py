"""Rich view of planned sessions."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from rich.text import Text

from practiceplan.domain.models import parse_instant
from practiceplan.render.output import console, safe
from practiceplan.render.plain import local
from practiceplan.render.tables import STATE_STYLE, new_table


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
    table = new_table(*columns)
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
