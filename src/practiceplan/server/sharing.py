"""Shared plans on the server (docs/collaboration.md): who takes part in a plan, at which level, and which
events a change makes for whom.

The owner of a plan is the user whose namespace holds it; ``plan_members`` lists the others. Every function
runs inside the caller's transaction.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from practiceplan.server import db

# what another participant may see of a session (docs/collaboration.md "Never exposed")
SESSION_KEYS = ("id", "planId", "scheduledStart", "scheduledEnd", "status", "flexWindow", "createdAt",
                "updatedAt", "deletedAt")


def participants(conn: Connection, owner_id: int, plan_id: str) -> list[int]:
    """The owner and every active member of the plan (user ids)."""
    m = db.plan_members
    rows = conn.execute(sa.select(m.c.member_id).where(m.c.owner_id == owner_id, m.c.plan_id == plan_id,
                                                        m.c.removed_at.is_(None))).all()
    return [owner_id, *sorted(int(r[0]) for r in rows)]


def owner_of(conn: Connection, user_id: int, plan_id: str) -> int:
    """The owner of ``plan_id`` as seen by ``user_id``: the user itself when the plan is in its namespace, the
    owner of a plan shared with it, else the user (a plan of its own, perhaps not pushed yet)."""
    m = db.plan_members
    row = conn.execute(sa.select(m.c.owner_id).where(m.c.member_id == user_id, m.c.plan_id == plan_id,
                                                      m.c.removed_at.is_(None))).first()
    return int(row[0]) if row is not None else user_id


def public_session(data: Any, member: str | None = None) -> Any:
    """A session as another participant sees it: status and times, never notes, entries or metrics."""
    if not isinstance(data, dict):
        return data
    out = {k: data[k] for k in SESSION_KEYS if k in data}
    check_in = data.get("checkIn")
    if isinstance(check_in, dict) and check_in.get("recordedAt"):
        out["checkIn"] = {"recordedAt": check_in["recordedAt"]}
    if member is not None:
        out["member"] = member
    return out


def push_events(written: list[tuple[str, dict[str, Any], bool, bool, int]]) -> list[dict[str, Any]]:
    """The web app's events for one push (sync-protocol.md §8.3) plus ``PLAN_DELETED``: ``written`` lists
    (entity type, stored data, created, deleted, change seq) in push order. Plan events first, in the order
    plans first appeared, with the same push's sessions of that plan; then completions, in push order."""
    plans: dict[str, dict[str, Any]] = {}
    completions: list[dict[str, Any]] = []
    deleted: list[dict[str, Any]] = []
    sessions = [(d, seq) for t, d, _c, gone, seq in written if t == "plan_occurrence" and not gone]
    for entity_type, data, created, gone, seq in written:
        if entity_type != "practice_plan" or not isinstance(data, dict):
            continue
        plan_id = data.get("id")
        if gone:
            deleted.append({"type": "PLAN_DELETED", "planId": plan_id, "seq": seq})
            continue
        event = plans.get(plan_id)
        if event is None:
            event = plans[plan_id] = {"type": "PLAN_CREATED" if created else "PLAN_UPDATED", "seq": seq}
        event["plan"] = data
        event["seq"] = max(event["seq"], seq)
    for event in plans.values():
        own = [(d, seq) for d, seq in sessions if isinstance(d, dict) and d.get("planId") == event["plan"].get("id")]
        if own:
            event["occurrences"] = [{**d, "plan_id": d.get("planId")} for d, _s in own]
            event["seq"] = max(event["seq"], *(s for _d, s in own))
    for data, seq in sessions:
        if isinstance(data, dict) and data.get("status") == "completed":
            completions.append({"type": "PLAN_OCCURRENCE_COMPLETED", "occurrence": {**data, "plan_id": data.get("planId")},
                                "seq": seq})
    return [*plans.values(), *deleted, *completions]
