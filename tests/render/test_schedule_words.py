"""Schedules in words (render.plans.describe_schedule), the one pluralisation helper and session-change counts."""

from __future__ import annotations

from datetime import date

import pytest

from practiceplan.domain.models import plural
from practiceplan.domain.occurrences import SessionChanges, session_changes
from practiceplan.render.plans import describe_schedule, ordinal, sessions_text

TODAY = date(2026, 3, 2)


def plan(rule: str | None = None, *, start: str = "2026-03-02", at: str | None = "07:30", end: str | None = None,
         zone: str | None = "Europe/Berlin", kind: str = "recurring", exact: str | None = None) -> dict:
    meta = {"timezone": zone} if zone else {}
    if exact:
        meta["rrule"] = exact
    schedule = {"kind": kind, "rule": rule, "startDate": start, "endDate": end, "metadata": meta}
    if at:
        schedule["timeOfDay"] = at
    return {"schedule": schedule}


RULES = [
    ("FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,WE,FR", "Mon, Wed, Fri at 07:30, Europe/Berlin"),
    ("FREQ=WEEKLY;INTERVAL=2;BYDAY=TU", "every 2 weeks on Tue at 07:30, Europe/Berlin"),
    ("FREQ=MONTHLY;BYDAY=2TU", "monthly on the 2nd Tuesday at 07:30, Europe/Berlin"),
    ("FREQ=MONTHLY;INTERVAL=3;BYDAY=-1FR", "every 3 months on the last Friday at 07:30, Europe/Berlin"),
    ("FREQ=DAILY", "every day at 07:30, Europe/Berlin"),
    ("FREQ=DAILY;INTERVAL=3", "every 3 days at 07:30, Europe/Berlin"),
    ("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", "Mon–Fri at 07:30, Europe/Berlin"),
    ("FREQ=WEEKLY;BYDAY=SU,MO,TU,WE,TH,FR,SA", "every day at 07:30, Europe/Berlin"),
    ("FREQ=WEEKLY", "every Mon at 07:30, Europe/Berlin"),  # the start date's weekday
    ("FREQ=WEEKLY;BYDAY=TH", "every Thu at 07:30, Europe/Berlin"),
    ("FREQ=MONTHLY;BYMONTHDAY=-1", "monthly on the last day at 07:30, Europe/Berlin"),
    ("FREQ=MONTHLY;BYMONTHDAY=1,15", "monthly on the 1st and 15th at 07:30, Europe/Berlin"),
    ("FREQ=MONTHLY", "monthly on the 2nd at 07:30, Europe/Berlin"),
    ("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "monthly on the last weekday at 07:30, Europe/Berlin"),
    ("FREQ=MONTHLY;BYMONTH=1,7;BYMONTHDAY=1", "monthly on the 1st in Jan, Jul at 07:30, Europe/Berlin"),
    ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=14", "yearly on 14 Feb at 07:30, Europe/Berlin"),
    ("FREQ=YEARLY", "yearly on 2 Mar at 07:30, Europe/Berlin"),
    ("FREQ=YEARLY;BYMONTH=3;BYDAY=1SU", "yearly on the 1st Sunday of March at 07:30, Europe/Berlin"),
    ("FREQ=WEEKLY;COUNT=10;BYDAY=SA,SU", "Sat, Sun at 07:30, 10 times, Europe/Berlin"),
    ("FREQ=WEEKLY;COUNT=1;BYDAY=SA", "every Sat at 07:30, 1 time, Europe/Berlin"),
    ("FREQ=DAILY;UNTIL=20260601", "every day at 07:30 until Mon 1 Jun, Europe/Berlin"),
    ("FREQ=HOURLY;INTERVAL=2", "every 2 hours from 07:30, Europe/Berlin"),
    ("FREQ=YEARLY;BYWEEKNO=20", "yearly (custom rule) at 07:30, Europe/Berlin"),
    ("FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13", "monthly (custom rule) at 07:30, Europe/Berlin"),
]


@pytest.mark.parametrize("rule,words", RULES, ids=[r for r, _ in RULES])
def test_rules_in_words(rule, words):
    assert describe_schedule(plan(rule), TODAY) == words


def test_words_never_carry_the_raw_rule_when_they_can_say_it():
    for rule, words in RULES:
        assert "FREQ=" not in words and "BYDAY" not in words


def test_exact_rule_wins_over_the_wire_rule():
    owner = plan("FREQ=MONTHLY;INTERVAL=1", exact="FREQ=MONTHLY;BYDAY=2TU")
    assert describe_schedule(owner, TODAY).startswith("monthly on the 2nd Tuesday")


def test_one_off_sessions():
    assert describe_schedule(plan(kind="single", start="2026-03-06", at="17:00"), TODAY) == \
        "once on Fri 6 Mar at 17:00, Europe/Berlin"
    assert describe_schedule(plan(kind="single", start="2027-03-06", at=None), TODAY) == \
        "once on Sat 6 Mar 2027, any time of day, Europe/Berlin"
    assert describe_schedule(plan(kind="single", start="2026-03-06", at="17:00"), None).startswith("once on Fri 6 Mar 2026")


def test_start_end_time_of_day_and_zone():
    owner = plan("FREQ=DAILY", start="2026-04-01", at=None, end="2026-05-01")
    assert describe_schedule(owner, TODAY) == "every day, any time of day from Wed 1 Apr until Fri 1 May, Europe/Berlin"
    assert describe_schedule(plan("FREQ=DAILY", zone=None), TODAY) == "every day at 07:30"
    assert describe_schedule(plan("FREQ=DAILY", end="2027-01-10"), TODAY).endswith("until Sun 10 Jan 2027, Europe/Berlin")


def test_a_rule_that_cannot_be_read_is_shown_as_it_is():
    assert describe_schedule(plan("NOT A RULE"), TODAY) == "NOT A RULE, Europe/Berlin"


def test_ordinals():
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111, -1, -2)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th", "last", "2nd to last"]


