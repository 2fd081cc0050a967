"""Whole-database access for export, import, doctor and backups: generic table dumps, checks, repairs.

Everything here works on whatever tables the database has, so a table added by a later migration
(``plan_templates``, ``conflicts``) is dumped as soon as it exists, and one that does not exist yet reads
as empty. Table names come from the caller's fixed lists or from ``sqlite_master``, and are always quoted.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def user_tables(conn: sqlite3.Connection, schema: str = "main") -> list[str]:
    """Every table of ``schema`` except SQLite's own (``sqlite_sequence``, ``sqlite_stat1``...), sorted."""
    return [
        r[0]
        for r in conn.execute(
            f"SELECT name FROM {quote(schema)}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]


def table_exists(conn: sqlite3.Connection, table: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    return row is not None


def columns(conn: sqlite3.Connection, table: str, schema: str = "main") -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA {quote(schema)}.table_info({quote(table)})")]


def primary_key(conn: sqlite3.Connection, table: str) -> list[str]:
    info = sorted((r[5], r[1]) for r in conn.execute(f"PRAGMA table_info({quote(table)})") if r[5])
    return [name for _, name in info]


def user_version(conn: sqlite3.Connection, schema: str = "main") -> int:
    return int(conn.execute(f"PRAGMA {quote(schema)}.user_version").fetchone()[0])


# --------------------------------------------------------------------------- checks


def integrity_errors(conn: sqlite3.Connection, schema: str = "main", *, limit: int = 20) -> list[str]:
    """``PRAGMA integrity_check``: an empty list when the file is sound."""
    rows = [r[0] for r in conn.execute(f"PRAGMA {quote(schema)}.integrity_check({int(limit)})")]
    return [] if rows == ["ok"] else rows


def foreign_key_errors(conn: sqlite3.Connection, schema: str = "main") -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(f"PRAGMA {quote(schema)}.foreign_key_check")]


def row_counts(conn: sqlite3.Connection, schema: str = "main") -> dict[str, int]:
    return {
        table: int(conn.execute(f"SELECT count(*) FROM {quote(schema)}.{quote(table)}").fetchone()[0])
        for table in user_tables(conn, schema)
    }


def canonical_dump(conn: sqlite3.Connection, schema: str = "main", *, skip: Iterable[str] = ()) -> dict[str, Any]:
    """A logical dump (schema SQL, user_version, every row sorted) that compares equal across copies."""
    skipped = set(skip)
    objects = sorted(
        (r[0], r[1], r[2])
        for r in conn.execute(
            f"SELECT type, name, sql FROM {quote(schema)}.sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        )
    )
    tables: dict[str, list[list[Any]]] = {}
    for table in user_tables(conn, schema):
        if table in skipped:
            continue
        rows = conn.execute(f"SELECT * FROM {quote(schema)}.{quote(table)}").fetchall()
        tables[table] = sorted(
            ([v.hex() if isinstance(v, bytes) else v for v in row] for row in rows), key=lambda r: json.dumps(r)
        )
    return {"userVersion": user_version(conn, schema), "objects": objects, "tables": tables}


def dump_digest(conn: sqlite3.Connection, schema: str = "main", *, skip: Iterable[str] = ()) -> str:
    text = json.dumps(canonical_dump(conn, schema, skip=skip), ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@contextmanager
def read_snapshot(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One deferred read transaction: every query inside sees the same committed state (WAL snapshot)."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


# --------------------------------------------------------------------------- generic dumps


def dump_docs(conn: sqlite3.Connection, table: str) -> list[dict[str, Any]]:
    """Every wire document of an entity table, tombstones included, ordered by id."""
    return [json.loads(r[0]) for r in conn.execute(f"SELECT doc FROM {quote(table)} ORDER BY id")]


def dump_events(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [
        {"id": r[0], "at": r[1], "name": r[2], "data": json.loads(r[3])}
        for r in conn.execute("SELECT id, at, name, data FROM events ORDER BY id")
    ]


def dump_rows(conn: sqlite3.Connection, table: str) -> list[dict[str, Any]]:
    """Rows of a table without a ``doc`` column, as {column: value}, ordered by primary key (or rowid)."""
    order = ", ".join(quote(c) for c in primary_key(conn, table)) or "rowid"
    cursor = conn.execute(f"SELECT * FROM {quote(table)} ORDER BY {order}")
    names = [d[0] for d in cursor.description]
    return [
        {n: (v.hex() if isinstance(v, bytes) else v) for n, v in zip(names, row, strict=True)} for row in cursor
    ]


def docs_by_id(conn: sqlite3.Connection, table: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The stored documents (deleted ones included) of those ids that exist."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for row in conn.execute(
            f"SELECT id, doc FROM {quote(table)} WHERE id IN ({', '.join('?' * len(chunk))})", chunk
        ):
            found[row[0]] = json.loads(row[1])
    return found


def insert_events(conn: sqlite3.Connection, events: list[dict[str, Any]]) -> tuple[int, int]:
    """Merge event-log rows. Returns (inserted, skipped). Must run inside a write transaction.

    An event whose id is free keeps its id; one whose id already holds the same event is skipped; one whose
    id holds a different event is appended with a new id, unless the same event is already logged.
    """
    assert conn.in_transaction, "writes must run inside a write transaction"
    inserted = skipped = 0
    for event in events:
        data = json.dumps(event.get("data") or {}, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        content = (event["at"], event["name"], data)
        event_id = event.get("id")
        if event_id is not None:
            row = conn.execute("SELECT at, name, data FROM events WHERE id = ?", (event_id,)).fetchone()
            if row is None:
                conn.execute("INSERT INTO events (id, at, name, data) VALUES (?, ?, ?, ?)", (event_id, *content))
                inserted += 1
                continue
            if (row[0], row[1], json.loads(row[2])) == (content[0], content[1], json.loads(data)):
                skipped += 1
                continue
        same = conn.execute(
            "SELECT 1 FROM events WHERE at = ? AND name = ? AND json(data) = json(?)", content
        ).fetchone()
        if same:
            skipped += 1
            continue
        conn.execute("INSERT INTO events (at, name, data) VALUES (?, ?, ?)", content)
        inserted += 1
    return inserted, skipped


def insert_rows(conn: sqlite3.Connection, table: str, rows: list[dict[str, Any]]) -> tuple[int, int]:
    """Insert generic rows whose primary key is not taken yet (``INSERT OR IGNORE``). Returns (inserted, skipped)."""
    assert conn.in_transaction, "writes must run inside a write transaction"
    known = set(columns(conn, table))
    inserted = 0
    for row in rows:
        names = [n for n in row if n in known]
        if not names:
            continue
        cursor = conn.execute(
            f"INSERT OR IGNORE INTO {quote(table)} ({', '.join(quote(n) for n in names)}) "
            f"VALUES ({', '.join('?' * len(names))})",
            [row[n] if not isinstance(row[n], (dict, list)) else json.dumps(row[n]) for n in names],
        )
        inserted += cursor.rowcount
    return inserted, len(rows) - inserted


# --------------------------------------------------------------------------- doctor queries


def orphaned_links(conn: sqlite3.Connection, *, limit: int = 20) -> dict[str, list[tuple[str, str]]]:
    """Links that point nowhere: (holder id, missing id) pairs, at most ``limit`` per kind."""
    queries = {
        # a live occurrence whose logEntryId names an entry we do not have at all
        "occurrenceEntry": (
            "SELECT o.id, o.log_entry_id FROM plan_occurrences o WHERE o.deleted_at IS NULL "
            "AND o.log_entry_id IS NOT NULL AND o.log_entry_id != '' "
            "AND NOT EXISTS (SELECT 1 FROM logbook_entries e WHERE e.id = o.log_entry_id) ORDER BY o.id"
        ),
        # a live occurrence whose plan is missing
        "occurrencePlan": (
            "SELECT o.id, o.plan_id FROM plan_occurrences o WHERE o.deleted_at IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM practice_plans p WHERE p.id = o.plan_id) ORDER BY o.id"
        ),
        # a live entry whose metadata.planOccurrenceId names an occurrence we do not have
        "entryOccurrence": (
            "SELECT e.id, e.plan_occurrence_id FROM logbook_entries e WHERE e.deleted_at IS NULL "
            "AND e.plan_occurrence_id IS NOT NULL AND e.plan_occurrence_id != '' "
            "AND NOT EXISTS (SELECT 1 FROM plan_occurrences o WHERE o.id = e.plan_occurrence_id) ORDER BY e.id"
        ),
    }
    found: dict[str, list[tuple[str, str]]] = {}
    for name, sql in queries.items():
        found[name] = [(r[0], r[1]) for r in conn.execute(sql + f" LIMIT {int(limit)}")]
    return found


def count_orphans(conn: sqlite3.Connection) -> dict[str, int]:
    return {name: len(pairs) for name, pairs in orphaned_links(conn, limit=10**9).items()}


def plans_behind(conn: sqlite3.Connection, behind_before: str) -> list[str]:
    """Active live plans whose occurrences are not materialised up to the horizon."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT id FROM practice_plans WHERE deleted_at IS NULL AND status = 'active' "
            "AND (horizon IS NULL OR horizon < ?) ORDER BY id",
            (behind_before,),
        )
    ]


def occurrences_beyond(conn: sqlite3.Connection, after: str) -> int:
    """Live scheduled occurrences that start after ``after`` (past the horizon: e.g. horizon_days lowered)."""
    row = conn.execute(
        "SELECT count(*) FROM plan_occurrences WHERE deleted_at IS NULL AND status = 'scheduled' "
        "AND scheduled_start > ?",
        (after,),
    ).fetchone()
    return int(row[0])


def pending_outbox(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])


def checkpoint(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """``PRAGMA wal_checkpoint(TRUNCATE)``: (busy, wal frames, checkpointed frames)."""
    row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return int(row[0]), int(row[1]), int(row[2])
