#!/usr/bin/env python3
"""``practiceplan stats`` and ``practiceplan progress`` benchmark: 50 plans, two years of occurrences, 10k and 100k
logbook entries.

Usage::

    python tests/benchmarks/bench_stats.py [--runs N] [--keep DIR] [--no-build WHEEL] [--entry-years Y]

    --runs N          measured runs per command (default 20)
    --keep DIR        work in DIR (created; must be empty) and keep the venv, data homes and files there;
                      by default everything lives in a temporary folder that is removed at the end
    --no-build WHEEL  install this wheel instead of building one from the checkout
    --entry-years Y   spread the free-practice entries over the last Y years (default 2, the two years of the
                      plans; 5 gives a five-year logbook history: plans and occurrences stay as they are)

Standard library only. Helpers (processes, wire-format entries, percentiles) come from ``bench_startup.py``
in this folder, loaded by path.

1. Fresh venv, wheel of the checkout (or ``--no-build``), installed with its dependencies: every measured
   ``practiceplan`` is that venv's console script.
2. Data setup (not measured) with the INSTALLED package's Python API, through a generator script run by the
   venv's python: one home (``PRACTICEPLAN_HOME``) gets 50 plans created two years (730 days) before "now"
   (daily / weekly on several days / monthly / RRULE, different times, durations, flex kinds and zones),
   its horizon is then extended with the clock 14 days before "now", so two years (+ the 90-day horizon) of
   occurrences are materialised. Past occurrences (start before "now") are decided in ONE transaction with
   the domain functions: ~70 % checked in (``occurrences.checkin``, a linked logbook entry each), ~5 %
   skipped (``status='skipped'`` plus a ``metrics.history`` record), the rest left open (missed).
   Plans with a piece have a tempo target (``targets.tempo``); 60 % of their check-ins record progress
   (``checkin --tempo/--ceiling/--tension``: a clean tempo rising over the two years, a ceiling, a tension
   spot in half of them, a passage's clean tempo in 30 %), from a random generator of its own.
   The home is then copied, so both homes hold exactly the same plans and occurrences.
3. Free-practice entries (wire format of ``bench_startup.write_entries``) are imported with
   ``practiceplan log import FILE`` so the logbook holds 10,000 resp. 100,000 entries in total (check-in
   entries included). Free entries are spread evenly over the same two years in both homes, so the homes
   differ only in the number of logbook entries (the 10k home has fewer free entries per day). With
   ``--entry-years Y`` the free entries are spread evenly over the last Y years (365 * Y + Y // 4 days)
   instead: a longer logbook than the plans' two years, everything else the same.
4. Measured: ``practiceplan stats`` (human output to /dev/null), ``practiceplan stats --json``,
   ``practiceplan progress`` and ``practiceplan progress --json`` at 10k and at 100k, interleaved round robin with ``python -c pass`` (the venv's python), with ``NO_COLOR=1``,
   ``PRACTICEPLAN_NOW`` = real now rounded down to the hour, ``PRACTICEPLAN_TZ=Europe/Berlin``. One warm-up
   run per command first (the first ``stats`` of a home extends the horizon by 14 days): timed and reported
   on its own. Then N iterations; iteration i starts at command i. Reported: median, p90, min (ms).
   Goals of the issue: stats@100k median <= 300 ms; stats@100k <= 1.3 x stats@10k; the same for progress
   (issue 15: progress at 100k within the stats budget).
5. A cProfile top 15 (cumulative) of one ``stats --json`` at 100k (``python -m cProfile -s cumulative -m
   practiceplan stats --json`` in the venv), and the top 15 of the same run without the interpreter / runpy /
   click / typer / error-handler call chain and ``cached_property`` rows, which show where ``stats`` spends it.

Exit status 0 even when a goal fails (this is a report); 1 when something could not be run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path


def _load_startup_helpers():
    path = Path(__file__).resolve().with_name("bench_startup.py")
    spec = importlib.util.spec_from_file_location("bench_startup", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_startup", module)
    spec.loader.exec_module(module)
    return module


bs = _load_startup_helpers()
BenchError, say, clean_env, run, timed_quiet, pct = bs.BenchError, bs.say, bs.clean_env, bs.run, bs.timed_quiet, bs.pct

PROJECT_ROOT = bs.PROJECT_ROOT
ZONE = "Europe/Berlin"
HISTORY_DAYS = 730  # plans are created this many days before "now"
SETUP_DAYS_EARLIER = 14  # the horizon is extended with the clock this many days before "now"
SIZES = (10_000, 100_000)
COMPLETED_SHARE = 0.70
SKIPPED_SHARE = 0.05
GOAL_MS = 300.0
GOAL_RATIO = 1.3
PROFILE_LINES = 15
# cProfile rows (file names without folders) of the call chain around a command, left out of the second listing
CALL_CHAIN = ("{built-in method builtins.exec}", "<string>:1(<module>)", "<frozen runpy>", "__main__.py:",
              " app.py:", " main.py:", " core.py:", " _common.py:", " functools.py:")

# --------------------------------------------------------------------------- generator (runs in the bench venv)

GENERATOR = r'''
"""Data setup for bench_stats.py, run by the benchmark venv's python against the installed package."""
import json
import random
import sys
from datetime import date, datetime, time, timedelta, timezone

