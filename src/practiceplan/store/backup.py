"""Online backups, generations, and verified restores of the SQLite file.

Backup (``write_backup``)
    A fresh read connection copies the live database with SQLite's online backup API
    (``Connection.backup``, one step: one consistent WAL snapshot; writers are never blocked) into a hidden
    temp file beside the destination. The copy is switched to ``journal_mode=DELETE`` (a backup is one
    self-contained file, never paired with a ``-wal``), checked with ``integrity_check``, fsynced, and put
    in place with ``os.link`` (atomic and never overwrites: a name that is taken gets a counter). Then the
    manifest (schema version, app version, sha256, row counts) is written the same way. The manifest is the
    commit point: a ``.db`` without its manifest is the leftover of a killed run, never shown or restored,
    and removed by the next backup. Backups of one database are serialised by an ``flock`` on
    ``backups/.lock`` (released by the kernel when a process dies), which also makes that clean-up safe.

Generations
    ``<db folder>/backups/<db stem>-<UTC time>[-n]-schema<N>.db`` + ``.json``. ``prune`` keeps the newest
    ``keep`` (the ``backup_keep`` setting), never the one just written, deleting the manifest before the
    file so a crash mid-prune leaves only a leftover.

Restore (``restore``) — see the comment in that function for why the copy is a logical one inside a
single ``BEGIN IMMEDIATE`` transaction rather than a file swap or ``backup()`` into the live connection.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from practiceplan import __version__, faults, fileio
from practiceplan.errors import (
    BusyError,
    DamagedDatabaseError,
    DiskFullError,
    InvalidInputError,
    NotFoundError,
    storage_error,
)
from practiceplan.store import data as mt
from practiceplan.store import files, locking, schema

BACKUP_DIRNAME = "backups"
MANIFEST_FORMAT = "practiceplan.backup"
MANIFEST_VERSION = 1
LOCK_NAME = ".lock"
_NAME = re.compile(r"^(?P<stem>.+)-(?P<ts>\d{8}T\d{6}\.\d{3}Z)(?:-(?P<n>\d+))?-schema(?P<schema>\d+)\.db$")
_CORRUPT_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}


def backups_dir(db_path: Path) -> Path:
    """Backups of a database live beside it: ``<db folder>/backups/`` (the data dir for the default db)."""
    return Path(db_path).parent / BACKUP_DIRNAME


def manifest_path(backup_path: Path) -> Path:
    """``x.db`` -> ``x.json``; any other name gets ``.json`` appended (``x.bak`` -> ``x.bak.json``)."""
    backup_path = Path(backup_path)
    if backup_path.suffix == ".db":
        return backup_path.with_suffix(".json")
    return backup_path.with_name(backup_path.name + ".json")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stamp(now: datetime) -> str:
    utc = now.astimezone(timezone.utc)
    return utc.strftime("%Y%m%dT%H%M%S") + f".{utc.microsecond // 1000:03d}Z"


def _iso(now: datetime) -> str:
    utc = now.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _ro_uri(path: Path) -> str:
    return Path(path).resolve().as_uri() + "?mode=ro"


def _is_corrupt(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in _CORRUPT_CODES


# --------------------------------------------------------------------------- locking and leftovers


@contextmanager
def dir_lock(folder: Path, timeout: float | None = None) -> Iterator[None]:
    """Exclusive ``flock`` on ``folder/.lock``: one backup, prune or clean-up of this folder at a time."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; backups still never overwrite each other (os.link)
        yield
        return
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + (locking.BUSY_TIMEOUT_MS / 1000 if timeout is None else timeout)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BusyError(
                        f"another practiceplan process is writing a backup in {folder}",
                        hint="try again in a moment",
                    ) from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _is_leftover_temp(name: str) -> bool:
    return name.startswith(".") and ".tmp" in name and name != LOCK_NAME


