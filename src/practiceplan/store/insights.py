"""Read queries for analytics: light occurrence facts and logbook totals per local day, computed in SQL.

Selecting a handful of columns (and ``json_extract`` for two fields) instead of parsing whole documents keeps
`stats` fast with two years of occurrences; logbook totals per local day come from the hour / quarter-hour
rollup tables (migration m006, kept by triggers), so `stats` reads at most 24 small rows a day of history
instead of every entry. Everything here only reads, except the streak hint and the rollup rebuild, which run
inside a write transaction (a logbook change, `doctor --fix`).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from practiceplan.store.sql import where

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
    filters, params = where(("deleted_at IS NULL", not include_deleted), ("scheduled_start >= ?", start_from or None),
                            ("scheduled_start < ?", start_before or None))
    return conn.execute(sql + filters, params).fetchall()


DAY_MS = 86_400_000
# The rollup tables of migration m006 (table, key column, bucket size in ms), coarsest first. A bucket holds the
# live entries with floor(ts / size) == key; a row exists while its bucket holds one.
ROLLUPS = (("logbook_hours", "hour", 3_600_000), ("logbook_quarters", "quarter", 900_000))
_LINKED = "CASE WHEN plan_occurrence_id IS NOT NULL THEN duration ELSE 0 END"

Segments = list[tuple[int, int, int]]


def _floor_div(expr: str, divisor: int) -> str:
    """SQL for floor(expr / divisor) (SQLite's integer division truncates toward zero)."""
    return f"(({expr}) / {divisor} - (({expr}) < 0 AND ({expr}) % {divisor} != 0))"


def _split(segments: Segments) -> tuple[dict[str, Segments], Segments]:
    """Split the zone's (from_ms, to_ms, offset_ms) segments into key ranges a rollup table answers exactly
    (every bucket inside the segment, the offset a whole number of buckets, so no local midnight falls inside
    a bucket) and the millisecond ranges left for the logbook itself (edges off the bucket grid, odd offsets)."""
    keyed: dict[str, Segments] = {table: [] for table, _, _ in ROLLUPS}
    raw: Segments = []
    for lo, hi, off in segments:
        for table, _, size in ROLLUPS:
            first, last = -(-lo // size), hi // size
            if off % size == 0 and first < last:
                keyed[table].append((first, last, off))
                raw += [piece for piece in ((lo, first * size, off), (last * size, hi, off)) if piece[0] < piece[1]]
                break
        else:
            raw.append((lo, hi, off))
    return keyed, raw


def _day_rows(conn: sqlite3.Connection, keyed: dict[str, Segments], raw: Segments) -> list[tuple[int, int, int, int]]:
    """(local day, minutes, entries, linked minutes) from rollup key ranges and raw logbook ranges."""
    ctes: list[str] = []
    parts: list[str] = []
    params: list[int] = []
    for index, (table, key, size) in enumerate(ROLLUPS):
        if keyed.get(table):
            ctes.append(f"k{index}(lo, hi, off) AS (VALUES {', '.join('(?, ?, ?)' for _ in keyed[table])})")
            params += [value for piece in keyed[table] for value in piece]
            parts.append(f"SELECT {_floor_div(f'b.{key} * {size} + k{index}.off', DAY_MS)} AS day, b.minutes AS m, "
                         f"b.entries AS n, b.linked AS l FROM k{index} JOIN {table} b "
                         f"ON b.{key} >= k{index}.lo AND b.{key} < k{index}.hi")
    if raw:
        ctes.append(f"r(lo, hi, off) AS (VALUES {', '.join('(?, ?, ?)' for _ in raw)})")
        params += [value for piece in raw for value in piece]
        parts.append(f"SELECT {_floor_div('ts + r.off', DAY_MS)} AS day, duration AS m, 1 AS n, {_LINKED} AS l "
                     "FROM r JOIN logbook_entries ON ts >= r.lo AND ts < r.hi WHERE deleted_at IS NULL")
    if not parts:
        return []
    sql = (f"WITH {', '.join(ctes)} SELECT day, sum(m), sum(n), sum(l) FROM ({' UNION ALL '.join(parts)}) "
           "GROUP BY day ORDER BY day")
    return [(int(d), int(m or 0), int(c), int(lm or 0)) for d, m, c, lm in conn.execute(sql, params)]


def day_totals(conn: sqlite3.Connection, segments: Segments) -> list[tuple[int, int, int, int]]:
    """(local day number, minutes, entries, minutes linked to an occurrence) for every day with entries, from
    the rollup tables: exactly what :func:`entry_days` computes from every entry, reading one small row per hour
    with entries (per quarter-hour in zones with :30 / :45 offsets) instead of every entry.

    ``segments`` are (from_ms, to_ms, utc_offset_ms) pieces of the user's zone (DayClock.segments)."""
    return _day_rows(conn, *_split(segments))


def entry_days(conn: sqlite3.Connection, segments: Segments) -> list[tuple[int, int, int, int]]:
    """The same as :func:`day_totals`, read from every live entry (the reference the rollup must equal)."""
    return _day_rows(conn, {}, segments)


def minutes_by_occurrence(conn: sqlite3.Connection) -> dict[str, int]:
    """Minutes logged by the entry each occurrence is currently linked to (see CURRENT_LINK)."""
    return {
        occ_id: int(minutes or 0)
        for occ_id, minutes in conn.execute(
            # driven from the occurrences (one primary-key lookup per linked one), so it costs the same at 10k
            # and at 100k logbook entries
            f"SELECT o.id, sum(e.duration) FROM plan_occurrences o JOIN logbook_entries e "
            f"ON e.id = o.log_entry_id AND {CURRENT_LINK} WHERE o.log_entry_id IS NOT NULL AND e.deleted_at IS NULL "
            "GROUP BY o.id"
        )
    }


def entry_range(conn: sqlite3.Connection) -> tuple[int | None, int | None]:
    # deleted rows included: a superset is fine for a range, and min/max then come straight from the index
    # (one aggregate per SELECT: `SELECT min(ts), max(ts)` would scan the whole index)
    row = conn.execute(
        "SELECT (SELECT min(ts) FROM logbook_entries), (SELECT max(ts) FROM logbook_entries)"
    ).fetchone()
    return row[0], row[1]


def entry_day_numbers(conn: sqlite3.Connection, segments: Segments, *, since_ms: int) -> set[int]:
    """Local day numbers with at least one entry since ``since_ms`` (from the rollup)."""
    clipped = [(max(lo, since_ms), hi, off) for lo, hi, off in segments if hi > since_ms]
    return {row[0] for row in day_totals(conn, clipped)}


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
    all inside SQLite: in the coarsest rollup table whose buckets the offset aligns with, else the logbook."""
    table, key, size, live = next(
        ((table, key, size, "") for table, key, size in ROLLUPS if offset_ms % size == 0),
        ("logbook_entries", "ts", 1, "deleted_at IS NULL AND "),
    )

    def probe(day: str) -> str:  # the day's bounds are whole buckets: exact divisions
        return (f"EXISTS (SELECT 1 FROM {table} WHERE {live}{key} >= ({day} * {DAY_MS} - ?) / {size} "
                f"AND {key} < (({day} + 1) * {DAY_MS} - ?) / {size})")

    sql = (f"WITH RECURSIVE s(d) AS (SELECT ? WHERE {probe('?')} "
           f"UNION ALL SELECT d - 1 FROM s WHERE d - 1 >= ? AND {probe('(d - 1)')}) SELECT count(*) FROM s")
    params = [last, last, offset_ms, last, offset_ms, first, offset_ms, offset_ms]
    return int(conn.execute(sql, params).fetchone()[0])


def has_entries(conn: sqlite3.Connection, lo_ms: int, hi_ms: int) -> bool:
    return conn.execute(
        "SELECT 1 FROM logbook_entries WHERE deleted_at IS NULL AND ts >= ? AND ts < ? LIMIT 1", (lo_ms, hi_ms)
    ).fetchone() is not None


def latest_entry(conn: sqlite3.Connection) -> int | None:
    """The timestamp (ms) of the newest live entry (walks the ts index back past deleted ones)."""
    row = conn.execute("SELECT ts FROM logbook_entries WHERE deleted_at IS NULL ORDER BY ts DESC LIMIT 1").fetchone()
    return row[0] if row else None


def streak_hint(conn: sqlite3.Connection) -> dict[str, Any] | None:
    """The practice-streak hint written by the last write that changed the logbook (see services/insights)."""
    import json

    row = conn.execute("SELECT value FROM meta WHERE key = 'hint:practiceStreak'").fetchone()
    return json.loads(row[0]) if row else None


def store_streak_hint(conn: sqlite3.Connection, hint: dict[str, Any]) -> None:
    import json

    assert conn.in_transaction, "writes must run inside Store.write()"
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('hint:practiceStreak', ?)", (json.dumps(hint),))


def rollup_mismatches(conn: sqlite3.Connection) -> dict[str, int]:
    """Per rollup table, how many buckets differ from what the live entries add up to (0 when in step)."""
    result = {}
    for table, key, size in ROLLUPS:
        derived = (f"SELECT {_floor_div('ts', size)}, count(*), sum(duration), sum({_LINKED}) "
                   "FROM logbook_entries WHERE deleted_at IS NULL GROUP BY 1")
        stored = f"SELECT {key}, entries, minutes, linked FROM {table}"
        result[table] = int(conn.execute(
            f"SELECT count(*) FROM (SELECT * FROM ({derived} EXCEPT {stored}) "
            f"UNION ALL SELECT * FROM ({stored} EXCEPT {derived}))"
        ).fetchone()[0])
    return result


def rebuild_rollups(conn: sqlite3.Connection) -> None:
    """Recompute the rollup tables from the live entries (doctor --fix). Must run inside a write transaction."""
    assert conn.in_transaction, "writes must run inside Store.write()"
    for table, key, size in ROLLUPS:
        conn.execute(f"DELETE FROM {table}")
        conn.execute(f"INSERT INTO {table} ({key}, entries, minutes, linked) SELECT {_floor_div('ts', size)}, "
                     f"count(*), sum(duration), sum({_LINKED}) FROM logbook_entries WHERE deleted_at IS NULL "
                     "GROUP BY 1")
