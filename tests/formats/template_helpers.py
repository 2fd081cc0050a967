"""Builders, strategies and database helpers for the template tests."""

from __future__ import annotations

import copy
import json
import sqlite3
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from practiceplan.domain import recurrence as rec
from practiceplan.formats.templates import format as tf

NOW = "2026-03-02T09:00:00.000Z"


def minimal_doc(**template: Any) -> dict[str, Any]:
    entity = {
        "id": "template_minimal01",
        "title": "Scales",
        "templateVersion": 1,
        "schedule": {"kind": "recurring", "rule": "FREQ=DAILY;INTERVAL=1", "startDate": "2026-03-02", "timeOfDay": "18:00"},
    }
    entity.update(template)
    return {"format": tf.FORMAT, "formatVersion": 1, "template": entity}


def full_doc(template_id: str = "template_fulltemplate01") -> dict[str, Any]:
    """A realistic template: weekly, segments, prompts, targets, pieces, parameters of several kinds."""
    return {
        "format": "practiceplan.template",
        "formatVersion": 1,
        "parameters": [
            {"name": "piece", "type": "pieces", "label": "Your piece", "targets": ["pieceRefs", "segments[1].pieceRefs", "title"]},
            {"name": "days", "type": "weekdays", "default": ["MO", "WE", "FR"], "targets": ["schedule.weekdays"]},
            {"name": "at", "type": "time", "default": "18:00", "targets": ["schedule.timeOfDay"]},
            {"name": "length", "type": "minutes", "default": 30, "min": 10, "max": 120, "targets": ["durations"]},
            {"name": "focus", "type": "choice", "choices": ["tone", "rhythm"], "default": "tone",
             "targets": ["segments.instructions"]},
            {"name": "tempo", "type": "integer", "default": 80, "min": 40, "max": 200, "targets": ["targets.tempo"]},
        ],
        "template": {
            "id": template_id,
            "authorId": "",
            "title": "Learn {{piece}}",
            "description": "Three short sessions a week",
            "type": "course",
            "focusAreas": ["tone"],
            "techniques": ["scales"],
            "pieceRefs": [],
            "schedule": {
                "kind": "recurring",
                "rule": "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,WE,FR",
                "durationMinutes": 30,
                "timeOfDay": "18:00",
                "flexibility": "fixed",
                "startDate": "2026-03-02",
                "metadata": {"timezone": "America/New_York", "segmentsCount": 2,
                             "recurrence": {"frequency": "WEEKLY", "interval": 1, "weekdays": ["MO", "WE", "FR"]}},
            },
            "tags": ["instrument:piano"],
            "templateVersion": 1,
            "visibility": "public",
            "metadata": {
                "instrument": "piano",
                "level": "beginner",
                "segments": [
                    {"label": "Warm-up", "durationMinutes": 10, "instructions": "focus on {{focus}}"},
                    {"label": "Piece", "durationMinutes": 20, "pieceRefs": []},
                ],
                "reflectionPrompts": ["What went well?", "What will you change next time?"],
                "targets": {"tempo": 80},
            },
            "publishedAt": NOW,
            "createdAt": NOW,
            "updatedAt": NOW,
        },
    }


def encoded(doc: dict[str, Any]) -> bytes:
    return tf.encode(doc)


def write(path: Path, doc: dict[str, Any] | bytes) -> Path:
    path.write_bytes(doc if isinstance(doc, bytes) else encoded(doc))
    return path


def logical_dump(db: Path) -> str:
    """The database's content as SQL text (what must not change after a refused command)."""
    conn = sqlite3.connect(db)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


def events(db: Path) -> list[tuple[str, dict[str, Any]]]:
    conn = sqlite3.connect(db)
    try:
        return [(r[0], json.loads(r[1])) for r in conn.execute("SELECT name, data FROM events ORDER BY id")]
    finally:
        conn.close()


