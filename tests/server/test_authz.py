"""The authorisation matrix of `practiceplan serve`, on both backends: every endpoint x every role x every kind of
target (own object, another user's object, no token, a malformed token, a revoked token, a token in the query
string or in a cookie), and mass assignment of every server-owned field through every endpoint that writes.

The endpoints and roles are read from the server (``app.AUTHED`` plus ``/health``, ``users.ROLES``): a new endpoint
or role without a row in ``OWN``/``OTHER``/``AUTH_REQUEST`` fails ``test_the_matrix_covers_every_endpoint_and_role``
and its own cases, instead of going untested.

One server (database) per backend is shared by the whole module; every case works on entity ids of its own.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from practiceplan.server import db, users
from practiceplan.server.app import AUTHED
from tests.server.conftest import BACKENDS, Server, build

T0 = "2026-05-01T09:00:00.000Z"
T1 = "2026-05-02T09:00:00.000Z"
NO_TOKEN = {"success": False, "error": "No authentication token provided", "code": 401}
BAD_TOKEN = {"success": False, "error": "Invalid or expired token", "code": 401}
NOT_FOUND = {"error": "Template not found"}
BOGUS = "mallory"
ENDPOINTS = {route: (method, path) for (method, path), route in AUTHED.items()}
ENDPOINTS["health"] = ("GET", "/health")
ROLES = users.ROLES
TARGETS = ("own", "other", "no-token", "malformed", "revoked", "query", "cookie")
PUBLISHERS = users.PUBLISHERS


# ------------------------------------------------------------------------------------------------ the world

_schemas = itertools.count(1)


@pytest.fixture(scope="module", params=BACKENDS)
def w(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per backend with a caller per role (named after the role), a revoked account per role
    (``revoked-<role>``) and two victims (``victim-tutor``, ``victim-learner``)."""
    schema = None
    if request.param == "sqlite":
        url = str(tmp_path_factory.mktemp("authz") / "server.db")
    else:
        import psycopg

        dsn = request.getfixturevalue("pg_dsn")
        schema = f"authz{os.getpid()}_{next(_schemas)}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{dsn}{'&' if '?' in dsn else '?'}options=-csearch_path%3D{schema}"
    server = build(url)
    for role in ROLES:
        server.user(role, role)
        server.user(f"revoked-{role}", role)
        users.revoke(server.engine, f"revoked-{role}")
    server.user("victim-tutor", "tutor")
    server.user("victim-learner", "learner")
    try:
        yield server
    finally:
        server.client.close()
        server.engine.dispose()
        if schema:
            import psycopg

            with contextlib.suppress(Exception), psycopg.connect(request.getfixturevalue("pg_dsn"),
                                                                 autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def template(tid: str, **extra: Any) -> dict[str, Any]:
    return {"id": tid, "title": f"Scales {tid}", "type": "custom", "templateVersion": 1,
            "schedule": {"kind": "recurring", "rule": "FREQ=WEEKLY;BYDAY=MO", "durationMinutes": 20,
                         "timeOfDay": "18:00", "startDate": "2026-06-01"},
            "metadata": {"preview": {"segments": [{"label": "Warm-up", "durationMinutes": 5}]}},
            "createdAt": T0, "updatedAt": T0, **extra}


def plan(pid: str, **extra: Any) -> dict[str, Any]:
    return {"id": pid, "title": "Plan", "type": "custom", "schedule": {"kind": "single", "durationMinutes": 30},
            "visibility": "private", "status": "active", "createdAt": T0, "updatedAt": T0, **extra}


def occurrence(oid: str, pid: str, **extra: Any) -> dict[str, Any]:
    return {"id": oid, "planId": pid, "scheduledStart": "2026-06-01T18:00:00.000Z", "status": "scheduled",
            "createdAt": T0, "updatedAt": T0, **extra}


def entry(eid: str, **extra: Any) -> dict[str, Any]:
    return {"id": eid, "duration": 5, "type": "practice", "instrument": "piano", "updatedAt": T0, **extra}


def rows(w: Server, entity_id: str, owner: str | None = None) -> list[dict[str, Any]]:
    """Every stored row (any user, deleted ones too) with this entity id, straight from the database."""
    t, u = db.sync_rows, db.users
    query = sa.select(u.c.name, t.c.entity_type, t.c.data, t.c.version, t.c.deleted_at).join(
        u, u.c.id == t.c.user_id).where(t.c.entity_id == entity_id)
    if owner is not None:
        query = query.where(u.c.name == owner)
    with db.connection(w.engine) as conn:
        found = conn.execute(query).all()
    return [{"owner": r.name, "type": r.entity_type, "data": json.loads(r.data), "version": r.version,
             "deleted": r.deleted_at} for r in found]


def stored(w: Server, owner: str, entity_id: str, entity_type: str | None = None) -> dict[str, Any] | None:
    found = [r for r in rows(w, entity_id, owner) if entity_type is None or r["type"] == entity_type]
    assert len(found) <= 1, found
    return found[0]["data"] if found else None


def live_count(w: Server, owner: str) -> int:
    t, u = db.sync_rows, db.users
    with db.connection(w.engine) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t).join(u, u.c.id == t.c.user_id).where(
            u.c.name == owner, t.c.deleted_at.is_(None))).scalar() or 0)