def clean_leftovers(folder: Path, extra: Path | None = None) -> list[Path]:
    """Remove what killed runs left behind. Call only while holding :func:`dir_lock` for ``folder``.

    Hidden ``*.tmp*`` files (temp copies and their journals) in ``folder`` — and in ``extra``, the folder of
    a ``-o`` destination — and generation files without a manifest.
    """
    removed: list[Path] = []
    for where in {folder, extra or folder}:
        if not where.is_dir():
            continue
        for path in where.iterdir():
            if _is_leftover_temp(path.name) and (where == folder or ".backup.tmp" in path.name):
                path.unlink(missing_ok=True)
                removed.append(path)
    if folder.is_dir():
        for path in folder.iterdir():
            if _NAME.match(path.name) and not manifest_path(path).exists():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


# --------------------------------------------------------------------------- backup


def _snapshot(db_path: Path, tmp: Path) -> sqlite3.Connection:
    """Copy the live database into ``tmp`` (online backup API); returns an open connection to the copy. A
    database we may not write (store/files.py) is read through a read-only connection."""
    timeout = locking.BUSY_TIMEOUT_MS / 1000
    if files.writable(db_path):
        source = sqlite3.connect(db_path, timeout=timeout, isolation_level=None)
    else:
        source = files.open_read_only(db_path, timeout)
    try:
        source.execute(f"PRAGMA busy_timeout = {locking.BUSY_TIMEOUT_MS}")
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))  # private from the first byte
        target = sqlite3.connect(tmp, isolation_level=None)
        try:
            # pages=-1: the whole copy in one step under one read snapshot (a multi-step copy restarts
            # whenever another process commits, and could starve under a busy writer).
            source.backup(target, pages=-1, progress=lambda *_: faults.hit("backup.copy"))
            target.execute("PRAGMA journal_mode = DELETE")
        except BaseException:
            target.close()
            raise
    except sqlite3.OperationalError as exc:
        if locking.is_locked(exc):
            raise locking.busy_error(db_path) from None
        raise
    finally:
        source.close()
    return target


def write_backup(
    db_path: Path,
    *,
    now: datetime,
    reason: str = "manual",
    dest: Path | None = None,
    overwrite: bool = False,
    keep: int | None = None,
) -> dict[str, Any]:
    """Take one online backup. Returns the manifest plus ``path``, ``manifestPath`` and ``pruned``.

    ``dest`` None writes a new generation into ``backups/`` (and prunes to ``keep`` when given); a ``dest``
    is refused when it (or its manifest) exists, unless ``overwrite``. A full disk is DiskFullError (exit 75),
    other file-system errors (no permission) InvalidInputError, a source SQLite cannot read (truncated, not a
    database, a scribbled header) DamagedDatabaseError: nothing is left half-written, and a migration waiting
    for this backup does not run.
    """
    try:
        return _write_backup(Path(db_path), now=now, reason=reason, dest=dest, overwrite=overwrite, keep=keep)
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and locking.is_locked(exc):
            raise locking.busy_error(db_path) from None
        known = storage_error(exc, db_path)
        if known is None:
            raise
        if isinstance(known, DamagedDatabaseError):
            raise DamagedDatabaseError(
                f"cannot back up {db_path}: it is damaged or is not a practiceplan database ({exc}); "
                "no backup was written",
                hint="run `practiceplan doctor`; restore an older backup with `practiceplan restore`",
            ) from None
        raise known from None
    except OSError as exc:
        where = dest or backups_dir(Path(db_path))
        full = storage_error(exc, where)
        if isinstance(full, DiskFullError):
            raise full from None
        raise InvalidInputError(f"cannot write the backup to {where}: {exc.strerror or exc}",
                                hint="check free space and permissions of that folder") from None


