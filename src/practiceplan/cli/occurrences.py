"""Planned sessions: list them (`occurrences`), check in, undo a check-in."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Optional

import typer

from practiceplan.cli import views
from practiceplan.cli._common import Json, NoPager, PlanOpt, example, handle_errors, session, stdin_is_tty
from practiceplan.errors import InvalidInputError
from practiceplan.render.output import Output

OccId = Annotated[str, typer.Argument(metavar="OCC", help="Occurrence id or unique prefix.")]
Status = Enum("Status", {name: name for name in views.STATUSES}, type=str)  # type: ignore[misc]


def register(app: typer.Typer) -> None:
    app.command("occurrences", epilog=example(
        "practiceplan occurrences --from today --to 'next sunday'",
        "practiceplan occurrences --from 2026-03-01 --status missed",
        "practiceplan occurrences --plan 3f2a1c --status done --json",
        "practiceplan occurrences --history 9c41d2",
    ))(occurrences)
    app.command("checkin", epilog=example(
        "practiceplan checkin 9c41d2 --minutes 35 --mood satisfied",
        "practiceplan checkin 9c41d2 --answer 'What went well?=the left hand' --metric tempo=88",
        'practiceplan checkin 9c41d2 --tempo "Etude=72" --ceiling "Etude=84" --tension "Etude:mm.12-16"',
        'practiceplan checkin 9c41d2 --tempo "Etude:mm.12-16=60" --tension "Etude:coda"',
    ))(checkin)
    app.command("uncheck", epilog=example("practiceplan uncheck 9c41d2 --reason 'wrong session'"))(uncheck)


@handle_errors
def occurrences(
    ctx: typer.Context,
    plan: PlanOpt = None,
    from_: Annotated[Optional[str], typer.Option("--from", help="First day (default: today).", metavar="DATE")] = None,
    to: Annotated[Optional[str], typer.Option("--to", help="Last day, inclusive (default: 14 days on).", metavar="DATE")] = None,
    status: Annotated[Optional[Status], typer.Option(
        "--status", help="Only sessions in this state (as `stats` judges it); completed, expired and scheduled "
                         "are the old names of done, missed and due/upcoming/moved.")] = None,
    history: Annotated[Optional[str], typer.Option(
        "--history", help="Show one session's history instead: skips, moves, check-ins, undos.", metavar="OCC")] = None,
    json_: Json = False,
    no_pager: NoPager = False,
) -> None:
    """List planned sessions in a date range with their state (done, due, upcoming, missed, skipped, moved,
    before-plan), or (--history OCC) what happened to one session."""
    views.occurrences(session(ctx), Output(json_), plan=plan, from_=from_, to=to,
                      status=status.value if status else None, history=history, no_pager=no_pager)


def _answers(raw: list[str] | None, prompts: list[str]) -> dict[str, str]:
    from practiceplan.domain.models import clean_text

    answers: dict[str, str] = {}
    for item in raw or []:
        prompt, sep, response = item.partition("=")
        if not sep:
            raise InvalidInputError(f"--answer '{item}' must look like 'prompt=response' or '1=response'",
                                    hint="number the prompts from 1, e.g. --answer '1=steady left hand'")
        prompt = prompt.strip()
        if prompt.isdigit() and 1 <= int(prompt) <= len(prompts):
            prompt = prompts[int(prompt) - 1]
        answers[prompt] = clean_text(response, "answer", max_len=5000)
    return answers


def _ask_progress(p: Any, occ: dict[str, Any], given: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """On a terminal: for each segment with a tempo target and no --tempo for it, ask the clean tempo, the fastest
    tempo tried and the tension spots (Enter skips each; a wrong tempo is asked again)."""
    asked: list[dict[str, Any]] = []
    for label, target in p.progress.to_ask(occ, given):
        for kind, question in (("clean", f"{label}: clean tempo reached (target {target:g} BPM; Enter to skip)"),
                               ("ceiling", f"{label}: fastest tempo tried (Enter to skip)")):
            while True:
                reply = typer.prompt(question, default="", show_default=False).strip()
                if not reply:
                    break
                try:
                    asked.append(p.progress.answer(kind, label, reply))
                    break
                except InvalidInputError as error:
                    typer.echo(f"practiceplan: {error.message}", err=True)
        spots = typer.prompt(f"{label}: tension spots, comma-separated (e.g. mm.12-16; Enter for none)",
                             default="", show_default=False)
        for spot in [spot for spot in spots.split(",") if spot.strip()][:20]:
            try:
                asked.append(p.progress.answer("tension", label, spot))
            except InvalidInputError as error:
                typer.echo(f"practiceplan: {error.message}; skipped", err=True)
    return p.progress.merge(given, asked)


@handle_errors
def checkin(
    ctx: typer.Context,
    occ: OccId,
    minutes: Annotated[Optional[int], typer.Option("--minutes", help="Minutes practised, 1 to 1440 (default: planned).")] = None,
    when: Annotated[Optional[str], typer.Option("--when", help="When you practised (default: now).", metavar="WHEN")] = None,
    notes: Annotated[Optional[str], typer.Option("--notes", help="Notes for the logbook entry.")] = None,
    mood: Annotated[Optional[str], typer.Option("--mood", help="frustrated, neutral, satisfied or excited.")] = None,
    piece: Annotated[Optional[list[str]], typer.Option("--piece", help="'Title — Composer' (default: the plan's).")] = None,
    metric: Annotated[Optional[list[str]], typer.Option("--metric", help="key=value, e.g. tempo=88 (repeatable).")] = None,
    answer: Annotated[Optional[list[str]], typer.Option("--answer", help="'prompt=response' or 'N=response' (repeatable).")] = None,
    tempo: Annotated[Optional[list[str]], typer.Option(
        "--tempo", help="Clean tempo reached, PIECE=BPM or PIECE:PASSAGE=BPM, e.g. --tempo \"Etude=72\" "
                        "(repeatable).", metavar="PIECE=BPM")] = None,
    ceiling: Annotated[Optional[list[str]], typer.Option(
        "--ceiling", help="Fastest tempo attempted, e.g. --ceiling \"Etude=84\" (repeatable).",
        metavar="PIECE=BPM")] = None,
    tension: Annotated[Optional[list[str]], typer.Option(
        "--tension", help="A spot where tension came back, PIECE:PASSAGE, e.g. --tension \"Etude:mm.12-16\" "
                          "(repeatable).", metavar="PIECE:PASSAGE")] = None,
    force: Annotated[bool, typer.Option("--force", help="Check in again although already completed.")] = False,
    json_: Json = False,
) -> None:
    """Check in to a planned session: writes a linked logbook entry and marks the session completed.
    On a terminal, the plan's reflection prompts are asked, and for segments with a tempo target the clean
    tempo, the fastest tempo tried and any tension spots (never when stdin is not a TTY). See `progress`."""
    from practiceplan import dates
    from practiceplan.domain.models import (
        MOODS,
        clean_text,
        parse_key_value,
        parse_piece,
    )

    p = session(ctx)
    if mood is not None and mood not in MOODS:
        raise InvalidInputError(f"--mood must be one of {', '.join(MOODS)}, not '{mood}'",
                                hint="e.g. --mood satisfied")
    target = p.store.resolve("plan_occurrence", occ)
    prompts = list(target.get("reflectionPrompts") or [])
    answers = _answers(answer, prompts)
    metrics = dict(parse_key_value(m, "--metric") for m in metric) if metric else None
    progress = p.progress.parse_flags(target, tempo or [], ceiling or [], tension or [])
    if stdin_is_tty() and not json_:
        for prompt in prompts:
            if prompt not in answers:
                reply = typer.prompt(prompt, default="", show_default=False)
                if reply.strip():
                    answers[prompt] = clean_text(reply, "answer", max_len=5000)
        progress = _ask_progress(p, target, progress)
    entry, updated = p.occurrences.checkin(
        target["id"],
        minutes=minutes,
        when=dates.parse_datetime(when, p.zone, p.now, "--when") if when else None,
        notes=clean_text(notes, "notes") if notes else None,
        mood=mood,
        pieces=[parse_piece(x) for x in piece] if piece else None,
        metrics=metrics,
        answers=answers,
        progress=progress or None,
        force=force,
    )
    short_entry = p.store.short_id("logbook_entry", entry["id"])
    short_occ = p.store.short_id("plan_occurrence", updated["id"])
    Output(json_).done(
        {"entry": entry, "occurrence": updated},
        f"Checked in: {entry['duration']} min logged as entry {short_entry}; "
        f"undo within {p.settings.config['undo_minutes']} min with `practiceplan uncheck {short_occ}`",
    )


@handle_errors
def uncheck(
    ctx: typer.Context,
    occ: OccId,
    reason: Annotated[Optional[str], typer.Option("--reason", help="Why (kept in the session's history).")] = None,
    json_: Json = False,
) -> None:
    """Undo a check-in within the undo window (default 15 minutes). The logbook entry stays, as free practice
    (no longer linked to the session), so checking in again counts once."""
    from practiceplan.domain.models import clean_line

    p = session(ctx)
    entry, updated = p.occurrences.uncheck(occ, clean_line(reason, "reason", max_len=500) if reason else None)
    kept = f" {p.store.short_id('logbook_entry', entry['id'])}" if entry else ""
    Output(json_).done({"occurrence": updated, "entry": entry},
                       f"Check-in undone: the session is scheduled again; its logbook entry{kept} was kept "
                       "as free practice.")
