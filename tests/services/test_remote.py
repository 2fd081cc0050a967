"""services/remote.py and sync/credentials.py: the remote and device id in the database's meta table, token
storage (env > keyring > 0600 file), login verification that stores nothing on failure."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import sys
import types

import pytest

from practiceplan.errors import InvalidInputError, NotAuthorisedError, RemoteUnavailableError, UsageError
from practiceplan.services.session import Session
from practiceplan.settings import Settings
from practiceplan.sync import credentials
from tests.remote_server import FakeServer, closed_port

TOKEN = "CANARY-svc-1a2b3c4d5e"
URL = "https://sync.example.com"


def new_session() -> Session:
    return Session(Settings())


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class FakeKeyring(types.ModuleType):
    """An in-memory stand-in for the keyring package (``fail`` makes every call raise, as a locked one does)."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__("keyring")
        self.store: dict[tuple[str, str], str] = {}
        self.fail = fail

    def get_keyring(self):
        return object()

    def _check(self) -> None:
        if self.fail:
            raise RuntimeError("keyring is locked")

    def get_password(self, service, user):
        self._check()
        return self.store.get((service, user))

    def set_password(self, service, user, password):
        self._check()
        self.store[(service, user)] = password

    def delete_password(self, service, user):
        self._check()
        del self.store[(service, user)]


@pytest.fixture
def keyring(monkeypatch):
    fake = FakeKeyring()
    monkeypatch.setitem(sys.modules, "keyring", fake)
    monkeypatch.delenv("PRACTICEPLAN_NO_KEYRING")
    return fake


# ------------------------------------------------------------------------------------------------ credentials

def test_file_is_0600_from_the_start_even_with_umask_000(isolated_home, monkeypatch):
    old = os.umask(0)
    try:
        source = credentials.save(Settings(), URL, f"  {TOKEN}\n")
    finally:
        os.umask(old)
    path = isolated_home / "credentials.json"
    assert source == "file" and mode(path) == 0o600
    assert json.loads(path.read_text()) == {URL: TOKEN}  # stripped
    assert mode(isolated_home) == 0o700  # the folder did not exist: made private
    assert [p.name for p in isolated_home.iterdir()] == ["credentials.json"]  # no temp file left behind


def test_file_write_never_opens_wider_than_0600(isolated_home, monkeypatch):
    """Every os.open that creates a file asks for 0600 (so it is never world-readable, even for an instant)."""
    real_open = os.open
    modes = []

    def spy(path, flags, mode=0o777, *args, **kwargs):
        if flags & os.O_CREAT:
            modes.append(mode)
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    credentials.save(Settings(), URL, TOKEN)
    assert modes and all(m == 0o600 for m in modes)


def test_an_existing_loose_file_is_replaced_by_a_private_one(isolated_home):
    isolated_home.mkdir()
    path = isolated_home / "credentials.json"
    path.write_text(json.dumps({"https://other.example": "old-token"}))
    os.chmod(path, 0o644)
    credentials.save(Settings(), URL, TOKEN)
    assert mode(path) == 0o600
    assert json.loads(path.read_text()) == {"https://other.example": "old-token", URL: TOKEN}


def test_env_wins_over_the_file(monkeypatch):
    credentials.save(Settings(), URL, TOKEN)
    assert credentials.load(Settings(), URL).source == "file"
    monkeypatch.setenv("PRACTICEPLAN_TOKEN", " from-env ")
    found = credentials.load(Settings(), URL)
    assert (found.token, found.source) == ("from-env", "env")
    assert credentials.where(Settings(), URL) == "env"
    assert "from-env" not in repr(found) and TOKEN not in repr(credentials.load(Settings(), "x"))


def test_a_bad_env_token_is_named_not_shown(monkeypatch):
    monkeypatch.setenv("PRACTICEPLAN_TOKEN", f"{TOKEN} trailing")
    with pytest.raises(InvalidInputError) as caught:
        credentials.load(Settings(), URL)
    assert caught.value.message == "PRACTICEPLAN_TOKEN is not a usable token: the token contains spaces or control characters"
    assert caught.value.hint == "fix or unset PRACTICEPLAN_TOKEN"


def test_tokens_are_per_url():
    credentials.save(Settings(), URL, TOKEN)
    assert credentials.load(Settings(), "https://other.example") is None
    assert credentials.where(Settings(), "https://other.example") is None


def test_delete_and_where(isolated_home):
    settings = Settings()
    credentials.save(settings, URL, TOKEN)
    credentials.save(settings, "https://b.example", "tok-b")
    assert credentials.delete(settings, URL) == ["file"]
    assert credentials.delete(settings, URL) == []
    assert credentials.where(settings, URL) is None and credentials.where(settings, "https://b.example") == "file"
    credentials.delete(settings, "https://b.example")
    assert not (isolated_home / "credentials.json").exists()  # the last token gone: no file


