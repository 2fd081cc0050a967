"""One sync: pull, merge, push — with nothing lost and nothing doubled under any fault.

The order and the rules (docs/sync.md explains them for users; ../shared/reference/sync-protocol.md is the wire):

1. **Pull first.** A Mirubato server answers with a full snapshot of every live entity; a server that
   advertises ``incremental-pull`` (ours) answers with what changed since our cursor, deletions included as
   tombstones, page by page.
2. **Merge** each pulled entity against the local copy and the version both sides agreed on at the last sync
   (``sync_state``): a side that did not change since then takes the other side's version; when both changed,
   the later ``updatedAt`` wins the whole entity and the losing version is kept in ``conflicts``.
   Versions equal but for their timestamps (two devices that generated the same session) are not a conflict.
   An entity synced before and absent from a trusted full snapshot was deleted on the server: deleted here
   too, and if it changed here meanwhile that change is kept as a conflict. A full snapshot that comes back
   empty while we had synced entities before is not trusted (Mirubato answers a failed query that way): no
   deletion follows from it and the user is warned. The merge is one transaction.
3. **Push** the outbox in batches of full snapshots, never a version the merge found older than the server's,
   never an entity unchanged since the last sync. Each batch is written to ``sync_batches`` with a fresh
   idempotency key *before* it is sent; a retry (timeout, 5xx, dropped connection, truncated answer, kill -9
   and a later run) resends the same bytes under the same key, so the server applies it at most once. A bare
   400 splits the batch until the bad item is found; per-item conflicts in a 200 become conflict records; a
   server that supports ``conditional-push`` refuses a stale item, and the engine pulls again and retries.
4. Each acknowledgement is one transaction: ``sync_state`` takes the pushed versions, the outbox loses exactly
   the revisions that were sent (a change made during the sync stays queued).
5. A batch whose answers were all lost is checked by one more pull at once (full-snapshot servers: Mirubato
   does not remember a push it failed after storing). At a later sync, a new item of a stored batch that a full
   snapshot lacks either never arrived or was deleted elsewhere since; the batch's other items, a replay, or an
   empty push under its key (``_probe``) tell which, so a deletion made elsewhere is never undone by a resend.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from practiceplan.errors import RemoteRejectedError, RetryLaterError
from practiceplan.store import sharing as sh
from practiceplan.store import sync as st
from practiceplan.store.repo import TABLES, Store
from practiceplan.sync import wire

BATCH_SIZE = 100  # sync-protocol.md §2.7: Mirubato fails items past ~249 upserts per push
MAX_ROUNDS = 3  # pull-merge-push rounds when a conditional push finds the server moved on
CAPABILITIES = ("incremental-pull", "tombstones", "conditional-push")
# what a sync that changed nothing writes: checked on their own before writing (store/db.py ``transaction``), so
# such a sync does not pay the whole-file check that grows with the database
BOOKKEEPING = ("meta", "events")
EMPTY_PUSH = b'{"changes":{}}'  # a push that changes nothing: asks whether a batch's key is taken (Engine._probe)


class Transport(Protocol):  # sync/client.py's Client
    def status(self) -> dict[str, Any]: ...
    def pull(self, body: dict[str, Any] | None = None) -> dict[str, Any]: ...
    def push(self, body: bytes, idempotency_key: str) -> Any: ...


@dataclass
class Summary:
    """What a sync did (or, with ``dry_run``, would do)."""

    dry_run: bool = False
    mode: str = "full"  # full | incremental
    received: int = 0  # entities in the server's answers
    merged: int = 0  # local entities created, changed or deleted from the server's versions
    deleted_here: int = 0  # of those, deletions
    sent: int = 0  # entities pushed and acknowledged (with dry_run: that would be pushed)
    unchanged: int = 0  # queued entities not pushed because the server already has that version
    conflicts: list[dict[str, Any]] = field(default_factory=list)  # recorded during this sync
    rejected: list[dict[str, Any]] = field(default_factory=list)  # refused by the server (or known to be)
    batches: int = 0
    retries: int = 0
    warnings: list[str] = field(default_factory=list)
    pending: int = 0  # still queued after the sync

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run, "mode": self.mode, "received": self.received, "merged": self.merged,
            "deleted_here": self.deleted_here, "sent": self.sent, "unchanged": self.unchanged,
            "conflicts": self.conflicts, "rejected": self.rejected, "batches": self.batches,
            "retries": self.retries, "warnings": self.warnings, "pending": self.pending,
        }


@dataclass
class Plan:
    """The outcome of merging one pull, to apply in one transaction (or only to count, for a dry run)."""

    apply: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # kind -> local docs to store
    delete: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # kind -> local docs to soft-delete
    queue: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # kind -> local docs to store and push
    states: dict[str, list[tuple[str, str, int | None]]] = field(default_factory=dict)
    forget: dict[str, list[str]] = field(default_factory=dict)
    drop_outbox: list[tuple[str, str, int | None]] = field(default_factory=list)
    conflicts: list[tuple[str, str, str, str, dict[str, Any] | None, dict[str, Any] | None]] = field(default_factory=list)
    # shared plans (server capability ``sharing``; docs/collaboration.md)
    sharing: list[dict[str, Any]] | None = None  # the pulled sharing list (None: the answer had none)
    shared_sessions: list[dict[str, Any]] = field(default_factory=list)  # others' sessions to upsert or remove
    shared_keep: set[tuple[str, str]] | None = None  # after an answer holding all of them: only these stay
    shared_stray: bool = False  # stored others' sessions of plans no longer in the list
    purge: list[str] = field(default_factory=list)  # someone else's plans this account no longer takes part in
    received: int = 0
    pull_count: int | None = None  # entities in a full snapshot (remembered: an empty one after this is suspect)

    def add(self, bucket: dict[str, list[Any]], kind: str, value: Any) -> None:
        bucket.setdefault(kind, []).append(value)


def _progress_none(phase: str, done: int, total: int) -> None:
    return None


def _user_made(session: dict[str, Any]) -> bool:
    """A session someone acted on (checked in, skipped, moved, annotated), not just generated from its plan."""
    return session.get("status") not in (None, "scheduled") or bool(session.get("notes") or session.get("logEntryId"))


@dataclass
class _Fates:
    """What a merge decided for plans, so that their sessions follow them (a session lives only while its plan
    does): decided entity by entity, a plan restored by last-write-wins could lose its sessions to the deletion
    that lost, and a deleted plan could keep a session another device made meanwhile."""

    conn: Any
    live: set[str]  # plans applied live by this merge
    tombs: set[str]  # plans the server sent as deleted
    deleted_now: dict[str, str]  # plan id -> deletedAt: live here, deleted by this merge
    restored: dict[str, str]  # plan id -> deletedAt of the local deletion this merge undid
    local: dict[str, dict[str, Any]]  # local plan documents looked up so far
    decided: set[str] = field(default_factory=set)  # sessions decided with their plan

    def plan(self, plan_id: str) -> dict[str, Any] | None:
        if plan_id not in self.local:
            self.local.update(st.docs(self.conn, "practice_plan", [plan_id]))
        return self.local.get(plan_id)

    def fate(self, plan_id: Any) -> str | None:
        """"live", "dead" (deleted after this merge) or None (a plan this device does not know)."""
        if not isinstance(plan_id, str):
            return None
        if plan_id in self.live:
            return "live"
        if plan_id in self.deleted_now:
            return "dead"
        doc = self.plan(plan_id)
        if doc is not None:
            return "dead" if doc.get("deletedAt") else "live"
        return "dead" if plan_id in self.tombs else None

    def deleted_at(self, plan_id: str, now: str) -> str:
        doc = self.plan(plan_id)
        return self.deleted_now.get(plan_id) or (doc or {}).get("deletedAt") or now


class Engine:
    def __init__(self, store: Store, client: Transport, *, now: Callable[[], str], remote: str,
                 dry_run: bool = False, batch_size: int = BATCH_SIZE, retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0),
                 max_retry_after: float = 30.0, sleep: Callable[[float], None] = time.sleep,
                 progress: Callable[[str, int, int], None] = _progress_none,
                 record: Callable[[Summary], None] | None = None) -> None:
        self.store = store
        self.conn = store.conn
        self.client = client
        self.now = now
        self.remote = remote
        self.dry_run = dry_run
        self.batch_size = batch_size
        self.retry_delays = retry_delays
        self.max_retry_after = max_retry_after
        self.sleep = sleep
        self.progress = progress
        self.record = record  # called inside the last transaction of a sync (the event log entry)
        self.summary = Summary(dry_run=dry_run)
        self.capabilities: set[str] = set()
        self.suspect = False  # the last pull was an empty snapshot we do not trust
        self._cursor: str | None = None  # incremental pulls: where the last page ended (saved with the merge)
        self.kinds: tuple[str, ...] = wire.KINDS  # the kinds synced with this server (see run)
        self._sharing: list[dict[str, Any]] | None = None  # the pulled sharing list (its last page's)
        self._shared_sessions: list[dict[str, Any]] = []  # others' sessions in the pull's answers
        self._snapshot: dict[str, set[str]] | None = None  # the ids of the last pull, when a trusted full snapshot
        # what the server would refuse, checked before sending (a refused item would reject its whole batch)
        self.precheck: Callable[[str, dict[str, Any]], list[str]] = wire.problems

    # ------------------------------------------------------------------ the whole sync

    def run(self) -> Summary:
        status = self._call(self.client.status)
        caps = status.get("capabilities") if isinstance(status, dict) else None
        self.capabilities = {c for c in caps if isinstance(c, str)} if isinstance(caps, list) else set()
        self.summary.mode = "incremental" if "incremental-pull" in self.capabilities else "full"
        # comments only with a server that keeps them (a Mirubato server drops the array it does not know)
        self.kinds = wire.KINDS + (wire.SHARING_KINDS if "sharing" in self.capabilities else ())
        user = status.get("user") if isinstance(status, dict) else None
        if not self.dry_run:
            rebind = st.get_meta(self.conn, "bound_remote") != self.remote  # (re-read below, under the lock)
            with self.store.write(tables=None if rebind else BOOKKEEPING):
                if st.get_meta(self.conn, "bound_remote") != self.remote:
                    sh.forget_all(self.store, self.now())  # what the old server shared is not ours to send
                    queued = st.reset(self.conn)
                    st.set_meta(self.conn, "bound_remote", self.remote)
                    if st.get_meta(self.conn, "last_sync"):
                        self.summary.warnings.append(
                            f"new remote {self.remote}: everything here ({queued} entities) is sent to it afresh")
                    st.set_meta(self.conn, "last_sync", None)
                st.set_json(self.conn, "capabilities", {"list": sorted(self.capabilities), "status": status})
                if isinstance(user, str) and user:
                    sh.set_my_name(self.conn, user)
        stale = False
        lost: RetryLaterError | None = None  # a push whose answers were all lost, being checked by a pull
        rounds = 0
        while True:
            rounds += 1
            try:
                remote, full, self._cursor = self._pull()
            except RetryLaterError:
                if lost is not None:
                    raise lost from None  # the server is down: the push's own error says what happened
                raise
            plan = self._merge(remote, full)
            if self.dry_run:
                self._count_dry(plan)
                return self.summary
            self._apply(plan)
            if lost is not None:
                if not self._batch_arrived():
                    raise lost  # nothing tells us it was stored: it is resent (or probed) by the next sync
            try:
                stale = self._push()
            except RetryLaterError as exc:
                # Mirubato stores a push and still answers 500 when it fails afterwards, and does not remember
                # such a push under its key: a pull now (before another device changes what it held) shows
                # whether it landed. Later, with its items changed or deleted elsewhere, nothing could.
                if lost is not None or "incremental-pull" in self.capabilities or exc.status == 429 or \
                        st.pending_batch(self.conn) is None:  # (a 429 processed nothing)
                    raise
                lost = exc
                rounds -= 1  # this check is not one of the rounds
                continue
            lost = None
            if not stale or rounds >= MAX_ROUNDS:
                break
        if stale:
            self.summary.warnings.append("the server kept changing while this sync ran; some changes stay queued "
                                         "for the next `practiceplan sync`")
        with self.store.write(tables=BOOKKEEPING):
            self.summary.pending = sum(st.outbox_count(self.conn).values())
            st.set_json(self.conn, "last_sync", {"at": self.now(), **{k: v for k, v in self.summary.as_json().items()
                                                                       if k in ("received", "merged", "sent")},
                                                 "conflicts": len(self.summary.conflicts),
                                                 "rejected": len(self.summary.rejected)})
            if self.record:
                self.record(self.summary)
        return self.summary

    # ------------------------------------------------------------------ transport with retries

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call the server; retry what may succeed later (5xx, timeouts, dropped answers, a short 429)."""
        attempt = 0
        while True:
            try:
                return fn(*args)
            except RetryLaterError as exc:
                if attempt >= len(self.retry_delays):
                    raise
                delay = self.retry_delays[attempt]
                if exc.retry_after is not None:
                    if exc.retry_after > self.max_retry_after:
                        raise
                    delay = max(delay, exc.retry_after)
                attempt += 1
                self.summary.retries += 1
                self.sleep(delay)

    # ------------------------------------------------------------------ pull

    def _pull(self) -> tuple[dict[str, list[dict[str, Any]]], bool, str | None]:
        """The server's items per kind, whether they are a full snapshot, and the next cursor (incremental)."""
        found: dict[str, list[dict[str, Any]]] = {kind: [] for kind in self.kinds}
        self._sharing, self._shared_sessions = None, []
        if "incremental-pull" not in self.capabilities:
            body = self._call(self.client.pull, {})
            self._collect(body, found)
            self.progress("pull", self.summary.received, self.summary.received)
            return found, True, None
        cursor = st.get_meta(self.conn, "cursor")
        reset = False  # the server no longer has the tombstones after our cursor: it starts over with everything
        while True:
            body = self._call(self.client.pull, {"since": cursor, "limit": 1000})
            reset = reset or body.get("reset") is True
            self._collect(body, found)
            versions = body.get("versions") if isinstance(body.get("versions"), dict) else {}
            for kind, items in found.items():
                for item in items:
                    if "_version" not in item:
                        item["_version"] = versions.get(f"{kind}:{item.get('id')}")
            cursor = body.get("cursor") if isinstance(body.get("cursor"), str) else cursor
            self.progress("pull", self.summary.received, self.summary.received)
            if not body.get("hasMore"):
                return found, reset, cursor  # after a reset, absence means deleted, as in a full snapshot

    def _collect(self, body: Any, found: dict[str, list[dict[str, Any]]]) -> None:
        if not isinstance(body, dict):
            raise RetryLaterError("the server's answer to a pull was not a JSON object; nothing was changed",
                                  hint="run `practiceplan sync` again")
        for kind in self.kinds:
            items = body.get(wire.ARRAYS[kind])
            if items is None:
                continue
            if not isinstance(items, list):
                raise RetryLaterError(f"the server's pull answer has a malformed '{wire.ARRAYS[kind]}'; nothing was "
                                      "changed", hint="run `practiceplan sync` again; if it persists, check the server")
            good = [i for i in items if isinstance(i, dict) and isinstance(i.get("id"), str) and i["id"]]
            found[kind].extend(good)
            self.summary.received += len(good)
        if "sharing" in self.capabilities:
            self._collect_sharing(body)

    def _collect_sharing(self, body: dict[str, Any]) -> None:
        """The sharing list (the whole current one, on the last page) and others' sessions. A malformed list is
        refused as a whole: read wrongly, it would remove shared plans from this device."""
        bad = RetryLaterError("the server's pull answer has a malformed 'sharing' list; nothing was changed",
                              hint="run `practiceplan sync` again; if it persists, check the server")
        if "sharing" in body and body["sharing"] is not None:
            entries = body["sharing"]
            if not isinstance(entries, list) or not all(
                    isinstance(e, dict) and isinstance(e.get("planId"), str) and e["planId"]
                    and e.get("level") in sh.LEVELS for e in entries):
                raise bad
            self._sharing = entries
        sessions = body.get("sharedSessions")
        if sessions is not None:
            if not isinstance(sessions, list):
                raise RetryLaterError("the server's pull answer has a malformed 'sharedSessions'; nothing was "
                                      "changed", hint="run `practiceplan sync` again; if it persists, check the server")
            self._shared_sessions.extend(
                s for s in sessions if isinstance(s, dict) and isinstance(s.get("id"), str) and s["id"]
                and isinstance(s.get("member"), str) and s["member"])

    # ------------------------------------------------------------------ merge

    def _merge(self, remote: dict[str, list[dict[str, Any]]], full: bool) -> Plan:
        plan = Plan(received=sum(len(v) for v in remote.values()))
        self._snapshot = None
        conn = self.conn
        now = self.now()
        queued = st.outbox(conn)
        pending = st.pending_batch(conn)
        in_flight = {(k, i): h for k, i, _rev, h, _base in pending["items"]} if pending else {}
        expect = st.get_meta(conn, "expect_data")  # "1": the server held data at the end of our last sync
        had_data = expect == "1" if expect is not None else st.has_state(conn)
        suspect = full and plan.received == 0 and had_data
        if full:
            plan.pull_count = plan.received
        if full and not suspect:
            self._snapshot = {kind: {i["id"] for i in items} for kind, items in remote.items()}
        if suspect:
            self.suspect = True
            self.summary.warnings.append(
                "the server sent an empty snapshot although its last one was not empty; nothing was deleted here "
                "and nothing synced before was sent (a server-side failure looks like this); if everything was "
                "really deleted elsewhere, the next `practiceplan sync` applies it")
        fates: _Fates | None = None
        for kind in self.kinds:
            if kind == "plan_occurrence":
                fates = self._plan_fates(plan, remote["practice_plan"])
            items = remote[kind]
            ids = [i["id"] for i in items]
            known = st.states(conn, kind, None if full and not suspect else ids)
            # the common case first, without reading the local copy: unchanged on the server since the last
            # sync and not changed here (a full snapshot of 50k entities is mostly that)
            todo = []
            same: list[dict[str, Any]] = []  # shared-capable plans the server holds in our version (see below)
            for item in items:
                state = known.get(item["id"])
                if (state is not None and (kind, item["id"]) not in queued and (kind, item["id"]) not in in_flight
                        and not item.get("deletedAt") and wire.version_hash(kind, item) == state[0]):
                    version = item.get("_version")
                    if isinstance(version, int) and version != state[1]:
                        plan.add(plan.states, kind, (item["id"], state[0], version))
                    if kind == "practice_plan" and "sharing" in self.capabilities:
                        same.append(item)
                    continue
                todo.append(item)
            if same:
                # the server's metadata.sharing is no part of a version (wire.SHARING_KEY): a change of it alone
                # (a member added, a plan pushed with a stale list) is refreshed here, never a conflict
                mine_same = st.docs(conn, kind, [i["id"] for i in same])
                for item in same:
                    self._refresh_sharing(plan, mine_same.get(item["id"]), item)
            local = st.docs(conn, kind, [i["id"] for i in todo])
            for item in todo:
                mine = local.get(item["id"])
                if fates is not None and kind == "plan_occurrence" and \
                        self._follow_plan(plan, fates, item, mine, known.get(item["id"]), queued, now):
                    continue
                self._merge_one(plan, kind, item, mine, known.get(item["id"]), queued, in_flight, now)
            if full and not suspect:
                seen = set(ids)
                gone = [i for i in known if i not in seen]
                gone_docs = st.docs(conn, kind, gone)
                for entity_id in gone:
                    if fates is not None and kind == "plan_occurrence" and entity_id in gone_docs and \
                            self._follow_plan(plan, fates, None, gone_docs[entity_id], known[entity_id], queued,
                                              now, entity_id=entity_id):
                        continue
                    self._gone(plan, kind, entity_id, gone_docs.get(entity_id), known[entity_id][0], queued, now)
        if fates is not None:
            self._sessions_follow(plan, fates, queued, now)
        if "sharing" in self.capabilities:
            self._merge_sharing(plan, full, queued)
        return plan

    @staticmethod
    def _refresh_sharing(plan: Plan, mine: dict[str, Any] | None, item: dict[str, Any]) -> None:
        """Take the server's ``metadata.sharing`` of a plan whose version both sides agree on."""
        if mine is None or mine.get("deletedAt") or item.get("deletedAt"):
            return
        theirs = wire.plan_sharing(item)
        if wire.plan_sharing(mine) != theirs:
            plan.add(plan.apply, "practice_plan", wire.with_sharing(mine, theirs))

    def _merge_sharing(self, plan: Plan, full: bool, queued: dict[tuple[str, str], tuple[str, int]]) -> None:
        """The pull's sharing list, others' sessions, and the plans this account no longer takes part in."""
        conn = self.conn
        plan.shared_sessions = list(self._shared_sessions)
        if self._sharing is None:
            return
        plan.sharing = self._sharing
        current = {e["planId"] for e in self._sharing}
        before = {e.get("planId"): e.get("level") for e in sh.sharing_list(conn)}
        plan.purge = sorted(p for p, level in before.items()
                            if isinstance(p, str) and p not in current and level != "owner")
        if full:  # an answer with everything: others' sessions it did not hold are gone
            plan.shared_keep = {(s["member"], s["id"]) for s in self._shared_sessions if not s.get("deletedAt")}
        marks = ", ".join("?" * len(current))
        plan.shared_stray = conn.execute(
            f"SELECT 1 FROM shared_sessions WHERE plan_id NOT IN ({marks}) LIMIT 1" if current
            else "SELECT 1 FROM shared_sessions LIMIT 1", sorted(current)).fetchone() is not None
        if not plan.purge:
            return
        # what changed here and was not sent yet is kept in a conflict record, not silently dropped
        reason = ("you no longer take part in this shared plan (its owner removed you, or it was deleted); this "
                  "change made here was not sent and is kept only in this record")
        for kind, ids in (("practice_plan", plan.purge), ("plan_comment", sh.comment_ids(conn, plan.purge))):
            waiting = [i for i in ids if (kind, i) in queued]
            if not waiting:
                continue
            docs = st.docs(conn, kind, waiting)
            known = st.states(conn, kind, waiting)
            for entity_id in waiting:
                mine = docs.get(entity_id)
                if mine is not None and wire.version_hash(kind, mine) != (known.get(entity_id) or ("-",))[0]:
                    plan.conflicts.append((kind, entity_id, reason, "remote", mine, None))
        for mine in st.sessions_of(conn, plan.purge):
            if not mine.get("deletedAt") and ("plan_occurrence", mine["id"]) in queued and _user_made(mine):
                plan.conflicts.append(("plan_occurrence", mine["id"], "you no longer take part in its shared plan; "
                                       "this session is deleted (its logbook entry stays) and kept in this record "
                                       "(`sync resolve ID --keep local` restores it)", "remote", mine, None))

    def _plan_fates(self, plan: Plan, pulled: list[dict[str, Any]]) -> _Fates:
        applied = [d for d in plan.apply.get("practice_plan", []) if not d.get("deletedAt")]
        fates = _Fates(conn=self.conn, live={d["id"] for d in applied},
                       tombs={i["id"] for i in pulled if i.get("deletedAt")},
                       deleted_now={d["id"]: d["deletedAt"] for d in plan.delete.get("practice_plan", [])},
                       restored={}, local={})
        fates.local.update(st.docs(self.conn, "practice_plan", list(fates.live)))
        for plan_id in fates.live:
            before = fates.local.get(plan_id)
            if before is not None and before.get("deletedAt"):
                fates.restored[plan_id] = before["deletedAt"]
        return fates

    def _follow_plan(self, plan: Plan, fates: _Fates, item: dict[str, Any] | None, mine: dict[str, Any] | None,
                     known: tuple[str, int | None] | None, queued: dict[tuple[str, str], tuple[str, int]], now: str,
                     entity_id: str | None = None) -> bool:
        """Decide a pulled session (``item``; None: absent from a trusted full snapshot) together with its plan.
        Returns False when its plan decides nothing and the session is merged on its own."""
        kind = "plan_occurrence"
        entity_id = item["id"] if item is not None else entity_id
        assert entity_id is not None
        theirs = wire.from_remote(kind, {k: v for k, v in item.items() if k != "_version"}, mine) if item else None
        plan_id = (mine or {}).get("planId") or (theirs or {}).get("planId")
        fate = fates.fate(plan_id)
        row = queued.get((kind, entity_id))
        cascade = mine is not None and mine.get("deletedAt") is not None and \
            fates.restored.get(plan_id) == mine["deletedAt"]
        if fate == "live" and cascade:
            # deleted here only because its plan was, and that deletion lost: the session is what the server has
            if row:
                plan.drop_outbox.append((kind, entity_id, row[1]))
            if theirs is None:
                plan.add(plan.forget, kind, entity_id)
            else:
                assert item is not None and mine is not None
                version = item.get("_version")
                self._take_theirs(plan, kind, theirs, mine, bool(theirs.get("deletedAt")),
                                  wire.version_hash(kind, theirs), version, now)
            fates.decided.add(entity_id)
            return True
        if fate != "dead":
            return False
        # its plan is deleted after this merge: the session ends deleted too, here and on the server
        assert plan_id is not None
        fates.decided.add(entity_id)
        stamp = fates.deleted_at(plan_id, now)
        if theirs is None or theirs.get("deletedAt"):
            if theirs is not None:
                assert item is not None
                self._tombstone(plan, kind, entity_id, wire.version_hash(kind, theirs), item.get("_version"))
            else:
                plan.add(plan.forget, kind, entity_id)
            if row:
                plan.drop_outbox.append((kind, entity_id, row[1]))
            if mine is not None and not mine.get("deletedAt"):
                plan.add(plan.delete, kind, {**mine, "deletedAt": (theirs or {}).get("deletedAt") or stamp,
                                             "updatedAt": now})
                if row and _user_made(mine):
                    plan.conflicts.append((kind, entity_id, "its plan was deleted on the server while this session "
                                           "changed here; the change is kept here (`sync resolve ID --keep local` "
                                           "restores it)", "remote", mine, None))
            return True
        # the server still has it live (the device that deleted the plan never had this session): delete it there
        assert item is not None
        rh = wire.version_hash(kind, theirs)
        plan.add(plan.states, kind, (entity_id, rh, item.get("_version")))
        base = known[0] if known else None
        if mine is None or not mine.get("deletedAt"):
            plan.add(plan.queue, kind, {**(mine or theirs), "deletedAt": stamp, "updatedAt": now})
        elif row is None:
            plan.add(plan.queue, kind, {**mine, "updatedAt": now})
        if rh != base and _user_made(theirs):
            plan.conflicts.append((kind, entity_id, "changed on the server after its plan was deleted here; the "
                                   "deletion is kept (`sync resolve ID --keep remote` restores the session)",
                                   "local", {**(mine or theirs), "deletedAt": stamp}, theirs))
        return True

    def _sessions_follow(self, plan: Plan, fates: _Fates, queued: dict[tuple[str, str], tuple[str, int]],
                         now: str) -> None:
        """Sessions the server did not send whose plan this merge restored or deleted."""
        touched = [*fates.restored, *fates.deleted_now]
        if not touched:
            return
        kind = "plan_occurrence"
        sessions = st.sessions_of(self.conn, touched)
        known = st.states(self.conn, kind, [s["id"] for s in sessions])
        for mine in sessions:
            entity_id, plan_id = mine["id"], mine.get("planId")
            if entity_id in fates.decided:
                continue
            row = queued.get((kind, entity_id))
            if plan_id in fates.restored:
                if mine.get("deletedAt") == fates.restored[plan_id]:
                    # deleted with its plan: back with it, and sent (the server may hold our deletion already)
                    revived = {k: v for k, v in mine.items() if k != "deletedAt"}
                    plan.add(plan.queue, kind, {**revived, "updatedAt": now})
                continue
            if mine.get("deletedAt"):
                continue
            gone = {**mine, "deletedAt": fates.deleted_now[plan_id], "updatedAt": now}
            if entity_id in known:
                plan.add(plan.queue, kind, gone)  # the server may still have it live
            else:
                plan.add(plan.delete, kind, gone)  # never sent: nothing to tell the server
                if row:
                    plan.drop_outbox.append((kind, entity_id, row[1]))
            if row and _user_made(mine):
                plan.conflicts.append((kind, entity_id, "its plan was deleted on the server while this session "
                                       "changed here; the change is kept here (`sync resolve ID --keep local` "
                                       "restores it)", "remote", mine, None))

    def _merge_one(self, plan: Plan, kind: str, item: dict[str, Any], mine: dict[str, Any] | None,
                   known: tuple[str, int | None] | None, queued: dict[tuple[str, str], tuple[str, int]],
                   in_flight: dict[tuple[str, str], str], now: str) -> None:
        entity_id = item["id"]
        version = item.pop("_version", None)
        tomb = bool(item.get("deletedAt"))
        theirs = wire.from_remote(kind, item, mine)
        rh = wire.version_hash(kind, theirs)
        base = known[0] if known else None
        if in_flight.get((kind, entity_id)) == rh:
            base = rh  # our own push landed before we could record it
        row = queued.get((kind, entity_id))
        lh = wire.version_hash(kind, mine) if mine else "-"
        if mine is None:
            if not tomb:
                plan.add(plan.apply, kind, theirs)
                plan.add(plan.states, kind, (entity_id, rh, version))
            else:
                self._tombstone(plan, kind, entity_id, rh, version)
            return
        if lh == rh or (tomb and mine.get("deletedAt")):
            if tomb:
                self._tombstone(plan, kind, entity_id, rh, version)
            else:
                plan.add(plan.states, kind, (entity_id, rh, version))
                if kind == "practice_plan":
                    self._refresh_sharing(plan, mine, theirs)
            if row:
                plan.drop_outbox.append((kind, entity_id, row[1]))
            return
        local_changed = row is not None and lh != base
        remote_changed = rh != base
        if not local_changed:
            self._take_theirs(plan, kind, theirs, mine, tomb, rh, version, now)
            if row:
                plan.drop_outbox.append((kind, entity_id, row[1]))
            return
        if not remote_changed:
            # ours is newer: it stays queued and is pushed. Record what the server holds (rh == base): when our
            # own earlier push landed unrecorded (in flight), sync_state still names the version before it, and a
            # conditional push against that would be refused as stale on every later sync
            plan.add(plan.states, kind, (entity_id, rh, version))
            return
        if tomb and not mine.get("deletedAt"):
            # deleted on the server while changed here: the deletion wins whatever the clocks say, as it does when
            # a full snapshot no longer has the entity (_gone; docs/sync.md). Deciding by updatedAt here would
            # split a deleted plan: the plan and each of its sessions decided apart (by timestamp, and on a tie
            # by hash), some deleted, some kept and pushed back to life
            self._take_theirs(plan, kind, theirs, mine, tomb, rh, version, now)
            plan.drop_outbox.append((kind, entity_id, row[1]))
            plan.conflicts.append((kind, entity_id, "deleted on the server while changed here; the change is kept "
                                   "here (`sync resolve ID --keep local` restores it)", "remote", mine, None))
            return
        theirs_at, mine_at = wire.updated_at(theirs), wire.updated_at(mine)
        theirs_win = (theirs_at, rh) > (mine_at, lh)
        same_content = not tomb and not mine.get("deletedAt") and \
            wire.content_hash(kind, theirs) == wire.content_hash(kind, mine)
        if theirs_win:
            self._take_theirs(plan, kind, theirs, mine, tomb, rh, version, now)
            plan.drop_outbox.append((kind, entity_id, row[1] if row else None))
            if not same_content:
                plan.conflicts.append((kind, entity_id, "changed here and on the server; the server's version is "
                                       "newer", "remote", mine, theirs))
        else:
            # ours wins and is pushed over the server's version, which becomes the base we push against
            plan.add(plan.states, kind, (entity_id, rh, version))
            if not same_content:
                plan.conflicts.append((kind, entity_id, "changed here and on the server; this device's version is "
                                       "newer", "local", mine, theirs))

    def _take_theirs(self, plan: Plan, kind: str, theirs: dict[str, Any], mine: dict[str, Any], tomb: bool,
                     rh: str, version: int | None, now: str) -> None:
        if tomb:
            if not mine.get("deletedAt"):
                plan.add(plan.delete, kind, {**mine, "deletedAt": theirs.get("deletedAt") or now,
                                             "updatedAt": wire.updated_at(theirs) or now})
            self._tombstone(plan, kind, theirs["id"], rh, version)
        else:
            plan.add(plan.apply, kind, theirs)
            plan.add(plan.states, kind, (theirs["id"], rh, version))

    @staticmethod
    def _tombstone(plan: Plan, kind: str, entity_id: str, rh: str, version: int | None) -> None:
        """A deletion both sides agree on. With a server version (conditional push) it is remembered: the same id
        made again here (a plan's session regenerated, a plan restored) is pushed over that version; forgotten,
        it would go out as "does not exist" and be refused as stale at every sync."""
        if version is None:
            plan.add(plan.forget, kind, entity_id)
        else:
            plan.add(plan.states, kind, (entity_id, rh, version))

    def _gone(self, plan: Plan, kind: str, entity_id: str, mine: dict[str, Any] | None, base: str,
              queued: dict[tuple[str, str], tuple[str, int]], now: str) -> None:
        """An entity synced before that a trusted full snapshot no longer has: deleted on the server."""
        row = queued.get((kind, entity_id))
        if mine is not None and mine.get("deletedAt") and row is not None:
            # deleted here too, not yet sent: send it anyway (deleting a deleted row is harmless, and if the
            # snapshot was wrong after all, the server's copy must not outlive our deletion)
            return
        plan.add(plan.forget, kind, entity_id)
        if row:
            plan.drop_outbox.append((kind, entity_id, row[1]))
        if mine is None or mine.get("deletedAt"):
            return
        plan.add(plan.delete, kind, {**mine, "deletedAt": now, "updatedAt": now})
        if row is not None and wire.version_hash(kind, mine) != base:
            plan.conflicts.append((kind, entity_id, "deleted on the server while changed here; the change is kept "
                                   "here (`sync resolve ID --keep local` restores it)", "remote", mine, None))

    def _apply(self, plan: Plan) -> None:
        now = self.now()
        quiet = not (plan.apply or plan.delete or plan.queue or plan.states or plan.forget or plan.drop_outbox or plan.conflicts
                     or plan.shared_sessions or plan.purge or plan.shared_stray or plan.shared_keep is not None)
        with self.store.write(tables=BOOKKEEPING if quiet else None):
            for kind, docs in plan.apply.items():
                self.summary.merged += self.store.save_many(kind, docs, now, outbox=False)
                if kind == "practice_plan":
                    st.clear_horizons(self.conn, [d["id"] for d in docs])
            for kind, docs in plan.delete.items():
                deleted = self.store.save_many(kind, docs, now, outbox=False)
                self.summary.merged += deleted
                self.summary.deleted_here += deleted
            for kind, docs in plan.queue.items():  # changed by the merge and sent (sessions following a plan)
                changed = self.store.save_many(kind, docs, now, outbox=True)
                self.summary.merged += changed
                self.summary.deleted_here += sum(1 for d in docs if d.get("deletedAt"))
            for kind, rows in plan.states.items():
                st.set_states(self.conn, kind, rows)
            for kind, ids in plan.forget.items():
                st.forget_states(self.conn, kind, ids)
            st.drop_outbox(self.conn, plan.drop_outbox)
            for kind, entity_id, reason, kept, mine, theirs in plan.conflicts:
                st.add_conflict(self.conn, kind, entity_id, reason, kept, mine, theirs, now)
                self.summary.conflicts.append({"kind": kind, "id": entity_id, "kept": kept, "reason": reason})
            self._apply_sharing(plan, now)
            if "incremental-pull" in self.capabilities and self._cursor is not None:
                st.set_meta(self.conn, "cursor", self._cursor)
            if plan.pull_count is not None:  # an empty snapshot is trusted when it follows a suspect one
                st.set_meta(self.conn, "expect_data", "1" if plan.pull_count else "0")

    def _apply_sharing(self, plan: Plan, now: str) -> None:
        """Inside the merge transaction, after the entities: others' sessions, the list, the purge."""
        conn = self.conn
        if plan.shared_sessions:
            sh.apply_shared_sessions(conn, plan.shared_sessions)
        if plan.shared_keep is not None:
            sh.keep_only_shared_sessions(conn, plan.shared_keep)
        if plan.sharing is None:
            return
        if plan.shared_stray:
            current = sorted({e["planId"] for e in plan.sharing})
            marks = ", ".join("?" * len(current))
            conn.execute(f"DELETE FROM shared_sessions WHERE plan_id NOT IN ({marks})" if current
                         else "DELETE FROM shared_sessions", current)
        if plan.purge:
            counts = sh.purge_plans(self.store, plan.purge, now)
            removed = counts["plans"] + counts["comments"] + counts["sessions"]
            self.summary.merged += removed
            self.summary.deleted_here += removed
            self.summary.warnings.append(
                f"{counts['plans']} shared plan(s) removed from this device: you no longer take part in them "
                "(your logbook entries stay)")
        sh.set_sharing_list(conn, plan.sharing)

    def _count_dry(self, plan: Plan) -> None:
        self.summary.merged = sum(len(v) for b in (plan.apply, plan.delete, plan.queue) for v in b.values())
        self.summary.deleted_here = sum(len(v) for v in plan.delete.values()) + \
            sum(1 for v in plan.queue.values() for d in v if d.get("deletedAt"))
        self.summary.conflicts = [{"kind": k, "id": i, "kept": kept, "reason": r}
                                  for k, i, r, kept, _m, _t in plan.conflicts]
        if plan.purge:  # shared plans this account left: the plans and their comments and sessions go
            comments = sh.comment_ids(self.conn, plan.purge)
            sessions = [s for s in st.sessions_of(self.conn, plan.purge) if not s.get("deletedAt")]
            plans = st.docs(self.conn, "practice_plan", plan.purge)
            gone = sum(1 for d in plans.values() if not d.get("deletedAt")) + len(sessions) + sum(
                1 for d in st.docs(self.conn, "plan_comment", comments).values() if not d.get("deletedAt"))
            self.summary.merged += gone
            self.summary.deleted_here += gone
        dropped = {(k, i) for k, i, _r in plan.drop_outbox}
        if plan.purge:
            dropped |= {("practice_plan", i) for i in plan.purge}
            dropped |= {("plan_comment", i) for i in sh.comment_ids(self.conn, plan.purge)}
        agreed = {(k, i): h for k, rows in plan.states.items() for i, h, _v in rows}
        items, rejected, unchanged = self._outgoing(skip=dropped, agreed=agreed)
        self.summary.sent = len(items)
        self.summary.unchanged = len(unchanged)
        self.summary.rejected = [{"kind": k, "id": i, "problems": p} for k, i, p, _d in rejected]
        self.summary.pending = sum(st.outbox_count(self.conn).values())

    # ------------------------------------------------------------------ push

    def _outgoing(self, skip: set[tuple[str, str]] = frozenset(), agreed: dict[tuple[str, str], str] | None = None
                  ) -> tuple[list[tuple[str, str, int, str, str, dict[str, Any]]],
                             list[tuple[str, str, list[str], int]], list[tuple[str, str, int]]]:
        """What the outbox would send now: (kind, id, rev, hash, base, item) per entity, the items the server would
        refuse (kind, id, problems, rev), and queued entities the server already has (kind, id, rev)."""
        rows = st.outbox_in_order(self.conn)
        order = {kind: n for n, kind in enumerate(self.kinds)}  # comments stay queued for a server without sharing
        rows.sort(key=lambda r: order.get(r[0], 99))
        by_kind: dict[str, list[tuple[str, str, int]]] = {}
        for kind, entity_id, _op, rev in rows:
            if kind in order and (kind, entity_id) not in skip:
                by_kind.setdefault(kind, []).append((kind, entity_id, rev))
        out: list[tuple[str, str, int, str, str, dict[str, Any]]] = []
        rejected: list[tuple[str, str, list[str], int]] = []
        unchanged: list[tuple[str, str, int]] = []
        for kind, entries in by_kind.items():
            ids = [e[1] for e in entries]
            docs = st.docs(self.conn, kind, ids)
            known = st.states(self.conn, kind, ids)
            for _k, entity_id, rev in entries:
                doc = docs.get(entity_id)
                base = (agreed or {}).get((kind, entity_id)) or (known.get(entity_id) or ("-", None))[0]
                if doc is None:
                    unchanged.append((kind, entity_id, rev))
                    continue
                if self.suspect and base != "-":
                    continue  # synced before and now absent from a snapshot we do not trust: held back
                h = wire.version_hash(kind, doc)
                if h == base or (doc.get("deletedAt") and base == "-"):
                    unchanged.append((kind, entity_id, rev))  # the server has it (or never had it, deleted)
                    continue
                item = wire.to_push(kind, doc)
                found = self.precheck(kind, item)
                if found:
                    rejected.append((kind, entity_id, found, rev))
                    continue
                out.append((kind, entity_id, rev, h, base, item))
        return out, rejected, unchanged

    def _push(self) -> bool:
        """Push the outbox. Returns True when a conditional push found items stale (pull again, then push)."""
        now = self.now()
        stale = False
        pending = st.pending_batch(self.conn)
        if pending:
            stale |= self._resend(pending)
        items, rejected, unchanged = self._outgoing()
        if unchanged or rejected:  # (nothing to write otherwise: a sync that changed nothing stays cheap)
            with self.store.write():
                st.drop_outbox(self.conn, unchanged)
                self.summary.unchanged += len(unchanged)
                for kind, entity_id, found, rev in rejected:
                    doc = st.docs(self.conn, kind, [entity_id]).get(entity_id)
                    reason = "not sent: the server would refuse it (" + "; ".join(found[:3]) + ")"
                    st.add_conflict(self.conn, kind, entity_id, reason, "local", doc, None, now)
                    st.drop_outbox(self.conn, [(kind, entity_id, rev)])
                    self.summary.rejected.append({"kind": kind, "id": entity_id, "problems": found})
                    self.summary.conflicts.append({"kind": kind, "id": entity_id, "kept": "local", "reason": reason})
        total = len(items)
        done = 0
        self.progress("push", 0, total)
        for start in range(0, total, self.batch_size):
            chunk = items[start:start + self.batch_size]
            stale |= self._send(chunk)
            done += len(chunk)
            self.progress("push", done, total)
        return stale

    def _body(self, chunk: list[tuple[str, str, int, str, str, dict[str, Any]]]) -> bytes:
        changes: dict[str, list[dict[str, Any]]] = {}
        for kind, _id, _rev, _h, _base, item in chunk:
            changes.setdefault(wire.ARRAYS[kind], []).append(item)
        body: dict[str, Any] = {"changes": changes}
        if "conditional-push" in self.capabilities:
            versions: dict[str, int] = {}
            for kind in {c[0] for c in chunk}:
                known = st.states(self.conn, kind, [c[1] for c in chunk if c[0] == kind])
                for _k, entity_id, *_rest in (c for c in chunk if c[0] == kind):
                    state = known.get(entity_id)
                    versions[f"{kind}:{entity_id}"] = state[1] if state and state[1] is not None else 0
            body["baseVersions"] = versions
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()

    def _send(self, chunk: list[tuple[str, str, int, str, str, dict[str, Any]]]) -> bool:
        body = self._body(chunk)
        key = f"pp-{uuid.uuid4()}"
        items = [[k, i, rev, h, base] for k, i, rev, h, base, _item in chunk]
        with self.store.write():
            batch_id = st.add_batch(self.conn, key, body, items, self.now())
        return self._deliver({"id": batch_id, "key": key, "body": body, "items": items, "resend": False}, chunk)

    def _landed(self, pending: dict[str, Any]) -> tuple[int, int, bool, list[list[Any]]]:
        """What the merge just learnt of a batch from an earlier attempt: how many of its items show that it
        arrived (on the server as sent: only a logbook entry, plan or template, written here; two devices can
        generate the same session, and a deletion may be another device's), how many need nothing more (those,
        and deletions the server has no live copy of), whether the rest is still what we mean to say (queued at
        the revision sent), and its new items that a trusted full snapshot does not have."""
        arrived, settled, still = 0, 0, True
        absent: list[list[Any]] = []
        queued_all = st.outbox(self.conn)
        kinds = {k for k, *_rest in pending["items"]}
        ids = {kind: [i for k, i, *_r in pending["items"] if k == kind] for kind in kinds}
        known = {kind: st.states(self.conn, kind, ids[kind]) for kind in kinds}
        docs = {kind: st.docs(self.conn, kind, ids[kind]) for kind in kinds}
        snapshot = self._snapshot
        for item in pending["items"]:
            kind, entity_id, rev, h, _base = item
            state = known[kind].get(entity_id)
            doc = docs[kind].get(entity_id)
            gone = snapshot is not None and kind in snapshot and entity_id not in snapshot[kind]
            if state and state[0] == h:
                settled += 1  # the merge saw it on the server as sent
                if kind != "plan_occurrence" and doc is not None and not doc.get("deletedAt"):
                    arrived += 1
                continue
            if gone and doc is not None and doc.get("deletedAt") and wire.version_hash(kind, doc) == h:
                settled += 1  # a deletion: the server has no live copy
                continue
            queued = queued_all.get((kind, entity_id))
            if queued is None or queued[1] != rev:
                still = False  # changed since, or settled by the merge: the new state wins
            if gone and state is None and doc is not None and not doc.get("deletedAt"):
                absent.append(item)  # sent, never acknowledged, and the server has no live copy
        return arrived, settled, still, absent

    def _batch_arrived(self) -> bool:
        """Whether the merge found every item of the stored batch on the server as sent; if so the batch is
        dropped (settled) and its items count as sent by this sync."""
        pending = st.pending_batch(self.conn)
        if pending is None:
            return True
        if self._landed(pending)[1] != len(pending["items"]):
            return False
        with self.store.write():
            st.drop_batch(self.conn, pending["id"])
        self.summary.sent += len(pending["items"])
        return True

    def _resend(self, pending: dict[str, Any]) -> bool:
        """A batch from an earlier attempt (a crash, a timeout): resend it unchanged if it is still what we mean
        to say; drop it if the merge shows the server moved past it (its items are queued again anyway).

        A full snapshot without one of its new items is ambiguous: the batch never arrived, or it arrived and the
        item was deleted elsewhere since (a full snapshot has no tombstones). Sent again, such an item would come
        back to life everywhere. What tells: another item of the batch on the server as sent; a replay when the
        batch is resent under its key; and when the batch is no longer what we mean to say (it must not be
        resent), asking the server whether it holds the batch's key (:meth:`_probe`)."""
        arrived, settled, still, absent = self._landed(pending)
        if settled == len(pending["items"]):
            with self.store.write():
                st.drop_batch(self.conn, pending["id"])
            return False
        if absent and (arrived or (not still and self._probe(pending))):
            self._settle(pending, absent)
            return False
        if not still:
            # (after a probe the key may hold the probe's body: what is still queued goes out again from the
            # outbox, under a new key)
            with self.store.write():
                st.drop_batch(self.conn, pending["id"])
            return False
        pending["absent"] = absent
        return self._deliver(pending, None)

    def _settle(self, pending: dict[str, Any], absent: list[list[Any]]) -> None:
        """The batch reached the server: its new items the server no longer has were deleted there since. What
        else of it is still queued goes out again from the outbox (under a new key: the server moved on), pushed
        against the version the merge found on the server."""
        with self.store.write():
            self._deleted_elsewhere(absent)
            st.drop_batch(self.conn, pending["id"])

    def _probe(self, pending: dict[str, Any]) -> bool:
        """Did the server store ``pending`` under its idempotency key? Asked with an empty push under that key,
        which changes nothing either way: a server that holds another body under the key refuses it (ours: 422;
        Mirubato: its generic 500, so a push under a new key must pass and the probe fail again before that
        counts), one that does not accepts it. A server that cannot answer fails the sync (exit 75); the batch
        stays for the next one. Mirubato forgets keys after 24 to 48 hours, and a push it failed after storing:
        then the batch reads as never stored (docs/sync.md, "Limits")."""
        for attempt in range(2):
            try:
                self.client.push(EMPTY_PUSH, pending["key"])
                return False  # the key was free (or holds an earlier probe): the batch was never stored under it
            except RemoteRejectedError as exc:
                if exc.status == 422:
                    return True  # our server: "Idempotency key reused with a different body"
                raise
            except RetryLaterError as exc:
                if exc.status != 500:
                    raise
                if attempt:
                    return True
                self._call(self.client.push, EMPTY_PUSH, f"pp-{uuid.uuid4()}")  # raises when the server is down
        raise AssertionError("unreachable")

    def _deleted_elsewhere(self, absent: list[list[Any]]) -> None:
        """New items of a batch that reached the server and that its full snapshot no longer has: deleted on
        another device since. Deleted here too (a plan with its sessions); the version here is kept in a conflict
        record, since nothing on the server shows who deleted it. Inside the caller's transaction."""
        now = self.now()
        reason = ("deleted on the server after this device's earlier push of it arrived (its answer was lost); "
                  "deleted here too; this record keeps it (`sync resolve ID --keep local` restores it)")
        plans: list[str] = []
        docs: dict[tuple[str, str], dict[str, Any]] = {}
        for kind in {k for k, *_rest in absent}:  # one query per kind, not per item
            docs.update(((kind, i), d) for i, d in st.docs(self.conn, kind, [i for k, i, *_r in absent
                                                                             if k == kind]).items())
        for kind, entity_id, _rev, _h, _base in absent:
            doc = docs.get((kind, entity_id))
            if doc is None or doc.get("deletedAt"):
                continue
            self.store.save_many(kind, [{**doc, "deletedAt": now, "updatedAt": now}], now, outbox=False)
            st.drop_outbox(self.conn, [(kind, entity_id, None)])
            st.forget_states(self.conn, kind, [entity_id])
            st.add_conflict(self.conn, kind, entity_id, reason, "remote", doc, None, now)
            self.summary.merged += 1
            self.summary.deleted_here += 1
            self.summary.conflicts.append({"kind": kind, "id": entity_id, "kept": "remote", "reason": reason})
            if kind == "practice_plan":
                plans.append(entity_id)
        if not plans:
            return
        # a plan's sessions end with it: the server is told of those it holds, the others go here only
        sessions = [d for d in st.sessions_of(self.conn, plans) if not d.get("deletedAt")]
        known = st.states(self.conn, "plan_occurrence", [d["id"] for d in sessions])
        told = [{**d, "deletedAt": now, "updatedAt": now} for d in sessions if d["id"] in known]
        here = [{**d, "deletedAt": now, "updatedAt": now} for d in sessions if d["id"] not in known]
        if told:
            self.store.save_many("plan_occurrence", told, now, outbox=True)
        if here:
            self.store.save_many("plan_occurrence", here, now, outbox=False)
            st.drop_outbox(self.conn, [("plan_occurrence", d["id"], None) for d in here])
        self.summary.merged += len(sessions)
        self.summary.deleted_here += len(sessions)

    def _deliver(self, batch: dict[str, Any], chunk: list[tuple[str, str, int, str, str, dict[str, Any]]] | None
                 ) -> bool:
        try:
            response = self._call(self._post, batch)
        except RemoteRejectedError as exc:
            if exc.status not in (400, 413):  # 413: too large for this server; smaller batches may pass
                raise
            with self.store.write():
                st.drop_batch(self.conn, batch["id"])  # a 400 wrote nothing
            return self._split(batch, chunk)
        self.summary.batches += 1
        if getattr(response, "replay", False) and "absent" in batch:
            # a batch from an earlier attempt, answered from the server's memory: it had arrived, and the merge
            # just settled what the server still holds as sent. Its other items were changed since (on the server
            # or here): acknowledged now, they would be taken for the server's versions (a newer version pulled
            # meanwhile would never come back from an incremental pull); they stay queued and go out again below
            self._settle(batch, batch["absent"])
            return False
        return self._acknowledge(batch, response.body if hasattr(response, "body") else response)

    def _post(self, batch: dict[str, Any]) -> Any:
        """Send a stored batch. A new batch is stored as tried once (it is sent right after, no extra commit);
        each resend is counted first, so `sync status` tells how often an unacknowledged batch went out."""
        if batch.get("resend", True):
            with self.store.write():
                st.count_attempt(self.conn, batch["id"])
        batch["resend"] = True
        return self.client.push(batch["body"], batch["key"])

    def _split(self, batch: dict[str, Any], chunk: list[tuple[str, str, int, str, str, dict[str, Any]]] | None
               ) -> bool:
        """A bare 400: the server names nothing. Halve the batch until the item it refuses stands alone."""
        if chunk is None:  # a resent batch: rebuild its items from the body we stored
            chunk = self._chunk_from(batch)
        if len(chunk) == 1:
            kind, entity_id, rev, _h, _base, item = chunk[0]
            found = wire.problems(kind, item) or ["the server gave no detail; no field is known to be wrong"]
            reason = "refused by the server (a bad request): " + "; ".join(found[:3])
            with self.store.write():
                doc = st.docs(self.conn, kind, [entity_id]).get(entity_id)
                st.add_conflict(self.conn, kind, entity_id, reason, "local", doc, None, self.now())
                st.drop_outbox(self.conn, [(kind, entity_id, rev)])
            self.summary.rejected.append({"kind": kind, "id": entity_id, "problems": found})
            self.summary.conflicts.append({"kind": kind, "id": entity_id, "kept": "local", "reason": reason})
            return False
        middle = len(chunk) // 2
        stale = self._send(chunk[:middle])
        return self._send(chunk[middle:]) or stale

    def _chunk_from(self, batch: dict[str, Any]) -> list[tuple[str, str, int, str, str, dict[str, Any]]]:
        body = json.loads(batch["body"])
        items = {(wire.KIND_OF_ARRAY[a], i["id"]): i for a, lst in body.get("changes", {}).items() for i in lst}
        return [(k, i, rev, h, base, items[(k, i)]) for k, i, rev, h, base in batch["items"] if (k, i) in items]

    def _acknowledge(self, batch: dict[str, Any], body: Any) -> bool:
        if not isinstance(body, dict):
            body = {}
        refused: dict[tuple[str, str], dict[str, Any]] = {}
        for c in body.get("conflicts") or []:
            if isinstance(c, dict) and isinstance(c.get("entityId"), str):
                refused[(str(c.get("entityType")), c["entityId"])] = c
        versions = body.get("versions") if isinstance(body.get("versions"), dict) else {}
        stale = False
        now = self.now()
        with self.store.write():
            docs_now: dict[tuple[str, str], dict[str, Any] | None] = {}
            for kind in {k for k, *_rest in batch["items"]}:  # one query per kind, not per item
                ids = [i for k, i, *_r in batch["items"] if k == kind]
                docs_now.update(((kind, i), d) for i, d in st.docs(self.conn, kind, ids).items())
            for kind, entity_id, rev, h, _base in batch["items"]:
                conflict = refused.get((kind, entity_id))
                if conflict is not None:
                    if conflict.get("reason") == "stale":
                        stale = True  # the server moved on since our pull: pull, merge, push again
                        continue
                    if conflict.get("reason") == "forbidden":
                        self._forbidden(kind, entity_id, rev, docs_now.get((kind, entity_id)), conflict, now)
                        continue
                    reason = f"refused by the server: {conflict.get('reason') or 'no reason given'}"
                    st.add_conflict(self.conn, kind, entity_id, reason, "local", docs_now.get((kind, entity_id)), None, now)
                    st.drop_outbox(self.conn, [(kind, entity_id, rev)])
                    self.summary.rejected.append({"kind": kind, "id": entity_id, "problems": [reason]})
                    self.summary.conflicts.append({"kind": kind, "id": entity_id, "kept": "local", "reason": reason})
                    continue
                doc = docs_now.get((kind, entity_id))
                version = versions.get(f"{kind}:{entity_id}")
                if doc is not None and doc.get("deletedAt") and wire.version_hash(kind, doc) == h \
                        and not isinstance(version, int):
                    st.forget_states(self.conn, kind, [entity_id])
                else:  # a deletion with a server version is remembered (see _tombstone)
                    st.set_states(self.conn, kind, [(entity_id, h, version if isinstance(version, int) else None)])
                st.drop_outbox(self.conn, [(kind, entity_id, rev)])
                self.summary.sent += 1
                if doc is not None and not doc.get("deletedAt"):
                    st.set_meta(self.conn, "expect_data", "1")
            st.drop_batch(self.conn, batch["id"])
        return stale

    def _forbidden(self, kind: str, entity_id: str, rev: int, mine: dict[str, Any] | None,
                   conflict: dict[str, Any], now: str) -> None:
        """The server refused an item this account may not write (a shared plan it lost access to, or a level
        lowered meanwhile): the refused version is kept in a conflict record and the server's version is put
        back here (none: the local copy of someone else's plan or comment goes). Inside the acknowledgement."""
        remote = conflict.get("remote")
        version = conflict.get("remoteVersion")
        version = version if isinstance(version, int) and not isinstance(version, bool) else None
        theirs = None
        if isinstance(remote, dict) and isinstance(remote.get("id"), str):
            theirs = wire.from_remote(kind, {k: v for k, v in remote.items() if k != "_version"}, mine)
        reason = ("refused by the server: forbidden (you may not make this change to a shared plan, or no longer "
                  "take part in it); the server's version is kept here, this device's is in this record")
        st.add_conflict(self.conn, kind, entity_id, reason, "remote", mine, theirs, now)
        st.drop_outbox(self.conn, [(kind, entity_id, rev)])
        if theirs is not None:
            if theirs.get("deletedAt") and (mine is None or mine.get("deletedAt")):
                pass  # deleted on both sides: nothing to put back
            elif theirs.get("deletedAt"):
                self.store.save_many(kind, [{**mine, "deletedAt": theirs["deletedAt"],  # type: ignore[dict-item]
                                             "updatedAt": wire.updated_at(theirs) or now}], now, outbox=False)
            else:
                self.store.save_many(kind, [theirs], now, outbox=False)
                if kind == "practice_plan":
                    st.clear_horizons(self.conn, [entity_id])
            st.set_states(self.conn, kind, [(entity_id, wire.version_hash(kind, theirs), version)])
        else:
            if kind in ("practice_plan", "plan_comment"):
                self.conn.execute(f"DELETE FROM {TABLES[kind]} WHERE id = ?", (entity_id,))
            elif mine is not None and not mine.get("deletedAt"):
                self.store.save_many(kind, [{**mine, "deletedAt": now, "updatedAt": now}], now, outbox=False)
            st.forget_states(self.conn, kind, [entity_id])
        self.summary.rejected.append({"kind": kind, "id": entity_id, "problems": [reason]})
        self.summary.conflicts.append({"kind": kind, "id": entity_id, "kept": "remote", "reason": reason})
