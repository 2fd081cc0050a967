"""Check-in, undo, today/next and occurrences through the CLI."""

from __future__ import annotations

import pytest

from tests import wire


@pytest.fixture
def scales(cli):
    """A daily 18:00 Berlin plan (20 min) with a reflection prompt, starting Monday 2 March 2026."""
    plan = cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--minutes", "20",
               "--prompt", "What went well?", "--piece", "Hanon No. 1 — Hanon", "--technique", "legato",
               "--instrument", "Piano", "--json").json["plan"]
    occs = cli("occurrences", "--json", "--from", "2026-03-02", "--to", "2026-03-08").json["occurrences"]
    return plan, occs


def test_checkin_links_entry_and_occurrence(cli, scales, set_now):
    plan, occs = scales
    set_now("2026-03-02T17:25:00Z")
    out = cli("checkin", occs[0]["id"][9:17], "--minutes", "25", "--mood", "satisfied", "--notes", "even tone",
              "--answer", "1=steady tempo", "--metric", "tempo=84", "--json").json
    entry, occ = out["entry"], out["occurrence"]
    wire.check_entry(entry)
    wire.check_occurrence(occ)
    assert occ["status"] == "completed" and occ["logEntryId"] == entry["id"]
    assert occ["checkIn"] == {"recordedAt": "2026-03-02T17:25:00.000Z", "responses": {"What went well?": "steady tempo"}}
    assert occ["metrics"]["actualDuration"] == 25
    assert occ["metrics"]["history"][-1]["action"] == "checkin"
    assert entry["timestamp"] == "2026-03-02T17:25:00.000Z"  # check-in time
    assert entry["duration"] == 25 and entry["type"] == "practice" and entry["instrument"] == "piano"
    assert entry["pieces"] == [{"title": "Hanon No. 1", "composer": "Hanon"}]
    assert entry["techniques"] == ["legato"]
    meta = entry["metadata"]
    assert meta["source"] == "practice_plan" and meta["planId"] == plan["id"]
    assert meta["planOccurrenceId"] == occ["id"]
    assert meta["reflectionResponses"] == [{"prompt": "What went well?", "response": "steady tempo"}]
    assert meta["metrics"] == {"tempo": 84}
    assert cli("log", "show", entry["id"], "--json").json["entry"] == entry


def test_checkin_twice_is_refused_unless_forced(cli, scales, isolated_home):
    _, occs = scales
    first = cli("checkin", occs[0]["id"], "--json").json
    again = cli("checkin", occs[0]["id"], ok=False)
    assert again.code == 65 and "already checked in" in again.stderr and "--force" in again.stderr
    forced = cli("checkin", occs[0]["id"], "--force", "--json").json
    assert forced["occurrence"]["logEntryId"] != first["entry"]["id"]
    assert forced["occurrence"]["metrics"]["history"][-1]["replacedEntryId"] == first["entry"]["id"]
    assert len(cli("log", "list", "--json").json["entries"]) == 2


def test_default_minutes_come_from_the_session(cli, scales):
    _, occs = scales
    assert cli("checkin", occs[1]["id"], "--json").json["entry"]["duration"] == 20


def test_late_checkin_of_a_missed_session(cli, scales, set_now):
    _, occs = scales
    set_now("2026-03-05T09:00:00Z")
    out = cli("checkin", occs[0]["id"], "--when", "2026-03-04T18:00", "--json").json
    assert out["occurrence"]["status"] == "completed"
    assert out["entry"]["timestamp"] == "2026-03-04T17:00:00.000Z"


def test_uncheck_within_window_keeps_entry(cli, scales, set_now):
    _, occs = scales
    set_now("2026-03-02T17:30:00Z")
    entry = cli("checkin", occs[0]["id"], "--json").json["entry"]
    set_now("2026-03-02T17:44:59Z")
    occ = cli("uncheck", occs[0]["id"], "--reason", "wrong session", "--json").json["occurrence"]
    wire.check_occurrence(occ)
    assert occ["status"] == "scheduled" and occ["logEntryId"] is None and "checkIn" not in occ
    assert "actualDuration" not in occ["metrics"]
    record = occ["metrics"]["history"][-1]
    assert record == {"at": "2026-03-02T17:44:59.000Z", "action": "uncheck", "entryId": entry["id"],
                      "checkedInAt": "2026-03-02T17:30:00.000Z", "reason": "wrong session"}
    # the entry stays, as free practice: same practice, no link to the session (the link is in the history)
    kept = cli("log", "show", entry["id"], "--json").json["entry"]
    assert {k: v for k, v in kept.items() if k not in ("metadata", "updatedAt")} == \
        {k: v for k, v in entry.items() if k not in ("metadata", "updatedAt")}
    assert "planOccurrenceId" not in kept["metadata"] and "planId" not in kept["metadata"]
    assert kept["metadata"]["source"] == "manual" and kept["updatedAt"] == "2026-03-02T17:44:59.000Z"


