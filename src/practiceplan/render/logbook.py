"""Rich views of the logbook: the list and one entry in detail."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from rich.table import Table
from rich.text import Text

from practiceplan.domain.models import plural
from practiceplan.render.output import console, safe
from practiceplan.render.plain import local
from practiceplan.render.tables import bare_table


def piece_text(piece: dict[str, Any]) -> str:
    title = piece.get("title") or piece.get("scoreId") or "?"
    return f"{title} — {piece['composer']}" if piece.get("composer") else str(title)


def print_entries(entries: list[dict[str, Any]], short: dict[str, str], zone: ZoneInfo, *, full: bool = False,
                  total: int | None = None) -> None:
    """The logbook as a table: notes and pieces on one line each (cut with "…") unless ``full``; then "N of M
    shown" when ``total`` says more entries exist."""
    out = console()
    if not entries:
        out.print("No logbook entries in this range.")
        return
    table = bare_table()
    for column in ("ID", "When", "Min", "Type", "Instrument", "Pieces", "Notes"):
        table.add_column(column, overflow="fold", max_width=None if full or column != "Pieces" else 24,
                         no_wrap=column in ("ID", "When", "Min", "Type", "Instrument"))

    def cell(text: str) -> Text:  # one line, cut with "…" to fit its column (whole, wrapped, with --full)
        return Text(text) if full else Text(text, no_wrap=True, overflow="ellipsis")

    for entry in entries:
        notes = (entry.get("notes") or "").strip()
        table.add_row(
            short.get(entry["id"], entry["id"]),
            local(entry.get("timestamp"), zone, "%Y-%m-%d %H:%M"),
            str(entry.get("duration", "-")),
            entry.get("type", "practice"),
            safe(entry.get("instrument") or "-"),
            cell(safe("; ".join(piece_text(p) for p in entry.get("pieces") or []) or "-")),
            cell(safe(notes, single_line=False) if full else safe(notes.splitlines()[0] if notes else "")),
        )
    out.print(table)
    if total is not None and total > len(entries):
        out.print(Text(f"{len(entries):,} of {plural(total, 'entry')} shown; --limit 0 shows all, --full whole notes",
                       style="dim"))


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
