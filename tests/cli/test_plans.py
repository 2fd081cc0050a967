"""Plans through the CLI: creation, recurrence, wire format, validation, edit, archive, delete."""

from __future__ import annotations

import sqlite3

import pytest

from tests import wire


def db_counts(home) -> dict[str, int]:
    conn = sqlite3.connect(home / "practiceplan.db")
    try:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("practice_plans", "plan_occurrences", "logbook_entries", "outbox")
        }
    finally:
        conn.close()


def add(cli, *args: str):
    return cli("plan", "add", *args, "--json").json


def test_weekly_plan_keeps_wall_clock_across_dst(cli):
    result = add(cli, "Scales", "--every", "weekly", "--on", "mo,we,fr", "--at", "18:00", "--minutes", "20")
    plan = result["plan"]
    schedule = plan["schedule"]
    assert schedule["kind"] == "recurring"
    assert schedule["rule"] == "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,WE,FR"
    assert schedule["metadata"]["timezone"] == "Europe/Berlin"
    assert "rrule" not in schedule["metadata"]
    assert schedule["metadata"]["recurrence"] == {"frequency": "WEEKLY", "interval": 1, "weekdays": ["MO", "WE", "FR"]}
    assert schedule["timeOfDay"] == "18:00" and schedule["startDate"] == "2026-03-02"
    # 2 March .. 31 May 2026 (90 days from 2 March 10:00): 13 weeks x 3 days = 39 sessions
    assert result["occurrencesChanged"] == 39
    occs = cli("occurrences", "--from", "2026-03-02", "--to", "2026-06-30", "--json").json["occurrences"]
    assert len(occs) == 39
    starts = [o["scheduledStart"] for o in occs]
    assert starts[0] == "2026-03-02T17:00:00.000Z"  # 18:00 CET
    assert "2026-03-27T17:00:00.000Z" in starts  # Friday before the switch
    assert "2026-03-30T16:00:00.000Z" in starts  # Monday after: 18:00 CEST
    assert all(o["scheduledEnd"][11:16] in ("17:20", "16:20") for o in occs)
    assert len(set(o["id"] for o in occs)) == 39
    wire.check_plan(plan)
    for occ in occs:
        wire.check_occurrence(occ)
        assert occ["planId"] == plan["id"] and occ["status"] == "scheduled"
        assert occ["recurrenceKey"] == "RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,WE,FR|DTSTART:2026-03-02T17:00:00.000Z"


def test_exact_rrule_beyond_the_wire_grammar(cli):
    plan = add(cli, "Etudes", "--rrule", "RRULE:FREQ=MONTHLY;BYDAY=2TU", "--at", "19:00", "--tz", "America/New_York")["plan"]
    assert plan["schedule"]["rule"] == "FREQ=MONTHLY;INTERVAL=1"
    assert plan["schedule"]["metadata"]["rrule"] == "FREQ=MONTHLY;BYDAY=2TU"
    assert plan["schedule"]["metadata"]["timezone"] == "America/New_York"
    wire.check_plan(plan)
    occs = cli("occurrences", "--plan", plan["id"], "--from", "2026-03-01", "--to", "2026-06-30", "--json").json["occurrences"]
    # second Tuesdays at 19:00 New York: 10 Mar (EDT since 8 Mar), 14 Apr, 12 May
    assert [o["scheduledStart"] for o in occs] == [
        "2026-03-10T23:00:00.000Z", "2026-04-14T23:00:00.000Z", "2026-05-12T23:00:00.000Z"]


def test_once_and_segments_prompts_targets(cli):
    plan = add(cli, "Lesson prep", "--once", "2026-03-06T17:00", "--segment", "Warm-up:10",
               "--segment", "Sonata:35:slowly, with metronome", "--prompt", "What went well?",
               "--target", "tempo=92", "--piece", "Clair de lune — Debussy", "--instrument", "Piano",
               "--flex", "anytime")["plan"]
    schedule = plan["schedule"]
    assert schedule["kind"] == "single" and "rule" not in schedule
    assert schedule["target"] == "2026-03-06T16:00:00.000Z"
    assert schedule["durationMinutes"] == 45  # sum of segments
    assert plan["pieceRefs"] == [{"title": "Clair de lune", "composer": "Debussy"}]
    assert plan["metadata"]["instrument"] == "piano"
    occs = cli("occurrences", "--json", "--to", "2026-03-31").json["occurrences"]
    assert len(occs) == 1
    occ = occs[0]
    wire.check_occurrence(occ)
    assert occ["scheduledEnd"] == "2026-03-06T16:45:00.000Z"
    assert [s["label"] for s in occ["segments"]] == ["Warm-up", "Sonata"]
    assert occ["segments"][1]["instructions"] == "slowly, with metronome"
    assert occ["segments"][0]["id"] == occ["id"] + "_segment_1"
    assert occ["reflectionPrompts"] == ["What went well?"]
    assert occ["targets"] == {"tempo": 92}
    assert occ["flexWindow"] == "anytime"


