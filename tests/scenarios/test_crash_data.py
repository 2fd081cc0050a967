"""kill -9 during import, backup, restore and migration (reliability-plan.md T1, T6, T7).

Each scenario runs the real entry point in a subprocess at least ``PRACTICEPLAN_CRASH_ITERATIONS`` times
(default 100), two at a time. An iteration either sets ``PRACTICEPLAN_FAULT=<point>:<n>`` (the process
SIGKILLs itself at that named point: mid-transaction, between file renames, during pruning...) or is killed
with SIGKILL at a random moment inside a window calibrated to cover the operation (not just interpreter
start-up). After each one the files are checked:

* ``integrity_check`` is ok and the database opens;
* all or nothing: the database holds exactly the state before or exactly the state after;
* nothing acknowledged is lost: when the command printed its result (it does so only after COMMIT / after
  the manifest is in place), the "after" state is there;
* every backup that has a manifest verifies (sha256 + integrity), and leftovers of a killed backup are
  removed by the next successful one.

The random seed is printed and can be fixed with ``PRACTICEPLAN_CRASH_SEED``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from practiceplan.store import backup as store_backup
from practiceplan.store import schema
from tests.store.helpers import (
    DRIVER,
    EXTRA_MIGRATION,
    FIXTURES,
    cli_argv,
    content_digest,
    copy_fixture,
    env_for,
    entry,
    logical_digest,
    table_columns,
)

pytestmark = pytest.mark.slow

ITERATIONS = int(os.environ.get("PRACTICEPLAN_CRASH_ITERATIONS", "100"))
SEED = int(os.environ.get("PRACTICEPLAN_CRASH_SEED") or random.randrange(2**31))
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
NAMED_SHARE = 0.6  # the rest are killed at a random moment


@dataclass
class Outcome:
    kind: str  # "fault:<point>:<n>" or "random:<seconds>"
    code: int
    stdout: str
    stderr: str

    @property
    def killed(self) -> bool:
        return self.code == -9


def run(argv: list[str], env: dict[str, str], *, fault: str | None = None, kill_after: float | None = None) -> Outcome:
    env = dict(env)
    if fault:
        env["PRACTICEPLAN_FAULT"] = fault
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if kill_after is not None:
        try:
            proc.wait(kill_after)
        except subprocess.TimeoutExpired:
            proc.kill()  # SIGKILL
    out, err = proc.communicate(timeout=60)
    return Outcome(f"fault:{fault}" if fault else f"random:{kill_after:.3f}", proc.returncode, out, err)


def calibrate(argv: list[str], prepare: Callable[[Path], dict[str, str]], where: Path) -> tuple[float, float]:
    """A kill window from the end of interpreter start-up to a little past the end of the operation,
    measured two processes at a time, as the iterations run."""

    def timed(args: list[str], folder: Path) -> float:
        env = prepare(folder)
        started = time.monotonic()
        result = subprocess.run(args, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return time.monotonic() - started

    with ThreadPoolExecutor(max_workers=2) as pool:
        startup = min(pool.map(lambda i: timed(cli_argv("--version"), where / f"calibrate-noop{i}"), range(4)))
        full = max(pool.map(lambda i: timed(argv, where / f"calibrate-full{i}"), range(4)))
    return startup * 0.9, max(full * 1.1, startup + 0.05)


def hammer(
    tmp_path: Path,
    argv: list[str],
    prepare: Callable[[Path], dict[str, str]],
    check: Callable[[Path, Outcome], None],
    faults: list[tuple[str, int]],
    *,
    iterations: int = ITERATIONS,
) -> list[Outcome]:
    """Run ``iterations`` killed runs (two at a time) and ``check`` each. Returns the outcomes."""
    rng = random.Random(SEED)
    low, high = calibrate(argv, prepare, tmp_path)
    plans: list[tuple[str | None, float | None]] = []
    for _ in range(iterations):
        if rng.random() < NAMED_SHARE:
            point, most = rng.choice(faults)
            plans.append((f"{point}:{rng.randint(1, most)}", None))
        else:
            plans.append((None, rng.uniform(low, high)))

    def one(index: int) -> Outcome:
        fault, delay = plans[index]
        folder = tmp_path / f"i{index}"
        env = prepare(folder)
        outcome = run(argv, env, fault=fault, kill_after=delay)
        assert "Traceback" not in outcome.stderr, (SEED, outcome)
        try:
            check(folder, outcome)
        except AssertionError as exc:
            raise AssertionError(f"seed {SEED}, iteration {index}, {outcome.kind}: {exc}") from exc
        return outcome

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(one, range(iterations)))
    named = [o for o in outcomes if o.kind.startswith("fault:")]
    assert named and all(o.killed for o in named), [o for o in named if not o.killed][:3]  # every point is reached
    randoms = [o for o in outcomes if o.kind.startswith("random:")]
    print(f"seed {SEED}: {len(outcomes)} runs, {len(named)} killed at named points, {len(randoms)} at random "
          f"times in {low:.3f}-{high:.3f}s ({sum(o.killed for o in randoms)} killed, "
          f"{sum(not o.killed for o in randoms)} finished)")
    return outcomes


def _open(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    return conn


def _check_generations(folder: Path) -> list[store_backup.Generation]:
    """Every backup with a manifest is complete and sound."""
    gens = store_backup.generations(folder, "practiceplan")
    for gen in gens:
        store_backup.verify_backup(gen.path)
    return gens


def _next_backup_cleans_up(home: Path) -> None:
    """After a successful backup only finished generations (file + manifest) and the lock file remain."""
    store_backup.write_backup(home / "practiceplan.db", now=NOW, keep=50)
    folder = home / "backups"
    names = {p.name for p in folder.iterdir()}
    assert ".lock" in names
    for name in names - {".lock"}:
        assert not name.startswith("."), f"stray file {name}"
        path = folder / name
        partner = path.with_suffix(".json") if path.suffix == ".db" else path.with_suffix(".db")
        assert partner.exists(), f"{name} has no partner"


def _build_home(home: Path, entries: int = 20, *, extra: Callable[[Any], None] | None = None) -> Path:
    from practiceplan.domain.models import normalize_entry
    from practiceplan.services.session import Session
    from practiceplan.settings import Settings

    planner = Session(Settings(env=env_for(home)))
    planner.store  # noqa: B018
    docs = [normalize_entry(entry(i), NOW) for i in range(entries)]
    with planner.store.write():
        planner.store.save_many("logbook_entry", docs, "2026-03-02T09:00:00.000Z")
    if extra:
        extra(planner)
    planner.close()  # the last connection: the WAL is folded in and removed
    return home / "practiceplan.db"


# --------------------------------------------------------------------------- import json


def test_kill_during_import_json(tmp_path):
    from datetime import time as dtime

    from practiceplan.domain.plans import PlanInput

    base = tmp_path / "base"
    _build_home(base, 20)

    source = tmp_path / "source"

    def add_plan(planner: Any) -> None:
        planner.plans.add(PlanInput(title="Imported plan", every="daily", at=dtime(7, 0)))

    _build_home(source, 0, extra=add_plan)
    from practiceplan.domain.models import normalize_entry
    from practiceplan.services.session import Session
    from practiceplan.settings import Settings

    planner = Session(Settings(env=env_for(source)))
    docs = [normalize_entry(entry(i, notes=f"imported {i} ✓"), NOW) for i in range(1000, 3000)]
    with planner.store.write():
        planner.store.save_many("logbook_entry", docs, "2026-03-02T09:00:00.000Z")
    export = tmp_path / "export.json"
    export.write_text(planner.data.export_json_text(), encoding="utf-8")
    incoming = json.loads(export.read_text())
    planner.close()
    new_ids = {
        "practice_plans": {p["id"] for p in incoming["practicePlans"]},
        "plan_occurrences": {o["id"] for o in incoming["planOccurrences"]},
        "logbook_entries": {e["id"] for e in incoming["entries"]},
    }
    total = sum(len(v) for v in new_ids.values())
    assert total > 2050
    base_digest = logical_digest(base / "practiceplan.db")

    def prepare(folder: Path) -> dict[str, str]:
        shutil.copytree(base, folder)
        return env_for(folder)

    def check(folder: Path, outcome: Outcome) -> None:
        conn = _open(folder / "practiceplan.db")
        present = 0
        for table, ids in new_ids.items():
            have = {r[0] for r in conn.execute(f"SELECT id FROM {table}")}
            present += len(have & ids)
        outbox = {r[0] for r in conn.execute("SELECT entity_id FROM outbox")}
        old = conn.execute("SELECT count(*) FROM logbook_entries WHERE id < 'entry_01000'").fetchone()[0]
        conn.close()
        assert old == 20  # what was there stays
        assert present in (0, total), f"partial import: {present} of {total}"
        assert len(outbox & set().union(*new_ids.values())) == present  # one outbox row per imported change
        acknowledged = outcome.code == 0 or "Imported" in outcome.stdout
        if acknowledged:
            assert present == total and "Imported" in outcome.stdout
        if present == 0:
            assert logical_digest(folder / "practiceplan.db") == base_digest

    hammer(tmp_path, cli_argv("import", "json", str(export)), prepare, check,
           [("import.row", 4), ("import.before_commit", 1), ("import.after_commit", 1)])


# --------------------------------------------------------------------------- backup


def test_kill_during_backup(tmp_path):
    base = tmp_path / "base"
    live = _build_home(base, 200)
    for minute in range(5):  # five generations already: every backup also prunes one
        store_backup.write_backup(live, now=datetime(2026, 3, 1, 9, minute, tzinfo=timezone.utc), keep=5)
    base_digest = logical_digest(live)
    before = {g.path.name for g in store_backup.generations(base / "backups", "practiceplan")}

    def prepare(folder: Path) -> dict[str, str]:
        shutil.copytree(base, folder)
        return env_for(folder)

    def check(folder: Path, outcome: Outcome) -> None:
        conn = _open(folder / "practiceplan.db")
        conn.close()
        assert logical_digest(folder / "practiceplan.db") == base_digest  # a backup never changes the database
        gens = _check_generations(folder / "backups")
        names = {g.path.name for g in gens}
        assert 5 <= len(gens) <= 6, names
        new = names - before
        if outcome.code == 0 or "Backed up to" in outcome.stdout:
            written = Path(outcome.stdout.split("Backed up to ", 1)[1].split(" (schema", 1)[0])
            assert written.name in new and len(gens) == 5
            assert logical_digest(written) == base_digest
        for name in new:
            assert logical_digest(folder / "backups" / name) == base_digest
        _next_backup_cleans_up(folder)

    hammer(tmp_path, cli_argv("backup"), prepare, check,
           [("backup.copy", 1), ("backup.manifest", 1), ("backup.prune", 1)])


# --------------------------------------------------------------------------- restore


def test_kill_during_restore(tmp_path):
    base = tmp_path / "base"
    live = _build_home(base, 150)
    candidate = Path(store_backup.write_backup(live, now=NOW, keep=5)["path"])
    from practiceplan.domain.models import normalize_entry
    from practiceplan.store.repo import Store

    store = Store.open(live)
    with store.write():
        store.save_many("logbook_entry", [normalize_entry(entry(i), NOW) for i in range(150, 300)], "x")
        store.conn.execute("DELETE FROM outbox WHERE entity_id < 'entry_00050'")
    store.close()
    before = logical_digest(live)
    after = logical_digest(candidate)
    assert before != after
    conn = sqlite3.connect(candidate)
    tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    conn.close()

    def prepare(folder: Path) -> dict[str, str]:
        shutil.copytree(base, folder)
        return env_for(folder)

    def check(folder: Path, outcome: Outcome) -> None:
        db = folder / "practiceplan.db"
        conn = _open(db)
        conn.close()
        state = logical_digest(db)
        assert state in (before, after), "neither the old nor the restored database"
        if outcome.code == 0 or "Restored" in outcome.stdout:
            assert state == after
        gens = _check_generations(folder / "backups")
        for gen in gens:
            if gen.manifest["reason"] == "pre-restore":
                assert logical_digest(gen.path) == before  # the kept generation is the replaced database
        assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp files beside the database
        _next_backup_cleans_up(folder)

    hammer(tmp_path, cli_argv("restore", str(candidate.name)), prepare, check,
           [("restore.verified", 1), ("restore.generation", 1), ("restore.copy", tables),
            ("restore.before_commit", 1), ("restore.after_commit", 1), ("backup.copy", 1),
            ("backup.manifest", 1)])


# --------------------------------------------------------------------------- migration


def test_kill_during_migration(tmp_path):
    fixture = FIXTURES / "schema-1.db"
    conn = sqlite3.connect(fixture)
    layout = table_columns(conn)
    original = content_digest(conn, layout)
    original_rows = content_digest(conn, layout, skip=("_sqlite_migrations",))
    entries = conn.execute("SELECT count(*) FROM logbook_entries").fetchone()[0]
    conn.close()
    head = (*schema.MIGRATION_NAMES, EXTRA_MIGRATION)

    def prepare(folder: Path) -> dict[str, str]:
        copy_fixture(fixture, folder)
        return env_for(folder)

    def check(folder: Path, outcome: Outcome) -> None:
        conn = _open(folder / "practiceplan.db")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        names = tuple(r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id"))
        columns = table_columns(conn)
        if version == 1:  # the old schema, exactly
            assert names == ("m001_initial",) and columns == layout
            assert content_digest(conn, layout) == original
        else:  # the new one, completely
            assert version == len(head) and names == head
            assert conn.execute("SELECT count(*) FROM test_probe").fetchone()[0] == entries
            assert conn.execute("SELECT count(*) FROM practice_plans WHERE test_probe_note IS NULL").fetchone()[0] == 0
            assert content_digest(conn, layout, skip=("_sqlite_migrations",)) == original_rows
        conn.close()
        if outcome.code == 0:
            assert version == len(head) and json.loads(outcome.stdout)["entries"]
        for gen in _check_generations(folder / "backups"):
            assert gen.manifest["reason"] == "pre-migration from schema 1"
            copy = sqlite3.connect(gen.path)
            assert content_digest(copy, layout) == original
            copy.close()

    hammer(tmp_path, [sys.executable, str(DRIVER), "--", "log", "list", "--limit", "0", "--json"], prepare, check,
           [("migrate.step", 3), ("migrate.backup", 1), ("backup.copy", 1), ("backup.manifest", 1)])
