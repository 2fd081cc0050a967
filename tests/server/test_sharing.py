"""Shared plans on `practiceplan serve` (docs/collaboration.md), on both backends: membership, levels, leaving,
invites, transfer, comments, the server-owned ``metadata.sharing``, what an incremental pull carries for
participants (``sharing``, ``sharedSessions``, ``planComments``) and what it never carries (another user's
logbook, a session's private fields, the owner's private notes)."""

from __future__ import annotations

import base64
import json
from typing import Any

import sqlalchemy as sa

from practiceplan.server import db, users

T0 = "2026-05-01T09:00:00.000Z"
T1 = "2026-05-02T09:00:00.000Z"
T2 = "2026-05-03T09:00:00.000Z"
T3 = "2026-05-04T09:00:00.000Z"


# ------------------------------------------------------------------------------------------------ helpers


def bare(value: Any) -> Any:
    """``value`` without the members' ``addedAt`` (a server time) in ``metadata.sharing``."""
    if isinstance(value, dict):
        return {k: bare(v) for k, v in value.items() if k != "addedAt"}
    if isinstance(value, list):
        return [bare(v) for v in value]
    return value

def plan(pid: str, title: str = "Scales", updated: str = T0, **extra: Any) -> dict[str, Any]:
    return {"id": pid, "title": title, "type": "custom", "schedule": {"kind": "single", "durationMinutes": 30},
            "visibility": "private", "status": "active", "createdAt": T0, "updatedAt": updated, **extra}


def session(sid: str, pid: str, updated: str = T0, **extra: Any) -> dict[str, Any]:
    return {"id": sid, "planId": pid, "scheduledStart": "2026-06-01T18:00:00.000Z",
            "scheduledEnd": "2026-06-01T18:30:00.000Z", "status": "completed", "notes": "my secret notes",
            "logEntryId": "entry_secret", "metrics": {"bpm": 120}, "createdAt": T0, "updatedAt": updated, **extra}


def comment(cid: str, pid: str, text: str = "Slower on bar 12", updated: str = T0, **extra: Any) -> dict[str, Any]:
    return {"id": cid, "planId": pid, "occurrenceId": None, "occurrenceOwner": None, "text": text,
            "createdAt": T0, "updatedAt": updated, **extra}


def entry(eid: str) -> dict[str, Any]:
    return {"id": eid, "duration": 5, "type": "practice", "instrument": "piano", "notes": "diary", "updatedAt": T0}


def members_path(pid: str, user: str | None = None) -> str:
    return f"/api/plans/{pid}/members" + (f"/{user}" if user else "")


def share(srv: Any, who: str, pid: str, user: str, level: str) -> Any:
    return srv.post(members_path(pid), who, {"user": user, "level": level})


def get_members(srv: Any, who: str, pid: str) -> Any:
    return srv.client.get(members_path(pid), headers=srv.auth(who))


def unshare(srv: Any, who: str, pid: str, user: str) -> Any:
    return srv.client.delete(members_path(pid, user), headers=srv.auth(who))


def pull_all(srv: Any, who: str, cursor: Any = None, limit: int = 1000) -> dict[str, Any]:
    """Every page of an incremental pull from ``cursor``, merged (arrays concatenated; the last page's rest)."""
    merged: dict[str, Any] = {}
    while True:
        resp = srv.pull(who, {"since": cursor, "limit": limit})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        for key, value in body.items():
            if isinstance(value, list) and key != "sharing":
                merged.setdefault(key, []).extend(value)
            elif key == "versions":
                merged.setdefault("versions", {}).update(value)
            else:
                merged[key] = value
        cursor = body["cursor"]
        if not body["hasMore"]:
            return merged


def events(srv: Any, who: str) -> list[dict[str, Any]]:
    """Every live event queued for ``who``, oldest first."""
    e, u = db.live_events, db.users
    with db.connection(srv.engine) as conn:
        uid = conn.execute(sa.select(u.c.id).where(u.c.name == who)).scalar_one()
        rows = conn.execute(sa.select(e.c.body).where(e.c.user_id == uid).order_by(e.c.id)).all()
    return [json.loads(r.body) for r in rows]


