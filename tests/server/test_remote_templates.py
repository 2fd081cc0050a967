"""`template publish --remote`, `template gallery --remote`, `template adopt --remote` against `practiceplan serve`
(both backends): a tutor publishes, learners find and adopt through the server, nothing is doubled, a learner
cannot publish, the adoption count is the server's."""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest

from practiceplan.errors import RemoteUnavailableError
from practiceplan.sync.client import Client
from tests.sync.homes import Home


def _plans_and_sessions(home: Home, plan_id: str) -> tuple[list[str], list[str]]:
    plans = [i for i in home.docs("practice_plan") if i == plan_id]
    sessions = [o["scheduledStart"] for o in home.docs("plan_occurrence").values() if o["planId"] == plan_id]
    return plans, sessions


def _server_rows(srv, user: str, plan_id: str) -> tuple[list[str], list[str]]:
    body = srv.pull(user).json()
    plans = [p["id"] for p in body["practicePlans"] if p["id"] == plan_id]
    sessions = [o["scheduledStart"] for o in body["planOccurrences"] if o["planId"] == plan_id]
    return plans, sessions


def test_publish_gallery_adopt_through_the_server(srv, live_url, tmp_path):
    tutor = Home(tmp_path / "tutor", live_url, srv.user("tutor", "tutor"))
    anna = Home(tmp_path / "anna", live_url, srv.user("anna"))
    ben = Home(tmp_path / "ben", live_url, srv.user("ben"), zone="UTC")
    plan = tutor.json("plan", "add", "Scales", "--every", "weekly", "--on", "mo,th", "--at", "18:00",
                      "--minutes", "30")["plan"]
    tpl = tutor.json("template", "create", "--from-plan", plan["id"], "--level", "beginner")["template"]
    published = tutor.json("template", "publish", tpl["id"], "--visibility", "public", "--remote")
    assert published["remote"]["sent"] is True and published["remote"]["serverVersion"] >= 1
    assert published["template"]["publishedAt"]

    # a learner sees it in the server's gallery (with the server's count), adopts it, syncs: nothing doubled
    listed = anna.json("template", "gallery", "--remote")["templates"]
    assert [(i["template"]["id"], i["adoptions"], i["author"]) for i in listed] == [(tpl["id"], 0, "tutor")]
    human = anna.cli("template", "gallery", "--remote").stdout
    assert "Scales" in human and "tutor" in human
    adopted = anna.json("template", "adopt", "--remote", tpl["id"], "--title", "My scales")
    assert adopted["trust"] == "server" and adopted["synced"] is True
    plan_id = adopted["plan"]["id"]
    assert adopted["plan"]["sourceTemplateId"] == tpl["id"] and adopted["plan"]["title"] == "My scales"
    anna.cli("today")  # the plan's own sessions up to the horizon are made here, then synced
    anna.sync()
    local_plans, local_sessions = _plans_and_sessions(anna, plan_id)
    server_plans, server_sessions = _server_rows(srv, "anna", plan_id)
    assert local_plans == server_plans == [plan_id]
    assert len(local_sessions) > 5 and not [s for s, n in Counter(local_sessions).items() if n > 1]
    assert sorted(local_sessions) == sorted(server_sessions)
    days = Counter(s[:10] for s in local_sessions)
    assert max(days.values()) == 1, days  # no day has the server's session and a local one
    assert "2026-03-02T17:00:00.000Z" in local_sessions  # 18:00 in Berlin, the plan's zone
    quiet = anna.sync()
    assert quiet["sent"] == 0 and quiet["conflicts"] == []
    # the adoption was recorded as trusted by the server
    with anna.session() as s:
        events = s.store.conn.execute("SELECT data FROM events WHERE name = 'template.adopt'").fetchall()
    assert [json.loads(e[0])["trust"] for e in events] == ["server"]

    # each adoption counts once, on the server
    assert [i["adoptions"] for i in ben.json("template", "gallery", "--remote")["templates"]] == [1]
    ben.json("template", "adopt", "--remote", tpl["id"])
    assert [i["adoptions"] for i in anna.json("template", "gallery", "--remote")["templates"]] == [2]
    tutor.sync()
    assert {t["id"]: t["adoptionCount"] for t in srv.pull("tutor").json()["planTemplates"]}[tpl["id"]] == 2

    # a learner's publish --remote is refused by the server and reported (77); it stays published here
    own = anna.json("template", "create", "--from-plan", plan_id, "--title", "Mine")["template"]
    refused = anna.cli("template", "publish", own["id"], "--visibility", "public", "--remote", ok=False)
    assert refused.exit_code == 77, refused.stdout + refused.stderr
    assert "forbidden" in refused.stderr and "tutor" in refused.stderr
    assert own["id"] not in {t["id"] for t in srv.pull("anna").json()["planTemplates"]}
    assert [i["template"]["id"] for i in ben.json("template", "gallery", "--remote")["templates"]] == [tpl["id"]]

    # unknown or private ids are "not found" (3); --param does not go with --remote (2)
    missing = anna.cli("template", "adopt", "--remote", "template_nothing", ok=False)
    assert missing.exit_code == 3, missing.stderr
    assert anna.cli("template", "adopt", "--remote", tpl["id"], "--param", "a=b", ok=False).exit_code == 2


def test_gallery_remote_on_a_server_without_the_gallery(tmp_path):
    """A Mirubato server answers 404 for the path: exit 69 with a hint, never a traceback."""
    transport = httpx.MockTransport(lambda request: httpx.Response(
        404, json={"success": False, "error": "Not found", "code": 404}))
    with Client("https://api.example.org", "tok-abcdefghijklmnop", "dev_test", transport=transport) as client:
        with pytest.raises(RemoteUnavailableError) as raised:
            client.gallery()
    assert raised.value.exit_code == 69 and "no template gallery" in raised.value.message
    assert "adopt --remote" in (raised.value.hint or "")