@pytest.mark.parametrize("bad,needle", [
    ("", "empty"), ("   \n", "empty"), ("abc def", "spaces"), ("abc\x1bdef", "control"), ("abc\tdef", "spaces"),
    ("tökén", "ASCII"), ("x" * 8192, "8 KB"),
])
def test_check_token(bad, needle):
    with pytest.raises(InvalidInputError) as caught:
        credentials.check_token(bad)
    assert needle in caught.value.message
    assert not bad.strip() or bad.strip()[:20] not in caught.value.message


def test_check_token_accepts_jwts():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyXzQyIn0.c2lnbmF0dXJl_-"
    assert credentials.check_token(f"\t{jwt}\r\n") == jwt
    assert credentials.check_token("x" * 8191) == "x" * 8191


def test_damaged_file_is_refused_not_overwritten(isolated_home):
    isolated_home.mkdir()
    path = isolated_home / "credentials.json"
    path.write_text("{not json")
    with pytest.raises(InvalidInputError) as caught:
        credentials.save(Settings(), URL, TOKEN)
    assert "credentials.json" in caught.value.message and path.read_text() == "{not json"


def test_keyring_is_used_when_it_works(keyring, isolated_home):
    settings = Settings()
    assert credentials.save(settings, URL, TOKEN) == "keyring"
    assert keyring.store == {("practiceplan", URL): TOKEN}
    assert not (isolated_home / "credentials.json").exists()
    found = credentials.load(settings, URL)
    assert (found.token, found.source) == (TOKEN, "keyring")
    assert credentials.delete(settings, URL) == ["keyring"] and keyring.store == {}


def test_keyring_beats_the_file_and_saving_there_removes_the_file_copy(keyring, isolated_home, monkeypatch):
    monkeypatch.setenv("PRACTICEPLAN_NO_KEYRING", "1")
    credentials.save(Settings(), URL, "file-token")
    monkeypatch.delenv("PRACTICEPLAN_NO_KEYRING")
    keyring.store[("practiceplan", URL)] = "ring-token"
    assert credentials.load(Settings(), URL).token == "ring-token"
    assert credentials.save(Settings(), URL, TOKEN) == "keyring"
    assert not (isolated_home / "credentials.json").exists()


def test_no_keyring_env_keeps_the_keyring_untouched(keyring, monkeypatch):
    monkeypatch.setenv("PRACTICEPLAN_NO_KEYRING", "1")
    keyring.store[("practiceplan", URL)] = "ring-token"
    assert credentials.save(Settings(), URL, TOKEN) == "file"
    assert credentials.load(Settings(), URL).token == TOKEN
    assert credentials.delete(Settings(), URL) == ["file"] and keyring.store == {("practiceplan", URL): "ring-token"}


def test_failing_keyring_falls_back_to_the_file(monkeypatch, isolated_home, capsys):
    monkeypatch.setitem(sys.modules, "keyring", FakeKeyring(fail=True))
    monkeypatch.delenv("PRACTICEPLAN_NO_KEYRING")
    assert credentials.save(Settings(), URL, TOKEN) == "file"
    assert credentials.load(Settings(), URL).source == "file"
    assert credentials.delete(Settings(), URL) == ["file"]
    captured = capsys.readouterr()
    assert captured.out == captured.err == ""  # no traceback, no noise


def test_keyring_without_backend_falls_back_to_the_file(monkeypatch):
    fake = FakeKeyring()
    fail_backend = type("Keyring", (), {"priority": 0, "__module__": "keyring.backends.fail"})
    fake.get_keyring = lambda: fail_backend()
    monkeypatch.setitem(sys.modules, "keyring", fake)
    monkeypatch.delenv("PRACTICEPLAN_NO_KEYRING")
    assert credentials.save(Settings(), URL, TOKEN) == "file" and fake.store == {}


def test_keyring_not_installed_means_the_file(monkeypatch):
    monkeypatch.setitem(sys.modules, "keyring", None)  # import keyring -> ImportError
    monkeypatch.delenv("PRACTICEPLAN_NO_KEYRING")
    assert credentials.save(Settings(), URL, TOKEN) == "file"


# ------------------------------------------------------------------------------------------------ Remote

