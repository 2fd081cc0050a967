"""skip / unskip / reschedule / defer / cascades through the CLI, history, and plan edits keeping decisions."""

from __future__ import annotations

import sqlite3

import pytest

from tests import wire


@pytest.fixture
def daily(cli):
    """Daily 18:00 Berlin plan (20 min) from Mon 2 March 2026; now is Mon 2 March 10:00 Berlin."""
    plan = cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--minutes", "20", "--json").json["plan"]
    occs = cli("occurrences", "--json", "--from", "2026-03-02", "--to", "2026-03-15").json["occurrences"]
    return plan, occs


def occ_by_id(cli, occ_id):
    return cli("occurrences", "--history", occ_id, "--json").json["occurrence"]


def outbox_count(home, occ_id):
    conn = sqlite3.connect(home / "practiceplan.db")
    try:
        return conn.execute("SELECT rev FROM outbox WHERE entity_id = ?", (occ_id,)).fetchone()[0]
    finally:
        conn.close()


def test_skip_unskip_and_history(cli, daily, isolated_home):
    _, occs = daily
    occ = occs[2]
    out = cli("skip", occ["id"][9:16], "--reason", "travelling", "--json").json
    assert out["action"] == "skip" and out["dryRun"] is False and out["changed"] == 1
    skipped = out["moves"][0]["occurrence"]
    wire.check_occurrence(skipped)
    assert skipped["status"] == "skipped" and skipped["id"] == occ["id"]
    assert outbox_count(isolated_home, occ["id"]) == 2  # created, then skipped: the outbox row followed
    text = cli("occurrences", "--history", occ["id"]).stdout
    assert "Skipped on 2 Mar: travelling" in text
    hist = cli("occurrences", "--history", occ["id"], "--json").json
    assert [h["text"] for h in hist["history"]] == ["Skipped on 2 Mar: travelling"]
    assert hist["history"][0]["action"] == "skip" and hist["history"][0]["reason"] == "travelling"
    again = cli("skip", occ["id"], ok=False)
    assert again.code == 65 and "already skipped" in again.stderr and "hint:" in again.stderr
    back = cli("unskip", occ["id"], "--json").json["moves"][0]["occurrence"]
    assert back["status"] == "scheduled"
    assert [h["action"] for h in back["metrics"]["history"]] == ["skip", "unskip"]
    # skipped is excused: it is not counted as missed (analytics) and the table shows the change
    cli("skip", occs[0]["id"])
    assert "scheduled → skipped" in cli("skip", occs[1]["id"], "--dry-run").stdout


def test_skip_is_excused_in_stats(cli, daily, set_now):
    _, occs = daily
    cli("skip", occs[0]["id"], "--reason", "ill")
    set_now("2026-03-03T12:00:00Z")
    overall = cli("stats", "--json").json["overall"]
    assert (overall["completed"], overall["missed"], overall["skipped"]) == (0, 0, 1)


def test_unknown_and_bad_input(cli, daily):
    _, occs = daily
    assert cli("skip", "zzzzzzzz", ok=False).code == 3
    assert cli("reschedule", "zzzzzzzz", "--to", "tomorrow", ok=False).code == 3
    bad = cli("reschedule", occs[1]["id"], "--to", "the day after never", ok=False)
    assert bad.code == 65 and bad.stderr.startswith("practiceplan: error: ") and "hint:" in bad.stderr
    assert len(bad.stderr.splitlines()) == 2
    assert cli("reschedule", occs[1]["id"], ok=False).code == 2  # --to missing: a usage error (issue 10.13)
    past = cli("reschedule", occs[1]["id"], "--to", "2026-02-20T18:00", ok=False)
    assert past.code == 65 and "into the past" in past.stderr
    assert cli("reschedule", occs[1]["id"], "--cascade", "sideways", "--to", "friday", ok=False).code == 65
    assert cli("reschedule", occs[1]["id"], "spread", ok=False).code == 65  # needs --cascade
    assert cli("reschedule", occs[1]["id"], "--cascade", "spread", "--cap", "lots", ok=False).code == 65
    assert cli("reschedule", occs[1]["id"], "--to", "friday", "--cap", "45m", ok=False).code == 65
    assert cli("skip", occs[1]["id"], "--reason", "bad\x1b[31m", ok=False).code == 65


