"""`practiceplan plan ...`: add, list, show, edit, archive, unarchive, delete."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from practiceplan.cli._common import Json, NoPager, example, handle_errors, new_app, session, stdin_is_tty
from practiceplan.render.output import Output, message, paged, safe

if TYPE_CHECKING:
    from practiceplan.domain.plans import PlanInput
    from practiceplan.services.session import Session


app = new_app("Create and manage practice plans (recurring or one-off sessions).")


class Flex(str, Enum):
    fixed = "fixed"
    same_day = "same-day"
    anytime = "anytime"
    weekly = "weekly"


class Every(str, Enum):
    daily = "daily"
    weekly = "weekly"
    monthly = "monthly"
    yearly = "yearly"


Once = Annotated[Optional[str], typer.Option("--once", help="A single session at WHEN (e.g. 'tomorrow 18:00').", metavar="WHEN")]
Rrule = Annotated[Optional[str], typer.Option("--rrule", help="Any RFC 5545 RRULE, e.g. 'FREQ=MONTHLY;BYDAY=2TU'.", metavar="RULE")]
EveryOpt = Annotated[Optional[Every], typer.Option("--every", help="Friendly recurrence.")]
On = Annotated[Optional[str], typer.Option("--on", help="Weekdays for --every, e.g. mo,we,fr.", metavar="DAYS")]
Interval = Annotated[Optional[int], typer.Option("--interval", help="Every N days/weeks/months (with --every).", min=1, max=1000)]
Backfill = Annotated[bool, typer.Option(
    "--backfill", help="Count the sessions before the plan existed too (from --start; missed ones count as "
                       "missed), and allow a --once that is already past.")]
LastDay = Annotated[bool, typer.Option("--last-day", help="Monthly on the last day of each month (BYMONTHDAY=-1); "
                                                           "implies --every monthly.")]
Start = Annotated[Optional[str], typer.Option("--start", help="First day (default: today).", metavar="DATE")]
End = Annotated[Optional[str], typer.Option("--end", help="Last day, inclusive.", metavar="DATE")]
At = Annotated[Optional[str], typer.Option("--at", help="Time of day, HH:MM (local to --tz).", metavar="HH:MM")]
Minutes = Annotated[Optional[int], typer.Option("--minutes", help="Session length in minutes.", min=1, max=1440)]
Tz = Annotated[Optional[str], typer.Option("--tz", help="IANA time zone of the plan (default: yours).", metavar="ZONE")]
FlexOpt = Annotated[Optional[Flex], typer.Option("--flex", help="How late a session may be done: fixed, same-day, anytime (until the next), weekly.")]
Instrument = Annotated[Optional[str], typer.Option("--instrument", help="Instrument, e.g. piano.")]
Focus = Annotated[Optional[list[str]], typer.Option("--focus", help="Focus area (repeatable).")]
Technique = Annotated[Optional[list[str]], typer.Option("--technique", help="Technique (repeatable).")]
Piece = Annotated[Optional[list[str]], typer.Option("--piece", help="'Title — Composer' (repeatable).")]
Segment = Annotated[Optional[list[str]], typer.Option(
    "--segment", help="'Label:MIN[:instructions][:target=BPM]' (repeatable); target= sets the segment's tempo "
                      "target, e.g. --segment \"Etude:20:slowly:target=80\".")]
Prompt = Annotated[Optional[list[str]], typer.Option("--prompt", help="Reflection prompt asked at check-in (repeatable).")]
Target = Annotated[Optional[list[str]], typer.Option(
    "--target", help="key=value target, e.g. tempo=92 (repeatable); a key naming a --segment of the same command "
                     "sets that segment's tempo target, e.g. --segment Etude:20 --target Etude=80.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing.")]
Exdate = Annotated[Optional[list[str]], typer.Option("--exdate", help="A day with no session (repeatable).", metavar="DATE")]
Description = Annotated[Optional[str], typer.Option("--description", help="Free text about the plan.")]


def build_input(p: Session, *, title: str | None, description: str | None, once: str | None, rrule: str | None,
                every: Every | None, on: str | None, interval: int | None, start: str | None, end: str | None,
                at: str | None, minutes: int | None, tz: str | None, flex: Flex | None, instrument: str | None,
                focus: list[str] | None, technique: list[str] | None, piece: list[str] | None,
                segment: list[str] | None, prompt: list[str] | None, target: list[str] | None,
                exdate: list[str] | None, clear_end: bool = False, last_day: bool = False) -> PlanInput:
    """Options -> PlanInput; dates are read in the plan's zone (--tz) or the user's."""
    from practiceplan import dates
    from practiceplan.domain.models import parse_piece, parse_segment, parse_targets
    from practiceplan.domain.plans import PlanInput
    from practiceplan.settings import parse_zone

    zone = parse_zone(tz, "--tz") if tz else p.zone
    now = p.now
    segments = [parse_segment(x) for x in segment] if segment else None
    targets = parse_targets(target, segments) if target else None
    return PlanInput(
        title=title,
        description=description,
        once=dates.parse_datetime(once, zone, now, "--once") if once else None,
        rrule=rrule,
        every=every.value if every else None,
        on=[on] if on else None,
        interval=interval,
        start=dates.parse_date(start, zone, now, "--start") if start else None,
        end=dates.parse_date(end, zone, now, "--end") if end else None,
        clear_end=clear_end,
        at=dates.parse_time(at) if at else None,
        minutes=minutes,
        zone=tz,
        flex=flex.value if flex else None,
        instrument=instrument,
        focus=focus or None,
        techniques=technique or None,
        pieces=[parse_piece(x) for x in piece] if piece else None,
        segments=segments,
        prompts=prompt or None,
        targets=targets,
        exdates=[dates.parse_date(x, zone, now, "--exdate") for x in exdate] if exdate else None,
        last_day=last_day,
    )


def _today(p: Session) -> Any:
    return p.now.astimezone(p.zone).date()


def _report(p: Session, verb: str, plan: dict[str, Any], counts: dict[str, int], as_json: bool, *,
            dry_run: bool = False, before: dict[str, Any] | None = None, notes: list[str] | None = None) -> None:
    """The result of a change: the plan, what happened to its sessions (``counts``: added, moved, removed,
    updated), with ``before`` the details that changed; ``notes`` on the schedule go to stderr as ``note:``."""
    from practiceplan.render.plans import plan_changes, sessions_text

    short = p.store.short_id("practice_plan", plan["id"])
    notes = notes or []
    lines = [f"{verb} plan {short} \"{safe(plan.get('title'))}\" ({sessions_text(counts)})"]
    if before is not None:
        lines += [safe(f"  {label}: {old} → {new}") for label, old, new in plan_changes(before, plan, _today(p))]
    if dry_run:
        lines.append("Dry run: nothing was written.")
    document = {"plan": plan, "occurrencesChanged": sum(counts.values()), "sessions": counts, "notes": notes}
    Output(as_json).done({**document, "dryRun": True} if dry_run else document, *lines)
    if not as_json:
        for note in notes:
            message(f"note: {note}")


@app.command("add", epilog=example(
    'practiceplan plan add "Scales" --every weekly --on mo,we,fr --at 18:00 --minutes 30',
    'practiceplan plan add "Etudes" --rrule "FREQ=MONTHLY;BYDAY=2TU" --at 19:00 --tz Europe/Berlin',
    'practiceplan plan add "Lesson prep" --once "next friday 17:00" --segment "Warm-up:10" --segment "Sonata:35"',
    'practiceplan plan add "Etudes" --every daily --segment "Etude:20:slowly:target=80"',
))
@handle_errors
def add(
    ctx: typer.Context,
    title: Annotated[str, typer.Argument(metavar="TITLE", help="Plan title.")],
    once: Once = None, rrule: Rrule = None, every: EveryOpt = None, on: On = None, interval: Interval = None,
    last_day: LastDay = False, start: Start = None, end: End = None, at: At = None, minutes: Minutes = None,
    tz: Tz = None,
    flex: FlexOpt = None, instrument: Instrument = None, focus: Focus = None, technique: Technique = None,
    piece: Piece = None, segment: Segment = None, prompt: Prompt = None, target: Target = None,
    exdate: Exdate = None, description: Description = None, backfill: Backfill = False, json_: Json = False,
) -> None:
    """Add a plan and materialise its sessions over the planning horizon. Sessions whose time had passed before
    the plan existed are not counted as missed unless --backfill; a --once already past is refused (or, on a
    terminal, confirmed)."""
    from practiceplan.domain.plans import PastSessionError

    p = session(ctx)
    inp = build_input(p, title=title, description=description, once=once, rrule=rrule, every=every, on=on,
                      interval=interval, start=start, end=end, at=at, minutes=minutes, tz=tz, flex=flex,
                      instrument=instrument, focus=focus, technique=technique, piece=piece, segment=segment,
                      prompt=prompt, target=target, exdate=exdate, last_day=last_day)
    inp.backfill = backfill
    try:
        plan, count = p.plans.add(inp)
    except PastSessionError as past:
        if not stdin_is_tty() or json_ or not typer.confirm(f"{past.message}. Plan it anyway?", default=False):
            raise
        inp.backfill = True
        plan, count = p.plans.add(inp)
    _report(p, "Added", plan, {"added": count, "moved": 0, "removed": 0, "updated": 0}, json_,
            notes=p.plans.notes(plan))


@app.command("edit", epilog=example(
    "practiceplan plan edit 3f2a1c --at 19:00",
    "practiceplan plan edit 3f2a1c --every weekly --on tu,th --minutes 45",
    "practiceplan plan edit Scales --at 07:00 --dry-run",
    'practiceplan plan edit Etudes --segment "Etude:20" --target Etude=88',
))
@handle_errors
def edit(
    ctx: typer.Context,
    plan_id: Annotated[str, typer.Argument(metavar="ID", help="Plan id, unique id prefix or title prefix.")],
    title: Annotated[Optional[str], typer.Option("--title", help="New title.")] = None,
    once: Once = None, rrule: Rrule = None, every: EveryOpt = None, on: On = None, interval: Interval = None,
    last_day: LastDay = False, start: Start = None, end: End = None,
    no_end: Annotated[bool, typer.Option("--no-end", help="Remove the end date.")] = False,
    at: At = None, minutes: Minutes = None, tz: Tz = None,
    flex: FlexOpt = None, instrument: Instrument = None, focus: Focus = None, technique: Technique = None,
    piece: Piece = None, segment: Segment = None, prompt: Prompt = None, target: Target = None,
    exdate: Exdate = None, description: Description = None, dry_run: DryRun = False, json_: Json = False,
) -> None:
    """Change a plan. Future sessions you have not touched are regenerated; completed, skipped and
    rescheduled ones are never changed. --dry-run shows what would change and writes nothing."""
    p = session(ctx)
    inp = build_input(p, title=title, description=description, once=once, rrule=rrule, every=every, on=on,
                      interval=interval, start=start, end=end, at=at, minutes=minutes, tz=tz, flex=flex,
                      instrument=instrument, focus=focus, technique=technique, piece=piece, segment=segment,
                      prompt=prompt, target=target, exdate=exdate, clear_end=no_end, last_day=last_day)
    before = p.store.resolve("practice_plan", plan_id)
    plan, changes = p.plans.edit(before["id"], inp, dry_run=dry_run)
    _report(p, "Would update" if dry_run else "Updated", plan, changes.as_json(), json_, dry_run=dry_run,
            before=before, notes=p.plans.notes(plan) if inp.schedule_given() else None)


@app.command("list", epilog=example("practiceplan plan list", "practiceplan plan list --all --json",
                                    "practiceplan plan list --deleted"))
@handle_errors
def list_(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Include archived plans.")] = False,
    deleted: Annotated[bool, typer.Option("--deleted", help="Only deleted plans (bring one back with `plan restore`).")] = False,
    json_: Json = False,
    no_pager: NoPager = False,
) -> None:
    """List plans, with their schedules in words (and, for shared plans, the owner and members)."""
    from practiceplan.services.sharing import Sharing

    p = session(ctx)
    sharing = Sharing(p)
    plans = sharing.with_sharing(p.plans.listing(include_archived=all_, deleted=deleted))

    def human() -> None:
        from practiceplan.render.plans import print_plans

        print_plans(plans, p.store.short_ids("practice_plan", [x["id"] for x in plans]), _today(p), me=sharing.me())

    with paged(not (no_pager or json_)):
        Output(json_).show({"plans": plans}, human)


@app.command("show", epilog=example("practiceplan plan show 3f2a1c", "practiceplan plan show 3f2a1c --json"))
@handle_errors
def show(
    ctx: typer.Context,
    plan_id: Annotated[str, typer.Argument(metavar="ID", help="Plan id, unique id prefix or title prefix.")],
    json_: Json = False,
) -> None:
    """Show one plan with its next sessions."""
    p = session(ctx)
    plan, upcoming = p.plans.show(plan_id)

    def human() -> None:
        from practiceplan.render.plans import print_plan

        print_plan(plan, upcoming, p.store.short_ids("plan_occurrence", [o["id"] for o in upcoming]), p.zone, _today(p))

    Output(json_).show({"plan": plan, "upcoming": upcoming}, human)


def _status_command(name: str, status: str, doc: str, verb: str) -> None:
    @app.command(name, epilog=example(f"practiceplan plan {name} 3f2a1c"))
    @handle_errors
    def command(
        ctx: typer.Context,
        plan_id: Annotated[str, typer.Argument(metavar="ID", help="Plan id, unique id prefix or title prefix.")],
        json_: Json = False,
    ) -> None:
        p = session(ctx)
        plan, changes = p.plans.set_status(plan_id, status)
        _report(p, verb, plan, changes.as_json(), json_)

    command.__doc__ = doc


_status_command("archive", "archived", "Archive a plan: its untouched future sessions are removed, history stays.", "Archived")
_status_command("unarchive", "active", "Make an archived plan active again and regenerate its sessions.", "Reactivated")


@app.command("delete", epilog=example("practiceplan plan delete 3f2a1c", "practiceplan plan delete 3f2a1c --dry-run",
                                      "practiceplan plan delete 3f2a1c --yes   # scripts: no question",
                                      "practiceplan plan restore 3f2a1c        # changed your mind"))
@handle_errors
def delete(
    ctx: typer.Context,
    plan_id: Annotated[str, typer.Argument(metavar="ID", help="Plan id, unique id prefix or title prefix.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask (needed when stdin is not a terminal).")] = False,
    dry_run: DryRun = False,
    json_: Json = False,
) -> None:
    """Delete a plan and its sessions (soft delete: synced as a deletion; logbook entries stay; `plan restore`
    brings it back). Asks first on a terminal."""
    from practiceplan.domain.models import plural
    from practiceplan.errors import UsageError

    p = session(ctx)
    plan, gone = p.plans.delete(plan_id, dry_run=True)
    counts = {"added": 0, "moved": 0, "removed": len(gone), "updated": 0}
    what = f"plan {p.store.short_id('practice_plan', plan['id'])} \"{safe(plan.get('title'))}\" and its {plural(len(gone), 'session')}"
    if dry_run:
        _report(p, "Would delete", plan, counts, json_, dry_run=True)
        return
    if not yes:
        if not stdin_is_tty():
            raise UsageError("plan delete asks before deleting, and stdin is not a terminal",
                             hint="pass --yes to delete without asking, or --dry-run to see what would go")
        if not typer.confirm(f"Delete {what}?", default=False, err=True):
            typer.echo("Nothing deleted.", err=True)
            return
    plan, gone = p.plans.delete(plan["id"])
    _report(p, "Deleted", plan, counts, json_)
    if not json_:
        typer.echo(f"Undo with: practiceplan plan restore {p.store.short_id('practice_plan', plan['id'])}", err=True)


@app.command("restore", epilog=example("practiceplan plan restore 3f2a1c", "practiceplan plan list --deleted"))
@handle_errors
def restore(
    ctx: typer.Context,
    plan_id: Annotated[str, typer.Argument(metavar="ID", help="A deleted plan's id, id prefix or title prefix.")],
    json_: Json = False,
) -> None:
    """Bring back a deleted plan with the sessions deleted with it; untouched future sessions are regenerated."""
    p = session(ctx)
    plan, changes = p.plans.restore(plan_id)
    _report(p, "Restored", plan, changes.as_json(), json_)
