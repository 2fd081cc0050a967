"""Live updates (docs/collaboration.md "Live updates"): events written in the transaction of the change they
describe, delivered by every server process to its own WebSocket connections.

``publish`` is the one way an event is made: one ``live_events`` row per recipient, in the caller's write
transaction (so an event exists exactly when its change committed); on PostgreSQL it also issues
``pg_notify`` (delivered at commit) so every process listening wakes at once.

``Hub`` is the delivery side, one per server process, and ``endpoint`` the ``/api/live`` WebSocket that
subscribes a connection to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from practiceplan.server import db, users
from practiceplan.server.protocol import iso_ms

CHANNEL = "practiceplan_live"


def publish(conn: Connection, user_ids: Iterable[int], event: dict[str, Any], now: datetime | None = None) -> None:
    """Queue ``event`` (a JSON object with a ``type``) for every device of each user in ``user_ids``; runs
    inside the caller's transaction. ``timestamp`` is added when missing."""
    recipients = sorted(set(user_ids))
    if not recipients:
        return
    stamp = iso_ms(now or datetime.now(UTC))
    body = json.dumps({**event, "timestamp": event.get("timestamp") or stamp}, ensure_ascii=False,
                      separators=(",", ":"))
    conn.execute(db.live_events.insert(), [{"user_id": u, "body": body, "created_at": stamp} for u in recipients])
    if not db.is_sqlite(conn.engine):
        conn.exec_driver_sql(f"NOTIFY {CHANNEL}")


# ---------------------------------------------------------------------------------------------- delivery

POLL_SQLITE = 0.2  # seconds between reads on SQLite (no NOTIFY there)
POLL_SAFETY = 1.0  # PostgreSQL: a read this often even without a notification (a lost NOTIFY, a reconnect)
KEEP = timedelta(minutes=10)  # events older than this are deleted; a client away longer catches up with a pull
CLEAN_EVERY = 60.0
QUEUE_SIZE = 1000  # events waiting for one connection; more and it is closed (CLOSE_TOO_SLOW)
PER_USER = 20  # live connections of one user in one process
RECHECK = 60.0  # seconds between checks that a connection's token is still valid
GAP_WAIT = 10.0  # seconds an id skipped by a read is looked for again (PostgreSQL commits out of id order)
READ_BATCH = 1000
CLOSE_UNAUTHORISED, CLOSE_TOO_SLOW, CLOSE_TOO_MANY = 4401, 4008, 4429

log = logging.getLogger("practiceplan.server")


class Subscriber:
    """One WebSocket connection's queue: bounded; on overflow it is marked and emptied (the connection is then
    closed with CLOSE_TOO_SLOW, and its client pulls to catch up)."""

    def __init__(self, user_id: int, limit: int, since: int = 0) -> None:
        self.user_id = user_id
        self.since = since  # the newest event when the connection came: only later ones are its own
        self.limit = limit
        self.pending: deque[str] = deque()
        self.overflow = False
        self.wake = asyncio.Event()

    def offer(self, body: str) -> None:
        if self.overflow:
            return
        if len(self.pending) >= self.limit:
            self.overflow = True
            self.pending.clear()
        else:
            self.pending.append(body)
        self.wake.set()

    async def take(self) -> list[str] | None:
        """The events waiting (at least one), or None once the queue overflowed."""
        while not self.pending and not self.overflow:
            self.wake.clear()
            await self.wake.wait()
        if self.overflow:
            return None
        batch = list(self.pending)
        self.pending.clear()
        return batch


