#!/usr/bin/env python3
"""Startup benchmark for the ``practiceplan`` CLI, measured from a wheel install in a fresh virtual environment.

Usage::

    python tests/benchmarks/bench_startup.py [--runs N] [--keep DIR] [--no-build WHEEL]

    --runs N          measured runs per command (default 30)
    --keep DIR        work in DIR (created; must be empty) and keep the venv, data homes and files there;
                      by default everything lives in a temporary folder that is removed at the end
    --no-build WHEEL  install this wheel instead of building one from the checkout

What it does (standard library only; needs the package index that plain ``pip install`` uses):

1. Creates a fresh venv (``python -m venv``, the interpreter running this script), builds a wheel of the
   project (``python -m pip wheel --no-deps``; the project root is two folders above this file) and installs
   it into the venv with its dependencies, so every measured ``practiceplan`` is that venv's console script.
2. Creates data homes (``PRACTICEPLAN_HOME``) through the installed CLI: two homes with the same 20 plans
   (``plan add`` with daily / weekly / monthly / yearly / RRULE / one-off recurrences, different times and
   zones) and 10,000 resp. 50,000 logbook entries imported with ``log import FILE`` from generated JSON
   lines, plus a third home that only receives a 100,000-entry import. Entries are deterministic and have a
   constant density (8 per day going back from "now"), so the 10k home holds exactly the newest 10k entries
   of the 50k home: the recent weeks look the same and only the length of the history differs.
   Import times are wall times of the whole ``log import`` process.
3. The measured commands run with a fixed clock and zone: ``PRACTICEPLAN_NOW`` = the real now rounded down to
   the hour, ``PRACTICEPLAN_TZ=Europe/Berlin``, ``NO_COLOR=1``. Plans are added with the clock 14 days
   earlier, so the first ``today`` per home really extends the 90-day occurrence horizon; that first run is
   timed and reported on its own and is not part of the measurement.
4. One warm-up pass, then N interleaved iterations; iteration i starts at command i (round robin) so every
   command takes every position equally often. Commands: ``python -c pass`` (the venv's python),
   ``practiceplan --help``, ``practiceplan today`` at 10k and at 50k entries, ``today --json`` at 50k and
   ``log list --limit 50`` at 50k. Each run is one subprocess (stdout and stderr to /dev/null), timed with
   ``time.perf_counter`` around ``subprocess.run``. Reported: median, p90 and min in ms, and the goals of
   the issue: ``today`` at 50k at most 10x ``python -c pass``, and ``today`` at 50k no slower than at 10k
   (ratio at most 1.10).
5. Prints the installed typer version and checks with ``python -X importtime -m practiceplan`` (median of 5
   runs per module) that ``today`` and ``--help`` import none of dateparser, sqlite_utils, httpx, and lists
   the 10 most expensive imports of ``today`` by cumulative time.

Output is plain text on stdout. Exit status 0 even when a goal fails (this is a report); non-zero only when
something could not be run (build, install, a command that fails).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ZONE = "Europe/Berlin"
SETUP_DAYS_EARLIER = 14
ENTRIES_PER_DAY = 8
SIZES = (10_000, 50_000)
BIG_IMPORT = 100_000
FORBIDDEN = ("dateparser", "sqlite_utils", "httpx")
GOAL_VS_PYTHON = 10.0
GOAL_50K_VS_10K = 1.10
IMPORTTIME_RUNS = 5


class BenchError(Exception):
    """Something could not be run: reported on stderr, exit 1."""


def say(text: str = "") -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------- processes


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """The caller's environment without PYTHON*/PRACTICEPLAN*/VIRTUAL_ENV settings, plus ``extra``."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "PRACTICEPLAN_", "PIP_REQUIRE_VIRTUALENV"))
        and k not in ("VIRTUAL_ENV", "NO_COLOR")
    }
    env.update(extra)
    return env


