"""A small re-statement of what a Mirubato server accepts on push (sync-protocol.md §3, §4.1, §4.2).

Used by tests to check that everything practiceplan emits would be accepted: enums inside their lists,
no ``null`` where the field is not nullable, ``metrics``/``targets`` value types, the rule grammar.
"""

from __future__ import annotations

import re
from typing import Any

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
RULE = re.compile(
    r"^FREQ=(DAILY|WEEKLY|MONTHLY);INTERVAL=[1-9]\d*(;BYDAY=(SU|MO|TU|WE|TH|FR|SA)(,(SU|MO|TU|WE|TH|FR|SA))*)?"
    r"(;COUNT=[1-9]\d*)?(;UNTIL=\d{8}T235959Z)?$"
)


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def _str_or_null(doc: dict[str, Any], key: str) -> None:
    if key in doc:
        _check(doc[key] is None or isinstance(doc[key], str), f"{key} must be string|null")


def _str(doc: dict[str, Any], key: str, non_empty: bool = False) -> None:
    if key in doc:
        _check(isinstance(doc[key], str), f"{key} must be a string (not null)")
        if non_empty:
            _check(bool(doc[key]), f"{key} must not be empty")


def _str_list(doc: dict[str, Any], key: str) -> None:
    if key in doc:
        _check(isinstance(doc[key], list) and all(isinstance(x, str) for x in doc[key]), f"{key}: array<string>")


def _plain_values(obj: Any, key: str, allow_arrays: bool) -> None:
    _check(isinstance(obj, dict), f"{key} must be an object")
    for name, value in obj.items():
        ok = value is None or isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool))
        if allow_arrays and isinstance(value, list):
            ok = True
        _check(ok, f"{key}.{name}: booleans and nested objects are rejected")


def _piece_refs(refs: Any) -> None:
    _check(isinstance(refs, list), "pieceRefs must be an array")
    for ref in refs:
        _check(isinstance(ref, dict), "pieceRef must be an object")
        _str(ref, "scoreId")
        _str(ref, "title")
        _str_or_null(ref, "composer")


def check_schedule(schedule: dict[str, Any]) -> None:
    _check(schedule.get("kind") in ("single", "recurring"), "schedule.kind")
    if schedule["kind"] == "recurring":
        _check(isinstance(schedule.get("rule"), str) and bool(RULE.match(schedule["rule"])),
               f"schedule.rule {schedule.get('rule')!r} not in the accepted grammar")
    if "durationMinutes" in schedule:
        _check(isinstance(schedule["durationMinutes"], int) and schedule["durationMinutes"] >= 1, "durationMinutes")
    if "flexibility" in schedule:
        _check(schedule["flexibility"] in ("fixed", "same-day", "anytime"), "flexibility enum")
    for key in ("timeOfDay", "startDate", "target", "rule"):
        _str(schedule, key)
    _str_or_null(schedule, "endDate")
    if "metadata" in schedule:
        _check(isinstance(schedule["metadata"], dict), "schedule.metadata object")


def check_plan(plan: dict[str, Any]) -> None:
    _check(isinstance(plan.get("id"), str) and bool(plan["id"]), "plan id")
    _str(plan, "title", non_empty=True)
    _str_or_null(plan, "description")
    if "type" in plan:
        _check(plan["type"] in ("bootcamp", "course", "custom"), "plan type")
    if "visibility" in plan:
        _check(plan["visibility"] in ("private", "shared", "template"), "plan visibility")
    if "status" in plan:
        _check(plan["status"] in ("draft", "active", "completed", "archived"), "plan status")
    for key in ("focusAreas", "techniques", "tags"):
        _str_list(plan, key)
    if "pieceRefs" in plan:
        _piece_refs(plan["pieceRefs"])
    if "schedule" in plan:
        check_schedule(plan["schedule"])
    if "metadata" in plan:
        _check(isinstance(plan["metadata"], dict), "plan metadata object")
    for key in ("createdAt", "updatedAt", "ownerId"):
        _str(plan, key)
    for key in ("archivedAt", "deletedAt", "sourceTemplateId"):
        _str_or_null(plan, key)


