"""What `practiceplan serve` adds to the Mirubato protocol (docs/sync.md, docs/server.md): incremental pull with
tombstones and paging, conditional push, idempotency that fails closed, limits, unknown fields that survive,
server-owned fields that clients cannot set, no exception text in a 500."""

from __future__ import annotations

import threading

from practiceplan.server.service import Limits

T0 = "2026-05-01T09:00:00.000Z"


def plan(pid: str, updated: str = T0, **extra):
    return {"id": pid, "title": f"Plan {pid}", "type": "custom", "schedule": {"kind": "single"},
            "createdAt": T0, "updatedAt": updated, **extra}


def test_incremental_pull_pages_oldest_first_with_versions_and_tombstones(srv):
    srv.user("a")
    srv.push("a", {"practicePlans": [plan(f"p{i}") for i in range(5)]})
    seen, cursor, pages = [], None, 0
    while True:
        body = srv.pull("a", {"since": cursor, "limit": 2}).json()
        pages += 1
        seen += [p["id"] for p in body["practicePlans"]]
        assert all(body["versions"][f"practice_plan:{p['id']}"] == 1 for p in body["practicePlans"])
        cursor = body["cursor"]
        if not body["hasMore"]:
            break
    assert seen == [f"p{i}" for i in range(5)] and pages == 3
    assert srv.pull("a", {"since": cursor}).json()["practicePlans"] == []
    # a deletion comes back as a tombstone with a new version; the plain (Mirubato) pull omits it
    answer = srv.push("a", {"practicePlans": [{"id": "p1", "deletedAt": "2026-05-02T09:00:00.000Z"}]}).json()
    assert answer["versions"] == {"practice_plan:p1": 2}
    body = srv.pull("a", {"since": cursor}).json()
    assert [(p["id"], p["deletedAt"]) for p in body["practicePlans"]] == [("p1", "2026-05-02T09:00:00.000Z")]
    assert body["versions"] == {"practice_plan:p1": 2} and int(body["cursor"]) > int(cursor)
    assert "p1" not in [p["id"] for p in srv.pull("a").json()["practicePlans"]]
    bad = srv.pull("a", {"since": "not-a-cursor"})
    assert bad.status_code == 400 and bad.json()["error"] == "Invalid request body"


def test_tombstones_are_kept_180_days_then_an_older_cursor_gets_a_full_snapshot(srv):
    srv.user("a")
    srv.push("a", {"practicePlans": [plan("keep"), plan("gone")]})
    cursor = srv.pull("a", {"since": None}).json()["cursor"]
    srv.push("a", {"practicePlans": [{"id": "gone", "deletedAt": "2026-05-02T09:00:00.000Z"}]})
    srv.clock.advance(days=179)
    srv.push("a", {"practicePlans": [plan("new", "2026-06-01T09:00:00.000Z")]})  # pushes purge: too early
    assert [p["id"] for p in srv.pull("a", {"since": cursor}).json()["practicePlans"]] == ["gone", "new"]
    srv.service._purged.clear()
    srv.clock.advance(days=2)
    srv.push("a", {"practicePlans": [plan("newer", "2026-06-02T09:00:00.000Z")]})
    body = srv.pull("a", {"since": cursor}).json()
    assert body.get("reset") is True  # the tombstone is gone: a full snapshot of live rows instead
    assert sorted(p["id"] for p in body["practicePlans"]) == ["keep", "new", "newer"]
    assert "reset" not in srv.pull("a", {"since": body["cursor"]}).json()


def test_conditional_push_answers_stale_with_the_remote_version(srv):
    srv.user("a")
    first = srv.push("a", {"practicePlans": [plan("p")]}, baseVersions={"practice_plan:p": 0}).json()
    assert first["conflicts"] == [] and first["versions"] == {"practice_plan:p": 1}
    # another device believes it does not exist (base 0): stale, not an overwrite
    again = srv.push("a", {"practicePlans": [plan("p", "2026-05-03T09:00:00.000Z", title="other")]},
                     baseVersions={"practice_plan:p": 0}).json()
    assert again["conflicts"] == [{"entityId": "p", "entityType": "practice_plan", "reason": "stale",
                                   "remoteVersion": 1}]
    assert again["versions"] == {}
    ok = srv.push("a", {"practicePlans": [plan("p", "2026-05-03T09:00:00.000Z", title="edited")]},
                  baseVersions={"practice_plan:p": 1}).json()
    assert ok["conflicts"] == [] and ok["versions"] == {"practice_plan:p": 2}
    # without base versions: an older updatedAt is stale too, and so is resurrecting a deletion with an old copy
    old = srv.push("a", {"practicePlans": [plan("p", "2026-05-02T09:00:00.000Z")]}).json()
    assert old["conflicts"][0]["reason"] == "stale" and old["conflicts"][0]["remoteVersion"] == 2
    srv.push("a", {"practicePlans": [{"id": "p", "deletedAt": "2026-05-04T09:00:00.000Z"}]})
    back = srv.push("a", {"practicePlans": [plan("p", "2026-05-03T10:00:00.000Z")]}).json()
    assert back["conflicts"][0]["reason"] == "stale"
    assert srv.pull("a").json()["practicePlans"] == []


