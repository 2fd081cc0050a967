"""The database file on disk: what a path is before SQLite opens it, and how a file we may not write is read.

Shared by the connection code (store/db.py) and backups and restores (store/backup.py), like store/locking.py.

* :func:`check_path` refuses, with a message naming the problem, a path that is a folder, a symlink loop, a
  symlink to nothing, something that is not a regular file, or a new file in a folder that does not exist
  (created only when asked: the default location, or ``--create``). SQLite itself would say only
  "unable to open database file".
* :func:`writable` tells whether we may write the file *and* create its ``-wal``/``-shm`` beside it.
* :func:`open_read_only` reads a database we may not write (another user's file, a read-only mount): through
  SQLite's ``mode=ro`` (which sees the owner's committed WAL), or — when there is no ``-shm`` and none can be
  made, and no ``-wal`` holds changes — as ``immutable`` (the main file is then the whole database). Such a
  connection also has ``query_only`` set, so a write fails at once with SQLITE_READONLY, which
  :func:`practiceplan.errors.storage_error` says as "the database is read-only".
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
from pathlib import Path

from practiceplan.errors import InvalidInputError, ReadOnlyDatabaseError

_NO_SHM_CODES = {"SQLITE_READONLY_DIRECTORY", "SQLITE_CANTOPEN", "SQLITE_READONLY_CANTINIT"}


def check_path(path: Path, *, create_folder: bool) -> bool:
    """Check what ``path`` is before opening it; returns True when it is a new file to create. Creates the
    missing folder only with ``create_folder``. Raises InvalidInputError (exit 65) naming the problem."""
    hint = "point --db (or PRACTICEPLAN_DB) at the database file"
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise InvalidInputError(f"the database path {path} is a symlink to {os.readlink(path)}, which does not "
                                    "exist", hint="fix the link, or " + hint) from None
        _ensure_folder(path.parent, create_folder)
        return True
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidInputError(f"the database path {path} is a symlink loop", hint="fix the link, or " + hint) from None
        raise InvalidInputError(f"cannot open the database {path}: {exc.strerror or exc}", hint=hint) from None
    if stat.S_ISDIR(info.st_mode):
        raise InvalidInputError(f"{path} is a folder, not a database file", hint="point --db at a file")
    if not stat.S_ISREG(info.st_mode):
        raise InvalidInputError(f"{path} is not a regular file, so it cannot be a database", hint=hint)
    return False


def _ensure_folder(folder: Path, create: bool) -> None:
    if folder.is_dir():
        return
    if not create:
        raise InvalidInputError(
            f"the folder {folder} does not exist, so there is no database there; nothing was created",
            hint="check the path; to start a new database there, add --create (practiceplan --create --db PATH ...)",
        )
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise InvalidInputError(f"cannot create the data folder {folder}: {exc.strerror}") from None


def writable(path: Path) -> bool:
    """May we write ``path`` and create its ``-wal``/``-shm`` (its folder)? False on a read-only mount too."""
    folder = path.parent
    return os.access(path, os.W_OK) and os.access(folder, os.W_OK | os.X_OK)


def open_read_only(path: Path, timeout: float) -> sqlite3.Connection:
    """A read-only connection to ``path`` (see the module docstring). Raises sqlite3 errors as SQLite does."""
    uri = path.resolve().as_uri()
    try:
        conn = _probe(sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=timeout, isolation_level=None))
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorname", "") not in _NO_SHM_CODES:
            raise
        wal = Path(f"{path}-wal")
        if wal.exists() and wal.stat().st_size > 0:  # the main file alone is not the whole database
            raise ReadOnlyDatabaseError(
                f"cannot read {path} here: its write-ahead log {wal.name} holds changes that SQLite can read only "
                "with a shared-memory file beside it, which cannot be created in a read-only folder",
                hint="run any practiceplan command on it once where it is writable (that folds the log into the "
                     "file), or copy the folder somewhere writable",
            ) from None
        conn = _probe(sqlite3.connect(f"{uri}?immutable=1", uri=True, timeout=timeout, isolation_level=None))
    conn.execute("PRAGMA query_only = ON")
    return conn


def _probe(conn: sqlite3.Connection) -> sqlite3.Connection:
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn
