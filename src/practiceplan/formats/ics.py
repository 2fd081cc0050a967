"""iCalendar (RFC 5545) text for `export ics`: one VEVENT per session, CRLF line endings, folded and escaped."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from practiceplan.domain.models import is_completed, occurrence_end, occurrence_history, occurrence_start, parse_instant
from practiceplan.domain.schedule import is_moved

UTC = timezone.utc

_ICS_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


def ics_escape(text: str) -> str:
    """TEXT escaping (RFC 5545 §3.3.11): backslash, semicolon, comma, newline; other controls dropped."""
    value = _ICS_UNSAFE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def ics_fold(line: str) -> str:
    """Fold a content line into CRLF-separated pieces of at most 75 octets (never inside a UTF-8 character);
    continuation lines start with one space (RFC 5545 §3.1)."""
    raw = line.encode("utf-8")
    if len(raw) <= 75:
        return line + "\r\n"
    pieces = []
    limit = 75
    current = b""
    for char in line:
        encoded = char.encode("utf-8")
        if len(current) + len(encoded) > limit:
            pieces.append(current)
            current = b" "
            limit = 75
        current += encoded
    pieces.append(current)
    return "\r\n".join(p.decode("utf-8") for p in pieces) + "\r\n"


def _ics_instant(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def build_ics(
    events: Sequence[tuple[dict[str, Any], dict[str, Any]]],
    *,
    now: datetime,
    zone: ZoneInfo,
    reminder_minutes: int,
    has_time: Callable[[dict[str, Any]], bool],
    version: str = "",
    name: str = "practiceplan",
) -> str:
    """A VCALENDAR with one VEVENT per (occurrence, plan), CRLF line endings, folded and escaped.

    UID ``<occurrence id>@practiceplan`` (stable: a moved session updates its event); DTSTART/DTEND in UTC,
    or as dates for sessions without a time of day; STATUS CONFIRMED, or CANCELLED when skipped; a completed
    session says so in its summary and description; SEQUENCE counts its recorded decisions; a VALARM
    ``reminder_minutes`` before each session still to do (none when 0)."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:-//practiceplan//practiceplan {version}//EN".replace(" //", "//"),
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{ics_escape(name)}",
    ]
    stamp = _ics_instant(now)
    for occ, plan in sorted(events, key=lambda item: (item[0]["scheduledStart"], item[0]["id"])):
        if occurrence_start(occ) is not None:
            lines += _vevent(occ, plan, stamp=stamp, now=now, zone=zone, reminder_minutes=reminder_minutes,
                             timed=has_time(plan))
    lines.append("END:VCALENDAR")
    return "".join(ics_fold(line) for line in lines)


def _vevent(
    occ: dict[str, Any], plan: dict[str, Any], *, stamp: str, now: datetime, zone: ZoneInfo, reminder_minutes: int,
    timed: bool,
) -> list[str]:
    """The content lines of one session's VEVENT (unfolded)."""
    start = occurrence_start(occ)
    assert start is not None
    end = occurrence_end(occ)
    title = str(plan.get("title") or "Practice")
    status = occ.get("status", "scheduled")
    done = is_completed(occ)
    summary = title + (" (done)" if done else " (skipped)" if status == "skipped" else "")
    notes = _notes(occ, plan, zone, done=done)
    lines = ["BEGIN:VEVENT", f"UID:{occ['id']}@practiceplan", f"DTSTAMP:{stamp}"]
    if timed:
        lines.append(f"DTSTART:{_ics_instant(start)}")
        lines.append(f"DTEND:{_ics_instant(end if end and end > start else start + timedelta(minutes=30))}")
    else:
        day = start.astimezone(zone).date()
        lines.append(f"DTSTART;VALUE=DATE:{day:%Y%m%d}")
        lines.append(f"DTEND;VALUE=DATE:{day + timedelta(days=1):%Y%m%d}")
    lines.append(f"SUMMARY:{ics_escape(summary)}")
    if notes:
        lines.append(f"DESCRIPTION:{ics_escape(chr(10).join(notes))}")
    lines.append(f"STATUS:{'CANCELLED' if status in ('skipped', 'expired') else 'CONFIRMED'}")
    lines.append(f"SEQUENCE:{len(occurrence_history(occ))}")
    modified = parse_instant(occ.get("updatedAt"))
    if modified:
        lines.append(f"LAST-MODIFIED:{_ics_instant(modified)}")
    lines.append("CATEGORIES:Practice")
    lines.append("TRANSP:OPAQUE")
    if reminder_minutes > 0 and status == "scheduled" and not done and start > now:
        lines += ["BEGIN:VALARM", "ACTION:DISPLAY", f"DESCRIPTION:{ics_escape(title)}",
                  f"TRIGGER:-PT{reminder_minutes}M", "END:VALARM"]
    lines.append("END:VEVENT")
    return lines


def _notes(occ: dict[str, Any], plan: dict[str, Any], zone: ZoneInfo, *, done: bool) -> list[str]:
    """The DESCRIPTION's lines: what happened (completed, skipped, moved), the segments, the plan's description."""
    notes: list[str] = []
    if done:
        minutes = (occ.get("metrics") or {}).get("actualDuration")
        notes.append("Completed" + (f": {minutes} min logged" if isinstance(minutes, (int, float)) else "") + ".")
    if occ.get("status", "scheduled") == "skipped":
        skips = [h for h in occurrence_history(occ) if h.get("action") == "skip"]
        reason = skips[-1].get("reason") if skips else None
        notes.append("Skipped" + (f": {reason}" if reason else "") + ".")
    if is_moved(occ):
        original = parse_instant((occ.get("metrics") or {}).get("originalStart"))
        if original:
            notes.append(f"Moved from {original.astimezone(zone):%a %d %b %Y %H:%M} ({zone.key}).")
    for segment in occ.get("segments") or []:
        if isinstance(segment, dict) and segment.get("label"):
            minutes = segment.get("durationMinutes")
            notes.append(f"- {segment['label']}" + (f" ({minutes} min)" if minutes else ""))
    if plan.get("description"):
        notes.append(str(plan["description"]))
    return notes
