"""Occurrence lifecycle: materialising slots, regeneration, deadlines, check-in and undo.

Pure functions over wire-format dicts; callers pass ``now`` (aware UTC) and persist the results.

Decisions the user made on an occurrence (check-in, undo, skip, reschedule: anything recorded in
``metrics.history``, a non-``scheduled`` status, a link to a logbook entry or a ``metrics.originalStart``)
make it *touched*: regeneration never rewrites a touched occurrence.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from practiceplan.domain.models import (
    CLOCK_SKEW,
    check_minutes,
    check_not_future,
    is_touched,
    iso_z,
    occurrence_end,
    occurrence_history,
    occurrence_start,
    parse_local_date,
    plan_duration,
    plan_flex,
    plan_instrument,
    plan_prompts,
    plan_segments,
    plan_targets,
    plan_zone_name,
    span_words,
)
from practiceplan.domain.tz import local_instant, localize
from practiceplan.errors import InvalidInputError

# recurrence (with dateutil, ~11 ms) is imported inside the functions that expand rules, so that read paths
# (`next`, `occurrences`, `log list`) that only judge deadlines never load it. recurrence imports nothing
# from this module: the lazy import is for start-up time, not a hidden cycle (tests/core/test_layers.py).
if TYPE_CHECKING:
    from practiceplan.domain import recurrence as rec

GENERATED_FIELDS = (
    "planId",
    "scheduledStart",
    "scheduledEnd",
    "flexWindow",
    "recurrenceKey",
    "segments",
    "targets",
    "reflectionPrompts",
)


# --------------------------------------------------------------------------- schedule -> slots


def parse_time_of_day(value: object) -> time | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return time.fromisoformat(value.strip())
    except ValueError:
        return None


def plan_recurrence(plan: dict[str, Any], default_zone: str) -> rec.Recurrence | None:
    """The plan's schedule as a :class:`Recurrence`, or None when it cannot be expanded."""
    from practiceplan.domain import recurrence as rec  # lazily: see the note above

    schedule = plan.get("schedule") or {}
    meta = schedule.get("metadata") or {}
    zone = plan_zone_name(plan, default_zone)
    at = parse_time_of_day(schedule.get("timeOfDay"))
    start = parse_local_date(schedule.get("startDate"))
    if start is None and isinstance(schedule.get("target"), str):
        target = occurrence_start({"scheduledStart": schedule["target"]})
        if target is not None:
            local = target.astimezone(rec.get_zone(zone))
            start, at = local.date(), at or local.time()
    if start is None:
        return None
    rule = None
    if schedule.get("kind") == "recurring":
        rule = meta.get("rrule") or schedule.get("rule")
        if not isinstance(rule, str) or not rule.strip():
            return None
    exdates = tuple(d for d in (parse_local_date(x) for x in meta.get("exdates") or []) if d)
    return rec.Recurrence(
        rule=rule, start=start, time=at, zone=zone, end=parse_local_date(schedule.get("endDate")), exdates=exdates
    )


def recurrence_key(plan: dict[str, Any], recurrence: rec.Recurrence) -> str | None:
    """Mirubato's ``RRULE:<rule>|DTSTART:<ISO-Z of the first start>``, shared by all occurrences of a plan."""
    from practiceplan.domain import recurrence as rec  # lazily: see the note above

    if recurrence.rule is None:
        return None
    first = localize(datetime.combine(recurrence.start, recurrence.time or time()), rec.get_zone(recurrence.zone))
    return f"RRULE:{(plan.get('schedule') or {}).get('rule') or recurrence.rule}|DTSTART:{iso_z(first)}"


def is_generated_id(occ_id: str) -> bool:
    """Our deterministic ids (``plan_occ_`` + 20 hex); the web app's are ``plan_occ_<nanoid>[_n]``."""
    return len(occ_id) == 29 and occ_id.startswith("plan_occ_") and all(c in "0123456789abcdef" for c in occ_id[9:])


