"""The published JSON Schema of template files (``docs/template.schema.json``), built from the same
constants as the validator so the two cannot drift (a test compares the file with :func:`build_schema`).

The schema describes the structure (fields, types, enums, lengths, counts). Some rules need code and are
checked only by :func:`practiceplan.formats.templates.format.parse_and_validate`: the RRULE grammar and its wire
form, schedule consistency (end after start, fixed needs a time), parameter targets and placeholders,
duplicate keys, nesting depth, NaN/Infinity and lone surrogates.

Regenerate the file with ``python -m practiceplan.formats.templates.schema > docs/template.schema.json``.
"""

from __future__ import annotations

import json
from typing import Any

from practiceplan.domain import templates as dt
from practiceplan.formats.templates import format as tf

SCHEMA_ID = "urn:practiceplan:template-file:1"
SINGLE_LINE = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200b\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069\\ufeff]*$"


def _text(max_len: int, *, min_len: int = 1, nullable: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "minLength": min_len, "maxLength": max_len, "pattern": SINGLE_LINE}
    if nullable:
        schema = {"type": ["string", "null"], "minLength": min_len, "maxLength": max_len, "pattern": SINGLE_LINE}
    return schema


def _strings(max_items: int = tf.MAX_LIST, max_len: int = tf.MAX_SHORT) -> dict[str, Any]:
    return {"type": "array", "maxItems": max_items, "items": _text(max_len)}


def _minutes() -> dict[str, Any]:
    return {"type": "integer", "minimum": 1, "maximum": tf.MAX_MINUTES}


