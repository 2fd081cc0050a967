"""What each endpoint does, against the database (../shared/reference/sync-protocol.md §2, with §10's fixes).

Every method takes the authenticated :class:`User` and returns a :class:`Reply` (status, JSON body, headers).
Writes run in one transaction per request (``db.run(..., write=True)``) that first locks the caller's ``users``
row; the idempotency row is stored in that same transaction, so an acknowledged push is stored exactly once and a
failure leaves neither the effect nor the key.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from practiceplan.server import db, live, protocol, sharing, users
from practiceplan.server.protocol import ARRAY_OF_TYPE, INVALID_BODY, Invalid, TooMany, truthy
from practiceplan.server.users import PUBLISHERS, User

NANOID = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


@dataclass
class Limits:
    """Every limit of the server, with its default (docs/server.md "Limits")."""

    max_body_bytes: int = 5 * 1024 * 1024  # 413 beyond
    max_items: int = 1000  # items in one push or batch; 413 beyond
    pull_page_max: int = 5000  # an incremental pull's limit is capped here (default page 1000)
    rate_per_minute: float = 600  # per token; 429 + Retry-After beyond (a burst of rate_burst is allowed)
    rate_burst: int = 120
    tombstone_days: int = 180  # deletions are kept (and sent to incremental pulls) at least this long
    idempotency_hours: int = 48  # a push/adopt key is remembered this long
    max_key_length: int = 255  # X-Idempotency-Key


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def envelope(status: int, error: str, **extra: Any) -> Reply:
    """The global error envelope (§1.3)."""
    return Reply(status, {"success": False, "error": error, "code": status, **extra})


def nanoid() -> str:
    return "".join(secrets.choice(NANOID) for _ in range(21))


def row_plan_id(entity_type: str, entity_id: str, data: Any) -> str | None:
    """``sync_rows.plan_id``: a plan's own id; a session's or comment's ``planId``; else None."""
    if entity_type == "practice_plan":
        return entity_id[:255]
    if entity_type in ("plan_occurrence", "plan_comment") and isinstance(data, dict):
        plan_id = data.get("planId")
        return plan_id[:255] if isinstance(plan_id, str) and plan_id else None
    return None


@dataclass
class _Row:
    entity_type: str
    entity_id: str
    data: Any
    checksum: str
    version: int
    change_seq: int
    deleted_at: str | None
    updated_at: str


class _Tx:
    """One write transaction of one user: hands out that user's change sequence numbers."""

    def __init__(self, conn: Connection, user: User, seq: int, now: datetime) -> None:
        self.conn, self.user, self.seq, self.now = conn, user, seq, now
        self.stamp = protocol.iso_ms(now)
        self._known: dict[tuple[str, str], _Row | None] = {}  # rows read ahead (prefetch), until written

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def prefetch(self, entity_type: str, entity_ids: list[str]) -> None:
        """Read this user's rows of these ids in one query per 500 (a push of 100 items: one query, not 100)."""
        t = db.sync_rows
        for start in range(0, len(entity_ids), 500):
            chunk = entity_ids[start:start + 500]
            found = {r.entity_id: self._as_row(r) for r in self.conn.execute(sa.select(t).where(
                t.c.user_id == self.user.id, t.c.entity_type == entity_type, t.c.entity_id.in_(chunk)))}
            for entity_id in chunk:
                self._known[(entity_type, entity_id)] = found.get(entity_id)

    def row(self, entity_type: str, entity_id: str, user_id: int | None = None) -> _Row | None:
        if user_id is None and (entity_type, entity_id) in self._known:
            return self._known[(entity_type, entity_id)]
        t = db.sync_rows
        r = self.conn.execute(sa.select(t).where(t.c.user_id == (user_id or self.user.id),
                                                 t.c.entity_type == entity_type, t.c.entity_id == entity_id)).first()
        return None if r is None else self._as_row(r)

    @staticmethod
    def _as_row(r: Any) -> _Row:
        return _Row(r.entity_type, r.entity_id, json.loads(r.data), r.checksum, r.version, r.change_seq,
                    r.deleted_at, r.updated_at)

    def write(self, entity_type: str, entity_id: str, data: Any, device_id: str | None, *,
              existing: _Row | None, checksum: str | None = None, version: int | None = None) -> int:
        """Store a live snapshot; returns its version. Unchanged live content is not rewritten (§10 G12)."""
        self._known.pop((entity_type, entity_id), None)
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        plan_id = row_plan_id(entity_type, entity_id, data)
        checksum = checksum or protocol.checksum(data)
        t = db.sync_rows
        where = (t.c.user_id == self.user.id, t.c.entity_type == entity_type, t.c.entity_id == entity_id)
        if existing is not None:
            if existing.deleted_at is None and existing.data == data and existing.checksum == checksum:
                return existing.version
            new_version = existing.version + 1
            self.conn.execute(t.update().where(*where).values(
                data=text, checksum=checksum, version=new_version, change_seq=self.next_seq(), deleted_at=None,
                device_id=device_id, updated_at=self.stamp, plan_id=plan_id))
            return new_version
        self.conn.execute(t.insert().values(
            user_id=self.user.id, entity_type=entity_type, entity_id=entity_id, data=text, checksum=checksum,
            version=version or 1, change_seq=self.next_seq(), deleted_at=None, device_id=device_id,
            created_at=self.stamp, updated_at=self.stamp, plan_id=plan_id))
        return version or 1

    def delete(self, existing: _Row | None, deleted_at: str) -> int | None:
        """Keep a tombstone: the last snapshot stays, ``deleted_at`` is set, and the deletion takes a new version
        and change number (so incremental pulls deliver it and a push based on the old version is stale)."""
        if existing is None:
            return None
        if existing.deleted_at is not None:
            return existing.version
        self._known.pop((existing.entity_type, existing.entity_id), None)
        t = db.sync_rows
        self.conn.execute(t.update().where(
            t.c.user_id == self.user.id, t.c.entity_type == existing.entity_type,
            t.c.entity_id == existing.entity_id).values(
            deleted_at=str(deleted_at), version=existing.version + 1, change_seq=self.next_seq(),
            updated_at=self.stamp))
        return existing.version + 1


class _Owners:
    """The write transactions of the owners of shared plans one request writes into (besides the caller's)."""

    def __init__(self, tx: _Tx, locked: dict[int, Any]) -> None:
        self.tx, self.locked = tx, locked
        self.txs: dict[int, _Tx] = {}

    def get(self, owner_id: int) -> _Tx | None:
        """The owner's transaction; None when its row is not locked by this request."""
        if owner_id == self.tx.user.id:
            return self.tx
        if owner_id not in self.locked:
            return None
        if owner_id not in self.txs:
            r = self.locked[owner_id]
            self.txs[owner_id] = _Tx(self.tx.conn, User(int(r.id), r.name, r.role), r.change_seq, self.tx.now)
        return self.txs[owner_id]

    def used(self) -> list[_Tx]:
        return [t for t in self.txs.values() if t.seq != self.locked[t.user.id].change_seq]


