"""Opening the SQLite file and running transactions.

Rules (ARCHITECTURE.md "Storage rules"): WAL, ``synchronous=FULL``, ``foreign_keys=ON``,
``busy_timeout=5000`` on every connection; every write inside one ``BEGIN IMMEDIATE`` transaction
(deferred transactions that upgrade to writes fail at once under contention); a database written by a
newer version is refused without writing anything. Only the plain ``sqlite3`` module is used here:
sqlite_utils (~85 ms to import) is loaded only when a migration has to run.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from practiceplan.errors import (
    DamagedDatabaseError,
    InvalidInputError,
    PracticePlanError,
    ReadOnlyDatabaseError,
    damaged,
    storage_error,
)
from practiceplan.store import files, locking
from practiceplan.store.locking import busy_error, is_locked
from practiceplan.store.schema import SCHEMA_VERSION


class _Connection(sqlite3.Connection):
    """A connection :func:`connect` opened: it remembers that its file passed ``PRAGMA quick_check`` (checked
    before its first write, see :func:`transaction`)."""

    checked = False


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout = {locking.BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = FULL")


def connect(path: Path | str, *, migrate: bool = True, create_folder: bool = True) -> sqlite3.Connection:
    """Open (creating if needed) and bring to the current schema. Raises BusyError / InvalidInputError (a bad
    path, a damaged file: see store/files.py and errors.storage_error) / DiskFullError.

    A new file is created only in an existing folder, or with ``create_folder`` (the default location, or
    ``--create``). A file we may not write is opened read-only (store/files.py): reads work, writes fail with
    "the database is read-only" (exit 77).
    """
    path = Path(path)
    new_file = files.check_path(path, create_folder=create_folder)
    timeout = locking.BUSY_TIMEOUT_MS / 1000
    read_only = not new_file and not files.writable(path)
    try:
        if read_only:
            conn = files.open_read_only(path, timeout)
        else:
            conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, factory=_Connection)
    except sqlite3.Error as exc:
        raise _open_error(exc, path) from None
    try:
        if new_file:
            os.chmod(path, 0o600)
        _configure(conn)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise InvalidInputError(
                f"the database {path} was written by a newer practiceplan (schema {version}; "
                f"this version knows {SCHEMA_VERSION}); nothing was changed",
                hint="upgrade practiceplan (pip install -U practiceplan)",
            )
        if read_only:
            _check_readable_schema(path, version)
            return conn
        _ensure_wal(conn)
        if version < SCHEMA_VERSION and migrate:
            _migrate(conn, path)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise _open_error(exc, path) from None
    except BaseException:
        conn.close()
        raise
    return conn


def is_read_only(conn: sqlite3.Connection) -> bool:
    """Opened read-only by :func:`connect` (store/files.py sets ``query_only`` on such connections)."""
    return bool(conn.execute("PRAGMA query_only").fetchone()[0])


def _open_error(exc: sqlite3.Error, path: Path) -> PracticePlanError:
    """What opening ``path`` failed with, said as the user's problem (busy, full disk, damaged, unreadable)."""
    if isinstance(exc, sqlite3.OperationalError) and is_locked(exc):
        return busy_error(path)
    known = storage_error(exc, path)
    if isinstance(known, DamagedDatabaseError):
        return DamagedDatabaseError(
            f"{path} is not a usable practiceplan database: {exc}",
            hint="the file is damaged or is not a practiceplan database: check the path, or run "
                 "`practiceplan doctor` (it names the newest verified backup to restore)",
        )
    return known or InvalidInputError(f"{path} is not a usable practiceplan database: {exc}",
                                      hint="check the path, or run `practiceplan doctor`")


def _check_readable_schema(path: Path, version: int) -> None:
    if 0 < version < SCHEMA_VERSION:
        raise ReadOnlyDatabaseError(
            f"the database {path} has schema {version} and must be migrated to {SCHEMA_VERSION} before this "
            "version can read it, but it is read-only here; nothing was changed",
            hint="open it once with write access (or an older practiceplan), or work on a copy",
        )
    if version == 0:
        raise InvalidInputError(f"{path} is not a practiceplan database (and it is read-only here)",
                                hint="check the path")


