"""Reminders: once per channel, grace summaries, --check, --notify-cmd (no shell), cron line; a simulated year
of cron ticks with sleep gaps; five reminder processes at the same minute over 100 rounds."""

from __future__ import annotations

import bisect
import json
import multiprocessing
import os
import random
import shlex
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from practiceplan.domain import occurrences as occ_mod
from practiceplan.domain import reminders as rem
from practiceplan.domain.models import iso_z, parse_instant
from practiceplan.domain.plans import PlanInput, apply_input

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def recorder(tmp_path: Path) -> tuple[str, Path]:
    """A notify command (a Python script, no shell) that appends argv, some env and stdin to a JSON-lines file."""
    out = tmp_path / "notified.jsonl"
    script = tmp_path / "notify.py"
    script.write_text(
        "import json, os, sys\n"
        f"with open({str(out)!r}, 'a') as fh:\n"
        "    fh.write(json.dumps({'argv': sys.argv[1:], 'stdin': json.load(sys.stdin), 'env': {k: v for k, v in "
        "os.environ.items() if k.startswith('PRACTICEPLAN_') and k not in ('PRACTICEPLAN_HOME', 'PRACTICEPLAN_TZ', "
        "'PRACTICEPLAN_NOW')}}) + '\\n')\n"
    )
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}", out


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def scales(cli):
    return cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--minutes", "20", "--json").json["plan"]


def test_remind_once_per_channel(cli, scales, set_now):
    set_now("2026-03-02T16:20:00Z")  # 17:20 Berlin: Scales at 18:00 is 40 min away
    assert cli("remind").stdout == ""
    assert cli("remind", "--check", ok=False).code == 1
    set_now("2026-03-02T16:40:00Z")  # 17:40
    assert cli("remind", "--check").code == 0
    assert cli("remind", "--check", "--json").json["due"][0]["message"] == "Scales at 18:00 (in 20 min)"
    peek = cli("remind", "--dry-run").stdout
    assert peek.startswith("(dry run) Scales at 18:00 (in 20 min)")
    first = cli("remind", "--json").json
    assert first["channel"] == "stdout" and first["lastRun"] == "2026-03-02T16:20:00.000Z" and first["summary"] is None
    assert [r["message"] for r in first["reminders"]] == ["Scales at 18:00 (in 20 min)"]
    assert first["reminders"][0]["checkin"].startswith("practiceplan checkin ")
    assert cli("remind", "--json").json["reminders"] == []  # exactly once on this channel
    assert cli("remind").stdout == ""
    other = cli("remind", "--channel", "phone", "--json").json
    assert [r["occurrenceId"] for r in other["reminders"]] == [r["occurrenceId"] for r in first["reminders"]]
    assert cli("remind", "--check").code == 0  # --check is about what is due, not what was sent
    set_now("2026-03-02T16:50:00Z")
    assert cli("remind", "--json").json["lastRun"] == "2026-03-02T16:40:00.000Z"


def test_check_after_checkin_and_past_deadline(cli, scales, set_now):
    occ = cli("occurrences", "--json").json["occurrences"][0]
    set_now("2026-03-02T17:30:00Z")
    assert cli("remind", "--check").code == 0
    text = cli("remind").stdout
    assert "Scales was due at 18:00 and is not done yet" in text
    cli("checkin", occ["id"])
    assert cli("remind", "--check", ok=False).code == 1
    set_now("2026-03-03T16:20:00Z")  # next day, 17:20: nothing due, yesterday's is done
    assert cli("remind", "--check", ok=False).code == 1