def _write_backup(
    db_path: Path, *, now: datetime, reason: str, dest: Path | None, overwrite: bool, keep: int | None
) -> dict[str, Any]:
    if not os.path.lexists(db_path) or files.check_path(db_path, create_folder=False):  # a folder, a loop: 65
        raise NotFoundError(f"no database at {db_path}: nothing to back up", hint="check --db / PRACTICEPLAN_HOME")
    folder = backups_dir(db_path)
    target = _backup_target(dest, overwrite)
    dest_file = target.path if target is not None and target.kind == "file" else None
    # The backups folder is locked (and created) unless -o writes elsewhere and we may not write beside the
    # database (a read-only one): then nothing of ours is in that folder to serialise or clean up.
    own_folder = target is None or _may_write(folder)
    if own_folder:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with dir_lock(folder) if own_folder else nullcontext():
        if dest_file is not None:
            target_dir = dest_file.parent
        else:
            target_dir = folder if own_folder else Path(tempfile.gettempdir())
        if own_folder:
            clean_leftovers(folder, target_dir if dest_file else None)
        tmp = target_dir / f".{db_path.stem}.{os.getpid()}.backup.tmp"
        for leftover in (tmp, Path(f"{tmp}-journal"), Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)
        try:
            version, counts = _checked_copy(db_path, tmp)
            os.chmod(tmp, 0o600)
            digest = file_sha256(tmp)
            size = tmp.stat().st_size
            if target is None:
                final = _place_generation(tmp, folder, db_path.stem, now, version)
            elif dest_file is not None:
                final = dest_file
                try:
                    fileio.place(tmp, final, replace=overwrite)  # fsyncs the file and the folder
                except FileExistsError:
                    raise InvalidInputError(f"{dest} already exists; nothing was written",
                                            hint="add --force to replace it") from None
            else:  # stdout, a device or a FIFO: the bytes as a stream, without a manifest beside them
                fileio.write_output(str(dest), tmp.read_bytes())
                final = Path(str(dest))
        finally:
            tmp.unlink(missing_ok=True)
        manifest = {
            "format": MANIFEST_FORMAT, "formatVersion": MANIFEST_VERSION, "file": final.name, "created": _iso(now),
            "reason": reason, "schemaVersion": version, "appVersion": __version__, "sha256": digest,
            "bytes": size, "rowCounts": counts, "source": str(db_path),
        }
        if target is not None and dest_file is None:
            return {**manifest, "path": str(target), "manifestPath": None, "pruned": []}
        faults.hit("backup.manifest")
        try:
            fileio.write_atomic(manifest_path(final), _manifest_bytes(manifest), mode=0o600,
                                replace=overwrite or dest is None, temp_suffix=".backup.tmp")
        except BaseException:
            if not overwrite:
                final.unlink(missing_ok=True)  # a backup without its manifest is no backup: none was written
            raise
        pruned = prune(folder, db_path.stem, keep, protect=final) if keep is not None else []
    return {**manifest, "path": str(final), "manifestPath": str(manifest_path(final)),
            "pruned": [str(p) for p in pruned]}


def _may_write(folder: Path) -> bool:
    """May we create ``folder`` (or write in it, when it exists)?"""
    existing = folder if folder.is_dir() else folder.parent
    return os.access(existing, os.W_OK | os.X_OK)


def _backup_target(dest: Path | None, overwrite: bool) -> fileio.OutputTarget | None:
    """Where ``-o`` points (None: a new generation); a regular file (a symlink followed to it) must not exist,
    nor its manifest, unless ``overwrite``, and its folder must."""
    if dest is None:
        return None
    target = fileio.output_target(dest)
    if target.kind != "file" or target.path is None:
        return target
    path = target.path
    if not overwrite and (path.exists() or manifest_path(path).exists()):
        raise InvalidInputError(
            f"{path if path.exists() else manifest_path(path)} already exists; nothing was written",
            hint="choose another name, or add --force to replace it",
        )
    if not path.parent.is_dir():
        raise NotFoundError(f"the folder {path.parent} does not exist")
    return target


