"""Learner side: import (versions), gallery, adopt (parameters, the learner's zone, all sessions), preview, lint."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests import wire
from tests.formats.template_helpers import full_doc, logical_dump, minimal_doc, with_path, write

BERLIN = ZoneInfo("Europe/Berlin")


def imported(cli, tmp_path, doc=None, name="t.json") -> dict:
    path = write(tmp_path / name, doc or full_doc())
    return cli("template", "import", str(path), "--allow-unsigned", "--json").json


def local(occ: dict, zone=BERLIN) -> datetime:
    return datetime.fromisoformat(occ["scheduledStart"].replace("Z", "+00:00")).astimezone(zone)


def test_adoption_uses_the_learners_zone_and_creates_every_session(cli, tmp_path, monkeypatch):
    # the tutor wrote the template in New York at 18:00; the learner lives in Berlin
    doc = full_doc()
    assert doc["template"]["schedule"]["metadata"]["timezone"] == "America/New_York"
    imported(cli, tmp_path, doc)
    monkeypatch.setenv("PRACTICEPLAN_TZ", "Europe/Berlin")
    result = cli("template", "adopt", "fulltemplate", "--param", "piece=Clair de lune — Debussy", "--json").json
    plan = result["plan"]
    wire.check_plan(plan)
    assert plan["schedule"]["metadata"]["timezone"] == "Europe/Berlin"
    assert plan["sourceTemplateId"] == "template_fulltemplate01" and plan["templateVersion"] == 1
    assert plan["metadata"]["adoptedFrom"] == "template_fulltemplate01"
    assert plan["metadata"]["adoptedAt"] == "2026-03-02T09:00:00.000Z"
    assert plan["id"].startswith("plan_") and plan["visibility"] == "private" and plan["status"] == "active"
    occs = cli("occurrences", "--plan", plan["id"], "--from", "2026-03-01", "--to", "2026-12-31", "--json").json["occurrences"]
    # every Monday, Wednesday and Friday from 2 March for the 90-day horizon: 13 weeks x 3, not just one
    assert result["occurrencesChanged"] == len(occs) == 39
    assert {local(o).strftime("%a %H:%M") for o in occs} == {"Mon 18:00", "Wed 18:00", "Fri 18:00"}
    assert occs[0]["scheduledStart"] == "2026-03-02T17:00:00.000Z"  # 18:00 CET
    assert "2026-03-30T16:00:00.000Z" in {o["scheduledStart"] for o in occs}  # 18:00 CEST after the switch
    assert not any(o["scheduledStart"][11:16] in ("18:00", "23:00", "22:00") for o in occs)  # not UTC, not New York
    for occ in occs:
        wire.check_occurrence(occ)
        assert occ["reflectionPrompts"] == ["What went well?", "What will you change next time?"]  # not dropped
        assert occ["targets"] == {"tempo": 80} and len(occ["segments"]) == 2
        assert occ["flexWindow"] == "fixed"
    assert len({o["id"] for o in occs}) == 39


def test_parameters_are_substituted_everywhere(cli, tmp_path):
    imported(cli, tmp_path)
    result = cli("template", "adopt", "fulltemplate", "--param", "piece=Clair de lune — Debussy; Arabesque 1 — Debussy",
                 "--param", "days=tu,th", "--param", "at=7:30", "--param", "length=60", "--param", "focus=Rhythm",
                 "--param", "tempo=100", "--start", "2026-03-09", "--json").json
    plan = result["plan"]
    assert plan["title"] == "Learn Clair de lune — Debussy; Arabesque 1 — Debussy"
    pieces = [{"title": "Clair de lune", "composer": "Debussy"}, {"title": "Arabesque 1", "composer": "Debussy"}]
    assert plan["pieceRefs"] == pieces
    schedule = plan["schedule"]
    assert schedule["rule"] == "FREQ=WEEKLY;INTERVAL=1;BYDAY=TU,TH" and schedule["timeOfDay"] == "07:30"
    assert schedule["startDate"] == "2026-03-09" and schedule["durationMinutes"] == 60
    segments = plan["metadata"]["segments"]
    assert segments[0] == {"label": "Warm-up", "durationMinutes": 20, "instructions": "focus on rhythm"}
    assert segments[1] == {"label": "Piece", "durationMinutes": 40, "pieceRefs": pieces}
    assert plan["metadata"]["targets"] == {"tempo": 100}
    assert plan["metadata"]["adoption"] == {
        "templateVersion": 1, "start": "2026-03-09",
        "parameters": {"piece": pieces, "days": ["TU", "TH"], "at": "07:30", "length": 60, "focus": "rhythm", "tempo": 100},
    }
    assert result["parameters"]["focus"] == "rhythm"
    assert plan["type"] == "course" and plan["tags"] == ["instrument:piano"] and plan["metadata"]["level"] == "beginner"
    assert plan["metadata"]["instrument"] == "piano"


@pytest.mark.parametrize("args, words", [
    ((), "missing required parameter: piece (pieces)"),
    (("--param", "piece=X", "--param", "colour=red"), "--param colour: this template has no such parameter"),
    (("--param", "piece=X", "--param", "length=500"), "--param length: expected a whole number of minutes from 10 to 120"),
    (("--param", "piece=X", "--param", "days=someday"), "--param days"),
    (("--param", "piece=X", "--param", "at=25:00"), "--param at"),
    (("--param", "piece=X", "--param", "focus=pitch"), "--param focus: expected one of: tone, rhythm"),
    (("--param", "piece=X", "--param", "piece=Y"), "given twice"),
    (("--param", "piece"), "NAME=VALUE"),
    (("--param", "piece=\x1b]52;c;x\x07"), "--param piece"),
    (("--param", "piece=X", "--title", ""), "title must not be empty"),
])
def test_adopt_refuses_bad_parameters_without_writing(cli, isolated_home, tmp_path, args, words):
    imported(cli, tmp_path)
    before = logical_dump(isolated_home / "practiceplan.db")
    result = cli("template", "adopt", "fulltemplate", *args, ok=False)
    assert result.code == 65 and words in result.stderr, result
    assert "\x1b" not in result.stderr
    assert logical_dump(isolated_home / "practiceplan.db") == before


def test_missing_parameters_are_asked_for_on_a_terminal(cli, tmp_path, monkeypatch):
    imported(cli, tmp_path)
    monkeypatch.setattr("practiceplan.cli.templates.stdin_is_tty", lambda: True)
    result = cli("template", "adopt", "fulltemplate", input="\nClair de lune — Debussy\n")
    assert "Your piece (Title — Composer; ...)" in result.stderr and "Your piece" not in result.stdout
    assert "Adopted as plan" in result.stdout
    plan = cli("plan", "list", "--json").json["plans"][0]
    assert plan["title"] == "Learn Clair de lune — Debussy"


def test_adopt_with_title_and_start_words(cli, tmp_path):
    imported(cli, tmp_path)
    plan = cli("template", "adopt", "fulltemplate", "--param", "piece=Etude", "--title", "My etude",
               "--start", "next monday", "--json").json["plan"]
    assert plan["title"] == "My etude" and plan["schedule"]["startDate"] == "2026-03-09"
    assert plan["metadata"]["adoption"]["title"] == "My etude"
    text = cli("template", "adopt", "fulltemplate", "--param", "piece=Etude").stdout
    assert text.startswith('Adopted as plan ') and "(39 sessions, Europe/Berlin)" in text
    assert cli("template", "gallery", "--json").json["templates"][0]["adoptions"] == 2


def test_single_session_template(cli, tmp_path):
    doc = minimal_doc(schedule={"kind": "single", "startDate": "2026-01-01", "timeOfDay": "17:00", "durationMinutes": 45},
                      title="Lesson prep")
    imported(cli, tmp_path, doc)
    result = cli("template", "adopt", "minimal", "--start", "2026-03-06", "--json").json
    assert result["occurrencesChanged"] == 1
    assert result["plan"]["schedule"]["kind"] == "single" and result["plan"]["schedule"]["target"] == "2026-03-06T16:00:00.000Z"


def test_end_date_keeps_the_templates_span(cli, tmp_path):
    doc = minimal_doc(schedule={"kind": "recurring", "rule": "FREQ=DAILY;INTERVAL=1", "startDate": "2025-01-01",
                                "endDate": "2025-01-14", "timeOfDay": "08:00"})
    imported(cli, tmp_path, doc)
    result = cli("template", "adopt", "minimal", "--json").json
    assert result["plan"]["schedule"]["endDate"] == "2026-03-15" and result["occurrencesChanged"] == 14


def test_drafts_cannot_be_adopted(cli):
    template = cli("template", "create", "--title", "Draft", "--every", "daily", "--json").json["template"]
    result = cli("template", "adopt", template["id"], ok=False)
    assert result.code == 65 and "is a draft" in result.stderr and "template publish" in result.stderr
    cli("template", "publish", template["id"])
    assert cli("template", "adopt", template["id"], "--json").json["occurrencesChanged"] == 91  # 2 March .. 31 May


def test_import_versions(cli, isolated_home, tmp_path):
    assert imported(cli, tmp_path)["outcome"] == "imported"
    assert imported(cli, tmp_path)["outcome"] == "unchanged"
    changed = with_path(full_doc(), ["template", "title"], "Changed {{piece}}")
    before = logical_dump(isolated_home / "practiceplan.db")
    result = cli("template", "import", str(write(tmp_path / "c.json", changed)), "--allow-unsigned", ok=False)
    assert result.code == 65 and "version 1 of this template was already imported with different content" in result.stderr
    assert logical_dump(isolated_home / "practiceplan.db") == before
    v3 = with_path(changed, ["template", "templateVersion"], 3)
    assert imported(cli, tmp_path, v3, "v3.json")["outcome"] == "updated"
    v2 = with_path(with_path(full_doc(), ["template", "templateVersion"], 2), ["template", "title"], "Old {{piece}}")
    older = imported(cli, tmp_path, v2, "v2.json")
    assert older["outcome"] == "stored-older" and older["template"]["title"] == "Changed {{piece}}"
    info = cli("template", "show", "fulltemplate", "--json").json
    assert [v["version"] for v in info["versions"]] == [1, 2, 3] and info["template"]["templateVersion"] == 3
    assert cli("template", "show", "fulltemplate", "--version", "2", "--json").json["template"]["title"] == "Old {{piece}}"
    text = cli("template", "import", str(tmp_path / "v2.json"), "--allow-unsigned").stdout
    assert "Already had version 2" in text


def test_cannot_import_over_your_own_template(cli, tmp_path):
    own = cli("template", "create", "--title", "Mine", "--every", "daily", "--json").json["template"]
    cli("template", "publish", own["id"])
    cli("template", "export", own["id"], "-o", str(tmp_path / "own.json"))
    result = cli("template", "import", str(tmp_path / "own.json"), "--allow-unsigned", ok=False)
    assert result.code == 65 and "one of your own templates" in result.stderr


def test_import_from_stdin(cli, tmp_path):
    result = cli("template", "import", "-", "--allow-unsigned", "--json", input=json.dumps(full_doc()))
    assert result.json["outcome"] == "imported"


def test_gallery_filters(cli, tmp_path):
    imported(cli, tmp_path)
    violin = full_doc("template_violin")
    violin["template"].update(title="Bowing {{piece}}", tags=["strings"], description="Long bows")
    violin["template"]["metadata"].update(instrument="violin", level="advanced")
    imported(cli, tmp_path, violin, "v.json")
    cli("template", "create", "--title", "Draft only", "--every", "daily")
    ids = lambda *a: [i["template"]["id"] for i in cli("template", "gallery", *a, "--json").json["templates"]]  # noqa: E731
    assert sorted(ids()) == ["template_fulltemplate01", "template_violin"]
    assert ids("--instrument", "Violin") == ["template_violin"]
    assert ids("--level", "beginner") == ["template_fulltemplate01"]
    assert ids("--tag", "piano") == ["template_fulltemplate01"]
    assert ids("--search", "long BOWS") == ["template_violin"]
    assert ids("--search", "nothing like this") == []
    text = cli("template", "gallery").stdout
    assert "Bowing {{piece}}" in text and "violin" in text and "advanced" in text and "unsigned" in text
    cli("template", "adopt", "violin", "--param", "piece=X")
    assert ids()[0] == "template_violin"  # most adopted first
    assert "No templates to adopt" in cli("template", "gallery", "--level", "expert").stdout


def test_preview_writes_nothing(cli, isolated_home, tmp_path):
    path = write(tmp_path / "t.json", full_doc())
    result = cli("template", "preview", str(path), "--param", "piece=Etude", "--json").json
    assert not isolated_home.exists() or not (isolated_home / "practiceplan.db").exists()
    assert result["from"] == "2026-03-02" and result["to"] == "2026-03-29" and result["weeks"] == 4
    assert len(result["sessions"]) == 12 and result["timezone"] == "Europe/Berlin"
    assert result["sessions"][0]["scheduledStart"] == "2026-03-02T17:00:00.000Z"
    assert result["signature"]["present"] is False
    text = cli("template", "preview", str(path), "--param", "piece=Etude", "--weeks", "2", "--param", "days=tu").stdout
    assert "Preview: Learn Etude" in text and "03 Mar" in text and "18:00 30m" in text
    assert "2 sessions, 60 minutes in 2 weeks" in text and "not signed" in text
    missing = cli("template", "preview", str(path), ok=False)
    assert missing.code == 65 and "missing required parameter: piece" in missing.stderr
    assert not (isolated_home / "practiceplan.db").exists()


def test_preview_respects_week_start(cli, tmp_path):
    cli("config", "set", "week_start", "sunday")
    path = write(tmp_path / "t.json", full_doc())
    result = cli("template", "preview", str(path), "--param", "piece=E", "--weeks", "1", "--json").json
    assert result["from"] == "2026-03-01" and result["to"] == "2026-03-07"
    assert cli("template", "preview", str(path), "--param", "piece=E").stdout.split("\n")[2].startswith("│Sun")


def test_lint(cli, tmp_path):
    path = write(tmp_path / "t.json", full_doc())
    report = cli("template", "lint", str(path), "--json").json
    assert report["valid"] is True and report["templateId"] == "template_fulltemplate01" and report["parameters"] == 6
    assert report["signature"] == {"present": False, "valid": False, "fingerprint": None, "trustedAs": None}
    assert any("not signed" in w for w in report["warnings"]) and any("'piece' has no default" in w for w in report["warnings"])
    text = cli("template", "lint", str(path)).stdout
    assert text.startswith("OK: Learn {{piece}}") and "warning: not signed" in text
    bad = write(tmp_path / "bad.json", with_path(full_doc(), ["template", "metadata", "segments", 1, "durationMinutes"], -5))
    result = cli("template", "lint", str(bad), ok=False)
    assert result.code == 65
    assert result.stderr == f"practiceplan: error: {bad}: template.metadata.segments[1].durationMinutes: expected a whole number of minutes from 1 to 1440\n"
    assert cli("template", "lint", str(tmp_path / "missing.json"), ok=False).code == 3


def test_adopted_plan_and_occurrences_are_stored_with_outbox_rows(cli, isolated_home, tmp_path):
    imported(cli, tmp_path)
    plan = cli("template", "adopt", "fulltemplate", "--param", "piece=E", "--json").json["plan"]
    conn = sqlite3.connect(isolated_home / "practiceplan.db")
    kinds = dict(conn.execute("SELECT entity_type, count(*) FROM outbox GROUP BY entity_type").fetchall())
    assert kinds == {"plan_template": 1, "practice_plan": 1, "plan_occurrence": 39}
    assert conn.execute("SELECT horizon FROM practice_plans WHERE id = ?", (plan["id"],)).fetchone()[0]
