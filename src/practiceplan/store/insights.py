"""Read queries for analytics: light occurrence facts and logbook totals per local day, computed in SQL.

Selecting a handful of columns (and ``json_extract`` for two fields) instead of parsing whole documents keeps
`stats` fast with two years of occurrences and 100k logbook entries.
"""

from __future__ import annotations

import sqlite3
from typing import Any

_MS = "CAST(round((julianday({0}) - 2440587.5) * 86400000) AS INTEGER)"
# An entry counts for a session only while the link is current both ways: the entry names the occurrence and the
# occurrence names the entry. An undone or replaced check-in's entry is free practice (ARCHITECTURE.md).
CURRENT_LINK = "o.id = e.plan_occurrence_id AND o.log_entry_id = e.id"


def occurrence_rows(
    conn: sqlite3.Connection, *, start_from: str | None = None, start_before: str | None = None,
    include_deleted: bool = False,
) -> list[tuple[Any, ...]]:
    """(id, plan_id, start_ms, end_ms, status, flexWindow, pendingLog, log_entry_id, deleted) per occurrence."""
    start_ms = _MS.format("scheduled_start")
    end_ms = _MS.format("json_extract(doc, '$.scheduledEnd')")
    sql = (
        f"SELECT id, plan_id, {start_ms}, {end_ms}, status, json_extract(doc, '$.flexWindow'), "
        "json_extract(doc, '$.metrics.pendingLog'), log_entry_id, deleted_at IS NOT NULL "
        "FROM plan_occurrences WHERE scheduled_start IS NOT NULL"
    )
    params: list[Any] = []
    if not include_deleted:
        sql += " AND deleted_at IS NULL"
    if start_from:
        sql += " AND scheduled_start >= ?"
        params.append(start_from)
    if start_before:
        sql += " AND scheduled_start < ?"
        params.append(start_before)
    return conn.execute(sql, params).fetchall()


def entry_days(conn: sqlite3.Connection, segments: list[tuple[int, int, int]]) -> list[tuple[int, int, int, int]]:
    """(local day number, minutes, entries, minutes currently linked to an occurrence) for every day with entries.

    ``segments`` are (from_ms, to_ms, utc_offset_ms) pieces of the user's zone (DayClock.segments), so the
    grouping happens in SQL by local calendar day.
    """
    values = ", ".join("(?, ?, ?)" for _ in segments)
    params = [value for segment in segments for value in segment]
    sql = (
        f"WITH seg(lo, hi, off) AS (VALUES {values}) "
        "SELECT (e.ts + seg.off) / 86400000 AS day, "
        "       sum(e.duration), count(*), "
        "       sum(CASE WHEN o.id IS NOT NULL THEN e.duration ELSE 0 END) "
        "FROM logbook_entries e JOIN seg ON e.ts >= seg.lo AND e.ts < seg.hi "
        f"LEFT JOIN plan_occurrences o ON {CURRENT_LINK} "
        "WHERE e.deleted_at IS NULL GROUP BY day ORDER BY day"
    )
    return [(int(d), int(m or 0), int(c), int(lm or 0)) for d, m, c, lm in conn.execute(sql, params)]


def minutes_by_occurrence(conn: sqlite3.Connection) -> dict[str, int]:
    """Minutes logged by the entry each occurrence is currently linked to (see CURRENT_LINK)."""
    return {
        occ_id: int(minutes or 0)
        for occ_id, minutes in conn.execute(
            f"SELECT e.plan_occurrence_id, sum(e.duration) FROM logbook_entries e JOIN plan_occurrences o "
            f"ON {CURRENT_LINK} WHERE e.deleted_at IS NULL GROUP BY e.plan_occurrence_id"
        )
    }


def entry_range(conn: sqlite3.Connection) -> tuple[int | None, int | None]:
    # deleted rows included: a superset is fine for a range, and min/max then come straight from the index
    row = conn.execute("SELECT min(ts), max(ts) FROM logbook_entries").fetchone()
    return row[0], row[1]


