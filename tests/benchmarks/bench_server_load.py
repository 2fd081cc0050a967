#!/usr/bin/env python3
"""Load benchmark of `practiceplan serve`: N simulated clients syncing at once against each backend, from a wheel
install (not part of the test run).

Usage::

    python tests/benchmarks/bench_server_load.py [--clients 200] [--duration 60] [--think 1.0] [--workers 2]
        [--client-procs 2] [--backends sqlite,postgresql] [--postgres DSN] [--no-build WHEEL] [--keep DIR]

What it does:

1. Creates a fresh venv, builds a wheel of the checkout and installs it with its ``test`` extra (as
   bench_sync.py does), so the measured server is that venv's ``practiceplan serve``.
2. For each backend: a fresh database (a SQLite file; for PostgreSQL a database on ``--postgres DSN``, else a
   throwaway cluster started here with initdb/pg_ctl on 127.0.0.1 as the ``postgres`` user when we are root,
   with PostgreSQL's default durability: fsync and synchronous_commit on, as SQLite's ``synchronous=FULL``),
   ``--clients`` users (one token each), then ``practiceplan serve --workers W --rate 0 --quiet``.
3. ``--client-procs`` processes of asyncio tasks (httpx, one keep-alive connection per client) run the clients:
   each does sync cycles for ``--duration`` seconds: ``GET /api/sync/status``, an incremental ``POST
   /api/sync/pull`` from its cursor (paged), then ``POST /api/sync/push`` of 50 logbook entries (about 3 in 4
   new, the rest edits of its own earlier ones, with ``baseVersions`` and an ``X-Idempotency-Key``), then waits
   ``--think`` seconds (jittered +-50%; 0 = back to back, which measures saturation). All clients start together.
4. Reports, per backend: requests/s, entities/s pushed and pulled, p50/p95/p99/max latency per endpoint, errors
   (any non-200 answer, transport error or conflict), the CPU seconds of the server processes, of PostgreSQL and
   of the clients (they share the machine), and the stored bytes per row (for docs/server.md "Capacity").
   Goals of issue 13: zero errors, p95 under 250 ms for a 50-entity push.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pwd
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]

USERS = r"""
import json, sys
from practiceplan.server import db, users
url, count = sys.argv[1], int(sys.argv[2])
engine = db.make_engine(url, pool_size=1)
db.migrate(engine)
print(json.dumps([users.add(engine, f"load{n:04d}", "learner")[1] for n in range(count)]))
engine.dispose()
"""

SIZES = r"""
import json, sys
import sqlalchemy as sa
from practiceplan.server import db
url = db.database_url(sys.argv[1])
engine = db.make_engine(url, pool_size=1)
out = {}
with engine.connect() as conn:
    t = db.sync_rows
    out["rows"] = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
    out["avgDataBytes"] = float(conn.execute(sa.select(sa.func.avg(sa.func.length(t.c.data)))).scalar() or 0)
    out["idempotencyRows"] = conn.execute(sa.select(sa.func.count()).select_from(db.idempotency)).scalar()
    out["avgResponseBytes"] = float(conn.execute(sa.select(sa.func.avg(sa.func.length(db.idempotency.c.response)))).scalar() or 0)
    if engine.dialect.name == "postgresql":
        for name in ("sync_rows", "idempotency", "users"):
            out[f"{name}TotalBytes"] = conn.exec_driver_sql(f"SELECT pg_total_relation_size('{name}')").scalar()
    else:
        page = conn.exec_driver_sql("PRAGMA page_size").scalar()
        try:
            for name, pages in conn.exec_driver_sql(
                    "SELECT name, count(*) FROM dbstat GROUP BY name").all():
                out[f"{name}Bytes"] = pages * page
        except Exception as exc:  # dbstat is not compiled in everywhere
            out["dbstat"] = str(exc)
        import os
        path = url.removeprefix("sqlite:///")
        out["fileBytes"] = os.path.getsize(path)
        out["walBytes"] = os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0
print(json.dumps(out))
"""

CLIENTS = r"""
import asyncio, json, random, sys, time, uuid
import httpx