def build_occurrence(plan: dict[str, Any], slot: rec.Slot, key: str | None, now: datetime) -> dict[str, Any]:
    from practiceplan.domain import recurrence as rec  # lazily: see the note above

    occ_id = rec.occurrence_id(plan["id"], slot.key)
    minutes = plan_duration(plan)
    segments = []
    for index, segment in enumerate(plan_segments(plan), start=1):
        segment = copy.deepcopy(segment)
        segment["id"] = f"{occ_id}_segment_{index}"
        segments.append(segment)
    stamp = iso_z(now)
    return {
        "id": occ_id,
        "planId": plan["id"],
        "scheduledStart": iso_z(slot.start),
        "scheduledEnd": iso_z(slot.start + timedelta(minutes=minutes)) if minutes else None,
        "flexWindow": plan_flex(plan),
        "recurrenceKey": key,
        "segments": segments,
        "targets": plan_targets(plan),
        "reflectionPrompts": plan_prompts(plan),
        "status": "scheduled",
        "logEntryId": None,
        "notes": None,
        "metrics": {},
        "createdAt": stamp,
        "updatedAt": stamp,
    }


def reconcile(
    plan: dict[str, Any],
    existing: list[dict[str, Any]],
    default_zone: str,
    window_start: datetime,
    window_end: datetime,
    now: datetime,
) -> list[dict[str, Any]]:
    """Occurrences to write so the plan's untouched slots in [window_start, window_end) match its schedule.

    New slots are created with deterministic ids; untouched ones whose slot changed are updated in place
    (same id) or soft-deleted when their slot is gone; touched ones are never rewritten. ``existing`` holds
    all of the plan's occurrences, deleted ones included (a slot that comes back is revived, same id).
    """
    from practiceplan.domain import recurrence as rec  # lazily: see the note above

    recurrence = plan_recurrence(plan, default_zone)
    slots = rec.expand(recurrence, window_start, window_end) if recurrence else []
    key = recurrence_key(plan, recurrence) if recurrence else None
    by_id = {o["id"]: o for o in existing}
    # Live occurrences created elsewhere (the web app's random ids) or moved here block their instant.
    foreign_starts = {
        o.get("scheduledStart")
        for o in existing
        if not o.get("deletedAt") and (not is_generated_id(o["id"]) or (o.get("metrics") or {}).get("originalStart"))
    }
    stamp = iso_z(now)
    changes: list[dict[str, Any]] = []
    wanted: set[str] = set()
    for slot in slots:
        fresh = build_occurrence(plan, slot, key, now)
        wanted.add(fresh["id"])
        old = by_id.get(fresh["id"])
        if old is None:
            if fresh["scheduledStart"] not in foreign_starts:
                changes.append(fresh)
            continue
        if is_touched(old) and not old.get("deletedAt"):
            continue
        updated = dict(old)
        for field in GENERATED_FIELDS:
            updated[field] = fresh[field]
        if old.get("deletedAt"):
            updated = {**fresh, "createdAt": old.get("createdAt", stamp)}
        if updated != old:
            updated["updatedAt"] = stamp
            updated.pop("deletedAt", None)
            changes.append(updated)
    low, high = iso_z(window_start), iso_z(window_end)
    for old in existing:
        start = old.get("scheduledStart") or ""
        if old.get("deletedAt") or is_touched(old) or old["id"] in wanted or not low <= start < high:
            continue
        if not is_generated_id(old["id"]):
            continue  # not ours to prune
        changes.append({**old, "deletedAt": stamp, "updatedAt": stamp})
    return changes


@dataclass(frozen=True)
class SessionChanges:
    """What a change did to a plan's sessions, counted as a person counts them.

    A slot that moved (a new time of day gives it a new id: the old occurrence is deleted, a new one created)
    is one *moved* session, not one removed plus one added; *updated* ones kept their slot but changed otherwise
    (length, segments).
    """

    added: int = 0
    moved: int = 0
    removed: int = 0
    updated: int = 0

    @property
    def total(self) -> int:
        return self.added + self.moved + self.removed + self.updated

    def as_json(self) -> dict[str, int]:
        return {"added": self.added, "moved": self.moved, "removed": self.removed, "updated": self.updated}


def session_changes(existing: list[dict[str, Any]], changes: list[dict[str, Any]]) -> SessionChanges:
    """Classify ``changes`` (what :func:`reconcile` or a delete writes) against the plan's ``existing`` occurrences."""
    by_id = {o["id"]: o for o in existing}
    created = removed = moved = updated = 0
    for change in changes:
        old = by_id.get(change["id"])
        was_live = old is not None and not old.get("deletedAt")
        if change.get("deletedAt"):
            removed += was_live
        elif not was_live:
            created += 1
        elif old.get("scheduledStart") != change.get("scheduledStart"):
            moved += 1
        else:
            updated += 1
    paired = min(created, removed)  # a slot that moved: its old occurrence went, a new one came
    return SessionChanges(added=created - paired, moved=moved + paired, removed=removed - paired, updated=updated)


