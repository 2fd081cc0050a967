"""Pure lifecycle: regeneration keeps decisions, deadlines, check-in and undo."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from practiceplan.domain import occurrences as occ_mod
from practiceplan.domain.models import is_touched, iso_z, normalize_entry
from practiceplan.domain.plans import PlanInput, apply_input
from practiceplan.errors import InvalidInputError

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FLOOR = datetime(1970, 1, 1, tzinfo=UTC)


def make_plan(**kwargs) -> dict:
    defaults = dict(title="Scales", every="daily", at=time(18, 0), minutes=20, start=date(2026, 3, 2))
    defaults.update(kwargs)
    return apply_input(None, PlanInput(**defaults), now=NOW, default_zone="Europe/Berlin")


def materialise(plan, existing=(), start=FLOOR, end=NOW + timedelta(days=90), now=NOW):
    changes = occ_mod.reconcile(plan, list(existing), "Europe/Berlin", start, end, now)
    by_id = {o["id"]: o for o in existing}
    by_id.update({c["id"]: c for c in changes})
    return changes, sorted(by_id.values(), key=lambda o: o["scheduledStart"])


def test_reconcile_is_idempotent():
    plan = make_plan()
    changes, occs = materialise(plan)
    assert len(changes) == 90  # 2 March .. 30 May at 18:00; 31 May 18:00 is past now + 90 days
    again, _ = materialise(plan, occs)
    assert again == []


def test_single_plan_has_one_occurrence():
    plan = make_plan(every=None, once=datetime(2026, 3, 6, 16, 0, tzinfo=UTC), at=None, start=None)
    changes, _ = materialise(plan)
    assert [c["scheduledStart"] for c in changes] == ["2026-03-06T16:00:00.000Z"]
    assert changes[0]["recurrenceKey"] is None


@settings(max_examples=60, deadline=None)
@given(
    touched=st.sets(st.integers(min_value=0, max_value=40), max_size=10),
    new_hour=st.integers(min_value=0, max_value=23),
    new_days=st.sets(st.sampled_from(["mo", "tu", "we", "th", "fr", "sa", "su"]), min_size=1),
)
def test_edit_never_rewrites_touched_occurrences(touched, new_hour, new_days):
    plan = make_plan()
    _, occs = materialise(plan)
    decided = {}
    for index in touched:
        occ = dict(occs[index])
        occ["status"] = "skipped" if index % 2 else "completed"
        occ["metrics"] = {"history": [{"at": iso_z(NOW), "action": "skip"}]}
        decided[occ["id"]] = occ
    existing = [decided.get(o["id"], o) for o in occs]
    edit_time = NOW + timedelta(days=5)
    edited = apply_input(plan, PlanInput(every="weekly", on=[",".join(sorted(new_days))], at=time(new_hour, 0)),
                         now=edit_time, default_zone="Europe/Berlin")
    changes, after = materialise(edited, existing, start=edit_time, end=edit_time + timedelta(days=90), now=edit_time)
    changed_ids = {c["id"] for c in changes}
    assert not changed_ids & set(decided), "a decided occurrence was rewritten"
    by_id = {o["id"]: o for o in after}
    for occ_id, occ in decided.items():
        assert by_id[occ_id] == occ
    # untouched ones before the edit are history and stay as they were
    for occ in existing:
        if occ["scheduledStart"] < iso_z(edit_time):
            assert by_id[occ["id"]] == occ
    live_future = [o for o in after if not o.get("deletedAt") and o["scheduledStart"] >= iso_z(edit_time)
                   and not is_touched(o)]
    for occ in live_future:
        local = datetime.fromisoformat(occ["scheduledStart"].replace("Z", "+00:00")).astimezone(BERLIN)
        assert local.hour == new_hour or (new_hour == 2 and local.hour == 3)
        assert ["mo", "tu", "we", "th", "fr", "sa", "su"][local.weekday()] in new_days
    again, _ = materialise(edited, after, start=edit_time, end=edit_time + timedelta(days=90), now=edit_time)
    assert again == []


def test_reconcile_skips_instants_taken_by_foreign_occurrences():
    plan = make_plan()
    foreign = {"id": "plan_occ_webapp_1", "planId": plan["id"], "scheduledStart": "2026-03-03T17:00:00.000Z",
               "status": "scheduled"}
    changes, _ = materialise(plan, [foreign])
    assert "2026-03-03T17:00:00.000Z" not in [c["scheduledStart"] for c in changes]
    assert len(changes) == 89


def occ_at(start: str, flex: str, end: str | None = None) -> dict:
    return {"id": "o", "planId": "p", "scheduledStart": start, "scheduledEnd": end, "flexWindow": flex}


def test_deadlines():
    start = "2026-03-03T17:00:00.000Z"  # Tue 18:00 Berlin
    midnight = datetime(2026, 3, 3, 23, 0, tzinfo=UTC)
    assert occ_mod.deadline(occ_at(start, "fixed"), BERLIN) == midnight
    assert occ_mod.deadline(occ_at(start, "same-day"), BERLIN) == midnight
    overnight = occ_at("2026-03-03T22:30:00.000Z", "same-day", "2026-03-04T00:30:00.000Z")
    assert occ_mod.deadline(overnight, BERLIN) == datetime(2026, 3, 4, 0, 30, tzinfo=UTC)
    nxt = datetime(2026, 3, 5, 17, 0, tzinfo=UTC)
    assert occ_mod.deadline(occ_at(start, "anytime"), BERLIN, next_start=nxt) == nxt
    assert occ_mod.deadline(occ_at(start, "anytime"), BERLIN) == midnight
    assert occ_mod.deadline(occ_at(start, "weekly"), BERLIN) == datetime(2026, 3, 8, 23, 0, tzinfo=UTC)
    assert occ_mod.deadline(occ_at(start, "weekly"), BERLIN, week_start=6) == datetime(2026, 3, 7, 23, 0, tzinfo=UTC)
    # DST: the local day of 29 March 2026 is 23 hours long
    dst = occ_at("2026-03-29T16:00:00.000Z", "same-day")
    assert occ_mod.deadline(dst, BERLIN) == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)


def test_checkin_and_uncheck_pure():
    plan = make_plan(prompts=["How was it?"])
    _, occs = materialise(plan)
    entry, done = occ_mod.checkin(plan, occs[0], now=NOW, entry_id="entry_x", user_zone="Europe/Berlin",
                                  default_instrument="piano", answers={"How was it?": "good"})
    assert done["status"] == "completed" and done["logEntryId"] == "entry_x" and entry["duration"] == 20
    with pytest.raises(InvalidInputError, match="already checked in"):
        occ_mod.checkin(plan, done, now=NOW, entry_id="entry_y", user_zone="UTC", default_instrument="piano")
    with pytest.raises(InvalidInputError, match="reflection prompts"):
        occ_mod.checkin(plan, occs[1], now=NOW, entry_id="e", user_zone="UTC", default_instrument="piano",
                        answers={"Unknown?": "x"})
    undone = occ_mod.uncheck(done, now=NOW + timedelta(minutes=15), undo_minutes=15, reason=None)
    assert undone["status"] == "scheduled" and undone["metrics"]["history"][-1]["reason"] == "user_initiated"
    assert is_touched(undone)
    with pytest.raises(InvalidInputError, match="undo window"):
        occ_mod.uncheck(done, now=NOW + timedelta(minutes=15, seconds=1), undo_minutes=15, reason=None)


def test_normalize_entry_names_the_field():
    with pytest.raises(InvalidInputError, match=r"^item 3: pieces\[0\]\.title: expected a string$"):
        normalize_entry({"id": "e", "timestamp": "2026-03-01T10:00:00Z", "pieces": [{"title": 5}]}, NOW,
                        where="item 3: ")
    with pytest.raises(InvalidInputError, match="timestamp"):
        normalize_entry({"id": "e", "timestamp": 1.5}, NOW)
    entry = normalize_entry({"id": "e", "timestamp": 0, "metadata": {"planId": "p", "planOccurrenceId": "o"}}, NOW)
    assert entry["timestamp"] == "1970-01-01T00:00:00.000Z" and entry["metadata"]["source"] == "practice_plan"