def build_schema() -> dict[str, Any]:
    # Long by design: one declarative JSON Schema literal, read top to bottom like docs/template.schema.json.
    instant = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,6})?Z$"}
    day = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
    piece_ref = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "scoreId": _text(tf.MAX_TITLE),
            "title": _text(tf.MAX_TITLE),
            "composer": _text(tf.MAX_TITLE, nullable=True),
        },
        "anyOf": [{"required": ["title"]}, {"required": ["scoreId"]}],
    }
    piece_refs = {"type": "array", "maxItems": tf.MAX_LIST, "items": {"$ref": "#/$defs/pieceRef"}}
    plain = {"type": ["number", "string", "null"]}
    segment = {
        "type": "object",
        "additionalProperties": False,
        "required": ["label"],
        "properties": {
            "id": _text(tf.MAX_ID),
            "label": _text(tf.MAX_LABEL),
            "durationMinutes": _minutes(),
            "pieceRefs": piece_refs,
            "techniques": _strings(),
            "instructions": _text(tf.MAX_INSTRUCTIONS, min_len=0),
            "tempoTargets": {"type": "object", "additionalProperties": plain},
            "metadata": {"type": "object"},
        },
    }
    schedule = {
        "type": "object",
        "additionalProperties": False,
        "required": ["kind"],
        "properties": {
            "kind": {"enum": list(tf.SCHEDULE_KINDS)},
            "rule": {
                "type": "string",
                "description": "Wire form a Mirubato server accepts: FREQ=DAILY|WEEKLY|MONTHLY;INTERVAL=n[;BYDAY=..][;COUNT=n][;UNTIL=YYYYMMDDT235959Z]. "
                "The exact RFC 5545 rule goes in metadata.rrule when it says more.",
                "pattern": "^FREQ=(DAILY|WEEKLY|MONTHLY);INTERVAL=[1-9][0-9]*(;BYDAY=(SU|MO|TU|WE|TH|FR|SA)(,(SU|MO|TU|WE|TH|FR|SA))*)?(;COUNT=[1-9][0-9]*)?(;UNTIL=[0-9]{8}T235959Z)?$",
            },
            "durationMinutes": _minutes(),
            "timeOfDay": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"},
            "flexibility": {"enum": list(tf.FLEXIBILITIES)},
            "startDate": day,
            "endDate": {"anyOf": [day, {"type": "null"}]},
            "target": instant,
            "metadata": {
                "type": "object",
                "properties": {
                    "timezone": {"type": "string", "maxLength": 64, "description": "IANA zone of the author (informational: adoption uses the learner's zone)"},
                    "rrule": {"type": "string", "description": "the exact RFC 5545 RRULE value (no DTSTART)"},
                    "recurrence": {
                        "type": "object",
                        "required": ["frequency"],
                        "properties": {"frequency": {"type": "string", "pattern": "^([Dd][Aa][Ii][Ll][Yy]|[Ww][Ee][Ee][Kk][Ll][Yy]|[Mm][Oo][Nn][Tt][Hh][Ll][Yy])$"}},
                    },
                    "flex": {"enum": list(tf.FLEX_KINDS)},
                    "segmentsCount": {"type": "integer", "minimum": 0, "maximum": tf.MAX_SEGMENTS},
                    "exdates": {"type": "array", "maxItems": 366, "items": day},
                },
            },
        },
    }
    target_value = {
        "anyOf": [
            {"type": ["number", "null"]},
            _text(tf.MAX_LABEL, min_len=0),
            {"type": "array", "maxItems": tf.MAX_LIST, "items": {"type": "number"}},
        ]
    }
    metadata = {
        "type": "object",
        "description": "Free-form (a Mirubato server keeps it); the keys below are practiceplan's.",
        "properties": {
            "segments": {"type": "array", "maxItems": tf.MAX_SEGMENTS, "items": {"$ref": "#/$defs/segment"}},
            "reflectionPrompts": {
                "type": "array",
                "maxItems": tf.HARD_MAX_PROMPTS,
                "description": f"At most {tf.DEFAULT_MAX_PROMPTS} unless the importer raises the limit (--max-prompts, up to {tf.HARD_MAX_PROMPTS}).",
                "items": _text(tf.MAX_PROMPT),
            },
            "targets": {
                "type": "object",
                "maxProperties": tf.MAX_TARGETS,
                "propertyNames": {"pattern": "^[A-Za-z][A-Za-z0-9_.-]{0,63}$"},
                "additionalProperties": target_value,
            },
            "instrument": _text(60),
            "level": _text(40),
            "preview": {"type": "object", "description": "the Mirubato web client's preview (segments, pieces, workload)"},
        },
        "not": {"anyOf": [{"required": ["parameters"]}, {"required": ["provenance"]}]},
    }
    template = {
        "type": "object",
        "additionalProperties": False,
        "required": list(tf.ENTITY_REQUIRED),
        "description": "A plan_template entity in the wire format of the sync protocol (§3.5).",
        "properties": {
            "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,100}$"},
            "authorId": _text(tf.MAX_ID, min_len=0),
            "sourcePlanId": _text(tf.MAX_ID),
            "title": _text(tf.MAX_TITLE),
            "description": _text(tf.MAX_DESCRIPTION, min_len=0, nullable=True),
            "type": {"enum": list(tf.TEMPLATE_TYPES)},
            "focusAreas": _strings(),
            "techniques": _strings(),
            "pieceRefs": piece_refs,
            "schedule": {"$ref": "#/$defs/schedule"},
            "tags": _strings(),
            "templateVersion": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
            "visibility": {"enum": list(tf.TEMPLATE_VISIBILITIES)},
            "adoptionCount": {"type": "integer", "minimum": 0, "maximum": tf.MAX_SAFE_INT},
            "metadata": {"$ref": "#/$defs/metadata"},
            "publishedAt": instant,
            "createdAt": instant,
            "updatedAt": instant,
            "deletedAt": {"type": "null"},
        },
    }
    targets_pattern = (
        "^(" + "|".join(t.replace(".", "\\.") for t in (*dt.TEXT_TARGETS, *dt.VALUE_TARGETS))
        + "|segments\\[(0|[1-9][0-9]?)\\]\\.pieceRefs|targets\\.[A-Za-z][A-Za-z0-9_.-]{0,63})$"
    )
    parameter = {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "type", "targets"],
        "properties": {
            "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,31}$"},
            "type": {"enum": list(dt.PARAM_TYPES)},
            "targets": {
                "type": "array",
                "minItems": 1,
                "maxItems": 10,
                "uniqueItems": True,
                "items": {"type": "string", "pattern": targets_pattern},
            },
            "label": _text(tf.MAX_SHORT),
            "description": _text(500),
            "required": {"type": "boolean"},
            "default": {},
            "choices": {"type": "array", "minItems": 1, "maxItems": tf.MAX_LIST, "uniqueItems": True, "items": _text(tf.MAX_SHORT)},
            "min": {"type": "integer"},
            "max": {"type": "integer"},
        },
        "allOf": [
            {"if": {"properties": {"type": {"const": "choice"}}}, "then": {"required": ["choices"]}},
        ],
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "practiceplan template file",
        "description": "A tutor's practice plan template (docs/template-format.md). Files are at most "
        f"{tf.MAX_FILE_BYTES >> 20} MiB, nested at most {tf.MAX_DEPTH} levels, and every string is one line "
        "without control or bidirectional-override characters.",
        "type": "object",
        "additionalProperties": False,
        "required": ["format", "formatVersion", "template"],
        "properties": {
            "format": {"const": tf.FORMAT},
            "formatVersion": {"const": tf.FORMAT_VERSION},
            "template": {"$ref": "#/$defs/template"},
            "parameters": {"type": "array", "maxItems": tf.MAX_PARAMETERS, "items": {"$ref": "#/$defs/parameter"}},
            "signature": {
                "type": "object",
                "additionalProperties": False,
                "required": ["algorithm", "publicKey", "value"],
                "description": "Ed25519 over the canonical JSON (sorted keys, no whitespace, UTF-8) of the document without this member.",
                "properties": {
                    "algorithm": {"const": "ed25519"},
                    "publicKey": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "value": {"type": "string", "pattern": "^[0-9a-f]{128}$"},
                },
            },
        },
        "$defs": {
            "template": template,
            "schedule": schedule,
            "metadata": metadata,
            "segment": segment,
            "pieceRef": piece_ref,
            "parameter": parameter,
        },
    }


def schema_text() -> str:
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.stdout.write(schema_text())
