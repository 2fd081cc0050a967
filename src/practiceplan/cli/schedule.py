"""Schedule verbs: skip, unskip, reschedule (cascades), defer, calendar, suggest, remind, cron.

Parse, call practiceplan.services.schedule, render. Everything heavier than typer is imported inside the commands so
that `--help` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from practiceplan.cli._common import Json, NoPager, PlanOpt, example, handle_errors, session
from practiceplan.errors import ExitCode, InvalidInputError
from practiceplan.render.output import Output, message, paged

if TYPE_CHECKING:
    from practiceplan.services.schedule import Outcome
    from practiceplan.services.session import Session


OccId = Annotated[str, typer.Argument(metavar="OCC", help="Occurrence id or unique prefix.")]
Reason = Annotated[Optional[str], typer.Option("--reason", help="Why (kept in the session's history).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show the before/after table and change nothing.")]


def register(app: typer.Typer) -> None:
    app.command("skip", epilog=example(
        "practiceplan skip 9c41d2 --reason travelling", "practiceplan skip 9c41d2 --dry-run",
    ))(skip)
    app.command("unskip", epilog=example("practiceplan unskip 9c41d2"))(unskip)
    app.command("reschedule", epilog=example(
        "practiceplan reschedule 9c41d2 --to 'tomorrow 18:00'",
        "practiceplan reschedule 9c41d2 --to friday --reason 'lesson moved'",
        "practiceplan reschedule 9c41d2 --to 2026-03-05T19:00 --cascade --dry-run",
        "practiceplan reschedule 9c41d2 --cascade spread --cap 45m",
    ))(reschedule)
    app.command("defer", epilog=example("practiceplan defer 9c41d2", "practiceplan defer 9c41d2 --dry-run --json"))(defer)
    app.command("calendar", epilog=example(
        "practiceplan calendar", "practiceplan calendar --plan 3f2a1c --weeks 6",
        "practiceplan calendar --from 2026-03-01 --json",
    ))(calendar)
    app.command("suggest", epilog=example(
        "practiceplan suggest", "practiceplan suggest --days 14 --json", "practiceplan suggest --apply 1 --dry-run",
    ))(suggest)
    app.command("remind", epilog=example(
        "practiceplan remind --within 30m",
        "practiceplan remind --notify-cmd 'notify-send Practice {message}'",
        "practiceplan remind --check && echo 'time to practise'",
        "practiceplan remind --json --dry-run",
    ))(remind)
    app.command("cron", epilog=example(
        "practiceplan cron",
        "(crontab -l; practiceplan cron --notify-cmd 'notify-send Practice {message}') | crontab -",
        "practiceplan cron --sync-every 30",
    ))(cron)


def _show_outcome(p: Session, outcome: Outcome, out: Output, document: dict[str, Any] | None = None,
                  pager: bool = False) -> None:
    data = outcome.as_json()

    def human() -> None:
        from practiceplan.render.schedule import print_moves

        short = p.store.short_ids("plan_occurrence", [m["id"] for m in data["moves"]])
        print_moves(data, p.plans.by_id(include_deleted=True), short, p.zone)

    with paged(pager and not out.json):
        out.show(document or data, human)


def _reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    from practiceplan.domain.models import clean_line

    return clean_line(reason, "--reason", max_len=500)


@handle_errors
def skip(ctx: typer.Context, occ: OccId, reason: Reason = None, dry_run: DryRun = False, json_: Json = False) -> None:
    """Skip a session: it is excused (not missed, does not break a streak). `unskip` reverts it."""

    p = session(ctx)
    _show_outcome(p, p.schedule.skip(occ, _reason(reason), dry_run), Output(json_))


@handle_errors
def unskip(ctx: typer.Context, occ: OccId, reason: Reason = None, dry_run: DryRun = False, json_: Json = False) -> None:
    """Revert a skip: the session is scheduled again."""

    p = session(ctx)
    _show_outcome(p, p.schedule.unskip(occ, _reason(reason), dry_run), Output(json_))


@handle_errors
def reschedule(
    ctx: typer.Context,
    occ: OccId,
    mode: Annotated[Optional[str], typer.Argument(
        metavar="[spread]", help="With --cascade: 'spread' spreads missed sessions instead of shifting.")] = None,
    to: Annotated[Optional[str], typer.Option("--to", help="New start: a date-time, or a day (keeps the time).",
                                              metavar="WHEN")] = None,
    cascade: Annotated[bool, typer.Option(
        "--cascade", help="Also shift every later untouched session of the plan by the same offset; "
                          "`--cascade spread` spreads the plan's sessions missed in the last 7 days instead.")] = False,
    cap: Annotated[Optional[str], typer.Option("--cap", help="Spread: daily capacity, e.g. 45m (default: config).",
                                               metavar="DURATION")] = None,
    days: Annotated[int, typer.Option("--days", help="Spread: how many days it may use.", min=1, max=90)] = 14,
    keep_duration: Annotated[bool, typer.Option(
        "--keep-duration", help="Keep this session's own length (default: the plan's current length).")] = False,
    reason: Reason = None,
    dry_run: DryRun = False,
    json_: Json = False,
    no_pager: NoPager = False,
) -> None:
    """Move a session to another time; it keeps its id, its original slot is remembered, the move is recorded.
    Prints a before/after table; a cascade is one transaction."""
    if mode is not None and not cascade:
        raise InvalidInputError(f"unexpected '{mode}'", hint="did you mean --cascade spread?")
    if mode not in (None, "spread", "shift"):
        raise InvalidInputError(f"--cascade takes 'spread' or nothing, not '{mode}'",
                                hint="--cascade shifts later sessions; --cascade spread spreads missed ones")
    kind = (mode or "shift") if cascade else None
    cap_minutes = None
    if cap is not None:
        if kind != "spread":
            raise InvalidInputError("--cap only goes with --cascade spread",
                                    hint="practiceplan reschedule OCC --cascade spread --cap 45m")
        from practiceplan.domain.durations import parse_minutes

        cap_minutes = parse_minutes(cap, "--cap", minimum=1, maximum=1440)
    p = session(ctx)
    outcome = p.schedule.reschedule(occ, to, cascade=kind, cap=cap_minutes, days=days, keep_duration=keep_duration,
                                       reason=_reason(reason), dry_run=dry_run)
    _show_outcome(p, outcome, Output(json_), pager=not no_pager)


@handle_errors
def defer(ctx: typer.Context, occ: OccId, reason: Reason = None, dry_run: DryRun = False, json_: Json = False) -> None:
    """Move a session to the plan's next free day (a day without another session of the plan), same time."""

    p = session(ctx)
    _show_outcome(p, p.schedule.defer(occ, _reason(reason), dry_run), Output(json_))


