"""`export json|csv` and `import json`: lossless round trips, the merge rule, all-or-nothing, Mirubato."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from practiceplan.domain.models import iso_z, normalize_entry
from practiceplan.services.session import Session
from practiceplan.settings import Settings
from tests import wire
from tests.conftest import FIXED_NOW, ZONE
from tests.store.helpers import entry
from tests.domain.test_data import MIRUBATO


def _planner(home: Path) -> Session:
    return Session(Settings(env={"PRACTICEPLAN_HOME": str(home), "PRACTICEPLAN_NOW": FIXED_NOW,
                                 "PRACTICEPLAN_TZ": ZONE}))


def seed(planner: Session, db: tuple) -> None:
    """Write a generated database (see `databases()`) in one transaction, with outbox rows."""
    plans, occurrences, entries, goals, events = db
    with planner.store.write():
        for kind, docs in (("practice_plan", plans), ("plan_occurrence", occurrences), ("logbook_entry", entries),
                           ("goal", goals)):
            planner.store.save_many(kind, docs, "2026-03-01T00:00:00.000Z")
        for name, at, payload in events:
            planner.store.add_event(name, at, payload)


def _populate(cli, tmp_path):
    plan = cli("plan", "add", "Scales", "--every", "weekly", "--on", "mo,we,fr", "--at", "18:00", "--minutes", "20",
               "--start", "2026-02-09", "--json").json["plan"]
    gone = cli("plan", "add", "Old", "--every", "daily", "--at", "07:00", "--json").json["plan"]
    cli("plan", "delete", gone["id"], "--yes")
    occ = cli("occurrences", "--plan", plan["id"], "--from", "2026-02-09", "--to", "2026-02-20", "--json").json
    occ_id = occ["occurrences"][0]["id"]
    cli("checkin", occ_id, "--minutes", "25", "--notes", "=SUM(A1) — ünïcödé 🎹")
    cli("log", "add", "--minutes", "30", "--piece", "Clair de lune — Debussy", "--notes", "+danger")
    doomed = cli("log", "add", "--minutes", "3", "--json").json["entry"]
    cli("log", "delete", doomed["id"])
    return plan, gone, doomed


def test_export_json_has_every_section_with_tombstones(cli, tmp_path, isolated_home):
    plan, gone, doomed = _populate(cli, tmp_path)
    doc = json.loads(cli("export", "json").stdout)
    assert doc["format"] == "practiceplan.export" and doc["formatVersion"] == 1
    assert doc["exportedAt"] == "2026-03-02T09:00:00.000Z"  # from the clock (PRACTICEPLAN_NOW)
    for key in ("practicePlans", "planOccurrences", "entries", "planTemplates", "goals", "events", "conflicts"):
        assert isinstance(doc[key], list), key
    plans = {p["id"]: p for p in doc["practicePlans"]}
    assert plans[gone["id"]]["deletedAt"] == "2026-03-02T09:00:00.000Z"  # tombstones kept
    assert plans[plan["id"]]["schedule"]["metadata"]["timezone"] == ZONE
    entries = {e["id"]: e for e in doc["entries"]}
    assert entries[doomed["id"]]["deletedAt"] and len(entries) == 3
    assert [e["id"] for e in doc["entries"]] == sorted(entries)
    assert any(o["planId"] == gone["id"] and o["deletedAt"] for o in doc["planOccurrences"])
    for p in doc["practicePlans"]:
        wire.check_plan(p)
    for o in doc["planOccurrences"]:
        wire.check_occurrence(o)
    for e in doc["entries"]:
        wire.check_entry(e)
    assert doc["conflicts"] == []  # no conflicts table yet: an empty array


def test_export_to_file_is_private_and_never_overwrites(cli, tmp_path):
    cli("log", "add", "--minutes", "5")
    target = tmp_path / "out.json"
    cli("export", "json", "-o", str(target))
    assert target.stat().st_mode & 0o077 == 0
    first = target.read_bytes()
    cli("log", "add", "--minutes", "6")
    again = cli("export", "json", "-o", str(target), ok=False)
    assert again.code == 65 and "already exists" in again.stderr and "--force" in again.stderr
    assert target.read_bytes() == first
    cli("export", "json", "-o", str(target), "--force")
    assert len(json.loads(target.read_bytes())["entries"]) == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left
    assert cli("export", "json", "-o", str(tmp_path / "missing" / "x.json"), ok=False).code == 3


def test_export_import_into_an_empty_home_export_is_identical(cli, tmp_path, isolated_home, monkeypatch):
    _populate(cli, tmp_path)
    first = tmp_path / "first.json"
    cli("export", "json", "-o", str(first))
    other = tmp_path / "other"
    monkeypatch.setenv("PRACTICEPLAN_HOME", str(other))
    result = cli("import", "json", str(first), "--json").json
    assert result["source"] == "practiceplan" and result["replaced"] == 0 and result["inserted"] > 100
    second = tmp_path / "second.json"
    cli("export", "json", "-o", str(second))
    assert second.read_bytes() == first.read_bytes()
    # Every imported change got its outbox row, so it syncs from the new home too.
    conn = sqlite3.connect(other / "practiceplan.db")
    docs = sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
               for t in ("practice_plans", "plan_occurrences", "logbook_entries"))
    assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == docs
    assert conn.execute("SELECT count(*) FROM outbox WHERE op = 'delete'").fetchone()[0] == conn.execute(
        "SELECT (SELECT count(*) FROM practice_plans WHERE deleted_at IS NOT NULL)"
        " + (SELECT count(*) FROM plan_occurrences WHERE deleted_at IS NOT NULL)"
        " + (SELECT count(*) FROM logbook_entries WHERE deleted_at IS NOT NULL)").fetchone()[0]
    conn.close()
    # Importing again changes nothing and writes no outbox row; `today` regenerates no duplicate sessions.
    before = sqlite3.connect(other / "practiceplan.db").execute("SELECT sum(rev), max(seq) FROM outbox").fetchone()
    again = cli("import", "json", str(first), "--json").json
    assert again["inserted"] == again["replaced"] == 0 and again["unchanged"] == result["inserted"]
    assert sqlite3.connect(other / "practiceplan.db").execute("SELECT sum(rev), max(seq) FROM outbox").fetchone() == before
    cli("today")
    third = json.loads(cli("export", "json").stdout)
    assert len(third["planOccurrences"]) == len(json.loads(first.read_text())["planOccurrences"])


def test_merge_rule_end_to_end(cli, tmp_path, isolated_home):
    old, new, same, gone = (entry(i) for i in range(4))
    planner = _planner(isolated_home)
    docs = [normalize_entry(e, planner.now) for e in (old, new, same, gone)]
    for doc, stamp in zip(docs, ("2026-03-01T00:00:00.000Z", "2026-03-03T00:00:00.000Z",
                                 "2026-03-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z")):
        doc["updatedAt"] = stamp
    with planner.store.write():
        planner.store.save_many("logbook_entry", docs, "2026-03-01T00:00:00.000Z")
        planner.store.conn.execute("DELETE FROM outbox")  # as if synced
    planner.close()
    incoming = [
        {**docs[0], "duration": 99, "updatedAt": "2026-03-02T00:00:00.000Z"},  # newer: replaces
        {**docs[1], "duration": 1, "updatedAt": "2026-03-02T00:00:00.000Z"},  # older than local: kept local
        docs[2],  # identical: skipped
        {**docs[3], "deletedAt": "2026-03-02T00:00:00.000Z", "updatedAt": "2026-03-02T00:00:00.000Z"},  # deletion
        normalize_entry(entry(9), datetime(2026, 3, 2, tzinfo=timezone.utc)),  # new
    ]
    path = tmp_path / "in.json"
    path.write_text(json.dumps({"format": "practiceplan.export", "formatVersion": 1, "entries": incoming}))
    result = cli("import", "json", str(path), "--json").json
    assert result["sections"]["entries"] == {"inserted": 1, "replaced": 2, "unchanged": 1, "keptLocal": 1}
    shown = {e["id"]: e for e in cli("log", "list", "--limit", "0", "--json").json["entries"]}
    assert shown["entry_00000"]["duration"] == 99
    assert shown["entry_00001"]["duration"] == docs[1]["duration"]
    assert "entry_00003" not in shown and "entry_00009" in shown
    conn = sqlite3.connect(isolated_home / "practiceplan.db")
    assert sorted(conn.execute("SELECT entity_id, op FROM outbox")) == [
        ("entry_00000", "upsert"), ("entry_00003", "delete"), ("entry_00009", "upsert")]
    conn.close()
    text = cli("import", "json", str(path)).stdout
    assert text.strip().endswith("0 new, 0 replaced, 4 unchanged, 1 kept (local is newer)")


def test_invalid_item_rejects_the_whole_file(cli, tmp_path, isolated_home):
    cli("log", "add", "--minutes", "5")
    conn = sqlite3.connect(isolated_home / "practiceplan.db")
    before = conn.execute("SELECT (SELECT count(*) FROM logbook_entries), (SELECT count(*) FROM outbox)").fetchone()
    good = [normalize_entry(entry(i), datetime(2026, 3, 1, tzinfo=timezone.utc)) for i in range(50)]
    bad = {"format": "practiceplan.export", "formatVersion": 1, "entries": good,
           "planOccurrences": [{"id": "plan_occ_x", "planId": "plan_x"}, {"id": "plan_occ_y", "planId": 3}]}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    result = cli("import", "json", str(path), ok=False)
    assert result.code == 65
    assert result.stderr.splitlines()[0] == (
        "practiceplan: error: planOccurrences[1].planId: expected the id of the occurrence's plan (a string); "
        "nothing was imported")
    after = conn.execute("SELECT (SELECT count(*) FROM logbook_entries), (SELECT count(*) FROM outbox)").fetchone()
    assert after == before
    for text, code in (("{", 65), ('{"format": "practiceplan.export", "formatVersion": 1, "entries": [NaN]}', 65),
                       ('{"entries": [], "entries": []}', 65)):
        path.write_text(text)
        assert cli("import", "json", str(path), ok=False).code == code
    assert cli("import", "json", str(tmp_path / "nope.json"), ok=False).code == 3


def test_import_runs_in_one_begin_immediate_with_progress(tmp_path, isolated_home):
    source = _planner(tmp_path / "src")
    now = source.now
    docs = [normalize_entry(entry(i), now) for i in range(2500)]
    with source.store.write():
        source.store.save_many("logbook_entry", docs, iso_z(now))
    path = tmp_path / "big.json"
    path.write_text(source.data.export_json_text())
    source.close()
    planner = _planner(isolated_home)
    statements: list[str] = []
    planner.store.conn.set_trace_callback(statements.append)
    seen: list[tuple[int, int]] = []
    result = planner.data.import_json(path, progress=lambda done, total: seen.append((done, total)))
    planner.store.conn.set_trace_callback(None)
    planner.close()
    assert result["inserted"] == 2500
    heads = [s.split(None, 1)[0].upper() for s in statements]
    assert heads.count("BEGIN") == 1 and heads.count("COMMIT") == 1
    begin, commit = heads.index("BEGIN"), heads.index("COMMIT")
    assert statements[begin].strip().upper() == "BEGIN IMMEDIATE"
    writes = [i for i, h in enumerate(heads) if h in ("INSERT", "UPDATE", "DELETE")]
    assert writes and begin < min(writes) and max(writes) < commit
    assert seen[-1] == (2500, 2500) and [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) >= 3


def test_sync_conflicts_export_and_import(cli, tmp_path, isolated_home, monkeypatch):
    """The sync conflicts table (issue 12) travels with an export: every losing version is kept whole."""
    cli("log", "add", "--minutes", "5")
    conn = sqlite3.connect(isolated_home / "practiceplan.db")
    conn.execute("INSERT INTO conflicts (id, entity_type, entity_id, reason, kept, local_doc, remote_doc, at) "
                 "VALUES (1, 'logbook_entry', 'entry_x', 'changed here and on the server', 'remote', "
                 "'{\"duration\":3}', NULL, '2026-03-02T09:00:00.000Z')")
    conn.commit()
    conn.close()
    doc = json.loads(cli("export", "json").stdout)
    row = {"id": 1, "entity_type": "logbook_entry", "entity_id": "entry_x", "reason": "changed here and on the server",
           "kept": "remote", "local_doc": '{"duration":3}', "remote_doc": None, "at": "2026-03-02T09:00:00.000Z",
           "resolved_at": None, "resolution": None}
    assert doc["conflicts"] == [row]
    path = tmp_path / "x.json"
    path.write_text(json.dumps(doc))
    other = tmp_path / "other"
    monkeypatch.setenv("PRACTICEPLAN_HOME", str(other))
    assert cli("import", "json", str(path), "--json").json["sections"]["conflicts"] == {
        "inserted": 1, "replaced": 0, "unchanged": 0, "keptLocal": 0}
    assert cli("sync", "conflicts", "--json").json[0]["local"] == {"duration": 3}
    assert cli("import", "json", str(path), "--json").json["sections"]["conflicts"]["unchanged"] == 1


def test_events_merge_by_id(tmp_path, isolated_home):
    planner = _planner(isolated_home)
    with planner.store.write():
        planner.store.add_event("local.one", "2026-03-01T00:00:00.000Z", {"a": 1})
    path = tmp_path / "events.json"
    path.write_text(json.dumps({"format": "practiceplan.export", "formatVersion": 1, "events": [
        {"id": 1, "at": "2026-03-01T00:00:00.000Z", "name": "local.one", "data": {"a": 1}},  # same: skipped
        {"id": 1, "at": "2026-02-01T00:00:00.000Z", "name": "other.one", "data": {}},  # id taken: appended
        {"id": 7, "at": "2026-02-02T00:00:00.000Z", "name": "other.two", "data": {"x": [1]}},  # free id: kept
    ]}))
    path.write_text(path.read_text().replace('"id": 1, "at": "2026-02-01', '"id": 2, "at": "2026-02-01'))
    result = planner.data.import_json(path)
    assert result["sections"]["events"]["inserted"] == 2 and result["sections"]["events"]["unchanged"] == 1
    rows = planner.store.conn.execute("SELECT id, name FROM events ORDER BY id").fetchall()
    assert rows == [(1, "local.one"), (2, "other.one"), (7, "other.two")]
    assert planner.data.import_json(path)["sections"]["events"] == {"inserted": 0, "replaced": 0, "unchanged": 3,
                                                                     "keptLocal": 0}
    planner.close()


def test_mirubato_data_export_moves_to_the_terminal(cli, tmp_path, isolated_home):
    path = tmp_path / "mirubato-data-export-2026-03-01.json"
    path.write_text(json.dumps(MIRUBATO), encoding="utf-8")
    result = cli("import", "json", str(path), "--json").json
    assert result["source"] == "mirubato"
    assert result["sections"]["entries"]["inserted"] == 2
    assert result["sections"]["practicePlans"]["inserted"] == 2
    assert result["sections"]["planOccurrences"]["inserted"] == 1
    assert result["sections"]["goals"]["inserted"] == 1
    templates_table = "planTemplates" in result["sections"]
    assert templates_table or result["skipped"] == {"planTemplates": 1}
    plan = cli("plan", "show", "plan_web1", "--json").json["plan"]
    assert plan["schedule"]["metadata"]["timezone"] == ZONE
    wire.check_plan(plan)
    stored = cli("log", "show", "entry_1700000000000_abcdefghi", "--json").json["entry"]
    assert stored["timestamp"] == "2026-03-02T09:00:00.000Z" and stored["metadata"]["originalMood"] == "proud"
    wire.check_entry(stored)
    occ = json.loads(cli("export", "json").stdout)["planOccurrences"]
    web = [o for o in occ if o["id"] == "plan_occ_web1"]
    assert web and web[0]["logEntryId"] == "entry_1700000000000_abcdefghi"
    # The imported plan is planned forward like any other (its horizon was reset by the import).
    today = cli("today", "--json").json
    assert any(rail["plan"]["id"] == "plan_web1" for rail in today["plans"])


def test_export_csv_logbook_and_occurrences(cli, tmp_path, isolated_home):
    _populate(cli, tmp_path)
    text = cli("export", "csv", "logbook").stdout
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:5] == ["id", "timestamp", "localDate", "localTime", "durationMinutes"]
    assert len(rows) == 3  # the deleted entry is not there
    notes = [r[rows[0].index("notes")] for r in rows[1:]]
    assert "'+danger" in notes and "'=SUM(A1) — ünïcödé 🎹" in notes
    target = tmp_path / "sessions.csv"
    cli("export", "csv", "occurrences", "-o", str(target))
    assert target.read_bytes().endswith(b"\r\n")  # RFC 4180 line ends (the test runner rewrites stdout's)
    occ_rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
    header = occ_rows[0]
    assert header[:3] == ["id", "planId", "planTitle"]
    statuses = {r[header.index("status")] for r in occ_rows[1:]}
    assert "completed" in statuses and {r[header.index("planTitle")] for r in occ_rows[1:]} == {"Scales"}
    assert cli("export", "csv", "occurrences", "-o", str(target), ok=False).code == 65
    assert cli("export", "csv", "goals", ok=False).code == 2


# --------------------------------------------------------------------------- property: lossless round trip

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
_stamp = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1),
                      timezones=st.just(timezone.utc)).map(iso_z)
_json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def databases(draw):
    n_plans = draw(st.integers(0, 3))
    plans = []
    for i in range(n_plans):
        plan = {"id": f"plan_{i}_{draw(st.text('abc', max_size=3))}", "title": draw(_text) or "t",
                "status": draw(st.sampled_from(["active", "archived", "draft"])), "updatedAt": draw(_stamp),
                "metadata": draw(st.dictionaries(_text, _json_value, max_size=3)),
                "schedule": {"kind": "single", "metadata": {"timezone": "Europe/Berlin"}}}
        if draw(st.booleans()):
            plan["deletedAt"] = plan["updatedAt"]
        plans.append(plan)
    occurrences = []
    for i in range(draw(st.integers(0, 5) if plans else st.just(0))):
        occ = {"id": f"plan_occ_{i}", "planId": draw(st.sampled_from(plans))["id"], "scheduledStart": draw(_stamp),
               "status": draw(st.sampled_from(["scheduled", "completed", "skipped", "expired"])),
               "updatedAt": draw(_stamp), "metrics": draw(st.dictionaries(_text, st.integers() | _text, max_size=2))}
        if draw(st.booleans()):
            occ["deletedAt"] = occ["updatedAt"]
        occurrences.append(occ)
    entries = []
    now = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    for i in range(draw(st.integers(0, 6))):
        raw = {"id": f"entry_{i}", "timestamp": draw(_stamp), "duration": draw(st.integers(0, 600)),
               "notes": draw(st.none() | _text), "tags": draw(st.lists(_text, max_size=3)),
               "mood": draw(st.sampled_from([None, "neutral", "excited"])),
               "extra": draw(_json_value), "metadata": {"k": draw(_json_value)}}
        doc = normalize_entry(raw, now)
        if draw(st.booleans()):
            doc["deletedAt"] = doc["updatedAt"]
        entries.append(doc)
    goals = [{"id": f"goal_{i}", "title": draw(_text) or "g", "updated_at": draw(_stamp)}
             for i in range(draw(st.integers(0, 2)))]
    events = [(draw(st.sampled_from(["a.b", "stats.viewed"])), draw(_stamp),
               draw(st.dictionaries(_text, _json_value, max_size=3))) for _ in range(draw(st.integers(0, 3)))]
    return plans, occurrences, entries, goals, events


@given(databases())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_property_export_import_export_is_byte_identical(tmp_path_factory, db):
    _, _, entries, _, events = db
    base = tmp_path_factory.mktemp("rt")
    source = _planner(base / "a")
    seed(source, db)
    first = source.data.export_json_text()
    source.close()
    path = base / "export.json"
    path.write_text(first, encoding="utf-8")
    target = _planner(base / "b")
    target.data.import_json(path)
    second = target.data.export_json_text()
    target.close()
    assert second == first
    loaded = json.loads(first)
    assert len(loaded["entries"]) == len(entries) and len(loaded["events"]) == len(events)
    assert os.path.exists(base / "b" / "practiceplan.db")
