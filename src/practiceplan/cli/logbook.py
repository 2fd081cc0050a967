"""`practiceplan log ...`: the logbook of what was actually practised."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from practiceplan.cli._common import Json, NoPager, example, handle_errors, new_app, session
from practiceplan.domain.models import plural
from practiceplan.render.output import Output, paged, progress

if TYPE_CHECKING:
    from practiceplan.services.session import Session


app = new_app("Log free practice and browse the logbook.")


class EntryType(str, Enum):
    practice = "practice"
    performance = "performance"
    lesson = "lesson"
    rehearsal = "rehearsal"
    technique = "technique"


class Mood(str, Enum):
    frustrated = "frustrated"
    neutral = "neutral"
    satisfied = "satisfied"
    excited = "excited"


When = Annotated[Optional[str], typer.Option("--when", help="When the session started (default: now).", metavar="WHEN")]
InstrumentOpt = Annotated[Optional[str], typer.Option("--instrument", help="Instrument (default from config).")]
PieceOpt = Annotated[Optional[list[str]], typer.Option("--piece", help="'Title — Composer' (repeatable).")]
TechniqueOpt = Annotated[Optional[list[str]], typer.Option("--technique", help="Technique (repeatable).")]
MoodOpt = Annotated[Optional[Mood], typer.Option("--mood", help="How it went.")]
TypeOpt = Annotated[Optional[EntryType], typer.Option("--type", help="Kind of session.")]
Notes = Annotated[Optional[str], typer.Option("--notes", help="Free text.")]
Tag = Annotated[Optional[list[str]], typer.Option("--tag", help="Tag (repeatable).")]
EntryId = Annotated[str, typer.Argument(metavar="ID", help="Entry id or unique prefix.")]


def _fields(p: Session, *, minutes: int | None, when: str | None, instrument: str | None, piece: list[str] | None,
            technique: list[str] | None, mood: Mood | None, type_: EntryType | None, notes: str | None,
            tag: list[str] | None) -> dict[str, Any]:
    from practiceplan import dates
    from practiceplan.domain.models import clean_line, clean_text, iso_z, parse_piece

    fields: dict[str, Any] = {}
    if minutes is not None:
        fields["duration"] = minutes
    if when is not None:
        fields["timestamp"] = iso_z(dates.parse_datetime(when, p.zone, p.now, "--when"))
    if instrument is not None:
        fields["instrument"] = clean_line(instrument, "instrument", max_len=60).lower()
    if piece is not None:
        fields["pieces"] = [parse_piece(x) for x in piece]
    if technique is not None:
        fields["techniques"] = [clean_line(x, "technique") for x in technique]
    if mood is not None:
        fields["mood"] = mood.value
    if type_ is not None:
        fields["type"] = type_.value
    if notes is not None:
        fields["notes"] = clean_text(notes, "notes") or None
    if tag is not None:
        fields["tags"] = [clean_line(x, "tag", max_len=60) for x in tag]
    return fields


def _done(p: Session, verb: str, entry: dict[str, Any], as_json: bool) -> None:
    short = p.store.short_id("logbook_entry", entry["id"])
    Output(as_json).done({"entry": entry}, f"{verb} entry {short}: {entry.get('duration')} min {entry.get('type', 'practice')}")


@app.command("add", epilog=example(
    "practiceplan log add --minutes 25 --piece 'Clair de lune — Debussy' --mood satisfied",
    "practiceplan log add --minutes 40 --when 'yesterday 19:00' --type rehearsal --tag band",
))
@handle_errors
def add(
    ctx: typer.Context,
    minutes: Annotated[int, typer.Option("--minutes", help="How long you practised (1 to 1440).")],
    when: When = None, instrument: InstrumentOpt = None, piece: PieceOpt = None, technique: TechniqueOpt = None,
    mood: MoodOpt = None, type_: TypeOpt = None, notes: Notes = None, tag: Tag = None, json_: Json = False,
) -> None:
    """Log free practice (not linked to a plan)."""
    p = session(ctx)
    fields = _fields(p, minutes=minutes, when=when, instrument=instrument, piece=piece, technique=technique,
                     mood=mood, type_=type_, notes=notes, tag=tag)
    _done(p, "Logged", p.logbook.log_free(fields), json_)


@app.command("list", epilog=example("practiceplan log list --from 'last monday'", "practiceplan log list --limit 500 --json",
                                    "practiceplan log list --limit 0 --full --no-pager > logbook.txt"))
@handle_errors
def list_(
    ctx: typer.Context,
    from_: Annotated[Optional[str], typer.Option("--from", help="First day (inclusive).", metavar="DATE")] = None,
    to: Annotated[Optional[str], typer.Option("--to", help="Last day (inclusive).", metavar="DATE")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many entries (0 = all).", min=0)] = 50,
    full: Annotated[bool, typer.Option("--full", help="Whole notes and pieces (default: one line each).")] = False,
    json_: Json = False,
    no_pager: NoPager = False,
) -> None:
    """List logbook entries, newest first; says how many of how many are shown."""
    from practiceplan.cli.views import day

    p = session(ctx)
    first, last = day(p, from_, "--from"), day(p, to, "--to")
    entries = p.logbook.listing(first, last, limit or None)
    total = p.logbook.count(first, last) if limit and len(entries) == limit else len(entries)

    def human() -> None:
        from practiceplan.render.logbook import print_entries

        print_entries(entries, p.store.short_ids("logbook_entry", [e["id"] for e in entries]), p.zone, full=full,
                      total=total)

    with paged(not (no_pager or json_)):
        Output(json_).show({"entries": entries, "total": total}, human)


@app.command("show", epilog=example("practiceplan log show 8kq2m1"))
@handle_errors
def show(ctx: typer.Context, entry_id: EntryId, json_: Json = False) -> None:
    """Show one logbook entry."""
    p = session(ctx)
    entry = p.store.resolve("logbook_entry", entry_id)

    def human() -> None:
        from practiceplan.render.logbook import print_entry

        occ = (entry.get("metadata") or {}).get("planOccurrenceId")
        print_entry(entry, p.zone, p.store.short_id("plan_occurrence", occ) if isinstance(occ, str) else None)

    Output(json_).show({"entry": entry}, human)


@app.command("edit", epilog=example("practiceplan log edit 8kq2m1 --minutes 35 --notes 'slow practice'"))
@handle_errors
def edit(
    ctx: typer.Context, entry_id: EntryId,
    minutes: Annotated[Optional[int], typer.Option("--minutes", help="Minutes (1 to 1440).")] = None,
    when: When = None, instrument: InstrumentOpt = None, piece: PieceOpt = None, technique: TechniqueOpt = None,
    mood: MoodOpt = None, type_: TypeOpt = None, notes: Notes = None, tag: Tag = None, json_: Json = False,
) -> None:
    """Change a logbook entry (only the options you give)."""
    p = session(ctx)
    fields = _fields(p, minutes=minutes, when=when, instrument=instrument, piece=piece, technique=technique,
                     mood=mood, type_=type_, notes=notes, tag=tag)
    if not fields:
        from practiceplan.errors import UsageError

        raise UsageError("nothing to change", hint="give at least one option, e.g. --minutes 30")
    _done(p, "Updated", p.logbook.edit(entry_id, fields), json_)


@app.command("delete", epilog=example("practiceplan log delete 8kq2m1"))
@handle_errors
def delete(ctx: typer.Context, entry_id: EntryId, json_: Json = False) -> None:
    """Delete a logbook entry (soft delete, synced as a deletion)."""
    p = session(ctx)
    _done(p, "Deleted", p.logbook.delete(entry_id), json_)


@app.command("import", epilog=example("practiceplan log import history.jsonl", "practiceplan log import export.json"))
@handle_errors
def import_(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(metavar="FILE", help="JSON array or JSON lines of entries (wire format).")],
    json_: Json = False,
) -> None:
    """Import logbook entries in one transaction: any invalid item rejects the whole file."""
    p = session(ctx)
    with progress("importing") as update:
        new, replaced = p.logbook.import_file(path, None if json_ else update)
    Output(json_).done({"imported": new + replaced, "new": new, "replaced": replaced},
                       f"Imported {plural(new + replaced, 'entry')} ({new:,} new, {replaced:,} replaced)")
