"""Generate the saved database of the current schema: ``tests/store/fixtures/schema-<N>.db`` (+ ``.json``).

Run it with the code of the release that introduces schema N, once, and commit the result; never regenerate
an older fixture (it stands for databases users already have). The script refuses to overwrite one.

    python tests/store/make_fixtures.py                      # uses the importable practiceplan
    # schema 1 was generated from a clean checkout of the commit that released it:
    git archive <release commit> src | tar -x -C /tmp/pp-release
    PYTHONPATH=/tmp/pp-release/src python tests/store/make_fixtures.py

The data is deterministic (fixed clock, seeded ids) and "dirty" on purpose (reliability-plan.md T6):
pending outbox rows (and some acknowledged ones removed), tombstones (a deleted plan with its sessions, a
deleted entry), completed / skipped / rescheduled sessions, unicode everywhere (CJK, RTL, combining marks,
emoji, astral-plane characters), maximum-length fields (a 200-character title, 20,000-character notes),
unknown fields that must survive, events and meta rows. Sync conflicts appear from the schema that adds
their table; schema 1 has none. Only the public Session / Store API and plain SQL are used, so the script
runs against the release's own code.

The ``.json`` beside each fixture records its schema version and row counts (a checksum of the fixture's
content is computed by the tests themselves, before and after migrating).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sqlite3
import sys
import tempfile
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

FIXTURES = Path(__file__).with_name("fixtures")
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
ZONE = "Europe/Berlin"

# Maximum-length and hostile-but-valid unicode text.
TITLE_200 = ("Étude 練習曲 — تمرين ✓🎹 " * 20)[:199] + "!"
NOTES_20000 = ("Line with ünïcödé, 中文, עברית, combining e\u0301, 🎻𝄞; tabs\tand newlines.\n" * 400)[:20000]
COMPOSER = "Сергей Рахманинов"


def build(home: Path) -> Path:
    rng = random.Random(20260302)
    secrets.choice = rng.choice  # type: ignore[assignment]  # deterministic ids from new_id()

    from practiceplan.domain.plans import PlanInput
    from practiceplan.services.session import Session
    from practiceplan.settings import Settings

    env = {"PRACTICEPLAN_HOME": str(home), "PRACTICEPLAN_TZ": ZONE, "PRACTICEPLAN_NOW": NOW.isoformat()}
    planner = Session(Settings(env=env))
    start = (NOW - timedelta(days=21)).date()
    planner.at(NOW - timedelta(days=22))
    scales, _ = planner.plans.add(PlanInput(
        title="Scales & arpeggios", every="weekly", on=["mo,we,fr"], start=start, at=time(7, 30), minutes=20,
        flex="same-day", instrument="piano", techniques=["scales"], targets={"tempo": 92},
        segments=[{"label": "Major scales", "durationMinutes": 10}, {"label": "Arpeggios", "durationMinutes": 10}],
    ))
    unicode_plan, _ = planner.plans.add(PlanInput(
        title=TITLE_200, every="daily", start=start, at=time(18, 0), minutes=45, flex="anytime",
        instrument="cello", pieces=[{"title": "Vocalise", "composer": COMPOSER}],
        prompts=["Что получилось?", "What will you change next time? 🎯"], focus=["phrasing", "音色"],
    ))
    doomed, _ = planner.plans.add(PlanInput(title="Old routine", every="daily", start=start, at=time(12, 0)))
    shelved, _ = planner.plans.add(PlanInput(title="Summer project", every="weekly", on=["sa"], start=start,
                                            at=time(10, 0)))

    past = planner.store.occurrences(plan_id=scales["id"], start_before=(NOW - timedelta(hours=2)).isoformat())
    for index, occ in enumerate(past):
        moment = datetime.fromisoformat(occ["scheduledStart"].replace("Z", "+00:00")) + timedelta(minutes=25)
        planner.at(moment)
        if index % 3 == 0:
            planner.occurrences.checkin(occ["id"], minutes=20 + index, mood="satisfied", notes=f"session {index}")
    cello = planner.store.occurrences(plan_id=unicode_plan["id"], start_before=NOW.isoformat())
    planner.at(NOW - timedelta(days=2))
    planner.occurrences.checkin(cello[-3]["id"], minutes=45, notes=NOTES_20000, mood="excited",
                    answers={"Что получилось?": "легато 🎶"})

    # A skipped and a rescheduled session, written the way the planner records them (status / metrics).
    stamp = "2026-02-27T08:00:00.000Z"
    skipped = {**cello[-5], "status": "skipped", "updatedAt": stamp,
               "metrics": {**(cello[-5].get("metrics") or {}),
                           "history": [{"at": stamp, "action": "skip", "reason": "ill 🤒"}]}}
    moved = {**cello[-4], "scheduledStart": "2026-02-26T19:30:00.000Z", "scheduledEnd": "2026-02-26T20:15:00.000Z",
             "updatedAt": stamp, "metrics": {**(cello[-4].get("metrics") or {}),
                                             "originalStart": cello[-4]["scheduledStart"]}}
    with planner.store.write():
        planner.store.save_many("plan_occurrence", [skipped, moved], stamp)

    # Free practice: unicode pieces, unknown fields, goal links, one deleted entry.
    for day in range(1, 8):
        moment = NOW - timedelta(days=day, hours=3)
        planner.at(moment)
        planner.logbook.add({
            "timestamp": moment.isoformat(), "duration": 10 * day, "type": "practice", "instrument": "Cello",
            "pieces": [{"title": "Prélude — BWV 1007", "composer": "J. S. Bach"}, {"title": "無題 🎼"}],
            "techniques": ["bowing", "vibrato"], "tags": [f"tag-{i}" for i in range(day * 7)],
            "notes": "מתרגל עם מטרונום" if day % 2 else None, "goal_ids": ["goal_long_tone"],
            "futureField": {"kept": True, "day": day},
            "metadata": {"source": "manual", "timezone": ZONE, "custom": ["x", 1, None]},
        })
    planner.at(NOW - timedelta(hours=5))
    gone = planner.logbook.add({"timestamp": (NOW - timedelta(hours=6)).isoformat(), "duration": 3,
                              "notes": "typo entry"})
    planner.logbook.delete(gone["id"])

    planner.at(NOW - timedelta(days=1))
    planner.plans.delete(doomed["id"])
    planner.plans.set_status(shelved["id"], "archived")

    planner.at(NOW)
    with planner.store.write():
        planner.store.save("goal", {
            "id": "goal_long_tone", "title": "Long tones daily 🎻", "description": None, "type": "practice_time",
            "target_value": 600, "current_value": 140, "target_date": "2026-06-30", "status": "active",
            "created_at": "2026-02-01T10:00:00.000Z", "updated_at": "2026-03-01T10:00:00.000Z",
        }, "2026-03-01T10:00:00.000Z")
        planner.store.add_event("plan.created", "2026-02-08T09:00:00.000Z", {"planId": scales["id"]})
        planner.store.add_event("stats.viewed", "2026-03-01T20:00:00.000Z", {"views": ["adherence", "日本"]})
        planner.store.conn.execute("INSERT INTO meta (key, value) VALUES ('sync.deviceId', 'device_fixture_1')")
        planner.store.conn.execute("INSERT INTO meta (key, value) VALUES ('sync.lastPull', '2026-02-28T12:00:00.000Z')")
        # Pretend the oldest changes were pushed and acknowledged: their outbox rows are gone.
        planner.store.conn.execute("DELETE FROM outbox WHERE seq <= 20")
    path = Path(planner.settings.db_path)
    planner.close()
    return path


def finish(source: Path, target: Path) -> dict[str, object]:
    """Copy ``source`` to a compact single file (rollback journal, no -wal) and describe it."""
    conn = sqlite3.connect(source, isolation_level=None)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    out = sqlite3.connect(target, isolation_level=None)
    conn.backup(out)
    conn.close()
    out.execute("PRAGMA journal_mode = DELETE")
    out.execute("VACUUM")
    version = out.execute("PRAGMA user_version").fetchone()[0]
    tables = [r[0] for r in out.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    counts = {t: out.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    assert out.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    out.close()
    return {"schemaVersion": version, "rowCounts": counts}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FIXTURES, help="folder for schema-<N>.db (default: %(default)s)")
    args = parser.parse_args(argv)
    from practiceplan.store.schema import SCHEMA_VERSION

    target = args.out / f"schema-{SCHEMA_VERSION}.db"
    if target.exists():
        print(f"{target} exists: released fixtures are never regenerated", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.pop("PRACTICEPLAN_FAULT", None)
        source = build(Path(tmp) / "home")
        info = finish(source, target)
    import practiceplan

    info = {"schemaVersion": info["schemaVersion"], "generatedBy": f"practiceplan {practiceplan.__version__}",
            "rowCounts": info["rowCounts"]}
    target.with_suffix(".json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {target}: {info}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