def test_undo_then_checkin_again_counts_once(cli, scales, set_now):
    """Issue 10.1: checkin 20 min, uncheck, checkin 25 -> 25 linked minutes for the session, not 45."""
    _, occs = scales
    set_now("2026-03-02T17:10:00Z")
    first = cli("checkin", occs[0]["id"], "--minutes", "20", "--json").json["entry"]
    undone = cli("uncheck", occs[0]["id"], "--json").json
    assert undone["entry"]["id"] == first["id"] and "planOccurrenceId" not in undone["entry"]["metadata"]
    second = cli("checkin", occs[0]["id"], "--minutes", "25", "--json").json["entry"]
    set_now("2026-03-02T20:00:00Z")
    week = cli("stats", "--json").json["weeks"][-1]
    assert (week["loggedPlannedMinutes"], week["unplannedMinutes"], week["totalMinutes"]) == (25, 20, 45)
    entries = {e["id"]: e for e in cli("log", "list", "--json").json["entries"]}
    assert set(entries) == {first["id"], second["id"]}  # the first entry still exists, as free practice
    assert entries[second["id"]]["metadata"]["planOccurrenceId"] == occs[0]["id"]
    assert "planOccurrenceId" not in entries[first["id"]]["metadata"]


def test_forced_second_checkin_counts_only_the_current_entry(cli, scales, set_now):
    _, occs = scales
    set_now("2026-03-02T17:10:00Z")
    first = cli("checkin", occs[0]["id"], "--minutes", "20", "--json").json["entry"]
    cli("checkin", occs[0]["id"], "--minutes", "25", "--force")
    set_now("2026-03-02T20:00:00Z")
    week = cli("stats", "--json").json["weeks"][-1]
    assert (week["loggedPlannedMinutes"], week["unplannedMinutes"]) == (25, 20)
    assert "planOccurrenceId" not in cli("log", "show", first["id"], "--json").json["entry"]["metadata"]


def test_uncheck_after_window_is_refused(cli, scales, set_now):
    _, occs = scales
    set_now("2026-03-02T17:30:00Z")
    cli("checkin", occs[0]["id"])
    set_now("2026-03-02T17:45:01Z")
    result = cli("uncheck", occs[0]["id"], ok=False)
    assert result.code == 65 and "undo window of 15 minutes has passed" in result.stderr
    assert cli("occurrences", "--json", "--to", "2026-03-02").json["occurrences"][0]["status"] == "completed"


def test_uncheck_window_is_configurable(cli, scales, set_now):
    _, occs = scales
    cli("config", "set", "undo_minutes", "60")
    set_now("2026-03-02T17:30:00Z")
    cli("checkin", occs[0]["id"])
    set_now("2026-03-02T18:20:00Z")
    assert cli("uncheck", occs[0]["id"], "--json").json["occurrence"]["status"] == "scheduled"


def test_uncheck_of_a_scheduled_session_is_refused(cli, scales):
    _, occs = scales
    result = cli("uncheck", occs[0]["id"], ok=False)
    assert result.code == 65 and "not checked in" in result.stderr


