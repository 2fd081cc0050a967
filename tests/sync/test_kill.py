"""kill -9 during `practiceplan sync`: a real subprocess against the running test server, 50 rounds.

Every round is one account on the Mirubato-mode server (in this process, in a thread) that already holds what
another device pushed (a plan with its sessions and 100 logbook entries), and a fresh copy of a device holding
600 logbook entries and a plan with its sessions that were never synced (about eight batches). `practiceplan
sync` runs as a subprocess and is killed with SIGKILL:

* even rounds: after a random delay, uniform between the process start and the measured typical completion
  time of a whole sync (start-up, status, pull, merge and pushes all get hit);
* odd rounds: every push's answer is held back 40 ms by the server (``delay-after``: committed, answer not yet
  sent) and the process is killed at a random moment after its first push reached the server, so most kills
  land between a commit on the server and its acknowledgement here.

After every kill: the database passes ``PRAGMA integrity_check``; every version the device recorded as agreed
(``sync_state``) is on the server with the same ``wire.version_hash`` (an acknowledged write is never lost);
every local entity not agreed is still queued; nothing is on the server twice or that was never created. Then
`sync` runs again to completion: the device equals the server, the outbox and ``sync_batches`` are empty, and
every entity was applied on the server exactly once (version 1: a landed batch is not pushed again, a resent one
is answered as a replay), and the other device's entities were not pushed back.

The seed is printed (shown with a failure) and can be fixed with PRACTICEPLAN_TEST_SEED=<int>.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from practiceplan.sync import wire
from tests.sync.homes import TABLES, Home, server_versions
from tests.sync.test_faults import one_click_command  # noqa: F401  (autouse: one click command per test)

ROUNDS = 50
N_LOCAL = 600
N_REMOTE = 100
PUSH = "/api/sync/push"
DELAY = 0.04


def _seed() -> int:
    return int(os.environ.get("PRACTICEPLAN_TEST_SEED") or random.SystemRandom().randrange(2**32))


def _entries(path: Path, prefix: str, count: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            out.write(json.dumps({
                "id": f"{prefix}{i:05d}", "timestamp": f"2026-02-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00.000Z",
                "duration": 5 + i % 115, "type": ("practice", "lesson", "technique")[i % 3],
                "instrument": ("piano", "violin")[i % 2], "notes": f"{prefix} session {i}",
                "pieces": [{"title": f"Étude {i % 31}", "composer": "Chopin"}] if i % 3 else [],
            }, ensure_ascii=False) + "\n")


def _env(home: Home, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRACTICEPLAN_")}
    env.update(home.env(), PRACTICEPLAN_TOKEN=token, PRACTICEPLAN_NO_KEYRING="1")
    return env


def _db_state(db: Path) -> dict[str, Any]:
    """What the kill left, read with plain sqlite3."""
    conn = sqlite3.connect(db)
    try:
        docs = {kind: {r[0]: json.loads(r[1]) for r in conn.execute(f"SELECT id, doc FROM {table} WHERE "
                                                                    "deleted_at IS NULL")}
                for kind, table in TABLES.items()}
        return {
            "integrity": conn.execute("PRAGMA integrity_check").fetchall(),
            "docs": docs,
            "agreed": {(r[0], r[1]): r[2] for r in conn.execute("SELECT entity_type, entity_id, hash FROM sync_state")},
            "queued": {(r[0], r[1]) for r in conn.execute("SELECT entity_type, entity_id FROM outbox")},
            "batches": conn.execute("SELECT count(*) FROM sync_batches").fetchone()[0],
        }
    finally:
        conn.close()


@pytest.mark.slow
def test_kill_9_during_sync_loses_nothing_and_doubles_nothing(tmp_path, mirubato):
    seed = _seed()
    print(f"kill test seed: {seed} (rerun with PRACTICEPLAN_TEST_SEED={seed})")
    rng = random.Random(seed)
    state, url = mirubato.state, mirubato.url
    started_all = time.monotonic()

    # the other device's data, pushed once; every round's account starts with a copy of it
    other = Home(tmp_path / "other", url, mirubato.token("seed_user"))
    _entries(tmp_path / "other.jsonl", "entry_other_", N_REMOTE)
    other.cli("log", "import", str(tmp_path / "other.jsonl"))
    other.cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00", "--minutes", "30")
    other.sync()
    with state.lock:
        seeded = [r for r in state.rows.values() if r.user_id == "seed_user"]
    remote_ids = {(r.entity_type, r.entity_id) for r in seeded}

    # the device: 600 entries and a plan (with its sessions), never synced
    prepared = Home(tmp_path / "prepared", url, "unused")
    _entries(tmp_path / "local.jsonl", "entry_local_", N_LOCAL)
    prepared.cli("log", "import", str(tmp_path / "local.jsonl"))
    prepared.cli("plan", "add", "Arpeggios", "--every", "weekly", "--on", "tu,fr", "--at", "07:30", "--minutes", "20")
    prepared.cli("today")
    local_ids = {(kind, i) for kind, docs in prepared.versions().items() for i in docs}
    assert len(local_ids) > N_LOCAL + 20 and not local_ids & remote_ids

    def new_round(n: int) -> tuple[Home, str, str]:
        user = f"kill_{n:02d}"
        with state.lock:
            for key in [k for k in state.rows if k[0] not in ("seed_user",)]:
                del state.rows[key]  # earlier rounds' accounts: keeps the server's per-item scans short
            state.idempotency.clear()
            state.clear_faults()
            for row in seeded:
                state._rowid += 1
                copy = type(row)(**{**row.__dict__, "user_id": user, "data": json.loads(json.dumps(row.data)),
                                    "rowid": state._rowid})
                state.rows[(user, row.entity_type, row.entity_id)] = copy
        folder = tmp_path / f"round{n:02d}"
        shutil.copytree(prepared.folder, folder)
        token = mirubato.token(user)
        home = Home(folder, url, token, timeout=10)
        return home, user, token

    def start(home: Home, token: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "practiceplan", "sync", "--json"], env=_env(home, token),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def finish(home: Home, user: str, context: str) -> None:
        result = home.sync()
        assert result["conflicts"] == [] and result["rejected"] == [], (result, context)
        snap = _db_state(home.db)
        assert snap["integrity"] == [("ok",)], context
        assert snap["queued"] == set() and snap["batches"] == 0, context
        held = home.versions()
        assert held == server_versions(state, user), f"the device differs from the server ({context})"
        with state.lock:
            rows = [r for r in state.rows.values() if r.user_id == user]
        ids = Counter((r.entity_type, r.entity_id) for r in rows)
        assert set(ids) == local_ids | remote_ids and max(ids.values()) == 1, context
        twice = sorted(r.entity_id for r in rows if r.version != 1)
        assert not twice, f"{len(twice)} entities applied more than once on the server, e.g. {twice[:3]} ({context})"

    # the typical duration of a whole sync, from process start to exit
    durations = []
    for n in range(2):
        home, user, token = new_round(90 + n)
        began = time.monotonic()
        proc = start(home, token)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        durations.append(time.monotonic() - began)
        finish(home, user, "measured run")
        shutil.rmtree(home.folder)
    typical = statistics.median(durations)
    print(f"a whole sync takes {typical:.2f}s")

    outcomes: Counter[str] = Counter()
    for n in range(ROUNDS):
        home, user, token = new_round(n)
        mark = len(state.requests)
        if n % 2 == 0:
            delay = rng.uniform(0, typical)
            context = f"seed {seed}, round {n}, kill after {delay:.3f}s"
            proc = start(home, token)
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
        else:
            state.inject("delay-after", 20, path=PUSH, seconds=DELAY)
            base = state.count_requests(PUSH)
            proc = start(home, token)
            deadline = time.monotonic() + 30
            while state.count_requests(PUSH) == base:
                assert proc.poll() is None and time.monotonic() < deadline, "no push reached the server"
                time.sleep(0.002)
            delay = rng.uniform(0, 12 * DELAY)
            context = f"seed {seed}, round {n}, kill {delay:.3f}s after the first push"
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            err = proc.stderr.read().decode(errors="replace")
            proc.stderr.close()
        state.clear_faults()
        killed = proc.returncode == -signal.SIGKILL
        assert killed or proc.returncode == 0, f"exit {proc.returncode}: {err} ({context})"

        snap = _db_state(home.db)
        assert snap["integrity"] == [("ok",)], context
        there = server_versions(state, user)
        # an acknowledged write is on the server, that very version
        lost = [(k, i) for (k, i), h in snap["agreed"].items() if there.get(k, {}).get(i) != h]
        assert not lost, f"{len(lost)} agreed versions not on the server, e.g. {lost[:3]} ({context})"
        # whatever is not agreed is still queued here
        for kind, docs in snap["docs"].items():
            for entity_id, doc in docs.items():
                if snap["agreed"].get((kind, entity_id)) != wire.version_hash(kind, doc):
                    assert (kind, entity_id) in snap["queued"], f"{kind} {entity_id} neither agreed nor queued " \
                                                                f"({context})"
        # the server holds nothing that was not created, and nothing twice
        with state.lock:
            rows = Counter((r.entity_type, r.entity_id) for r in state.rows.values() if r.user_id == user)
        assert set(rows) <= local_ids | remote_ids and (not rows or max(rows.values()) == 1), context
        pushes = sum(1 for r in state.requests[mark:] if r[1] == PUSH)
        mine_there = len({i for k, ids in there.items() for i in ids} & {i for _k, i in local_ids})
        if not killed:
            outcome = "completed"
        elif pushes == 0:
            outcome = "killed before pushing"
        elif mine_there == len(local_ids):
            outcome = "killed after the last push landed"
        else:
            outcome = "killed mid-push"
        outcomes[outcome] += 1
        if snap["batches"]:
            outcomes["left a batch to resend"] += 1

        finish(home, user, f"after the re-run ({context})")
        shutil.rmtree(home.folder)

    elapsed = time.monotonic() - started_all
    print(f"{ROUNDS} kills in {elapsed:.1f}s (a whole sync: {typical:.2f}s): {dict(outcomes)}")
    assert outcomes["killed mid-push"] >= ROUNDS // 4, outcomes
    assert outcomes["left a batch to resend"] >= 5, outcomes
