"""Tests for practiceplan.domain.recurrence: RRULE expansion under the time-zone policy."""

from __future__ import annotations

import re
import time as clock
import uuid
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from practiceplan.domain import recurrence
from practiceplan.domain.recurrence import (
    NAMESPACE,
    Recurrence,
    RecurrenceError,
    Slot,
    canonical_rule,
    expand,
    first_slots,
    get_zone,
    occurrence_id,
    parse_rule,
    until_date,
    validate,
    wire_rule,
)
from practiceplan.domain.tz import localize

UTC = timezone.utc


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def rows(slots: list[Slot]) -> list[tuple[str, str, str]]:
    """(key, UTC start, local wall clock with offset) for compact exact assertions."""
    return [(s.key, s.start.isoformat(), s.local.isoformat()) for s in slots]


def daily(zone: str, start: date, at: time | None, **kw) -> Recurrence:
    return Recurrence("FREQ=DAILY", start, at, zone, **kw)


# --------------------------------------------------------------------------
# DST pins: exact UTC instants and local wall clocks
# --------------------------------------------------------------------------


def test_new_york_spring_forward_keeps_1800_local():
    slots = expand(daily("America/New_York", date(2024, 3, 8), time(18)), utc(2024, 3, 8), utc(2024, 3, 12))
    assert rows(slots) == [
        ("2024-03-08T18:00:00", "2024-03-08T23:00:00+00:00", "2024-03-08T18:00:00-05:00"),
        ("2024-03-09T18:00:00", "2024-03-09T23:00:00+00:00", "2024-03-09T18:00:00-05:00"),
        ("2024-03-10T18:00:00", "2024-03-10T22:00:00+00:00", "2024-03-10T18:00:00-04:00"),
        ("2024-03-11T18:00:00", "2024-03-11T22:00:00+00:00", "2024-03-11T18:00:00-04:00"),
    ]
    assert all(s.start.tzinfo is UTC for s in slots)


def test_new_york_fall_back_keeps_1800_local():
    slots = expand(daily("America/New_York", date(2024, 11, 1), time(18)), utc(2024, 11, 1), utc(2024, 11, 5))
    assert rows(slots) == [
        ("2024-11-01T18:00:00", "2024-11-01T22:00:00+00:00", "2024-11-01T18:00:00-04:00"),
        ("2024-11-02T18:00:00", "2024-11-02T22:00:00+00:00", "2024-11-02T18:00:00-04:00"),
        ("2024-11-03T18:00:00", "2024-11-03T23:00:00+00:00", "2024-11-03T18:00:00-05:00"),
        ("2024-11-04T18:00:00", "2024-11-04T23:00:00+00:00", "2024-11-04T18:00:00-05:00"),
    ]


def test_new_york_0230_in_the_gap_moves_to_0330_edt_once():
    slots = expand(daily("America/New_York", date(2024, 3, 9), time(2, 30)), utc(2024, 3, 9), utc(2024, 3, 12))
    assert rows(slots) == [
        ("2024-03-09T02:30:00", "2024-03-09T07:30:00+00:00", "2024-03-09T02:30:00-05:00"),
        ("2024-03-10T02:30:00", "2024-03-10T07:30:00+00:00", "2024-03-10T03:30:00-04:00"),
        ("2024-03-11T02:30:00", "2024-03-11T06:30:00+00:00", "2024-03-11T02:30:00-04:00"),
    ]
    on_the_day = [s for s in slots if s.local.date() == date(2024, 3, 10)]
    assert len(on_the_day) == 1


def test_new_york_0130_in_the_fold_takes_first_instance_once():
    slots = expand(daily("America/New_York", date(2024, 11, 2), time(1, 30)), utc(2024, 11, 2), utc(2024, 11, 5))
    assert rows(slots) == [
        ("2024-11-02T01:30:00", "2024-11-02T05:30:00+00:00", "2024-11-02T01:30:00-04:00"),
        ("2024-11-03T01:30:00", "2024-11-03T05:30:00+00:00", "2024-11-03T01:30:00-04:00"),
        ("2024-11-04T01:30:00", "2024-11-04T06:30:00+00:00", "2024-11-04T01:30:00-05:00"),
    ]
    assert [s.local.fold for s in slots] == [0, 0, 0]


def test_berlin_gap_and_fold_at_0230():
    spring = expand(daily("Europe/Berlin", date(2024, 3, 30), time(2, 30)), utc(2024, 3, 30), utc(2024, 4, 2))
    assert rows(spring) == [
        ("2024-03-30T02:30:00", "2024-03-30T01:30:00+00:00", "2024-03-30T02:30:00+01:00"),
        ("2024-03-31T02:30:00", "2024-03-31T01:30:00+00:00", "2024-03-31T03:30:00+02:00"),
        ("2024-04-01T02:30:00", "2024-04-01T00:30:00+00:00", "2024-04-01T02:30:00+02:00"),
    ]
    autumn = expand(daily("Europe/Berlin", date(2024, 10, 26), time(2, 30)), utc(2024, 10, 26), utc(2024, 10, 29))
    assert rows(autumn) == [
        ("2024-10-26T02:30:00", "2024-10-26T00:30:00+00:00", "2024-10-26T02:30:00+02:00"),
        ("2024-10-27T02:30:00", "2024-10-27T00:30:00+00:00", "2024-10-27T02:30:00+02:00"),
        ("2024-10-28T02:30:00", "2024-10-28T01:30:00+00:00", "2024-10-28T02:30:00+01:00"),
    ]


def test_sydney_gap():
    slots = expand(daily("Australia/Sydney", date(2024, 10, 5), time(2, 30)), utc(2024, 10, 4), utc(2024, 10, 7))
    assert rows(slots) == [
        ("2024-10-05T02:30:00", "2024-10-04T16:30:00+00:00", "2024-10-05T02:30:00+10:00"),
        ("2024-10-06T02:30:00", "2024-10-05T16:30:00+00:00", "2024-10-06T03:30:00+11:00"),
        ("2024-10-07T02:30:00", "2024-10-06T15:30:00+00:00", "2024-10-07T02:30:00+11:00"),
    ]


def test_auckland_gap():
    slots = expand(daily("Pacific/Auckland", date(2024, 9, 28), time(2, 30)), utc(2024, 9, 27), utc(2024, 9, 30))
    assert rows(slots) == [
        ("2024-09-28T02:30:00", "2024-09-27T14:30:00+00:00", "2024-09-28T02:30:00+12:00"),
        ("2024-09-29T02:30:00", "2024-09-28T14:30:00+00:00", "2024-09-29T03:30:00+13:00"),
        ("2024-09-30T02:30:00", "2024-09-29T13:30:00+00:00", "2024-09-30T02:30:00+13:00"),
    ]


def test_lord_howe_half_hour_gap():
    slots = expand(daily("Australia/Lord_Howe", date(2024, 10, 5), time(2, 15)), utc(2024, 10, 4), utc(2024, 10, 7))
    assert rows(slots) == [
        ("2024-10-05T02:15:00", "2024-10-04T15:45:00+00:00", "2024-10-05T02:15:00+10:30"),
        ("2024-10-06T02:15:00", "2024-10-05T15:45:00+00:00", "2024-10-06T02:45:00+11:00"),
        ("2024-10-07T02:15:00", "2024-10-06T15:15:00+00:00", "2024-10-07T02:15:00+11:00"),
    ]