def with_path(doc: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    result = copy.deepcopy(doc)
    node = result
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return result


def without(doc: dict[str, Any], path: list[Any]) -> dict[str, Any]:
    result = copy.deepcopy(doc)
    node = result
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return result


# --------------------------------------------------------------------------- hypothesis: valid templates

_TEXT = st.characters(
    codec="utf-8",
    exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp", "Co", "Cn"),
    exclude_characters="{}\u00a0",
)


def line(max_size: int = 40) -> st.SearchStrategy[str]:
    return st.text(_TEXT, min_size=1, max_size=max_size).map(lambda s: " ".join(s.split())).filter(bool)


_RULES = [
    ("FREQ=DAILY;INTERVAL=1", None),
    ("FREQ=DAILY;INTERVAL=2", None),
    ("FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,WE,FR", None),
    ("FREQ=WEEKLY;INTERVAL=1;BYDAY=TU,TH;COUNT=8", None),
    ("FREQ=MONTHLY;INTERVAL=1", "FREQ=MONTHLY;BYDAY=2TU"),
    ("FREQ=MONTHLY;INTERVAL=12", "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=15"),
]


@st.composite
def schedules(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["single", "recurring"]))
    schedule: dict[str, Any] = {"kind": kind, "startDate": draw(st.sampled_from(["2026-03-02", "2026-06-15", "2027-01-01"]))}
    if kind == "recurring":
        wire, exact = draw(st.sampled_from(_RULES))
        schedule["rule"] = wire
        if exact:
            schedule["metadata"] = {"rrule": exact}
    if draw(st.booleans()):
        schedule["timeOfDay"] = f"{draw(st.integers(0, 23)):02d}:{draw(st.sampled_from([0, 15, 30, 45])):02d}"
        schedule["flexibility"] = draw(st.sampled_from(["fixed", "same-day", "anytime"]))
    if draw(st.booleans()):
        schedule["durationMinutes"] = draw(st.integers(1, 240))
    if draw(st.booleans()):
        schedule.setdefault("metadata", {})["timezone"] = draw(st.sampled_from(["Europe/Berlin", "America/New_York", "Asia/Tokyo"]))
    return schedule


numbers = st.one_of(
    st.integers(-(2**53) + 1, 2**53 - 1),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: len(repr(f)) <= 30),
)


@st.composite
def template_docs(draw: Any) -> dict[str, Any]:
    """Valid template documents (with or without parameters)."""
    template: dict[str, Any] = {
        "id": "template_" + draw(st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=6, max_size=20)),
        "title": draw(line(80)),
        "templateVersion": draw(st.integers(1, 50)),
        "schedule": draw(schedules()),
    }
    for key, strategy in (
        ("description", st.one_of(st.none(), line(200))),
        ("type", st.sampled_from(["bootcamp", "course", "custom"])),
        ("visibility", st.sampled_from(["public", "private"])),
        ("focusAreas", st.lists(line(20), max_size=4)),
        ("techniques", st.lists(line(20), max_size=4)),
        ("tags", st.lists(line(20), max_size=4)),
        ("pieceRefs", st.lists(st.fixed_dictionaries({"title": line(40)}, optional={"composer": st.one_of(st.none(), line(30))}), max_size=3)),
        ("adoptionCount", st.integers(0, 10**6)),
        ("publishedAt", st.just(NOW)),
        ("authorId", st.just("")),
    ):
        if draw(st.booleans()):
            template[key] = draw(strategy)
    metadata: dict[str, Any] = {}
    if draw(st.booleans()):
        metadata["segments"] = draw(st.lists(
            st.fixed_dictionaries({"label": line(30)}, optional={
                "durationMinutes": st.integers(1, 120), "instructions": line(60), "techniques": st.lists(line(15), max_size=2),
                "tempoTargets": st.dictionaries(st.sampled_from(["targetBpm", "startBpm"]), numbers, max_size=2),
            }),
            max_size=10,
        ))
    if draw(st.booleans()):
        metadata["reflectionPrompts"] = draw(st.lists(line(80), max_size=5))
    if draw(st.booleans()):
        metadata["targets"] = draw(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
                                                   st.one_of(numbers, line(20), st.none()), max_size=4))
    if draw(st.booleans()):
        metadata["instrument"] = draw(st.sampled_from(["piano", "violin", "guitar", "cello"]))
    if draw(st.booleans()):
        metadata["level"] = draw(st.sampled_from(["beginner", "intermediate", "advanced"]))
    if draw(st.booleans()):
        metadata["custom"] = draw(st.dictionaries(line(10), st.one_of(numbers, line(20), st.booleans(), st.none()), max_size=3))
    if metadata or draw(st.booleans()):
        template["metadata"] = metadata
    doc: dict[str, Any] = {"format": tf.FORMAT, "formatVersion": 1, "template": template}
    parameters: list[dict[str, Any]] = []
    if draw(st.booleans()):
        template["title"] = template["title"][:150] + " {{what}}"
        param: dict[str, Any] = {"name": "what", "type": "text", "targets": ["title"]}
        if draw(st.booleans()):
            param["default"] = draw(line(30))
        parameters.append(param)
    rule = (template["schedule"].get("metadata") or {}).get("rrule") or template["schedule"].get("rule") or ""
    if template["schedule"]["kind"] == "recurring" and rec.parse_rule(rule)["FREQ"] in ("DAILY", "WEEKLY") and draw(st.booleans()):
        parameters.append({"name": "days", "type": "weekdays", "default": ["TU", "TH"], "targets": ["schedule.weekdays"]})
    if parameters or draw(st.booleans()):
        doc["parameters"] = parameters
    return doc
