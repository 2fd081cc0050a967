"""The pure parts: export document, validation, merge rule, Mirubato mapping, CSV neutralisation."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from practiceplan.domain import data as portable
from practiceplan.errors import InvalidInputError
from tests import wire

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
BERLIN = ZoneInfo("Europe/Berlin")


def test_build_export_orders_sections_items_and_keys():
    doc = portable.build_export(
        {"entries": [{"id": "entry_b", "z": 1, "a": {"y": 1, "x": 2}}, {"id": "entry_a"}],
         "events": [{"id": 10, "at": "t", "name": "n", "data": {}}, {"id": 2, "at": "t", "name": "n", "data": {}}]},
        exported_at="2026-03-02T09:00:00.000Z", app_version="9.9", schema_version=3,
    )
    assert list(doc)[:5] == ["format", "formatVersion", "exportedAt", "appVersion", "schemaVersion"]
    assert list(doc)[5:] == list(portable.SECTION_KEYS)
    assert doc["practicePlans"] == [] and doc["conflicts"] == []
    assert [e["id"] for e in doc["entries"]] == ["entry_a", "entry_b"]
    assert list(doc["entries"][1]) == ["a", "id", "z"] and list(doc["entries"][1]["a"]) == ["x", "y"]
    assert [e["id"] for e in doc["events"]] == [2, 10]  # numerically, not as text


@pytest.mark.parametrize(
    "local, incoming, expected",
    [
        (None, {"id": "a", "updatedAt": "2026-01-01T00:00:00Z"}, "insert"),
        ({"id": "a", "x": 1}, {"x": 1, "id": "a"}, "same"),
        ({"id": "a", "updatedAt": "2026-01-01T00:00:00.000Z"}, {"id": "a", "updatedAt": "2026-01-02T00:00:00.000Z"},
         "replace"),
        ({"id": "a", "updatedAt": "2026-01-02T00:00:00.000Z"}, {"id": "a", "updatedAt": "2026-01-01T00:00:00.000Z"},
         "keep"),
        # a tie keeps the local document
        ({"id": "a", "updatedAt": "2026-01-01T00:00:00.000Z", "v": 1},
         {"id": "a", "updatedAt": "2026-01-01T01:00:00+01:00", "v": 2}, "keep"),
        ({"id": "a", "v": 1}, {"id": "a", "v": 2, "updatedAt": "2026-01-01T00:00:00Z"}, "replace"),
        ({"id": "a", "v": 1, "updatedAt": "2026-01-01T00:00:00Z"}, {"id": "a", "v": 2}, "keep"),
        # a newer tombstone wins: deletions travel
        ({"id": "a", "updatedAt": "2026-01-01T00:00:00Z"},
         {"id": "a", "updatedAt": "2026-01-05T00:00:00Z", "deletedAt": "2026-01-05T00:00:00Z"}, "replace"),
    ],
)
def test_merge_rule(local, incoming, expected):
    assert portable.merge_decision(local, incoming) == expected


@pytest.mark.parametrize(
    "value, cell",
    [
        ("=HYPERLINK(\"http://evil\")", "'=HYPERLINK(\"http://evil\")"),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTAB", "'\tTAB"),
        ("\r=x", "'\r=x"),
        ("Clair de lune", "Clair de lune"),
        ("a=b", "a=b"),
        (-5, "-5"),
        (25, "25"),
        (None, ""),
        (True, "true"),
    ],
)
def test_neutralise(value, cell):
    assert portable.neutralise(value) == cell


@given(st.text())
@settings(max_examples=300)
def test_neutralised_text_never_starts_a_formula(text):
    cell = portable.neutralise(text)
    assert not cell.startswith(portable.FORMULA_PREFIXES)
    assert cell in (text, "'" + text)


def test_logbook_rows_columns_local_time_and_deleted_entries():
    entries = [
        {"id": "entry_2", "timestamp": "2026-03-01T23:30:00.000Z", "duration": 20, "type": "practice",
         "instrument": "piano", "pieces": [{"title": "Clair de lune", "composer": "Debussy"}, {"title": "=1+1"}],
         "techniques": ["pedalling"], "tags": ["a", "b"], "mood": "excited", "notes": "@boss\nline 2",
         "metadata": {"source": "practice_plan", "planId": "plan_x", "planOccurrenceId": "plan_occ_y"},
         "createdAt": "c", "updatedAt": "u"},
        {"id": "entry_1", "timestamp": "2026-03-01T10:00:00.000Z", "duration": 5, "metadata": {}},
        {"id": "entry_0", "timestamp": "2026-03-01T09:00:00.000Z", "duration": 5, "deletedAt": "x"},
    ]
    rows = portable.logbook_rows(entries, BERLIN)
    assert rows[0] == list(portable.LOGBOOK_COLUMNS)
    assert [r[0] for r in rows[1:]] == ["entry_1", "entry_2"]  # oldest first, tombstone left out
    row = dict(zip(rows[0], rows[2]))
    assert row["localDate"] == "2026-03-02" and row["localTime"] == "00:30"  # Berlin is UTC+1
    assert row["pieces"] == "Clair de lune — Debussy; =1+1"  # not at the cell start: harmless
    assert row["notes"] == "'@boss\nline 2"
    assert row["durationMinutes"] == "20" and row["planOccurrenceId"] == "plan_occ_y"


def test_occurrence_rows_use_plan_titles_and_neutralise():
    occ = {"id": "plan_occ_1", "planId": "plan_1", "scheduledStart": "2026-03-02T17:00:00.000Z",
           "status": "completed", "logEntryId": "entry_1", "metrics": {"actualDuration": 25,
                                                                        "originalStart": "2026-03-01T17:00:00.000Z"},
           "notes": "-- moved"}
    rows = portable.occurrence_rows([occ, {**occ, "id": "plan_occ_2", "deletedAt": "x"}],
                                    {"plan_1": {"title": "=cmd|' /C calc'!A0"}}, BERLIN)
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1]))
    assert row["planTitle"] == "'=cmd|' /C calc'!A0" and row["notes"] == "'-- moved"
    assert row["localTime"] == "18:00" and row["actualDurationMinutes"] == "25"


def _export(**sections):
    return {"format": "practiceplan.export", "formatVersion": 1, "exportedAt": "x", **sections}


def test_parse_validates_everything_and_names_the_path():
    good_entry = {"id": "entry_a", "timestamp": "2026-03-01T10:00:00Z", "duration": 5}
    cases = [
        (_export(entries=[good_entry, {"id": "entry_b", "timestamp": "yesterday"}]), "entries[1].timestamp"),
        (_export(planOccurrences=[{"id": "plan_occ_a"}]), "planOccurrences[0].planId"),
        (_export(practicePlans=[{"id": ""}]), "practicePlans[0].id"),
        (_export(practicePlans=[{"id": "p", "schedule": []}]), "practicePlans[0].schedule"),
        (_export(practicePlans=[{"id": "p"}, {"id": "p"}]), "duplicates practicePlans[0]"),
        (_export(practicePlans="nope"), "practicePlans: expected an array"),
        (_export(events=[{"id": 0, "at": "t", "name": "n"}]), "events[0].id"),
        (_export(goals=[7]), "goals[0]: expected a JSON object"),
        (_export(entries=[{**good_entry, "updatedAt": 5}]), "entries[0].updatedAt"),
        ({**_export(), "formatVersion": 2}, "formatVersion 2"),
        ({"format": "other"}, "unknown export format"),
        ([], "expected a JSON object"),
        ({"hello": 1}, "neither a practiceplan export nor a Mirubato data export"),
    ]
    for document, message in cases:
        with pytest.raises(InvalidInputError) as info:
            portable.parse_document(document, now=NOW, user_zone="Europe/Berlin")
        assert message in info.value.message, (document, info.value.message)


def test_parse_keeps_tombstones_and_normalises_entries():
    parsed = portable.parse_document(
        _export(entries=[{"id": "entry_gone", "deletedAt": "2026-03-01T00:00:00.000Z"},
                         {"id": "entry_a", "timestamp": 1772442000000, "instrument": "Viola"}]),
        now=NOW, user_zone="UTC",
    )
    assert parsed.source == "practiceplan"
    gone, entry = parsed.sections["entries"]
    assert gone == {"id": "entry_gone", "deletedAt": "2026-03-01T00:00:00.000Z"}
    assert entry["timestamp"] == "2026-03-02T09:00:00.000Z" and entry["instrument"] == "viola"
    assert entry["createdAt"] == "2026-03-02T09:00:00.000Z"


MIRUBATO = {
    "version": "2.0",
    "exportDate": "2026-03-01T12:00:00.000Z",
    "dataSource": "synced",
    "profile": {"email": "someone@example.com"},
    "repertoire": [{"scoreId": "x"}],
    "logbook": [
        {"id": "entry_1700000000000_abcdefghi", "timestamp": 1772442000000, "duration": 30, "type": "PRACTICE",
         "instrument": "PIANO", "pieces": [{"title": "Gymnopédie", "composer": None, "measures": None, "tempo": None}],
         "techniques": [], "goalIds": [], "goal_ids": ["g1"], "mood": "proud", "notes": None,
         "createdAt": 1772442000000, "updatedAt": "2026-03-02T09:00:00.000Z", "created_at": 1772442000000,
         "scoreId": "gymnopedie-satie", "autoTracked": False},
        {"id": "entry_2", "timestamp": "2026-03-01T08:00:00.000Z", "duration": 10, "type": "masterclass",
         "metadata": None},
    ],
    "practicePlans": [
        {"id": "plan_web1", "title": "Sight-reading", "type": "custom", "status": "active", "visibility": "private",
         "description": None, "tags": None, "focusAreas": ["reading"],
         "schedule": {"kind": "recurring", "rule": "FREQ=DAILY;INTERVAL=1", "timeOfDay": "07:00",
                      "startDate": "2026-02-01", "endDate": None, "flexibility": None, "metadata": None},
         "createdAt": 1769936400000, "updatedAt": 1769936400000, "archivedAt": None, "deletedAt": None},
        {"id": "plan_web2", "title": "Zoned", "schedule": {"kind": "single", "target": "2026-03-05T18:00:00.000Z",
                                                            "metadata": {"timezone": "America/New_York"}}},
    ],
    "planOccurrences": [
        {"id": "plan_occ_web1", "planId": "plan_web1", "scheduledStart": 1772348400000, "scheduledEnd": None,
         "status": "completed", "checkIn": None, "reminderState": None, "metrics": None, "targets": None,
         "logEntryId": "entry_1700000000000_abcdefghi", "segments": [{"label": "Read", "metadata": None}]},
    ],
    "planTemplates": [{"id": "template_1", "title": "Tpl", "sourcePlanId": None, "publishedAt": 1769936400000}],
    "goals": [{"id": "goal_1", "title": "Read daily", "status": "active"}],
}


def test_mirubato_download_my_data_file():
    parsed = portable.parse_document(MIRUBATO, now=NOW, user_zone="Europe/Berlin")
    assert parsed.source == "mirubato"
    assert parsed.ignored == ["dataSource", "exportDate", "profile", "repertoire", "version"]
    first, second = parsed.sections["entries"]
    assert first["timestamp"] == "2026-03-02T09:00:00.000Z" and first["createdAt"] == "2026-03-02T09:00:00.000Z"
    assert first["created_at"] == 1772442000000  # the wire keeps integer snake-case stamps
    assert first["type"] == "practice" and first["instrument"] == "piano"
    assert "mood" not in first and first["metadata"]["originalMood"] == "proud"
    assert first["pieces"] == [{"title": "Gymnopédie"}] and first["goal_ids"] == ["g1"]
    assert "notes" in first and first["notes"] is None  # nullable on the wire: kept
    assert first["scoreId"] == "gymnopedie-satie"  # unknown fields survive
    assert second["type"] == "practice" and second["metadata"] == {"originalType": "masterclass", "source": "manual"}
    for entry in (first, second):
        wire.check_entry(entry)
    plan, zoned = parsed.sections["practicePlans"]
    assert plan["createdAt"] == "2026-02-01T09:00:00.000Z" and "tags" not in plan
    assert plan["description"] is None and plan["archivedAt"] is None  # nullable: kept
    assert plan["schedule"] == {"kind": "recurring", "rule": "FREQ=DAILY;INTERVAL=1", "timeOfDay": "07:00",
                                "startDate": "2026-02-01", "endDate": None,
                                "metadata": {"timezone": "Europe/Berlin"}}
    assert zoned["schedule"]["metadata"]["timezone"] == "America/New_York"  # an existing zone is kept
    wire.check_plan(plan)
    (occ,) = parsed.sections["planOccurrences"]
    assert occ["scheduledStart"] == "2026-03-01T07:00:00.000Z" and occ["scheduledEnd"] is None
    assert not {"checkIn", "reminderState", "metrics", "targets"} & set(occ)
    assert occ["segments"] == [{"label": "Read"}]
    wire.check_occurrence(occ)
    (template,) = parsed.sections["planTemplates"]
    assert "sourcePlanId" not in template and template["publishedAt"] == "2026-02-01T09:00:00.000Z"
    assert parsed.sections["goals"] == [{"id": "goal_1", "title": "Read daily", "status": "active"}]


def test_mirubato_entries_under_entries_or_logbook_entries():
    for key in ("entries", "logbookEntries"):
        parsed = portable.parse_document({key: [{"id": "e1", "timestamp": 1772442000000}]}, now=NOW,
                                         user_zone="UTC")
        assert [e["id"] for e in parsed.sections["entries"]] == ["e1"]
    with pytest.raises(InvalidInputError, match=r"logbookEntries\[0\].duration"):
        portable.parse_document({"logbookEntries": [{"id": "e1", "timestamp": 1, "duration": -1}]}, now=NOW,
                                user_zone="UTC")
    with pytest.raises(InvalidInputError, match="duplicates"):
        portable.parse_document({"logbook": [{"id": "e1", "timestamp": 1}], "entries": [{"id": "e1", "timestamp": 1}]},
                                now=NOW, user_zone="UTC")
