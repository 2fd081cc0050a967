"""The sync engine and shared plans (docs/collaboration.md "The data contract in the diff"), driven by a scripted
transport: comments travel only with a server that advertises ``sharing``; the sharing list, the user name and
other participants' sessions are stored; a plan the account no longer takes part in is removed from the device;
a ``forbidden`` per-item conflict puts the server's version back and keeps the refused one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from practiceplan.domain.models import iso_z
from practiceplan.services.session import Session
from practiceplan.settings import Settings
from practiceplan.store import sharing as sh
from practiceplan.store import sync as st
from practiceplan.sync import wire
from practiceplan.sync.engine import Engine

NOW = "2026-05-04T12:00:00.000Z"
BASE = ["incremental-pull", "tombstones", "conditional-push"]
SHARING = [*BASE, "sharing"]


class Scripted:
    """A transport with canned answers: ``pulls`` are answered in order (then an empty last page that repeats
    the last sharing list); a push is acknowledged item by item unless ``push_answers`` holds an answer."""

    def __init__(self, capabilities: list[str], user: str = "ana") -> None:
        self.capabilities = capabilities
        self.user = user
        self.pulls: list[dict[str, Any]] = []
        self.push_answers: list[dict[str, Any]] = []
        self.pushed: list[dict[str, Any]] = []
        self.pull_bodies: list[dict[str, Any] | None] = []
        self.sharing: list[dict[str, Any]] | None = None
        self.cursor = "v2.eyJ1IjowfQ"
        self.version = 0

    def status(self) -> dict[str, Any]:
        return {"status": "ok", "user": self.user, "capabilities": list(self.capabilities)}

    def pull(self, body: dict[str, Any] | None = None) -> dict[str, Any]:
        self.pull_bodies.append(body)
        answer = self.pulls.pop(0) if self.pulls else {}
        if "sharing" in answer:
            self.sharing = answer["sharing"]
        page = {"cursor": self.cursor, "hasMore": False, "versions": {}, **answer}
        if "sharing" in self.capabilities and "sharing" not in page and self.sharing is not None:
            page["sharing"] = self.sharing
        return page

    def push(self, body: bytes, idempotency_key: str) -> dict[str, Any]:
        data = json.loads(body)
        self.pushed.append(data)
        if self.push_answers:
            return self.push_answers.pop(0)
        versions = {}
        for array, items in data["changes"].items():
            for item in items:
                self.version += 1
                versions[f"{wire.KIND_OF_ARRAY[array]}:{item['id']}"] = self.version
        return {"success": True, "conflicts": [], "versions": versions}

    def pushed_items(self, array: str) -> list[dict[str, Any]]:
        return [i for body in self.pushed for i in body["changes"].get(array, [])]


def session(tmp_path: Path, name: str = "a") -> Session:
    env = {"PRACTICEPLAN_HOME": str(tmp_path / name), "PRACTICEPLAN_NOW": NOW, "PRACTICEPLAN_TZ": "Europe/Berlin"}
    return Session(Settings(env=env))


def sync(s: Session, server: Scripted, remote: str = "http://127.0.0.1:9"):
    return Engine(s.store, server, now=lambda: iso_z(s.now), remote=remote, retry_delays=()).run()


def plan_doc(plan_id: str, title: str = "Scales", sharing: dict[str, Any] | None = None,
             at: str = "2026-05-01T10:00:00.000Z") -> dict[str, Any]:
    metadata: dict[str, Any] = {"instrument": "piano"}
    if sharing is not None:
        metadata["sharing"] = sharing
    return {"id": plan_id, "title": title, "type": "custom", "status": "active", "focusAreas": [], "techniques": [],
            "pieceRefs": [], "tags": [], "visibility": "private",
            "schedule": {"kind": "recurring", "rule": "FREQ=DAILY", "durationMinutes": 30, "timeOfDay": "18:00",
                         "startDate": "2026-05-01"},
            "metadata": metadata, "createdAt": "2026-05-01T10:00:00.000Z", "updatedAt": at}


def comment_doc(comment_id: str, plan_id: str, text: str, author: str | None = "ben",
                at: str = "2026-05-02T10:00:00.000Z", **extra: Any) -> dict[str, Any]:
    doc = {"id": comment_id, "planId": plan_id, "occurrenceId": None, "text": text, "createdAt": at, "updatedAt": at,
           **extra}
    if author is not None:
        doc["author"] = author
    return doc


def session_doc(occ_id: str, plan_id: str, start: str, status: str = "scheduled", **extra: Any) -> dict[str, Any]:
    return {"id": occ_id, "planId": plan_id, "scheduledStart": start, "status": status, "createdAt": "2026-05-01T10:00:00.000Z", "updatedAt": "2026-05-01T10:00:00.000Z",
            **extra}


def entry_doc(entry_id: str, occ_id: str) -> dict[str, Any]:
    return {"id": entry_id, "timestamp": "2026-05-03T18:30:00.000Z", "duration": 1800, "type": "practice",
            "instrument": "piano", "pieces": [], "techniques": [], "goalIds": [], "tags": [],
            "metadata": {"planOccurrenceId": occ_id}, "createdAt": "2026-05-03T18:30:00.000Z",
            "updatedAt": "2026-05-03T18:30:00.000Z"}


def save(s: Session, kind: str, *docs: dict[str, Any], outbox: bool = True) -> None:
    with s.store.write():
        s.store.save_many(kind, list(docs), iso_z(s.now), outbox=outbox)


def rows(s: Session, table: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in s.store.conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2")]


def outbox(s: Session) -> set[tuple[str, str]]:
    return set(st.outbox(s.store.conn))


SHARED_BY_BEN = {"owner": "ben", "members": [{"user": "ana", "level": "edit"}]}
LIST_EDIT = [{"planId": "plan_ben", "owner": "ben", "level": "edit", "members": [{"user": "ana", "level": "edit"}]}]


# --------------------------------------------------------------------------- comments and capability

def test_comments_are_synced_only_with_a_server_that_advertises_sharing(tmp_path):
    s = session(tmp_path)
    save(s, "practice_plan", plan_doc("plan_mine"))
    save(s, "plan_comment", comment_doc("cmt_mine", "plan_mine", "Slower on bar 12", author="ana"))
    plain = Scripted(BASE)
    plain.pulls = [{"planComments": [comment_doc("cmt_theirs", "plan_mine", "from a server that knows better")]}]
    summary = sync(s, plain)
    assert plain.pushed_items("practicePlans") and [i["id"] for i in plain.pushed_items("practicePlans")] == ["plan_mine"]
    assert all("planComments" not in body["changes"] for body in plain.pushed)  # a Mirubato server would drop it
    assert outbox(s) == {("plan_comment", "cmt_mine")} and summary.pending == 1  # still waiting for a server that keeps it
    assert s.store.get("plan_comment", "cmt_theirs") is None  # not read from a server without sharing
    assert st.states(s.store.conn, "plan_comment") == {}

    shared = Scripted(SHARING)
    shared.pulls = [{"planComments": [comment_doc("cmt_theirs", "plan_mine", "Keep the wrist loose")],
                     "versions": {"plan_comment:cmt_theirs": 7}, "sharing": []}]
    summary = sync(s, shared)
    items = shared.pushed_items("planComments")
    assert [i["id"] for i in items] == ["cmt_mine"] and "author" not in items[0]  # the server sets the author
    assert items[0]["text"] == "Slower on bar 12"
    assert outbox(s) == set() and summary.sent == 1 and summary.pending == 0
    assert s.store.get("plan_comment", "cmt_theirs")["author"] == "ben"
    assert st.states(s.store.conn, "plan_comment")["cmt_theirs"][1] == 7
    assert [c["id"] for c in sh.comments(s.store.conn, "plan_mine")] == ["cmt_mine", "cmt_theirs"]  # oldest first
    s.close()


def test_a_comment_pulled_back_with_its_author_is_the_version_that_was_pushed(tmp_path):
    s = session(tmp_path)
    save(s, "plan_comment", comment_doc("cmt_1", "plan_x", "Nice", author=None))
    server = Scripted(SHARING)
    sync(s, server)
    pushed = server.pushed_items("planComments")[0]
    state = st.states(s.store.conn, "plan_comment")["cmt_1"]
    back = {**pushed, "author": "ana", "user_id": "u1"}
    server.pulls = [{"planComments": [back], "versions": {"plan_comment:cmt_1": state[1]}}]
    summary = sync(s, server)
    assert summary.conflicts == [] and summary.sent == 0 and len(server.pushed) == 1
    assert wire.version_hash("plan_comment", back) == state[0]


# --------------------------------------------------------------------------- list, user, others' sessions

def test_the_user_and_the_sharing_list_are_stored(tmp_path):
    s = session(tmp_path)
    server = Scripted(SHARING, user="ana")
    listed = [*LIST_EDIT, {"planId": "plan_mine", "owner": "ana", "level": "owner",
                           "members": [{"user": "ben", "level": "comment"}]},
              {"planId": "plan_view", "owner": "cy", "level": "view", "members": []}]
    server.pulls = [{"sharing": listed, "practicePlans": [plan_doc("plan_ben", sharing=SHARED_BY_BEN)]}]
    sync(s, server)
    conn = s.store.conn
    assert sh.my_name(conn) == "ana" and st.get_meta(conn, "user") == "ana"
    assert sh.sharing_list(conn) == listed
    assert [sh.level_of(conn, p) for p in ("plan_ben", "plan_mine", "plan_view", "plan_other")] == \
        ["edit", "owner", "view", None]
    assert s.store.get("practice_plan", "plan_ben")["title"] == "Scales"  # an ordinary plan here
    assert outbox(s) == set()
    s.close()


def test_no_user_and_no_list_before_a_sync_with_a_sharing_server(tmp_path):
    s = session(tmp_path)
    sync(s, Scripted(BASE, user="ana"))  # the user is stored whatever the server; no list without sharing
    assert sh.sharing_list(s.store.conn) == [] and sh.level_of(s.store.conn, "plan_ben") is None
    assert sh.my_name(s.store.conn) == "ana"
    s.close()


def test_a_malformed_sharing_list_changes_nothing(tmp_path):
    s = session(tmp_path)
    server = Scripted(SHARING)
    server.pulls = [{"sharing": LIST_EDIT, "practicePlans": [plan_doc("plan_ben", sharing=SHARED_BY_BEN)]}]
    sync(s, server)
    server.pulls = [{"sharing": [{"planId": "plan_ben", "level": "admin"}]}]
    try:
        sync(s, server)
    except Exception as exc:  # RetryLaterError: exit 75, nothing changed
        assert "malformed 'sharing'" in str(exc)
    else:
        raise AssertionError("a malformed list was accepted")
    assert s.store.get("practice_plan", "plan_ben") is not None and sh.sharing_list(s.store.conn) == LIST_EDIT
    s.close()


def test_others_sessions_are_applied_updated_and_deleted_never_queued(tmp_path):
    s = session(tmp_path)
    server = Scripted(SHARING)
    ben1 = {**session_doc("plan_occ_b1", "plan_ben", "2026-05-04T16:00:00.000Z"), "member": "ben"}
    ben2 = {**session_doc("plan_occ_b2", "plan_ben", "2026-05-05T16:00:00.000Z"), "member": "ben"}
    cy1 = {**session_doc("plan_occ_b1", "plan_ben", "2026-05-04T09:00:00.000Z", "completed"), "member": "cy"}
    server.pulls = [{"sharing": LIST_EDIT, "practicePlans": [plan_doc("plan_ben", sharing=SHARED_BY_BEN)],
                     "sharedSessions": [ben1, ben2, cy1]}]
    sync(s, server)
    conn = s.store.conn
    found = sh.shared_sessions(conn)
    assert [(d["member"], d["id"]) for d in found] == [("cy", "plan_occ_b1"), ("ben", "plan_occ_b1"),
                                                       ("ben", "plan_occ_b2")]  # by start time
    assert sh.shared_sessions(conn, ["plan_other"]) == []
    assert s.store.occurrences() == [] and outbox(s) == set()  # not this account's sessions
    done = {**ben1, "status": "completed", "updatedAt": "2026-05-04T16:40:00.000Z"}
    gone = {**ben2, "deletedAt": "2026-05-04T17:00:00.000Z"}
    server.pulls = [{"sharedSessions": [done, gone]}]
    sync(s, server)
    found = {(d["member"], d["id"]): d for d in sh.shared_sessions(conn, ["plan_ben"])}
    assert set(found) == {("cy", "plan_occ_b1"), ("ben", "plan_occ_b1")}
    assert found[("ben", "plan_occ_b1")]["status"] == "completed"
    assert conn.execute("SELECT status FROM shared_sessions WHERE member = 'ben' AND id = 'plan_occ_b1'"
                        ).fetchone()[0] == "completed"
    assert server.pushed == [] and outbox(s) == set()
    s.close()


# --------------------------------------------------------------------------- removal

def test_a_plan_this_account_no_longer_takes_part_in_is_removed_from_the_device(tmp_path):
    s = session(tmp_path)
    server = Scripted(SHARING)
    mine = plan_doc("plan_mine", "Mine")
    save(s, "practice_plan", mine)
    own_done = session_doc("plan_occ_a1", "plan_ben", "2026-05-03T16:00:00.000Z", "completed",
                           logEntryId="entry_a1")
    own_next = session_doc("plan_occ_a2", "plan_ben", "2026-05-05T16:00:00.000Z")
    save(s, "plan_occurrence", own_done, own_next)
    save(s, "logbook_entry", entry_doc("entry_a1", "plan_occ_a1"))
    listed = [*LIST_EDIT, {"planId": "plan_mine", "owner": "ana", "level": "owner", "members": []},
              {"planId": "plan_gone_owner", "owner": "ana", "level": "owner", "members": []}]
    server.pulls = [{"sharing": listed,
                     "practicePlans": [plan_doc("plan_ben", sharing=SHARED_BY_BEN)],
                     "planComments": [comment_doc("cmt_b", "plan_ben", "Mind the thumb"),
                                      comment_doc("cmt_c", "plan_ben", "Better", at="2026-05-03T10:00:00.000Z")],
                     "sharedSessions": [{**session_doc("plan_occ_b1", "plan_ben", "2026-05-04T16:00:00.000Z"),
                                         "member": "ben"}],
                     "versions": {"practice_plan:plan_ben": 4, "plan_comment:cmt_b": 5, "plan_comment:cmt_c": 6}}]
    sync(s, server)
    assert outbox(s) == set() and len(sh.comments(s.store.conn, "plan_ben")) == 2
    # edited here, not yet sent, when ben removes ana
    save(s, "plan_comment", {**s.store.get("plan_comment", "cmt_c"), "text": "Better now",
                             "updatedAt": "2026-05-04T11:00:00.000Z"})
    server.pulls = [{"sharing": [e for e in listed if e["planId"] not in ("plan_ben", "plan_gone_owner")]}]
    summary = sync(s, server)
    conn = s.store.conn
    assert conn.execute("SELECT count(*) FROM practice_plans WHERE id = 'plan_ben'").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM plan_comments").fetchone()[0] == 0
    assert sh.shared_sessions(conn) == [] and rows(s, "shared_sessions") == []
    assert st.states(conn, "practice_plan", ["plan_ben"]) == {}
    assert st.states(conn, "plan_comment") == {}
    # own sessions: deleted here and the deletion sent; the logbook entry stays
    occs = {d["id"]: d for d in s.store.occurrences(include_deleted=True)}
    assert occs["plan_occ_a1"]["deletedAt"] and occs["plan_occ_a2"]["deletedAt"]
    sent = {i["id"]: i for i in server.pushed_items("planOccurrences") if i.get("deletedAt")}
    assert set(sent) == {"plan_occ_a1", "plan_occ_a2"}
    assert s.store.get("logbook_entry", "entry_a1") is not None
    assert s.store.get("practice_plan", "plan_mine")["title"] == "Mine"  # the account's own plans stay
    assert outbox(s) == set() and not server.pushed_items("planComments")  # the unsent edit was not pushed
    records = {c["entity_id"]: c for c in st.conflicts(conn)}
    assert records["cmt_c"]["local"]["text"] == "Better now" and records["cmt_c"]["kept"] == "remote"
    assert set(records) == {"cmt_c"}  # the sessions had been sent: their deletion loses nothing unsent
    assert any("1 shared plan(s) removed" in w for w in summary.warnings)
    assert sh.level_of(conn, "plan_ben") is None
    s.close()


def test_an_own_plan_leaving_the_list_is_not_purged(tmp_path):
    s = session(tmp_path)
    server = Scripted(SHARING)
    save(s, "practice_plan", plan_doc("plan_mine", "Mine"))
    server.pulls = [{"sharing": [{"planId": "plan_mine", "owner": "ana", "level": "owner", "members": []}]}]
    sync(s, server)
    server.pulls = [{"sharing": []}]  # unshared by its owner: still the owner's plan
    sync(s, server)
    assert s.store.get("practice_plan", "plan_mine")["title"] == "Mine" and sh.sharing_list(s.store.conn) == []
    s.close()


# --------------------------------------------------------------------------- forbidden

def test_a_forbidden_item_is_kept_as_a_conflict_and_the_server_version_restored(tmp_path):
    s = session(tmp_path)
    server = Scripted(SHARING)
    theirs = plan_doc("plan_ben", "Scales", sharing=SHARED_BY_BEN)
    server.pulls = [{"sharing": LIST_EDIT, "practicePlans": [theirs],
                     "planComments": [comment_doc("cmt_b", "plan_ben", "Mind the thumb", author="ana")],
                     "versions": {"practice_plan:plan_ben": 4, "plan_comment:cmt_b": 5}}]
    sync(s, server)
    mine = {**s.store.get("practice_plan", "plan_ben"), "title": "My scales", "updatedAt": "2026-05-04T11:00:00.000Z"}
    save(s, "practice_plan", mine)
    save(s, "plan_comment", {**s.store.get("plan_comment", "cmt_b"), "text": "Mind the thumb!",
                             "updatedAt": "2026-05-04T11:00:00.000Z"})
    server_now = {**theirs, "title": "Scales in thirds", "updatedAt": "2026-05-04T10:00:00.000Z",
                  "user_id": "u_ben", "metadata": {"instrument": "piano",
                                                   "sharing": {"owner": "ben", "members": [
                                                       {"user": "ana", "level": "view"}]}}}
    server.push_answers = [{"success": True, "versions": {}, "conflicts": [
        {"entityId": "plan_ben", "entityType": "practice_plan", "reason": "forbidden", "remoteVersion": 6,
         "remote": server_now},
        {"entityId": "cmt_b", "entityType": "plan_comment", "reason": "forbidden", "remoteVersion": 5,
         "remote": None}]}]
    summary = sync(s, server)
    conn = s.store.conn
    restored = s.store.get("practice_plan", "plan_ben")
    assert restored["title"] == "Scales in thirds" and "user_id" not in restored
    assert wire.plan_sharing(restored)["members"] == [{"user": "ana", "level": "view"}]
    assert st.states(conn, "practice_plan")["plan_ben"] == (wire.version_hash("practice_plan", server_now), 6)
    assert conn.execute("SELECT count(*) FROM plan_comments WHERE id = 'cmt_b'").fetchone()[0] == 0
    assert "cmt_b" not in st.states(conn, "plan_comment")
    records = {c["entity_id"]: c for c in st.conflicts(conn)}
    assert records["plan_ben"]["kept"] == "remote" and records["plan_ben"]["local"]["title"] == "My scales"
    assert records["plan_ben"]["remote"]["title"] == "Scales in thirds"
    assert records["cmt_b"]["local"]["text"] == "Mind the thumb!" and records["cmt_b"]["remote"] is None
    assert {r["id"] for r in summary.rejected} == {"plan_ben", "cmt_b"} and summary.sent == 0
    assert {c["id"]: c["kept"] for c in summary.conflicts} == {"plan_ben": "remote", "cmt_b": "remote"}
    assert all("forbidden" in r["problems"][0] for r in summary.rejected)
    assert outbox(s) == set()
    pushes = len(server.pushed)
    again = sync(s, server)
    assert len(server.pushed) == pushes and again.conflicts == [] and again.merged == 0  # settled
    s.close()


# --------------------------------------------------------------------------- metadata.sharing convergence

def test_a_plan_pushed_with_a_stale_sharing_value_takes_the_servers_without_a_conflict(tmp_path):
    s = session(tmp_path)
    server = Scripted(SHARING)
    old = {"owner": "ben", "members": [{"user": "ana", "level": "edit"}]}
    new = {"owner": "ben", "members": [{"user": "ana", "level": "edit"}, {"user": "cy", "level": "view"}]}
    server.pulls = [{"sharing": LIST_EDIT, "practicePlans": [plan_doc("plan_ben", sharing=old)],
                     "versions": {"practice_plan:plan_ben": 3}}]
    sync(s, server)
    # ben shares with cy (the server rewrites metadata.sharing) while ana edits: not a conflict, her edit goes out
    edited = {**s.store.get("practice_plan", "plan_ben"), "title": "Arpeggios", "updatedAt": "2026-05-04T11:00:00.000Z"}
    save(s, "practice_plan", edited)
    server.pulls = [{"practicePlans": [plan_doc("plan_ben", sharing=new)],  # (the content is unchanged)
                     "versions": {"practice_plan:plan_ben": 4}}]
    summary = sync(s, server)
    assert summary.conflicts == []
    pushed = server.pushed_items("practicePlans")
    assert [p["title"] for p in pushed] == ["Arpeggios"] and wire.plan_sharing(pushed[0]) == old
    # the server stored it with its own list; it comes back and the list is refreshed here, nothing is pushed
    back = {**pushed[0], "metadata": {**pushed[0]["metadata"], "sharing": new}, "user_id": "u_ben"}
    server.pulls = [{"practicePlans": [back], "versions": {"practice_plan:plan_ben": 5}}]
    summary = sync(s, server)
    assert summary.conflicts == [] and len(server.pushed) == 1 and outbox(s) == set()
    here = s.store.get("practice_plan", "plan_ben")
    assert here["title"] == "Arpeggios" and wire.plan_sharing(here) == new
    assert st.states(s.store.conn, "practice_plan")["plan_ben"][1] == 5
    assert st.conflicts(s.store.conn) == []
    s.close()


# --------------------------------------------------------------------------- nothing changed

def test_a_second_sync_with_nothing_changed_writes_nothing(tmp_path):
    s = session(tmp_path)
    server = Scripted(SHARING)
    save(s, "plan_comment", comment_doc("cmt_mine", "plan_ben", "Hello", author=None))
    server.pulls = [{"sharing": LIST_EDIT, "practicePlans": [plan_doc("plan_ben", sharing=SHARED_BY_BEN)],
                     "sharedSessions": [{**session_doc("plan_occ_b1", "plan_ben", "2026-05-04T16:00:00.000Z"),
                                         "member": "ben"}]}]
    sync(s, server)
    sync(s, server)  # settles what the first one acknowledged

    def snapshot() -> dict[str, Any]:
        tables = ["practice_plans", "plan_occurrences", "logbook_entries", "plan_comments", "shared_sessions",
                  "outbox", "sync_state", "sync_batches", "conflicts"]
        meta = [r for r in rows(s, "meta") if r[0] not in ("sync.last_sync", "sync.capabilities")]
        return {**{t: rows(s, t) for t in tables}, "meta": meta}

    before, changes, pushes = snapshot(), s.store.conn.total_changes, len(server.pushed)
    summary = sync(s, server)
    assert snapshot() == before and len(server.pushed) == pushes
    assert summary.merged == 0 and summary.sent == 0 and summary.received == 0
    # only the bookkeeping of a sync (meta rows): capabilities, cursor, last_sync
    assert s.store.conn.total_changes - changes <= 3
    s.close()


def test_a_new_remote_does_not_receive_what_the_old_one_shared(tmp_path):
    s = session(tmp_path)
    server = Scripted(SHARING)
    save(s, "practice_plan", plan_doc("plan_mine", "Mine"))
    server.pulls = [{"sharing": [*LIST_EDIT, {"planId": "plan_mine", "owner": "ana", "level": "owner",
                                              "members": []}],
                     "practicePlans": [plan_doc("plan_ben", sharing=SHARED_BY_BEN)],
                     "planComments": [comment_doc("cmt_b", "plan_ben", "Mind the thumb")]}]
    sync(s, server)
    other = Scripted(BASE, user="ana2")
    sync(s, other, remote="http://127.0.0.1:10")
    assert [i["id"] for i in other.pushed_items("practicePlans")] == ["plan_mine"]
    assert s.store.get("practice_plan", "plan_ben") is None and s.store.get("plan_comment", "cmt_b") is None
    assert sh.sharing_list(s.store.conn) == [] and sh.my_name(s.store.conn) == "ana2"
    s.close()


def test_a_dry_run_counts_a_removal_and_changes_nothing(tmp_path):
    s = session(tmp_path)
    server = Scripted(SHARING)
    save(s, "plan_occurrence", session_doc("plan_occ_a2", "plan_ben", "2026-05-05T16:00:00.000Z"))
    server.pulls = [{"sharing": LIST_EDIT, "practicePlans": [plan_doc("plan_ben", sharing=SHARED_BY_BEN)],
                     "planComments": [comment_doc("cmt_b", "plan_ben", "Mind the thumb")]}]
    sync(s, server)
    save(s, "practice_plan", {**s.store.get("practice_plan", "plan_ben"), "title": "Mine now",
                              "updatedAt": "2026-05-04T11:00:00.000Z"})
    server.pulls = [{"sharing": []}]
    before = {t: rows(s, t) for t in ("practice_plans", "plan_comments", "plan_occurrences", "outbox", "meta")}
    summary = Engine(s.store, server, now=lambda: iso_z(s.now), remote="http://127.0.0.1:9", dry_run=True).run()
    assert summary.merged == 3 and summary.deleted_here == 3  # the plan, its comment, the own session
    assert summary.sent == 0  # the queued edit of a plan about to go is not counted as sent
    assert [c["id"] for c in summary.conflicts] == ["plan_ben"]
    assert {t: rows(s, t) for t in before} == before
    s.close()