def test_weekly_flex_is_ours_and_kept_in_metadata(cli):
    plan = add(cli, "Sight-reading", "--every", "weekly", "--on", "sa", "--flex", "weekly")["plan"]
    assert plan["schedule"]["flexibility"] == "anytime"
    assert plan["schedule"]["metadata"]["flex"] == "weekly"
    occ = cli("occurrences", "--json").json["occurrences"][0]
    assert occ["flexWindow"] == "weekly"
    wire.check_plan(plan)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--rrule", "FREQ=FORTNIGHTLY"], "FREQ"),
        (["--rrule", "FREQ=SECONDLY"], "SECONDLY"),
        (["--rrule", "FREQ=MINUTELY"], "more than"),
        (["--rrule", "FREQ=HOURLY"], "more than"),
        (["--rrule", "FREQ=DAILY;COUNT=3;UNTIL=20260401"], "COUNT and UNTIL"),
        (["--rrule", "FREQ=DAILY;DTSTART=20260101T000000"], "DTSTART"),
        (["--every", "daily", "--tz", "Mars/Olympus_Mons"], "time zone"),
        (["--every", "daily", "--start", "2026-04-01", "--end", "2026-03-01"], "before"),
        (["--every", "daily", "--at", "25:00"], "time of day"),
        (["--every", "daily", "--start", "someday maybe never"], "--start"),
        (["--once", "2026-03-05T10:00", "--every", "daily"], "cannot be combined"),
        (["--every", "weekly", "--on", "xx"], "weekday"),
        (["--every", "daily", "--segment", "NoMinutes"], "LABEL:MINUTES"),
        (["--every", "daily", "--flex", "fixed"], "time of day"),
        ([], "say when"),
    ],
)
def test_invalid_plans_exit_65_and_write_nothing(cli, isolated_home, args, fragment):
    result = cli("plan", "add", "Bad", *args, ok=False)
    assert result.code == 65, result
    assert fragment in result.stderr
    assert result.stderr.startswith("practiceplan: error: ")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    counts = db_counts(isolated_home) if (isolated_home / "practiceplan.db").exists() else {}
    assert not any(counts.values()), counts


def test_title_with_control_characters_is_refused(cli):
    result = cli("plan", "add", "evil\x1b[31mred", "--every", "daily", ok=False)
    assert result.code == 65 and "control" in result.stderr


def test_every_change_writes_one_outbox_row_per_entity(cli, isolated_home):
    plan = add(cli, "Scales", "--every", "daily", "--at", "07:00")["plan"]
    counts = db_counts(isolated_home)
    assert counts["outbox"] == counts["practice_plans"] + counts["plan_occurrences"] == 1 + 91
    conn = sqlite3.connect(isolated_home / "practiceplan.db")
    rows = conn.execute("SELECT entity_type, op, rev FROM outbox WHERE entity_id = ?", (plan["id"],)).fetchall()
    assert rows == [("practice_plan", "upsert", 1)]
    cli("plan", "edit", plan["id"], "--title", "Scales 2")
    rows = conn.execute("SELECT entity_type, op, rev FROM outbox WHERE entity_id = ?", (plan["id"],)).fetchall()
    assert rows == [("practice_plan", "upsert", 2)]


def test_edit_regenerates_untouched_future_and_keeps_decisions(cli, set_now):
    plan = add(cli, "Scales", "--every", "daily", "--at", "18:00", "--minutes", "20")["plan"]
    occs = cli("occurrences", "--json", "--from", "2026-03-02", "--to", "2026-03-04").json["occurrences"]
    set_now("2026-03-02T17:30:00Z")  # 18:30 Berlin: check in today's session
    cli("checkin", occs[0]["id"], "--minutes", "20")
    set_now("2026-03-02T18:00:00Z")
    cli("plan", "edit", plan["id"], "--at", "07:00")
    after = cli("occurrences", "--json", "--from", "2026-03-02", "--to", "2026-03-04").json["occurrences"]
    assert after[0]["id"] == occs[0]["id"] and after[0]["status"] == "completed"
    assert after[0]["scheduledStart"] == "2026-03-02T17:00:00.000Z"  # untouched by the edit
    assert [o["scheduledStart"] for o in after[1:]] == ["2026-03-03T06:00:00.000Z", "2026-03-04T06:00:00.000Z"]
    assert {o["id"] for o in after[1:]}.isdisjoint({o["id"] for o in occs})
    # the old 18:00 sessions are tombstoned, not left behind
    assert len(cli("occurrences", "--json", "--from", "2026-03-03", "--to", "2026-03-03").json["occurrences"]) == 1


