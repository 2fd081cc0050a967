"""Engine bugs found by the sync state machine (tests/sync/test_state_machine.py), each reduced to a minimal
sequence against the test server."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.sync.homes import Home, server_versions


@pytest.fixture
def homes(tmp_path, mirubato):
    def make(n: int = 2, server=None, user: str = "user_a") -> list[Home]:
        server = server or mirubato
        token = server.token(user)
        return [Home(tmp_path / f"home{i}", server.url, token) for i in range(n)]
    return make


@pytest.mark.parametrize("server_name", ["mirubato", "mirubato_ext"])
def test_a_change_after_a_push_whose_answer_was_lost_is_pushed(tmp_path, request, server_name):
    """A push is processed but every answer is lost (500 after the write, more times than the engine retries):
    the sync fails and the batch stays stored. The entry is then deleted (or edited) here. The next sync's pull
    shows our unacknowledged push landed (``in_flight``), so the merge takes it as the base -- but it did not
    record that base in ``sync_state``, so the push then took the server for never having had the entity: the
    deletion was dropped as "unchanged" (and in extended mode the edit went out with baseVersion 0, stale)."""
    server = request.getfixturevalue(server_name)
    token = server.token("user_a")
    a = Home(tmp_path / "a", server.url, token)
    a.cli("log", "add", "--minutes", "10", "--notes", "first")
    a.cli("log", "add", "--minutes", "20", "--notes", "second")
    entries = {e["notes"]: i for i, e in a.docs("logbook_entry").items()}
    server.state.inject("500-after", 4, path="/api/sync/push")
    # (in Mirubato mode a pull follows a push with no answer, and would settle it: it fails too)
    server.state.inject("500-before", 4, path="/api/sync/pull", skip=1)
    assert a.sync(ok=False).exit_code == 75
    server.state.clear_faults()
    assert len(server.state.live_rows("user_a")) == 2  # the push landed; its answer did not
    a.tick(5)
    a.cli("log", "delete", entries["first"])
    a.cli("log", "edit", entries["second"], "--minutes", "25")
    a.sync()
    a.sync()
    held = server_versions(server.state, "user_a")
    assert a.versions() == held and a.outbox() == 0
    assert set(held["logbook_entry"]) == {entries["second"]}  # the deletion reached the server
    assert next(iter(server.state.live_rows("user_a"))).data["duration"] == 25
    assert set(a.docs("logbook_entry")) == {entries["second"]}  # and nothing came back here


def test_a_later_deletion_beats_an_earlier_edit_through_a_tombstone(tmp_path, mirubato_ext):
    """Extended mode: a tombstone's last-write-wins time is when it was deleted (``deletedAt``). The server keeps
    the snapshot it had before the deletion, so the tombstone's ``updatedAt`` is that older version's; taking
    it made an edit from *before* the deletion win and brought the entry back everywhere."""
    token = mirubato_ext.token("user_a")
    a, b = (Home(tmp_path / n, mirubato_ext.url, token) for n in "ab")
    a.cli("log", "add", "--minutes", "10")
    a.cli("log", "add", "--minutes", "5")  # not everything is deleted
    a.sync(), b.sync()
    entry_id = next(i for i, e in a.docs("logbook_entry").items() if e["duration"] == 10)
    b.tick(5)
    b.cli("log", "edit", entry_id, "--minutes", "11")  # the earlier write
    a.tick(30)
    a.cli("log", "delete", entry_id)  # the later write
    a.sync()
    result = b.sync()
    assert [c["kept"] for c in result["conflicts"]] == ["remote"]
    assert entry_id not in b.docs("logbook_entry")
    a.sync()
    held = server_versions(mirubato_ext.state, "user_a")
    assert entry_id not in held["logbook_entry"]
    assert a.versions() == held == b.versions()
    assert b.conflicts()[0]["local"]["duration"] == 11  # the edit is kept as the lost version


def test_a_session_made_again_after_its_deletion_was_synced_is_not_stale_forever(tmp_path, mirubato_ext):
    """Extended mode: a deletion acknowledged by the server (or pulled as a tombstone) was forgotten, so the same
    id made again here -- a plan's session regenerated once a later edit brought the deleted plan back -- was
    pushed with baseVersion 0, refused as stale, and never re-delivered by the incremental pull: every sync
    ended with "the server kept changing" and the session stayed queued."""
    token = mirubato_ext.token("user_a")
    a, b = (Home(tmp_path / n, mirubato_ext.url, token) for n in "ab")
    a.cli("plan", "add", "Scales", "--once", "tomorrow 18:00", "--minutes", "30")
    a.sync(), b.sync()
    b.tick(1)
    b.cli("plan", "delete", "Scales", "--yes")
    a.tick(10)
    a.cli("plan", "edit", "Scales", "--title", "Arpeggios")  # the later write: the plan comes back
    a.sync()
    b.sync()  # pushes the session's deletion, takes the plan's newer version
    b.sync()  # pulls its own tombstone of the session: agreed, and (before the fix) forgotten
    b.cli("today")  # the plan's session is made again here, with its old id
    result = b.sync()
    assert result["warnings"] == [] and result["pending"] == 0
    a.sync()
    held = server_versions(mirubato_ext.state, "user_a")
    assert a.versions() == held == b.versions()
    assert len(held["plan_occurrence"]) == 1 and len(held["practice_plan"]) == 1


def test_a_deletion_made_here_survives_two_wrong_empty_snapshots(tmp_path, mirubato):
    """Found by the state machine: an empty snapshot after a suspect one is trusted; if that one was wrong too,
    a deletion made here meanwhile must still reach the server (it was dropped as "deleted on both sides")."""
    from tests.sync.homes import Home

    a = Home(tmp_path / "a", mirubato.url, mirubato.token("user_a"))
    a.cli("log", "add", "--minutes", "10")
    a.sync()
    entry = next(iter(a.docs("logbook_entry")))
    mirubato.state.inject("empty-pull")
    a.sync()  # suspect: nothing deleted
    a.cli("log", "delete", entry)
    mirubato.state.inject("empty-pull")
    a.sync()  # trusted (the second empty one in a row), but the server still has the entry
    a.sync()
    assert mirubato.state.live_rows("user_a") == [] and a.docs("logbook_entry") == {}
    assert a.outbox() == 0


def test_a_sync_that_changes_nothing_checks_only_the_bookkeeping_tables(tmp_path, mirubato_ext, monkeypatch):
    """The whole-file quick_check before a first write grows with the database (issue 12's benchmark: 6 ms at 5k
    entities, 55 ms at 50k); a sync that changed nothing writes only `meta` and `events` and checks only those.
    A sync that changes something still checks the whole file first."""
    from practiceplan.store import db as dbmod
    from tests.sync.homes import Home

    a = Home(tmp_path / "a", mirubato_ext.url, mirubato_ext.token("user_a"))
    a.cli("log", "add", "--minutes", "10")
    checked: list[str | None] = []
    real = dbmod.refuse_damaged

    def spy(conn, path, table=None):
        checked.append(table)
        return real(conn, path, table)

    monkeypatch.setattr(dbmod, "refuse_damaged", spy)
    assert a.sync()["sent"] == 1
    assert None in checked  # a first sync writes entities: the whole file was checked
    checked.clear()
    quiet = a.sync()
    assert quiet["sent"] == quiet["merged"] == 0
    assert checked and set(checked) <= {"meta", "events"}, checked
    assert a.json("sync", "status")["last_sync"]["sent"] == 0  # the bookkeeping was written


@pytest.mark.parametrize("server_name", ["mirubato", "mirubato_ext"])
def test_a_plan_brought_back_by_a_newer_edit_keeps_its_sessions(tmp_path, request, server_name):
    """B deletes a plan while A edits it; A syncs first. B's sync takes A's newer plan, but each session was merged
    on its own: B's deletion of the (unchanged on the server) session was newer there, so it was pushed. The plan
    lived on without its session; when A then deleted the plan again and B had made the session anew by reading,
    the session outlived its plan on the server. A plan's sessions now follow the plan's merged outcome."""
    server = request.getfixturevalue(server_name)
    token = server.token("user_a")
    a, b = (Home(tmp_path / n, server.url, token) for n in "ab")
    a.cli("plan", "add", "Scales", "--once", "tomorrow 18:00", "--minutes", "30")
    a.sync(), b.sync()
    (session_id,) = a.docs("plan_occurrence")
    b.tick(1)
    b.cli("plan", "delete", "Scales", "--yes")
    a.tick(10)
    a.cli("plan", "edit", "Scales", "--title", "Arpeggios")
    a.sync()
    result = b.sync()
    assert [(c["kind"], c["kept"]) for c in result["conflicts"]] == [("practice_plan", "remote")]
    held = server_versions(server.state, "user_a")
    assert session_id in held["plan_occurrence"]  # the session was not deleted on the server
    assert session_id in b.docs("plan_occurrence")  # and is back here with its plan
    a.tick(1)
    a.cli("plan", "delete", "Arpeggios", "--yes")
    b.cli("today")  # reading regenerates what the plan needs
    for home in (a, b, a, b):
        home.tick(1)
        home.sync()
    held = server_versions(server.state, "user_a")
    assert held["practice_plan"] == {} and held["plan_occurrence"] == {}
    assert a.versions() == held == b.versions()
    assert a.outbox() == 0 and b.outbox() == 0


@pytest.mark.parametrize("server_name", ["mirubato", "mirubato_ext"])
def test_a_check_in_on_a_plan_deleted_elsewhere_does_not_keep_the_session_alive(tmp_path, request, server_name):
    """A checks in on a session while B deletes its plan, and the check-in is newer. Decided on its own, the
    session won last-write-wins and stayed live on the server under a deleted plan. Now the plan's deletion
    decides: the session is deleted, the check-in's session version is kept in a conflict record, and the
    logbook entry the check-in wrote survives."""
    server = request.getfixturevalue(server_name)
    token = server.token("user_a")
    a, b = (Home(tmp_path / n, server.url, token) for n in "ab")
    a.cli("plan", "add", "Scales", "--once", "tomorrow 18:00", "--minutes", "30")
    a.cli("log", "add", "--minutes", "5")  # not everything is deleted (an empty snapshot is not trusted at once)
    a.sync(), b.sync()
    (session_id,) = a.docs("plan_occurrence")
    b.tick(1)
    b.cli("plan", "delete", "Scales", "--yes")
    b.sync()
    a.tick(10)
    a.cli("checkin", session_id, "--minutes", "25", "--notes", "hard day")
    result = a.sync()
    for home in (b, a, b):
        home.tick(1)
        home.sync()
    held = server_versions(server.state, "user_a")
    assert held["practice_plan"] == {} and held["plan_occurrence"] == {}
    assert len(held["logbook_entry"]) == 2  # the practice itself is never merged away
    assert a.versions() == held == b.versions()
    lost = [c for c in a.conflicts() if c["kind"] == "plan_occurrence"]
    assert len(lost) == 1 and lost[0]["local"]["status"] == "completed"
    assert result["conflicts"] and a.outbox() == 0 and b.outbox() == 0


PUSH, PULL = "/api/sync/push", "/api/sync/pull"


def _two_homes(tmp_path, server):
    token = server.token("user_a")
    a, b = (Home(tmp_path / n, server.url, token) for n in "ab")
    a.cli("log", "add", "--minutes", "10", "--notes", "x")
    a.sync(), b.sync()
    return a, b, next(iter(a.docs("logbook_entry")))


def _entry(home: Home, notes: str) -> str:
    return next(i for i, e in home.docs("logbook_entry").items() if e.get("notes") == notes)


def _lose_answers(server, a: Home, fault: str, *, check_fails: bool = True) -> int:
    """A syncs, and every answer to its push is lost to ``fault`` (four times) and, with ``check_fails``, so is
    the pull that would show whether the push arrived: the sync exits 75 and keeps the batch. Returns where A's
    requests start in the server's log."""
    start = len(server.state.requests)
    server.state.inject(fault, 4, path=PUSH)
    if check_fails:
        server.state.inject("500-before", 4, path=PULL, skip=1)
    assert a.sync(ok=False).exit_code == 75
    server.state.clear_faults()
    return start