def test_apia_skipped_day():
    # Samoa skipped 2011-12-30 entirely (UTC-10 -> UTC+14). The naive 18:00 on
    # the missing day is read with the old offset and lands on 2011-12-31 18:00,
    # the very instant of the naive 2011-12-31 18:00: one slot survives, and it
    # keeps the key that comes first in recurrence order.
    slots = expand(daily("Pacific/Apia", date(2011, 12, 28), time(18)), utc(2011, 12, 28), utc(2012, 1, 3))
    assert rows(slots) == [
        ("2011-12-28T18:00:00", "2011-12-29T04:00:00+00:00", "2011-12-28T18:00:00-10:00"),
        ("2011-12-29T18:00:00", "2011-12-30T04:00:00+00:00", "2011-12-29T18:00:00-10:00"),
        ("2011-12-30T18:00:00", "2011-12-31T04:00:00+00:00", "2011-12-31T18:00:00+14:00"),
        ("2012-01-01T18:00:00", "2012-01-01T04:00:00+00:00", "2012-01-01T18:00:00+14:00"),
        ("2012-01-02T18:00:00", "2012-01-02T04:00:00+00:00", "2012-01-02T18:00:00+14:00"),
    ]
    local_dates = [s.local.date() for s in slots]
    assert date(2011, 12, 30) not in local_dates
    assert len(set(local_dates)) == len(local_dates)


def test_hourly_across_spring_gap_dedupes():
    rec = Recurrence("FREQ=HOURLY", date(2024, 3, 10), None, "America/New_York")
    assert rows(expand(rec, utc(2024, 3, 10, 5), utc(2024, 3, 10, 9))) == [
        ("2024-03-10T00:00:00", "2024-03-10T05:00:00+00:00", "2024-03-10T00:00:00-05:00"),
        ("2024-03-10T01:00:00", "2024-03-10T06:00:00+00:00", "2024-03-10T01:00:00-05:00"),
        # naive 02:00 does not exist -> 03:00 EDT, the same instant as naive 03:00
        ("2024-03-10T02:00:00", "2024-03-10T07:00:00+00:00", "2024-03-10T03:00:00-04:00"),
        ("2024-03-10T04:00:00", "2024-03-10T08:00:00+00:00", "2024-03-10T04:00:00-04:00"),
    ]


def test_hourly_across_fall_back_repeats_no_wall_clock():
    # Recurrence is on the wall clock: 01:00 occurs once (first instance); the
    # second 01:00 (06:00Z) is not an extra occurrence.
    rec = Recurrence("FREQ=HOURLY", date(2024, 11, 3), None, "America/New_York")
    assert rows(expand(rec, utc(2024, 11, 3, 4), utc(2024, 11, 3, 9))) == [
        ("2024-11-03T00:00:00", "2024-11-03T04:00:00+00:00", "2024-11-03T00:00:00-04:00"),
        ("2024-11-03T01:00:00", "2024-11-03T05:00:00+00:00", "2024-11-03T01:00:00-04:00"),
        ("2024-11-03T02:00:00", "2024-11-03T07:00:00+00:00", "2024-11-03T02:00:00-05:00"),
        ("2024-11-03T03:00:00", "2024-11-03T08:00:00+00:00", "2024-11-03T03:00:00-05:00"),
    ]


def test_midnight_gap_for_all_day_plan():
    # America/Santiago springs forward at 00:00 -> 01:00; an all-day plan's 00:00 slot moves to 01:00.
    rec = Recurrence("FREQ=DAILY", date(2024, 9, 7), None, "America/Santiago")
    assert rows(expand(rec, utc(2024, 9, 7), utc(2024, 9, 10))) == [
        ("2024-09-07T00:00:00", "2024-09-07T04:00:00+00:00", "2024-09-07T00:00:00-04:00"),
        ("2024-09-08T00:00:00", "2024-09-08T04:00:00+00:00", "2024-09-08T01:00:00-03:00"),
        ("2024-09-09T00:00:00", "2024-09-09T03:00:00+00:00", "2024-09-09T00:00:00-03:00"),
    ]


def test_localize():
    ny = ZoneInfo("America/New_York")
    gap = localize(datetime(2024, 3, 10, 2, 30), ny)
    assert gap.fold == 0 and gap.tzinfo is ny
    assert gap.astimezone(UTC) == utc(2024, 3, 10, 7, 30)
    assert localize(datetime(2024, 11, 3, 1, 30), ny).astimezone(UTC) == utc(2024, 11, 3, 5, 30)
    with pytest.raises(ValueError):
        localize(datetime(2024, 1, 1, tzinfo=UTC), ny)


# --------------------------------------------------------------------------
# RRULE features
# --------------------------------------------------------------------------


def keys(rule: str | None, start: date, at: time | None = time(18), n: int = 6, zone: str = "Europe/Berlin", **kw):
    return [s.key for s in first_slots(Recurrence(rule, start, at, zone, **kw), n)]


def test_monthly_second_tuesday_and_start_not_matching_is_not_an_occurrence():
    assert keys("FREQ=MONTHLY;BYDAY=2TU", date(2024, 1, 1), n=4) == [
        "2024-01-09T18:00:00",
        "2024-02-13T18:00:00",
        "2024-03-12T18:00:00",
        "2024-04-09T18:00:00",
    ]


def test_monthly_last_friday():
    assert keys("FREQ=MONTHLY;BYDAY=-1FR", date(2024, 1, 1), n=4) == [
        "2024-01-26T18:00:00",
        "2024-02-23T18:00:00",
        "2024-03-29T18:00:00",
        "2024-04-26T18:00:00",
    ]


def test_monthly_last_day():
    assert keys("FREQ=MONTHLY;BYMONTHDAY=-1", date(2024, 1, 1), n=4) == [
        "2024-01-31T18:00:00",
        "2024-02-29T18:00:00",
        "2024-03-31T18:00:00",
        "2024-04-30T18:00:00",
    ]


def test_bysetpos_last_workday_of_month():
    rec = Recurrence("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", date(2024, 1, 1), time(18), "Europe/Berlin")
    assert rows(first_slots(rec, 6)) == [
        ("2024-01-31T18:00:00", "2024-01-31T17:00:00+00:00", "2024-01-31T18:00:00+01:00"),
        ("2024-02-29T18:00:00", "2024-02-29T17:00:00+00:00", "2024-02-29T18:00:00+01:00"),
        ("2024-03-29T18:00:00", "2024-03-29T17:00:00+00:00", "2024-03-29T18:00:00+01:00"),
        ("2024-04-30T18:00:00", "2024-04-30T16:00:00+00:00", "2024-04-30T18:00:00+02:00"),
        ("2024-05-31T18:00:00", "2024-05-31T16:00:00+00:00", "2024-05-31T18:00:00+02:00"),
        ("2024-06-28T18:00:00", "2024-06-28T16:00:00+00:00", "2024-06-28T18:00:00+02:00"),
    ]


def test_count_counts_from_start_not_from_window():
    rec = Recurrence("FREQ=DAILY;COUNT=3", date(2024, 1, 1), time(18), "UTC")
    assert [s.key for s in first_slots(rec, 10)] == [
        "2024-01-01T18:00:00",
        "2024-01-02T18:00:00",
        "2024-01-03T18:00:00",
    ]
    assert [s.key for s in expand(rec, utc(2024, 1, 2), utc(2024, 2, 1))] == [
        "2024-01-02T18:00:00",
        "2024-01-03T18:00:00",
    ]
    assert expand(rec, utc(2024, 1, 4), utc(2025, 1, 1)) == []


def test_exdates_are_removed_after_count():
    rec = Recurrence("FREQ=DAILY;COUNT=3", date(2024, 1, 1), time(18), "UTC", exdates=(date(2024, 1, 2),))
    assert [s.key for s in first_slots(rec, 10)] == ["2024-01-01T18:00:00", "2024-01-03T18:00:00"]


def test_exdates_compare_the_original_local_date():
    rec = daily("America/New_York", date(2024, 3, 9), time(2, 30), exdates=(date(2024, 3, 10),))
    assert [s.key for s in expand(rec, utc(2024, 3, 9), utc(2024, 3, 12))] == [
        "2024-03-09T02:30:00",
        "2024-03-11T02:30:00",
    ]


def test_until_date_is_end_of_that_local_day():
    assert keys("FREQ=DAILY;UNTIL=20240103", date(2024, 1, 1)) == [
        "2024-01-01T18:00:00",
        "2024-01-02T18:00:00",
        "2024-01-03T18:00:00",
    ]


