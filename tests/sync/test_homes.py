"""Two and three homes syncing through every server (tests/sync/backends.py): the Mirubato-mode imitation, its
extended mode, and our own server (``practiceplan serve``) on SQLite and on PostgreSQL. Everything converges,
nothing is doubled, nothing is lost, conflicts are kept. A test that asserts Mirubato-only behaviour says so and
why; everything else runs against every server."""

from __future__ import annotations

import hashlib

import pytest

from tests.sync.backends import OURS, every_server
from tests.sync.homes import Home, server_versions


@pytest.fixture
def homes(tmp_path, sync_server):
    def make(n: int = 2, user: str = "user_a") -> list[Home]:
        server = sync_server
        token = server.token(user)
        return [Home(tmp_path / f"home{i}", server.url, token) for i in range(n)]
    return make


def first_session(home: Home) -> str:
    found = home.json("occurrences")["occurrences"]
    return sorted(found, key=lambda o: o["scheduledStart"])[0]["id"]


def converged(server, user: str, *homes: Home) -> dict[str, dict[str, str]]:
    expected = server_versions(server, user)
    for home in homes:
        assert home.versions() == expected, home.folder.name
        assert home.outbox() == 0, home.folder.name
    return expected


@every_server()
def test_two_homes_converge_on_plans_sessions_logbook_and_templates(homes, sync_server):
    a, b = homes()
    plan = a.json("plan", "add", "Scales", "--every", "weekly", "--on", "mo,th", "--at", "18:00",
                  "--minutes", "30")["plan"]
    a.cli("log", "add", "--minutes", "20", "--notes", "free practice")
    a.cli("template", "create", "--from-plan", plan["id"], "--level", "beginner")
    first = a.sync()
    assert first["sent"] > 20 and first["received"] == 0 and first["conflicts"] == []
    assert b.sync()["merged"] == first["sent"]
    held = converged(sync_server, "user_a", a, b)
    assert len(held["practice_plan"]) == 1 and len(held["logbook_entry"]) == 1 and len(held["plan_template"]) == 1
    assert b.json("plan", "show", "Scales")["plan"]["id"] == plan["id"]
    # nothing changed: nothing is sent, and the server's versions are not bumped
    versions = {r.entity_id: r.version for r in sync_server.live_rows("user_a")}
    again_a, again_b = a.sync(), b.sync()
    assert again_a["sent"] == again_b["sent"] == 0 and again_a["merged"] == again_b["merged"] == 0
    assert {r.entity_id: r.version for r in sync_server.live_rows("user_a")} == versions
    # reading on the other device (which materialises the horizon there) queues nothing new
    b.cli("today")
    assert b.outbox() == 0


@every_server()
def test_check_in_skip_reschedule_and_undo_travel(homes, sync_server):
    a, b = homes()
    a.cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--minutes", "30")
    a.sync(), b.sync()
    sessions = sorted(b.json("occurrences")["occurrences"], key=lambda o: o["scheduledStart"])
    one, two, three = (s["id"] for s in sessions[:3])
    b.cli("checkin", one, "--minutes", "25")
    b.cli("skip", two)
    b.cli("reschedule", three, "--to", "2026-03-04 07:00")
    b.sync(), a.sync()
    converged(sync_server, "user_a", a, b)
    occ = a.docs("plan_occurrence")
    assert occ[one]["status"] == "completed" and occ[one]["logEntryId"] in a.docs("logbook_entry")
    assert occ[two]["status"] == "skipped"
    assert occ[three]["scheduledStart"] == "2026-03-04T06:00:00.000Z"
    a.cli("uncheck", one)
    a.sync(), b.sync()
    converged(sync_server, "user_a", a, b)
    assert b.docs("plan_occurrence")[one]["status"] == "scheduled"
    entry = next(iter(b.docs("logbook_entry").values()))
    assert entry["duration"] == 25  # the undone check-in's entry stays, as free practice


