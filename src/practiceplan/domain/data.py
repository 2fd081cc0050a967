"""Portable data: the export document, its validation on import, the merge rule, Mirubato's data export,
and CSV rows for spreadsheets.

Pure: no I/O and no clock (callers pass ``now`` and the user's zone).

Export document (``formatVersion`` 1)::

    {"format": "practiceplan.export", "formatVersion": 1, "exportedAt": ISO-Z, "appVersion": "...",
     "schemaVersion": N, "practicePlans": [...], "planOccurrences": [...], "entries": [...],
     "planTemplates": [...], "goals": [...], "events": [...], "conflicts": [...]}

Every entity is the stored wire document, tombstones (``deletedAt``) included, each list sorted by id and
every object's keys sorted, so the same data always gives the same bytes.

Merge rule on import (by id, per entity kind): absent locally -> inserted; identical -> skipped (no write,
no outbox row); otherwise the incoming document replaces the local one only when its ``updatedAt`` is
strictly newer (a document without ``updatedAt`` is the oldest); on a tie or an older one the local document
is kept. A deletion is a document with ``deletedAt`` and a newer ``updatedAt``, so deletions travel too.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from practiceplan.domain.models import (
    ENTRY_TYPES,
    MOODS,
    iso_z,
    normalize_entry,
    parse_instant,
)
from practiceplan.errors import InvalidInputError

EXPORT_FORMAT = "practiceplan.export"
EXPORT_VERSION = 1

# document key -> (entity kind or None, table). Order is the export's order and the import's write order.
SECTIONS: tuple[tuple[str, str | None, str], ...] = (
    ("practicePlans", "practice_plan", "practice_plans"),
    ("planOccurrences", "plan_occurrence", "plan_occurrences"),
    ("entries", "logbook_entry", "logbook_entries"),
    ("planTemplates", "plan_template", "plan_templates"),
    ("goals", "goal", "goals"),
    ("events", None, "events"),
    ("conflicts", None, "conflicts"),
)
SECTION_KEYS = tuple(key for key, _, _ in SECTIONS)
LABELS = {
    "practicePlans": "plans",
    "planOccurrences": "occurrences",
    "entries": "logbook entries",
    "planTemplates": "plan templates",
    "goals": "goals",
    "events": "events",
    "conflicts": "sync conflicts",
}
MAX_ID = 200


def sort_keys(value: Any) -> Any:
    """A copy with every object's keys sorted (lists keep their order)."""
    if isinstance(value, dict):
        return {k: sort_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [sort_keys(v) for v in value]
    return value


def _id_key(item: Any) -> tuple[int, Any]:
    ident = item.get("id") if isinstance(item, dict) else None
    return (0, ident) if isinstance(ident, int) and not isinstance(ident, bool) else (1, str(ident))


def build_export(
    sections: dict[str, list[dict[str, Any]]], *, exported_at: str, app_version: str, schema_version: int
) -> dict[str, Any]:
    """The export document: known sections in a fixed order (missing ones empty), items sorted by id."""
    document: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "formatVersion": EXPORT_VERSION,
        "exportedAt": exported_at,
        "appVersion": app_version,
        "schemaVersion": schema_version,
    }
    for key in SECTION_KEYS:
        items = sections.get(key) or []
        document[key] = [sort_keys(item) for item in sorted(items, key=_id_key)]
    return document


# --------------------------------------------------------------------------- import: validation


@dataclass
class ImportSet:
    """Validated documents per section key, ready to merge. ``source`` is ``practiceplan`` or ``mirubato``."""

    source: str
    sections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)  # top-level keys of the file we do not import

    def count(self) -> int:
        return sum(len(items) for items in self.sections.values())


def _fail(path: str, expected: str) -> InvalidInputError:
    return InvalidInputError(f"{path}: expected {expected}; nothing was imported")


def _check_id(item: dict[str, Any], path: str) -> str:
    ident = item.get("id")
    if not isinstance(ident, str) or not ident.strip() or len(ident) > MAX_ID:
        raise _fail(f"{path}.id", f"a non-empty string of at most {MAX_ID} characters")
    return ident


def _check_optional_str(item: dict[str, Any], key: str, path: str) -> None:
    if key in item and item[key] is not None and not isinstance(item[key], str):
        raise _fail(f"{path}.{key}", "a string or null")


