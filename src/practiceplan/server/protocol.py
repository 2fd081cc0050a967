"""The Mirubato diff format as the server sees it (../shared/reference/sync-protocol.md §2-§5): request
validation, the rewrites the server applies before storing, the row checksum (§5.4), the idempotency hash and the
pull output. Pure functions: no database, no HTTP.

Validation is the client's own (:mod:`practiceplan.sync.wire`): one implementation of Mirubato's schemas for both
sides. Unlike Mirubato, what is stored is the **raw item** with the validated, rewritten known fields laid over
it, so keys this server does not know (a newer client's, the Mirubato web client's ``scoreId``/``autoTracked``...)
survive a round trip (§10 G1); see docs/server.md "Unknown fields".
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from practiceplan.sync import wire

# push/pull array name -> entity_type, in the order a push is processed (§2.2)
ARRAYS = {
    "entries": "logbook_entry",
    "practicePlans": "practice_plan",
    "planOccurrences": "plan_occurrence",
    "planComments": "plan_comment",  # ours (docs/collaboration.md): after the plans it refers to
    "planTemplates": "plan_template",
    "goals": "goal",
}
# the Mirubato full snapshot (pull without ``since``) stays exactly Mirubato's: no comments
PULL_ARRAYS = ("entries", "goals", "practicePlans", "planOccurrences", "planTemplates")
ARRAY_OF_TYPE = {v: k for k, v in ARRAYS.items() if v != "plan_comment"}
# an incremental pull (ours) also carries comments
SINCE_PULL_ARRAYS = PULL_ARRAYS + ("planComments",)
SINCE_ARRAY_OF_TYPE = {v: k for k, v in ARRAYS.items()}
ENTITY_TYPES = tuple(ARRAYS.values())
BATCH_TYPES = tuple(t for t in ENTITY_TYPES if t != "plan_comment") + ("user_preferences",)
CAPABILITIES = ["incremental-pull", "tombstones", "conditional-push", "template-gallery", "sharing", "live"]
INVALID_BODY = "Invalid request body"

# §3.2: goals are not synced by our client, so wire has no schema for them; built from wire's own field kinds
GOAL = wire.Schema({
    "id": wire.string(), "user_id": wire.string(), "title": wire.string(1),
    "description": wire.string(nullable=True),
    "type": wire.enum("practice_time", "accuracy", "repertoire", "custom"),
    "target_value": wire.integer(nullable=True), "current_value": wire.integer(),
    "target_date": wire.string(nullable=True), "status": wire.enum("active", "completed", "abandoned"),
    "created_at": wire.string(), "updated_at": wire.string(),
}, required=("id",))


def _iso_check(v: Any) -> str | None:
    return None if isinstance(v, str) and parse_instant(v) is not None else "must be an ISO date-time"


def _text_check(v: Any) -> str | None:
    if not isinstance(v, str) or not 1 <= len(v) <= COMMENT_MAX:
        return f"must be a string of 1 to {COMMENT_MAX} characters"
    return None


COMMENT_MAX = 4000
# a comment on a shared plan or one of its sessions (docs/collaboration.md); ``author`` is the server's
PLAN_COMMENT = wire.Schema({
    "id": wire.string(1), "planId": wire.string(1), "occurrenceId": wire.string(nullable=True),
    "occurrenceOwner": wire.string(nullable=True), "text": wire.Field(_text_check), "author": wire.string(),
    "createdAt": wire.Field(_iso_check), "updatedAt": wire.Field(_iso_check),
    "deletedAt": wire.string(nullable=True),
}, required=("id", "planId"))
COMMENT_REQUIRED = ("text", "createdAt", "updatedAt")  # of every comment but a deletion
SCHEMAS: dict[str, wire.Schema] = {**wire.SCHEMAS, "goal": GOAL, "plan_comment": PLAN_COMMENT}

# fields only the server sets (a client's value is ignored; §10 G26-G28, issue 13)
APPROVAL_KEYS = ("approved", "approvedAt", "approvedBy", "approvalStatus")


class Invalid(Exception):
    """A request the server rejects whole with ``400 Invalid request body`` (§4.1). ``detail`` names the item
    and field (sent in ``details``, an addition Mirubato clients ignore)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