@handle_errors
def calendar(
    ctx: typer.Context,
    plan: PlanOpt = None,
    weeks: Annotated[int, typer.Option("--weeks", help="How many weeks.", min=1, max=26)] = 4,
    from_: Annotated[Optional[str], typer.Option("--from", help="A day in the first week (default: a week ago).",
                                                 metavar="DATE")] = None,
    json_: Json = False,
    no_pager: NoPager = False,
) -> None:
    """A week-by-week grid of sessions and their state: done, due, missed, skipped, moved (with the original
    slot), so the effect of a cascade is visible at a glance."""

    from practiceplan.cli.views import day, plan_id

    p = session(ctx)
    data = p.schedule.calendar(plan_id(p, plan), day(p, from_, "--from"), weeks)

    def human() -> None:
        from practiceplan.render.schedule import print_calendar

        print_calendar(data)

    with paged(not (no_pager or json_)):
        Output(json_).show(data, human)


@handle_errors
def suggest(
    ctx: typer.Context,
    days: Annotated[int, typer.Option("--days", help="How many days ahead to look at.", min=1, max=60)] = 7,
    apply: Annotated[Optional[int], typer.Option("--apply", help="Apply suggestion N.", min=1, metavar="N")] = None,
    dry_run: DryRun = False,
    json_: Json = False,
) -> None:
    """Concrete moves from your forecast, capacity and completion rates (over capacity, missed sessions to catch
    up, better times), each as a ready-to-run command. Deterministic for the same data."""

    p = session(ctx)
    out = Output(json_)
    if apply is not None:
        item, outcome = p.schedule.apply_suggestion(apply, days, dry_run)
        if not out.json:
            message(f"Suggestion {apply}: {item['message']}")
        _show_outcome(p, outcome, out, {"suggestion": item, **outcome.as_json()})
        return
    if dry_run:
        raise InvalidInputError("--dry-run goes with --apply N", hint="practiceplan suggest --apply 1 --dry-run")
    items = p.schedule.suggestions(days)

    def human() -> None:
        from practiceplan.render.schedule import print_suggestions

        print_suggestions(items)

    from practiceplan.domain.models import iso_z

    out.show({"now": iso_z(p.now), "days": days, "suggestions": items}, human)


