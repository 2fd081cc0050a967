"""Wire-compatible entities: practice plans, plan occurrences, logbook entries, goals.

Entities are plain dicts with the exact camelCase fields of Mirubato's sync diff (see
docs/sync.md and shared/reference/sync-protocol.md §3). Unknown fields are kept untouched so they survive
a round trip. Everything practiceplan adds lives where a Mirubato server keeps it:

* plan: ``metadata`` (segments, reflection prompts, targets, instrument) and ``schedule.metadata``
  (``timezone``, exact ``rrule`` when it goes beyond the wire grammar, ``flex`` for our ``weekly`` kind,
  ``exdates``, ``recurrence``, ``segmentsCount``);
* occurrence: ``metrics`` (``history`` audit array, ``actualDuration``, ``originalStart``) and
  ``reminderState``; occurrences have no ``metadata`` on the wire;
* logbook entry: ``metadata`` (``source``, ``planId``, ``planOccurrenceId``, ``reflectionResponses``...).

This module is pure: no I/O, no clock reads (callers pass ``now``).
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from practiceplan.errors import InvalidInputError

UTC = timezone.utc

ENTRY_TYPES = ("practice", "performance", "lesson", "rehearsal", "technique", "status_change")
MOODS = ("frustrated", "neutral", "satisfied", "excited")
WIRE_FLEXIBILITY = ("fixed", "same-day", "anytime")
FLEX_KINDS = (*WIRE_FLEXIBILITY, "weekly")

ID_PREFIXES = {
    "plan": "plan_",
    "occurrence": "plan_occ_",
    "entry": "entry_",
    "template": "template_",
    "goal": "goal_",
    "comment": "cmt_",
}
_ID_ALPHABET = string.ascii_lowercase + string.digits

# Characters never allowed in single-line user text: C0/C1 controls, DEL, bidi overrides/isolates.
_UNSAFE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_UNSAFE_MULTILINE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")

MAX_TITLE = 200
MAX_TEXT = 20_000
MAX_ITEMS = 50


# --------------------------------------------------------------------------- words


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``count`` and ``noun`` as a person writes them: "1 session", "52 sessions", "8,023 entries", "2 days".

    ``many`` is the plural when it is not regular (``plural(2, "was", "were")``). The one pluralisation helper:
    every message with a count uses it, never "session(s)".
    """
    if count == 1:
        word = noun
    elif many is not None:
        word = many
    elif noun.endswith("y") and noun[-2:-1] not in tuple("aeiou"):
        word = noun[:-1] + "ies"
    elif noun.endswith(("s", "sh", "ch", "x")):
        word = noun + "es"
    else:
        word = noun + "s"
    return f"{count:,} {word}"


# --------------------------------------------------------------------------- instants

# The supported dates: a date typed by the user (or PRACTICEPLAN_NOW) outside them is refused (dates.py,
# clock.py). Stored instants are read within a wider span (sessions run a horizon beyond the last day); one
# outside it — years near 1 or 9999, which arrive only by an import or a sync — reads as missing, so views and
# analytics never fail on it (a time-zone conversion or a day added there overflows).
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2199, 12, 31)
READABLE_FIRST_DAY = date(1900, 1, 1)
READABLE_LAST_DAY = date(2999, 12, 31)


def day_supported(day: date) -> bool:
    return FIRST_DAY <= day <= LAST_DAY


def instant_readable(dt: datetime) -> bool:
    return READABLE_FIRST_DAY <= dt.astimezone(UTC).date() <= READABLE_LAST_DAY


# One rule for the minutes of a practice session (log add, log edit, checkin) and for how far ahead of the clock
# a time the user gives may be (another device's clock runs a little fast; "in 3 years" is a typo).
MIN_MINUTES, MAX_MINUTES = 1, 1440
CLOCK_SKEW = timedelta(minutes=5)


def span_words(span: timedelta) -> str:
    """A positive time span as a person says it: "3 days", "5 hours", "12 minutes"."""
    if span.days >= 2:
        return f"{span.days} days"
    if span >= timedelta(hours=2):
        return f"{int(span.total_seconds() // 3600)} hours"
    return f"{int(span.total_seconds() // 60)} minutes"


def check_minutes(value: int, what: str = "--minutes") -> int:
    """``value`` when it is a whole number of minutes from 1 to 1440 (a day); else InvalidInputError."""
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_MINUTES <= value <= MAX_MINUTES:
        raise InvalidInputError(f"{what} must be from {MIN_MINUTES} to {MAX_MINUTES} minutes (24 hours), not {value}",
                                hint="a longer day of practice is several entries")
    return value


