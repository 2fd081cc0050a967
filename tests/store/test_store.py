"""Storage rules: pragmas, migrations, BEGIN IMMEDIATE for every write, rollback on error."""

from __future__ import annotations

import sqlite3
from datetime import time

import pytest

from practiceplan.domain.plans import PlanInput
from practiceplan.errors import InvalidInputError
from practiceplan.services.session import Session
from practiceplan.settings import Settings
from practiceplan.store import db as dbmod
from practiceplan.store.schema import MIGRATION_NAMES, SCHEMA_VERSION


def test_connection_pragmas(tmp_path):
    conn = dbmod.connect(tmp_path / "a.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    names = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
    assert tuple(names) == MIGRATION_NAMES


def test_unknown_applied_migration_is_refused(tmp_path):
    path = tmp_path / "a.db"
    dbmod.connect(path).close()
    raw = sqlite3.connect(path)
    raw.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('practiceplan', 'm999_future', 'x')")
    raw.execute("PRAGMA user_version = 0")
    raw.commit()
    raw.close()
    with pytest.raises(InvalidInputError, match="m999_future"):
        dbmod.connect(path)


def test_not_a_database(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InvalidInputError, match="not a usable practiceplan database"):
        dbmod.connect(path)


def test_transaction_rolls_back_everything(tmp_path):
    conn = dbmod.connect(tmp_path / "a.db")
    with pytest.raises(RuntimeError):
        with dbmod.transaction(conn):
            conn.execute("INSERT INTO meta (key, value) VALUES ('a', '1')")
            raise RuntimeError("boom")
    assert conn.execute("SELECT count(*) FROM meta").fetchone()[0] == 0
    assert not conn.in_transaction


def test_every_write_runs_inside_begin_immediate(tmp_path):
    """The static guard of reliability-plan T2.E: no INSERT/UPDATE/DELETE outside BEGIN IMMEDIATE."""
    env = {"PRACTICEPLAN_HOME": str(tmp_path), "PRACTICEPLAN_TZ": "Europe/Berlin", "PRACTICEPLAN_NOW": "2026-03-02T09:00:00Z"}
    planner = Session(Settings(env=env))
    statements: list[str] = []
    planner.store.conn.set_trace_callback(statements.append)
    plan, _ = planner.plans.add(PlanInput(title="Scales", every="daily", at=time(18, 0)))
    occ = planner.store.occurrences(plan_id=plan["id"])[0]
    planner.occurrences.checkin(occ["id"], minutes=10)
    planner.occurrences.uncheck(occ["id"], None)
    planner.logbook.add({"timestamp": "2026-03-01T10:00:00Z", "duration": 5})
    planner.plans.edit(plan["id"], PlanInput(at=time(7, 0)))
    planner.plans.set_status(plan["id"], "archived")
    planner.plans.delete(plan["id"])
    planner.store.conn.set_trace_callback(None)
    in_txn = False
    writes = 0
    for sql in statements:
        head = sql.strip().split(None, 1)[0].upper()
        if head == "BEGIN":
            assert sql.strip().upper() == "BEGIN IMMEDIATE", sql
            in_txn = True
        elif head in ("COMMIT", "ROLLBACK"):
            in_txn = False
        elif head in ("INSERT", "UPDATE", "DELETE", "REPLACE"):
            assert in_txn, f"write outside BEGIN IMMEDIATE: {sql[:80]}"
            writes += 1
    assert writes > 100
    planner.close()


def test_schema_1_database_migrates_and_fills_entry_durations(tmp_path):
    from sqlite_utils import Database

    from practiceplan.store import migrations

    path = tmp_path / "old.db"
    raw = sqlite3.connect(path, isolation_level=None)
    migrations.migrations.apply(Database(raw), stop_before=MIGRATION_NAMES[1])
    raw.execute("PRAGMA user_version = 1")
    raw.execute(
        "INSERT INTO logbook_entries (id, ts, doc) VALUES ('entry_a', 0, "
        "'{\"id\": \"entry_a\", \"timestamp\": \"1970-01-01T00:00:00.000Z\", \"duration\": 42}')"
    )
    raw.close()
    conn = dbmod.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT duration FROM logbook_entries WHERE id = 'entry_a'").fetchone()[0] == 42
    applied = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
    assert tuple(applied) == MIGRATION_NAMES


def test_many_processes_switching_a_rollback_journal_database_to_wal(tmp_path):
    """Changing the journal mode ignores the busy handler; connect() must retry instead of failing."""
    import subprocess
    import sys

    path = tmp_path / "x.db"
    dbmod.connect(path).close()
    go = tmp_path / "go"
    driver = (
        "import os, sys, time\n"
        "from practiceplan.store import db\n"
        "while not os.path.exists(sys.argv[2]): time.sleep(0.0005)\n"
        "db.connect(sys.argv[1]).close()\n"
    )
    for _round in range(15):
        raw = sqlite3.connect(path)
        raw.execute("PRAGMA journal_mode = DELETE")
        raw.close()
        go.unlink(missing_ok=True)
        procs = [subprocess.Popen([sys.executable, "-c", driver, str(path), str(go)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(8)]
        import time as _time

        _time.sleep(0.6)  # let every interpreter start and spin on the barrier
        go.touch()
        results = [(p.wait(timeout=60), p.stderr.read()) for p in procs]
        assert all(code == 0 for code, _ in results), [err for code, err in results if code][:1]
        check = sqlite3.connect(path)
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        check.close()


def test_logbook_revision_bumps_on_every_change_and_the_streak_hint_follows(tmp_path):
    """The streak hint is written by writes that change the logbook, read while current, and ignored (the
    streak counted from the rollup) once the logbook changes without it or in another zone; reads never write."""
    from practiceplan.services.insights import for_today
    from practiceplan.store import insights as queries

    env = {"PRACTICEPLAN_HOME": str(tmp_path), "PRACTICEPLAN_TZ": "Europe/Berlin", "PRACTICEPLAN_NOW": "2026-03-02T09:00:00Z"}
    planner = Session(Settings(env=env))
    conn = planner.store.conn

    def streak(session: Session = planner) -> int:
        before = session.store.conn.total_changes
        value = for_today(session).current_practice_streak()
        assert session.store.conn.total_changes == before  # a read writes nothing
        return value

    assert planner.store.logbook_revision() == 0
    first = planner.logbook.add({"timestamp": "2026-03-02T08:00:00Z", "duration": 5})
    planner.logbook.add({"timestamp": "2026-03-01T08:00:00Z", "duration": 5})
    assert planner.store.logbook_revision() == 2
    assert queries.streak_hint(conn) == {"zone": "Europe/Berlin", "rev": 2, "last": 20514, "run": 2}
    assert streak() == 2
    forged = dict(queries.streak_hint(conn), run=99)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'hint:practiceStreak'", (__import__("json").dumps(forged),))
    # a forged hint is returned while it is current...
    assert streak() == 99
    elsewhere = Session(Settings(env={**env, "PRACTICEPLAN_TZ": "Asia/Kathmandu"}))
    assert streak(elsewhere) == 2  # ...but not in another zone (counted from the rollup)
    elsewhere.close()
    planner.logbook.delete(first["id"])  # ...and replaced once the logbook changes (a trigger bumps the revision)
    assert planner.store.logbook_revision() == 3
    assert streak() == 1  # only yesterday's entry is left
    conn.execute("DELETE FROM logbook_entries")  # even raw SQL bumps it (and keeps the rollup in step)
    assert planner.store.logbook_revision() > 3
    assert streak() == 0
    assert queries.rollup_mismatches(conn) == {"logbook_hours": 0, "logbook_quarters": 0}
    planner.close()
