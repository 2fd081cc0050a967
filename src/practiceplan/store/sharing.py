"""Shared plans on this device (docs/collaboration.md): the sharing list the server last sent, this device's
server user name, comments, and other participants' sessions (``shared_sessions``, migration m009).

Reads are for the sync engine and the CLI; writes run inside the caller's transaction (``Store.write()``): the
engine applies a pull's sharing data in the merge transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from practiceplan.store import sync as st

if TYPE_CHECKING:
    from practiceplan.store.repo import Store

LEVELS = ("view", "comment", "edit", "owner")  # weakest first
SHARING_META = "sharing"  # meta ``sync.sharing``: the last ``sharing`` list (JSON)
USER_META = "user"  # meta ``sync.user``: this account's user name on the server


def _chunks(ids: Iterable[str], size: int = 500) -> Iterable[list[str]]:
    ids = list(ids)
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


# --------------------------------------------------------------------------- reads

def sharing_list(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The plans this account takes part in, as the server last listed them:
    ``[{"planId", "owner", "level", "members": [...]}]`` ([] before any sync with a ``sharing`` server)."""
    found = st.get_json(conn, SHARING_META)
    return [dict(e) for e in found if isinstance(e, dict)] if isinstance(found, list) else []


def my_name(conn: sqlite3.Connection) -> str | None:
    """This account's user name on the server (from its status answer at the last sync), or None."""
    return st.get_meta(conn, USER_META)


def level_of(conn: sqlite3.Connection, plan_id: str) -> str | None:
    """This account's level on a shared plan: "owner", "view", "comment" or "edit"; None when it is not shared
    (or not known to be)."""
    for entry in sharing_list(conn):
        if entry.get("planId") == plan_id:
            level = entry.get("level")
            return level if level in LEVELS else None
    return None


def comments(conn: sqlite3.Connection, plan_id: str, occurrence_id: str | None = None) -> list[dict[str, Any]]:
    """Live comments on a plan (``occurrence_id``: only those on that session), oldest first."""
    sql = "SELECT doc FROM plan_comments WHERE plan_id = ? AND deleted_at IS NULL"
    args: list[Any] = [plan_id]
    if occurrence_id is not None:
        sql += " AND occurrence_id = ?"
        args.append(occurrence_id)
    # same instant: the order they were stored in
    sql += " ORDER BY COALESCE(json_extract(doc, '$.createdAt'), updated_at, ''), rowid"
    return [json.loads(r[0]) for r in conn.execute(sql, args)]


