#!/usr/bin/env python3
"""Sync benchmark: a first sync of 10k entities (push, then pull on a second device) and a sync with nothing
changed at 5k and 50k entities, against a local server, measured from a wheel install.

Usage::

    python tests/benchmarks/bench_sync.py [--runs N] [--no-build WHEEL] [--keep DIR]

What it does:

1. Creates a fresh venv, builds a wheel of the checkout and installs it with its ``test`` extra (the test server
   needs Starlette and uvicorn), so every measured ``practiceplan`` is that venv's console script.
2. Starts two local servers on 127.0.0.1, each in its own process: the Mirubato-mode test server
   (tests/sync/mirubato.py: full snapshots, no tombstones, as Mirubato answers) and `practiceplan serve` from
   the installed wheel on a SQLite file (incremental pulls by cursor, tombstones, conditional push).
3. Builds device homes with the installed package (``Store.save_many``, no CLI): N entities = 20 plans with
   their sessions (single sessions, so the count is exact) and logbook entries for the rest.
4. Measures, each as the wall time of one ``practiceplan sync`` process (median of ``--runs``; a fresh user on
   the server per run for first syncs):
   * first sync of 10k entities: push from device A, then pull on device B (both modes);
   * sync with nothing changed at 5k and 50k entities (both modes).
   Goals of the issue: first sync 5 s, no-change sync 0.5 s, and a no-change sync no slower at 50k than at 5k
   (against `practiceplan serve`; a full-snapshot server sends everything on every pull, so there it grows
   with the data).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

SERVER = r"""
import sys, threading, signal
sys.path.insert(0, sys.argv[1])
from tests.sync.mirubato import ServerState, make_app
from tests.sync.server import serve
state = ServerState(extended=sys.argv[2] == "ext")
with serve(make_app(state)) as url:
    users = iter(range(10**6))
    print(url, flush=True)
    # one line per request on stdin: a user name -> a token on stdout
    for line in sys.stdin:
        print(state.token_for(line.strip(), expires_in=86400), flush=True)
