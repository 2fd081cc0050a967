"""Templates <-> plans, parameters and versions (pure: no I/O, no clock reads).

A template is a ``plan_template`` entity in wire format (sync-protocol.md §3.5). What a plan needs beyond
the wire fields rides in ``metadata``: ``segments``, ``reflectionPrompts``, ``targets``, ``instrument``,
``level`` and a web-client compatible ``preview``. Parameters are declared next to the entity in a
template file and stored in ``metadata.parameters`` of the stored entity.

* :func:`plan_to_template` copies a whitelist of a plan's fields (never check-ins, logbook data,
  occurrence history or other ``metadata`` keys).
* :func:`build_adopted_plan` substitutes parameter values and builds the learner's plan through the same
  :func:`practiceplan.domain.plans.apply_input` as ``plan add``, in the learner's zone.
* :func:`parse_value` / :func:`parse_text_value` check a parameter value (from a file or a command line).
* :func:`content_key` compares two versions of a template regardless of version stamps.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import date, datetime, time, timedelta
from typing import Any

from practiceplan.domain import recurrence as rec
from practiceplan.domain.models import (
    clean_line,
    iso_z,
    parse_local_date,
    parse_piece,
    plan_flex,
)
from practiceplan.domain.plans import PlanInput, apply_input, parse_weekdays
from practiceplan.domain.tz import localize
from practiceplan.errors import InvalidInputError

def key_text(fingerprint: str, name: str | None = None) -> str:
    """The one way a signing key appears in messages: ``key f11e9416898a75a2`` (its fingerprint: the first 16
    hex digits of the SHA-256 of the public key), after its trusted owner's name when there is one:
    ``Ms Lee (key f11e9416898a75a2)``. JSON carries the same fingerprint as ``fingerprint``."""
    return f"{name} (key {fingerprint})" if name else f"key {fingerprint}"


PARAM_TYPES = ("text", "choice", "instrument", "pieces", "date", "time", "weekdays", "minutes", "integer")
#: Targets substituted through ``{{name}}`` placeholders inside text.
TEXT_TARGETS = ("title", "description", "segments.label", "segments.instructions", "reflectionPrompts")
#: Other targets and the parameter types that may fill them.
VALUE_TARGETS: dict[str, tuple[str, ...]] = {
    "instrument": ("instrument", "choice", "text"),
    "pieceRefs": ("pieces",),
    "schedule.startDate": ("date",),
    "schedule.timeOfDay": ("time",),
    "schedule.weekdays": ("weekdays",),
    "schedule.durationMinutes": ("minutes",),
    "durations": ("minutes", "integer"),
}
SEGMENT_PIECES = re.compile(r"segments\[(0|[1-9][0-9]?)\]\.pieceRefs")
TARGET_KEY = re.compile(r"targets\.([A-Za-z][A-Za-z0-9_.-]{0,63})")
TARGET_KEY_TYPES = ("integer", "minutes", "text", "choice")
PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
PARAM_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_WEEKDAY_SHORT = dict(zip(WEEKDAY_CODES, ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")))
_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
_LOOSE_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

MAX_TEXT_VALUE = 200
MAX_INSTRUMENT = 60
MAX_PIECES = 50
MAX_MINUTES = 1440
INTEGER_RANGE = (-1_000_000, 1_000_000)

# Segment fields a template keeps (the wire segment without its id and free-form metadata).
SEGMENT_FIELDS = ("label", "durationMinutes", "pieceRefs", "techniques", "instructions", "tempoTargets")
# Template metadata keys copied from a plan: the whitelist of `template create --from-plan`.
PLAN_METADATA_WHITELIST = ("segments", "reflectionPrompts", "targets", "instrument", "level")
# Schedule metadata keys copied from a plan (no exdates: those are the tutor's own days off).
SCHEDULE_METADATA_WHITELIST = ("timezone", "rrule", "recurrence", "flex", "segmentsCount")
SCHEDULE_WHITELIST = ("kind", "rule", "durationMinutes", "timeOfDay", "flexibility", "startDate", "endDate")
# Local bookkeeping inside the stored entity's metadata: never exported.
LOCAL_METADATA = ("parameters", "provenance")


# --------------------------------------------------------------------------- targets


def target_types(target: str) -> tuple[str, ...] | None:
    """The parameter types allowed for ``target``, or None if it is not a target."""
    if target in TEXT_TARGETS:
        return PARAM_TYPES
    if target in VALUE_TARGETS:
        return VALUE_TARGETS[target]
    if SEGMENT_PIECES.fullmatch(target):
        return ("pieces",)
    if TARGET_KEY.fullmatch(target):
        return TARGET_KEY_TYPES
    return None


def placeholders(text: str) -> list[str]:
    """Names inside ``{{...}}`` (stripped), in order."""
    return [m.group(1).strip() for m in PLACEHOLDER.finditer(text)]


def text_fields(template: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Every text a placeholder may appear in: (target, JSON path below ``template``, text)."""
    out: list[tuple[str, str, str]] = []
    if isinstance(template.get("title"), str):
        out.append(("title", "title", template["title"]))
    if isinstance(template.get("description"), str):
        out.append(("description", "description", template["description"]))
    metadata = template.get("metadata") if isinstance(template.get("metadata"), dict) else {}
    segments = metadata.get("segments") if isinstance(metadata.get("segments"), list) else []
    for index, segment in enumerate(segments):
        if not isinstance(segment, dict):
            continue
        for key, target in (("label", "segments.label"), ("instructions", "segments.instructions")):
            if isinstance(segment.get(key), str):
                out.append((target, f"metadata.segments[{index}].{key}", segment[key]))
    prompts = metadata.get("reflectionPrompts") if isinstance(metadata.get("reflectionPrompts"), list) else []
    for index, prompt in enumerate(prompts):
        if isinstance(prompt, str):
            out.append(("reflectionPrompts", f"metadata.reflectionPrompts[{index}]", prompt))
    return out