@contextmanager
def translated(path: Path | str) -> Iterator[None]:
    """Turn a SQLite failure inside the block into the user's error (errors.storage_error: a full disk, a
    damaged or read-only database); anything else propagates unchanged."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and is_locked(exc):
            raise busy_error(path) from None
        known = storage_error(exc, path)
        if known is None:
            raise
        raise known from None


def _ensure_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL. Changing the journal mode does not wait on the busy handler: when several processes
    open a new (or rollback-journal) database at once, retry with backoff up to the busy timeout."""
    import time

    deadline = time.monotonic() + locking.BUSY_TIMEOUT_MS / 1000
    delay = 0.002
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() == "wal":
                return
        except sqlite3.OperationalError as exc:
            if not is_locked(exc):
                raise
        if time.monotonic() >= deadline:
            raise sqlite3.OperationalError("database is locked")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    from practiceplan.store import migrations

    with transaction(conn, path):
        # Re-read inside the write lock: another process may have migrated while we waited.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise InvalidInputError(f"the database {path} was written by a newer practiceplan")
        if version < SCHEMA_VERSION:
            known = set(migrations.MIGRATION_NAMES)
            unknown = [name for name in migrations.applied_names(conn) if name not in known]
            if unknown:
                raise InvalidInputError(
                    f"the database {path} has migrations this version does not know ({', '.join(unknown)})",
                    hint="upgrade practiceplan",
                )
            if version > 0:
                # Automatic backup before migrating a database that holds data. Taken here, inside the
                # write lock and after the re-check, so that of several processes opening an old database
                # at once exactly the one that migrates takes it, and it holds exactly the pre-migration
                # state (a separate read connection copies the last commit; WAL readers are not blocked
                # by our lock). If it fails, the migration does not run.
                from practiceplan.store import backup

                backup.pre_migration_backup(path, version)
            migrations.migrate(conn)


@contextmanager
def transaction(conn: sqlite3.Connection, path: Path | str = "the database",
                tables: tuple[str, ...] | None = None) -> Iterator[sqlite3.Connection]:
    """One ``BEGIN IMMEDIATE`` write transaction; commit on success, roll back on any exception.

    Before a connection's first write, ``PRAGMA quick_check`` (a few milliseconds for a typical database; once
    per connection, so once per command, and a long-running writer is not slowed down) makes sure the file is
    sound: a command never writes into a damaged database (DamagedDatabaseError, exit 65). SQLite failures are
    said as the user's problem (errors.storage_error: a full disk is exit 75, nothing changed).

    ``tables``: the transaction writes only these small bookkeeping tables (``meta``, ``events``), so only they
    are checked (``PRAGMA quick_check(TABLE)``, microseconds) and the whole-file check still comes before the
    first write of anything else. The whole-file check grows with the file (about 1 ms per 1,000 logbook
    entries); a sync that changed nothing writes only bookkeeping and stays as fast at 50k entities as at 5k.
    """
    with translated(path):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if tables and not getattr(conn, "checked", False):
                for table in tables:
                    refuse_damaged(conn, path, table)
            elif not getattr(conn, "checked", False):
                refuse_damaged(conn, path)
                if isinstance(conn, _Connection):
                    conn.checked = True
        except BaseException:
            _rollback(conn)
            raise
    try:
        yield conn
    except BaseException as exc:
        _rollback(conn)
        if isinstance(exc, sqlite3.DatabaseError):
            with translated(path):
                raise
        raise
    with translated(path):
        try:
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise


def refuse_damaged(conn: sqlite3.Connection, path: Path | str, table: str | None = None) -> None:
    """DamagedDatabaseError when ``PRAGMA quick_check`` finds a problem (before a write, or an export); with
    ``table``, only that table and its indexes are checked."""
    with translated(path):
        what = f'"{table}"' if table else "1"
        problems = [row[0] for row in conn.execute(f"PRAGMA quick_check({what})")]
    if problems != ["ok"]:
        raise damaged(path, problems[0] if problems else "quick_check returned nothing")


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is open; a failing rollback (a full disk) leaves SQLite to discard the
    uncommitted changes when the connection closes, so the first error is the one reported."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