def test_reschedule_keeps_id_and_records_the_move(cli, daily, isolated_home):
    _, occs = daily
    occ = occs[1]  # Tue 3 March 18:00
    dry = cli("reschedule", occ["id"], "--to", "2026-03-04T07:30", "--dry-run")
    assert "Tue 03 Mar 2026 18:00" in dry.stdout and "Wed 04 Mar 2026 07:30" in dry.stdout
    assert "Dry run" in dry.stderr and "nothing was written" in dry.stderr
    assert occ_by_id(cli, occ["id"]) == occ  # nothing changed
    assert outbox_count(isolated_home, occ["id"]) == 1
    out = cli("reschedule", occ["id"], "--to", "2026-03-04T07:30", "--reason", "lesson", "--json").json
    moved = out["moves"][0]["occurrence"]
    wire.check_occurrence(moved)
    assert moved["id"] == occ["id"] and moved["status"] == "scheduled"
    assert moved["scheduledStart"] == "2026-03-04T06:30:00.000Z" and moved["scheduledEnd"] == "2026-03-04T06:50:00.000Z"
    assert moved["metrics"]["originalStart"] == "2026-03-03T17:00:00.000Z"
    record = moved["metrics"]["history"][-1]
    assert record == {"at": "2026-03-02T09:00:00.000Z", "action": "reschedule", "from": "2026-03-03T17:00:00.000Z",
                      "to": "2026-03-04T06:30:00.000Z", "reason": "lesson"}
    assert out["warnings"] == ["Wed 04 Mar now has 2 sessions of 'Scales'"]
    # a bare day keeps the session's time; the first originalStart is kept
    again = cli("reschedule", occ["id"], "--to", "2026-03-06", "--json").json["moves"][0]["occurrence"]
    assert again["scheduledStart"] == "2026-03-06T06:30:00.000Z"
    assert again["metrics"]["originalStart"] == "2026-03-03T17:00:00.000Z"
    assert "Rescheduled on 2 Mar from Tue 03 Mar 18:00 to Wed 04 Mar 07:30: lesson" in \
        cli("occurrences", "--history", occ["id"]).stdout
    # nothing duplicated: still one occurrence per id and 14 in the fortnight
    listed = cli("occurrences", "--json", "--from", "2026-03-02", "--to", "2026-03-15").json["occurrences"]
    assert len(listed) == 14 and len({o["id"] for o in listed}) == 14


def test_keep_duration(cli, daily):
    plan, occs = daily
    cli("plan", "edit", plan["id"], "--minutes", "40")
    occ = occ_by_id(cli, occs[1]["id"])
    assert occ["scheduledEnd"] == "2026-03-03T17:40:00.000Z"  # regenerated: untouched
    first = cli("reschedule", occ["id"], "--to", "2026-03-04T10:00", "--keep-duration", "--json").json
    assert first["moves"][0]["occurrence"]["scheduledEnd"] == "2026-03-04T09:40:00.000Z"
    cli("plan", "edit", plan["id"], "--minutes", "25")
    plain = cli("reschedule", occ["id"], "--to", "2026-03-04T11:00", "--json").json["moves"][0]["occurrence"]
    assert plain["scheduledEnd"] == "2026-03-04T10:25:00.000Z"  # the plan's current length
    kept = cli("reschedule", occ["id"], "--to", "2026-03-04T12:00", "--keep-duration", "--json").json
    assert kept["moves"][0]["occurrence"]["scheduledEnd"] == "2026-03-04T11:25:00.000Z"


