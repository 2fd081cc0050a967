"""The token canary: with a recognisable fake token stored and in the environment, run every command's --help,
the remote/login/logout/auth commands against servers that accept, refuse (401), fail (500) or cannot be
reached, plus the commands that dump data (export, backup, doctor); the token must appear nowhere: not in
stdout or stderr, not in the database file, not in the events table, not in any file of PRACTICEPLAN_HOME but
credentials.json."""

from __future__ import annotations

import secrets
import sqlite3

import pytest
import typer.main

from practiceplan.cli.app import app
from tests.remote_server import FakeServer, closed_port

TOKEN = f"CANARY-tok-{secrets.token_hex(8)}"


def command_paths(command, path=()):
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from command_paths(sub, (*path, name))


def verbose_flags(cli) -> list[str]:
    """-v/--verbose, where the CLI has them (it has none today: then the runs below are plain)."""
    text = cli("--help").stdout
    return [flag for flag in ("-v", "--verbose") if f" {flag}" in text]


class Canary:
    def __init__(self, cli, monkeypatch) -> None:
        self.cli, self.monkeypatch = cli, monkeypatch
        self.runs = []

    def __call__(self, *args: str, input: str | None = None, env_token: bool = False) -> int:
        if env_token:
            self.monkeypatch.setenv("PRACTICEPLAN_TOKEN", TOKEN)
        try:
            run = self.cli(*args, input=input, ok=False)
        finally:
            self.monkeypatch.delenv("PRACTICEPLAN_TOKEN", raising=False)
        self.runs.append((args, run))
        assert TOKEN not in run.stdout, (args, run.stdout)
        assert TOKEN not in run.stderr, (args, run.stderr)
        assert "Traceback" not in run.stderr, (args, run.stderr)
        return run.code


@pytest.fixture
def canary(cli, monkeypatch):
    return Canary(cli, monkeypatch)


def test_help_of_every_command(canary, cli):
    paths = list(command_paths(typer.main.get_command(app)))
    assert ("login",) in paths and ("auth", "status") in paths and ("remote", "set") in paths and len(paths) > 40
    for path in paths:
        for extra in ([], *([flag] for flag in verbose_flags(cli))):
            assert canary(*path, *extra, "--help", env_token=True) == 0, path


def _sync_commands(canary, url: str, expected_login: int, flags: list[str]) -> None:
    assert canary("remote", "set", url) == 0
    assert canary("login", "--token-stdin", *flags, input=f"{TOKEN}\n") == expected_login
    assert canary("login", "--token-stdin", "--no-verify", *flags, input=f"  {TOKEN}  \n") == 0
    for json_ in ([], ["--json"]):
        assert canary("remote", "show", *json_, *flags) == 0
        assert canary("auth", "status", *json_, *flags) == 0
        assert canary("auth", "status", *json_, *flags, env_token=True) == 0
        assert canary("auth", "status", "--check", *json_, *flags) == expected_login
        assert canary("auth", "status", "--check", *json_, *flags, env_token=True) == expected_login
    assert canary("logout", *flags) == 0
    assert canary("logout", *flags, env_token=True) == 0
    assert canary("login", "--token-stdin", "--no-verify", *flags, input=f"{TOKEN}\n") == 0  # stored again


@pytest.mark.parametrize("kind,expected", [("ok", 0), ("401", 77), ("500", 75), ("unreachable", 69)])
def test_sync_commands_never_show_or_write_the_token(canary, cli, isolated_home, monkeypatch, kind, expected):
    monkeypatch.chdir(isolated_home.parent)
    canary("plan", "add", "Scales", "--every", "daily", "--at", "18:00")
    server = FakeServer(token=TOKEN if kind != "401" else "another-token").start()
    try:
        if kind == "500":
            server.fail_everything(500, {"success": False, "error": f"Internal server error ({TOKEN})"})
        url = server.url if kind != "unreachable" else f"http://127.0.0.1:{closed_port()}"
        for flags in ([], *([flag] for flag in verbose_flags(cli))):
            _sync_commands(canary, url, expected, flags)
        monkeypatch.setenv("PRACTICEPLAN_DEBUG", "1")  # tracebacks on: still nothing
        _sync_commands(canary, url, expected, [])
        monkeypatch.delenv("PRACTICEPLAN_DEBUG")
    finally:
        server.stop()
    # the commands that show or copy everything else
    for args in (("today",), ("today", "--json"), ("doctor", "--json"), ("config", "show"), ("config", "path"),
                 ("export", "json", "-o", "-"), ("backup",), ("events", "--json"), ("remote", "unset")):
        assert canary(*args, env_token=True) == 0, args
    assert (isolated_home / "credentials.json").read_text().count(TOKEN) == 1  # the one place it belongs
    _assert_nowhere_but_credentials(isolated_home)


def _assert_nowhere_but_credentials(home) -> None:
    needle = TOKEN.encode()
    checked = 0
    for path in home.rglob("*"):
        if path.is_file() and path.name != "credentials.json":
            assert needle not in path.read_bytes(), path
            checked += 1
    assert checked >= 2  # the database and at least one backup
    conn = sqlite3.connect(home / "practiceplan.db")
    try:
        events = conn.execute("SELECT name, data FROM events").fetchall()
        meta = conn.execute("SELECT key, value FROM meta").fetchall()
        dump = "\n".join(conn.iterdump())
    finally:
        conn.close()
    assert all(TOKEN not in f"{name} {data}" for name, data in events)
    assert all(TOKEN not in value for _, value in meta)
    assert TOKEN not in dump
