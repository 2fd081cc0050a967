"""Your data: backup, restore, export, import and doctor (the services behind those commands).

The CLI parses options, calls one method of :class:`Data` and renders the result. SQLite work lives in
``store/backup.py`` and ``store/data.py``; the export format, the import validation, the merge rule
and CSV rows are pure (``domain/data.py``). docs/data.md describes the formats and procedures.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from practiceplan import __version__, clock, faults
from practiceplan.domain import data as portable
from practiceplan.domain.models import iso_z, plural
from practiceplan.errors import (
    BusyError,
    DamagedDatabaseError,
    InvalidInputError,
    NotFoundError,
    PracticePlanError,
)
from practiceplan.settings import CREDENTIALS_FILENAME, Settings

if TYPE_CHECKING:
    from practiceplan.services.session import Session

IMPORT_CHUNK = 1000
WAL_WARN_BYTES = 64 * 1024 * 1024
# File systems on which SQLite's locking (and so WAL, BEGIN IMMEDIATE, our backups) cannot be trusted.
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smbfs", "smb3", "sshfs", "fuse.sshfs", "9p", "afs", "ceph", "glusterfs",
    "fuse.glusterfs", "davfs", "fuse.davfs2", "fuse.rclone", "lustre", "gpfs", "ncpfs", "coda", "fuse.s3fs",
})


def _now(settings: Settings) -> datetime:
    return clock.now(settings.zone)


def _keep(settings: Settings) -> int:
    return int(settings.config["backup_keep"])


class Data:
    """Backup, restore, export, import and doctor for the session's database."""

    def __init__(self, session: Session) -> None:
        self.s = session

    @property
    def settings(self) -> Settings:
        return self.s.settings

    # ----------------------------------------------------------------------- backup and restore

    def backup(self, output: Path | None = None, force: bool = False) -> dict[str, Any]:
        """An online backup: a new generation in the backups folder (pruned to ``backup_keep``), or ``output``."""
        settings = self.settings
        from practiceplan.store import backup as store_backup

        keep = None if output else _keep(settings)
        return store_backup.write_backup(
            settings.db_path, now=_now(settings), reason="manual", dest=output, overwrite=force, keep=keep
        )

    def list_backups(self) -> list[dict[str, Any]]:
        """Finished generations of this database, newest first."""
        settings = self.settings
        from practiceplan.store import backup as store_backup

        gens = store_backup.generations(store_backup.backups_dir(settings.db_path), settings.db_path.stem)
        return [{**(g.manifest or {}), "path": str(g.path)} for g in reversed(gens)]

    def resolve_backup(self, file: Path) -> Path:
        """A path as given, or the name of a generation in the backups folder."""
        settings = self.settings
        from practiceplan.store import backup as store_backup

        path = Path(file).expanduser()
        if path.exists():
            return path
        candidate = store_backup.backups_dir(settings.db_path) / path.name
        if path.name == str(file) and candidate.exists():
            return candidate
        raise NotFoundError(f"no such backup file: {file}", hint="list backups with `practiceplan backup --list`")

    def restore(self, file: Path, *, force: bool = False) -> dict[str, Any]:
        """Verify ``file``, keep the current database as a generation, then restore (see store/backup.py)."""
        settings = self.settings
        from practiceplan.store import backup as store_backup

        path = self.resolve_backup(file)
        if os.path.realpath(path) == os.path.realpath(settings.db_path):  # realpath: never fails on a link loop
            raise InvalidInputError("that is the live database itself", hint="give a backup file")
        return store_backup.restore(settings.db_path, path, now=_now(settings), keep=_keep(settings),
                                    require_manifest=not force, create_folder=settings.creates_folder)

    # ----------------------------------------------------------------------- export

    def export_document(self) -> dict[str, Any]:
        """Everything, in wire format, as one document (read in one snapshot)."""
        from practiceplan.store import data as mt
        from practiceplan.store.db import refuse_damaged

        conn = self.s.store.conn
        sections: dict[str, list[dict[str, Any]]] = {}
        with mt.read_snapshot(conn):
            refuse_damaged(conn, self.settings.db_path)  # never a partial export of a damaged file
            version = mt.user_version(conn)
            for key, _kind, table in portable.SECTIONS:
                if not mt.table_exists(conn, table):
                    sections[key] = []
                elif "doc" in mt.columns(conn, table):
                    sections[key] = mt.dump_docs(conn, table)
                elif table == "events":
                    sections[key] = mt.dump_events(conn)
                else:
                    sections[key] = mt.dump_rows(conn, table)
        return portable.build_export(sections, exported_at=iso_z(self.s.now), app_version=__version__,
                                     schema_version=version)

    def export_json_text(self) -> str:
        return json.dumps(self.export_document(), ensure_ascii=False, indent=2, allow_nan=False) + "\n"

    def export_csv_text(self, what: str) -> str:
        import csv
        import io

        from practiceplan.store.db import refuse_damaged

        store = self.s.store
        refuse_damaged(store.conn, self.settings.db_path)  # never a partial export of a damaged file
        if what == "logbook":
            rows = portable.logbook_rows(store.entries(newest_first=False), self.s.zone)
        elif what == "occurrences":
            plans = {p["id"]: p for p in store.plans(include_deleted=True)}
            rows = portable.occurrence_rows(store.occurrences(), plans, self.s.zone)
        else:
            raise InvalidInputError(f"unknown CSV export '{what}'", hint="use logbook or occurrences")
        buffer = io.StringIO()
        csv.writer(buffer).writerows(rows)  # RFC 4180: quoted as needed, CRLF line ends
        return buffer.getvalue()

    # ----------------------------------------------------------------------- import

    def import_json(self, path: Path, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """Merge a practiceplan export (or a Mirubato data export) by id, all or nothing.

        Everything is validated first; then one ``BEGIN IMMEDIATE`` transaction writes every change through
        ``Store.save_many`` (so each one also gets its sync outbox row). See ``domain/portable.py`` for the
        merge rule. Sections whose table this version does not have are counted in ``skipped``.
        """
        from practiceplan.formats.jsonfile import read_json_document
        from practiceplan.store import data as mt
        from practiceplan.store.repo import TABLES

        parsed = portable.parse_document(read_json_document(path), now=self.s.now, user_zone=self.s.zone.key)
        store = self.s.store
        conn = store.conn
        stamp = iso_z(self.s.now)
        counts: dict[str, dict[str, int]] = {}
        skipped: dict[str, int] = {}
        total = parsed.count()
        done = 0
        with store.write():
            for key, kind, table in portable.SECTIONS:
                items = parsed.sections.get(key)
                if not items:
                    continue
                if not mt.table_exists(conn, table):
                    skipped[key] = len(items)
                    continue
                tally = {"inserted": 0, "replaced": 0, "unchanged": 0, "keptLocal": 0}
                if kind is not None and TABLES.get(kind) == table:
                    local = mt.docs_by_id(conn, table, [item["id"] for item in items])
                    changed = []
                    for item in items:
                        decision = portable.merge_decision(local.get(item["id"]), item)
                        tally[{"insert": "inserted", "replace": "replaced", "same": "unchanged",
                               "keep": "keptLocal"}[decision]] += 1
                        if decision in ("insert", "replace"):
                            changed.append(item)
                    for start in range(0, len(changed), IMPORT_CHUNK):
                        faults.hit("import.row")
                        store.save_many(kind, changed[start : start + IMPORT_CHUNK], stamp)
                        if progress:
                            progress(done + min(start + IMPORT_CHUNK, len(changed)), total)
                    if kind == "practice_plan":
                        for plan in changed:
                            store.set_horizon(plan["id"], None)  # regenerate its sessions on the next run
                elif key == "events":
                    inserted, same = mt.insert_events(conn, items)
                    tally.update(inserted=inserted, unchanged=same)
                elif kind is None:
                    inserted, same = mt.insert_rows(conn, table, items)
                    tally.update(inserted=inserted, unchanged=same)
                else:
                    skipped[key] = len(items)
                    continue
                done += len(items)
                if progress:
                    progress(done, total)
                counts[key] = tally
            faults.hit("import.before_commit")
        faults.hit("import.after_commit")
        totals = {name: sum(t[name] for t in counts.values()) for name in ("inserted", "replaced", "unchanged",
                                                                           "keptLocal")}
        return {"file": str(path), "source": parsed.source, "sections": counts, "skipped": skipped,
                "ignoredKeys": parsed.ignored, **totals}

    @staticmethod
    def skipped_warnings(result: dict[str, Any]) -> list[str]:
        """One line per section an import could not store (its ``skipped`` counts)."""
        return [f"{n} {portable.LABELS[key]} were not imported: this version has no place to store them yet"
                for key, n in result["skipped"].items()]

    def newest_verified_backup(self) -> dict[str, Any] | None:
        """The newest generation whose file matches its manifest and passes integrity_check, or None."""
        from practiceplan.store import backup as store_backup

        for item in self.list_backups():
            try:
                store_backup.verify_backup(Path(item["path"]))
            except PracticePlanError:
                continue
            return item
        return None

    def restore_advice(self) -> tuple[str, str]:
        """What to do about a damaged database: (the fix, a note naming the newest verified backup). The fix is
        the `restore` command of that backup, or what is left when there is none."""
        newest = self.newest_verified_backup()
        if newest is None:
            return ("move the file aside and start again (`practiceplan import json FILE` brings back an export), "
                    "or recover what SQLite can with `sqlite3 DB .recover`", "there is no verified backup")
        return (f"practiceplan restore {newest['path']}",
                f"the newest verified backup is {Path(newest['path']).name} ({newest.get('created', '?')})")

    def _doctor_open(self, report: _Report, *, fix: bool, head: int) -> int | None:
        """Open the database without migrating and run the database checks; a file that cannot be opened or
        turns out damaged is a finding (exit 65) naming the backup to restore, never an internal error."""
        from practiceplan.store import db as dbmod

        path = self.settings.db_path
        try:
            conn = dbmod.connect(path, migrate=False, create_folder=False)
        except BusyError:
            raise  # busy (or a full disk) is not a finding: exit 75, try again
        except DamagedDatabaseError as error:
            advice, note = self.restore_advice()
            report.add("database", "error", f"{error.message}; {note}", fix=advice)
            return None
        except PracticePlanError as error:  # a folder, a symlink loop or to nothing, a newer schema
            report.add("database", "error", error.message, fix=error.hint)
            return None
        try:
            with dbmod.translated(path):
                return _doctor_database(self.s, conn, report, fix=fix, head=head)
        except DamagedDatabaseError as error:
            advice, note = self.restore_advice()
            cannot = " (doctor --fix does not repair a damaged file)" if fix else ""
            report.add("integrity", "error", f"{error.message.replace('; nothing was changed', '')}; {note}{cannot}",
                       fix=advice)
            return None
        finally:
            conn.close()

    def doctor(self, *, fix: bool = False, mounts: str | None = None) -> dict[str, Any]:
        """Check the database and its surroundings; with ``fix``, repair what is safe. Returns the report."""
        from practiceplan.store import backup as store_backup
        from practiceplan.store import schema

        settings = self.settings
        path = settings.db_path
        report = _Report()
        head = schema.SCHEMA_VERSION
        version: int | None = None

        if not os.path.lexists(path) and (settings.creates_folder or path.parent.is_dir()):
            report.add("database", "info", f"no database yet at {path} (the first command creates it)")
        elif not os.path.lexists(path):
            report.add("database", "error", f"no database at {path}: the folder {path.parent} does not exist",
                       fix="check the path; to start a new database there, add --create")
        else:
            version = self._doctor_open(report, fix=fix, head=head)

        _doctor_files(settings, report, fix=fix)
        _doctor_filesystem(settings, report, mounts)
        gens = store_backup.generations(store_backup.backups_dir(path), path.stem)
        if gens:
            newest = gens[-1]
            report.add("backups", "ok", f"{plural(len(gens), 'backup generation')}; newest {newest.path.name} "
                                        f"({(newest.manifest or {}).get('created', '?')})")
        elif path.exists():
            report.add("backups", "info", "no backups yet", fix="practiceplan backup")
        problems = [c for c in report.checks if c["status"] == "error" and not c["fixed"]]
        warnings = [c for c in report.checks if c["status"] == "warning" and not c["fixed"]]
        return {"database": str(path), "schemaVersion": version, "headVersion": head, "ok": not problems,
                "errors": len(problems), "warnings": len(warnings), "checks": report.checks}



# --------------------------------------------------------------------------- doctor


def mount_for(path: Path, mounts_text: str) -> tuple[str, str] | None:
    """(mount point, file system type) of the longest /proc/mounts entry containing ``path``."""
    best: tuple[str, str] | None = None
    target = str(path)
    for line in mounts_text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        inside = target == point or target.startswith(point.rstrip("/") + "/") or point == "/"
        if inside and (best is None or len(point) > len(best[0])):
            best = (point, parts[2])
    return best


class _Report:
    def __init__(self) -> None:
        self.checks: list[dict[str, Any]] = []

    def add(self, name: str, status: str, message: str, fix: str | None = None, **extra: Any) -> dict[str, Any]:
        check = {"name": name, "status": status, "message": message, "fix": fix, "fixed": False, **extra}
        self.checks.append(check)
        return check

    @staticmethod
    def fixed(check: dict[str, Any], message: str) -> None:
        check["fixed"] = True
        check["message"] += f" — fixed: {message}"


def _mode_problem(path: Path) -> int | None:
    """The permission bits when group or others can access the file, else None."""
    if os.name == "nt" or not path.is_file():
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    return mode if mode & 0o077 else None


def _doctor_database(session: Session, conn: Any, report: _Report, *, fix: bool, head: int) -> int:
    from practiceplan.store import data as mt

    settings = session.settings
    path = settings.db_path
    version = mt.user_version(conn)
    report.add("database", "ok", f"{path} ({path.stat().st_size // 1024} KiB)")
    integrity = mt.integrity_errors(conn)
    restore_hint, note = session.data.restore_advice() if integrity else ("", "")
    if integrity:
        cannot = " (doctor --fix does not repair a damaged file)" if fix else ""
        report.add("integrity", "error", f"the database is damaged: integrity_check found "
                                         f"{plural(len(integrity), 'problem')}: {integrity[0]}; {note}{cannot}", fix=restore_hint,
                   details=integrity)
    else:
        report.add("integrity", "ok", "integrity_check: ok")
    fk = mt.foreign_key_errors(conn)
    if fk:
        report.add("foreignKeys", "error", f"foreign_key_check found {plural(len(fk), 'broken reference')}",
                   fix=restore_hint or session.data.restore_advice()[0], details=[list(r) for r in fk[:20]])
    else:
        report.add("foreignKeys", "ok", "foreign_key_check: ok")

    if version < head:
        check = report.add("schema", "warning",
                           f"schema {version}; this version migrates it to {head} on the next command "
                           "(a backup is taken first)", fix="practiceplan doctor --fix (or run any command)")
        if fix and not integrity:
            session.store  # noqa: B018 - opening migrates (with the automatic pre-migration backup)
            version = mt.user_version(session.store.conn)
            report.fixed(check, f"migrated to schema {version}")
    else:
        report.add("schema", "ok", f"schema {version} (current)")
    if integrity or version < head:
        return version  # the checks below read tables of the current schema from a sound file
    _doctor_links(conn, report)
    _doctor_rollup(session, conn, report, fix=fix)
    _doctor_horizon(session, conn, report, fix=fix)
    _doctor_wal(path, conn, report, fix=fix)
    report.add("outbox", "info", f"{plural(mt.pending_outbox(conn), 'local change')} not yet synced")
    _doctor_sync(conn, report)
    return version


def _doctor_sync(conn: Any, report: Any) -> None:
    """Sync state worth knowing: conflicts waiting for a decision, a batch sent but never acknowledged."""
    from practiceplan.store import sync as st

    open_conflicts = st.open_conflict_count(conn)
    if open_conflicts:
        report.add("sync", "warning", f"{plural(open_conflicts, 'sync conflict')} waiting for a decision",
                   fix="see `practiceplan sync conflicts`, then `practiceplan sync resolve ID --keep local|remote`")
    batch = st.pending_batch(conn)
    if batch:
        report.add("sync", "info", f"a batch of {plural(len(batch['items']), 'change')} was sent but not "
                   "acknowledged; the next `practiceplan sync` resends it unchanged (same idempotency key)")
    if not open_conflicts and not batch:
        report.add("sync", "ok", "no open sync conflicts, no unacknowledged batch")


def _doctor_links(conn: Any, report: _Report) -> None:
    from practiceplan.store import data as mt

    orphans = mt.orphaned_links(conn)
    labels = {
        "occurrenceEntry": "occurrences linked to a logbook entry that is missing",
        "occurrencePlan": "occurrences whose plan is missing",
        "entryOccurrence": "logbook entries linked to an occurrence that is missing",
    }
    total = mt.count_orphans(conn)
    found = {k: n for k, n in total.items() if n}
    if found:
        # Reported, never "fixed": the missing side may still arrive (an optimistic check-in whose entry a
        # sync has not delivered yet, `metrics.pendingLog`), and the logbook is never rewritten by planning.
        # Clearing the link would turn a late-arriving entry into a duplicate session.
        report.add("links", "warning", "; ".join(f"{n} {labels[k]}" for k, n in found.items()),
                   fix="sync, or restore a backup that has the missing items; links are kept as they are",
                   details={k: [list(p) for p in v] for k, v in orphans.items() if v})
    else:
        report.add("links", "ok", "every occurrence/entry link resolves")


def _doctor_horizon(session: Session, conn: Any, report: _Report, *, fix: bool) -> None:
    from datetime import timedelta

    from practiceplan.store import data as mt

    settings = session.settings
    target = session.horizon_target()
    behind = mt.plans_behind(conn, iso_z(target - timedelta(days=1)))
    if behind:
        check = report.add("horizon", "warning",
                           f"{plural(len(behind), 'active plan')} {'has' if len(behind) == 1 else 'have'} sessions materialised short of the "
                           f"{settings.config['horizon_days']}-day horizon",
                           fix="practiceplan doctor --fix (or run `practiceplan today`)")
        if fix:
            written = session.plans.extend_horizon()
            report.fixed(check, f"{plural(written, 'session')} written")
    else:
        report.add("horizon", "ok", f"sessions are materialised {settings.config['horizon_days']} days ahead")
    beyond = mt.occurrences_beyond(conn, iso_z(target + timedelta(days=1)))
    if beyond:
        report.add("beyondHorizon", "info",
                   f"{plural(beyond, 'scheduled session')} {'lies' if beyond == 1 else 'lie'} beyond the horizon (horizon_days was larger before, "
                   "or they were imported); they are kept")


def _doctor_rollup(session: Session, conn: Any, report: _Report, *, fix: bool) -> None:
    """The logbook rollup (per-hour totals the day statistics read) must add up to the live entries."""
    from practiceplan.store import insights as queries

    off = {table: n for table, n in queries.rollup_mismatches(conn).items() if n}
    if not off:
        report.add("rollup", "ok", "the logbook rollup (day totals for stats) matches the entries")
        return
    check = report.add("rollup", "error", "the logbook rollup is out of step with the entries: "
                       + ", ".join(f"{n} bucket(s) of {table}" for table, n in off.items()),
                       fix="practiceplan doctor --fix (recomputes it from the entries)")
    if fix:
        with session.store.write():
            queries.rebuild_rollups(session.store.conn)
        report.fixed(check, "recomputed from the entries")


def _doctor_wal(path: Path, conn: Any, report: _Report, *, fix: bool) -> None:
    from practiceplan.store import data as mt

    wal = Path(f"{path}-wal")
    size = wal.stat().st_size if wal.exists() else 0
    if size > WAL_WARN_BYTES:
        check = report.add("wal", "warning", f"the write-ahead log is {size // 2**20} MiB",
                           fix="practiceplan doctor --fix (runs wal_checkpoint(TRUNCATE))")
        if fix:
            busy, _, _ = mt.checkpoint(conn)
            new_size = wal.stat().st_size if wal.exists() else 0
            if not busy:
                report.fixed(check, f"checkpointed; now {new_size // 2**20} MiB")
    else:
        report.add("wal", "ok", f"write-ahead log {size // 1024} KiB")


def _doctor_files(settings: Settings, report: _Report, *, fix: bool) -> None:
    path = settings.db_path
    loose = [(p, m) for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if (m := _mode_problem(p))]
    if loose:
        check = report.add("permissions", "warning",
                           "readable by other users: " + ", ".join(f"{p.name} ({m:o})" for p, m in loose),
                           fix="practiceplan doctor --fix (chmod 600)")
        if fix:
            for p, _ in loose:
                os.chmod(p, 0o600)
            report.fixed(check, "chmod 600")
    elif path.exists():
        report.add("permissions", "ok", "the database is private to you (600)")
    credentials = settings.config_dir / CREDENTIALS_FILENAME
    if not credentials.exists():
        report.add("credentials", "ok", f"{credentials}: not present")
    elif (mode := _mode_problem(credentials)) is not None:
        check = report.add("credentials", "error",
                           f"{credentials} is readable by other users ({mode:o}): it holds your sync token",
                           fix="practiceplan doctor --fix (chmod 600), then rotate the token")
        if fix:
            os.chmod(credentials, 0o600)
            report.fixed(check, "chmod 600")
    else:
        report.add("credentials", "ok", f"{credentials}: private (600)")


def _doctor_filesystem(settings: Settings, report: _Report, mounts: str | None) -> None:
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text(encoding="utf-8", errors="replace")
        except OSError:
            report.add("filesystem", "info", "cannot tell the file system (no /proc/mounts)")
            return
    folder = settings.db_path.parent
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    found = mount_for(probe.resolve(), mounts)
    if found is None:
        report.add("filesystem", "info", "cannot tell the file system")
        return
    point, fstype = found
    if fstype in NETWORK_FILESYSTEMS:
        report.add("filesystem", "warning",
                   f"{folder} is on a network file system ({fstype} at {point}): SQLite's locks are not "
                   "reliable there, so concurrent commands can corrupt the database",
                   fix="keep the database on a local disk (set PRACTICEPLAN_HOME or --db) and sync instead")
    else:
        report.add("filesystem", "ok", f"{folder} is on a local file system ({fstype})")