def _checked_copy(db_path: Path, tmp: Path) -> tuple[int, dict[str, int]]:
    """Snapshot the live database into ``tmp`` and check the copy: (schema version, row counts)."""
    copy = _snapshot(db_path, tmp)
    try:
        errors = mt.integrity_errors(copy)
        if errors:
            raise InvalidInputError(
                f"the database {db_path} failed its integrity check: {errors[0]}; no backup was written",
                hint="run `practiceplan doctor`; restore an older backup with `practiceplan restore`",
            )
        return mt.user_version(copy), mt.row_counts(copy)
    finally:
        copy.close()


def _manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _place_generation(tmp: Path, folder: Path, stem: str, now: datetime, version: int) -> Path:
    stamp = _stamp(now)
    for n in range(1, 10_000):
        middle = stamp if n == 1 else f"{stamp}-{n}"
        final = folder / f"{stem}-{middle}-schema{version}.db"
        if manifest_path(final).exists():
            continue
        try:
            fileio.place(tmp, final)
            return final
        except FileExistsError:
            continue
    raise InvalidInputError(f"too many backups named {stem}-{stamp}* in {folder}")


@dataclass(frozen=True)
class Generation:
    path: Path
    created: str
    sequence: int
    schema_version: int
    manifest: dict[str, Any] | None

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.created, self.sequence, self.path.name)


