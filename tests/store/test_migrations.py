"""Saved databases of every released schema migrate to head with their rows and content preserved
(reliability-plan.md T6), the automatic pre-migration backup restores correctly, and 8 processes opening an
old database at once migrate it exactly once (T2-D).

The fixtures live in tests/store/fixtures (``schema-<N>.db``, made by tests/store/make_fixtures.py with the
release's own code). The subprocess tests register one extra, test-only migration through
tests/store/migrate_driver.py, so there is always something pending whatever the real head is.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from practiceplan.errors import InvalidInputError
from practiceplan.store import backup as store_backup
from practiceplan.store import db as dbmod
from practiceplan.store import schema
from tests.store.helpers import (
    DRIVER,
    EXTRA_MIGRATION,
    FIXTURES,
    connect,
    content_digest,
    copy_fixture,
    counts,
    env_for,
    fixture_paths,
    integrity,
    table_columns,
)

FIXTURE_LIST = fixture_paths()


def test_a_fixture_exists_for_every_released_schema():
    # Schema 1 is the released one; each later release adds its own fixture (make_fixtures.py).
    versions = [int(p.stem.split("-")[1]) for p in FIXTURE_LIST]
    assert versions[:1] == [1] and versions == sorted(set(versions))
    for path in FIXTURE_LIST:
        info = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        conn = connect(path)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == info["schemaVersion"]
        assert counts(conn) == info["rowCounts"]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
        conn.close()


def test_schema_1_fixture_is_dirty_on_purpose():
    conn = connect(FIXTURES / "schema-1.db")
    docs = {t: [json.loads(r[0]) for r in conn.execute(f"SELECT doc FROM {t}")]
            for t in ("practice_plans", "plan_occurrences", "logbook_entries")}
    assert any(p.get("deletedAt") for p in docs["practice_plans"])
    assert any(e.get("deletedAt") for e in docs["logbook_entries"])
    assert {o.get("status") for o in docs["plan_occurrences"]} >= {"completed", "skipped", "scheduled"}
    assert any((o.get("metrics") or {}).get("originalStart") for o in docs["plan_occurrences"])
    assert max(len(p["title"]) for p in docs["practice_plans"]) == 200
    assert max(len(e.get("notes") or "") for e in docs["logbook_entries"]) == 20000
    assert any("futureField" in e for e in docs["logbook_entries"])
    assert any("\U0001d11e" in (e.get("notes") or "") for e in docs["logbook_entries"])  # astral plane
    outbox = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
    entities = sum(len(v) for v in docs.values()) + 1
    assert 0 < outbox < entities  # pending rows, and some already acknowledged
    conn.close()


@pytest.mark.parametrize("fixture", FIXTURE_LIST, ids=lambda p: p.stem)
def test_fixture_migrates_to_head_preserving_rows_and_content(fixture, tmp_path, cli):
    path = copy_fixture(fixture, tmp_path / "home")
    raw = connect(path)
    layout = table_columns(raw)
    before_digest = content_digest(raw, layout, skip=("_sqlite_migrations",))
    before_counts = counts(raw)
    before_applied = raw.execute("SELECT name, applied_at FROM _sqlite_migrations ORDER BY id").fetchall()
    old_version = raw.execute("PRAGMA user_version").fetchone()[0]
    raw.close()

    conn = dbmod.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    assert integrity(conn) == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    after_counts = counts(conn)
    for table, n in before_counts.items():
        if table != "_sqlite_migrations":
            assert after_counts[table] == n, table
    applied = conn.execute("SELECT name, applied_at FROM _sqlite_migrations ORDER BY id").fetchall()
    assert applied[: len(before_applied)] == before_applied
    assert tuple(a[0] for a in applied) == schema.MIGRATION_NAMES
    assert content_digest(conn, layout, skip=("_sqlite_migrations",)) == before_digest
    conn.close()

    backups = store_backup.generations(path.parent / "backups", "practiceplan")
    if old_version < schema.SCHEMA_VERSION:
        # The automatic backup holds exactly the pre-migration database.
        assert len(backups) == 1 and backups[0].manifest["reason"] == f"pre-migration from schema {old_version}"
        assert backups[0].manifest["schemaVersion"] == old_version
        store_backup.verify_backup(backups[0].path)
        copy = connect(backups[0].path)
        assert content_digest(copy, layout, skip=("_sqlite_migrations",)) == before_digest
        copy.close()
    else:
        assert backups == []

    # Running the migration again is a no-op: no new backup, nothing changes.
    again = dbmod.connect(path)
    assert counts(again) == after_counts
    again.close()
    assert len(store_backup.generations(path.parent / "backups", "practiceplan")) == len(backups)

    # Smoke: the usual commands work on the migrated data.
    assert len(cli("--db", str(path), "plan", "list", "--json").json["plans"]) >= 1
    assert len(cli("--db", str(path), "log", "list", "--limit", "0", "--json").json["entries"]) == (
        after_counts["logbook_entries"] - 1  # one entry is a tombstone
    )
    exported = json.loads(cli("--db", str(path), "export", "json").stdout)
    assert len(exported["entries"]) == after_counts["logbook_entries"]


@pytest.mark.parametrize("fixture", FIXTURE_LIST, ids=lambda p: p.stem)
def test_migration_builds_the_logbook_rollup_from_existing_entries(fixture, tmp_path):
    """m006 fills the per-hour / per-quarter-hour rollup from the entries already there (tombstones left out)."""
    from zoneinfo import ZoneInfo

    from practiceplan.domain import insights as an
    from practiceplan.store import insights as queries

    path = copy_fixture(fixture, tmp_path / "home")
    raw = connect(path)
    live = raw.execute("SELECT count(*), sum(json_extract(doc, '$.duration')) FROM logbook_entries "
                       "WHERE deleted_at IS NULL").fetchone()
    raw.close()
    assert live[0] > 0
    conn = dbmod.connect(path)
    assert queries.rollup_mismatches(conn) == {"logbook_hours": 0, "logbook_quarters": 0}
    for table in ("logbook_hours", "logbook_quarters"):
        assert conn.execute(f"SELECT sum(entries), sum(minutes) FROM {table}").fetchone() == live
    lo, hi = queries.entry_range(conn)
    for zone in ("Europe/Berlin", "Asia/Kathmandu"):
        segments = an.DayClock(ZoneInfo(zone), lo, hi).segments()
        assert queries.day_totals(conn, segments) == queries.entry_days(conn, segments)
    conn.close()


def test_pre_migration_backup_restores_the_old_database(tmp_path, cli):
    fixture = FIXTURE_LIST[0]
    home = tmp_path / "home"
    path = copy_fixture(fixture, home)
    raw = connect(path)
    layout = table_columns(raw)
    original = content_digest(raw, layout)
    raw.close()
    result = subprocess.run([sys.executable, str(DRIVER), "--", "log", "list", "--json"],
                            env=env_for(home), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    migrated = connect(path)
    assert migrated.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION + 1
    migrated.close()
    (gen,) = store_backup.generations(home / "backups", "practiceplan")
    restored = cli("restore", str(gen.path), "--json").json
    assert restored["schemaVersion"] == 1 and restored["generation"]
    back = connect(path)
    assert back.execute("PRAGMA user_version").fetchone()[0] == 1
    assert content_digest(back, layout) == original
    back.close()
    # ... and the next open (this code's head) migrates it again, taking another backup first.
    cli("log", "list")
    again = connect(path)
    assert again.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    again.close()
    reasons = sorted(g.manifest["reason"] for g in store_backup.generations(home / "backups", "practiceplan"))
    assert reasons == ["pre-migration from schema 1", "pre-migration from schema 1", "pre-restore"]


def test_a_failing_pre_migration_backup_stops_the_migration(tmp_path, cli):
    path = copy_fixture(FIXTURE_LIST[0], tmp_path / "home")
    (tmp_path / "home" / "backups").write_text("not a folder")  # the backup cannot be written
    with pytest.raises(InvalidInputError, match="cannot write the backup"):
        dbmod.connect(path)
    result = cli("log", "list", ok=False)
    assert result.code == 65 and "cannot write the backup" in result.stderr and "Traceback" not in result.stderr
    raw = connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 1
    assert [r[0] for r in raw.execute("SELECT name FROM _sqlite_migrations")] == ["m001_initial"]
    raw.close()


@pytest.mark.slow
def test_eight_processes_open_an_old_database_and_migrate_it_exactly_once(tmp_path):
    rounds = 4
    for round_no in range(rounds):
        home = tmp_path / f"round{round_no}"
        path = copy_fixture(FIXTURE_LIST[0], home)
        raw = connect(path)
        entries = raw.execute("SELECT count(*) FROM logbook_entries").fetchone()[0]
        raw.close()
        procs = [
            subprocess.Popen([sys.executable, str(DRIVER), "--wait", "--", "log", "list", "--limit", "0", "--json"],
                             env=env_for(home), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
            for _ in range(8)
        ]
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:  # release them together
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=60) for proc in procs]
        for proc, (out, err) in zip(procs, outputs):
            assert proc.returncode == 0, err
            assert "Traceback" not in err
            assert len(json.loads(out)["entries"]) == entries - 1
        conn = connect(path)
        names = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
        assert names == [*schema.MIGRATION_NAMES, EXTRA_MIGRATION]  # each exactly once
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(names)
        assert conn.execute("SELECT count(*) FROM test_probe").fetchone()[0] == entries
        assert integrity(conn) == "ok"
        conn.close()
        gens = store_backup.generations(home / "backups", "practiceplan")
        assert len(gens) == 1 and gens[0].manifest["reason"] == "pre-migration from schema 1"


def test_database_newer_than_the_code_is_refused_without_a_backup(tmp_path):
    path = copy_fixture(FIXTURE_LIST[0], tmp_path / "home")
    raw = connect(path)
    raw.execute("PRAGMA user_version = 999")
    raw.close()
    before = path.read_bytes()
    with pytest.raises(Exception, match="newer practiceplan"):
        dbmod.connect(path)
    assert path.read_bytes() == before
    assert not (tmp_path / "home" / "backups").exists()


def test_locked_database_is_busy_not_unknown_version(tmp_path, monkeypatch):
    """zsh-histdb#64: a database locked by a migrator must never read as "version unknown"."""
    from practiceplan.errors import BusyError

    path = copy_fixture(FIXTURE_LIST[0], tmp_path / "home")
    dbmod.connect(path).close()  # migrate to head first
    monkeypatch.setattr("practiceplan.store.locking.BUSY_TIMEOUT_MS", 150)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(BusyError):
            dbmod.connect(path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
