"""Users, tokens and roles: 401s, revoked tokens, isolation between users, who publishes, who adopts what,
adoption counts derived from the adoptions table."""

from __future__ import annotations

from practiceplan.server import users

T0 = "2026-05-01T09:00:00.000Z"
NO_TOKEN = {"success": False, "error": "No authentication token provided", "code": 401}
BAD_TOKEN = {"success": False, "error": "Invalid or expired token", "code": 401}


def template(tid: str, **extra):
    return {"id": tid, "title": "Scales", "type": "custom", "templateVersion": 1,
            "schedule": {"kind": "recurring", "rule": "FREQ=WEEKLY;BYDAY=MO", "durationMinutes": 20,
                         "timeOfDay": "18:00", "startDate": "2026-06-01"},
            "metadata": {"preview": {"segments": [{"label": "Warm-up", "durationMinutes": 5}]}},
            "createdAt": T0, "updatedAt": T0, **extra}


def test_authentication_is_a_bearer_header_only(srv):
    token = srv.user("a")
    paths = [("POST", "/api/sync/pull"), ("POST", "/api/sync/push"), ("POST", "/api/sync/batch"),
             ("GET", "/api/sync/status"), ("POST", "/api/templates/adopt")]
    for method, path in paths:
        assert srv.client.request(method, path).json() == NO_TOKEN
        for header in ("Bearer nope", f"bearer {token}", f"Token {token}", "Bearer "):
            r = srv.client.request(method, path, headers={"Authorization": header})
            assert (r.status_code, r.json()) == (401, BAD_TOKEN), (path, header)
        # never in the URL or a cookie
        assert srv.client.request(method, f"{path}?token={token}&access_token={token}").status_code == 401
        r = srv.client.request(method, path, headers={"Cookie": f"auth-token={token}"})
        assert r.status_code == 401
    assert srv.status("a").status_code == 200
    assert srv.client.get("/health").json()["status"] == "healthy"
    assert srv.client.get("/api/sync/pull").json() == {"success": False, "error": "Not found", "code": 404}


def test_user_add_list_revoke(srv):
    srv.user("a", "tutor")
    srv.user("b")
    listed = {u["name"]: u for u in users.listing(srv.engine)}
    assert listed["a"]["role"] == "tutor" and listed["b"]["role"] == "learner" and listed["b"]["active"]
    stored = srv.engine.connect().exec_driver_sql("SELECT token_hash FROM users").scalars().all()
    assert srv.tokens["a"] not in stored and all(len(h) == 64 for h in stored)  # only hashes are kept
    assert users.revoke(srv.engine, "b")["already"] is False
    assert (srv.status("b").status_code, srv.status("b").json()) == (401, BAD_TOKEN)
    assert users.revoke(srv.engine, "b")["already"] is True
    assert not {u["name"]: u for u in users.listing(srv.engine)}["b"]["active"]
    assert srv.status("a").status_code == 200


def test_another_users_data_is_invisible(srv):
    srv.user("a", "tutor")
    srv.user("b")
    srv.push("a", {"entries": [{"id": "same", "duration": 1}], "planTemplates": [template("private-tpl",
                                                                                          publishedAt=T0)]})
    srv.push("b", {"entries": [{"id": "same", "duration": 2}]})
    assert [e["duration"] for e in srv.pull("a").json()["entries"]] == [1]
    assert [e["duration"] for e in srv.pull("b").json()["entries"]] == [2]
    assert srv.pull("b").json()["planTemplates"] == []
    assert srv.status("b").json()["entityCount"] == 1
    # b deleting "same" deletes b's row only; a private template of a is "not found" for b
    srv.push("b", {"entries": [{"id": "same", "deletedAt": T0}]})
    assert [e["id"] for e in srv.pull("a").json()["entries"]] == ["same"]
    r = srv.post("/api/templates/adopt", "b", {"templateId": "private-tpl"})
    assert (r.status_code, r.json()) == (404, {"error": "Template not found"})