def entry_day_numbers(conn: sqlite3.Connection, segments: list[tuple[int, int, int]], *, since_ms: int) -> set[int]:
    """Local day numbers with at least one entry since ``since_ms`` (cheap: no JSON, uses the ts index)."""
    values = ", ".join("(?, ?, ?)" for _ in segments)
    params: list[Any] = [value for segment in segments for value in segment]
    sql = (
        f"WITH seg(lo, hi, off) AS (VALUES {values}) "
        "SELECT DISTINCT (e.ts + seg.off) / 86400000 FROM logbook_entries e JOIN seg "
        "ON e.ts >= seg.lo AND e.ts < seg.hi WHERE e.ts >= ? AND e.deleted_at IS NULL"
    )
    return {int(row[0]) for row in conn.execute(sql, [*params, since_ms])}


def dip_keys(conn: sqlite3.Connection) -> set[tuple[str, str]]:
    """(planId, weekStart) of every recorded adherence dip."""
    return {
        (plan_id, week)
        for plan_id, week in conn.execute(
            "SELECT json_extract(data, '$.planId'), json_extract(data, '$.weekStart') FROM events "
            "WHERE name = 'adherence.dip'"
        )
    }


def events(conn: sqlite3.Connection, limit: int | None = None) -> list[dict[str, Any]]:
    import json

    sql = "SELECT id, at, name, data FROM events ORDER BY id DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [{"id": i, "at": at, "name": name, "data": json.loads(data)} for i, at, name, data in conn.execute(sql)]


def days_with_entries_back(conn: sqlite3.Connection, first: int, last: int, offset_ms: int) -> int:
    """How many consecutive days, from ``last`` back to at least ``first``, have an entry, when every one of
    those days starts at ``day * 86400000 - offset_ms`` (one UTC offset throughout). One index probe a day,
    all inside SQLite."""
    sql = (
        "WITH RECURSIVE s(d) AS (SELECT ? WHERE EXISTS (SELECT 1 FROM logbook_entries WHERE deleted_at IS NULL "
        "AND ts >= ? * 86400000 - ? AND ts < (? + 1) * 86400000 - ?) "
        "UNION ALL SELECT d - 1 FROM s WHERE d - 1 >= ? AND EXISTS (SELECT 1 FROM logbook_entries "
        "WHERE deleted_at IS NULL AND ts >= (d - 1) * 86400000 - ? AND ts < d * 86400000 - ?)) "
        "SELECT count(*) FROM s"
    )
    params = [last, last, offset_ms, last, offset_ms, first, offset_ms, offset_ms]
    return int(conn.execute(sql, params).fetchone()[0])


def has_entries(conn: sqlite3.Connection, lo_ms: int, hi_ms: int) -> bool:
    return conn.execute(
        "SELECT 1 FROM logbook_entries WHERE deleted_at IS NULL AND ts >= ? AND ts < ? LIMIT 1", (lo_ms, hi_ms)
    ).fetchone() is not None


def cached(conn: sqlite3.Connection, key: str) -> dict[str, Any] | None:
    """A value derived from the logbook, cached in ``meta`` with the logbook revision it was computed at."""
    import json

    row = conn.execute("SELECT value FROM meta WHERE key = ?", (f"cache:{key}",)).fetchone()
    return json.loads(row[0]) if row else None


def logbook_revision(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'logbook_rev'").fetchone()
    return int(row[0]) if row else 0


def store_cached(conn: sqlite3.Connection, key: str, value: dict[str, Any], revision: int) -> bool:
    """Best effort: store the cache unless the logbook changed meanwhile; never waits long for the lock."""
    import json

    from practiceplan.store.locking import BUSY_TIMEOUT_MS

    conn.execute("PRAGMA busy_timeout = 50")
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return False
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    try:
        if logbook_revision(conn) != revision:
            conn.execute("ROLLBACK")
            return False
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (f"cache:{key}", json.dumps(value)))
        conn.execute("COMMIT")
        return True
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