def adoption_count(w: Server, owner: str, template_id: str) -> int:
    a, u = db.adoptions, db.users
    with db.connection(w.engine) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(a).join(
            u, u.c.id == a.c.template_owner_id).where(u.c.name == owner, a.c.template_id == template_id)).scalar())


def batch(w: Server, who: str, *entities: tuple[str, str, dict[str, Any]], version: int = 1) -> Any:
    return w.post("/api/sync/batch", who, {"entities": [
        {"id": data["id"], "type": etype, "version": version, "checksum": f"c-{eid}", "data": data}
        for etype, eid, data in entities]})


def adopt(w: Server, who: str, template_id: str, **body: Any) -> Any:
    return w.post("/api/templates/adopt", who, {"templateId": template_id, **body})


def gallery(w: Server, who: str) -> Any:
    return w.client.get("/api/templates", headers=w.auth(who))


def all_ids(body: dict[str, Any]) -> set[str]:
    return {i["id"] for k, v in body.items() if isinstance(v, list) for i in v if isinstance(i, dict)}


# ------------------------------------------------------------------------------------------------ own objects

def own_pull(w: Server, role: str, uid: str) -> None:
    assert w.push(role, {"entries": [entry(uid)], "practicePlans": [plan(f"{uid}-p")],
                         "planOccurrences": [occurrence(f"{uid}-o", f"{uid}-p")],
                         "planTemplates": [template(f"{uid}-t")]}).status_code == 200
    for body in ({}, {"since": None, "limit": 5000}):
        got = w.pull(role, body).json()
        assert {uid, f"{uid}-p", f"{uid}-o", f"{uid}-t"} <= all_ids(got), body
        for array in ("entries", "practicePlans", "planOccurrences"):
            assert {i["user_id"] for i in got[array]} == {role}, (array, body)
        assert {t["authorId"] for t in got["planTemplates"]} == {role}


def own_push(w: Server, role: str, uid: str) -> None:
    answer = w.push(role, {"entries": [entry(uid)], "practicePlans": [plan(f"{uid}-p")],
                           "planOccurrences": [occurrence(f"{uid}-o", f"{uid}-p")],
                           "planTemplates": [template(f"{uid}-draft", visibility="private")]}).json()
    assert answer["success"] is True and answer["conflicts"] == []
    for eid in (uid, f"{uid}-p", f"{uid}-o", f"{uid}-draft"):
        assert [r["owner"] for r in rows(w, eid)] == [role], eid
    # an update of one's own object is a new version of the same row
    again = w.push(role, {"entries": [entry(uid, duration=9, updatedAt=T1)]}).json()
    assert again["versions"] == {f"logbook_entry:{uid}": 2} and stored(w, role, uid)["duration"] == 9
    # publishing: tutors and admins may, a learner's attempt is a per-item conflict "forbidden"
    answer = w.push(role, {"planTemplates": [template(f"{uid}-pub", publishedAt=T0),
                                             template(f"{uid}-public", visibility="public")]}).json()
    if role in PUBLISHERS:
        assert answer["conflicts"] == []
        assert stored(w, role, f"{uid}-pub")["publishedAt"] > "2020"
        assert stored(w, role, f"{uid}-public")["visibility"] == "public"
    else:
        assert [(c["entityId"], c["reason"]) for c in answer["conflicts"]] == [
            (f"{uid}-pub", "forbidden"), (f"{uid}-public", "forbidden")]
        assert rows(w, f"{uid}-pub") == [] and rows(w, f"{uid}-public") == []