class SyncService:
    def __init__(self, engine: Engine, limits: Limits | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self.limits = limits or Limits()
        self.clock = clock or (lambda: datetime.now(UTC))
        self._purged: dict[int, datetime] = {}

    def now(self) -> datetime:
        moment = self.clock()
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    # ------------------------------------------------------------------------------------------ helpers

    def _lock(self, conn: Connection, *user_ids: int) -> dict[int, Any]:
        """Lock the users' rows (in id order, so two locks never deadlock) and return them."""
        u = db.users
        rows = conn.execute(sa.select(u).where(u.c.id.in_(sorted(set(user_ids)))).order_by(u.c.id)
                            .with_for_update()).all()
        return {r.id: r for r in rows}

    def _idempotent(self, conn: Connection, user: User, key: str | None, route: str, body: Any,
                    now: datetime) -> tuple[Reply | None, str | None]:
        """(a replay or a 422, None) for a known key; (None, hash) to process and store; (None, None): no key."""
        if not key:
            return None, None
        t = db.idempotency
        digest = protocol.request_hash(route, body)
        stamp = protocol.iso_ms(now)
        conn.execute(t.delete().where(t.c.user_id == user.id, t.c.expires_at <= stamp))
        cached = conn.execute(sa.select(t).where(t.c.user_id == user.id, t.c.key == key)).first()
        if cached is None:
            return None, digest
        if cached.request_hash != digest:
            return envelope(422, "Idempotency key reused with a different body",
                            hint="send a new X-Idempotency-Key for a new request"), None
        return Reply(cached.status, json.loads(cached.response), {"x-idempotent-replay": "true"}), None

    def _remember(self, conn: Connection, user: User, key: str | None, digest: str | None, reply: Reply,
                  now: datetime) -> None:
        if key and digest:
            expires = now + timedelta(hours=self.limits.idempotency_hours)
            conn.execute(db.idempotency.insert().values(
                user_id=user.id, key=key, request_hash=digest, status=reply.status,
                response=json.dumps(reply.body, ensure_ascii=False), created_at=protocol.iso_ms(now),
                expires_at=protocol.iso_ms(expires)))

    def _purge_tombstones(self, conn: Connection, user: User, now: datetime) -> None:
        """Drop tombstones older than ``tombstone_days`` (at most once an hour per user and process); remember the
        highest purged change number, so a cursor older than that gets a full snapshot (``reset``)."""
        last = self._purged.get(user.id)
        if last is not None and now - last < timedelta(hours=1):
            return
        t = db.sync_rows
        cutoff = protocol.iso_ms(now - timedelta(days=self.limits.tombstone_days))
        old = (t.c.user_id == user.id, t.c.deleted_at.is_not(None), t.c.updated_at < cutoff)
        top = conn.execute(sa.select(sa.func.max(t.c.change_seq)).where(*old)).scalar()
        if top is not None:
            conn.execute(t.delete().where(*old))
            u = db.users
            conn.execute(u.update().where(u.c.id == user.id, u.c.purged_seq < top).values(purged_seq=top))
        self._purged[user.id] = now

    def _finish(self, tx: _Tx, *, token: bool = True) -> str | None:
        """Store the user's counter (and a new sync token, as Mirubato's push and batch do)."""
        u = db.users
        values: dict[str, Any] = {"change_seq": tx.seq}
        new_token = None
        if token:
            new_token = "sync_" + nanoid()
            values.update(sync_token=new_token, last_sync_time=protocol.sqlite_text(tx.now))
        tx.conn.execute(u.update().where(u.c.id == tx.user.id).values(**values))
        return new_token

    def _adoption_counts(self, conn: Connection, owner_id: int, template_ids: list[str]) -> dict[str, int]:
        if not template_ids:
            return {}
        a = db.adoptions
        rows = conn.execute(sa.select(a.c.template_id, sa.func.count()).where(
            a.c.template_owner_id == owner_id, a.c.template_id.in_(template_ids)).group_by(a.c.template_id)).all()
        return {r[0]: int(r[1]) for r in rows}

    # ------------------------------------------------------------------------------------------ pull (§2.1)

    def pull(self, user: User, body: Any) -> Reply:
        """Mirubato's full snapshot; with ``{"since": CURSOR|null, "limit": N}`` the incremental extension."""
        if isinstance(body, dict) and "since" in body:
            return self._pull_since(user, body)

        def work(conn: Connection) -> Reply:
            t = db.sync_rows
            me = conn.execute(sa.select(db.users.c.sync_token).where(db.users.c.id == user.id)).first()
            rows = conn.execute(sa.select(t.c.entity_type, t.c.entity_id, t.c.data).where(
                t.c.user_id == user.id, t.c.deleted_at.is_(None), t.c.entity_type.in_(list(ARRAY_OF_TYPE)))
                .order_by(t.c.updated_at.desc(), t.c.change_seq)).all()
            counts = self._adoption_counts(conn, user.id, [r.entity_id for r in rows if r.entity_type == "plan_template"])
            out: dict[str, Any] = {name: [] for name in protocol.PULL_ARRAYS}
            for r in rows:
                out[ARRAY_OF_TYPE[r.entity_type]].append(protocol.pull_output(
                    r.entity_type, json.loads(r.data), None, counts.get(r.entity_id, 0)))
            out["syncToken"] = (me.sync_token if me and me.sync_token else "sync_" + nanoid())
            out["timestamp"] = protocol.iso_ms(self.now())
            return Reply(200, out)

        return db.run(self.engine, work, write=False)

    @staticmethod
    def _parse_cursor(since: Any) -> tuple[int, dict[str, int]] | None:
        """(own change number, {"<planId> <userId>": change number}) of a cursor; None when malformed. A plain
        number (or null) is a cursor without shared feeds; ``v2.<base64url JSON>`` carries them."""
        if since is None:
            return 0, {}
        if isinstance(since, int) and not isinstance(since, bool) and 0 <= since < 2**62:
            return since, {}
        if not isinstance(since, str):
            return None
        if since.isdigit() and len(since) < 19:
            return int(since), {}
        if not since.startswith("v2.") or len(since) > 200_000:
            return None
        try:
            raw = base64.urlsafe_b64decode(since[3:] + "=" * (-len(since[3:]) % 4))
            doc = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("s", {}), dict):
            return None
        own = doc.get("o")

        def whole(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**62

        feeds = doc.get("s", {})
        if not whole(own) or not all(isinstance(k, str) and " " in k and whole(v) for k, v in feeds.items()):
            return None
        return own, dict(feeds)

    @staticmethod
    def _cursor(own: int, feeds: dict[str, int] | None) -> str:
        if feeds is None:
            return str(own)
        doc = json.dumps({"o": own, "s": dict(sorted(feeds.items()))}, separators=(",", ":"))
        return "v2." + base64.urlsafe_b64encode(doc.encode("utf-8")).decode("ascii").rstrip("=")

    def _pull_since(self, user: User, body: dict[str, Any]) -> Reply:
        since, limit = body.get("since"), body.get("limit", 1000)
        parsed = self._parse_cursor(since)
        if parsed is None:
            return envelope(400, INVALID_BODY, details="since: must be a cursor from an earlier pull, or null")
        after, feeds = parsed
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            return envelope(400, INVALID_BODY, details="limit: must be a whole number >= 1")
        limit = min(limit, self.limits.pull_page_max)
        types = protocol.SINCE_ARRAY_OF_TYPE

        def work(conn: Connection) -> Reply:
            u, t = db.users, db.sync_rows
            # the counter first: every row numbered up to it is committed (a user's writes hold its row lock)
            me = conn.execute(sa.select(u.c.change_seq, u.c.purged_seq, u.c.sync_token).where(u.c.id == user.id)).one()
            start, reset, known = after, False, feeds
            if after < me.purged_seq:  # tombstones after this cursor are gone: start over with a full snapshot
                start, reset, known = 0, True, {}
            rows = conn.execute(sa.select(t).where(
                t.c.user_id == user.id, t.c.change_seq > start, t.c.entity_type.in_(list(types)),
                *([t.c.deleted_at.is_(None)] if reset else [])).order_by(t.c.change_seq).limit(limit + 1)).all()
            page, has_more = rows[:limit], len(rows) > limit
            counts = self._adoption_counts(conn, user.id, [r.entity_id for r in page if r.entity_type == "plan_template"])
            out: dict[str, Any] = {name: [] for name in protocol.SINCE_PULL_ARRAYS}
            out["sharedSessions"] = []
            versions: dict[str, int] = {}
            for r in page:
                out[types[r.entity_type]].append(protocol.pull_output(
                    r.entity_type, json.loads(r.data), r.deleted_at, counts.get(r.entity_id, 0)))
                versions[f"{r.entity_type}:{r.entity_id}"] = r.version
            last = page[-1].change_seq if page else start
            plans = sharing.taking_part(conn, user.id)
            new_feeds: dict[str, int] | None = None
            if has_more:
                own = last
                if plans:
                    new_feeds = dict(known)
            else:
                own = max(last, me.change_seq)
                out["sharing"] = []
                if plans:
                    new_feeds = self._shared_feeds(conn, user, plans, known, out, versions)
            out["syncToken"] = me.sync_token or "sync_" + nanoid()
            out["timestamp"] = protocol.iso_ms(self.now())
            out["cursor"] = self._cursor(own, new_feeds)
            out["hasMore"] = has_more
            out["versions"] = versions
            if reset:
                out["reset"] = True
            return Reply(200, out)

        return db.run(self.engine, work, write=False)

    @staticmethod
    def _shared_feeds(conn: Connection, user: User, plans: list[tuple[int, str, str]], known: dict[str, int],
                      out: dict[str, Any], versions: dict[str, int]) -> dict[str, int]:
        """The last page's shared part: for every plan the caller takes part in, one feed per other participant
        (the owner's: the plan and its comments, when the caller is a member; everyone's: their sessions, as
        shared sessions). A feed new to the cursor starts with the live rows only. Returns the new feeds."""
        u, t = db.users, db.sync_rows
        new: dict[str, int] = {}
        for owner_id, plan_id, level in plans:
            everyone = sharing.participants(conn, owner_id, plan_id)
            info = {int(r.id): r for r in conn.execute(sa.select(u.c.id, u.c.name, u.c.change_seq)
                                                        .where(u.c.id.in_(everyone))).all()}
            for pid in everyone:
                if pid == user.id:
                    continue
                feed = f"{plan_id} {pid}"
                counter, seq = int(info[pid].change_seq), known.get(feed)
                kinds = ["plan_occurrence"] + (["practice_plan", "plan_comment"] if pid == owner_id else [])
                where = [t.c.user_id == pid, t.c.plan_id == plan_id, t.c.entity_type.in_(kinds),
                         t.c.change_seq <= counter]
                where.append(t.c.deleted_at.is_(None) if seq is None else t.c.change_seq > seq)
                for r in conn.execute(sa.select(t).where(*where).order_by(t.c.change_seq)).all():
                    data = json.loads(r.data)
                    if r.entity_type == "plan_occurrence":
                        if not isinstance(data, dict) or data.get("planId") != plan_id:
                            continue
                        shown = sharing.public_session(data, info[pid].name)
                        if r.deleted_at is not None:
                            shown["deletedAt"] = r.deleted_at
                        out["sharedSessions"].append(shown)
                        continue
                    if r.entity_type == "practice_plan":
                        data = sharing.for_member(data)
                    out[protocol.SINCE_ARRAY_OF_TYPE[r.entity_type]].append(
                        protocol.pull_output(r.entity_type, data, r.deleted_at, None))
                    versions[f"{r.entity_type}:{r.entity_id}"] = r.version
                new[feed] = max(seq or 0, counter)
            found = sharing.members(conn, owner_id, plan_id)
            out["sharing"].append({"planId": plan_id, "owner": info[owner_id].name, "level": level,
                                   "members": [{"user": r.name, "level": r.level} for r in found]})
        return new

    # ------------------------------------------------------------------------------------------ push (§2.2)

    def push(self, user: User, body: Any, device_id: str | None, key: str | None) -> Reply:
        try:
            changes, base = protocol.validate_push(body, self.limits.max_items)
        except TooMany as exc:
            return envelope(413, "Too many items", details=str(exc))
        except Invalid as exc:
            return envelope(400, INVALID_BODY, details=exc.detail)
        device_id = device_id[:128] if device_id else None

        def work(conn: Connection) -> Reply:
            now = self.now()
            locked = self._lock_push(conn, user, changes)
            replay, digest = self._idempotent(conn, user, key, "push", body, now)
            if replay is not None:
                return replay
            self._purge_tombstones(conn, user, now)
            tx = _Tx(conn, user, locked[user.id].change_seq, now)
            owners = _Owners(tx, locked)
            reply = self._process_push(tx, copy.deepcopy(changes), base, device_id, owners)
            for other in owners.used():
                self._finish(other, token=False)
            reply.body["syncToken"] = self._finish(tx)
            self._remember(conn, user, key, digest, reply, now)
            return reply

        return db.run(self.engine, work, write=True)

    def _push_owners(self, conn: Connection, user: User, changes: dict[str, list[dict[str, Any]]]) -> set[int]:
        """The owners of the shared plans a push writes into (their rows must be locked too)."""
        t = db.sync_rows
        found: set[int] = set()
        for item in changes.get("practice_plan", []):
            own = conn.execute(sa.select(t.c.version).where(
                t.c.user_id == user.id, t.c.entity_type == "practice_plan", t.c.entity_id == item["id"])).first()
            if own is None:
                row = sharing.membership(conn, user.id, item["id"])
                if row is not None and row.removed_at is None:
                    found.add(int(row.owner_id))
        for item in changes.get("plan_comment", []):
            acc = sharing.access(conn, user.id, item["planId"])
            if acc is not None:
                found.add(acc[0])
        return found

    def _lock_push(self, conn: Connection, user: User, changes: dict[str, list[dict[str, Any]]]) -> dict[int, Any]:
        """Lock the caller and the owners of every shared plan the push writes into (all at once, in id order; a
        membership that changed in between locks its new owner too: a crossing deadlock is retried whole)."""
        locked: dict[int, Any] = {}
        need = {user.id, *self._push_owners(conn, user, changes)}
        while need - set(locked):
            locked.update(self._lock(conn, *(need - set(locked))))
            need |= self._push_owners(conn, user, changes)
        return locked

    def _process_push(self, tx: _Tx, changes: dict[str, list[dict[str, Any]]], base: dict[str, int] | None,
                      device_id: str | None, owners: _Owners | None = None) -> Reply:
        owners = owners or _Owners(tx, {})
        conflicts: list[dict[str, Any]] = []
        stats = {"entriesProcessed": 0, "duplicatesPrevented": 0, "goalsProcessed": 0,
                 "practicePlansProcessed": 0, "planOccurrencesProcessed": 0}
        counter = {"logbook_entry": "entriesProcessed", "practice_plan": "practicePlansProcessed",
                   "plan_occurrence": "planOccurrencesProcessed", "goal": "goalsProcessed"}
        versions: dict[str, int] = {}
        written: list[tuple[str, dict[str, Any], bool, bool, int]] = []  # for live events (server/sharing.py)
        for entity_type, items in changes.items():
            if entity_type != "plan_comment":  # (comments live in the plan owner's namespace)
                tx.prefetch(entity_type, [item["id"] for item in items])
            for item in items:
                entity_id = item["id"]
                key = f"{entity_type}:{entity_id}"
                deleting = truthy(item.get("deletedAt")) and entity_type != "goal"
                if entity_type == "plan_comment":
                    self._push_comment(tx, owners, item, base, device_id, conflicts, versions)
                    continue
                target = tx
                if entity_type == "practice_plan":
                    routed = self._plan_target(tx, owners, entity_id, deleting)
                    if isinstance(routed, dict):
                        conflicts.append(routed)
                        continue
                    target = routed
                existing = target.row(entity_type, entity_id)
                current = existing.version if existing else 0
                if self._stale(existing, item, base, key):
                    conflicts.append({"entityId": entity_id, "entityType": entity_type, "reason": "stale",
                                      "remoteVersion": current})
                    continue
                if deleting:
                    version = target.delete(existing, item["deletedAt"])
                    if version is not None:
                        versions[key] = version
                        if existing is not None and version != existing.version and isinstance(existing.data, dict):
                            written.append((entity_type, existing.data, False, True, target.seq))
                    if entity_type in counter:
                        stats[counter[entity_type]] += 1
                    continue
                if entity_type == "plan_template":
                    problem = self._publish(tx, item, existing)
                    if problem:
                        conflicts.append({"entityId": entity_id, "entityType": entity_type, "reason": problem,
                                          "remoteVersion": current})
                        continue
                protocol.rewrite(entity_type, item, target.user.name)
                if entity_type in ("practice_plan", "plan_template"):
                    problem = protocol.schedule_problem(item)
                    if problem:  # per-item conflict, not counted (file 09)
                        conflicts.append({"entityId": entity_id, "entityType": entity_type, "reason": problem})
                        continue
                if existing is not None and isinstance(existing.data, dict):
                    protocol.carry_unknown(entity_type, existing.data, item)
                if entity_type == "practice_plan":
                    item = self._server_plan_fields(target, item, existing, member=target is not tx)
                seq = target.seq
                versions[key] = target.write(entity_type, entity_id, item, device_id, existing=existing)
                if target.seq != seq:
                    written.append((entity_type, item, existing is None or existing.deleted_at is not None, False,
                                    target.seq))
                if entity_type in counter:
                    stats[counter[entity_type]] += 1
        self._announce(tx, written)
        return Reply(200, {"success": True, "syncToken": None, "conflicts": conflicts, "stats": stats,
                           "versions": versions})

    @staticmethod
    def _forbidden(entity_type: str, entity_id: str, shown: _Row | None, *, member: bool = True) -> dict[str, Any]:
        """A refused item: the stored item as pull would give it to the caller (None when the caller may not see
        it at all)."""
        remote = None
        if shown is not None:
            remote = protocol.pull_output(entity_type, shown.data, shown.deleted_at, None)
            if entity_type == "practice_plan" and member:
                remote = sharing.for_member(remote)
        return {"entityId": entity_id, "entityType": entity_type, "reason": "forbidden",
                "remoteVersion": shown.version if shown is not None else 0, "remote": remote}

    def _plan_target(self, tx: _Tx, owners: _Owners, plan_id: str, deleting: bool) -> _Tx | dict[str, Any]:
        """Where a pushed plan goes: the caller's own namespace (its own plan, or a new one), the owner's (an
        edit member's change of a shared plan), or nowhere (a ``forbidden`` conflict)."""
        if tx.row("practice_plan", plan_id) is not None:
            return tx
        row = sharing.membership(tx.conn, tx.user.id, plan_id)
        if row is None:
            return tx
        owner = owners.get(int(row.owner_id)) if row.removed_at is None else None
        if owner is None:
            return self._forbidden("practice_plan", plan_id, None)
        stored = owner.row("practice_plan", plan_id)
        if stored is None:
            return self._forbidden("practice_plan", plan_id, None)
        if row.level != "edit" or deleting or stored.deleted_at is not None:
            return self._forbidden("practice_plan", plan_id, stored)
        return owner

    @staticmethod
    def _server_plan_fields(target: _Tx, item: dict[str, Any], existing: _Row | None, *, member: bool) -> dict[str, Any]:
        """``metadata.sharing`` is the server's; a member's change keeps the owner's ``metadata.privateNotes``
        (a member never has them)."""
        if member:
            stored = existing.data.get("metadata") if existing is not None and isinstance(existing.data, dict) else None
            notes = stored.get("privateNotes") if isinstance(stored, dict) else None
            metadata = item.get("metadata") if isinstance(item.get("metadata"), dict) else None
            if metadata is not None:
                metadata.pop("privateNotes", None)
            if notes is not None:
                item["metadata"] = {**(metadata or {}), "privateNotes": notes}
        return sharing.with_sharing(item, sharing.sharing_value(target.conn, target.user.id, item["id"]))

    def _push_comment(self, tx: _Tx, owners: _Owners, item: dict[str, Any], base: dict[str, int] | None,
                      device_id: str | None, conflicts: list[dict[str, Any]], versions: dict[str, int]) -> None:
        """A comment: stored in the plan owner's namespace; written by the owner or a member of level comment or
        above; changed only by its author, deleted by its author or the owner; ``author`` is the server's."""
        user, conn = tx.user, tx.conn
        comment_id, plan_id = item["id"], item["planId"]
        key = f"plan_comment:{comment_id}"
        deleting = truthy(item.get("deletedAt"))
        acc = sharing.access(conn, user.id, plan_id)
        target = None
        if acc is not None:
            target = tx if acc[0] == user.id else owners.get(acc[0])
        if acc is None or target is None:
            conflicts.append(self._forbidden("plan_comment", comment_id, None))
            return
        owner_id, level = acc
        existing = target.row("plan_comment", comment_id)
        if existing is not None and (not isinstance(existing.data, dict) or existing.data.get("planId") != plan_id):
            conflicts.append(self._forbidden("plan_comment", comment_id, None))  # another plan's: not revealed
            return
        author = existing.data.get("author") if existing is not None else None
        allowed = sharing.at_least(level, "comment") and (
            existing is None or author == user.name or (deleting and level == "owner"))
        if not allowed:
            conflicts.append(self._forbidden("plan_comment", comment_id, existing))
            return
        if self._stale(existing, item, base, key):
            conflicts.append({"entityId": comment_id, "entityType": "plan_comment", "reason": "stale",
                              "remoteVersion": existing.version if existing else 0})
            return
        everyone = sharing.participants(conn, owner_id, plan_id)
        if deleting:
            version = target.delete(existing, item["deletedAt"])
            if version is not None:
                versions[key] = version
                if existing is not None and version != existing.version:
                    shown = protocol.pull_output("plan_comment", existing.data, str(item["deletedAt"]), None)
                    live.publish(conn, everyone, {"type": "COMMENT_DELETED", "comment": shown}, tx.now)
            return
        item["author"] = user.name
        if existing is not None and isinstance(existing.data, dict):
            protocol.carry_unknown("plan_comment", existing.data, item)
        seq = target.seq
        versions[key] = target.write("plan_comment", comment_id, item, device_id, existing=existing)
        if target.seq != seq:
            kind = "COMMENT_ADDED" if existing is None or existing.deleted_at is not None else "COMMENT_UPDATED"
            live.publish(conn, everyone, {"type": kind, "comment": item}, tx.now)

    @staticmethod
    def _announce(tx: _Tx, written: list[tuple[str, dict[str, Any], bool, bool, int]]) -> None:
        """Live events of a push, in its transaction: to the pusher's devices and every participant of each plan
        (another participant's session without its private fields; a plan without the owner's private notes
        for everyone but its owner)."""
        for event in sharing.push_events(written):
            plan = event.get("plan") or {}
            plan_id = event.get("planId") or plan.get("id") or (event.get("occurrence") or {}).get("planId")
            owner = sharing.owner_of(tx.conn, tx.user.id, plan_id) if isinstance(plan_id, str) else tx.user.id
            everyone = sharing.participants(tx.conn, owner, plan_id) if isinstance(plan_id, str) else [tx.user.id]
            mine = dict(event)
            if "plan" in mine and owner != tx.user.id:
                mine["plan"] = sharing.for_member(mine["plan"])
            live.publish(tx.conn, [tx.user.id], mine, tx.now)
            others = [u for u in everyone if u != tx.user.id]
            if not others:
                continue
            shown = dict(event)
            if "occurrence" in shown:
                shown["occurrence"] = sharing.public_session(shown["occurrence"], tx.user.name)
                shown["member"] = tx.user.name
            if "occurrences" in shown:
                shown["occurrences"] = [sharing.public_session(o, tx.user.name) for o in shown["occurrences"]]
            if owner in others:
                live.publish(tx.conn, [owner], shown, tx.now)
            rest = [u for u in others if u != owner]
            if rest:
                if "plan" in shown:
                    shown = {**shown, "plan": sharing.for_member(shown["plan"])}
                live.publish(tx.conn, rest, shown, tx.now)

    @staticmethod
    def _stale(existing: _Row | None, item: dict[str, Any], base: dict[str, int] | None, key: str) -> bool:
        """Conditional push: with a base version, any other stored version is stale; without one, a snapshot older
        than the stored one (its ``updatedAt``, or for a tombstone its deletion) is stale, never an overwrite."""
        current = existing.version if existing else 0
        if base is not None and key in base:
            return base[key] != current
        if existing is None:
            return False
        stored = dict(existing.data) if isinstance(existing.data, dict) else {}
        if existing.deleted_at is not None:
            stored["deletedAt"] = existing.deleted_at
        mine, theirs = protocol.item_time(item), protocol.item_time(stored)
        return mine is not None and theirs is not None and mine < theirs

    def _publish(self, tx: _Tx, item: dict[str, Any], existing: _Row | None) -> str | None:
        """Publishing is the server's: a learner may not make a template public or published ("forbidden");
        for a tutor or admin ``publishedAt`` is stamped by the server (kept while ``templateVersion`` stays)."""
        wants = truthy(item.get("publishedAt"))
        if (wants or item.get("visibility") == "public") and tx.user.role not in PUBLISHERS:
            return "forbidden"
        stored = existing.data if existing is not None and existing.deleted_at is None and \
            isinstance(existing.data, dict) else {}
        if wants:
            same = stored.get("templateVersion") == item.get("templateVersion")
            item["publishedAt"] = stored["publishedAt"] if same and truthy(stored.get("publishedAt")) else tx.stamp
        else:
            item.pop("publishedAt", None)
        return None

    # ------------------------------------------------------------------------------------------ batch (§2.3)

    def batch(self, user: User, body: Any) -> Reply:
        try:
            entities = protocol.validate_batch(body, self.limits.max_items)
        except TooMany as exc:
            return envelope(413, "Too many items", details=str(exc))
        except Invalid as exc:
            return envelope(400, INVALID_BODY, details=exc.detail)

        def work(conn: Connection) -> Reply:
            now = self.now()
            me = self._lock(conn, user.id)[user.id]
            tx = _Tx(conn, user, me.change_seq, now)
            uploaded, conflicts, mentioned = 0, [], set()
            for ent in entities:
                etype, eid = ent["type"], ent["id"]
                mentioned.add((etype, eid))
                data, checksum = copy.deepcopy(ent["data"]), ent["checksum"]
                stored = tx.row(etype, eid)
                live = stored if stored is not None and stored.deleted_at is None else None
                if isinstance(data, dict):
                    if etype == "plan_template" and self._publish(tx, data, live):
                        conflicts.append({"entityId": eid, "localVersion": ent["version"],
                                          "remoteVersion": live.version if live else 0, "reason": "forbidden"})
                        continue
                    before = copy.deepcopy(ent["data"])
                    protocol.own_fields(etype, data, user.name)
                    if etype == "practice_plan":  # metadata.sharing is the server's, here as in push
                        data = sharing.with_sharing(data, sharing.sharing_value(conn, user.id, eid))
                    if data != before:  # the server changed what it stores: its checksum, not the client's
                        checksum = protocol.checksum(data)
                if live is None:
                    tx.write(etype, eid, data, None, existing=stored, checksum=checksum, version=1)
                    uploaded += 1
                elif live.checksum != ent["checksum"]:
                    if ent["version"] >= live.version:
                        tx.write(etype, eid, data, None, existing=stored, checksum=checksum)
                        uploaded += 1
                    else:
                        conflicts.append({"entityId": eid, "localVersion": ent["version"],
                                          "remoteVersion": live.version})
            t = db.sync_rows
            live_rows = conn.execute(sa.select(t.c.entity_type, t.c.entity_id).where(
                t.c.user_id == user.id, t.c.deleted_at.is_(None))).all()
            downloaded = sum(1 for r in live_rows if (r.entity_type, r.entity_id) not in mentioned)
            token = self._finish(tx)
            return Reply(200, {"uploaded": uploaded, "downloaded": downloaded, "conflicts": conflicts,
                               "newSyncToken": token})

        return db.run(self.engine, work, write=True)

    # ------------------------------------------------------------------------------------------ status (§2.4)

    def status(self, user: User) -> Reply:
        def work(conn: Connection) -> Reply:
            u, t = db.users, db.sync_rows
            me = conn.execute(sa.select(u.c.sync_token, u.c.last_sync_time).where(u.c.id == user.id)).one()
            count = conn.execute(sa.select(sa.func.count()).select_from(t).where(
                t.c.user_id == user.id, t.c.deleted_at.is_(None))).scalar()
            return Reply(200, {
                "lastSyncTime": me.last_sync_time, "syncToken": me.sync_token, "pendingChanges": 0,
                "deviceCount": 1, "entityCount": int(count or 0),
                "server": "practiceplan", "capabilities": list(protocol.CAPABILITIES),
                "user": user.name, "role": user.role,
                "limits": {"maxBodyBytes": self.limits.max_body_bytes, "maxItems": self.limits.max_items,
                           "pullPageMax": self.limits.pull_page_max, "ratePerMinute": self.limits.rate_per_minute,
                           "tombstoneDays": self.limits.tombstone_days},
            })

        return db.run(self.engine, work, write=False)

    # ------------------------------------------------------------------------------------------ adopt (§2.5)

    def adopt(self, user: User, body: Any, device_id: str | None, key: str | None) -> Reply:
        try:
            req = protocol.validate_adopt(body)
        except Invalid as exc:
            return envelope(400, INVALID_BODY, details=exc.detail)
        template_id = req["templateId"]
        device_id = device_id[:128] if device_id else None

        def work(conn: Connection) -> Reply:
            now = self.now()
            locked = self._lock(conn, user.id)
            replay, digest = self._idempotent(conn, user, key, "adopt", body, now)
            if replay is not None:
                return replay
            source = self._visible_template(conn, user, template_id)
            if source is None:
                return Reply(404, {"error": "Template not found"})
            owner_id, owner_name, tpl = source
            if owner_id != user.id:  # (a deadlock with a crossing adoption is detected and the request retried)
                locked.update(self._lock(conn, owner_id))
            problem = self._unadoptable(tpl)
            if problem:
                return envelope(422, "Template cannot be adopted", details=problem)
            tx = _Tx(conn, user, locked[user.id].change_seq, now)
            try:
                reply = self._adopt(tx, req, tpl, owner_id)
            except ValueError as exc:
                return envelope(422, "Template cannot be adopted", details=str(exc))
            conn.execute(db.adoptions.insert().values(template_owner_id=owner_id, template_id=template_id,
                                                      adopter_id=user.id, plan_id=reply.body["plan"]["id"],
                                                      adopted_at=tx.stamp))
            self._finish(tx, token=False)
            # the author's next incremental pull sees the new count: the template row takes a new change number
            owner = tx if owner_id == user.id else _Tx(conn, User(owner_id, owner_name, ""),
                                                       locked[owner_id].change_seq, now)
            t = db.sync_rows
            conn.execute(t.update().where(t.c.user_id == owner_id, t.c.entity_type == "plan_template",
                                          t.c.entity_id == template_id).values(change_seq=owner.next_seq()))
            self._finish(owner, token=False)
            self._remember(conn, user, key, digest, reply, now)
            return reply

        return db.run(self.engine, work, write=True)

    @staticmethod
    def _visible_rows(conn: Connection, user: User, template_id: str | None = None) -> list[tuple[int, str, dict[str, Any]]]:
        """(owner id, owner name, data) of every live, published template ``user`` may see: their own, or a
        public one by a tutor or admin whose account is active; the caller's own first, then by owner. The one
        visibility rule of adopt and the gallery."""
        t, u = db.sync_rows, db.users
        where = [t.c.entity_type == "plan_template", t.c.deleted_at.is_(None),
                 sa.or_(t.c.user_id == user.id, sa.and_(u.c.role.in_(PUBLISHERS), u.c.revoked_at.is_(None)))]
        if template_id is not None:
            where.append(t.c.entity_id == template_id)
        rows = conn.execute(sa.select(t.c.user_id, t.c.data, u.c.name).join(u, u.c.id == t.c.user_id)
                            .where(*where)).all()
        out = []
        for r in sorted(rows, key=lambda r: (r.user_id != user.id, r.user_id)):
            data = json.loads(r.data)
            if not isinstance(data, dict) or not truthy(data.get("publishedAt")):
                continue
            if r.user_id == user.id or data.get("visibility") == "public":
                out.append((int(r.user_id), r.name, data))
        return out

    def _visible_template(self, conn: Connection, user: User, template_id: str) -> tuple[int, str, dict[str, Any]] | None:
        """The live, published template with this id that ``user`` may see (the caller's own first). Anything
        else is "not found" (its existence is not revealed)."""
        found = self._visible_rows(conn, user, template_id)
        return found[0] if found else None

    # ------------------------------------------------------------------------------------------ gallery (ours)

    def gallery(self, user: User) -> Reply:
        """``GET /api/templates``: every template the caller could adopt (the same rule as adopt), each as pull
        answers it with the ``adoptionCount`` derived from the adoptions table; most adopted first."""

        def work(conn: Connection) -> Reply:
            visible = self._visible_rows(conn, user)
            a = db.adoptions
            counts: dict[tuple[int, str], int] = {}
            if visible:
                rows = conn.execute(sa.select(a.c.template_owner_id, a.c.template_id, sa.func.count())
                                    .where(a.c.template_id.in_(sorted({d["id"] for _o, _n, d in visible
                                                                        if isinstance(d.get("id"), str)})))
                                    .group_by(a.c.template_owner_id, a.c.template_id)).all()
                counts = {(int(r[0]), r[1]): int(r[2]) for r in rows}
            items = []
            for owner_id, _name, data in visible:
                item = protocol.pull_output("plan_template", data, None, counts.get((owner_id, data.get("id")), 0))
                items.append(item)
            items.sort(key=lambda i: (-i["adoptionCount"], str(i.get("title") or "").lower(), str(i.get("id"))))
            return Reply(200, {"templates": items, "count": len(items), "timestamp": protocol.iso_ms(self.now())})

        return db.run(self.engine, work, write=False)

    @staticmethod
    def _unadoptable(tpl: dict[str, Any]) -> str | None:
        for name in ("title", "schedule", "createdAt", "updatedAt"):
            if not tpl.get(name):
                return f"the template has no {name}"
        if not isinstance(tpl.get("schedule"), dict) or tpl["schedule"].get("kind") not in ("single", "recurring"):
            return "the template's schedule has no kind"
        return None

    def _adopt(self, tx: _Tx, req: dict[str, Any], tpl: dict[str, Any], owner_id: int) -> Reply:
        template_id = req["templateId"]
        custom = req.get("customization") or {}
        cschedule = custom.get("schedule") or {}
        tschedule = tpl["schedule"]
        now = tx.stamp
        plan_id = "plan_" + nanoid()
        plan: dict[str, Any] = {
            "id": plan_id, "user_id": tx.user.name,
            "title": custom.get("title") or f"{tpl['title']} (Copy)",
            "description": tpl.get("description"),
            "type": tpl.get("type") or "custom",
            "focusAreas": protocol.dedupe(list(tpl.get("focusAreas") or []) + list(custom.get("focusAreas") or [])),
            "techniques": tpl.get("techniques") or [],
            "pieceRefs": tpl.get("pieceRefs") or [],
            "schedule": {**tschedule, **cschedule},
            "visibility": "private", "status": "active", "ownerId": tx.user.name,
            "templateVersion": tpl.get("templateVersion") or 1,
            "sourceTemplateId": template_id,
            "tags": protocol.dedupe(list(tpl.get("tags") or []) + list(custom.get("tags") or [])),
            "metadata": {**(tpl.get("metadata") if isinstance(tpl.get("metadata"), dict) else {}),
                         "adoptedFrom": template_id, "adoptedAt": now},
            "createdAt": now, "updatedAt": now, "archivedAt": None, "deletedAt": None,
        }
        if "description" not in tpl:
            del plan["description"]
        start = protocol.adopt_start(cschedule.get("startDate") or tschedule.get("startDate"),
                                     cschedule.get("timeOfDay") or tschedule.get("timeOfDay"), tx.now)
        duration = cschedule.get("durationMinutes") or tschedule.get("durationMinutes") or 60
        occurrence: dict[str, Any] = {
            "id": "plan_occ_" + nanoid(), "planId": plan_id, "user_id": tx.user.name,
            "scheduledStart": protocol.iso_ms(start),
            "scheduledEnd": protocol.iso_ms(start + timedelta(minutes=duration)),
            "flexWindow": None if tschedule.get("flexibility") == "fixed" else "same-day",
            "recurrenceKey": tschedule.get("rule") if tschedule.get("kind") == "recurring" else None,
            "segments": self._segments(tx, tpl, owner_id),
            "targets": {}, "reflectionPrompts": [], "status": "scheduled", "logEntryId": None, "notes": None,
            "metrics": {}, "createdAt": now, "updatedAt": now, "deletedAt": None,
        }
        if occurrence["recurrenceKey"] is None and tschedule.get("kind") == "recurring":
            del occurrence["recurrenceKey"]
        tx.write("practice_plan", plan_id, plan, None, existing=None)
        tx.write("plan_occurrence", occurrence["id"], occurrence, None, existing=None)
        return Reply(200, {"success": True, "plan": plan, "occurrences": [occurrence]})

    def _segments(self, tx: _Tx, tpl: dict[str, Any], owner_id: int) -> list[dict[str, Any]]:
        """§2.5 step 5, but only from the template author's own sessions (never another user's: §7.4)."""
        source_plan = tpl.get("sourcePlanId")
        if source_plan:
            t = db.sync_rows
            rows = tx.conn.execute(sa.select(t.c.data).where(
                t.c.user_id == owner_id, t.c.entity_type == "plan_occurrence", t.c.deleted_at.is_(None))
                .order_by(t.c.updated_at.desc(), t.c.change_seq)).all()
            found = 0
            for r in rows:
                data = json.loads(r.data)
                if isinstance(data, dict) and data.get("planId") == source_plan:
                    found += 1
                    segs = data.get("segments")
                    if isinstance(segs, list) and segs:
                        return protocol.normalize_segments(segs)
                    if found >= 5:
                        break
        metadata = tpl.get("metadata") if isinstance(tpl.get("metadata"), dict) else {}
        preview = metadata.get("preview")
        if isinstance(preview, dict) and isinstance(preview.get("segments"), list):
            return protocol.normalize_segments(preview["segments"])
        return []

    # ------------------------------------------------------------------------------------------ shared plans (ours)

    NO_PLAN = {"error": "Plan not found"}
    NOT_OWNER = {"error": "Only the plan's owner can do this"}
    NO_USER = {"error": "User not found"}
    NO_INVITE = {"error": "Invite not found or already used"}
    INVITE_DEFAULT_S = 7 * 24 * 3600
    INVITE_MAX_S = 90 * 24 * 3600
    INVITE_MIN_S = 60

    def _locked_access(self, conn: Connection, user: User, plan_id: str,
                       *also: int) -> tuple[dict[int, Any], tuple[int, str] | None]:
        """Lock the caller, the plan's owner (and ``also``) in id order, then read the caller's access again
        (an ownership that moved in between locks the new owner too)."""
        locked: dict[int, Any] = {}
        while True:
            acc = sharing.access(conn, user.id, plan_id)
            need = {user.id, *also, *([acc[0]] if acc else [])}
            if not need - set(locked):
                return locked, acc
            locked.update(self._lock(conn, *(need - set(locked))))

    @staticmethod
    def _user_by_name(conn: Connection, name: Any) -> Any:
        u = db.users
        if not isinstance(name, str) or not name:
            return None
        return conn.execute(sa.select(u.c.id, u.c.name, u.c.role).where(u.c.name == name,
                                                                        u.c.revoked_at.is_(None))).first()

    @staticmethod
    def _members_body(conn: Connection, owner_id: int, plan_id: str, level: str) -> dict[str, Any]:
        return {"planId": plan_id, "owner": sharing.user_name(conn, owner_id), "level": level,
                "members": [{"user": r.name, "level": r.level, "addedAt": r.added_at}
                            for r in sharing.members(conn, owner_id, plan_id)]}

    def _owner_tx(self, conn: Connection, locked: dict[int, Any], owner_id: int, now: datetime) -> _Tx:
        r = locked[owner_id]
        return _Tx(conn, User(int(r.id), r.name, r.role), r.change_seq, now)

    def _rewrite_sharing(self, tx: _Tx, plan_id: str) -> None:
        """The owner's plan row with the server's ``metadata.sharing`` (a new version and change number, so every
        device of every participant pulls it), then the owner's counter."""
        row = tx.row("practice_plan", plan_id)
        if row is not None and row.deleted_at is None and isinstance(row.data, dict):
            data = sharing.with_sharing(row.data, sharing.sharing_value(tx.conn, tx.user.id, plan_id))
            tx.write("practice_plan", plan_id, data, None, existing=row)
        self._finish(tx, token=False)

    @staticmethod
    def _set_member(conn: Connection, owner_id: int, plan_id: str, member_id: int, level: str, stamp: str,
                    *, keep_higher: bool = False) -> str | None:
        """Add or change a membership; returns the event type (``MEMBER_ADDED``/``MEMBER_LEVEL_CHANGED``) or
        None when nothing changed."""
        m = db.plan_members
        where = (m.c.owner_id == owner_id, m.c.plan_id == plan_id, m.c.member_id == member_id)
        row = conn.execute(sa.select(m).where(*where)).first()
        if row is None:
            conn.execute(m.insert().values(owner_id=owner_id, plan_id=plan_id, member_id=member_id, level=level,
                                           added_at=stamp, removed_at=None))
            return "MEMBER_ADDED"
        if row.removed_at is not None:
            conn.execute(m.update().where(*where).values(level=level, added_at=stamp, removed_at=None))
            return "MEMBER_ADDED"
        if row.level == level or (keep_higher and sharing.RANK[row.level] > sharing.RANK[level]):
            return None
        conn.execute(m.update().where(*where).values(level=level))
        return "MEMBER_LEVEL_CHANGED"

    def members(self, user: User, plan_id: str) -> Reply:
        """``GET /api/plans/{planId}/members``: the owner, the caller's level and the active members."""

        def work(conn: Connection) -> Reply:
            acc = sharing.access(conn, user.id, plan_id)
            if acc is None:
                return Reply(404, dict(self.NO_PLAN))
            return Reply(200, self._members_body(conn, acc[0], plan_id, acc[1]))

        return db.run(self.engine, work, write=False)

    def share(self, user: User, plan_id: str, body: Any) -> Reply:
        """``POST /api/plans/{planId}/members`` ``{"user", "level"}``: the owner adds a member or changes its
        level."""
        if not isinstance(body, dict) or not isinstance(body.get("user"), str) or body.get("level") not in db.LEVELS:
            return envelope(400, INVALID_BODY, details="needs 'user' (a name) and 'level' (view, comment or edit)")
        name, level = body["user"], body["level"]

        def work(conn: Connection) -> Reply:
            now = self.now()
            locked, acc = self._locked_access(conn, user, plan_id)
            if acc is None:
                return Reply(404, dict(self.NO_PLAN))
            if acc[1] != "owner":
                return Reply(403, dict(self.NOT_OWNER))
            target = self._user_by_name(conn, name)
            if target is None:
                return Reply(404, dict(self.NO_USER))
            if target.id == user.id:
                return envelope(400, "You own this plan", hint="share it with another user")
            tx = self._owner_tx(conn, locked, user.id, now)
            kind = self._set_member(conn, user.id, plan_id, int(target.id), level, tx.stamp)
            if kind is not None:
                live.publish(conn, sharing.participants(conn, user.id, plan_id),
                             {"type": kind, "planId": plan_id, "user": target.name, "level": level}, now)
                self._rewrite_sharing(tx, plan_id)
            return Reply(200, self._members_body(conn, user.id, plan_id, "owner"))

        return db.run(self.engine, work, write=True)

    def unshare(self, user: User, plan_id: str, name: str) -> Reply:
        """``DELETE /api/plans/{planId}/members/{user}``: the owner removes a member, or a member leaves."""

        def work(conn: Connection) -> Reply:
            now = self.now()
            locked, acc = self._locked_access(conn, user, plan_id)
            if acc is None:
                return Reply(404, dict(self.NO_PLAN))
            owner_id, level = acc
            target = self._user_by_name(conn, name)
            if level != "owner" and (target is None or target.id != user.id):
                return Reply(403, dict(self.NOT_OWNER))
            if target is None:
                return Reply(404, dict(self.NO_USER))
            if target.id == owner_id:
                return envelope(400, "The owner cannot leave the plan", hint="transfer it to a member first")
            m = db.plan_members
            where = (m.c.owner_id == owner_id, m.c.plan_id == plan_id, m.c.member_id == target.id)
            row = conn.execute(sa.select(m).where(*where, m.c.removed_at.is_(None))).first()
            if row is None:
                return Reply(404, {"error": "Member not found"})
            live.publish(conn, sharing.participants(conn, owner_id, plan_id),
                         {"type": "MEMBER_REMOVED", "planId": plan_id, "user": target.name, "level": row.level}, now)
            live.publish(conn, [int(target.id)], {"type": "ACCESS_REVOKED", "planId": plan_id}, now)
            tx = self._owner_tx(conn, locked, owner_id, now)
            conn.execute(m.update().where(*where).values(removed_at=tx.stamp))
            self._rewrite_sharing(tx, plan_id)
            if level != "owner":
                return Reply(200, {"planId": plan_id, "left": True})
            return Reply(200, self._members_body(conn, owner_id, plan_id, "owner"))

        return db.run(self.engine, work, write=True)

    def invite(self, user: User, plan_id: str, body: Any) -> Reply:
        """``POST /api/plans/{planId}/invites`` ``{"level", "expiresInSeconds"?}``: a single-use invite token
        (shown once; only its hash is stored)."""
        if not isinstance(body, dict) or body.get("level") not in db.LEVELS:
            return envelope(400, INVALID_BODY, details="level: must be view, comment or edit")
        seconds = body.get("expiresInSeconds", self.INVITE_DEFAULT_S)
        if isinstance(seconds, bool) or not isinstance(seconds, int) or \
                not self.INVITE_MIN_S <= seconds <= self.INVITE_MAX_S:
            return envelope(400, INVALID_BODY,
                            details=f"expiresInSeconds: a whole number from {self.INVITE_MIN_S} to {self.INVITE_MAX_S}")
        token = "ppi_" + secrets.token_urlsafe(24)

        def work(conn: Connection) -> Reply:
            now = self.now()
            _locked, acc = self._locked_access(conn, user, plan_id)
            if acc is None:
                return Reply(404, dict(self.NO_PLAN))
            if acc[1] != "owner":
                return Reply(403, dict(self.NOT_OWNER))
            expires = protocol.iso_ms(now + timedelta(seconds=seconds))
            conn.execute(db.invites.insert().values(token_hash=users.hash_token(token), owner_id=user.id,
                                                    plan_id=plan_id, level=body["level"],
                                                    created_at=protocol.iso_ms(now), expires_at=expires))
            return Reply(200, {"token": token, "planId": plan_id, "level": body["level"], "expiresAt": expires})

        return db.run(self.engine, work, write=True)

    def accept(self, user: User, body: Any) -> Reply:
        """``POST /api/invites/accept`` ``{"token"}``: use an invite (once) and become a member."""
        if not isinstance(body, dict) or not isinstance(body.get("token"), str) or not body["token"]:
            return envelope(400, INVALID_BODY, details="token: the invite token")
        digest = users.hash_token(body["token"])

        def work(conn: Connection) -> Reply:
            now = self.now()
            i = db.invites
            found = conn.execute(sa.select(i.c.owner_id).where(i.c.token_hash == digest)).first()
            if found is None:
                return Reply(404, dict(self.NO_INVITE))
            locked = self._lock(conn, user.id, int(found.owner_id))
            inv = conn.execute(sa.select(i).where(i.c.token_hash == digest)).first()
            stamp = protocol.iso_ms(now)
            if inv is None or inv.used_at is not None or inv.expires_at <= stamp or \
                    int(inv.owner_id) not in locked or not sharing.own_plan_live(conn, int(inv.owner_id), inv.plan_id):
                return Reply(404, dict(self.NO_INVITE))
            owner_id, plan_id = int(inv.owner_id), inv.plan_id
            if owner_id == user.id:
                return envelope(400, "You own this plan", hint="send the invite to someone else")
            conn.execute(i.update().where(i.c.token_hash == digest).values(used_at=stamp, used_by=user.id))
            kind = self._set_member(conn, owner_id, plan_id, user.id, inv.level, stamp, keep_higher=True)
            m = db.plan_members
            level = conn.execute(sa.select(m.c.level).where(m.c.owner_id == owner_id, m.c.plan_id == plan_id,
                                                            m.c.member_id == user.id)).scalar_one()
            if kind is not None:
                live.publish(conn, sharing.participants(conn, owner_id, plan_id),
                             {"type": kind, "planId": plan_id, "user": user.name, "level": level}, now)
                self._rewrite_sharing(self._owner_tx(conn, locked, owner_id, now), plan_id)
            return Reply(200, {"planId": plan_id, "owner": locked[owner_id].name, "level": level})

        return db.run(self.engine, work, write=True)

    def transfer(self, user: User, plan_id: str, body: Any) -> Reply:
        """``POST /api/plans/{planId}/transfer`` ``{"user"}``: the plan and its comments move to a member's
        namespace; the old owner stays as an edit member."""
        if not isinstance(body, dict) or not isinstance(body.get("user"), str) or not body["user"]:
            return envelope(400, INVALID_BODY, details="user: the new owner's name")

        def work(conn: Connection) -> Reply:
            now = self.now()
            target = self._user_by_name(conn, body["user"])
            locked, acc = self._locked_access(conn, user, plan_id, *([int(target.id)] if target else []))
            if acc is None:
                return Reply(404, dict(self.NO_PLAN))
            if acc[1] != "owner":
                return Reply(403, dict(self.NOT_OWNER))
            if target is None:
                return Reply(404, dict(self.NO_USER))
            m = db.plan_members
            new_id = int(target.id)
            if not any(int(r.member_id) == new_id for r in sharing.members(conn, user.id, plan_id)):
                return envelope(400, "The new owner must be a member of the plan",
                                hint="share the plan with them first")
            old, new = self._owner_tx(conn, locked, user.id, now), self._owner_tx(conn, locked, new_id, now)
            conn.execute(m.delete().where(m.c.owner_id == user.id, m.c.plan_id == plan_id, m.c.member_id == new_id))
            conn.execute(m.delete().where(m.c.owner_id == new_id, m.c.plan_id == plan_id))  # none expected
            conn.execute(m.update().where(m.c.owner_id == user.id, m.c.plan_id == plan_id).values(owner_id=new_id))
            # the old owner's sessions counted from the start: as a member, it joined when the plan was made
            t = db.sync_rows
            made = conn.execute(sa.select(t.c.created_at).where(
                t.c.user_id == user.id, t.c.entity_type == "practice_plan", t.c.entity_id == plan_id)).scalar()
            self._set_member(conn, new_id, plan_id, user.id, "edit", made or old.stamp)
            i = db.invites
            conn.execute(i.update().where(i.c.owner_id == user.id, i.c.plan_id == plan_id, i.c.used_at.is_(None))
                         .values(owner_id=new_id))
            self._move_rows(old, new, plan_id)
            self._finish(old, token=False)
            self._finish(new, token=False)
            live.publish(conn, sharing.participants(conn, new_id, plan_id),
                         {"type": "OWNER_CHANGED", "planId": plan_id, "owner": target.name}, now)
            return Reply(200, self._members_body(conn, new_id, plan_id, "edit"))

        return db.run(self.engine, work, write=True)

    @staticmethod
    def _move_rows(old: _Tx, new: _Tx, plan_id: str) -> None:
        """Hard move of the plan row and its comment rows from ``old``'s namespace to ``new``'s: each keeps its
        version + 1 (above any row of the same key the new owner had) and takes the new owner's next change
        number; the plan is rewritten for its new owner (``user_id``, ``ownerId``, ``metadata.sharing``)."""
        t, conn = db.sync_rows, old.conn
        kinds = ("practice_plan", "plan_comment")
        rows = conn.execute(sa.select(t).where(t.c.user_id == old.user.id, t.c.plan_id == plan_id,
                                               t.c.entity_type.in_(kinds)).order_by(t.c.change_seq)).all()
        value = sharing.sharing_value(conn, new.user.id, plan_id)
        for r in rows:
            if r.entity_type == "practice_plan" and r.entity_id != plan_id:
                continue
            data = json.loads(r.data)
            text, checksum = r.data, r.checksum
            if r.entity_type == "practice_plan" and isinstance(data, dict):
                data["user_id"] = new.user.name
                if "ownerId" in data:
                    data["ownerId"] = new.user.name
                data = sharing.with_sharing(data, value)
                text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
                checksum = protocol.checksum(data)
            key = (t.c.user_id == new.user.id, t.c.entity_type == r.entity_type, t.c.entity_id == r.entity_id)
            there = conn.execute(sa.select(t.c.version).where(*key)).scalar()
            conn.execute(t.delete().where(*key))
            conn.execute(t.delete().where(t.c.user_id == old.user.id, t.c.entity_type == r.entity_type,
                                          t.c.entity_id == r.entity_id))
            conn.execute(t.insert().values(
                user_id=new.user.id, entity_type=r.entity_type, entity_id=r.entity_id, data=text, checksum=checksum,
                version=max(r.version, there or 0) + 1, change_seq=new.next_seq(), deleted_at=r.deleted_at,
                device_id=None, created_at=r.created_at, updated_at=new.stamp, plan_id=r.plan_id))
