"""The logbook rollup (migration m006): day totals from the hour / quarter-hour rows equal the exact scan of every
entry, in zones with whole-hour, half-hour and 45-minute offsets, across DST transitions, through inserts, edits,
soft and hard deletes, restores of deleted entries, an import and a restore of a backup."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from practiceplan.domain import insights as an
from practiceplan.domain.models import iso_z
from practiceplan.domain.tz import localize
from practiceplan.services.insights import Insights, for_today
from practiceplan.services.session import Session
from practiceplan.settings import Settings
from practiceplan.store import insights as queries
from tests.conftest import FIXED_NOW

ZONES = ["Europe/Berlin", "America/Santiago", "Australia/Lord_Howe", "Asia/Kathmandu", "Asia/Kolkata",
         "Australia/Adelaide", "America/St_Johns", "UTC"]
IN_STEP = {"logbook_hours": 0, "logbook_quarters": 0}
EPOCH = date(1970, 1, 1)


@cache
def transitions(zone: str) -> list[int]:
    """Instants (ms) at which the zone's UTC offset changes, 1900-2030 (historic odd offsets included)."""
    clock = an.DayClock(ZoneInfo(zone), _ms(datetime(1900, 1, 1)), _ms(datetime(2030, 1, 1)))
    return [lo for lo, _, _ in clock.segments()[1:]] or [_ms(datetime(2026, 3, 29))]


def _ms(moment: datetime) -> int:
    return int(moment.replace(tzinfo=moment.tzinfo or timezone.utc).timestamp() * 1000)


def truth(docs: dict[str, dict], zone: str) -> list[tuple[int, int, int, int]]:
    """Local day totals computed entry by entry with zoneinfo: (day, minutes, entries, linked minutes)."""
    days: dict[int, list[int]] = {}
    for doc in docs.values():
        if doc.get("deletedAt"):
            continue
        stamp = datetime.fromisoformat(doc["timestamp"].replace("Z", "+00:00"))
        day = (stamp.astimezone(ZoneInfo(zone)).date() - EPOCH).days
        linked = doc["duration"] if doc["metadata"].get("planOccurrenceId") else 0
        totals = days.setdefault(day, [0, 0, 0])
        totals[0] += doc["duration"]
        totals[1] += 1
        totals[2] += linked
    return [(day, *days[day]) for day in sorted(days)]


def day_tables(conn, zone: str) -> tuple[list, list]:
    lo, hi = queries.entry_range(conn)
    now = _ms(datetime(2026, 3, 2, 9))
    clock = an.DayClock(ZoneInfo(zone), min(lo if lo is not None else now, now) - 400 * an.DAY_MS,
                        max(hi if hi is not None else now, now) + 400 * an.DAY_MS)
    segments = clock.segments()
    return queries.day_totals(conn, segments), queries.entry_days(conn, segments)


@st.composite
def histories(draw):
    """A zone, entries near its offset changes (or anywhere), and edits applied one after the other."""
    zone = draw(st.sampled_from(ZONES))
    bases = transitions(zone)
    near = st.builds(lambda base, delta: base + delta, st.sampled_from(bases),
                     st.integers(-2 * an.DAY_MS, 2 * an.DAY_MS) | st.integers(-3_600_000, 3_600_000))
    stamp = near | st.integers(_ms(datetime(1960, 1, 1)), _ms(datetime(2035, 1, 1)))
    entries = draw(st.lists(st.tuples(stamp, st.integers(0, 600), st.booleans()), min_size=1, max_size=25))
    index = st.integers(0, len(entries) - 1)
    edit = st.one_of(
        st.tuples(st.just("move"), index, stamp), st.tuples(st.just("minutes"), index, st.integers(0, 600)),
        st.tuples(st.just("soft"), index, st.none()), st.tuples(st.just("undelete"), index, st.none()),
        st.tuples(st.just("hard"), index, st.none()), st.tuples(st.just("link"), index, st.booleans()),
    )
    # a run of daily practice ending today (at one local time of day, one day possibly missed): long streaks
    run, minute, gap = draw(st.integers(0, 450)), draw(st.integers(0, 1439)), draw(st.integers(0, 460))
    tz = ZoneInfo(zone)
    today = datetime.fromisoformat(FIXED_NOW.replace("Z", "+00:00")).astimezone(tz).date()
    daily = [(_ms(localize(datetime.combine(today - timedelta(days=back), datetime.min.time())
                           + timedelta(minutes=minute), tz)), 5, False) for back in range(run) if back != gap]
    return zone, entries + daily, draw(st.lists(edit, max_size=12))


