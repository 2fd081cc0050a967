"""Tutor side: create (from a plan or options), edit, list, show, publish (versions), export; privacy; events."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests import wire
from tests.formats.template_helpers import events, full_doc, write


def add_plan(cli, *extra: str) -> dict:
    return cli("plan", "add", "Scales", "--every", "weekly", "--on", "mo,we,fr", "--at", "18:00", "--minutes", "30",
               "--segment", "Warm-up:10", "--segment", "Scales:20:slowly", "--prompt", "What went well?",
               "--target", "tempo=92", "--instrument", "Piano", "--focus", "evenness", "--technique", "scales",
               "--piece", "Prelude in C — Bach", *extra, "--json").json["plan"]


def create(cli, *args: str) -> dict:
    return cli("template", "create", *args, "--json").json["template"]


def test_create_from_plan_copies_the_whitelist(cli):
    plan = add_plan(cli)
    template = create(cli, "--from-plan", plan["id"], "--level", "Beginner", "--tag", "instrument:piano", "--type", "course")
    wire.check_template(template)
    assert template["id"].startswith("template_") and template["authorId"] == ""
    assert template["title"] == "Scales" and template["type"] == "course" and template["visibility"] == "private"
    assert template["templateVersion"] == 1 and "publishedAt" not in template and "sourcePlanId" not in template
    assert template["focusAreas"] == ["evenness"] and template["techniques"] == ["scales"]
    assert template["pieceRefs"] == [{"title": "Prelude in C", "composer": "Bach"}]
    schedule = template["schedule"]
    assert schedule["rule"] == "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,WE,FR" and schedule["timeOfDay"] == "18:00"
    assert schedule["metadata"]["timezone"] == "Europe/Berlin" and "target" not in schedule
    meta = template["metadata"]
    assert meta["segments"] == [{"label": "Warm-up", "durationMinutes": 10},
                                {"label": "Scales", "durationMinutes": 20, "instructions": "slowly"}]
    assert meta["reflectionPrompts"] == ["What went well?"] and meta["targets"] == {"tempo": 92}
    assert meta["instrument"] == "piano" and meta["level"] == "beginner" and meta["parameters"] == []
    assert meta["preview"]["workload"] == {"sessionMinutes": 30, "segmentsCount": 2, "totalSegmentMinutes": 30}
    assert meta["preview"]["pieces"] == [{"title": "Prelude in C", "composer": "Bach"}]
    assert set(meta) == {"segments", "reflectionPrompts", "targets", "instrument", "level", "preview", "parameters"}


def test_create_from_options(cli):
    template = create(cli, "--title", "Arpeggios {{days}}", "--every", "weekly", "--on", "tu,th", "--at", "07:30",
                      "--segment", "Arpeggios:15", "--param-spec", "days:weekdays:schedule.weekdays,title:tu,th",
                      "--param-spec", "who:choice:description:you", "--choices", "who=you,your teacher",
                      "--description", "for {{who}}", "--visibility", "public")
    params = {p["name"]: p for p in template["metadata"]["parameters"]}
    assert params["days"] == {"name": "days", "type": "weekdays", "targets": ["schedule.weekdays", "title"], "default": ["TU", "TH"]}
    assert params["who"]["choices"] == ["you", "your teacher"] and params["who"]["default"] == "you"
    assert template["visibility"] == "public" and template["description"] == "for {{who}}"


@pytest.mark.parametrize("args, words", [
    ((), "needs --title"),
    (("--title", "X"), "say when to practise"),
    (("--title", "X", "--every", "daily", "--param-spec", "p:colour:title"), "parameters[0].type"),
    (("--title", "X", "--every", "daily", "--param-spec", "p:text:title"), "no {{p}} placeholder"),
    (("--title", "X {{p}}", "--every", "daily", "--param-spec", "p:minutes:title:9999"), "default: expected"),
    (("--title", "X", "--every", "daily", "--param-spec", "bad"), "NAME:TYPE:TARGET"),
    (("--title", "X", "--every", "daily", "--choices", "p=a"), "no such parameter"),
    (("--title", "X", "--every", "daily", "--prompt", "1", "--prompt", "2", "--prompt", "3", "--prompt", "4",
      "--prompt", "5", "--prompt", "6"), "template.metadata.reflectionPrompts: 6 prompts"),
    (("--title", "X\x1b]52;c;x\x07", "--every", "daily"), "control"),
])
def test_create_refuses_bad_input_and_writes_nothing(cli, isolated_home, args, words):
    cli("plan", "list")
    result = cli("template", "create", *args, ok=False)
    assert result.code == 65 and words in result.stderr, result
    assert "\x1b" not in result.stderr
    conn = sqlite3.connect(isolated_home / "practiceplan.db")
    assert conn.execute("SELECT count(*) FROM plan_templates").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0


def test_more_prompts_with_a_raised_limit(cli):
    prompts = [x for i in range(7) for x in ("--prompt", f"Question {i}?")]
    template = create(cli, "--title", "Reflective", "--every", "daily", *prompts, "--max-prompts", "7")
    assert len(template["metadata"]["reflectionPrompts"]) == 7


def test_from_plan_never_copies_private_data(cli, isolated_home, tmp_path):
    plan = add_plan(cli, "--exdate", "2026-03-04")
    occ = cli("occurrences", "--plan", plan["id"], "--json").json["occurrences"][0]
    cli("checkin", occ["id"], "--minutes", "25", "--notes", "CANARY-NOTE", "--answer", "What went well?=CANARY-ANSWER",
        "--metric", "tempo=88")
    cli("log", "add", "--minutes", "10", "--notes", "CANARY-LOG")
    db = isolated_home / "practiceplan.db"
    conn = sqlite3.connect(db)
    doc = json.loads(conn.execute("SELECT doc FROM practice_plans").fetchone()[0])
    doc["metadata"]["privateNote"] = "CANARY-PRIVATE"
    doc["metadata"]["segments"][0]["metadata"] = {"secret": "CANARY-SEGMENT"}
    doc["metadata"]["segments"][0]["id"] = "CANARY-SEGMENT-ID"
    doc["metadata"]["adoptedFrom"] = "CANARY-ADOPTED"
    doc["sourceTemplateId"] = "CANARY-SOURCE"
    conn.execute("UPDATE practice_plans SET doc = ?", (json.dumps(doc),))
    conn.commit()
    conn.close()
    template = create(cli, "--from-plan", plan["id"])
    cli("template", "publish", template["id"])
    out = tmp_path / "shared.json"
    cli("template", "export", template["id"], "-o", str(out))
    stored = sqlite3.connect(db).execute("SELECT doc FROM plan_templates").fetchone()[0]
    for text in (out.read_text(), stored, json.dumps(template)):
        for canary in ("CANARY", "2026-03-04", occ["id"], plan["id"], "checkIn", "history", "logEntryId"):
            assert canary not in text, canary
    assert json.loads(out.read_text())["template"]["metadata"]["segments"][0] == {"label": "Warm-up", "durationMinutes": 10}


def test_edit_publish_versions_and_show(cli):
    plan = add_plan(cli)
    template = create(cli, "--from-plan", plan["id"])
    tid = template["id"]
    listed = cli("template", "list", "--json").json["templates"]
    assert [(i["status"], i["latestVersion"], i["unpublishedChanges"]) for i in listed] == [("draft", None, True)]
    published = cli("template", "publish", tid, "--json").json["template"]
    assert published["templateVersion"] == 1 and published["publishedAt"] == "2026-03-02T09:00:00.000Z"
    again = cli("template", "publish", tid, ok=False)
    assert again.code == 65 and "nothing changed since version 1" in again.stderr
    edited = cli("template", "edit", tid, "--minutes", "40", "--title", "Scales II", "--level", "advanced", "--json").json["template"]
    assert edited["schedule"]["durationMinutes"] == 40 and edited["title"] == "Scales II" and edited["templateVersion"] == 1
    assert edited["metadata"]["level"] == "advanced" and edited["schedule"]["rule"] == published["schedule"]["rule"]
    info = cli("template", "show", tid, "--json").json
    assert info["status"] == "published" and info["unpublishedChanges"] is True
    assert "published *" in cli("template", "list").stdout
    shown = cli("template", "show", tid).stdout  # a person reads the time in their zone (issue 10.11)
    assert "Mon 02 Mar 2026 10:00" in shown and "2026-03-02T09:00" not in shown
    v2 = cli("template", "publish", tid, "--visibility", "public", "--json").json["template"]
    assert v2["templateVersion"] == 2 and v2["visibility"] == "public"
    info = cli("template", "show", tid, "--json").json
    assert [v["version"] for v in info["versions"]] == [1, 2] and info["unpublishedChanges"] is False
    old = cli("template", "show", tid, "--version", "1", "--json").json
    assert old["template"]["title"] == "Scales" and old["template"]["templateVersion"] == 1
    assert cli("template", "show", tid, "--version", "9", ok=False).code == 3
    text = cli("template", "show", tid).stdout
    assert "Scales II" in text and "versions stored  1, 2" in text and "Warm-up — 10 min" in text
    wire.check_template(v2)


def test_edit_parameters_and_from_file(cli, tmp_path):
    plan = add_plan(cli)
    tid = create(cli, "--from-plan", plan["id"], "--title", "Learn {{piece}}", "--param-spec", "piece:pieces:pieceRefs,title")["id"]
    edited = cli("template", "edit", tid, "--drop-param", "piece", "--title", "Learn", "--json").json["template"]
    assert edited["metadata"]["parameters"] == []
    assert cli("template", "edit", tid, "--drop-param", "nope", ok=False).code == 65
    doc = full_doc(tid)
    path = write(tmp_path / "new.json", doc)
    replaced = cli("template", "edit", tid, "--from-file", str(path), "--json").json["template"]
    assert replaced["title"] == "Learn {{piece}}" and replaced["id"] == tid
    assert [p["name"] for p in replaced["metadata"]["parameters"]] == ["piece", "days", "at", "length", "focus", "tempo"]
    assert "publishedAt" not in replaced  # still a draft: identity and stamps are ours, not the file's
    other = write(tmp_path / "other.json", full_doc("template_someoneelse"))
    result = cli("template", "edit", tid, "--from-file", str(other), ok=False)
    assert result.code == 65 and "template.id" in result.stderr


def test_export_rules(cli, tmp_path):
    plan = add_plan(cli)
    tid = create(cli, "--from-plan", plan["id"])["id"]
    result = cli("template", "export", tid, "-o", str(tmp_path / "x.json"), ok=False)
    assert result.code == 65 and "no published version yet" in result.stderr and "template publish" in result.stderr
    cli("template", "publish", tid)
    cli("template", "edit", tid, "--minutes", "45")
    target = tmp_path / "x.json"
    info = cli("template", "export", tid, "-o", str(target), "--json")
    assert info.json == {"path": str(target), "templateId": tid, "templateVersion": 1, "bytes": len(target.read_bytes())}
    assert "unpublished changes are not in it" in info.stderr
    assert json.loads(target.read_bytes())["template"]["schedule"]["durationMinutes"] == 30
    exists = cli("template", "export", tid, "-o", str(target), ok=False)
    assert exists.code == 65 and "--force" in exists.stderr
    cli("template", "publish", tid)
    cli("template", "export", tid, "-o", str(target), "--force")
    assert json.loads(target.read_bytes())["template"]["templateVersion"] == 2
    cli("template", "export", tid, "--version", "1", "-o", str(tmp_path / "v1.json"))
    assert json.loads((tmp_path / "v1.json").read_bytes())["template"]["schedule"]["durationMinutes"] == 30


def test_imported_templates_are_read_only(cli, tmp_path):
    path = write(tmp_path / "t.json", full_doc())
    cli("template", "import", str(path), "--allow-unsigned")
    assert cli("template", "edit", "fulltemplate", "--minutes", "5", ok=False).code == 65
    assert cli("template", "publish", "fulltemplate", ok=False).code == 65
    assert [i["status"] for i in cli("template", "list", "--json").json["templates"]] == ["imported"]
    assert cli("template", "list", "--mine", "--json").json["templates"] == []


def test_events_hold_ids_and_numbers_only(cli, isolated_home, tmp_path):
    plan = add_plan(cli)
    tid = create(cli, "--from-plan", plan["id"], "--title", "T {{x}}", "--param-spec", "x:text:title:y")["id"]
    cli("template", "edit", tid, "--minutes", "20")
    cli("template", "publish", tid)
    cli("template", "export", tid, "-o", str(tmp_path / "t.json"))
    adopted = cli("template", "adopt", tid, "--json").json["plan"]
    cli("template", "edit", tid, "--minutes", "25")
    cli("template", "publish", tid)
    cli("template", "upgrade", adopted["id"])
    cli("template", "import", str(write(tmp_path / "f.json", full_doc())), "--allow-unsigned")
    recorded = events(isolated_home / "practiceplan.db")
    names = [name for name, _ in recorded]
    assert names == ["template.create", "template.update", "template.publish", "template.export", "template.adopt",
                     "template.update", "template.publish", "template.upgrade", "template.import"]
    for name, data in recorded:
        for key, value in data.items():
            assert isinstance(value, int) or (isinstance(value, str) and value.startswith(("template_", "plan_"))), (name, key, value)
    assert dict(recorded)["template.upgrade"] == {"planId": adopted["id"], "templateId": tid, "fromVersion": 1, "toVersion": 2,
                                                  "changed": 1, "clashes": 0}


def test_outbox_rows_written_with_the_template(cli, isolated_home):
    plan = add_plan(cli)
    tid = create(cli, "--from-plan", plan["id"])["id"]
    conn = sqlite3.connect(isolated_home / "practiceplan.db")
    rows = conn.execute("SELECT entity_type, op, rev FROM outbox WHERE entity_id = ?", (tid,)).fetchall()
    assert rows == [("plan_template", "upsert", 1)]
    cli("template", "publish", tid)
    assert conn.execute("SELECT rev FROM outbox WHERE entity_id = ?", (tid,)).fetchone()[0] == 2
    assert conn.execute("SELECT status, visibility, template_version FROM plan_templates").fetchone() == ("published", "private", 1)