# --------------------------------------------------------------------------- deadlines


def local_day_start(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant a local calendar day begins (a gap at midnight moves it forward)."""
    return local_instant(day, time(), zone)


def week_start_date(day: date, week_start: int) -> date:
    return day - timedelta(days=(day.weekday() - week_start) % 7)


def deadline(
    occ: dict[str, Any], zone: ZoneInfo, *, next_start: datetime | None = None, week_start: int = 0
) -> datetime | None:
    """The instant after which a still-scheduled occurrence counts as missed (see docs/metrics.md).

    fixed / same-day: end of the local day of its start, or its scheduledEnd if later (overnight);
    anytime: the start of the plan's next occurrence (end of its own local day for the last one);
    weekly: end of the local week containing its start.
    """
    start = occurrence_start(occ)
    if start is None:
        return None
    day = start.astimezone(zone).date()
    end_of_day = local_day_start(day + timedelta(days=1), zone)
    flex = occ.get("flexWindow")
    if flex == "weekly":
        return local_day_start(week_start_date(day, week_start) + timedelta(days=7), zone)
    if flex == "anytime":
        return max(next_start, end_of_day) if next_start else end_of_day
    end = occurrence_end(occ)
    return max(end, end_of_day) if end and end > end_of_day else end_of_day


def owed(due_by: datetime, counts_from: datetime | None) -> bool:
    """Whether a session past its deadline ``due_by`` is *missed*: only if it could still be done when its plan
    was created (``counts_from``, see :func:`practiceplan.domain.models.plan_counts_from`). One whose deadline
    had passed before the plan existed is ``before-plan``: neither missed nor completed (docs/metrics.md)."""
    return counts_from is None or due_by > counts_from


def next_starts(occurrences: list[dict[str, Any]]) -> dict[str, datetime | None]:
    """For each occurrence id, the start of the next occurrence of the same plan (schedule order)."""
    by_plan: dict[str, list[tuple[datetime, str]]] = {}
    for occ in occurrences:
        start = occurrence_start(occ)
        if start is not None:
            by_plan.setdefault(occ.get("planId", ""), []).append((start, occ["id"]))
    result: dict[str, datetime | None] = {}
    for items in by_plan.values():
        items.sort()
        for index, (_, occ_id) in enumerate(items):
            result[occ_id] = items[index + 1][0] if index + 1 < len(items) else None
    return result


# --------------------------------------------------------------------------- check-in and undo


def occurrence_minutes(occ: dict[str, Any], plan: dict[str, Any] | None) -> int | None:
    start, end = occurrence_start(occ), occurrence_end(occ)
    if start and end and end > start:
        return int((end - start).total_seconds() // 60)
    if plan:
        return plan_duration(plan)
    total = sum(s.get("durationMinutes") or 0 for s in occ.get("segments") or [] if isinstance(s, dict))
    return total or None


def _history_add(occ: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    metrics = dict(occ.get("metrics") or {})
    metrics["history"] = [*occurrence_history(occ), record]
    occ["metrics"] = metrics
    return occ


def checkin(
    plan: dict[str, Any],
    occ: dict[str, Any],
    *,
    now: datetime,
    entry_id: str,
    user_zone: str,
    default_instrument: str,
    minutes: int | None = None,
    when: datetime | None = None,
    notes: str | None = None,
    mood: str | None = None,
    pieces: list[dict[str, Any]] | None = None,
    metrics: dict[str, Any] | None = None,
    answers: dict[str, str] | None = None,
    progress: list[dict[str, Any]] | None = None,
    force: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check in to ``occ``: returns (new logbook entry, updated occurrence), linked both ways.

    ``progress``: clean / ceiling tempos and tension spots (domain/progress.py records), kept as the entry's
    ``metadata.progress`` and the session's ``metrics.progress``; a piece's clean tempo is also copied to the
    entry's matching ``pieces[].tempo`` (the web app shows it; a Mirubato server drops it)."""
    if occ.get("status") == "completed" and not force:
        raise InvalidInputError(
            f"this session was already checked in (entry {occ.get('logEntryId') or 'unknown'})",
            hint="use --force to log it again, or `practiceplan uncheck` to undo the first check-in",
        )
    stamp = iso_z(now)
    minutes = check_minutes(minutes) if minutes is not None else occurrence_minutes(occ, plan) or 30
    if when is not None:
        check_not_future(when, now)
    prompts = list(occ.get("reflectionPrompts") or plan_prompts(plan))
    answers = _answers(answers, prompts)
    entry = {
        "id": entry_id,
        "timestamp": iso_z(when or now),
        "duration": minutes,
        "type": "practice",
        "instrument": plan_instrument(plan) or default_instrument,
        "pieces": _with_tempo(_plan_pieces(plan) if pieces is None else pieces, progress or []),
        "techniques": _techniques(plan, occ),
        "goalIds": [],
        "notes": notes or None,
        "mood": mood,
        "tags": [],
        "metadata": _entry_metadata(plan, occ, user_zone, prompts, answers, metrics),
        "createdAt": stamp,
        "updatedAt": stamp,
    }
    updated = _completed(occ, entry_id, minutes, answers, stamp)
    updated["metrics"].pop("progress", None)  # a forced check-in replaces the previous one's records
    if progress:
        entry["metadata"]["progress"] = [dict(item) for item in progress]
        updated["metrics"]["progress"] = [dict(item) for item in progress]
    return entry, updated


def _with_tempo(pieces: list[dict[str, Any]], progress: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``pieces`` with ``tempo`` set from the piece-level clean tempo recorded for the same title."""
    from practiceplan.domain.progress import name_key

    clean = {name_key(item["piece"]): item["bpm"] for item in progress
             if item.get("kind") == "clean" and not item.get("passage")}
    result = []
    for piece in pieces:
        title = piece.get("title")
        if isinstance(title, str) and name_key(title) in clean:
            piece = {**piece, "tempo": clean[name_key(title)]}
        result.append(piece)
    return result


def _answers(answers: dict[str, str] | None, prompts: list[str]) -> dict[str, str]:
    """The non-blank reflection answers; each must answer one of the session's ``prompts``."""
    answers = {k: v for k, v in (answers or {}).items() if v.strip()}
    unknown = [p for p in answers if p not in prompts]
    if unknown:
        raise InvalidInputError(
            f"'{unknown[0]}' is not one of this session's reflection prompts",
            hint="prompts: " + ("; ".join(prompts) if prompts else "none"),
        )
    return answers


def _techniques(plan: dict[str, Any], occ: dict[str, Any]) -> list[str]:
    """The plan's techniques, then its segments', trimmed, each once."""
    techniques: list[str] = []
    for technique in [*(plan.get("techniques") or []), *(t for s in occ.get("segments") or [] for t in s.get("techniques") or [])]:
        if isinstance(technique, str) and technique.strip() and technique.strip() not in techniques:
            techniques.append(technique.strip())
    return techniques


def _plan_pieces(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Logbook pieces from the plan's ``pieceRefs`` (title, composer, score id as the piece id)."""
    pieces = []
    for ref in plan.get("pieceRefs") or []:
        if isinstance(ref, dict) and isinstance(ref.get("title"), str) and ref["title"].strip():
            piece: dict[str, Any] = {"title": ref["title"]}
            if isinstance(ref.get("composer"), str):
                piece["composer"] = ref["composer"]
            if isinstance(ref.get("scoreId"), str):
                piece["id"] = ref["scoreId"]
            pieces.append(piece)
    return pieces


def _entry_metadata(
    plan: dict[str, Any], occ: dict[str, Any], user_zone: str, prompts: list[str], answers: dict[str, str],
    metrics: dict[str, Any] | None,
) -> dict[str, Any]:
    """A check-in entry's ``metadata``: the link to its plan and session, prompts and answers, focus, targets,
    metrics."""
    metadata: dict[str, Any] = {
        "source": "practice_plan",
        "planId": plan["id"],
        "planOccurrenceId": occ["id"],
        "planTitle": plan.get("title"),
        "scheduledStart": occ.get("scheduledStart"),
        "scheduledEnd": occ.get("scheduledEnd"),
        "timezone": user_zone,
    }
    if prompts:
        metadata["reflectionPrompts"] = prompts
    if answers:
        metadata["reflectionResponses"] = [{"prompt": p, "response": r} for p, r in answers.items()]
    if plan.get("focusAreas"):
        metadata["focusAreas"] = list(plan["focusAreas"])
    if occ.get("targets"):
        metadata["targets"] = dict(occ["targets"])
    if metrics:
        metadata["metrics"] = dict(metrics)
    return metadata


def _completed(occ: dict[str, Any], entry_id: str, minutes: int, answers: dict[str, str], stamp: str) -> dict[str, Any]:
    """A copy of ``occ`` checked in with entry ``entry_id``: status, link, check-in record, history, duration."""
    updated = copy.deepcopy(occ)
    record: dict[str, Any] = {"at": stamp, "action": "checkin", "entryId": entry_id, "minutes": minutes}
    if occ.get("status") == "completed" and occ.get("logEntryId"):
        record["replacedEntryId"] = occ["logEntryId"]
    updated.update(
        status="completed",
        logEntryId=entry_id,
        checkIn={"recordedAt": stamp, "responses": answers},
        updatedAt=stamp,
    )
    updated = _history_add(updated, record)
    updated["metrics"]["actualDuration"] = minutes
    return updated


def uncheck(occ: dict[str, Any], *, now: datetime, undo_minutes: int, reason: str | None) -> dict[str, Any]:
    """Undo a check-in within the undo window. The logbook entry stays, as free practice: the caller saves
    :func:`dissociate` of it, so that it no longer counts for this session (a new check-in then is the only one)."""
    if occ.get("status") != "completed":
        raise InvalidInputError("this session is not checked in, so there is nothing to undo",
                                hint="see what happened to it with `practiceplan occurrences --history OCC`")
    recorded = occurrence_start({"scheduledStart": (occ.get("checkIn") or {}).get("recordedAt")})
    if recorded is None:
        checkins = [h for h in occurrence_history(occ) if h.get("action") == "checkin"]
        recorded = occurrence_start({"scheduledStart": checkins[-1].get("at")}) if checkins else None
    if recorded is None:
        raise InvalidInputError(
            "this check-in has no recorded time, so it cannot be undone safely",
            hint="skip or reschedule the session instead",
        )
    elapsed = now - recorded
    if elapsed < -CLOCK_SKEW:  # the undo window runs forward from the check-in, never backward
        raise InvalidInputError(
            f"this check-in was recorded {span_words(-elapsed)} after the current time: the clock is behind it, "
            "and the undo window runs forward from the check-in; nothing was changed",
            hint="check the clock (the system time, or PRACTICEPLAN_NOW); the logbook entry can be changed with "
                 "`practiceplan log edit`",
        )
    if elapsed > timedelta(minutes=undo_minutes):
        raise InvalidInputError(
            f"the undo window of {undo_minutes} minutes has passed (checked in {int(elapsed.total_seconds() // 60)} minutes ago)",
            hint="the logbook entry stays; change it with `practiceplan log edit` or `log delete`",
        )
    stamp = iso_z(now)
    updated = copy.deepcopy(occ)
    updated["status"] = "scheduled"
    updated["logEntryId"] = None
    updated.pop("checkIn", None)
    updated["updatedAt"] = stamp
    metrics = updated.setdefault("metrics", {})
    metrics.pop("actualDuration", None)
    metrics.pop("progress", None)  # the records stay on the logbook entry, which stays as free practice
    record = {
        "at": stamp,
        "action": "uncheck",
        "entryId": occ.get("logEntryId"),
        "checkedInAt": iso_z(recorded),
        "reason": reason or "user_initiated",
    }
    return _history_add(updated, record)


LINK_FIELDS = ("planId", "planOccurrenceId")


def dissociate(entry: dict[str, Any], occ_id: str, *, now: datetime) -> dict[str, Any] | None:
    """The logbook entry of an undone (or replaced) check-in as free practice: a copy without its link to
    occurrence ``occ_id`` (``metadata.planId``/``planOccurrenceId``; ``source`` becomes ``manual``), or None
    when it does not link that occurrence. What was practised (time, minutes, notes, answers) is unchanged;
    the link itself lives on in the occurrence's ``metrics.history``."""
    metadata = entry.get("metadata") or {}
    if metadata.get("planOccurrenceId") != occ_id:
        return None
    freed = copy.deepcopy(entry)
    for key in LINK_FIELDS:
        freed["metadata"].pop(key, None)
    freed["metadata"]["source"] = "manual"
    freed["updatedAt"] = iso_z(now)
    return freed