def test_only_tutors_publish_and_learners_adopt_only_published_visible_templates(srv):
    srv.user("tutor", "tutor")
    srv.user("learner")
    srv.user("learner2")
    # a learner cannot publish or make public: a per-item conflict, the rest of the push goes through
    answer = srv.push("learner", {"planTemplates": [template("l-pub", publishedAt=T0),
                                                    template("l-public", visibility="public"),
                                                    template("l-private", visibility="private")]}).json()
    assert [(c["entityId"], c["reason"]) for c in answer["conflicts"]] == [("l-pub", "forbidden"),
                                                                          ("l-public", "forbidden")]
    assert [t["id"] for t in srv.pull("learner").json()["planTemplates"]] == ["l-private"]
    # the tutor publishes; publishedAt is the server's
    srv.push("tutor", {"planTemplates": [template("pub", visibility="public", publishedAt="1999-01-01T00:00:00Z"),
                                         template("draft", visibility="public"),
                                         template("private", visibility="private", publishedAt=T0)]})
    tpls = {t["id"]: t for t in srv.pull("tutor").json()["planTemplates"]}
    assert tpls["pub"]["publishedAt"] > "2020" and "publishedAt" not in tpls["draft"]
    for hidden in ("draft", "private", "l-private"):
        assert srv.post("/api/templates/adopt", "learner2", {"templateId": hidden}).status_code == 404, hidden
    cursor = srv.pull("tutor", {"since": None}).json()["cursor"]
    adopted = srv.post("/api/templates/adopt", "learner", {
        "templateId": "pub", "customization": {"title": "Mine", "schedule": {"timeOfDay": "07:30"}}})
    assert adopted.status_code == 200, adopted.text
    body = adopted.json()
    assert body["success"] is True and body["plan"]["title"] == "Mine" and body["plan"]["ownerId"] == "learner"
    assert body["plan"]["sourceTemplateId"] == "pub" and len(body["occurrences"]) == 1
    assert body["occurrences"][0]["scheduledStart"] == "2026-06-01T07:30:00.000Z"
    assert body["occurrences"][0]["segments"] == [{"label": "Warm-up", "durationMinutes": 5}]
    mine = srv.pull("learner").json()
    assert body["plan"]["id"] in [p["id"] for p in mine["practicePlans"]]
    assert srv.post("/api/templates/adopt", "learner2", {"templateId": "pub"}).status_code == 200
    # counts come from the adoptions table; the author's incremental pull delivers the new count
    changed = srv.pull("tutor", {"since": cursor}).json()["planTemplates"]
    assert [(t["id"], t["adoptionCount"]) for t in changed] == [("pub", 2)]
    # the tutor cannot reset the count by pushing the template again
    srv.push("tutor", {"planTemplates": [template("pub", visibility="public", publishedAt=T0, adoptionCount=0,
                                                  updatedAt="2026-05-02T09:00:00.000Z")]})
    assert {t["id"]: t["adoptionCount"] for t in srv.pull("tutor").json()["planTemplates"]}["pub"] == 2
    # an adoption retried with its idempotency key is one adoption
    first = srv.post("/api/templates/adopt", "learner2", {"templateId": "pub"}, **{"X-Idempotency-Key": "ad-1"})
    again = srv.post("/api/templates/adopt", "learner2", {"templateId": "pub"}, **{"X-Idempotency-Key": "ad-1"})
    assert again.json() == first.json() and again.headers["x-idempotent-replay"] == "true"
    assert {t["id"]: t["adoptionCount"] for t in srv.pull("tutor").json()["planTemplates"]}["pub"] == 3
    # a revoked tutor's templates are no longer adoptable
    users.revoke(srv.engine, "tutor")
    assert srv.post("/api/templates/adopt", "learner", {"templateId": "pub"}).status_code == 404
