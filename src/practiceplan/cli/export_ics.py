"""`practiceplan export ics`: the planned sessions as an RFC 5545 calendar.

``add_ics_command(export_app)`` adds the `ics` command to whichever `export` group exists (the data feature
may own one for `export json/csv`); :data:`export_app` is this module's own group, used when it does not.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from practiceplan.cli._common import PlanOpt, example, handle_errors, new_app, session
from practiceplan.domain.models import plural

export_app = new_app("Export your data in other formats.")


def add_ics_command(app: typer.Typer) -> None:
    app.command("ics", epilog=example(
        "practiceplan export ics -o practice.ics",
        "practiceplan export ics --plan 3f2a1c --days 90 -o - > practice.ics",
        "practiceplan export ics -o ~/calendars/practice.ics --force",
    ))(ics)


@handle_errors
def ics(
    ctx: typer.Context,
    output: Annotated[str, typer.Option("-o", "--output", help="File to write; '-' writes to stdout.",
                                        metavar="FILE")] = "-",
    plan: PlanOpt = None,
    days: Annotated[int, typer.Option("--days", help="How many days, from the first day.", min=1, max=3660)] = 60,
    from_: Annotated[Optional[str], typer.Option("--from", help="First day (default: today).", metavar="DATE")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
) -> None:
    """Write planned sessions as an iCalendar file (one event per session, stable UIDs, alarms from the
    reminder_minutes setting, skipped ones cancelled) that Google Calendar, Apple Calendar and Thunderbird
    import."""

    p = session(ctx)
    first = None
    if from_:
        from practiceplan import dates

        first = dates.parse_date(from_, p.zone, p.now, "--from")
    plan_id = p.store.resolve("practice_plan", plan)["id"] if plan else None
    text = p.schedule.ics(plan_id, first, days)
    from practiceplan.fileio import write_output
    from practiceplan.render.output import message

    target = write_output(output, text.encode("utf-8"), mode=0o600, replace=force,
                          hint="check that the folder exists and is writable")
    if target.kind != "fd":
        message(f"Wrote {plural(text.count('BEGIN:VEVENT'), 'session')} to {output}")