def check_not_future(when: datetime, now: datetime, what: str = "--when") -> datetime:
    """``when`` unless it lies more than CLOCK_SKEW (5 minutes) after ``now``; else InvalidInputError."""
    if when > now + CLOCK_SKEW:
        raise InvalidInputError(f"{what} is {span_words(when - now)} in the future: practice is logged when it happened",
                                hint=f"give a time up to now (a clock {int(CLOCK_SKEW.total_seconds() // 60)} "
                                     "minutes fast is tolerated); plan future practice with `practiceplan plan add`")
    return when


def iso_z(dt: datetime) -> str:
    """Aware datetime -> ``2026-05-04T16:05:00.000Z`` (the wire's instant format)."""
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


@lru_cache(maxsize=8192)
def _parse_iso(text: str) -> datetime | None:
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
        dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    except (ValueError, OverflowError):  # not ISO, or beyond year 1..9999 in UTC
        return None
    return dt if instant_readable(dt) else None


def parse_instant(value: object) -> datetime | None:
    """Read a wire instant: ISO-Z or ISO with offset, integer epoch ms, or SQLite ``YYYY-MM-DD HH:MM:SS`` (UTC).
    None when it is none of these, or outside the readable span (:func:`instant_readable`): every view and
    computation then treats it as missing instead of failing on it."""
    if type(value) is str:
        return _parse_iso(value.strip()) if value else None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            return None
        try:
            instant = datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            return None
        return instant if instant_readable(instant) else None
    if not isinstance(value, str) or not value:
        return None
    return _parse_iso(value.strip())


def epoch_ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def new_id(kind: str) -> str:
    """A fresh random id: ``plan_`` + 20 base-36 characters (``entry_``, ``template_``...)."""
    import secrets  # lazily: it pulls in hashlib/hmac, which read paths never need

    return ID_PREFIXES[kind] + "".join(secrets.choice(_ID_ALPHABET) for _ in range(20))


# --------------------------------------------------------------------------- user text


def clean_line(value: str, field: str, *, max_len: int = MAX_TITLE, allow_empty: bool = False) -> str:
    """Validate one line of user text: trimmed, no control or bidi characters, bounded length."""
    text = value.strip()
    if not text and not allow_empty:
        raise InvalidInputError(f"{field} must not be empty", hint=f"give some text for the {field}")
    return _checked_text(text, field, _UNSAFE_LINE, max_len)


def clean_text(value: str, field: str, *, max_len: int = MAX_TEXT) -> str:
    """Validate multi-line user text (notes): newlines and tabs allowed, other controls refused."""
    return _checked_text(value.strip(), field, _UNSAFE_MULTILINE, max_len)


def _checked_text(text: str, field: str, unsafe: re.Pattern[str], max_len: int) -> str:
    if unsafe.search(text):
        raise InvalidInputError(f"{field} contains control or bidirectional-override characters",
                                hint="remove escape sequences and invisible direction marks from the text")
    if len(text) > max_len:
        raise InvalidInputError(f"{field} is longer than {max_len} characters", hint="shorten it")
    return text


def parse_piece(text: str) -> dict[str, str]:
    """``"Clair de lune — Debussy"`` -> ``{"title": "Clair de lune", "composer": "Debussy"}``."""
    for separator in (" — ", " – ", " - ", "—", "–"):
        if separator in text:
            title, composer = text.split(separator, 1)
            piece = {"title": clean_line(title, "piece title")}
            if composer.strip():
                piece["composer"] = clean_line(composer, "piece composer")
            return piece
    return {"title": clean_line(text, "piece title")}


def parse_segment(text: str) -> dict[str, Any]:
    """``"Scales:10[:slow, hands separately][:target=BPM]"`` -> a wire segment (label, durationMinutes,
    instructions, ``tempoTargets: {"targetBpm": BPM}``)."""
    from practiceplan.domain.progress import segment_target

    text, target = segment_target(text)
    parts = text.split(":", 2)
    if len(parts) < 2:
        raise InvalidInputError(
            f"segment '{text}' needs LABEL:MINUTES", hint='e.g. --segment "Scales:10:slowly, hands separate"'
        )
    label = clean_line(parts[0], "segment label")
    minutes = parse_positive_int(parts[1].strip(), "segment minutes", maximum=1440)
    segment: dict[str, Any] = {"label": label, "durationMinutes": minutes}
    if len(parts) == 3 and parts[2].strip():
        segment["instructions"] = clean_line(parts[2], "segment instructions", max_len=2000)
    if target is not None:
        segment["tempoTargets"] = {"targetBpm": target}
    return segment


