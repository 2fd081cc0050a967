"""Errors and exit codes.

This module is the only place the exit-code table lives. Every error a user can cause is a
:class:`PracticePlanError` subclass carrying its exit code and an optional hint; the CLI prints it as one
line on stderr (plus one hint line) and exits with the code. Anything else is a bug (exit 1).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1  # an unexpected error (a bug); also "nothing due" for `remind --check`
    USAGE = 2  # bad command line
    NOT_FOUND = 3  # no such id, or an ambiguous id prefix
    DATA = 65  # invalid data or input (EX_DATAERR)
    UNAVAILABLE = 69  # remote unavailable (EX_UNAVAILABLE)
    TEMPFAIL = 75  # busy or retry later (EX_TEMPFAIL)
    NOPERM = 77  # not authorised (EX_NOPERM)


class PracticePlanError(Exception):
    """Base of every error a user can cause. ``message`` is one line; ``hint`` an optional second."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = " ".join(message.split()) if "\n" in message else message
        self.hint = hint


class UsageError(PracticePlanError):
    exit_code = ExitCode.USAGE


class NotFoundError(PracticePlanError):
    exit_code = ExitCode.NOT_FOUND


class AmbiguousIdError(NotFoundError):
    def __init__(self, prefix: str, candidates: list[str], what: str = "ids") -> None:
        shown = ", ".join(candidates[:10]) + (" ..." if len(candidates) > 10 else "")
        if what == "ids":
            message, hint = f"id prefix '{prefix}' is ambiguous", "type more characters of the id"
        else:
            message, hint = f"'{prefix}' is ambiguous", "type more of the title, or the id"
        super().__init__(f"{message}: it matches {len(candidates)} {what} ({shown})", hint=hint)
        self.candidates = candidates


class InvalidInputError(PracticePlanError):
    exit_code = ExitCode.DATA


class RemoteUnavailableError(PracticePlanError):
    exit_code = ExitCode.UNAVAILABLE


class BusyError(PracticePlanError):
    exit_code = ExitCode.TEMPFAIL


class NotAuthorisedError(PracticePlanError):
    exit_code = ExitCode.NOPERM