from practiceplan.domain.occurrences import checkin
from practiceplan.domain.models import iso_z, occurrence_history, occurrence_start
from practiceplan.domain.plans import PlanInput
from practiceplan.services.session import Session
from practiceplan.settings import Settings

args = json.loads(sys.argv[1])
UTC = timezone.utc
now = datetime.fromisoformat(args["now"]).astimezone(UTC)
created = now - timedelta(days=args["history_days"])
extend_at = now - timedelta(days=args["setup_days_earlier"])
env = {"PRACTICEPLAN_HOME": args["home"], "PRACTICEPLAN_TZ": args["zone"]}
rng = random.Random(20240612)
ID_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"
PASSAGES = ["mm.1-8", "mm.12-16", "coda", "bridge", "cadenza"]
prng = random.Random(15)  # progress records: their own draws, so the rest of the data is as before


def progress_for(plan, start):
    """checkin --tempo/--ceiling/--tension for 60 % of the check-ins of plans with a piece."""
    refs = plan.get("pieceRefs") or []
    if not refs or prng.random() >= 0.6:
        return None
    title = refs[0]["title"]
    bpm = 50 + (start - created).days * 40 // args["history_days"] + prng.randint(-3, 3)
    records = [{"kind": "clean", "piece": title, "bpm": bpm},
               {"kind": "ceiling", "piece": title, "bpm": bpm + prng.randint(4, 12)}]
    if prng.random() < 0.5:
        records.append({"kind": "tension", "piece": title, "passage": prng.choice(PASSAGES)})
    if prng.random() < 0.3:
        records.append({"kind": "clean", "piece": title, "passage": prng.choice(PASSAGES), "bpm": bpm - 6})
    return records

FLEX = ["fixed", "same-day", "anytime", "weekly"]
ZONES = [None, None, None, "Europe/London", None, "America/New_York", None, "Asia/Tokyo", None, "UTC"]
PIECES = [("Clair de lune", "Debussy"), ("Invention No. 8", "J. S. Bach"), ("Nocturne Op. 9 No. 2", "Chopin"),
          ("Sonata K. 545", "Mozart"), ("Träumerei", "Schumann")]
TECHNIQUES = ["scales", "arpeggios", "octaves", "trills", "voicing"]
# (kind, spec, count): 50 plans in all
SHAPES = [
    ("every", ("daily", None, None), 6),
    ("every", ("daily", None, 2), 3),
    ("every", ("daily", None, 3), 2),
    ("every", ("weekly", ["mo,we,fr"], None), 4),
    ("every", ("weekly", ["tu,th,sa"], None), 4),
    ("every", ("weekly", ["tu,th"], None), 4),
    ("every", ("weekly", ["sa,su"], None), 4),
    ("every", ("weekly", ["mo"], None), 2),
    ("every", ("weekly", ["we"], None), 2),
    ("every", ("weekly", ["fr"], None), 2),
    ("every", ("weekly", ["su"], None), 2),
    ("every", ("weekly", ["th"], 2), 3),
    ("every", ("monthly", None, None), 5),
    ("rrule", "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR", 1),
    ("rrule", "FREQ=MONTHLY;BYDAY=2TU", 1),
    ("rrule", "FREQ=WEEKLY;INTERVAL=2;BYDAY=SA,SU", 1),
    ("rrule", "FREQ=MONTHLY;BYMONTHDAY=-1", 1),
    ("rrule", "FREQ=MONTHLY;INTERVAL=3;BYDAY=1SA", 1),
    ("rrule", "FREQ=YEARLY", 1),
    ("rrule", "FREQ=WEEKLY;BYDAY=TU,TH", 1),
]


