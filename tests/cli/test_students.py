"""`practiceplan students` and the per-member section of `stats`, computed from `shared_sessions` and the sharing
list (meta `sync.sharing`) seeded straight into the database, as a sync with a sharing server leaves them.

The clock is Monday 2 March 2026, 10:00 in Berlin. "Scales" (mine, daily 18:00 Berlin = 17:00Z, created 1 January)
is shared with ana (view) and ben (comment); "Duet" belongs to cy, and I am an edit member. ana's sessions of
Scales: 21 Jan missed (outside the last 30 days), 23 Feb skipped, 24 Feb completed, 25 Feb missed, 26 Feb to
1 Mar completed, 2 Mar still open (18:00 today). ben shared nothing yet. cy completed one Duet session this
morning."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from practiceplan.settings import Settings
from tests.conftest import FIXED_NOW

ANA = [("2026-01-21", "scheduled"), ("2026-02-23", "skipped"), ("2026-02-24", "completed"),
       ("2026-02-25", "scheduled"), ("2026-02-26", "completed"), ("2026-02-27", "completed"),
       ("2026-02-28", "completed"), ("2026-03-01", "completed"), ("2026-03-02", "scheduled")]


def seed(conn: sqlite3.Connection, member: str, plan_id: str, day: str, status: str, at: str = "17:00") -> None:
    start = f"{day}T{at}:00.000Z"
    doc = {"id": f"plan_occ_{member}{day.replace('-', '')}", "planId": plan_id, "scheduledStart": start,
           "status": status, "member": member}
    conn.execute("INSERT INTO shared_sessions (member, id, plan_id, scheduled_start, status, updated_at, doc) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)", (member, doc["id"], plan_id, start, status, start, json.dumps(doc)))


@pytest.fixture
def shared(cli, set_now) -> dict[str, Any]:
    set_now("2026-01-01T08:00:00Z")
    scales = cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--json").json["plan"]
    duet = cli("plan", "add", "Duet", "--every", "daily", "--at", "08:00", "--json").json["plan"]
    set_now(FIXED_NOW)
    with sqlite3.connect(Settings().db_path) as conn:
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('sync.user', 'me')")
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('sync.sharing', ?)", (json.dumps([
            {"planId": scales["id"], "owner": "me", "level": "owner",
             "members": [{"user": "ana", "level": "view"}, {"user": "ben", "level": "comment"}]},
            {"planId": duet["id"], "owner": "cy", "level": "edit", "members": [{"user": "me", "level": "edit"}]},
        ]),))
        for day, status in ANA:
            seed(conn, "ana", scales["id"], day, status)
        seed(conn, "cy", duet["id"], "2026-03-02", "completed", at="07:00")
    return {"scales": scales, "duet": duet}


def test_students_numbers(cli, shared):
    found = cli("students", "--json").json["students"]
    assert [s["user"] for s in found] == ["ana", "ben", "cy"]
    ana, ben, cy = found
    # last 30 days (2 Feb - 2 Mar): completed 5, missed 1 (25 Feb); 21 Jan is outside; skipped and open do not count
    assert (ana["completed"], ana["missed"], ana["adherence"], ana["percent"]) == (5, 1, 83.3, 83)
    assert ana["currentStreak"] == 4 and ana["lastPractice"] == "2026-03-01"
    assert ana["plans"] == ["Scales"] and ana["planIds"] == [shared["scales"]["id"]]
    assert (ben["adherence"], ben["percent"], ben["currentStreak"], ben["lastPractice"]) == (None, None, 0, None)
    assert ben["plans"] == ["Scales"]
    assert (cy["percent"], cy["currentStreak"], cy["lastPractice"], cy["plans"]) == (100, 1, "2026-03-02", ["Duet"])


def test_students_text(cli, shared):
    lines = cli("students").stdout.splitlines()
    assert lines[0].split() == ["Name", "Plans", "Adherence", "30d", "Streak", "(days)", "Last", "practice"]
    assert lines[2].split() == ["ana", "Scales", "83%", "4", "2026-03-01"]
    assert lines[3].split() == ["ben", "Scales", "-", "0", "-"]
    assert lines[4].split() == ["cy", "Duet", "100%", "1", "2026-03-02"]
    assert "\x1b[" not in cli("students").stdout


def test_students_is_read_only(cli, shared):
    def state() -> tuple[Any, ...]:
        with sqlite3.connect(Settings().db_path) as conn:
            return (conn.execute("SELECT count(*), max(seq) FROM outbox").fetchone(),
                    conn.execute("SELECT group_concat(horizon) FROM practice_plans").fetchone(),
                    conn.execute("SELECT count(*) FROM plan_occurrences").fetchone())

    before = state()
    cli("students")
    cli("students", "--json")
    assert state() == before


def test_no_students_prints_a_hint(cli):
    cli("plan", "add", "Scales", "--every", "daily")
    run = cli("students")
    assert run.stdout.startswith("Nobody shares a plan with you yet:") and "plan share" in run.stdout
    assert cli("students", "--json").json == {"students": []}


def test_stats_members_of_a_shared_plan_i_own(cli, shared):
    plans = {p["title"]: p for p in cli("stats", "--json").json["plans"]}
    assert "members" not in plans["Duet"]  # cy owns it: not my members to follow
    ana, ben = plans["Scales"]["members"]
    # all time: completed 5, missed 2 (21 Jan and 25 Feb), skipped 1
    assert ana == {"member": "ana", "due": 7, "completed": 5, "missed": 2, "skipped": 1, "adherence": 71.4,
                   "percent": 71, "currentStreak": 4, "lastPractice": "2026-03-01"}
    assert ben == {"member": "ben", "due": 0, "completed": 0, "missed": 0, "skipped": 0, "adherence": None,
                   "percent": None, "currentStreak": 0, "lastPractice": None}
    ranged = {p["title"]: p for p in cli("stats", "--from", "2026-02-25", "--json").json["plans"]}
    assert ranged["Scales"]["members"][0]["due"] == 5 and ranged["Scales"]["members"][0]["percent"] == 80


def test_sessions_before_the_plan_existed_are_not_missed(cli, shared):
    with sqlite3.connect(Settings().db_path) as conn:
        seed(conn, "ana", shared["scales"]["id"], "2025-12-30", "scheduled")
    ana = {p["title"]: p for p in cli("stats", "--json").json["plans"]}["Scales"]["members"][0]
    assert ana["missed"] == 2  # the 30 December session was due before the plan was created


def test_stats_text_has_a_members_section(cli, shared):
    lines = cli("stats", "--no-pager").stdout.splitlines()
    start = lines.index('Members of "Scales"')
    assert lines[start + 1].split() == ["Member", "Due", "Done", "Adherence", "Streak", "Last", "practice"]
    assert lines[start + 3].split() == ["ana", "7", "5", "71%", "4", "2026-03-01"]
    assert lines[start + 4].split() == ["ben", "0", "0", "-", "0", "-"]
    assert not any(line.startswith('Members of "Duet"') for line in lines)


def test_stats_without_sharing_is_unchanged(cli):
    cli("plan", "add", "Scales", "--every", "daily")
    data = cli("stats", "--json").json
    assert all("members" not in p for p in data["plans"])
    assert "Members of" not in cli("stats", "--no-pager").stdout
