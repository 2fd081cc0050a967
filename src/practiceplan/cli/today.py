"""The daily view: `today` and `next`."""

from __future__ import annotations

import typer

from practiceplan.cli import views
from practiceplan.cli._common import Json, example, handle_errors, session
from practiceplan.render.output import Output


def register(app: typer.Typer) -> None:
    app.command("today", epilog=example("practiceplan today", "practiceplan today --json | jq .next"))(today)
    app.command("next", epilog=example("practiceplan next", "practiceplan next --json"))(next_)


@handle_errors
def today(ctx: typer.Context, json_: Json = False) -> None:
    """Overdue, due today and upcoming sessions, weekly progress per plan, and what to do next."""
    views.today(session(ctx), Output(json_))


@handle_errors
def next_(ctx: typer.Context, json_: Json = False) -> None:
    """Only the next actionable session (overdue first, then due today, then upcoming)."""
    views.next_(session(ctx), Output(json_))
