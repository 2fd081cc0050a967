"""Pure scheduling: skip/unskip, moves, cascades (with properties), defer, history text, durations."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from practiceplan.domain import calendar as cal
from practiceplan.domain import occurrences as occ_mod
from practiceplan.domain import schedule as sch
from practiceplan.domain.durations import parse_minutes
from practiceplan.domain.models import is_touched, iso_z, parse_instant
from practiceplan.domain.plans import PlanInput, apply_input
from practiceplan.errors import InvalidInputError
from tests import wire

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday 10:00 Berlin
FLOOR = datetime(1970, 1, 1, tzinfo=UTC)


def make_plan(**kwargs) -> dict:
    defaults = dict(title="Scales", every="daily", at=time(18, 0), minutes=20, start=date(2026, 3, 2))
    defaults.update(kwargs)
    return apply_input(None, PlanInput(**defaults), now=NOW, default_zone="Europe/Berlin")


def materialise(plan, end=NOW + timedelta(days=60)) -> list[dict]:
    return sorted(occ_mod.reconcile(plan, [], "Europe/Berlin", FLOOR, end, NOW), key=lambda o: o["scheduledStart"])


def at(text: str) -> datetime:
    instant = parse_instant(text)
    assert instant is not None
    return instant


# --------------------------------------------------------------------------- skip / unskip / move


def test_skip_and_unskip_keep_history_and_wire_format():
    occ = materialise(make_plan())[0]
    skipped = sch.skip(occ, now=NOW, reason="travelling")
    wire.check_occurrence(skipped)
    assert skipped["status"] == "skipped" and skipped["id"] == occ["id"]
    assert skipped["metrics"]["history"] == [{"at": "2026-03-02T09:00:00.000Z", "action": "skip", "reason": "travelling"}]
    assert skipped["updatedAt"] == "2026-03-02T09:00:00.000Z"
    assert occ["status"] == "scheduled" and occ["metrics"] == {}  # input untouched
    later = NOW + timedelta(hours=1)
    back = sch.unskip(skipped, now=later, reason=None)
    wire.check_occurrence(back)
    assert back["status"] == "scheduled"
    assert [h["action"] for h in back["metrics"]["history"]] == ["skip", "unskip"]
    assert back["metrics"]["history"][1] == {"at": "2026-03-02T10:00:00.000Z", "action": "unskip"}
    assert is_touched(back)  # the decision history keeps it out of regeneration


def test_skip_refusals():
    occ = materialise(make_plan())[0]
    with pytest.raises(InvalidInputError, match="already skipped"):
        sch.skip(sch.skip(occ, now=NOW, reason=None), now=NOW, reason=None)
    with pytest.raises(InvalidInputError, match="checked in"):
        sch.skip({**occ, "status": "completed", "logEntryId": "entry_x"}, now=NOW, reason=None)
    with pytest.raises(InvalidInputError, match="not skipped"):
        sch.unskip(occ, now=NOW, reason=None)


def test_move_sets_original_start_once_and_records_each_move():
    occ = materialise(make_plan())[1]  # Tue 3 March 18:00 Berlin = 17:00Z
    first = sch.move(occ, at("2026-03-04T17:00:00Z"), now=NOW, zone=BERLIN, reason="lesson")
    wire.check_occurrence(first)
    assert first["id"] == occ["id"] and first["status"] == "scheduled"
    assert first["scheduledStart"] == "2026-03-04T17:00:00.000Z"
    assert first["scheduledEnd"] == "2026-03-04T17:20:00.000Z"  # same 20 minutes
    assert first["metrics"]["originalStart"] == "2026-03-03T17:00:00.000Z"
    assert first["metrics"]["history"] == [{
        "at": "2026-03-02T09:00:00.000Z", "action": "reschedule", "from": "2026-03-03T17:00:00.000Z",
        "to": "2026-03-04T17:00:00.000Z", "reason": "lesson",
    }]
    second = sch.move(first, at("2026-03-05T08:00:00Z"), now=NOW, zone=BERLIN, length=timedelta(minutes=45))
    assert second["metrics"]["originalStart"] == "2026-03-03T17:00:00.000Z"  # first move only
    assert second["scheduledEnd"] == "2026-03-05T08:45:00.000Z"
    assert [h["to"] for h in second["metrics"]["history"]] == ["2026-03-04T17:00:00.000Z", "2026-03-05T08:00:00.000Z"]
    assert "reason" not in second["metrics"]["history"][1]
    assert sch.is_moved(second)
    back = sch.move(second, at("2026-03-03T17:00:00Z"), now=NOW, zone=BERLIN)
    assert not sch.is_moved(back) and is_touched(back)
    with pytest.raises(InvalidInputError, match="already at Tue 03 Mar 2026 18:00$"):  # local time, not UTC
        sch.move(back, at("2026-03-03T17:00:00Z"), now=NOW, zone=BERLIN)
    with pytest.raises(InvalidInputError, match="skipped"):
        sch.move(sch.skip(occ, now=NOW, reason=None), at("2026-03-04T17:00:00Z"), now=NOW, zone=BERLIN)


def test_cascade_shift_moves_later_untouched_only_and_keeps_wall_clock_across_dst():
    plan = make_plan(start=date(2026, 3, 23))
    occs = materialise(plan, end=datetime(2026, 4, 5, tzinfo=UTC))  # 23 Mar .. 4 Apr, DST starts 29 Mar
    done = {**occs[3], "status": "completed", "logEntryId": "entry_1"}  # Thu 26 Mar
    occs[3] = done
    target = occs[1]  # Tue 24 Mar 18:00 CET
    new_start = at("2026-03-25T17:30:00Z")  # +1 day, 18:30 local
    moves = sch.cascade_shift(target, occs, new_start, now=NOW, zone=BERLIN, reason="ill")
    ids = [m.id for m in moves]
    assert ids[0] == target["id"]
    assert occs[0]["id"] not in ids and done["id"] not in ids  # earlier and touched ones stay
    assert ids[1:] == [o["id"] for o in occs[2:] if o["id"] != done["id"]]
    for step in moves:
        wire.check_occurrence(step.after)
        before = parse_instant(step.before["scheduledStart"]).astimezone(BERLIN)
        after = parse_instant(step.after["scheduledStart"]).astimezone(BERLIN)
        assert after.replace(tzinfo=None) - before.replace(tzinfo=None) == timedelta(days=1, minutes=30)
        assert after.strftime("%H:%M") == "18:30"  # wall clock kept, before and after 29 March
        assert step.after["metrics"]["history"][-1]["via"] == "shift"
        assert step.after["metrics"]["history"][-1]["reason"] == "ill"
    assert moves[-1].after["scheduledStart"] == "2026-04-05T16:30:00.000Z"  # 18:30 CEST


@st.composite
def shift_case(draw):
    zone = draw(st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Sydney"]))
    days = draw(st.sets(st.sampled_from(["mo", "tu", "we", "th", "fr", "sa", "su"]), min_size=1))
    hour = draw(st.integers(min_value=6, max_value=21))
    plan = make_plan(every="weekly", on=[",".join(sorted(days))], at=time(hour, 0), zone=zone)
    occs = materialise(plan)
    size = len(occs)
    touched = draw(st.sets(st.integers(min_value=0, max_value=size - 1), max_size=8))
    target = draw(st.integers(min_value=0, max_value=size - 1).filter(lambda i: i not in touched))
    offset = draw(st.integers(min_value=-3 * 96, max_value=6 * 96).filter(lambda x: x != 0)) * 15
    return plan, occs, touched, target, offset


@settings(max_examples=150, deadline=None)
@given(case=shift_case())
def test_shift_properties(case):
    """No occurrence lost or duplicated, order kept, ids stable, touched ones never moved."""
    plan, occs, touched, target_index, offset = case
    zone = ZoneInfo(plan["schedule"]["metadata"]["timezone"])
    kinds = ["completed", "skipped", "moved"]
    for n, index in enumerate(sorted(touched)):
        kind = kinds[n % 3]
        if kind == "moved":
            occs[index] = sch.move(occs[index], parse_instant(occs[index]["scheduledStart"]) + timedelta(minutes=5),
                                   now=NOW, zone=BERLIN)
        else:
            occs[index] = {**occs[index], "status": kind, "logEntryId": "entry_x" if kind == "completed" else None}
    target = occs[target_index]
    old_local = parse_instant(target["scheduledStart"]).astimezone(zone).replace(tzinfo=None)
    new_start = (old_local + timedelta(minutes=offset)).replace(tzinfo=zone).astimezone(UTC)
    if new_start == parse_instant(target["scheduledStart"]):
        return  # the shift lands in a DST gap back on itself
    moves = sch.cascade_shift(target, occs, new_start, now=NOW, zone=zone)
    moved = {m.id: m for m in moves}
    assert len(moved) == len(moves)  # no duplicates
    expected = {target["id"]} | {
        o["id"] for o in occs if o["scheduledStart"] > target["scheduledStart"] and not is_touched(o)
    }
    assert set(moved) == expected  # nothing lost, nothing extra
    assert not {o["id"] for o in occs if is_touched(o)} & set(moved) - {target["id"]}
    for step in moves:
        assert step.after["id"] == step.before["id"] and step.after["planId"] == plan["id"]
        assert step.after["metrics"]["originalStart"] in (step.before["scheduledStart"],
                                                          step.before["metrics"].get("originalStart"))
        wire.check_occurrence(step.after)
    order_before = [m.id for m in sorted(moves, key=lambda m: (m.before["scheduledStart"], m.id))]
    order_after = [m.id for m in sorted(moves, key=lambda m: (m.after["scheduledStart"], m.id))]
    assert order_before == order_after
    final = {o["id"]: o for o in occs} | {m.id: m.after for m in moves}
    assert len(final) == len(occs)


@st.composite
def spread_case(draw):
    cap = draw(st.integers(min_value=30, max_value=150))
    others = draw(st.lists(st.tuples(st.integers(min_value=0, max_value=13), st.integers(min_value=5, max_value=90)),
                           max_size=20))
    plan_days = draw(st.sets(st.integers(min_value=0, max_value=13), max_size=6))
    missed_days = draw(st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=4, unique=True))
    minutes = draw(st.integers(min_value=10, max_value=60))
    hour = draw(st.integers(min_value=7, max_value=21))
    return cap, others, plan_days, sorted(missed_days, reverse=True), minutes, hour


@settings(max_examples=300, deadline=None)
@given(case=spread_case())
def test_spread_properties(case):
    """Capacity never exceeded, one session of the plan per day, order kept, ids stable, nothing lost."""
    cap, others, plan_days, missed_days, minutes, hour = case
    today = NOW.astimezone(BERLIN).date()
    movers = []
    for n, back in enumerate(missed_days):
        start = datetime.combine(today - timedelta(days=back), time(hour)).replace(tzinfo=BERLIN).astimezone(UTC)
        movers.append(({"id": f"plan_occ_m{n}", "planId": "plan_p", "scheduledStart": iso_z(start),
                        "scheduledEnd": iso_z(start + timedelta(minutes=minutes)), "status": "scheduled",
                        "metrics": {}, "createdAt": iso_z(NOW), "updatedAt": iso_z(NOW)}, minutes))
    bookings = [sch.Booking(f"o{n}", "plan_other", today + timedelta(days=d), m) for n, (d, m) in enumerate(others)]
    bookings += [sch.Booking(f"p{d}", "plan_p", today + timedelta(days=d), minutes) for d in plan_days]
    try:
        moves = sch.spread(movers, bookings, capacity=lambda day: cap, first_day=today, days=14, now=NOW, zone=BERLIN)
    except InvalidInputError:
        # only when some day-by-day placement is impossible: check no single free day would have fitted all
        load = {}
        for b in bookings:
            load[b.day] = load.get(b.day, 0) + b.minutes
        free = [today + timedelta(days=d) for d in range(14)
                if (today + timedelta(days=d)) not in {b.day for b in bookings if b.plan_id == "plan_p"}
                and load.get(today + timedelta(days=d), 0) + minutes <= cap
                and datetime.combine(today + timedelta(days=d), time(hour)).replace(tzinfo=BERLIN) > NOW]
        assert len(free) < len(movers)
        return
    assert sorted(m.id for m in moves) == sorted(o["id"] for o, _ in movers)  # nothing lost (all were in the past)
    load: dict[date, int] = {}
    for b in bookings:
        load[b.day] = load.get(b.day, 0) + b.minutes
    plan_taken = {b.day for b in bookings if b.plan_id == "plan_p"}
    new_days = []
    for step in moves:
        wire.check_occurrence(step.after)
        start = parse_instant(step.after["scheduledStart"])
        assert start > NOW
        assert start.astimezone(BERLIN).hour == hour  # same time of day
        day = start.astimezone(BERLIN).date()
        assert day not in plan_taken  # never two sessions of the plan on one day
        plan_taken.add(day)
        load[day] = load.get(day, 0) + minutes
        assert load[day] <= cap  # capacity never exceeded where a session was placed
        new_days.append(day)
        assert step.after["metrics"]["history"][-1]["via"] == "spread"
    order_before = [m.id for m in sorted(moves, key=lambda m: m.before["scheduledStart"])]
    order_after = [m.id for m in sorted(moves, key=lambda m: m.after["scheduledStart"])]
    assert order_before == order_after and new_days == sorted(new_days)


def test_spread_example_and_refusal():
    today = date(2026, 3, 2)
    mk = lambda i, d: ({"id": f"plan_occ_{i}", "planId": "plan_p", "scheduledStart": iso_z(  # noqa: E731
        datetime.combine(d, time(18)).replace(tzinfo=BERLIN)), "status": "scheduled", "metrics": {}}, 30)
    movers = [mk("a", date(2026, 2, 26)), mk("b", date(2026, 2, 27))]
    bookings = [sch.Booking("x", "plan_other", today, 40), sch.Booking("y", "plan_p", date(2026, 3, 3), 30)]
    moves = sch.spread(movers, bookings, capacity=lambda day: 60, first_day=today, days=14, now=NOW, zone=BERLIN)
    # Mon 2: 40 + 30 > 60; Tue 3 has the plan; so Wed 4 and Thu 5 at 18:00
    assert [m.after["scheduledStart"] for m in moves] == ["2026-03-04T17:00:00.000Z", "2026-03-05T17:00:00.000Z"]
    with pytest.raises(InvalidInputError, match="cannot fit 2 session"):
        sch.spread(movers, bookings, capacity=lambda day: 20, first_day=today, days=14, now=NOW, zone=BERLIN)


def test_next_free_day():
    plan = make_plan(every="weekly", on=["mo,we"])
    occs = materialise(plan)
    occupied = {parse_instant(o["scheduledStart"]).astimezone(BERLIN).date() for o in occs[1:]}
    occupied.add(date(2026, 3, 3))  # Tuesday taken too
    instant = sch.next_free_day(occs[0], occupied, now=NOW, zone=BERLIN)
    assert iso_z(instant) == "2026-03-05T17:00:00.000Z"  # Thu 5 March 18:00
    with pytest.raises(InvalidInputError, match="no free day"):
        sch.next_free_day(occs[0], {date(2026, 3, 2) + timedelta(days=i) for i in range(400)}, now=NOW, zone=BERLIN)


def test_describe_history():
    occ = materialise(make_plan())[1]
    occ = sch.skip(occ, now=datetime(2026, 6, 12, 8, tzinfo=UTC), reason="travelling")
    occ = sch.unskip(occ, now=datetime(2026, 6, 12, 9, tzinfo=UTC), reason=None)
    occ = sch.move(occ, at("2026-03-04T17:00:00Z"), now=datetime(2026, 6, 13, 9, tzinfo=UTC), zone=BERLIN,
                   reason="lesson", via="defer")
    texts = [line["text"] for line in cal.describe_history(occ, BERLIN)]
    assert texts == [
        "Skipped on 12 Jun: travelling",
        "Unskipped on 12 Jun",
        "Rescheduled on 13 Jun (deferred) from Tue 03 Mar 18:00 to Wed 04 Mar 18:00: lesson",
    ]


@pytest.mark.parametrize("text, minutes", [("45", 45), ("45m", 45), ("45 min", 45), ("1h", 60), ("1h30", 90),
                                           ("1h30m", 90), ("2 h", 120), ("90m", 90), ("0", 0), ("7d", 10_080),
                                           ("2 days", 2_880)])
def test_parse_minutes(text, minutes):
    assert parse_minutes(text, "--cap") == minutes


@pytest.mark.parametrize("text", ["", "abc", "45x", "-5", "1.5h", "h"])
def test_parse_minutes_refuses(text):
    with pytest.raises(InvalidInputError):
        parse_minutes(text, "--cap")