class Hub:
    """The delivery side of one server process: the connections of this process by user, and one task that
    reads new ``live_events`` rows (woken by NOTIFY on PostgreSQL, polling on SQLite) and hands each body to its
    user's connections here. Started in the app's lifespan (or by the first connection when the app runs
    without one) and stopped with it."""

    def __init__(self, engine: Engine, *, queue_size: int = QUEUE_SIZE, per_user: int = PER_USER,
                 recheck: float = RECHECK, keep: timedelta = KEEP) -> None:
        self.engine = engine
        self.queue_size, self.per_user, self.recheck, self.keep = queue_size, per_user, recheck, keep
        self.sqlite = db.is_sqlite(engine)
        self.poll = POLL_SQLITE if self.sqlite else POLL_SAFETY
        self.subscribers: dict[int, set[Subscriber]] = {}
        self.last_id = 0
        self.gaps: dict[int, float] = {}  # id -> monotonic deadline: skipped ids that may still commit
        self.listening = False  # a LISTEN connection is up (PostgreSQL)
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._cleaned = 0.0
        self._lock: asyncio.Lock | None = None
        self._ready: asyncio.Event | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        return self._task is not None and not self._task.done() and self._loop is loop

    async def start(self, *, wait: bool = True) -> None:
        """Start delivering in the running event loop (again, if it was started in another one); ``wait``: until
        the starting point (the newest event now) is known. The lifespan does not wait (a database that is
        away at startup must not keep the server from starting)."""
        if not self.running:
            self._loop = asyncio.get_running_loop()
            self._wake, self._lock, self._ready = asyncio.Event(), asyncio.Lock(), asyncio.Event()
            self.subscribers.clear()
            if not self.sqlite:
                self._listener = asyncio.create_task(self._listen(), name="practiceplan-live-listen")
            self._task = asyncio.create_task(self._run(), name="practiceplan-live")
        assert self._ready is not None
        if wait:
            await self._ready.wait()

    async def stop(self) -> None:
        for task in (self._task, self._listener):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = self._listener = None

    # ------------------------------------------------------------------ connections

    async def subscribe(self, user_id: int) -> Subscriber | None:
        """A queue for a new connection of ``user_id``, or None when the user has ``per_user`` already. Events
        that existed before are not delivered to it (its client pulls after HELLO)."""
        if self.count(user_id) >= self.per_user:
            return None
        since = await run_in_threadpool(self._max_id)
        mine = self.subscribers.setdefault(user_id, set())
        if len(mine) >= self.per_user:
            return None
        sub = Subscriber(user_id, self.queue_size, since)
        mine.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        mine = self.subscribers.get(sub.user_id)
        if mine is not None:
            mine.discard(sub)
            if not mine:
                del self.subscribers[sub.user_id]

    def count(self, user_id: int) -> int:
        return len(self.subscribers.get(user_id, ()))

    # ------------------------------------------------------------------ the delivery loop

    async def _run(self) -> None:
        assert self._wake is not None and self._ready is not None
        while not self._ready.is_set():  # events older than the start are never delivered
            try:
                self.last_id, self.gaps = await run_in_threadpool(self._max_id), {}
                self._ready.set()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the database is away at start: keep trying
                log.exception("live updates: cannot read the event table; retrying")
                await asyncio.sleep(1.0)
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.deliver()
                if time.monotonic() - self._cleaned >= CLEAN_EVERY:
                    self._cleaned = time.monotonic()
                    await run_in_threadpool(self.clean)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the database is away: log, wait, go on (clients pull on reconnect)
                log.exception("live updates: reading events failed; retrying")
                await asyncio.sleep(1.0)

    async def deliver(self) -> int:
        """Hand every event committed since the last read to this process's connections; returns how many
        rows were read."""
        assert self._lock is not None
        async with self._lock:
            if not self.subscribers:  # nobody here to tell: only move past what exists
                self.last_id = max(self.last_id, await run_in_threadpool(self._max_id))
                self.gaps.clear()
                return 0
            rows = await run_in_threadpool(self._read, self.last_id, sorted(self.gaps))
            self._advance([r[0] for r in rows])
            for event_id, user_id, body in rows:
                for sub in list(self.subscribers.get(user_id, ())):
                    if event_id > sub.since:
                        sub.offer(body)
            return len(rows)

    def _advance(self, ids: list[int]) -> None:
        now = time.monotonic()
        for found in ids:
            self.gaps.pop(found, None)
        newer = sorted(i for i in ids if i > self.last_id)
        expected = self.last_id + 1
        for found in newer:
            for missing in range(expected, min(found, expected + READ_BATCH)):
                self.gaps[missing] = now + GAP_WAIT
            expected = found + 1
        if newer:
            self.last_id = newer[-1]
        for gap, deadline in list(self.gaps.items()):
            if deadline < now:
                del self.gaps[gap]
        while len(self.gaps) > READ_BATCH:
            del self.gaps[min(self.gaps)]

    # ------------------------------------------------------------------ database work (thread pool)

    def _max_id(self) -> int:
        with db.connection(self.engine) as conn:
            return int(conn.execute(sa.select(sa.func.max(db.live_events.c.id))).scalar() or 0)

    def _read(self, after: int, gaps: list[int]) -> list[tuple[int, int, str]]:
        t = db.live_events
        where = t.c.id > after if not gaps else sa.or_(t.c.id > after, t.c.id.in_(gaps))
        with db.connection(self.engine) as conn:
            rows = conn.execute(sa.select(t.c.id, t.c.user_id, t.c.body).where(where).order_by(t.c.id)
                                .limit(READ_BATCH * 10)).all()
        return [(int(r.id), int(r.user_id), r.body) for r in rows]

    def clean(self, now: datetime | None = None) -> int:
        """Delete events older than ``keep`` (any process may; two doing it at once is harmless)."""
        cutoff = iso_ms((now or datetime.now(UTC)) - self.keep)

        def work(conn: Connection) -> int:
            return conn.execute(db.live_events.delete().where(db.live_events.c.created_at < cutoff)).rowcount or 0

        return db.run(self.engine, work, write=True)

    # ------------------------------------------------------------------ PostgreSQL LISTEN

    def _dsn(self) -> str:
        return self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def _listen(self) -> None:
        """Keep a LISTEN connection up; each notification wakes the delivery loop. Reconnects with backoff."""
        import psycopg

        assert self._wake is not None
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._dsn(), autocommit=True,
                                                                 connect_timeout=10) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening, delay = True, 0.5
                    self._wake.set()  # something may have happened while no one listened
                    async for _notice in conn.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                self.listening = False
                raise
            except Exception as exc:  # noqa: BLE001 - the database went away: poll meanwhile, reconnect
                log.warning("live updates: LISTEN connection lost (%s); reconnecting in %.1fs",
                            type(exc).__name__, delay)
            self.listening = False
            await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))
            delay = min(delay * 2, 30.0)