def test_until_utc_is_converted_into_the_plan_zone():
    # 18:00 Berlin in January is 17:00Z; UNTIL is inclusive.
    assert keys("FREQ=DAILY;UNTIL=20240103T170000Z", date(2024, 1, 1))[-1] == "2024-01-03T18:00:00"
    assert keys("FREQ=DAILY;UNTIL=20240103T165959Z", date(2024, 1, 1))[-1] == "2024-01-02T18:00:00"
    # 23:30Z on Jan 2 is already Jan 3 00:30 in Berlin: a plan at 00:15 gets Jan 3.
    assert keys("FREQ=DAILY;UNTIL=20240102T233000Z", date(2024, 1, 1), time(0, 15))[-1] == "2024-01-03T00:15:00"


def test_until_floating_is_a_local_wall_clock():
    assert keys("FREQ=DAILY;UNTIL=20240103T180000", date(2024, 1, 1))[-1] == "2024-01-03T18:00:00"
    assert keys("FREQ=DAILY;UNTIL=20240103T175959", date(2024, 1, 1))[-1] == "2024-01-02T18:00:00"


def test_plan_end_and_until_earlier_wins():
    assert keys("FREQ=DAILY;UNTIL=20240110", date(2024, 1, 1), n=20, end=date(2024, 1, 2)) == [
        "2024-01-01T18:00:00",
        "2024-01-02T18:00:00",
    ]
    assert keys("FREQ=DAILY;UNTIL=20240102", date(2024, 1, 1), n=20, end=date(2024, 1, 10)) == [
        "2024-01-01T18:00:00",
        "2024-01-02T18:00:00",
    ]
    # the end date includes its whole local day
    assert keys("FREQ=HOURLY;INTERVAL=6", date(2024, 1, 1), time(5), n=20, end=date(2024, 1, 1)) == [
        "2024-01-01T05:00:00",
        "2024-01-01T11:00:00",
        "2024-01-01T17:00:00",
        "2024-01-01T23:00:00",
    ]


@pytest.mark.parametrize(
    ("wkst", "days"),
    [("MO", [5, 10, 19, 24]), ("SU", [5, 17, 19, 31])],
)
def test_wkst_rfc_example(wkst, days):
    rule = f"FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST={wkst}"
    rec = Recurrence(rule, date(1997, 8, 5), time(9), "America/New_York")
    slots = first_slots(rec, 10)
    assert [s.local for s in slots] == [datetime(1997, 8, d, 9, tzinfo=ZoneInfo("America/New_York")) for d in days]
    assert [s.start for s in slots] == [utc(1997, 8, d, 13) for d in days]


def test_yearly_on_feb_29_skips_common_years():
    assert keys("FREQ=YEARLY", date(2024, 2, 29), n=3) == [
        "2024-02-29T18:00:00",
        "2028-02-29T18:00:00",
        "2032-02-29T18:00:00",
    ]


def test_monthly_on_the_31st_skips_short_months():
    assert keys("FREQ=MONTHLY", date(2024, 1, 31), n=5) == [
        "2024-01-31T18:00:00",
        "2024-03-31T18:00:00",
        "2024-05-31T18:00:00",
        "2024-07-31T18:00:00",
        "2024-08-31T18:00:00",
    ]


def test_hourly_with_interval():
    rec = Recurrence("FREQ=HOURLY;INTERVAL=5", date(2024, 1, 1), time(9), "Asia/Tokyo")
    assert rows(first_slots(rec, 4)) == [
        ("2024-01-01T09:00:00", "2024-01-01T00:00:00+00:00", "2024-01-01T09:00:00+09:00"),
        ("2024-01-01T14:00:00", "2024-01-01T05:00:00+00:00", "2024-01-01T14:00:00+09:00"),
        ("2024-01-01T19:00:00", "2024-01-01T10:00:00+00:00", "2024-01-01T19:00:00+09:00"),
        ("2024-01-02T00:00:00", "2024-01-01T15:00:00+00:00", "2024-01-02T00:00:00+09:00"),
    ]


def test_weekly_with_several_times_a_day():
    rule = "FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=7,19;BYMINUTE=30"
    assert keys(rule, date(2024, 1, 1), None, n=5) == [
        "2024-01-01T07:30:00",
        "2024-01-01T19:30:00",
        "2024-01-03T07:30:00",
        "2024-01-03T19:30:00",
        "2024-01-08T07:30:00",
    ]


def test_all_day_plan_slots_at_local_midnight():
    rec = Recurrence("FREQ=WEEKLY", date(2024, 1, 3), None, "America/Los_Angeles")
    assert rows(first_slots(rec, 2)) == [
        ("2024-01-03T00:00:00", "2024-01-03T08:00:00+00:00", "2024-01-03T00:00:00-08:00"),
        ("2024-01-10T00:00:00", "2024-01-10T08:00:00+00:00", "2024-01-10T00:00:00-08:00"),
    ]


def test_single_session():
    rec = Recurrence(None, date(2024, 5, 1), time(18, 30), "Europe/Berlin")
    assert rows(expand(rec, utc(2024, 1, 1), utc(2025, 1, 1))) == [
        ("2024-05-01T18:30:00", "2024-05-01T16:30:00+00:00", "2024-05-01T18:30:00+02:00"),
    ]
    assert rows(first_slots(rec, 5)) == rows(expand(rec, utc(2024, 1, 1), utc(2025, 1, 1)))
    assert expand(rec, utc(2024, 5, 1, 16, 31), utc(2025, 1, 1)) == []
    assert expand(rec, utc(2024, 1, 1), utc(2024, 5, 1, 16, 30)) == []  # window end is exclusive
    assert expand(rec, utc(2024, 5, 1, 16, 30), utc(2024, 5, 1, 16, 31)) != []  # start is inclusive
    excluded = Recurrence(None, date(2024, 5, 1), time(18, 30), "Europe/Berlin", exdates=(date(2024, 5, 1),))
    assert first_slots(excluded, 5) == []
    assert first_slots(rec, 0) == []


def test_window_bounds_in_other_zones_and_naive_bounds_rejected():
    rec = daily("UTC", date(2024, 1, 1), time(12))
    tokyo = ZoneInfo("Asia/Tokyo")
    got = expand(rec, datetime(2024, 1, 2, 21, 0, 1, tzinfo=tokyo), datetime(2024, 1, 3, 21, 0, 1, tzinfo=tokyo))
    assert [s.key for s in got] == ["2024-01-03T12:00:00"]
    assert expand(rec, utc(2024, 1, 5), utc(2024, 1, 5)) == []
    with pytest.raises(TypeError):
        expand(rec, datetime(2024, 1, 1), utc(2024, 1, 2))


def count_steps(monkeypatch) -> list[int]:
    """Count the candidate occurrences dateutil produces for the engine (its iteration steps) from now on."""
    steps = [0]
    build = recurrence._build

    def counting(kwargs, dtstart):
        rule = build(kwargs, dtstart)

        class Counted:
            def __iter__(self):
                for moment in rule:
                    steps[0] += 1
                    yield moment

        return Counted()

    monkeypatch.setattr(recurrence, "_build", counting)
    return steps


def test_far_window_is_fast_and_correct(monkeypatch):
    rec = daily("Europe/Berlin", date(2020, 1, 1), time(18))
    steps = count_steps(monkeypatch)
    slots = expand(rec, utc(2025, 3, 1), utc(2025, 5, 30))
    # re-anchored on the window: the 90 days, the two-day margins either side and one step past the end,
    # not the ~1,900 days from DTSTART in 2020
    assert steps[0] <= len(slots) + 5
    assert len(slots) == 90
    assert slots[0].key == "2025-03-01T18:00:00" and slots[-1].key == "2025-05-29T18:00:00"
    assert slots[29].key == "2025-03-30T18:00:00" and slots[29].start == utc(2025, 3, 30, 16)


