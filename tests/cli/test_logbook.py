"""The logbook: add, list, show, edit, delete, import (all or nothing)."""

from __future__ import annotations

import json
import sqlite3

from tests import wire


def test_log_add_list_show_edit_delete(cli):
    entry = cli("log", "add", "--minutes", "30", "--when", "yesterday 19:00", "--piece", "Clair de lune — Debussy",
                "--technique", "pedalling", "--mood", "excited", "--type", "rehearsal", "--notes", "line one\nline two",
                "--tag", "band", "--json").json["entry"]
    wire.check_entry(entry)
    assert entry["timestamp"] == "2026-03-01T18:00:00.000Z"  # 19:00 Berlin on Sunday
    assert entry["instrument"] == "piano"  # config default
    assert entry["metadata"] == {"source": "manual", "timezone": "Europe/Berlin"}
    assert entry["notes"] == "line one\nline two"
    listed = cli("log", "list", "--json").json["entries"]
    assert listed == [entry]
    assert cli("log", "show", entry["id"][6:13], "--json").json["entry"] == entry
    edited = cli("log", "edit", entry["id"], "--minutes", "45", "--json").json["entry"]
    assert edited["duration"] == 45 and edited["pieces"] == entry["pieces"] and edited["updatedAt"]
    assert cli("log", "edit", entry["id"], ok=False).code == 2
    cli("log", "delete", entry["id"])
    assert cli("log", "list", "--json").json["entries"] == []
    assert cli("log", "show", entry["id"], ok=False).code == 3


def test_log_list_range_is_calendar_days_in_the_users_zone(cli):
    for when in ("2026-02-28T23:30", "2026-03-01T00:30", "2026-03-01T23:59", "2026-03-02T00:00"):
        cli("log", "add", "--minutes", "10", "--when", when)
    stamps = [e["timestamp"] for e in cli("log", "list", "--from", "2026-03-01", "--to", "2026-03-01", "--json").json["entries"]]
    assert stamps == ["2026-03-01T22:59:00.000Z", "2026-02-28T23:30:00.000Z"]


def test_import_json_lines_and_unknown_fields_survive(cli, tmp_path):
    path = tmp_path / "entries.jsonl"
    rows = [
        {"id": "entry_a", "timestamp": 1772442000000, "duration": 20, "type": "practice", "instrument": "Viola",
         "pieces": [{"title": "Suite", "composer": None}], "futureField": {"kept": True}, "metadata": {"x": 1}},
        {"id": "entry_b", "timestamp": "2026-03-01T10:00:00+01:00", "duration": 0, "goal_ids": ["g1"]},
        {"timestamp": "2026-03-01T11:00:00Z", "duration": 5},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    out = cli("log", "import", str(path), "--json").json
    assert out == {"imported": 3, "new": 3, "replaced": 0}
    a = cli("log", "show", "entry_a", "--json").json["entry"]
    assert a["futureField"] == {"kept": True}
    assert a["timestamp"] == "2026-03-02T09:00:00.000Z" and a["instrument"] == "viola"
    assert a["pieces"] == [{"title": "Suite"}]  # a null composer would make Mirubato reject the push
    assert a["metadata"] == {"x": 1, "source": "manual"}
    b = cli("log", "show", "entry_b", "--json").json["entry"]
    assert b["timestamp"] == "2026-03-01T09:00:00.000Z" and b["goal_ids"] == ["g1"]
    for entry in cli("log", "list", "--json").json["entries"]:
        wire.check_entry(entry)
    again = cli("log", "import", str(path), "--json").json  # idempotent: same ids, content ids too
    assert again == {"imported": 3, "new": 0, "replaced": 3}
    assert len(cli("log", "list", "--json").json["entries"]) == 3


def test_invalid_item_rejects_the_whole_file(cli, tmp_path, isolated_home):
    cli("log", "list")  # create the database, so we can show that nothing reached it
    good = [{"id": f"entry_{i}", "timestamp": "2026-03-01T10:00:00Z", "duration": 10} for i in range(5)]
    bad = good + [{"id": "entry_bad", "timestamp": "2026-03-01T10:00:00Z", "duration": 10,
                   "pieces": [{"title": "ok"}, {"title": "x", "composer": 7}]}]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    result = cli("log", "import", str(path), ok=False)
    assert result.code == 65
    assert "item 5: pieces[1].composer: expected a string" in result.stderr
    conn = sqlite3.connect(isolated_home / "practiceplan.db")
    assert conn.execute("SELECT count(*) FROM logbook_entries").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0


def test_import_rejects_bad_json(cli, tmp_path):
    cases = {
        "nan.json": '[{"id": "e", "timestamp": "2026-03-01T10:00:00Z", "duration": NaN}]',
        "dup.json": '[{"id": "e", "id": "f", "timestamp": "2026-03-01T10:00:00Z"}]',
        "broken.jsonl": '{"id": "e"}\n{not json}\n',
        "mood.json": '[{"id": "e", "timestamp": "2026-03-01T10:00:00Z", "mood": "PROUD"}]',
        "type.json": '[{"id": "e", "timestamp": "2026-03-01T10:00:00Z", "type": "Practice"}]',
        "ts.json": '[{"id": "e", "timestamp": "yesterday"}]',
        "dupids.json": '[{"id": "e", "timestamp": "2026-03-01T10:00:00Z"}, {"id": "e", "timestamp": "2026-03-01T10:00:00Z"}]',
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        result = cli("log", "import", str(path), ok=False)
        assert result.code == 65, (name, result)
    missing = cli("log", "import", str(tmp_path / "nope.json"), ok=False)
    assert missing.code == 3


def test_hostile_text_from_imports_is_rendered_visible(cli, tmp_path):
    path = tmp_path / "evil.json"
    path.write_text(json.dumps([{"id": "entry_evil", "timestamp": "2026-03-01T10:00:00Z", "duration": 5,
                                 "notes": "\x1b]0;pwned\x07 \u202edesrever [bold]x[/bold]"}]), encoding="utf-8")
    cli("log", "import", str(path))
    text = cli("log", "show", "entry_evil").stdout
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert "\\x1b" in text and "<U+202E>" in text and "[bold]x[/bold]" in text