def stored(srv: Any, entity_type: str, entity_id: str) -> dict[str, dict[str, Any]]:
    """{owner name: {"data", "version", "deleted"}} of every stored row with this key."""
    t, u = db.sync_rows, db.users
    with db.connection(srv.engine) as conn:
        rows = conn.execute(sa.select(u.c.name, t.c.data, t.c.version, t.c.deleted_at).join(u, u.c.id == t.c.user_id)
                            .where(t.c.entity_type == entity_type, t.c.entity_id == entity_id)).all()
    return {r.name: {"data": json.loads(r.data), "version": r.version, "deleted": r.deleted_at} for r in rows}


def world(srv: Any, *names: str) -> None:
    for name in names:
        srv.user(name)


def shared_plan(srv: Any, level: str = "comment", pid: str = "plan_duet") -> None:
    """ana owns ``pid`` (with private notes) and shares it with bob at ``level``."""
    world(srv, "ana", "bob", "eve")
    r = srv.push("ana", {"practicePlans": [plan(pid, metadata={"privateNotes": "bob rushes", "color": "blue"})],
                         "entries": [entry("entry_ana")],
                         "planOccurrences": [session("occ_ana", pid)]})
    assert r.status_code == 200 and r.json()["conflicts"] == []
    assert share(srv, "ana", pid, "bob", level).status_code == 200


# ------------------------------------------------------------------------------------------------ membership

def test_capabilities_advertise_sharing_and_live(srv):
    srv.user("ana")
    caps = srv.status("ana").json()["capabilities"]
    assert "sharing" in caps and "live" in caps and "incremental-pull" in caps


def test_share_lists_members_and_rewrites_metadata_sharing(srv):
    world(srv, "ana", "bob", "cid")
    srv.push("ana", {"practicePlans": [plan("p1", metadata={"privateNotes": "n", "sharing": {"owner": "x"}})]})
    # a client's metadata.sharing is the server's: dropped while the plan is not shared
    assert stored(srv, "practice_plan", "p1")["ana"]["data"]["metadata"] == {"privateNotes": "n"}
    before = stored(srv, "practice_plan", "p1")["ana"]["version"]
    r = share(srv, "ana", "p1", "bob", "comment")
    assert r.status_code == 200
    body = r.json()
    assert body["planId"] == "p1" and body["owner"] == "ana" and body["level"] == "owner"
    assert [(m["user"], m["level"]) for m in body["members"]] == [("bob", "comment")]
    assert body["members"][0]["addedAt"].endswith("Z")
    row = stored(srv, "practice_plan", "p1")["ana"]
    assert row["version"] == before + 1
    assert row["data"]["metadata"] == {"privateNotes": "n", "sharing": {"owner": "ana", "members": [
        {"user": "bob", "level": "comment", "addedAt": body["members"][0]["addedAt"]}]}}
    share(srv, "ana", "p1", "cid", "view")
    r = get_members(srv, "bob", "p1")
    assert r.status_code == 200 and r.json()["level"] == "comment" and r.json()["owner"] == "ana"
    assert [m["user"] for m in r.json()["members"]] == ["bob", "cid"]
    assert get_members(srv, "cid", "p1").json()["level"] == "view"
    # change a level: one event for every participant
    r = share(srv, "ana", "p1", "bob", "edit")
    assert [(m["user"], m["level"]) for m in r.json()["members"]] == [("bob", "edit"), ("cid", "view")]
    change = {"type": "MEMBER_LEVEL_CHANGED", "planId": "p1", "user": "bob", "level": "edit"}
    for who in ("ana", "bob", "cid"):
        assert any({k: e.get(k) for k in change} == change for e in events(srv, who)), who
    added = [e for e in events(srv, "bob") if e["type"] == "MEMBER_ADDED"]
    assert [(e["user"], e["level"]) for e in added] == [("bob", "comment"), ("cid", "view")]
    # the same level again changes nothing (no new version)
    version = stored(srv, "practice_plan", "p1")["ana"]["version"]
    share(srv, "ana", "p1", "bob", "edit")
    assert stored(srv, "practice_plan", "p1")["ana"]["version"] == version