@every_server()
def test_check_ins_from_two_devices_both_survive(homes, sync_server):
    a, b = homes()
    a.cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--minutes", "30")
    a.sync(), b.sync()
    one = first_session(a)
    a.cli("checkin", one, "--minutes", "20")
    b.tick(5)
    b.cli("checkin", one, "--minutes", "35")
    a.sync(), b.sync(), a.sync()
    held = converged(sync_server, "user_a", a, b)
    entries = a.docs("logbook_entry")
    assert sorted(e["duration"] for e in entries.values()) == [20, 35]
    assert len(held["logbook_entry"]) == 2
    # the session links to one of them; the other side's version of the session is kept as a conflict
    assert a.docs("plan_occurrence")[one]["logEntryId"] in entries
    lost = [c for h in (a, b) for c in h.conflicts() if c["id"] == one]
    assert len(lost) == 1


@every_server()
def test_deleted_on_one_device_while_edited_on_the_other(homes, sync_server):
    a, b = homes()
    a.json("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--minutes", "30")
    a.cli("log", "add", "--minutes", "5")  # so the server is not left empty (see the next test)
    a.sync(), b.sync()
    a.cli("plan", "delete", "Scales", "--yes")
    b.cli("plan", "edit", "Scales", "--minutes", "40")
    a.sync()
    result = b.sync()
    assert b.docs("practice_plan") == {} and b.docs("plan_occurrence") == {}
    plan_conflicts = [c for c in b.conflicts() if c["kind"] == "practice_plan"]
    assert len(plan_conflicts) == 1 and plan_conflicts[0]["local"]["schedule"]["durationMinutes"] == 40
    assert any(c["kind"] == "practice_plan" for c in result["conflicts"])
    converged(sync_server, "user_a", a, b)
    # the edit is not lost: resolving brings it back everywhere
    number = b.json("sync", "conflicts")
    plan_conflict = next(c for c in number if c["kind"] == "practice_plan")
    b.cli("sync", "resolve", str(plan_conflict["id"]), "--keep", "local")
    b.cli("today")
    assert len(b.docs("plan_occurrence")) > 80  # the plan's sessions (90 days) came back with it
    b.sync(), a.sync()
    assert a.json("plan", "show", "Scales")["plan"]["schedule"]["durationMinutes"] == 40
    assert a.outbox() == 0  # reading there regenerates the same sessions: nothing new to send
    converged(sync_server, "user_a", a, b)


@every_server()
def test_everything_deleted_elsewhere(homes, sync_server):
    """Everything is deleted on one device while the other edits it. Mirubato mode (full snapshots, no tombstones):
    the first pull is an empty snapshot after a full one, which the client does not trust at once ("empty
    snapshot"), the second one deletes. A server with tombstones (the extended imitation, ours) delivers the
    deletions: the first sync deletes. Either way the local edit is kept as a conflict and nothing is resurrected."""
    a, b = homes()
    a.cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--minutes", "30")
    a.sync(), b.sync()
    a.cli("plan", "delete", "Scales", "--yes")
    b.cli("plan", "edit", "Scales", "--minutes", "40")
    a.sync()
    if sync_server.full_snapshots:
        first = b.cli("sync")
        assert "empty snapshot" in first.stderr
        assert len(b.docs("practice_plan")) == 1 and sync_server.live_rows("user_a") == []  # nothing resurrected
        second = b.sync()
    else:
        second = b.sync()
        assert sync_server.live_rows("user_a") == []  # nothing resurrected
    assert second["deleted_here"] > 0 and b.docs("practice_plan") == {}
    assert any(c["kind"] == "practice_plan" and c["local"]["schedule"]["durationMinutes"] == 40
               for c in b.conflicts())
    converged(sync_server, "user_a", a, b)


@every_server()
def test_three_homes_converge(homes, sync_server):
    a, b, c = homes(3)
    a.cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--minutes", "30")
    for home in (a, b, c):
        home.sync()
    b.cli("log", "add", "--minutes", "10")
    c.cli("log", "add", "--minutes", "15")
    c.cli("plan", "edit", "Scales", "--minutes", "45")
    for _ in range(2):
        for home in (a, b, c):
            home.sync()
    held = converged(sync_server, "user_a", a, b, c)
    assert len(held["logbook_entry"]) == 2
    assert a.json("plan", "show", "Scales")["plan"]["schedule"]["durationMinutes"] == 45