# ------------------------------------------------------------------------------------------------ JSON

def _parse_float(s: str) -> float | int:
    f = float(s)  # JSON.parse has one number type: 5.0 is the integer 5
    if math.isfinite(f) and f.is_integer() and abs(f) < 2**53:
        return int(f)
    return f


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def parse_json(raw: bytes) -> Any:
    """``JSON.parse`` of a request body; ValueError when it is not JSON."""
    return json.loads(raw.decode("utf-8"), parse_float=_parse_float, parse_constant=_reject_constant)


def dump_json(value: Any) -> bytes:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii")


# ------------------------------------------------------------------------------------------------ checksum (§5.4)

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
    """Sorted-key (UTF-16 code unit order) ``JSON.stringify`` of the row checksum (§5.4)."""
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
        keys = sorted(v, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + canonical_json(v[k]) for k in keys) + "}"
    raise TypeError(type(v))


def checksum(v: Any) -> str:
    return hashlib.sha256(canonical_json(v).encode("utf-8")).hexdigest()


def request_hash(route: str, body: Any) -> str:
    """The idempotency hash: the whole parsed body (unknown keys, ``timestamp`` and nulls included: §10 G21),
    canonical, with the route, so a key reused on another endpoint or with any other body is a 422."""
    return hashlib.sha256((route + "\n" + canonical_json(body)).encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------------------------ truthiness, time

def truthy(v: Any) -> bool:
    """JavaScript truthiness (``[]``/``{}`` truthy; ``0``, ``""``, null falsy)."""
    if v is None or v is False:
        return False
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v != 0 and not (isinstance(v, float) and math.isnan(v))
    if isinstance(v, str):
        return v != ""
    return True


def iso_ms(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond // 1000:03d}Z"


def sqlite_text(moment: datetime) -> str:
    """SQLite ``datetime('now')`` (``lastSyncTime``, §2.4)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_instant(value: Any) -> datetime | None:
    """An ISO instant (ISO-Z or with an offset) or epoch milliseconds, as an aware datetime; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        try:
            return datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _epoch_ms(value: str) -> int:
    moment = datetime.fromisoformat(value[:-1] + "+00:00")
    return int(moment.timestamp()) * 1000 + moment.microsecond // 1000


# ------------------------------------------------------------------------------------------------ validation

def _merge_unknown(raw: Any, projected: Any) -> Any:
    """``projected`` (the validated known fields, in schema order) with every key of ``raw`` the schema dropped
    put back, at every level (lists element by element)."""
    if isinstance(raw, dict) and isinstance(projected, dict):
        out = {k: (_merge_unknown(raw[k], v) if k in raw else v) for k, v in projected.items()}
        for k, v in raw.items():
            if k not in out:
                out[k] = copy.deepcopy(v)
        return out
    if isinstance(raw, list) and isinstance(projected, list) and len(raw) == len(projected):
        return [_merge_unknown(r, p) for r, p in zip(raw, projected)]
    return projected


def validate_item(entity_type: str, item: Any, where: str) -> dict[str, Any]:
    """One push item checked against the schema (Mirubato's all-or-nothing rules, §4.1); returns the item to
    store before the server's rewrites: known fields validated, unknown keys kept."""
    if not isinstance(item, dict):
        raise Invalid(f"{where}: must be an object")
    schema = SCHEMAS[entity_type]
    problems = schema.problems(item)
    if not isinstance(item.get("id"), str) or not item["id"]:
        problems.insert(0, "id: must be a non-empty string")
    if entity_type == "logbook_entry":
        for key in ("timestamp", "created_at", "updated_at", "createdAt", "updatedAt"):
            value = item.get(key)
            if isinstance(value, str) and parse_instant(value) is None:
                problems.append(f"{key}: not a real date")
    if entity_type == "plan_comment" and not truthy(item.get("deletedAt")):
        problems.extend(f"{key}: is required" for key in COMMENT_REQUIRED if key not in item)
    if problems:
        raise Invalid(f"{where} ({item.get('id')!r}): {problems[0]}")
    projected = schema.project(item)
    if entity_type == "logbook_entry":  # §3.0.3: ISO-Z entry times are stored as epoch milliseconds
        for key in ("timestamp", "created_at", "updated_at"):
            if isinstance(projected.get(key), str):
                projected[key] = _epoch_ms(projected[key])
    merged = _merge_unknown(item, projected)
    if entity_type == "logbook_entry":  # the raw ISO string must not come back through the merge
        for key in ("timestamp", "created_at", "updated_at"):
            if key in projected:
                merged[key] = projected[key]
    return merged


def validate_push(body: Any, max_items: int) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int] | None]:
    """``{"changes": {...}, "lastSyncToken"?, "baseVersions"?}`` -> (items per entity type, base versions).
    Raises :class:`Invalid` (400) or :class:`TooMany` (413)."""
    if not isinstance(body, dict) or not isinstance(body.get("changes"), dict):
        raise Invalid("body: needs a 'changes' object")
    if "lastSyncToken" in body and not isinstance(body["lastSyncToken"], str):
        raise Invalid("lastSyncToken: must be a string")
    changes = body["changes"]
    count = sum(len(v) for k, v in changes.items() if k in ARRAYS and isinstance(v, list))
    if count > max_items:
        raise TooMany(count, max_items)
    out: dict[str, list[dict[str, Any]]] = {}
    for array, entity_type in ARRAYS.items():
        if array not in changes:
            continue
        items = changes[array]
        if not isinstance(items, list):
            raise Invalid(f"changes.{array}: must be an array")
        out[entity_type] = [validate_item(entity_type, item, f"changes.{array}[{i}]") for i, item in enumerate(items)]
    base: dict[str, int] | None = None
    if "baseVersions" in body:
        bv = body["baseVersions"]
        if not isinstance(bv, dict) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                               for v in bv.values()):
            raise Invalid("baseVersions: must map 'entity_type:id' to whole numbers >= 0")
        base = dict(bv)
    return out, base


