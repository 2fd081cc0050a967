"""Shared helpers for the data tests: fixtures, subprocess environments, content digests, test data."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

from tests.conftest import FIXED_NOW, ZONE

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).with_name("fixtures")
DRIVER = Path(__file__).with_name("migrate_driver.py")
EXTRA_MIGRATION = "m999_test_probe"


def fixture_paths() -> list[Path]:
    return sorted(FIXTURES.glob("schema-*.db"), key=lambda p: int(p.stem.split("-")[1]))


def copy_fixture(fixture: Path, folder: Path, *, wal: bool = True) -> Path:
    """A private copy of a saved database, as `practiceplan.db` in ``folder``.

    Fixtures are committed as one self-contained file (rollback journal). ``wal`` (the default) switches the
    copy to WAL, as every database a released version wrote is (``connect`` sets it when it creates the
    file): converting a rollback-journal file to WAL from several processes at once fails at once with
    "database is locked" (SQLite does not run the busy handler for that lock upgrade), which real users'
    databases never meet.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "practiceplan.db"
    shutil.copyfile(fixture, target)
    os.chmod(target, 0o600)
    if wal:
        conn = sqlite3.connect(target, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.close()
    return target


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRACTICEPLAN_")}
    env.update(PRACTICEPLAN_HOME=str(home), PRACTICEPLAN_NOW=FIXED_NOW, PRACTICEPLAN_TZ=ZONE, NO_COLOR="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    env.update(extra)
    return env


def cli_argv(*args: str) -> list[str]:
    """The real entry point, as a user runs it."""
    return [sys.executable, "-m", "practiceplan", *args]


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def tables(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]


def table_columns(conn: sqlite3.Connection) -> dict[str, list[str]]:
    return {t: [r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')] for t in tables(conn)}


def content_digest(conn: sqlite3.Connection, layout: dict[str, list[str]], *, skip: tuple[str, ...] = ()) -> str:
    """sha256 over the given tables' given columns, rows sorted: "the untouched columns are unchanged"."""
    digest = hashlib.sha256()
    for table in sorted(layout):
        if table in skip:
            continue
        cols = ", ".join(f'"{c}"' for c in layout[table])
        rows = conn.execute(f'SELECT {cols} FROM "{table}" ORDER BY {cols}').fetchall()
        digest.update(json.dumps([table, rows], ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables(conn)}


def integrity(conn: sqlite3.Connection) -> str:
    return conn.execute("PRAGMA integrity_check").fetchone()[0]


def logical_digest(path: Path) -> str:
    """The store's canonical dump digest of a database file (schema, user_version, every row)."""
    from practiceplan.store import data as mt

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return mt.dump_digest(conn)
    finally:
        conn.close()


def entry(i: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"entry_{i:05d}", "timestamp": f"2026-02-{1 + i % 27:02d}T10:{i % 60:02d}:00Z",
            "duration": 5 + i % 50, "instrument": "piano", **extra}