def test_share_refusals(srv):
    world(srv, "ana", "bob", "eve")
    srv.push("ana", {"practicePlans": [plan("p1")]})
    assert share(srv, "ana", "p1", "nobody", "view").json() == {"error": "User not found"}
    assert share(srv, "ana", "p1", "nobody", "view").status_code == 404
    r = share(srv, "ana", "p1", "ana", "view")
    assert r.status_code == 400 and r.json()["success"] is False and r.json()["code"] == 400
    r = share(srv, "ana", "p1", "bob", "admin")
    assert r.status_code == 400 and r.json()["error"] == "Invalid request body"
    # a plan that is not the caller's, or not there, is "not found" (never revealed)
    assert share(srv, "eve", "p1", "bob", "view").json() == {"error": "Plan not found"}
    assert share(srv, "ana", "nope", "bob", "view").status_code == 404
    assert get_members(srv, "eve", "p1").status_code == 404
    share(srv, "ana", "p1", "bob", "edit")
    r = share(srv, "bob", "p1", "eve", "view")
    assert r.status_code == 403 and r.json() == {"error": "Only the plan's owner can do this"}
    # a deleted plan cannot be shared
    srv.push("ana", {"practicePlans": [plan("p2")]})
    srv.push("ana", {"practicePlans": [{"id": "p2", "deletedAt": T1}]})
    assert share(srv, "ana", "p2", "bob", "view").status_code == 404
    assert [m["user"] for m in get_members(srv, "ana", "p1").json()["members"]] == ["bob"]


def test_member_leaves_and_owner_removes_with_events_and_effect_at_the_next_request(srv):
    shared_plan(srv, "edit")
    share(srv, "ana", "plan_duet", "eve", "view")
    r = unshare(srv, "bob", "plan_duet", "bob")
    assert r.status_code == 200 and r.json() == {"planId": "plan_duet", "left": True}
    assert get_members(srv, "bob", "plan_duet").json() == {"error": "Plan not found"}
    removed = {"type": "MEMBER_REMOVED", "planId": "plan_duet", "user": "bob", "level": "edit"}
    for who in ("ana", "bob", "eve"):
        assert any({k: e.get(k) for k in removed} == removed for e in events(srv, who)), who
    assert events(srv, "bob")[-1]["type"] == "ACCESS_REVOKED" and events(srv, "bob")[-1]["planId"] == "plan_duet"
    assert not any(e["type"] == "ACCESS_REVOKED" for e in events(srv, "eve"))
    # the row is kept (removed_at set) and metadata.sharing follows
    m = db.plan_members
    with db.connection(srv.engine) as conn:
        rows = conn.execute(sa.select(m.c.removed_at)).all()
    assert len(rows) == 2 and sum(r.removed_at is not None for r in rows) == 1
    data = stored(srv, "practice_plan", "plan_duet")["ana"]["data"]
    assert [(m["user"], m["level"]) for m in data["metadata"]["sharing"]["members"]] == [("eve", "view")]
    # a member may not remove someone else; the owner removes eve: metadata.sharing goes away
    assert unshare(srv, "eve", "plan_duet", "ana").status_code == 403
    assert unshare(srv, "ana", "plan_duet", "ana").status_code == 400
    assert unshare(srv, "ana", "plan_duet", "bob").json() == {"error": "Member not found"}
    r = unshare(srv, "ana", "plan_duet", "eve")
    assert r.status_code == 200 and r.json()["members"] == [] and r.json()["level"] == "owner"
    assert "sharing" not in stored(srv, "practice_plan", "plan_duet")["ana"]["data"]["metadata"]
    # a removed member's pull leaves the plan out
    body = pull_all(srv, "bob")
    assert body["sharing"] == [] and body["practicePlans"] == [] and body["sharedSessions"] == []
    assert body["cursor"].isdigit()


