"""`stats`, `forecast` and `events`: how practice is going, what is coming, what was recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from practiceplan.cli import views
from practiceplan.cli._common import Json, NoPager, PlanOpt, example, handle_errors, session
from practiceplan.render.output import Output

Svg = Annotated[Optional[Path], typer.Option("--svg", help="Also save the rendered view as an SVG picture.", metavar="FILE")]
def register(app: typer.Typer) -> None:
    app.command("stats", epilog=example(
        "practiceplan stats", "practiceplan stats --plan 3f2a1c --from 2026-01-01 --json",
        "practiceplan stats --svg stats.svg",
    ))(stats)
    app.command("forecast", epilog=example("practiceplan forecast --days 14", "practiceplan forecast --json"))(forecast)
    app.command("events", epilog=example("practiceplan events", "practiceplan events --json --limit 500"))(events)


@handle_errors
def stats(
    ctx: typer.Context,
    plan: PlanOpt = None,
    from_: Annotated[Optional[str], typer.Option("--from", help="Adherence range start (default: all time).", metavar="DATE")] = None,
    to: Annotated[Optional[str], typer.Option("--to", help="Adherence range end, inclusive.", metavar="DATE")] = None,
    json_: Json = False,
    svg: Svg = None,
    no_pager: NoPager = False,
) -> None:
    """Adherence per plan and overall (this week, this month, range), streaks, missed sessions, a 12-week
    trend, planned vs actual minutes, a practice heatmap and the 7-day forecast. See docs/metrics.md."""
    views.stats(session(ctx), Output(json_), plan=plan, from_=from_, to=to, svg=svg, no_pager=no_pager)


@handle_errors
def forecast(
    ctx: typer.Context,
    days: Annotated[int, typer.Option("--days", help="How many days, starting today.", min=1, max=366)] = 7,
    plan: PlanOpt = None,
    json_: Json = False,
    svg: Svg = None,
) -> None:
    """Planned sessions and minutes per day against your daily capacity, with overload marks and the number of
    sessions you are likely to complete (from your own history)."""
    views.forecast(session(ctx), Output(json_), days=days, plan=plan, svg=svg)


@handle_errors
def events(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first (0 = all).", min=0)] = 50,
    json_: Json = False,
) -> None:
    """Local event log: template actions and adherence dips (ids and numbers only; never leaves the machine)."""
    p = session(ctx)
    rows = p.insights.events(limit or None)

    def human() -> None:
        from practiceplan.render.plain import local

        if not rows:
            typer.echo("No events recorded yet.")
        for row in rows:  # the time in your zone; --json keeps the stored UTC instant
            when = local(row["at"], p.zone, "%Y-%m-%d %H:%M")
            typer.echo(f"{when}  {row['name']:<18} {json.dumps(row['data'], sort_keys=True)}")

    Output(json_).show({"events": rows}, human)