def _doc(number: int, ts: int, minutes: int, linked: bool) -> dict:
    moment = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ts)
    return {"id": f"entry_{number:04d}", "timestamp": iso_z(moment), "duration": minutes, "deletedAt": None,
            "metadata": {"planOccurrenceId": f"plan_occ_{number}" if linked else None}}


def apply(store, docs: dict[str, dict], action: str, number: int, value) -> None:
    key = f"entry_{number:04d}"
    doc = docs.get(key)
    if doc is None:
        return
    if action == "hard":
        store.conn.execute("DELETE FROM logbook_entries WHERE id = ?", (key,))
        del docs[key]
        return
    changed = dict(doc, metadata=dict(doc["metadata"]))
    if action == "move":
        changed["timestamp"] = _doc(number, value, 0, False)["timestamp"]
    elif action == "minutes":
        changed["duration"] = value
    elif action == "link":
        changed["metadata"]["planOccurrenceId"] = f"plan_occ_{number}" if value else None
    else:
        changed["deletedAt"] = "2026-03-01T00:00:00.000Z" if action == "soft" else None
    store.save_many("logbook_entry", [changed], "2026-03-01T00:00:00.000Z")
    docs[key] = changed


@pytest.fixture
def planner(tmp_path):
    env = {"PRACTICEPLAN_HOME": str(tmp_path), "PRACTICEPLAN_TZ": "UTC", "PRACTICEPLAN_NOW": FIXED_NOW}
    session = Session(Settings(env=env))
    yield session
    session.close()


@given(histories())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_property_rollup_day_totals_equal_the_exact_scan(tmp_path, history):
    """... and the practice streak (the hint the writes leave, and the walk back in the rollup) equals the
    day-set rule on the true local days."""
    zone, entries, edits = history
    env = {"PRACTICEPLAN_HOME": str(tmp_path), "PRACTICEPLAN_TZ": zone, "PRACTICEPLAN_NOW": FIXED_NOW}
    session = Session(Settings(env=env))
    store = session.store
    with store.write():
        store.conn.execute("DELETE FROM logbook_entries")  # a hard delete of everything empties the rollup
        assert store.conn.execute("SELECT count(*) FROM logbook_hours").fetchone()[0] == 0
        docs = {f"entry_{n:04d}": _doc(n, *entry) for n, entry in enumerate(entries)}
        store.save_many("logbook_entry", list(docs.values()), "2026-03-01T00:00:00.000Z")
    with store.write():
        for action, number, value in edits:
            apply(store, docs, action, number, value)
    rollup, exact = day_tables(store.conn, zone)
    expected = truth(docs, zone)
    assert rollup == exact == expected
    assert queries.rollup_mismatches(store.conn) == IN_STEP
    today = Insights(session).today
    streak = an.day_streak([row[0] for row in expected], today)[0]
    assert for_today(session).current_practice_streak() == streak  # from the hint (or 0 / a walk if stale)
    store.conn.execute("DELETE FROM meta WHERE key = 'hint:practiceStreak'")
    assert for_today(session).current_practice_streak() == streak  # counted back in the rollup
    session.close()


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/Santiago", "Australia/Lord_Howe", "Asia/Kathmandu"])
def test_entries_a_millisecond_around_local_midnights_and_offset_changes(planner, zone):
    """Every offset change 2024-2027 and the local midnights of the days around each (and of 60 days of 2026)
    are edges: entries a millisecond or a minute either side land on their true local day."""
    tz = ZoneInfo(zone)
    changes = [t for t in transitions(zone) if _ms(datetime(2024, 1, 1)) <= t < _ms(datetime(2027, 1, 1))]
    days = {datetime.fromtimestamp(t / 1000, tz).date() + timedelta(days=k) for t in changes for k in (-1, 0, 1)}
    days |= {date(2026, 1, 1) + timedelta(days=k) for k in range(60)}
    midnights = [_ms(localize(datetime.combine(day, datetime.min.time()), tz)) for day in days]
    docs = {}
    for n, edge in enumerate(sorted({*changes, *midnights})):
        for k, ts in enumerate((edge - 60_000, edge - 1, edge, edge + 1, edge + 60_000)):
            docs[f"entry_{n * 10 + k:04d}"] = _doc(n * 10 + k, ts, 1 + k, k % 2 == 0)
    with planner.store.write():
        planner.store.save_many("logbook_entry", list(docs.values()), "2026-03-01T00:00:00.000Z")
    rollup, exact = day_tables(planner.store.conn, zone)
    assert rollup == exact == truth(docs, zone)