def test_idempotent_replay_is_exact_and_concurrent_duplicates_apply_once(srv):
    srv.user("a")
    changes = {"entries": [{"id": "e1", "duration": 10, "updatedAt": T0}]}
    first = srv.push("a", changes, key="k-1")
    again = srv.push("a", changes, key="k-1")
    assert again.headers["x-idempotent-replay"] == "true" and again.json() == first.json()
    other = srv.push("a", {"entries": [{"id": "e2", "duration": 10}]}, key="k-1")
    assert other.status_code == 422 and other.json()["code"] == 422
    # the same key from another user is another key
    srv.user("b")
    assert "x-idempotent-replay" not in srv.push("b", changes, key="k-1").headers
    # eight copies of one request at once: applied once, the others are replays of it
    results = []
    body = {"entries": [{"id": "e3", "duration": 3}]}

    def send():
        results.append(srv.push("a", body, key="k-2"))

    threads = [threading.Thread(target=send) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert {r.status_code for r in results} == {200}
    assert sum(1 for r in results if "x-idempotent-replay" not in r.headers) == 1
    assert len({r.json()["syncToken"] for r in results}) == 1
    assert srv.pull("a", {"since": None}).json()["versions"]["logbook_entry:e3"] == 1


def test_limits_413_and_429(make_server):
    srv = make_server(Limits(max_body_bytes=2000, max_items=3, rate_per_minute=60, rate_burst=3))
    srv.user("a")
    big = srv.push("a", {"entries": [{"id": "e", "notes": "x" * 3000}]})
    assert big.status_code == 413 and big.json()["success"] is False and big.json()["code"] == 413
    many = srv.push("a", {"entries": [{"id": f"e{i}"} for i in range(4)]})
    assert many.status_code == 413 and many.json()["error"] == "Too many items"
    assert srv.status("a").status_code == 200  # the third request of a burst of 3
    limited = srv.status("a")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json() == {"success": False, "error": "Too many requests", "code": 429}
    srv.user("b")  # per token: another user is not limited
    assert srv.status("b").status_code == 200


def test_unknown_fields_survive_and_an_older_client_loses_nothing(srv):
    srv.user("a")
    entry = {"id": "e1", "duration": 10, "scoreId": "score_x", "autoTracked": True, "updatedAt": T0,
             "pieces": [{"title": "Air", "composer": "Bach", "measures": "1-8", "tempo": 60}],
             "metadata": {"nested": {"deep": [1, {"k": "v"}]}}}
    occ = {"id": "o1", "planId": "p1", "segments": [{"label": "Warm-up", "future": {"x": 1}}],
           "newerField": [1, 2], "updatedAt": T0}
    srv.push("a", {"entries": [entry], "planOccurrences": [occ],
                   "practicePlans": [plan("p1", schedule={"kind": "single", "zone": "Europe/Berlin"}, v2={"a": 1})]})
    body = srv.pull("a").json()
    got = body["entries"][0]
    assert got["scoreId"] == "score_x" and got["autoTracked"] is True
    assert got["pieces"][0]["measures"] == "1-8" and got["pieces"][0]["id"] == "air-bach"
    assert got["metadata"] == entry["metadata"]
    assert body["planOccurrences"][0]["newerField"] == [1, 2]
    assert body["planOccurrences"][0]["segments"][0]["future"] == {"x": 1}
    pl = body["practicePlans"][0]
    assert pl["schedule"]["zone"] == "Europe/Berlin" and pl["v2"] == {"a": 1}
    # an older client pushes a newer snapshot without the fields it does not know: they stay
    srv.push("a", {"practicePlans": [plan("p1", "2026-05-02T09:00:00.000Z", title="renamed")]})
    pl = srv.pull("a").json()["practicePlans"][0]
    assert pl["title"] == "renamed" and pl["v2"] == {"a": 1}


def test_server_owned_fields_are_ignored(srv):
    srv.user("t", "tutor")
    srv.push("t", {
        "practicePlans": [plan("p", user_id="mallory", ownerId="mallory")],
        "entries": [{"id": "e", "user_id": "mallory"}],
        "planOccurrences": [{"id": "o", "planId": "p", "user_id": "mallory", "plan_id": "elsewhere"}],
        "planTemplates": [{"id": "tpl", "title": "T", "schedule": {"kind": "single"}, "authorId": "mallory",
                           "adoptionCount": 99, "publishedAt": "2000-01-01T00:00:00.000Z", "approved": True,
                           "approvedBy": "mallory", "createdAt": T0, "updatedAt": T0}],
    })
    body = srv.pull("t").json()
    assert body["practicePlans"][0]["user_id"] == "t" and body["practicePlans"][0]["ownerId"] == "t"
    assert body["entries"][0]["user_id"] == "t"
    assert body["planOccurrences"][0]["user_id"] == "t" and body["planOccurrences"][0]["plan_id"] == "p"
    tpl = body["planTemplates"][0]
    assert tpl["authorId"] == "t" and tpl["adoptionCount"] == 0
    assert tpl["publishedAt"] > "2020" and "approved" not in tpl and "approvedBy" not in tpl
    # batch cannot set them either
    srv.client.post("/api/sync/batch", headers=srv.auth("t"), json={"entities": [
        {"id": "tpl2", "type": "plan_template", "version": 1, "checksum": "x",
         "data": {"id": "tpl2", "title": "B", "authorId": "mallory", "adoptionCount": 5}}]})
    tpl2 = next(t for t in srv.pull("t").json()["planTemplates"] if t["id"] == "tpl2")
    assert tpl2["authorId"] == "t" and tpl2["adoptionCount"] == 0


def test_a_500_never_carries_exception_text(srv, monkeypatch):
    srv.user("a")

    def boom(*_args, **_kwargs):
        raise RuntimeError("secret detail /etc/passwd")

    monkeypatch.setattr(srv.service, "pull", boom)
    response = srv.pull("a")
    assert response.status_code == 500
    assert response.json() == {"success": False, "error": "Internal server error", "code": 500}