@every_server()
def test_an_older_version_never_overwrites_a_newer_one_on_the_server(homes, sync_server):
    a, b = homes()
    a.cli("log", "add", "--minutes", "10")
    a.sync(), b.sync()
    entry_id = next(iter(a.docs("logbook_entry")))
    a.cli("log", "edit", entry_id, "--minutes", "11")  # older edit, not yet synced
    b.tick(30)
    b.cli("log", "edit", entry_id, "--minutes", "12")
    b.sync()
    result = a.sync()
    assert result["sent"] == 0 and [c["kept"] for c in result["conflicts"]] == ["remote"]
    assert next(iter(sync_server.live_rows("user_a"))).data["duration"] == 12
    assert a.docs("logbook_entry")[entry_id]["duration"] == 12
    assert a.conflicts()[0]["local"]["duration"] == 11
    converged(sync_server, "user_a", a, b)


# Not mirubato_ext: there pulls are incremental, and an empty page is the normal answer when nothing changed.
# Our server is listed so that the skip (and its reason) shows in the report, never silently.
@every_server("mirubato", *OURS)
def test_an_empty_pull_after_a_full_one_deletes_nothing(homes, sync_server):
    sync_server.require("empty-pull")
    a, = homes(1)
    a.cli("log", "add", "--minutes", "10")
    a.sync()
    sync_server.inject("empty-pull")
    result = a.cli("sync", ok=True)
    assert result.exit_code == 0 and "empty snapshot" in result.stderr
    assert len(a.docs("logbook_entry")) == 1
    assert a.sync()["deleted_here"] == 0 and len(a.docs("logbook_entry")) == 1  # the server was fine after all


@every_server()
def test_dry_run_changes_nothing_here_or_there(homes, sync_server):
    a, b = homes()
    a.cli("log", "add", "--minutes", "10")
    a.sync()
    b.cli("log", "add", "--minutes", "20")
    before = hashlib.sha256(b.db.read_bytes()).hexdigest()
    rows = len(sync_server.live_rows("user_a"))
    result = b.sync("--dry-run")
    assert result["dry_run"] and result["sent"] == 1 and result["merged"] == 1
    assert hashlib.sha256(b.db.read_bytes()).hexdigest() == before
    assert len(sync_server.live_rows("user_a")) == rows
    text = b.cli("sync", "--dry-run").stdout
    assert text.startswith("dry run, nothing changed: would send 1, received 1, would merge 1")


@every_server()
def test_users_do_not_see_each_other(tmp_path, sync_server):
    a = Home(tmp_path / "a", sync_server.url, sync_server.token("user_a"))
    z = Home(tmp_path / "z", sync_server.url, sync_server.token("user_z"))
    a.cli("log", "add", "--minutes", "10")
    a.sync()
    assert z.sync()["received"] == 0 and z.docs("logbook_entry") == {}


# The servers with the extensions (not Mirubato mode, which has neither tombstones nor incremental pulls).
@every_server("mirubato_ext", *OURS)
def test_extended_server_uses_tombstones_and_incremental_pulls(tmp_path, sync_server):
    token = sync_server.token("user_a")
    a, b = (Home(tmp_path / n, sync_server.url, token) for n in "ab")
    a.cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--minutes", "30")
    first = a.sync()
    assert first["mode"] == "incremental" and first["sent"] > 20
    b.sync()
    assert b.sync()["received"] == 0  # nothing new since the cursor
    a.cli("plan", "delete", "Scales", "--yes")
    a.sync()
    result = b.sync()
    assert result["deleted_here"] == first["sent"] and b.docs("practice_plan") == {}
    capabilities = b.json("sync", "status")["capabilities"]  # ours also has "template-gallery"
    assert {"conditional-push", "incremental-pull", "tombstones"} <= set(capabilities), capabilities
    converged(sync_server, "user_a", a, b)


# Only the local lock is under test (no server behaviour): one server is enough.
def test_one_sync_at_a_time_per_database(homes, mirubato):
    from practiceplan.store.sync import sync_lock

    a, = homes(1)
    a.cli("log", "add", "--minutes", "10")
    with sync_lock(a.db):  # as if cron's sync were running
        busy = a.cli("sync", ok=False)
        assert busy.exit_code == 75 and "another sync of this database is running" in busy.stderr
        assert a.cli("sync", "--dry-run").exit_code == 0  # a dry run only reads
    assert a.sync()["sent"] == 1
    events = a.json("events")
    assert any(e["name"] == "sync" for e in (events if isinstance(events, list) else events["events"]))
