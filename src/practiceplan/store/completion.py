"""Values for shell completion: plan, session and template ids and titles, read from the database with plain
sqlite3, read-only, with no migration (a Tab press must never write, wait or load sqlite_utils).
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from practiceplan.store.repo import KIND_PREFIX, Store

LIMIT = 50


def open_read_only(path: Path) -> Store | None:
    """The database at ``path`` opened read-only (None when there is none or it cannot be read now)."""
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=0.05)
        conn.execute("SELECT 1 FROM practice_plans LIMIT 1")
    except sqlite3.Error:
        return None
    return Store(conn, path)


def quiet(read: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
    """A completion read that gives no values (rather than an error) when the database cannot answer it: a
    half-migrated, locked or damaged file, or a document that is not JSON."""

    @functools.wraps(read)
    def wrapper(*args: Any, **kwargs: Any) -> list[Any]:
        try:
            return read(*args, **kwargs)
        except (sqlite3.Error, ValueError, AttributeError):
            return []

    return wrapper


def _starts(text: str, prefix: str) -> bool:
    return text.casefold().startswith(prefix.casefold())


@quiet
def plans(store: Store, prefix: str, *, deleted: bool = False) -> list[tuple[str, str]]:
    """(value, description) of plans whose short id or title starts with ``prefix``: ids, then titles."""
    alive = "deleted_at IS NOT NULL" if deleted else "deleted_at IS NULL"
    rows = [(r[0], json.loads(r[1]).get("title") or "")
            for r in store.conn.execute(f"SELECT id, doc FROM practice_plans WHERE {alive} ORDER BY id")]
    return _ids_and_titles(store, "practice_plan", rows, prefix)


@quiet
def templates(store: Store, prefix: str) -> list[tuple[str, str]]:
    rows = [(r[0], json.loads(r[1]).get("title") or "")
            for r in store.conn.execute("SELECT id, doc FROM plan_templates WHERE deleted_at IS NULL ORDER BY id")]
    return _ids_and_titles(store, "plan_template", rows, prefix)


def _ids_and_titles(store: Store, kind: str, rows: list[tuple[str, str]], prefix: str) -> list[tuple[str, str]]:
    short = store.short_ids(kind, [i for i, _ in rows])
    ids = [(short[i], title) for i, title in rows if _starts(short[i], prefix) or _starts(i, prefix)]
    titles = [(title, f"id {short[i]}") for i, title in rows if title and _starts(title, prefix)]
    return (ids + sorted(titles))[:LIMIT]


@quiet
def occurrences(store: Store, prefix: str, start: str, end: str) -> list[dict[str, Any]]:
    """Live sessions starting in [start, end) whose short id starts with ``prefix``, soonest first, each with its
    ``shortId``, ``start``, ``status`` and ``title`` (of its plan)."""
    found = []
    sql = ("SELECT o.id, o.scheduled_start, o.status, p.doc FROM plan_occurrences o "
           "LEFT JOIN practice_plans p ON p.id = o.plan_id "
           "WHERE o.deleted_at IS NULL AND o.scheduled_start >= ? AND o.scheduled_start < ? ORDER BY o.scheduled_start")
    rows = store.conn.execute(sql, (start, end)).fetchall()
    short = store.short_ids("plan_occurrence", [r[0] for r in rows])
    for occ_id, scheduled, status, plan_doc in rows:
        if _starts(short[occ_id], prefix) or _starts(occ_id.removeprefix(KIND_PREFIX["plan_occurrence"]), prefix):
            title = (json.loads(plan_doc).get("title") if plan_doc else None) or "?"
            found.append({"shortId": short[occ_id], "start": scheduled, "status": status, "title": title})
    return found