def run(cmd: list[str], env: dict[str, str] | None = None, what: str = "", capture: bool = True) -> tuple[float, str]:
    """Run a command, raise BenchError if it fails; returns (seconds, stdout)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=capture, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        detail = ((proc.stderr or "") + (proc.stdout or "")).strip()[-2000:] if capture else ""
        raise BenchError(f"{what or ' '.join(cmd)} failed with exit code {proc.returncode}\n{detail}")
    return elapsed, proc.stdout or ""


def timed_quiet(cmd: list[str], env: dict[str, str]) -> float:
    """One measured run: output discarded, wall time in seconds."""
    start = time.perf_counter()
    rc = subprocess.call(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if rc != 0:
        run(cmd, env, " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd)))  # raises with stderr
        raise BenchError(f"{' '.join(cmd)} failed once with exit code {rc}")
    return elapsed


# --------------------------------------------------------------------------- data


def plan_commands(d0: date) -> list[list[str]]:
    """20 plans; ``d0`` is the setup day (dates are ISO so no natural-language parsing is involved)."""
    def d(days: int) -> str:
        return (d0 + timedelta(days=days)).isoformat()

    return [
        ["Scales", "--every", "weekly", "--on", "mo,we,fr", "--at", "07:30", "--minutes", "20", "--start", d(-120)],
        ["Arpeggios", "--every", "daily", "--at", "08:00", "--minutes", "10", "--start", d(-60),
         "--tz", "Europe/Berlin"],
        ["Etudes", "--rrule", "FREQ=MONTHLY;BYDAY=2TU", "--at", "19:00", "--tz", "Europe/Berlin", "--minutes", "45"],
        ["Sight-reading", "--every", "daily", "--interval", "2", "--at", "21:15", "--tz", "America/New_York",
         "--minutes", "15"],
        ["Bach inventions", "--every", "weekly", "--on", "tu,th", "--at", "18:00", "--tz", "Europe/London",
         "--minutes", "30", "--piece", "Invention No. 8 — J. S. Bach"],
        ["Chopin nocturne", "--rrule", "FREQ=WEEKLY;INTERVAL=2;BYDAY=SA,SU", "--at", "10:30", "--tz", "Europe/Paris",
         "--minutes", "40", "--flex", "same-day"],
        ["Lesson prep", "--every", "weekly", "--on", "fr", "--at", "17:00", "--minutes", "35",
         "--segment", "Warm-up:10", "--segment", "Sonata:25:slowly", "--flex", "weekly"],
        ["Repertoire review", "--every", "monthly", "--at", "12:00", "--start", d(-200), "--minutes", "60",
         "--tz", "Asia/Tokyo"],
        ["Ear training", "--rrule", "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR", "--at", "06:45", "--tz", "America/Los_Angeles",
         "--minutes", "10", "--flex", "anytime"],
        ["Recital run-through", "--rrule", "FREQ=MONTHLY;BYMONTHDAY=-1", "--at", "20:00", "--tz", "Australia/Sydney",
         "--minutes", "50"],
        ["Technique", "--every", "weekly", "--interval", "2", "--on", "mo", "--at", "09:00", "--tz", "UTC",
         "--minutes", "25", "--technique", "octaves", "--technique", "trills"],
        ["Improvisation", "--every", "daily", "--interval", "3", "--at", "22:30", "--tz", "Asia/Kolkata",
         "--minutes", "20"],
        ["Theory", "--every", "monthly", "--interval", "2", "--at", "16:00", "--tz", "America/Sao_Paulo",
         "--minutes", "30"],
        ["Duet rehearsal", "--rrule", "FREQ=WEEKLY;BYDAY=WE", "--at", "19:30", "--tz", "Europe/Vienna",
         "--minutes", "90", "--instrument", "violin"],
        ["Memorisation", "--every", "daily", "--at", "13:00", "--start", d(-30), "--end", d(30), "--minutes", "15",
         "--prompt", "What slipped?"],
        ["Metronome work", "--rrule", "FREQ=DAILY;COUNT=200", "--at", "07:00", "--minutes", "15",
         "--target", "tempo=92", "--start", d(-100)],
        ["Pedalling", "--every", "yearly", "--at", "11:00", "--start", d(-10), "--minutes", "30"],
        ["Quarterly recording", "--rrule", "FREQ=MONTHLY;INTERVAL=3;BYDAY=1SA", "--at", "15:00",
         "--tz", "America/Chicago", "--minutes", "120"],
        ["Masterclass", "--once", f"{d(20)}T18:00", "--tz", "Europe/Rome", "--minutes", "90"],
        ["Slow practice", "--every", "weekly", "--on", "sa,su", "--at", "09:30", "--tz", "Europe/Berlin",
         "--minutes", "45", "--exdate", d(7), "--flex", "fixed"],
    ]


PIECES = [
    ("Clair de lune", "Debussy"), ("Invention No. 8", "J. S. Bach"), ("Nocturne Op. 9 No. 2", "Chopin"),
    ("Sonata K. 545", "Mozart"), ("Für Elise", "Beethoven"), ("Gymnopédie No. 1", "Satie"),
    ("Prelude in C", "J. S. Bach"), ("Arabesque No. 1", "Debussy"), ("Träumerei", "Schumann"),
    ("Etude Op. 10 No. 3", "Chopin"),
]
TECHNIQUES = ["scales", "arpeggios", "octaves", "trills", "sight-reading", "pedalling", "voicing"]
TAGS = ["morning", "evening", "slow", "recording", "lesson", "memory"]
TYPES = ["practice"] * 8 + ["lesson", "rehearsal", "performance", "technique"]
MOODS = [None, "frustrated", "neutral", "satisfied", "excited"]
ID_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"


def iso_z(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def write_entries(path: Path, count: int, newest: datetime) -> tuple[str, str]:
    """``count`` wire-format entries as JSON lines, newest first, deterministic (the same seed gives the same
    prefix, so a smaller file is the newest part of a bigger one). Returns (oldest, newest) timestamps."""
    rng = random.Random(20240611)
    step = 86400 / ENTRIES_PER_DAY
    oldest = newest
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            stamp = newest - timedelta(seconds=i * step + rng.uniform(0, step * 0.8))
            oldest = stamp
            title, composer = rng.choice(PIECES)
            entry = {
                "id": "entry_" + "".join(rng.choice(ID_CHARS) for _ in range(20)),
                "timestamp": iso_z(stamp),
                "duration": rng.randint(5, 90),
                "type": rng.choice(TYPES),
                "instrument": "violin" if rng.random() < 0.15 else "piano",
                "pieces": [{"title": title, "composer": composer}] if rng.random() < 0.8 else [],
                "techniques": rng.sample(TECHNIQUES, rng.randint(0, 2)),
                "tags": rng.sample(TAGS, rng.randint(0, 2)),
                "goalIds": [],
                "mood": rng.choice(MOODS),
                "notes": f"session {i}: worked on bars {rng.randint(1, 120)}-{rng.randint(121, 200)}"
                if rng.random() < 0.4 else None,
                "metadata": {"source": "manual"},
                "createdAt": iso_z(stamp),
                "updatedAt": iso_z(stamp),
            }
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")
    return iso_z(oldest), iso_z(newest)


# --------------------------------------------------------------------------- statistics and import times


def pct(values: list[float], q: float) -> float:
    """Percentile with linear interpolation between closest ranks."""
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def parse_importtime(stderr: str) -> list[tuple[str, int, int, int]]:
    """``-X importtime`` lines -> [(module, self_us, cumulative_us, depth)]."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        parts = line.split(":", 1)[1].split("|")
        if len(parts) != 3:
            continue
        self_us, cum_us, name = parts
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2  # "| " then 2 spaces per nesting level
        rows.append((name.strip(), int(self_us), int(cum_us), depth))
    return rows


