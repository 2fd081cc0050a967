"""A state machine over four users of one in-process server (SQLite): plans are created, shared, unshared, left,
their levels changed, edited, commented, sessions pushed and everyone pulls, in random order. Invariants:

* a user never receives a row, a shared session, a ``sharing`` entry or a live event of a plan that was never
  shared with them (and that they do not own);
* a removed member receives nothing of that plan after the removal (its pulls, and its events after
  ``ACCESS_REVOKED``) until it is shared with them again;
* nobody but the owner ever receives the owner's private notes; a session's private fields never reach
  another participant;
* the server's verdict on every push item follows the level table (docs/collaboration.md).
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from practiceplan.server import db, users
from practiceplan.server.service import Limits, SyncService
from tests.server.test_sharing import comment, plan, session

NAMES = ("u0", "u1", "u2", "u3")
LEVELS = ("view", "comment", "edit")
RANK = {"view": 1, "comment": 2, "edit": 3}
STAMPS = [f"2026-05-{d:02d}T09:00:00.000Z" for d in range(2, 29)]


@functools.cache
def template_db() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="pp-sharing-machine-"))
    engine = db.make_engine(str(folder / "server.db"))
    db.migrate(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return folder / "server.db"


def plan_of_event(event: dict[str, Any]) -> str | None:
    for key in ("plan", "comment", "occurrence"):
        value = event.get(key)
        if isinstance(value, dict):
            return value.get("id") if key == "plan" else value.get("planId")
    return event.get("planId")


class SharingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        shutil.copy(template_db(), Path(self.tmp.name) / "server.db")  # migrated once, copied per example
        self.engine = db.make_engine(str(Path(self.tmp.name) / "server.db"))
        self.service = SyncService(self.engine, Limits(rate_per_minute=0))
        self.users = {name: users.add(self.engine, name, "learner")[0] for name in NAMES}
        self.owner: dict[str, str] = {}  # plan -> owner
        self.members: dict[str, dict[str, str]] = {}  # plan -> member -> level (active)
        self.deleted: set[str] = set()  # plans their owner deleted (still shared: members get the tombstone)
        self.ever: dict[str, set[str]] = {n: set() for n in NAMES}  # plans a user ever took part in
        self.cursor: dict[str, Any] = {n: None for n in NAMES}
        self.last_event: dict[str, int] = {n: 0 for n in NAMES}
        self.count = 0
        self.tick = 0

    def teardown(self) -> None:
        self.engine.dispose()
        self.tmp.cleanup()

    # -------------------------------------------------------------------------------------------- helpers

    def stamp(self) -> str:
        self.tick += 1
        return STAMPS[min(self.tick, len(STAMPS) - 1)]

    def push(self, who: str, changes: dict[str, Any]) -> dict[str, Any]:
        reply = self.service.push(self.users[who], {"changes": changes}, None, None)
        assert reply.status == 200, reply.body
        return reply.body

    def level(self, pid: str, who: str) -> str | None:
        return "owner" if self.owner[pid] == who else self.members[pid].get(who)

    def pick(self, seq: list[Any], i: int) -> Any:
        return seq[i % len(seq)]

    def live_plans(self) -> list[str]:
        return sorted(p for p in self.owner if p not in self.deleted)

    def visible(self, who: str) -> set[str]:
        return {p for p in self.owner if self.level(p, who) is not None}

    # -------------------------------------------------------------------------------------------- rules

    @rule(who=st.sampled_from(NAMES))
    def create_plan(self, who: str) -> None:
        self.count += 1
        pid = f"plan{self.count}"
        body = self.push(who, {"practicePlans": [plan(pid, metadata={"privateNotes": f"secret-{pid}"})]})
        assert body["conflicts"] == []
        self.owner[pid], self.members[pid] = who, {}
        self.ever[who].add(pid)

    @precondition(lambda self: self.live_plans())
    @rule(i=st.integers(0, 99), j=st.integers(0, 3), level=st.sampled_from(LEVELS))
    def share(self, i: int, j: int, level: str) -> None:
        pid = self.pick(self.live_plans(), i)
        owner, target = self.owner[pid], NAMES[j]
        reply = self.service.share(self.users[owner], pid, {"user": target, "level": level})
        if target == owner:
            assert reply.status == 400
            return
        assert reply.status == 200, reply.body
        self.members[pid][target] = level
        self.ever[target].add(pid)

    @precondition(lambda self: any(ms for p, ms in self.members.items() if p not in self.deleted))
    @rule(i=st.integers(0, 99), leave=st.booleans())
    def unshare(self, i: int, leave: bool) -> None:
        pairs = sorted((p, m) for p, ms in self.members.items() for m in ms if p not in self.deleted)
        pid, member = self.pick(pairs, i)
        caller = member if leave else self.owner[pid]
        reply = self.service.unshare(self.users[caller], pid, member)
        assert reply.status == 200, reply.body
        del self.members[pid][member]

    @precondition(lambda self: self.owner)
    @rule(i=st.integers(0, 99), j=st.integers(0, 3), delete=st.booleans())
    def edit_plan(self, i: int, j: int, delete: bool) -> None:
        """A participant (or a former one) edits or deletes the plan."""
        pid = self.pick(sorted(self.owner), i)
        who = NAMES[j]
        if pid not in self.ever[who]:
            return
        stamp = self.stamp()
        item = {"id": pid, "deletedAt": stamp} if delete else plan(pid, f"title by {who}", stamp)
        body = self.push(who, {"practicePlans": [item]})
        level = self.level(pid, who)
        if level == "owner" or (level == "edit" and not delete and pid not in self.deleted):
            assert body["conflicts"] == [], body
            if delete:
                self.deleted.add(pid)
            else:
                self.deleted.discard(pid)
        else:
            assert [c["reason"] for c in body["conflicts"]] == ["forbidden"], (level, body)
            if level is None:
                assert body["conflicts"][0]["remote"] is None

    @precondition(lambda self: self.owner)
    @rule(i=st.integers(0, 99), j=st.integers(0, 3))
    def add_comment(self, i: int, j: int) -> None:
        pid = self.pick(sorted(self.owner), i)
        who = NAMES[j]
        if pid not in self.ever[who]:
            return
        self.count += 1
        body = self.push(who, {"planComments": [comment(f"c{self.count}", pid, f"from {who}", self.stamp())]})
        level = self.level(pid, who)
        if pid not in self.deleted and (level == "owner" or (level is not None and RANK[level] >= 2)):
            assert body["conflicts"] == [], body
        else:
            assert [c["reason"] for c in body["conflicts"]] == ["forbidden"], (level, body)

    @precondition(lambda self: self.owner)
    @rule(i=st.integers(0, 99), j=st.integers(0, 3))
    def push_session(self, i: int, j: int) -> None:
        pid = self.pick(sorted(self.owner), i)
        who = NAMES[j]
        if self.level(pid, who) is None:
            return
        self.count += 1
        body = self.push(who, {"planOccurrences": [session(f"occ{self.count}", pid, self.stamp())]})
        assert body["conflicts"] == []

    @rule(who=st.sampled_from(NAMES))
    def pull(self, who: str) -> None:
        cursor, merged = self.cursor[who], {"practicePlans": [], "planComments": [], "sharedSessions": []}
        while True:
            reply = self.service.pull(self.users[who], {"since": cursor, "limit": 7})
            assert reply.status == 200, reply.body
            body = reply.body
            for key in merged:
                merged[key].extend(body[key])
            cursor = body["cursor"]
            if not body["hasMore"]:
                break
        self.cursor[who] = cursor
        allowed = self.visible(who)
        for p in merged["practicePlans"]:
            assert p["id"] in allowed or (p["id"] in self.owner and self.owner[p["id"]] == who), (who, p["id"])
            if self.owner.get(p["id"]) != who:
                assert "privateNotes" not in json.dumps(p)
        for c in merged["planComments"]:
            assert c["planId"] in allowed, (who, c)
        for s in merged["sharedSessions"]:
            assert s["planId"] in allowed and s["member"] != who, (who, s)
            assert not {"notes", "logEntryId", "metrics", "segments"} & set(s)
        expected = sorted(p for p in allowed if self.owner[p] != who or self.members[p])
        assert [s["planId"] for s in body["sharing"]] == expected, (who, body["sharing"], expected)

    # -------------------------------------------------------------------------------------------- invariants

    @invariant()
    def events_reach_only_participants(self) -> None:
        e = db.live_events
        with db.connection(self.engine) as conn:
            for who in NAMES:
                rows = conn.execute(sa.select(e.c.id, e.c.body).where(
                    e.c.user_id == self.users[who].id, e.c.id > self.last_event[who]).order_by(e.c.id)).all()
                revoked: set[str] = set()
                for r in rows:
                    event = json.loads(r.body)
                    pid = plan_of_event(event)
                    self.last_event[who] = r.id
                    if pid is None:
                        continue
                    assert pid in self.ever[who], (who, event)
                    assert pid not in revoked, (who, event)
                    if event["type"] == "ACCESS_REVOKED":
                        revoked.add(pid)
                    elif self.level(pid, who) is None:  # removed: only the news of its own removal
                        assert event["type"] == "MEMBER_REMOVED" and event["user"] == who, (who, event)
                    if self.owner.get(pid) != who and "plan" in event:
                        assert "privateNotes" not in json.dumps(event["plan"]), (who, event)


TestSharingMachine = SharingMachine.TestCase
TestSharingMachine.settings = settings(max_examples=50, stateful_step_count=20, derandomize=True, deadline=None,
                                       suppress_health_check=[HealthCheck.too_slow])
