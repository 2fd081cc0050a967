"""Plan edits keep decisions; the calendar grid; suggestions (deterministic, applicable); today's top suggestion."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from practiceplan.domain import occurrences as occ_mod
from practiceplan.domain import recurrence as rec
from practiceplan.domain import schedule as sch
from practiceplan.domain.models import parse_instant
from practiceplan.domain.plans import PlanInput, apply_input
from tests import wire

UTC = timezone.utc
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
FLOOR = datetime(1970, 1, 1, tzinfo=UTC)


# --------------------------------------------------------------------------- regeneration keeps decisions


def _plan(**kwargs):
    base = dict(title="Scales", every="daily", at=time(18, 0), minutes=20, start=date(2026, 3, 2))
    base.update(kwargs)
    return base


def test_recurrence_change_keeps_moved_and_skipped_and_never_recreates_their_slots():
    plan = apply_input(None, PlanInput(**_plan()), now=NOW, default_zone="Europe/Berlin")
    end = NOW + timedelta(days=30)
    occs = occ_mod.reconcile(plan, [], "Europe/Berlin", FLOOR, end, NOW)
    by_day = {o["scheduledStart"][:10]: o for o in occs}
    moved = sch.move(by_day["2026-03-04"], parse_instant("2026-03-07T09:00:00Z"), now=NOW, zone=BERLIN,
                     reason="lesson")  # Wed -> Sat
    skipped = sch.skip(by_day["2026-03-06"], now=NOW, reason="concert")  # Fri
    existing = [moved if o["id"] == moved["id"] else skipped if o["id"] == skipped["id"] else o for o in occs]
    # the original slot's id is the moved occurrence's own id: regeneration finds it by id, touched
    slot = next(s for s in rec.expand(occ_mod.plan_recurrence(plan, "Europe/Berlin"), NOW, end)
                if s.start.isoformat().startswith("2026-03-04"))
    assert rec.occurrence_id(plan["id"], slot.key) == moved["id"]
    # edit: Mon/Wed/Fri only, 25 minutes
    edited = apply_input(plan, PlanInput(every="weekly", on=["mo,we,fr"], minutes=25), now=NOW, default_zone="Europe/Berlin")
    changes = occ_mod.reconcile(edited, existing, "Europe/Berlin", NOW, end, NOW)
    changed = {c["id"]: c for c in changes}
    assert moved["id"] not in changed and skipped["id"] not in changed  # never rewritten
    final = {o["id"]: o for o in existing} | changed
    live = [o for o in final.values() if not o.get("deletedAt")]
    assert len({o["id"] for o in live}) == len(live)
    starts = [o["scheduledStart"] for o in live]
    assert starts.count("2026-03-04T17:00:00.000Z") == 0  # the moved session's original slot is not re-created
    assert starts.count("2026-03-07T09:00:00.000Z") == 1  # the moved one is where the user put it
    assert final[skipped["id"]]["status"] == "skipped" and final[moved["id"]]["metrics"]["originalStart"] == \
        "2026-03-04T17:00:00.000Z"
    # untouched future slots follow the new rule: Tue/Thu gone, Mon/Wed/Fri with 25 minutes
    untouched = [o for o in live if o["id"] not in (moved["id"], skipped["id"]) and o["scheduledStart"] >= "2026-03-02T10"]
    assert untouched and all(parse_instant(o["scheduledStart"]).weekday() in (0, 2, 4) for o in untouched)
    assert all(o["scheduledEnd"][14:16] == "25" for o in untouched)
    for occ in changes:
        wire.check_occurrence(occ)


def test_time_change_does_not_create_a_slot_where_a_moved_session_sits():
    plan = apply_input(None, PlanInput(**_plan()), now=NOW, default_zone="Europe/Berlin")
    end = NOW + timedelta(days=20)
    occs = occ_mod.reconcile(plan, [], "Europe/Berlin", FLOOR, end, NOW)
    target = occs[3]  # Thu 5 March 18:00
    moved = sch.move(target, parse_instant("2026-03-06T18:00:00Z"), now=NOW, zone=BERLIN)  # Fri 6 March 19:00 Berlin
    existing = [moved if o["id"] == moved["id"] else o for o in occs]
    edited = apply_input(plan, PlanInput(at=time(19, 0)), now=NOW, default_zone="Europe/Berlin")
    changes = occ_mod.reconcile(edited, existing, "Europe/Berlin", NOW, end, NOW)
    final = {o["id"]: o for o in existing} | {c["id"]: c for c in changes}
    live = [o for o in final.values() if not o.get("deletedAt")]
    at_fri_19 = [o for o in live if o["scheduledStart"] == "2026-03-06T18:00:00.000Z"]
    assert [o["id"] for o in at_fri_19] == [moved["id"]]  # the new 19:00 slot is blocked by the moved one
    assert sum(1 for o in live if o["scheduledStart"].startswith("2026-03-07T18:00")) == 1


def test_plan_edit_through_the_cli_keeps_decisions(cli):
    plan = cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--minutes", "20", "--json").json["plan"]
    occs = cli("occurrences", "--json", "--from", "2026-03-02", "--to", "2026-03-15").json["occurrences"]
    cli("reschedule", occs[2]["id"], "--to", "2026-03-07T10:00")  # Wed -> Sat morning
    cli("skip", occs[4]["id"], "--reason", "concert")  # Fri
    cli("plan", "edit", plan["id"], "--every", "weekly", "--on", "mo,we,fr")
    after = cli("occurrences", "--json", "--from", "2026-03-02", "--to", "2026-03-15").json["occurrences"]
    by_id = {o["id"]: o for o in after}
    assert by_id[occs[2]["id"]]["scheduledStart"] == "2026-03-07T09:00:00.000Z"
    assert by_id[occs[4]["id"]]["status"] == "skipped"
    starts = [o["scheduledStart"] for o in after]
    assert "2026-03-04T17:00:00.000Z" not in starts  # Wed's original slot stays empty (it was moved)
    assert len(set(by_id)) == len(after)
    weekdays = sorted({parse_instant(o["scheduledStart"]).weekday() for o in after if o["id"] not in
                       (occs[2]["id"], occs[4]["id"])})
    assert weekdays == [0, 2, 4]


# --------------------------------------------------------------------------- calendar


def test_calendar_cells(cli, set_now):
    cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--minutes", "20", "--start", "2026-03-02")
    occs = cli("occurrences", "--json", "--from", "2026-03-02", "--to", "2026-03-08").json["occurrences"]
    set_now("2026-03-03T12:00:00Z")
    cli("skip", occs[0]["id"], "--reason", "ill")
    set_now("2026-03-04T17:10:00Z")
    cli("checkin", occs[2]["id"])
    set_now("2026-03-05T09:00:00Z")  # Thu: Tue 3 missed, Mon skipped, Wed done
    cli("reschedule", occs[3]["id"], "--to", "2026-03-07T09:30")  # Thu -> Sat 09:30
    data = cli("calendar", "--weeks", "2", "--from", "2026-03-02", "--json").json
    assert data["from"] == "2026-03-02" and data["to"] == "2026-03-15" and data["today"] == "2026-03-05"
    days = {cell["date"]: cell for week in data["weeks"] for cell in week["days"]}
    assert len(days) == 14 and [w["weekStart"] for w in data["weeks"]] == ["2026-03-02", "2026-03-09"]
    state = lambda d: [(s["localTime"], s["state"]) for s in days[d]["sessions"]]  # noqa: E731
    assert state("2026-03-02") == [("18:00", "skipped")]
    assert state("2026-03-03") == [("18:00", "missed")]
    assert state("2026-03-04") == [("18:00", "done")]
    assert state("2026-03-05") == []
    assert state("2026-03-07") == [("09:30", "moved"), ("18:00", "due")]
    moved = days["2026-03-07"]["sessions"][0]
    assert moved["originalStart"] == "2026-03-05T17:00:00.000Z" and moved["originalLocal"] == "Thu 05 Mar 18:00"
    assert days["2026-03-05"]["movedAway"][0]["toLocal"] == "Sat 07 Mar 09:30"
    assert data["counts"] == {"done": 1, "due": 10, "missed": 1, "skipped": 1, "moved": 1, "before-plan": 0}
    text = cli("calendar", "--weeks", "2", "--from", "2026-03-02").stdout
    assert "Week of 02 Mar 2026" in text and "[Thu 05]" in text and "from Thu 05" in text
    assert "✗ missed (1)" in text and "\x1b[" not in text
    only = cli("calendar", "--plan", "nosuch", ok=False)
    assert only.code == 3


# --------------------------------------------------------------------------- suggestions


@pytest.fixture
def busy(cli, set_now):
    """Capacity 60; Scales Mon/Wed/Fri 18:00 (30 min), Etudes daily 19:00 (45 min); now Wed 4 March 10:00."""
    cli("config", "set", "daily_capacity", "90")
    cli("config", "set", "weekday_capacity", "we=60")
    cli("plan", "add", "Scales", "--every", "weekly", "--on", "mo,we,fr", "--at", "18:00", "--minutes", "30",
        "--start", "2026-02-23", "--backfill")  # its sessions before today count: three are missed
    cli("plan", "add", "Etudes", "--every", "daily", "--at", "19:00", "--minutes", "45", "--start", "2026-03-01")
    set_now("2026-03-04T09:00:00Z")


def test_suggestions_are_concrete_deterministic_and_applicable(cli, busy):
    first = cli("suggest", "--json").json
    assert cli("suggest", "--json").json == first  # same data, same suggestions
    items = first["suggestions"]
    assert [i["kind"] for i in items] == ["overload", "catch-up"]
    over, catch = items
    assert over["number"] == 1 and over["message"] == (
        "Today (Wed 04 Mar) is 15 min over capacity: move 'Scales' (30 min) to Tomorrow 05 Mar 18:00?")
    assert over["to"] == "2026-03-05T17:00:00.000Z" and over["args"][0] == "reschedule"
    assert over["command"] == f"practiceplan reschedule {over['args'][1]} --to 2026-03-05T18:00"
    # each suggestion fixes the current plan on its own (after applying one, `suggest` recomputes the rest)
    assert catch["message"] == ("3 sessions of 'Scales' missed in the last 7 days: spread them over Thu–Sun "
                                "(Thu 05 Mar, Sat 07 Mar, Sun 08 Mar)?")
    assert catch["command"].endswith("--cascade spread")
    assert [m["to"] for m in catch["moves"]] == ["2026-03-05T17:00:00.000Z", "2026-03-07T17:00:00.000Z",
                                                  "2026-03-08T17:00:00.000Z"]
    # the catch-up's ready-to-run command computes exactly the suggested moves
    ran = cli(*catch["args"], "--dry-run", "--json").json
    assert [(m["id"], m["to"]) for m in ran["moves"]] == [(m["id"], m["to"]) for m in catch["moves"]]
    text = cli("suggest").stdout
    assert "1. Today (Wed 04 Mar) is 15 min over capacity" in text and over["command"] in text
    # apply 1: the session moves, then the suggestion is gone
    applied = cli("suggest", "--apply", "1", "--json").json
    assert applied["suggestion"]["number"] == 1 and applied["changed"] == 1
    occ = applied["moves"][0]["occurrence"]
    wire.check_occurrence(occ)
    assert occ["scheduledStart"] == "2026-03-05T17:00:00.000Z"
    assert occ["metrics"]["history"][-1]["via"] == "suggest"
    assert occ["metrics"]["history"][-1]["reason"] == "suggestion: overload"
    rest = cli("suggest", "--json").json["suggestions"]
    assert [i["kind"] for i in rest] == ["catch-up"]  # Thu is now taken by Scales: Sat, Sun, Tue
    assert [m["to"][:10] for m in rest[0]["moves"]] == ["2026-03-07", "2026-03-08", "2026-03-10"]
    missing = cli("suggest", "--apply", "5", ok=False)
    assert missing.code == 65 and "no suggestion 5" in missing.stderr


def test_today_shows_the_top_suggestion(cli, busy):
    view = cli("today", "--json").json
    top = cli("suggest", "--json").json["suggestions"][0]
    assert view["suggestion"] == top
    text = cli("today").stdout
    assert "Suggestion: Today (Wed 04 Mar) is 15 min over capacity" in text and top["command"] in text


def test_today_without_suggestions(cli):
    assert cli("today", "--json").json["suggestion"] is None
    assert "Suggestion" not in cli("today").stdout
    assert cli("suggest").stdout.startswith("No suggestions")


def test_better_time_suggestion_from_completion_rates(cli, set_now):
    """Friday evenings are usually missed, the Fridays moved to Saturday morning were done: suggest moving the
    next Friday session to Saturday morning."""
    cli("config", "set", "daily_capacity", "120")
    plan = cli("plan", "add", "Etudes", "--every", "weekly", "--on", "fr", "--at", "19:00", "--minutes", "30",
               "--start", "2026-01-02", "--backfill", "--json").json["plan"]
    occs = cli("occurrences", "--json", "--plan", plan["id"], "--from", "2026-01-01", "--to", "2026-03-01").json[
        "occurrences"]
    assert len(occs) == 9
    for index, occ in enumerate(occs):  # every other Friday moved to Saturday 10:00 and done; the rest missed
        if index % 2:
            continue
        start = parse_instant(occ["scheduledStart"])
        saturday = (start + timedelta(days=1)).strftime("%Y-%m-%d")
        set_now("2026-01-01T00:00:00Z")
        cli("reschedule", occ["id"], "--to", f"{saturday}T10:00")
        set_now(f"{saturday}T10:30:00Z")
        cli("checkin", occ["id"])
    set_now("2026-03-04T09:00:00Z")  # Wednesday; the next Friday is 6 March
    items = cli("suggest", "--json").json["suggestions"]
    assert [i["kind"] for i in items] == ["better-time"]
    item = items[0]
    # Beta posteriors with the overall rate (6/11) as a 4-session prior: Fri evening 0 of 4, Sat morning 5 of 5
    assert item["details"] == {"currentRate": 0.273, "newRate": 0.798, "evidence": "plan"}
    assert item["message"] == ("you complete 27 % of 'Etudes' sessions on Friday evenings: move Fri 06 Mar 19:00 "
                               "to Saturday morning (Sat 07 Mar 09:00), where you complete 80 %?")
    assert item["to"] == "2026-03-07T08:00:00.000Z"
    assert item["command"].endswith("--to 2026-03-07T09:00")
    assert cli("suggest", "--json").json["suggestions"] == items


def test_suggestions_and_forecast_agree_that_done_is_not_load(cli, set_now):
    """Issue 10.2: Friday's 45-minute session is checked in; 'Scales' (20 min) is left. Forecast says Friday is
    within its 60 minutes, and so must the suggestions (no "5 min over capacity: move 'Scales'")."""
    cli("config", "set", "daily_capacity", "60")
    sonata = cli("plan", "add", "Sonata", "--every", "weekly", "--on", "fr", "--at", "08:00", "--minutes", "45",
                 "--json").json["plan"]
    cli("plan", "add", "Scales", "--every", "weekly", "--on", "fr", "--at", "18:00", "--minutes", "20")
    friday = cli("occurrences", "--json", "--plan", sonata["id"], "--from", "2026-03-06", "--to", "2026-03-06").json
    set_now("2026-03-06T08:50:00Z")  # Friday 09:50 Berlin
    cli("checkin", friday["occurrences"][0]["id"])
    day = cli("forecast", "--days", "1", "--json").json["days"][0]
    assert (day["date"], day["minutes"], day["overload"]) == ("2026-03-06", 20, False)
    suggestions = cli("suggest", "--json").json["suggestions"]
    assert not [s for s in suggestions if s["kind"] == "overload"], suggestions
