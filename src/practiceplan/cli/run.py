"""What every command runs through, on the Typer path and the fast entry path alike (no Typer here):
the one session construction and the one error guard.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING

from practiceplan.errors import ExitCode, PracticePlanError

if TYPE_CHECKING:
    from practiceplan.services.session import Session


def open_session(db: str | None, *, create: bool = False) -> Session:
    """The session of one command: settings resolved from ``--db`` (else env, config, default) and ``--create``."""
    from practiceplan.services.session import Session
    from practiceplan.settings import Settings

    return Session(Settings(db_flag=db, create=create))


def say_notices(session: Session) -> None:
    """What the services asked to be said (a capped horizon jump...), as notes on stderr."""
    from practiceplan.render.output import safe

    for notice in session.notices:
        sys.stderr.write(f"practiceplan: note: {safe(notice)}\n")
    session.notices.clear()


def report(error: PracticePlanError) -> None:
    """One line on stderr, plus a hint line when there is one."""
    from practiceplan.render.output import safe

    sys.stderr.write(f"practiceplan: error: {safe(error.message)}\n")
    if error.hint:
        sys.stderr.write(f"hint: {safe(error.hint)}\n")


def usage_error(message: str, command_path: str, usage: str | None) -> int:
    """Report a usage error found by the command-line parser (``Missing argument 'OCC'.``) like every other
    error: one line, plus a hint with the command's usage. ``command_path`` is the parser's (``practiceplan
    plan add``; its first word, the program name, is always said as ``practiceplan``). Returns 2."""
    from practiceplan.errors import UsageError

    text = message.strip().rstrip(".")
    text = text[:1].lower() + text[1:]
    rest = command_path.partition(" ")[2]
    command = " ".join(["practiceplan", *rest.split()])
    usage = " ".join((usage or "").split())
    usage = usage.removeprefix(f"Usage: {command_path}").strip()
    hint = f"usage: {command} {usage}; see `{command} --help`" if usage else f"see `{command} --help`"
    error = UsageError(text, hint=hint)
    report(error)
    return int(error.exit_code)


def internal_error(exc: BaseException) -> int:
    if os.environ.get("PRACTICEPLAN_DEBUG"):
        traceback.print_exception(exc)
    else:
        sys.stderr.write(
            f"practiceplan: internal error: {type(exc).__name__}: {str(exc)[:200]}\n"
            "hint: this is a bug; rerun with PRACTICEPLAN_DEBUG=1 for details and report it\n"
        )
    return int(ExitCode.INTERNAL)


def guard(action: Callable[[], object], passthrough: tuple[type[BaseException], ...] = ()) -> int:
    """Run ``action`` and turn what it raises into an exit code: user errors are one line on stderr (plus a
    hint) with their documented code; an interrupt is 130; a closed pipe (``| head``) is not an error; anything
    else is a bug (exit 1, no traceback unless PRACTICEPLAN_DEBUG is set). An ``action`` that returns an int
    chooses its exit code (`remind --check`); ``passthrough`` exceptions (the CLI framework's own) propagate."""
    try:
        result = action()
        sys.stdout.flush()
        return result if isinstance(result, int) else 0
    except passthrough:
        raise
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
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no tracebacks for users
        from practiceplan.errors import storage_error

        known = storage_error(exc)  # a full disk, a damaged or read-only database: not a bug
        if known is None:
            return internal_error(exc)
        report(known)
        return int(known.exit_code)