base, tokens, duration, think, seed, t_start = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3]), \
    float(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
lat = {"status": [], "pull": [], "push": []}
errors = {}
counts = {"pushed": 0, "pulled": 0, "cycles": 0, "requests": 0}
T0 = "2026-05-01T09:00:00.000Z"

def err(kind):
    errors[kind] = errors.get(kind, 0) + 1

async def timed(name, coro):
    began = time.perf_counter()
    try:
        reply = await coro
    except httpx.HTTPError as exc:
        err(f"{name}:{type(exc).__name__}")
        return None
    lat[name].append((time.perf_counter() - began) * 1000)
    counts["requests"] += 1
    if reply.status_code != 200:
        err(f"{name}:{reply.status_code}")
        return None
    return reply

async def client(http, n, token):
    rng = random.Random(seed * 1000 + n)
    auth = {"Authorization": f"Bearer {token}", "X-Device-ID": f"load-{n}"}
    cursor, versions, made = None, {}, 0
    while time.time() < t_start:
        await asyncio.sleep(0.01)
    await asyncio.sleep(rng.uniform(0, max(think, 0.2)))  # not all in the same millisecond
    end = t_start + duration
    while time.time() < end:
        if await timed("status", http.get("/api/sync/status", headers=auth)) is None:
            await asyncio.sleep(1); continue
        while True:
            reply = await timed("pull", http.post("/api/sync/pull", json={"since": cursor, "limit": 1000}, headers=auth))
            if reply is None:
                break
            body = reply.json()
            counts["pulled"] += sum(len(body[k]) for k in ("entries", "goals", "practicePlans", "planOccurrences", "planTemplates"))
            versions.update(body["versions"])
            cursor = body["cursor"]
            if not body["hasMore"]:
                break
        items, base = [], {}
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        mine = [k.split(":", 1)[1] for k in versions]
        for i in range(50):
            if mine and rng.random() < 0.25:
                eid = rng.choice(mine)
                if f"logbook_entry:{eid}" in base:
                    continue
            else:
                made += 1
                eid = f"entry_load{n:04d}_{made:06d}"
            base[f"logbook_entry:{eid}"] = versions.get(f"logbook_entry:{eid}", 0)
            items.append({"id": eid, "timestamp": T0, "duration": rng.randint(5, 90), "type": "practice",
                          "instrument": "piano", "mood": "satisfied",
                          "pieces": [{"title": "Clair de lune", "composer": "Debussy"}],
                          "techniques": ["scales"], "goalIds": [], "tags": ["daily"],
                          "notes": f"slow practice, left hand alone, metronome at {rng.randint(60, 120)}",
                          "metadata": {"source": "manual", "timezone": "Europe/Berlin"},
                          "createdAt": T0, "updatedAt": stamp})
        while len(items) < 50:  # duplicates skipped above: top up with new entries
            made += 1
            eid = f"entry_load{n:04d}_{made:06d}"
            base[f"logbook_entry:{eid}"] = 0
            items.append(dict(items[-1], id=eid))
        headers = dict(auth, **{"X-Idempotency-Key": uuid.uuid4().hex})
        reply = await timed("push", http.post("/api/sync/push", json={"changes": {"entries": items},
                                                                      "baseVersions": base}, headers=headers))
        if reply is not None:
            body = reply.json()
            if body.get("conflicts"):
                err("push:conflict")
            versions.update(body.get("versions") or {})
            counts["pushed"] += len(body.get("versions") or {})
        counts["cycles"] += 1
        if think > 0:
            await asyncio.sleep(think * rng.uniform(0.5, 1.5))

async def main():
    limits = httpx.Limits(max_connections=len(tokens) + 10, max_keepalive_connections=len(tokens) + 10)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(http, n, t) for n, t in tokens))
    print(json.dumps({"lat": lat, "errors": errors, "counts": counts}))