# ---------------------------------------------------------------------------------------------- the endpoint


def endpoint(hub: Hub, bearer: Callable[[str | None], tuple[str | None, bool]]) -> Callable[[WebSocket], Any]:
    """The ``/api/live`` WebSocket: ``Authorization: Bearer`` on the upgrade request only (a ``token`` in the
    query is refused like a bad token, before the upgrade: HTTP 403); then ``HELLO`` and one JSON text frame per
    event. Closes with 4401 (token revoked), 4008 (too slow) or 4429 (too many connections of this user)."""
    engine = hub.engine

    async def live(ws: WebSocket) -> None:
        token, _present = bearer(ws.headers.get("authorization"))
        if "token" in ws.query_params or not token:
            await ws.close(code=CLOSE_UNAUTHORISED)
            return
        user = await run_in_threadpool(users.authenticate, engine, token)
        if user is None:
            await ws.close(code=CLOSE_UNAUTHORISED)
            return
        await hub.start()
        sub = await hub.subscribe(user.id)
        await ws.accept()
        if sub is None:
            await ws.close(code=CLOSE_TOO_MANY, reason="too many live connections")
            return
        try:
            await ws.send_text(json.dumps({"type": "HELLO", "user": user.name, "server": "practiceplan",
                                           "timestamp": iso_ms(datetime.now(UTC))}, ensure_ascii=False))
            await _serve(ws, sub, lambda: run_in_threadpool(users.authenticate, engine, token), hub.recheck)
        except (WebSocketDisconnect, OSError, RuntimeError):
            pass  # the client went away mid-send
        finally:
            hub.unsubscribe(sub)

    return live


async def _serve(ws: WebSocket, sub: Subscriber, still_valid: Callable[[], Awaitable[Any]], every: float) -> None:
    """Forward events until the client leaves, the queue overflows or the token is revoked."""

    async def send() -> None:
        while True:
            batch = await sub.take()
            if batch is None:
                await ws.close(code=CLOSE_TOO_SLOW, reason="too slow, pull to catch up")
                return
            for body in batch:
                await ws.send_text(body)

    async def receive() -> None:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return

    async def recheck() -> None:
        while True:
            await asyncio.sleep(every)
            if await still_valid() is None:
                await ws.close(code=CLOSE_UNAUTHORISED, reason="token revoked")
                return

    tasks = [asyncio.create_task(job()) for job in (send, receive, recheck)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