class TooMany(Exception):
    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"{count} items in one request; the limit is {limit}")
        self.count, self.limit = count, limit


def validate_batch(body: Any, max_items: int) -> list[dict[str, Any]]:
    """§2.3: ``{"entities": [{id, type, data, checksum, version>=1}], "syncToken"?}``."""
    if not isinstance(body, dict) or not isinstance(body.get("entities"), list):
        raise Invalid("body: needs an 'entities' array")
    entities = body["entities"]
    if len(entities) > max_items:
        raise TooMany(len(entities), max_items)
    if "syncToken" in body and not isinstance(body["syncToken"], str):
        raise Invalid("syncToken: must be a string")
    out = []
    for i, ent in enumerate(entities):
        ok = (isinstance(ent, dict) and isinstance(ent.get("id"), str) and ent.get("type") in BATCH_TYPES
              and "data" in ent and isinstance(ent.get("checksum"), str)
              and isinstance(ent.get("version"), int) and not isinstance(ent.get("version"), bool)
              and ent["version"] >= 1)
        if not ok:
            raise Invalid(f"entities[{i}]: needs id, type, data, checksum and version >= 1")
        out.append({k: ent[k] for k in ("id", "type", "data", "checksum", "version")})
    return out


_ADOPT_SCHEDULE = wire.Schema({"startDate": wire.string(), "endDate": wire.string(), "timeOfDay": wire.string(),
                               "durationMinutes": wire.integer(1)})