def test_removed_member_push_is_forbidden_and_stored_nowhere(srv):
    shared_plan(srv, "edit")
    v = stored(srv, "practice_plan", "plan_duet")["ana"]["version"]
    unshare(srv, "ana", "plan_duet", "bob")
    before = stored(srv, "practice_plan", "plan_duet")
    r = srv.push("bob", {"practicePlans": [plan("plan_duet", "Hacked", T2)],
                         "planComments": [comment("c_late", "plan_duet")]})
    assert r.status_code == 200
    assert r.json()["conflicts"] == [
        {"entityId": "plan_duet", "entityType": "practice_plan", "reason": "forbidden", "remoteVersion": 0,
         "remote": None},
        {"entityId": "c_late", "entityType": "plan_comment", "reason": "forbidden", "remoteVersion": 0,
         "remote": None}]
    assert r.json()["versions"] == {}
    assert stored(srv, "practice_plan", "plan_duet") == before and before["ana"]["version"] == v + 1
    assert stored(srv, "plan_comment", "c_late") == {}


def test_edit_member_changes_the_owner_row_and_lower_levels_are_forbidden(srv):
    shared_plan(srv, "view")
    base = pull_all(srv, "bob")
    version = base["versions"]["practice_plan:plan_duet"]
    assert version == stored(srv, "practice_plan", "plan_duet")["ana"]["version"]
    r = srv.push("bob", {"practicePlans": [plan("plan_duet", "Bob's title", T1)]})
    conflict = r.json()["conflicts"][0]
    assert conflict["reason"] == "forbidden" and conflict["remoteVersion"] == version
    assert conflict["remote"]["title"] == "Scales" and "privateNotes" not in conflict["remote"]["metadata"]
    assert stored(srv, "practice_plan", "plan_duet")["ana"]["version"] == version
    share(srv, "ana", "plan_duet", "bob", "edit")
    version = pull_all(srv, "bob")["versions"]["practice_plan:plan_duet"]
    # an edit member's deletion is refused too
    r = srv.push("bob", {"practicePlans": [{"id": "plan_duet", "deletedAt": T1}]})
    assert r.json()["conflicts"][0]["reason"] == "forbidden"
    assert stored(srv, "practice_plan", "plan_duet")["ana"]["deleted"] is None
    # an edit: stored in ana's namespace, with her private notes kept and the server's sharing
    sent = plan("plan_duet", "Bob's title", T1, metadata={"color": "red", "sharing": {"owner": "bob"},
                                                          "privateNotes": "overwritten?"})
    r = srv.push("bob", {"practicePlans": [sent]}, baseVersions={"practice_plan:plan_duet": version})
    assert r.json()["conflicts"] == [] and r.json()["versions"] == {"practice_plan:plan_duet": version + 1}
    rows = stored(srv, "practice_plan", "plan_duet")
    assert list(rows) == ["ana"]
    data = rows["ana"]["data"]
    assert data["title"] == "Bob's title" and data["user_id"] == "ana"
    assert bare(data["metadata"]) == {"color": "red", "privateNotes": "bob rushes",
                                "sharing": {"owner": "ana", "members": [{"user": "bob", "level": "edit"}]}}
    # a stale base version (the owner's namespace) is a conflict
    r = srv.push("bob", {"practicePlans": [plan("plan_duet", "Again", T2)]},
                 baseVersions={"practice_plan:plan_duet": version})
    assert r.json()["conflicts"][0]["reason"] == "stale"
    # the owner sees the change; the member's event has no private notes, the owner's has
    assert pull_all(srv, "ana")["practicePlans"][0]["title"] == "Bob's title"
    mine = [e for e in events(srv, "bob") if e["type"] == "PLAN_UPDATED"][-1]
    theirs = [e for e in events(srv, "ana") if e["type"] == "PLAN_UPDATED"][-1]
    assert "privateNotes" not in mine["plan"]["metadata"] and theirs["plan"]["metadata"]["privateNotes"] == "bob rushes"


