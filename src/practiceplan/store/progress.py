"""Read queries for the progress review: the logbook entries that carry progress records, through the partial
index of migration m008 (``logbook_entries_progress``), so the cost follows the entries with tempo or tension
records, not the size of the logbook. Only reads."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

# The WHERE term must be the index's condition, word for word, for SQLite to use the partial index.
PROGRESS_ROWS = (
    "SELECT id, ts, json_extract(doc, '$.metadata.planId'), json_extract(doc, '$.metadata.progress') "
    "FROM logbook_entries INDEXED BY logbook_entries_progress "
    "WHERE json_type(doc, '$.metadata.progress') = 'array' AND deleted_at IS NULL"
)


def progress_rows(conn: sqlite3.Connection, *, plan_id: str | None = None, since_ms: int | None = None,
                  before_ms: int | None = None) -> list[tuple[str, int, str | None, list[Any]]]:
    """(entry id, ts ms, plan id or None, progress records as stored) per live entry with progress records, in
    time order; ``plan_id`` keeps the entries of one plan, ``since_ms`` / ``before_ms`` those in a time range."""
    sql, params = PROGRESS_ROWS, []
    if since_ms is not None:
        sql += " AND ts >= ?"
        params.append(since_ms)
    if before_ms is not None:
        sql += " AND ts < ?"
        params.append(before_ms)
    sql += " ORDER BY ts"
    rows = []
    for entry_id, ts, plan, doc in conn.execute(sql, params):
        if plan_id is not None and plan != plan_id:
            continue
        try:
            records = json.loads(doc)
        except (TypeError, ValueError):
            continue
        rows.append((entry_id, int(ts), plan if isinstance(plan, str) else None, records))
    return rows