def own_batch(w: Server, role: str, uid: str) -> None:
    answer = batch(w, role, ("logbook_entry", uid, entry(uid)), ("practice_plan", f"{uid}-p", plan(f"{uid}-p")),
                   ("plan_template", f"{uid}-pub", template(f"{uid}-pub", publishedAt=T0))).json()
    assert answer["downloaded"] == live_count(w, role) - (3 if role in PUBLISHERS else 2)
    assert [r["owner"] for r in rows(w, uid)] == [role] and [r["owner"] for r in rows(w, f"{uid}-p")] == [role]
    if role in PUBLISHERS:
        assert answer["uploaded"] == 3 and answer["conflicts"] == []
        assert stored(w, role, f"{uid}-pub")["publishedAt"] > "2020"
    else:
        assert answer["uploaded"] == 2
        assert [(c["entityId"], c["reason"]) for c in answer["conflicts"]] == [(f"{uid}-pub", "forbidden")]
        assert rows(w, f"{uid}-pub") == []


def own_status(w: Server, role: str, uid: str) -> None:
    w.push(role, {"entries": [entry(uid)]})
    body = w.status(role).json()
    assert (body["user"], body["role"]) == (role, role)
    assert body["entityCount"] == live_count(w, role)
    assert "template-gallery" in body["capabilities"]


def own_adopt(w: Server, role: str, uid: str) -> None:
    w.push(role, {"planTemplates": [template(f"{uid}-draft")]})  # never published: not adoptable, even one's own
    assert (adopt(w, role, f"{uid}-draft").status_code, adopt(w, role, f"{uid}-draft").json()) == (404, NOT_FOUND)
    if role in PUBLISHERS:  # one's own published template, even a private one
        w.push(role, {"planTemplates": [template(f"{uid}-mine", publishedAt=T0, visibility="private")]})
        source_owner, source = role, f"{uid}-mine"
    else:  # a learner adopts a published template visible to them
        w.push("victim-tutor", {"planTemplates": [template(f"{uid}-pub", publishedAt=T0, visibility="public")]})
        source_owner, source = "victim-tutor", f"{uid}-pub"
    r = adopt(w, role, source)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["plan"]["ownerId"] == role and body["plan"]["user_id"] == role
    assert body["plan"]["sourceTemplateId"] == source
    assert [x["owner"] for x in rows(w, body["plan"]["id"])] == [role]
    assert [x["owner"] for x in rows(w, body["occurrences"][0]["id"])] == [role]
    assert adoption_count(w, source_owner, source) == 1


def own_gallery(w: Server, role: str, uid: str) -> None:
    w.push(role, {"planTemplates": [template(f"{uid}-draft", visibility="public")]})
    if role in PUBLISHERS:
        w.push(role, {"planTemplates": [template(f"{uid}-mine", publishedAt=T0, visibility="private")]})
    r = gallery(w, role)
    assert r.status_code == 200, r.text
    listed = {t["id"]: t for t in r.json()["templates"]}
    assert r.json()["count"] == len(r.json()["templates"])
    assert f"{uid}-draft" not in listed
    if role in PUBLISHERS:
        mine = listed[f"{uid}-mine"]
        assert mine["authorId"] == role and mine["adoptionCount"] == 0 and mine["publishedAt"] > "2020"
    # everything listed is published, and the caller's own or public
    for t in listed.values():
        assert t["publishedAt"] and (t["authorId"] == role or t["visibility"] == "public"), t


def own_health(w: Server, role: str, uid: str) -> None:
    r = w.client.get("/health", headers=w.auth(role))
    assert r.status_code == 200 and r.json()["status"] == "healthy" and "user" not in r.json()


# ------------------------------------------------------------------------------------------------ others' objects

