"""A hypothesis state machine: three devices of one user edit, delete, check in and sync through the test
server (Mirubato mode, then the extended mode) under injected faults and skewed clocks; at the end of every
example each device equals the server, nothing is doubled, no deletion comes back without a conflict record
saying why, and every write that did not survive is kept in a conflict record.

The server runs in-process (Starlette's TestClient transport): no socket, no thread per request. Faults that
need a real network connection (``drop-after``: a TCP abort; ``delay-after``: a client read timeout) cannot be
reproduced faithfully over this transport, so they are left to the real-network fault suite; ``500-before``,
``500-after``, ``truncate``, ``429`` and ``empty-pull`` act on the answer and behave here exactly as over the
network.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from practiceplan.errors import InvalidInputError, RetryLaterError
from practiceplan.sync import engine as engine_mod
from practiceplan.sync import wire
from practiceplan.sync.client import Client
from tests.sync.homes import Home, server_versions
from tests.sync.mirubato import ServerState, make_app

with warnings.catch_warnings():  # Starlette's notice that it would rather have httpx2 (we use httpx)
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

USER = "user_a"
URL = "http://127.0.0.1"
REPLICAS = 3
TOKEN_FIELD = {"logbook_entry": "notes", "practice_plan": "title"}  # a unique value written by every tracked write
DELETABLE = ("logbook_entry", "practice_plan", "plan_occurrence")
PICK = st.integers(min_value=0, max_value=10_000)  # an index into what a replica holds (shrinks towards the first)
# databases on tmpfs when there is one: every commit is synchronous=FULL, and fsyncs dominate the run time
SCRATCH = "/dev/shm" if Path("/dev/shm").is_dir() and os.access("/dev/shm", os.W_OK) else None
RETRIES = 3  # engine: retry_delays has three entries; a fourth fault in a row fails the sync


class FastHome(Home):
    """A :class:`Home` whose remote is set through the service (no CLI run), with its own sync client over an
    in-process transport."""

    def __init__(self, folder: Path, token: str, transport: Any) -> None:  # noqa: D107
        from datetime import timedelta as _td

        from practiceplan.domain.models import parse_instant
        from tests.sync.homes import BASE_NOW

        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.url, self.token, self.zone, self.timeout = URL, token, "Europe/Berlin", 5.0
        self.env_token = True
        self.now = parse_instant(BASE_NOW)
        self.skew = _td(0)
        with self.session() as s:
            s.remote.set(URL)
            device = s.remote.device_id()
        self.client = Client(URL, token, device, transport=transport)


@dataclass
class Ent:
    """What the replicas did to one entity: tracked writes (token -> the token the writer held before), and
    deletions (replica, deletedAt, the token it held)."""

    kind: str
    id: str
    parents: dict[str, str | None] = field(default_factory=dict)
    deletions: list[tuple[int, str, str | None]] = field(default_factory=list)
    acked: set[int] = field(default_factory=set)  # replicas that acknowledged (stored) a write of it locally


class SleepRecorder:
    def __init__(self) -> None:
        self.slept: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


class SyncMachine(RuleBasedStateMachine):
    extended = False

    def __init__(self) -> None:
        super().__init__()
        self.state: ServerState = self.server_state()
        self.state.reset()
        self.state.clear_faults()  # an example that failed mid-run left its faults behind
        self.tc = self.test_client()
        self.tmp = Path(tempfile.mkdtemp(prefix="pp-sm-", dir=SCRATCH))
        token = self.state.token_for(USER, expires_in=24 * 3600)
        self.homes = [FastHome(self.tmp / f"r{i}", token, self.tc._transport) for i in range(REPLICAS)]
        self.ents: dict[tuple[str, str], Ent] = {}
        self.serial = 0
        self.pending_faults = 0
        self.syncs_failed = 0
        self.sleeper = SleepRecorder()
        # the engine's retry waits (a 429's Retry-After included) are recorded, not slept
        self._engine = engine_mod.Engine
        engine_mod.Engine = functools.partial(self._engine, sleep=self.sleeper)  # type: ignore[misc]

    # one server and one in-process client per class, shared by every example (reset per example)
    @classmethod
    def server_state(cls) -> ServerState:
        if "_state" not in cls.__dict__:
            cls._state = ServerState(extended=cls.extended)
        return cls._state

    @classmethod
    def test_client(cls) -> TestClient:
        if "_tc" not in cls.__dict__:
            cls._tc = TestClient(make_app(cls.server_state()), raise_server_exceptions=False)
            cls._tc.__enter__()  # one event-loop portal for every request
        return cls._tc

    # ------------------------------------------------------------------ helpers

    def token(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    def step_clock(self, minutes: int = 3) -> None:
        for home in self.homes:
            home.tick(minutes)

    def ent(self, kind: str, entity_id: str) -> Ent:
        return self.ents.setdefault((kind, entity_id), Ent(kind, entity_id))

    def live(self, r: int, kind: str, where: Any = None) -> list[dict[str, Any]]:
        docs = self.homes[r].docs(kind)
        return [docs[i] for i in sorted(docs) if where is None or where(docs[i])]

    @staticmethod
    def pick(items: list[Any], n: int) -> Any:
        return items[n % len(items)]

    def record_write(self, r: int, kind: str, entity_id: str, token: str, parent: str | None) -> None:
        e = self.ent(kind, entity_id)
        assert token not in e.parents
        e.parents[token] = parent
        e.acked.add(r)

    # ------------------------------------------------------------------ a shared start

    @initialize(entries=st.integers(0, 3), plans=st.integers(0, 2), recurring=st.booleans())
    def shared_start(self, entries: int, plans: int, recurring: bool) -> None:
        """Replica 0 logs a little and makes plans, and every replica syncs: the rules then find the same
        entities everywhere, so concurrent edits and deletions meet."""
        for n in range(entries):
            self.log_entry(0, 10 + n)
        for n in range(plans):
            self.add_plan(0, 30, 1 + n, recurring and n == 0)
        if entries or plans:
            for r in range(REPLICAS):
                self.run_sync(r)

    # ------------------------------------------------------------------ rules: writes

    @rule(r=st.integers(0, REPLICAS - 1), minutes=st.integers(1, 240))
    def log_entry(self, r: int, minutes: int) -> None:
        self.step_clock()
        tok = self.token("n")
        with self.homes[r].session() as s:
            entry = s.logbook.log_free({"duration": minutes, "notes": tok})
        self.record_write(r, "logbook_entry", entry["id"], tok, None)

    @rule(r=st.integers(0, REPLICAS - 1), minutes=st.integers(5, 90), days=st.integers(1, 5),
          recurring=st.booleans())
    def add_plan(self, r: int, minutes: int, days: int, recurring: bool) -> None:
        from practiceplan.domain.plans import PlanInput

        self.step_clock()
        tok = self.token("P")
        home = self.homes[r]
        with home.session() as s:
            when = s.now + timedelta(days=days)
            if recurring:  # weekly on one day for three weeks: three sessions
                day = ("mo", "tu", "we", "th", "fr", "sa", "su")[when.astimezone(s.zone).weekday()]
                inp = PlanInput(title=tok, every="weekly", on=[day], minutes=minutes,
                                end=(when + timedelta(days=15)).astimezone(s.zone).date())
            else:
                inp = PlanInput(title=tok, once=when, minutes=minutes)
            plan, _count = s.plans.add(inp)
        self.record_write(r, "practice_plan", plan["id"], tok, None)

    @rule(r=st.integers(0, REPLICAS - 1), n=PICK, minutes=st.none() | st.integers(1, 240))
    def edit_entry(self, r: int, n: int, minutes: int | None) -> None:
        entries = self.live(r, "logbook_entry")
        if not entries:
            return
        self.step_clock()
        entry = self.pick(entries, n)
        tok = self.token("n")
        changes: dict[str, Any] = {"notes": tok}
        if minutes is not None:
            changes["duration"] = minutes
        with self.homes[r].session() as s:
            s.logbook.edit(entry["id"], changes)
        self.record_write(r, "logbook_entry", entry["id"], tok, entry.get("notes"))

    @rule(r=st.integers(0, REPLICAS - 1), n=PICK, minutes=st.none() | st.integers(5, 90))
    def edit_plan(self, r: int, n: int, minutes: int | None) -> None:
        from practiceplan.domain.plans import PlanInput

        plans = self.live(r, "practice_plan")
        if not plans:
            return
        self.step_clock()
        plan = self.pick(plans, n)
        tok = self.token("P")
        with self.homes[r].session() as s:
            s.plans.edit(plan["id"], PlanInput(title=tok, minutes=minutes))
        self.record_write(r, "practice_plan", plan["id"], tok, plan.get("title"))

    @rule(r=st.integers(0, REPLICAS - 1), n=PICK)
    def delete_entry(self, r: int, n: int) -> None:
        entries = self.live(r, "logbook_entry")
        if not entries:
            return
        self.step_clock()
        entry = self.pick(entries, n)
        with self.homes[r].session() as s:
            gone = s.logbook.delete(entry["id"])
        self.ent("logbook_entry", entry["id"]).deletions.append((r, gone["deletedAt"], entry.get("notes")))

    @rule(r=st.integers(0, REPLICAS - 1), n=PICK)
    def delete_plan(self, r: int, n: int) -> None:
        plans = self.live(r, "practice_plan")
        if not plans:
            return
        self.step_clock()
        plan = self.pick(plans, n)
        with self.homes[r].session() as s:
            gone, sessions = s.plans.delete(plan["id"])
        self.ent("practice_plan", plan["id"]).deletions.append((r, gone["deletedAt"], plan.get("title")))
        for occ in sessions:
            self.ent("plan_occurrence", occ["id"]).deletions.append((r, occ["deletedAt"], None))

    @rule(r=st.integers(0, REPLICAS - 1), n=PICK, minutes=st.none() | st.integers(1, 120))
    def check_in(self, r: int, n: int, minutes: int | None) -> None:
        sessions = self.live(r, "plan_occurrence", lambda o: o.get("status") == "scheduled")
        if not sessions:
            return
        self.step_clock()
        occ = self.pick(sessions, n)
        tok = self.token("n")
        with self.homes[r].session() as s:
            entry, _occ = s.occurrences.checkin(occ["id"], minutes=minutes, notes=tok)
        self.record_write(r, "logbook_entry", entry["id"], tok, None)

    @rule(r=st.integers(0, REPLICAS - 1), n=PICK)
    def uncheck(self, r: int, n: int) -> None:
        done = self.live(r, "plan_occurrence", lambda o: o.get("status") == "completed")
        if not done:
            return
        self.step_clock(1)
        occ = self.pick(done, n)
        with self.homes[r].session() as s:
            try:
                s.occurrences.uncheck(occ["id"], None)
            except InvalidInputError:  # past the undo window (or not undoable): nothing changed
                pass

    @rule(r=st.integers(0, REPLICAS - 1), n=PICK)
    def skip(self, r: int, n: int) -> None:
        sessions = self.live(r, "plan_occurrence", lambda o: o.get("status") == "scheduled")
        if not sessions:
            return
        self.step_clock()
        occ = self.pick(sessions, n)
        with self.homes[r].session() as s:
            try:
                s.schedule.skip(occ["id"], "busy")
            except InvalidInputError:
                pass

    @rule(r=st.integers(0, REPLICAS - 1))
    def read_today(self, r: int) -> None:
        """What any read command does first: sessions of plans received by sync are materialised here."""
        self.step_clock()
        with self.homes[r].session() as s:
            s.plans.extend_horizon()

    # ------------------------------------------------------------------ rules: sync, faults, clocks

    def run_sync(self, r: int) -> Any:
        with self.homes[r].session() as s:
            return s.sync.run(client=self.homes[r].client)

    @rule(r=st.integers(0, REPLICAS - 1))
    def sync(self, r: int) -> None:
        self.step_clock()
        queued = sum(f.remaining for f in self.state.faults)
        try:
            self.run_sync(r)
        except RetryLaterError:
            # only when more faults were queued than the engine retries one request
            assert queued > RETRIES, "a sync failed although every fault was retryable within its retries"
            self.syncs_failed += 1

    @rule(r=st.integers(0, REPLICAS - 1))
    def sync_again(self, r: int) -> None:
        """(The same as ``sync``: two rules make syncs as frequent as writes.)"""
        self.sync(r)

    @rule(kind=st.sampled_from(["500-before", "500-after", "truncate", "429", "empty-pull"]),
          on_push=st.booleans(), outage=st.booleans(), then_pull=st.booleans())
    def fault(self, kind: str, on_push: bool, outage: bool, then_pull: bool) -> None:
        """One fault for the next request (the next push, with ``on_push``); an ``outage`` repeats it past the
        engine's retries, so that sync fails and a later one must finish the job. ``then_pull``: the pull after
        a push outage fails too (the second pull from now: a full-snapshot sync pulls again to see whether a push
        with no answer arrived), so that a later sync must tell (Engine._resend, _probe)."""
        # faults left over (a push fault with nothing to push) are dropped first: one fault plan at a time. (Not a
        # precondition: whether a fault was used up depends on which entities the rules picked, and the picks
        # depend on random ids, so hypothesis would find the rule choice flaky.)
        self.state.clear_faults()
        count = RETRIES + 1 if outage and kind != "empty-pull" else 1
        path = "/api/sync/push" if on_push and kind != "empty-pull" else None
        seconds = 1 if kind == "429" else None  # a short Retry-After (recorded, not slept)
        self.state.inject(kind, count, path=path, seconds=seconds)
        # (not after a Mirubato 500-after: that server keeps no key for it and no tombstones, so a later sync
        # cannot tell "never arrived" from "deleted elsewhere since": docs/sync.md, "Limits with a Mirubato server")
        if then_pull and path and outage and kind != "429" and (self.extended or kind != "500-after"):
            self.state.inject("500-before", RETRIES + 1, path="/api/sync/pull", skip=1)

    @rule(r=st.integers(0, REPLICAS - 1), hours=st.sampled_from([-36, 0, 36]))
    def skew(self, r: int, hours: int) -> None:
        self.homes[r].skew = timedelta(hours=hours)

    @invariant()
    def retry_waits_are_short(self) -> None:
        assert all(s <= 2.0 for s in self.sleeper.slept)

    # ------------------------------------------------------------------ the end of an example

    def teardown(self) -> None:
        try:
            if hasattr(self, "homes"):
                self.check_end()
        finally:
            engine_mod.Engine = self._engine  # type: ignore[misc]
            shutil.rmtree(self.tmp, ignore_errors=True)

    def sync_round(self) -> None:
        for r in range(REPLICAS):
            self.step_clock()
            summary = self.run_sync(r)
            assert not summary.warnings or all("empty snapshot" in w for w in summary.warnings), summary.warnings

    def check_end(self) -> None:
        self.state.clear_faults()
        for _round in range(2):
            self.sync_round()
        if not self.state.live_rows(USER):
            # everything was deleted: a device that synced data before trusts an empty snapshot only the second
            # time in a row (docs/sync.md), so the last deletions need one more round to reach every device
            self.sync_round()
        held = server_versions(self.state, USER)
        # 1. every replica equals the server, nothing queued
        for r, home in enumerate(self.homes):
            assert home.versions() == held, f"replica {r} differs from the server"
            assert home.outbox() == 0, f"replica {r} still has queued changes"
        rows = self.state.live_rows(USER)
        live: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in held}
        for row in rows:
            if row.entity_type in live:
                assert row.entity_id not in live[row.entity_type], f"{row.entity_id} twice on the server"
                live[row.entity_type][row.entity_id] = wire.from_remote(row.entity_type, dict(row.data))
        conflicts = [c for home in self.homes for c in home.conflicts()]
        # 2. no duplicates: one entry per logged practice, one session per plan and start
        created = {i for (k, i), e in self.ents.items() if k == "logbook_entry" and e.parents}
        deleted = {i for (k, i), e in self.ents.items() if k == "logbook_entry" and e.deletions}
        assert set(live["logbook_entry"]) <= created, "an entry nobody created is on the server"
        assert created - deleted <= set(live["logbook_entry"]), "an entry nobody deleted is gone"
        notes = [d.get("notes") for d in live["logbook_entry"].values()]
        assert len(notes) == len(set(notes)), "the same logged practice is on the server twice"
        starts = [(o.get("planId"), o.get("scheduledStart")) for o in live["plan_occurrence"].values()
                  if o.get("status") != "rescheduled"]
        assert len(starts) == len(set(starts)), "a session of a plan is on the server twice"
        plans_made = {i for (k, i), e in self.ents.items() if k == "practice_plan" and e.parents}
        plans_gone = {i for (k, i), e in self.ents.items() if k == "practice_plan" and e.deletions}
        assert set(live["practice_plan"]) <= plans_made
        assert plans_made - plans_gone <= set(live["practice_plan"]), "a plan nobody deleted is gone"
        # 3. no resurrected deletions, unless the deletion lost last-write-wins and a conflict says so
        for (kind, entity_id), e in self.ents.items():
            if e.deletions and entity_id in live[kind]:
                if kind == "plan_occurrence" and live[kind][entity_id].get("planId") in live["practice_plan"]:
                    continue  # its plan came back (checked as a plan): its sessions are made again, same ids
                assert self.deletion_lost(kind, entity_id, e, conflicts), (
                    f"{kind} {entity_id} deleted by replica(s) {[d[0] for d in e.deletions]} at "
                    f"{[d[1] for d in e.deletions]} is live again without a conflict record of a later version")
        # 4. every write that is not in the final state, nor an ancestor of it, is in a conflict record
        for (kind, entity_id), e in self.ents.items():
            if kind not in TOKEN_FIELD or not e.parents:
                continue
            fld = TOKEN_FIELD[kind]
            final = live[kind].get(entity_id)
            lost = {(c["local"] if c["kept"] == "remote" else c["remote"] or {}).get(fld)
                    for c in conflicts if c["kind"] == kind and c["id"] == entity_id
                    and (c["local"] if c["kept"] == "remote" else c["remote"])}
            # covered: the final version and what it was made from; a lost version kept in a conflict record
            # and what it was made from (resolving that conflict brings all of it back)
            # a deletion supersedes the version it was made from (invariant 3 says whether the deletion held)
            heads = [final.get(fld)] if final is not None else []
            heads += [d[2] for d in e.deletions]
            covered: set[str | None] = set()
            for head in [*heads, *lost]:
                while head is not None and head not in covered:
                    covered.add(head)
                    head = e.parents.get(head)
            for tok in e.parents:
                assert tok in covered, (
                    f"{kind} {entity_id}: the write {fld}={tok!r} is neither in the final state "
                    f"({final and final.get(fld)!r}) nor kept as a lost version in a conflict record")

    @staticmethod
    def deletion_lost(kind: str, entity_id: str, e: Ent, conflicts: list[dict[str, Any]]) -> bool:
        """Some conflict record shows a deletion of this entity losing to a live version written after it:
        ``kept == "remote"`` with the deletion as the local version, or ``kept == "local"`` with a live local
        version over the server's tombstone."""
        for c in conflicts:
            if c["kind"] != kind or c["id"] != entity_id or not c["local"] or not c["remote"]:
                continue
            if c["kept"] == "remote":
                gone, alive = c["local"], c["remote"]
            else:
                alive, gone = c["local"], c["remote"]
            if gone.get("deletedAt") and not alive.get("deletedAt") and \
                    wire.updated_at(alive) >= gone["deletedAt"]:
                return True
        return False


# derandomize: CI runs the same 200 (and 50) examples every time, so a red build means a change broke something.
# Explore new examples locally with derandomize=False (a randomized run found the plan/session case now in
# test_engine_regressions.py).
SyncMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None, derandomize=True,
                                         suppress_health_check=[HealthCheck.too_slow])


class ExtendedSyncMachine(SyncMachine):
    extended = True


ExtendedSyncMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=40, deadline=None,
                                                 derandomize=True, suppress_health_check=[HealthCheck.too_slow])

TestMirubatoSync = SyncMachine.TestCase
TestExtendedSync = ExtendedSyncMachine.TestCase