# --------------------------------------------------------------------------- parameter values


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _single_line(value: object, max_len: int) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    try:
        return clean_line(value, "value", max_len=max_len)
    except InvalidInputError as exc:
        raise ValueError(exc.message.replace("value ", "", 1)) from None


def _bounds(param: dict[str, Any]) -> tuple[int, int]:
    low, high = (1, MAX_MINUTES) if param.get("type") == "minutes" else INTEGER_RANGE
    if _is_int(param.get("min")):
        low = max(low, param["min"])
    if _is_int(param.get("max")):
        high = min(high, param["max"])
    return low, high


def _check_piece_ref(ref: object) -> dict[str, Any]:
    if not isinstance(ref, dict):
        raise ValueError("expected a piece object")
    unknown = sorted(set(ref) - {"title", "composer", "scoreId"})
    if unknown:
        raise ValueError(f"unknown piece field '{unknown[0]}'")
    out: dict[str, Any] = {}
    for key in ("scoreId", "title"):
        if key in ref:
            out[key] = _single_line(ref[key], 200)
    if "composer" in ref:
        out["composer"] = None if ref["composer"] is None else _single_line(ref["composer"], 200)
    if not out.get("title") and not out.get("scoreId"):
        raise ValueError("a piece needs a title or a scoreId")
    return out


