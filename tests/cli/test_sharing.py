"""Shared plans on the command line: `plan share|unshare|members|join|transfer` against a fake `practiceplan serve`
(httpx.MockTransport speaking the sharing endpoints of docs/collaboration.md), their errors (403, 404, a server
without `sharing`, not logged in, not synced yet), the sync that follows a change (and the warning when it
fails), `comment`/`comments` (the level guard, written and queued, JSON), the local guards on changing a plan
shared with you, and `plan list`'s sharing column and JSON."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import httpx
import pytest

from practiceplan.errors import RemoteUnavailableError
from practiceplan.settings import Settings

URL = "http://127.0.0.1:8765"
TOKEN = "tok_me_0123456789abcdef"
INVITE = "ppi_secretinvitetoken123"


class FakeServer:
    """The sharing endpoints and `GET /api/sync/status`, over one in-memory membership table."""

    def __init__(self) -> None:
        self.capabilities = ["incremental-pull", "conditional-push", "sharing"]
        self.users = {"me", "ana", "ben", "cy"}
        self.plans: dict[str, dict[str, Any]] = {}  # planId -> {"owner", "members": {user: level}}
        self.caller = "me"
        self.requests: list[tuple[str, str, Any]] = []
        self.invites: dict[str, tuple[str, str]] = {}

    def add_plan(self, plan_id: str, owner: str = "me", **members: str) -> None:
        self.plans[plan_id] = {"owner": owner, "members": dict(members)}

    @staticmethod
    def error(status: int, text: str) -> httpx.Response:
        return httpx.Response(status, json={"success": False, "error": text, "code": status})

    def members_body(self, plan_id: str) -> dict[str, Any]:
        plan = self.plans[plan_id]
        level = "owner" if plan["owner"] == self.caller else plan["members"].get(self.caller)
        return {"planId": plan_id, "owner": plan["owner"], "level": level,
                "members": [{"user": u, "level": lv, "addedAt": "2026-03-01T10:00:00Z"}
                            for u, lv in sorted(plan["members"].items())]}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        path = request.url.path
        self.requests.append((request.method, path, body))
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        if path == "/api/sync/status":
            return httpx.Response(200, json={"capabilities": self.capabilities, "user": self.caller})
        if "sharing" not in self.capabilities:
            return httpx.Response(404, text="Not Found")
        if path == "/api/invites/accept":
            if body["token"] not in self.invites:
                return self.error(404, "Invite not found or already used")
            plan_id, level = self.invites.pop(body["token"])
            self.plans[plan_id]["members"][self.caller] = level
            return httpx.Response(200, json={"planId": plan_id, "owner": self.plans[plan_id]["owner"], "level": level})
        parts = path.split("/")  # '', api, plans, ID, what[, user]
        plan_id, what = parts[3], parts[4]
        plan = self.plans.get(plan_id)
        if plan is None or (self.caller != plan["owner"] and self.caller not in plan["members"]):
            return self.error(404, "Plan not found")
        owner = plan["owner"] == self.caller
        if what == "members" and request.method == "GET":
            return httpx.Response(200, json=self.members_body(plan_id))
        if what == "members" and request.method == "DELETE":
            user = parts[5]
            if not owner and user != self.caller:
                return self.error(403, "Only the owner can do this")
            if user not in plan["members"]:
                return self.error(404, "User not found")
            del plan["members"][user]
            if user == self.caller:
                return httpx.Response(200, json={"planId": plan_id, "left": True})
            return httpx.Response(200, json=self.members_body(plan_id))
        if not owner:
            return self.error(403, "Only the owner can do this")
        if what == "members":
            if body["user"] not in self.users:
                return self.error(404, "User not found")
            plan["members"][body["user"]] = body["level"]
            return httpx.Response(200, json=self.members_body(plan_id))
        if what == "invites":
            self.invites[INVITE] = (plan_id, body["level"])
            return httpx.Response(200, json={"token": INVITE, "planId": plan_id, "level": body["level"],
                                             "expiresAt": "2026-03-09T09:00:00Z"})
        if what == "transfer":
            plan["members"].pop(body["user"], None)
            plan["members"][self.caller] = "edit"
            plan["owner"] = body["user"]
            return httpx.Response(200, json=self.members_body(plan_id))
        return self.error(404, "Not found")


@pytest.fixture
def fake(monkeypatch) -> FakeServer:
    """Every Client talks to the fake; a sync after a change is recorded (not run)."""
    from practiceplan.services.sync import Sync
    from practiceplan.sync.client import Client

    server = FakeServer()
    original = Client.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("transport", httpx.MockTransport(server))
        original(self, *args, **kwargs)

    server.syncs = 0  # type: ignore[attr-defined]
    server.sync_error = None  # type: ignore[attr-defined]

    def run(self: Any, **_: Any) -> Any:
        server.syncs += 1  # type: ignore[attr-defined]
        if server.sync_error is not None:  # type: ignore[attr-defined]
            raise server.sync_error  # type: ignore[attr-defined]
        return None

    monkeypatch.setattr(Client, "__init__", init)
    monkeypatch.setattr(Sync, "run", run)
    monkeypatch.setenv("PRACTICEPLAN_TOKEN", TOKEN)
    return server


def db() -> sqlite3.Connection:
    return sqlite3.connect(Settings().db_path)


def set_meta(key: str, value: str) -> None:
    with db() as conn:
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


def mark_synced(plan_id: str) -> None:
    """As after a sync with URL: the plan is known to the server."""
    set_meta("sync.bound_remote", URL)
    with db() as conn:
        conn.execute("INSERT INTO sync_state (entity_type, entity_id, hash, version) VALUES ('practice_plan', ?, 'h', 1)",
                     (plan_id,))


def set_sharing(plan_id: str, owner: str, level: str, **members: str) -> None:
    set_meta("sync.sharing", json.dumps([{"planId": plan_id, "owner": owner, "level": level,
                                          "members": [{"user": u, "level": lv} for u, lv in members.items()]}]))


def outbox(kind: str) -> list[str]:
    with db() as conn:
        return [r[0] for r in conn.execute("SELECT entity_id FROM outbox WHERE entity_type = ?", (kind,))]


@pytest.fixture
def plan(cli, fake) -> dict[str, Any]:
    """A plan of mine, synced, on a remote; my server name is `me`."""
    cli("remote", "set", URL)
    found = cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--json").json["plan"]
    mark_synced(found["id"])
    set_meta("sync.user", "me")
    fake.add_plan(found["id"])
    return found


# --------------------------------------------------------------------------- share, members, unshare, transfer

def test_share_with_a_user_then_members(cli, fake, plan):
    run = cli("plan", "share", "Scales", "ana", "--as", "comment")
    assert run.stdout == 'Shared plan "Scales" with ana as comment\n'
    assert fake.plans[plan["id"]]["members"] == {"ana": "comment"}
    assert ("POST", f"/api/plans/{plan['id']}/members", {"user": "ana", "level": "comment"}) in fake.requests
    assert fake.syncs == 1
    data = cli("plan", "members", "Scales", "--json").json
    assert data == {"planId": plan["id"], "title": "Scales", "owner": "me", "level": "owner",
                    "members": [{"user": "ana", "level": "comment", "addedAt": "2026-03-01T10:00:00Z"}]}
    text = cli("plan", "members", "Scales").stdout.splitlines()
    assert text[0] == 'Plan "Scales": owner me (you); your level: owner'
    assert text[1].split() == ["Member", "Level", "Added"]
    assert text[3].split() == ["ana", "comment", "2026-03-01"]
    assert fake.syncs == 1  # reading members does not sync


def test_share_json_and_level_change(cli, fake, plan):
    cli("plan", "share", "Scales", "ana", "--as", "view")
    data = cli("plan", "share", plan["id"][5:12], "ana", "--as", "edit", "--json").json
    assert data["members"] == [{"user": "ana", "level": "edit", "addedAt": "2026-03-01T10:00:00Z"}]
    assert data["granted"] == "edit" and data["synced"] is True and data["warning"] is None


def test_a_failed_sync_after_the_change_is_a_warning(cli, fake, plan):
    fake.sync_error = RemoteUnavailableError("cannot reach 127.0.0.1:8765")
    run = cli("plan", "share", "Scales", "ana", "--as", "comment")
    assert run.code == 0 and fake.plans[plan["id"]]["members"] == {"ana": "comment"}
    assert "warning:" in run.stderr and "practiceplan sync" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_share_link_prints_the_token_alone(cli, fake, plan):
    run = cli("plan", "share", "Scales", "--link", "--as", "view", "--expires", "12h")
    assert run.stdout == INVITE + "\n"
    assert "plan join" in run.stderr and INVITE not in run.stderr
    assert fake.requests[-1] == ("POST", f"/api/plans/{plan['id']}/invites", {"level": "view", "expiresInSeconds": 43200})
    assert fake.syncs == 0
    default = cli("plan", "share", "Scales", "--link", "--as", "comment", "--json").json
    assert default["token"] == INVITE and fake.requests[-1][2] == {"level": "comment", "expiresInSeconds": 7 * 86400}


@pytest.mark.parametrize("expires", ["91d", "0m", "7 weeks", "abc"])
def test_share_link_refuses_bad_durations(cli, fake, plan, expires):
    run = cli("plan", "share", "Scales", "--link", "--as", "view", "--expires", expires, ok=False)
    assert run.code == 65 and "--expires" in run.stderr
    assert not [r for r in fake.requests if "invites" in r[1]]


def test_share_usage_errors(cli, fake, plan):
    assert cli("plan", "share", "Scales", "ana", ok=False).code == 2
    assert cli("plan", "share", "Scales", "--as", "view", ok=False).code == 2
    assert cli("plan", "share", "Scales", "ana", "--link", "--as", "view", ok=False).code == 2
    assert cli("plan", "share", "Scales", "ana", "--as", "owner", ok=False).code == 2
    assert fake.requests == []


def test_unknown_user_is_not_found_with_the_servers_message(cli, fake, plan):
    run = cli("plan", "share", "Scales", "zoe", "--as", "view", ok=False)
    assert run.code == 3 and "User not found" in run.stderr and "Traceback" not in run.stderr
    assert fake.syncs == 0


def test_unshare_asks_first_and_removes(cli, fake, plan):
    cli("plan", "share", "Scales", "ana", "--as", "view")
    refused = cli("plan", "unshare", "Scales", "ana", ok=False)
    assert refused.code == 2 and "--yes" in refused.stderr and fake.plans[plan["id"]]["members"] == {"ana": "view"}
    run = cli("plan", "unshare", "Scales", "ana", "--yes")
    assert run.stdout == 'Removed ana from plan "Scales"\n'
    assert fake.plans[plan["id"]]["members"] == {} and fake.requests[-1][:2] == (
        "DELETE", f"/api/plans/{plan['id']}/members/ana")
    assert fake.syncs == 2


def test_transfer(cli, fake, plan):
    cli("plan", "share", "Scales", "ana", "--as", "view")
    data = cli("plan", "transfer", "Scales", "ana", "--yes", "--json").json
    assert data["owner"] == "ana" and data["level"] == "edit"
    assert data["members"] == [{"user": "me", "level": "edit", "addedAt": "2026-03-01T10:00:00Z"}]
    assert fake.plans[plan["id"]]["owner"] == "ana" and fake.syncs == 2
    assert cli("plan", "transfer", "Scales", "ana", ok=False).code == 2  # no --yes off a terminal


def test_a_member_cannot_share_locally_nor_on_the_server(cli, fake, plan):
    set_sharing(plan["id"], "ana", "edit", me="edit")
    run = cli("plan", "share", "Scales", "ben", "--as", "view", ok=False)
    assert run.code == 77 and "only the plan's owner (ana)" in run.stderr
    assert fake.requests == []  # refused before asking the server
    # the server is the authority: a stale local list still gets the 403 mapped
    set_sharing(plan["id"], "me", "owner")
    fake.plans[plan["id"]] = {"owner": "ana", "members": {"me": "edit"}}
    run = cli("plan", "share", "Scales", "ben", "--as", "view", ok=False)
    assert run.code == 77 and "only the plan's owner can do this" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 2  # the message and a hint


def test_a_member_leaves(cli, fake, plan):
    set_sharing(plan["id"], "ana", "view", me="view")
    fake.plans[plan["id"]] = {"owner": "ana", "members": {"me": "view"}}
    assert cli("plan", "unshare", "Scales", "ben", "--yes", ok=False).code == 77
    run = cli("plan", "unshare", "Scales", "me", "--yes", "--json")
    assert run.json["left"] is True and fake.plans[plan["id"]]["members"] == {}
    assert cli("plan", "unshare", "Scales", "me", "--yes", ok=False).code in (3, 77)  # no longer a member


def test_the_owner_cannot_leave(cli, fake, plan):
    run = cli("plan", "unshare", "Scales", "me", "--yes", ok=False)
    assert run.code == 65 and "transfer" in run.stderr and fake.requests == []


def test_join_with_a_token_and_from_stdin(cli, fake, plan):
    fake.invites[INVITE] = (plan["id"], "comment")
    fake.plans[plan["id"]]["owner"] = "ana"
    data = cli("plan", "join", INVITE, "--json").json
    assert data["planId"] == plan["id"] and data["owner"] == "ana" and data["level"] == "comment"
    assert data["title"] == "Scales" and fake.syncs == 1
    assert fake.requests[-1] == ("POST", "/api/invites/accept", {"token": INVITE})
    run = cli("plan", "join", "-", input=INVITE + "\n", ok=False)
    assert run.code == 3 and "Invite not found or already used" in run.stderr and INVITE not in run.stderr
    assert cli("plan", "join", "-", input="\n", ok=False).code == 2


def test_no_sharing_capability(cli, fake, plan):
    fake.capabilities = ["incremental-pull"]
    run = cli("plan", "share", "Scales", "ana", "--as", "view", ok=False)
    assert run.code == 69
    assert run.stderr.splitlines()[0] == "practiceplan: error: the server at 127.0.0.1:8765 does not support shared plans"
    assert [r[1] for r in fake.requests] == ["/api/sync/status"]
    assert cli("plan", "join", INVITE, ok=False).code == 69


def test_not_logged_in(cli, fake, plan, monkeypatch):
    monkeypatch.delenv("PRACTICEPLAN_TOKEN")
    run = cli("plan", "members", "Scales", ok=False)
    assert run.code == 77 and "practiceplan login" in run.stderr and fake.requests == []


def test_no_remote(cli, fake):
    cli("plan", "add", "Scales", "--every", "daily")
    run = cli("plan", "share", "Scales", "ana", "--as", "view", ok=False)
    assert run.code == 2 and "no sync remote is set" in run.stderr and fake.requests == []


def test_a_plan_not_synced_yet(cli, fake):
    cli("remote", "set", URL)
    cli("plan", "add", "Etudes", "--every", "daily")
    run = cli("plan", "share", "Etudes", "ana", "--as", "view", ok=False)
    assert run.code == 65 and "not on the server yet" in run.stderr and "sync first" in run.stderr
    assert fake.requests == []


# --------------------------------------------------------------------------- comments

def _own_session(cli) -> dict[str, Any]:
    return cli("occurrences", "--json").json["occurrences"][0]


def _shared_session(plan_id: str, member: str, occ_id: str, start: str, status: str) -> None:
    doc = {"id": occ_id, "planId": plan_id, "scheduledStart": start, "status": status, "member": member}
    with db() as conn:
        conn.execute("INSERT INTO shared_sessions (member, id, plan_id, scheduled_start, status, updated_at, doc) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", (member, occ_id, plan_id, start, status, start, json.dumps(doc)))


def test_comment_on_my_session_is_written_and_queued(cli, plan):
    occ = _own_session(cli)
    run = cli("comment", occ["id"][9:17], "Slower on bar 12", "--json")
    doc = run.json["comment"]
    assert doc["text"] == "Slower on bar 12" and doc["planId"] == plan["id"] and doc["occurrenceId"] == occ["id"]
    assert doc["occurrenceOwner"] == "me" and doc["author"] == "me" and doc["id"].startswith("cmt_")
    assert doc["createdAt"] == doc["updatedAt"] == "2026-03-02T09:00:00.000Z"
    assert outbox("plan_comment") == [doc["id"]]
    listed = cli("comments", "Scales", "--json").json
    assert [c["text"] for c in listed["comments"]] == ["Slower on bar 12"]
    assert listed["comments"][0]["session"] == occ["id"][9:15]


def test_comment_on_another_participants_session_and_on_the_plan(cli, plan):
    set_sharing(plan["id"], "me", "owner", ana="comment")
    occ = _own_session(cli)
    _shared_session(plan["id"], "ana", occ["id"], occ["scheduledStart"], "completed")
    cli("comment", "--plan", "Scales", "New fingering from next week")
    doc = cli("comment", occ["id"], "Nice tone", "--member", "ana", "--json").json["comment"]
    assert doc["occurrenceOwner"] == "ana" and doc["occurrenceId"] == occ["id"]
    cli("comment", occ["id"], "Mine: keep the wrist low")
    every = cli("comments", "Scales", "--json").json["comments"]
    assert [c["text"] for c in every] == ["New fingering from next week", "Nice tone", "Mine: keep the wrist low"]
    assert every[0]["session"] is None and every[1]["sessionOwner"] == "ana"
    anas = cli("comments", occ["id"], "--member", "ana", "--json").json
    assert [c["text"] for c in anas["comments"]] == ["Nice tone"] and anas["occurrenceId"] == occ["id"]
    mine = cli("comments", occ["id"], "--json").json
    assert [c["text"] for c in mine["comments"]] == ["Mine: keep the wrist low"]
    text = cli("comments", "Scales").stdout.splitlines()
    assert text[0] == 'Comments on plan "Scales"'
    assert text[1] == "2026-03-02 10:00  me  [the plan]  New fingering from next week"
    assert text[2] == f"2026-03-02 10:00  me  [session {occ['id'][9:15]} (ana)]  Nice tone"


def test_a_shared_session_only_is_found_without_member(cli, plan):
    set_sharing(plan["id"], "me", "owner", ana="comment")
    _shared_session(plan["id"], "ana", "plan_occ_zzzonlyana1", "2026-03-01T17:00:00Z", "completed")
    doc = cli("comment", "zzzonly", "Good", "--json").json["comment"]
    assert doc["occurrenceOwner"] == "ana" and doc["occurrenceId"] == "plan_occ_zzzonlyana1"
    _shared_session(plan["id"], "ben", "plan_occ_zzzonlyana1", "2026-03-01T17:00:00Z", "completed")
    run = cli("comment", "zzzonly", "Which?", ok=False)
    assert run.code == 3 and "ambiguous" in run.stderr


def test_commenting_needs_level_comment(cli, plan):
    set_sharing(plan["id"], "ana", "view", me="view")
    occ = _own_session(cli)
    run = cli("comment", occ["id"], "Hello", ok=False)
    assert run.code == 77 and "commenting needs comment" in run.stderr and "ana" in run.stderr
    assert cli("comment", "--plan", "Scales", "Hello", ok=False).code == 77
    assert outbox("plan_comment") == []
    set_sharing(plan["id"], "ana", "comment", me="comment")
    cli("comment", occ["id"], "Hello")
    assert len(outbox("plan_comment")) == 1


@pytest.mark.parametrize("text", ["", "   ", "x" * 4001, "bad \x1b[31m colour", "two\nlines"])
def test_comment_text_rules(cli, plan, text):
    run = cli("comment", "--plan", "Scales", text, ok=False)
    assert run.code == 65 and outbox("plan_comment") == []


def test_comment_of_4000_characters_and_usage(cli, plan):
    assert len(cli("comment", "--plan", "Scales", "y" * 4000, "--json").json["comment"]["text"]) == 4000
    assert cli("comment", "onlyone", ok=False).code == 2
    assert cli("comment", "abc", "text", "--plan", "Scales", ok=False).code == 2


def test_no_comments_yet(cli, plan):
    assert cli("comments", "Scales").stdout == 'No comments on plan "Scales" yet.\n'
    assert cli("comments", "Scales", "--json").json == {"planId": plan["id"], "title": "Scales",
                                                          "occurrenceId": None, "comments": []}


# --------------------------------------------------------------------------- local guards

def test_guards_on_a_plan_shared_with_me_at_view(cli, plan):
    set_sharing(plan["id"], "ana", "view", me="view")
    before = cli("plan", "show", "Scales", "--json").json["plan"]
    for args in (("plan", "edit", "Scales", "--at", "07:00"), ("plan", "archive", "Scales")):
        run = cli(*args, ok=False)
        assert run.code == 77, args
        assert "shared with you at level view" in run.stderr and "ask the owner (ana)" in run.stderr
        assert "practiceplan plan unshare Scales me" in run.stderr
    run = cli("plan", "delete", "Scales", "--yes", ok=False)
    assert run.code == 77 and "only the owner (ana) can delete" in run.stderr
    assert cli("plan", "show", "Scales", "--json").json["plan"] == before
    # my own sessions of it stay mine
    occ = _own_session(cli)
    cli("skip", occ["id"])
    cli("checkin", cli("occurrences", "--json").json["occurrences"][1]["id"], "--minutes", "10")


def test_edit_level_may_change_but_not_delete(cli, plan):
    set_sharing(plan["id"], "ana", "edit", me="edit")
    cli("plan", "edit", "Scales", "--at", "07:00")
    assert cli("plan", "delete", "Scales", "--yes", ok=False).code == 77
    assert cli("plan", "delete", "Scales", "--dry-run", ok=False).code == 77


def test_guard_from_plan_metadata_without_a_list(cli, plan):
    with db() as conn:
        doc = json.loads(conn.execute("SELECT doc FROM practice_plans WHERE id = ?", (plan["id"],)).fetchone()[0])
        doc.setdefault("metadata", {})["sharing"] = {"owner": "ana", "members": [{"user": "me", "level": "comment"}]}
        conn.execute("UPDATE practice_plans SET doc = ? WHERE id = ?", (json.dumps(doc), plan["id"]))
    assert cli("plan", "edit", "Scales", "--minutes", "5", ok=False).code == 77
    cli("comment", "--plan", "Scales", "allowed at comment")


def test_owner_of_a_shared_plan_may_do_everything(cli, plan):
    set_sharing(plan["id"], "me", "owner", ana="edit")
    cli("plan", "edit", "Scales", "--at", "07:00")
    cli("plan", "delete", "Scales", "--yes")
    cli("plan", "restore", "Scales")


# --------------------------------------------------------------------------- plan list

def test_plan_list_shows_sharing(cli, plan):
    other = cli("plan", "add", "Duet", "--every", "daily", "--json").json["plan"]
    cli("plan", "add", "Alone", "--every", "daily")
    set_meta("sync.sharing", json.dumps([
        {"planId": plan["id"], "owner": "me", "level": "owner",
         "members": [{"user": "ben", "level": "edit"}, {"user": "cy", "level": "view"}]},
        {"planId": other["id"], "owner": "ana", "level": "comment",
         "members": [{"user": "me", "level": "comment"}, {"user": "ben", "level": "edit"}]},
    ]))
    plans = {p["title"]: p for p in cli("plan", "list", "--json").json["plans"]}
    assert plans["Alone"]["sharing"] is None
    assert plans["Scales"]["sharing"] == {"owner": "me", "level": "owner", "members": [
        {"user": "ben", "level": "edit"}, {"user": "cy", "level": "view"}]}
    assert plans["Duet"]["sharing"]["owner"] == "ana" and plans["Duet"]["sharing"]["level"] == "comment"
    lines = cli("plan", "list").stdout.splitlines()
    assert "Shared" in lines[0]
    assert next(x for x in lines if "Scales" in x).rstrip().endswith("you + ben (edit), cy (view)")
    assert next(x for x in lines if "Duet" in x).rstrip().endswith("owner ana; you (comment), ben (edit)")
    assert next(x for x in lines if "Alone" in x).rstrip().endswith("same-day")  # not shared: empty cell


def test_plan_list_without_sharing_has_no_column(cli):
    cli("plan", "add", "Scales", "--every", "daily")
    assert "Shared" not in cli("plan", "list").stdout
    assert cli("plan", "list", "--json").json["plans"][0]["sharing"] is None


def test_help_has_examples(cli):
    for args in (("plan", "share"), ("plan", "unshare"), ("plan", "members"), ("plan", "join"), ("plan", "transfer"),
                 ("comment",), ("comments",), ("students",)):
        text = cli(*args, "--help").stdout
        assert "Examples:" in text and "practiceplan " + " ".join(args) in text, args


# --------------------------------------------------------------------------- the client's error mapping

@pytest.mark.parametrize(("status", "body", "code", "words"), [
    (404, {"success": False, "error": "Plan not found", "code": 404}, 3, "Plan not found"),
    (404, None, 69, "does not support shared plans"),
    (403, {"success": False, "error": "Forbidden", "code": 403}, 77, "only the plan's owner can do this"),
    (401, {"success": False, "error": "Unauthorized", "code": 401}, 77, "refused the token"),
    (400, {"success": False, "error": "You cannot share a plan with yourself", "code": 400}, 65, "yourself"),
    (503, None, 75, "HTTP 503"),
])
def test_client_error_mapping(status, body, code, words):
    from practiceplan.errors import PracticePlanError
    from practiceplan.sync.client import Client

    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(status, json=body) if body is not None else httpx.Response(status, text="nope")

    with Client(URL, TOKEN, "dev_test", transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(PracticePlanError) as caught:
            client.unshare("plan_x/../y", "ana b")
    assert caught.value.exit_code == code and words in caught.value.message
    assert TOKEN not in caught.value.message
    assert seen == ["/api/plans/plan_x%2F..%2Fy/members/ana%20b"]  # ids and names never change the path


def test_client_blanks_the_invite_token_in_server_text():
    from practiceplan.errors import PracticePlanError
    from practiceplan.sync.client import Client

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"success": False, "error": f"bad token {INVITE}", "code": 400})

    with Client(URL, TOKEN, "dev_test", transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(PracticePlanError) as caught:
            client.accept_invite(INVITE)
    assert INVITE not in caught.value.message and "***" in caught.value.message