def test_far_window_hourly_and_count_rules_match_plain_dateutil():
    for rule, start, window in [
        ("FREQ=HOURLY;INTERVAL=7;BYDAY=MO,TH", date(2019, 5, 5), (utc(2024, 2, 1), utc(2024, 3, 1))),
        ("FREQ=MINUTELY;INTERVAL=97;BYHOUR=6,7,20", date(2023, 12, 30), (utc(2024, 3, 1), utc(2024, 3, 8))),
        ("FREQ=WEEKLY;INTERVAL=3;BYDAY=SU,WE;WKST=TH", date(2015, 7, 9), (utc(2024, 1, 1), utc(2024, 4, 1))),
        ("FREQ=MONTHLY;INTERVAL=5;BYDAY=-2SA", date(2001, 3, 3), (utc(2024, 1, 1), utc(2026, 1, 1))),
        ("FREQ=YEARLY;INTERVAL=3;BYWEEKNO=1,-1;BYDAY=MO", date(1995, 1, 1), (utc(2023, 1, 1), utc(2031, 1, 1))),
        ("FREQ=DAILY;COUNT=4000", date(2015, 1, 1), (utc(2025, 12, 20), utc(2026, 1, 20))),
        # windows around 2100 (a common year, so the calendar does not repeat every 28 years there)
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SU", date(2095, 6, 1), (utc(2099, 12, 1), utc(2100, 4, 1))),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29,28", date(2090, 1, 1), (utc(2095, 1, 1), utc(2106, 1, 1))),
    ]:
        rec = Recurrence(rule, start, time(17, 45), "America/Chicago")
        assert [s.key for s in expand(rec, *window)] == oracle_keys(rec, *window), rule


# --------------------------------------------------------------------------
# Rule text: parse_rule, canonical_rule, until_date, wire_rule
# --------------------------------------------------------------------------


def test_parse_rule_normalizes():
    assert parse_rule("  rrule:freq=monthly;byday=+2tu,-1fr ;Interval=2 ") == {
        "FREQ": "MONTHLY",
        "INTERVAL": "2",
        "BYDAY": "+2TU,-1FR",
    }
    assert parse_rule("FREQ=DAILY") == {"FREQ": "DAILY"}
    assert parse_rule("FREQ=WEEKLY; BYDAY = mo , we") == {"FREQ": "WEEKLY", "BYDAY": "MO,WE"}


def test_canonical_rule_order():
    parts = parse_rule("until=20241231T120000z;wkst=su;bysetpos=-1;byday=mo,tu;bymonth=3;interval=2;freq=yearly")
    assert canonical_rule(parts) == (
        "FREQ=YEARLY;INTERVAL=2;BYMONTH=3;BYDAY=MO,TU;BYSETPOS=-1;WKST=SU;UNTIL=20241231T120000Z"
    )
    assert canonical_rule({"count": "3", "freq": "daily", "byhour": "7,19"}) == "FREQ=DAILY;BYHOUR=7,19;COUNT=3"


def test_until_date():
    assert until_date(parse_rule("FREQ=DAILY;UNTIL=20240301")) == date(2024, 3, 1)
    assert until_date(parse_rule("FREQ=DAILY;UNTIL=20240301T233000Z")) == date(2024, 3, 1)
    assert until_date(parse_rule("FREQ=DAILY;UNTIL=20240301T010000")) == date(2024, 3, 1)
    assert until_date(parse_rule("FREQ=DAILY;COUNT=3")) is None


_WIRE_GRAMMAR = re.compile(
    r"FREQ=(DAILY|WEEKLY|MONTHLY);INTERVAL=[1-9][0-9]*"
    r"(;BYDAY=(SU|MO|TU|WE|TH|FR|SA)(,(SU|MO|TU|WE|TH|FR|SA))*)?"
    r"(;COUNT=[1-9][0-9]*)?(;UNTIL=[0-9]{8}T235959Z)?"
)


