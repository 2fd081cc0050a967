"""stats, forecast, events, the today summary, adherence-dip events and hook, SVG export."""

from __future__ import annotations

import json
import sys

import pytest


@pytest.fixture
def history(cli, set_now):
    """Daily 18:00 Berlin plan from Mon 23 Feb 2026; Feb 23-27 completed except 25 (missed), 26 skipped later."""
    cli("config", "set", "daily_capacity", "20")
    set_now("2026-02-22T19:00:00Z")  # the plan is made the evening before its first session (Sunday 20:00)
    plan = cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--minutes", "30",
               "--start", "2026-02-23", "--json").json["plan"]
    occs = cli("occurrences", "--json", "--from", "2026-02-23", "--to", "2026-03-08").json["occurrences"]
    for index in (0, 1, 3, 4):
        set_now(occs[index]["scheduledStart"].replace(".000Z", "Z"))
        cli("checkin", occs[index]["id"], "--minutes", "25")
    set_now("2026-03-02T09:00:00Z")  # Monday 10:00
    cli("log", "add", "--minutes", "15", "--when", "2026-02-28T10:00")  # logged afterwards (not from the future)
    return plan, occs


def test_stats_json(cli, history):
    plan, _ = history
    data = cli("stats", "--json").json
    overall = data["overall"]
    # Feb 23..Mar 1: 4 completed, 3 missed (25 Feb, 28 Feb, 1 Mar); today's 18:00 is open
    assert (overall["completed"], overall["missed"], overall["skipped"]) == (4, 3, 0)
    assert overall["adherence"] == 57.1 and overall["percent"] == 57
    assert overall["thisWeek"]["completed"] == 0 and overall["thisWeek"]["missed"] == 0
    assert overall["currentStreak"] == 0 and overall["longestStreak"] == 2
    assert overall["missedWindows"] == {"last7Days": 3, "last30Days": 3, "total": 3}
    assert data["plans"][0]["planId"] == plan["id"] and data["plans"][0]["title"] == "Scales"
    assert {k: data["plans"][0][k] for k in ("completed", "missed", "adherence")} == {"completed": 4, "missed": 3, "adherence": 57.1}
    # practice days: 23, 24, 26, 27 (check-ins at 18:00 Berlin) and 28 (free practice) -> no entry on 1 or 2 Mar
    assert data["practiceStreak"] == {"current": 0, "longest": 3}
    last_week = data["weeks"][-2]
    assert last_week["weekStart"] == "2026-02-23"
    assert (last_week["plannedMinutes"], last_week["loggedPlannedMinutes"], last_week["unplannedMinutes"],
            last_week["totalMinutes"]) == (210, 100, 15, 115)
    assert len(data["trend"]) == 12 and data["trend"][-2]["adherence"] == 57.1
    days = data["forecast"]["days"]
    assert len(days) == 7 and days[0]["date"] == "2026-03-02" and days[0]["count"] == 1
    assert all(d["overload"] and d["capacity"] == 20 for d in days)
    assert len(data["heatmap"]) == 84 and {"date": "2026-02-28", "minutes": 15, "entries": 1} in data["heatmap"]


def test_stats_range_and_plan_filter(cli, history):
    plan, _ = history
    data = cli("stats", "--plan", plan["id"][5:12], "--from", "2026-02-23", "--to", "2026-02-24", "--json").json
    assert (data["overall"]["completed"], data["overall"]["missed"]) == (2, 0)
    assert data["from"] == "2026-02-23" and len(data["plans"]) == 1
    assert cli("stats", "--from", "2026-03-05", "--to", "2026-03-01", ok=False).code == 65


def test_skip_is_excused(cli, history, isolated_home):
    """A skipped session (status set by a peer) is left out of adherence and keeps a streak."""
    import sqlite3

    _, occs = history
    conn = sqlite3.connect(isolated_home / "practiceplan.db")
    doc = json.loads(conn.execute("SELECT doc FROM plan_occurrences WHERE id = ?", (occs[2]["id"],)).fetchone()[0])
    doc["status"] = "skipped"
    conn.execute("UPDATE plan_occurrences SET status = 'skipped', doc = ? WHERE id = ?", (json.dumps(doc), occs[2]["id"]))
    conn.commit()
    overall = cli("stats", "--json").json["overall"]
    assert (overall["completed"], overall["missed"], overall["skipped"]) == (4, 2, 1)
    assert overall["longestStreak"] == 4