def test_today_sections(cli, set_now):
    # Tuesday 3 March 2026, 19:00 Berlin
    daily = cli("plan", "add", "Daily", "--every", "daily", "--at", "08:00", "--start", "2026-03-01", "--json").json["plan"]
    anytime = cli("plan", "add", "Anytime", "--every", "weekly", "--on", "mo,th", "--at", "12:00",
                  "--start", "2026-03-01", "--flex", "anytime", "--json").json["plan"]
    evening = cli("plan", "add", "Evening", "--every", "daily", "--at", "21:00", "--start", "2026-03-01", "--json").json["plan"]
    set_now("2026-03-03T18:00:00Z")
    view = cli("today", "--json").json
    assert view["now"] == "2026-03-03T18:00:00.000Z" and view["timezone"] == "Europe/Berlin"
    assert view["today"] == "2026-03-03" and view["weekStart"] == "2026-03-02"
    names = {daily["id"]: "daily", anytime["id"]: "anytime", evening["id"]: "evening"}
    label = lambda occs: [(names[o["planId"]], o["scheduledStart"]) for o in occs]  # noqa: E731
    # today's 08:00 daily has passed but is catchable until midnight; Monday's anytime session until Thursday
    assert label(view["overdue"]) == [("daily", "2026-03-03T07:00:00.000Z"), ("anytime", "2026-03-02T11:00:00.000Z")]
    assert label(view["dueToday"]) == [("evening", "2026-03-03T20:00:00.000Z")]
    assert label(view["upcoming"])[:3] == [("daily", "2026-03-04T07:00:00.000Z"), ("evening", "2026-03-04T20:00:00.000Z"),
                                           ("daily", "2026-03-05T07:00:00.000Z")]
    assert len(view["upcoming"]) == 5
    assert view["next"]["scheduledStart"] == "2026-03-03T07:00:00.000Z"
    rails = {names[r["plan"]["id"]]: {k: r[k] for k in ("completed", "due", "remaining", "missed", "skipped")}
             for r in view["plans"]}
    # week Mon 2 .. Sun 8 March: daily: 2nd missed, 3rd due, 4..8 remaining
    assert rails["daily"] == {"completed": 0, "due": 1, "remaining": 5, "missed": 1, "skipped": 0}
    assert rails["anytime"] == {"completed": 0, "due": 1, "remaining": 1, "missed": 0, "skipped": 0}
    assert rails["evening"] == {"completed": 0, "due": 1, "remaining": 5, "missed": 1, "skipped": 0}
    nxt = cli("next", "--json").json
    assert nxt["next"] == view["next"]
    text = cli("today").stdout
    assert "Overdue" in text and "Due today" in text and "Upcoming" in text and "Next: Daily" in text
    assert "\x1b[" not in text  # no ANSI when not a TTY


def test_today_after_checkin_counts_completed(cli, scales, set_now):
    _, occs = scales
    set_now("2026-03-02T17:30:00Z")
    cli("checkin", occs[0]["id"])
    view = cli("today", "--json").json
    assert view["plans"][0]["completed"] == 1
    assert view["next"]["id"] == occs[1]["id"]
    assert view["dueToday"] == [] and view["overdue"] == []


def test_all_day_session_is_due_all_day_not_overdue(cli, set_now):
    cli("plan", "add", "Ear training", "--every", "daily", "--minutes", "10")
    set_now("2026-03-02T20:00:00Z")  # 21:00 Berlin
    view = cli("today", "--json").json
    assert [o["scheduledStart"] for o in view["dueToday"]] == ["2026-03-01T23:00:00.000Z"]
    assert view["overdue"] == []


def test_today_with_no_plans(cli):
    view = cli("today", "--json").json
    assert view["next"] is None and view["plans"] == [] and view["overdue"] == view["dueToday"] == view["upcoming"] == []
    assert "Nothing planned" in cli("today").stdout
    assert cli("next").stdout.strip() == "Nothing planned."


def test_horizon_rolls_forward(cli, set_now):
    cli("plan", "add", "Daily", "--every", "daily", "--at", "08:00")
    last = cli("occurrences", "--json", "--from", "2026-01-01", "--to", "2027-12-31").json["occurrences"][-1]
    assert last["scheduledStart"].startswith("2026-05-31")
    set_now("2026-04-02T09:00:00Z")
    cli("today", "--json")
    last = cli("occurrences", "--json", "--from", "2026-01-01", "--to", "2027-12-31").json["occurrences"][-1]
    assert last["scheduledStart"].startswith("2026-07-01")


def test_occurrence_filters(cli, scales, set_now):
    _, occs = scales
    cli("checkin", occs[0]["id"])
    done = cli("occurrences", "--status", "completed", "--from", "2026-03-01", "--json").json["occurrences"]
    assert [o["id"] for o in done] == [occs[0]["id"]]
    bad = cli("occurrences", "--from", "2026-03-05", "--to", "2026-03-01", ok=False)
    assert bad.code == 65


