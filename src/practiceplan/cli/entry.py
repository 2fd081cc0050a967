"""Console-script entry point.

`today` and `next` are what cron jobs, status bars and shell prompts run, often every minute, and `stats` is
what dashboards poll, so their plain forms (`[--db PATH] today|next|stats [--json]`) skip Typer and Click
(~35 ms to import and build) and call the same code the Typer commands call (cli/today_view.py,
cli/stats_view.py). Everything else, including `--help` and any other option, goes to the Typer app.
"""

from __future__ import annotations

import os
import sys

FAST_COMMANDS = ("today", "next", "stats")


def fast_form(argv: list[str]) -> tuple[str, str | None, bool] | None:
    """(command, --db value, --json) when ``argv`` is exactly ``[--db PATH] today|next|stats [--json]``."""
    db = None
    rest = list(argv)
    if rest[:1] == ["--db"] and len(rest) >= 2:
        db, rest = rest[1], rest[2:]
    elif rest and rest[0].startswith("--db="):
        db, rest = rest[0][5:], rest[1:]
    if not rest or rest[0] not in FAST_COMMANDS or rest[1:] not in ([], ["--json"]) or db == "":
        return None
    return rest[0], db, rest[1:] == ["--json"]


def main() -> None:
    form = fast_form(sys.argv[1:])
    if form is None:
        from practiceplan.cli.app import main as typer_main

        typer_main()
        return
    sys.exit(run_fast(*form))


def run_fast(command: str, db: str | None, json_: bool) -> int:
    from practiceplan.cli._report import internal_error, report
    from practiceplan.cli.stats_view import show_stats
    from practiceplan.cli.today_view import show_next, show_today
    from practiceplan.errors import PracticePlanError
    from practiceplan.services.session import Session
    from practiceplan.settings import Settings

    planner = Session(Settings(db_flag=db))
    try:
        {"today": show_today, "next": show_next, "stats": show_stats}[command](planner, json_)
        sys.stdout.flush()
        return 0
    except PracticePlanError as error:
        report(error)
        return int(error.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("practiceplan: interrupted\n")
        return 130
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - the last line of defence, as in the Typer path
        return internal_error(exc)
    finally:
        planner.close()