def test_set_show_unset_in_meta(isolated_home):
    session = new_session()
    assert session.remote.show() == {"remote": None, "deviceId": None, "token": None}
    result = session.remote.set("https://Sync.Example.com/")
    assert result["remote"] == URL and result["previous"] is None and result["changed"] is False
    assert re.fullmatch(r"dev_[A-Za-z0-9_-]{16}", result["deviceId"])
    session.close()
    conn = sqlite3.connect(isolated_home / "practiceplan.db")
    meta = dict(conn.execute("SELECT key, value FROM meta WHERE key LIKE 'sync.%'"))
    conn.close()
    assert meta == {"sync.remote": URL, "sync.device_id": result["deviceId"]}
    session = new_session()
    assert session.remote.show() == {"remote": URL, "deviceId": result["deviceId"], "token": None}
    assert session.remote.unset() == {"remote": None, "previous": URL}
    assert session.remote.unset() == {"remote": None, "previous": None}
    assert session.remote.device_id() == result["deviceId"]  # the device id survives
    session.close()


def test_device_id_is_made_once_and_stable():
    session = new_session()
    first = session.remote.device_id()
    assert re.fullmatch(r"dev_[A-Za-z0-9_-]{16}", first)
    session.close()
    again = new_session()
    assert again.remote.device_id() == first and again.remote.set(URL)["deviceId"] == first
    again.close()


def test_changing_the_remote_says_the_next_sync_starts_afresh():
    session = new_session()
    session.remote.set(URL)
    assert session.notices == []
    same = session.remote.set(URL + "/")
    assert same["changed"] is False and session.notices == []
    moved = session.remote.set("https://new.example")
    assert moved["changed"] is True and moved["previous"] == URL
    assert session.notices == [f"the remote was {URL}: the next sync starts afresh against https://new.example"]
    session.close()


def test_bad_url_changes_nothing():
    session = new_session()
    session.remote.set(URL)
    with pytest.raises(InvalidInputError):
        session.remote.set("http://example.com")
    assert session.remote.url() == URL
    session.close()


def test_show_writes_nothing(isolated_home):
    session = new_session()
    session.remote.show()
    changes = session.store.conn.total_changes
    assert session.remote.show()["deviceId"] is None and session.store.conn.total_changes == changes
    session.close()


def test_login_verifies_then_stores(isolated_home):
    with FakeServer(token=TOKEN) as server:
        session = new_session()
        session.remote.set(server.url)
        result = session.remote.login(TOKEN + "\n")
        assert result == {"remote": server.url, "stored": "file", "verified": True, "shadowedBy": None,
                          "where": f"file {isolated_home / 'credentials.json'} (600)"}
        assert server.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"
        assert server.requests[-1].headers["x-device-id"] == session.remote.device_id()
        assert session.remote.auth_status(check=True)["accepted"] is True
        session.close()


def test_login_refused_stores_nothing(isolated_home):
    with FakeServer(token="the-real-one") as server:
        session = new_session()
        session.remote.set(server.url)
        with pytest.raises(NotAuthorisedError):
            session.remote.login(TOKEN)
        assert credentials.where(Settings(), server.url) is None
        assert not (isolated_home / "credentials.json").exists()
        session.close()


def test_login_unreachable_stores_nothing_unless_no_verify(isolated_home):
    session = new_session()
    url = f"http://127.0.0.1:{closed_port()}"
    session.remote.set(url)
    with pytest.raises(RemoteUnavailableError):
        session.remote.login(TOKEN)
    assert not (isolated_home / "credentials.json").exists()
    assert session.remote.login(TOKEN, verify=False)["verified"] is False
    assert credentials.load(Settings(), url).token == TOKEN
    session.close()


def test_login_without_remote_is_a_usage_error():
    session = new_session()
    with pytest.raises(UsageError) as caught:
        session.remote.login(TOKEN)
    assert caught.value.hint == "set one first: practiceplan remote set URL"
    session.close()


def test_client_without_token_says_login():
    session = new_session()
    session.remote.set(URL)
    with pytest.raises(NotAuthorisedError) as caught:
        session.remote.client()
    assert "practiceplan login" in caught.value.hint
    session.close()


def test_logout_and_env(monkeypatch):
    session = new_session()
    session.remote.set(URL)
    session.remote.login(TOKEN, verify=False)
    assert session.remote.logout() == {"remote": URL, "cleared": ["file"], "envStillSet": False}
    assert session.remote.logout() == {"remote": URL, "cleared": [], "envStillSet": False}
    session.close()
    monkeypatch.setenv("PRACTICEPLAN_TOKEN", "from-env")
    session = new_session()
    assert session.remote.logout()["envStillSet"] is True
    assert session.remote.auth_status()["token"] == {"source": "env", "where": "env PRACTICEPLAN_TOKEN"}
    session.close()