def generations(folder: Path, stem: str) -> list[Generation]:
    """Backups of the database ``stem`` in ``folder`` that have a manifest, oldest first."""
    found: list[Generation] = []
    if not folder.is_dir():
        return found
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if not match or match["stem"] != stem:
            continue
        try:
            manifest = json.loads(manifest_path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # no (readable) manifest: not a finished backup
        if not isinstance(manifest, dict):
            continue
        found.append(Generation(path, match["ts"], int(match["n"] or 1), int(match["schema"]), manifest))
    return sorted(found, key=lambda g: g.key)


def prune(folder: Path, stem: str, keep: int, *, protect: Path | tuple[Path, ...] | None = None) -> list[Path]:
    """Delete all but the newest ``keep`` generations (never those in ``protect``). Hold :func:`dir_lock`."""
    gens = generations(folder, stem)
    survivors = {g.path for g in gens[-keep:]} if keep > 0 else set()
    for path in (protect if isinstance(protect, tuple) else (protect,)):
        if path is not None:
            survivors.add(Path(path))
    removed: list[Path] = []
    for gen in gens:
        if gen.path in survivors:
            continue
        faults.hit("backup.prune")
        manifest_path(gen.path).unlink(missing_ok=True)  # the manifest first: a crash leaves a leftover only
        gen.path.unlink(missing_ok=True)
        removed.append(gen.path)
    if removed:
        fileio.fsync_dir(folder)
    return removed


def pre_migration_backup(db_path: Path, from_version: int) -> dict[str, Any]:
    """Called by ``db._migrate`` while it holds the write lock, before it migrates an existing database."""
    from practiceplan import clock

    result = write_backup(Path(db_path), now=clock.now(), reason=f"pre-migration from schema {from_version}")
    faults.hit("migrate.backup")
    return result


# --------------------------------------------------------------------------- verify and restore


def verify_backup(path: Path, *, require_manifest: bool = True) -> dict[str, Any]:
    """Check a backup without touching the live database. Returns what was verified.

    Manifest (format, sha256 of the file, schema version, row counts), then ``integrity_check`` and
    ``foreign_key_check`` on the file, a schema this version knows, and practiceplan's own tables.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"no such backup file: {path}", hint="list backups with `practiceplan backup --list`")
    manifest: dict[str, Any] | None = None
    mpath = manifest_path(path)
    if mpath.exists():
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InvalidInputError(f"the manifest {mpath} is not readable JSON: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            raise InvalidInputError(f"{mpath} is not a practiceplan backup manifest")
        if not isinstance(manifest.get("formatVersion"), int) or manifest["formatVersion"] > MANIFEST_VERSION:
            raise InvalidInputError(f"{mpath} was written by a newer practiceplan", hint="upgrade practiceplan")
        digest = file_sha256(path)
        if manifest.get("sha256") != digest:
            raise InvalidInputError(
                f"{path} does not match its manifest (sha256 {digest[:12]}..., expected "
                f"{str(manifest.get('sha256'))[:12]}...): the file is damaged or was changed; nothing was restored",
                hint="restore another generation (`practiceplan backup --list`)",
            )
    elif require_manifest:
        raise InvalidInputError(
            f"{path} has no manifest ({mpath.name}); nothing was restored",
            hint="restore a backup made by `practiceplan backup`, or add --force to restore this file "
                 "(its integrity is still checked)",
        )
    try:
        conn = sqlite3.connect(_ro_uri(path), uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise InvalidInputError(f"cannot open {path}: {exc}") from None
    try:
        try:
            errors = mt.integrity_errors(conn)
            fk_errors = mt.foreign_key_errors(conn)
            version = mt.user_version(conn)
            counts = mt.row_counts(conn)
            tables = set(mt.user_tables(conn))
            applied = (
                [r[0] for r in conn.execute(
                    "SELECT name FROM _sqlite_migrations WHERE migration_set = 'practiceplan' ORDER BY rowid")]
                if "_sqlite_migrations" in tables else []
            )
        except sqlite3.DatabaseError as exc:
            raise InvalidInputError(f"{path} is not a usable SQLite database: {exc}; nothing was restored") from None
    finally:
        conn.close()
    if errors:
        raise InvalidInputError(f"{path} failed its integrity check: {errors[0]}; nothing was restored")
    if fk_errors:
        raise InvalidInputError(f"{path} has {len(fk_errors)} broken foreign keys; nothing was restored")
    if version > schema.SCHEMA_VERSION:
        raise InvalidInputError(
            f"{path} has schema {version}; this version knows {schema.SCHEMA_VERSION}; nothing was restored",
            hint="upgrade practiceplan",
        )
    if version < 1 or not {"practice_plans", "logbook_entries", "meta"} <= tables:
        raise InvalidInputError(f"{path} is not a practiceplan database; nothing was restored")
    if tuple(applied) != schema.MIGRATION_NAMES[: len(applied)]:
        raise InvalidInputError(f"{path} has migrations this version does not know; nothing was restored",
                                hint="upgrade practiceplan")
    if manifest is not None:
        if manifest.get("schemaVersion") != version:
            raise InvalidInputError(f"{path}: the manifest says schema {manifest.get('schemaVersion')}, "
                                    f"the file has {version}; nothing was restored")
        if manifest.get("rowCounts") not in (None, counts):
            raise InvalidInputError(f"{path}: row counts differ from the manifest; nothing was restored")
    return {"path": str(path), "manifest": manifest, "schemaVersion": version, "rowCounts": counts}


def _open_live(db_path: Path) -> sqlite3.Connection:
    new_file = not db_path.exists()
    db_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    conn = sqlite3.connect(db_path, timeout=locking.BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    if new_file:
        os.chmod(db_path, 0o600)
    conn.execute(f"PRAGMA busy_timeout = {locking.BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = OFF")  # tables are dropped and recreated wholesale
    conn.execute("PRAGMA synchronous = FULL")
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        conn.execute("PRAGMA journal_mode = WAL")
    return conn


def _replace_contents(conn: sqlite3.Connection) -> None:
    """Inside the caller's transaction: make ``main`` a logical copy of the attached ``src``."""
    main_objects = conn.execute(
        "SELECT type, name FROM main.sqlite_master WHERE name NOT LIKE 'sqlite_%' AND type IN ('view', 'trigger')"
    ).fetchall()
    for kind, name in main_objects:
        conn.execute(f"DROP {kind.upper()} IF EXISTS main.{mt.quote(name)}")
    for table in mt.user_tables(conn, "main"):
        conn.execute(f"DROP TABLE main.{mt.quote(table)}")
    src_objects = conn.execute(
        "SELECT type, name, sql FROM src.sqlite_master WHERE name NOT LIKE 'sqlite_%' AND sql IS NOT NULL "
        "ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 WHEN 'view' THEN 2 ELSE 3 END, rowid"
    ).fetchall()
    for kind, name, sql in src_objects:
        conn.execute(sql)  # unqualified CREATE statements create in main
        if kind == "table":
            conn.execute(f"INSERT INTO main.{mt.quote(name)} SELECT * FROM src.{mt.quote(name)}")
            faults.hit("restore.copy")
    has_seq = conn.execute("SELECT 1 FROM main.sqlite_master WHERE name = 'sqlite_sequence'").fetchone()
    if has_seq:
        conn.execute("DELETE FROM main.sqlite_sequence")
        if conn.execute("SELECT 1 FROM src.sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
            conn.execute("INSERT INTO main.sqlite_sequence SELECT * FROM src.sqlite_sequence")
    conn.execute(f"PRAGMA main.user_version = {mt.user_version(conn, 'src')}")


def restore(
    db_path: Path, candidate: Path, *, now: datetime, keep: int | None, require_manifest: bool = True,
    create_folder: bool = True,
) -> dict[str, Any]:
    """Replace the live database by a verified backup, keeping the current one as a generation.

    Why a logical copy in one ``BEGIN IMMEDIATE`` transaction (drop every table, recreate the backup's
    schema, ``INSERT ... SELECT`` every row, set ``user_version``) rather than the alternatives:

    * an atomic rename of the backup over the live file (with ``-wal``/``-shm`` removed) cannot keep the
      write lock across the swap (the lock lives in the file being replaced), and any other process that
      has the database open keeps writing to the old inode or pairs the new file with a stale ``-shm``:
      lost writes, or corruption ("mispaired WAL" in SQLite's how-to-corrupt page);
    * ``backup()`` into the live connection cannot run while that connection holds ``BEGIN IMMEDIATE``
      (SQLite refuses a destination with an open transaction), so the generation taken first and the
      restore would not be one locked step: a write committed in between would be in neither.

    The logical copy holds the write lock from before the generation is taken until COMMIT, goes through
    the live file's own WAL (so there is never a stale ``-wal``/``-shm``, and other open connections simply
    see the new contents at their next transaction), and is all or nothing: a crash before COMMIT leaves
    the old database, after it the restored one. A backup from an older schema keeps its ``user_version``,
    so the next open migrates it (taking the pre-migration backup).

    A live file that SQLite cannot read at all (not a database, malformed) is moved aside as
    ``<name>.damaged-<time>`` (with its ``-wal``/``-shm``) and the backup is copied into a new file.
    """
    db_path = Path(db_path)
    files.check_path(db_path, create_folder=create_folder)  # a folder, a symlink loop or to nothing: refused
    checked = verify_backup(candidate, require_manifest=require_manifest)
    faults.hit("restore.verified")
    try:
        try:
            return _restore_in_place(db_path, Path(candidate), checked, now=now, keep=keep)
        except _Damaged:
            return _restore_damaged(db_path, Path(candidate), checked, now=now, keep=keep)
    except (sqlite3.DatabaseError, OSError) as exc:
        known = storage_error(exc, db_path)  # a full disk: nothing was restored (rolled back)
        if known is None:
            raise
        raise known from None


class _Damaged(Exception):
    pass


def _restore_in_place(
    db_path: Path, candidate: Path, checked: dict[str, Any], *, now: datetime, keep: int | None
) -> dict[str, Any]:
    existed = db_path.exists() and db_path.stat().st_size > 0
    try:
        conn = _open_live(db_path)
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and locking.is_locked(exc):
            raise _busy(db_path) from None
        if _is_corrupt(exc):
            raise _Damaged() from None
        raise
    generation: dict[str, Any] | None = None
    try:
        try:
            conn.execute("ATTACH DATABASE ? AS src", (_ro_uri(candidate),))
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and locking.is_locked(exc):
                raise _busy(db_path) from None
            if _is_corrupt(exc):
                raise _Damaged() from None
            raise
        try:
            if existed and mt.user_tables(conn, "main"):
                # Under our write lock: this snapshot is exactly what the restore replaces.
                generation = write_backup(db_path, now=now, reason="pre-restore")
            faults.hit("restore.generation")
            _replace_contents(conn)
            faults.hit("restore.before_commit")
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.DatabaseError) and _is_corrupt(exc):
                raise _Damaged() from None
            if isinstance(exc, sqlite3.OperationalError) and locking.is_locked(exc):
                raise _busy(db_path) from None
            raise
        faults.hit("restore.after_commit")
        restored = mt.dump_digest(conn, "main")
        expected = mt.dump_digest(conn, "src")
        conn.execute("DETACH DATABASE src")
        if restored != expected:  # pragma: no cover - would be a bug in _replace_contents
            raise RuntimeError("the restored database differs from the backup")
        try:
            mt.checkpoint(conn)  # fold the restore into the main file; harmless if readers keep it busy
        except sqlite3.OperationalError:
            pass
    finally:
        conn.close()
    pruned = _prune_after(db_path, keep, generation, candidate)
    return {"restored": str(candidate), "database": str(db_path), "schemaVersion": checked["schemaVersion"],
            "rowCounts": checked["rowCounts"], "generation": generation and generation["path"],
            "setAside": None, "pruned": pruned}


def _restore_damaged(
    db_path: Path, candidate: Path, checked: dict[str, Any], *, now: datetime, keep: int | None
) -> dict[str, Any]:
    for stale in db_path.parent.glob(f".{db_path.name}.*.restore.tmp*"):
        stale.unlink(missing_ok=True)  # left by an earlier killed restore of a damaged database
    tmp = db_path.with_name(f".{db_path.name}.{os.getpid()}.restore.tmp")
    try:  # the copy first: if it fails (a full disk), the damaged file is still where it was
        source_conn = sqlite3.connect(_ro_uri(candidate), uri=True, isolation_level=None)
        try:
            target = sqlite3.connect(tmp, isolation_level=None)
            try:
                source_conn.backup(target)
                target.execute("PRAGMA journal_mode = WAL")
            finally:
                target.close()
        finally:
            source_conn.close()
        os.chmod(tmp, 0o600)
    except BaseException:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
            leftover.unlink(missing_ok=True)
        raise
    stamp = _stamp(now)
    aside = db_path.with_name(f"{db_path.name}.damaged-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = db_path.with_name(f"{db_path.name}.damaged-{stamp}-{n}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{db_path}{suffix}")
        if source.exists():
            os.replace(source, Path(f"{aside}{suffix}"))
    fileio.place(tmp, db_path, replace=True)
    pruned = _prune_after(db_path, keep, None, candidate)
    return {"restored": str(candidate), "database": str(db_path), "schemaVersion": checked["schemaVersion"],
            "rowCounts": checked["rowCounts"], "generation": None, "setAside": str(aside), "pruned": pruned}


def _prune_after(db_path: Path, keep: int | None, generation: dict[str, Any] | None, candidate: Path) -> list[str]:
    """Prune after a restore, never deleting the generation just kept nor the backup just restored."""
    if keep is None:
        return []
    folder = backups_dir(db_path)
    with dir_lock(folder):
        protect = (Path(generation["path"]) if generation else candidate, candidate)
        return [str(p) for p in prune(folder, db_path.stem, keep, protect=protect)]


def _busy(db_path: Path) -> BusyError:
    return BusyError(
        f"the database {db_path} is in use by another practiceplan process; nothing was restored",
        hint="close other practiceplan commands (sync, reminders) and try again",
    )