def plan_inputs():
    start = created.astimezone(timezone.utc).date()
    number = 0
    for kind, spec, count in SHAPES:
        for _ in range(count):
            number += 1
            title, composer = PIECES[number % len(PIECES)]
            inp = PlanInput(
                title=f"Plan {number:02d}: {title}",
                at=time(6 + (number * 7) % 16, (number * 15) % 60),
                minutes=10 + (number * 5) % 80,
                flex=FLEX[number % len(FLEX)],
                zone=ZONES[number % len(ZONES)],
                start=start,
                techniques=[TECHNIQUES[number % len(TECHNIQUES)]],
                pieces=[{"title": title, "composer": composer}] if number % 3 else None,
                targets={"tempo": 96} if number % 3 else None,
            )
            if kind == "every":
                inp.every, inp.on, inp.interval = spec
            else:
                inp.rrule = spec
            yield inp


planner = Session(Settings(env=env)).at(created)
for inp in plan_inputs():
    planner.plans.add(inp)
planner.close()

# A planner in regular use: the horizon is extended every 30 days (a single jump across two years would be capped
# at the horizon, as a clock far ahead is), then once more 14 days before "now".
step = created
while step < extend_at:
    planner = Session(Settings(env=env)).at(step)
    planner.plans.extend_horizon()
    planner.close()
    step += timedelta(days=30)
planner = Session(Settings(env=env)).at(extend_at)
planner.plans.extend_horizon()
store = planner.store
plans = {p["id"]: p for p in store.plans()}
occurrences = store.occurrences()
now_z = iso_z(now)
past = sorted((o for o in occurrences if (o.get("scheduledStart") or "") < now_z), key=lambda o: o["scheduledStart"])
entries, updated = [], []
completed = skipped = 0
for occ in past:
    draw = rng.random()
    start = occurrence_start(occ)
    if draw < args["completed_share"]:
        when = start + timedelta(minutes=rng.randint(-20, 90))
        recorded = min(when + timedelta(minutes=30), now - timedelta(minutes=1))
        entry, occ2 = checkin(
            plans[occ["planId"]], occ, now=recorded, when=min(when, recorded),
            entry_id="entry_" + "".join(rng.choice(ID_CHARS) for _ in range(20)),
            user_zone=args["zone"], default_instrument="piano",
            minutes=rng.choice([None, None, rng.randint(5, 90)]),
            mood=rng.choice([None, "neutral", "satisfied"]),
            progress=progress_for(plans[occ["planId"]], start),
        )
        entries.append(entry)
        updated.append(occ2)
        completed += 1
    elif draw < args["completed_share"] + args["skipped_share"]:
        stamp = iso_z(min(start + timedelta(hours=2), now - timedelta(minutes=1)))
        metrics = dict(occ.get("metrics") or {})
        metrics["history"] = [*occurrence_history(occ), {"at": stamp, "action": "skip", "reason": "bench"}]
        updated.append({**occ, "status": "skipped", "metrics": metrics, "updatedAt": stamp})
        skipped += 1
with store.write():
    store.save_many("logbook_entry", entries, now_z)
    store.save_many("plan_occurrence", updated, now_z)