def test_forecast_json_and_beyond_horizon(cli, history):
    data = cli("forecast", "--days", "120", "--json").json
    assert len(data["days"]) == 120
    assert [d["count"] for d in data["days"]] == [1] * 120  # materialised 90 days, the rest from the rule
    assert data["totalCount"] == 120 and data["totalMinutes"] == 3600
    assert data["peakDay"] == {"date": "2026-03-02", "count": 1, "minutes": 30}
    assert all(0 <= d["expectedLow"] <= d["expected"] <= d["expectedHigh"] <= d["count"] for d in data["days"])
    text = cli("forecast").stdout
    assert "OVER by 10 min" in text and "Busiest day" in text


def test_today_summary(cli, history):
    view = cli("today", "--json").json
    assert view["summary"]["thisWeek"]["completed"] == 0 and view["summary"]["practiceStreak"] == 0
    assert "This week:" in cli("today").stdout


def test_events_and_dip_hook(cli, history, tmp_path, set_now):
    hook_out = tmp_path / "hook.json"
    script = tmp_path / "hook.py"
    script.write_text(f"import sys, os, json\nopen({str(hook_out)!r}, 'w').write(json.dumps("
                      "{'stdin': json.load(sys.stdin), 'env': os.environ.get('PRACTICEPLAN_PLANID')}))\n")
    cli("config", "set", "dip_hook", f"{sys.executable} {script}")
    set_now("2026-02-28T09:00:00Z")  # Saturday: this week 2/3 done... 25th missed, 27th done -> 4 of 5? see below
    cli("stats", "--json")
    events = cli("events", "--json").json["events"]
    assert events == []  # 4/5 = 80 % >= 60 %: no dip, and a view is not recorded (reads write nothing)
    cli("config", "set", "adherence_alert", "90")
    cli("stats", "--json")
    cli("stats", "--json")  # once per plan per week
    cli("today")
    events = cli("events", "--json").json["events"]
    dips = [e for e in events if e["name"] == "adherence.dip"]
    assert len(dips) == 1 and len(events) == 1
    assert dips[0]["data"]["adherence"] == 80.0 and dips[0]["data"]["weekStart"] == "2026-02-23"
    assert set(dips[0]["data"]) == {"planId", "weekStart", "adherence", "completed", "missed", "threshold"}
    hooked = json.loads(hook_out.read_text())
    assert hooked["stdin"]["planId"] == hooked["env"] == dips[0]["data"]["planId"]
    for event in events:  # ids and numbers only: never titles or notes
        assert "Scales" not in json.dumps(event)


def test_svg_export(cli, history, tmp_path):
    target = tmp_path / "stats.svg"
    cli("stats", "--svg", str(target))
    text = target.read_text()
    assert text.startswith("<svg") and "Adherence" in text
    cli("forecast", "--svg", str(tmp_path / "f.svg"))
    assert "Forecast" in (tmp_path / "f.svg").read_text()
    assert cli("stats", "--svg", str(tmp_path / "missing" / "x.svg"), ok=False).code == 65


