"""`progress`: clean tempo per piece and passage against its target, the trend, when the target is reached at
that trend, and where tension keeps coming back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from practiceplan.cli import views
from practiceplan.cli._common import Json, NoPager, PlanOpt, example, handle_errors, session
from practiceplan.render.output import Output


def register(app: typer.Typer) -> None:
    app.command("progress", epilog=example(
        "practiceplan progress",
        "practiceplan progress --piece Etude --from 2026-01-01",
        "practiceplan progress --plan 3f2a1c --json",
        "practiceplan progress --svg progress.svg",
    ))(progress)


@handle_errors
def progress(
    ctx: typer.Context,
    piece: Annotated[Optional[str], typer.Option(
        "--piece", help="Only this piece: its name, the start of it, or a part of it (any case), e.g. "
                        "--piece etude.", metavar="PIECE")] = None,
    plan: PlanOpt = None,
    from_: Annotated[Optional[str], typer.Option(
        "--from", help="Start of the trend window (default: the last 56 days), e.g. --from 2026-01-01.",
        metavar="DATE")] = None,
    json_: Json = False,
    svg: Annotated[Optional[Path], typer.Option(
        "--svg", help="Also save the view as an SVG picture, e.g. --svg progress.svg ('-' for stdout).",
        metavar="FILE")] = None,
    no_pager: NoPager = False,
) -> None:
    """Clean tempo per piece and passage (from `checkin --tempo`) as a sparkline under its target line, the
    latest against the target in percent, the trend in BPM per week, the day the target is reached at that
    trend (or "not at this rate"), the fastest tempo tried, and the passages named most often as tension spots
    in the last 30 days. See docs/metrics.md."""
    views.progress(session(ctx), Output(json_), piece=piece, plan=plan, from_=from_, svg=svg, no_pager=no_pager)