@pytest.mark.parametrize(
    ("rule", "wire", "exact_needed"),
    [
        ("FREQ=DAILY", "FREQ=DAILY;INTERVAL=1", False),
        ("FREQ=DAILY;INTERVAL=3;COUNT=10", "FREQ=DAILY;INTERVAL=3;COUNT=10", False),
        ("FREQ=WEEKLY;BYDAY=FR,MO,WE", "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,WE,FR", False),
        ("FREQ=WEEKLY;BYDAY=SA,SU", "FREQ=WEEKLY;INTERVAL=1;BYDAY=SU,SA", False),
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TU", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TU", False),
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,SU", "FREQ=WEEKLY;INTERVAL=2;BYDAY=SU,TU", True),
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=SU", "FREQ=WEEKLY;INTERVAL=2;BYDAY=SU", True),
        ("FREQ=WEEKLY;INTERVAL=2", "FREQ=WEEKLY;INTERVAL=2", False),
        ("FREQ=WEEKLY;BYDAY=MO;WKST=SU", "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO", True),
        ("FREQ=MONTHLY;INTERVAL=3", "FREQ=MONTHLY;INTERVAL=3", False),
        ("FREQ=MONTHLY;BYDAY=2TU", "FREQ=MONTHLY;INTERVAL=1", True),
        ("FREQ=MONTHLY;BYDAY=MO", "FREQ=MONTHLY;INTERVAL=1", True),
        ("FREQ=MONTHLY;BYMONTHDAY=-1", "FREQ=MONTHLY;INTERVAL=1", True),
        ("FREQ=DAILY;BYDAY=MO,TU", "FREQ=DAILY;INTERVAL=1", True),
        ("FREQ=YEARLY", "FREQ=MONTHLY;INTERVAL=12", True),
        ("FREQ=YEARLY;INTERVAL=2;BYMONTH=3;BYDAY=-1FR", "FREQ=MONTHLY;INTERVAL=24", True),
        ("FREQ=HOURLY;INTERVAL=6", "FREQ=DAILY;INTERVAL=1", True),
        ("FREQ=MINUTELY;INTERVAL=30;COUNT=10", "FREQ=DAILY;INTERVAL=1;COUNT=10", True),
        ("FREQ=DAILY;BYHOUR=7,19", "FREQ=DAILY;INTERVAL=1", True),
        ("FREQ=DAILY;UNTIL=20241231", "FREQ=DAILY;INTERVAL=1;UNTIL=20241231T235959Z", False),
        ("FREQ=DAILY;UNTIL=20241231T235959Z", "FREQ=DAILY;INTERVAL=1;UNTIL=20241231T235959Z", False),
        ("FREQ=DAILY;UNTIL=20241231T180000Z", "FREQ=DAILY;INTERVAL=1;UNTIL=20241231T235959Z", True),
        ("FREQ=DAILY;UNTIL=20241231T235959", "FREQ=DAILY;INTERVAL=1;UNTIL=20241231T235959Z", True),
        ("FREQ=WEEKLY;COUNT=007;BYDAY=TU,TU", "FREQ=WEEKLY;INTERVAL=1;BYDAY=TU;COUNT=7", False),
    ],
)
def test_wire_rule(rule, wire, exact_needed):
    got_wire, got_exact = wire_rule(parse_rule(rule))
    assert (got_wire, got_exact) == (wire, exact_needed)
    assert _WIRE_GRAMMAR.fullmatch(got_wire)
    parse_rule(got_wire)  # the wire rule is itself a valid rule


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FREQ=DAILY;FOO=1", "bad RRULE: unknown part 'FOO'"),
        ("FREQ=DAILY;X-NAME=1", "bad RRULE: unknown part 'X-NAME'"),
        ("FREQ=DAILY;DTSTART=20240101T090000", "bad RRULE: DTSTART is not allowed in the rule; use --start/--at"),
        (
            "DTSTART:20240101T090000\nRRULE:FREQ=DAILY",
            "bad RRULE: DTSTART is not allowed in the rule; use --start/--at",
        ),
        ("INTERVAL=2", "bad RRULE: FREQ is required"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20240101", "bad RRULE: COUNT and UNTIL cannot both be given"),
        (
            "FREQ=SECONDLY",
            "bad RRULE: FREQ=SECONDLY is not supported (practice sessions are at least a minute apart)",
        ),
        (
            "FREQ=FORTNIGHTLY",
            "bad RRULE: FREQ=FORTNIGHTLY is not one of YEARLY, MONTHLY, WEEKLY, DAILY, HOURLY, MINUTELY",
        ),
        ("FREQ=DAILY;INTERVAL=0", "bad RRULE: INTERVAL must be a positive integer"),
        ("FREQ=DAILY;INTERVAL=-1", "bad RRULE: INTERVAL must be a positive integer"),
        ("FREQ=DAILY;INTERVAL=1.5", "bad RRULE: INTERVAL must be a positive integer"),
        ("FREQ=DAILY;INTERVAL=two", "bad RRULE: INTERVAL must be a positive integer"),
        ("FREQ=DAILY;COUNT=0", "bad RRULE: COUNT must be a positive integer"),
        ("FREQ=WEEKLY;BYDAY=XX", "bad RRULE: BYDAY value 'XX' is not a weekday"),
        ("FREQ=WEEKLY;BYDAY=MO,", "bad RRULE: BYDAY value '' is not a weekday"),
        ("FREQ=MONTHLY;BYDAY=0MO", "bad RRULE: BYDAY value '0MO' has an ordinal out of range (1..53 or -53..-1)"),
        ("FREQ=YEARLY;BYDAY=54MO", "bad RRULE: BYDAY value '54MO' has an ordinal out of range (1..53 or -53..-1)"),
        ("FREQ=WEEKLY;WKST=XX", "bad RRULE: WKST value 'XX' is not a weekday"),
        ("FREQ=DAILY;FREQ=WEEKLY", "bad RRULE: FREQ is given more than once"),
        ("FREQ=DAILY;;COUNT=2", "bad RRULE: empty part (check for a stray ';')"),
        ("FREQ=DAILY;", "bad RRULE: empty part (check for a stray ';')"),
        ("", "bad RRULE: the rule is empty"),
        ("  RRULE:  ", "bad RRULE: the rule is empty"),
        ("FREQ", "bad RRULE: part 'FREQ' is not KEY=VALUE"),
        ("FREQ=", "bad RRULE: FREQ has no value"),
        ("FREQ=MONTHLY;BYMONTHDAY=32", "bad RRULE: BYMONTHDAY value '32' is out of range (1..31 or -31..-1)"),
        ("FREQ=MONTHLY;BYMONTHDAY=0", "bad RRULE: BYMONTHDAY value '0' is out of range (1..31 or -31..-1)"),
        ("FREQ=MONTHLY;BYMONTHDAY=-32", "bad RRULE: BYMONTHDAY value '-32' is out of range (1..31 or -31..-1)"),
        ("FREQ=YEARLY;BYMONTH=13", "bad RRULE: BYMONTH value '13' is out of range (1..12)"),
        ("FREQ=YEARLY;BYMONTH=0", "bad RRULE: BYMONTH value '0' is out of range (1..12)"),
        ("FREQ=YEARLY;BYMONTH=-1", "bad RRULE: BYMONTH value '-1' is not a number in 1..12"),
        ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=367", "bad RRULE: BYSETPOS value '367' is out of range (1..366 or -366..-1)"),
        ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=0", "bad RRULE: BYSETPOS value '0' is out of range (1..366 or -366..-1)"),
        ("FREQ=DAILY;BYHOUR=24", "bad RRULE: BYHOUR value '24' is out of range (0..23)"),
        ("FREQ=DAILY;BYMINUTE=60", "bad RRULE: BYMINUTE value '60' is out of range (0..59)"),
        ("FREQ=DAILY;BYSECOND=60", "bad RRULE: BYSECOND value '60' is out of range (0..59)"),
        ("FREQ=YEARLY;BYWEEKNO=54", "bad RRULE: BYWEEKNO value '54' is out of range (1..53 or -53..-1)"),
        ("FREQ=YEARLY;BYYEARDAY=-367", "bad RRULE: BYYEARDAY value '-367' is out of range (1..366 or -366..-1)"),
        ("FREQ=DAILY;BYHOUR=7,,9", "bad RRULE: BYHOUR value '' is not a number in 0..23"),
        ("FREQ=DAILY;UNTIL=2024", "bad RRULE: UNTIL '2024' is not YYYYMMDD, YYYYMMDDTHHMMSS or YYYYMMDDTHHMMSSZ"),
        (
            "FREQ=DAILY;UNTIL=20240230",
            "bad RRULE: UNTIL '20240230' is not YYYYMMDD, YYYYMMDDTHHMMSS or YYYYMMDDTHHMMSSZ",
        ),
        (
            "FREQ=DAILY;UNTIL=20240101T250000Z",
            "bad RRULE: UNTIL '20240101T250000Z' is not YYYYMMDD, YYYYMMDDTHHMMSS or YYYYMMDDTHHMMSSZ",
        ),
        (
            "FREQ=DAILY;UNTIL=2024-01-01",
            "bad RRULE: UNTIL '2024-01-01' is not YYYYMMDD, YYYYMMDDTHHMMSS or YYYYMMDDTHHMMSSZ",
        ),
        # RFC 5545 "MUST NOT" combinations
        ("FREQ=WEEKLY;BYDAY=2TU", "bad RRULE: BYDAY with a number (like 2TU) needs FREQ=MONTHLY or FREQ=YEARLY"),
        (
            "FREQ=YEARLY;BYWEEKNO=20;BYDAY=1MO",
            "bad RRULE: BYDAY with a number (like 2TU) cannot be combined with BYWEEKNO",
        ),
        ("FREQ=WEEKLY;BYMONTHDAY=1", "bad RRULE: BYMONTHDAY cannot be used with FREQ=WEEKLY"),
        ("FREQ=MONTHLY;BYYEARDAY=100", "bad RRULE: BYYEARDAY cannot be used with FREQ=MONTHLY"),
        ("FREQ=MONTHLY;BYWEEKNO=10", "bad RRULE: BYWEEKNO needs FREQ=YEARLY"),
        ("FREQ=MONTHLY;BYSETPOS=1", "bad RRULE: BYSETPOS needs another BY... part to pick from"),
    ],
)
def test_parse_rule_errors(text, message):
    with pytest.raises(RecurrenceError) as info:
        parse_rule(text)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_parse_rule_leaves_start_dependent_checks_to_validate():
    # Whether INTERVAL=2 reaches BYHOUR=1 depends on the start hour.
    assert parse_rule("FREQ=HOURLY;INTERVAL=2;BYHOUR=1") == {"FREQ": "HOURLY", "INTERVAL": "2", "BYHOUR": "1"}
    validate(Recurrence("FREQ=HOURLY;INTERVAL=2;BYHOUR=1", date(2024, 1, 1), time(17), "UTC"))
    with pytest.raises(RecurrenceError, match="never reaches its BYHOUR/BYMINUTE values from the start time 18:00"):
        validate(Recurrence("FREQ=HOURLY;INTERVAL=2;BYHOUR=1", date(2024, 1, 1), time(18), "UTC"))
    # dateutil itself only notices this one while iterating
    with pytest.raises(RecurrenceError, match="never reaches its BYHOUR/BYMINUTE values from the start time 18:00"):
        validate(Recurrence("FREQ=MINUTELY;INTERVAL=1440;BYHOUR=5", date(2024, 1, 1), time(18), "UTC"))
    with pytest.raises(RecurrenceError, match="never reaches"):
        unreachable = Recurrence("FREQ=MINUTELY;INTERVAL=160;BYHOUR=1", date(2024, 1, 1), None, "UTC")
        expand(unreachable, utc(2024, 1, 1), utc(2024, 1, 2))
    validate(Recurrence("FREQ=MINUTELY;INTERVAL=160;BYHOUR=2", date(2024, 1, 1), None, "UTC"))