# ------------------------------------------------------------------------------------------------ invites

def test_invite_is_single_use_hashed_and_expires(srv):
    world(srv, "ana", "bob", "cid", "eve")
    srv.push("ana", {"practicePlans": [plan("p1")]})
    r = srv.post("/api/plans/p1/invites", "ana", {"level": "comment", "expiresInSeconds": 3600})
    assert r.status_code == 200
    body = r.json()
    token = body["token"]
    assert token.startswith("ppi_") and len(token) > 30 and body["planId"] == "p1" and body["level"] == "comment"
    with db.connection(srv.engine) as conn:
        row = conn.execute(sa.select(db.invites)).one()
    assert row.token_hash == users.hash_token(token) and token not in str(tuple(row))
    assert srv.post("/api/plans/p1/invites", "eve", {"level": "view"}).status_code == 404
    for bad in ({"level": "owner"}, {"level": "view", "expiresInSeconds": 59},
                {"level": "view", "expiresInSeconds": 90 * 86400 + 1}, {"level": "view", "expiresInSeconds": "1"}):
        assert srv.post("/api/plans/p1/invites", "ana", bad).status_code == 400, bad
    assert srv.post("/api/invites/accept", "ana", {"token": token}).status_code == 400  # the owner
    r = srv.post("/api/invites/accept", "bob", {"token": token})
    assert r.status_code == 200 and r.json() == {"planId": "p1", "owner": "ana", "level": "comment"}
    assert get_members(srv, "bob", "p1").json()["level"] == "comment"
    again = srv.post("/api/invites/accept", "cid", {"token": token})
    assert again.status_code == 404 and again.json() == {"error": "Invite not found or already used"}
    assert srv.post("/api/invites/accept", "cid", {"token": "ppi_unknown"}).status_code == 404
    # expiry
    late = srv.post("/api/plans/p1/invites", "ana", {"level": "edit", "expiresInSeconds": 60}).json()["token"]
    srv.clock.advance(seconds=61)
    assert srv.post("/api/invites/accept", "cid", {"token": late}).status_code == 404
    assert get_members(srv, "cid", "p1").status_code == 404
    # a member with a higher level keeps it
    share(srv, "ana", "p1", "cid", "edit")
    low = srv.post("/api/plans/p1/invites", "ana", {"level": "view"}).json()
    assert low["expiresAt"] > "2026"
    assert srv.post("/api/invites/accept", "cid", {"token": low["token"]}).json()["level"] == "edit"


# ------------------------------------------------------------------------------------------------ transfer

