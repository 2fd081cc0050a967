"""Repositories: entities in and out of SQLite, with the sync outbox written in the same transaction.

Each entity table keeps a few indexed columns for what we query and the full wire-format JSON document
(``doc``), so fields we do not know survive a round trip. Every ``save`` also upserts one outbox row per
changed entity (``rev`` counts changes, so an acknowledgement of an older push never clears a newer change).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from practiceplan.domain.models import ID_PREFIXES, epoch_ms, iso_z, parse_instant
from practiceplan.errors import AmbiguousIdError, NotFoundError, UsageError
from practiceplan.store import db as dbmod
from practiceplan.store.sql import order_limit, where

TABLES = {
    "practice_plan": "practice_plans",
    "plan_occurrence": "plan_occurrences",
    "logbook_entry": "logbook_entries",
    "goal": "goals",
    "plan_template": "plan_templates",
    "plan_comment": "plan_comments",
}
KIND_PREFIX = {
    "practice_plan": ID_PREFIXES["plan"],
    "plan_occurrence": ID_PREFIXES["occurrence"],
    "logbook_entry": ID_PREFIXES["entry"],
    "goal": ID_PREFIXES["goal"],
    "plan_template": ID_PREFIXES["template"],
    "plan_comment": ID_PREFIXES["comment"],
}
KIND_LABEL = {
    "practice_plan": "plan",
    "plan_occurrence": "occurrence",
    "logbook_entry": "logbook entry",
    "goal": "goal",
    "plan_template": "template",
    "plan_comment": "comment",
}
MIN_SHORT = 6


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _columns(kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    deleted = doc.get("deletedAt") or None
    cols: dict[str, Any] = {"id": doc["id"], "updated_at": doc.get("updatedAt"), "deleted_at": deleted}
    if kind == "practice_plan":
        cols["status"] = doc.get("status")
    elif kind == "plan_occurrence":
        cols.update(
            plan_id=doc.get("planId") or "",
            scheduled_start=doc.get("scheduledStart"),
            status=doc.get("status"),
            log_entry_id=doc.get("logEntryId"),
        )
    elif kind == "logbook_entry":
        stamp = parse_instant(doc.get("timestamp"))
        cols["ts"] = epoch_ms(stamp) if stamp else 0
        cols["plan_occurrence_id"] = (doc.get("metadata") or {}).get("planOccurrenceId")
        duration = doc.get("duration")
        cols["duration"] = duration if isinstance(duration, int) and not isinstance(duration, bool) else 0
    elif kind == "plan_comment":
        cols.update(plan_id=doc.get("planId") or "", occurrence_id=doc.get("occurrenceId"), author=doc.get("author"))
    elif kind == "plan_template":
        provenance = (doc.get("metadata") or {}).get("provenance") or {}
        status = "imported" if provenance.get("kind") == "import" else "published" if doc.get("publishedAt") else "draft"
        cols.update(
            author_id=doc.get("authorId"),
            status=status,
            visibility=doc.get("visibility"),
            template_version=doc.get("templateVersion"),
        )
    cols["doc"] = dumps(doc)
    return cols


def _prefix_range(prefix: str) -> tuple[str, str]:
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


class Store:
    """One open database. Reads are plain queries; writes go through :meth:`write`."""

    def __init__(self, conn: sqlite3.Connection, path: Path | str) -> None:
        self.conn = conn
        self.path = path
        # called inside write() before COMMIT when the transaction changed the logbook (Session sets it)
        self.on_logbook_change: Callable[[], None] | None = None

    @classmethod
    def open(cls, path: Path | str, *, create_folder: bool = True) -> Store:
        return cls(dbmod.connect(path, create_folder=create_folder), path)

    @property
    def read_only(self) -> bool:
        """Opened read-only (a file we may not write): reads work, writes fail with exit 77."""
        return dbmod.is_read_only(self.conn)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def write(self, *, tables: tuple[str, ...] | None = None) -> Iterator[Store]:
        """A write transaction; ``tables`` names the only (small bookkeeping) tables it writes, to check just
        those before a first write (see store/db.py ``transaction``)."""
        with dbmod.transaction(self.conn, self.path, tables):
            hook = self.on_logbook_change
            revision = self.logbook_revision() if hook else None
            yield self
            if hook and self.logbook_revision() != revision:
                hook()

    def logbook_revision(self) -> int:
        """The logbook's change counter (migration m005: triggers bump it on every insert, update, delete)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'logbook_rev'").fetchone()
        return int(row[0]) if row else 0

    # ------------------------------------------------------------------ generic entity access

    def save(self, kind: str, doc: dict[str, Any], changed_at: str) -> None:
        self.save_many(kind, [doc], changed_at)

    def save_many(self, kind: str, docs: Iterable[dict[str, Any]], changed_at: str, *, outbox: bool = True) -> int:
        """Upsert documents and their outbox rows. Must run inside :meth:`write`. Returns how many changed.

        A document equal to the stored one is not written and gets no outbox row: saving without a change must
        not make sync push the entity again (the server would bump its version for nothing). ``outbox=False``
        is for versions that came from the sync server (they are already there)."""
        assert self.conn.in_transaction, "writes must run inside Store.write()"
        table = TABLES[kind]
        docs = list(docs)
        stored = self._stored_docs(table, [d["id"] for d in docs])
        rows = [_columns(kind, doc) for doc in docs if stored.get(doc["id"]) != doc]
        if not rows:
            return 0
        names = list(rows[0])
        updates = ", ".join(f"{n} = excluded.{n}" for n in names if n != "id")
        self.conn.executemany(
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
            f"ON CONFLICT(id) DO UPDATE SET {updates}",
            [tuple(row[n] for n in names) for row in rows],
        )
        if outbox:
            self.conn.executemany(
                "INSERT INTO outbox (entity_type, entity_id, op, rev, seq, changed_at) "
                "VALUES (?, ?, ?, 1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox), ?) "
                "ON CONFLICT(entity_type, entity_id) DO UPDATE SET "
                "op = excluded.op, rev = rev + 1, seq = excluded.seq, changed_at = excluded.changed_at",
                [(kind, row["id"], "delete" if row["deleted_at"] else "upsert", changed_at) for row in rows],
            )
        return len(rows)

    def _stored_docs(self, table: str, ids: list[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            found.update((r[0], json.loads(r[1])) for r in self.conn.execute(
                f"SELECT id, doc FROM {table} WHERE id IN ({', '.join('?' * len(chunk))})", chunk))
        return found

    def get(self, kind: str, entity_id: str, *, include_deleted: bool = False) -> dict[str, Any] | None:
        sql = f"SELECT doc FROM {TABLES[kind]} WHERE id = ?"
        if not include_deleted:
            sql += " AND deleted_at IS NULL"
        row = self.conn.execute(sql, (entity_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def resolve(self, kind: str, text: str, *, deleted: bool = False) -> dict[str, Any]:
        """Find a live entity (``deleted``: a deleted one) by full id or by any unique prefix (with or without
        the ``plan_``-style prefix); a plan also by a unique title prefix, any case, when no id matches."""
        label = KIND_LABEL[kind]
        text = text.strip()
        if not text:
            raise UsageError(f"no {label} id given",
                             hint=f"give its id or a unique prefix; list them with `practiceplan {_list_hint(kind)}`")
        alive = "deleted_at IS NOT NULL" if deleted else "deleted_at IS NULL"
        ids = self._id_matches(kind, text, alive)
        if not ids and kind == "practice_plan":
            return self._plan_by_title(text, alive, deleted)
        if not ids:
            where = "deleted " if deleted else ""
            raise NotFoundError(f"no {where}{label} matches '{text}'", hint=f"list ids with `practiceplan {_list_hint(kind)}`")
        if len(ids) > 1:
            raise AmbiguousIdError(text, [self.short_id(kind, i) for i in ids])
        found = self.get(kind, ids[0], include_deleted=True)
        assert found is not None
        return found

    def _id_matches(self, kind: str, text: str, alive: str) -> list[str]:
        """The ids equal to ``text`` (or its prefixed form), else those starting with it."""
        table = TABLES[kind]
        candidates = dict.fromkeys((text, KIND_PREFIX[kind] + text))
        exact = [r[0] for r in self.conn.execute(f"SELECT id FROM {table} WHERE id IN (?, ?) AND {alive}", tuple(candidates))]
        if exact:
            return exact[:1]
        ids: set[str] = set()
        for prefix in candidates:
            low, high = _prefix_range(prefix)
            ids.update(r[0] for r in self.conn.execute(
                f"SELECT id FROM {table} WHERE id >= ? AND id < ? AND {alive} ORDER BY id LIMIT 50", (low, high)))
        return sorted(ids)

    def _plan_by_title(self, text: str, alive: str, deleted: bool) -> dict[str, Any]:
        """The plan whose title is ``text`` or starts with it (any case); an exact title wins over prefixes."""
        folded = text.casefold()
        plans = [json.loads(r[0]) for r in self.conn.execute(f"SELECT doc FROM practice_plans WHERE {alive}")]
        matches = [p for p in plans if str(p.get("title") or "").casefold().startswith(folded)]
        exact = [p for p in matches if str(p.get("title") or "").casefold() == folded]
        found = exact if len(exact) == 1 else matches
        if len(found) == 1:
            return found[0]
        if not found:
            where = "deleted " if deleted else ""
            hint = "list deleted plans with `practiceplan plan list --deleted`" if deleted else (
                "list ids and titles with `practiceplan plan list`")
            raise NotFoundError(f"no {where}plan matches '{text}' (as an id or the start of a title)", hint=hint)
        titles = sorted(f"{self.short_id('practice_plan', p['id'])} \"{p.get('title')}\"" for p in found)
        raise AmbiguousIdError(text, titles, what="plans")

    def short_id(self, kind: str, entity_id: str) -> str:
        return self.short_ids(kind, [entity_id])[entity_id]

    def short_ids(self, kind: str, ids: Iterable[str]) -> dict[str, str]:
        """The shortest unique prefix (at least 6 characters, type prefix stripped) of each id."""
        table = TABLES[kind]
        type_prefix = KIND_PREFIX[kind]
        result: dict[str, str] = {}
        for entity_id in ids:
            if entity_id in result:
                continue
            neighbours = [
                r[0]
                for sql in (
                    f"SELECT id FROM {table} WHERE id < ? ORDER BY id DESC LIMIT 1",
                    f"SELECT id FROM {table} WHERE id > ? ORDER BY id LIMIT 1",
                )
                for r in self.conn.execute(sql, (entity_id,))
            ]
            common = 0
            for other in neighbours:
                n = 0
                while n < min(len(other), len(entity_id)) and other[n] == entity_id[n]:
                    n += 1
                common = max(common, n)
            body_start = len(type_prefix) if entity_id.startswith(type_prefix) else 0
            length = max(common + 1 - body_start, MIN_SHORT)
            result[entity_id] = entity_id[body_start : body_start + length]
        return result

    # ------------------------------------------------------------------ plans

    def plans(self, *, include_deleted: bool = False, status: str | None = None) -> list[dict[str, Any]]:
        filters, params = where(("deleted_at IS NULL", not include_deleted), ("status = ?", status or None))
        sql = "SELECT doc FROM practice_plans WHERE 1=1" + filters + order_limit("id", None)
        return [json.loads(r[0]) for r in self.conn.execute(sql, params)]

    def plan_horizons(self) -> dict[str, str | None]:
        """Live active plans -> the instant their occurrences are materialised up to."""
        return {
            r[0]: r[1]
            for r in self.conn.execute(
                "SELECT id, horizon FROM practice_plans WHERE deleted_at IS NULL AND status = 'active'"
            )
        }

    def plan_horizon(self, plan_id: str) -> str | None:
        row = self.conn.execute("SELECT horizon FROM practice_plans WHERE id = ?", (plan_id,)).fetchone()
        return row[0] if row else None

    def set_horizon(self, plan_id: str, horizon: str | None) -> None:
        assert self.conn.in_transaction
        self.conn.execute("UPDATE practice_plans SET horizon = ? WHERE id = ?", (horizon, plan_id))

    # ------------------------------------------------------------------ occurrences

    def occurrences(
        self,
        *,
        plan_id: str | None = None,
        start_from: str | None = None,
        start_before: str | None = None,
        status: str | None = None,
        include_deleted: bool = False,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        filters, params = where(
            ("deleted_at IS NULL", not include_deleted), ("plan_id = ?", plan_id or None),
            ("scheduled_start >= ?", start_from or None), ("scheduled_start < ?", start_before or None),
            ("status = ?", status or None),
        )
        order = "scheduled_start DESC, id DESC" if newest_first else "scheduled_start, id"
        sql = "SELECT doc FROM plan_occurrences WHERE 1=1" + filters + order_limit(order, limit)
        return [json.loads(r[0]) for r in self.conn.execute(sql, params)]

    # ------------------------------------------------------------------ logbook

    def entries(
        self, *, from_ms: int | None = None, before_ms: int | None = None, limit: int | None = None,
        newest_first: bool = True,
    ) -> list[dict[str, Any]]:
        filters, params = _entry_range(from_ms, before_ms)
        order = "ts DESC, id DESC" if newest_first else "ts, id"
        sql = "SELECT doc FROM logbook_entries WHERE 1=1" + filters + order_limit(order, limit)
        return [json.loads(r[0]) for r in self.conn.execute(sql, params)]

    def count_entries(self, *, from_ms: int | None = None, before_ms: int | None = None) -> int:
        filters, params = _entry_range(from_ms, before_ms)
        return int(self.conn.execute("SELECT count(*) FROM logbook_entries WHERE 1=1" + filters, params).fetchone()[0])

    def existing_ids(self, kind: str, ids: list[str]) -> set[str]:
        found: set[str] = set()
        table = TABLES[kind]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            found.update(
                r[0]
                for r in self.conn.execute(
                    f"SELECT id FROM {table} WHERE id IN ({', '.join('?' * len(chunk))})", chunk
                )
            )
        return found

    # ------------------------------------------------------------------ events, meta, outbox

    def meta_get(self, key: str) -> str | None:
        """A value of the ``meta`` table (per-database settings such as ``sync.remote``), or None."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def meta_set(self, key: str, value: str) -> None:
        """Set a ``meta`` value. Must run inside :meth:`write`."""
        assert self.conn.in_transaction, "writes must run inside Store.write()"
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def meta_delete(self, key: str) -> bool:
        """Remove a ``meta`` value; True when there was one. Must run inside :meth:`write`."""
        assert self.conn.in_transaction, "writes must run inside Store.write()"
        return self.conn.execute("DELETE FROM meta WHERE key = ?", (key,)).rowcount > 0

    def add_event(
        self, name: str, at: str, data: dict[str, Any] | None = None, *, keep: int | None = None,
        days: int | None = None,
    ) -> None:
        """Append to the event log and apply a retention in the same transaction: only the newest ``keep``
        events, none older than ``days`` before ``at`` (the app passes its config: ``Session.add_event``).
        Pruning happens only here, inside a write, so a read never prunes."""
        assert self.conn.in_transaction
        self.conn.execute(
            "INSERT INTO events (at, name, data) VALUES (?, ?, ?)", (at, name, dumps(data or {}))
        )
        if keep is not None:
            self.conn.execute(
                "DELETE FROM events WHERE id < (SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (max(keep, 1) - 1,),
            )
        stamp = parse_instant(at)
        if days is not None and stamp is not None:
            # julianday() reads every ISO form an imported event may carry; text it cannot read is kept
            self.conn.execute("DELETE FROM events WHERE julianday(at) < julianday(?)",
                              (iso_z(stamp - timedelta(days=days)),))


def _entry_range(from_ms: int | None, before_ms: int | None) -> tuple[str, list[Any]]:
    """The filter (and its parameters) of live logbook entries from ``from_ms`` to before ``before_ms``."""
    return where(("deleted_at IS NULL", True), ("ts >= ?", from_ms), ("ts < ?", before_ms))


def _list_hint(kind: str) -> str:
    return {"practice_plan": "plan list", "plan_occurrence": "occurrences", "logbook_entry": "log list",
            "plan_template": "template list"}.get(
        kind, "--help"
    )