def test_edit_back_revives_the_same_ids(cli, set_now):
    plan = add(cli, "Scales", "--every", "daily", "--at", "18:00")["plan"]
    first = [o["id"] for o in cli("occurrences", "--json", "--from", "2026-03-03").json["occurrences"]]
    cli("plan", "edit", plan["id"], "--at", "07:00")
    cli("plan", "edit", plan["id"], "--at", "18:00")
    again = [o["id"] for o in cli("occurrences", "--json", "--from", "2026-03-03").json["occurrences"]]
    assert again == first


def test_deterministic_ids_are_the_same_on_two_devices(cli, tmp_path, monkeypatch):
    from practiceplan.domain.recurrence import occurrence_id

    plan = add(cli, "Scales", "--every", "daily", "--at", "18:00")["plan"]
    occ = cli("occurrences", "--json").json["occurrences"][0]
    assert occ["id"] == occurrence_id(plan["id"], "2026-03-02T18:00:00")


def test_archive_unarchive_delete(cli):
    plan = add(cli, "Scales", "--every", "daily", "--at", "18:00")["plan"]
    archived = cli("plan", "archive", plan["id"][5:11], "--json").json
    assert archived["plan"]["status"] == "archived" and archived["plan"]["archivedAt"]
    assert cli("occurrences", "--json").json["occurrences"] == []
    assert cli("plan", "list", "--json").json["plans"] == []
    assert len(cli("plan", "list", "--all", "--json").json["plans"]) == 1
    again = cli("plan", "unarchive", plan["id"], "--json").json
    assert again["plan"]["status"] == "active" and again["occurrencesChanged"] > 80
    deleted = cli("plan", "delete", plan["id"], "--yes", "--json").json  # scripts say --yes (issue 10)
    assert deleted["plan"]["deletedAt"]
    assert cli("occurrences", "--json").json["occurrences"] == []
    assert cli("plan", "show", plan["id"], ok=False).code == 3


def test_show_and_list(cli):
    plan = add(cli, "Scales", "--every", "daily", "--at", "18:00", "--technique", "legato")["plan"]
    shown = cli("plan", "show", plan["id"], "--json").json
    assert shown["plan"] == plan and len(shown["upcoming"]) == 5
    text = cli("plan", "show", plan["id"]).stdout
    assert "Scales" in text and "legato" in text and "FREQ=DAILY" in text
    listing = cli("plan", "list").stdout
    assert "Scales" in listing and plan["id"][5:11] in listing


def test_unknown_fields_survive_edits(cli, isolated_home):
    import json as _json

    plan = add(cli, "Scales", "--every", "daily", "--at", "18:00")["plan"]
    conn = sqlite3.connect(isolated_home / "practiceplan.db")
    doc = _json.loads(conn.execute("SELECT doc FROM practice_plans WHERE id = ?", (plan["id"],)).fetchone()[0])
    doc["futureField"] = {"x": [1, 2]}
    doc["schedule"]["futureScheduleField"] = "kept"
    doc["metadata"]["fromTheWebApp"] = True
    conn.execute("UPDATE practice_plans SET doc = ? WHERE id = ?", (_json.dumps(doc), plan["id"]))
    conn.commit()
    edited = cli("plan", "edit", plan["id"], "--at", "19:00", "--title", "Scales!", "--json").json["plan"]
    assert edited["futureField"] == {"x": [1, 2]}
    assert edited["schedule"]["futureScheduleField"] == "kept"
    assert edited["metadata"]["fromTheWebApp"] is True
    assert edited["schedule"]["timeOfDay"] == "19:00" and edited["title"] == "Scales!"