def _victims(w: Server, uid: str) -> dict[str, tuple[str, int, Any]]:
    """Objects of the two victims; returns a snapshot (owner, version, data) per entity id."""
    w.push("victim-tutor", {"entries": [entry(uid, duration=1)], "practicePlans": [plan(f"{uid}-p")],
                            "planTemplates": [template(f"{uid}-pub", publishedAt=T0, visibility="public"),
                                              template(f"{uid}-priv", publishedAt=T0, visibility="private"),
                                              template(f"{uid}-draft", visibility="public")]})
    w.push("victim-learner", {"entries": [entry(f"{uid}-l", duration=2)],
                              "planTemplates": [template(f"{uid}-ltpl", visibility="private")]})
    return snapshot(w, uid)


def snapshot(w: Server, uid: str) -> dict[str, tuple[str, int, Any]]:
    out = {}
    for eid in (uid, f"{uid}-p", f"{uid}-pub", f"{uid}-priv", f"{uid}-draft", f"{uid}-l", f"{uid}-ltpl"):
        for r in rows(w, eid):
            if r["owner"].startswith("victim"):
                out[eid] = (r["owner"], r["version"], r["data"], r["deleted"])
    return out


def other_pull(w: Server, role: str, uid: str) -> None:
    _victims(w, uid)
    for body in ({}, {"since": None, "limit": 5000}):
        got = w.pull(role, body).json()
        assert not {uid, f"{uid}-p", f"{uid}-pub", f"{uid}-priv", f"{uid}-l", f"{uid}-ltpl"} & all_ids(got), body
        for array in ("entries", "practicePlans", "planOccurrences"):
            assert {i["user_id"] for i in got[array]} <= {role}


def other_push(w: Server, role: str, uid: str) -> None:
    before = _victims(w, uid)
    answer = w.push(role, {"entries": [entry(uid, duration=99, updatedAt=T1), entry(f"{uid}-l", duration=98)],
                           "practicePlans": [plan(f"{uid}-p", title="hijack", updatedAt=T1)],
                           "planTemplates": [template(f"{uid}-priv", title="hijack", updatedAt=T1)]}).json()
    assert answer["conflicts"] == []
    assert snapshot(w, uid) == before  # nothing of theirs changed
    assert stored(w, role, uid)["duration"] == 99 and stored(w, role, f"{uid}-l")["duration"] == 98
    assert stored(w, role, f"{uid}-p")["title"] == "hijack"
    assert stored(w, role, f"{uid}-priv")["authorId"] == role
    # deleting "their" id deletes the caller's own row only
    w.push(role, {"entries": [{"id": uid, "deletedAt": T1, "updatedAt": T1}]})
    assert snapshot(w, uid) == before and rows(w, uid, role)[0]["deleted"]


def other_batch(w: Server, role: str, uid: str) -> None:
    before = _victims(w, uid)
    answer = batch(w, role, ("logbook_entry", uid, entry(uid, duration=99)),
                   ("plan_template", f"{uid}-priv", template(f"{uid}-priv", title="hijack")), version=50).json()
    assert answer["uploaded"] == 2 and answer["conflicts"] == []
    assert answer["downloaded"] == live_count(w, role) - 2  # only the caller's rows are counted
    assert snapshot(w, uid) == before
    assert stored(w, role, uid)["duration"] == 99 and stored(w, role, f"{uid}-priv")["authorId"] == role


def other_status(w: Server, role: str, uid: str) -> None:
    count = w.status(role).json()["entityCount"]
    _victims(w, uid)
    body = w.status(role).json()
    assert body["entityCount"] == count == live_count(w, role) and body["user"] == role


