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


class RetryLaterError(BusyError):
    """The server asked us to come back later (HTTP 429, 5xx, a timeout): nothing is lost, run again (exit 75).
    ``retry_after`` is the server's ``Retry-After`` in seconds, when it sent one."""

    def __init__(self, message: str, hint: str | None = None, *, retry_after: float | None = None,
                 status: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after
        self.status = status


class RemoteRejectedError(InvalidInputError):
    """The server refused a request as invalid (HTTP 400/413/422) (exit 65). ``status`` and the parsed JSON
    ``body`` (or None) are kept for the caller (sync splits a rejected batch to find the bad item)."""

    def __init__(self, message: str, hint: str | None = None, *, status: int = 400,
                 body: object = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.body = body


class DiskFullError(BusyError):
    """The disk (or the user's quota) is full: nothing was changed; free some space and try again (exit 75)."""


class DiskIOError(BusyError):
    """A read or write failed at the disk (not a full disk): nothing was changed (exit 75)."""


class DamagedDatabaseError(InvalidInputError):
    """The database file is damaged (malformed, not a database): `doctor` says what to restore (exit 65)."""


class ReadOnlyDatabaseError(NotAuthorisedError):
    """The database can be read but not written (no permission, read-only mount) (exit 77)."""


# SQLite's primary result codes behind the failures above (``sqlite3.Error.sqlite_errorcode & 0xFF``); matched
# by number so that this module needs no sqlite3 import (only store/ touches SQLite).
_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_NOTADB = 8, 10, 11, 13, 26
_ENOSPC, _EDQUOT = 28, 122
LOW_SPACE_BYTES = 1 << 20  # an I/O error with less free space than this is a full disk


def _free_bytes(where: object) -> int | None:
    import os

    folder = os.path.dirname(os.path.abspath(str(where))) if where else None
    while folder:
        try:
            info = os.statvfs(folder)
            return info.f_bavail * info.f_frsize
        except OSError:
            parent = os.path.dirname(folder)
            folder = parent if parent != folder else None
    return None


def disk_full(where: object = None) -> DiskFullError:
    place = f" (writing {where})" if where else ""
    return DiskFullError(f"the disk is full{place}; nothing was changed",
                         hint="free some disk space, then run the command again")


def storage_error(exc: BaseException, where: object = None) -> PracticePlanError | None:
    """The known storage failure behind ``exc`` — a full disk, a disk I/O error, a damaged database, a read-only
    database — as the error to show, or None when ``exc`` is something else (a bug). ``where`` is the file
    involved (the database), used in messages and to tell a full disk from a failing one.

    This is the one mapping from SQLite and file-system failures to messages and exit codes; the CLI's error
    guard, the store's transactions, backups and restores all go through it.
    """
    if isinstance(exc, PracticePlanError):
        return exc
    if isinstance(exc, OSError) and exc.errno in (_ENOSPC, _EDQUOT):
        return disk_full(exc.filename or where)
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc).lower()
    if primary == _SQLITE_FULL or "database or disk is full" in text:
        return disk_full(where)
    if primary == _SQLITE_IOERR or "disk i/o error" in text:
        free = _free_bytes(where)
        if free is not None and free < LOW_SPACE_BYTES:
            return disk_full(where)
        return DiskIOError(f"a disk I/O error occurred{f' on {where}' if where else ''}; nothing was changed",
                           hint="try again; if it persists, check the disk and run `practiceplan doctor`")
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or "malformed" in text or "not a database" in text:
        return damaged(where, str(exc))
    if primary == _SQLITE_READONLY or "readonly database" in text:
        return read_only(where)
    return None


def _the_database(where: object) -> str:
    return f"the database {where}" if where else "the database"


def damaged(where: object, detail: str) -> DamagedDatabaseError:
    detail = " ".join(detail.split())
    detail = detail if len(detail) <= 160 else detail[:157] + "..."
    return DamagedDatabaseError(f"{_the_database(where)} is damaged ({detail}); nothing was changed",
                                hint="run `practiceplan doctor`: it names the newest verified backup to restore")


def read_only(where: object) -> ReadOnlyDatabaseError:
    return ReadOnlyDatabaseError(
        f"{_the_database(where)} is read-only here (no write permission on the file or its folder, or a "
        "read-only disk): reading works, changes cannot be saved",
        hint="ask the owner for write access, or work on a copy: practiceplan --db FILE backup -o COPY.db, "
             "then --db COPY.db",
    )
