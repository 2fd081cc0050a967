"""Client homes for sync tests: each is one device (its own PRACTICEPLAN_HOME, database and clock) that can run
CLI commands in-process, open a service session, sync, and describe its data for comparisons."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from practiceplan.domain.models import iso_z, parse_instant
from practiceplan.sync import wire

TABLES = {"practice_plan": "practice_plans", "plan_occurrence": "plan_occurrences",
          "logbook_entry": "logbook_entries", "plan_template": "plan_templates"}
BASE_NOW = "2026-03-02T09:00:00Z"


class Home:
    """One device. ``skew`` (hours) shifts its clock against the others; :meth:`tick` moves all clocks on."""

    def __init__(self, folder: Path, url: str, token: str, *, zone: str = "Europe/Berlin", now: str = BASE_NOW,
                 timeout: float = 5.0) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.token = token
        self.zone = zone
        self.now = parse_instant(now)
        assert self.now is not None
        self.skew = timedelta(0)
        self.timeout = timeout
        self.env_token = True  # False: the token comes from the credential store (`login`)
        self.runner = CliRunner()
        self.cli("remote", "set", url)

    @property
    def db(self) -> Path:
        return self.folder / "practiceplan.db"

    @property
    def clock(self) -> str:
        return iso_z(self.now + self.skew)

    def env(self, **extra: str) -> dict[str, str]:
        env = {"PRACTICEPLAN_HOME": str(self.folder), "PRACTICEPLAN_NOW": self.clock, "PRACTICEPLAN_TZ": self.zone,
               "PRACTICEPLAN_SYNC_BACKOFF": "0", "PRACTICEPLAN_SYNC_TIMEOUT": str(self.timeout), "NO_COLOR": "1"}
        if self.env_token:
            env["PRACTICEPLAN_TOKEN"] = self.token
        return {**env, **extra}

    def cli(self, *args: str, ok: bool = True, input: str | None = None) -> Any:
        from practiceplan.cli.app import app

        result = self.runner.invoke(app, list(args), env=self.env(), input=input, catch_exceptions=True)
        if ok and result.exit_code != 0:
            raise AssertionError(f"{args} exited {result.exit_code}: {result.stdout}{result.stderr}"
                                 f"{result.exception!r}")
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def sync(self, *args: str, ok: bool = True) -> Any:
        result = self.cli("sync", "--json", *args, ok=ok)
        return json.loads(result.stdout) if result.exit_code in (0, 1) and result.stdout.strip() else result

    @contextmanager
    def session(self) -> Iterator[Any]:
        from practiceplan.services.session import Session
        from practiceplan.settings import Settings

        session = Session(Settings(env={**os.environ, **self.env()}))
        session.at(self.now + self.skew)  # the clock is read from os.environ, not from the settings' env
        try:
            yield session
        finally:
            session.close()

    def tick(self, minutes: float = 1) -> None:
        self.now += timedelta(minutes=minutes)

    # ------------------------------------------------------------------ what the device holds

    def docs(self, kind: str, *, deleted: bool = False) -> dict[str, dict[str, Any]]:
        with sqlite3.connect(self.db) as conn:
            where = "deleted_at IS NOT NULL" if deleted else "deleted_at IS NULL"
            return {r[0]: json.loads(r[1]) for r in conn.execute(f"SELECT id, doc FROM {TABLES[kind]} WHERE {where}")}

    def versions(self) -> dict[str, dict[str, str]]:
        """kind -> id -> version hash of every live entity (what the server must hold too)."""
        return {kind: {i: wire.version_hash(kind, d) for i, d in self.docs(kind).items()} for kind in TABLES}

    def conflicts(self) -> list[dict[str, Any]]:
        with sqlite3.connect(self.db) as conn:
            return [{"kind": r[0], "id": r[1], "kept": r[2], "local": json.loads(r[3]) if r[3] else None,
                     "remote": json.loads(r[4]) if r[4] else None, "reason": r[5]}
                    for r in conn.execute("SELECT entity_type, entity_id, kept, local_doc, remote_doc, reason "
                                          "FROM conflicts")]

    def outbox(self) -> int:
        with sqlite3.connect(self.db) as conn:
            return int(conn.execute("SELECT count(*) FROM outbox WHERE entity_type != 'goal'").fetchone()[0])


def server_versions(state: Any, user: str) -> dict[str, dict[str, str]]:
    """kind -> id -> version hash of every live entity the test server holds for ``user``."""
    found: dict[str, dict[str, str]] = {kind: {} for kind in TABLES}
    for row in state.live_rows(user):
        if row.entity_type in found:
            found[row.entity_type][row.entity_id] = wire.version_hash(row.entity_type, row.data)
    return found


def at(moment: datetime) -> str:
    return iso_z(moment)
