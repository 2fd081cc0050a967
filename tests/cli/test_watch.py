"""`practiceplan watch` against a running `practiceplan serve` app (WebSockets on, a real socket): a plan pushed by
another device arrives as one JSON line and watch exits 0 after --once 1; no token: exit 77; a refused token: 77;
an unreachable server: 69; the token is never printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from practiceplan.server import db
from practiceplan.server.app import make_app
from practiceplan.server.service import Limits, SyncService
from tests.postgres import free_port
from tests.sync.server import serve


def run(home: Path, *args: str, token: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "practiceplan", *args], env=env_for(home, token),
                          capture_output=True, text=True, timeout=timeout)


def env_for(home: Path, token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRACTICEPLAN_", "FORCE_COLOR"))}
    env.update(PRACTICEPLAN_HOME=str(home), PRACTICEPLAN_TZ="Europe/Berlin", NO_COLOR="1",
               PRACTICEPLAN_SYNC_BACKOFF="0")
    if token:
        env["PRACTICEPLAN_TOKEN"] = token
    return env


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(base URL, ana's token): a `practiceplan serve` app on a SQLite file; the user made by the CLI."""
    database = tmp_path / "server.db"
    added = run(tmp_path / "admin", "server", "user", "add", "ana", "--database", str(database), "--json")
    assert added.returncode == 0, added.stderr
    token = json.loads(added.stdout)["token"]
    engine = db.make_engine(str(database))
    try:
        with serve(make_app(SyncService(engine, Limits(rate_per_minute=0))), websockets=True) as url:
            yield url, token
    finally:
        engine.dispose()


def device(tmp_path: Path, name: str, url: str, token: str) -> Path:
    home = tmp_path / name
    assert run(home, "remote", "set", url).returncode == 0
    return home