"""

BUILD = r"""
import sys, random
from practiceplan.settings import Settings
from practiceplan.services.session import Session
from practiceplan.domain.models import iso_z
from datetime import datetime, timedelta, UTC
home, total = sys.argv[1], int(sys.argv[2])
env = {"PRACTICEPLAN_HOME": home, "PRACTICEPLAN_NOW": "2026-03-02T09:00:00Z", "PRACTICEPLAN_TZ": "Europe/Berlin"}
s = Session(Settings(env=env))
rng = random.Random(total)
now = datetime(2026, 3, 2, 9, tzinfo=UTC)
plans, sessions, entries = [], [], []
per_plan = min(50, total // 40)
for p in range(20):
    pid = f"plan_bench{p:04d}"
    start = now - timedelta(days=60)
    plans.append({"id": pid, "title": f"Plan {p}", "type": "custom", "status": "active", "visibility": "private",
                  "focusAreas": [], "techniques": ["scales"], "pieceRefs": [], "tags": [], "metadata": {},
                  "schedule": {"kind": "single", "durationMinutes": 30, "flexibility": "fixed",
                               "startDate": "2026-01-01", "timeOfDay": "18:00",
                               "metadata": {"timezone": "Europe/Berlin"}},
                  "createdAt": iso_z(start), "updatedAt": iso_z(start)})
    for n in range(per_plan):
        at = start + timedelta(days=n)
        sessions.append({"id": f"plan_occ_bench{p:04d}{n:05d}", "planId": pid, "scheduledStart": iso_z(at),
                         "scheduledEnd": iso_z(at + timedelta(minutes=30)), "flexWindow": "fixed",
                         "segments": [], "targets": {}, "reflectionPrompts": [], "status": "scheduled",
                         "logEntryId": None, "notes": None, "metrics": {},
                         "createdAt": iso_z(start), "updatedAt": iso_z(start)})
for n in range(total - len(plans) - len(sessions)):
    at = now - timedelta(minutes=37 * (n + 1))
    entries.append({"id": f"entry_bench{n:07d}", "timestamp": iso_z(at), "duration": rng.randint(5, 90),
                    "type": "practice", "instrument": "piano", "pieces": [{"title": "Etude", "composer": "Czerny"}],
                    "techniques": [], "goalIds": [], "tags": [], "notes": None, "mood": None,
                    "metadata": {"source": "manual", "timezone": "Europe/Berlin"},
                    "createdAt": iso_z(at), "updatedAt": iso_z(at)})
with s.store.write():
    s.store.save_many("practice_plan", plans, iso_z(now))
    s.store.save_many("plan_occurrence", sessions, iso_z(now))
    s.store.save_many("logbook_entry", entries, iso_z(now))
    # the plans are materialised already: no read command should add sessions during the benchmark
    for p in plans:
        s.store.set_horizon(p["id"], "2200-01-01T00:00:00.000Z")
s.close()
print(len(plans) + len(sessions) + len(entries))
"""


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


class Server:
    """The Mirubato-mode test server (full snapshots) in its own process; tokens on request."""

    def __init__(self, python: Path, mode: str) -> None:
        self.proc = subprocess.Popen([str(python), "-c", SERVER, str(PROJECT_ROOT), mode], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout and self.proc.stdin
        self.url = self.proc.stdout.readline().strip()
        self.users = 0

    def token(self) -> str:
        self.users += 1
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(f"bench_user_{self.users}\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Ours:
    """`practiceplan serve` from the installed wheel, on a SQLite file (incremental pulls, tombstones)."""

    def __init__(self, cli: Path, folder: Path) -> None:
        import socket

        self.cli, self.database = cli, str(folder / "server.db")
        folder.mkdir(parents=True, exist_ok=True)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([str(cli), "serve", "--port", str(port), "--database", self.database,
                                      "--rate", "0", "--quiet", "--allow-root"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("practiceplan serve did not start") from None
                time.sleep(0.05)
        self.users = 0

    def token(self) -> str:
        self.users += 1
        done = run([str(self.cli), "server", "user", "add", f"bench{self.users}", "--database", self.database,
                    "--json"])
        return json.loads(done.stdout)["token"]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-build", metavar="WHEEL")
    parser.add_argument("--keep", metavar="DIR")
    args = parser.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-sync-"))
    work.mkdir(parents=True, exist_ok=True)
    venv = work / "venv"
    print(f"work folder: {work}")
    run([sys.executable, "-m", "venv", str(venv)])
    python, cli = venv / "bin" / "python", venv / "bin" / "practiceplan"
    wheel = args.no_build
    if not wheel:
        run([str(python), "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"), str(PROJECT_ROOT)])
        wheel = str(next((work / "dist").glob("practiceplan-*.whl")))
    run([str(python), "-m", "pip", "install", "-q", f"{wheel}[test]"])
    print(f"installed {Path(wheel).name} into {venv}")
    results: dict[str, list[float]] = {}
    homes = 0

    def home(total: int) -> Path:
        nonlocal homes
        homes += 1
        folder = work / f"home{homes}"
        count = int(run([str(python), "-c", BUILD, str(folder), str(total)]).stdout)
        assert count == total, count
        return folder

    def sync(folder: Path, url: str, token: str) -> tuple[float, dict]:
        env = {**os.environ, "PRACTICEPLAN_HOME": str(folder), "PRACTICEPLAN_NOW": "2026-03-02T09:00:00Z",
               "PRACTICEPLAN_TZ": "Europe/Berlin", "PRACTICEPLAN_TOKEN": token, "NO_COLOR": "1"}
        run([str(cli), "remote", "set", url], env=env)
        started = time.perf_counter()
        done = run([str(cli), "sync", "--json"], env=env)
        elapsed = time.perf_counter() - started
        return elapsed, json.loads(done.stdout)

    for mode in ("mirubato", "ours"):
        server: Server | Ours = Server(python, mode) if mode == "mirubato" else Ours(cli, work / "server")
        try:
            for _ in range(args.runs):
                token = server.token()
                a = home(10_000)
                b = work / f"empty{homes}"
                pushed, first = sync(a, server.url, token)
                assert first["sent"] == 10_000, first
                pulled, second = sync(b, server.url, token)
                assert second["merged"] == 10_000, second
                results.setdefault(f"{mode}: first sync, push 10k", []).append(pushed)
                results.setdefault(f"{mode}: first sync, pull 10k", []).append(pulled)
            for size in (5_000, 50_000):
                token = server.token()
                folder = home(size)
                sync(folder, server.url, token)
                for _ in range(args.runs):
                    elapsed, report = sync(folder, server.url, token)
                    assert report["sent"] == 0 and report["merged"] == 0, report
                    results.setdefault(f"{mode}: no-change sync at {size // 1000}k", []).append(elapsed)
        finally:
            server.close()
    print(f"\nmedians of {args.runs} runs (wall time of one `practiceplan sync` process):")
    medians = {}
    for name, values in results.items():
        medians[name] = statistics.median(values)
        print(f"  {name:<38} {medians[name] * 1000:8.0f} ms   (min {min(values) * 1000:.0f}, max "
              f"{max(values) * 1000:.0f})")
    ratio = medians["ours: no-change sync at 50k"] / medians["ours: no-change sync at 5k"]
    print(f"\ngoals: first sync <= 5 s: push {max(v for k, v in medians.items() if 'first' in k):.2f} s (worst); "
          f"no-change (practiceplan serve) <= 0.5 s: {medians['ours: no-change sync at 50k']:.2f} s at 50k; "
          f"50k/5k ratio {ratio:.2f} (goal <= 1.10)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
