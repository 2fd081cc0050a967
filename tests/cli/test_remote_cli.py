"""`remote set|show|unset`, `login`, `logout`, `auth status`: output, JSON, exit codes, and the token never shown."""

from __future__ import annotations

import json

import pytest

from tests.remote_server import FakeServer, closed_port

TOKEN = "CANARY-cli-77aa55bb33"


@pytest.fixture
def server():
    with FakeServer(token=TOKEN) as srv:
        yield srv


def no_token(*runs) -> None:
    for run in runs:
        assert TOKEN not in run.stdout and TOKEN not in run.stderr, run


def test_remote_set_show_unset(cli):
    none = cli("remote", "show")
    assert none.stdout == "No sync remote is set. Set one with: practiceplan remote set URL\n"
    assert cli("remote", "show", "--json").json == {"remote": None, "deviceId": None, "token": None}
    done = cli("remote", "set", "https://sync.example.com/")
    assert done.stdout == "Remote set to https://sync.example.com\nNext: practiceplan login\n" and done.stderr == ""
    shown = cli("remote", "show", "--json").json
    assert shown["remote"] == "https://sync.example.com" and shown["deviceId"].startswith("dev_")
    text = cli("remote", "show").stdout
    assert text.splitlines() == ["remote:    https://sync.example.com", f"device id: {shown['deviceId']}",
                                 "token:     none stored (run `practiceplan login`)"]
    assert cli("remote", "unset").stdout == "Remote https://sync.example.com unset\n"
    assert cli("remote", "unset").stdout == "No remote was set\n"
    assert cli("remote", "show", "--json").json["remote"] is None


def test_remote_set_json_and_change_note(cli):
    first = cli("remote", "set", "https://a.example", "--json").json
    assert first["remote"] == "https://a.example" and first["changed"] is False and first["previous"] is None
    second = cli("remote", "set", "https://b.example", "--json")
    assert second.json["changed"] is True and second.json["previous"] == "https://a.example"
    assert second.stderr == ("practiceplan: note: the remote was https://a.example: the next sync starts afresh "
                             "against https://b.example\n")
    assert second.json["deviceId"] == first["deviceId"]


@pytest.mark.parametrize("url", ["http://example.com", "http://10.0.0.1:8000", "ftp://x.example", "sync.example.com"])
def test_remote_set_refuses(cli, url):
    result = cli("remote", "set", url, ok=False)
    assert result.code == 65 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("practiceplan: error: ") and lines[1].startswith("hint: ")
    assert cli("remote", "show", "--json").json["remote"] is None


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765", "http://[::1]:8765", "http://localhost:8765",
                                 "http://[::1]"])
def test_remote_set_accepts_loopback_http(cli, url):
    assert cli("remote", "set", url, "--json").json["remote"] == url


def test_login_token_stdin(cli, server, isolated_home):
    cli("remote", "set", server.url)
    result = cli("login", "--token-stdin", input=f"{TOKEN}\n")
    path = isolated_home / "credentials.json"
    assert result.stdout == f"Logged in to {server.url}\ntoken stored in file {path} (600)\n"
    assert json.loads(path.read_text()) == {server.url: TOKEN} and path.stat().st_mode & 0o777 == 0o600
    assert server.requests[-1].path == "/api/sync/status"
    assert server.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"
    no_token(result)


def test_login_hidden_prompt_never_echoes(cli, server, monkeypatch, isolated_home):
    monkeypatch.setattr("practiceplan.cli.remote.stdin_is_tty", lambda: True)
    cli("remote", "set", server.url)
    result = cli("login", "--json", input=f"{TOKEN}\n")
    assert result.json["stored"] == "file" and result.json["verified"] is True
    assert f"Token for {server.url} (not shown)" in result.stderr
    no_token(result)
    assert json.loads((isolated_home / "credentials.json").read_text()) == {server.url: TOKEN}


def test_login_needs_a_terminal_or_token_stdin(cli, server):
    cli("remote", "set", server.url)
    result = cli("login", ok=False, input=f"{TOKEN}\n")
    assert result.code == 2 and "--token-stdin" in result.stderr
    assert server.requests == []


def test_login_takes_no_token_argument(cli, server):
    cli("remote", "set", server.url)
    result = cli("login", TOKEN, ok=False)
    assert result.code == 2
    assert cli("login", "--token", TOKEN, ok=False).code == 2


def test_login_without_remote(cli):
    result = cli("login", "--token-stdin", input=f"{TOKEN}\n", ok=False)
    assert result.code == 2
    assert result.stderr == ("practiceplan: error: no sync remote is set for this database\n"
                             "hint: set one first: practiceplan remote set URL\n")


