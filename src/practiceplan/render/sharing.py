"""Shared plans in words: members, comments, students, the "Shared" cell of `plan list` and the per-member section
of `stats`. Plain lines (no colour): other people's names and texts are shown through ``safe``."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from practiceplan.render.output import safe
from practiceplan.render.plain import local, table


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value}%"


def member_list(members: list[dict[str, Any]], me: str | None = None) -> str:
    """``ben (edit), cy (view)``; you are ``you (edit)``."""
    return ", ".join(f"{'you' if me is not None and m['user'] == me else safe(m['user'])} ({m['level']})"
                     for m in members)


def shared_cell(sharing: dict[str, Any] | None, me: str | None = None) -> str:
    """The "Shared" cell of `plan list`: ``you + ben (edit)`` for a plan you own, ``owner ana; ben (edit)`` for
    one shared with you, empty when not shared."""
    if not sharing:
        return ""
    if sharing["level"] == "owner":
        return "you + " + member_list(sharing["members"], me) if sharing["members"] else "you"
    owner = f"owner {safe(sharing['owner'] or '?')}"
    return f"{owner}; {member_list(sharing['members'], me)}" if sharing["members"] else owner


def members_lines(data: dict[str, Any], me: str | None = None) -> list[str]:
    """`plan members`: the owner first, then each member with their level and when they were added."""
    you = " (you)" if me is not None and data.get("owner") == me else ""
    lines = [f"Plan \"{safe(data.get('title'))}\": owner {safe(data.get('owner') or '?')}{you}; your level: "
             f"{data.get('level') or '?'}"]
    if not data["members"]:
        lines.append("No members yet. Share it with: practiceplan plan share PLAN USER --as comment")
        return lines
    rows = [[safe(m["user"]) + (" (you)" if me is not None and m["user"] == me else ""), str(m["level"]),
             str(m.get("addedAt") or "-")[:10]] for m in data["members"]]
    return lines + table(["Member", "Level", "Added"], rows)


def comment_lines(data: dict[str, Any], zone: ZoneInfo) -> list[str]:
    """`comments`: oldest first, one line each: time, author, where (plan or which session), text."""
    where = f"session {data['occurrenceId'][9:15]} of " if data.get("occurrenceId") else ""
    if not data["comments"]:
        return [f"No comments on {where}plan \"{safe(data.get('title'))}\" yet."]
    lines = [f"Comments on {where}plan \"{safe(data.get('title'))}\""]
    for c in data["comments"]:
        if c.get("session"):
            owner = f" ({safe(c['sessionOwner'])})" if c.get("sessionOwner") else ""
            place = f"session {c['session']}{owner}"
        else:
            place = "the plan"
        lines.append(f"{local(c.get('createdAt'), zone, '%Y-%m-%d %H:%M')}  {safe(c.get('author') or 'you')}  "
                     f"[{place}]  {safe(c.get('text'))}")
    return lines


def student_lines(students: list[dict[str, Any]]) -> list[str]:
    """`students`: one row per participant, sorted by name."""
    if not students:
        return ["Nobody shares a plan with you yet: share one with `practiceplan plan share PLAN USER --as view`, "
                "or send an invite with `practiceplan plan share PLAN --link --as view`, then `practiceplan sync`."]
    rows = [[safe(s["user"]), safe(", ".join(s["plans"]) or "-"), _pct(s["percent"]), str(s["currentStreak"]),
             s["lastPractice"] or "-"] for s in students]
    return table(["Name", "Plans", "Adherence 30d", "Streak (days)", "Last practice"], rows)


def member_stats_lines(stats: dict[str, Any]) -> list[str]:
    """The per-member section of `stats`, for shared plans you own (nothing when there are none)."""
    lines: list[str] = []
    for plan in stats.get("plans") or []:
        members = plan.get("members")
        if not members:
            continue
        lines += ["", f"Members of \"{safe(plan.get('title'))}\""]
        rows = [[safe(m["member"]), str(m["due"]), str(m["completed"]), _pct(m["percent"]), str(m["currentStreak"]),
                 m["lastPractice"] or "-"] for m in members]
        lines += table(["Member", "Due", "Done", "Adherence", "Streak", "Last practice"], rows)
    return lines