def test_transfer_moves_plan_and_comments_and_keeps_the_old_owner_as_editor(srv):
    shared_plan(srv, "edit")
    share(srv, "ana", "plan_duet", "eve", "comment")
    srv.push("eve", {"planComments": [comment("c1", "plan_duet")]})
    srv.push("ana", {"planComments": [comment("c2", "plan_duet", "mine")]})
    srv.push("ana", {"planComments": [{**comment("c2", "plan_duet", "mine"), "deletedAt": T1}]})
    v_plan = stored(srv, "practice_plan", "plan_duet")["ana"]["version"]
    v_c1 = stored(srv, "plan_comment", "c1")["ana"]["version"]
    assert srv.post("/api/plans/plan_duet/transfer", "bob", {"user": "eve"}).status_code == 403
    assert srv.post("/api/plans/plan_duet/transfer", "ana", {"user": "nobody"}).status_code == 404
    world(srv, "zed")
    assert srv.post("/api/plans/plan_duet/transfer", "ana", {"user": "zed"}).status_code == 400
    r = srv.post("/api/plans/plan_duet/transfer", "ana", {"user": "bob"})
    assert r.status_code == 200
    body = r.json()
    assert body["owner"] == "bob" and body["level"] == "edit"
    assert [(m["user"], m["level"]) for m in body["members"]] == [("ana", "edit"), ("eve", "comment")]
    rows = stored(srv, "practice_plan", "plan_duet")
    assert list(rows) == ["bob"] and rows["bob"]["version"] == v_plan + 1
    data = rows["bob"]["data"]
    assert data["user_id"] == "bob" and bare(data["metadata"]["sharing"]) == {
        "owner": "bob", "members": [{"user": "ana", "level": "edit"}, {"user": "eve", "level": "comment"}]}
    assert list(stored(srv, "plan_comment", "c1")) == ["bob"] and stored(srv, "plan_comment", "c1")["bob"]["version"] == v_c1 + 1
    assert stored(srv, "plan_comment", "c2")["bob"]["deleted"] == T1
    assert list(stored(srv, "plan_occurrence", "occ_ana")) == ["ana"]  # sessions stay with their participant
    for who in ("ana", "bob", "eve"):
        assert any(e["type"] == "OWNER_CHANGED" and e["owner"] == "bob" for e in events(srv, who)), who
    # ana now pulls it as a shared plan and may edit it
    body = pull_all(srv, "ana")
    assert [(s["planId"], s["owner"], s["level"]) for s in body["sharing"]] == [("plan_duet", "bob", "edit")]
    assert [p["id"] for p in body["practicePlans"]] == ["plan_duet"]
    assert "privateNotes" not in body["practicePlans"][0]["metadata"]  # the owner's private notes: bob's now
    r = srv.push("ana", {"practicePlans": [plan("plan_duet", "Renamed", T2)]})
    assert r.json()["conflicts"] == [] and stored(srv, "practice_plan", "plan_duet")["bob"]["data"]["title"] == "Renamed"
    assert get_members(srv, "bob", "plan_duet").json()["level"] == "owner"


# ------------------------------------------------------------------------------------------------ comments

def test_comments_levels_authors_and_events(srv):
    shared_plan(srv, "view")
    world(srv, "cid")
    share(srv, "ana", "plan_duet", "cid", "comment")
    r = srv.push("bob", {"planComments": [comment("c_bob", "plan_duet")]})
    assert r.json()["conflicts"][0]["reason"] == "forbidden" and stored(srv, "plan_comment", "c_bob") == {}
    r = srv.push("cid", {"planComments": [comment("c_cid", "plan_duet", author="ana")]})
    assert r.json()["conflicts"] == [] and r.json()["versions"] == {"plan_comment:c_cid": 1}
    row = stored(srv, "plan_comment", "c_cid")
    assert list(row) == ["ana"] and row["ana"]["data"]["author"] == "cid"
    # the author edits; someone else may not; the owner may delete
    r = srv.push("cid", {"planComments": [comment("c_cid", "plan_duet", "Even slower", T1)]})
    assert r.json()["versions"] == {"plan_comment:c_cid": 2}
    share(srv, "ana", "plan_duet", "bob", "edit")
    r = srv.push("bob", {"planComments": [comment("c_cid", "plan_duet", "bob was here", T2)]})
    conflict = r.json()["conflicts"][0]
    assert conflict["reason"] == "forbidden" and conflict["remote"]["text"] == "Even slower"
    r = srv.push("bob", {"planComments": [{**comment("c_cid", "plan_duet", "Even slower", T2), "deletedAt": T2}]})
    assert r.json()["conflicts"][0]["reason"] == "forbidden"
    assert stored(srv, "plan_comment", "c_cid")["ana"]["deleted"] is None
    r = srv.push("ana", {"planComments": [{**comment("c_cid", "plan_duet", "Even slower", T2), "deletedAt": T2}]})
    assert r.json()["conflicts"] == [] and stored(srv, "plan_comment", "c_cid")["ana"]["deleted"] == T2
    kinds = [e["type"] for e in events(srv, "bob") if e["type"].startswith("COMMENT_")]
    assert kinds == ["COMMENT_ADDED", "COMMENT_UPDATED", "COMMENT_DELETED"]
    assert [e["comment"]["text"] for e in events(srv, "ana") if e["type"].startswith("COMMENT_")] == \
        ["Slower on bar 12", "Even slower", "Even slower"]
    # validation: a comment needs text of 1..4000 characters
    assert srv.push("cid", {"planComments": [comment("c_x", "plan_duet", "")]}).status_code == 400
    assert srv.push("cid", {"planComments": [comment("c_x", "plan_duet", "x" * 4001)]}).status_code == 400
    assert srv.push("cid", {"planComments": [comment("c_x", "plan_duet", "x" * 4000)]}).json()["conflicts"] == []
    # a non-member's comment on the plan is refused without revealing it
    r = srv.push("eve", {"planComments": [comment("c_eve", "plan_duet")]})
    assert r.json()["conflicts"][0]["remote"] is None and stored(srv, "plan_comment", "c_eve") == {}


