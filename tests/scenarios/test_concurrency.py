"""Several processes on one database: WAL + ``BEGIN IMMEDIATE`` + busy timeout, no lost or doubled writes.

* Two processes writing at once: a check-in loop and a log loop (2,000 transactions each, Session API,
  started on the same signal) must both finish without a single "database is locked", and the database must
  hold exactly what they wrote, with exactly one outbox row per changed entity.
* A writer that cannot get the lock within the busy timeout exits 75 (one error line, one hint line, no
  traceback), writes nothing, and succeeds once the lock is released.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta, time as dtime
from pathlib import Path

import pytest

from tests.conftest import FIXED_NOW, ZONE

WORKERS = Path(__file__).with_name("workers.py")
N_CHECKINS = 2000
N_LOGS = 2000
HORIZON_DAYS = 2100


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRACTICEPLAN_")}
    env.update(
        PRACTICEPLAN_HOME=str(home),
        PRACTICEPLAN_NOW=FIXED_NOW,
        PRACTICEPLAN_TZ=ZONE,
        NO_COLOR="1",
    )
    return env


def _db(home: Path) -> Path:
    return home / "practiceplan.db"


def _make_plan(home: Path) -> tuple[dict, int]:
    from practiceplan.domain.plans import PlanInput
    from practiceplan.services.session import Session
    from practiceplan.settings import Settings

    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(f"horizon_days = {HORIZON_DAYS}\n")
    planner = Session(Settings(env=_env(home)))
    try:
        plan, created = planner.plans.add(
            PlanInput(title="Scales", every="daily", start=date(2026, 1, 1), at=dtime(18, 0), minutes=20)
        )
    finally:
        planner.close()
    return plan, created


@pytest.mark.slow
def test_two_processes_writing_at_once(tmp_path):
    home = tmp_path / "home"
    plan, n_created = _make_plan(home)
    db = _db(home)
    conn = sqlite3.connect(db)
    occurrences = [r[0] for r in conn.execute(
        "SELECT id FROM plan_occurrences WHERE plan_id = ? AND deleted_at IS NULL ORDER BY scheduled_start",
        (plan["id"],),
    )]
    conn.close()
    # One a day at 18:00 Berlin from 2026-01-01 to the horizon (now + 2100 days, 09:00Z: that day's 18:00 is
    # past it): far more than the 2,000 the check-in loop needs.
    horizon_day = date.fromisoformat(FIXED_NOW[:10]) + timedelta(days=HORIZON_DAYS)
    assert n_created == (horizon_day - date(2026, 1, 1)).days == 2160
    assert len(occurrences) == n_created
    assert n_created >= N_CHECKINS + 100, n_created
    targets = occurrences[:N_CHECKINS]
    ids_file = tmp_path / "occurrences.json"
    ids_file.write_text(json.dumps(targets))

    env = _env(home)
    results = {"checkin": tmp_path / "checkin.json", "log": tmp_path / "log.json"}
    commands = {
        "checkin": [sys.executable, str(WORKERS), "checkin", str(ids_file), str(results["checkin"])],
        "log": [sys.executable, str(WORKERS), "log", str(N_LOGS), str(results["log"])],
    }
    procs = {
        name: subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=tmp_path)
        for name, cmd in commands.items()
    }
    try:
        for name, proc in procs.items():
            assert proc.stdout.readline().strip() == "ready", (name, proc.stderr.read())
        for proc in procs.values():  # the start signal, as close together as we can
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = {name: proc.communicate(timeout=300) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    reports = {}
    for name, proc in procs.items():
        stdout, stderr = outputs[name]
        assert "locked" not in stderr.lower() and "Traceback" not in stderr, (name, stderr[-3000:])
        report = json.loads(results[name].read_text())
        reports[name] = report
        assert report["errors"] == [], (name, report["errors"][:5], len(report["errors"]))
        assert proc.returncode == 0, (name, proc.returncode, stderr[-3000:])
    for name in ("checkin", "log"):
        text = json.dumps(reports[name]["errors"]).lower()
        assert "database is locked" not in text and "operationalerror" not in text and "busyerror" not in text

    # The two loops really ran at the same time (started on one signal, their run times overlap).
    a, b = reports["checkin"], reports["log"]
    overlap = min(a["finished"], b["finished"]) - max(a["started"], b["started"])
    timing = {k: (r["started"], r["finished"], r["max_latency"]) for k, r in reports.items()}
    assert overlap > 0.5 * min(a["finished"] - a["started"], b["finished"] - b["started"]), timing

    checkin_created = reports["checkin"]["created"]
    log_created = reports["log"]["created"]
    assert len(checkin_created) == N_CHECKINS and len(log_created) == N_LOGS
    assert [c["occurrence"] for c in checkin_created] == targets
    plan_entry_ids = [c["entry"] for c in checkin_created]
    manual_entry_ids = [c["entry"] for c in log_created]
    all_ids = plan_entry_ids + manual_entry_ids
    assert len(set(all_ids)) == N_CHECKINS + N_LOGS  # no duplicate ids handed out

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        entries = {r[0]: json.loads(r[1]) for r in conn.execute("SELECT id, doc FROM logbook_entries")}
        assert len(entries) == N_CHECKINS + N_LOGS
        assert set(entries) == set(all_ids)
        assert conn.execute("SELECT count(*) FROM logbook_entries WHERE deleted_at IS NULL").fetchone()[0] == 4000
        sources = Counter(e["metadata"]["source"] for e in entries.values())
        assert sources == {"practice_plan": N_CHECKINS, "manual": N_LOGS}
        assert {i for i, e in entries.items() if e["metadata"]["source"] == "practice_plan"} == set(plan_entry_ids)
        assert sorted(int(entries[i]["notes"].split()[1]) for i in manual_entry_ids) == list(range(N_LOGS))
        for c in log_created:
            assert entries[c["entry"]]["duration"] == c["minutes"]

        occ_rows = conn.execute(
            "SELECT id, status, log_entry_id, doc FROM plan_occurrences WHERE plan_id = ?", (plan["id"],)
        ).fetchall()
        assert len(occ_rows) == n_created
        completed = {r[0]: (r[2], json.loads(r[3])) for r in occ_rows if r[1] == "completed"}
        assert len(completed) == N_CHECKINS
        assert set(completed) == set(targets)
        assert {r[1] for r in occ_rows if r[0] not in completed} == {"scheduled"}
        linked = [link for link, _ in completed.values()]
        assert len(set(linked)) == N_CHECKINS  # each linked to a distinct entry
        by_occ = {c["occurrence"]: c for c in checkin_created}
        for occ_id, (link, doc) in completed.items():
            assert doc["status"] == "completed"
            assert doc["logEntryId"] == link == by_occ[occ_id]["entry"]
            entry = entries[link]  # exists
            assert entry["metadata"]["planOccurrenceId"] == occ_id
            assert entry["metadata"]["planId"] == plan["id"]
            assert entry["duration"] == doc["metrics"]["actualDuration"] == by_occ[occ_id]["minutes"]
            assert [h["action"] for h in doc["metrics"]["history"]] == ["checkin"]
        column_links = dict(conn.execute("SELECT id, plan_occurrence_id FROM logbook_entries"))
        assert {column_links[e]: e for e in plan_entry_ids} == {o: link for o, (link, _) in completed.items()}
        assert all(column_links[e] is None for e in manual_entry_ids)

        # Exactly one outbox row per changed entity: the plan, every occurrence created with it (the 2,000
        # checked-in ones among them, changed a second time), and the 4,000 new entries.
        outbox = conn.execute("SELECT entity_type, entity_id, op, rev, seq FROM outbox").fetchall()
        expected_rows = 1 + n_created + N_CHECKINS + N_LOGS
        assert len(outbox) == expected_rows
        keys = Counter((r[0], r[1]) for r in outbox)
        assert max(keys.values()) == 1
        expected_keys = (
            {("practice_plan", plan["id"])}
            | {("plan_occurrence", r[0]) for r in occ_rows}
            | {("logbook_entry", e) for e in all_ids}
        )
        assert set(keys) == expected_keys
        revs = {(r[0], r[1]): r[3] for r in outbox}
        assert {r[2] for r in outbox} == {"upsert"}
        assert revs[("practice_plan", plan["id"])] == 1
        assert all(revs[("plan_occurrence", o)] == (2 if o in completed else 1) for o, *_ in occ_rows)
        assert all(revs[("logbook_entry", e)] == 1 for e in all_ids)
        seqs = [r[4] for r in outbox]
        assert len(set(seqs)) == len(seqs)  # a total order of changes for sync
    finally:
        conn.close()


def _held_lock(db: Path) -> sqlite3.Connection:
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def _counts(db: Path) -> tuple[int, int]:
    conn = sqlite3.connect(db)
    try:
        return (
            conn.execute("SELECT count(*) FROM logbook_entries").fetchone()[0],
            conn.execute("SELECT count(*) FROM outbox").fetchone()[0],
        )
    finally:
        conn.close()


@pytest.mark.slow
def test_busy_database_exits_75_after_the_busy_timeout_and_writes_nothing(tmp_path):
    home = tmp_path / "home"
    env = _env(home)
    cmd = [sys.executable, "-m", "practiceplan", "log", "add", "--minutes", "5"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    db = _db(home)
    before = _counts(db)
    assert before == (1, 1)

    holder = _held_lock(db)
    try:
        started = time.monotonic()
        busy = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        elapsed = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert busy.returncode == 75, (busy.returncode, busy.stdout, busy.stderr)
    assert 4.5 <= elapsed <= 7.0, elapsed
    lines = busy.stderr.splitlines()
    assert len(lines) == 2, busy.stderr
    assert lines[0] == f"practiceplan: error: the database {db} is busy: another practiceplan process holds it"
    assert lines[1] == "hint: try again in a moment"
    assert "Traceback" not in busy.stderr
    assert busy.stdout == ""
    assert _counts(db) == before

    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""
    assert _counts(db) == (2, 2)
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
