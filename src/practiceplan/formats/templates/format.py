"""The template file format: decode, validate, encode.

A template file is one JSON document (``docs/template-format.md``, schema ``docs/template.schema.json``)::

    {"format": "practiceplan.template", "formatVersion": 1,
     "template": {<plan_template entity in wire format>},
     "parameters": [{"name": ..., "type": ..., "targets": [...], ...}],
     "signature": {"algorithm": "ed25519", "publicKey": "<hex>", "value": "<hex>"}}      # optional

:func:`parse_and_validate` is pure (bytes in, :class:`TemplateFile` out) and checks *everything* before a
caller writes anything: encoding, JSON syntax, duplicate keys, NaN/Infinity, number sizes, nesting depth,
value counts, string lengths, control and bidi characters (every string in a template is a single line),
lone surrogates, the entity's wire fields (only values a Mirubato server accepts), the schedule (the
exact RRULE through :mod:`practiceplan.domain.recurrence`, so RRULE bombs are refused), segments,
prompts, targets, parameters and their placeholders. The first problem raises
:class:`TemplateFormatError` (exit 65) whose one-line message names the JSON path, e.g.
``template.metadata.segments[2].durationMinutes: expected a whole number of minutes from 1 to 1440``.

:func:`read_limited` is the only function here that does I/O: it refuses a file over the size limit
before reading it.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from practiceplan.domain import recurrence as rec
from practiceplan.domain import templates as dt
from practiceplan.domain.models import FLEX_KINDS, WIRE_FLEXIBILITY
from practiceplan.errors import InvalidInputError, NotFoundError

FORMAT = "practiceplan.template"
FORMAT_VERSION = 1
MAX_FILE_BYTES = 1 << 20  # 1 MiB
MAX_DEPTH = 16
MAX_VALUES = 20_000
MAX_STRING = 2_000
MAX_KEY = 100
MAX_ARRAY = 1_000
MAX_OBJECT_KEYS = 200
MAX_SAFE_INT = 2**53 - 1
MAX_INT_DIGITS = 16
MAX_FLOAT_CHARS = 32

DEFAULT_MAX_PROMPTS = 5
HARD_MAX_PROMPTS = 10  # what a plan holds (domain.plans.MAX_PROMPTS)
MAX_SEGMENTS = 10
MAX_PARAMETERS = 20
MAX_LIST = 50
MAX_TITLE = 200
MAX_DESCRIPTION = 2_000
MAX_LABEL = 200
MAX_INSTRUCTIONS = 2_000
MAX_PROMPT = 300
MAX_SHORT = 100
MAX_ID = 100
MAX_MINUTES = 1_440
MAX_TARGETS = 50

ROOT_FIELDS = ("format", "formatVersion", "template", "parameters", "signature")
ENTITY_FIELDS = (
    "id", "authorId", "sourcePlanId", "title", "description", "type", "focusAreas", "techniques",
    "pieceRefs", "schedule", "tags", "templateVersion", "visibility", "adoptionCount", "metadata",
    "publishedAt", "createdAt", "updatedAt", "deletedAt",
)
ENTITY_REQUIRED = ("id", "title", "schedule", "templateVersion")
SCHEDULE_FIELDS = ("kind", "rule", "durationMinutes", "timeOfDay", "flexibility", "startDate", "endDate", "target", "metadata")
SEGMENT_FIELDS = ("id", "label", "durationMinutes", "pieceRefs", "techniques", "instructions", "tempoTargets", "metadata")
PARAMETER_FIELDS = ("name", "type", "targets", "label", "description", "required", "default", "choices", "min", "max")
SIGNATURE_FIELDS = ("algorithm", "publicKey", "value")
TEMPLATE_TYPES = ("bootcamp", "course", "custom")
TEMPLATE_VISIBILITIES = ("public", "private")
SCHEDULE_KINDS = ("single", "recurring")
FLEXIBILITIES = WIRE_FLEXIBILITY  # the wire enum; `weekly` rides in metadata (FLEX_KINDS)

RESERVED_METADATA = {
    "parameters": 'reserved: declare parameters in the top-level "parameters" list',
    "provenance": "reserved for practiceplan's own bookkeeping",
}

_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")
_ISO_Z = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")
_TARGET_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Single-line text: no C0/C1 controls (tab and newline included), DEL, bidi embeddings/overrides/isolates
# and marks, zero-width space, BOM, line/paragraph separators.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_BOM = b"\xef\xbb\xbf"


class TemplateFormatError(InvalidInputError):
    """An invalid template file. ``path`` is the JSON path of the first problem (exit 65)."""

    def __init__(self, path: str, problem: str, source: str = "") -> None:
        self.path = path
        self.problem = problem
        prefix = f"{source}: " if source else ""
        super().__init__(f"{prefix}{path}: {problem}")


class _Fail(Exception):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(path, problem)
        self.path = path or "document"
        self.problem = problem


@dataclass(frozen=True)
class Limits:
    """Limits that a learner may raise (``--max-prompts``) for a tutor they trust."""

    max_prompts: int = DEFAULT_MAX_PROMPTS
    max_bytes: int = MAX_FILE_BYTES

    def __post_init__(self) -> None:
        if not 1 <= self.max_prompts <= HARD_MAX_PROMPTS:
            raise InvalidInputError(f"--max-prompts must be between 1 and {HARD_MAX_PROMPTS}")


@dataclass(frozen=True)
class TemplateFile:
    """A validated template document."""

    doc: dict[str, Any]

    @property
    def template(self) -> dict[str, Any]:
        return self.doc["template"]

    @property
    def parameters(self) -> list[dict[str, Any]]:
        return self.doc.get("parameters") or []

    @property
    def signature(self) -> dict[str, Any] | None:
        return self.doc.get("signature")

    @property
    def template_id(self) -> str:
        return self.template["id"]

    @property
    def version(self) -> int:
        return self.template["templateVersion"]

    def content(self) -> dict[str, Any]:
        """What a signature covers: the document without its ``signature``."""
        return {k: v for k, v in self.doc.items() if k != "signature"}


# --------------------------------------------------------------------------- encoding


def canonical_bytes(document: Any) -> bytes:
    """Canonical JSON: keys sorted by code point, no whitespace, UTF-8, no NaN. Signatures cover this."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def encode(document: Mapping[str, Any]) -> bytes:
    """How practiceplan writes a template file: sorted keys, two-space indent, UTF-8, final newline.

    Deterministic, so export -> import -> export is byte-identical.
    """
    return (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def signed_content(document: Mapping[str, Any]) -> bytes:
    """The bytes an Ed25519 signature covers: canonical JSON of the document minus ``signature``."""
    return canonical_bytes({k: v for k, v in document.items() if k != "signature"})


# --------------------------------------------------------------------------- reading


def read_limited(path: str | Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``path`` (``-`` = stdin); a file over ``limit`` is refused before it is read."""
    name = str(path)
    too_big = f"larger than the {limit // 1024} KiB limit" if limit % (1 << 20) else f"larger than the {limit >> 20} MiB limit"
    if name == "-":
        data = sys.stdin.buffer.read(limit + 1)
    else:
        try:
            info = os.stat(name)
        except FileNotFoundError:
            raise NotFoundError(f"no such file: {name}") from None
        except OSError as exc:
            raise InvalidInputError(f"cannot read {name}: {exc.strerror}") from None
        if stat.S_ISDIR(info.st_mode):
            raise InvalidInputError(f"{name} is a folder, not a template file")
        if stat.S_ISREG(info.st_mode) and info.st_size > limit:
            raise TemplateFormatError("file", f"{info.st_size} bytes is {too_big}", name)
        try:
            with open(name, "rb") as handle:
                data = handle.read(limit + 1)
        except OSError as exc:
            raise InvalidInputError(f"cannot read {name}: {exc.strerror}") from None
    if len(data) > limit:
        raise TemplateFormatError("file", too_big, name)
    return data


# --------------------------------------------------------------------------- decoding


class _Duplicate(dict):  # type: ignore[type-arg]
    """A JSON object that had a key twice (reported with its path by the walk)."""

    duplicate = ""


class _Rejected:
    """A JSON value refused while decoding (NaN, Infinity, oversized numbers)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    duplicate = None
    for key, value in pairs:
        if key in result and duplicate is None:
            duplicate = key
        result[key] = value
    if duplicate is not None:
        marked = _Duplicate(result)
        marked.duplicate = duplicate
        return marked
    return result


def _parse_int(text: str) -> Any:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        return _Rejected(f"integer with {len(text.lstrip('-'))} digits is too large")
    value = int(text)
    return value if abs(value) <= MAX_SAFE_INT else _Rejected("integer is outside ±(2^53-1)")


def _parse_float(text: str) -> Any:
    if len(text) > MAX_FLOAT_CHARS:
        return _Rejected("number has too many digits")
    value = float(text)
    return value if math.isfinite(value) else _Rejected("number is out of range")


def _parse_constant(name: str) -> Any:
    return _Rejected(f"{name} is not allowed in JSON")


_DECODER = json.JSONDecoder(
    object_pairs_hook=_pairs, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant
)


def decode(data: bytes) -> Any:
    """Bytes -> JSON value, with refusals kept as markers for the walk. Raises _Fail."""
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Fail("file", f"not UTF-8 text (invalid byte at offset {exc.start})") from None
    if not text.strip():
        raise _Fail("file", "empty")
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise _Fail("file", f"nested more than {MAX_DEPTH} levels deep") from None
    except json.JSONDecodeError as exc:
        raise _Fail("file", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:
        raise _Fail("file", f"not valid JSON: {str(exc)[:100]}") from None


def _key_path(path: str, key: str) -> str:
    if _IDENT.fullmatch(key):
        return f"{path}.{key}" if path else key
    quoted = json.dumps(key, ensure_ascii=True)
    return f"{path}[{quoted}]"


def _check_text(value: str, path: str, what: str = "text") -> None:
    if _SURROGATE.search(value):
        raise _Fail(path, f"{what} contains a lone surrogate (not valid Unicode)")
    match = _UNSAFE.search(value)
    if match:
        raise _Fail(path, f"{what} contains a control or bidirectional-override character (U+{ord(match.group()):04X})")


def walk(root: Any) -> None:
    """Generic checks on every value, in document order: refused values, duplicate keys, depth, counts,
    key and string sizes, control/bidi characters, lone surrogates."""
    stack: list[tuple[Any, str, int]] = [(root, "", 0)]
    count = 0
    while stack:
        value, path, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise _Fail(path, f"the document holds more than {MAX_VALUES} values")
        if depth > MAX_DEPTH:
            raise _Fail(path, f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, _Rejected):
            raise _Fail(path, value.reason)
        if isinstance(value, dict):
            if isinstance(value, _Duplicate):
                raise _Fail(_key_path(path, value.duplicate), "duplicate key")
            if len(value) > MAX_OBJECT_KEYS:
                raise _Fail(path, f"more than {MAX_OBJECT_KEYS} keys")
            children = []
            for key, child in value.items():
                child_path = _key_path(path, key)
                if len(key) > MAX_KEY:
                    raise _Fail(path, f"a key is longer than {MAX_KEY} characters")
                _check_text(key, child_path, "key")
                children.append((child, child_path, depth + 1))
            stack.extend(reversed(children))
        elif isinstance(value, list):
            if len(value) > MAX_ARRAY:
                raise _Fail(path, f"more than {MAX_ARRAY} items")
            stack.extend(reversed([(child, f"{path}[{i}]", depth + 1) for i, child in enumerate(value)]))
        elif isinstance(value, str):
            if len(value) > MAX_STRING:
                raise _Fail(path, f"text longer than {MAX_STRING} characters")
            _check_text(value, path)


# --------------------------------------------------------------------------- field checks


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _object(value: object, path: str, fields: tuple[str, ...] | None = None, required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Fail(path, "expected an object")
    if fields is not None:
        for key in value:
            if key not in fields:
                raise _Fail(_key_path(path, key), "unknown field")
    for key in required:
        if key not in value:
            raise _Fail(_key_path(path, key), "required field is missing")
    return value


def _string(value: object, path: str, max_len: int, *, allow_empty: bool = False, nullable: bool = False) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise _Fail(path, "expected a string or null" if nullable else "expected a string")
    if not allow_empty and not value.strip():
        raise _Fail(path, "must not be empty")
    if value != value.strip():
        raise _Fail(path, "has leading or trailing spaces")
    if len(value) > max_len:
        raise _Fail(path, f"longer than {max_len} characters")
    return value


def _integer(value: object, path: str, low: int, high: int, what: str = "a whole number") -> int:
    if not _is_int(value) or not low <= value <= high:  # type: ignore[operator]
        raise _Fail(path, f"expected {what} from {low} to {high}")
    return value  # type: ignore[return-value]


def _enum(value: object, path: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _Fail(path, "expected one of " + ", ".join(f'"{c}"' for c in choices))
    return value  # type: ignore[return-value]


def _string_list(value: object, path: str, max_items: int = MAX_LIST, max_len: int = MAX_SHORT) -> list[str]:
    if not isinstance(value, list):
        raise _Fail(path, "expected an array of strings")
    if len(value) > max_items:
        raise _Fail(path, f"at most {max_items} items")
    for index, item in enumerate(value):
        _string(item, f"{path}[{index}]", max_len)
    return value


def _instant(value: object, path: str) -> str:
    if not isinstance(value, str) or not _ISO_Z.fullmatch(value):
        raise _Fail(path, "expected a UTC instant like 2026-03-02T09:00:00.000Z")
    try:
        datetime.fromisoformat(value[:-1])
    except ValueError:
        raise _Fail(path, "not a real date and time") from None
    return value


def _date(value: object, path: str) -> date:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise _Fail(path, "expected a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _Fail(path, "not a real date") from None


def _piece_refs(value: object, path: str) -> None:
    if not isinstance(value, list):
        raise _Fail(path, "expected an array of pieces")
    if len(value) > MAX_LIST:
        raise _Fail(path, f"at most {MAX_LIST} pieces")
    for index, ref in enumerate(value):
        item = f"{path}[{index}]"
        _object(ref, item, ("scoreId", "title", "composer"))
        for key in ("scoreId", "title"):
            if key in ref:
                _string(ref[key], f"{item}.{key}", MAX_TITLE)
        if "composer" in ref:
            _string(ref["composer"], f"{item}.composer", MAX_TITLE, nullable=True)
        if not ref.get("title") and not ref.get("scoreId"):
            raise _Fail(item, "a piece needs a title or a scoreId")


def _plain_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _segments(value: object, path: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _Fail(path, "expected an array of segments")
    if len(value) > MAX_SEGMENTS:
        raise _Fail(path, f"at most {MAX_SEGMENTS} segments per session")
    for index, segment in enumerate(value):
        item = f"{path}[{index}]"
        _object(segment, item, SEGMENT_FIELDS, ("label",))
        if "id" in segment:
            _string(segment["id"], f"{item}.id", MAX_ID)
        _string(segment["label"], f"{item}.label", MAX_LABEL)
        if "durationMinutes" in segment:
            _integer(segment["durationMinutes"], f"{item}.durationMinutes", 1, MAX_MINUTES, "a whole number of minutes")
        if "pieceRefs" in segment:
            _piece_refs(segment["pieceRefs"], f"{item}.pieceRefs")
        if "techniques" in segment:
            _string_list(segment["techniques"], f"{item}.techniques")
        if "instructions" in segment:
            _string(segment["instructions"], f"{item}.instructions", MAX_INSTRUCTIONS, allow_empty=True)
        if "tempoTargets" in segment:
            tempo = _object(segment["tempoTargets"], f"{item}.tempoTargets")
            for key, number in tempo.items():
                if not (number is None or isinstance(number, str) or _plain_number(number)):
                    raise _Fail(_key_path(f"{item}.tempoTargets", key), "expected a number, a string or null")
        if "metadata" in segment:
            _object(segment["metadata"], f"{item}.metadata")
    return value


def _targets(value: object, path: str) -> None:
    targets = _object(value, path)
    if len(targets) > MAX_TARGETS:
        raise _Fail(path, f"at most {MAX_TARGETS} targets")
    for key, target in targets.items():
        item = _key_path(path, key)
        if not _TARGET_KEY.fullmatch(key):
            raise _Fail(item, "target names start with a letter and use letters, digits, _ . -")
        if target is None or _plain_number(target):
            continue
        if isinstance(target, str):
            _string(target, item, MAX_LABEL, allow_empty=True)
        elif isinstance(target, list) and len(target) <= MAX_LIST and all(_plain_number(x) for x in target):
            continue
        else:
            raise _Fail(item, "expected a number, a string, null or an array of numbers")


def _metadata(value: object, path: str, limits: Limits) -> None:
    metadata = _object(value, path)
    for key, message in RESERVED_METADATA.items():
        if key in metadata:
            raise _Fail(f"{path}.{key}", message)
    if "segments" in metadata:
        _segments(metadata["segments"], f"{path}.segments")
    if "reflectionPrompts" in metadata:
        prompts = metadata["reflectionPrompts"]
        if not isinstance(prompts, list):
            raise _Fail(f"{path}.reflectionPrompts", "expected an array of strings")
        if len(prompts) > limits.max_prompts:
            raise _Fail(
                f"{path}.reflectionPrompts",
                f"{len(prompts)} prompts is more than the limit of {limits.max_prompts} (raise it with --max-prompts)",
            )
        _string_list(prompts, f"{path}.reflectionPrompts", limits.max_prompts, MAX_PROMPT)
    if "targets" in metadata:
        _targets(metadata["targets"], f"{path}.targets")
    if "instrument" in metadata:
        _string(metadata["instrument"], f"{path}.instrument", 60)
    if "level" in metadata:
        _string(metadata["level"], f"{path}.level", 40)
    if "preview" in metadata:
        _object(metadata["preview"], f"{path}.preview")


def _schedule(value: object, path: str) -> None:
    schedule = _object(value, path, SCHEDULE_FIELDS, ("kind",))
    kind = _enum(schedule["kind"], f"{path}.kind", SCHEDULE_KINDS)
    meta = _object(schedule.get("metadata", {}), f"{path}.metadata")
    if "durationMinutes" in schedule:
        _integer(schedule["durationMinutes"], f"{path}.durationMinutes", 1, MAX_MINUTES, "a whole number of minutes")
    at = None
    if "timeOfDay" in schedule:
        if not isinstance(schedule["timeOfDay"], str) or not _HHMM.fullmatch(schedule["timeOfDay"]):
            raise _Fail(f"{path}.timeOfDay", "expected a time of day HH:MM (00:00 to 23:59)")
        at = datetime.strptime(schedule["timeOfDay"], "%H:%M").time()
    if "flexibility" in schedule:
        _enum(schedule["flexibility"], f"{path}.flexibility", FLEXIBILITIES)
    if "flex" in meta:
        _enum(meta["flex"], f"{path}.metadata.flex", FLEX_KINDS)
    flex = meta.get("flex") or schedule.get("flexibility")
    if flex == "fixed" and at is None:
        raise _Fail(f"{path}.flexibility", "fixed sessions need schedule.timeOfDay")
    start = _date(schedule["startDate"], f"{path}.startDate") if "startDate" in schedule else None
    end = None
    if schedule.get("endDate") is not None:
        end = _date(schedule["endDate"], f"{path}.endDate")
        if start and end < start:
            raise _Fail(f"{path}.endDate", f"{end} is before startDate {start}")
    if "target" in schedule:
        _instant(schedule["target"], f"{path}.target")
    zone = "UTC"
    if "timezone" in meta:
        try:
            zone = rec.get_zone(_string(meta["timezone"], f"{path}.metadata.timezone", 64) or "").key
        except rec.RecurrenceError as exc:
            raise _Fail(f"{path}.metadata.timezone", str(exc)) from None
    if "segmentsCount" in meta:
        _integer(meta["segmentsCount"], f"{path}.metadata.segmentsCount", 0, MAX_SEGMENTS)
    if "exdates" in meta:
        exdates = meta["exdates"]
        if not isinstance(exdates, list) or len(exdates) > 366:
            raise _Fail(f"{path}.metadata.exdates", "expected an array of at most 366 dates")
        for index, day in enumerate(exdates):
            _date(day, f"{path}.metadata.exdates[{index}]")
    if "recurrence" in meta:
        recurrence = _object(meta["recurrence"], f"{path}.metadata.recurrence")
        if str(recurrence.get("frequency", "")).upper() not in ("DAILY", "WEEKLY", "MONTHLY"):
            raise _Fail(f"{path}.metadata.recurrence.frequency", 'expected "DAILY", "WEEKLY" or "MONTHLY"')
    rule = None
    exact_path = path
    if kind == "recurring":
        if "rule" not in schedule:
            raise _Fail(f"{path}.rule", "a recurring schedule needs a rule")
        wire = schedule["rule"]
        if not isinstance(wire, str):
            raise _Fail(f"{path}.rule", "expected a string")
        exact_path = f"{path}.metadata.rrule" if "rrule" in meta else f"{path}.rule"
        exact = meta.get("rrule", wire)
        if not isinstance(exact, str):
            raise _Fail(exact_path, "expected a string")
        try:
            parts = rec.parse_rule(exact)
            expected, _needed = rec.wire_rule(parts)
        except rec.RecurrenceError as exc:
            raise _Fail(exact_path, str(exc)) from None
        if wire != expected:
            raise _Fail(f"{path}.rule", f"expected '{expected}' (the form a Mirubato server accepts for this rule)")
        rule = rec.canonical_rule(parts)
    else:
        for key, where in (("rule", path), ("rrule", f"{path}.metadata"), ("recurrence", f"{path}.metadata")):
            if key in (schedule if where == path else meta):
                raise _Fail(f"{where}.{key}", "only recurring schedules have a rule")
    recurrence = rec.Recurrence(rule=rule, start=start or date(2001, 1, 1), time=at, zone=zone, end=end)
    try:
        rec.validate(recurrence)
        never = rule is not None and not rec.first_slots(recurrence, 1)
    except rec.RecurrenceError as exc:
        raise _Fail(exact_path, str(exc)) from None
    if never:
        raise _Fail(exact_path, "the rule never produces a session")


def _entity(value: object, path: str, limits: Limits) -> dict[str, Any]:
    entity = _object(value, path, ENTITY_FIELDS, ENTITY_REQUIRED)
    if not isinstance(entity["id"], str) or not _ID.fullmatch(entity["id"]):
        raise _Fail(f"{path}.id", f"expected 1 to {MAX_ID} characters from A-Z a-z 0-9 _ -")
    if "authorId" in entity:
        _string(entity["authorId"], f"{path}.authorId", MAX_ID, allow_empty=True)
    if "sourcePlanId" in entity:
        _string(entity["sourcePlanId"], f"{path}.sourcePlanId", MAX_ID)
    _string(entity["title"], f"{path}.title", MAX_TITLE)
    if "description" in entity:
        _string(entity["description"], f"{path}.description", MAX_DESCRIPTION, allow_empty=True, nullable=True)
    if "type" in entity:
        _enum(entity["type"], f"{path}.type", TEMPLATE_TYPES)
    for key in ("focusAreas", "techniques", "tags"):
        if key in entity:
            _string_list(entity[key], f"{path}.{key}")
    if "pieceRefs" in entity:
        _piece_refs(entity["pieceRefs"], f"{path}.pieceRefs")
    _integer(entity["templateVersion"], f"{path}.templateVersion", 1, 1_000_000)
    if "visibility" in entity:
        _enum(entity["visibility"], f"{path}.visibility", TEMPLATE_VISIBILITIES)
    if "adoptionCount" in entity:
        _integer(entity["adoptionCount"], f"{path}.adoptionCount", 0, MAX_SAFE_INT)
    for key in ("publishedAt", "createdAt", "updatedAt"):
        if key in entity:
            _instant(entity[key], f"{path}.{key}")
    if entity.get("deletedAt") is not None:
        raise _Fail(f"{path}.deletedAt", "a deleted template cannot be used")
    if "metadata" in entity:
        _metadata(entity["metadata"], f"{path}.metadata", limits)
    _schedule(entity["schedule"], f"{path}.schedule")
    return entity


def _parameters(value: object, template: dict[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _Fail("parameters", "expected an array of parameters")
    if len(value) > MAX_PARAMETERS:
        raise _Fail("parameters", f"at most {MAX_PARAMETERS} parameters")
    names: set[str] = set()
    segments = (template.get("metadata") or {}).get("segments") or []
    schedule = template.get("schedule") or {}
    for index, param in enumerate(value):
        path = f"parameters[{index}]"
        _object(param, path, PARAMETER_FIELDS, ("name", "type", "targets"))
        name = param["name"]
        if not isinstance(name, str) or not dt.PARAM_NAME.fullmatch(name):
            raise _Fail(f"{path}.name", "expected a-z, 0-9 and _, starting with a letter, at most 32 characters")
        if name in names:
            raise _Fail(f"{path}.name", f"parameter '{name}' is declared twice")
        names.add(name)
        kind = _enum(param["type"], f"{path}.type", dt.PARAM_TYPES)
        if "label" in param:
            _string(param["label"], f"{path}.label", MAX_SHORT)
        if "description" in param:
            _string(param["description"], f"{path}.description", 500)
        if "required" in param and not isinstance(param["required"], bool):
            raise _Fail(f"{path}.required", "expected true or false")
        if "choices" in param:
            if kind not in ("choice", "instrument"):
                raise _Fail(f"{path}.choices", "only choice and instrument parameters have choices")
            choices = _string_list(param["choices"], f"{path}.choices")
            if not choices:
                raise _Fail(f"{path}.choices", "expected at least one choice")
            if len(set(choices)) != len(choices):
                raise _Fail(f"{path}.choices", "each choice at most once")
        elif kind == "choice":
            raise _Fail(f"{path}.choices", "a choice parameter needs choices")
        for bound in ("min", "max"):
            if bound in param:
                if kind not in ("minutes", "integer"):
                    raise _Fail(f"{path}.{bound}", "only minutes and integer parameters have bounds")
                low, high = (1, MAX_MINUTES) if kind == "minutes" else dt.INTEGER_RANGE
                _integer(param[bound], f"{path}.{bound}", low, high)
        if "min" in param and "max" in param and param["min"] > param["max"]:
            raise _Fail(f"{path}.max", "is less than min")
        if "default" in param:
            try:
                dt.parse_value(param, param["default"])
            except ValueError as exc:
                raise _Fail(f"{path}.default", str(exc)) from None
        targets = param["targets"]
        if not isinstance(targets, list) or not targets:
            raise _Fail(f"{path}.targets", "expected a non-empty array of targets")
        if len(targets) > 10 or len(set(map(str, targets))) != len(targets):
            raise _Fail(f"{path}.targets", "at most 10 targets, each once")
        for t_index, target in enumerate(targets):
            where = f"{path}.targets[{t_index}]"
            allowed = dt.target_types(target) if isinstance(target, str) else None
            if allowed is None:
                raise _Fail(where, "unknown target (see docs/template-format.md)")
            if kind not in allowed:
                raise _Fail(where, f"a {kind} parameter cannot fill {target} (use " + ", ".join(allowed) + ")")
            pieces = dt.SEGMENT_PIECES.fullmatch(target)
            if pieces and int(pieces.group(1)) >= len(segments):
                raise _Fail(where, f"the template has no segment {pieces.group(1)} (segments count from 0)")
            if target == "schedule.weekdays":
                rule = dt.exact_rule(schedule) if schedule.get("kind") == "recurring" else None
                if rule is None or rec.parse_rule(rule)["FREQ"] not in ("DAILY", "WEEKLY"):
                    raise _Fail(where, "weekdays need a DAILY or WEEKLY recurring schedule")
            if target == "durations" and kind == "minutes" and not dt.session_minutes(template):
                raise _Fail(where, "the template has no session length to scale")
            if target in dt.TEXT_TARGETS and not any(
                name in dt.placeholders(text) for field, _p, text in dt.text_fields(template) if field == target
            ):
                raise _Fail(where, f"{target} has no {{{{{name}}}}} placeholder")
    declared = {p["name"]: p for p in value}
    for target, where, text in dt.text_fields(template):
        for name in dt.placeholders(text):
            param = declared.get(name)
            if param is None:
                raise _Fail(f"template.{where}", f"placeholder {{{{{name}}}}} is not a declared parameter")
            if target not in param["targets"]:
                raise _Fail(f"template.{where}", f"parameter '{name}' does not list {target} in its targets")
    return value


def _signature(value: object) -> None:
    signature = _object(value, "signature", SIGNATURE_FIELDS, SIGNATURE_FIELDS)
    _enum(signature["algorithm"], "signature.algorithm", ("ed25519",))
    if not isinstance(signature["publicKey"], str) or not _HEX64.fullmatch(signature["publicKey"]):
        raise _Fail("signature.publicKey", "expected 64 lowercase hex digits (an Ed25519 public key)")
    if not isinstance(signature["value"], str) or not _HEX128.fullmatch(signature["value"]):
        raise _Fail("signature.value", "expected 128 lowercase hex digits (an Ed25519 signature)")


def validate(document: Any, limits: Limits = Limits()) -> TemplateFile:
    """Check a decoded document. Raises _Fail."""
    walk(document)
    root = _object(document, "", ROOT_FIELDS, ("format", "formatVersion", "template"))
    if root["format"] != FORMAT:
        raise _Fail("format", f'expected "{FORMAT}"')
    version = root["formatVersion"]
    if _is_int(version) and version > FORMAT_VERSION:
        raise _Fail("formatVersion", f"version {version} is newer than this practiceplan reads ({FORMAT_VERSION}); upgrade practiceplan")
    if version != FORMAT_VERSION or not _is_int(version):
        raise _Fail("formatVersion", f"expected {FORMAT_VERSION}")
    template = _entity(root["template"], "template", limits)
    _parameters(root.get("parameters", []), template)
    if "signature" in root:
        _signature(root["signature"])
    return TemplateFile(root)


def parse_and_validate(data: bytes, limits: Limits = Limits(), source: str = "") -> TemplateFile:
    """Bytes of a template file -> a validated :class:`TemplateFile`. Pure; never writes anything.

    Raises :class:`TemplateFormatError` (exit 65) naming the JSON path of the first problem.
    """
    if len(data) > limits.max_bytes:
        raise TemplateFormatError("file", f"larger than the {limits.max_bytes >> 20} MiB limit", source)
    try:
        return validate(decode(data), limits)
    except _Fail as fail:
        raise TemplateFormatError(fail.path, fail.problem, source) from None
    except RecursionError:
        raise TemplateFormatError("file", f"nested more than {MAX_DEPTH} levels deep", source) from None


def validate_document(document: dict[str, Any], limits: Limits = Limits(), source: str = "") -> TemplateFile:
    """Check a document built in memory (create, edit, publish) exactly as an import would."""
    return parse_and_validate(encode(document), limits, source)


def make_document(template: dict[str, Any], parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return {"format": FORMAT, "formatVersion": FORMAT_VERSION, "template": template, "parameters": parameters}
