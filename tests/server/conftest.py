"""Fixtures of the sync server tests: every test runs on both backends.

* ``sqlite``: a fresh database file in the test's tmp folder.
* ``postgresql``: a fresh schema in one PostgreSQL cluster per test session (``pg_dsn``, tests/postgres.py,
  registered in tests/conftest.py so the sync tests against our server share the cluster).

``srv`` gives the server (``srv.client`` is an in-process HTTP client, ``srv.user(...)`` makes an account and
returns its token); ``live_url`` serves the same app on a real socket (127.0.0.1, ephemeral port) for the
sync client.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from practiceplan.server import db, users
from practiceplan.server.app import make_app
from practiceplan.server.service import Limits, SyncService
from tests.postgres import fresh_schema  # pg_dsn, the one cluster of the session: tests/conftest.py
from tests.sync.server import serve  # one way to run an app on a real socket (tests/sync/server.py)

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    backend = request.param if hasattr(request, "param") else "sqlite"
    if backend == "sqlite":
        yield str(tmp_path / "server.db")
        return
    with fresh_schema(request.getfixturevalue("pg_dsn")) as url:
        yield url


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_url", BACKENDS, indirect=True)


class Clock:
    """The server's clock: real time unless set; ``advance`` moves it on."""

    def __init__(self) -> None:
        self.fixed: datetime | None = None

    def __call__(self) -> datetime:
        return self.fixed or datetime.now(UTC)

    def advance(self, **delta: float) -> None:
        self.fixed = (self.fixed or datetime.now(UTC)) + timedelta(**delta)


@dataclass
class Server:
    url: str
    engine: Any
    service: SyncService
    client: Any
    clock: Clock
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def user(self, name: str, role: str = "learner") -> str:
        _user, token = users.add(self.engine, name, role)
        self.tokens[name] = token
        return token

    def auth(self, who: str, **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **headers}

    def post(self, path: str, who: str | None, body: Any = None, **headers: str) -> Any:
        hdrs = self.auth(who, **headers) if who else headers
        return self.client.post(path, json=body, headers=hdrs) if body is not None else \
            self.client.post(path, headers=hdrs)

    def push(self, who: str, changes: dict[str, Any], key: str | None = None, **extra: Any) -> Any:
        headers = {"X-Idempotency-Key": key} if key else {}
        return self.post("/api/sync/push", who, {"changes": changes, **extra}, **headers)

    def pull(self, who: str, body: Any = None) -> Any:
        return self.post("/api/sync/pull", who, body if body is not None else {})

    def status(self, who: str) -> Any:
        return self.client.get("/api/sync/status", headers=self.auth(who))


def build(url: str, limits: Limits | None = None) -> Server:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's notice about httpx in its TestClient
        from starlette.testclient import TestClient

    engine = db.make_engine(url)
    db.migrate(engine)
    clock = Clock()
    service = SyncService(engine, limits or Limits(rate_per_minute=0), clock=clock)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = TestClient(make_app(service), raise_server_exceptions=False)
    return Server(url, engine, service, client, clock)


@pytest.fixture
def srv(database_url: str) -> Iterator[Server]:
    server = build(database_url)
    try:
        yield server
    finally:
        server.client.close()
        server.engine.dispose()


@pytest.fixture
def make_server(database_url: str) -> Iterator[Any]:
    """``make_server(limits)``: a server on this test's database with other limits."""
    made: list[Server] = []

    def make(limits: Limits) -> Server:
        server = build(database_url, limits)
        made.append(server)
        return server

    yield make
    for server in made:
        server.client.close()
        server.engine.dispose()


@pytest.fixture
def live_url(srv: Server) -> Iterator[str]:
    """``srv``'s app served on a real socket."""
    with serve(make_app(srv.service)) as url:
        yield url