def parse_targets(texts: list[str], segments: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """A plan's ``--target key=value`` values; one whose key is the label of one of ``segments`` (the command's
    ``--segment`` values, compared ignoring case) sets that segment's ``tempoTargets.targetBpm`` instead."""
    from practiceplan.domain.progress import check_bpm, name_key

    by_label = {name_key(s["label"]): s for s in segments or []}
    targets: dict[str, Any] = {}
    for text in texts:
        key, sep, value = text.partition("=")
        if sep and name_key(key) in by_label:
            by_label[name_key(key)]["tempoTargets"] = {"targetBpm": check_bpm(value, "--target")}
            continue
        name, parsed = parse_key_value(text, "--target")
        targets[name] = parsed
    return targets or None


def parse_positive_int(text: str, field: str, *, maximum: int = 10**6, minimum: int = 1) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{field} must be a whole number, not '{text}'",
                                hint=f"use digits only, from {minimum} to {maximum}") from None
    if not minimum <= value <= maximum:
        raise InvalidInputError(f"{field} must be between {minimum} and {maximum}, not {value}",
                                hint=f"give a number from {minimum} to {maximum}")
    return value


def parse_scalar(text: str) -> int | float | str:
    """``"92"`` -> 92, ``"1.5"`` -> 1.5, anything else stays a string (never a boolean or NaN)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def parse_key_value(text: str, field: str) -> tuple[str, int | float | str]:
    """``"tempo=92"`` -> ``("tempo", 92)``."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]{0,63}", key):
        raise InvalidInputError(f"{field} '{text}' must look like key=value", hint="e.g. tempo=92")
    return key, parse_scalar(clean_line(value, f"{field} value", max_len=500, allow_empty=True))


# --------------------------------------------------------------------------- plans


def plan_zone_name(plan: dict[str, Any], default: str) -> str:
    zone = ((plan.get("schedule") or {}).get("metadata") or {}).get("timezone")
    return zone if isinstance(zone, str) and zone else default


def plan_flex(plan: dict[str, Any]) -> str:
    """Our flexibility kind: ``schedule.metadata.flex`` (``weekly``) or the wire ``schedule.flexibility``."""
    schedule = plan.get("schedule") or {}
    flex = (schedule.get("metadata") or {}).get("flex") or schedule.get("flexibility")
    return flex if flex in FLEX_KINDS else "same-day"


def plan_segments(plan: dict[str, Any]) -> list[dict[str, Any]]:
    segments = (plan.get("metadata") or {}).get("segments")
    return [s for s in segments if isinstance(s, dict)] if isinstance(segments, list) else []


def plan_prompts(plan: dict[str, Any]) -> list[str]:
    prompts = (plan.get("metadata") or {}).get("reflectionPrompts")
    return [p for p in prompts if isinstance(p, str) and p.strip()] if isinstance(prompts, list) else []


def plan_targets(plan: dict[str, Any]) -> dict[str, Any]:
    targets = (plan.get("metadata") or {}).get("targets")
    return dict(targets) if isinstance(targets, dict) else {}


def plan_duration(plan: dict[str, Any]) -> int | None:
    """Plan minutes: ``schedule.durationMinutes``, else the sum of its segments, else None."""
    minutes = (plan.get("schedule") or {}).get("durationMinutes")
    if isinstance(minutes, int) and not isinstance(minutes, bool) and minutes > 0:
        return minutes
    total = sum(s.get("durationMinutes") or 0 for s in plan_segments(plan) if isinstance(s.get("durationMinutes"), int))
    return total or None


def plan_instrument(plan: dict[str, Any]) -> str | None:
    metadata = plan.get("metadata") or {}
    instrument = metadata.get("instrument")
    if isinstance(instrument, str) and instrument.strip():
        return instrument.strip().lower()
    return None


def plan_has_time(plan: dict[str, Any]) -> bool:
    return bool((plan.get("schedule") or {}).get("timeOfDay"))


def plan_is_live(plan: dict[str, Any]) -> bool:
    return not plan.get("deletedAt") and plan.get("status", "active") == "active"


def plan_counts_from(plan: dict[str, Any], me: str | None = None) -> datetime | None:
    """When the plan's sessions start to count (docs/metrics.md "Before the plan existed"): its ``createdAt``.
    A session whose deadline had already passed then was never owed, so it is not missed. None (everything
    counts) for a plan created with ``--backfill`` (``metadata.backfill``) or without a ``createdAt``.
    A plan shared with ``me`` (a member, docs/collaboration.md) counts for me from when I joined it at the
    earliest (``metadata.sharing.members[].addedAt``)."""
    start = None if (plan.get("metadata") or {}).get("backfill") else parse_instant(plan.get("createdAt"))
    joined = _joined(plan, me)
    if joined is not None and (start is None or joined > start):
        return joined
    return start


