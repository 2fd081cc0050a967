"""Rich views of the logbook: the list and one entry in detail."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from rich.table import Table
from rich.text import Text

from practiceplan.render.output import console, safe
from practiceplan.render.plain import local
from practiceplan.render.tables import new_table


def piece_text(piece: dict[str, Any]) -> str:
    title = piece.get("title") or piece.get("scoreId") or "?"
    return f"{title} — {piece['composer']}" if piece.get("composer") else str(title)


def print_entries(entries: list[dict[str, Any]], short: dict[str, str], zone: ZoneInfo) -> None:
    out = console()
    if not entries:
        out.print("No logbook entries in this range.")
        return
    table = new_table("ID", "When", "Min", "Type", "Instrument", "Pieces", "Notes")
    for entry in entries:
        table.add_row(
            short.get(entry["id"], entry["id"]),
            local(entry.get("timestamp"), zone),
            str(entry.get("duration", "-")),
            entry.get("type", "practice"),
            Text(safe(entry.get("instrument") or "-")),
            Text(safe("; ".join(piece_text(p) for p in entry.get("pieces") or []) or "-")),
            Text(safe((entry.get("notes") or "")[:60])),
        )
    out.print(table)


def print_entry(entry: dict[str, Any], zone: ZoneInfo, session_short: str | None = None) -> None:
    """One entry in detail; a check-in names its plan and its session (``session_short``: the session's short id)."""
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
        ("pieces", "; ".join(piece_text(p) for p in entry.get("pieces") or []) or "-"),
        ("techniques", ", ".join(entry.get("techniques") or []) or "-"),
        ("mood", entry.get("mood") or "-"),
        ("tags", ", ".join(entry.get("tags") or []) or "-"),
        ("source", metadata.get("source", "manual")),
    ]
    if metadata.get("planId") or metadata.get("planOccurrenceId"):
        rows.append(("plan", metadata.get("planTitle") or metadata.get("planId") or "-"))
    if metadata.get("planOccurrenceId"):
        planned = f", planned for {local(metadata['scheduledStart'], zone)}" if metadata.get("scheduledStart") else ""
        rows.append(("session", f"{session_short or metadata['planOccurrenceId']}{planned}"))
    for key, value in rows:
        table.add_row(key, Text(safe(value)))
    out.print(table)
    if entry.get("notes"):
        out.print(Text(safe(entry["notes"], single_line=False)))
    for response in metadata.get("reflectionResponses") or []:
        out.print(Text(safe(f"? {response.get('prompt')}: {response.get('response')}")))