# --------------------------------------------------------------------------
# Zones and validate
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Mars/Base",
        "",
        " UTC",
        "America/",
        "../etc/passwd",
        "/etc/localtime",
        "A" * 300,
        # system zoneinfo files that are not IANA zones (leap-second clocks, duplicates, machine-specific)
        "right/Europe/Berlin",
        "posix/Europe/Berlin",
        "localtime",
        "posixrules",
    ],
)
def test_get_zone_unknown(name):
    with pytest.raises(RecurrenceError) as info:
        get_zone(name)
    assert str(info.value) == f"unknown time zone {name!r}"


def test_get_zone_known():
    assert get_zone("America/New_York") == ZoneInfo("America/New_York")
    assert str(get_zone("UTC")) == "UTC"


def test_get_zone_message():
    with pytest.raises(RecurrenceError, match=r"^unknown time zone 'Mars/Base'$"):
        get_zone("Mars/Base")


def test_validate_errors():
    with pytest.raises(RecurrenceError, match=r"^unknown time zone 'Mars/Base'$"):
        validate(Recurrence("FREQ=DAILY", date(2026, 2, 1), None, "Mars/Base"))
    with pytest.raises(RecurrenceError, match=r"^end date 2026-01-01 is before start date 2026-02-01$"):
        validate(Recurrence("FREQ=DAILY", date(2026, 2, 1), None, "UTC", end=date(2026, 1, 1)))
    with pytest.raises(RecurrenceError, match=r"^bad RRULE: unknown part 'FOO'$"):
        validate(Recurrence("FREQ=DAILY;FOO=2", date(2026, 2, 1), None, "UTC"))
    with pytest.raises(RecurrenceError, match=r"^time of day must be a naive local time"):
        validate(Recurrence("FREQ=DAILY", date(2026, 2, 1), time(9, tzinfo=UTC), "UTC"))
    with pytest.raises(RecurrenceError, match=r"^start must be a date"):
        validate(Recurrence("FREQ=DAILY", datetime(2026, 2, 1, 9), None, "UTC"))
    validate(Recurrence("FREQ=DAILY", date(2026, 2, 1), None, "UTC", end=date(2026, 2, 1)))
    validate(Recurrence(None, date(2026, 2, 1), time(9), "UTC"))
    validate(Recurrence("FREQ=WEEKLY;UNTIL=20250101", date(2026, 2, 1), None, "UTC"))  # merely empty
    assert first_slots(Recurrence("FREQ=WEEKLY;UNTIL=20250101", date(2026, 2, 1), None, "UTC"), 3) == []


_TOO_DENSE = "rule expands to more than 2000 sessions a year; that is not a practice plan"


@pytest.mark.parametrize(
    ("rule", "ok"),
    [
        ("FREQ=MINUTELY", False),
        ("FREQ=MINUTELY;INTERVAL=5", False),
        ("FREQ=HOURLY", False),
        ("FREQ=HOURLY;INTERVAL=4", False),  # 6 a day
        ("FREQ=HOURLY;INTERVAL=5", True),  # 4.8 a day: 1757 in 366 days
        ("FREQ=DAILY;BYHOUR=0,1,2,3,4,5", False),  # 2196
        ("FREQ=DAILY;BYHOUR=0,1,2,3,4", True),  # 1830
        ("FREQ=MINUTELY;INTERVAL=300", True),
        ("FREQ=MINUTELY;COUNT=500", True),
        ("FREQ=MINUTELY;BYHOUR=9;BYMINUTE=0,30", True),
        ("FREQ=MINUTELY;BYMONTH=12", False),  # dense from its first session, 11 months after the start
        ("FREQ=YEARLY;INTERVAL=3;BYMONTH=1;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23", True),
        ("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU;BYHOUR=6,7,8,9,10,11;BYMINUTE=0", False),
        ("FREQ=DAILY", True),
    ],
)
def test_validate_caps_density(rule, ok):
    rec = Recurrence(rule, date(2024, 1, 1), time(18), "Europe/Berlin")
    started = clock.perf_counter()
    if ok:
        validate(rec)
    else:
        with pytest.raises(RecurrenceError) as info:
            validate(rec)
        assert str(info.value) == _TOO_DENSE
    assert clock.perf_counter() - started < 1.0


_IMPOSSIBLE_RULES = [
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=HOURLY;BYMONTH=4;BYMONTHDAY=31",
    "FREQ=HOURLY;BYMONTH=1;BYYEARDAY=-1",
    "FREQ=DAILY;BYSETPOS=2;BYHOUR=7",  # a day has a single 07:00
    "FREQ=HOURLY;BYSETPOS=2;BYHOUR=7",
    "FREQ=MINUTELY;INTERVAL=7;BYSETPOS=2;BYHOUR=7",
    "FREQ=DAILY;INTERVAL=7;BYDAY=TU",  # started on a Monday: every 7th day is a Monday
    "FREQ=HOURLY;INTERVAL=168;BYDAY=WE",
    "FREQ=MINUTELY;INTERVAL=10080;BYDAY=FR;BYHOUR=18",
    "FREQ=MONTHLY;INTERVAL=2;BYMONTH=2",  # started in January: odd months only
    "FREQ=YEARLY;BYWEEKNO=1;BYMONTH=6",
    "FREQ=MONTHLY;BYDAY=6MO",
    "FREQ=YEARLY;BYYEARDAY=366;BYMONTH=1",
]


@pytest.mark.parametrize("rule", _IMPOSSIBLE_RULES)
@pytest.mark.parametrize("start", [date(2024, 1, 1), date(2087, 1, 6), date(2101, 1, 3)])  # all Mondays
def test_impossible_rules_finish_fast(rule, start):
    assert start.weekday() == 0
    rec = Recurrence(rule, start, time(18), "America/New_York")
    started = clock.perf_counter()
    validate(rec)
    assert first_slots(rec, 5) == []
    assert expand(rec, utc(2024, 1, 1), utc(2124, 1, 1)) == []
    assert expand(rec, utc(2099, 6, 1), utc(2100, 6, 1)) == []
    assert clock.perf_counter() - started < 1.0


def test_never_matching_lattice_rule_is_empty_from_a_far_start():
    # 2101, 2105, ...: with INTERVAL=4 from 2101 Feb 29 never comes
    rec = Recurrence("FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29", date(2101, 1, 1), time(9), "UTC")
    started = clock.perf_counter()
    validate(rec)
    assert first_slots(rec, 3) == []
    assert expand(rec, utc(2101, 1, 1), utc(2500, 1, 1)) == []
    assert clock.perf_counter() - started < 1.0


def test_rare_but_possible_rule_is_found():
    # Feb 29 on a Monday: 2044, then 2072 (28 years later).
    rec = Recurrence("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", date(2024, 1, 1), time(9), "UTC")
    assert [s.key for s in first_slots(rec, 2)] == ["2044-02-29T09:00:00", "2072-02-29T09:00:00"]


# --------------------------------------------------------------------------
# occurrence ids
# --------------------------------------------------------------------------


def test_occurrence_id():
    oid = occurrence_id("plan_abc", "2024-03-10T18:00:00")
    assert oid == "plan_occ_e7d2b1e4a1785c24adb7"  # pinned: ids must never change
    assert oid == "plan_occ_" + uuid.uuid5(NAMESPACE, "plan_abc|2024-03-10T18:00:00").hex[:20]
    assert NAMESPACE == uuid.UUID("6f1f0a6e-8d5e-4c1e-9a57-5f2d6b1c3a90")
    assert re.fullmatch(r"plan_occ_[0-9a-f]{20}", oid)
    assert occurrence_id("plan_abc", "2024-03-10T18:00:00") == oid
    assert occurrence_id("plan_abc", "2024-03-11T18:00:00") != oid
    assert occurrence_id("plan_abd", "2024-03-10T18:00:00") != oid
    ids = {occurrence_id("p", s.key) for s in first_slots(daily("UTC", date(2024, 1, 1), time(9)), 500)}
    assert len(ids) == 500


