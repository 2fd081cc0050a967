"""The root command: global options, command groups, and ``main()``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from practiceplan import __version__
from practiceplan.cli import config as config_cli
from practiceplan.cli import daily
from practiceplan.cli import data as data_cli
from practiceplan.cli import insights as insights_cli
from practiceplan.cli import log as log_cli
from practiceplan.cli import plan as plan_cli
from practiceplan.cli import schedule as schedule_cli
from practiceplan.cli import template as template_cli
from practiceplan.cli._common import example, handle_errors, internal_error, new_app
from practiceplan.cli.export_ics import add_ics_command

app = new_app(
    "practiceplan: plan recurring music practice, check in, keep a logbook, see how you are doing.",
    epilog=example(
        'practiceplan plan add "Scales" --every weekly --on mo,we,fr --at 18:00 --minutes 20',
        "practiceplan today",
        "practiceplan checkin <OCC> --minutes 25",
        "practiceplan log add --minutes 30 --piece 'Clair de lune — Debussy'",
    ),
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"practiceplan {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    db: Annotated[
        Optional[Path],
        typer.Option("--db", help="Database file (default: PRACTICEPLAN_DB, or practiceplan.db in the data dir).",
                     metavar="PATH"),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", help="Show the version and exit.", callback=_version, is_eager=True)
    ] = False,
) -> None:
    """Plan practice, check in, keep a logbook. Exit codes: 0 ok, 1 bug, 2 usage, 3 not found,
    65 invalid input, 69 remote unavailable, 75 busy, 77 not authorised."""
    from practiceplan.settings import Settings

    ctx.obj = Settings(db_flag=str(db) if db else None)


app.add_typer(plan_cli.app, name="plan")
app.add_typer(log_cli.app, name="log")
app.add_typer(config_cli.app, name="config")
daily.register(app)
# Command groups added by later features register here, one line each.
data_cli.register(app)
app.add_typer(template_cli.app, name="template")
insights_cli.register(app)
schedule_cli.register(app)
add_ics_command(data_cli.export_app)  # `export ics` joins the data feature's `export` group


@app.command("demo", epilog=example("practiceplan demo"))
@handle_errors
def demo(
    keep: Annotated[Optional[Path], typer.Option("--home", help="Put the demo here instead of a temporary folder.",
                                                 metavar="DIR")] = None,
) -> None:
    """Create a demo database (two plans, a few weeks of check-ins and free practice) and show `today`."""
    from practiceplan.demo import run_demo

    run_demo(keep)


@app.command("completion", epilog=example(
    "practiceplan completion bash > ~/.local/share/bash-completion/completions/practiceplan",
    "practiceplan completion fish > ~/.config/fish/completions/practiceplan.fish",
))
@handle_errors
def completion(shell: Annotated[str, typer.Argument(help="bash, zsh or fish.")]) -> None:
    """Print a static completion script for your shell (the same as the files in completions/)."""
    from practiceplan.cli.completion import SHELLS, generate
    from practiceplan.errors import UsageError

    if shell not in SHELLS:
        raise UsageError(f"unknown shell '{shell}'", hint="use bash, zsh or fish")
    typer.echo(generate(app, shell, "practiceplan"), nl=False)


def main() -> None:
    """Console-script entry point: run the app; anything unexpected is one line, exit 1."""
    try:
        app(prog_name="practiceplan")
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - the last line of defence: no tracebacks for users
        if isinstance(exc, KeyboardInterrupt):
            sys.exit(130)
        sys.exit(internal_error(exc))
