"""`export ics`: RFC 5545 text (CRLF, folding, escaping), parsed back with the icalendar package."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from practiceplan.formats import ics

icalendar = pytest.importorskip("icalendar")

UTC = timezone.utc


@pytest.fixture
def planned(cli, set_now):
    title = "Scales, arpeggios; hands\\separately"
    plan = cli("plan", "add", title, "--every", "daily", "--at", "18:00", "--minutes", "20",
               "--segment", "Warm-up:5", "--segment", "Scales in thirds, contrary motion:15",
               "--description", "Keep the wrist loose; no tension, ever.", "--json").json["plan"]
    cli("plan", "add", "Ear training", "--every", "weekly", "--on", "sa", "--minutes", "10")
    occs = cli("occurrences", "--json", "--from", "2026-03-02", "--to", "2026-03-08", "--plan", plan["id"]).json[
        "occurrences"]
    set_now("2026-03-02T17:30:00Z")
    cli("checkin", occs[0]["id"], "--minutes", "25")
    cli("skip", occs[1]["id"], "--reason", "travelling, back Thursday")
    cli("reschedule", occs[2]["id"], "--to", "2026-03-04T07:15")
    set_now("2026-03-02T18:00:00Z")
    return plan, occs


def parse(text: str):
    return icalendar.Calendar.from_ical(text)


def test_export_parses_with_icalendar(cli, planned):
    plan, occs = planned
    run = cli("export", "ics", "--days", "7", "--from", "2026-03-02", "-o", "-")
    raw = run.result.stdout_bytes.decode("utf-8")  # (Result.stdout turns CRLF into LF)
    assert raw.startswith("BEGIN:VCALENDAR\r\n") and raw.endswith("END:VCALENDAR\r\n")
    assert "\n" not in raw.replace("\r\n", "")  # CRLF line endings only
    assert all(len(line.encode()) <= 75 for line in raw.split("\r\n"))  # folded at 75 octets
    cal = parse(raw)
    assert str(cal["VERSION"]) == "2.0" and "practiceplan" in str(cal["PRODID"])
    events = {str(e["UID"]): e for e in cal.walk("VEVENT")}
    assert len(events) == 8  # 7 daily sessions + Saturday's ear training
    done = events[f"{occs[0]['id']}@practiceplan"]
    assert str(done["SUMMARY"]) == "Scales, arpeggios; hands\\separately (done)"  # escaping round-trips
    assert done.decoded("DTSTART") == datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
    assert done.decoded("DTEND") == datetime(2026, 3, 2, 17, 20, tzinfo=UTC)
    assert str(done["STATUS"]) == "CONFIRMED"
    # newlines, commas and semicolons are escaped on the wire and restored by the parser
    assert str(done["DESCRIPTION"]) == ("Completed: 25 min logged.\n- Warm-up (5 min)\n"
                                        "- Scales in thirds, contrary motion (15 min)\n"
                                        "Keep the wrist loose; no tension, ever.")
    unfolded = raw.replace("\r\n ", "")
    assert "DESCRIPTION:Completed: 25 min logged.\\n- Warm-up (5 min)\\n- Scales in thirds\\, " in unfolded
    assert "SUMMARY:Scales\\, arpeggios\\; hands\\\\separately (done)\r\n" in unfolded
    assert not done.walk("VALARM")  # nothing to remind of
    skipped = events[f"{occs[1]['id']}@practiceplan"]
    assert str(skipped["STATUS"]) == "CANCELLED" and "Skipped: travelling, back Thursday." in str(skipped["DESCRIPTION"])
    moved = events[f"{occs[2]['id']}@practiceplan"]
    assert moved.decoded("DTSTART") == datetime(2026, 3, 4, 6, 15, tzinfo=UTC)
    assert "Moved from Wed 04 Mar 2026 18:00 (Europe/Berlin)." in str(moved["DESCRIPTION"])
    assert int(moved["SEQUENCE"]) == 1
    upcoming = events[f"{occs[3]['id']}@practiceplan"]
    (alarm,) = upcoming.walk("VALARM")
    assert str(alarm["ACTION"]) == "DISPLAY" and alarm.decoded("TRIGGER") == -timedelta(minutes=15)
    ear = [e for e in events.values() if str(e["SUMMARY"]) == "Ear training"]
    assert len(ear) == 1 and ear[0].decoded("DTSTART") == date(2026, 3, 7)  # all-day: a date
    for event in events.values():
        for key in ("DTSTART", "DTEND", "DTSTAMP"):
            value = event[key].to_ical().decode()
            assert value.endswith("Z") or len(value) == 8  # UTC instants, or all-day dates


def test_uid_is_stable_and_alarm_follows_config(cli, planned, tmp_path):
    target = tmp_path / "practice.ics"
    cli("export", "ics", "--days", "7", "--from", "2026-03-02", "-o", str(target))
    first = target.read_bytes()
    assert b"\r\n" in first
    again = cli("export", "ics", "--days", "7", "--from", "2026-03-02", "-o", str(target), ok=False)
    assert again.code == 65 and "--force" in again.stderr
    cli("config", "set", "reminder_minutes", "0")
    cli("export", "ics", "--days", "7", "--from", "2026-03-02", "-o", str(target), "--force")
    second = target.read_bytes()
    uids = lambda raw: [str(e["UID"]) for e in parse(raw).walk("VEVENT")]  # noqa: E731
    assert uids(first) == uids(second)  # same sessions, same UIDs
    assert b"BEGIN:VALARM" in first and b"BEGIN:VALARM" not in second
    only = cli("export", "ics", "--plan", planned[0]["id"], "--days", "7", "--from", "2026-03-02").stdout
    assert len(parse(only).walk("VEVENT")) == 7
    assert cli("export", "ics", "--plan", "nosuchplan", ok=False).code == 3
    assert cli("export", "ics", "-o", str(tmp_path / "missing" / "x.ics"), ok=False).code == 65


def test_folding_and_escaping_unit():
    line = "SUMMARY:" + "é" * 60  # 2 octets each
    folded = ics.ics_fold(line)
    pieces = folded.split("\r\n")[:-1]
    assert all(len(p.encode()) <= 75 for p in pieces) and all(p.startswith(" ") for p in pieces[1:])
    assert "".join(p[1:] if i else p for i, p in enumerate(pieces)) == line  # unfolds to the original
    assert ics.ics_escape("a,b;c\\d\ne\r\nf\x07") == "a\\,b\\;c\\\\d\\ne\\nf"
    assert ics.ics_fold("SHORT:x") == "SHORT:x\r\n"
