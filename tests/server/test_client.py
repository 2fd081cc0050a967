"""Our sync client against `practiceplan serve`: two devices converge through it, incrementally."""

from __future__ import annotations

import json

from tests.sync.homes import Home


def server_versions(srv, user: str):
    from practiceplan.sync import wire

    found = {kind: {} for kind in wire.KINDS}
    body = srv.pull(user).json()
    for kind in wire.KINDS:
        for item in body[wire.ARRAYS[kind]]:
            found[kind][item["id"]] = wire.version_hash(kind, item)
    return found


def test_two_homes_converge_through_the_server_incrementally(srv, live_url, tmp_path):
    token = srv.user("student", "tutor")
    a, b = Home(tmp_path / "a", live_url, token), Home(tmp_path / "b", live_url, token)
    plan = a.json("plan", "add", "Scales", "--every", "weekly", "--on", "mo,th", "--at", "18:00",
                  "--minutes", "30")["plan"]
    a.cli("log", "add", "--minutes", "20", "--notes", "free practice")
    a.cli("template", "create", "--from-plan", plan["id"], "--level", "beginner")
    first = a.sync()
    assert first["mode"] == "incremental", first
    assert first["sent"] > 10 and first["conflicts"] == []
    second = b.sync()
    assert second["mode"] == "incremental" and second["merged"] == first["sent"]
    assert a.versions() == b.versions() == server_versions(srv, "student")
    # a change on b, a deletion on a: both travel, and a no-change sync sends and merges nothing
    sessions = sorted(b.json("occurrences")["occurrences"], key=lambda o: o["scheduledStart"])
    b.cli("checkin", sessions[0]["id"], "--minutes", "25")
    b.sync()
    a.sync()
    free = next(i for i, d in a.docs("logbook_entry").items() if d.get("notes") == "free practice")
    a.cli("log", "delete", free)
    a.sync(), b.sync(), a.sync()
    assert free not in b.docs("logbook_entry") and free in b.docs("logbook_entry", deleted=True)
    assert a.versions() == b.versions() == server_versions(srv, "student")
    assert a.outbox() == b.outbox() == 0
    quiet = b.sync()
    assert quiet["sent"] == 0 and quiet["merged"] == 0 and quiet["mode"] == "incremental"
    assert json.dumps(a.conflicts()) == "[]"


def test_a_cursor_older_than_the_purged_tombstones_gets_a_full_snapshot(srv, live_url, tmp_path):
    """Tombstones are kept 180 days. A device that last synced before a purge cannot learn of those deletions
    one by one: the server starts it over (`reset`), and the client treats that answer as a full snapshot, so
    what is absent from it is deleted there too."""
    token = srv.user("student", "learner")
    a, b = Home(tmp_path / "a", live_url, token), Home(tmp_path / "b", live_url, token)
    a.cli("log", "add", "--minutes", "20", "--notes", "kept")
    a.cli("log", "add", "--minutes", "10", "--notes", "deleted")
    a.sync(), b.sync()
    gone = next(i for i, d in a.docs("logbook_entry").items() if d.get("notes") == "deleted")
    a.cli("log", "delete", gone)
    a.sync()
    srv.clock.advance(days=181)
    a.cli("log", "add", "--minutes", "5", "--notes", "later")
    a.sync()  # a write after 180 days purges the old tombstone
    import sqlalchemy as sa

    from practiceplan.server import db

    with srv.engine.connect() as conn:
        assert conn.execute(sa.select(db.sync_rows.c.entity_id).where(db.sync_rows.c.entity_id == gone)).all() == []
    result = b.sync()
    assert result["deleted_here"] == 1 and result["merged"] == 2
    assert gone not in b.docs("logbook_entry")
    assert sorted(d["notes"] for d in b.docs("logbook_entry").values()) == ["kept", "later"]
    assert a.versions() == b.versions() == server_versions(srv, "student")