def test_cascade_shift_is_one_transaction_and_skips_touched(cli, daily, isolated_home):
    _, occs = daily
    cli("checkin", occs[4]["id"])  # Fri 6 March completed
    cli("skip", occs[5]["id"])  # Sat 7 skipped
    before = cli("occurrences", "--json", "--from", "2026-03-02", "--to", "2026-06-30").json["occurrences"]
    dry = cli("reschedule", occs[2]["id"], "--to", "2026-03-05T18:30", "--cascade", "--dry-run", "--json").json
    assert dry["dryRun"] is True and dry["changed"] == 0
    ids = [m["id"] for m in dry["moves"]]
    assert ids[0] == occs[2]["id"] and occs[4]["id"] not in ids and occs[5]["id"] not in ids
    assert occs[0]["id"] not in ids and occs[1]["id"] not in ids
    untouched_later = [o["id"] for o in before if o["scheduledStart"] > occs[2]["scheduledStart"]
                       and o["id"] not in (occs[4]["id"], occs[5]["id"])]
    assert ids[1:] == untouched_later
    assert cli("occurrences", "--json", "--from", "2026-03-02", "--to", "2026-06-30").json["occurrences"] == before
    # the same, for real: every moved session is shifted by +1 day 30 min (wall clock)
    out = cli("reschedule", occs[2]["id"], "--to", "2026-03-05T18:30", "--cascade", "--json").json
    assert [m["id"] for m in out["moves"]] == ids and out["changed"] == len(ids)
    for move in out["moves"]:
        wire.check_occurrence(move["occurrence"])
        assert move["occurrence"]["scheduledStart"][11:16] in ("17:30", "16:30")  # 18:30 CET / CEST
        assert move["occurrence"]["metrics"]["history"][-1]["via"] == "shift"
    # one outbox row per moved session, written by that transaction
    conn = sqlite3.connect(isolated_home / "practiceplan.db")
    seqs = [r[0] for r in conn.execute(
        f"SELECT seq FROM outbox WHERE entity_id IN ({','.join('?' * len(ids))})", ids)]
    conn.close()
    assert len(seqs) == len(ids)
    after = cli("occurrences", "--json", "--from", "2026-03-02", "--to", "2026-07-31").json["occurrences"]
    assert len({o["id"] for o in after}) == len(after)


def test_cascade_is_all_or_nothing(cli, daily, isolated_home, monkeypatch):
    _, occs = daily
    from practiceplan.store.repo import Store

    real = Store.save_many
    calls = []

    def failing(self, kind, docs, changed_at):
        docs = list(docs)
        calls.append(len(docs))
        real(self, kind, docs[:3], changed_at)  # part of the write happens ...
        raise RuntimeError("disk on fire")  # ... then the transaction fails

    before = cli("occurrences", "--json", "--from", "2026-03-02", "--to", "2026-06-30").json["occurrences"]
    monkeypatch.setattr(Store, "save_many", failing)
    failed = cli("reschedule", occs[2]["id"], "--to", "2026-03-05T18:30", "--cascade", ok=False)
    assert failed.code == 1 and "internal error: RuntimeError: disk on fire" in failed.stderr
    monkeypatch.setattr(Store, "save_many", real)
    assert calls and calls[0] > 3
    assert cli("occurrences", "--json", "--from", "2026-03-02", "--to", "2026-06-30").json["occurrences"] == before


def test_defer_to_the_plans_next_free_day(cli):
    cli("plan", "add", "Etudes", "--every", "weekly", "--on", "mo,tu,th", "--at", "19:00", "--minutes", "30")
    occs = cli("occurrences", "--json", "--from", "2026-03-02", "--to", "2026-03-08").json["occurrences"]
    assert [o["scheduledStart"][:10] for o in occs] == ["2026-03-02", "2026-03-03", "2026-03-05"]
    out = cli("defer", occs[0]["id"], "--reason", "concert", "--json").json
    moved = out["moves"][0]["occurrence"]
    assert moved["scheduledStart"] == "2026-03-04T18:00:00.000Z"  # Tue is taken: Wed 19:00
    assert moved["metrics"]["history"][-1]["via"] == "defer"
    assert moved["metrics"]["history"][-1]["reason"] == "concert"
    again = cli("defer", occs[0]["id"], "--json").json["moves"][0]["occurrence"]
    assert again["scheduledStart"] == "2026-03-06T18:00:00.000Z"  # Thu taken: Fri
    daily_plan = cli("plan", "add", "Daily", "--every", "daily", "--at", "08:00", "--json").json["plan"]
    first = cli("occurrences", "--json", "--plan", daily_plan["id"]).json["occurrences"][0]
    full = cli("defer", first["id"], ok=False)
    assert full.code == 65 and "no free day" in full.stderr  # beyond the horizon too: the rule is expanded


