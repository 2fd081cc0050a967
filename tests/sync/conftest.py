"""Fixtures for the sync tests: a running Mirubato-mode server (``mirubato``) and an extended-mode one
(``mirubato_ext``).

Each server runs once per test session (start-up costs ~20 ms, but there is no reason to pay it per
test); every test gets it with an empty state, because the function-scoped fixtures call
``state.reset()`` before and after the test (the reset also cancels injected faults and pending
``delay-after`` sleeps, and restores the real clock and random ids).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.postgres import fresh_schema
from tests.sync.backends import SERVERS, MirubatoBackend, SyncServer, ours
from tests.sync.mirubato import ServerState, make_app
from tests.sync.server import serve


@dataclass
class MirubatoServer:
    """A running test server: ``state`` (the :class:`ServerState`), ``url`` (base URL, no trailing
    slash), and helpers for the authentication header."""

    state: ServerState
    url: str

    def token(self, user: str = "user_a", **kwargs: Any) -> str:
        """A valid HS256 JWT for ``user`` (kwargs go to :meth:`ServerState.token_for`)."""
        return self.state.token_for(user, **kwargs)

    def auth(self, user: str = "user_a", **kwargs: Any) -> dict[str, str]:
        """``{"Authorization": "Bearer <jwt>"}`` for ``user``."""
        return {"Authorization": f"Bearer {self.token(user, **kwargs)}"}


@pytest.fixture(scope="session")
def _mirubato_session() -> Iterator[MirubatoServer]:
    state = ServerState()
    with serve(make_app(state)) as url:
        yield MirubatoServer(state, url)


@pytest.fixture(scope="session")
def _mirubato_ext_session() -> Iterator[MirubatoServer]:
    state = ServerState(extended=True)
    with serve(make_app(state)) as url:
        yield MirubatoServer(state, url)


@pytest.fixture
def mirubato(_mirubato_session: MirubatoServer) -> Iterator[MirubatoServer]:
    """The Mirubato-mode server, empty at the start of the test."""
    _mirubato_session.state.reset()
    yield _mirubato_session
    _mirubato_session.state.reset()


@pytest.fixture
def mirubato_ext(_mirubato_ext_session: MirubatoServer) -> Iterator[MirubatoServer]:
    """The extended-mode (practiceplan server) imitation, empty at the start of the test."""
    _mirubato_ext_session.state.reset()
    yield _mirubato_ext_session
    _mirubato_ext_session.state.reset()


# --------------------------------------------------------------------------- every server (tests/sync/backends.py)

@pytest.fixture
def sync_server(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[SyncServer]:
    """One of :data:`backends.SERVERS` (``request.param``; default ``mirubato``), empty at the start of the test:
    the imitations are reset, our server gets a fresh SQLite file or PostgreSQL schema."""
    name = getattr(request, "param", "mirubato")
    if name in ("mirubato", "mirubato_ext"):
        server: MirubatoServer = request.getfixturevalue(name)
        yield MirubatoBackend(name, server.state, server.url)
        return
    if name == "ours-sqlite":
        with ours(name, str(tmp_path / "server.db")) as backend:
            yield backend
        return
    if name == "ours-postgresql":
        with fresh_schema(request.getfixturevalue("pg_dsn"), prefix="sync") as url, ours(name, url) as backend:
            yield backend
        return
    raise ValueError(f"unknown server {name!r}; expected one of {SERVERS}")

