"""Lines of `practiceplan watch`: one per live event (time, event type, plan title or id, who), the same words
on a terminal (the type in colour) and in a pipe."""

from __future__ import annotations

import sys
from typing import Any
from zoneinfo import ZoneInfo

from practiceplan.render.output import color_enabled, console, safe
from practiceplan.render.plain import local

STYLE = {"CREATED": "green", "ADDED": "green", "COMPLETED": "green", "UPDATED": "cyan", "CHANGED": "cyan",
         "DELETED": "red", "REMOVED": "red", "REVOKED": "red"}


def _subject(event: dict[str, Any], titles: dict[str, str] | None = None) -> str:
    """The plan's title (from the event, else from ``titles``: plan id -> title of the plans on this device), or
    its id."""
    plan = event.get("plan") if isinstance(event.get("plan"), dict) else {}
    if isinstance(plan.get("title"), str) and plan["title"]:
        return plan["title"]
    for found in (plan.get("id"), event.get("planId"),
                  (event.get("occurrence") or {}).get("planId") if isinstance(event.get("occurrence"), dict) else None,
                  (event.get("comment") or {}).get("planId") if isinstance(event.get("comment"), dict) else None):
        if isinstance(found, str) and found:
            return (titles or {}).get(found) or found
    return "-"


def _who(event: dict[str, Any]) -> str | None:
    comment = event.get("comment") if isinstance(event.get("comment"), dict) else {}
    for found in (event.get("member"), event.get("user"), comment.get("author"), event.get("owner")):
        if isinstance(found, str) and found:
            return found
    return None


def event_parts(event: dict[str, Any], zone: ZoneInfo, titles: dict[str, str] | None = None
                ) -> tuple[str, str, str]:
    """(time, type, the rest) of an event's line."""
    when = local(event.get("timestamp"), zone, "%H:%M:%S")
    kind = safe(event.get("type") or "EVENT")
    who = _who(event)
    rest = safe(_subject(event, titles)) + (f"  by {safe(who)}" if who else "")
    if isinstance(event.get("comment"), dict) and isinstance(event["comment"].get("text"), str):
        text = safe(event["comment"]["text"])
        rest += f": {text if len(text) <= 60 else text[:57] + '...'}"
    return when, kind, rest


def event_line(event: dict[str, Any], zone: ZoneInfo, titles: dict[str, str] | None = None) -> str:
    when, kind, rest = event_parts(event, zone, titles)
    return f"{when}  {kind:<25} {rest}"


def synced_line(received: int, merged: int, when: str) -> str:
    return f"{when}  {'synced':<25} received {received}, merged {merged}"


def print_line(event: dict[str, Any], zone: ZoneInfo, titles: dict[str, str] | None = None) -> None:
    """The event's line on stdout, flushed; the type coloured on a terminal (never with NO_COLOR)."""
    if not color_enabled(sys.stdout):
        sys.stdout.write(event_line(event, zone, titles) + "\n")
        sys.stdout.flush()
        return
    from rich.text import Text

    when, kind, rest = event_parts(event, zone, titles)
    style = next((s for k, s in STYLE.items() if kind.endswith(k)), "bold")
    line = Text(f"{when}  ", style="dim")
    line.append(f"{kind:<25}", style=style)
    line.append(f" {rest}")
    console().print(line)
    sys.stdout.flush()