def test_pull_carries_comments_shared_sessions_and_never_private_fields(srv):
    shared_plan(srv, "comment")
    srv.push("bob", {"planOccurrences": [session("occ_bob", "plan_duet")], "entries": [entry("entry_bob")],
                     "planComments": [comment("c_bob", "plan_duet")]})
    body = pull_all(srv, "bob")
    assert body["sharing"] == [{"planId": "plan_duet", "owner": "ana", "level": "comment",
                                "members": [{"user": "bob", "level": "comment"}]}]
    assert [p["id"] for p in body["practicePlans"]] == ["plan_duet"]
    assert bare(body["practicePlans"][0]["metadata"]) == {
        "color": "blue", "sharing": {"owner": "ana", "members": [{"user": "bob", "level": "comment"}]}}
    assert [c["id"] for c in body["planComments"]] == ["c_bob"] and body["planComments"][0]["author"] == "bob"
    assert [e["id"] for e in body["entries"]] == ["entry_bob"]  # never ana's
    assert [o["id"] for o in body["planOccurrences"]] == ["occ_bob"]
    assert body["sharedSessions"] == [{"id": "occ_ana", "planId": "plan_duet",
                                       "scheduledStart": "2026-06-01T18:00:00.000Z",
                                       "scheduledEnd": "2026-06-01T18:30:00.000Z", "status": "completed",
                                       "createdAt": T0, "updatedAt": T0, "member": "ana"}]
    assert body["versions"]["practice_plan:plan_duet"] == stored(srv, "practice_plan", "plan_duet")["ana"]["version"]
    text = json.dumps(body)
    assert "bob rushes" not in text and "my secret notes" not in text.replace(
        json.dumps(body["planOccurrences"]), "") and "entry_ana" not in text and "diary" not in text.replace(
        json.dumps(body["entries"]), "")
    cursor = body["cursor"]
    assert cursor.startswith("v2.")
    decoded = json.loads(base64.urlsafe_b64decode(cursor[3:] + "=" * (-len(cursor[3:]) % 4)))
    assert set(decoded["s"]) == {"plan_duet " + str(_uid(srv, "ana"))}
    # the owner sees bob's session as a shared session and his comment in its own rows
    owner = pull_all(srv, "ana")
    assert [s["id"] for s in owner["sharedSessions"]] == ["occ_bob"] and owner["sharedSessions"][0]["member"] == "bob"
    assert "notes" not in owner["sharedSessions"][0] and "logEntryId" not in owner["sharedSessions"][0]
    assert [c["id"] for c in owner["planComments"]] == ["c_bob"]
    assert [e["id"] for e in owner["entries"]] == ["entry_ana"]
    assert owner["sharing"][0]["level"] == "owner"
    # incremental: nothing new, then exactly the changes
    again = pull_all(srv, "bob", cursor)
    assert again["practicePlans"] == [] and again["sharedSessions"] == [] and again["planComments"] == []
    assert again["sharing"] == body["sharing"]
    srv.push("ana", {"planOccurrences": [session("occ_ana", "plan_duet", T1, status="skipped")],
                     "practicePlans": [plan("plan_duet", "New title", T1)]})
    srv.push("ana", {"planOccurrences": [{"id": "occ_ana2", "planId": "plan_duet", "deletedAt": T1}]})
    later = pull_all(srv, "bob", again["cursor"])
    assert [(s["id"], s["status"]) for s in later["sharedSessions"]] == [("occ_ana", "skipped")]
    assert [p["title"] for p in later["practicePlans"]] == ["New title"]
    # a plain number cursor still works (older clients); a malformed v2 cursor is a 400
    assert srv.pull("bob", {"since": "0"}).status_code == 200
    for bad in ("v2.!!!", "v2." + base64.urlsafe_b64encode(b'{"o": -1}').decode(), "v2." +
                base64.urlsafe_b64encode(b'{"o": 1, "s": {"x": 1}}').decode()):
        r = srv.pull("bob", {"since": bad})
        assert r.status_code == 400 and r.json()["error"] == "Invalid request body", bad