def other_adopt(w: Server, role: str, uid: str) -> None:
    before = _victims(w, uid)
    w.push("victim-tutor", {"planTemplates": [template(f"{uid}-gone", publishedAt=T0, visibility="public")]})
    w.push("victim-tutor", {"planTemplates": [{"id": f"{uid}-gone", "deletedAt": T1, "updatedAt": T1}]})
    plans_before = live_count(w, role)
    # private, unpublished, deleted, a learner's: 404, and their existence is not revealed
    for hidden in (f"{uid}-priv", f"{uid}-draft", f"{uid}-gone", f"{uid}-ltpl", f"{uid}-nothing", uid):
        r = adopt(w, role, hidden)
        assert (r.status_code, r.json()) == (404, NOT_FOUND), hidden
    assert live_count(w, role) == plans_before and adoption_count(w, "victim-tutor", f"{uid}-priv") == 0
    # a revoked tutor's public template is gone too
    gone = f"gone-{uid}"[:60]
    w.user(gone, "tutor")
    w.push(gone, {"planTemplates": [template(f"{uid}-rev", publishedAt=T0, visibility="public")]})
    users.revoke(w.engine, gone)
    assert adopt(w, role, f"{uid}-rev").status_code == 404
    # a public published one is adoptable: the copy is the caller's; the author's rows are untouched
    r = adopt(w, role, f"{uid}-pub")
    assert r.status_code == 200, r.text
    assert [x["owner"] for x in rows(w, r.json()["plan"]["id"])] == [role]
    assert r.json()["plan"]["ownerId"] == role
    after = snapshot(w, uid)
    assert {k: v for k, v in after.items() if k != f"{uid}-pub"} == {k: v for k, v in before.items()
                                                                      if k != f"{uid}-pub"}
    assert after[f"{uid}-pub"][2] == before[f"{uid}-pub"][2]  # the template's data is unchanged
    assert adoption_count(w, "victim-tutor", f"{uid}-pub") == 1


def other_gallery(w: Server, role: str, uid: str) -> None:
    _victims(w, uid)
    gone = f"gone-{uid}"[:60]
    w.user(gone, "tutor")
    w.push(gone, {"planTemplates": [template(f"{uid}-rev", publishedAt=T0, visibility="public")]})
    users.revoke(w.engine, gone)
    listed = {t["id"]: t for t in gallery(w, role).json()["templates"]}
    assert listed[f"{uid}-pub"]["authorId"] == "victim-tutor" and listed[f"{uid}-pub"]["adoptionCount"] == 0
    for hidden in (f"{uid}-priv", f"{uid}-draft", f"{uid}-ltpl", f"{uid}-rev"):
        assert hidden not in listed, hidden
    # the count is derived from the adoptions table
    assert adopt(w, "victim-learner", f"{uid}-pub").status_code == 200
    listed = {t["id"]: t for t in gallery(w, role).json()["templates"]}
    assert listed[f"{uid}-pub"]["adoptionCount"] == 1


def other_health(w: Server, role: str, uid: str) -> None:
    own_health(w, role, uid)


OWN: dict[str, Callable[[Server, str, str], None]] = {
    "pull": own_pull, "push": own_push, "batch": own_batch, "status": own_status, "adopt": own_adopt,
    "gallery": own_gallery, "health": own_health,
}
OTHER: dict[str, Callable[[Server, str, str], None]] = {
    "pull": other_pull, "push": other_push, "batch": other_batch, "status": other_status, "adopt": other_adopt,
    "gallery": other_gallery, "health": other_health,
}


# ------------------------------------------------------------------------------------------------ no valid token

def _request_body(endpoint: str, uid: str) -> Any:
    """A request that would write (or read) something with the id ``uid`` if it were authenticated."""
    return {
        "pull": {"since": None},
        "push": {"changes": {"entries": [entry(uid)], "planTemplates": [template(f"{uid}-t", publishedAt=T0)]}},
        "batch": {"entities": [{"id": uid, "type": "logbook_entry", "version": 1, "checksum": "x",
                                "data": entry(uid)}]},
        "status": None,
        "adopt": {"templateId": f"{uid}-pub"},
        "gallery": None,
        "health": None,
    }[endpoint]