def _unanswered_push(server, a: Home, x: str, fault: str, *, edit: bool = True, check_fails: bool = True
                     ) -> tuple[str, int]:
    """A edits x (with ``edit``) and logs y, then :func:`_lose_answers`. Returns y's id and the log position."""
    a.tick(5)
    if edit:
        a.cli("log", "edit", x, "--notes", "x by a")
    a.cli("log", "add", "--minutes", "20", "--notes", "y")
    return _entry(a, "y"), _lose_answers(server, a, fault, check_fails=check_fails)


@pytest.mark.parametrize("server_name", ["mirubato", "mirubato_ext"])
def test_an_entry_deleted_elsewhere_after_a_push_whose_answers_were_lost_stays_deleted(tmp_path, request,
                                                                                         server_name):
    """Found by the state machine (Mirubato mode). A pushes an edit of x and a new entry y; the server stores
    both but every answer is lost, and so is the pull that would have shown it. B then edits x (later) and
    deletes y. A's next sync takes B's x, so its stored batch is no longer what it means to say; y, never
    acknowledged and absent from the full snapshot, was pushed again and came back to life everywhere.
    Now the server is asked whether it stored the batch under its key: it did, so y was deleted elsewhere."""
    server = request.getfixturevalue(server_name)
    a, b, x = _two_homes(tmp_path, server)
    y, start = _unanswered_push(server, a, x, "truncate")
    assert y in server_versions(server.state, "user_a")["logbook_entry"]  # stored; A does not know it
    b.tick(10)
    b.sync()
    b.cli("log", "edit", x, "--notes", "x by b")
    b.cli("log", "delete", y)
    b.sync()
    a.tick(15)
    a.sync()
    a.sync()
    held = server_versions(server.state, "user_a")
    assert set(held["logbook_entry"]) == {x}  # y stays deleted
    assert a.versions() == held == b.versions() and a.outbox() == 0
    assert a.docs("logbook_entry")[x]["notes"] == "x by b"
    lost = {(c["id"], c["kept"], c["local"]["notes"]) for c in a.conflicts()}
    assert (x, "remote", "x by a") in lost  # the edit that lost to B's later one
    if server_name == "mirubato":
        # y: deleted here too, kept in a record since nothing on the server says who deleted it
        assert (y, "remote", "y") in lost
        keys = [k for _m, p, k in server.state.requests[start:] if p == PUSH]
        assert keys.count(keys[0]) == 4 + 2  # four tries, then two empty pushes under that key asked about it