def importtime_profile(
    vpy: str, args: list[str], env: dict[str, str]
) -> tuple[dict[str, tuple[float, float, int]], set[str]]:
    """Median self/cumulative µs per module over IMPORTTIME_RUNS runs; and every module imported in any run."""
    samples: dict[str, list[tuple[int, int, int]]] = {}
    for _ in range(IMPORTTIME_RUNS):
        proc = subprocess.run([vpy, "-X", "importtime", "-m", "practiceplan", *args], env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            raise BenchError(f"python -X importtime -m practiceplan {' '.join(args)} failed ({proc.returncode})\n"
                             + proc.stderr[-2000:])
        for name, self_us, cum_us, depth in parse_importtime(proc.stderr):
            samples.setdefault(name, []).append((self_us, cum_us, depth))
    profile = {
        name: (statistics.median(s for s, _, _ in vals), statistics.median(c for _, c, _ in vals), vals[0][2])
        for name, vals in samples.items()
    }
    return profile, set(samples)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    return run_main("bench_startup", "practiceplan startup benchmark (see the module docstring).", 30, bench, argv)


def run_main(name: str, description: str, default_runs: int, bench_fn, argv: list[str] | None = None,
             add_arguments=None) -> int:
    """Shared command line of the benchmark scripts: --runs, --keep, --no-build (plus what ``add_arguments``
    adds to the parser); work folder; errors."""
    parser = argparse.ArgumentParser(description=description)
    if add_arguments is not None:
        add_arguments(parser)
    parser.add_argument("--runs", type=int, default=default_runs, metavar="N",
                        help=f"measured runs per command (default {default_runs})")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR and keep it (must be empty or new)")
    parser.add_argument("--no-build", type=Path, metavar="WHEEL", dest="wheel",
                        help="install this wheel instead of building one")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.wheel is not None:
        args.wheel = args.wheel.resolve()
        if not args.wheel.is_file() or args.wheel.suffix != ".whl":
            parser.error(f"--no-build: {args.wheel} is not a wheel file")

    script_start = time.perf_counter()
    if args.keep:
        work = args.keep.resolve()
        if work.exists() and (not work.is_dir() or any(work.iterdir())):
            parser.error(f"--keep: {work} exists and is not an empty folder")
        work.mkdir(parents=True, exist_ok=True)
        cleanup = None
    else:
        cleanup = tempfile.TemporaryDirectory(prefix=f"practiceplan-{name}-")
        work = Path(cleanup.name)
    try:
        bench_fn(args, work)
    except BenchError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    finally:
        if cleanup is not None:
            cleanup.cleanup()
    say()
    say(f"work folder: {work}" + (" (kept)" if args.keep else " (removed)"))
    say("load average at the end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    say(f"total wall time of this script: {time.perf_counter() - script_start:.1f} s")
    return 0


def setup_venv(args: argparse.Namespace, work: Path) -> tuple[str, str, dict[str, str]]:
    """Fresh venv with the project's wheel (built, or --no-build) installed.
    Returns (venv python, practiceplan script, installed versions)."""
    venv = work / "venv"
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    vpy, pp = str(bindir / "python"), str(bindir / "practiceplan")
    tool_env = clean_env({})
    t, _ = run([sys.executable, "-m", "venv", str(venv)], tool_env, "python -m venv")
    say(f"  created venv {venv}: {t:.1f} s")
    if args.wheel is None:
        wheel_dir = work / "wheel"
        t, _ = run([vpy, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir), str(PROJECT_ROOT)],
                   tool_env, "pip wheel")
        wheels = sorted(wheel_dir.glob("practiceplan-*.whl"))
        if len(wheels) != 1:
            raise BenchError(f"expected one practiceplan wheel in {wheel_dir}, found {len(wheels)}")
        wheel = wheels[0]
        say(f"  built {wheel.name}: {t:.1f} s")
    else:
        wheel = args.wheel
        say(f"  using wheel {wheel} (--no-build)")
    t, _ = run([vpy, "-m", "pip", "install", "-q", str(wheel)], tool_env, "pip install")
    say(f"  installed the wheel and its dependencies: {t:.1f} s")
    if not Path(pp).exists():
        raise BenchError(f"{pp} was not installed")
    _, out = run([vpy, "-c", "import importlib.metadata as m, sys; print(sys.version.split()[0], *(f'{d}={m.version(d)}' "
                  "for d in ('practiceplan', 'typer', 'click', 'rich', 'sqlite-utils', 'dateparser')))"], tool_env)
    python_version, *pairs = out.split()
    versions = dict(item.split("=", 1) for item in pairs)
    say("  installed: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + f"; venv Python {python_version}")
    return vpy, pp, versions


def bench(args: argparse.Namespace, work: Path) -> None:
    say("practiceplan startup benchmark")
    say("=" * 30)
    say(f"host: {platform.platform()}, {os.cpu_count()} CPUs, load average "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    say(f"project: {PROJECT_ROOT}")
    say(f"interpreter for the venv: {sys.executable} (Python {platform.python_version()})")
    say()

    # ---------------------------------------------------------------- venv, wheel, install
    say("setup")
    vpy, pp, versions = setup_venv(args, work)
    say(f"  typer version: {versions.get('typer')}")

    # ---------------------------------------------------------------- clock and homes
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    setup_now = now - timedelta(days=SETUP_DAYS_EARLIER)
    now_text = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    setup_text = setup_now.strftime("%Y-%m-%dT%H:%M:%SZ")
    base = {"PRACTICEPLAN_TZ": ZONE, "NO_COLOR": "1", "PRACTICEPLAN_NOW": now_text}

    def env_for(home: Path | None, clock: str = now_text) -> dict[str, str]:
        extra = dict(base, PRACTICEPLAN_NOW=clock)
        if home is not None:
            extra["PRACTICEPLAN_HOME"] = str(home)
        return clean_env(extra)

    say()
    say(f"clock: PRACTICEPLAN_NOW={now_text} PRACTICEPLAN_TZ={ZONE} NO_COLOR=1 "
        f"(plans added at {setup_text}, {SETUP_DAYS_EARLIER} days earlier)")
    data = work / "data"
    data.mkdir()
    newest_entry = now - timedelta(hours=1)
    files: dict[int, Path] = {}
    for size in (*SIZES, BIG_IMPORT):
        path = data / f"entries-{size // 1000}k.jsonl"
        start = time.perf_counter()
        oldest, newest = write_entries(path, size, newest_entry)
        files[size] = path
        say(f"  generated {path.name}: {size:,} entries, {path.stat().st_size / 2**20:.1f} MiB, "
            f"{oldest[:10]} .. {newest[:10]} ({time.perf_counter() - start:.1f} s)")

    homes: dict[int, Path] = {}
    import_seconds: dict[int, float] = {}
    first_today: dict[int, float] = {}
    setup_day = datetime.fromisoformat(setup_text.replace("Z", "+00:00")).date()
    for size in SIZES:
        home = work / f"home-{size // 1000}k"
        home.mkdir()
        homes[size] = home
        start = time.perf_counter()
        for spec in plan_commands(setup_day):
            run([pp, "plan", "add", *spec], env_for(home, setup_text), f"practiceplan plan add {spec[0]!r}")
        plans_s = time.perf_counter() - start
        import_seconds[size], out = run([pp, "log", "import", str(files[size])], env_for(home),
                                        f"practiceplan log import ({size:,})")
        first_today[size], _ = run([pp, "today"], env_for(home), f"first practiceplan today ({size:,})")
        _, listing = run([pp, "plan", "list", "--json"], env_for(home), "practiceplan plan list --json")
        plan_count = _count_plans(listing)
        say(f"  {home.name}: {plan_count} plans ({plans_s:.1f} s for 20 `plan add`), "
            f"import {size:,}: {import_seconds[size]:.2f} s — {out.strip()}")
        if plan_count != 20:
            raise BenchError(f"{home.name} has {plan_count} plans, expected 20")
    big_home = work / f"home-{BIG_IMPORT // 1000}k"
    big_home.mkdir()
    import_seconds[BIG_IMPORT], out = run([pp, "log", "import", str(files[BIG_IMPORT])], env_for(big_home),
                                          f"practiceplan log import ({BIG_IMPORT:,})")
    say(f"  {big_home.name}: no plans, import {BIG_IMPORT:,}: {import_seconds[BIG_IMPORT]:.2f} s — {out.strip()}")

    # ---------------------------------------------------------------- interleaved measurement
    e10, e50 = env_for(homes[10_000]), env_for(homes[50_000])
    commands: list[tuple[str, list[str], dict[str, str]]] = [
        ("python -c pass", [vpy, "-c", "pass"], e50),
        ("practiceplan --help", [pp, "--help"], e50),
        ("practiceplan today @10k", [pp, "today"], e10),
        ("practiceplan today @50k", [pp, "today"], e50),
        ("practiceplan today --json @50k", [pp, "today", "--json"], e50),
        ("practiceplan log list --limit 50 @50k", [pp, "log", "list", "--limit", "50"], e50),
    ]
    for _, cmd, env in commands:  # warm-up pass (page cache, pyc, the horizon is already extended)
        timed_quiet(cmd, env)
    times: dict[str, list[float]] = {name: [] for name, _, _ in commands}
    say()
    say(f"measuring: {args.runs} interleaved runs of {len(commands)} commands (after one warm-up pass) ...")
    start = time.perf_counter()
    for i in range(args.runs):
        for k in range(len(commands)):
            name, cmd, env = commands[(i + k) % len(commands)]
            times[name].append(timed_quiet(cmd, env))
    say(f"  done in {time.perf_counter() - start:.1f} s; load average now "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg()))

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
    say("first `practiceplan today` per home (extends the horizon by "
        f"{SETUP_DAYS_EARLIER} days; not part of the measurement): "
        + ", ".join(f"@{s // 1000}k {first_today[s] * 1000:.0f} ms" for s in SIZES))
    say("log import (wall time of the whole process): "
        + ", ".join(f"{s // 1000}k {import_seconds[s]:.2f} s ({s / import_seconds[s]:,.0f} entries/s)"
                    for s in (*SIZES, BIG_IMPORT)))
    say(f"50k import seconds: {import_seconds[50_000]:.2f}")
    say(f"100k import seconds: {import_seconds[BIG_IMPORT]:.2f}")

    t50, t10 = med["practiceplan today @50k"], med["practiceplan today @10k"]
    vs_python, vs_10k = t50 / py, t50 / t10
    say()
    say(f"ratio today@50k / python -c pass = {vs_python:.2f} (goal <= {GOAL_VS_PYTHON:.0f})")
    say(f"ratio today@50k / today@10k      = {vs_10k:.3f} (goal <= {GOAL_50K_VS_10K:.2f})")
    say(f"{'PASS' if vs_python <= GOAL_VS_PYTHON else 'FAIL'}: today at 50k entries is {vs_python:.2f}x python -c pass "
        f"(at most {GOAL_VS_PYTHON:.0f}x)")
    say(f"{'PASS' if vs_10k <= GOAL_50K_VS_10K else 'FAIL'}: today at 50k is {(vs_10k - 1) * 100:+.1f} % vs 10k "
        f"(no slower, ±10 %)")

    # ---------------------------------------------------------------- imports
    say()
    say(f"imports (python -X importtime -m practiceplan ..., median of {IMPORTTIME_RUNS} runs, @50k)")
    say(f"  typer version: {versions.get('typer')}")
    today_profile = None
    for label, cli_args in (("today", ["today"]), ("--help", ["--help"])):
        profile, modules = importtime_profile(vpy, cli_args, e50)
        bad = sorted(m for m in modules if m.split(".")[0] in FORBIDDEN)
        total = sum(s for s, _, _ in profile.values()) / 1000
        say(f"  {label}: {len(modules)} modules, {total:.1f} ms import time in total (sum of self times)")
        if bad:
            say(f"  FAIL: `{label}` imports {', '.join(bad[:10])}{' ...' if len(bad) > 10 else ''}")
        else:
            say(f"  PASS: `{label}` imports none of {', '.join(FORBIDDEN)}")
        if label == "today":
            today_profile = profile
    assert today_profile is not None
    say()
    say("  10 most expensive imports of `today` (by cumulative time, median µs; depth 0 = top level)")
    say(f"    {'module':<40} {'cumulative':>10} {'self':>8} {'depth':>5}")
    top = sorted(today_profile.items(), key=lambda item: item[1][1], reverse=True)[:10]
    for name, (self_us, cum_us, depth) in top:
        say(f"    {name:<40} {cum_us:10.0f} {self_us:8.0f} {depth:5d}")


def _count_plans(listing: str) -> int:
    try:
        doc = json.loads(listing)
    except ValueError as exc:
        raise BenchError(f"plan list --json is not JSON: {exc}") from None
    plans = doc.get("plans", doc) if isinstance(doc, dict) else doc
    return len(plans) if isinstance(plans, list) else -1


if __name__ == "__main__":
    sys.exit(main())