horizons = sorted(h for h in store.plan_horizons().values() if h)
planner.close()
print(json.dumps({
    "plans": len(plans), "occurrences": len(occurrences), "past": len(past), "completed": completed,
    "skipped": skipped, "open_past": len(past) - completed - skipped, "checkin_entries": len(entries),
    "first_start": occurrences[0]["scheduledStart"] if occurrences else None,
    "last_start": max(o["scheduledStart"] for o in occurrences) if occurrences else None,
    "horizon": horizons[0] if horizons else None,
}))
'''


# --------------------------------------------------------------------------- helpers


def loadavg() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def db_counts(home: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{home / 'practiceplan.db'}?mode=ro", uri=True)
    try:
        q = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "plans": q("SELECT count(*) FROM practice_plans WHERE deleted_at IS NULL"),
            "occurrences": q("SELECT count(*) FROM plan_occurrences WHERE deleted_at IS NULL"),
            "completed": q("SELECT count(*) FROM plan_occurrences WHERE deleted_at IS NULL AND status = 'completed'"),
            "skipped": q("SELECT count(*) FROM plan_occurrences WHERE deleted_at IS NULL AND status = 'skipped'"),
            "entries": q("SELECT count(*) FROM logbook_entries WHERE deleted_at IS NULL"),
            "linked": q("SELECT count(*) FROM logbook_entries WHERE deleted_at IS NULL "
                        "AND plan_occurrence_id IS NOT NULL"),
        }
    finally:
        conn.close()


def setup_venv(args: argparse.Namespace, work: Path) -> tuple[str, str]:
    """Fresh venv with the wheel installed, exactly as bench_startup does."""
    vpy, pp, _ = bs.setup_venv(args, work)
    return vpy, pp


def profile_top(vpy: str, env: dict[str, str]) -> tuple[list[str], list[str]]:
    proc = subprocess.run([vpy, "-m", "cProfile", "-s", "cumulative", "-m", "practiceplan", "stats", "--json"],
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"cProfile run failed ({proc.returncode})\n{proc.stderr[-2000:]}")
    lines = proc.stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if "function calls" in line), None)
    if start is None:
        raise BenchError("no cProfile report in the output")
    header = next((i for i in range(start, len(lines)) if lines[i].lstrip().startswith("ncalls")), None)
    if header is None:
        raise BenchError("no cProfile table header in the output")
    rows = []
    for line in lines[header + 1:]:
        if not line.strip():
            break
        rows.append(line)
    top = lines[start:header + 1] + rows[:PROFILE_LINES]
    # The first rows are the interpreter / runpy / click / typer / error-handler call chain around the command:
    # also list the rows without it, which show where the command itself spends its time.
    inner = [r for r in rows if not any(marker in r for marker in CALL_CHAIN)][:PROFILE_LINES]
    return top, [lines[header], *inner]


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    return bs.run_main("bench_stats", "practiceplan stats benchmark (see the module docstring).", 20, bench, argv,
                       add_arguments=_add_arguments)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--entry-years", type=int, default=2, metavar="Y", choices=range(1, 51),
                        help="spread the free-practice entries over the last Y years (default 2)")


def entry_days(years: int) -> int:
    """Days of logbook history for ``--entry-years``: 2 years are the plans' 730 days."""
    return 365 * years + years // 4


def bench(args: argparse.Namespace, work: Path) -> None:
    say("practiceplan stats benchmark")
    say("=" * 28)
    say(f"host: {platform.platform()}, {os.cpu_count()} CPUs, load average at start {loadavg()}")
    say(f"project: {PROJECT_ROOT}")
    say(f"interpreter for the venv: {sys.executable} (Python {platform.python_version()})")
    say()
    say("setup")
    vpy, pp = setup_venv(args, work)

    # ---------------------------------------------------------------- clock
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    now_text = now.strftime("%Y-%m-%dT%H:%M:%SZ")

    def env_for(home: Path) -> dict[str, str]:
        return clean_env({"PRACTICEPLAN_TZ": ZONE, "NO_COLOR": "1", "PRACTICEPLAN_NOW": now_text,
                          "PRACTICEPLAN_HOME": str(home)})

    say()
    say(f"clock: PRACTICEPLAN_NOW={now_text} PRACTICEPLAN_TZ={ZONE} NO_COLOR=1; plans created {HISTORY_DAYS} days "
        f"earlier, horizon extended {SETUP_DAYS_EARLIER} days earlier")
    history = entry_days(args.entry_years)
    say(f"logbook history: free-practice entries spread over the last {history} days ({args.entry_years} years)")

    # ---------------------------------------------------------------- plans, occurrences, check-ins
    homes = {size: work / f"home-{size // 1000}k" for size in SIZES}
    first_home = homes[SIZES[0]]
    first_home.mkdir()
    gen_path = work / "generate_stats_data.py"
    gen_path.write_text(GENERATOR, encoding="utf-8")
    gen_args = {"home": str(first_home), "zone": ZONE, "now": now.isoformat(), "history_days": HISTORY_DAYS,
                "setup_days_earlier": SETUP_DAYS_EARLIER, "completed_share": COMPLETED_SHARE,
                "skipped_share": SKIPPED_SHARE}
    t, out = run([vpy, str(gen_path), json.dumps(gen_args)], clean_env({}), "data generator")
    gen = json.loads(out.strip().splitlines()[-1])
    say(f"  generator ({t:.1f} s): {gen['plans']} plans, {gen['occurrences']:,} live occurrences "
        f"({gen['first_start'][:10]} .. {gen['last_start'][:10]}, horizon {gen['horizon']}), "
        f"{gen['past']:,} before now: {gen['completed']:,} completed "
        f"({gen['completed'] / max(gen['past'], 1):.1%}), {gen['skipped']:,} skipped "
        f"({gen['skipped'] / max(gen['past'], 1):.1%}), {gen['open_past']:,} left open; "
        f"{gen['checkin_entries']:,} check-in logbook entries")
    checkins = gen["checkin_entries"]
    if gen["plans"] != 50:
        raise BenchError(f"expected 50 plans, the generator made {gen['plans']}")
    if checkins >= SIZES[0]:
        raise BenchError(f"{checkins:,} check-in entries do not fit in the {SIZES[0]:,}-entry home")
    for size in SIZES[1:]:
        shutil.copytree(first_home, homes[size])
    say(f"  copied {first_home.name} to " + ", ".join(homes[s].name for s in SIZES[1:]) + " (same plans/occurrences)")

    # ---------------------------------------------------------------- free entries, imported with the CLI
    data = work / "data"
    data.mkdir()
    newest_entry = now - timedelta(hours=1)
    for size in SIZES:
        free = size - checkins
        path = data / f"free-{size // 1000}k.jsonl"
        bs.ENTRIES_PER_DAY = free / history  # write_entries spaces entries 86400 / ENTRIES_PER_DAY s apart
        start = time.perf_counter()
        oldest, newest = bs.write_entries(path, free, newest_entry)
        gen_s = time.perf_counter() - start
        t, out = run([pp, "log", "import", str(path)], env_for(homes[size]), f"practiceplan log import ({free:,})")
        counts = db_counts(homes[size])
        say(f"  {homes[size].name}: generated {free:,} free entries ({oldest[:10]} .. {newest[:10]}, "
            f"{path.stat().st_size / 2**20:.1f} MiB, {gen_s:.1f} s), log import {t:.2f} s — {out.strip()}")
        say(f"    database: {counts['plans']} plans, {counts['occurrences']:,} occurrences "
            f"({counts['completed']:,} completed, {counts['skipped']:,} skipped), {counts['entries']:,} logbook "
            f"entries ({counts['linked']:,} linked to an occurrence)")
        if counts["entries"] != size:
            raise BenchError(f"{homes[size].name} holds {counts['entries']:,} entries, expected {size:,}")

    # ---------------------------------------------------------------- interleaved measurement
    envs = {size: env_for(home) for size, home in homes.items()}
    commands: list[tuple[str, list[str], dict[str, str]]] = [("python -c pass", [vpy, "-c", "pass"], envs[SIZES[-1]])]
    for size in SIZES:
        commands.append((f"practiceplan stats @{size // 1000}k", [pp, "stats"], envs[size]))
    for size in SIZES:
        commands.append((f"practiceplan stats --json @{size // 1000}k", [pp, "stats", "--json"], envs[size]))
    for variant in (["progress"], ["progress", "--json"]):
        for size in SIZES:
            commands.append((f"practiceplan {' '.join(variant)} @{size // 1000}k", [pp, *variant], envs[size]))
    say()
    say("warm-up (first run of each command; the first `stats` per home extends the horizon by "
        f"{SETUP_DAYS_EARLIER} days; not part of the measurement)")
    for name, cmd, env in commands:
        say(f"  {name}: {timed_quiet(cmd, env) * 1000:.0f} ms")
    for size in SIZES:
        _, out = run([pp, "stats", "--json"], envs[size], "practiceplan stats --json")
        say(f"  stats --json @{size // 1000}k: {len(out):,} bytes of JSON, valid: {_is_json(out)}")
        _, out = run([pp, "progress", "--json"], envs[size], "practiceplan progress --json")
        pieces = json.loads(out)["pieces"] if _is_json(out) else []
        say(f"  progress --json @{size // 1000}k: {len(out):,} bytes of JSON, {len(pieces)} pieces, "
            f"{sum(len(p['points']) for p in pieces)} points in the window, valid: {_is_json(out)}")
    with sqlite3.connect(f"file:{homes[SIZES[-1]] / 'practiceplan.db'}?mode=ro", uri=True) as conn:
        with_progress = conn.execute("SELECT count(*) FROM logbook_entries WHERE json_type(doc, "
                                     "'$.metadata.progress') = 'array'").fetchone()[0]
    say(f"  entries with progress records: {with_progress:,} (the same in every home)")
    times: dict[str, list[float]] = {name: [] for name, _, _ in commands}
    say()
    say(f"measuring: {args.runs} interleaved runs of {len(commands)} commands; load average {loadavg()} ...")
    start = time.perf_counter()
    for i in range(args.runs):
        for k in range(len(commands)):
            name, cmd, env = commands[(i + k) % len(commands)]
            times[name].append(timed_quiet(cmd, env))
    say(f"  done in {time.perf_counter() - start:.1f} s; load average now {loadavg()}")

    med = {name: statistics.median(v) * 1000 for name, v in times.items()}
    py = med["python -c pass"]
    say()
    say(f"results (ms, {args.runs} runs each)")
    width = max(len(n) for n in times)
    say(f"  {'command':<{width}}  {'median':>8}  {'p90':>8}  {'min':>8}  {'x python':>8}")
    say(f"  {'-' * width}  {'-' * 8}  {'-' * 8}  {'-' * 8}  {'-' * 8}")
    for name, values in times.items():
        ms = [v * 1000 for v in values]
        say(f"  {name:<{width}}  {med[name]:8.1f}  {pct(ms, 0.9):8.1f}  {min(ms):8.1f}  {med[name] / py:8.2f}")

    say()
    small, big = SIZES[0] // 1000, SIZES[-1] // 1000
    for variant in ("stats", "stats --json", "progress", "progress --json"):
        t_big, t_small = med[f"practiceplan {variant} @{big}k"], med[f"practiceplan {variant} @{small}k"]
        ratio = t_big / t_small
        label = " (--json)" if variant.endswith("--json") else ""
        say(f"{'PASS' if t_big <= GOAL_MS else 'FAIL'}: {variant}@{big}k median {t_big:.1f} ms "
            f"(goal <= {GOAL_MS:.0f} ms){label}")
        say(f"{'PASS' if ratio <= GOAL_RATIO else 'FAIL'}: {variant}@{big}k / {variant}@{small}k = {ratio:.3f} "
            f"(goal <= {GOAL_RATIO})")

    # ---------------------------------------------------------------- profile
    say()
    say(f"cProfile of one `stats --json` @{big}k (python -m cProfile -s cumulative -m practiceplan stats --json), "
        f"top {PROFILE_LINES}:")
    top, inner = profile_top(vpy, envs[SIZES[-1]])
    for line in top:
        say(f"  {line}" if line.strip() else "")
    say()
    say(f"  the same run without the interpreter/click/typer call chain and cached_property (functools) rows, "
        f"top {PROFILE_LINES}:")
    for line in inner:
        say(f"  {line}")


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
