"""Three-way merge of a new template version into a plan adopted from an older one (pure).

``base`` is the plan the *old* template version gives with the learner's parameters and start date,
``theirs`` the plan the *new* version gives with the same inputs, ``mine`` the learner's plan as it is now.
Fields are compared in a logical form (:func:`logical`): the exact recurrence rule rather than its wire
form, segments without their ids, targets key by key.

For each field: equal in mine and theirs -> nothing to do; mine equals base -> take the template's change;
theirs equals base -> keep the learner's edit (learner edits win); otherwise it is a clash, decided by the
learner (asked on a terminal, or ``--mine`` / ``--theirs``). Segments are merged item by item and key by
key when the three lists have the same length, and as whole lists otherwise. Without a base (the old
version is not stored) every difference is a clash.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from practiceplan.domain import recurrence as rec
from practiceplan.domain.models import (
    plan_flex,
    plan_prompts,
    plan_segments,
    plan_targets,
    plan_zone_name,
)
from practiceplan.domain.plans import PlanInput, apply_input
from practiceplan.domain.tz import localize


class _Missing:
    def __repr__(self) -> str:
        return "absent"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Missing)

    def __hash__(self) -> int:
        return 0


MISSING: Any = _Missing()

FIELDS = (
    "title", "description", "type", "tags", "focusAreas", "techniques", "pieceRefs", "instrument", "level",
    "segments", "reflectionPrompts", "targets", "schedule.kind", "schedule.rule", "schedule.timeOfDay",
    "schedule.durationMinutes", "schedule.flex", "schedule.endDate",
)


@dataclass
class Change:
    path: str
    base: Any
    mine: Any
    theirs: Any
    outcome: str  # "theirs" (template change applied), "mine" (your edit kept) or "clash"
    choice: str | None = None  # for clashes: "mine" or "theirs" once decided

    @property
    def takes_theirs(self) -> bool:
        return self.outcome == "theirs" or (self.outcome == "clash" and self.choice == "theirs")

    def as_json(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            return None if isinstance(value, _Missing) else value

        result = plain(self.theirs) if self.takes_theirs else plain(self.mine)
        return {
            "path": self.path,
            "base": plain(self.base),
            "mine": plain(self.mine),
            "theirs": plain(self.theirs),
            "outcome": self.outcome,
            "choice": self.choice,
            "result": result,
        }


@dataclass
class Merge:
    changes: list[Change] = field(default_factory=list)

    @property
    def clashes(self) -> list[Change]:
        return [c for c in self.changes if c.outcome == "clash"]

    @property
    def undecided(self) -> list[Change]:
        return [c for c in self.clashes if c.choice is None]

    def decide_all(self, choice: str) -> None:
        for clash in self.clashes:
            clash.choice = choice


def logical(plan: dict[str, Any]) -> dict[str, Any]:
    """The fields a template shapes, in comparable form."""
    schedule = plan.get("schedule") or {}
    meta = plan.get("metadata") or {}
    rule = None
    if schedule.get("kind") == "recurring":
        raw = (schedule.get("metadata") or {}).get("rrule") or schedule.get("rule")
        try:
            rule = rec.canonical_rule(rec.parse_rule(raw))
        except (rec.RecurrenceError, TypeError):
            rule = raw
    return {
        "title": plan.get("title"),
        "description": plan.get("description") or None,
        "type": plan.get("type") or "custom",
        "tags": list(plan.get("tags") or []),
        "focusAreas": list(plan.get("focusAreas") or []),
        "techniques": list(plan.get("techniques") or []),
        "pieceRefs": copy.deepcopy(plan.get("pieceRefs") or []),
        "instrument": meta.get("instrument") or None,
        "level": meta.get("level") or None,
        "segments": [{k: copy.deepcopy(v) for k, v in s.items() if k != "id"} for s in plan_segments(plan)],
        "reflectionPrompts": plan_prompts(plan),
        "targets": plan_targets(plan),
        "schedule.kind": schedule.get("kind"),
        "schedule.rule": rule,
        "schedule.timeOfDay": schedule.get("timeOfDay") or None,
        "schedule.durationMinutes": schedule.get("durationMinutes"),
        "schedule.flex": plan_flex(plan),
        "schedule.endDate": schedule.get("endDate") or None,
    }


def _decide(path: str, base: Any, mine: Any, theirs: Any, out: list[Change], has_base: bool) -> None:
    if mine == theirs:
        return
    if has_base and mine == base:
        out.append(Change(path, base, mine, theirs, "theirs"))
    elif has_base and theirs == base:
        out.append(Change(path, base, mine, theirs, "mine"))
    else:
        out.append(Change(path, base if has_base else MISSING, mine, theirs, "clash"))


def three_way(base: dict[str, Any] | None, mine: dict[str, Any], theirs: dict[str, Any]) -> Merge:
    """Compare logical forms (see :func:`logical`). ``base`` None means "old version unknown"."""
    merge = Merge()
    has_base = base is not None
    b = base or {}
    for name in FIELDS:
        bv, mv, tv = b.get(name, MISSING), mine.get(name, MISSING), theirs.get(name, MISSING)
        if name == "segments" and has_base and len(bv) == len(mv) == len(tv):
            for index in range(len(mv)):
                keys = list(dict.fromkeys([*bv[index], *mv[index], *tv[index]]))
                for key in keys:
                    _decide(
                        f"segments[{index}].{key}",
                        bv[index].get(key, MISSING), mv[index].get(key, MISSING), tv[index].get(key, MISSING),
                        merge.changes, True,
                    )
        elif name == "targets" and has_base:
            for key in dict.fromkeys([*bv, *mv, *tv]):
                _decide(f"targets.{key}", bv.get(key, MISSING), mv.get(key, MISSING), tv.get(key, MISSING), merge.changes, True)
        else:
            _decide(name, bv, mv, tv, merge.changes, has_base)
    return merge


def merged_fields(mine: dict[str, Any], merge: Merge) -> dict[str, Any]:
    """The learner's logical fields with every taken template change applied."""
    result = copy.deepcopy(mine)
    for change in merge.changes:
        if not change.takes_theirs:
            continue
        value = copy.deepcopy(change.theirs)
        if change.path.startswith("segments["):
            index_text, key = change.path[len("segments["):].split("].", 1)
            segment = result["segments"][int(index_text)]
            if isinstance(value, _Missing):
                segment.pop(key, None)
            else:
                segment[key] = value
        elif change.path.startswith("targets."):
            key = change.path[len("targets."):]
            if isinstance(value, _Missing):
                result["targets"].pop(key, None)
            else:
                result["targets"][key] = value
        else:
            result[change.path] = None if isinstance(value, _Missing) else value
    return result


