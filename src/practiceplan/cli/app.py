"""The root command: global options, command groups, and ``main()``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from practiceplan import __version__
from practiceplan.cli import config as config_cli
from practiceplan.cli import data as data_cli
from practiceplan.cli import insights as insights_cli
from practiceplan.cli import logbook as log_cli
from practiceplan.cli import occurrences as occurrences_cli
from practiceplan.cli import plans as plan_cli
from practiceplan.cli import progress as progress_cli
from practiceplan.cli import remote as remote_cli
from practiceplan.cli import schedule as schedule_cli
from practiceplan.cli import server as server_cli
from practiceplan.cli import sharing as sharing_cli  # also adds `plan share|unshare|members|join|transfer`
from practiceplan.cli import sync as sync_cli
from practiceplan.cli import templates as template_cli
from practiceplan.cli import today as today_cli
from practiceplan.cli import watch as watch_cli
from practiceplan.cli._common import Group, example, handle_errors, new_app, session
from practiceplan.cli.export_ics import add_ics_command
from practiceplan.cli.run import internal_error, usage_error

ROOT_HELP = ("practiceplan: plan recurring music practice, check in, keep a logbook, see how you are doing. "
             "Without a command it shows `today`.")
ROOT_EPILOG = example(
    "practiceplan",
    'practiceplan plan add "Scales" --every weekly --on mo,we,fr --at 18:00 --minutes 20',
    "practiceplan today",
    "practiceplan checkin <OCC> --minutes 25",
    "practiceplan log add --minutes 30 --piece 'Clair de lune — Debussy'",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"practiceplan {__version__}")
        raise typer.Exit()


def root(
    ctx: typer.Context,
    db: Annotated[
        Optional[Path],
        typer.Option("--db", help="Database file (default: PRACTICEPLAN_DB, or practiceplan.db in the data dir).",
                     metavar="PATH"),
    ] = None,
    create: Annotated[
        bool, typer.Option("--create", help="Create --db PATH and its folder if missing (else a missing folder "
                                            "is refused).")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", help="Show the version and exit.", callback=_version, is_eager=True)
    ] = False,
) -> None:
    """Plan practice, check in, keep a logbook. Exit codes: 0 ok, 1 bug, 2 usage, 3 not found,
    65 invalid input, 69 remote unavailable, 75 busy, 77 not authorised."""
    # the root options; cli/_common.session() opens the session from them
    ctx.obj = {"db": str(db) if db else None, "create": create}
    if ctx.invoked_subcommand is None:
        _default_view(ctx)


@handle_errors
def _default_view(ctx: typer.Context) -> None:
    """`practiceplan` alone shows `today` (as `task` and `khal` show their default view)."""
    from practiceplan.cli import views
    from practiceplan.render.output import Output

    views.today(session(ctx), Output())


class RootGroup(Group):
    """The root command. Its help lists the commands grouped by task, as `gh` does, each with a whole one-line
    description.

    Click's own usage errors (a missing argument, a bad option value, an unknown option or command) are reported
    like every other error, in the documented two lines (``practiceplan: error:`` and ``hint:``) with exit 2,
    instead of Click's usage block: ``main`` is the one place they are caught, for the console script and
    ``CliRunner`` alike.
    """

    SECTIONS = (
        ("Daily", (
            ("today", "What is overdue, due today and coming up; weekly progress"),
            ("next", "Only the next session to do"),
            ("checkin", "Check in to a planned session (writes a logbook entry)"),
            ("uncheck", "Undo a check-in within the undo window"),
            ("skip", "Excuse a session: not missed, keeps your streak"),
            ("unskip", "Revert a skip"),
            ("log", "Log free practice and browse the logbook"),
        )),
        ("Planning", (
            ("plan", "Create and manage practice plans"),
            ("occurrences", "Planned sessions in a date range, or one session's history"),
            ("calendar", "A week-by-week grid of sessions and their state"),
            ("reschedule", "Move a session; --cascade shifts or spreads the rest"),
            ("defer", "Move a session to the plan's next free day"),
            ("suggest", "Concrete moves: over capacity, catch-ups, better times"),
        )),
        ("Insight", (
            ("stats", "Adherence, streaks, missed sessions, trend and heatmap"),
            ("progress", "Clean tempo against target, its trend and tension spots"),
            ("forecast", "Planned minutes per day against your capacity"),
            ("events", "Local event log: template actions and adherence dips"),
        )),
        ("Templates", (
            ("template", "Share plans as signed files; import, adopt and upgrade them"),
        )),
        ("Data", (
            ("export", "Export everything as JSON, the logbook as CSV, sessions as ICS"),
            ("import", "Import a practiceplan or Mirubato JSON export"),
            ("backup", "Take an online backup of the database"),
            ("restore", "Replace the database by a verified backup"),
            ("doctor", "Check the database and fix what is safe"),
        )),
        ("Sync", (
            ("sync", "Pull, merge and push changes with your server"),
            ("remote", "Set, show or forget the sync server of this database"),
            ("login", "Store the token for the sync server, after checking it"),
            ("logout", "Remove the stored sync token"),
            ("auth", "Where the sync token is kept; whether the server accepts it"),
            ("watch", "Follow changes live as your server sends them"),
        )),
        ("Sharing", (
            ("comment", "Comment on a session or a shared plan"),
            ("comments", "Comments on a plan and its sessions"),
            ("students", "Who shares plans with you: adherence, streak, last practice"),
        )),
        ("Server", (
            ("serve", "Run the sync server for a studio or school"),
            ("server", "The sync server's users, roles and backups"),
        )),
        ("Setup", (
            ("config", "Where data and config live; read or change settings"),
            ("remind", "Remind of due sessions (for cron), once per channel"),
            ("cron", "Print a crontab line that runs remind"),
            ("completion", "Print a shell completion script"),
            ("demo", "Try practiceplan on demo data"),
        )),
    )

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        from typer._click.exceptions import ClickException, NoArgsIsHelpError
        from typer._click.exceptions import UsageError as ClickUsageError

        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except NoArgsIsHelpError as error:  # a bare group: its help, as before
            error.show()
            sys.exit(error.exit_code)
        except ClickUsageError as error:
            ctx = error.ctx
            path, usage = (ctx.command_path, ctx.get_usage()) if ctx is not None else ("", None)
            sys.exit(usage_error(error.format_message(), path, usage))
        except ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except typer.Abort:
            sys.stderr.write("practiceplan: aborted\n")
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


add_ics_command(data_cli.export_app)  # `export ics` joins the data feature's `export` group


def _register_own(app: typer.Typer) -> None:
    app.command("demo", epilog=example("practiceplan demo", "practiceplan demo --home /tmp/try-it"))(demo)
    app.command("completion", epilog=example(
        "practiceplan completion bash > ~/.local/share/bash-completion/completions/practiceplan",
        "practiceplan completion fish > ~/.config/fish/completions/practiceplan.fish",
    ))(completion)


# Each feature registers its commands on a root app. Command groups added by later features go here.
FEATURES: tuple[Callable[[typer.Typer], None], ...] = (
    lambda app: app.add_typer(plan_cli.app, name="plan"),
    lambda app: app.add_typer(log_cli.app, name="log"),
    lambda app: app.add_typer(config_cli.app, name="config"),
    today_cli.register,
    occurrences_cli.register,
    data_cli.register,
    lambda app: app.add_typer(template_cli.app, name="template"),
    insights_cli.register,
    progress_cli.register,
    schedule_cli.register,
    sync_cli.register,
    watch_cli.register,
    remote_cli.register,
    sharing_cli.register,
    server_cli.register,
    _register_own,
)


def _new_root() -> typer.Typer:
    root_app = new_app(ROOT_HELP, group=RootGroup, epilog=ROOT_EPILOG, no_args_is_help=False,
                       invoke_without_command=True)
    root_app.callback()(root)
    return root_app


def _names(feature: Callable[[typer.Typer], None]) -> set[str]:
    scratch = typer.Typer()
    feature(scratch)
    return {c.name or "" for c in scratch.registered_commands} | {g.name or "" for g in scratch.registered_groups}


def build_app(command: str | None = None) -> typer.Typer:
    """The root app with every command, or (``command``) only the feature that provides that command.

    Typer turns every registered function into a Click command on each run (inspecting signatures), which
    costs tens of milliseconds for the whole tree; `main()` builds only the branch the command line needs.
    """
    root_app = _new_root()
    chosen = [f for f in FEATURES if command is None or command in FEATURE_NAMES[f]]
    for feature in chosen or FEATURES:
        feature(root_app)
    return root_app


@handle_errors
def demo(
    keep: Annotated[Optional[Path], typer.Option("--home", help="Put the demo here instead of the demo folder.",
                                                 metavar="DIR")] = None,
) -> None:
    """Create demo data (two plans, a few weeks of check-ins and free practice), show `today`, and say how to use
    it. The demo lives in one folder (<data dir>/demo), replaced on each run; your own data is not touched."""
    import shlex

    from practiceplan.cli import views
    from practiceplan.render.output import Output
    from practiceplan.services.demo import create_demo

    folder, demo_session = create_demo(keep)
    try:
        views.today(demo_session, Output())
        nxt = demo_session.today.next()["next"]
        occ = demo_session.store.short_id("plan_occurrence", nxt["id"]) if nxt else None
    finally:
        demo_session.close()
    home = f"PRACTICEPLAN_HOME={shlex.quote(str(folder))}"
    typer.echo(f"\nThis is demo data in {folder} (replaced when you run `practiceplan demo` again).\n"
               "Your own data is elsewhere, so give the demo's folder to each command:\n"
               + (f"  {home} practiceplan checkin {occ}\n" if occ else "")
               + f"  {home} practiceplan stats\n"
               f"or use it for the rest of this shell session: export {home}")


@handle_errors
def completion(shell: Annotated[str, typer.Argument(help="bash, zsh or fish.")]) -> None:
    """Print a static completion script for your shell (the same as the files in completions/)."""
    from practiceplan.cli.completion import SHELLS, generate
    from practiceplan.errors import UsageError

    if shell not in SHELLS:
        raise UsageError(f"unknown shell '{shell}'", hint="use bash, zsh or fish")
    typer.echo(generate(app, shell, "practiceplan"), nl=False)


FEATURE_NAMES = {feature: _names(feature) for feature in FEATURES}
app = build_app()  # the whole command tree (tests, completions, docs)


def _command_word(argv: list[str]) -> str | None:
    """The first word that is not a root option (or the value of one)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--db":
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def main() -> None:
    """Console-script entry point: run the app; anything unexpected is one line, exit 1."""
    try:
        build_app(_command_word(sys.argv[1:]))(prog_name="practiceplan")
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - the last line of defence: no tracebacks for users
        if isinstance(exc, KeyboardInterrupt):
            sys.exit(130)
        sys.exit(internal_error(exc))
