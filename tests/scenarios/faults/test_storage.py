"""Issue 11.1-2, 11.4-6 and issue 10.4-6: a full disk, a damaged file, a bad database path, a read-only
database. Each gives a clear message and a documented exit code, and leaves every file as it was.

The full disk is made three ways: SQLite's own SQLITE_FULL (``max_page_count`` pinned to the file's size, a
fault point on the connection), ENOSPC from ``os.write`` (every file we write goes through fileio), and a
real small file system (test_small_filesystem.py). Damaged files are generated here from a fresh database.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest

from practiceplan.store import db as dbmod
from tests.store.helpers import logical_digest
from tests.scenarios.faults.conftest import DAMAGE, damage_mid_file, leftovers, populate_logbook


@pytest.fixture
def home(cli, isolated_home, tmp_path) -> Path:
    cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--minutes", "20")
    populate_logbook(cli, tmp_path)
    return isolated_home


def sqlite_full(m: pytest.MonkeyPatch) -> None:
    """Within ``m``, every connection the store opens is full: a write needing a new page gets SQLITE_FULL."""
    configure = dbmod._configure

    def full(conn):
        configure(conn)
        conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")

    m.setattr(dbmod, "_configure", full)


def _no_internal_error(run) -> None:
    assert run.code != 1 and "internal error" not in run.stderr and "Traceback" not in run.stderr, run


# --------------------------------------------------------------------------- a full disk


@pytest.mark.parametrize("args", [
    ("plan", "add", "Arpeggios", "--every", "daily", "--at", "07:00"),
    ("log", "import", "BULK"),
    ("import", "json", "EXPORT"),
])
def test_sqlite_full_is_exit_75_and_changes_nothing(cli, home, tmp_path, monkeypatch, args):
    export = tmp_path / "export.json"
    cli("export", "json", "-o", str(export))
    bulk = tmp_path / "more.jsonl"
    bulk.write_text("\n".join(json.dumps({"id": f"entry_more{i:04d}", "timestamp": "2026-02-03T10:00:00Z",
                                          "duration": 20, "notes": "y" * 500}) for i in range(200)))
    doc = json.loads(export.read_text())
    doc["entries"] = [{**e, "id": e["id"] + "x", "notes": "z" * 500} for e in doc["entries"]]
    export.write_text(json.dumps(doc))
    before = logical_digest(home / "practiceplan.db")
    argv = [str(bulk) if a == "BULK" else str(export) if a == "EXPORT" else a for a in args]
    with monkeypatch.context() as m:
        sqlite_full(m)
        run = cli(*argv, ok=False)
    assert run.code == 75 and "the disk is full" in run.stderr and "nothing was changed" in run.stderr, run
    _no_internal_error(run)
    assert logical_digest(home / "practiceplan.db") == before


def test_a_full_disk_during_the_horizon_extension_of_a_read_command_is_75(cli, home, set_now, monkeypatch):
    set_now("2026-06-20T09:00:00Z")  # months later: today extends the horizon (a write)
    before = logical_digest(home / "practiceplan.db")
    with monkeypatch.context() as m:
        sqlite_full(m)
        run = cli("today", ok=False)
    assert run.code == 75 and "the disk is full" in run.stderr, run
    assert logical_digest(home / "practiceplan.db") == before


def _enospc_after(m: pytest.MonkeyPatch, allowed: int = 0) -> None:
    """os.write writes ``allowed`` bytes in total, then the disk is full (ENOSPC)."""
    real = os.write
    budget = [allowed]

    def write(fd, data):
        if budget[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real(fd, bytes(data[: budget[0]]))
        budget[0] -= n
        return n

    m.setattr(os, "write", write)


@pytest.mark.parametrize("args", [
    ("export", "json", "-o", "OUT"),
    ("export", "csv", "logbook", "-o", "OUT"),
    ("export", "ics", "-o", "OUT"),
    ("stats", "--svg", "OUT"),
    ("forecast", "--svg", "OUT"),
    ("config", "set", "daily_capacity", "90"),
    ("template", "keygen", "--out", "OUT"),
])
def test_a_file_on_a_full_disk_is_75_and_leaves_nothing(cli, home, tmp_path, monkeypatch, args):
    """Issue 11.1-2: no truncated export reported as success, no empty SVG, no temp file left behind."""
    out = tmp_path / "out" / "target"
    out.parent.mkdir()
    config = home / "config.toml"
    config_before = config.read_bytes() if config.exists() else None
    with monkeypatch.context() as m:
        _enospc_after(m, 10)  # a part is written before the disk fills up
        run = cli(*[str(out) if a == "OUT" else a for a in args], ok=False)
    assert run.code == 75 and "the disk is full" in run.stderr, run
    _no_internal_error(run)
    assert list(out.parent.iterdir()) == [] and leftovers(home) == []
    assert (config.read_bytes() if config.exists() else None) == config_before


def test_the_backup_manifest_on_a_full_disk_is_75_and_leaves_no_backup(cli, home, tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        _enospc_after(m, 0)  # the database copy is written by SQLite; the manifest by us
        run = cli("backup", "-o", str(tmp_path / "b.db"), ok=False)
    assert run.code == 75 and "the disk is full" in run.stderr, run
    assert not (tmp_path / "b.json").exists() and not (tmp_path / "b.db").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("args", [("export", "json", "-o", "OUT"), ("stats", "--svg", "OUT")])
def test_short_writes_still_write_the_whole_file(cli, home, tmp_path, monkeypatch, args):
    real = os.write
    out = tmp_path / "out.file"
    with monkeypatch.context() as m:
        m.setattr(os, "write", lambda fd, data: real(fd, bytes(data[:1000])))
        cli(*[str(out) if a == "OUT" else a for a in args])
    data = out.read_bytes()
    assert json.loads(data) if args[0] == "export" else data.rstrip().endswith(b"</svg>")


# --------------------------------------------------------------------------- a damaged database


@pytest.fixture
def backed_up(cli, home) -> Path:
    return Path(cli("backup", "--json").json["path"])


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_doctor_reports_damage_naming_the_newest_verified_backup(cli, home, backed_up, kind):
    DAMAGE[kind](home / "practiceplan.db")
    before = (home / "practiceplan.db").read_bytes()
    for args in (("doctor",), ("doctor", "--fix")):
        run = cli(*args, ok=False)
        assert run.code == 65, run
        _no_internal_error(run)
        assert f"practiceplan restore {backed_up}" in run.stdout, run
        assert "no database yet" not in run.stdout
    assert "does not repair" in run.stdout or kind != "mid-file"
    report = cli("doctor", "--json", ok=False).json
    assert not report["ok"] and any(backed_up.name in c["message"] for c in report["checks"] if c["status"] == "error")
    assert (home / "practiceplan.db").read_bytes() == before


def test_doctor_skips_a_backup_that_fails_verification(cli, home, backed_up, set_now):
    set_now("2026-03-02T10:00:00Z")
    newer = Path(cli("backup", "--json").json["path"])
    newer.write_bytes(newer.read_bytes()[:-100] + b"\0" * 100)  # no longer matches its manifest
    damage_mid_file(home / "practiceplan.db")
    run = cli("doctor", ok=False)
    assert run.code == 65 and f"practiceplan restore {backed_up}" in run.stdout, run


@pytest.mark.parametrize("kind", sorted(DAMAGE))
@pytest.mark.parametrize("args", [("export", "json"), ("export", "csv", "logbook"), ("backup",),
                                  ("log", "add", "--minutes", "5"), ("plan", "add", "X", "--every", "daily")])
def test_export_backup_and_writes_refuse_a_damaged_database(cli, home, kind, args):
    db = home / "practiceplan.db"
    DAMAGE[kind](db)
    before = db.read_bytes()
    run = cli(*args, ok=False)
    assert run.code == 65, run
    _no_internal_error(run)
    assert "damaged" in run.stderr or "not a usable" in run.stderr, run
    assert "doctor" in run.stderr, run
    assert db.read_bytes() == before
    assert run.stdout == "" or args[0] != "export"


@pytest.mark.parametrize("kind", sorted(DAMAGE))
@pytest.mark.parametrize("args", [("today",), ("stats",), ("forecast",), ("calendar",), ("occurrences",),
                                  ("log", "list"), ("plan", "list"), ("suggest",)])
def test_reads_of_a_damaged_database_never_say_internal_error(cli, home, kind, args):
    DAMAGE[kind](home / "practiceplan.db")
    run = cli(*args, ok=False)
    _no_internal_error(run)
    assert run.code in (0, 65), run
    if run.code == 65:
        assert "doctor" in run.stderr


# --------------------------------------------------------------------------- bad database paths


def _bad_paths(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "folder.db"
    folder.mkdir()
    loop = tmp_path / "loop.db"
    loop.symlink_to(loop)
    dangling = tmp_path / "dangling.db"
    dangling.symlink_to(tmp_path / "nowhere" / "x.db")
    return {"folder": folder, "loop": loop, "dangling": dangling}


@pytest.mark.parametrize("name", ["folder", "loop", "dangling"])
def test_restore_into_a_bad_path_is_refused_and_leaves_it(cli, home, backed_up, tmp_path, name):
    path = _bad_paths(tmp_path)[name]
    run = cli("--db", str(path), "restore", str(backed_up), ok=False)
    assert run.code == 65, run
    _no_internal_error(run)
    assert {"folder": "is a folder", "loop": "symlink loop", "dangling": "does not exist"}[name] in run.stderr
    assert path.is_dir() if name == "folder" else path.is_symlink()
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("name", ["folder", "loop", "dangling"])
def test_doctor_on_a_bad_path_reports_it_rather_than_no_database_yet(cli, tmp_path, name):
    path = _bad_paths(tmp_path)[name]
    run = cli("--db", str(path), "doctor", ok=False)
    assert run.code == 65 and "no database yet" not in run.stdout, run
    assert "fix:" in run.stdout
    for args in (("today",), ("log", "add", "--minutes", "5"), ("backup",)):
        other = cli("--db", str(path), *args, ok=False)
        assert other.code == 65, other
        _no_internal_error(other)


@pytest.mark.parametrize("kind", ["truncated", "text", "header"])
def test_backup_of_an_unreadable_file_is_a_clear_error(cli, home, kind):
    DAMAGE[kind](home / "practiceplan.db")
    run = cli("backup", ok=False)
    assert run.code == 65 and "no backup was written" in run.stderr, run
    _no_internal_error(run)


# --------------------------------------------------------------------------- --db in a folder that does not exist


def test_an_explicit_db_in_a_missing_folder_is_refused_unless_create(cli, tmp_path, monkeypatch):
    """Issue 10.5: a mistyped --db must not look like an empty database."""
    target = tmp_path / "no" / "such" / "dir" / "x.db"
    for args in (("plan", "list"), ("today",), ("log", "add", "--minutes", "5")):
        run = cli("--db", str(target), *args, ok=False)
        assert run.code == 65 and "does not exist" in run.stderr and "--create" in run.stderr, run
    monkeypatch.setenv("PRACTICEPLAN_DB", str(target))
    assert cli("plan", "list", ok=False).code == 65
    assert not (tmp_path / "no").exists()
    cli("--create", "log", "add", "--minutes", "5")
    assert target.is_file() and stat.S_IMODE(target.parent.stat().st_mode) == 0o700


def test_the_default_location_is_still_created_silently(cli, isolated_home):
    assert not isolated_home.exists()
    cli("plan", "list")
    assert (isolated_home / "practiceplan.db").exists()


def test_an_explicit_db_in_an_existing_folder_is_created(cli, tmp_path):
    cli("--db", str(tmp_path / "new.db"), "log", "add", "--minutes", "5")
    assert (tmp_path / "new.db").is_file()


# --------------------------------------------------------------------------- a read-only database


@pytest.fixture
def read_only(home, monkeypatch) -> Path:
    """The database and its folder are not writable for us (os.access says so, as for another user's file or a
    read-only mount; a real read-only mount is in test_small_filesystem.py)."""
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if mode & os.W_OK and str(p).startswith(str(home))
                        else real(p, mode, **kw))
    return home / "practiceplan.db"


@pytest.mark.parametrize("args", [("today",), ("next",), ("plan", "list"), ("log", "list"), ("stats",),
                                  ("forecast",), ("calendar",), ("occurrences",), ("export", "json"), ("doctor",)])
def test_reads_work_on_a_read_only_database(cli, read_only, set_now, args):
    set_now("2026-06-20T09:00:00Z")  # the horizon is due: it is not extended, the data is shown as it is
    before = logical_digest(read_only)
    cli(*args)
    assert logical_digest(read_only) == before


def test_a_backup_of_a_read_only_database_goes_elsewhere(cli, read_only, tmp_path):
    cli("backup", "-o", str(tmp_path / "copy.db"))
    assert (tmp_path / "copy.json").exists()


@pytest.mark.parametrize("args", [("log", "add", "--minutes", "5"), ("plan", "add", "X", "--every", "daily"),
                                  ("import", "json", "EXPORT")])
def test_writes_to_a_read_only_database_say_why(cli, read_only, tmp_path, args):
    export = tmp_path / "e.json"
    export.write_text(json.dumps({"format": "practiceplan.export", "formatVersion": 1, "entries": [
        {"id": "entry_ro1", "timestamp": "2026-02-03T10:00:00Z", "duration": 20}]}))
    before = logical_digest(read_only)
    run = cli(*[str(export) if a == "EXPORT" else a for a in args], ok=False)
    assert run.code == 77 and "read-only" in run.stderr and "hint:" in run.stderr, run
    assert logical_digest(read_only) == before


def test_the_soundness_check_runs_before_the_first_write_of_a_connection_only(tmp_path):
    """A command (one connection) checks once before it writes; a long-running writer is not slowed down."""
    dbmod.connect(tmp_path / "a.db").close()  # created and migrated (its first write was checked)
    conn = dbmod.connect(tmp_path / "a.db")  # a new connection, as the next command opens
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    for _ in range(3):
        with dbmod.transaction(conn, tmp_path / "a.db"):
            conn.execute("INSERT INTO meta (key, value) VALUES (?, 'x') ON CONFLICT(key) DO UPDATE SET value = 'y'",
                         ("probe",))
    conn.close()
    checks = [i for i, s in enumerate(statements) if "quick_check" in s]
    first_write = next(i for i, s in enumerate(statements) if s.startswith("INSERT"))
    assert len(checks) == 1 and checks[0] < first_write, statements


def test_a_full_disk_while_restoring_over_a_damaged_file_leaves_it_in_place(cli, home, backed_up, monkeypatch):
    """Restoring over a file SQLite cannot read copies the backup first, then moves the damaged file aside: a
    full disk during the copy changes nothing (it used to move the file aside first)."""
    db = home / "practiceplan.db"
    DAMAGE["text"](db)
    before = db.read_bytes()

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as m:
        m.setattr(os, "chmod", no_space)  # the step right after SQLite's copy into the temp file
        run = cli("restore", backed_up.name, ok=False)
    assert run.code == 75 and "the disk is full" in run.stderr, run
    assert db.read_bytes() == before
    assert sorted(p.name for p in home.iterdir() if ".restore.tmp" in p.name or ".damaged-" in p.name) == []
    cli("restore", backed_up.name)  # with space again, it works
