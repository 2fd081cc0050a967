"""Shared fixtures: every test gets its own PRACTICEPLAN_HOME, a fixed clock and zone, no colour."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from typer.testing import CliRunner

from tests.postgres import pg_dsn  # noqa: F401 - the session's PostgreSQL cluster (server and sync tests)

hypothesis_settings.register_profile("ci", deadline=None, max_examples=200, derandomize=False)
hypothesis_settings.register_profile("nightly", deadline=None, max_examples=5000)
hypothesis_settings.load_profile("ci")

# Monday 2 March 2026, 10:00 in Berlin (09:00Z).
FIXED_NOW = "2026-03-02T09:00:00Z"
ZONE = "Europe/Berlin"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("PRACTICEPLAN_HOME", str(home))
    monkeypatch.setenv("PRACTICEPLAN_NOW", FIXED_NOW)
    monkeypatch.setenv("PRACTICEPLAN_TZ", ZONE)
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("PRACTICEPLAN_DB", raising=False)
    monkeypatch.delenv("PRACTICEPLAN_DEBUG", raising=False)
    monkeypatch.delenv("PRACTICEPLAN_FAULT", raising=False)
    # sync tokens: never a real OS keyring, never a token from the developer's environment
    monkeypatch.setenv("PRACTICEPLAN_NO_KEYRING", "1")
    monkeypatch.delenv("PRACTICEPLAN_TOKEN", raising=False)
    return home


class Run:
    """Invoke the CLI in-process; ``.json`` parses stdout."""

    def __init__(self, result: Any) -> None:
        self.result = result
        self.code = result.exit_code
        self.stdout = result.stdout
        self.stderr = result.stderr

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return f"<Run code={self.code} stdout={self.stdout[:300]!r} stderr={self.stderr[:300]!r}>"


@pytest.fixture
def cli() -> Callable[..., Run]:
    from practiceplan.cli.app import app

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None, ok: bool = True) -> Run:
        result = runner.invoke(app, list(args), input=input, env=env, catch_exceptions=True)
        run = Run(result)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        if ok:
            assert run.code == 0, run
        return run

    return invoke


@pytest.fixture
def set_now(monkeypatch) -> Callable[[str], None]:
    def setter(value: str) -> None:
        monkeypatch.setenv("PRACTICEPLAN_NOW", value)

    return setter


@pytest.fixture
def fake_server():
    """A local HTTP server on 127.0.0.1:0 (tests/remote_server.py), stopped after the test."""
    from tests.remote_server import FakeServer

    with FakeServer() as server:
        yield server
