"""Sync bookkeeping in SQLite (tables of migration m007, the outbox of m001, ``meta`` keys ``sync.*``).

Every function here runs inside the caller's transaction (``Store.write()``) when it writes; the sync engine
groups a whole merge, or a whole acknowledgement, into one transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from practiceplan.errors import BusyError

from practiceplan.store.repo import TABLES, dumps

META_PREFIX = "sync."


# --------------------------------------------------------------------------- one sync at a time

@contextmanager
def sync_lock(db_path: Path | str) -> Iterator[None]:
    """Exclusive ``flock`` on ``<database>.sync-lock`` for the whole sync (cron and a manual run at once would
    both send the same queue). Released by the kernel when the process dies, so a kill -9 leaves no stale lock."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; batches and keys still keep a double run harmless
        yield
        return
    path = Path(f"{db_path}.sync-lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BusyError("another sync of this database is running", hint="try again when it has finished") from None
        yield
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- meta

def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (META_PREFIX + key,)).fetchone()
    return row[0] if row else None


def set_meta(conn: sqlite3.Connection, key: str, value: str | None) -> None:
    if value is None:
        conn.execute("DELETE FROM meta WHERE key = ?", (META_PREFIX + key,))
    else:
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                     (META_PREFIX + key, value))


def get_json(conn: sqlite3.Connection, key: str) -> Any:
    text = get_meta(conn, key)
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def set_json(conn: sqlite3.Connection, key: str, value: Any) -> None:
    set_meta(conn, key, None if value is None else json.dumps(value, separators=(",", ":")))


# --------------------------------------------------------------------------- state

