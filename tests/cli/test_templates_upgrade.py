"""`template upgrade`: three-way merge of a new template version into an adopted plan."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest

from practiceplan.domain.plans import PlanInput, apply_input
from practiceplan.domain.template_merge import MISSING, apply_merge, logical, merged_fields, three_way
from tests import wire
from tests.formats.template_helpers import logical_dump

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def base_fields(**changes):
    fields = {
        "title": "Scales", "description": None, "type": "custom", "tags": [], "focusAreas": [], "techniques": [],
        "pieceRefs": [], "instrument": "piano", "level": None,
        "segments": [{"label": "Warm-up", "durationMinutes": 10}, {"label": "Scales", "durationMinutes": 20}],
        "reflectionPrompts": [], "targets": {"tempo": 80}, "schedule.kind": "recurring",
        "schedule.rule": "FREQ=WEEKLY;BYDAY=MO,WE,FR", "schedule.timeOfDay": "18:00", "schedule.durationMinutes": 30,
        "schedule.flex": "fixed", "schedule.endDate": None,
    }
    fields.update(changes)
    return fields


def outcomes(merge):
    return {c.path: c.outcome for c in merge.changes}


def test_merge_rules():
    base = base_fields()
    mine = base_fields(**{"schedule.timeOfDay": "19:00", "title": "My scales"})
    theirs = base_fields(**{"schedule.durationMinutes": 40, "title": "Scales v2", "level": "beginner"})
    merge = three_way(base, mine, theirs)
    assert outcomes(merge) == {"title": "clash", "level": "theirs", "schedule.timeOfDay": "mine",
                               "schedule.durationMinutes": "theirs"}
    assert [c.path for c in merge.undecided] == ["title"]
    merge.decide_all("mine")
    result = merged_fields(mine, merge)
    assert result["title"] == "My scales" and result["schedule.timeOfDay"] == "19:00"
    assert result["schedule.durationMinutes"] == 40 and result["level"] == "beginner"


def test_same_change_on_both_sides_is_not_a_clash():
    base = base_fields()
    both = base_fields(**{"schedule.timeOfDay": "07:00"})
    assert three_way(base, both, both).changes == []


def test_segments_merge_item_by_item_and_targets_key_by_key():
    base = base_fields()
    mine = base_fields(segments=[{"label": "Warm-up", "durationMinutes": 15}, {"label": "Scales", "durationMinutes": 20}],
                       targets={"tempo": 80, "mine": 1})
    theirs = base_fields(segments=[{"label": "Warm-up", "durationMinutes": 10},
                                   {"label": "Scales", "durationMinutes": 20, "instructions": "legato"}],
                         targets={"tempo": 90})
    merge = three_way(base, mine, theirs)
    assert outcomes(merge) == {"segments[0].durationMinutes": "mine", "segments[1].instructions": "theirs",
                               "targets.tempo": "theirs", "targets.mine": "mine"}
    result = merged_fields(mine, merge)
    assert result["segments"] == [{"label": "Warm-up", "durationMinutes": 15},
                                  {"label": "Scales", "durationMinutes": 20, "instructions": "legato"}]
    assert result["targets"] == {"tempo": 90, "mine": 1}
    # a removed key on the template side is removed
    theirs2 = base_fields(targets={})
    assert merged_fields(base, three_way(base, base, theirs2))["targets"] == {}
    # different lengths: the list is one field
    longer = base_fields(segments=[*base["segments"], {"label": "Piece", "durationMinutes": 10}])
    assert outcomes(three_way(base, mine, longer)) == {"segments": "clash", "targets.mine": "mine"}
    assert outcomes(three_way(base, base, longer)) == {"segments": "theirs"}


def test_without_a_base_every_difference_is_a_clash():
    merge = three_way(None, base_fields(title="A"), base_fields(title="B", level="x"))
    assert outcomes(merge) == {"title": "clash", "level": "clash"}
    assert merge.changes[0].base is MISSING and merge.changes[0].as_json()["base"] is None


def test_apply_merge_rebuilds_through_apply_input():
    plan = apply_input(None, PlanInput(title="Scales", every="weekly", on=["mo"], at=datetime(2026, 1, 1, 18).time(),
                                       minutes=30, instrument="piano"), now=NOW, default_zone="Europe/Berlin")
    merged = {**logical(plan), "schedule.rule": "FREQ=MONTHLY;BYDAY=2TU", "schedule.timeOfDay": "07:15",
              "segments": [{"label": "A", "durationMinutes": 5}], "instrument": None, "level": "advanced"}
    result = apply_merge(plan, merged, now=NOW, default_zone="Europe/Berlin")
    assert result["schedule"]["rule"] == "FREQ=MONTHLY;INTERVAL=1"
    assert result["schedule"]["metadata"]["rrule"] == "FREQ=MONTHLY;BYDAY=2TU"
    assert result["schedule"]["timeOfDay"] == "07:15" and result["metadata"]["segments"] == [{"label": "A", "durationMinutes": 5}]
    assert "instrument" not in result["metadata"] and result["metadata"]["level"] == "advanced"
    assert result["id"] == plan["id"]
    wire.check_plan(result)


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def adopted(cli):
    """Version 1 published and adopted (same database: a tutor may adopt their own template)."""
    template = cli("template", "create", "--title", "Scales", "--every", "weekly", "--on", "mo,we,fr", "--at", "18:00",
                   "--minutes", "30", "--segment", "Warm-up:10", "--segment", "Scales:20", "--json").json["template"]
    cli("template", "publish", template["id"])
    plan = cli("template", "adopt", template["id"], "--json").json["plan"]
    return template["id"], plan


def new_version(cli, template_id, *args):
    cli("template", "edit", template_id, *args)
    cli("template", "publish", template_id)


def upgrade(cli, plan_id, *args, ok=True):
    return cli("template", "upgrade", plan_id, *args, "--json", ok=ok)


def test_learner_edits_win_and_template_changes_arrive(cli, isolated_home, adopted):
    template_id, plan = adopted
    cli("plan", "edit", plan["id"], "--at", "19:00")
    occs = cli("occurrences", "--plan", plan["id"], "--json").json["occurrences"]
    cli("checkin", occs[0]["id"], "--minutes", "30")
    new_version(cli, template_id, "--segment", "Warm-up:10", "--segment", "Scales:20", "--segment", "Piece:15", "--minutes", "45")
    before = logical_dump(isolated_home / "practiceplan.db")
    dry = upgrade(cli, plan["id"], "--dry-run").json
    assert logical_dump(isolated_home / "practiceplan.db") == before
    assert dry["applied"] is False and dry["dryRun"] is True and dry["fromVersion"] == 1 and dry["toVersion"] == 2
    assert {c["path"]: c["outcome"] for c in dry["changes"]} == {
        "segments": "theirs", "schedule.timeOfDay": "mine", "schedule.durationMinutes": "theirs"}
    text = cli("template", "upgrade", plan["id"], "--dry-run").stdout
    assert "Would upgrade" in text and "kept yours" in text and "Piece 15m" in text
    done = upgrade(cli, plan["id"]).json
    assert done["applied"] is True and done["clashes"] == []
    updated = done["plan"]
    wire.check_plan(updated)
    assert updated["templateVersion"] == 2 and updated["schedule"]["timeOfDay"] == "19:00"
    assert updated["schedule"]["durationMinutes"] == 45 and len(updated["metadata"]["segments"]) == 3
    assert updated["metadata"]["adoption"]["templateVersion"] == 2 and updated["id"] == plan["id"]
    after = {o["id"]: o for o in cli("occurrences", "--plan", plan["id"], "--status", "completed", "--json").json["occurrences"]}
    assert after[occs[0]["id"]]["segments"] == occs[0]["segments"]  # history is never rewritten
    future = cli("occurrences", "--plan", plan["id"], "--from", "2026-03-03", "--json").json["occurrences"]
    assert all(len(o["segments"]) == 3 and o["scheduledStart"][11:16] in ("18:00", "17:00") for o in future)
    again = upgrade(cli, plan["id"]).json
    assert again["applied"] is False and again["toVersion"] == again["fromVersion"] == 2
    assert "already follows version 2" in cli("template", "upgrade", plan["id"]).stdout


def test_a_real_clash_is_an_error_without_a_terminal(cli, isolated_home, adopted):
    template_id, plan = adopted
    cli("plan", "edit", plan["id"], "--minutes", "50")
    new_version(cli, template_id, "--minutes", "40", "--title", "Scales v2")
    before = logical_dump(isolated_home / "practiceplan.db")
    result = cli("template", "upgrade", plan["id"], ok=False)
    assert result.code == 65
    lines = result.stderr.splitlines()
    assert lines[0] == "practiceplan: error: 1 clash between your changes and version 2: schedule.durationMinutes"
    assert "--mine" in lines[1] and "--theirs" in lines[1]
    assert logical_dump(isolated_home / "practiceplan.db") == before
    assert upgrade(cli, plan["id"], "--dry-run").json["clashes"] == ["schedule.durationMinutes"]
    mine = upgrade(cli, plan["id"], "--mine").json["plan"]
    assert mine["schedule"]["durationMinutes"] == 50 and mine["title"] == "Scales v2"


def test_theirs_takes_the_template(cli, adopted):
    template_id, plan = adopted
    cli("plan", "edit", plan["id"], "--minutes", "50")
    new_version(cli, template_id, "--minutes", "40")
    assert upgrade(cli, plan["id"], "--theirs").json["plan"]["schedule"]["durationMinutes"] == 40
    assert cli("template", "upgrade", plan["id"], "--mine", "--theirs", ok=False).code == 2


def test_clashes_are_asked_about_on_a_terminal(cli, adopted, monkeypatch):
    template_id, plan = adopted
    cli("plan", "edit", plan["id"], "--minutes", "50", "--at", "07:00")
    new_version(cli, template_id, "--minutes", "40", "--at", "08:00")
    monkeypatch.setattr("practiceplan.cli.templates.stdin_is_tty", lambda: True)
    result = cli("template", "upgrade", plan["id"], input="theirs\nm\n")
    assert "clash in time of day" in result.stderr and "keep [m]ine or take [t]heirs" in result.stderr  # readable labels
    updated = cli("plan", "show", plan["id"], "--json").json["plan"]
    assert updated["schedule"]["timeOfDay"] == "08:00" and updated["schedule"]["durationMinutes"] == 50


def test_new_required_parameter_must_be_given(cli, adopted):
    template_id, plan = adopted
    new_version(cli, template_id, "--title", "Scales with {{piece}}", "--param-spec", "piece:pieces:pieceRefs,title")
    result = cli("template", "upgrade", plan["id"], ok=False)
    assert result.code == 65 and "missing required parameter: piece (pieces)" in result.stderr
    done = upgrade(cli, plan["id"], "--param", "piece=Etude — Czerny").json
    assert done["plan"]["title"] == "Scales with Etude — Czerny"
    assert done["plan"]["pieceRefs"] == [{"title": "Etude", "composer": "Czerny"}]
    assert done["plan"]["metadata"]["adoption"]["parameters"] == {"piece": [{"title": "Etude", "composer": "Czerny"}]}


def test_missing_base_version_makes_every_difference_a_clash(cli, isolated_home, adopted):
    template_id, plan = adopted
    new_version(cli, template_id, "--minutes", "40")
    conn = sqlite3.connect(isolated_home / "practiceplan.db")
    conn.execute("DELETE FROM plan_template_versions WHERE version = 1")
    conn.commit()
    conn.close()
    dry = upgrade(cli, plan["id"], "--dry-run").json
    assert dry["clashes"] == ["schedule.durationMinutes"]
    assert "every difference is a clash" in cli("template", "upgrade", plan["id"], "--dry-run").stdout


def test_plans_not_from_a_template(cli):
    plan = cli("plan", "add", "Solo", "--every", "daily", "--json").json["plan"]
    result = cli("template", "upgrade", plan["id"], ok=False)
    assert result.code == 65 and "was not adopted from a template" in result.stderr
    assert cli("template", "upgrade", "nonexistent", ok=False).code == 3


def test_upgrade_tables_use_readable_labels(cli, adopted):
    """Field paths (schedule.timeOfDay, segments[1].durationMinutes) are shown as words (issue 10)."""
    from practiceplan.render.templates import field_label, field_value

    template_id, plan = adopted
    cli("plan", "edit", plan["id"], "--at", "19:00")
    new_version(cli, template_id, "--on", "tu,th", "--every", "weekly", "--minutes", "45")
    text = cli("template", "upgrade", plan["id"], "--dry-run").stdout
    assert "time of day" in text and "minutes per session" in text and "repeats" in text
    assert "schedule." not in text and "Tue, Thu" in text and "FREQ=" not in text
    assert field_label("segments[1].durationMinutes") == "segment 2 minutes"
    assert field_label("targets.tempo") == "target tempo" and field_label("pieceRefs") == "pieces"
    assert field_value("schedule.rule", "FREQ=MONTHLY;BYDAY=2TU") == "monthly on the 2nd Tuesday"