def test_a_push_that_failed_after_it_was_stored_is_settled_by_a_pull_at_once(tmp_path, mirubato):
    """Mirubato stores a push and answers 500 when it fails afterwards, without remembering the key: later,
    nothing could tell whether that push arrived. The pull that follows a push with no answer tells now."""
    a, b, x = _two_homes(tmp_path, mirubato)
    a.tick(5)
    a.cli("log", "add", "--minutes", "20", "--notes", "y")
    y = _entry(a, "y")
    before = mirubato.state.count_requests(PUSH)
    mirubato.state.inject("500-after", 4, path=PUSH)
    result = a.sync()  # the pull shows it stored: settled, exit 0
    assert result["sent"] == 1 and a.outbox() == 0  # y, sent by the tries whose answers were lost
    assert mirubato.state.count_requests(PUSH) - before == 4  # four tries of the batch, no resend after the pull
    b.tick(10)
    b.sync()
    b.cli("log", "delete", y)
    b.sync()
    a.tick(15)
    a.sync()
    held = server_versions(mirubato.state, "user_a")
    assert set(held["logbook_entry"]) == {x}
    assert a.versions() == held == b.versions() and a.outbox() == 0 and a.conflicts() == []


def test_a_push_that_never_arrived_is_sent_again_under_a_new_key(tmp_path, mirubato):
    """The other side of the probe: the server refused every try before storing anything. B's later edit of x
    makes A's stored batch stale, and its new entry y is absent from the snapshot because it never arrived: the
    probe finds the key free, and y goes out again, once."""
    a, b, x = _two_homes(tmp_path, mirubato)
    y, start = _unanswered_push(mirubato, a, x, "500-before", check_fails=False)  # the pull shows nothing arrived
    assert y not in server_versions(mirubato.state, "user_a")["logbook_entry"]
    b.tick(10)
    b.cli("log", "edit", x, "--notes", "x by b")
    b.sync()
    a.tick(15)
    a.sync()
    b.sync()
    held = server_versions(mirubato.state, "user_a")
    assert set(held["logbook_entry"]) == {x, y}
    assert a.versions() == held == b.versions() and a.outbox() == 0
    keys = [k for _m, p, k in mirubato.state.requests[start:] if p == PUSH]
    # four tries; b's push; the empty push under the key (accepted: it was free); y under a new key
    assert keys.count(keys[0]) == 5 and len(set(keys)) == len(keys) - 4 and keys[-1] != keys[0]
    assert [c["id"] for c in a.conflicts()] == [x]  # only the edit that lost: y is no conflict