def parse_value(param: dict[str, Any], value: object) -> Any:
    """Check a JSON value (a default in a file, a stored value) against ``param``; returns it normalised.

    Raises ValueError with a message like ``expected one of: slow, fast``.
    """
    kind = param.get("type")
    if kind == "text":
        return _single_line(value, MAX_TEXT_VALUE)
    if kind == "choice":
        choices = param.get("choices") or []
        if value not in choices:
            raise ValueError("expected one of: " + ", ".join(str(c) for c in choices))
        return value
    if kind == "instrument":
        text = _single_line(value, MAX_INSTRUMENT).lower()
        choices = [str(c).lower() for c in param.get("choices") or []]
        if choices and text not in choices:
            raise ValueError("expected one of: " + ", ".join(choices))
        return text
    if kind == "pieces":
        if not isinstance(value, list) or not value:
            raise ValueError("expected a non-empty array of pieces")
        if len(value) > MAX_PIECES:
            raise ValueError(f"expected at most {MAX_PIECES} pieces")
        return [_check_piece_ref(ref) for ref in value]
    if kind == "date":
        if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
            raise ValueError("expected a date YYYY-MM-DD")
        try:
            date.fromisoformat(value)
        except ValueError:
            raise ValueError("expected a real date YYYY-MM-DD") from None
        return value
    if kind == "time":
        if not isinstance(value, str) or not _HHMM.fullmatch(value):
            raise ValueError("expected a time of day HH:MM (00:00 to 23:59)")
        return value
    if kind == "weekdays":
        if not isinstance(value, list) or not value or not all(v in WEEKDAY_CODES for v in value):
            raise ValueError("expected a non-empty array of weekday codes (MO, TU, WE, TH, FR, SA, SU)")
        if len(set(value)) != len(value):
            raise ValueError("expected each weekday at most once")
        return sorted(value, key=WEEKDAY_CODES.index)
    if kind in ("minutes", "integer"):
        low, high = _bounds(param)
        if not _is_int(value) or not low <= value <= high:
            what = "a whole number of minutes" if kind == "minutes" else "a whole number"
            raise ValueError(f"expected {what} from {low} to {high}")
        return value
    raise ValueError(f"unknown parameter type '{kind}'")


def parse_text_value(param: dict[str, Any], text: str) -> Any:
    """A value typed on the command line (``--param name=TEXT``) -> the parameter's JSON value.

    Dates must already be ISO (the service turns words like ``next monday`` into ISO first).
    Raises ValueError.
    """
    kind = param.get("type")
    raw = text.strip()
    if kind == "choice":
        for choice in param.get("choices") or []:
            if isinstance(choice, str) and choice.lower() == raw.lower():
                return choice
        return parse_value(param, raw)
    if kind == "pieces":
        items = [part for part in raw.split(";") if part.strip()]
        if not items:
            raise ValueError("expected pieces like 'Clair de lune — Debussy; Arabesque 1 — Debussy'")
        try:
            return parse_value(param, [parse_piece(item) for item in items])
        except InvalidInputError as exc:
            raise ValueError(exc.message) from None
    if kind == "time":
        match = _LOOSE_TIME.fullmatch(raw)
        if match:
            raw = f"{int(match[1]):02d}:{match[2]}"
        return parse_value(param, raw)
    if kind == "weekdays":
        try:
            return parse_value(param, parse_weekdays([raw]))
        except InvalidInputError as exc:
            raise ValueError(exc.message) from None
    if kind in ("minutes", "integer"):
        try:
            number = int(raw)
        except ValueError:
            raise ValueError("expected a whole number") from None
        return parse_value(param, number)
    return parse_value(param, raw)


def render_value(param: dict[str, Any], value: Any) -> str:
    """A value as text, for ``{{name}}`` placeholders."""
    kind = param.get("type")
    if kind == "pieces":
        return "; ".join(
            f"{p.get('title') or p.get('scoreId')} — {p['composer']}" if p.get("composer") else str(p.get("title") or p.get("scoreId"))
            for p in value
        )
    if kind == "weekdays":
        return ", ".join(_WEEKDAY_SHORT[code] for code in value)
    return str(value)


# --------------------------------------------------------------------------- substitution


