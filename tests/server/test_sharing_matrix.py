"""The permission matrix of shared plans (docs/collaboration.md "Ownership and levels"), on both backends: every
sharing endpoint and every kind of push/pull that touches a shared plan x every kind of caller, against the
checked-in table ``EXPECTED``. A refused request must change nothing: the plan's rows in every namespace, its
memberships and its invites are compared before and after."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from practiceplan.server import db
from tests.server.test_sharing import T1, T2, comment, plan, pull_all, share, unshare

CALLERS = ("owner", "view", "comment", "edit", "removed", "stranger")
USER = {"owner": "olga", "view": "vic", "comment": "cora", "edit": "ed", "removed": "rem", "stranger": "stan"}

# action -> the outcome per caller, in CALLERS order: an HTTP status, or for push/pull what happened
#   ok: stored in the owner's namespace; forbidden: a per-item "forbidden" conflict; own: stored as the caller's
#   own new plan (the owner's untouched); noop: nothing to do; sees/blind: the pull carries the plan or not
EXPECTED: dict[str, tuple[Any, ...]] = {
    #                    owner        view         comment      edit         removed      stranger
    "members_get":      (200,         200,         200,         200,         404,         404),
    "members_post":     (200,         403,         403,         403,         404,         404),
    "members_remove":   (200,         403,         403,         403,         404,         404),
    "members_leave":    (400,         200,         200,         200,         404,         404),
    "invite":           (200,         403,         403,         403,         404,         404),
    "accept":           (400,         200,         200,         200,         200,         200),
    "transfer":         (200,         403,         403,         403,         404,         404),
    "push_plan_edit":   ("ok",        "forbidden", "forbidden", "ok",        "forbidden", "own"),
    "push_plan_delete": ("ok",        "forbidden", "forbidden", "forbidden", "forbidden", "noop"),
    "comment_add":      ("ok",        "forbidden", "ok",        "ok",        "forbidden", "forbidden"),
    "comment_edit":     ("forbidden", "forbidden", "ok",        "forbidden", "forbidden", "forbidden"),
    "comment_delete":   ("ok",        "forbidden", "ok",        "forbidden", "forbidden", "forbidden"),
    "pull":             ("sees",      "sees",      "sees",      "sees",      "blind",     "blind"),
}
REFUSED = {400, 403, 404, "forbidden", "noop", "blind"}


def seed(srv: Any, pid: str) -> None:
    """olga owns ``pid`` with vic (view), cora (comment), ed (edit) and rem (removed); cora wrote a comment."""
    r = srv.push("olga", {"practicePlans": [plan(pid, metadata={"privateNotes": "olga only"})]})
    assert r.json()["conflicts"] == []
    for role in ("view", "comment", "edit", "removed"):
        assert share(srv, "olga", pid, USER[role], "view" if role == "removed" else role).status_code == 200
    assert unshare(srv, "olga", pid, "rem").status_code == 200
    assert srv.push("cora", {"planComments": [comment(f"c_{pid}", pid)]}).json()["conflicts"] == []


def snapshot(srv: Any, pid: str, skip_user: str | None = None) -> Any:
    """Everything stored about the plan: its rows in every namespace (but ``skip_user``'s), memberships, invites."""
    t, u, m, i = db.sync_rows, db.users, db.plan_members, db.invites
    with db.connection(srv.engine) as conn:
        rows = conn.execute(sa.select(u.c.name, t.c.entity_type, t.c.entity_id, t.c.data, t.c.version,
                                      t.c.change_seq, t.c.deleted_at).join(u, u.c.id == t.c.user_id)
                            .where(t.c.plan_id == pid).order_by(u.c.name, t.c.entity_type, t.c.entity_id)).all()
        members = conn.execute(sa.select(m).where(m.c.plan_id == pid).order_by(m.c.owner_id, m.c.member_id)).all()
        invites = conn.execute(sa.select(i).where(i.c.plan_id == pid).order_by(i.c.token_hash)).all()
    return ([tuple(r) for r in rows if r.name != skip_user], [tuple(r) for r in members],
            [tuple(r) for r in invites])


def push_outcome(srv: Any, caller: str, changes: dict[str, Any], key: str, pid: str) -> str:
    body = srv.push(USER[caller], changes).json()
    reasons = [c["reason"] for c in body["conflicts"]]
    if reasons:
        assert reasons == ["forbidden"], body
        if caller in ("removed", "stranger"):
            assert body["conflicts"][0]["remote"] is None  # never revealed
        return "forbidden"
    if key not in body["versions"]:
        return "noop"
    kind, entity_id = key.split(":", 1)
    t, u = db.sync_rows, db.users
    with db.connection(srv.engine) as conn:
        where = sa.select(u.c.name).join(u, u.c.id == t.c.user_id).where(
            t.c.entity_type == kind, t.c.entity_id == entity_id, t.c.change_seq > 0)
        homes = sorted(r.name for r in conn.execute(where).all())
    return "ok" if "olga" in homes and USER[caller] not in homes or caller == "owner" else "own"


def act(srv: Any, action: str, caller: str, pid: str) -> Any:
    who = USER[caller]
    path = f"/api/plans/{pid}"
    if action == "members_get":
        return srv.client.get(f"{path}/members", headers=srv.auth(who)).status_code
    if action == "members_post":
        return share(srv, who, pid, "xtra", "view").status_code
    if action == "members_remove":
        return unshare(srv, who, pid, "cora" if caller == "view" else "vic").status_code
    if action == "members_leave":
        return unshare(srv, who, pid, who).status_code
    if action == "invite":
        return srv.post(f"{path}/invites", who, {"level": "view"}).status_code
    if action == "accept":
        token = srv.post(f"{path}/invites", "olga", {"level": "view"}).json()["token"]
        return srv.post("/api/invites/accept", who, {"token": token}).status_code
    if action == "transfer":
        return srv.post(f"{path}/transfer", who, {"user": "cora" if caller == "edit" else "ed"}).status_code
    if action == "push_plan_edit":
        return push_outcome(srv, caller, {"practicePlans": [plan(pid, "Changed", T1)]}, f"practice_plan:{pid}", pid)
    if action == "push_plan_delete":
        return push_outcome(srv, caller, {"practicePlans": [{"id": pid, "deletedAt": T1}]}, f"practice_plan:{pid}", pid)
    if action == "comment_add":
        return push_outcome(srv, caller, {"planComments": [comment(f"n_{pid}", pid, "hi")]}, f"plan_comment:n_{pid}", pid)
    if action == "comment_edit":
        return push_outcome(srv, caller, {"planComments": [comment(f"c_{pid}", pid, "edited", T2)]},
                            f"plan_comment:c_{pid}", pid)
    if action == "comment_delete":
        return push_outcome(srv, caller, {"planComments": [{**comment(f"c_{pid}", pid), "deletedAt": T2}]},
                            f"plan_comment:c_{pid}", pid)
    if action == "pull":
        body = pull_all(srv, who)
        seen = pid in [p["id"] for p in body["practicePlans"]] or pid in [s["planId"] for s in body["sharing"]]
        if seen and caller != "owner":
            assert "olga only" not in json.dumps(body)
        if not seen:
            assert pid not in json.dumps(body)
        return "sees" if seen else "blind"
    raise AssertionError(action)


def test_the_table_covers_every_sharing_route() -> None:
    from practiceplan.server.app import SHARING

    routes = {name for _m, _p, name in SHARING}
    assert routes == {"members", "share", "unshare", "invite", "accept", "transfer"}
    assert all(len(row) == len(CALLERS) for row in EXPECTED.values())


@pytest.mark.parametrize("action", list(EXPECTED))
def test_permission_matrix(srv: Any, action: str) -> None:
    for name in (*USER.values(), "xtra"):
        srv.user(name)
    got = {}
    for n, caller in enumerate(CALLERS):
        pid = f"p{n}_{action}"
        seed(srv, pid)
        before = snapshot(srv, pid, skip_user="stan" if action == "push_plan_edit" else None)
        outcome = act(srv, action, caller, pid)
        got[caller] = outcome
        expected = EXPECTED[action][n]
        if expected in REFUSED:
            if action == "accept":  # the owner's refused accept: the invite stays unused (made by act itself)
                after = snapshot(srv, pid)
                assert after[:2] == before[:2] and all(inv[-2] is None for inv in after[2]), caller
            else:
                assert snapshot(srv, pid) == before, (action, caller)
        if expected == "own":
            assert snapshot(srv, pid, skip_user="stan") == before
    assert tuple(got[c] for c in CALLERS) == EXPECTED[action], got
