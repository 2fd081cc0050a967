"""Rich views of plans: the list and one plan in detail."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from rich.table import Table
from rich.text import Text

from practiceplan.domain.models import plan_flex, plan_prompts, plan_segments
from practiceplan.render.logbook import piece_text
from practiceplan.render.occurrences import print_occurrences
from practiceplan.render.output import console, safe
from practiceplan.render.tables import new_table


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


def segment_line(segment: dict[str, Any]) -> str:
    """"  • Warm-up — 10 min: slowly" (the instructions only when there are any)."""
    line = f"  • {segment.get('label')} — {segment.get('durationMinutes', '?')} min"
    if segment.get("instructions"):
        line += f": {segment['instructions']}"
    return line


def print_plans(plans: list[dict[str, Any]], short: dict[str, str]) -> None:
    out = console()
    if not plans:
        out.print("No plans yet. Add one with: practiceplan plan add \"Scales\" --every daily --at 18:00")
        return
    table = new_table("ID", "Title", "Status", "Schedule", "Min", "Flex")
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
        ("pieces", "; ".join(piece_text(p) for p in plan.get("pieceRefs") or []) or "-"),
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
            out.print(Text(safe(segment_line(segment))))
    prompts = plan_prompts(plan)
    if prompts:
        out.print(Text("Reflection prompts", style="bold"))
        for prompt in prompts:
            out.print(Text(safe(f"  ? {prompt}")))
    if upcoming:
        out.print(Text("Next sessions", style="bold"))
        print_occurrences(upcoming, {plan["id"]: plan}, short, zone, show_plan=False)