def _substitute(text: str, rendered: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        return rendered.get(name, "")

    result = PLACEHOLDER.sub(replace, text)
    return " ".join(result.split()) if result != text else result


def exact_rule(schedule: dict[str, Any]) -> str | None:
    meta = schedule.get("metadata") if isinstance(schedule.get("metadata"), dict) else {}
    rule = meta.get("rrule") or schedule.get("rule")
    return rule if isinstance(rule, str) and rule.strip() else None


def session_minutes(template: dict[str, Any]) -> int | None:
    """The template's session length: ``schedule.durationMinutes``, else the sum of its segments."""
    minutes = (template.get("schedule") or {}).get("durationMinutes")
    if _is_int(minutes) and minutes > 0:
        return minutes
    segments = (template.get("metadata") or {}).get("segments") or []
    total = sum(s.get("durationMinutes") or 0 for s in segments if isinstance(s, dict) and _is_int(s.get("durationMinutes")))
    return total or None


def apply_parameters(template: dict[str, Any], parameters: list[dict[str, Any]], values: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``template`` with every parameter value substituted at its targets.

    Parameters without a value (optional, no default) leave their value targets alone; their placeholders
    become empty text.
    """
    result = copy.deepcopy(template)
    metadata = result.setdefault("metadata", {})
    schedule = result.setdefault("schedule", {})
    rendered = {p["name"]: render_value(p, values[p["name"]]) for p in parameters if p["name"] in values}
    if isinstance(result.get("title"), str):
        result["title"] = _substitute(result["title"], rendered)
    if isinstance(result.get("description"), str):
        result["description"] = _substitute(result["description"], rendered)
    for segment in metadata.get("segments") or []:
        for key in ("label", "instructions"):
            if isinstance(segment.get(key), str):
                segment[key] = _substitute(segment[key], rendered)
    if isinstance(metadata.get("reflectionPrompts"), list):
        metadata["reflectionPrompts"] = [_substitute(p, rendered) for p in metadata["reflectionPrompts"]]
    base_minutes = session_minutes(template)
    for param in parameters:
        name = param["name"]
        if name not in values:
            continue
        value = values[name]
        for target in param.get("targets") or []:
            pieces = SEGMENT_PIECES.fullmatch(target)
            key = TARGET_KEY.fullmatch(target)
            if target == "instrument":
                metadata["instrument"] = str(value).lower()
            elif target == "pieceRefs":
                result["pieceRefs"] = copy.deepcopy(value)
            elif pieces:
                segments = metadata.get("segments") or []
                index = int(pieces.group(1))
                if index < len(segments):
                    segments[index]["pieceRefs"] = copy.deepcopy(value)
            elif target == "schedule.timeOfDay":
                schedule["timeOfDay"] = value
            elif target == "schedule.durationMinutes":
                schedule["durationMinutes"] = value
            elif target == "schedule.weekdays":
                _set_weekdays(schedule, value)
            elif target == "durations" and base_minutes:
                factor = value / base_minutes if param.get("type") == "minutes" else value / 100
                _scale(result, factor)
            elif key:
                metadata.setdefault("targets", {})[key.group(1)] = value
    return result


def _scale(template: dict[str, Any], factor: float) -> None:
    def scaled(minutes: int) -> int:
        return max(1, min(MAX_MINUTES, round(minutes * factor)))

    schedule = template.get("schedule") or {}
    if _is_int(schedule.get("durationMinutes")):
        schedule["durationMinutes"] = scaled(schedule["durationMinutes"])
    for segment in (template.get("metadata") or {}).get("segments") or []:
        if _is_int(segment.get("durationMinutes")):
            segment["durationMinutes"] = scaled(segment["durationMinutes"])


def _set_weekdays(schedule: dict[str, Any], days: list[str]) -> None:
    rule = exact_rule(schedule)
    if rule is None:
        return
    parts = dict(rec.parse_rule(rule))
    parts["BYDAY"] = ",".join(days)
    if parts["FREQ"] == "DAILY":
        parts["FREQ"] = "WEEKLY"
    exact = rec.canonical_rule(parts)
    meta = schedule.setdefault("metadata", {})
    meta["rrule"] = exact
    schedule["rule"] = rec.wire_rule(rec.parse_rule(exact))[0]


# --------------------------------------------------------------------------- plan -> template


def _strip_segment(segment: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(segment[k]) for k in SEGMENT_FIELDS if k in segment and segment[k] is not None}


def build_preview(template: dict[str, Any]) -> dict[str, Any]:
    """The web client's ``metadata.preview`` (planning-semantics.md §6.1), so Mirubato can show the template."""
    metadata = template.get("metadata") or {}
    segments = [_strip_segment(s) for s in metadata.get("segments") or [] if isinstance(s, dict)]
    preview: dict[str, Any] = {}
    if segments:
        preview["segments"] = segments
    pieces: list[dict[str, Any]] = []
    seen: set[str] = set()
    refs = list(template.get("pieceRefs") or []) + [r for s in segments for r in s.get("pieceRefs") or []]
    for ref in refs:
        if not isinstance(ref, dict):
            continue
        key = ref.get("scoreId") or f"{str(ref.get('title', '')).lower()}|{str(ref.get('composer') or '').lower()}"
        if key in seen:
            continue
        seen.add(key)
        piece: dict[str, Any] = {"title": ref.get("title") or ref.get("scoreId") or ""}
        if isinstance(ref.get("composer"), str):
            piece["composer"] = ref["composer"]
        if isinstance(ref.get("scoreId"), str):
            piece["scoreId"] = ref["scoreId"]
        pieces.append(piece)
    if pieces:
        preview["pieces"] = pieces
    workload: dict[str, int] = {}
    total = sum(s.get("durationMinutes") or 0 for s in segments if _is_int(s.get("durationMinutes")))
    minutes = (template.get("schedule") or {}).get("durationMinutes")
    if _is_int(minutes) and minutes > 0:
        workload["sessionMinutes"] = minutes
    elif total:
        workload["sessionMinutes"] = total
    if segments:
        workload["segmentsCount"] = len(segments)
    if total:
        workload["totalSegmentMinutes"] = total
    if workload:
        preview["workload"] = workload
    if template.get("focusAreas"):
        preview["focusAreas"] = list(template["focusAreas"])
    techniques = list(template.get("techniques") or [])
    for segment in segments:
        for technique in segment.get("techniques") or []:
            if technique not in techniques:
                techniques.append(technique)
    if techniques:
        preview["techniques"] = techniques
    return preview


def plan_to_template(
    plan: dict[str, Any],
    *,
    template_id: str,
    now: datetime,
    base: dict[str, Any] | None = None,
    title: str | None = None,
    description: str | None = None,
    kind: str | None = None,
    visibility: str | None = None,
    tags: list[str] | None = None,
    level: str | None = None,
) -> dict[str, Any]:
    """A template entity from a plan-shaped dict, copying only the whitelisted fields.

    Never copied: occurrences and check-ins (not in the plan), logbook data, ``sourceTemplateId``,
    ``adoptedFrom``/``adoptedAt``, exception dates, and every plan ``metadata`` key outside
    :data:`PLAN_METADATA_WHITELIST`. ``base`` is the template being edited: its identity, version stamps
    and extra metadata are kept.
    """
    stamp = iso_z(now)
    old = copy.deepcopy(base) if base else {}
    source_schedule = plan.get("schedule") or {}
    schedule = {k: copy.deepcopy(source_schedule[k]) for k in SCHEDULE_WHITELIST if k in source_schedule}
    source_meta = source_schedule.get("metadata") or {}
    schedule["metadata"] = {k: copy.deepcopy(source_meta[k]) for k in SCHEDULE_METADATA_WHITELIST if k in source_meta}
    if schedule.get("kind") != "recurring":
        schedule.pop("rule", None)
        schedule["metadata"].pop("rrule", None)
        schedule["metadata"].pop("recurrence", None)
    if schedule.get("endDate") is None:
        schedule.pop("endDate", None)
    plan_meta = plan.get("metadata") or {}
    metadata: dict[str, Any] = {}
    for key, value in (old.get("metadata") or {}).items():
        if key not in PLAN_METADATA_WHITELIST and key not in LOCAL_METADATA and key != "preview":
            metadata[key] = value  # the template's own extra keys (kept when editing)
    for key in PLAN_METADATA_WHITELIST:
        if key in plan_meta and plan_meta[key] not in (None, [], {}, ""):
            metadata[key] = copy.deepcopy(plan_meta[key])
    if "segments" in metadata:
        metadata["segments"] = [_strip_segment(s) for s in metadata["segments"] if isinstance(s, dict)]
    if level is not None:
        if level.strip():
            metadata["level"] = clean_line(level, "level", max_len=40).lower()
        else:
            metadata.pop("level", None)
    template: dict[str, Any] = {
        "id": old.get("id", template_id),
        "authorId": old.get("authorId", ""),
        "title": clean_line(title, "title") if title is not None else plan.get("title") or "",
        "description": (
            (clean_line(description, "description", max_len=2000, allow_empty=True) or None)
            if description is not None
            else plan.get("description")
        ),
        "type": kind or plan.get("type") or old.get("type") or "custom",
        "focusAreas": list(plan.get("focusAreas") or []),
        "techniques": list(plan.get("techniques") or []),
        "pieceRefs": copy.deepcopy(plan.get("pieceRefs") or []),
        "schedule": schedule,
        "tags": [clean_line(t, "tag", max_len=100) for t in tags] if tags is not None else list(old.get("tags") or plan.get("tags") or []),
        "templateVersion": old.get("templateVersion", 1),
        "visibility": visibility or old.get("visibility") or "private",
        "metadata": metadata,
        "createdAt": old.get("createdAt", stamp),
        "updatedAt": stamp,
    }
    if old.get("publishedAt"):
        template["publishedAt"] = old["publishedAt"]
    template["metadata"]["preview"] = build_preview(template)
    return template


def template_as_plan(template: dict[str, Any]) -> dict[str, Any]:
    """A plan-shaped copy of a template, so plan editing (apply_input) can change it."""
    plan = {
        key: copy.deepcopy(template[key])
        for key in ("id", "title", "description", "type", "focusAreas", "techniques", "pieceRefs", "schedule", "tags")
        if key in template
    }
    plan["metadata"] = {k: copy.deepcopy(v) for k, v in (template.get("metadata") or {}).items() if k in PLAN_METADATA_WHITELIST}
    plan.setdefault("schedule", {})
    return plan


# --------------------------------------------------------------------------- template -> plan (adoption)


def today_in(zone: str, now: datetime) -> date:
    return now.astimezone(rec.get_zone(zone)).date()


def adoption_start(parameters: list[dict[str, Any]], values: dict[str, Any], start: date | None, zone: str, now: datetime) -> date:
    """--start, else a date parameter targeting schedule.startDate, else today in the learner's zone."""
    if start is not None:
        return start
    for param in parameters:
        if "schedule.startDate" in (param.get("targets") or []) and param["name"] in values:
            return date.fromisoformat(values[param["name"]])
    return today_in(zone, now)


def build_adopted_plan(
    template: dict[str, Any],
    parameters: list[dict[str, Any]],
    values: dict[str, Any],
    *,
    start: date | None,
    title: str | None,
    zone: str,
    now: datetime,
    adopted_at: str | None = None,
) -> dict[str, Any]:
    """The learner's new plan: parameters substituted, built by ``apply_input`` in ``zone`` (the learner's).

    The template's own ``schedule.metadata.timezone`` is the tutor's and is ignored: an 18:00 session is
    at 18:00 where the learner lives. The plan records ``sourceTemplateId``, ``templateVersion`` and, in
    ``metadata``, ``adoptedFrom``/``adoptedAt`` plus ``adoption`` (the values and start it was built from,
    which ``template upgrade`` needs to replay the adoption).
    """
    resolved = apply_parameters(template, parameters, values)
    schedule = resolved.get("schedule") or {}
    meta = resolved.get("metadata") or {}
    first = adoption_start(parameters, values, start, zone, now)
    tz = rec.get_zone(zone)
    at = None
    if isinstance(schedule.get("timeOfDay"), str):
        at = time.fromisoformat(schedule["timeOfDay"])
    inp = PlanInput(
        title=title if title is not None else resolved.get("title"),
        description=resolved.get("description") or None,
        minutes=schedule.get("durationMinutes") if _is_int(schedule.get("durationMinutes")) else None,
        flex=plan_flex(resolved) if (schedule.get("flexibility") or (schedule.get("metadata") or {}).get("flex")) else None,
        instrument=meta.get("instrument"),
        focus=list(resolved.get("focusAreas") or []) or None,
        techniques=list(resolved.get("techniques") or []) or None,
        pieces=copy.deepcopy(resolved.get("pieceRefs") or []) or None,
        segments=[_strip_segment(s) for s in meta.get("segments") or []] or None,
        prompts=list(meta.get("reflectionPrompts") or []) or None,
        targets=dict(meta.get("targets") or {}) or None,
    )
    if schedule.get("kind") == "recurring":
        inp.rrule = exact_rule(schedule)
        inp.start = first
        inp.at = at
        template_start = parse_local_date(schedule.get("startDate"))
        template_end = parse_local_date(schedule.get("endDate"))
        if template_start and template_end and template_end >= template_start:
            inp.end = first + (template_end - template_start)
    else:
        inp.once = localize(datetime.combine(first, at or time()), tz)
    adoption: dict[str, Any] = {
        "templateVersion": template.get("templateVersion", 1),
        "parameters": copy.deepcopy(values),
        "start": first.isoformat(),
    }
    if title is not None:
        adoption["title"] = title
    inp.extra_metadata = {
        "adoptedFrom": template["id"],
        "adoptedAt": adopted_at or iso_z(now),
        "adoption": adoption,
    }
    if isinstance(meta.get("level"), str):
        inp.extra_metadata["level"] = meta["level"]
    plan = apply_input(None, inp, now=now, default_zone=zone)
    plan["type"] = resolved.get("type") or "custom"
    plan["tags"] = list(resolved.get("tags") or [])
    plan["sourceTemplateId"] = template["id"]
    plan["templateVersion"] = template.get("templateVersion", 1)
    return plan


# --------------------------------------------------------------------------- versions


def public_entity(entity: dict[str, Any]) -> dict[str, Any]:
    """The entity as it goes into a file: local bookkeeping (parameters, provenance) removed."""
    result = copy.deepcopy(entity)
    metadata = result.get("metadata")
    if isinstance(metadata, dict):
        for key in LOCAL_METADATA:
            metadata.pop(key, None)
    result.pop("deletedAt", None)
    return result


def entity_parameters(entity: dict[str, Any]) -> list[dict[str, Any]]:
    params = (entity.get("metadata") or {}).get("parameters")
    return copy.deepcopy(params) if isinstance(params, list) else []


def content_key(template: dict[str, Any], parameters: list[dict[str, Any]]) -> str:
    """Canonical text of what a version *says*, ignoring version stamps and local bookkeeping."""
    entity = public_entity(template)
    for key in ("templateVersion", "publishedAt", "updatedAt", "createdAt", "adoptionCount", "authorId"):
        entity.pop(key, None)
    return json.dumps([entity, parameters], sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def template_status(entity: dict[str, Any]) -> str:
    """``imported`` (from a file), ``published`` (yours, has a published version) or ``draft``."""
    provenance = (entity.get("metadata") or {}).get("provenance")
    if isinstance(provenance, dict) and provenance.get("kind") == "import":
        return "imported"
    return "published" if entity.get("publishedAt") else "draft"


def week_dates(start: date, weeks: int, week_start: int) -> tuple[date, date]:
    """The first day of the week containing ``start`` and the day after ``weeks`` whole weeks."""
    first = start - timedelta(days=(start.weekday() - week_start) % 7)
    return first, first + timedelta(days=7 * weeks)