_ADOPT_CUSTOM = wire.Schema({"title": wire.string(), "focusAreas": wire.STRINGS, "tags": wire.STRINGS,
                             "schedule": _ADOPT_SCHEDULE})
ADOPT_BODY = wire.Schema({"templateId": wire.string(), "customization": _ADOPT_CUSTOM}, required=("templateId",))


def validate_adopt(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Invalid("body: must be an object")
    problems = ADOPT_BODY.problems(body)
    if problems:
        raise Invalid(problems[0])
    return ADOPT_BODY.project(body)


# ------------------------------------------------------------------------------------------------ rewrites

def schedule_problem(item: dict[str, Any]) -> str | None:
    """§4.2/§4.3 per-item checks of plans and templates (a conflict reason, not a 400)."""
    schedule = item.get("schedule")
    if not isinstance(schedule, dict) or schedule.get("kind") != "recurring":
        return None
    if not wire.rule_is_valid(schedule.get("rule")):
        return "Invalid recurrence rule"
    metadata = schedule.get("metadata")
    rec = metadata.get("recurrence") if isinstance(metadata, dict) else None
    if truthy(rec) and not (isinstance(rec, dict) and isinstance(rec.get("frequency"), str)
                            and rec["frequency"].upper() in wire.FREQS):
        return "Invalid recurrence metadata"
    return None


def copy_timestamps(item: dict[str, Any]) -> None:
    for snake, camel in (("created_at", "createdAt"), ("updated_at", "updatedAt")):
        if snake not in item and camel in item:
            item[snake] = item[camel]


def server_timestamps(item: dict[str, Any]) -> None:
    """Plans, occurrences and templates: ``created_at``/``updated_at`` are the server's copies of
    ``createdAt``/``updatedAt`` (not schema fields), so a client's own value is replaced (or dropped when there is
    nothing to copy). Logbook entries are different: their snake-case times are schema fields a client sends."""
    for snake, camel in (("created_at", "createdAt"), ("updated_at", "updatedAt")):
        if camel in item:
            item[snake] = item[camel]
        else:
            item.pop(snake, None)


def own_fields(entity_type: str, item: dict[str, Any], user_name: str) -> None:
    """Batch (which otherwise stores ``data`` verbatim, as Mirubato does): every server-owned field a client sent
    is replaced by the server's value or dropped (none is added where the client sent none)."""
    if "user_id" in item and entity_type in ("logbook_entry", "practice_plan", "plan_occurrence", "goal"):
        item["user_id"] = user_name
    if entity_type == "practice_plan" and "ownerId" in item:
        item["ownerId"] = user_name
    if entity_type == "plan_occurrence" and "plan_id" in item:
        if "planId" in item:
            item["plan_id"] = item["planId"]
        else:
            del item["plan_id"]
    if entity_type == "plan_template":
        item["authorId"] = user_name
        item.pop("adoptionCount", None)
        for key in APPROVAL_KEYS:
            item.pop(key, None)
    if entity_type in ("practice_plan", "plan_occurrence", "plan_template"):
        for snake, camel in (("created_at", "createdAt"), ("updated_at", "updatedAt")):
            if snake in item:
                if camel in item:
                    item[snake] = item[camel]
                else:
                    del item[snake]


def rewrite(entity_type: str, item: dict[str, Any], user_name: str) -> None:
    """The server's additions and rewrites of §2.2 (in place), with every server-owned field set by the server
    whatever the client sent (``user_id``, ``authorId``, ``ownerId``; ``adoptionCount`` and approval keys are
    dropped: they are derived on the way out)."""
    if entity_type == "logbook_entry":
        item["user_id"] = user_name
        if truthy(item.get("goalIds")) and "goal_ids" not in item:
            item["goal_ids"] = item.pop("goalIds")
        copy_timestamps(item)
        for key in ("instrument", "type", "mood"):
            if isinstance(item.get(key), str):
                item[key] = item[key].lower()
        for piece in item.get("pieces") or []:
            if isinstance(piece, dict):
                piece["id"] = wire.score_id(piece)
    elif entity_type == "practice_plan":
        item["user_id"] = user_name
        if "ownerId" in item:
            item["ownerId"] = user_name
        server_timestamps(item)
    elif entity_type == "plan_occurrence":
        item["user_id"] = user_name
        item["plan_id"] = item["planId"]
        server_timestamps(item)
    elif entity_type == "plan_template":
        item["authorId"] = user_name
        item.pop("adoptionCount", None)
        for key in APPROVAL_KEYS:
            item.pop(key, None)
        server_timestamps(item)
    elif entity_type == "goal" and "user_id" in item:
        item["user_id"] = user_name  # otherwise stored as sent (§2.2 step 5)


SERVER_KEYS = ("user_id", "plan_id", "created_at", "updated_at", "goal_ids", "authorId", "adoptionCount",
               "publishedAt", *APPROVAL_KEYS)


def carry_unknown(entity_type: str, stored: dict[str, Any], item: dict[str, Any]) -> None:
    """An older client omits the fields it does not know: top-level keys outside the schema that the stored
    snapshot has and ``item`` lacks are carried over (send a key as null to clear it)."""
    known = SCHEMAS[entity_type].fields
    for key, value in stored.items():
        if key not in item and key not in known and key not in SERVER_KEYS and key != "deletedAt":
            item[key] = copy.deepcopy(value)


def item_time(item: dict[str, Any]) -> datetime | None:
    """When this snapshot was written by its client: ``updatedAt`` (a deletion: the later of it and
    ``deletedAt``); None when it carries no readable time (no conditional check is then possible)."""
    times = [parse_instant(item.get("updatedAt"))]
    if truthy(item.get("deletedAt")):
        times.append(parse_instant(item.get("deletedAt")))
    found = [t for t in times if t is not None]
    return max(found) if found else None


def pull_output(entity_type: str, data: Any, deleted_at: str | None, adoption_count: int | None) -> Any:
    """A stored row as pull answers it (§2.1 step 3): entry enums lowercased; a tombstone carries ``deletedAt``;
    a template carries the server's ``adoptionCount``."""
    data = copy.deepcopy(data)
    if isinstance(data, dict):
        keys = ("instrument", "type", "mood") if entity_type == "logbook_entry" else \
            ("instrument",) if entity_type == "goal" else ()
        for k in keys:
            if isinstance(data.get(k), str):
                data[k] = data[k].lower()
        if deleted_at is not None:
            data["deletedAt"] = deleted_at
        if entity_type == "plan_template" and adoption_count is not None:
            data["adoptionCount"] = adoption_count
    return data


# ------------------------------------------------------------------------------------------------ adoption (§2.5)

def dedupe(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def adopt_start(start_date: Any, time_of_day: Any, now: datetime) -> datetime:
    """The first session: ``startDate`` (else now) at ``timeOfDay`` in UTC (§2.5). ValueError when unreadable."""
    if start_date is None:
        moment = now
    else:
        s = str(start_date)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
            moment = datetime.fromisoformat(s).replace(tzinfo=UTC)
        else:
            parsed = parse_instant(s)
            if parsed is None:
                raise ValueError("Invalid time value")
            moment = parsed
    if time_of_day:
        parts = str(time_of_day).split(":")
        try:
            h = int(parts[0])
            m = int(parts[1]) if len(parts) > 1 else 0
        except ValueError:
            raise ValueError("Invalid time value") from None
        if not (0 <= h < 24 and 0 <= m < 60):
            raise ValueError("Invalid time value")
        moment = moment.astimezone(UTC).replace(hour=h, minute=m, second=0, microsecond=0)
    return moment


def normalize_segments(segments: list[Any]) -> list[dict[str, Any]]:
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