def _joined(plan: dict[str, Any], me: str | None) -> datetime | None:
    sharing = (plan.get("metadata") or {}).get("sharing")
    if me is None or not isinstance(sharing, dict) or sharing.get("owner") == me:
        return None
    members = sharing.get("members")
    for member in members if isinstance(members, list) else []:
        if isinstance(member, dict) and member.get("user") == me:
            return parse_instant(member.get("addedAt"))
    return None


def counts_from_by_plan(plans: Iterable[dict[str, Any]], me: str | None = None) -> dict[str, datetime]:
    """Plan id -> :func:`plan_counts_from`, for the plans that have one."""
    return {plan["id"]: start for plan in plans if (start := plan_counts_from(plan, me)) is not None}


def parse_local_date(value: object) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


# --------------------------------------------------------------------------- occurrences


#: A session's effective state, as `occurrences`, `calendar` and `stats` judge it (domain/calendar.py
#: session_state): done, due (to do, catchable now), upcoming (from tomorrow), missed, skipped, moved
#: (rescheduled, still to do), before-plan (its deadline passed before the plan existed: never owed).
SESSION_STATES = ("done", "due", "upcoming", "missed", "skipped", "moved", "before-plan")
#: The stored statuses `occurrences --status` used to take, as the effective states they mean.
STATE_ALIASES = {"completed": ("done",), "expired": ("missed",), "scheduled": ("due", "upcoming", "moved")}


def occurrence_start(occ: dict[str, Any]) -> datetime | None:
    return parse_instant(occ.get("scheduledStart"))


def occurrence_end(occ: dict[str, Any]) -> datetime | None:
    return parse_instant(occ.get("scheduledEnd"))


def occurrence_history(occ: dict[str, Any]) -> list[dict[str, Any]]:
    history = (occ.get("metrics") or {}).get("history")
    return [h for h in history if isinstance(h, dict)] if isinstance(history, list) else []


def is_touched(occ: dict[str, Any]) -> bool:
    """A user decision lives on this occurrence: regeneration must never rewrite it."""
    metrics = occ.get("metrics") or {}
    return (
        occ.get("status", "scheduled") != "scheduled"
        or bool(occ.get("logEntryId"))
        or bool(metrics.get("originalStart"))
        or bool(occurrence_history(occ))
    )


def is_completed(occ: dict[str, Any]) -> bool:
    """Completed, including an optimistic completion whose logbook entry is not (yet) here."""
    return occ.get("status") == "completed" or bool((occ.get("metrics") or {}).get("pendingLog"))


# --------------------------------------------------------------------------- logbook entries