asyncio.run(main())
"""


def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(root: int) -> float:
    """User + system CPU seconds of a process and all its descendants alive now (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    used: dict[int, float] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = Path(stat).read_text()
        except OSError:
            continue
        pid = int(stat.split("/")[2])
        fields = text[text.rindex(")") + 2:].split()
        parent[pid] = int(fields[1])
        used[pid] = (int(fields[11]) + int(fields[12])) / ticks
    tree, frontier = {root}, [root]
    while frontier:
        kids = [p for p, pp in parent.items() if pp in frontier and p not in tree]
        tree.update(kids)
        frontier = kids
    return sum(used.get(p, 0.0) for p in tree)


class Cluster:
    """A throwaway PostgreSQL cluster with default durability (see tests/server/conftest.py for the test one)."""

    def __init__(self, work: Path) -> None:
        found = shutil.which("initdb")
        bindir = os.path.dirname(os.path.realpath(found)) if found else \
            sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
        self.prefix: list[str] = []
        self.folder = Path(tempfile.mkdtemp(prefix="pp-load-pg-"))
        if os.geteuid() == 0:
            self.prefix = ["runuser", "-u", "postgres", "--"]
            entry = pwd.getpwnam("postgres")
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self.bindir, self.data, self.port = bindir, self.folder / "data", free_port()
        run([*self.prefix, f"{bindir}/initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
             "--locale=C"], cwd=self.folder)
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=300 "
                   "-c shared_buffers=128MB")
        run([*self.prefix, f"{bindir}/pg_ctl", "-D", str(self.data), "-o", options, "-l",
             str(self.folder / "log"), "-w", "start"], cwd=self.folder)
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        subprocess.run([*self.prefix, f"{self.bindir}/pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop"],
                       capture_output=True, cwd=self.folder)
        shutil.rmtree(self.folder, ignore_errors=True)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def bench(backend: str, url: str, args: argparse.Namespace, venv: Path, work: Path, pg_pid: int | None) -> dict:
    python, cli = venv / "bin" / "python", venv / "bin" / "practiceplan"
    tokens = json.loads(run([str(python), "-c", USERS, url, str(args.clients)]).stdout)
    port = free_port()
    cmd = [str(cli), "serve", "--database", url, "--port", str(port), "--workers", str(args.workers), "--rate", "0",
           "--quiet", "--max-items", "1000"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = (work / f"serve-{backend}.log").open("wb")
    server = subprocess.Popen(cmd, stdout=log, stderr=log, env=dict(os.environ, PRACTICEPLAN_HOME=str(work)))
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if time.time() > deadline or server.poll() is not None:
                raise SystemExit(f"the server did not start: see {log.name}")
            time.sleep(0.1)
    time.sleep(1.5)  # every worker is up
    start = time.time() + 3 + args.clients * 0.005  # every client process imported and connected
    chunks = [list(enumerate(tokens))[i::args.client_procs] for i in range(args.client_procs)]
    procs = [subprocess.Popen([str(python), "-c", CLIENTS, base, json.dumps(chunk), str(args.duration), str(args.think),
                               str(i), str(start)], stdout=subprocess.PIPE, text=True) for i, chunk in enumerate(chunks)]
    while time.time() < start:
        time.sleep(0.01)
    cpu0 = (cpu_seconds(server.pid), cpu_seconds(pg_pid) if pg_pid else 0.0, sum(cpu_seconds(p.pid) for p in procs))
    time.sleep(args.duration)
    cpu1 = (cpu_seconds(server.pid), cpu_seconds(pg_pid) if pg_pid else 0.0, sum(cpu_seconds(p.pid) for p in procs))
    results = [json.loads(p.communicate(timeout=args.duration + 300)[0]) for p in procs]
    wall = time.time() - start
    server.terminate()
    server.wait(60)
    log.close()
    lat: dict[str, list[float]] = {"status": [], "pull": [], "push": []}
    errors: dict[str, int] = {}
    counts = {"pushed": 0, "pulled": 0, "cycles": 0, "requests": 0}
    for r in results:
        for k, v in r["lat"].items():
            lat[k] += v
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
        for k, v in r["counts"].items():
            counts[k] += v
    sizes = json.loads(run([str(python), "-c", SIZES, url]).stdout)
    return {
        "backend": backend, "clients": args.clients, "duration": args.duration, "wall": round(wall, 1),
        "think": args.think, "workers": args.workers, "counts": counts, "errors": errors,
        "requestsPerSecond": round(counts["requests"] / wall, 1),
        "pushedEntitiesPerSecond": round(counts["pushed"] / wall, 1),
        "pulledEntitiesPerSecond": round(counts["pulled"] / wall, 1),
        "latencyMs": {k: {"n": len(v), "p50": round(pct(v, 50), 1), "p95": round(pct(v, 95), 1),
                          "p99": round(pct(v, 99), 1), "max": round(max(v), 1) if v else None,
                          "mean": round(statistics.fmean(v), 1) if v else None} for k, v in lat.items()},
        "cpuSeconds": {"server": round(cpu1[0] - cpu0[0], 1), "postgresql": round(cpu1[1] - cpu0[1], 1),
                       "clients": round(cpu1[2] - cpu0[2], 1), "window": args.duration},
        "storage": sizes,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--think", type=float, default=1.0, help="seconds between a client's cycles (0: none)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres", metavar="DSN", help="an empty PostgreSQL database to use")
    parser.add_argument("--no-build", metavar="WHEEL")
    parser.add_argument("--keep", metavar="DIR")
    parser.add_argument("--json", metavar="FILE", help="also write the results here")
    args = parser.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-load-"))
    work.mkdir(parents=True, exist_ok=True)
    venv = work / "venv"
    print(f"work folder: {work}")
    python = venv / "bin" / "python"
    if not python.exists():
        run([sys.executable, "-m", "venv", str(venv)])
        wheel = args.no_build
        if not wheel:
            run([str(python), "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"), str(PROJECT_ROOT)])
            wheel = str(next((work / "dist").glob("practiceplan-*.whl")))
        run([str(python), "-m", "pip", "install", "-q", f"{wheel}[test]"])
        print(f"installed {Path(wheel).name} into {venv}")
    out = []
    for backend in args.backends.split(","):
        cluster = None
        pg_pid = None
        if backend == "sqlite":
            url = str(work / f"load-{int(time.time())}.db")
        else:
            if args.postgres:
                url = args.postgres
            else:
                cluster = Cluster(work)
                url, pg_pid = cluster.dsn, cluster.pid
        try:
            result = bench(backend, url, args, venv, work, pg_pid)
        finally:
            if cluster:
                cluster.stop()
        out.append(result)
        print(json.dumps(result, indent=1), flush=True)
        lm = result["latencyMs"]
        print(f"== {backend}: {result['clients']} clients, {result['wall']} s, think {args.think} s, "
              f"{args.workers} workers: {result['requestsPerSecond']} req/s, "
              f"{result['pushedEntitiesPerSecond']} entities/s pushed, errors {result['errors'] or 0}; "
              + ", ".join(f"{k} p50/p95/p99 {v['p50']}/{v['p95']}/{v['p99']} ms" for k, v in lm.items()), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