def test_import_and_restore_keep_the_rollup_in_step(cli, tmp_path, isolated_home):
    """Import writes through the triggers; a restore copies the backup's rollup with its entries; the
    export never carries the derived tables."""
    rows = [{"id": f"entry_{i:04d}", "timestamp": f"2026-02-{1 + i % 27:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
             "duration": 5 + i % 40} for i in range(300)]
    path = tmp_path / "entries.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    cli("log", "import", str(path))
    backup = cli("backup", "--json").json
    exported = cli("export", "json").stdout
    assert "logbook_hours" not in exported and "logbook_quarters" not in exported
    cli("log", "add", "--minutes", "30", "--when", "2026-02-20T10:00")
    doomed = cli("log", "list", "--limit", "1", "--json").json["entries"][0]["id"]
    cli("log", "delete", doomed)
    db = isolated_home / "practiceplan.db"
    cli("restore", backup["path"], "--json")
    fresh = tmp_path / "other.db"
    export_file = tmp_path / "export.json"
    export_file.write_text(exported, encoding="utf-8")
    cli("--db", str(fresh), "import", "json", str(export_file))
    for target in (db, fresh):
        session = Session(Settings(db_flag=str(target)))
        conn = session.store.conn
        assert queries.rollup_mismatches(conn) == IN_STEP
        assert conn.execute("SELECT sum(entries), sum(minutes) FROM logbook_hours").fetchone() == (
            300, sum(r["duration"] for r in rows))
        rollup, exact = day_tables(conn, "Europe/Berlin")
        assert rollup == exact and sum(row[2] for row in rollup) == 300
        session.close()


def test_doctor_reports_and_rebuilds_a_rollup_out_of_step(cli, isolated_home):
    cli("log", "add", "--minutes", "20", "--when", "2026-03-01T10:00")
    assert cli("doctor", "--json").json["ok"]
    import sqlite3

    conn = sqlite3.connect(isolated_home / "practiceplan.db")
    conn.execute("UPDATE logbook_hours SET minutes = minutes + 1")  # damage only the derived table
    conn.commit()
    conn.close()
    report = cli("doctor", "--json", ok=False).json
    check = next(c for c in report["checks"] if c["name"] == "rollup")
    assert check["status"] == "error" and "logbook_hours" in check["message"] and not report["ok"]
    fixed = cli("doctor", "--fix", "--json").json
    assert next(c for c in fixed["checks"] if c["name"] == "rollup")["fixed"] and fixed["ok"]
    assert next(c for c in cli("doctor", "--json").json["checks"] if c["name"] == "rollup")["status"] == "ok"
