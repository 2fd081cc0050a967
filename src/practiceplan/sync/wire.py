"""The Mirubato diff format on the wire: what the server accepts, how it rewrites what it keeps, and how we
read its answers back (pure functions; ../shared/reference/sync-protocol.md §3, §4.1, §6).

Three views of one entity:

* the **local document** (what ``Store`` keeps): camelCase, ISO-Z instants, no server-added keys, and any
  extra keys of ours;
* the **push item** (:func:`to_push`): the local document minus what the server must not receive
  (null in a non-nullable field, server-owned keys);
* the **canonical form** (:func:`canonical`): what the server would *store* for a push item — unknown keys
  dropped at every level, enums and instruments lowercased, piece ids normalised, entry timestamps in epoch
  milliseconds, server-added keys removed. Two documents are "the same version" when their canonical forms
  are equal, whichever side they came from, so a local document that went to the server and came back with
  ``user_id``, ``goal_ids`` and an integer ``timestamp`` still compares equal (:func:`version_hash`).

:func:`from_remote` turns a pulled item into a local document (undoing every rewrite of §3.0.3) and
:func:`problems` finds what the server would reject with a bare 400, by field, so a rejected batch can name
the bad item and its field.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

# the kinds synced with every server (Mirubato's arrays)
KINDS = ("practice_plan", "plan_occurrence", "logbook_entry", "plan_template")
# synced only with a server that advertises ``sharing`` (docs/collaboration.md): a Mirubato server drops an array
# it does not know, so comments pushed there would be acknowledged and lost
SHARING_KINDS = ("plan_comment",)
# wire array name of each synced kind, in the order the server processes a push (plans before their sessions)
ARRAYS = {
    "practice_plan": "practicePlans",
    "plan_occurrence": "planOccurrences",
    "logbook_entry": "entries",
    "plan_template": "planTemplates",
    "plan_comment": "planComments",
}
KIND_OF_ARRAY = {array: kind for kind, array in ARRAYS.items()}
# keys the server adds on push (§3.0.3); never part of a local document
SERVER_ADDED = {
    "logbook_entry": ("user_id", "created_at", "updated_at"),
    "practice_plan": ("user_id", "created_at", "updated_at"),
    "plan_occurrence": ("user_id", "plan_id", "created_at", "updated_at"),
    "plan_template": ("created_at", "updated_at"),
    "plan_comment": ("user_id", "plan_id", "created_at", "updated_at"),
}
# values the server owns: they may differ between a local copy and the server's without either being a change
# (the author is the account that pushed the template; adoptions are counted by the server; a comment's author
# is the server user who wrote it)
SERVER_OWNED = {"plan_template": ("authorId", "adoptionCount"), "plan_comment": ("author",)}
# server-owned values that are not even sent (the server sets them from the account that pushes)
NOT_SENT = {"plan_comment": ("author",)}
# a plan's ``metadata.sharing`` (owner, members, levels) is written by a ``practiceplan serve`` server only: a
# pushed value is replaced by the server's, so it is no part of a version (a plan pushed with a stale value is
# the same version as the server's answer); it still round-trips, and a pull refreshes it (engine)
SHARING_KEY = "sharing"
TIMES = ("createdAt", "updatedAt")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# --------------------------------------------------------------------------- the schemas (§3)
# A field spec is a callable check(value) -> problem text or None, plus a "clean" projection for containers.

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


class Field:
    """One field: ``check`` returns a problem or None; ``project`` the value the server would store."""

    def __init__(self, check: Callable[[Any], str | None], project: Callable[[Any], Any] | None = None,
                 nullable: bool = False) -> None:
        self.check_value = check
        self.project_value = project or (lambda v: v)
        self.nullable = nullable

    def check(self, value: Any) -> str | None:
        if value is None:
            return None if self.nullable else "null is not allowed here"
        return self.check_value(value)

    def project(self, value: Any) -> Any:
        return None if value is None else self.project_value(value)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def string(min_len: int = 0, nullable: bool = False) -> Field:
    def check(v: Any) -> str | None:
        if not isinstance(v, str):
            return "must be a string"
        return f"must have at least {min_len} character" if len(v) < min_len else None
    return Field(check, nullable=nullable)


def integer(minimum: int | None = None, nullable: bool = False) -> Field:
    def check(v: Any) -> str | None:
        if not _is_int(v):
            return "must be a whole number"
        return f"must be at least {minimum}" if minimum is not None and v < minimum else None
    return Field(check, nullable=nullable)


def number() -> Field:
    return Field(lambda v: None if _is_num(v) else "must be a number")


def enum(*values: str, nullable: bool = False) -> Field:
    return Field(lambda v: None if v in values else f"must be one of {', '.join(values)}", nullable=nullable)


def free_object(nullable: bool = False) -> Field:
    return Field(lambda v: None if isinstance(v, dict) else "must be an object", nullable=nullable)


def value_map(allowed: Callable[[Any], bool], what: str) -> Field:
    """An object whose values are restricted (occurrence ``metrics``/``targets``, segment ``tempoTargets``)."""
    def check(v: Any) -> str | None:
        if not isinstance(v, dict):
            return "must be an object"
        for key, item in v.items():
            if not allowed(item):
                return f"value of '{key}' must be {what}"
        return None
    return Field(check)


def array(item: Field | Schema) -> Field:
    def check(v: Any) -> str | None:
        if not isinstance(v, list):
            return "must be an array"
        for i, element in enumerate(v):
            problem = item.check(element) if isinstance(item, Field) else item.first_problem(element)
            if problem:
                return f"[{i}]: {problem}" if isinstance(item, Field) else f"[{i}].{problem}"
        return None

    def project(v: list[Any]) -> list[Any]:
        return [item.project(e) if isinstance(item, Schema) else item.project(e) for e in v]
    return Field(check, project)


class Schema:
    """An object schema: known fields are checked and kept, unknown keys are dropped (zod's default)."""

    def __init__(self, fields: dict[str, Field | Schema], required: tuple[str, ...] = (),
                 nullable: bool = False) -> None:
        self.fields = fields
        self.required = required
        self.nullable = nullable

    def first_problem(self, value: Any) -> str | None:
        problems = self.problems(value)
        return problems[0] if problems else None

    def check(self, value: Any) -> str | None:  # used when nested as a field
        if value is None:
            return None if self.nullable else "null is not allowed here"
        return self.first_problem(value)

    def problems(self, value: Any, path: str = "") -> list[str]:
        if not isinstance(value, dict):
            return [f"{path or 'item'}: must be an object"]
        found: list[str] = []
        for name in self.required:
            if name not in value:
                found.append(f"{path}{name}: is required")
        for name, spec in self.fields.items():
            if name not in value:
                continue
            item = value[name]
            if isinstance(spec, Schema):
                if item is None:
                    if not spec.nullable:
                        found.append(f"{path}{name}: null is not allowed here")
                else:
                    found.extend(spec.problems(item, f"{path}{name}."))
            else:
                problem = spec.check(item)
                if problem:
                    found.append(f"{path}{name}{problem}" if problem.startswith("[") else f"{path}{name}: {problem}")
        return found

    def project(self, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for name, spec in self.fields.items():
            if name in value:
                out[name] = spec.project(value[name]) if value[name] is not None else None
        return out


def _timestamp_check(v: Any) -> str | None:
    if _is_int(v) or (isinstance(v, str) and ISO_Z.match(v)):
        return None
    return "must be epoch milliseconds or an ISO-Z instant (e.g. 2026-05-04T16:05:00.000Z)"


def _iso_z_check(v: Any) -> str | None:
    return None if isinstance(v, str) and ISO_Z.match(v) else "must be an ISO-Z instant (e.g. 2026-05-04T16:05:00.000Z)"


def _lower(v: Any) -> Any:
    return v.lower() if isinstance(v, str) else v


STRINGS = array(string())
PIECE = Schema({"id": string(), "title": string(), "composer": string(), "duration": number()}, required=("title",))
PIECE_REF = Schema({"scoreId": string(), "title": string(), "composer": string(nullable=True)})
SCHEDULE = Schema({
    "kind": enum("single", "recurring"),
    "rule": string(),
    "durationMinutes": integer(1),
    "timeOfDay": string(),
    "flexibility": enum("fixed", "same-day", "anytime"),
    "startDate": string(),
    "endDate": string(nullable=True),
    "target": string(),
    "metadata": free_object(),
}, required=("kind",))
SEGMENT = Schema({
    "id": string(),
    "label": string(1),
    "durationMinutes": integer(1),
    "pieceRefs": array(PIECE_REF),
    "techniques": STRINGS,
    "instructions": string(),
    "tempoTargets": value_map(lambda x: x is None or isinstance(x, str) or _is_num(x), "a number, string or null"),
    "metadata": free_object(),
}, required=("label",))
CHECK_IN = Schema({"recordedAt": string(), "responses": free_object()})


def _metric_value(x: Any) -> bool:
    return x is None or isinstance(x, (str, list)) or _is_num(x)


def _target_value(x: Any) -> bool:
    return x is None or isinstance(x, str) or _is_num(x) or (isinstance(x, list) and all(_is_num(e) for e in x))


ENTRY_TIME = Field(_timestamp_check)
SCHEMAS: dict[str, Schema] = {
    "logbook_entry": Schema({
        "id": string(), "user_id": string(), "timestamp": ENTRY_TIME, "duration": integer(0),
        "type": Field(enum("practice", "performance", "lesson", "rehearsal", "technique",
                           "status_change").check_value, _lower),
        "instrument": Field(string(1).check_value, _lower), "pieces": array(PIECE), "techniques": STRINGS,
        "goal_ids": STRINGS, "goalIds": STRINGS, "notes": string(nullable=True),
        "mood": Field(enum("frustrated", "neutral", "satisfied", "excited").check_value, _lower, nullable=True),
        "tags": STRINGS, "session_id": string(nullable=True), "metadata": free_object(nullable=True),
        "created_at": ENTRY_TIME, "createdAt": Field(_iso_z_check), "updated_at": ENTRY_TIME,
        "updatedAt": Field(_iso_z_check), "sync_version": integer(), "checksum": string(nullable=True),
        "deleted_at": string(nullable=True), "deletedAt": string(nullable=True), "device_id": string(nullable=True),
    }, required=("id",)),
    "practice_plan": Schema({
        "id": string(), "user_id": string(), "title": string(1), "description": string(nullable=True),
        "type": enum("bootcamp", "course", "custom"), "focusAreas": STRINGS, "techniques": STRINGS,
        "pieceRefs": array(PIECE_REF), "schedule": SCHEDULE, "visibility": enum("private", "shared", "template"),
        "status": enum("draft", "active", "completed", "archived"), "ownerId": string(),
        "templateVersion": integer(), "sourceTemplateId": string(nullable=True), "tags": STRINGS,
        "metadata": free_object(), "createdAt": string(), "updatedAt": string(),
        "archivedAt": string(nullable=True), "deletedAt": string(nullable=True),
    }, required=("id",)),
    "plan_occurrence": Schema({
        "id": string(), "planId": string(), "user_id": string(),
        "scheduledStart": string(nullable=True), "scheduledEnd": string(nullable=True),
        "flexWindow": string(nullable=True), "recurrenceKey": string(nullable=True),
        "segments": array(SEGMENT),
        "targets": value_map(_target_value, "a number, string, null or list of numbers"),
        "reflectionPrompts": STRINGS,
        "status": enum("scheduled", "completed", "skipped", "expired"),
        "logEntryId": string(nullable=True), "checkIn": CHECK_IN, "notes": string(nullable=True),
        "reminderState": free_object(),
        "metrics": value_map(_metric_value, "a number, string, null or list"),
        "createdAt": string(), "updatedAt": string(), "deletedAt": string(nullable=True),
    }, required=("id", "planId")),
    "plan_template": Schema({
        "id": string(), "authorId": string(), "sourcePlanId": string(), "title": string(1),
        "description": string(nullable=True), "type": enum("bootcamp", "course", "custom"),
        "focusAreas": STRINGS, "techniques": STRINGS, "pieceRefs": array(PIECE_REF), "schedule": SCHEDULE,
        "tags": STRINGS, "templateVersion": integer(), "visibility": enum("public", "private"),
        "adoptionCount": integer(), "metadata": free_object(), "publishedAt": string(),
        "createdAt": string(), "updatedAt": string(), "deletedAt": string(nullable=True),
    }, required=("id",)),
    "plan_comment": Schema({
        "id": string(1), "planId": string(1), "occurrenceId": string(nullable=True),
        "occurrenceOwner": string(nullable=True), "text": string(1), "author": string(nullable=True),
        "createdAt": Field(_iso_z_check), "updatedAt": Field(_iso_z_check), "deletedAt": string(nullable=True),
    }, required=("id", "planId", "text")),
}


def plan_sharing(doc: dict[str, Any] | None) -> Any:
    """A plan's ``metadata.sharing`` (None when it has none)."""
    meta = (doc or {}).get("metadata")
    return meta.get(SHARING_KEY) if isinstance(meta, dict) else None


def with_sharing(doc: dict[str, Any], sharing: Any) -> dict[str, Any]:
    """``doc`` (a plan) with ``metadata.sharing`` set to ``sharing`` (removed when None)."""
    meta = dict(doc.get("metadata") or {}) if isinstance(doc.get("metadata"), dict) else {}
    if sharing is None:
        meta.pop(SHARING_KEY, None)
    else:
        meta[SHARING_KEY] = sharing
    return {**doc, "metadata": meta}


def problems(kind: str, item: dict[str, Any]) -> list[str]:
    """What the server's validation rejects in ``item`` (a push item), as ``field: problem`` lines; [] if none.
    Also the per-item recurrence checks (§4.2, §4.3), which the server answers with a conflict, not a 400."""
    found = SCHEMAS[kind].problems(item)
    if not isinstance(item.get("id"), str) or not item.get("id"):
        found.insert(0, "id: must be a non-empty string")
    if not found and kind in ("practice_plan", "plan_template") and not item.get("deletedAt"):
        found.extend(recurrence_problems(item.get("schedule")))
    return found


# --------------------------------------------------------------------------- recurrence checks (§4.2, §4.3)

FREQS = ("DAILY", "WEEKLY", "MONTHLY")


def rule_is_valid(rule: Any) -> bool:
    """§4.2: valid iff a part ``FREQ=<DAILY|WEEKLY|MONTHLY>`` (key any case) is found (the last FREQ wins)."""
    if not isinstance(rule, str):
        return False
    freq = None
    for part in (p.strip() for p in rule.split(";")):
        if "=" in part:
            key, value = part.split("=", 1)
            if key.strip().upper() == "FREQ":
                freq = value.strip().upper()
    return freq in FREQS


def recurrence_problems(schedule: Any) -> list[str]:
    if not isinstance(schedule, dict) or schedule.get("kind") != "recurring":
        return []
    if not rule_is_valid(schedule.get("rule")):
        return ["schedule.rule: Invalid recurrence rule (needs FREQ=DAILY, WEEKLY or MONTHLY, without an RRULE: prefix)"]
    meta = schedule.get("metadata")
    recurrence = meta.get("recurrence") if isinstance(meta, dict) else None
    if recurrence and (not isinstance(recurrence, dict)
                       or str(recurrence.get("frequency", "")).upper() not in FREQS):
        return ["schedule.metadata.recurrence: Invalid recurrence metadata (frequency must be DAILY, WEEKLY or MONTHLY)"]
    return []


# --------------------------------------------------------------------------- score ids (§3.1.2)

CANONICAL_SCORE = re.compile(r"^score_[a-z0-9]+([-_][a-z0-9]+)*$", re.IGNORECASE)


def _clean(text: str) -> str:
    text = " ".join(text.lower().strip().split())
    return text.replace("\u2018", "'").replace("\u2019", "'")


def score_id(piece: dict[str, Any]) -> str:
    """The id the server stores on a piece (Mirubato's scoreIdNormalizer)."""
    given = piece.get("id")
    if isinstance(given, str) and given.strip():
        given = given.strip()
        if CANONICAL_SCORE.match(given):
            return given
        low = given.lower()
        if "||" in low:
            title, composer = low.split("||", 1)
        elif "-" in low:
            title, composer = low.split("-", 1)
        else:
            title, composer = low, ""
        title, composer = title.strip(), composer.strip() or "unknown"
    else:
        title = _clean(str(piece.get("title") or "")).replace("\u201c", '"').replace("\u201d", '"')
        title = title.replace("\u2013", "-").replace("\u2014", "-")
        composer = _clean(str(piece.get("composer") or "") or "Unknown").replace(".", "")
        composer = composer or "unknown"
    joiner = "||" if "-" in title or "-" in composer else "-"
    return f"{title}{joiner}{composer}"


# --------------------------------------------------------------------------- the three views

def _drop_nulls(kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Remove keys whose value is null where the schema does not allow null (§3.0.6, §6.3 rule 4), at the top
    level and in schedules and pieces, so a pulled document can be pushed again."""
    schema = SCHEMAS[kind]
    out = {}
    for key, value in doc.items():
        spec = schema.fields.get(key)
        if value is None and spec is not None and not spec.nullable:
            continue
        out[key] = value
    schedule = out.get("schedule")
    if isinstance(schedule, dict) and any(v is None and k in SCHEDULE.fields and not SCHEDULE.fields[k].nullable
                                          for k, v in schedule.items()):
        out["schedule"] = {k: v for k, v in schedule.items()
                           if not (v is None and k in SCHEDULE.fields and not SCHEDULE.fields[k].nullable)}
    return out


def to_push(kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The push item for a local document (a full snapshot; deletions carry ``deletedAt``)."""
    item = _drop_nulls(kind, {k: v for k, v in doc.items()
                              if k not in SERVER_ADDED[kind] and k not in NOT_SENT.get(kind, ())})
    if kind == "logbook_entry" and "goal_ids" in item and "goalIds" not in item:
        item["goalIds"] = item.pop("goal_ids")
    if kind == "logbook_entry" and isinstance(item.get("pieces"), list):
        item["pieces"] = [{k: v for k, v in p.items() if not (k == "composer" and v is None)}
                          if isinstance(p, dict) else p for p in item["pieces"]]
    return item


def _epoch_ms(value: Any) -> Any:
    if isinstance(value, str) and ISO_Z.match(value):
        try:
            stamp = datetime.fromisoformat(value[:-1] + "+00:00")
        except ValueError:
            return value
        return (stamp - EPOCH) // timedelta(milliseconds=1)  # exact (floats are not), truncated as JS does
    return value


def canonical(kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    """What the server stores for this document, without its server-added and server-owned keys."""
    if doc.get("deletedAt"):
        return {"id": doc.get("id"), "deletedAt": True}
    projected = SCHEMAS[kind].project(to_push(kind, doc))
    for key in SERVER_ADDED[kind] + SERVER_OWNED.get(kind, ()):
        projected.pop(key, None)
    projected.pop("deletedAt", None)  # falsy: null and absent mean the same
    if kind == "practice_plan" and isinstance(projected.get("metadata"), dict) and SHARING_KEY in projected["metadata"]:
        projected["metadata"] = {k: v for k, v in projected["metadata"].items() if k != SHARING_KEY}
    if kind == "logbook_entry":
        if "goalIds" in projected and "goal_ids" not in projected:
            projected["goal_ids"] = projected.pop("goalIds")
        for key in ("instrument", "type", "mood"):
            projected[key] = _lower(projected.get(key)) if key in projected else None
            if projected[key] is None:
                projected.pop(key)
        projected["timestamp"] = _epoch_ms(projected.get("timestamp"))
        if isinstance(projected.get("pieces"), list):
            projected["pieces"] = [{**p, "id": score_id(p)} if isinstance(p, dict) else p
                                   for p in projected["pieces"]]
    return projected


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def version_hash(kind: str, doc: dict[str, Any] | None) -> str:
    """Identifies one version of an entity as the server sees it ("-" for absent, a fixed value per deletion)."""
    if doc is None:
        return "-"
    return _digest(canonical(kind, doc))


def content_hash(kind: str, doc: dict[str, Any] | None) -> str:
    """Like :func:`version_hash` but blind to ``createdAt``/``updatedAt``: two devices that generated the same
    session of a plan independently hold the same content, so picking either loses nothing."""
    if doc is None:
        return "-"
    return _digest({k: v for k, v in canonical(kind, doc).items() if k not in TIMES})


def from_remote(kind: str, item: dict[str, Any], local: dict[str, Any] | None = None) -> dict[str, Any]:
    """A pulled item as a local document: the server's additions removed, its rewrites undone (§3.0.3, §3.0.6),
    null in non-nullable fields dropped. Keys of ``local`` that the server never stores (our own extensions
    outside the schema) are carried over, so taking the server's version never loses them."""
    doc = {k: v for k, v in item.items() if k not in SERVER_ADDED[kind]}
    if kind == "logbook_entry":
        if "goal_ids" in doc and "goalIds" not in doc:
            doc["goalIds"] = doc.pop("goal_ids")
        stamp = doc.get("timestamp")
        if _is_int(stamp):
            doc["timestamp"] = datetime.fromtimestamp(stamp / 1000, UTC).replace(tzinfo=None).isoformat(
                timespec="milliseconds") + "Z"
        if isinstance(doc.get("pieces"), list):
            original = {}
            if local and isinstance(local.get("pieces"), list):
                original = {i: p for i, p in enumerate(local["pieces"]) if isinstance(p, dict)}
            pieces = []
            for i, piece in enumerate(doc["pieces"]):
                if isinstance(piece, dict) and "id" in piece:
                    mine = original.get(i)
                    computed = score_id({k: v for k, v in piece.items() if k != "id"})
                    if piece["id"] == computed and not (mine and "id" in mine):
                        piece = {k: v for k, v in piece.items() if k != "id"}
                pieces.append(piece)
            doc["pieces"] = pieces
    doc = _drop_nulls(kind, doc)
    if local:
        schema = SCHEMAS[kind].fields
        for key, value in local.items():
            if key not in schema and key not in doc and key not in SERVER_ADDED[kind] and key != "goal_ids":
                doc[key] = value
        for key in SERVER_OWNED.get(kind, ()):
            if key not in doc and key in local:
                doc[key] = local[key]
    return doc


def updated_at(doc: dict[str, Any] | None) -> str:
    """The instant a version was written, for last-write-wins (a deletion: when it was deleted)."""
    if not doc:
        return ""
    # a tombstone from the server keeps the snapshot from before the deletion: its updatedAt is older
    value = doc.get("deletedAt") or doc.get("updatedAt") or doc.get("createdAt") or ""
    if _is_int(value):
        return datetime.fromtimestamp(value / 1000, UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    return str(value)