@pytest.mark.parametrize("fault", ["truncate", "500-after"])
def test_what_tells_a_stored_batch_without_a_probe(tmp_path, mirubato, fault):
    """The other two signs that a stored batch arrived. truncate: the batch (y alone) is still what A means to
    say and is resent under its key; the server answers with a replay, so y was deleted elsewhere. 500-after (the
    server keeps no key): x, in the same batch, is on the server as sent."""
    a, b, x = _two_homes(tmp_path, mirubato)
    y, _start = _unanswered_push(mirubato, a, x, fault, edit=fault == "500-after")
    b.tick(10)
    b.sync()
    b.cli("log", "delete", y)
    b.sync()
    pushes = mirubato.state.count_requests(PUSH)
    a.tick(15)
    result = a.sync()
    assert [(c["id"], c["kept"]) for c in result["conflicts"]] == [(y, "remote")]
    # truncate: one resend, answered as a replay (nothing processed); 500-after: nothing sent at all
    assert mirubato.state.count_requests(PUSH) - pushes == (1 if fault == "truncate" else 0)
    held = server_versions(mirubato.state, "user_a")
    assert set(held["logbook_entry"]) == {x}
    assert a.versions() == held == b.versions() and a.outbox() == 0
    # the record brings it back, on purpose, everywhere
    (record,) = a.json("sync", "conflicts")
    a.cli("sync", "resolve", str(record["id"]), "--keep", "local")
    a.sync()
    b.sync()
    held = server_versions(mirubato.state, "user_a")
    assert set(held["logbook_entry"]) == {x, y} and a.versions() == held == b.versions()