def _fail(where: str, path: str, expected: str) -> InvalidInputError:
    return InvalidInputError(f"{where}{path}: expected {expected}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_str_list(value: object, where: str, path: str) -> list[str]:
    if not isinstance(value, list) or len(value) > 1000:
        raise _fail(where, path, "an array of strings")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise _fail(where, f"{path}[{index}]", "a string")
    return value


def normalize_entry(raw: object, now: datetime, *, where: str = "", now_iso: str | None = None) -> dict[str, Any]:
    """Validate a logbook entry in wire format and return it normalised.

    Normalisation: ``timestamp`` becomes ISO-Z (epoch ms and offsets accepted), ``instrument`` is lowercased,
    ``type`` defaults to ``practice``, ``metadata.source`` to ``manual``, ``createdAt``/``updatedAt`` to now,
    a piece ``composer`` of ``null`` is dropped. Unknown fields are kept. ``where`` prefixes messages
    (e.g. ``"item 7: "``). Raises InvalidInputError naming the field (checked in field order, as below).
    """
    if not isinstance(raw, dict):
        raise InvalidInputError(f"{where}expected a JSON object")
    entry = dict(raw)
    _normalize_head(entry, where)
    entry["pieces"] = _normalized_pieces(entry.get("pieces", []), where)
    _check_lists_and_texts(entry, where)
    entry["metadata"] = _normalized_metadata(entry.get("metadata"), where)
    _normalize_stamps(entry, where, now, now_iso)
    return entry


def _normalize_head(entry: dict[str, Any], where: str) -> None:
    """``id``, ``deletedAt``, ``timestamp``, ``duration``, ``type`` and ``instrument``."""
    entry_id = entry.get("id")
    if not isinstance(entry_id, str) or not entry_id.strip() or len(entry_id) > 200:
        raise _fail(where, "id", "a non-empty string")
    if entry.get("deletedAt"):
        if not isinstance(entry["deletedAt"], str):
            raise _fail(where, "deletedAt", "a string or null")
    stamp = parse_instant(entry.get("timestamp"))
    if stamp is None or isinstance(entry.get("timestamp"), float):
        raise _fail(where, "timestamp", "an ISO-8601 instant or integer epoch milliseconds (years 1900 to 2999)")
    entry["timestamp"] = iso_z(stamp)
    duration = entry.get("duration", 0)
    if not _is_int(duration) or duration < 0 or duration > 100_000:
        raise _fail(where, "duration", "a whole number of minutes >= 0")
    entry["duration"] = duration
    kind = entry.get("type", "practice")
    if kind not in ENTRY_TYPES:
        raise _fail(where, "type", "one of " + ", ".join(ENTRY_TYPES))
    entry["type"] = kind
    if "instrument" in entry:
        instrument = entry["instrument"]
        if not isinstance(instrument, str) or not instrument.strip():
            raise _fail(where, "instrument", "a non-empty string")
        entry["instrument"] = instrument.strip().lower()


def _normalized_pieces(pieces: object, where: str) -> list[dict[str, Any]]:
    """Each piece an object with a string ``title`` (``composer``, ``id`` strings, ``duration`` a number)."""
    if not isinstance(pieces, list) or len(pieces) > 1000:
        raise _fail(where, "pieces", "an array of pieces")
    clean_pieces = []
    for index, piece in enumerate(pieces):
        path = f"pieces[{index}]"
        if not isinstance(piece, dict):
            raise _fail(where, path, "an object")
        if not isinstance(piece.get("title"), str):
            raise _fail(where, f"{path}.title", "a string")
        piece = dict(piece)
        if piece.get("composer") is None:
            piece.pop("composer", None)
        elif not isinstance(piece["composer"], str):
            raise _fail(where, f"{path}.composer", "a string")
        if "id" in piece and not isinstance(piece["id"], str):
            raise _fail(where, f"{path}.id", "a string")
        if "duration" in piece and (
            isinstance(piece["duration"], bool)
            or not isinstance(piece["duration"], (int, float))
            or not math.isfinite(piece["duration"])
        ):
            raise _fail(where, f"{path}.duration", "a number")
        clean_pieces.append(piece)
    return clean_pieces


def _check_lists_and_texts(entry: dict[str, Any], where: str) -> None:
    """String arrays (techniques, tags, goal ids; empty by default), optional strings, and the mood."""
    for key in ("techniques", "tags", "goalIds", "goal_ids"):
        if key in entry:
            _check_str_list(entry[key], where, key)
    entry.setdefault("techniques", [])
    entry.setdefault("tags", [])
    if "goal_ids" not in entry:
        entry.setdefault("goalIds", [])
    for key in ("notes", "session_id", "device_id", "checksum", "deleted_at"):
        if key in entry and entry[key] is not None and not isinstance(entry[key], str):
            raise _fail(where, key, "a string or null")
    mood = entry.get("mood")
    if mood is not None and mood not in MOODS:
        raise _fail(where, "mood", "one of " + ", ".join(MOODS) + " or null")


def _normalized_metadata(metadata: object, where: str) -> dict[str, Any]:
    """An object (absent is empty) with a ``source``: ``practice_plan`` when it links a session, else ``manual``."""
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise _fail(where, "metadata", "an object")
    metadata = dict(metadata)
    if metadata.get("planId") and metadata.get("planOccurrenceId"):
        metadata["source"] = "practice_plan"
    metadata.setdefault("source", "manual")
    return metadata


def _normalize_stamps(entry: dict[str, Any], where: str, now: datetime, now_iso: str | None) -> None:
    """``createdAt``/``updatedAt`` as ISO-Z (now when absent); the web app's ``created_at``/``updated_at``."""
    for key in ("createdAt", "updatedAt"):
        value = entry.get(key)
        if value is None:
            entry[key] = now_iso or iso_z(now)
        else:
            instant = parse_instant(value)
            if instant is None or not isinstance(value, str):
                raise _fail(where, key, "an ISO-8601 instant")
            entry[key] = iso_z(instant)
    for key in ("created_at", "updated_at"):
        if key in entry and not (_is_int(entry[key]) or parse_instant(entry[key]) is not None):
            raise _fail(where, key, "integer epoch milliseconds or an ISO-8601 instant")