def test_stats_with_no_data(cli):
    data = cli("stats", "--json").json
    assert data["overall"]["adherence"] is None and data["plans"] == []
    assert data["practiceStreak"] == {"current": 0, "longest": 0}
    assert "no finished sessions yet" in cli("stats").stdout


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/Santiago", "Australia/Lord_Howe", "Asia/Kathmandu"])
def test_long_practice_streak_across_dst_matches_the_reference(cli, tmp_path, monkeypatch, zone):
    """The streak hint and the fast walk (index probes per run of days with one offset) equal the plain day-set
    rule."""
    from datetime import datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    from practiceplan.domain import insights as an
    from practiceplan.services.insights import Insights, for_today
    from practiceplan.services.session import Session
    from practiceplan.settings import Settings

    monkeypatch.setenv("PRACTICEPLAN_TZ", zone)
    now = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
    monkeypatch.setenv("PRACTICEPLAN_NOW", now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    tz = ZoneInfo(zone)
    rows = []
    local_now = now.astimezone(tz)
    for back in range(420):  # one entry a day at 00:30 local (right after midnight) for 420 days, one gap
        if back == 400:
            continue
        day = (local_now - timedelta(days=back)).date()
        stamp = datetime(day.year, day.month, day.day, 0, 30, tzinfo=tz).astimezone(timezone.utc)
        rows.append({"id": f"entry_s{back}", "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "duration": 5})
    path = tmp_path / "streak.jsonl"
    path.write_text("\n".join(__import__("json").dumps(r) for r in rows), encoding="utf-8")
    cli("log", "import", str(path))
    planner = Session(Settings())
    fast = for_today(planner).current_practice_streak()  # the hint the import left
    planner.store.conn.execute("DELETE FROM meta WHERE key = 'hint:practiceStreak'")
    walked = for_today(planner).current_practice_streak()  # counted back in the rollup
    full = Insights(planner)
    assert fast == walked == an.day_streak(full.day_totals, full.today)[0] == 400
    planner.close()


def test_plain_and_rich_stats_say_the_same(cli, history):
    """Not a terminal: plain text without Rich; on a terminal: Rich. Same words and numbers either way."""
    import io
    import re

    from rich.console import Console

    from practiceplan.render import insights as rich_views
    from practiceplan.render import plain

    data = cli("stats", "--json").json
    text = cli("stats").stdout
    assert text.splitlines() == plain.stats_lines(data)
    buffer = io.StringIO()
    rich_views.print_stats(data, Console(file=buffer, width=250, no_color=True))
    words = lambda s: re.findall(r"[\w%·—:/…→≤]+", s)  # noqa: E731
    assert words("\n".join(plain.stats_lines(data))) == words(buffer.getvalue())
    forecast = cli("forecast", "--json").json
    assert cli("forecast").stdout.splitlines() == plain.forecast_lines(forecast)


def test_stats_five_times_adds_no_event(cli, history, isolated_home):
    import sqlite3

    cli("stats", "--json")  # a first run may record this week's dip (a change); views are never recorded
    db = isolated_home / "practiceplan.db"
    count = lambda: sqlite3.connect(db).execute("SELECT count(*) FROM events").fetchone()[0]  # noqa: E731
    before = count()
    for _ in range(5):
        cli("stats", "--json")
        cli("forecast")
    assert count() == before


def test_event_retention_prunes_by_count_when_an_event_is_added(cli, isolated_home):
    from practiceplan.services.session import Session
    from practiceplan.settings import Settings

    cli("config", "set", "events_keep", "100")
    planner = Session(Settings())
    with planner.store.write():
        for number in range(130):
            planner.add_event("template.test", {"n": number})
    rows = planner.store.conn.execute("SELECT json_extract(data, '$.n') FROM events ORDER BY id").fetchall()
    assert [r[0] for r in rows] == list(range(30, 130))  # the newest 100
    planner.close()


def test_event_retention_prunes_by_age_only_when_an_event_is_added(cli, isolated_home, set_now):
    from datetime import timedelta

    from practiceplan.services.session import Session
    from practiceplan.settings import Settings

    cli("config", "set", "events_days", "30")
    planner = Session(Settings())
    now = planner.now
    with planner.store.write():
        for days_ago in (400, 40, 29, 1):
            planner.at(now - timedelta(days=days_ago)).add_event("template.test", {"daysAgo": days_ago})
        # an imported event whose time is not an instant is kept (nothing to compare)
        planner.store.conn.execute("INSERT INTO events (at, name, data) VALUES ('t', 'imported', '{}')")
    ages = lambda: [r[0] for r in planner.store.conn.execute(  # noqa: E731
        "SELECT json_extract(data, '$.daysAgo') FROM events ORDER BY id")]
    assert ages() == [29, 1, None]  # each add pruned what was older than 30 days before it...
    planner.close()
    later = now + timedelta(days=28, hours=12)
    set_now(later.strftime("%Y-%m-%dT%H:%M:%SZ"))
    cli("stats", "--json")  # a read a month later...
    cli("today")
    cli("events")
    planner = Session(Settings())
    assert ages() == [29, 1, None]  # ...prunes nothing
    with planner.store.write():
        planner.at(later).add_event("template.test", {"daysAgo": 0})
    assert ages() == [1, None, 0]  # only the next added event does
    planner.close()


@pytest.mark.parametrize(("key", "value"), [("events_keep", "99"), ("events_days", "7"), ("events_keep", "x")])
def test_event_retention_settings_are_validated(cli, key, value):
    assert cli("config", "set", key, value, ok=False).code == 65


def test_event_retention_settings_are_shown(cli):
    cli("config", "set", "events_keep", "500")
    shown = cli("config", "show", "--json").json
    assert shown["events_keep"] == 500 and shown["events_days"] == 180


def test_a_new_plan_does_not_lower_adherence_at_once(cli, set_now):
    """Issue 10.9: created Mon 2 Mar 10:00 with --start a week back, the past week's sessions are not missed;
    with --backfill they count (docs/metrics.md "Before the plan existed")."""
    plan = cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--start", "2026-02-23",
               "--json").json["plan"]
    overall = cli("stats", "--json").json["overall"]
    assert (overall["completed"], overall["missed"], overall["adherence"]) == (0, 0, None)
    assert cli("today", "--json").json["summary"]["missedThisWeek"] == 0
    listed = cli("occurrences", "--plan", plan["id"], "--from", "2026-02-23", "--to", "2026-03-01", "--json").json
    assert set(listed["states"].values()) == {"before-plan"}
    assert not [s for s in cli("suggest", "--json").json["suggestions"] if s["kind"] == "catch-up"]
    backfilled = cli("plan", "add", "Etudes", "--every", "daily", "--at", "18:00", "--start", "2026-02-23",
                     "--backfill", "--json").json["plan"]
    assert backfilled["metadata"]["backfill"] is True
    etudes = cli("stats", "--plan", backfilled["id"], "--json").json["overall"]
    assert (etudes["missed"], etudes["adherence"]) == (7, 0.0)
    set_now("2026-03-03T09:00:00Z")  # Tuesday: Monday 18:00, owed since the plan existed, is missed
    assert cli("stats", "--plan", plan["id"], "--json").json["overall"]["missed"] == 1


def test_a_session_catchable_when_the_plan_was_made_counts(cli, set_now):
    plan = cli("plan", "add", "Early", "--every", "daily", "--at", "08:00", "--json").json["plan"]  # made at 10:00
    view = cli("today", "--json").json
    assert [o["scheduledStart"] for o in view["overdue"]] == ["2026-03-02T07:00:00.000Z"]  # still doable today
    set_now("2026-03-03T09:00:00Z")
    assert cli("stats", "--plan", plan["id"], "--json").json["overall"]["missed"] == 1


def test_a_one_off_already_past_is_refused_or_confirmed(cli, monkeypatch):
    past = cli("plan", "add", "Lesson prep", "--once", "2026-03-02T09:00", ok=False)  # now is 10:00
    assert past.code == 65 and past.stderr.splitlines() == [
        "practiceplan: error: --once Mon 02 Mar 2026 09:00 is already past",
        "hint: give a later time (e.g. --once 'next friday 9am'), or add --backfill to plan one that already happened"]
    assert cli("plan", "list", "--json").json["plans"] == []
    assert cli("plan", "add", "Today", "--once", "today").code == 0  # a day without a time: today is not past
    assert cli("plan", "add", "Yesterday", "--once", "yesterday", ok=False).code == 65
    assert cli("plan", "add", "Logged", "--once", "2026-03-02T09:00", "--backfill").code == 0
    monkeypatch.setattr("practiceplan.cli.plans.stdin_is_tty", lambda: True)
    declined = cli("plan", "add", "No", "--once", "2026-03-02T08:00", input="n\n", ok=False)
    assert declined.code != 0 and "Plan it anyway?" in declined.stdout
    confirmed = cli("plan", "add", "Yes", "--once", "2026-03-02T08:00", input="y\n")
    assert "Added plan" in confirmed.stdout
    assert sorted(p["title"] for p in cli("plan", "list", "--json").json["plans"]) == ["Logged", "Today", "Yes"]
