"""stats, forecast, events, the today summary, adherence-dip events and hook, SVG export."""

from __future__ import annotations

import json
import sys

import pytest


@pytest.fixture
def history(cli, set_now):
    """Daily 18:00 Berlin plan from Mon 23 Feb 2026; Feb 23-27 completed except 25 (missed), 26 skipped later."""
    cli("config", "set", "daily_capacity", "20")
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
    assert [e["name"] for e in events] == ["stats.viewed"]  # 4/5 = 80 % >= 60 %: no dip
    cli("config", "set", "adherence_alert", "90")
    cli("stats", "--json")
    cli("stats", "--json")  # once per plan per week
    events = cli("events", "--json").json["events"]
    dips = [e for e in events if e["name"] == "adherence.dip"]
    assert len(dips) == 1
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
    """The fast streak (index probes per run of days with one offset) equals the plain day-set rule."""
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
    fast = for_today(planner).current_practice_streak()
    full = Insights(planner)
    assert fast == an.day_streak(full.day_totals, full.today)[0] == 400
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