@pytest.mark.parametrize("args, reason", [
    (["--rrule", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"], "February has no day 30"),
    (["--rrule", "FREQ=DAILY;INTERVAL=7;BYDAY=TU"], "never land on the days or times it asks for"),
    (["--every", "weekly", "--on", "mo", "--start", "2026-03-03", "--end", "2026-03-05"], "no session falls between"),
])
def test_a_schedule_that_never_matches_is_refused(cli, isolated_home, args, reason):
    """Issue 10.8: a rule that never matches used to create a plan with no sessions."""
    result = cli("plan", "add", "Never", *args, ok=False)
    lines = result.stderr.splitlines()
    assert result.code == 65 and lines[0].startswith("practiceplan: error: this schedule never has a session: ")
    assert reason in lines[0], result
    assert lines[1].startswith("hint: ")
    if "BYMONTHDAY" in args[1]:
        assert "BYMONTHDAY=-1" in lines[1] and "--last-day" in lines[1]
    counts = db_counts(isolated_home) if (isolated_home / "practiceplan.db").exists() else {}
    assert not any(counts.values()), counts


@pytest.mark.parametrize("args", [["--every", "monthly", "--start", "2026-03-31"],
                                  ["--rrule", "FREQ=MONTHLY;BYMONTHDAY=31"]])
def test_monthly_on_the_31st_says_which_months_it_skips(cli, args):
    result = cli("plan", "add", "Recital prep", *args, "--at", "18:00")
    assert result.stderr.splitlines() == [
        "note: sessions on day 31 of the month skip months without one (February, April, June, September and "
        "November); for the last day of every month use --last-day (BYMONTHDAY=-1)"]
    out = cli("plan", "add", "Again", *args, "--json").json
    assert out["notes"] and "--last-day" in out["notes"][0]
    assert cli("plan", "add", "Weekly", "--every", "weekly", "--json").json["notes"] == []


def test_last_day_of_each_month(cli):
    plan = cli("plan", "add", "Review", "--last-day", "--at", "18:00", "--json").json["plan"]
    assert plan["schedule"]["metadata"]["rrule"] == "FREQ=MONTHLY;INTERVAL=1;BYMONTHDAY=-1"
    occs = cli("occurrences", "--json", "--plan", plan["id"], "--to", "2026-05-30").json["occurrences"]
    assert [o["scheduledStart"][:10] for o in occs] == ["2026-03-31", "2026-04-30"]  # 30 days in April: its 30th
    assert cli("plan", "add", "Also", "--every", "monthly", "--last-day", "--json").json["notes"] == []
    wrong = cli("plan", "add", "Weekly", "--every", "weekly", "--last-day", ok=False)
    assert wrong.code == 65 and "--last-day goes with --every monthly" in wrong.stderr
    edited = cli("plan", "edit", plan["id"], "--every", "monthly", "--start", "2026-04-15", "--json").json
    assert edited["plan"]["schedule"]["rule"] == "FREQ=MONTHLY;INTERVAL=1"
    again = cli("plan", "edit", plan["id"], "--last-day", "--json").json["plan"]
    assert again["schedule"]["metadata"]["rrule"].endswith("BYMONTHDAY=-1")


# ----------------------------------------------------------------------------------------- issue 10: what fought back


def test_edit_counts_each_moved_session_once(cli):
    """A 26-session plan whose time changes reports 26 moved sessions, not 52 (delete + create) "changed"."""
    plan = add(cli, "Scales", "--every", "weekly", "--on", "tu,th", "--at", "07:30")
    assert plan["occurrencesChanged"] == 26 and plan["sessions"] == {"added": 26, "moved": 0, "removed": 0, "updated": 0}
    edited = cli("plan", "edit", plan["plan"]["id"], "--at", "08:00", "--json").json
    assert edited["occurrencesChanged"] == 26 and edited["sessions"]["moved"] == 26
    text = cli("plan", "edit", plan["plan"]["id"], "--at", "08:30").stdout
    assert "(26 sessions moved)" in text and "sessions changed" not in text
    single = cli("plan", "add", "Lesson", "--once", "friday 17:00").stdout
    assert "(1 session added)" in single and "1 sessions" not in single


def test_plan_list_and_show_say_the_schedule_in_words(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    add(cli, "Scales", "--every", "weekly", "--on", "mo,we,fr", "--at", "07:30", "--tz", "Europe/Berlin")
    add(cli, "Etudes", "--rrule", "FREQ=MONTHLY;BYDAY=2TU", "--at", "19:00")
    listing = cli("plan", "list").stdout
    assert "FREQ=" not in listing and "BYDAY" not in listing
    assert "Mon, Wed, Fri at 07:30" in listing and "monthly on the 2nd Tuesday at" in listing
    shown = cli("plan", "show", "Etudes").stdout
    assert "monthly on the 2nd Tuesday at 19:00, Europe/Berlin" in shown and "FREQ=MONTHLY;BYDAY=2TU" in shown
    assert cli("plan", "list", "--json").json["plans"][0]["schedule"]["metadata"]["rrule"] == "FREQ=MONTHLY;BYDAY=2TU"


def test_plan_refs_accept_a_unique_title_prefix(cli):
    scales = add(cli, "Scales", "--every", "daily", "--at", "07:30")["plan"]
    add(cli, "Scarlatti sonata", "--every", "daily", "--at", "19:00")
    assert cli("plan", "show", "scales", "--json").json["plan"]["id"] == scales["id"]
    assert cli("plan", "show", "Scal", "--json").json["plan"]["id"] == scales["id"]
    ambiguous = cli("plan", "show", "Sca", ok=False)
    assert ambiguous.code == 3 and "'Sca' is ambiguous" in ambiguous.stderr and "Scarlatti" in ambiguous.stderr
    occs = cli("occurrences", "--plan", "scarl", "--json").json["occurrences"]
    assert occs and all(o["planId"] != scales["id"] for o in occs)
    assert cli("calendar", "--plan", "Scales", "--json").code == 0
    missing = cli("stats", "--plan", "Arpeggios", ok=False)
    assert missing.code == 3 and "no plan matches 'Arpeggios' (as an id or the start of a title)" in missing.stderr


def test_edit_dry_run_shows_what_would_change_and_writes_nothing(cli, isolated_home):
    plan = add(cli, "Scales", "--every", "weekly", "--on", "mo,we,fr", "--at", "07:30")["plan"]
    before = db_counts(isolated_home)
    result = cli("plan", "edit", "Scales", "--on", "tu,th", "--every", "weekly", "--minutes", "45", "--dry-run")
    assert result.stdout.startswith(f'Would update plan {plan["id"][5:11]} "Scales" (26 sessions moved, 12 removed)')
    assert "schedule: Mon, Wed, Fri at 07:30, Europe/Berlin → Tue, Thu at 07:30, Europe/Berlin" in result.stdout
    assert "minutes: 30 → 45" in result.stdout and "nothing was written" in result.stdout
    assert db_counts(isolated_home) == before
    data = cli("plan", "edit", "Scales", "--at", "09:00", "--dry-run", "--json").json
    assert data["dryRun"] is True and data["plan"]["schedule"]["timeOfDay"] == "09:00"
    assert cli("plan", "show", "Scales", "--json").json["plan"]["schedule"]["timeOfDay"] == "07:30"


def test_delete_asks_on_a_terminal_and_needs_yes_in_scripts(cli, monkeypatch, isolated_home):
    plan = add(cli, "Scales", "--every", "daily", "--at", "07:30")["plan"]
    refused = cli("plan", "delete", "Scales", ok=False)
    assert refused.code == 2 and "--yes" in refused.stderr
    dry = cli("plan", "delete", "Scales", "--dry-run")
    assert "Would delete plan" in dry.stdout and "(91 sessions removed)" in dry.stdout
    assert cli("plan", "show", plan["id"]).code == 0
    monkeypatch.setattr("practiceplan.cli.plans.stdin_is_tty", lambda: True)
    declined = cli("plan", "delete", "Scales", input="n\n")
    assert "Delete plan" in declined.stderr and "and its 91 sessions?" in declined.stderr
    assert "Nothing deleted." in declined.stderr
    assert cli("plan", "show", plan["id"]).code == 0
    accepted = cli("plan", "delete", "Scales", input="y\n")
    assert "Deleted plan" in accepted.stdout and "practiceplan plan restore" in accepted.stderr
    assert cli("plan", "show", plan["id"], ok=False).code == 3


def test_restore_brings_back_a_deleted_plan_and_its_sessions(cli, set_now):
    plan = add(cli, "Scales", "--every", "daily", "--at", "07:30")["plan"]
    first = cli("occurrences", "--json").json["occurrences"][0]
    set_now("2026-03-03T09:00:00Z")
    cli("checkin", first["id"], "--minutes", "20")
    cli("plan", "delete", "Scales", "--yes")
    assert cli("occurrences", "--json").json["occurrences"] == []
    assert [p["id"] for p in cli("plan", "list", "--deleted", "--json").json["plans"]] == [plan["id"]]
    set_now("2026-03-04T09:00:00Z")
    restored = cli("plan", "restore", "scales", "--json").json
    assert restored["plan"]["id"] == plan["id"] and "deletedAt" not in restored["plan"]
    occs = cli("occurrences", "--from", "2026-03-02", "--json").json["occurrences"]
    assert occs[0]["id"] == first["id"] and occs[0]["status"] == "completed"
    assert cli("plan", "restore", "scales", ok=False).code == 3  # nothing deleted is left
