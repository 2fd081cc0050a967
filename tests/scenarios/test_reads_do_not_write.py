"""Reads do not write (ARCHITECTURE.md): after one warm-up run each (which may extend the horizon or record a new
adherence dip, both real changes), running every read command again leaves the database file and its WAL
byte-for-byte unchanged, in process (CliRunner) and as a real `python -m practiceplan` process."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

READ_NOW = "2026-03-05T09:00:00Z"  # Thursday 10:00 in Berlin
READS = [
    ["today"], ["today", "--json"], ["next"], ["stats"], ["stats", "--json"], ["forecast"], ["forecast", "--json"],
    ["calendar"], ["occurrences"], ["log", "list"], ["events"], ["plan", "list"],
]
RUNS = 20
PROCESS_READS = [["today"], ["stats", "--json"], ["forecast"], ["calendar"], ["occurrences"], ["log", "list"]]


@pytest.fixture
def practice_history(cli, set_now):
    """Two plans from 16 Feb 2026: check-ins, skips, free practice and missed sessions up to Wednesday 4 March,
    read on Thursday 5 March, when this week's adherence dips below the alert."""
    daily = cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--minutes", "30",
                "--start", "2026-02-16", "--json").json["plan"]
    cli("plan", "add", "Bach", "--every", "weekly", "--on", "mo,we,fr", "--at", "07:30", "--minutes", "20",
        "--start", "2026-02-16", "--json")
    occs = cli("occurrences", "--json", "--from", "2026-02-16", "--to", "2026-03-04").json["occurrences"]
    for index, occ in enumerate(occs):
        if index % 4 == 3:
            continue  # left open: missed
        set_now(occ["scheduledStart"].replace(".000Z", "Z"))
        if index % 7 == 5:
            cli("skip", occ["id"], "--reason", "ill")
        else:
            cli("checkin", occ["id"], "--minutes", str(15 + index))
    for day in range(16, 29, 3):
        cli("log", "add", "--minutes", "25", "--when", f"2026-02-{day}T12:00")
    set_now(READ_NOW)
    cli("config", "set", "adherence_alert", "95")  # this week's adherence is below: a dip to record once
    return daily


def _checkpoint(db: Path) -> tuple[bytes, bytes]:
    conn = sqlite3.connect(db)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
    finally:
        conn.close()
    wal = Path(f"{db}-wal")
    return db.read_bytes(), wal.read_bytes() if wal.exists() else b""


def test_read_commands_leave_the_database_unchanged(cli, practice_history, isolated_home):
    db = isolated_home / "practiceplan.db"
    plan_show = ["plan", "show", practice_history["id"]]
    for args in [*READS, plan_show]:  # warm-up: the horizon and this week's dip may be written once
        cli(*args)
    events = cli("events", "--json").json["events"]
    assert any(e["name"] == "adherence.dip" for e in events)  # recorded once, by the first read that saw it
    before_main, before_wal = _checkpoint(db)
    assert before_wal == b""

    for _ in range(RUNS):
        for args in [*READS, plan_show]:
            cli(*args)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                                     os.environ.get("PYTHONPATH")]))}
    for _ in range(2):
        for args in PROCESS_READS:
            done = subprocess.run([sys.executable, "-m", "practiceplan", *args], env=env, capture_output=True,
                                  text=True, timeout=120, stdin=subprocess.DEVNULL)
            assert done.returncode == 0, done.stderr

    wal = Path(f"{db}-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # nothing was even appended to the log
    after_main, after_wal = _checkpoint(db)
    assert after_wal == before_wal
    assert after_main == before_main
    assert cli("events", "--json").json["events"] == events
