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


# ------------------------------------------------------------------------------------------------ levels, access

RANK = {"view": 1, "comment": 2, "edit": 3, "owner": 4}


def at_least(level: str | None, wanted: str) -> bool:
    return level is not None and RANK.get(level, 0) >= RANK[wanted]


def own_plan_live(conn: Connection, owner_id: int, plan_id: str) -> bool:
    """Whether ``owner_id``'s namespace holds a live plan with this id."""
    t = db.sync_rows
    return conn.execute(sa.select(t.c.version).where(
        t.c.user_id == owner_id, t.c.entity_type == "practice_plan", t.c.entity_id == plan_id,
        t.c.deleted_at.is_(None))).first() is not None


def membership(conn: Connection, member_id: int, plan_id: str) -> Any:
    """The caller's membership row of a plan with this id (an active one first, then the latest removed one),
    or None."""
    m = db.plan_members
    rows = conn.execute(sa.select(m).where(m.c.member_id == member_id, m.c.plan_id == plan_id)
                        .order_by(m.c.owner_id)).all()
    active = [r for r in rows if r.removed_at is None]
    if active:
        return active[0]
    removed = sorted(rows, key=lambda r: r.removed_at or "", reverse=True)
    return removed[0] if removed else None


def access(conn: Connection, user_id: int, plan_id: str) -> tuple[int, str] | None:
    """(owner id, the caller's level: "owner" or a member level) of a plan the caller may see; None when the
    caller has no access (the plan must then look as if it did not exist)."""
    if own_plan_live(conn, user_id, plan_id):
        return user_id, "owner"
    row = membership(conn, user_id, plan_id)
    if row is not None and row.removed_at is None and own_plan_live(conn, int(row.owner_id), plan_id):
        return int(row.owner_id), str(row.level)
    return None


def members(conn: Connection, owner_id: int, plan_id: str) -> list[Any]:
    """The active members of a plan: rows with ``member_id``, ``name``, ``level``, ``added_at``, by name."""
    m, u = db.plan_members, db.users
    return list(conn.execute(sa.select(m.c.member_id, u.c.name, m.c.level, m.c.added_at)
                             .join(u, u.c.id == m.c.member_id)
                             .where(m.c.owner_id == owner_id, m.c.plan_id == plan_id, m.c.removed_at.is_(None))
                             .order_by(u.c.name)).all())


def user_name(conn: Connection, user_id: int) -> str:
    return str(conn.execute(sa.select(db.users.c.name).where(db.users.c.id == user_id)).scalar_one())


def sharing_value(conn: Connection, owner_id: int, plan_id: str) -> dict[str, Any] | None:
    """The plan's ``metadata.sharing`` (server-owned): None when it has no active member."""
    found = members(conn, owner_id, plan_id)
    if not found:
        return None
    return {"owner": user_name(conn, owner_id),
            "members": [{"user": r.name, "level": r.level, "addedAt": r.added_at} for r in found]}


def with_sharing(data: Any, value: dict[str, Any] | None) -> Any:
    """``data`` (a plan) with ``metadata.sharing`` set to the server's value (or removed); other keys kept."""
    if not isinstance(data, dict):
        return data
    metadata = data.get("metadata")
    if not isinstance(metadata, dict):
        if value is None:
            return data
        metadata = {}
    metadata = {k: v for k, v in metadata.items() if k != "sharing"}
    if value is not None:
        metadata["sharing"] = value
    return {**data, "metadata": metadata}


def for_member(plan: Any) -> Any:
    """A plan as a member sees it: without the owner's ``metadata.privateNotes``."""
    if isinstance(plan, dict) and isinstance(plan.get("metadata"), dict) and "privateNotes" in plan["metadata"]:
        return {**plan, "metadata": {k: v for k, v in plan["metadata"].items() if k != "privateNotes"}}
    return plan


def taking_part(conn: Connection, user_id: int) -> list[tuple[int, str, str]]:
    """(owner id, plan id, the caller's level) of every plan the caller takes part in: its own plans with at
    least one active member ("owner") and the plans shared with it; sorted by plan id."""
    m = db.plan_members
    out: dict[tuple[int, str], str] = {}
    for r in conn.execute(sa.select(m.c.owner_id, m.c.plan_id).where(
            m.c.owner_id == user_id, m.c.removed_at.is_(None)).distinct()).all():
        out[(user_id, r.plan_id)] = "owner"
    for r in conn.execute(sa.select(m.c.owner_id, m.c.plan_id, m.c.level).where(
            m.c.member_id == user_id, m.c.removed_at.is_(None))).all():
        out.setdefault((int(r.owner_id), r.plan_id), r.level)
    return sorted(((o, p, lvl) for (o, p), lvl in out.items()), key=lambda x: (x[1], x[0]))