def _duration(text: str | None, default: int, what: str) -> Any:
    from datetime import timedelta

    if text is None:
        return timedelta(minutes=default)
    from practiceplan.domain.durations import parse_minutes

    return timedelta(minutes=parse_minutes(text, what, minimum=0, maximum=10_080))


@handle_errors
def remind(
    ctx: typer.Context,
    within: Annotated[Optional[str], typer.Option(
        "--within", help="Remind this long before a session starts (default: config remind_within, 30m).",
        metavar="DURATION")] = None,
    grace: Annotated[Optional[str], typer.Option(
        "--grace", help="Reminders missed by longer (machine asleep) are summarised in one message "
                        "(default: config remind_grace, 2h).", metavar="DURATION")] = None,
    notify_cmd: Annotated[Optional[str], typer.Option(
        "--notify-cmd", help="Run this per reminder (no shell; {message} {title} {start} {id} are replaced inside "
                             "words; details in PRACTICEPLAN_* variables and JSON on stdin).", metavar="CMD")] = None,
    channel: Annotated[Optional[str], typer.Option(
        "--channel", help="Name of the channel each reminder is sent once on (default: one per --notify-cmd, "
                          "else 'stdout').", metavar="NAME")] = None,
    check: Annotated[bool, typer.Option(
        "--check", help="Send nothing; exit 0 when a session is due now, 1 when none is.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be sent; record nothing.")] = False,
    json_: Json = False,
) -> None:
    """Remind of sessions starting within the window or due and not done yet: each one exactly once per
    channel, however many reminder processes run at once. Meant for cron (see `practiceplan cron`)."""
    from practiceplan.services.schedule import channel_for, split_command

    p = session(ctx)
    out = Output(json_)
    config = p.settings.config
    window = _duration(within, config["remind_within"], "--within")
    grace_window = _duration(grace, config["remind_grace"], "--grace")
    if check:
        due = p.schedule.due(window)
        if out.json:
            from practiceplan.domain.models import iso_z

            out.show({"now": iso_z(p.now), "due": [r.as_json(p.zone, p.now) for r in due]}, lambda: None)
        return 0 if due else 1
    if notify_cmd is not None:
        split_command(notify_cmd)  # refuse a malformed command before recording anything
    name = channel_for(notify_cmd, channel)
    if notify_cmd and not dry_run:
        result, warnings = p.schedule.send_reminders(notify_cmd, within=window, grace=grace_window, channel=name)
        for warning in warnings:
            message(f"practiceplan: warning: {warning}")
        if out.json:
            out.show(result, lambda: None)
        return int(ExitCode.TEMPFAIL) if result["failed"] else 0
    result = p.schedule.remind(within=window, grace=grace_window, channel=name, dry_run=dry_run)

    def human() -> None:
        from practiceplan.render.schedule import print_reminders

        print_reminders(result)

    out.show(result, human)
    return 0


@handle_errors
def cron(
    ctx: typer.Context,
    every: Annotated[int, typer.Option("--every", help="Run every N minutes.", min=1, max=60)] = 5,
    notify_cmd: Annotated[Optional[str], typer.Option("--notify-cmd", help="Passed on to `remind`.",
                                                      metavar="CMD")] = None,
    within: Annotated[Optional[str], typer.Option("--within", help="Passed on to `remind`.", metavar="DURATION")] = None,
    sync_every: Annotated[Optional[int], typer.Option(
        "--sync-every", help="Also print a line that runs `sync` every N minutes.", min=1, max=60,
        metavar="N")] = None,
    json_: Json = False,
) -> None:
    """Print a crontab line that runs `remind` for this install (absolute path, the environment it needs)."""
    from practiceplan.services.schedule import cron_line, split_command

    p = session(ctx)
    if notify_cmd is not None:
        split_command(notify_cmd)
    minutes = None
    if within is not None:
        from practiceplan.domain.durations import parse_minutes

        minutes = parse_minutes(within, "--within", maximum=1440)
    data = cron_line(p.settings, every=every, notify_cmd=notify_cmd, within=minutes, sync_every=sync_every)
    lines = ["# practiceplan reminders (install with `crontab -e`, or pipe this into `crontab -`)", data["line"]]
    if "sync_line" in data:
        lines += ["# practiceplan sync (exit 75 means: try again later; nothing is lost)", data["sync_line"]]
    Output(json_).done(data, *lines)
