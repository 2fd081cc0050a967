"""Storage of the sync server: SQLAlchemy Core tables, engines for SQLite and PostgreSQL, Alembic migrations run
programmatically, and the one transaction helper every request goes through.

Concurrency (one code path for both databases):

* Every write transaction first locks the caller's ``users`` row (``SELECT ... FOR UPDATE`` on PostgreSQL; on
  SQLite every write transaction is ``BEGIN IMMEDIATE``, which takes the database write lock). The per-user
  change counter lives on that row, so a user's writes are serialised: change sequence numbers are handed out in
  commit order (a cursor never skips a row that commits later), the idempotency row is checked and stored under
  the same lock as the effect (a concurrent duplicate waits, then replays), and adoption rows are counted, not
  read-modified-written. Different users' writes run in parallel on PostgreSQL.
* Reads run at READ COMMITTED (PostgreSQL) or in a deferred WAL transaction (SQLite): one snapshot per query.
* Deadlocks and serialisation failures (PostgreSQL 40P01/40001) and SQLite "database is locked" past the busy
  timeout are retried a few times with backoff before the request fails with a 503.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

T = TypeVar("T")
BUSY_TIMEOUT_MS = 10_000

metadata = sa.MetaData()

users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("revoked_at", sa.String(32), nullable=True),
    sa.Column("change_seq", sa.BigInteger, nullable=False, server_default="0"),  # per-user write counter
    sa.Column("purged_seq", sa.BigInteger, nullable=False, server_default="0"),  # tombstones purged up to here
    sa.Column("sync_token", sa.String(64), nullable=True),
    sa.Column("last_sync_time", sa.String(32), nullable=True),
    sa.CheckConstraint("role IN ('learner', 'tutor', 'admin')", name="ck_users_role"),
)

sync_rows = sa.Table(
    "sync_rows", metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("entity_type", sa.String(32), primary_key=True),
    sa.Column("entity_id", sa.String(255), primary_key=True),
    sa.Column("data", sa.Text, nullable=False),  # the stored JSON snapshot, unknown keys included
    sa.Column("checksum", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("change_seq", sa.BigInteger, nullable=False),
    sa.Column("deleted_at", sa.String(64), nullable=True),  # the client's deletedAt; NULL = live
    sa.Column("device_id", sa.String(128), nullable=True),
    sa.Column("created_at", sa.String(32), nullable=False),  # server times, ISO-Z
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Index("ix_sync_rows_user_seq", "user_id", "change_seq"),
    sa.Index("ix_sync_rows_type_id", "entity_type", "entity_id"),
    sa.Index("ix_sync_rows_user_live", "user_id", "deleted_at"),  # migration 0002: live counts from the index
    # migration 0003: the plan a row belongs to (a plan: itself; a session or comment: its planId), so the rows
    # of one shared plan in one namespace are read through an index
    sa.Column("plan_id", sa.String(255), nullable=True),
    # partial: most rows (logbook entries) belong to no plan and cost no index upkeep on write
    sa.Index("ix_sync_rows_user_plan_seq", "user_id", "plan_id", "change_seq",
             sqlite_where=sa.text("plan_id IS NOT NULL"), postgresql_where=sa.text("plan_id IS NOT NULL")),
)

LEVELS = ("view", "comment", "edit")  # docs/collaboration.md: view < comment < edit; the owner is above all

plan_members = sa.Table(  # migration 0003: who, besides its owner, takes part in a plan
    "plan_members", metadata,
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("plan_id", sa.String(255), primary_key=True),
    sa.Column("member_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("level", sa.String(8), nullable=False),
    sa.Column("added_at", sa.String(32), nullable=False),
    sa.Column("removed_at", sa.String(32), nullable=True),  # kept: a removed member's late push is refused
    sa.CheckConstraint("level IN ('view', 'comment', 'edit')", name="ck_plan_members_level"),
    sa.Index("ix_plan_members_member", "member_id"),
)

invites = sa.Table(  # migration 0003: single-use invite links (only the token's SHA-256 is stored)
    "invites", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("plan_id", sa.String(255), nullable=False),
    sa.Column("level", sa.String(8), nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("expires_at", sa.String(32), nullable=False),
    sa.Column("used_at", sa.String(32), nullable=True),
    sa.Column("used_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.CheckConstraint("level IN ('view', 'comment', 'edit')", name="ck_invites_level"),
)

live_events = sa.Table(  # migration 0003: events for live clients, one row per recipient (server/live.py)
    "live_events", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.Integer, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Index("ix_live_events_created", "created_at"),
    # ids are never reused (SQLite AUTOINCREMENT; a PostgreSQL sequence never goes back): once every old row is
    # cleaned away, a reused id would be at or below what each hub already delivered, and never sent
    sqlite_autoincrement=True,
)

idempotency = sa.Table(
    "idempotency", metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("response", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("expires_at", sa.String(32), nullable=False),
)

adoptions = sa.Table(
    "adoptions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("template_owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("template_id", sa.String(255), nullable=False),
    sa.Column("adopter_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("plan_id", sa.String(255), nullable=False),
    sa.Column("adopted_at", sa.String(32), nullable=False),
    sa.Index("ix_adoptions_template", "template_owner_id", "template_id"),
)


def database_url(value: str | Path) -> str:
    """``postgresql://...`` (psycopg 3 is used), ``sqlite:///...``, or a plain file path (SQLite)."""
    text = str(value)
    if text.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    if text.startswith(("postgresql+psycopg://", "sqlite:///")):
        return text
    if "://" in text:
        raise ValueError(f"unsupported database URL scheme in {text.split('://', 1)[0]!r}")
    return "sqlite:///" + str(Path(text).expanduser().resolve())


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    url = database_url(url)
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
                                  pool_size=pool_size, max_overflow=pool_size)

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = FULL")
            cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("pp_write") else "BEGIN")

        return engine
    return sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                            pool_recycle=1800, isolation_level="READ COMMITTED")


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (the migration scripts ship inside the package)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    with engine.connect().execution_options(pp_write=True) as conn:
        with conn.begin():
            if not is_sqlite(engine):  # several processes may start at once against one database
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7242013)")
            config.attributes["connection"] = conn
            command.upgrade(config, "head")


class Busy(Exception):
    """The database stayed locked (or kept failing serialisation) through every retry: answer 503."""


def _retryable(exc: DBAPIError) -> bool:
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if code in ("40001", "40P01"):
        return True
    return isinstance(exc, OperationalError) and "locked" in str(exc.orig).lower()


def run(engine: Engine, work: Callable[[Connection], T], *, write: bool, attempts: int = 5) -> T:
    """Run ``work(conn)`` in one transaction (a write one takes the write lock at BEGIN on SQLite), retrying it
    whole on deadlock, serialisation failure or a locked database. ``work`` must be side-effect free outside
    the database (it may run more than once)."""
    for attempt in range(attempts):
        try:
            with engine.connect().execution_options(pp_write=write) as conn:
                with conn.begin():
                    return work(conn)
        except DBAPIError as exc:
            if not _retryable(exc) or attempt == attempts - 1:
                if _retryable(exc):
                    raise Busy(str(exc)) from exc
                raise
            time.sleep(0.02 * (2 ** attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


@contextmanager
def connection(engine: Engine, *, write: bool = False) -> Iterator[Connection]:
    with engine.connect().execution_options(pp_write=write) as conn:
        with conn.begin():
            yield conn
