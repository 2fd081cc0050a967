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

from practiceplan.errors import InvalidInputError
from practiceplan.store import locking
from practiceplan.store.locking import busy_error, is_locked
from practiceplan.store.schema import SCHEMA_VERSION


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout = {locking.BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = FULL")


def connect(path: Path | str, *, migrate: bool = True) -> sqlite3.Connection:
    """Open (creating if needed) and bring to the current schema. Raises BusyError / InvalidInputError."""
    path = Path(path)
    new_file = not path.exists()
    if new_file:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise InvalidInputError(f"cannot create the data folder {path.parent}: {exc.strerror}") from None
    elif path.is_dir():
        raise InvalidInputError(f"{path} is a folder, not a database file", hint="point --db at a file")
    try:
        conn = sqlite3.connect(path, timeout=locking.BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except sqlite3.Error as exc:
        raise InvalidInputError(f"cannot open the database {path}: {exc}") from None
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
        _ensure_wal(conn)
        if version < SCHEMA_VERSION and migrate:
            _migrate(conn, path)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if isinstance(exc, sqlite3.OperationalError) and is_locked(exc):
            raise busy_error(path) from None
        raise InvalidInputError(
            f"{path} is not a usable practiceplan database: {exc}",
            hint="check the path, or run `practiceplan doctor`",
        ) from None
    except BaseException:
        conn.close()
        raise
    return conn


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
def transaction(conn: sqlite3.Connection, path: Path | str = "the database") -> Iterator[sqlite3.Connection]:
    """One ``BEGIN IMMEDIATE`` write transaction; commit on success, roll back on any exception."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if is_locked(exc):
            raise busy_error(path) from None
        raise
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if is_locked(exc):
            raise busy_error(path) from None
        raise