def test_missed_reminders_are_summarised_in_one_message(cli, tmp_path, set_now):
    for title, at in (("Scales", "08:00"), ("Etudes", "09:00"), ("Sonata", "10:00"), ("Sight-reading", "11:00")):
        cli("plan", "add", title, "--every", "daily", "--at", at, "--minutes", "20", "--start", "2026-03-03")
    command, out = recorder(tmp_path)
    set_now("2026-03-03T06:00:00Z")  # 07:00: nothing yet
    assert cli("remind", "--notify-cmd", command, "--json").json["reminders"] == []
    set_now("2026-03-03T11:00:00Z")  # 12:00 after a sleep: 07:30, 08:30, 09:30 are > 2 h old; 10:30 is not
    result = cli("remind", "--notify-cmd", command, "--json").json
    assert [r["title"] for r in result["reminders"]] == ["Sight-reading"]
    summary = result["summary"]
    assert summary["count"] == 3 and [r["title"] for r in summary["reminders"]] == ["Scales", "Etudes", "Sonata"]
    assert summary["message"].startswith("3 practice reminders missed while reminders were not running")
    assert "Scales Tue 08:00" in summary["message"]
    calls = lines(out)
    assert len(calls) == 2  # one reminder, one summary: not flooded
    assert calls[0]["env"]["PRACTICEPLAN_EVENT"] == "reminder"
    assert calls[1]["env"]["PRACTICEPLAN_EVENT"] == "reminder.summary"
    assert calls[1]["env"]["PRACTICEPLAN_COUNT"] == "3"
    assert calls[1]["stdin"]["kind"] == "summary" and len(calls[1]["stdin"]["reminders"]) == 3
    set_now("2026-03-03T11:05:00Z")
    assert cli("remind", "--notify-cmd", command, "--json").json["summary"] is None
    assert len(lines(out)) == 2
    text_grace = cli("remind", "--channel", "wide", "--grace", "6h", "--json").json
    assert len(text_grace["reminders"]) == 4 and text_grace["summary"] is None


def test_notify_cmd_gets_env_stdin_and_argv_without_a_shell(cli, tmp_path, set_now):
    marker = tmp_path / "pwned"
    title = f"Scales $(touch {marker}); `touch {marker}` & echo"
    cli("plan", "add", title, "--every", "daily", "--at", "18:00", "--minutes", "20")
    command, out = recorder(tmp_path)
    set_now("2026-03-02T16:40:00Z")
    full = command + " --title {title} '{message}' plain"
    result = cli("remind", "--notify-cmd", full, "--json").json
    assert result["channel"].startswith("cmd:") and len(result["reminders"]) == 1
    (call,) = lines(out)
    message = f"{title} at 18:00 (in 20 min)"
    assert call["argv"] == ["--title", title, message, "plain"]  # placeholders replaced inside words, no shell
    assert not marker.exists()
    env = call["env"]
    assert env["PRACTICEPLAN_MESSAGE"] == message and env["PRACTICEPLAN_TITLE"] == title
    assert env["PRACTICEPLAN_START"] == "2026-03-02T17:00:00.000Z" and env["PRACTICEPLAN_MINUTES"] == "20"
    assert env["PRACTICEPLAN_OCCURRENCE_ID"].startswith("plan_occ_")
    assert env["PRACTICEPLAN_CHANNEL"] == result["channel"]
    assert call["stdin"]["message"] == message and call["stdin"]["kind"] == "reminder"
    assert cli("remind", "--notify-cmd", full, "--json").json["reminders"] == []  # same command, same channel
    assert len(cli("remind", "--notify-cmd", command, "--json").json["reminders"]) == 1  # another command: another
    bad = cli("remind", "--notify-cmd", "'unbalanced", ok=False)
    assert bad.code == 65 and "cannot be split" in bad.stderr


def test_failed_notification_is_sent_again_next_time(cli, scales, tmp_path, set_now):
    set_now("2026-03-02T16:40:00Z")
    failed = cli("remind", "--notify-cmd", f"{shlex.quote(sys.executable)} -c 'import sys; sys.exit(3)'",
                 "--channel", "desk", ok=False)
    assert failed.code == 75 and "not sent" in failed.stderr and "Traceback" not in failed.stderr
    missing = cli("remind", "--notify-cmd", "/nonexistent/notify", "--channel", "desk", ok=False)
    assert missing.code == 75
    command, out = recorder(tmp_path)
    assert len(cli("remind", "--notify-cmd", command, "--channel", "desk", "--json").json["reminders"]) == 1
    assert len(lines(out)) == 1