def test_watch_prints_the_event_of_another_device_as_one_json_line(tmp_path, server):
    url, token = server
    watcher, other = device(tmp_path, "watcher", url, token), device(tmp_path, "other", url, token)
    proc = subprocess.Popen([sys.executable, "-m", "practiceplan", "watch", "--once", "1", "--json"],
                            env=env_for(watcher, token), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    first = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            first.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert first.wait(30), "watch did not connect and sync"
        assert json.loads(lines[0]) == {"type": "SYNCED", "received": 0, "merged": 0}
        assert run(other, "plan", "add", "Duet", "--every", "daily", "--at", "18:00", token=token).returncode == 0
        pushed = run(other, "sync", token=token)
        assert pushed.returncode == 0, pushed.stderr
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    reader.join(10)
    stderr = proc.stderr.read() if proc.stderr else ""
    assert code == 0, stderr
    documents = [json.loads(line) for line in lines]
    events = [d for d in documents if d["type"] != "SYNCED"]
    assert len(events) == 1 and events[0]["type"] == "PLAN_CREATED" and events[0]["plan"]["title"] == "Duet"
    assert documents[-1]["type"] == "SYNCED" and documents[-1]["received"] >= 1  # the plan is here now
    assert all(line.endswith("\n") and "\n" not in line[:-1] for line in lines)
    assert token not in "".join(lines) + stderr
    listed = run(watcher, "plan", "list", "--json")
    assert "Duet" in listed.stdout


def test_watch_without_a_token_exits_77(tmp_path, server):
    url, token = server
    home = device(tmp_path, "no-login", url, token)
    result = run(home, "watch", "--once", "1")
    assert result.returncode == 77 and result.stdout == ""
    assert result.stderr.splitlines() == [f"practiceplan: error: no token is stored for {url}",
                                          "hint: run `practiceplan login`"]


def test_watch_with_a_refused_token_exits_77_and_never_shows_it(tmp_path, server):
    url, _token = server
    home = device(tmp_path, "bad", url, _token)
    wrong = "pps_CANARY-watch-refused-0123456789"
    result = run(home, "watch", "--once", "1", "--no-sync", token=wrong)
    assert result.returncode == 77, result.stderr
    assert "refused the token (HTTP 403)" in result.stderr and wrong not in result.stdout + result.stderr


def test_watch_against_an_unreachable_server_exits_69(tmp_path, server):
    _url, token = server
    home = device(tmp_path, "away", f"http://127.0.0.1:{free_port()}", token)
    for extra in ((), ("--no-sync",)):
        result = run(home, "watch", "--once", "1", *extra, token=token)
        assert result.returncode == 69, result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 2 and lines[0].startswith("practiceplan: error: cannot reach 127.0.0.1:")
        assert token not in result.stdout + result.stderr


def test_watch_needs_a_remote(tmp_path):
    result = run(tmp_path / "none", "watch")
    assert result.returncode == 2 and "no sync remote is set" in result.stderr


def test_the_live_client_reconnects_with_growing_jittered_waits():
    import random

    from practiceplan.sync.live import Backoff, live_url

    backoff = Backoff(rng=random.Random(7))
    waits = [backoff.next() for _ in range(10)]
    bases = [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30]
    assert all(0.8 * b <= w <= min(1.2 * b, 30) for w, b in zip(waits, bases, strict=True)), waits
    backoff.reset()
    assert 0.4 <= backoff.next() <= 0.6
    assert live_url("https://sync.example.com/base") == "wss://sync.example.com/base/api/live"
    assert live_url("http://127.0.0.1:8080") == "ws://127.0.0.1:8080/api/live"
    from practiceplan.errors import InvalidInputError

    with pytest.raises(InvalidInputError):
        live_url("http://sync.example.com")  # plain ws:// only on this computer


def test_a_lost_connection_is_reported_once_and_retried_until_it_is_back(monkeypatch):
    from practiceplan.errors import NotAuthorisedError, RemoteUnavailableError
    from practiceplan.services.watch import Watch
    from practiceplan.sync.live import Lost

    class FakeLive:
        def __init__(self, events: list[Any]) -> None:
            self.events = events

        def __enter__(self) -> FakeLive:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def receive(self, timeout: float | None = None) -> Any:
            item = self.events.pop(0)
            if isinstance(item, BaseException):
                raise item
            return item

    down = RemoteUnavailableError("cannot reach 127.0.0.1:1")
    opens: list[Any] = [FakeLive([{"type": "PLAN_UPDATED", "planId": "p1"}, Lost("the live connection dropped")]),
                        down, down, FakeLive([{"type": "PLAN_DELETED", "planId": "p1"}])]

    class FakeClient:
        def open(self) -> Any:
            item = opens.pop(0)
            if isinstance(item, BaseException):
                raise item
            return item

    sleeps: list[float] = []
    lost: list[tuple[str, float]] = []
    events: list[dict[str, Any]] = []
    watch = Watch(None, sleep=sleeps.append)  # type: ignore[arg-type]
    monkeypatch.setattr(watch, "client", FakeClient)
    seen = watch.run(on_event=events.append, on_lost=lambda why, delay: lost.append((why, delay)), sync=False, once=2)
    assert seen == 2 and [e["type"] for e in events] == ["PLAN_UPDATED", "PLAN_DELETED"]
    assert len(lost) == 1 and lost[0][0] == "the live connection dropped" and lost[0][1] == sleeps[0]
    assert len(sleeps) == 3 and sleeps[0] < sleeps[1] < sleeps[2]  # 0.5, 1, 2 s (with jitter)

    opens[:] = [NotAuthorisedError("refused")]  # a refused token at a reconnection ends the watch (exit 77)
    with pytest.raises(NotAuthorisedError):
        watch.run(on_event=events.append, on_lost=lambda *_: None, sync=False)


def test_an_event_without_a_plan_title_is_shown_with_the_local_title():
    from zoneinfo import ZoneInfo

    from practiceplan.render.watch import event_line

    event = {"type": "PLAN_OCCURRENCE_COMPLETED", "member": "lea", "timestamp": "2026-06-01T10:00:00.000Z",
             "occurrence": {"id": "plan_occ_1", "planId": "plan_abc", "status": "completed"}}
    utc = ZoneInfo("UTC")
    assert event_line(event, utc, {"plan_abc": "Etudes"}) == \
        "10:00:00  PLAN_OCCURRENCE_COMPLETED Etudes  by lea"
    assert event_line(event, utc).endswith("plan_abc  by lea")  # not on this device: its id