def test_a_plan_deleted_elsewhere_after_a_lost_answer_goes_with_its_sessions(tmp_path, mirubato):
    """A new plan and its sessions in a batch whose answers were lost; another device edits the entry in the same
    batch and deletes the plan: A's probe finds the batch stored, so the plan and its sessions are deleted here
    (the plan kept in a conflict record), and nothing of it comes back."""
    a, b, x = _two_homes(tmp_path, mirubato)
    a.tick(5)
    a.cli("log", "edit", x, "--notes", "x by a")
    a.cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--minutes", "20", "--end", "2026-03-05")
    plan_id = next(iter(a.docs("practice_plan")))
    assert len(a.docs("plan_occurrence")) >= 2
    _lose_answers(mirubato, a, "truncate")
    b.tick(10)
    b.sync()
    b.cli("log", "edit", x, "--notes", "x by b")
    b.cli("plan", "delete", plan_id, "--yes")
    b.sync()
    a.tick(15)
    a.sync()
    a.sync()
    held = server_versions(mirubato.state, "user_a")
    assert held["practice_plan"] == {} and held["plan_occurrence"] == {}
    assert a.docs("practice_plan") == {} and a.docs("plan_occurrence") == {}
    assert a.versions() == held == b.versions() and a.outbox() == 0
    assert {c["id"] for c in a.conflicts() if c["kind"] == "practice_plan"} == {plan_id}