def test_all_day_session_is_reminded_at_eight(cli, set_now):
    cli("plan", "add", "Ear training", "--every", "daily", "--minutes", "10")
    set_now("2026-03-03T06:50:00Z")  # 07:50 Berlin
    assert cli("remind", "--json").json["reminders"] == []
    set_now("2026-03-03T07:05:00Z")  # 08:05
    items = cli("remind", "--json").json["reminders"]
    assert [(r["message"], r["fireAt"], r["allDay"]) for r in items] == [
        ("Ear training today (10 min)", "2026-03-03T07:00:00.000Z", True)]


def test_cron_line(cli, isolated_home, tmp_path):
    data = cli("cron", "--json").json
    fields = data["line"].split(" ", 5)
    assert fields[:5] == ["*/5", "*", "*", "*", "*"]
    words = shlex.split(fields[5])
    assert words[0] == f"PRACTICEPLAN_HOME={isolated_home}" and words[1] == "PRACTICEPLAN_TZ=Europe/Berlin"
    program = words[2]
    assert os.path.isabs(program) and words[-1] == "remind"
    assert data["env"] == {"PRACTICEPLAN_HOME": str(isolated_home), "PRACTICEPLAN_TZ": "Europe/Berlin"}
    db = tmp_path / "other.db"
    text = cli("--db", str(db), "cron", "--every", "10", "--within", "1h", "--notify-cmd", "notify-send 'Practice now' {message}").stdout
    line = [x for x in text.splitlines() if not x.startswith("#")][0]
    assert line.startswith("*/10 * * * * ")
    words = shlex.split(line.split(" ", 5)[5])
    assert words[words.index("--db") + 1] == str(db)
    assert words[-5:] == ["remind", "--within", "60m", "--notify-cmd", "notify-send 'Practice now' {message}"]
    assert text.splitlines()[0].startswith("# practiceplan reminders")


