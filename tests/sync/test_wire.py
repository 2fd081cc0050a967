"""The wire views (sync/wire.py) against the real exchanges recorded from a Mirubato server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from practiceplan.sync import wire

# a verbatim copy of ../shared/reference/mirubato-recorded (CI clones only this repository)
RECORDED = Path(__file__).resolve().parent / "recorded"


def steps(name: str) -> list[dict]:
    data = json.loads((RECORDED / name).read_text())
    return data if isinstance(data, list) else [data]


def step(name: str, title: str) -> dict:
    return next(s for s in steps(name) if s["name"] == title)


PUSHED = steps("01-push-first.json")[0]["request"]["body"]["changes"]
PULLED = steps("02-pull-after-push.json")[0]["response"]["body"]


def pairs():
    for array, kind in wire.KIND_OF_ARRAY.items():
        pushed = {d["id"]: d for d in PUSHED.get(array, [])}
        for item in PULLED.get(array, []):
            yield kind, pushed[item["id"]], item


def test_recordings_are_found():
    assert len(list(pairs())) == 12


@pytest.mark.parametrize("kind,pushed,pulled", list(pairs()), ids=lambda v: v if isinstance(v, str) else "")
def test_a_pushed_version_that_comes_back_is_the_same_version(kind, pushed, pulled):
    # the server added user_id, created_at, updated_at, plan_id, goal_ids, piece ids, epoch-ms timestamps
    assert wire.version_hash(kind, pushed) == wire.version_hash(kind, pulled)
    back = wire.from_remote(kind, pulled, pushed)
    server_owned = set(wire.SERVER_OWNED.get(kind, ()))
    assert {k: v for k, v in back.items() if k not in server_owned} == \
        {k: v for k, v in pushed.items() if k not in server_owned}
    # with no local copy the document is the same but for what the server owns (a template's author)
    alone = wire.from_remote(kind, pulled)
    assert {k: v for k, v in alone.items() if k not in server_owned} == \
        {k: v for k, v in pushed.items() if k not in server_owned}
    assert not {"user_id", "created_at", "updated_at", "plan_id", "goal_ids"} & set(alone)
    assert wire.problems(kind, wire.to_push(kind, alone)) == []


def test_entry_rewrites_are_undone():
    entry = next(i for i in PULLED["entries"] if i["pieces"])
    assert isinstance(entry["timestamp"], int) and "goal_ids" in entry and entry["pieces"][0]["id"]
    local = wire.from_remote("logbook_entry", entry)
    assert local["timestamp"] == "2026-11-02T08:00:00.000Z"
    assert local["goalIds"] == [] and "goal_ids" not in local
    assert "id" not in local["pieces"][0]


def test_a_piece_id_of_our_own_survives():
    mine = {"id": "e1", "pieces": [{"id": "score_bach_bwv_846", "title": "Prelude", "composer": "Bach"}]}
    pulled = {"id": "e1", "pieces": [{"id": "score_bach_bwv_846", "title": "Prelude", "composer": "Bach"}]}
    assert wire.from_remote("logbook_entry", pulled, mine)["pieces"][0]["id"] == "score_bach_bwv_846"


@pytest.mark.parametrize("piece,expected", [
    ({"title": "Clair de lune", "composer": "Claude Debussy"}, "clair de lune-claude debussy"),
    ({"title": "Etude in C"}, "etude in c-unknown"),
    ({"title": "Clair de lune", "composer": "Debussy"}, "clair de lune-debussy"),
    ({"title": "Prelude", "composer": "J.S. Bach"}, "prelude-js bach"),
    ({"title": "Rondo \u2013 alla turca", "composer": "Mozart"}, "rondo - alla turca||mozart"),
    ({"id": "score_abc-12", "title": "x"}, "score_abc-12"),
    ({"id": "Air-Bach"}, "air-bach"),
    ({"id": "A-B-C"}, "a||b-c"),
])
def test_score_ids_as_the_server_computes_them(piece, expected):
    assert wire.score_id(piece) == expected


def test_the_bad_items_of_recording_08_are_named_by_field():
    nested = step("08-bad-item-400.json", "nested-object-in-metrics")["request"]["body"]["changes"]
    occurrence = nested["planOccurrences"][0]
    found = wire.problems("plan_occurrence", occurrence)
    assert found and found[0].startswith("metrics: value of 'previousCheckIn'")
    assert wire.problems("practice_plan", nested["practicePlans"][0]) == []  # the companion is fine
    rescheduled = step("08-bad-item-400.json", "status-rescheduled")["request"]["body"]["changes"]
    found = wire.problems("plan_occurrence", rescheduled["planOccurrences"][0])
    assert found == ["status: must be one of scheduled, completed, skipped, expired"]


def test_recurrence_rules_refused_by_recording_09():
    body = step("09-per-item-conflict.json", "per-item-conflict")["request"]["body"]["changes"]
    refused = {c["entityId"] for c in
               step("09-per-item-conflict.json", "per-item-conflict")["response"]["body"]["conflicts"]}
    for plan in body["practicePlans"]:
        found = wire.problems("practice_plan", plan)
        assert bool(found) == (plan["id"] in refused), (plan["id"], found)
        if found:
            assert found[0].startswith("schedule.rule: Invalid recurrence rule")


def test_deletion_items_are_full_snapshots_and_valid():
    item = step("07-delete.json", "push-deletion")["request"]["body"]["changes"]["entries"][0]
    assert wire.problems("logbook_entry", item) == []
    assert wire.canonical("logbook_entry", item) == {"id": item["id"], "deletedAt": True}
    assert wire.version_hash("logbook_entry", item) != wire.version_hash("logbook_entry", {**item, "deletedAt": None})


def test_adopted_occurrences_with_null_check_in_can_be_pushed_again():
    # §3.0.6: adopted occurrences come back with "checkIn": null and "reminderState": null, which the server
    # refuses on a push; the local document drops them
    pulled = {"id": "plan_occ_x", "planId": "plan_x", "checkIn": None, "reminderState": None, "metrics": {},
              "status": "scheduled", "user_id": "u", "plan_id": "plan_x"}
    local = wire.from_remote("plan_occurrence", pulled)
    assert local == {"id": "plan_occ_x", "planId": "plan_x", "metrics": {}, "status": "scheduled"}
    assert wire.problems("plan_occurrence", wire.to_push("plan_occurrence", pulled)) == []


def test_problems_name_nested_fields():
    plan = {"id": "p", "title": "", "schedule": {"kind": "weekly", "durationMinutes": 0}, "tags": ["a", 3]}
    found = wire.problems("practice_plan", plan)
    assert "title: must have at least 1 character" in found
    assert "schedule.kind: must be one of single, recurring" in found
    assert "schedule.durationMinutes: must be at least 1" in found
    assert "tags[1]: must be a string" in found
    assert wire.problems("plan_occurrence", {"id": "o"}) == ["planId: is required"]
    assert wire.problems("logbook_entry", {"id": "e", "timestamp": "2026-05-04T16:05:00+02:00"})[0].startswith(
        "timestamp: must be epoch milliseconds or an ISO-Z instant")
    assert wire.problems("logbook_entry", {"id": "e", "pieces": [{"title": "x", "composer": 5}]}) == [
        "pieces[0].composer: must be a string"]


instants = st.integers(min_value=0, max_value=7_258_118_399_999)  # 1970 .. 2199


@given(ms=instants, instrument=st.sampled_from(["Piano", "piano", "VIOLA"]),
       mood=st.sampled_from(["satisfied", "Excited", None]))
def test_an_entry_and_its_server_form_are_one_version(ms, instrument, mood):
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    local = {"id": "entry_1", "timestamp": stamp, "instrument": instrument, "mood": mood, "goalIds": [],
             "pieces": [{"title": "Air", "composer": "Bach"}], "updatedAt": stamp}
    server = {**{k: v for k, v in local.items() if k != "goalIds"}, "timestamp": ms, "goal_ids": [],
              "instrument": instrument.lower(), "mood": mood.lower() if mood else None, "user_id": "u",
              "pieces": [{"title": "Air", "composer": "Bach", "id": "air-bach"}], "created_at": stamp}
    assert wire.version_hash("logbook_entry", local) == wire.version_hash("logbook_entry", server)
    assert wire.from_remote("logbook_entry", server, local)["timestamp"] == stamp
