"""`practiceplan demo`: a realistic database in one fixed demo folder, replaced on each run (the CLI then shows its
`today` screen and how to use the demo data)."""

from __future__ import annotations

import random
import tempfile
from datetime import time, timedelta
from pathlib import Path

from practiceplan.domain.models import iso_z, parse_instant
from practiceplan.domain.plans import PlanInput
from practiceplan.errors import InvalidInputError
from practiceplan.services.session import Session
from practiceplan.settings import Settings


def build_demo(home: Path, now_env: dict[str, str] | None = None) -> Session:
    """Two plans started three weeks ago, ~80 % of past sessions checked in, some free practice."""
    planner = demo_session(home, now_env)
    now = planner.now
    zone = planner.zone
    start = (now.astimezone(zone) - timedelta(days=21)).date()
    rng = random.Random(20260301)
    planner.at(now - timedelta(days=22))
    planner.plans.add(PlanInput(
        title="Scales & arpeggios", every="weekly", on=["mo,tu,we,th,fr"], start=start,
        at=time(7, 30), minutes=20, flex="same-day", instrument="piano",
        techniques=["scales", "arpeggios"], segments=[{"label": "Major scales", "durationMinutes": 10},
                                                      {"label": "Arpeggios", "durationMinutes": 10}],
        targets={"tempo": 92},
    ))
    sonata, _ = planner.plans.add(PlanInput(
        title="Repertoire: Clair de lune", every="weekly", on=["mo,we,fr,sa"], start=start,
        at=time(18, 0), minutes=45, flex="anytime", instrument="piano",
        pieces=[{"title": "Clair de lune", "composer": "Debussy"}], focus=["phrasing", "pedalling"],
        segments=[{"label": "Warm-up", "durationMinutes": 10}, {"label": "Bars 1-26", "durationMinutes": 20,
                  "instructions": "slow, listen to the voicing"}, {"label": "Run-through", "durationMinutes": 15}],
        prompts=["What went well?", "What will you change next time?"],
    ))
    planner.at(now)
    planner.plans.extend_horizon()
    past = planner.store.occurrences(start_before=iso_z(now - timedelta(hours=2)))
    for occ in past:
        if rng.random() < 0.8:
            moment = parse_instant(occ["scheduledStart"]) + timedelta(minutes=rng.randint(15, 50))
            planner.at(moment)
            planner.occurrences.checkin(occ["id"], minutes=rng.choice([15, 20, 25, 30, 40, 45]),
                            mood=rng.choice(["satisfied", "neutral", "excited", None]),
                            answers={"What went well?": rng.choice(["left hand", "dynamics", "steady tempo"])}
                            if occ["planId"] == sonata["id"] else None)
    for days_ago in range(21, 0, -1):
        if rng.random() < 0.35:
            moment = now - timedelta(days=days_ago, hours=rng.randint(0, 4))
            planner.at(moment)
            planner.logbook.add({"timestamp": iso_z(moment), "duration": rng.choice([10, 20, 30, 60]),
                               "type": rng.choice(["practice", "rehearsal", "technique"]), "instrument": "piano",
                               "pieces": [{"title": "Gymnopédie No. 1", "composer": "Satie"}],
                               "notes": "free practice", "metadata": {"source": "manual", "timezone": zone.key}})
    planner.at(now)
    return planner


MARKER = ".practiceplan-demo"


def demo_folder(settings: Settings) -> Path:
    """Where `practiceplan demo` keeps its data: one fixed folder next to your own data, replaced on each run."""
    return settings.data_dir / "demo"


def create_demo(home: Path | None, settings: Settings | None = None) -> tuple[Path, Session]:
    """A fresh demo in ``home`` (default: :func:`demo_folder`): (folder, its session). A previous demo there is
    replaced; a folder that holds anything else is refused, never emptied."""
    import shutil

    folder = Path(home) if home else demo_folder(settings or Settings())
    if folder.exists() and any(folder.iterdir()) and not (folder / MARKER).exists():
        raise InvalidInputError(f"{folder} is not empty and holds no earlier demo; not touching it",
                                hint="choose an empty or new folder with --home DIR")
    folder.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=".demo-", dir=folder.parent))
    try:
        (fresh / MARKER).write_text("made by `practiceplan demo`; replaced by the next run\n", encoding="utf-8")
        build_demo(fresh).close()
        if folder.exists():
            shutil.rmtree(folder)
        fresh.rename(folder)
    finally:
        if fresh.exists():
            shutil.rmtree(fresh, ignore_errors=True)
    return folder, demo_session(folder)


def demo_session(folder: Path, env_source: dict[str, str] | None = None) -> Session:
    """A session on the demo data in ``folder`` (clock and zone from ``env_source``, default: this process)."""
    import os

    env = dict(os.environ if env_source is None else env_source)
    env["PRACTICEPLAN_HOME"] = str(folder)
    env.pop("PRACTICEPLAN_DB", None)
    return Session(Settings(env=env))
