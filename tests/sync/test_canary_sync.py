"""The token canary for `sync` (tests/cli/test_token_canary.py covers login, remote and auth): whatever the
server answers, the token is never printed, logged or stored outside the credential store."""

from __future__ import annotations

import sqlite3

import pytest

from tests.remote_server import closed_port
from tests.sync.homes import Home

SYNC_COMMANDS = (("sync",), ("sync", "--json"), ("sync", "--dry-run"), ("sync", "--strict", "--json"),
                 ("sync", "status"), ("sync", "status", "--json"), ("sync", "conflicts", "--json"))


def _nowhere(home: Home, token: str) -> None:
    needle = token.encode()
    for path in home.folder.rglob("*"):
        if path.is_file() and path.name != "credentials.json":
            assert needle not in path.read_bytes(), path
    with sqlite3.connect(home.db) as conn:
        assert token not in "\n".join(conn.iterdump())


@pytest.mark.parametrize("fault", [None, "500-before", "truncate", "429", "401", "unreachable"])
@pytest.mark.parametrize("stored", [False, True], ids=["env", "stored"])
def test_sync_never_shows_or_writes_the_token(tmp_path, mirubato, monkeypatch, fault, stored):
    token = mirubato.token("user_a") if fault != "401" else mirubato.state.token_for("user_a", secret="wrong")
    url = mirubato.url if fault != "unreachable" else f"http://127.0.0.1:{closed_port()}"
    home = Home(tmp_path / "home", url, token)
    home.cli("log", "add", "--minutes", "10")
    if stored:  # from the credentials file instead of PRACTICEPLAN_TOKEN
        home.env_token = False
        home.cli("login", "--token-stdin", "--no-verify", input=token + "\n")
    for debug in ("", "1"):
        monkeypatch.setenv("PRACTICEPLAN_DEBUG", debug)
        for args in SYNC_COMMANDS:
            if fault == "429":
                mirubato.state.inject(fault, count=5, seconds=60)
            elif fault and fault not in ("401", "unreachable"):
                mirubato.state.inject(fault, count=5)
            run = home.cli(*args, ok=False)
            assert token not in run.stdout and token not in run.stderr, (args, run.stdout, run.stderr)
            assert "Traceback" not in run.stderr, (args, run.stderr)
            assert run.exit_code in (0, 65, 69, 75, 77), (args, run.exit_code, run.stderr)
            mirubato.state.clear_faults()
    _nowhere(home, token)
