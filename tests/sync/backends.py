"""One interface over every server the sync scenario tests (test_homes.py, test_faults.py) run against.

* ``mirubato``: the in-memory Mirubato-mode imitation (tests/sync/mirubato.py): full snapshots, no tombstones,
  unconditional pushes, and Mirubato's quirks (a push that failed after its writes is processed again, an
  identical re-push bumps versions, a failed query answers an empty snapshot).
* ``mirubato_ext``: the same imitation in extended mode (incremental pulls, tombstones, conditional pushes).
* ``ours-sqlite`` / ``ours-postgresql``: our real server (``practiceplan serve``: src/practiceplan/server) on a fresh
  SQLite file / a fresh PostgreSQL schema per test, served over real HTTP by tests/sync/server.py ``serve()`` (which
  gives the ``mirubato.abort`` hook ``drop-after`` needs), with the imitation's fault middleware in front of it.

:class:`SyncServer` is what the tests use:

* ``name`` (the ids above), ``url``, ``token(user)`` (our server: the account is created on first use),
* ``inject(kind, count, path=..., seconds=...)``, ``clear_faults()``, ``supports(kind)`` / ``require(kind)``
  (``require`` skips the test, with the reason, for a fault the server cannot be given), ``requests`` (every request
  as ``(method, path, idempotency key)``, faulted or not) and ``lock`` (hold it to read ``requests``),
* ``answers``: what the application itself answered, in order, as :class:`Answer` (method, path, key, status,
  replay) -- recorded between the fault middleware and the app, so a request answered by an injected fault
  *before* the app ran (``500-before``, ``429``) is absent and one the middleware spoiled *after* the app ran
  (``500-after``, ``drop-after``, ``truncate``, ``delay-after``) shows the app's real answer. Our server only
  (the imitation's ``answers`` is empty).
* ``live(user) -> {kind: {id: data}}``, ``live_rows(user, kind=None) -> [Row]`` (``entity_type``, ``entity_id``,
  ``data``, ``version``, ``deleted_at``), ``row(user, kind, id)`` (deleted rows too, None when absent),
  ``version_of(user, kind, id)`` (0 when absent), ``all_versions(user) -> {id: version}`` (deleted rows too),
* ``bump_version(user, kind, id)`` (the imitations only): the stored version goes up by one without a change (what
  Mirubato's identical re-push does),
* capability flags: ``full_snapshots`` (Mirubato mode: every pull is the whole state, an empty one is suspicious),
  ``conditional``, ``replays_after_500`` (a push the server committed but answered 500 is answered as a replay
  when retried with the same key: our server stores the idempotency row in the effect's transaction), ``ours``.

Every server starts empty for each test: the imitations are reset, ours gets a new database.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from tests.sync.mirubato import ServerState, _FaultMiddleware

SERVERS = ("mirubato", "mirubato_ext", "ours-sqlite", "ours-postgresql")
OURS = ("ours-sqlite", "ours-postgresql")
KINDS = ("practice_plan", "plan_occurrence", "logbook_entry", "plan_template")


def every_server(*names: str) -> Any:
    """``@every_server()``: parametrise the test's ``sync_server`` fixture (tests/sync/conftest.py) over every server,
    or over ``names``; the ids are the names."""
    return pytest.mark.parametrize("sync_server", names or SERVERS, indirect=True)


@dataclass
class Row:
    entity_type: str
    entity_id: str
    data: Any
    version: int
    deleted_at: str | None = None


@dataclass(frozen=True)
class Answer:
    method: str
    path: str
    key: str | None
    status: int
    replay: bool


class SyncServer:
    """The common interface (see the module docstring); subclasses fill in the storage side."""

    name: str
    url: str
    full_snapshots: bool = False
    conditional: bool = True
    replays_after_500: bool = False
    ours: bool = False
    unsupported_faults: dict[str, str] = {}

    def __init__(self, faults: ServerState) -> None:
        self.faults = faults  # holds the fault queue and the request log
        self.answers: list[Answer] = []

    # ---------------------------------------------------------------- faults and the request log

    @property
    def lock(self) -> Any:
        return self.faults.lock

    @property
    def requests(self) -> list[tuple[str, str, str | None]]:
        return self.faults.requests

    def supports(self, kind: str) -> bool:
        return kind not in self.unsupported_faults

    def require(self, kind: str) -> None:
        """Skip the calling test, saying why, when this server cannot be given the fault ``kind``."""
        if not self.supports(kind):
            pytest.skip(f"fault {kind!r} does not apply to {self.name}: {self.unsupported_faults[kind]}")

    def inject(self, kind: str, count: int = 1, **kwargs: Any) -> Any:
        if not self.supports(kind):
            raise ValueError(f"fault {kind!r} does not apply to {self.name}: {self.unsupported_faults[kind]}")
        return self.faults.inject(kind, count, **kwargs)

    def clear_faults(self) -> None:
        self.faults.clear_faults()

    def count_requests(self, path: str | None = None) -> int:
        return self.faults.count_requests(path)

    # ---------------------------------------------------------------- what the server holds

    def token(self, user: str = "user_a") -> str:
        raise NotImplementedError

    def rows(self, user: str) -> list[Row]:
        """Every row of ``user``, deleted ones included."""
        raise NotImplementedError

    def bump_version(self, user: str, kind: str, entity_id: str) -> None:
        raise NotImplementedError

    def live_rows(self, user: str, kind: str | None = None) -> list[Row]:
        return [r for r in self.rows(user) if r.deleted_at is None and (kind is None or r.entity_type == kind)]

    def live(self, user: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        for r in self.live_rows(user):
            found.setdefault(r.entity_type, {})[r.entity_id] = r.data
        return found

    def row(self, user: str, kind: str, entity_id: str) -> Row | None:
        return next((r for r in self.rows(user) if r.entity_type == kind and r.entity_id == entity_id), None)

    def version_of(self, user: str, kind: str, entity_id: str) -> int:
        r = self.row(user, kind, entity_id)
        return r.version if r else 0

    def all_versions(self, user: str) -> dict[str, int]:
        return {r.entity_id: r.version for r in self.rows(user)}


class MirubatoBackend(SyncServer):
    """The in-memory imitation; ``state`` stays reachable for the tests of Mirubato-only behaviour."""

    def __init__(self, name: str, state: ServerState, url: str) -> None:
        super().__init__(state)
        self.name, self.state, self.url = name, state, url
        self.full_snapshots = not state.extended
        self.conditional = state.extended

    def token(self, user: str = "user_a") -> str:
        return self.state.token_for(user)

    def rows(self, user: str) -> list[Row]:
        with self.state.lock:
            return [Row(r.entity_type, r.entity_id, r.data, r.version, r.deleted_at)
                    for r in self.state.rows.values() if r.user_id == user]

    def live_rows(self, user: str, kind: str | None = None) -> list[Row]:
        return [Row(r.entity_type, r.entity_id, r.data, r.version, r.deleted_at)
                for r in self.state.live_rows(user, kind)]

    def bump_version(self, user: str, kind: str, entity_id: str) -> None:
        with self.state.lock:
            row = self.state.rows[(user, kind, entity_id)]
            row.version += 1
            row.change_seq = self.state._bump_user_seq(user)


class _Recorder:
    """ASGI middleware between the fault middleware and our app: records what the app answered (status and
    ``X-Idempotent-Replay``) for every request that reached it."""

    def __init__(self, app: Any, backend: OursBackend) -> None:
        self.app, self.backend = app, backend

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}

        async def wrapped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                out = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message.get("headers", [])}
                with self.backend.lock:
                    self.backend.answers.append(Answer(scope["method"], scope["path"],
                                                       headers.get("x-idempotency-key"), message["status"],
                                                       out.get("x-idempotent-replay") == "true"))
            await send(message)

        await self.app(scope, receive, wrapped)


class OursBackend(SyncServer):
    """``practiceplan serve`` on ``database_url`` (a file path or a PostgreSQL DSN), faults in front."""

    ours = True
    replays_after_500 = True
    unsupported_faults = {
        "empty-pull": "it needs the app to answer an empty snapshot; our server's pulls are incremental, where an "
                      "empty page is the normal answer when nothing changed (nothing for a client to suspect)",
    }

    def __init__(self, name: str, database_url: str) -> None:
        from practiceplan.server import db
        from practiceplan.server.service import Limits, SyncService

        super().__init__(ServerState())
        self.name = name
        self.engine = db.make_engine(database_url)
        db.migrate(self.engine)
        # no rate limit: the fault loops send hundreds of requests a minute (429 is injected instead)
        self.service = SyncService(self.engine, Limits(rate_per_minute=0))
        self.tokens: dict[str, str] = {}
        self._token_lock = threading.Lock()

    def app(self) -> Any:
        from practiceplan.server.app import make_app

        return _FaultMiddleware(_Recorder(make_app(self.service), self), self.faults)

    def token(self, user: str = "user_a", role: str = "learner") -> str:
        from practiceplan.server import users

        with self._token_lock:
            if user not in self.tokens:
                self.tokens[user] = users.add(self.engine, user, role)[1]
            return self.tokens[user]

    def rows(self, user: str) -> list[Row]:
        from practiceplan.server import db, protocol

        t, u = db.sync_rows, db.users
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(t.c.entity_type, t.c.entity_id, t.c.data, t.c.version, t.c.deleted_at)
                                 .join(u, u.c.id == t.c.user_id).where(u.c.name == user)
                                 .order_by(t.c.change_seq)).all()
        # the data as a pull answers it (entry enums lowercased; no adoption count: that is not the entity's)
        return [Row(r.entity_type, r.entity_id, protocol.pull_output(r.entity_type, json.loads(r.data), None, None),
                    r.version, r.deleted_at) for r in found]

    def close(self) -> None:
        self.engine.dispose()


@contextlib.contextmanager
def ours(name: str, database_url: str) -> Iterator[OursBackend]:
    from tests.sync.server import serve

    backend = OursBackend(name, database_url)
    try:
        with serve(backend.app()) as url:
            backend.url = url
            try:
                yield backend
            finally:
                backend.faults.reset()  # no faults left, and pending delay-after sleeps end before the shutdown
    finally:
        backend.close()

