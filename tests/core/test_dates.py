"""User date parsing: the stdlib fast path, the dateparser fallback, DST gaps and folds."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from practiceplan import dates
from practiceplan.errors import InvalidInputError

BERLIN = ZoneInfo("Europe/Berlin")
NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # Monday 10:00 Berlin


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("now", NOW),
        ("2026-03-05", utc(2026, 3, 4, 23, 0)),
        ("2026-03-05T18:30", utc(2026, 3, 5, 17, 30)),
        ("2026-03-05T18:30:00Z", utc(2026, 3, 5, 18, 30)),
        ("2026-03-05T18:30:00+05:00", utc(2026, 3, 5, 13, 30)),
        ("today", utc(2026, 3, 1, 23, 0)),
        ("tomorrow 6pm", utc(2026, 3, 3, 17, 0)),
        ("tomorrow at 18:15", utc(2026, 3, 3, 17, 15)),
        ("yesterday 7:30am", utc(2026, 3, 1, 6, 30)),
        ("friday 17:00", utc(2026, 3, 6, 16, 0)),
        ("monday 17:00", utc(2026, 3, 2, 16, 0)),
        ("next monday", utc(2026, 3, 8, 23, 0)),
        ("18:00", utc(2026, 3, 2, 17, 0)),
        ("in 3 days", utc(2026, 3, 5, 9, 0)),
        ("in 90 minutes", utc(2026, 3, 2, 10, 30)),
        ("2 days ago", utc(2026, 2, 28, 9, 0)),
    ],
)
def test_fast_path(text, expected):
    assert dates.parse_datetime(text, BERLIN, NOW) == expected


def test_days_are_calendar_days_across_dst():
    before = datetime(2026, 3, 28, 17, 0, tzinfo=timezone.utc)  # Sat 18:00 CET
    assert dates.parse_datetime("in 1 day", BERLIN, before) == utc(2026, 3, 29, 16, 0)  # Sun 18:00 CEST


def test_gap_moves_forward_and_fold_takes_first():
    assert dates.parse_datetime("2024-03-10T02:30", NY, NOW) == utc(2024, 3, 10, 7, 30)  # 03:30 EDT
    assert dates.parse_datetime("2024-11-03T01:30", NY, NOW) == utc(2024, 11, 3, 5, 30)  # first 01:30 (EDT)


@pytest.mark.parametrize("text", ["", "   ", "2026-02-30", "25:00", "x" * 300, "next blursday", "2026-13-01"])
def test_rejects(text):
    with pytest.raises(InvalidInputError):
        dates.parse_datetime(text, BERLIN, NOW)


def test_dateparser_fallback_for_natural_language():
    assert dates.parse_datetime("March 7 2026 5pm", BERLIN, NOW) == utc(2026, 3, 7, 16, 0)
    assert dates.parse_date("7 March 2026", BERLIN, NOW) == date(2026, 3, 7)


def test_parse_time():
    assert dates.parse_time("6:30pm") == time(18, 30)
    assert dates.parse_time("12am") == time(0, 0)
    assert dates.parse_time("07:05") == time(7, 5)
    for bad in ("13pm", "24:00", "7:60", "noonish"):
        with pytest.raises(InvalidInputError):
            dates.parse_time(bad)


def test_fast_path_does_not_import_dateparser():
    code = (
        "import sys\nfrom datetime import datetime, timezone\nfrom zoneinfo import ZoneInfo\n"
        "from practiceplan import dates\n"
        "z = ZoneInfo('Europe/Berlin'); now = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)\n"
        "for t in ['today', 'tomorrow 6pm', 'next monday 18:00', '2026-03-05T18:30', 'in 3 days', 'friday']:\n"
        "    dates.parse_datetime(t, z, now)\n"
        "print('dateparser' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