def test_plural():
    assert plural(1, "session") == "1 session"
    assert plural(0, "session") == "0 sessions"
    assert plural(52, "session") == "52 sessions"
    assert plural(8023, "entry") == "8,023 entries"
    assert plural(2, "day") == "2 days" and plural(1, "day") == "1 day"
    assert plural(3, "match") == "3 matches" and plural(2, "person", "people") == "2 people"


def test_session_changes_count_a_moved_slot_once():
    old = [{"id": f"o{i}", "scheduledStart": f"2026-03-0{i}T06:30:00.000Z"} for i in range(3, 6)]
    stamp = "2026-03-02T09:00:00.000Z"
    moved = [{**o, "deletedAt": stamp} for o in old] + [
        {"id": f"n{i}", "scheduledStart": f"2026-03-0{i}T07:00:00.000Z"} for i in range(3, 6)]
    assert session_changes(old, moved) == SessionChanges(moved=3)
    fewer = [{**o, "deletedAt": stamp} for o in old] + [{"id": "n3", "scheduledStart": "2026-03-03T07:00:00.000Z"}]
    assert session_changes(old, fewer) == SessionChanges(moved=1, removed=2)
    in_place = [{**old[0], "scheduledEnd": "2026-03-03T07:30:00.000Z"}, {**old[1], "scheduledStart": "x"}]
    assert session_changes(old, in_place) == SessionChanges(moved=1, updated=1)
    revived = [{**old[0], "deletedAt": stamp}]
    assert session_changes(revived, [old[0]]) == SessionChanges(added=1)
    assert SessionChanges(added=1, moved=2, removed=3, updated=4).total == 10


def test_sessions_text():
    assert sessions_text({"added": 1}) == "1 session added"
    assert sessions_text({"moved": 26, "removed": 13}) == "26 sessions moved, 13 removed"
    assert sessions_text({"added": 0, "moved": 0}) == "no sessions changed"