def test_feeds_page_and_tombstones_reach_members(srv):
    shared_plan(srv, "comment")
    first = pull_all(srv, "bob", limit=1)
    assert [p["id"] for p in first["practicePlans"]] == ["plan_duet"]
    srv.push("ana", {"planOccurrences": [{**session("occ_ana", "plan_duet", T1), "deletedAt": T1}]})
    srv.push("ana", {"practicePlans": [{"id": "plan_duet", "deletedAt": T2}]})
    body = pull_all(srv, "bob", first["cursor"])
    assert [(s["id"], s.get("deletedAt")) for s in body["sharedSessions"]] == [("occ_ana", T1)]
    assert [(p["id"], p.get("deletedAt")) for p in body["practicePlans"]] == [("plan_duet", T2)]
    assert any(e["type"] == "PLAN_DELETED" for e in events(srv, "bob"))


def test_user_who_never_shares_keeps_plain_cursor_and_mirubato_snapshot(srv):
    world(srv, "solo")
    srv.push("solo", {"practicePlans": [plan("p1")], "planOccurrences": [session("o1", "p1")]})
    body = srv.pull("solo", {"since": None}).json()
    assert body["cursor"].isdigit() and body["sharing"] == [] and body["sharedSessions"] == []
    full = srv.pull("solo").json()
    assert set(full) == {"entries", "goals", "practicePlans", "planOccurrences", "planTemplates", "syncToken",
                         "timestamp"}
    srv.push("solo", {"planComments": [comment("c1", "p1")]})
    assert "planComments" not in srv.pull("solo").json()
    assert [c["id"] for c in srv.pull("solo", {"since": body["cursor"]}).json()["planComments"]] == ["c1"]


def _uid(srv: Any, name: str) -> int:
    with db.connection(srv.engine) as conn:
        return int(conn.execute(sa.select(db.users.c.id).where(db.users.c.name == name)).scalar_one())


def test_metadata_sharing_is_the_servers_in_a_batch_upload_too(srv):
    """Mirubato's batch endpoint stores whole snapshots as well: a client-made ``metadata.sharing`` is replaced by
    the server's value there too (here: none, the plan is not shared), so it can never claim members."""
    world(srv, "ana", "bob")
    claimed = plan("p_batch", metadata={"sharing": {"owner": "ana", "members": [{"user": "bob", "level": "edit"}]},
                                        "color": "green"})
    r = srv.post("/api/sync/batch", "ana", {"entities": [
        {"type": "practice_plan", "id": "p_batch", "data": claimed, "checksum": "x", "version": 1}]})
    assert r.status_code == 200 and r.json()["uploaded"] == 1
    assert stored(srv, "practice_plan", "p_batch")["ana"]["data"]["metadata"] == {"color": "green"}
    assert get_members(srv, "bob", "p_batch").status_code == 404  # and bob gained nothing