def test_cron_line_runs(cli, scales, tmp_path, isolated_home):
    """The printed line, run by a shell the way cron would, reminds through this install."""
    words = shlex.split(cli("cron", "--json").json["line"].split(" ", 5)[5])
    env = {"PATH": "/usr/bin:/bin", "PRACTICEPLAN_NOW": "2026-03-02T16:40:00Z"}
    env.update(dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-")))
    argv = [w for w in words if not ("=" in w and not w.startswith("-"))]
    assert os.path.basename(argv[0]) == "practiceplan" or argv[1:3] == ["-m", "practiceplan"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Scales at 18:00 (in 20 min)" in done.stdout


# --------------------------------------------------------------------------- a year of cron ticks


def year_of_reminders(seed: int):
    """Occurrences of three plans over 2026 as Reminder records, plus when each one gets checked in."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    plans = [
        dict(title="Scales", every="daily", at=time(7, 30), minutes=20, flex="same-day"),
        dict(title="Etudes", every="weekly", on=["mo,we,fr"], at=time(18, 0), minutes=45, flex="anytime"),
        dict(title="Ear", every="weekly", on=["sa"], minutes=15, flex="weekly"),  # all-day
        dict(title="Late", every="daily", at=time(23, 50), minutes=30, flex="fixed"),
    ]
    within = timedelta(minutes=30)
    rng = random.Random(seed)
    items = []
    completed_at: dict[str, datetime] = {}
    for spec in plans:
        plan = apply_input(None, PlanInput(start=date(2026, 1, 1), **spec), now=now, default_zone="Europe/Berlin")
        occs = occ_mod.reconcile(plan, [], "Europe/Berlin", now, datetime(2027, 1, 1, tzinfo=UTC), now)
        following = occ_mod.next_starts(occs)
        all_day = spec.get("at") is None
        for occ in occs:
            start = parse_instant(occ["scheduledStart"])
            due = occ_mod.deadline(occ, BERLIN, next_start=following.get(occ["id"]))
            fire = rem.fire_time(start, within=within, all_day=all_day, zone=BERLIN)
            items.append(rem.Reminder(occ["id"], plan["id"], spec["title"], start, spec["minutes"], fire, due, all_day))
            if rng.random() < 0.4:  # checked in some time after the start, before or after its deadline
                completed_at[occ["id"]] = start + timedelta(minutes=rng.randint(0, 60 * 30))
    return items, completed_at


def test_a_year_of_cron_ticks_fires_each_reminder_once():
    """5-minute ticks over 2026, with the laptop asleep now and then (1-14 h) and the clock once set back an
    hour: each reminder fires exactly once, on its own within the grace window, else in a summary; each
    wake-up sends at most one summary."""
    items, completed_at = year_of_reminders(seed=7)
    grace = timedelta(minutes=120)
    rng = random.Random(11)
    by_fire = sorted(items, key=lambda r: (r.fire_at, r.occ_id))
    ticks: list[datetime] = []
    now = datetime(2026, 1, 1, tzinfo=UTC)
    end = datetime(2027, 1, 1, tzinfo=UTC)
    sleeps = 0
    jumped = False
    while now < end:
        ticks.append(now)
        if rng.random() < 1 / 400:  # asleep: about twice a week
            now += timedelta(hours=rng.randint(1, 14), minutes=rng.choice([0, 5, 10]))
            sleeps += 1
        elif not jumped and now >= datetime(2026, 7, 1, tzinfo=UTC):
            now -= timedelta(hours=1)  # the clock is set back: an hour of ticks repeats
            jumped = True
        else:
            now += timedelta(minutes=5)
    sent: dict[str, tuple[str, datetime]] = {}
    summaries_per_tick = Counter()
    pointer = 0
    active: dict[str, rem.Reminder] = {}
    for tick in ticks:
        while pointer < len(by_fire) and by_fire[pointer].fire_at <= tick:
            active[by_fire[pointer].occ_id] = by_fire[pointer]
            pointer += 1
        candidates = [r for r in active.values()
                      if not (r.occ_id in completed_at and completed_at[r.occ_id] <= tick)]
        individual, summary = rem.select_reminders(candidates, set(sent), now=tick, grace=grace)
        for r in individual:
            assert r.occ_id not in sent, "sent twice"
            sent[r.occ_id] = ("reminder", tick)
        for r in summary:
            assert r.occ_id not in sent, "sent twice"
            sent[r.occ_id] = ("summary", tick)
        if summary:
            summaries_per_tick[tick] += 1
        for occ_id in [k for k, r in active.items() if k in sent or r.deadline <= tick]:
            active.pop(occ_id)
    assert sleeps > 50 and jumped and len(items) > 900
    tick_list = sorted(set(ticks))
    for r in items:
        done = completed_at.get(r.occ_id)
        stop = min(r.deadline, done) if done else r.deadline
        first = bisect.bisect_left(tick_list, r.fire_at)
        awake = tick_list[first] if first < len(tick_list) and tick_list[first] < stop else None
        if awake is None:
            assert r.occ_id not in sent  # never a reminder for something done or over
            continue
        kind, at = sent[r.occ_id]  # exactly once (the dict keeps one; duplicates failed above)
        assert at == awake  # at the first tick once it was due
        if at - r.fire_at <= grace:
            assert kind == "reminder"
        else:
            assert kind == "summary"
    assert all(count == 1 for count in summaries_per_tick.values())  # a repeated (clock set back) tick: no 2nd
    kinds = Counter(kind for kind, _ in sent.values())
    assert kinds["reminder"] > 400 and 0 < kinds["summary"] < kinds["reminder"] / 4
    assert len(summaries_per_tick) <= sleeps + 1  # at most one summary message per wake-up


def test_cron_ticks_against_the_database(tmp_path):
    """Two days of 5-minute ticks through the service and SQLite, asleep 23:00-08:30 the first night: each due
    session is reminded once; the ones that fell due in the night come in one summary at wake-up."""
    from practiceplan.services.session import Session
    from practiceplan.services.schedule import Schedule
    from practiceplan.settings import Settings

    env = {"PRACTICEPLAN_HOME": str(tmp_path / "h"), "PRACTICEPLAN_TZ": "Europe/Berlin"}
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    setup = Session(Settings(env=env)).at(start)
    for title, at in (("Early", time(6, 0)), ("Lunch", time(12, 30)), ("Evening", time(18, 0)), ("Night", time(2, 0))):
        setup.plans.add(PlanInput(title=title, every="daily", at=at, minutes=20, start=date(2026, 3, 2)))
    setup.close()
    counts: Counter = Counter()
    summaries = []
    tick = start
    while tick < start + timedelta(days=2):
        local = tick.astimezone(BERLIN)
        asleep = local.date() == date(2026, 3, 2) and local.hour >= 23 or (
            local.date() == date(2026, 3, 3) and (local.hour, local.minute) < (8, 30))
        if not asleep:
            planner = Session(Settings(env=env)).at(tick)
            result = Schedule(planner).remind(within=timedelta(minutes=30), grace=timedelta(hours=2), channel="cron")
            planner.close()
            for item in result["reminders"]:
                counts[item["occurrenceId"]] += 1
            if result["summary"]:
                summaries.append((tick, [r["title"] for r in result["summary"]["reminders"]]))
                for item in result["summary"]["reminders"]:
                    counts[item["occurrenceId"]] += 1
        tick += timedelta(minutes=5)
    assert set(counts.values()) == {1}
    # due in the window: today's Lunch, Evening; tomorrow's Night (02:00), Early (06:00), Lunch, Evening;
    # the day after's Night and Early (06:00 on 4 March, fire 05:30 < 09:00Z end) -> 8; plus the 2 March ones
    # already past at 10:00 (Early 06:00, Night 02:00) but still due that day -> summarised at the first tick
    assert summaries == [
        (start, ["Night", "Early"]),
        (datetime(2026, 3, 3, 7, 30, tzinfo=UTC), ["Night", "Early"]),
    ]
    assert len(counts) == 10
    conn = sqlite3.connect(tmp_path / "h" / "practiceplan.db")
    rows = conn.execute("SELECT kind, count(*) FROM reminders_sent WHERE channel = 'cron' GROUP BY kind").fetchall()
    cursor = conn.execute("SELECT last_run FROM reminder_cursor WHERE channel = 'cron'").fetchone()[0]
    conn.close()
    assert dict(rows) == {"reminder": 6, "summary": 4}
    assert cursor == iso_z(start + timedelta(days=2) - timedelta(minutes=5))


# --------------------------------------------------------------------------- concurrency


def _setup_home(home: Path) -> None:
    env = {**os.environ, "PRACTICEPLAN_HOME": str(home), "PRACTICEPLAN_TZ": "Europe/Berlin",
           "PRACTICEPLAN_NOW": "2026-03-02T05:00:00Z"}
    # one session 10 minutes after each round (06:00, 12:00, 18:00, 00:00 Berlin); none before the first round
    for title, at, first in (("Dawn", "06:10", "2026-03-02"), ("Noon", "12:10", "2026-03-02"),
                             ("Dusk", "18:10", "2026-03-02"), ("Midnight", "00:10", "2026-03-03")):
        subprocess.run([sys.executable, "-m", "practiceplan", "plan", "add", title, "--every", "daily", "--at", at,
                        "--minutes", "10", "--start", first], env=env, check=True, capture_output=True)


def _rounds(count: int) -> list[str]:
    first = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # 06:00 Berlin; then every 6 hours: 12:00, 18:00, 00:00 ...
    return [iso_z(first + timedelta(hours=6 * i)) for i in range(count)]


def _notify_line_cmd(path: Path) -> str:
    # one line per notification, appended atomically (O_APPEND) by a tiny shell; the command is split with shlex
    return f"sh -c 'printf \"%s\\n\" \"$PRACTICEPLAN_OCCURRENCE_ID\" >> {shlex.quote(str(path))}'"


def _expected(home: Path, rounds: list[str]) -> set[str]:
    conn = sqlite3.connect(home / "practiceplan.db")
    try:
        last = iso_z(parse_instant(rounds[-1]) + timedelta(minutes=30))
        return {r[0] for r in conn.execute(
            "SELECT id FROM plan_occurrences WHERE deleted_at IS NULL AND scheduled_start > ? AND scheduled_start <= ?",
            (rounds[0], last))}
    finally:
        conn.close()


@pytest.mark.slow
def test_five_reminder_processes_at_the_same_minute_over_100_rounds(tmp_path):
    """Five processes released together by a barrier, each round at the same PRACTICEPLAN_NOW: every due
    occurrence is notified exactly once (the UNIQUE row is inserted in the transaction that decides)."""
    home = tmp_path / "home"
    _setup_home(home)
    out = tmp_path / "notified.txt"
    rounds = _rounds(100)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(5)
    codes = ctx.Queue()
    from tests.scenarios import remind_worker

    workers = [ctx.Process(target=remind_worker.run, args=(str(home), rounds, _notify_line_cmd(out), barrier, codes))
               for _ in range(5)]
    for worker in workers:
        worker.start()
    results = [codes.get(timeout=300) for _ in range(5 * len(rounds))]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert Counter(code for _, _, code in results) == {0: 500}  # no busy errors, no failures
    notified = out.read_text().split()
    counts = Counter(notified)
    assert counts and set(counts.values()) == {1}  # exactly once each
    assert set(counts) == _expected(home, rounds)  # and none missing
    assert len(counts) == 100
    conn = sqlite3.connect(home / "practiceplan.db")
    assert conn.execute("SELECT count(*) FROM reminders_sent").fetchone()[0] == 100
    conn.close()


@pytest.mark.slow
def test_five_cli_processes_started_together(tmp_path):
    """The same with real `practiceplan remind` processes (fresh interpreters), started together for 10 rounds."""
    home = tmp_path / "home"
    _setup_home(home)
    out = tmp_path / "notified.txt"
    rounds = _rounds(10)
    for now in rounds:
        env = {**os.environ, "PRACTICEPLAN_HOME": str(home), "PRACTICEPLAN_TZ": "Europe/Berlin",
               "PRACTICEPLAN_NOW": now, "NO_COLOR": "1"}
        env.pop("PRACTICEPLAN_DB", None)
        procs = [subprocess.Popen([sys.executable, "-m", "practiceplan", "remind", "--notify-cmd",
                                   _notify_line_cmd(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(5)]
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
    counts = Counter(out.read_text().split())
    assert set(counts.values()) == {1} and set(counts) == _expected(home, rounds) and len(counts) == 10


def test_cron_prints_what_the_readme_shows(cli, tmp_path, monkeypatch):
    """Issue 10.14: the README's `cron` example is exactly what the command prints (the program path aside,
    which is where this install lives)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("$ practiceplan cron", 1)[1].split("```", 1)[0]
    args, *expected = ("practiceplan cron" + block).strip().splitlines()
    home = tmp_path / "me" / ".practice"
    monkeypatch.setenv("PRACTICEPLAN_HOME", str(home))
    for name in ("PRACTICEPLAN_TZ", "PRACTICEPLAN_DB", "DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    result = cli(*shlex.split(args)[1:])
    data = cli(*shlex.split(args)[1:], "--json").json
    program = " ".join(shlex.quote(word) for word in data["argv"][: data["argv"].index("remind")])
    printed = result.stdout.replace(program, "/home/me/.venv/bin/practiceplan").replace(str(home), "/home/me/.practice")
    assert printed.splitlines() == expected
