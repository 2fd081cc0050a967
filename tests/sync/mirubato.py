"""A faithful in-memory imitation of the Mirubato sync API, for the sync client tests.

This is an independent implementation of ``/work/shared/reference/sync-protocol.md`` (cited as §n) and of
the recorded exchanges in ``mirubato-recorded/`` (cited as "file NN"). It deliberately reproduces
Mirubato's quirks (bare 400s, per-item conflicts inside a 200, the loose idempotency hash, SQLite-text
``lastSyncTime``, the adoption oddities, ...) so that a client which works against it works against
Mirubato. It must never import the client (``practiceplan.sync``): the two cross-check each other.

Entry points:

* :class:`ServerState`: the in-memory database plus test controls (clock, id generator, JWTs,
  fault injection, request log). ``ServerState(extended=True)`` also speaks the practiceplan
  extensions (incremental pull with tombstones, conditional push, 422 on key reuse).
* :func:`make_app`: the Starlette application serving one ``ServerState``.

Run it with :func:`tests.sync.server.serve`.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import json
import math
import re
import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = [
    "ENTITY_TYPES",
    "FAULT_KINDS",
    "Fault",
    "FixedClock",
    "ServerState",
    "make_app",
    "mirubato_checksum",
    "normalize_score_id",
]

DEFAULT_SECRET = "mirubato-test-jwt-secret"
NANOID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

#: push/pull array name -> sync_data.entity_type (§2.1 step 3, §2.2)
ARRAYS = {
    "entries": "logbook_entry",
    "goals": "goal",
    "practicePlans": "practice_plan",
    "planOccurrences": "plan_occurrence",
    "planTemplates": "plan_template",
}
ENTITY_TYPES = tuple(ARRAYS.values())
ARRAY_OF_TYPE = {v: k for k, v in ARRAYS.items()}
#: types batch accepts (§2.3); user_preferences is stored but never pulled (§3.6)
BATCH_TYPES = ENTITY_TYPES + ("user_preferences",)

FAULT_KINDS = ("500-before", "500-after", "drop-after", "delay-after", "truncate", "429", "empty-pull")

EXT_CAPABILITIES = ["incremental-pull", "tombstones", "conditional-push"]


# ---------------------------------------------------------------------------------------------------------
# JavaScript value semantics
# ---------------------------------------------------------------------------------------------------------


class _Undefined:
    """JavaScript ``undefined`` inside a built object: ``JSON.stringify`` drops the key, while the D1
    sanitiser stores it as ``null`` (§5.2 step 1). Only adoption builds such objects (§2.5, G8)."""

    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "undefined"


UNDEF = _Undefined()


def js_truthy(v: Any) -> bool:
    """JavaScript truthiness: ``[]`` and ``{}`` are truthy, ``0``, ``""``, ``null`` and NaN are not."""
    if v is None or v is UNDEF or v is False:
        return False
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v != 0 and not (isinstance(v, float) and math.isnan(v))
    if isinstance(v, str):
        return v != ""
    return True


def _drop_undefined(v: Any) -> Any:
    """What ``JSON.stringify`` sees: keys holding ``undefined`` vanish."""
    if isinstance(v, dict):
        return {k: _drop_undefined(x) for k, x in v.items() if x is not UNDEF}
    if isinstance(v, list):
        return [None if x is UNDEF else _drop_undefined(x) for x in v]
    return v


def _sanitize(v: Any) -> Any:
    """``sanitizeForD1`` (§5.2 step 1): a deep copy with every ``undefined`` turned into ``null``."""
    if isinstance(v, dict):
        return {k: _sanitize(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_sanitize(x) for x in v]
    return None if v is UNDEF else v


def _parse_float(s: str) -> float | int:
    # JSON.parse has one number type: 5.0 is the integer 5 (and JSON.stringify writes it back as "5").
    f = float(s)
    if math.isfinite(f) and f.is_integer() and abs(f) < 2**53:
        return int(f)
    return f


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")  # JSON.parse rejects NaN/Infinity


def parse_json(raw: bytes) -> Any:
    """``JSON.parse`` of a request body; raises ValueError when it is not JSON."""
    return json.loads(raw.decode("utf-8"), parse_float=_parse_float, parse_constant=_reject_constant)


def dump_json(v: Any) -> bytes:
    """``JSON.stringify``: compact, non-ASCII kept as is, ``undefined`` keys dropped."""
    v = _drop_undefined(v)
    try:
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: JS escapes them as \udxxx, so do we
        return json.dumps(v, separators=(",", ":"), ensure_ascii=True).encode("ascii")


# ---------------------------------------------------------------------------------------------------------
# Checksum (§5.4) -- the reference's Python implementation, verified there against the JS algorithm
# ---------------------------------------------------------------------------------------------------------


def _js_number(x: float | int) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if math.isnan(x) or math.isinf(x):
        return "null"
    if x == 0:
        return "0"
    r = repr(x)
    mant, exp_s = (r.lower().split("e") + ["0"])[:2]
    exp = int(exp_s)
    neg = mant.startswith("-")
    mant = mant.lstrip("-")
    ip, fp = (mant.split(".") + [""])[:2]
    digits = (ip + fp).lstrip("0").rstrip("0") or "0"
    n = (len(ip.lstrip("0")) + exp) if ip.strip("0") else exp - (len(fp) - len(fp.lstrip("0")))
    k = len(digits)
    if k <= n <= 21:
        s = digits + "0" * (n - k)
    elif 0 < n <= 21:
        s = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        s = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        s = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return ("-" if neg else "") + s


def canonical_json(v: Any) -> str:
    """Sorted-key (UTF-16 code unit order) ``JSON.stringify`` used by the row checksum (§5.4)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return _js_number(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(canonical_json(i) for i in v) + "]"
    if isinstance(v, dict):
        keys = sorted((k for k in v if v[k] is not UNDEF), key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + canonical_json(v[k]) for k in keys) + "}"
    raise TypeError(type(v))


def mirubato_checksum(v: Any) -> str:
    """SHA-256 hex of :func:`canonical_json` (§5.4)."""
    return hashlib.sha256(canonical_json(v).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------------------
# A small zod: the server's validation schemas (§3, §4.1)
# ---------------------------------------------------------------------------------------------------------


class Invalid(Exception):
    """A zod parse failure: always surfaces as the bare ``400 Invalid request body`` (§4.1)."""


_MISSING = object()

# zod 3 ``z.string().datetime()``: real calendar dates, seconds required, any fraction, literal Z (§3.0.5).
_ISOZ = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):([0-5]\d):([0-5]\d)(\.(\d+))?Z$")


def _is_isoz(s: str) -> bool:
    m = _ISOZ.match(s)
    if not m:
        return False
    try:
        datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return False
    return True


def isoz_to_ms(s: str) -> int:
    """``new Date(iso).getTime()``: fraction truncated to milliseconds."""
    m = _ISOZ.match(s)
    assert m is not None
    frac = (m.group(8) or "0")[:3].ljust(3, "0")
    dt = datetime(*(int(m.group(i)) for i in range(1, 7)), tzinfo=UTC)
    return int(dt.timestamp()) * 1000 + int(frac)


class Schema:
    nullable = False

    def parse(self, v: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, v: Any) -> Any:
        if v is None:
            if self.nullable:
                return None
            raise Invalid("null")
        return self.parse(v)


class Str(Schema):
    def __init__(self, *, nullable: bool = False, min_len: int = 0, isoz: bool = False) -> None:
        self.nullable, self.min_len, self.isoz = nullable, min_len, isoz

    def parse(self, v: Any) -> Any:
        if not isinstance(v, str) or len(v) < self.min_len:  # zod counts UTF-16 units; close enough here
            raise Invalid("string")
        if self.isoz and not _is_isoz(v):
            raise Invalid("datetime")
        return v


class Num(Schema):
    def __init__(self, *, nullable: bool = False, integer: bool = False, minimum: float | None = None) -> None:
        self.nullable, self.integer, self.minimum = nullable, integer, minimum

    def parse(self, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise Invalid("number")
        if self.integer and not (isinstance(v, int) or float(v).is_integer()):
            raise Invalid("int")
        if self.minimum is not None and v < self.minimum:
            raise Invalid("min")
        return v


class Bool(Schema):
    def parse(self, v: Any) -> Any:
        if not isinstance(v, bool):
            raise Invalid("boolean")
        return v


class Enum(Schema):
    """Case-sensitive enum: ``"PRACTICE"`` or ``"rescheduled"`` is a whole-request 400 (§4.1, file 08)."""

    def __init__(self, *values: str, nullable: bool = False) -> None:
        self.values, self.nullable = values, nullable

    def parse(self, v: Any) -> Any:
        if v not in self.values or not isinstance(v, str):
            raise Invalid("enum")
        return v


class AnyV(Schema):
    nullable = True

    def parse(self, v: Any) -> Any:
        return copy.deepcopy(v)


class Arr(Schema):
    def __init__(self, item: Schema, *, nullable: bool = False) -> None:
        self.item, self.nullable = item, nullable

    def parse(self, v: Any) -> Any:
        if not isinstance(v, list):
            raise Invalid("array")
        return [self.item(x) for x in v]


class Record(Schema):
    """``z.record(...)``: a JSON object (an array is rejected), keys kept, values checked (§6.1)."""

    def __init__(self, value: Schema, *, nullable: bool = False) -> None:
        self.value, self.nullable = value, nullable

    def parse(self, v: Any) -> Any:
        if not isinstance(v, dict):
            raise Invalid("record")
        return {k: self.value(x) for k, x in v.items()}


class Union(Schema):
    def __init__(self, *options: Schema, nullable: bool = False) -> None:
        self.options, self.nullable = options, nullable

    def parse(self, v: Any) -> Any:
        for o in self.options:
            try:
                return o(v)
            except Invalid:
                continue
        raise Invalid("union")


class Transform(Schema):
    def __init__(self, inner: Schema, fn: Callable[[Any], Any]) -> None:
        self.inner, self.fn, self.nullable = inner, fn, inner.nullable

    def parse(self, v: Any) -> Any:
        return self.fn(self.inner.parse(v))


@dataclass
class F:
    """One object field: ``required`` (partial schemas keep only ``id``/``planId`` required),
    ``default`` (applied when absent, at the field's position)."""

    name: str
    schema: Schema
    required: bool = False
    default: Any = _MISSING


class Obj(Schema):
    """``z.object``: unknown keys are stripped, output keys follow the schema order, absent optional keys
    stay absent (zod only sets a key that was present or has a default)."""

    def __init__(self, *fields: F, nullable: bool = False) -> None:
        self.fields, self.nullable = fields, nullable

    def parse(self, v: Any) -> Any:
        if not isinstance(v, dict):
            raise Invalid("object")
        out: dict[str, Any] = {}
        for f in self.fields:
            if f.name in v:
                out[f.name] = f.schema(v[f.name])
            elif f.default is not _MISSING:
                out[f.name] = copy.deepcopy(f.default)
            elif f.required:
                raise Invalid(f"required {f.name}")
        return out

    def with_required(self, *names: str, defaults: dict[str, Any] | None = None) -> Obj:
        defaults = defaults or {}
        return Obj(*(F(f.name, f.schema, f.name in names or f.required, defaults.get(f.name, f.default))
                     for f in self.fields))


def _opt(name: str, schema: Schema) -> F:
    return F(name, schema)


STR = Str()
STR_N = Str(nullable=True)
STR_ARR = Arr(STR)
RECORD_ANY = Record(AnyV())
ISO_OR_MS = Union(Num(integer=True), Transform(Str(isoz=True), isoz_to_ms))

PIECE = Obj(F("id", STR), F("title", STR, required=True), F("composer", STR), F("duration", Num()))
PIECE_REF = Obj(F("scoreId", STR), F("title", STR), F("composer", STR_N))
SCHEDULE = Obj(
    F("kind", Enum("single", "recurring"), required=True),
    F("rule", STR),
    F("durationMinutes", Num(integer=True, minimum=1)),
    F("timeOfDay", STR),
    F("flexibility", Enum("fixed", "same-day", "anytime")),
    F("startDate", STR),
    F("endDate", STR_N),
    F("target", STR),
    F("metadata", RECORD_ANY),
)
SEGMENT = Obj(
    F("id", STR),
    F("label", Str(min_len=1), required=True),
    F("durationMinutes", Num(integer=True, minimum=1)),
    F("pieceRefs", Arr(PIECE_REF)),
    F("techniques", STR_ARR),
    F("instructions", STR),
    F("tempoTargets", Record(Union(Num(), STR, nullable=True))),
    F("metadata", RECORD_ANY),
)

#: §3.1.1 (field order = the server schema's, which is the stored key order)
ENTRY = Obj(
    F("id", STR, required=True),
    F("user_id", STR),
    F("timestamp", ISO_OR_MS),
    F("duration", Num(integer=True, minimum=0)),
    F("type", Enum("practice", "performance", "lesson", "rehearsal", "technique", "status_change")),
    F("instrument", Transform(Str(min_len=1), str.lower)),
    F("pieces", Arr(PIECE)),
    F("techniques", STR_ARR),
    F("goal_ids", STR_ARR),
    F("goalIds", STR_ARR),
    F("notes", STR_N),
    F("mood", Enum("frustrated", "neutral", "satisfied", "excited", nullable=True)),
    F("tags", STR_ARR),
    F("session_id", STR_N),
    F("metadata", Record(AnyV(), nullable=True)),
    F("created_at", ISO_OR_MS),
    F("createdAt", Str(isoz=True)),
    F("updated_at", ISO_OR_MS),
    F("updatedAt", Str(isoz=True)),
    F("sync_version", Num(integer=True)),
    F("checksum", STR_N),
    F("deleted_at", STR_N),
    F("deletedAt", STR_N),
    F("device_id", STR_N),
)
#: §3.2 -- snake_case only, no deletedAt
GOAL = Obj(
    F("id", STR, required=True),
    F("user_id", STR),
    F("title", Str(min_len=1)),
    F("description", STR_N),
    F("type", Enum("practice_time", "accuracy", "repertoire", "custom")),
    F("target_value", Num(integer=True, nullable=True)),
    F("current_value", Num(integer=True)),
    F("target_date", STR_N),
    F("status", Enum("active", "completed", "abandoned")),
    F("created_at", STR),
    F("updated_at", STR),
)
#: §3.3 -- created_at/updated_at are not in the schema (dropped, then re-derived)
PLAN = Obj(
    F("id", STR, required=True),
    F("user_id", STR),
    F("title", Str(min_len=1)),
    F("description", STR_N),
    F("type", Enum("bootcamp", "course", "custom")),
    F("focusAreas", STR_ARR),
    F("techniques", STR_ARR),
    F("pieceRefs", Arr(PIECE_REF)),
    F("schedule", SCHEDULE),
    F("visibility", Enum("private", "shared", "template")),
    F("status", Enum("draft", "active", "completed", "archived")),
    F("ownerId", STR),
    F("templateVersion", Num(integer=True)),
    F("sourceTemplateId", STR_N),
    F("tags", STR_ARR),
    F("metadata", RECORD_ANY),
    F("createdAt", STR),
    F("updatedAt", STR),
    F("archivedAt", STR_N),
    F("deletedAt", STR_N),
)
#: §3.4 -- planId required even on deletions; plan_id stripped; checkIn/reminderState/metrics not nullable
OCCURRENCE = Obj(
    F("id", STR, required=True),
    F("planId", STR, required=True),
    F("user_id", STR),
    F("scheduledStart", STR_N),
    F("scheduledEnd", STR_N),
    F("flexWindow", STR_N),
    F("recurrenceKey", STR_N),
    F("segments", Arr(SEGMENT)),
    F("targets", Record(Union(Num(), STR, Arr(Num()), nullable=True))),
    F("reflectionPrompts", STR_ARR),
    F("status", Enum("scheduled", "completed", "skipped", "expired")),
    F("logEntryId", STR_N),
    F("checkIn", Obj(F("recordedAt", STR), F("responses", RECORD_ANY))),
    F("notes", STR_N),
    F("reminderState", RECORD_ANY),
    F("metrics", Record(Union(Num(), STR, Arr(AnyV()), nullable=True))),
    F("createdAt", STR),
    F("updatedAt", STR),
    F("deletedAt", STR_N),
)
#: §3.5 (push form: everything optional but id)
TEMPLATE = Obj(
    F("id", STR, required=True),
    F("authorId", STR),
    F("sourcePlanId", STR),
    F("title", Str(min_len=1)),
    F("description", STR_N),
    F("type", Enum("bootcamp", "course", "custom")),
    F("focusAreas", STR_ARR),
    F("techniques", STR_ARR),
    F("pieceRefs", Arr(PIECE_REF)),
    F("schedule", SCHEDULE),
    F("tags", STR_ARR),
    F("templateVersion", Num(integer=True)),
    F("visibility", Enum("public", "private")),
    F("adoptionCount", Num(integer=True)),
    F("metadata", RECORD_ANY),
    F("publishedAt", STR),
    F("createdAt", STR),
    F("updatedAt", STR),
    F("deletedAt", STR_N),
)
#: §2.5 step 2: the full schema adoption parses the stored template with
TEMPLATE_FULL = TEMPLATE.with_required(
    "authorId", "title", "schedule", "publishedAt", "createdAt", "updatedAt",
    defaults={"type": "custom", "templateVersion": 1, "visibility": "private"},
)

PUSH_BODY = Obj(
    F("changes", Obj(
        F("entries", Arr(ENTRY)),
        F("goals", Arr(GOAL)),
        F("practicePlans", Arr(PLAN)),
        F("planOccurrences", Arr(OCCURRENCE)),
        F("planTemplates", Arr(TEMPLATE)),
    ), required=True),
    F("lastSyncToken", STR),
)
BATCH_BODY = Obj(
    F("entities", Arr(Obj(
        F("id", STR, required=True),
        F("type", Enum(*BATCH_TYPES), required=True),
        F("data", AnyV(), required=True),
        F("checksum", STR, required=True),
        F("version", Num(integer=True, minimum=1), required=True),
    )), required=True),
    F("syncToken", STR),
)
ADOPT_BODY = Obj(
    F("templateId", STR, required=True),
    F("customization", Obj(
        F("title", STR),
        F("focusAreas", STR_ARR),
        F("tags", STR_ARR),
        F("schedule", Obj(
            F("startDate", STR),
            F("endDate", STR),
            F("timeOfDay", STR),
            F("durationMinutes", Num(integer=True, minimum=1)),
        )),
    )),
)


# ---------------------------------------------------------------------------------------------------------
# Score ids (§3.1.2) and recurrence checks (§4.2, §4.3)
# ---------------------------------------------------------------------------------------------------------

_CANONICAL_SCORE = re.compile(r"^score_[a-z0-9]+(?:[-_][a-z0-9]+)*$", re.IGNORECASE)


def _join_score(title: str, composer: str) -> str:
    return title + ("||" if "-" in title or "-" in composer else "-") + composer


def normalize_score_id(piece: dict[str, Any]) -> str:
    """``scoreIdNormalizer`` (§3.1.2): keep canonical ``score_...`` ids, else derive ``title-composer``."""
    pid = piece.get("id")
    if isinstance(pid, str) and pid.strip():
        pid = pid.strip()
        if _CANONICAL_SCORE.match(pid):
            return pid
        low = pid.lower()
        if "||" in low:
            title, composer = low.split("||", 1)
        elif "-" in low:
            title, composer = low.split("-", 1)
        else:
            title, composer = low, ""
        return _join_score(title.strip(), composer.strip() or "unknown")
    title = re.sub(r"\s+", " ", str(piece.get("title") or "").lower().strip())
    title = title.replace("\u2018", "'").replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
    title = title.replace("\u2013", "-").replace("\u2014", "-")
    composer = piece.get("composer")
    if not isinstance(composer, str) or not composer.strip():
        composer = "Unknown"
    composer = re.sub(r"\s+", " ", composer.lower().strip())
    composer = composer.replace("\u2018", "'").replace("\u2019", "'").replace(".", "")
    return _join_score(title, composer)


_FREQS = ("DAILY", "WEEKLY", "MONTHLY")


def recurrence_rule_is_valid(rule: Any) -> bool:
    """``parseRecurrenceRule`` (§4.2) reduced to its verdict: valid iff a supported ``FREQ`` is found.

    Parts are split on ``;`` and trimmed; keys are case-insensitive, so ``RRULE:FREQ=WEEKLY`` reads as
    key ``RRULE:FREQ`` and is invalid (file 09), and ``FREQ=YEARLY`` is ignored, leaving no frequency.
    The normalised form the server computes is discarded, so it is not built here."""
    if not isinstance(rule, str):
        return False
    parts = [p.strip() for p in rule.split(";") if p.strip()]
    freq = None
    for part in parts:
        if "=" not in part:
            continue
        key, _, value = part.partition("=")
        if key.upper() == "FREQ" and value.strip().upper() in _FREQS:
            freq = value.strip().upper()
    return freq is not None


def recurrence_metadata_is_valid(rec: Any) -> bool:
    """``normalizeRecurrenceMetadata`` (§4.3): only a missing or unsupported ``frequency`` (or a truthy
    non-object) makes the metadata invalid; the rest is coerced and never compared with the rule."""
    if not isinstance(rec, dict):
        return False
    freq = rec.get("frequency")
    return isinstance(freq, str) and freq.upper() in _FREQS


def schedule_problem(item: dict[str, Any]) -> str | None:
    """The plan/template schedule checks of §2.2 steps 2 and 4: a per-item conflict reason, or None."""
    schedule = item.get("schedule")
    if not isinstance(schedule, dict) or schedule.get("kind") != "recurring":
        return None
    if not recurrence_rule_is_valid(schedule.get("rule")):
        return "Invalid recurrence rule"
    metadata = schedule.get("metadata")
    rec = metadata.get("recurrence") if isinstance(metadata, dict) else None
    if js_truthy(rec) and not recurrence_metadata_is_valid(rec):
        return "Invalid recurrence metadata"
    return None


# ---------------------------------------------------------------------------------------------------------
# JWT (§1.2): HS256 with the standard jose checks
# ---------------------------------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(s: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", s):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def encode_jwt(claims: dict[str, Any], secret: str) -> str:
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(sig)}"


def verify_jwt(token: str, secret: str, now_s: float) -> dict[str, Any]:
    """jose ``jwtVerify`` with an HS256 key: signature, ``exp`` (expired when ``exp <= now``) and ``nbf``
    (``nbf > now`` fails). No issuer/audience/type checks (G24). Raises ValueError on any failure."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("malformed")
    header = json.loads(_b64url_decode(parts[0]))
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise ValueError("alg")
    expected = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, _b64url_decode(parts[2])):
        raise ValueError("signature")
    claims = json.loads(_b64url_decode(parts[1]))
    if not isinstance(claims, dict):
        raise ValueError("payload")
    for name in ("exp", "nbf", "iat"):
        if name in claims and (isinstance(claims[name], bool) or not isinstance(claims[name], (int, float))):
            raise ValueError(name)
    if "exp" in claims and claims["exp"] <= now_s:
        raise ValueError("expired")
    if "nbf" in claims and claims["nbf"] > now_s:
        raise ValueError("not yet valid")
    # Mirubato scopes everything by ``sub``; a token without a usable one cannot name a namespace.
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise ValueError("sub")
    return claims


# ---------------------------------------------------------------------------------------------------------
# Clock, ids, faults
# ---------------------------------------------------------------------------------------------------------


def _to_datetime(v: datetime | int | float | str) -> datetime:
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    if isinstance(v, str):
        return datetime.fromisoformat(v.replace("Z", "+00:00")).astimezone(UTC)
    return datetime.fromtimestamp(v / 1000, UTC)


class FixedClock:
    """A settable clock for ``state.clock``: ``FixedClock("2026-12-05T00:01:02.639Z")``; ``advance``."""

    def __init__(self, when: datetime | int | float | str) -> None:
        self.now = _to_datetime(when)

    def __call__(self) -> datetime:
        return self.now

    def set(self, when: datetime | int | float | str) -> None:
        self.now = _to_datetime(when)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def random_nanoid(prefix: str = "") -> str:
    """21 characters of the nanoid alphabet (the prefix is ignored; it lets scripted sources route)."""
    return "".join(secrets.choice(NANOID_ALPHABET) for _ in range(21))


@dataclass
class Fault:
    """A queued fault: consumed by the next ``remaining`` requests that match ``path``/``method``."""

    kind: str
    remaining: int
    path: str | None = None
    method: str | None = None
    seconds: float = 1.0
    status: int | None = None
    error: str | None = None
    skip: int = 0  # matching requests let through before the fault starts

    def matches(self, method: str, path: str) -> bool:
        return (self.path is None or self.path == path) and (self.method is None or self.method == method)


@dataclass
class Row:
    """One ``sync_data`` row (§5.1). ``change_seq`` is the extended-mode per-user write counter."""

    user_id: str
    entity_type: str
    entity_id: str
    data: Any
    checksum: str
    version: int
    created_at: str
    updated_at: str
    rowid: int
    seq: int
    change_seq: int
    deleted_at: str | None = None
    device_id: str | None = None


@dataclass
class Upsert:
    action: str  # created | updated | duplicate_prevented
    row: Row | None


@dataclass
class _Idem:
    request_hash: str
    response: dict[str, Any]
    expires_at: str  # ISO-Z, compared as a string with SQLite datetime('now') (§5.8)


@dataclass
class _Meta:
    last_sync_token: str | None = None
    last_sync_time: str | None = None
    device_count: int = 1


@dataclass
class _Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def _envelope(status: int, error: str) -> _Reply:
    """The global handler's envelope (§1.3)."""
    return _Reply(status, {"success": False, "error": error, "code": status})


INVALID_BODY = "Invalid request body"


# ---------------------------------------------------------------------------------------------------------
# ServerState
# ---------------------------------------------------------------------------------------------------------


class ServerState:
    """The whole server side: an in-memory ``sync_data``/``sync_metadata``/``idempotency_keys`` store, plus
    test controls. Thread-safe: every request's processing runs under ``self.lock``, and so should any
    test code that pokes at the internals while the server runs.

    Test controls (all reset by :meth:`reset`):

    * ``clock``: a callable returning a ``datetime`` (naive = UTC) or epoch milliseconds. Drives every
      server time: ``timestamp``, ``lastSyncTime``, ``adoptedAt``, row times, JWT ``exp``/``nbf`` checks.
    * ``id_source``: ``callable(prefix) -> str`` giving the 21 nanoid characters after ``prefix`` for
      :meth:`new_id` (prefixes used: ``"sync_"`` tokens, ``"plan_"``/``"plan_occ_"`` adopted ids).
    * :meth:`inject` faults, :attr:`requests` log, :meth:`token_for` JWTs.
    * ``adoption_count_writes``: the background adoption counter write (§2.5 step 7, §7.3). Off by
      default because in the recording it never landed (file 11 ``pull-later``).
    """

    def __init__(self, *, extended: bool = False, secret: str = DEFAULT_SECRET,
                 clock: Callable[[], datetime | int | float] | None = None,
                 id_source: Callable[[str], str] | None = None) -> None:
        self.extended = extended
        self.secret = secret
        self.lock = threading.RLock()
        self._default_clock = clock
        self._default_id_source = id_source
        self.generation = 0
        self.reset()

    # -- lifecycle ----------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Empty database, no faults, empty request log, default clock/id source. Also ends pending
        ``delay-after`` sleeps (they poll :attr:`generation`)."""
        with self.lock:
            self.clock: Callable[[], datetime | int | float] = self._default_clock or (lambda: datetime.now(UTC))
            self.id_source: Callable[[str], str] = self._default_id_source or random_nanoid
            self.adoption_count_writes = False
            self.rows: dict[tuple[str, str, str], Row] = {}
            # (user, type, checksum) -> ids that had that checksum: the duplicate check reads only these (and
            # re-checks each row), instead of every row per upsert (quadratic at benchmark sizes)
            self._by_checksum: dict[tuple[str, str, str], set[str]] = {}
            self.metadata: dict[str, _Meta] = {}
            self.idempotency: dict[tuple[str, str], _Idem] = {}
            self.faults: deque[Fault] = deque()
            self.requests: list[tuple[str, str, str | None]] = []
            self._rowid = 0
            self._seq = 0  # Mirubato's global sync_sequence (§5.7): upserts only
            self._user_seq: dict[str, int] = {}  # extended mode: per-user, every write
            self.generation += 1

    # -- time and ids ----------------------------------------------------------------------------------

    def now(self) -> datetime:
        return _to_datetime(self.clock())

    def now_ms(self) -> int:
        return int(round(self.now().timestamp() * 1000))

    def now_iso(self) -> str:
        """``new Date().toISOString()``."""
        return _iso_ms(self.now_ms())

    def now_sqlite(self) -> str:
        """SQLite ``datetime('now')``: ``YYYY-MM-DD HH:MM:SS`` UTC (used by ``lastSyncTime``, §2.4)."""
        return self.now().strftime("%Y-%m-%d %H:%M:%S")

    def new_id(self, prefix: str) -> str:
        return prefix + self.id_source(prefix)

    def new_sync_token(self) -> str:
        """``sync_`` + 21 nanoid characters (§5.6)."""
        return self.new_id("sync_")

    # -- auth ------------------------------------------------------------------------------------------

    def token_for(self, user_id: str, *, expires_in: float = 3600, secret: str | None = None,
                  **claims: Any) -> str:
        """An HS256 JWT for ``user_id`` (``sub``), valid for ``expires_in`` seconds of the server clock
        (negative = already expired). ``secret`` overrides the server's (a wrong-secret token).
        Extra ``claims`` (``nbf``, ``email``, ...) are merged in."""
        now_s = int(self.now().timestamp())
        payload = {"sub": user_id, "email": f"{user_id}@example.test", "iat": now_s,
                   "exp": now_s + int(expires_in)}
        payload.update(claims)
        return encode_jwt(payload, secret if secret is not None else self.secret)

    def authenticate(self, authorization: str | None, cookie_token: str | None) -> str | _Reply:
        """§1.2: strip the first literal ``Bearer `` (case-sensitive, anywhere, like JS ``replace``), fall
        back to the ``auth-token`` cookie when that leaves nothing; returns the user id or a 401."""
        token = authorization.replace("Bearer ", "", 1) if authorization else ""
        if not token:
            token = cookie_token or ""
        if not token:
            return _envelope(401, "No authentication token provided")
        try:
            claims = verify_jwt(token, self.secret, self.now().timestamp())
        except Exception:
            return _envelope(401, "Invalid or expired token")
        return claims["sub"]

    # -- faults and request log -----------------------------------------------------------------------

    def inject(self, kind: str, count: int = 1, *, path: str | None = None, method: str | None = None,
               seconds: float | None = None, status: int | None = None, error: str | None = None,
               skip: int = 0) -> Fault:
        """Queue a fault for the next ``count`` requests matching ``path`` (exact, e.g.
        ``"/api/sync/push"``) and ``method`` (None = any). Faults are consumed in FIFO order, one per
        request; every request (faulted or not) is logged in :attr:`requests`. What an httpx client sees:

        * ``500-before``: HTTP 500 (or ``status``) with the generic envelope (or ``error``); nothing was
          processed.
        * ``500-after``: the request is processed and committed, then HTTP 500 as above. The idempotency
          row is *not* stored, as when Mirubato throws after its writes (§2.2 step 7), so a retry with
          the same key is processed again (new versions, new sync token).
        * ``drop-after``: processed and committed (idempotency row stored), then the TCP connection is
          aborted before a single response byte: ``httpx.RemoteProtocolError("Server disconnected
          without sending a response.")``. A same-key retry is a replay.
        * ``delay-after``: processed and committed, the response held back ``seconds`` (default 5) or
          until the client disconnects: with a shorter client timeout, ``httpx.ReadTimeout``.
        * ``truncate``: processed and committed, then a well-formed HTTP 200 (Content-Length matches)
          whose JSON body is the first half of the real one: ``response.json()`` raises
          ``json.JSONDecodeError``.
        * ``429``: HTTP 429, ``Retry-After: <seconds>`` (default 1) and
          ``{"success":false,"error":"Too many requests","code":429}``; nothing processed.
        * ``empty-pull``: a pull answers 200 with every array empty and the usual token/timestamp
          (§2.1: a failed query is swallowed); ``path`` defaults to ``/api/sync/pull``.

        ``skip`` lets that many matching requests through first (e.g. a sync's first pull, to fail a later one).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        if count < 1:
            raise ValueError("count must be >= 1")
        if kind == "empty-pull" and path is None:
            path = "/api/sync/pull"
        if seconds is None:
            seconds = 5.0 if kind == "delay-after" else 1.0
        fault = Fault(kind, count, path, method, seconds, status, error, skip)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def _take_fault(self, method: str, path: str, idem_key: str | None) -> Fault | None:
        with self.lock:
            self.requests.append((method, path, idem_key))
            for fault in self.faults:
                if fault.matches(method, path):
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def count_requests(self, path: str | None = None, method: str | None = None) -> int:
        with self.lock:
            return sum(1 for m, p, _ in self.requests
                       if (path is None or p == path) and (method is None or m == method))

    # -- inspection helpers for tests ------------------------------------------------------------------

    def row(self, user_id: str, entity_type: str, entity_id: str) -> Row | None:
        with self.lock:
            return self.rows.get((user_id, entity_type, entity_id))

    def live_rows(self, user_id: str, entity_type: str | None = None) -> list[Row]:
        with self.lock:
            return [r for r in self.rows.values() if r.user_id == user_id and r.deleted_at is None
                    and (entity_type is None or r.entity_type == entity_type)]

    def version_of(self, user_id: str, entity_type: str, entity_id: str) -> int:
        """The stored version (deleted rows included), 0 when there is no row."""
        r = self.row(user_id, entity_type, entity_id)
        return r.version if r else 0

    def sync_token_of(self, user_id: str) -> str | None:
        with self.lock:
            meta = self.metadata.get(user_id)
            return meta.last_sync_token if meta else None

    # -- storage primitives (§5.2, §5.3) ----------------------------------------------------------------

    def _bump_user_seq(self, user_id: str) -> int:
        self._user_seq[user_id] = self._user_seq.get(user_id, 0) + 1
        return self._user_seq[user_id]

    def upsert(self, user_id: str, entity_type: str, entity_id: str, data: Any, checksum: str,
               device_id: str | None, version: int | None = None) -> Upsert:
        """``upsertSyncData`` (§5.2): the duplicate-by-checksum check, then update (version + 1, always,
        even for identical content; a falsy ``deletedAt`` undeletes) or insert (version given or 1)."""
        data = _sanitize(data)
        deleted_at = data.get("deletedAt") if isinstance(data, dict) else None
        deleted_at = deleted_at if js_truthy(deleted_at) else None
        same = self._by_checksum.setdefault((user_id, entity_type, checksum), set())
        for other_id in same:
            other = self.rows.get((user_id, entity_type, other_id))
            if (other is not None and other.deleted_at is None and other.checksum == checksum
                    and other_id != entity_id):
                return Upsert("duplicate_prevented", None)
        same.add(entity_id)
        now = self.now_sqlite()
        self._seq += 1
        existing = self.rows.get((user_id, entity_type, entity_id))
        if existing is not None:
            existing.data = data
            existing.checksum = checksum
            existing.version += 1
            existing.updated_at = now
            existing.deleted_at = deleted_at
            existing.device_id = device_id
            existing.seq = self._seq
            existing.change_seq = self._bump_user_seq(user_id)
            return Upsert("updated", existing)
        self._rowid += 1
        row = Row(user_id, entity_type, entity_id, data, checksum, version or 1, now, now, self._rowid,
                  self._seq, self._bump_user_seq(user_id), deleted_at, device_id)
        self.rows[(user_id, entity_type, entity_id)] = row
        return Upsert("created", row)

    def soft_delete(self, user_id: str, entity_type: str, entity_id: str, deleted_at: str) -> Row | None:
        """``softDeleteSyncData`` (§5.3): set ``deleted_at`` (the client's string) and ``updated_at``;
        data, checksum, version, seq and device are untouched; a missing row is not an error.

        Extended mode (a decision of practiceplan's own server, G10/G11): the delete also takes a new
        per-user sequence number (so incremental pulls deliver it as a tombstone) and bumps the version
        (so a conditional push based on the pre-delete version is ``stale``)."""
        row = self.rows.get((user_id, entity_type, entity_id))
        if row is None:
            return None
        row.deleted_at = deleted_at
        row.updated_at = self.now_sqlite()
        if self.extended:
            row.version += 1
            row.change_seq = self._bump_user_seq(user_id)
        return row

    def _touch_metadata(self, user_id: str) -> str:
        """``updateSyncMetadata`` after push/batch (§2.2 step 7): new token, ``datetime('now')``, 1 device."""
        token = self.new_sync_token()
        meta = self.metadata.setdefault(user_id, _Meta())
        meta.last_sync_token = token
        meta.last_sync_time = self.now_sqlite()
        meta.device_count = 1
        return token

    # -- endpoints (called under the lock, with parsed input) --------------------------------------------

    def pull(self, user_id: str, body: Any, fault: Fault | None) -> _Reply:
        """``POST /api/sync/pull`` (§2.1). Plain: the body is ignored, every live row of the five types,
        newest server write first. ``updated_at`` has one-second resolution, and rows written within the
        same second come back in insertion order (as in every recorded pull, files 02-12).

        Extended mode with ``"since"`` in a JSON object body: incremental pull (see :meth:`_pull_since`)."""
        if self.extended and isinstance(body, dict) and "since" in body:
            return self._pull_since(user_id, body, fault)
        out: dict[str, Any] = {name: [] for name in ARRAYS}
        if fault is None or fault.kind != "empty-pull":  # §2.1 Errors: a failed query is an empty 200
            rows = [r for r in self.rows.values()
                    if r.user_id == user_id and r.deleted_at is None and r.entity_type in ARRAY_OF_TYPE]
            rows.sort(key=lambda r: r.rowid)
            rows.sort(key=lambda r: r.updated_at, reverse=True)  # stable: ties keep insertion order
            for r in rows:
                out[ARRAY_OF_TYPE[r.entity_type]].append(_pull_output(r.entity_type, r.data))
        meta = self.metadata.get(user_id)
        # §2.1 step 4: stored token, else a fresh one that is NOT persisted (file 12 rec2-pull)
        token = meta.last_sync_token if meta and meta.last_sync_token else self.new_sync_token()
        out["syncToken"] = token
        out["timestamp"] = self.now_iso()
        return _Reply(200, out)

    def _pull_since(self, user_id: str, body: dict[str, Any], fault: Fault | None) -> _Reply:
        """Extended incremental pull: rows (tombstones included) with per-user seq > ``since``, ascending,
        at most ``limit`` (default 1000), plus ``cursor``/``hasMore``/``versions``."""
        since, limit = body.get("since"), body.get("limit", 1000)
        if since is None:
            after = 0
        elif isinstance(since, str) and since.isdigit():
            after = int(since)
        elif isinstance(since, int) and not isinstance(since, bool) and since >= 0:
            after = since
        else:
            return _envelope(400, INVALID_BODY)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            return _envelope(400, INVALID_BODY)
        rows = [] if fault is not None and fault.kind == "empty-pull" else sorted(
            (r for r in self.rows.values()
             if r.user_id == user_id and r.entity_type in ARRAY_OF_TYPE and r.change_seq > after),
            key=lambda r: r.change_seq)
        page, has_more = rows[:limit], len(rows) > limit
        out: dict[str, Any] = {name: [] for name in ARRAYS}
        versions: dict[str, int] = {}
        for r in page:
            data = _pull_output(r.entity_type, r.data)
            if r.deleted_at is not None and isinstance(data, dict):
                data["deletedAt"] = r.deleted_at
            out[ARRAY_OF_TYPE[r.entity_type]].append(data)
            versions[f"{r.entity_type}:{r.entity_id}"] = r.version
        meta = self.metadata.get(user_id)
        out["syncToken"] = meta.last_sync_token if meta and meta.last_sync_token else self.new_sync_token()
        out["timestamp"] = self.now_iso()
        out["cursor"] = str(page[-1].change_seq if page else after)
        out["hasMore"] = has_more
        out["versions"] = versions
        return _Reply(200, out)

    def push(self, user_id: str, body: Any, device_id: str | None, idem_key: str | None,
             fault: Fault | None) -> _Reply:
        """``POST /api/sync/push`` (§2.2): validation (all or nothing), idempotency (§5.8), then each item
        in its own try block (a failure is a per-item conflict inside a 200), then a new sync token."""
        try:
            validated = PUSH_BODY(body)
        except Invalid:
            return _envelope(400, INVALID_BODY)
        base_versions: dict[str, int] | None = None
        if self.extended and isinstance(body, dict) and "baseVersions" in body:
            bv = body["baseVersions"]
            if not isinstance(bv, dict) or not all(
                    isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in bv.values()):
                return _envelope(400, INVALID_BODY)
            base_versions = dict(bv)
        if idem_key:
            hashed = dict(validated)
            if base_versions is not None:
                hashed["baseVersions"] = base_versions
            request_hash = _idempotency_hash(hashed)
            cached = self.idempotency.get((idem_key, user_id))
            if cached is not None and cached.expires_at > self.now_sqlite():  # string compare, §5.8 TTL quirk
                if cached.request_hash == request_hash:
                    return _Reply(200, copy.deepcopy(cached.response), {"x-idempotent-replay": "true"})
                if self.extended:
                    return _envelope(422, "Idempotency key reused with a different body")
                return _envelope(500, "Internal server error")  # G20: surfaces as the generic 500
        response = self._process_push(user_id, validated["changes"], device_id, base_versions)
        if idem_key and not (fault is not None and fault.kind == "500-after"):
            # §5.8 step 4; cached even when it holds conflicts (G18). A 500-after models a throw after the
            # writes, so Mirubato would store nothing and a retry reprocesses.
            expires = _iso_ms(self.now_ms() + 24 * 3600 * 1000)
            self.idempotency[(idem_key, user_id)] = _Idem(request_hash, copy.deepcopy(response), expires)
        return _Reply(200, response)

    def _process_push(self, user_id: str, changes: dict[str, Any], device_id: str | None,
                      base_versions: dict[str, int] | None) -> dict[str, Any]:
        conflicts: list[dict[str, Any]] = []
        stats = {"entriesProcessed": 0, "duplicatesPrevented": 0, "goalsProcessed": 0,
                 "practicePlansProcessed": 0, "planOccurrencesProcessed": 0}
        versions: dict[str, int] = {}

        def stale(entity_type: str, item: dict[str, Any]) -> bool:
            """Extended conditional push: skip an item whose stored version is not the base version."""
            if base_versions is None:
                return False
            key = f"{entity_type}:{item['id']}"
            if key not in base_versions:
                return False
            current = self.version_of(user_id, entity_type, item["id"])
            if current == base_versions[key]:
                return False
            conflicts.append({"entityId": item["id"], "entityType": entity_type, "reason": "stale",
                              "remoteVersion": current})
            return True

        def written(row: Row | None) -> None:
            if row is not None:
                versions[f"{row.entity_type}:{row.entity_id}"] = row.version

        def copy_timestamps(item: dict[str, Any]) -> None:
            for snake, camel in (("created_at", "createdAt"), ("updated_at", "updatedAt")):
                if snake not in item and camel in item:
                    item[snake] = item[camel]

        def run(entity_type: str, items: list[dict[str, Any]], body: Callable[[dict[str, Any]], None]) -> None:
            for item in items:
                if stale(entity_type, item):
                    continue
                try:
                    body(item)
                except Exception as exc:  # §2.2: an exception is a per-item conflict
                    conflicts.append({"entityId": item.get("id"), "entityType": entity_type,
                                      "reason": str(exc) or "Unknown error"})

        def entry(e: dict[str, Any]) -> None:
            """§2.2 step 1 / §3.0.3: user_id, goalIds -> goal_ids ([] counts as truthy), snake-case
            timestamp copies (ISO strings stay strings here, file 02), deletion, lowercasing, score ids."""
            if not js_truthy(e.get("user_id")):
                e["user_id"] = user_id
            if js_truthy(e.get("goalIds")) and "goal_ids" not in e:
                e["goal_ids"] = e.pop("goalIds")
            copy_timestamps(e)
            if js_truthy(e.get("deletedAt")):
                written(self.soft_delete(user_id, "logbook_entry", e["id"], e["deletedAt"]))
                stats["entriesProcessed"] += 1
                return
            for key in ("instrument", "type", "mood"):
                if isinstance(e.get(key), str):
                    e[key] = e[key].lower()
            for piece in e.get("pieces") or []:
                piece["id"] = normalize_score_id(piece)
            result = self.upsert(user_id, "logbook_entry", e["id"], e, mirubato_checksum(e), device_id)
            if result.action == "duplicate_prevented":
                stats["duplicatesPrevented"] += 1
            written(result.row)
            stats["entriesProcessed"] += 1

        def plan(p: dict[str, Any]) -> None:
            """§2.2 step 2: user_id; deletions are not validated further; schedule checks (§4.2/§4.3)."""
            if not js_truthy(p.get("user_id")):
                p["user_id"] = user_id
            if js_truthy(p.get("deletedAt")):
                written(self.soft_delete(user_id, "practice_plan", p["id"], p["deletedAt"]))
                stats["practicePlansProcessed"] += 1
                return
            copy_timestamps(p)
            problem = schedule_problem(p)
            if problem:  # per-item conflict, not counted (file 09)
                conflicts.append({"entityId": p["id"], "entityType": "practice_plan", "reason": problem})
                return
            written(self.upsert(user_id, "practice_plan", p["id"], p, mirubato_checksum(p), device_id).row)
            stats["practicePlansProcessed"] += 1

        def occurrence(o: dict[str, Any]) -> None:
            """§2.2 step 3: user_id and plan_id = planId always (a client plan_id was stripped)."""
            if not js_truthy(o.get("user_id")):
                o["user_id"] = user_id
            o["plan_id"] = o["planId"]
            if js_truthy(o.get("deletedAt")):
                written(self.soft_delete(user_id, "plan_occurrence", o["id"], o["deletedAt"]))
                stats["planOccurrencesProcessed"] += 1
                return
            copy_timestamps(o)
            written(self.upsert(user_id, "plan_occurrence", o["id"], o, mirubato_checksum(o), device_id).row)
            stats["planOccurrencesProcessed"] += 1

        def template(t: dict[str, Any]) -> None:
            """§2.2 step 4: authorId = caller when falsy ("" included), no user_id; not counted in stats."""
            if not js_truthy(t.get("authorId")):
                t["authorId"] = user_id
            if js_truthy(t.get("deletedAt")):
                written(self.soft_delete(user_id, "plan_template", t["id"], t["deletedAt"]))
                return
            copy_timestamps(t)
            problem = schedule_problem(t)
            if problem:
                conflicts.append({"entityId": t["id"], "entityType": "plan_template", "reason": problem})
                return
            written(self.upsert(user_id, "plan_template", t["id"], t, mirubato_checksum(t), device_id).row)

        def goal(g: dict[str, Any]) -> None:
            """§2.2 step 5: stored as sent -- no user_id, no timestamps, no deletion path."""
            written(self.upsert(user_id, "goal", g["id"], g, mirubato_checksum(g), device_id).row)
            stats["goalsProcessed"] += 1

        run("logbook_entry", changes.get("entries", []), entry)
        run("practice_plan", changes.get("practicePlans", []), plan)
        run("plan_occurrence", changes.get("planOccurrences", []), occurrence)
        run("plan_template", changes.get("planTemplates", []), template)
        run("goal", changes.get("goals", []), goal)
        token = self._touch_metadata(user_id)
        response: dict[str, Any] = {"success": True, "syncToken": token, "conflicts": conflicts, "stats": stats}
        if self.extended:
            response["versions"] = versions
        return response

    def batch(self, user_id: str, body: Any) -> _Reply:
        """``POST /api/sync/batch`` (§2.3): checksum/version comparison, data stored verbatim (no
        validation, no user_id), conflicts ``{entityId, localVersion, remoteVersion}``, a ``downloaded``
        count of unmentioned live rows (all types) and no data; always a new stored token."""
        try:
            validated = BATCH_BODY(body)
        except Invalid:
            return _envelope(400, INVALID_BODY)
        live = {f"{r.entity_type}:{r.entity_id}": r for r in self.rows.values()
                if r.user_id == user_id and r.deleted_at is None}
        uploaded, conflicts = 0, []
        for ent in validated["entities"]:
            key = f"{ent['type']}:{ent['id']}"
            stored = live.pop(key, None)  # a second entity with the same key is "new" again
            if stored is None:
                self.upsert(user_id, ent["type"], ent["id"], ent["data"], ent["checksum"], None, version=1)
                uploaded += 1  # counted even when the checksum duplicate check drops it (§2.3)
            elif stored.checksum != ent["checksum"]:
                if ent["version"] >= stored.version:
                    self.upsert(user_id, ent["type"], ent["id"], ent["data"], ent["checksum"], None)
                    uploaded += 1
                else:
                    conflicts.append({"entityId": ent["id"], "localVersion": ent["version"],
                                      "remoteVersion": stored.version})
        token = self._touch_metadata(user_id)
        return _Reply(200, {"uploaded": uploaded, "downloaded": len(live), "conflicts": conflicts,
                            "newSyncToken": token})

    def status(self, user_id: str) -> _Reply:
        """``GET /api/sync/status`` (§2.4): SQLite-text ``lastSyncTime``, ``pendingChanges`` always 0,
        ``entityCount`` = live rows of every type. Extended mode adds ``server`` and ``capabilities``."""
        meta = self.metadata.get(user_id)
        out: dict[str, Any] = {
            "lastSyncTime": meta.last_sync_time if meta else None,
            "syncToken": meta.last_sync_token if meta else None,
            "pendingChanges": 0,
            "deviceCount": (meta.device_count if meta and meta.device_count else 1),
            "entityCount": sum(1 for r in self.rows.values() if r.user_id == user_id and r.deleted_at is None),
        }
        if self.extended:
            out["server"] = "practiceplan"
            out["capabilities"] = list(EXT_CAPABILITIES)
        return _Reply(200, out)

    def adopt(self, user_id: str, body: Any, device_id: str | None) -> _Reply:
        """``POST /api/templates/adopt`` (§2.5): cross-namespace lookup, full-schema parse, one plan and
        exactly one occurrence, no token change, bodies ``{error}``/``{error, details}`` on failure."""
        try:
            req = ADOPT_BODY(body)
        except Invalid:
            return _envelope(400, INVALID_BODY)
        template_id = req["templateId"]
        custom = req.get("customization") or {}
        cschedule = custom.get("schedule") or {}
        source = next((r for r in self.rows.values() if r.entity_type == "plan_template"
                       and r.entity_id == template_id and r.deleted_at is None), None)
        if source is None:
            return _Reply(404, {"error": "Template not found"})
        try:
            tpl = TEMPLATE_FULL(source.data)
        except Invalid as exc:
            return _Reply(500, {"error": "Failed to adopt template", "details": f"Template validation failed: {exc}"})
        now = self.now_iso()
        tschedule = tpl["schedule"]
        plan_id = self.new_id("plan_")
        plan = {
            "id": plan_id,
            "user_id": user_id,
            "title": custom.get("title") or f"{tpl['title']} (Copy)",
            "description": tpl.get("description", UNDEF),
            "type": tpl["type"],
            "focusAreas": _dedupe(tpl.get("focusAreas", []) + custom.get("focusAreas", [])),
            "techniques": tpl.get("techniques") or [],
            "pieceRefs": tpl.get("pieceRefs") or [],
            "schedule": {**tschedule, **cschedule},
            "visibility": "private",
            "status": "active",
            "ownerId": user_id,
            "templateVersion": tpl["templateVersion"],
            "sourceTemplateId": template_id,
            "tags": _dedupe(tpl.get("tags", []) + custom.get("tags", [])),
            "metadata": {**(tpl.get("metadata") or {}), "adoptedFrom": template_id, "adoptedAt": now},
            "createdAt": now,
            "updatedAt": now,
            "archivedAt": None,
            "deletedAt": None,
        }
        try:
            start_ms = _adopt_start_ms(cschedule.get("startDate") or tschedule.get("startDate"),
                                       cschedule.get("timeOfDay") or tschedule.get("timeOfDay"), self.now_ms())
        except ValueError as exc:
            return _Reply(500, {"error": "Failed to adopt template", "details": str(exc)})
        duration = cschedule.get("durationMinutes") or tschedule.get("durationMinutes") or 60
        occurrence = {
            "id": self.new_id("plan_occ_"),
            "planId": plan_id,
            "user_id": user_id,
            "scheduledStart": _iso_ms(start_ms),
            "scheduledEnd": _iso_ms(start_ms + duration * 60_000),
            "flexWindow": None if tschedule.get("flexibility") == "fixed" else "same-day",
            "recurrenceKey": tschedule.get("rule", UNDEF) if tschedule.get("kind") == "recurring" else None,
            "segments": self._adopt_segments(tpl),
            "targets": {},
            "reflectionPrompts": [],
            "status": "scheduled",
            "logEntryId": None,
            "checkIn": UNDEF,  # omitted from the response, stored as null (G8, file 11 pull)
            "notes": None,
            "reminderState": UNDEF,
            "metrics": {},
            "createdAt": now,
            "updatedAt": now,
            "deletedAt": None,
        }
        self.upsert(user_id, "practice_plan", plan_id, plan, mirubato_checksum(_drop_undefined(plan)), device_id)
        self.upsert(user_id, "plan_occurrence", occurrence["id"], occurrence,
                    mirubato_checksum(_drop_undefined(occurrence)), device_id)
        if self.adoption_count_writes:  # §7.3; off by default (never landed in the recording)
            counted = {**tpl, "adoptionCount": (tpl.get("adoptionCount") or 0) + 1, "updatedAt": now}
            self.upsert(tpl["authorId"], "plan_template", template_id, counted, mirubato_checksum(counted), None)
        return _Reply(200, {"success": True, "plan": plan, "occurrences": [occurrence]})

    def _adopt_segments(self, tpl: dict[str, Any]) -> list[dict[str, Any]]:
        """§2.5 step 5: segments of up to 5 live occurrences (any user!) of ``sourcePlanId``, most recently
        written first, else ``metadata.preview.segments``, else []; normalised (§3.4.2)."""
        source_plan = tpl.get("sourcePlanId")
        if source_plan:
            candidates = [r for r in self.rows.values() if r.entity_type == "plan_occurrence"
                          and r.deleted_at is None and isinstance(r.data, dict)
                          and r.data.get("planId") == source_plan]
            candidates.sort(key=lambda r: r.rowid)
            candidates.sort(key=lambda r: r.updated_at, reverse=True)
            for r in candidates[:5]:
                segs = r.data.get("segments")
                if isinstance(segs, list) and segs:
                    return _normalize_segments(segs)
        preview = (tpl.get("metadata") or {}).get("preview")
        if isinstance(preview, dict) and isinstance(preview.get("segments"), list):
            return _normalize_segments(preview["segments"])
        return []


# ---------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------


def _iso_ms(ms: int) -> str:
    dt = datetime.fromtimestamp(ms // 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def _dedupe(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def _pull_output(entity_type: str, data: Any) -> Any:
    """§2.1 step 3 output normalisation: entries lowercase string instrument/type/mood, goals instrument."""
    data = copy.deepcopy(data)
    if isinstance(data, dict):
        keys = ("instrument", "type", "mood") if entity_type == "logbook_entry" else \
            ("instrument",) if entity_type == "goal" else ()
        for k in keys:
            if isinstance(data.get(k), str):
                data[k] = data[k].lower()
    return data


def _adopt_start_ms(start_date: Any, time_of_day: Any, now_ms: int) -> int:
    """``new Date(startDate ?? now)`` then ``setHours(h, m, 0, 0)`` in the server zone, UTC (§2.5, G32).
    Raises ValueError("Invalid time value") where JS would produce an Invalid Date."""
    if start_date is None:
        ms = now_ms
    else:
        s = str(start_date)
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):  # date-only forms are UTC midnight in JS
                dt = datetime.fromisoformat(s).replace(tzinfo=UTC)
            else:
                dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
                dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
        except ValueError:
            raise ValueError("Invalid time value") from None
        ms = int(dt.timestamp() * 1000)
    if time_of_day:
        parts = str(time_of_day).split(":")
        try:
            h = int(parts[0])
            m = int(parts[1]) if len(parts) > 1 else 0
        except ValueError:
            raise ValueError("Invalid time value") from None
        day_start = ms - ms % 86_400_000
        ms = day_start + (h * 60 + m) * 60_000
    return ms


def _normalize_segments(segments: list[Any]) -> list[dict[str, Any]]:
    """Segment copy rules of §3.4.2 (ids dropped, labels defaulted, junk filtered)."""
    out = []
    for i, seg in enumerate(segments, start=1):
        if not isinstance(seg, dict):
            continue
        label = seg.get("label")
        label = label.strip() if isinstance(label, str) else ""
        s: dict[str, Any] = {"label": label or f"Segment {i}"}
        dm = seg.get("durationMinutes")
        if isinstance(dm, (int, float)) and not isinstance(dm, bool) and math.isfinite(dm) and dm > 0:
            s["durationMinutes"] = dm
        if isinstance(seg.get("pieceRefs"), list):
            refs = []
            for ref in seg["pieceRefs"]:
                if not isinstance(ref, dict):
                    continue
                r = {k: ref[k] for k in ("scoreId", "title") if isinstance(ref.get(k), str)}
                if "composer" in ref and (ref["composer"] is None or isinstance(ref["composer"], str)):
                    r["composer"] = ref["composer"]
                if r:
                    refs.append(r)
            s["pieceRefs"] = refs
        if isinstance(seg.get("techniques"), list):
            s["techniques"] = [t.strip() for t in seg["techniques"] if isinstance(t, str) and t.strip()]
        if isinstance(seg.get("instructions"), str) and seg["instructions"].strip():
            s["instructions"] = seg["instructions"].strip()
        if isinstance(seg.get("tempoTargets"), dict):
            s["tempoTargets"] = {k: v for k, v in seg["tempoTargets"].items()
                                 if v is None or isinstance(v, str)
                                 or (isinstance(v, (int, float)) and not isinstance(v, bool))}
        if isinstance(seg.get("metadata"), dict):
            s["metadata"] = copy.deepcopy(seg["metadata"])
        out.append(s)
    return out


def _hash_prep(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _hash_prep(v[k]) for k in sorted(v) if k not in ("timestamp", "requestId")}
    if isinstance(v, list):
        return [_hash_prep(x) for x in v]
    return "" if v is None else v


def _idempotency_hash(validated: dict[str, Any]) -> str:
    """§5.8 step 2 (and G21): sorted keys, every ``timestamp``/``requestId`` key dropped at any depth,
    ``null`` -> ``""``, over the *validated* body."""
    return hashlib.sha256(dump_json(_hash_prep(validated))).hexdigest()


# ---------------------------------------------------------------------------------------------------------
# ASGI: routing, auth, faults
# ---------------------------------------------------------------------------------------------------------

_AUTHED_ROUTES = {
    ("POST", "/api/sync/pull"): "pull",
    ("POST", "/api/sync/push"): "push",
    ("POST", "/api/sync/batch"): "batch",
    ("GET", "/api/sync/status"): "status",
    ("POST", "/api/templates/adopt"): "adopt",
}


def _reply_response(reply: _Reply) -> Response:
    return Response(dump_json(reply.body), status_code=reply.status, headers=reply.headers,
                    media_type="application/json")


def make_app(state: ServerState) -> Starlette:
    """The Starlette app for ``state``. One catch-all route dispatches on (method, exact path), so an
    unknown path and a known path with the wrong method both give the 404 envelope (§1.3)."""

    async def endpoint(request: Request) -> Response:
        route = _AUTHED_ROUTES.get((request.method, request.url.path))
        if route is None:
            return _reply_response(_envelope(404, "Not found"))
        raw = await request.body()
        fault: Fault | None = request.scope.get("mirubato.fault")
        with state.lock:
            auth = state.authenticate(request.headers.get("authorization"), request.cookies.get("auth-token"))
            if isinstance(auth, _Reply):
                return _reply_response(auth)
            user_id = auth
            if route == "status":
                return _reply_response(state.status(user_id))
            try:
                body = parse_json(raw) if raw else None
            except ValueError:
                if route == "pull":
                    body = None  # the pull body is ignored altogether (§2.1)
                else:
                    return _reply_response(_envelope(400, INVALID_BODY))
            device_id = request.headers.get("x-device-id")
            if route == "pull":
                reply = state.pull(user_id, body, fault)
            elif route == "push":
                reply = state.push(user_id, body, device_id, request.headers.get("x-idempotency-key"), fault)
            elif route == "batch":
                reply = state.batch(user_id, body)
            else:
                reply = state.adopt(user_id, body, device_id)
        return _reply_response(reply)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", endpoint, methods=methods)],
                     middleware=[Middleware(_FaultMiddleware, state=state)])


class _DroppedConnection(Exception):
    """Raised mid-body when no abort hook is available: uvicorn then closes the connection."""


class _FaultMiddleware:
    """Logs every request in ``state.requests`` and applies the next matching injected fault."""

    def __init__(self, app: Any, state: ServerState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        fault = self.state._take_fault(scope["method"], scope["path"], headers.get("x-idempotency-key"))
        if fault is None:
            await self.app(scope, receive, send)
            return
        scope = {**scope, "mirubato.fault": fault}
        if fault.kind == "empty-pull":
            await self.app(scope, receive, send)
            return
        if fault.kind == "500-before":
            status = fault.status or 500
            await _send_reply(send, _envelope(status, fault.error or "Internal server error"))
            return
        if fault.kind == "429":
            reply = _envelope(429, fault.error or "Too many requests")
            reply.headers["retry-after"] = str(int(math.ceil(fault.seconds)))
            await _send_reply(send, reply)
            return

        # the "-after" kinds and truncate: run the request to completion, then misbehave
        captured: list[dict[str, Any]] = []

        async def capture(message: dict[str, Any]) -> None:
            captured.append(message)

        await self.app(scope, receive, capture)
        start = next(m for m in captured if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in captured if m["type"] == "http.response.body")
        if fault.kind == "500-after":
            status = fault.status or 500
            await _send_reply(send, _envelope(status, fault.error or "Internal server error"))
        elif fault.kind == "truncate":
            cut = body[: len(body) // 2]
            hdrs = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            hdrs.append((b"content-length", str(len(cut)).encode()))
            await send({"type": "http.response.start", "status": start["status"], "headers": hdrs})
            await send({"type": "http.response.body", "body": cut, "more_body": False})
        elif fault.kind == "delay-after":
            await self._wait(fault.seconds, receive)
            await send(start)
            await send({"type": "http.response.body", "body": body, "more_body": False})
        elif fault.kind == "drop-after":
            abort = scope.get("extensions", {}).get("mirubato.abort")
            if abort is not None and abort():
                # wait for the transport's connection_lost so uvicorn sees a disconnect, not a silent app
                try:
                    await asyncio.wait_for(_until_disconnect(receive), timeout=2)
                except TimeoutError:
                    pass
                return
            # fallback (no hook, e.g. another ASGI server): headers out, then die mid-body
            await send(start)
            await send({"type": "http.response.body", "body": body[:1], "more_body": True})
            raise _DroppedConnection("drop-after fault")

    async def _wait(self, seconds: float, receive: Any) -> None:
        """Sleep ``seconds``, but stop early when the client disconnects or the state is reset."""
        generation = self.state.generation
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        waiter = asyncio.ensure_future(_until_disconnect(receive))
        try:
            while (remaining := deadline - loop.time()) > 0 and self.state.generation == generation:
                done, _ = await asyncio.wait({waiter}, timeout=min(0.05, remaining))
                if done:
                    return
        finally:
            if not waiter.done():
                waiter.cancel()


async def _until_disconnect(receive: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _send_reply(send: Any, reply: _Reply) -> None:
    body = dump_json(reply.body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in reply.headers.items()]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