def check_occurrence(occ: dict[str, Any]) -> None:
    _check(isinstance(occ.get("id"), str) and bool(occ["id"]), "occurrence id")
    _check(isinstance(occ.get("planId"), str), "occurrence planId is required")
    for key in ("scheduledStart", "scheduledEnd", "flexWindow", "recurrenceKey", "logEntryId", "notes", "deletedAt"):
        _str_or_null(occ, key)
    for key in ("createdAt", "updatedAt"):
        _str(occ, key)
    if "status" in occ:
        _check(occ["status"] in ("scheduled", "completed", "skipped", "expired"), "occurrence status")
    _check("metadata" not in occ, "occurrences have no metadata on the wire (it would be dropped)")
    for segment in occ.get("segments", []):
        _check(isinstance(segment.get("label"), str) and bool(segment["label"]), "segment label")
        if "durationMinutes" in segment:
            _check(isinstance(segment["durationMinutes"], int) and segment["durationMinutes"] >= 1, "segment minutes")
        if "tempoTargets" in segment:
            _plain_values(segment["tempoTargets"], "tempoTargets", allow_arrays=False)
    _str_list(occ, "reflectionPrompts")
    if "checkIn" in occ:
        _check(isinstance(occ["checkIn"], dict), "checkIn is not nullable")
    if "reminderState" in occ:
        _check(isinstance(occ["reminderState"], dict), "reminderState is not nullable")
    if "metrics" in occ:
        _plain_values(occ["metrics"], "metrics", allow_arrays=True)
    if "targets" in occ:
        _check(isinstance(occ["targets"], dict), "targets object")
        for name, value in occ["targets"].items():
            ok = value is None or isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool))
            ok = ok or (isinstance(value, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value))
            _check(ok, f"targets.{name}")


def check_entry(entry: dict[str, Any]) -> None:
    _check(isinstance(entry.get("id"), str) and bool(entry["id"]), "entry id")
    ts = entry.get("timestamp")
    _check((isinstance(ts, int) and not isinstance(ts, bool)) or (isinstance(ts, str) and bool(ISO_Z.match(ts))),
           "timestamp must be epoch ms or ISO-Z")
    if "duration" in entry:
        _check(isinstance(entry["duration"], int) and entry["duration"] >= 0, "duration")
    if "type" in entry:
        _check(entry["type"] in ("practice", "performance", "lesson", "rehearsal", "technique", "status_change"), "type")
    if "instrument" in entry:
        _check(isinstance(entry["instrument"], str) and bool(entry["instrument"]), "instrument")
    if entry.get("mood") is not None:
        _check(entry["mood"] in ("frustrated", "neutral", "satisfied", "excited"), "mood")
    for piece in entry.get("pieces", []):
        _check(isinstance(piece.get("title"), str), "piece title")
        _str(piece, "composer")
    for key in ("techniques", "tags", "goalIds", "goal_ids"):
        _str_list(entry, key)
    _str_or_null(entry, "notes")
    if "metadata" in entry:
        _check(entry["metadata"] is None or isinstance(entry["metadata"], dict), "metadata must be an object")
    for key in ("createdAt", "updatedAt"):
        if key in entry:
            _check(isinstance(entry[key], str) and bool(ISO_Z.match(entry[key])), f"{key} must be ISO-Z")


def check_template(template: dict[str, Any]) -> None:
    """A plan_template item a Mirubato server accepts on push (§3.5), and that its adoption can parse."""
    _check(isinstance(template.get("id"), str) and bool(template["id"]), "template id")
    _str(template, "authorId")
    if "sourcePlanId" in template:
        _check(isinstance(template["sourcePlanId"], str), "sourcePlanId is not nullable")
    _str(template, "title", non_empty=True)
    _str_or_null(template, "description")
    if "type" in template:
        _check(template["type"] in ("bootcamp", "course", "custom"), "template type")
    if "visibility" in template:
        _check(template["visibility"] in ("public", "private"), "template visibility is public|private (not the plan enum)")
    for key in ("focusAreas", "techniques", "tags"):
        _str_list(template, key)
    if "pieceRefs" in template:
        _piece_refs(template["pieceRefs"])
    if "schedule" in template:
        check_schedule(template["schedule"])
        meta = template["schedule"].get("metadata") or {}
        if "recurrence" in meta:
            _check(str(meta["recurrence"].get("frequency", "")).upper() in ("DAILY", "WEEKLY", "MONTHLY"),
                   "schedule.metadata.recurrence.frequency")
    for key in ("templateVersion", "adoptionCount"):
        if key in template:
            _check(isinstance(template[key], int) and not isinstance(template[key], bool), f"{key} must be an integer")
    if "metadata" in template:
        _check(isinstance(template["metadata"], dict), "template metadata must be an object")
    for key in ("publishedAt", "createdAt", "updatedAt"):
        _str(template, key)
    _str_or_null(template, "deletedAt")