# --------------------------------------------------------------------------
# Property tests
# --------------------------------------------------------------------------

_DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


@st.composite
def rules(draw) -> tuple[str, str]:
    """(rule, freq) over several rule shapes."""
    freq = draw(st.sampled_from(["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY"]))
    parts = [f"FREQ={freq}"]
    if freq == "HOURLY":
        interval = draw(st.integers(1, 30))
    elif freq == "MINUTELY":
        interval = draw(st.integers(15, 500))
    else:
        interval = draw(st.integers(1, 4))
    if interval > 1 or draw(st.booleans()):
        parts.append(f"INTERVAL={interval}")
    day_sets = st.lists(st.sampled_from(_DAYS), min_size=1, max_size=7, unique=True)
    if freq == "MONTHLY":
        shape = draw(st.sampled_from(["plain", "monthday", "byday", "ordinal", "setpos"]))
        if shape == "monthday":
            monthdays = st.sampled_from(["1", "15", "28", "29", "30", "31", "-1", "-2"])
            days = draw(st.lists(monthdays, min_size=1, max_size=3, unique=True))
            parts.append("BYMONTHDAY=" + ",".join(days))
        elif shape == "byday":
            parts.append("BYDAY=" + ",".join(draw(day_sets)))
        elif shape == "ordinal":
            n = draw(st.sampled_from(["1", "2", "3", "4", "-1", "-2", "+1"]))
            parts.append(f"BYDAY={n}{draw(st.sampled_from(_DAYS))}")
        elif shape == "setpos":
            parts.append("BYDAY=" + ",".join(draw(day_sets)))
            parts.append(f"BYSETPOS={draw(st.sampled_from(['1', '-1', '2', '-2', '3']))}")
    elif freq == "YEARLY":
        shape = draw(st.sampled_from(["plain", "month", "ordinal", "weekno"]))
        if shape == "month":
            parts.append(f"BYMONTH={draw(st.integers(1, 12))}")
            parts.append(f"BYMONTHDAY={draw(st.sampled_from(['1', '13', '28', '-1']))}")
        elif shape == "ordinal":
            parts.append(f"BYMONTH={draw(st.integers(1, 12))}")
            parts.append(f"BYDAY={draw(st.sampled_from(['1', '2', '-1']))}{draw(st.sampled_from(_DAYS))}")
        elif shape == "weekno":
            parts.append(f"BYWEEKNO={draw(st.sampled_from(['1', '10', '-1', '52']))}")
            parts.append("BYDAY=" + ",".join(draw(day_sets)))
    elif freq in ("WEEKLY", "DAILY", "HOURLY", "MINUTELY") and draw(st.booleans()):
        parts.append("BYDAY=" + ",".join(draw(day_sets)))
    if freq in ("HOURLY", "MINUTELY") and draw(st.booleans()):
        hours = draw(st.lists(st.integers(0, 23), min_size=1, max_size=6, unique=True))
        parts.append("BYHOUR=" + ",".join(map(str, hours)))
    if freq == "WEEKLY" and draw(st.booleans()):
        parts.append(f"WKST={draw(st.sampled_from(_DAYS))}")
    if draw(st.integers(0, 3)) == 0:
        parts.append(f"COUNT={draw(st.integers(1, 400))}")
    return ";".join(parts), freq


# Times that hit DST gaps and folds in many zones (00:00 and 00:30 for the
# zones that change at midnight), plus ordinary times.
_times = st.one_of(
    st.none(),
    st.sampled_from(
        [time(0), time(0, 30), time(1), time(1, 30), time(2), time(2, 15), time(2, 30), time(3, 30), time(23, 30)]
    ),
    st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 45]), st.sampled_from([0, 0, 30])),
)


def _is_iana_zone(zone: ZoneInfo) -> bool:
    try:
        get_zone(zone.key)
    except RecurrenceError:
        return False
    return True


# st.timezones() also draws the system's "right/..." (leap-second clocks, refused
# by get_zone) and "posix/..." copies of every zone: fold them onto the IANA name.
_zones = (
    st.timezones()
    .map(lambda zone: ZoneInfo(zone.key.removeprefix("right/").removeprefix("posix/")))
    .filter(_is_iana_zone)
)


# Zones with unusual transitions: 30-minute DST, midnight changes, skipped
# days, double summer time, DST during Ramadan, the southern hemisphere.
_TRICKY_ZONES = [
    "America/New_York",
    "Europe/Berlin",
    "Europe/London",
    "Australia/Lord_Howe",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Pacific/Chatham",
    "Pacific/Apia",
    "Pacific/Kiritimati",
    "America/Santiago",
    "America/Havana",
    "America/Sao_Paulo",
    "America/St_Johns",
    "Asia/Beirut",
    "Asia/Tehran",
    "Africa/Casablanca",
    "Antarctica/Troll",
]


def next_transition(zone: ZoneInfo, after: datetime) -> datetime | None:
    """The first UTC minute after ``after`` whose offset differs from the minute before, within ~2 years."""
    step = timedelta(hours=6)
    offset = after.astimezone(zone).utcoffset()
    probe = after
    for _ in range(4 * 800):
        later = probe + step
        if later.astimezone(zone).utcoffset() != offset:
            low, high = probe, later  # bisect to the minute
            while high - low > timedelta(minutes=1):
                mid = low + (high - low) / 2
                mid = mid.replace(second=0, microsecond=0)
                if mid <= low:
                    break
                if mid.astimezone(zone).utcoffset() == offset:
                    low = mid
                else:
                    high = mid
            return high
        probe = later
    return None


@st.composite
def plans(draw):
    """(rec, zone, window start, window end, split fraction), half of them aimed at a DST transition."""
    rule, freq = draw(rules())
    at = draw(_times)
    aimed = draw(st.booleans())
    if aimed:
        # A window around a real transition, a plan starting shortly before it, and
        # often a time of day inside the gap or the fold.
        zone = ZoneInfo(draw(st.sampled_from(_TRICKY_ZONES)))
        probe = datetime.combine(draw(st.dates(date(1990, 1, 1), date(2037, 12, 31))), time(), tzinfo=UTC)
        transition = next_transition(zone, probe)
        assume(transition is not None)
        before = (transition - timedelta(minutes=1)).astimezone(zone).utcoffset()
        after = transition.astimezone(zone).utcoffset()
        if draw(st.integers(0, 3)) > 0:  # a wall clock inside the gap (or the fold)
            wall = (transition + before).replace(tzinfo=None)
            wall += abs(after - before) * draw(st.floats(0, 0.99))
            at = wall.time().replace(second=0, microsecond=0)
        ws = transition - timedelta(hours=draw(st.integers(0, 72)))
        we = transition + timedelta(hours=draw(st.integers(1, 72)))
        local_day = (transition - timedelta(minutes=1)).astimezone(zone).date()
        if freq in ("YEARLY", "MONTHLY", "WEEKLY"):
            # start on the transition day itself (or a week before) so the rule's default day hits it
            start = local_day - timedelta(days=7 * draw(st.integers(0, 1)) if freq == "WEEKLY" else 0)
        else:
            start = local_day - timedelta(days=draw(st.integers(0, 60 if freq == "DAILY" else 2)))
    else:
        zone = draw(_zones)
        start = draw(st.dates(date(1990, 1, 1), date(2037, 12, 31)))
        # a few years out for day-based rules, close for sub-daily ones (the oracle iterates from DTSTART)
        if freq == "HOURLY":
            offset = timedelta(hours=draw(st.integers(-48, 24 * 60)))
            length = timedelta(hours=draw(st.integers(1, 24 * 10)))
        elif freq == "MINUTELY":
            offset = timedelta(minutes=draw(st.integers(-2880, 1440 * 12)))
            length = timedelta(minutes=draw(st.integers(1, 1440 * 3)))
        else:
            far = {"YEARLY": 366 * 30, "MONTHLY": 366 * 15, "WEEKLY": 366 * 8, "DAILY": 366 * 6}[freq]
            offset = timedelta(days=draw(st.integers(-3, far)), minutes=draw(st.integers(0, 1439)))
            length = timedelta(days=draw(st.integers(1, 400)), minutes=draw(st.integers(0, 1439)))
        ws = datetime.combine(start, time(), tzinfo=UTC) + offset
        we = ws + length
    end = None
    if draw(st.integers(0, 2)) == 0:
        end = start + timedelta(days=draw(st.integers(0, 3000)))
    exdates = tuple(start + timedelta(days=d) for d in draw(st.lists(st.integers(0, 400), max_size=4)))
    rec = Recurrence(rule, start, at, zone.key, end, exdates)
    # Keep rules that have occurrences (plain dateutil, the oracle, would grind
    # through the calendar on one that has none): an INTERVAL lattice can miss
    # BYHOUR (an invalid rule) or BYDAY (an empty one) from this start time.
    try:
        assume(first_slots(Recurrence(rule, start, at, zone.key), 1))
    except RecurrenceError as error:
        assert "never reaches its BYHOUR/BYMINUTE values" in str(error)
        assume(False)
    return rec, zone, ws, we, draw(st.floats(0, 1))