def test_a_deletion_made_on_two_devices_is_no_sign_that_a_batch_arrived(tmp_path, mirubato):
    """Found by the state machine: A's batch (x deleted, y new) never arrived; B deleted x too. At A's next sync
    x is gone from the server as A meant, which showed nothing about A's batch, but was taken for a sign that it
    had arrived: y, absent, was then taken for deleted elsewhere and deleted here."""
    a, b, x = _two_homes(tmp_path, mirubato)
    a.cli("log", "add", "--minutes", "5", "--notes", "kept")  # (not everything is deleted)
    a.sync(), b.sync()
    a.tick(5)
    a.cli("log", "delete", x)
    a.cli("log", "add", "--minutes", "20", "--notes", "y")
    y = _entry(a, "y")
    mirubato.state.inject("500-before", 4, path=PUSH)
    assert a.sync(ok=False).exit_code == 75
    b.tick(10)
    b.cli("log", "delete", x)
    b.sync()
    a.tick(15)
    result = a.sync()
    assert result["conflicts"] == [] and y in a.docs("logbook_entry")
    b.sync()
    held = server_versions(mirubato.state, "user_a")
    assert set(held["logbook_entry"]) == {y, _entry(a, "kept")}
    assert a.versions() == held == b.versions() and a.outbox() == 0


@pytest.mark.parametrize("server_name", ["mirubato", "mirubato_ext"])
def test_a_replayed_batch_does_not_acknowledge_what_the_server_changed_since(tmp_path, request, server_name):
    """Found by the state machine (extended mode). A's edit of x arrives but every answer is lost. B takes it,
    edits x again with a clock 36 hours behind, and syncs. At A's next sync last-write-wins keeps A's edit (later
    by the clocks), so A's stored batch is still what it means to say: resent under its key, it was answered from
    the server's memory and acknowledged, so A took the server for holding A's version. It held B's, and an
    incremental pull never sent it again: A and the server stayed different for good."""
    server = request.getfixturevalue(server_name)
    a, b, x = _two_homes(tmp_path, server)
    a.tick(5)
    a.cli("log", "edit", x, "--notes", "x by a")
    _lose_answers(server, a, "truncate")
    b.tick(10)
    b.sync()
    b.skew = timedelta(hours=-36)
    b.cli("log", "edit", x, "--notes", "x by b")
    b.sync()
    a.tick(15)
    b.tick(15)
    result = a.sync()
    assert [(c["id"], c["kept"]) for c in result["conflicts"]] == [(x, "local")]
    a.sync()
    b.sync()
    held = server_versions(server.state, "user_a")
    assert a.versions() == held == b.versions() and a.outbox() == 0
    assert a.docs("logbook_entry")[x]["notes"] == "x by a"  # the later write by the clocks
    assert [c["remote"]["notes"] for c in a.conflicts()] == ["x by b"]  # the one that lost is kept