def _credentials(w: Server, role: str, target: str) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
    """(path suffix, headers, expected 401 body) for each way of presenting a non-working credential."""
    token = w.tokens[role]
    if target == "no-token":
        return [("", {}, NO_TOKEN), ("", {"Authorization": ""}, NO_TOKEN), ("", {"Authorization": "   "}, NO_TOKEN)]
    if target == "malformed":
        return [("", {"Authorization": value}, BAD_TOKEN) for value in (
            "Bearer nope", f"bearer {token}", f"Token {token}", "Bearer ", f"Bearer {token}x", f"Basic {token}",
            f"Bearer {token[:-1]}", f"Bearer {token.upper()}", f"Bearer {'x' * 600}", f"{token}")]
    if target == "revoked":
        return [("", {"Authorization": f"Bearer {w.tokens[f'revoked-{role}']}"}, BAD_TOKEN)]
    if target == "query":
        return [(f"?token={token}&access_token={token}&auth-token={token}&authorization=Bearer%20{token}", {},
                 NO_TOKEN)]
    if target == "cookie":
        return [("", {"Cookie": f"auth-token={token}; token={token}; access_token={token}"}, NO_TOKEN)]
    raise AssertionError(target)


def refused(w: Server, endpoint: str, role: str, target: str, uid: str) -> None:
    method, path = ENDPOINTS[endpoint]
    body = _request_body(endpoint, uid)
    w.push("victim-tutor", {"planTemplates": [template(f"{uid}-pub", publishedAt=T0, visibility="public")]})
    for suffix, headers, expected in _credentials(w, role, target):
        r = w.client.request(method, path + suffix, headers=headers,
                             **({"json": body} if body is not None else {}))
        if endpoint == "health":  # needs no token: whatever is presented, it answers and names no user
            assert r.status_code == 200 and r.json()["status"] == "healthy" and "user" not in r.json()
            continue
        assert (r.status_code, r.json()) == (401, expected), (endpoint, target, headers, suffix)
    # nothing was written anywhere, and the template was not adopted
    assert rows(w, uid) == [] and rows(w, f"{uid}-t") == []
    assert adoption_count(w, "victim-tutor", f"{uid}-pub") == 0


# ------------------------------------------------------------------------------------------------ the matrix

def test_the_matrix_covers_every_endpoint_and_role() -> None:
    assert set(ENDPOINTS) == set(OWN) == set(OTHER), "an endpoint without authorisation cases"
    assert set(ROLES) == {"learner", "tutor", "admin"}, "a role without authorisation cases"
    for endpoint in ENDPOINTS:
        _request_body(endpoint, "x")  # KeyError for an endpoint without a request in the table


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_authorisation(w: Server, endpoint: str, role: str, target: str) -> None:
    uid = f"az-{endpoint}-{role}-{target}"
    if target == "own":
        OWN[endpoint](w, role, uid)
    elif target == "other":
        OTHER[endpoint](w, role, uid)
    else:
        refused(w, endpoint, role, target, uid)


# ------------------------------------------------------------------------------------------------ mass assignment

STAMP = datetime(2026, 5, 3, 10, 0, 0, tzinfo=UTC)
STAMP_TEXT = "2026-05-03T10:00:00.000Z"
APPROVAL = ("approved", "approvedAt", "approvedBy", "approvalStatus")
# field -> (entity type, the value a client tries, the value the server must store: a function of the caller
# and the item; ABSENT: the key is not stored at all)
ABSENT = object()
MASS: dict[str, list[tuple[str, Any, Callable[[str, dict[str, Any]], Any]]]] = {
    "user_id": [("logbook_entry", BOGUS, lambda who, item: who), ("practice_plan", BOGUS, lambda who, item: who),
                ("plan_occurrence", BOGUS, lambda who, item: who), ("goal", BOGUS, lambda who, item: who)],
    "authorId": [("plan_template", BOGUS, lambda who, item: who)],
    "ownerId": [("practice_plan", BOGUS, lambda who, item: who)],
    "adoptionCount": [("plan_template", 99, lambda who, item: ABSENT)],
    "publishedAt": [("plan_template", "2000-01-01T00:00:00.000Z", lambda who, item: STAMP_TEXT)],
    **{key: [("plan_template", True if key == "approved" else BOGUS, lambda who, item: ABSENT)]
       for key in APPROVAL},
    "plan_id": [("plan_occurrence", "someone-elses-plan", lambda who, item: item["planId"])],
    "created_at": [(t, "1999-01-01T00:00:00.000Z", lambda who, item: item["createdAt"])
                   for t in ("practice_plan", "plan_occurrence", "plan_template")],
    "updated_at": [(t, "1999-01-01T00:00:00.000Z", lambda who, item: item["updatedAt"])
                   for t in ("practice_plan", "plan_occurrence", "plan_template")],
}
ARRAY = {"logbook_entry": "entries", "practice_plan": "practicePlans", "plan_occurrence": "planOccurrences",
         "plan_template": "planTemplates", "goal": "goals"}