def apply_merge(plan: dict[str, Any], merged: dict[str, Any], *, now: datetime, default_zone: str) -> dict[str, Any]:
    """The plan with ``merged`` logical fields, rebuilt through ``apply_input`` (wire rule, validation)."""
    current = logical(plan)
    changed = {name for name in FIELDS if merged[name] != current[name]}
    inp = PlanInput()
    if "title" in changed:
        inp.title = merged["title"]
    if "description" in changed:
        inp.description = merged["description"] or ""
    if "focusAreas" in changed:
        inp.focus = list(merged["focusAreas"])
    if "techniques" in changed:
        inp.techniques = list(merged["techniques"])
    if "pieceRefs" in changed:
        inp.pieces = copy.deepcopy(merged["pieceRefs"])
    if "instrument" in changed and merged["instrument"]:
        inp.instrument = merged["instrument"]
    if "segments" in changed:
        inp.segments = copy.deepcopy(merged["segments"])
    if "reflectionPrompts" in changed:
        inp.prompts = list(merged["reflectionPrompts"])
    if "targets" in changed:
        inp.targets = dict(merged["targets"])
    at = time.fromisoformat(merged["schedule.timeOfDay"]) if merged["schedule.timeOfDay"] else None
    schedule_changed = any(name.startswith("schedule.") for name in changed)
    if merged["schedule.kind"] == "recurring":
        if {"schedule.kind", "schedule.rule"} & changed:
            inp.rrule = merged["schedule.rule"]
        if "schedule.timeOfDay" in changed and at is not None:
            inp.at = at
        if "schedule.endDate" in changed:
            if merged["schedule.endDate"]:
                inp.end = date.fromisoformat(merged["schedule.endDate"])
            else:
                inp.clear_end = True
    elif schedule_changed:
        zone = rec.get_zone(plan_zone_name(plan, default_zone))
        start = date.fromisoformat((plan.get("schedule") or {}).get("startDate"))
        inp.once = localize(datetime.combine(start, at or time()), zone)
    if "schedule.durationMinutes" in changed and merged["schedule.durationMinutes"]:
        inp.minutes = merged["schedule.durationMinutes"]
    if "schedule.flex" in changed:
        inp.flex = merged["schedule.flex"]
    result = apply_input(plan, inp, now=now, default_zone=default_zone)
    result["type"] = merged["type"]
    result["tags"] = list(merged["tags"])
    metadata = result.setdefault("metadata", {})
    for key in ("instrument", "level"):
        if merged[key]:
            metadata[key] = merged[key]
        else:
            metadata.pop(key, None)
    schedule = result.get("schedule") or {}
    if merged["schedule.kind"] == "recurring" and at is None and schedule.get("timeOfDay"):
        schedule.pop("timeOfDay")
        if schedule.get("flexibility") == "fixed":
            schedule["flexibility"] = "same-day"
    return result
