"""`backup` and `restore` (reliability-plan.md T7): online, verified, generations, no stale WAL."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from practiceplan.domain.models import normalize_entry
from practiceplan.errors import InvalidInputError
from practiceplan.store import backup as store_backup
from practiceplan.store import db as dbmod
from practiceplan.store import schema
from practiceplan.store.repo import Store
from tests.store.helpers import FIXTURES, copy_fixture, entry, logical_digest
from tests.services.test_data_export_import import _planner, databases, seed

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _entries(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT id FROM logbook_entries WHERE deleted_at IS NULL ORDER BY id")]
    finally:
        conn.close()


def test_backup_writes_a_verified_generation_with_a_manifest(cli, isolated_home):
    cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00")
    cli("log", "add", "--minutes", "30", "--notes", "ünïcödé 🎹")
    result = cli("backup", "--json").json
    path = Path(result["path"])
    assert path.parent == isolated_home / "backups"
    assert path.name == f"practiceplan-20260302T090000.000Z-schema{schema.SCHEMA_VERSION}.db"
    manifest = json.loads((path.with_suffix(".json")).read_text())
    from practiceplan import __version__

    assert manifest["format"] == "practiceplan.backup" and manifest["reason"] == "manual"
    assert manifest["schemaVersion"] == schema.SCHEMA_VERSION and manifest["appVersion"] == __version__
    assert manifest["sha256"] == _sha(path) and manifest["bytes"] == path.stat().st_size
    assert manifest["rowCounts"]["logbook_entries"] == 1 and manifest["rowCounts"]["practice_plans"] == 1
    assert manifest["created"] == "2026-03-02T09:00:00.000Z"
    assert path.stat().st_mode & 0o077 == 0
    # a self-contained file (rollback journal): no -wal to pair with it
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()
    assert not Path(f"{path}-wal").exists()
    assert logical_digest(path) == logical_digest(isolated_home / "practiceplan.db")
    assert store_backup.verify_backup(path)["rowCounts"] == manifest["rowCounts"]
    assert sorted(p.name for p in path.parent.iterdir()) == [".lock", path.name, path.with_suffix(".json").name]
    listed = cli("backup", "--list", "--json").json["backups"]
    assert [b["path"] for b in listed] == [str(path)]
    assert path.name in cli("backup", "--list").stdout


def test_generations_are_pruned_to_backup_keep_and_never_overwritten(cli, isolated_home, set_now):
    cli("log", "add", "--minutes", "5")
    cli("config", "set", "backup_keep", "3")
    paths = []
    for minute in range(5):
        set_now(f"2026-03-02T09:0{minute}:00Z")
        paths.append(cli("backup", "--json").json["path"])
    left = [b["path"] for b in cli("backup", "--list", "--json").json["backups"]]
    assert left == list(reversed(paths[2:]))  # newest first, the two oldest removed
    for gone in paths[:2]:
        assert not Path(gone).exists() and not Path(gone).with_suffix(".json").exists()
    # Same clock reading twice: a second name, never an overwrite.
    again = cli("backup", "--json").json
    assert again["path"].endswith("20260302T090400.000Z-2-schema%d.db" % schema.SCHEMA_VERSION)
    assert Path(paths[-1]).exists()
    # The backup just written survives even when a newer-looking generation exists (clock went back).
    set_now("2026-03-01T00:00:00Z")
    cli("config", "set", "backup_keep", "1")
    old_clock = cli("backup", "--json").json
    assert Path(old_clock["path"]).exists()
    assert len(cli("backup", "--list", "--json").json["backups"]) == 2
    assert cli("config", "set", "backup_keep", "0", ok=False).code == 65


def test_backup_to_a_file(cli, tmp_path, isolated_home):
    cli("log", "add", "--minutes", "5")
    target = tmp_path / "mine.db"
    result = cli("backup", "-o", str(target), "--json").json
    assert result["path"] == str(target) and (tmp_path / "mine.json").exists()
    before = target.read_bytes()
    cli("log", "add", "--minutes", "6")
    refused = cli("backup", "-o", str(target), ok=False)
    assert refused.code == 65 and "already exists" in refused.stderr and target.read_bytes() == before
    cli("backup", "-o", str(target), "--force")
    assert store_backup.verify_backup(target)["rowCounts"]["logbook_entries"] == 2
    other = tmp_path / "copy.bak"
    cli("backup", "-o", str(other))
    assert (tmp_path / "copy.bak.json").exists()
    assert not (isolated_home / "backups").exists() or not list((isolated_home / "backups").glob("*.db"))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_backup_without_a_database_is_not_found(cli, isolated_home):
    result = cli("backup", ok=False)
    assert result.code == 3 and "nothing to back up" in result.stderr
    assert not (isolated_home / "practiceplan.db").exists()


def test_leftovers_of_killed_backups_are_removed_by_the_next_one(cli, isolated_home):
    cli("log", "add", "--minutes", "5")
    folder = isolated_home / "backups"
    folder.mkdir()
    stray = [folder / ".practiceplan.4242.backup.tmp", folder / ".practiceplan.4242.backup.tmp-journal",
             folder / "practiceplan-20260301T000000.000Z-schema1.db"]  # a generation without its manifest
    for path in stray:
        path.write_bytes(b"partial")
    cli("backup")
    assert not any(p.exists() for p in stray)
    assert len(cli("backup", "--list", "--json").json["backups"]) == 1


def test_concurrent_backups_wait_for_the_folder_lock(cli, isolated_home, monkeypatch):
    import fcntl

    cli("log", "add", "--minutes", "5")
    folder = isolated_home / "backups"
    folder.mkdir()
    monkeypatch.setattr("practiceplan.store.locking.BUSY_TIMEOUT_MS", 100)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        result = cli("backup", ok=False)
    finally:
        os.close(fd)
    assert result.code == 75 and "writing a backup" in result.stderr
    cli("backup")


def _backup_of(cli, isolated_home, minutes: str) -> Path:
    cli("log", "add", "--minutes", minutes)
    return Path(cli("backup", "--json").json["path"])


def test_restore_replaces_the_database_and_keeps_the_current_one(cli, isolated_home, set_now):
    good = _backup_of(cli, isolated_home, "5")
    expected = logical_digest(good)
    live = isolated_home / "practiceplan.db"
    cli("log", "add", "--minutes", "7")
    cli("log", "add", "--minutes", "8")
    before = logical_digest(live)
    set_now("2026-03-02T10:00:00Z")
    result = cli("restore", good.name, "--json").json  # a generation's name is enough
    assert result["restored"] == str(good) and result["schemaVersion"] == schema.SCHEMA_VERSION
    assert logical_digest(live) == expected
    assert len(cli("log", "list", "--json").json["entries"]) == 1
    generation = Path(result["generation"])
    assert json.loads(generation.with_suffix(".json").read_text())["reason"] == "pre-restore"
    assert logical_digest(generation) == before  # the replaced database, exactly
    store_backup.verify_backup(generation)
    # Restoring that generation brings the later entries back: nothing was lost.
    cli("restore", str(generation))
    assert len(cli("log", "list", "--json").json["entries"]) == 3
    text = cli("restore", str(good)).stdout
    assert text.startswith("Restored ") and "The previous database is kept as" in text


def test_restore_never_leaves_a_stale_wal(cli, isolated_home):
    good = _backup_of(cli, isolated_home, "5")
    live = isolated_home / "practiceplan.db"
    # Another process has the database open with a big, uncheckpointed WAL when the restore runs.
    other = sqlite3.connect(live, isolation_level=None)
    other.execute("PRAGMA wal_autocheckpoint = 0")
    with_writes = Store(other, live)
    with with_writes.write():
        docs = [normalize_entry(entry(i), NOW) for i in range(300)]
        with_writes.save_many("logbook_entry", docs, "2026-03-02T09:00:00.000Z")
    assert Path(f"{live}-wal").stat().st_size > 50_000
    cli("restore", str(good))
    assert other.execute("SELECT count(*) FROM logbook_entries").fetchone()[0] == 1  # sees the restored data
    assert other.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    other.close()
    fresh = sqlite3.connect(live)
    assert fresh.execute("SELECT count(*) FROM logbook_entries").fetchone()[0] == 1
    assert fresh.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    fresh.close()
    assert logical_digest(live) == logical_digest(good)


def _refused(cli, live: Path, *args: str, code: int = 65) -> str:
    before = live.read_bytes()
    gens = sorted(p.name for p in (live.parent / "backups").iterdir())
    result = cli("restore", *args, ok=False)
    assert result.code == code, result
    assert live.read_bytes() == before  # untouched
    assert sorted(p.name for p in (live.parent / "backups").iterdir()) == gens  # no generation taken
    assert "Traceback" not in result.stderr
    return result.stderr


def test_restore_verifies_before_touching_anything(cli, isolated_home, tmp_path):
    good = _backup_of(cli, isolated_home, "5")
    live = isolated_home / "practiceplan.db"
    cli("log", "add", "--minutes", "6")
    dbmod.connect(live).execute("PRAGMA wal_checkpoint(TRUNCATE)")

    damaged = tmp_path / "damaged.db"
    flipped = bytearray(good.read_bytes())
    flipped[-1] ^= 0x01  # one bit
    damaged.write_bytes(bytes(flipped))
    (tmp_path / "damaged.json").write_text(good.with_suffix(".json").read_text())
    assert "does not match its manifest" in _refused(cli, live, str(damaged))

    corrupt = tmp_path / "corrupt.db"  # a consistent manifest, but the pages are broken
    conn = sqlite3.connect(good)
    root, page = (conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'logbook_entries'").fetchone()[0],
                  conn.execute("PRAGMA page_size").fetchone()[0])
    conn.close()
    raw = bytearray(good.read_bytes())
    for offset in range((root - 1) * page, (root - 1) * page + 12):  # the table's b-tree page header
        raw[offset] = 0xFF
    corrupt.write_bytes(bytes(raw))
    manifest = json.loads(good.with_suffix(".json").read_text())
    (tmp_path / "corrupt.json").write_text(json.dumps({**manifest, "sha256": _sha(corrupt)}))
    message = _refused(cli, live, str(corrupt))
    assert "integrity" in message or "not a usable" in message

    bare = tmp_path / "bare.db"
    bare.write_bytes(good.read_bytes())
    assert "has no manifest" in _refused(cli, live, str(bare))

    miscounted = tmp_path / "miscounted.db"
    miscounted.write_bytes(good.read_bytes())
    (tmp_path / "miscounted.json").write_text(json.dumps({**manifest, "rowCounts": {"logbook_entries": 9}}))
    assert "row counts differ" in _refused(cli, live, str(miscounted))

    stranger = tmp_path / "stranger.db"
    conn = sqlite3.connect(stranger)
    conn.execute("CREATE TABLE x (a)")
    conn.commit()
    conn.close()
    assert "not a practiceplan database" in _refused(cli, live, str(stranger), "--force")

    newer = tmp_path / "newer.db"
    newer.write_bytes(good.read_bytes())
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 999")
    conn.commit()
    conn.close()
    assert "this version knows" in _refused(cli, live, str(newer), "--force")

    assert _refused(cli, live, str(tmp_path / "nothing.db"), code=3)
    assert "the live database itself" in _refused(cli, live, str(live), "--force")

    # --force restores a sound file without a manifest.
    cli("restore", str(bare), "--force")
    assert logical_digest(live) == logical_digest(good)


def test_restore_refuses_while_another_process_writes(cli, isolated_home, monkeypatch):
    good = _backup_of(cli, isolated_home, "5")
    live = isolated_home / "practiceplan.db"
    cli("log", "add", "--minutes", "6")
    monkeypatch.setattr("practiceplan.store.locking.BUSY_TIMEOUT_MS", 200)
    holder = sqlite3.connect(live, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        message = _refused(cli, live, str(good), code=75)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "in use by another practiceplan process" in message
    assert len(cli("log", "list", "--json").json["entries"]) == 2


def test_restore_of_an_older_schema_is_migrated_on_next_open(cli, isolated_home, tmp_path):
    old = copy_fixture(FIXTURES / "schema-1.db", tmp_path / "old")
    backup = tmp_path / "schema1-backup.db"
    store_backup.write_backup(old, now=NOW, dest=backup)  # reads it as it is: no migration
    assert store_backup.verify_backup(backup)["schemaVersion"] == 1
    cli("log", "add", "--minutes", "5")
    cli("restore", str(backup))
    live = isolated_home / "practiceplan.db"
    conn = sqlite3.connect(live)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()
    entries = cli("log", "list", "--limit", "0", "--json").json["entries"]  # opens, migrates
    assert len(entries) == 12
    conn = sqlite3.connect(live)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    conn.close()
    reasons = sorted(b["reason"] for b in cli("backup", "--list", "--json").json["backups"])
    assert reasons == ["pre-migration from schema 1", "pre-restore"]


def test_restore_over_a_damaged_database(cli, isolated_home):
    good = _backup_of(cli, isolated_home, "5")
    live = isolated_home / "practiceplan.db"
    dbmod.connect(live).execute("PRAGMA wal_checkpoint(TRUNCATE)")
    live.write_bytes(b"this is not a database at all" * 200)
    assert cli("log", "list", ok=False).code == 65
    result = cli("restore", str(good), "--json").json
    aside = Path(result["setAside"])
    assert aside.read_bytes().startswith(b"this is not a database") and result["generation"] is None
    assert logical_digest(live) == logical_digest(good)
    assert len(cli("log", "list", "--json").json["entries"]) == 1


def test_hundred_backup_restore_round_trips_with_a_concurrent_writer(tmp_path):
    """T7 bar (PR): 100 round trips while another connection keeps committing; 0 diffs."""
    home = tmp_path / "live"
    planner = _planner(home)
    planner.store  # noqa: B018 - create the database
    live = planner.settings.db_path
    planner.close()
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        store = Store(dbmod.connect(live), live)
        i = 0
        while not stop.is_set():
            with store.write():
                store.save("logbook_entry", normalize_entry(entry(i), NOW), "2026-03-02T09:00:00.000Z")
            written.append(i)
            i += 1
            stop.wait(0.005)  # a busy user, not a benchmark: keeps the database small
        store.close()

    thread = threading.Thread(target=writer)
    thread.start()
    sizes: list[int] = []
    try:
        seen = -1
        for n in range(100):
            backup = store_backup.write_backup(live, now=NOW, dest=tmp_path / f"b{n}.db")
            path = Path(backup["path"])
            ids = _entries(path)
            # A consistent snapshot: a prefix of the writer's sequence, each entry with its outbox row.
            assert ids == [f"entry_{i:05d}" for i in range(len(ids))]
            assert backup["rowCounts"]["outbox"] == len(ids)
            assert len(ids) >= seen
            seen = len(ids)
            sizes.append(seen)
            target = tmp_path / f"r{n}" / "practiceplan.db"
            store_backup.restore(target, path, now=NOW, keep=None)
            assert logical_digest(target) == logical_digest(path)
    finally:
        stop.set()
        thread.join()
    assert len(set(sizes)) >= 20 and sizes[0] < sizes[-1]  # the writer really ran during the backups


@given(databases())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_property_backup_restore_into_a_fresh_dir_is_identical(tmp_path_factory, db):
    base = tmp_path_factory.mktemp("br")
    source = _planner(base / "a")
    seed(source, db)
    live = source.settings.db_path
    source.close()
    backup = store_backup.write_backup(live, now=NOW, keep=5)
    target = base / "fresh" / "practiceplan.db"
    result = store_backup.restore(target, Path(backup["path"]), now=NOW, keep=5)
    assert result["generation"] is None  # nothing to keep in a fresh dir
    assert logical_digest(target) == logical_digest(live)


def test_verify_backup_of_junk_is_invalid_input(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"x" * 5000)
    with pytest.raises(InvalidInputError, match="is not a usable SQLite database"):
        store_backup.verify_backup(junk, require_manifest=False)
