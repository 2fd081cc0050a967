"""Error reporting shared by the Typer app and the fast entry path (no Typer import here)."""

from __future__ import annotations

import os
import sys
import traceback

from practiceplan.errors import ExitCode, PracticePlanError


def report(error: PracticePlanError) -> None:
    """One line on stderr, plus a hint line when there is one."""
    from practiceplan.render.output import safe

    sys.stderr.write(f"practiceplan: error: {safe(error.message)}\n")
    if error.hint:
        sys.stderr.write(f"hint: {safe(error.hint)}\n")


def internal_error(exc: BaseException) -> int:
    if os.environ.get("PRACTICEPLAN_DEBUG"):
        traceback.print_exception(exc)
    else:
        sys.stderr.write(
            f"practiceplan: internal error: {type(exc).__name__}: {str(exc)[:200]}\n"
            "hint: this is a bug; rerun with PRACTICEPLAN_DEBUG=1 for details and report it\n"
        )
    return int(ExitCode.INTERNAL)