def states(conn: sqlite3.Connection, kind: str, ids: Iterable[str] | None = None) -> dict[str, tuple[str, int | None]]:
    """(hash, server version) per entity id of ``kind`` last agreed with the server (all of them if ``ids`` is None)."""
    if ids is None:
        return {r[0]: (r[1], r[2]) for r in conn.execute(
            "SELECT entity_id, hash, version FROM sync_state WHERE entity_type = ?", (kind,))}
    found: dict[str, tuple[str, int | None]] = {}
    ids = list(ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        found.update((r[0], (r[1], r[2])) for r in conn.execute(
            f"SELECT entity_id, hash, version FROM sync_state WHERE entity_type = ? AND entity_id IN "
            f"({', '.join('?' * len(chunk))})", [kind, *chunk]))
    return found


def set_states(conn: sqlite3.Connection, kind: str, rows: Iterable[tuple[str, str, int | None]]) -> None:
    conn.executemany(
        "INSERT INTO sync_state (entity_type, entity_id, hash, version) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (entity_type, entity_id) DO UPDATE SET hash = excluded.hash, "
        "version = COALESCE(excluded.version, version)",
        [(kind, i, h, v) for i, h, v in rows])


def forget_states(conn: sqlite3.Connection, kind: str, ids: Iterable[str]) -> None:
    conn.executemany("DELETE FROM sync_state WHERE entity_type = ? AND entity_id = ?", [(kind, i) for i in ids])


def has_state(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sync_state LIMIT 1").fetchone() is not None


def reset(conn: sqlite3.Connection) -> int:
    """Forget everything agreed with a server (a new remote): queue every local entity for a first push.
    Returns how many entities were queued."""
    conn.execute("DELETE FROM sync_state")
    conn.execute("DELETE FROM sync_batches")
    for key in ("cursor", "expect_data"):
        set_meta(conn, key, None)
    queued = 0
    for kind, table in TABLES.items():
        if kind == "goal":
            continue
        cur = conn.execute(
            "INSERT INTO outbox (entity_type, entity_id, op, rev, seq, changed_at) "
            f"SELECT ?, id, CASE WHEN deleted_at IS NULL THEN 'upsert' ELSE 'delete' END, 1, "
            f"(SELECT COALESCE(MAX(seq), 0) FROM outbox) + row_number() OVER (ORDER BY id), "
            f"COALESCE(updated_at, '') FROM {table} WHERE deleted_at IS NULL "
            "ON CONFLICT (entity_type, entity_id) DO NOTHING", (kind,))
        queued += cur.rowcount
    return queued


# --------------------------------------------------------------------------- outbox

def outbox(conn: sqlite3.Connection, kind: str | None = None) -> dict[tuple[str, str], tuple[str, int]]:
    """(op, rev) per (kind, id) waiting to be pushed."""
    sql = "SELECT entity_type, entity_id, op, rev FROM outbox"
    args: tuple[Any, ...] = ()
    if kind:
        sql, args = sql + " WHERE entity_type = ?", (kind,)
    return {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(sql, args)}


def outbox_in_order(conn: sqlite3.Connection) -> list[tuple[str, str, str, int]]:
    return [tuple(r) for r in conn.execute(  # type: ignore[misc]
        "SELECT entity_type, entity_id, op, rev FROM outbox WHERE entity_type != 'goal' ORDER BY seq")]


def outbox_count(conn: sqlite3.Connection) -> dict[str, int]:
    return {r[0]: r[1] for r in conn.execute(
        "SELECT entity_type, count(*) FROM outbox WHERE entity_type != 'goal' GROUP BY entity_type")}


def drop_outbox(conn: sqlite3.Connection, rows: Iterable[tuple[str, str, int | None]]) -> None:
    """Remove outbox rows — only at the given rev (None: any rev), so a change made meanwhile stays queued."""
    conn.executemany(
        "DELETE FROM outbox WHERE entity_type = ? AND entity_id = ? AND (? IS NULL OR rev = ?)",
        [(k, i, r, r) for k, i, r in rows])


def requeue(conn: sqlite3.Connection, kind: str, entity_id: str, deleted: bool, at: str) -> None:
    conn.execute(
        "INSERT INTO outbox (entity_type, entity_id, op, rev, seq, changed_at) "
        "VALUES (?, ?, ?, 1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox), ?) "
        "ON CONFLICT (entity_type, entity_id) DO UPDATE SET op = excluded.op, rev = rev + 1, seq = excluded.seq, "
        "changed_at = excluded.changed_at", (kind, entity_id, "delete" if deleted else "upsert", at))


# --------------------------------------------------------------------------- local documents

def docs(conn: sqlite3.Connection, kind: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The local documents (deleted ones included) with these ids."""
    table = TABLES[kind]
    ids = list(ids)
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        found.update((r[0], json.loads(r[1])) for r in conn.execute(
            f"SELECT id, doc FROM {table} WHERE id IN ({', '.join('?' * len(chunk))})", chunk))
    return found


def sessions_of(conn: sqlite3.Connection, plan_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Every local session (deleted ones included) of these plans."""
    ids = list(plan_ids)
    found: list[dict[str, Any]] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        found.extend(json.loads(r[0]) for r in conn.execute(
            f"SELECT doc FROM plan_occurrences WHERE plan_id IN ({', '.join('?' * len(chunk))}) ORDER BY id", chunk))
    return found


def clear_horizons(conn: sqlite3.Connection, plan_ids: Iterable[str]) -> None:
    """Plans changed by the server are re-materialised up to the horizon by the next command that reads them."""
    conn.executemany("UPDATE practice_plans SET horizon = NULL WHERE id = ?", [(i,) for i in plan_ids])


# --------------------------------------------------------------------------- batches

def pending_batch(conn: sqlite3.Connection) -> dict[str, Any] | None:
    row = conn.execute("SELECT id, idempotency_key, body, items, attempts FROM sync_batches ORDER BY id LIMIT 1").fetchone()
    if not row:
        return None
    return {"id": row[0], "key": row[1], "body": bytes(row[2]), "items": json.loads(row[3]), "attempts": row[4]}


def add_batch(conn: sqlite3.Connection, key: str, body: bytes, items: list[list[Any]], at: str) -> int:
    cur = conn.execute("INSERT INTO sync_batches (idempotency_key, body, items, created_at, attempts) "
                       "VALUES (?, ?, ?, ?, 1)",
                       (key, body, json.dumps(items, separators=(",", ":")), at))
    return int(cur.lastrowid or 0)


def count_attempt(conn: sqlite3.Connection, batch_id: int) -> None:
    conn.execute("UPDATE sync_batches SET attempts = attempts + 1 WHERE id = ?", (batch_id,))


def drop_batch(conn: sqlite3.Connection, batch_id: int) -> None:
    conn.execute("DELETE FROM sync_batches WHERE id = ?", (batch_id,))


# --------------------------------------------------------------------------- conflicts

def add_conflict(conn: sqlite3.Connection, kind: str, entity_id: str, reason: str, kept: str,
                 local: dict[str, Any] | None, remote: dict[str, Any] | None, at: str) -> None:
    conn.execute(
        "INSERT INTO conflicts (entity_type, entity_id, reason, kept, local_doc, remote_doc, at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (kind, entity_id, reason, kept, dumps(local) if local is not None else None,
         dumps(remote) if remote is not None else None, at))


def _conflict(row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    return {"id": row[0], "kind": row[1], "entity_id": row[2], "reason": row[3], "kept": row[4],
            "local": json.loads(row[5]) if row[5] else None, "remote": json.loads(row[6]) if row[6] else None,
            "at": row[7], "resolved_at": row[8], "resolution": row[9]}


CONFLICT_COLUMNS = "id, entity_type, entity_id, reason, kept, local_doc, remote_doc, at, resolved_at, resolution"


def conflicts(conn: sqlite3.Connection, *, include_resolved: bool = False) -> list[dict[str, Any]]:
    sql = f"SELECT {CONFLICT_COLUMNS} FROM conflicts"
    if not include_resolved:
        sql += " WHERE resolved_at IS NULL"
    return [_conflict(r) for r in conn.execute(sql + " ORDER BY id")]


def conflict(conn: sqlite3.Connection, conflict_id: int) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {CONFLICT_COLUMNS} FROM conflicts WHERE id = ?", (conflict_id,)).fetchone()
    return _conflict(row) if row else None


def open_conflict_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM conflicts WHERE resolved_at IS NULL").fetchone()[0])


def resolve_conflict(conn: sqlite3.Connection, conflict_id: int, resolution: str, at: str) -> None:
    conn.execute("UPDATE conflicts SET resolved_at = ?, resolution = ? WHERE id = ?", (at, resolution, conflict_id))