def test_prefix_resolution_and_ambiguity(cli, scales):
    _, occs = scales
    ids = [o["id"] for o in cli("occurrences", "--json", "--to", "2026-05-31").json["occurrences"]]
    # find two ids sharing their first character after the type prefix
    by_first: dict[str, list[str]] = {}
    for occ_id in ids:
        by_first.setdefault(occ_id[9], []).append(occ_id)
    shared = next(prefix for prefix, group in by_first.items() if len(group) > 1)
    result = cli("checkin", shared, ok=False)
    assert result.code == 3 and "ambiguous" in result.stderr
    missing = cli("checkin", "zzzzzz", ok=False)
    assert missing.code == 3 and "no occurrence matches" in missing.stderr
    full = cli("checkin", ids[5], "--json").json
    assert full["occurrence"]["id"] == ids[5]


def test_today_plain_and_rich_views_say_the_same(cli, set_now, monkeypatch):
    """Not a terminal: plain text, no Rich import, the same words and numbers as the Rich view."""
    import re

    from practiceplan.render import plain
    from practiceplan.render import today as views

    cli("plan", "add", "Daily", "--every", "daily", "--at", "08:00", "--start", "2026-03-01")
    cli("plan", "add", "Evening", "--every", "daily", "--at", "21:00", "--start", "2026-03-01")
    set_now("2026-03-03T18:00:00Z")
    view = cli("today", "--json").json
    text = cli("today").stdout
    assert "Overdue — still catchable" in text and "Due today" in text and "Next: Daily" in text
    assert "This week:" in text and "1 due · 5 left · 1 missed" in text
    plans = {r["plan"]["id"]: r["plan"] for r in view["plans"]}
    short = {o["id"]: o["id"][9:15] for o in view["overdue"] + view["dueToday"] + view["upcoming"]}
    lines = plain.today_lines(view, plans, short, __import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    import io

    from rich.console import Console

    buffer = io.StringIO()
    monkeypatch.setattr("practiceplan.render.today.console", lambda: Console(file=buffer, width=200, no_color=True))
    views.print_today(view, plans, short, __import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    words = lambda s: re.findall(r"[\w%·—:]+", s)  # noqa: E731
    assert words("\n".join(lines)) == words(buffer.getvalue())


def test_occurrences_show_and_filter_the_effective_state(cli, set_now):
    """Issue 10.10: `occurrences` says done/due/upcoming/missed/skipped/moved by the deadline rule `stats` uses,
    and --status filters on it (the old stored statuses are aliases)."""
    set_now("2026-02-22T19:00:00Z")
    plan = cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--start", "2026-02-23",
               "--json").json["plan"]
    occs = cli("occurrences", "--json", "--from", "2026-02-23", "--to", "2026-03-08").json["occurrences"]
    set_now("2026-02-23T17:20:00Z")
    cli("checkin", occs[0]["id"])
    set_now("2026-02-24T09:00:00Z")
    cli("skip", occs[1]["id"])
    cli("reschedule", occs[10]["id"], "--to", "2026-03-05T07:00")  # 5 March 18:00 -> 08:00
    set_now("2026-03-02T09:00:00Z")  # Monday 10:00
    data = cli("occurrences", "--json", "--from", "2026-02-23", "--to", "2026-03-08").json
    states = [data["states"][o["id"]] for o in data["occurrences"]]
    assert states == ["done", "skipped"] + ["missed"] * 5 + ["due", "upcoming", "upcoming", "moved"] + ["upcoming"] * 3
    stats = cli("stats", "--plan", plan["id"], "--json").json["overall"]
    missed = cli("occurrences", "--json", "--from", "2026-02-23", "--status", "missed").json["occurrences"]
    assert len(missed) == stats["missed"] == 5
    assert cli("occurrences", "--json", "--from", "2026-02-23", "--status", "expired").json["occurrences"] == missed
    done = cli("occurrences", "--json", "--from", "2026-02-23", "--status", "completed").json["occurrences"]
    assert [o["id"] for o in done] == [occs[0]["id"]]
    open_ = cli("occurrences", "--json", "--from", "2026-02-23", "--to", "2026-03-08", "--status", "scheduled").json
    assert set(open_["states"].values()) == {"due", "upcoming", "moved"} and len(open_["occurrences"]) == 7
    text = cli("occurrences", "--from", "2026-02-23", "--to", "2026-03-03").stdout
    assert "missed" in text and "done" in text and "skipped" in text and "scheduled" not in text
