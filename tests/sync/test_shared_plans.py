"""Shared plans end to end (docs/collaboration.md): devices of different users, each a real database driven through
the CLI, syncing with `practiceplan serve` on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.sync.backends import OURS, every_server
from tests.sync.homes import Home


def _homes(tmp_path: Any, server: Any, *names: str) -> list[Home]:
    return [Home(tmp_path / name, server.url, server.token(name, "tutor" if name == "tom" else "learner"))
            for name in names]


def _plan_id(home: Home, title: str) -> str:
    return next(i for i, p in home.docs("practice_plan").items() if p["title"] == title)


@every_server(*OURS)
def test_a_learner_shares_a_plan_with_a_tutor_who_follows_comments_and_is_removed(tmp_path, sync_server):
    lea, tom = _homes(tmp_path, sync_server, "lea", "tom")
    lea.cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--minutes", "20", "--start", "2026-02-25",
            "--backfill")
    lea.cli("log", "add", "--minutes", "15", "--notes", "private: only mine")
    assert lea.cli("plan", "share", "Scales", "tom", "--as", "comment", ok=False).exit_code == 65  # not synced yet
    lea.sync()
    lea.cli("plan", "share", "Scales", "tom", "--as", "comment")
    plan_id = _plan_id(lea, "Scales")
    sharing = lea.docs("practice_plan")[plan_id]["metadata"]["sharing"]
    assert sharing["owner"] == "lea" and [(m["user"], m["level"]) for m in sharing["members"]] == [
        ("tom", "comment")]  # synced after sharing
    assert sharing["members"][0]["addedAt"].endswith("Z")  # when tom joined: his sessions count from then

    tom.sync()
    assert set(tom.docs("practice_plan")) == {plan_id}
    tom.cli("today")  # the tutor's device makes its own sessions of the plan: none owed before it joined
    assert tom.json("stats")["plans"][0]["missed"] == 0
    assert tom.docs("logbook_entry") == {}  # the owner's logbook never reaches a member
    listed = tom.json("plan", "list")
    shared = next(p for p in listed["plans"] if p["id"] == plan_id)["sharing"]
    assert shared["owner"] == "lea" and shared["level"] == "comment"

    # the learner practises; the tutor sees it (status only) and comments on that session
    session = next(o for o in sorted(lea.docs("plan_occurrence").values(), key=lambda o: o["scheduledStart"])
                   if o["scheduledStart"] >= "2026-03-01")
    lea.cli("checkin", session["id"], "--minutes", "25", "--notes", "wrist hurt")
    lea.sync()
    tom.sync()
    students = tom.json("students")["students"]
    assert [s["user"] for s in students] == ["lea"] and students[0]["completed"] == 1
    assert students[0]["lastPractice"] == "2026-03-01"
    with tom.session() as s:
        from practiceplan.store.sharing import shared_sessions
        seen = {o["id"]: o for o in shared_sessions(s.store.conn, [plan_id])}
    assert seen[session["id"]]["status"] == "completed" and seen[session["id"]]["member"] == "lea"
    assert "notes" not in seen[session["id"]] and "logEntryId" not in seen[session["id"]]
    tom.cli("comment", session["id"], "Good; now slower", "--member", "lea")
    assert tom.cli("plan", "edit", "Scales", "--title", "Mine", ok=False).exit_code == 77  # comment < edit
    tom.sync()
    lea.sync()
    comments = lea.json("comments", "Scales")["comments"]
    assert [(c["author"], c["text"], c["occurrenceOwner"]) for c in comments] == [("tom", "Good; now slower", "lea")]

    # edit level: the tutor's change reaches the owner
    lea.cli("plan", "share", "Scales", "tom", "--as", "edit")
    tom.sync()
    tom.tick(5)
    tom.cli("plan", "edit", "Scales", "--title", "Scales in thirds")
    tom.sync()
    lea.sync()
    assert lea.docs("practice_plan")[plan_id]["title"] == "Scales in thirds"
    assert tom.cli("plan", "delete", "Scales in thirds", "--yes", ok=False).exit_code == 77  # only the owner deletes

    # removed: at once on the server, and from the tutor's device at its next sync (its own logbook stays)
    tom.cli("log", "add", "--minutes", "5", "--notes", "tom's own practice")
    lea.cli("plan", "unshare", "Scales in thirds", "tom", "--yes")
    summary = tom.sync()
    assert any("no longer take part" in w for w in summary["warnings"])
    assert tom.docs("practice_plan") == {} and tom.docs("plan_occurrence") == {}
    assert [e["notes"] for e in tom.docs("logbook_entry").values()] == ["tom's own practice"]
    assert tom.json("students")["students"] == []
    assert sync_server.live_rows("tom", "plan_occurrence") == []  # its own sessions of the plan went too
    lea.sync()
    assert "sharing" not in (lea.docs("practice_plan")[plan_id].get("metadata") or {})


@every_server(*OURS)
def test_a_change_refused_after_a_lower_level_is_kept_as_a_conflict_and_the_servers_version_restored(
        tmp_path, sync_server):
    lea, ben = _homes(tmp_path, sync_server, "lea", "ben")
    lea.cli("plan", "add", "Duet", "--once", "tomorrow 18:00", "--minutes", "30")
    lea.sync()
    lea.cli("plan", "share", "Duet", "ben", "--as", "edit")
    ben.sync()
    plan_id = _plan_id(ben, "Duet")
    ben.tick(2)
    ben.cli("plan", "edit", "Duet", "--title", "Ben's duet")  # allowed here: ben still holds edit
    lea.cli("plan", "share", "Duet", "ben", "--as", "view")  # meanwhile the owner lowers the level
    summary = ben.sync()
    assert [(c["kind"], c["id"]) for c in summary["conflicts"]] == [("practice_plan", plan_id)]
    assert ben.docs("practice_plan")[plan_id]["title"] == "Duet"  # the server's version is back here
    (record,) = ben.conflicts()
    assert record["kept"] == "remote" and record["local"]["title"] == "Ben's duet"  # not silently lost
    assert ben.outbox() == 0
    held = {r.entity_id: r.data for r in sync_server.live_rows("lea", "practice_plan")}
    assert held[plan_id]["title"] == "Duet"  # never silently applied
    assert sync_server.live_rows("ben", "practice_plan") == []  # nor stored as a plan of ben's own


@every_server(*OURS)
def test_an_invite_link_is_single_use_and_a_duet_counts_each_members_check_ins(tmp_path, sync_server):
    ana, ben, cy = _homes(tmp_path, sync_server, "ana", "ben", "cy")
    ana.cli("plan", "add", "Duet", "--every", "daily", "--at", "17:00", "--minutes", "30", "--start", "2026-02-27",
            "--backfill")
    ana.sync()
    token = ana.cli("plan", "share", "Duet", "--link", "--as", "edit", "--expires", "2d").stdout.strip()
    assert token.startswith("ppi_") and "\n" not in token
    assert "Joined" in ben.cli("plan", "join", token).stdout
    refused = cy.cli("plan", "join", token, ok=False)
    assert refused.exit_code == 3 and token not in refused.stdout + refused.stderr
    assert cy.docs("practice_plan") == {}
    plan_id = _plan_id(ben, "Duet")
    for home, minutes in ((ana, 30), (ben, 20)):
        home.cli("today")  # each device makes its own sessions of the plan
        due = sorted((o for o in home.docs("plan_occurrence").values() if o["planId"] == plan_id),
                     key=lambda o: o["scheduledStart"])
        home.cli("checkin", due[0]["id"], "--minutes", str(minutes))
        home.sync()
    ana.sync()
    stats = ana.json("stats")
    members = next(p for p in stats["plans"] if p["planId"] == plan_id)["members"]
    assert [(m["member"], m["completed"]) for m in members] == [("ben", 1)]
    entries = {home: sorted(e["duration"] for e in h.docs("logbook_entry").values())
               for home, h in (("ana", ana), ("ben", ben))}
    assert entries == {"ana": [30], "ben": [20]}  # each member's check-in is that member's


def test_a_shared_plan_counts_for_a_member_from_when_they_joined():
    """A member is never owed the sessions before they joined (the owner's backfill is the owner's)."""
    from practiceplan.domain.models import plan_counts_from, parse_instant

    plan = {"id": "plan_x", "createdAt": "2026-01-01T00:00:00.000Z", "metadata": {
        "backfill": True, "sharing": {"owner": "lea", "members": [
            {"user": "tom", "level": "view", "addedAt": "2026-02-01T10:00:00.000Z"}]}}}
    assert plan_counts_from(plan) is None and plan_counts_from(plan, "lea") is None  # the owner: everything
    assert plan_counts_from(plan, "tom") == parse_instant("2026-02-01T10:00:00.000Z")
    assert plan_counts_from(plan, "cy") is None  # not a member: as the plan says
    plan["metadata"].pop("backfill")
    assert plan_counts_from(plan, "lea") == parse_instant("2026-01-01T00:00:00.000Z")
    plan["metadata"]["sharing"]["members"][0]["addedAt"] = "2025-12-01T00:00:00.000Z"  # joined before: created
    assert plan_counts_from(plan, "tom") == parse_instant("2026-01-01T00:00:00.000Z")