def test_login_refused_token_is_77_and_stores_nothing(cli, server, isolated_home):
    cli("remote", "set", server.url)
    result = cli("login", "--token-stdin", input="not-the-token\n", ok=False)
    assert result.code == 77 and "refused the token (HTTP 401)" in result.stderr
    assert "practiceplan login" in result.stderr.splitlines()[1]
    assert not (isolated_home / "credentials.json").exists()
    assert "not-the-token" not in result.stderr


def test_login_unreachable_is_69_and_stores_nothing_unless_no_verify(cli, isolated_home):
    url = f"http://127.0.0.1:{closed_port()}"
    cli("remote", "set", url)
    result = cli("login", "--token-stdin", input=f"{TOKEN}\n", ok=False)
    assert result.code == 69 and result.stderr.splitlines()[1] == (
        "hint: check the address with `practiceplan remote show` and your connection")
    assert not (isolated_home / "credentials.json").exists()
    stored = cli("login", "--token-stdin", "--no-verify", input=f"{TOKEN}\n")
    assert stored.stdout.startswith(f"Logged in to {url} (token not checked)\n")
    no_token(result, stored)


def test_login_empty_or_bad_token(cli, server):
    cli("remote", "set", server.url)
    assert cli("login", "--token-stdin", input="\n", ok=False).code == 2
    bad = cli("login", "--token-stdin", input="abc def\n", ok=False)
    assert bad.code == 65 and "spaces" in bad.stderr and server.requests == []


def test_logout(cli, server, isolated_home):
    cli("remote", "set", server.url)
    cli("login", "--token-stdin", input=f"{TOKEN}\n")
    out = cli("logout")
    assert out.stdout == f"Logged out of {server.url}: token removed from credentials.json\n"
    assert not (isolated_home / "credentials.json").exists()
    again = cli("logout")
    assert again.code == 0 and again.stdout == f"No token was stored for {server.url}; nothing to remove\n"
    assert cli("logout", "--json").json == {"remote": server.url, "cleared": [], "envStillSet": False}


def test_auth_status(cli, server, isolated_home, monkeypatch):
    assert cli("auth", "status", "--json").json == {"remote": None, "token": None, "accepted": None}
    assert cli("auth", "status", "--check", ok=False).code == 2
    cli("remote", "set", server.url)
    none = cli("auth", "status")
    assert none.stdout.splitlines()[1] == "token:     none stored (run `practiceplan login`)"
    missing = cli("auth", "status", "--check", ok=False)
    assert missing.code == 77 and "no token is stored" in missing.stderr
    cli("login", "--token-stdin", input=f"{TOKEN}\n")
    path = isolated_home / "credentials.json"
    status = cli("auth", "status", "--json").json
    assert status == {"remote": server.url, "token": {"source": "file", "where": f"file {path} (600)"},
                      "accepted": None}
    checked = cli("auth", "status", "--check", "--json")
    assert checked.json["accepted"] is True
    assert cli("auth", "status", "--check").stdout.splitlines()[-1] == "server:    accepts the token"
    monkeypatch.setenv("PRACTICEPLAN_TOKEN", "wrong-token")
    env = cli("auth", "status", "--json").json
    assert env["token"] == {"source": "env", "where": "env PRACTICEPLAN_TOKEN"}
    refused = cli("auth", "status", "--check", ok=False)
    assert refused.code == 77 and "wrong-token" not in refused.stderr
    no_token(status_run := cli("auth", "status"), checked, refused)
    assert "env PRACTICEPLAN_TOKEN" in status_run.stdout


def test_auth_status_check_unreachable_and_failing(cli, server):
    cli("remote", "set", server.url)
    cli("login", "--token-stdin", input=f"{TOKEN}\n")
    server.reply("GET", "/api/sync/status", 503, {"error": "maintenance"})
    busy = cli("auth", "status", "--check", ok=False)
    assert busy.code == 75 and "HTTP 503" in busy.stderr
    server.stop()
    gone = cli("auth", "status", "--check", ok=False)
    assert gone.code == 69 and "cannot reach 127.0.0.1" in gone.stderr
    no_token(busy, gone)


@pytest.mark.parametrize("path", [("remote", "set"), ("remote", "show"), ("remote", "unset"), ("login",),
                                  ("logout",), ("auth", "status")])
def test_help_has_examples(cli, path):
    text = cli(*path, "--help").stdout
    assert "Examples:" in text and f"practiceplan {' '.join(path)}" in text.split("Examples:")[1]