def test_spread_cascade_through_cli(cli, set_now):
    cli("config", "set", "daily_capacity", "60")
    # --backfill: the sessions before the plans were made (today) count, so the past ones are missed
    cli("plan", "add", "Scales", "--every", "weekly", "--on", "mo,we,fr", "--at", "18:00", "--minutes", "30",
        "--start", "2026-02-23", "--backfill")
    cli("plan", "add", "Etudes", "--every", "weekly", "--on", "th,sa", "--at", "19:00", "--minutes", "45",
        "--start", "2026-02-23", "--backfill")
    set_now("2026-03-03T09:00:00Z")  # Tue 3 March: Scales 25, 27 Feb and 2 Mar were missed
    occs = cli("occurrences", "--json", "--from", "2026-02-23", "--to", "2026-03-03").json["occurrences"]
    scales = [o for o in occs if o["scheduledStart"][11:13] == "17"]
    assert len(scales) == 4
    cli("checkin", scales[0]["id"])  # 23 Feb done late: not missed
    out = cli("reschedule", scales[1]["id"], "--cascade", "spread", "--cap", "60m", "--json").json
    # Tue 3 free -> 25 Feb goes there; Wed 4 has Scales; Thu 5 Etudes 45+30 > 60; Fri has Scales; Sat Etudes;
    # Sun 8 free; Mon has Scales; Tue 10 free
    assert [(m["from"][:10], m["to"]) for m in out["moves"]] == [
        ("2026-02-25", "2026-03-03T17:00:00.000Z"),
        ("2026-02-27", "2026-03-08T17:00:00.000Z"),
        ("2026-03-02", "2026-03-10T17:00:00.000Z"),
    ]
    for move in out["moves"]:
        wire.check_occurrence(move["occurrence"])
        assert move["occurrence"]["metrics"]["originalStart"] == move["from"]
    # nothing else is missed now; with a larger cap the named session alone goes to the first day with room
    wider = cli("reschedule", scales[2]["id"], "--cascade", "spread", "--cap", "90", "--dry-run", "--json").json
    assert [(m["id"], m["to"]) for m in wider["moves"]] == [(scales[2]["id"], "2026-03-05T17:00:00.000Z")]
    tight = cli("reschedule", scales[2]["id"], "--cascade", "spread", "--cap", "20", ok=False)
    assert tight.code == 65 and "cannot fit" in tight.stderr and "--cap" in tight.stderr


def test_messages_speak_local_time_not_utc(cli):
    """Issue 10.11: typing 19:00 local for a session already at 19:00 says so in local time, never as UTC."""
    cli("plan", "add", "Etudes", "--every", "daily", "--at", "19:00")
    occ = cli("occurrences", "--json", "--from", "2026-03-03", "--to", "2026-03-03").json["occurrences"][0]
    for extra in ([], ["--cascade"]):
        result = cli("reschedule", occ["id"], "--to", "2026-03-03T19:00", *extra, ok=False)
        assert result.code == 65 and "already at Tue 03 Mar 2026 19:00" in result.stderr, result
        assert "T18:00" not in result.stderr and "Z" not in result.stderr.split("\n")[0]
    past = cli("reschedule", occ["id"], "--to", "2026-03-01T19:00", ok=False)
    assert "(Sun 01 Mar 2026 19:00)" in past.stderr


def test_events_list_times_in_your_zone(cli):
    cli("template", "create", "--title", "Scales", "--every", "daily", "--at", "18:00")  # a change: an event
    line = cli("events").stdout.splitlines()[0]
    assert line.startswith("2026-03-02 10:00  template.create")  # 09:00Z is 10:00 in Berlin