def _check_entity(kind: str, raw: Any, path: str, now: datetime, now_iso: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _fail(path, "a JSON object")
    _check_id(raw, path)
    for key in ("updatedAt", "createdAt", "deletedAt"):
        _check_optional_str(raw, key, path)
    if kind == "logbook_entry":
        if raw.get("deletedAt") and "timestamp" not in raw:
            return dict(raw)  # a bare tombstone: nothing else to check
        return normalize_entry(raw, now, where=f"{path}.", now_iso=now_iso)
    if kind == "plan_occurrence":
        if not isinstance(raw.get("planId"), str) or not raw["planId"]:
            raise _fail(f"{path}.planId", "the id of the occurrence's plan (a string)")
        for key in ("scheduledStart", "scheduledEnd", "logEntryId", "status"):
            _check_optional_str(raw, key, path)
    if kind in ("practice_plan", "plan_template"):
        if "schedule" in raw and not isinstance(raw["schedule"], dict):
            raise _fail(f"{path}.schedule", "an object")
        if "metadata" in raw and not isinstance(raw["metadata"], dict):
            raise _fail(f"{path}.metadata", "an object")
        _check_optional_str(raw, "status", path)
    return dict(raw)


def _check_event(raw: Any, path: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _fail(path, "a JSON object")
    ident = raw.get("id")
    if ident is not None and (not isinstance(ident, int) or isinstance(ident, bool) or ident < 1):
        raise _fail(f"{path}.id", "a positive whole number")
    for key in ("at", "name"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise _fail(f"{path}.{key}", "a non-empty string")
    data = raw.get("data", {})
    if not isinstance(data, dict):
        raise _fail(f"{path}.data", "an object")
    return {"id": ident, "at": raw["at"], "name": raw["name"], "data": data}


def _check_row(raw: Any, path: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or not raw:
        raise _fail(path, "a non-empty JSON object")
    return dict(raw)


def validate_sections(
    raw_sections: dict[str, Any], *, now: datetime, where: dict[str, str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Validate every item of every section (all before anything is written). Duplicate ids are refused."""
    now_iso = iso_z(now)
    result: dict[str, list[dict[str, Any]]] = {}
    for key, kind, _table in SECTIONS:
        items = raw_sections.get(key)
        if items is None:
            continue
        name = (where or {}).get(key, key)
        if not isinstance(items, list):
            raise _fail(name, "an array")
        checked: list[dict[str, Any]] = []
        seen: dict[Any, int] = {}
        for index, raw in enumerate(items):
            path = f"{name}[{index}]"
            if kind is not None:
                item = _check_entity(kind, raw, path, now, now_iso)
            elif key == "events":
                item = _check_event(raw, path)
            else:
                item = _check_row(raw, path)
            ident = item.get("id")
            if ident is not None:
                if ident in seen:
                    raise InvalidInputError(
                        f"{path}.id: '{ident}' duplicates {name}[{seen[ident]}]; nothing was imported"
                    )
                seen[ident] = index
            checked.append(item)
        result[key] = checked
    return result


def parse_document(document: Any, *, now: datetime, user_zone: str) -> ImportSet:
    """A practiceplan export, or a Mirubato "download my data" file, validated and normalised."""
    if not isinstance(document, dict):
        raise InvalidInputError(
            "the file is not a practiceplan export or a Mirubato data export (expected a JSON object)",
            hint="create one with `practiceplan export json -o FILE`",
        )
    marker = document.get("format")
    if marker is not None:
        if marker != EXPORT_FORMAT:
            raise InvalidInputError(f"unknown export format '{marker}'; nothing was imported",
                                    hint="import a file made by `practiceplan export json` or a Mirubato data export")
        version = document.get("formatVersion")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise InvalidInputError("formatVersion: expected a whole number; nothing was imported",
                                    hint="the file was changed by hand or by another program; export it again")
        if version > EXPORT_VERSION:
            raise InvalidInputError(
                f"this export has formatVersion {version}; this practiceplan reads up to {EXPORT_VERSION}",
                hint="upgrade practiceplan",
            )
        sections = validate_sections({k: document[k] for k in SECTION_KEYS if k in document}, now=now)
        return ImportSet("practiceplan", sections)
    return from_mirubato(document, now=now, user_zone=user_zone)


# --------------------------------------------------------------------------- Mirubato "download my data"

# Mirubato's data export (frontendv2 DataSubjectRights.tsx, version "2.0") puts logbook entries under
# `logbook`; older notes and hand-made files use `entries` or `logbookEntries`. All three are read.
MIRUBATO_ENTRY_KEYS = ("logbook", "entries", "logbookEntries")
MIRUBATO_KEYS = ("practicePlans", "planOccurrences", "planTemplates", "goals", *MIRUBATO_ENTRY_KEYS)

_INSTANT_FIELDS = {
    "practice_plan": ("createdAt", "updatedAt", "archivedAt", "deletedAt"),
    "plan_occurrence": ("scheduledStart", "scheduledEnd", "createdAt", "updatedAt", "deletedAt"),
    "plan_template": ("createdAt", "updatedAt", "publishedAt", "deletedAt"),
    "logbook_entry": ("createdAt", "updatedAt", "deletedAt"),
    "goal": (),
}
# Top-level keys whose `null` the wire schema accepts (sync-protocol.md §3); any other null key is dropped,
# since a Mirubato server rejects the whole push for a null where the field is not nullable.
_NULLABLE = {
    "practice_plan": {"description", "archivedAt", "deletedAt", "sourceTemplateId"},
    "plan_occurrence": {"scheduledStart", "scheduledEnd", "flexWindow", "recurrenceKey", "logEntryId", "notes",
                        "deletedAt"},
    "plan_template": {"description", "deletedAt"},
    "logbook_entry": {"notes", "mood", "session_id", "metadata", "checksum", "deleted_at", "deletedAt", "device_id"},
    "goal": {"description", "target_value", "target_date"},
}


def _ms_to_iso(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        instant = parse_instant(value)
        return iso_z(instant) if instant else value
    return value


def _drop_nulls(obj: dict[str, Any], keep: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if v is not None or k in keep}


def _clean_schedule(schedule: dict[str, Any], user_zone: str, *, fill_zone: bool) -> dict[str, Any]:
    schedule = _drop_nulls(schedule, {"endDate"})
    if fill_zone:
        metadata = schedule.get("metadata")
        metadata = dict(metadata) if isinstance(metadata, dict) else {}
        if not isinstance(metadata.get("timezone"), str) or not metadata["timezone"]:
            metadata["timezone"] = user_zone
        schedule["metadata"] = metadata
    return schedule


def _clean_segments(segments: Any) -> Any:
    if not isinstance(segments, list):
        return segments
    return [_drop_nulls(s) if isinstance(s, dict) else s for s in segments]


def mirubato_item(kind: str, raw: Any, user_zone: str) -> Any:
    """One Mirubato item converted to what practiceplan stores (still to be validated)."""
    if not isinstance(raw, dict):
        return raw
    item = copy.deepcopy(raw)
    for key in _INSTANT_FIELDS[kind]:
        if key in item:
            item[key] = _ms_to_iso(item[key])
    item = _drop_nulls(item, _NULLABLE[kind])
    if kind in ("practice_plan", "plan_template") and isinstance(item.get("schedule"), dict):
        item["schedule"] = _clean_schedule(item["schedule"], user_zone, fill_zone=kind == "practice_plan")
    if kind == "plan_occurrence":
        if isinstance(item.get("segments"), list):
            item["segments"] = _clean_segments(item["segments"])
        if isinstance(item.get("checkIn"), dict) and "recordedAt" in item["checkIn"]:
            item["checkIn"] = {**item["checkIn"], "recordedAt": _ms_to_iso(item["checkIn"]["recordedAt"])}
    if kind == "logbook_entry":
        if isinstance(item.get("pieces"), list):
            item["pieces"] = [_drop_nulls(p) if isinstance(p, dict) else p for p in item["pieces"]]
        metadata = item.get("metadata") if isinstance(item.get("metadata"), dict) else None
        for key, allowed, default in (("type", ENTRY_TYPES, "practice"), ("mood", MOODS, None)):
            value = item.get(key)
            if isinstance(value, str) and value.lower() in allowed:
                item[key] = value.lower()
            elif value is not None:
                # Values outside the wire lists (the realtime worker's `masterclass`, `proud`...) would make
                # a Mirubato server reject the whole push: keep them in metadata, use the neutral value.
                metadata = dict(metadata or {})
                metadata["original" + key.capitalize()] = value
                item[key] = default
                if default is None:
                    item.pop(key)
        if metadata is not None:
            item["metadata"] = metadata
    return item


def from_mirubato(document: dict[str, Any], *, now: datetime, user_zone: str) -> ImportSet:
    """Mirubato's "download my data" file: `practicePlans`, `planOccurrences`, `planTemplates`, `goals`, and
    logbook entries under `logbook`, `entries` or `logbookEntries`.

    Integer epoch-ms instants become ISO-Z; keys whose null the wire does not allow are dropped; plans
    without ``schedule.metadata.timezone`` get the user's zone; ``goal_ids`` is kept as it is.
    """
    present = [k for k in MIRUBATO_KEYS if k in document]
    if not present:
        raise InvalidInputError(
            "the file is neither a practiceplan export nor a Mirubato data export "
            "(no practicePlans, planOccurrences, planTemplates, logbook or entries); nothing was imported",
            hint="create one with `practiceplan export json -o FILE`",
        )
    raw: dict[str, Any] = {}
    where: dict[str, str] = {}
    entry_keys = [k for k in MIRUBATO_ENTRY_KEYS if k in document]
    entries: list[Any] = []
    for key in entry_keys:
        if not isinstance(document[key], list):
            raise _fail(key, "an array")
        entries += document[key]
    if entry_keys:
        raw["entries"] = entries
        where["entries"] = entry_keys[0] if len(entry_keys) == 1 else "+".join(entry_keys)
    for key, kind in (("practicePlans", "practice_plan"), ("planOccurrences", "plan_occurrence"),
                      ("planTemplates", "plan_template"), ("goals", "goal")):
        if key in document:
            if not isinstance(document[key], list):
                raise _fail(key, "an array")
            raw[key] = document[key]
    converted = {
        key: [mirubato_item(kind, item, user_zone) for item in raw[key]]
        for key, kind, _ in SECTIONS
        if key in raw and kind is not None
    }
    sections = validate_sections(converted, now=now, where=where)
    ignored = sorted(k for k in document if k not in MIRUBATO_KEYS)
    return ImportSet("mirubato", sections, ignored)


# --------------------------------------------------------------------------- merge


def merge_decision(local: dict[str, Any] | None, incoming: dict[str, Any]) -> str:
    """``insert`` | ``same`` | ``replace`` | ``keep`` (see the module docstring)."""
    if local is None:
        return "insert"
    if local == incoming:
        return "same"
    mine = parse_instant(local.get("updatedAt"))
    theirs = parse_instant(incoming.get("updatedAt"))
    if theirs is not None and (mine is None or theirs > mine):
        return "replace"
    return "keep"


# --------------------------------------------------------------------------- CSV

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")

LOGBOOK_COLUMNS = (
    "id", "timestamp", "localDate", "localTime", "durationMinutes", "type", "instrument", "pieces",
    "techniques", "mood", "tags", "notes", "source", "planId", "planOccurrenceId", "createdAt", "updatedAt",
)
OCCURRENCE_COLUMNS = (
    "id", "planId", "planTitle", "scheduledStart", "scheduledEnd", "localDate", "localTime", "status",
    "logEntryId", "actualDurationMinutes", "originalStart", "notes", "updatedAt",
)


def neutralise(value: Any) -> str:
    """One CSV cell: text a spreadsheet would run as a formula (``= + - @``, tab, CR) gets a leading ``'``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)  # numbers are data, a negative number is not a formula
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _local(value: Any, zone: ZoneInfo) -> tuple[str, str]:
    instant = parse_instant(value)
    if instant is None:
        return "", ""
    local = instant.astimezone(zone)
    return local.date().isoformat(), local.strftime("%H:%M")


def _joined(values: Any) -> str:
    return "; ".join(str(v) for v in values) if isinstance(values, list) else ""


def logbook_rows(entries: list[dict[str, Any]], zone: ZoneInfo) -> list[list[str]]:
    """Header + one row per live entry, oldest first; every cell neutralised."""
    rows = [list(LOGBOOK_COLUMNS)]
    live = [e for e in entries if not e.get("deletedAt")]
    for entry in sorted(live, key=lambda e: (str(e.get("timestamp")), str(e.get("id")))):
        metadata = entry.get("metadata") if isinstance(entry.get("metadata"), dict) else {}
        pieces = [
            " — ".join(x for x in (p.get("title"), p.get("composer")) if isinstance(x, str) and x)
            for p in entry.get("pieces") or []
            if isinstance(p, dict)
        ]
        day, clock = _local(entry.get("timestamp"), zone)
        values = [
            entry.get("id"), entry.get("timestamp"), day, clock, entry.get("duration"), entry.get("type"),
            entry.get("instrument"), "; ".join(pieces), _joined(entry.get("techniques")), entry.get("mood"),
            _joined(entry.get("tags")), entry.get("notes"), metadata.get("source"), metadata.get("planId"),
            metadata.get("planOccurrenceId"), entry.get("createdAt"), entry.get("updatedAt"),
        ]
        rows.append([neutralise(v) for v in values])
    return rows


def occurrence_rows(
    occurrences: list[dict[str, Any]], plans: dict[str, dict[str, Any]], zone: ZoneInfo
) -> list[list[str]]:
    """Header + one row per live occurrence, by scheduled start; every cell neutralised."""
    rows = [list(OCCURRENCE_COLUMNS)]
    live = [o for o in occurrences if not o.get("deletedAt")]
    for occ in sorted(live, key=lambda o: (str(o.get("scheduledStart")), str(o.get("id")))):
        metrics = occ.get("metrics") if isinstance(occ.get("metrics"), dict) else {}
        day, clock = _local(occ.get("scheduledStart"), zone)
        values = [
            occ.get("id"), occ.get("planId"), (plans.get(occ.get("planId") or "") or {}).get("title"),
            occ.get("scheduledStart"), occ.get("scheduledEnd"), day, clock, occ.get("status"),
            occ.get("logEntryId"), metrics.get("actualDuration"), metrics.get("originalStart"), occ.get("notes"),
            occ.get("updatedAt"),
        ]
        rows.append([neutralise(v) for v in values])
    return rows