def shared_sessions(conn: sqlite3.Connection, plan_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Other participants' live sessions (documents with ``member``), by start time; all plans when ``plan_ids``
    is None."""
    order = " ORDER BY COALESCE(scheduled_start, ''), member, id"
    if plan_ids is None:
        rows = list(conn.execute("SELECT doc FROM shared_sessions" + order))
    else:
        rows = []
        for chunk in _chunks(plan_ids):
            rows.extend(conn.execute(f"SELECT doc FROM shared_sessions WHERE plan_id IN ({', '.join('?' * len(chunk))})"
                                     + order, chunk))
    docs = [json.loads(r[0]) for r in rows]
    docs = [d for d in docs if not d.get("deletedAt")]
    if plan_ids is not None:  # chunks each come ordered; keep one order overall
        docs.sort(key=lambda d: (d.get("scheduledStart") or "", d.get("member") or "", d.get("id") or ""))
    return docs


# --------------------------------------------------------------------------- writes (inside Store.write())

def set_sharing_list(conn: sqlite3.Connection, entries: list[dict[str, Any]]) -> bool:
    """Store the sharing list; True when it changed (an unchanged list is not written)."""
    if st.get_json(conn, SHARING_META) == entries:
        return False
    st.set_json(conn, SHARING_META, entries)
    return True


def set_my_name(conn: sqlite3.Connection, name: str | None) -> bool:
    if st.get_meta(conn, USER_META) == name:
        return False
    st.set_meta(conn, USER_META, name)
    return True


def apply_shared_sessions(conn: sqlite3.Connection, sessions: Iterable[dict[str, Any]]) -> int:
    """Upsert other participants' sessions by (member, id); a tombstone (``deletedAt``) removes the row. Returns
    how many rows changed (a session equal to the stored one is not rewritten)."""
    changed = 0
    for doc in sessions:
        member, entity_id = doc.get("member"), doc.get("id")
        if not isinstance(member, str) or not isinstance(entity_id, str):
            continue
        if doc.get("deletedAt"):
            changed += conn.execute("DELETE FROM shared_sessions WHERE member = ? AND id = ?",
                                    (member, entity_id)).rowcount
            continue
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        row = conn.execute("SELECT doc FROM shared_sessions WHERE member = ? AND id = ?", (member, entity_id)).fetchone()
        if row is not None and json.loads(row[0]) == doc:
            continue
        conn.execute(
            "INSERT INTO shared_sessions (member, id, plan_id, scheduled_start, status, updated_at, doc) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (member, id) DO UPDATE SET plan_id = excluded.plan_id, "
            "scheduled_start = excluded.scheduled_start, status = excluded.status, updated_at = excluded.updated_at, "
            "doc = excluded.doc",
            (member, entity_id, str(doc.get("planId") or ""), doc.get("scheduledStart"), doc.get("status"),
             doc.get("updatedAt"), text))
        changed += 1
    return changed


def keep_only_shared_sessions(conn: sqlite3.Connection, keep: set[tuple[str, str]]) -> int:
    """Remove every shared session not in ``keep`` ((member, id) pairs): after an answer that holds all of them."""
    gone = [(m, i) for m, i in conn.execute("SELECT member, id FROM shared_sessions") if (m, i) not in keep]
    conn.executemany("DELETE FROM shared_sessions WHERE member = ? AND id = ?", gone)
    return len(gone)


def comment_ids(conn: sqlite3.Connection, plan_ids: Iterable[str]) -> list[str]:
    """Every local comment (deleted ones included) on these plans."""
    found: list[str] = []
    for chunk in _chunks(plan_ids):
        found.extend(r[0] for r in conn.execute(
            f"SELECT id FROM plan_comments WHERE plan_id IN ({', '.join('?' * len(chunk))}) ORDER BY id", chunk))
    return found


def purge_plans(store: Store, plan_ids: Iterable[str], now: str, *, queue_sessions: bool = True) -> dict[str, int]:
    """This account no longer takes part in these plans (someone else's): remove them from this device — the
    plan row, its comments and others' sessions are deleted outright with their outbox rows and sync state;
    this account's own sessions of them are marked deleted (and, with ``queue_sessions``, queued so the server
    deletes them too). Logbook entries stay. Returns counts per what was removed."""
    conn = store.conn
    ids = list(dict.fromkeys(plan_ids))
    counts = {"plans": 0, "comments": 0, "shared_sessions": 0, "sessions": 0}
    if not ids:
        return counts
    comment_list = comment_ids(conn, ids)
    for chunk in _chunks(comment_list):
        marks = ", ".join("?" * len(chunk))
        counts["comments"] += conn.execute(f"DELETE FROM plan_comments WHERE id IN ({marks}) AND deleted_at IS NULL",
                                           chunk).rowcount
        conn.execute(f"DELETE FROM plan_comments WHERE id IN ({marks})", chunk)
    st.drop_outbox(conn, [("plan_comment", i, None) for i in comment_list])
    st.forget_states(conn, "plan_comment", comment_list)
    for chunk in _chunks(ids):
        marks = ", ".join("?" * len(chunk))
        counts["shared_sessions"] += conn.execute(f"DELETE FROM shared_sessions WHERE plan_id IN ({marks})",
                                                  chunk).rowcount
        counts["plans"] += conn.execute(f"DELETE FROM practice_plans WHERE id IN ({marks}) AND deleted_at IS NULL",
                                        chunk).rowcount
        conn.execute(f"DELETE FROM practice_plans WHERE id IN ({marks})", chunk)
    st.drop_outbox(conn, [("practice_plan", i, None) for i in ids])
    st.forget_states(conn, "practice_plan", ids)
    own = [s for s in st.sessions_of(conn, ids) if not s.get("deletedAt")]
    if own:
        gone = [{**s, "deletedAt": now, "updatedAt": now} for s in own]
        counts["sessions"] = store.save_many("plan_occurrence", gone, now, outbox=queue_sessions)
    return counts


def shared_with_me(conn: sqlite3.Connection) -> list[str]:
    """Plans of the last sharing list that belong to someone else."""
    return [str(e["planId"]) for e in sharing_list(conn) if e.get("level") != "owner" and isinstance(e.get("planId"), str)]


def forget_all(store: Store, now: str) -> dict[str, int]:
    """A new remote: what the old server shared with this account is no part of this device's own data (pushed
    to the new server it would become this account's copy of someone else's plan). Purge it, without queueing,
    and forget the old server's list, user name and others' sessions."""
    conn = store.conn
    counts = purge_plans(store, shared_with_me(conn), now, queue_sessions=False)
    conn.execute("DELETE FROM shared_sessions")
    st.set_meta(conn, SHARING_META, None)
    st.set_meta(conn, USER_META, None)
    return counts