def naive_start(rec: Recurrence) -> datetime:
    return datetime.combine(rec.start, rec.time or time())


def oracle_keys(rec: Recurrence, ws: datetime, we: datetime) -> list[str]:
    """Plain dateutil from DTSTART (no re-anchoring), localized with fold=0, filtered, sorted, deduped."""
    zone = ZoneInfo(rec.zone)
    rule = rrulestr("RRULE:" + rec.rule, dtstart=naive_start(rec))
    lo = ws.astimezone(UTC).replace(tzinfo=None) - timedelta(days=2)
    hi = we.astimezone(UTC).replace(tzinfo=None) + timedelta(days=2)
    if rec.end is not None:
        hi = min(hi, datetime.combine(rec.end, time(23, 59, 59)))
    found = []
    for naive in rule.between(lo, hi, inc=True):
        if naive.date() in rec.exdates:
            continue
        instant = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
        if ws <= instant < we:
            found.append((instant, naive.isoformat()))
    found.sort()
    out, last = [], None
    for instant, key in found:
        if instant != last:
            out.append(key)
        last = instant
    return out


def check_slot_invariants(rec: Recurrence, zone: ZoneInfo, slots: list[Slot], ws: datetime, we: datetime) -> None:
    starts = [s.start for s in slots]
    assert all(a < b for a, b in zip(starts, starts[1:])), "strictly increasing and unique"
    assert len({s.key for s in slots}) == len(slots)
    first_allowed = datetime.combine(rec.start, time())
    last_allowed = datetime.combine(rec.end, time(23, 59, 59)) if rec.end else datetime.max
    for slot in slots:
        assert ws <= slot.start < we
        assert slot.start.tzinfo is UTC
        key = datetime.fromisoformat(slot.key)
        assert first_allowed <= key <= last_allowed
        assert key.date() not in rec.exdates
        assert slot.start == localize(key, zone).astimezone(UTC)
        # local is the normalized instant in the plan zone: never imaginary
        # (compared via UTC: PEP 495 makes an aware datetime inside a fold compare
        # unequal to every datetime of another tzinfo, even the same instant)
        assert slot.local.tzinfo is zone
        assert slot.local.astimezone(UTC) == slot.start
        round_trip = slot.local.astimezone(UTC).astimezone(zone)
        assert round_trip.replace(tzinfo=None) == slot.local.replace(tzinfo=None)
        assert round_trip.utcoffset() == slot.local.utcoffset()
        assert round_trip.fold == slot.local.fold
        # the wall clock is the rule's, unless it fell in a gap: then forward by the gap length
        wall = slot.local.replace(tzinfo=None)
        if wall != key:
            gap = slot.local.utcoffset() - localize(key, zone).utcoffset()
            assert gap > timedelta(0)
            assert wall == key + gap
            assert localize(key, zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) != key  # key was imaginary
        if "BYHOUR" not in rec.rule and "HOURLY" not in rec.rule and "MINUTELY" not in rec.rule:
            assert key.time() == (rec.time or time())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans())
def test_expand_properties(plan):
    rec, zone, ws, we, fraction = plan
    slots = expand(rec, ws, we)
    check_slot_invariants(rec, zone, slots, ws, we)
    # the rule is matched exactly: same keys as dateutil's own naive expansion
    assert [s.key for s in slots] == oracle_keys(rec, ws, we)
    # splitting the window changes nothing
    mid = ws + (we - ws) * fraction
    assert expand(rec, ws, mid) + expand(rec, mid, we) == slots


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans(), st.integers(1, 12))
def test_first_slots_are_the_start_of_the_expansion(plan, n):
    rec, zone, _, _, _ = plan
    slots = first_slots(rec, n)
    assert len(slots) <= n
    early = datetime.combine(rec.start, time(), tzinfo=UTC) - timedelta(days=2)
    if slots:
        check_slot_invariants(rec, zone, slots, early, slots[-1].start + timedelta(microseconds=1))
        assert expand(rec, early, slots[-1].start + timedelta(microseconds=1)) == slots
    if len(slots) < n:  # the plan is over: nothing after the last slot for the rest of its life
        assert "COUNT" in rec.rule or rec.end is not None
        last_day = rec.end or rec.start + timedelta(days=366 * 40)
        after = slots[-1].start + timedelta(microseconds=1) if slots else early
        assert expand(rec, after, datetime.combine(last_day, time(), tzinfo=UTC) + timedelta(days=2)) == []


@pytest.mark.parametrize("rule", _IMPOSSIBLE_RULES)
def test_every_impossible_rule_has_a_reason(rule):
    reason = recurrence.why_no_sessions(Recurrence(rule, date(2024, 1, 1), time(18), "America/New_York"))
    assert reason and "\n" not in reason


def test_why_no_sessions_and_skipped_months():
    assert recurrence.why_no_sessions(Recurrence("FREQ=WEEKLY", date(2026, 3, 2), time(9), "UTC")) is None
    short = Recurrence("FREQ=YEARLY;BYMONTH=2,4;BYMONTHDAY=31", date(2026, 3, 2), time(9), "UTC")
    assert recurrence.why_no_sessions(short) == "February and April have no day 31"
    april30 = Recurrence("FREQ=YEARLY;BYMONTH=2,4;BYMONTHDAY=30,31", date(2026, 3, 2), time(9), "UTC")
    assert recurrence.why_no_sessions(april30) is None
    assert recurrence.why_no_sessions(Recurrence("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", date(2026, 3, 2), None,
                                              "UTC")) == "February has no day 30"
    monthly = Recurrence("FREQ=MONTHLY", date(2026, 1, 31), time(9), "UTC")
    assert recurrence.skipped_months(monthly) == {31: [2, 4, 6, 9, 11]}
    some = Recurrence("FREQ=MONTHLY;BYMONTH=1,2,3;BYMONTHDAY=15,29", date(2026, 1, 1), time(9), "UTC")
    assert recurrence.skipped_months(some) == {29: [2]}
    assert recurrence.skipped_months(Recurrence("FREQ=MONTHLY;BYMONTHDAY=-1", date(2026, 1, 31), None, "UTC")) == {}
    assert recurrence.skipped_months(Recurrence("FREQ=MONTHLY;BYDAY=-1FR", date(2026, 1, 31), None, "UTC")) == {}
    assert recurrence.skipped_months(Recurrence("FREQ=WEEKLY", date(2026, 1, 31), None, "UTC")) == {}