def _item(entity_type: str, eid: str) -> dict[str, Any]:
    return {"logbook_entry": lambda: entry(eid), "practice_plan": lambda: plan(eid),
            "plan_occurrence": lambda: occurrence(eid, f"{eid}-plan"),
            "plan_template": lambda: template(eid, publishedAt=T0, visibility="public"),
            "goal": lambda: {"id": eid, "title": "Goal", "status": "active"}}[entity_type]()


@pytest.mark.parametrize("role", PUBLISHERS)
@pytest.mark.parametrize("endpoint", ["push", "batch"])
@pytest.mark.parametrize("field", list(MASS))
def test_mass_assignment_of_server_owned_fields_is_ignored(w: Server, field: str, endpoint: str, role: str) -> None:
    """A tutor or admin (who may publish) sends each server-owned field with a forged value, in every entity
    type that has it: the stored value is the server's. (A learner's forged ``publishedAt`` is refused
    whole: the matrix's own push/batch cases.)"""
    w.clock.fixed = STAMP
    try:
        for entity_type, forged, expected in MASS[field]:
            eid = f"ma-{endpoint}-{role}-{field}-{entity_type}"
            item = _item(entity_type, eid)
            item[field] = forged
            if endpoint == "push":
                answer = w.push(role, {ARRAY[entity_type]: [item]}).json()
                assert answer["conflicts"] == [], answer
            else:
                answer = batch(w, role, (entity_type, eid, item)).json()
                assert answer["conflicts"] == [] and answer["uploaded"] == 1, answer
            data = stored(w, role, eid, entity_type)
            assert data is not None
            want = expected(role, item)
            if want is ABSENT:
                assert field not in data, (entity_type, data)
            else:
                assert data.get(field) == want, (entity_type, field, data.get(field), want)
            # and pull answers the server's value too (a template's adoption count is derived)
            if entity_type == "plan_template" and field == "adoptionCount":
                pulled = {t["id"]: t for t in w.pull(role).json()["planTemplates"]}
                assert pulled[eid]["adoptionCount"] == 0
    finally:
        w.clock.fixed = None


@pytest.mark.parametrize("role", ROLES)
def test_mass_assignment_through_adopt_is_ignored(w: Server, role: str) -> None:
    """Adopt accepts only ``templateId`` and ``customization`` (title, focus, tags, four schedule keys): forged
    owner, user, plan and count fields anywhere in the body change nothing."""
    tid = f"ma-adopt-{role}"
    w.push("victim-tutor", {"planTemplates": [template(tid, publishedAt=T0, visibility="public")]})
    forged = {"user_id": BOGUS, "ownerId": BOGUS, "authorId": BOGUS, "plan_id": "x", "adoptionCount": 50,
              "publishedAt": T0, "approved": True, "created_at": "1999", "updated_at": "1999", "id": "plan_forged"}
    r = adopt(w, role, tid, **forged, customization={"title": "Mine", **forged, "schedule": {"timeOfDay": "07:00",
                                                                                              **forged}})
    assert r.status_code == 200, r.text
    plan_id = r.json()["plan"]["id"]
    assert plan_id != "plan_forged" and rows(w, "plan_forged") == []
    data = stored(w, role, plan_id)
    assert data["user_id"] == role and data["ownerId"] == role and data["title"] == "Mine"
    for key in ("authorId", "plan_id", "adoptionCount", "publishedAt", "approved", "created_at", "updated_at"):
        assert key not in data and key not in data["schedule"], key
    occ = stored(w, role, r.json()["occurrences"][0]["id"])
    assert occ["user_id"] == role and occ["planId"] == plan_id
    assert adoption_count(w, "victim-tutor", tid) == 1
    tpl = stored(w, "victim-tutor", tid)
    assert "adoptionCount" not in tpl and tpl["authorId"] == "victim-tutor"
