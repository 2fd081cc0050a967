"""What each endpoint does, against the database (../shared/reference/sync-protocol.md §2, with §10's fixes).

Every method takes the authenticated :class:`User` and returns a :class:`Reply` (status, JSON body, headers).
Writes run in one transaction per request (``db.run(..., write=True)``) that first locks the caller's ``users``
row; the idempotency row is stored in that same transaction, so an acknowledged push is stored exactly once and a
failure leaves neither the effect nor the key.
"""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from practiceplan.server import db, live, protocol, sharing
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

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def row(self, entity_type: str, entity_id: str, user_id: int | None = None) -> _Row | None:
        t = db.sync_rows
        r = self.conn.execute(sa.select(t).where(t.c.user_id == (user_id or self.user.id),
                                                 t.c.entity_type == entity_type, t.c.entity_id == entity_id)).first()
        if r is None:
            return None
        return _Row(r.entity_type, r.entity_id, json.loads(r.data), r.checksum, r.version, r.change_seq,
                    r.deleted_at, r.updated_at)

    def write(self, entity_type: str, entity_id: str, data: Any, device_id: str | None, *,
              existing: _Row | None, checksum: str | None = None, version: int | None = None) -> int:
        """Store a live snapshot; returns its version. Unchanged live content is not rewritten (§10 G12)."""
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
        t = db.sync_rows
        self.conn.execute(t.update().where(
            t.c.user_id == self.user.id, t.c.entity_type == existing.entity_type,
            t.c.entity_id == existing.entity_id).values(
            deleted_at=str(deleted_at), version=existing.version + 1, change_seq=self.next_seq(),
            updated_at=self.stamp))
        return existing.version + 1


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

    def _pull_since(self, user: User, body: dict[str, Any]) -> Reply:
        since, limit = body.get("since"), body.get("limit", 1000)
        if since is None:
            after = 0
        elif isinstance(since, str) and since.isdigit() and len(since) < 19:
            after = int(since)
        elif isinstance(since, int) and not isinstance(since, bool) and 0 <= since < 2**62:
            after = since
        else:
            return envelope(400, INVALID_BODY, details="since: must be a cursor from an earlier pull, or null")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            return envelope(400, INVALID_BODY, details="limit: must be a whole number >= 1")
        limit = min(limit, self.limits.pull_page_max)

        def work(conn: Connection) -> Reply:
            u, t = db.users, db.sync_rows
            # the counter first: every row numbered up to it is committed (a user's writes hold its row lock)
            me = conn.execute(sa.select(u.c.change_seq, u.c.purged_seq, u.c.sync_token).where(u.c.id == user.id)).one()
            start, reset = after, False
            if after < me.purged_seq:  # tombstones after this cursor are gone: start over with a full snapshot
                start, reset = 0, True
            rows = conn.execute(sa.select(t).where(
                t.c.user_id == user.id, t.c.change_seq > start, t.c.entity_type.in_(list(ARRAY_OF_TYPE)),
                *([t.c.deleted_at.is_(None)] if reset else [])).order_by(t.c.change_seq).limit(limit + 1)).all()
            page, has_more = rows[:limit], len(rows) > limit
            counts = self._adoption_counts(conn, user.id, [r.entity_id for r in page if r.entity_type == "plan_template"])
            out: dict[str, Any] = {name: [] for name in protocol.PULL_ARRAYS}
            versions: dict[str, int] = {}
            for r in page:
                out[ARRAY_OF_TYPE[r.entity_type]].append(protocol.pull_output(
                    r.entity_type, json.loads(r.data), r.deleted_at, counts.get(r.entity_id, 0)))
                versions[f"{r.entity_type}:{r.entity_id}"] = r.version
            last = page[-1].change_seq if page else start
            out["syncToken"] = me.sync_token or "sync_" + nanoid()
            out["timestamp"] = protocol.iso_ms(self.now())
            out["cursor"] = str(last if has_more else max(last, me.change_seq))
            out["hasMore"] = has_more
            out["versions"] = versions
            if reset:
                out["reset"] = True
            return Reply(200, out)

        return db.run(self.engine, work, write=False)

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
            me = self._lock(conn, user.id)[user.id]
            replay, digest = self._idempotent(conn, user, key, "push", body, now)
            if replay is not None:
                return replay
            self._purge_tombstones(conn, user, now)
            tx = _Tx(conn, user, me.change_seq, now)
            reply = self._process_push(tx, copy.deepcopy(changes), base, device_id)
            reply.body["syncToken"] = self._finish(tx)
            self._remember(conn, user, key, digest, reply, now)
            return reply

        return db.run(self.engine, work, write=True)

    def _process_push(self, tx: _Tx, changes: dict[str, list[dict[str, Any]]], base: dict[str, int] | None,
                      device_id: str | None) -> Reply:
        conflicts: list[dict[str, Any]] = []
        stats = {"entriesProcessed": 0, "duplicatesPrevented": 0, "goalsProcessed": 0,
                 "practicePlansProcessed": 0, "planOccurrencesProcessed": 0}
        counter = {"logbook_entry": "entriesProcessed", "practice_plan": "practicePlansProcessed",
                   "plan_occurrence": "planOccurrencesProcessed", "goal": "goalsProcessed"}
        versions: dict[str, int] = {}
        written: list[tuple[str, dict[str, Any], bool, bool, int]] = []  # for live events (server/sharing.py)
        user = tx.user
        for entity_type, items in changes.items():
            for item in items:
                entity_id = item["id"]
                key = f"{entity_type}:{entity_id}"
                existing = tx.row(entity_type, entity_id)
                current = existing.version if existing else 0
                if self._stale(existing, item, base, key):
                    conflicts.append({"entityId": entity_id, "entityType": entity_type, "reason": "stale",
                                      "remoteVersion": current})
                    continue
                deleting = truthy(item.get("deletedAt")) and entity_type != "goal"
                if deleting:
                    version = tx.delete(existing, item["deletedAt"])
                    if version is not None:
                        versions[key] = version
                        if existing is not None and version != existing.version and isinstance(existing.data, dict):
                            written.append((entity_type, existing.data, False, True, tx.seq))
                    if entity_type in counter:
                        stats[counter[entity_type]] += 1
                    continue
                if entity_type == "plan_template":
                    problem = self._publish(tx, item, existing)
                    if problem:
                        conflicts.append({"entityId": entity_id, "entityType": entity_type, "reason": problem,
                                          "remoteVersion": current})
                        continue
                protocol.rewrite(entity_type, item, user.name)
                if entity_type in ("practice_plan", "plan_template"):
                    problem = protocol.schedule_problem(item)
                    if problem:  # per-item conflict, not counted (file 09)
                        conflicts.append({"entityId": entity_id, "entityType": entity_type, "reason": problem})
                        continue
                if existing is not None and isinstance(existing.data, dict):
                    protocol.carry_unknown(entity_type, existing.data, item)
                seq = tx.seq
                versions[key] = tx.write(entity_type, entity_id, item, device_id, existing=existing)
                if tx.seq != seq:
                    written.append((entity_type, item, existing is None or existing.deleted_at is not None, False,
                                    tx.seq))
                if entity_type in counter:
                    stats[counter[entity_type]] += 1
        self._announce(tx, written)
        return Reply(200, {"success": True, "syncToken": None, "conflicts": conflicts, "stats": stats,
                           "versions": versions})

    @staticmethod
    def _announce(tx: _Tx, written: list[tuple[str, dict[str, Any], bool, bool, int]]) -> None:
        """Live events of a push, in its transaction: to the pusher's devices and every participant of each plan
        (another participant's session without its private fields)."""
        for event in sharing.push_events(written):
            plan = event.get("plan") or {}
            plan_id = event.get("planId") or plan.get("id") or (event.get("occurrence") or {}).get("planId")
            owner = sharing.owner_of(tx.conn, tx.user.id, plan_id) if isinstance(plan_id, str) else tx.user.id
            everyone = sharing.participants(tx.conn, owner, plan_id) if isinstance(plan_id, str) else [tx.user.id]
            others = [u for u in everyone if u != tx.user.id]
            live.publish(tx.conn, [tx.user.id], event, tx.now)
            if others:
                shown = dict(event)
                if "occurrence" in shown:
                    shown["occurrence"] = sharing.public_session(shown["occurrence"], tx.user.name)
                    shown["member"] = tx.user.name
                if "occurrences" in shown:
                    shown["occurrences"] = [sharing.public_session(o, tx.user.name) for o in shown["occurrences"]]
                live.publish(tx.conn, others, shown, tx.now)

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
