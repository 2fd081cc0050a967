"""Progress review: clean tempo per piece and passage against its target, its trend, the date the target is
reached at that trend, and the passages named as tension spots most often.

Pure: no I/O, no clock reads ("today" and the zone are arguments). Every definition is written out with worked
examples in docs/metrics.md ("Progress: tempo and tension"), and the tests use exactly those numbers.

**What a check-in records** (``checkin --tempo/--ceiling/--tension``): a list of *progress records*, each a flat
object of strings and numbers, so the same list is valid in both places a Mirubato server keeps it:

* ``{"kind": "clean", "piece": "Etude", "bpm": 72}`` — the fastest tempo played cleanly;
* ``{"kind": "ceiling", "piece": "Etude", "bpm": 84}`` — the fastest tempo attempted;
* ``{"kind": "tension", "piece": "Etude", "passage": "mm.12-16"}`` — a spot where tension came back;

``passage`` is optional on tempo records (``--tempo "Etude:mm.12-16=60"``). The list is stored as the logbook
entry's ``metadata.progress`` (free-form, what this module reads) and as the session's ``metrics.progress``
(an array of objects: allowed there; no booleans, no nested objects).

**Days** are calendar dates in the user's zone (a reading's instant converted with the zone), counted as date
differences, never as elapsed seconds / 86400: a DST day is one day.

**Trend**: the least-squares slope of the best clean tempo per day against the day, over the days in the trend
window (default: the last :data:`TREND_DAYS` days, today included), in BPM per week (slope per day × 7). It
needs at least :data:`MIN_POINTS` days with a reading spanning at least :data:`MIN_SPAN_DAYS` days; otherwise
there is no trend ("too few points").

**Projection**: the latest clean tempo against the piece's target tempo:

* ``reached``: latest ≥ target; the date is the first day in the window whose best reading reached it
  (the latest day when none in the window did);
* ``too-few-points``: no trend (see above);
* ``not-at-this-rate``: the trend is flat or falling (≤ 0 BPM per week), or the projected date lies more than
  :data:`HORIZON_DAYS` days after today;
* ``projected``: latest day + ceil((target − latest) / slope per day) days, or today when that day has passed
  (at this rate it is due now, and no reading says so yet);
* ``no-target``: the piece has no target tempo.

**Hotspots**: tension records from the last :data:`HOTSPOT_DAYS` days (today and the 29 before it), counted once
per logbook entry and passage, most often first; ties go to the passage named most recently, then by name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from practiceplan.errors import InvalidInputError

KINDS = ("clean", "ceiling", "tension")
MIN_BPM, MAX_BPM = 10, 400
MIN_POINTS = 3
MIN_SPAN_DAYS = 7
TREND_DAYS = 56
HOTSPOT_DAYS = 30
HORIZON_DAYS = 365
SPARK_POINTS = 30
MAX_RECORDS = 100
MAX_NAME = 200
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


# --------------------------------------------------------------------------- names


def name_key(name: str) -> str:
    """How names are compared: case-insensitive, runs of whitespace as one space ("Etude" == " etude ")."""
    return " ".join(name.split()).casefold()


def clean_name(text: str, what: str, flag: str) -> str:
    text = " ".join(text.split())
    if not text:
        raise InvalidInputError(f"{flag}: the {what} is empty", hint=_EXAMPLES[flag])
    if _UNSAFE.search(text) or len(text) > MAX_NAME:
        raise InvalidInputError(f"{flag}: the {what} has control characters or is longer than {MAX_NAME} characters",
                                hint=_EXAMPLES[flag])
    return text


_EXAMPLES = {
    "--tempo": 'e.g. --tempo "Etude=72", or for a passage --tempo "Etude:mm.12-16=60"',
    "--ceiling": 'e.g. --ceiling "Etude=84"',
    "--tension": 'e.g. --tension "Etude:mm.12-16"',
    "--segment": 'e.g. --segment "Etude:20:slowly:target=80"',
    "--target": "e.g. --target tempo=92, or --target Etude=80 for a segment named Etude",
}


def _split_piece(text: str, flag: str, known: Iterable[str]) -> tuple[str, str | None]:
    """``"Etude:mm.12-16"`` -> ("Etude", "mm.12-16"); a name that is one of ``known`` (piece titles and segment
    labels, compared by :func:`name_key`) is a piece even when it holds a colon ("Suite: Prelude")."""
    names = {name_key(k): k for k in known}
    if name_key(text) in names:
        return names[name_key(text)], None
    piece, sep, passage = text.rpartition(":")
    if not sep:
        return clean_name(text, "piece", flag), None
    piece = clean_name(piece, "piece", flag)
    return names.get(name_key(piece), piece), clean_name(passage, "passage", flag)


def check_bpm(value: Any, flag: str) -> int | float:
    """A tempo in BPM from :data:`MIN_BPM` to :data:`MAX_BPM` (whole or decimal), else InvalidInputError."""
    if isinstance(value, str):
        text = value.strip()
        try:
            number: float = float(text)
        except ValueError:
            raise InvalidInputError(f"{flag}: '{value}' is not a tempo in BPM", hint=_EXAMPLES[flag]) from None
        value = int(number) if number.is_integer() else number
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not MIN_BPM <= value <= MAX_BPM:
        raise InvalidInputError(f"{flag}: a tempo must be from {MIN_BPM} to {MAX_BPM} BPM, not {value}",
                                hint=_EXAMPLES[flag])
    return round(value, 1) if isinstance(value, float) else value


def parse_tempo(text: str, flag: str, known: Iterable[str] = ()) -> dict[str, Any]:
    """``--tempo "Etude=72"`` / ``--ceiling "Etude:mm.12-16=60"`` -> a clean / ceiling progress record."""
    where, sep, bpm = text.rpartition("=")
    if not sep:
        raise InvalidInputError(f"{flag} '{text}' must look like PIECE=BPM or PIECE:PASSAGE=BPM", hint=_EXAMPLES[flag])
    piece, passage = _split_piece(where, flag, known)
    record: dict[str, Any] = {"kind": "clean" if flag == "--tempo" else "ceiling", "piece": piece}
    if passage:
        record["passage"] = passage
    record["bpm"] = check_bpm(bpm, flag)
    return record


def parse_tension(text: str, known: Iterable[str] = ()) -> dict[str, Any]:
    """``--tension "Etude:mm.12-16"`` -> a tension progress record (the passage is required)."""
    piece, passage = _split_piece(text, "--tension", known)
    if not passage:
        raise InvalidInputError(f"--tension '{text}' must name a passage: PIECE:PASSAGE",
                                hint=_EXAMPLES["--tension"])
    return {"kind": "tension", "piece": piece, "passage": passage}


def segment_target(text: str) -> tuple[str, int | float | None]:
    """Split a trailing ``:target=BPM`` off a ``--segment`` value: ``"Etude:20:slowly:target=80"`` ->
    (``"Etude:20:slowly"``, 80); (text, None) when there is none."""
    match = re.search(r":\s*target\s*=\s*([^:]*)$", text)
    if not match:
        return text, None
    return text[: match.start()], check_bpm(match.group(1), "--segment")


def records(value: Any) -> list[dict[str, Any]]:
    """The valid progress records in a stored list (anything else, from another device or a peer, is ignored)."""
    found = []
    for item in value if isinstance(value, list) else []:
        if not isinstance(item, dict) or item.get("kind") not in KINDS:
            continue
        piece, passage = item.get("piece"), item.get("passage")
        if not isinstance(piece, str) or not piece.strip() or (passage is not None and not isinstance(passage, str)):
            continue
        if item["kind"] == "tension":
            if passage and passage.strip():
                found.append(item)
            continue
        bpm = item.get("bpm")
        if isinstance(bpm, (int, float)) and not isinstance(bpm, bool) and math.isfinite(bpm) and bpm > 0:
            found.append(item)
    return found


LATEST_SPAN_MS = 26 * 3_600_000  # longer than any local day (25 hours)


def latest_only(rows: Sequence[tuple[str, int, str | None, Any]]) -> list[tuple[str, int, str | None, list[Any]]]:
    """Of (entry id, ts ms, plan id, stored records) rows, only the clean and ceiling records within 26 hours of
    the newest one of the same kind, piece and passage (by :func:`name_key`): all a review takes from before its
    window is each one's latest day (its best reading there is the "latest" and the "fastest tried")."""
    newest: dict[tuple[str, str, str], int] = {}
    kept: list[tuple[tuple[str, str, str], str, int, str | None, dict[str, Any]]] = []
    for entry_id, ts, plan, stored in rows:
        for item in records(stored):
            if item["kind"] == "tension":
                continue
            key = (item["kind"], name_key(item["piece"]), name_key(item.get("passage") or ""))
            newest[key] = max(newest.get(key, ts), ts)
            kept.append((key, entry_id, ts, plan, item))
    return [(entry_id, ts, plan, [item]) for key, entry_id, ts, plan, item in kept
            if ts >= newest[key] - LATEST_SPAN_MS]


def merge_records(*groups: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records in order, a later one replacing an earlier one with the same kind, piece and passage (tension
    records are kept once each)."""
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    for group in groups:
        for item in group:
            key = (item["kind"], name_key(item["piece"]), name_key(item.get("passage") or ""))
            merged.pop(key, None)
            merged[key] = item
    if len(merged) > MAX_RECORDS:
        raise InvalidInputError(f"at most {MAX_RECORDS} tempo and tension records per check-in",
                                hint="record the pieces you worked on most")
    return list(merged.values())


def tempo_target(segment: dict[str, Any]) -> int | float | None:
    """A segment's ``tempoTargets.targetBpm`` when it is a positive number."""
    targets = segment.get("tempoTargets")
    bpm = targets.get("targetBpm") if isinstance(targets, dict) else None
    if isinstance(bpm, (int, float)) and not isinstance(bpm, bool) and math.isfinite(bpm) and bpm > 0:
        return bpm
    return None


# --------------------------------------------------------------------------- days


def local_day(ms: int, zone: ZoneInfo) -> date:
    """The calendar date in ``zone`` of an instant in epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).astimezone(zone).date()


@dataclass(frozen=True, order=True)
class Point:
    day: date
    bpm: float


def daily_best(readings: Iterable[tuple[date, float]]) -> list[Point]:
    """One point per day with readings: the best (highest) clean tempo of that day, in day order."""
    best: dict[date, float] = {}
    for day, bpm in readings:
        if day not in best or bpm > best[day]:
            best[day] = bpm
    return [Point(day, best[day]) for day in sorted(best)]


# --------------------------------------------------------------------------- trend and projection


@dataclass(frozen=True)
class Trend:
    """``per_day`` is None when there are too few points (fewer than MIN_POINTS days, or a span under
    MIN_SPAN_DAYS days)."""

    per_day: float | None
    points: int
    span_days: int

    @property
    def per_week(self) -> float | None:
        return None if self.per_day is None else self.per_day * 7


def trend(points: Sequence[Point]) -> Trend:
    """The least-squares slope of BPM against the day (date differences), in BPM per day."""
    if not points:
        return Trend(None, 0, 0)
    origin = points[0].day
    xs = [(p.day - origin).days for p in points]
    span = xs[-1] - xs[0]
    if len(points) < MIN_POINTS or span < MIN_SPAN_DAYS:
        return Trend(None, len(points), span)
    mean_x = sum(xs) / len(xs)
    mean_y = sum(p.bpm for p in points) / len(points)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (p.bpm - mean_y) for x, p in zip(xs, points))
    return Trend(sxy / sxx, len(points), span)


def percent(latest: float, target: float | None) -> int | None:
    """latest / target in whole percent, halves rounded up (68 of 80 -> 85)."""
    if not target:
        return None
    return math.floor(latest * 100 / target + 0.5)


def projection(points: Sequence[Point], fitted: Trend, target: float | None, today: date,
               latest: Point | None = None) -> dict[str, Any]:
    """When the target is reached at the current trend: {"status", "date" (ISO or None), "days" (from today)}.
    ``latest`` is the latest reading overall (default: the last point)."""
    latest = latest or (points[-1] if points else None)
    if target is None:
        return {"status": "no-target", "date": None, "days": None}
    if latest is None:
        return {"status": "too-few-points", "date": None, "days": None}
    if latest.bpm >= target:
        first = next((p.day for p in points if p.bpm >= target), latest.day)
        return {"status": "reached", "date": first.isoformat(), "days": (first - today).days}
    if fitted.per_day is None:
        return {"status": "too-few-points", "date": None, "days": None}
    if fitted.per_day <= 0:
        return {"status": "not-at-this-rate", "date": None, "days": None}
    needed = math.ceil((target - latest.bpm) / fitted.per_day - 1e-9)
    when = max(latest.day + timedelta(days=needed), today)  # "by now" at this rate, not yet recorded: today
    if (when - today).days > HORIZON_DAYS:
        return {"status": "not-at-this-rate", "date": None, "days": None}
    return {"status": "projected", "date": when.isoformat(), "days": (when - today).days}


# --------------------------------------------------------------------------- hotspots


@dataclass(frozen=True)
class Tension:
    day: date
    entry_id: str
    passage: str


def hotspots(tensions: Iterable[Tension], today: date, days: int = HOTSPOT_DAYS) -> list[dict[str, Any]]:
    """Passages named as tension spots in the last ``days`` days (today included), counted once per entry:
    [{"passage", "count", "lastDay"}], most often first, then the most recently named, then by name."""
    first = today - timedelta(days=days - 1)
    seen: set[tuple[str, str]] = set()
    counts: dict[str, list[Any]] = {}  # key -> [display name, count, last day]
    for item in sorted(tensions, key=lambda t: (t.day, t.entry_id)):
        if not first <= item.day <= today:
            continue
        key = name_key(item.passage)
        if (item.entry_id, key) in seen:
            continue
        seen.add((item.entry_id, key))
        slot = counts.setdefault(key, [item.passage, 0, item.day])
        slot[0], slot[1], slot[2] = item.passage, slot[1] + 1, max(slot[2], item.day)
    ordered = sorted(counts.values(), key=lambda s: (-s[1], -s[2].toordinal(), name_key(s[0])))
    return [{"passage": name, "count": count, "lastDay": last.isoformat()} for name, count, last in ordered]


# --------------------------------------------------------------------------- the review


@dataclass
class Reading:
    """One stored record with its entry's local day (what the service hands over)."""

    day: date
    entry_id: str
    plan_id: str | None
    record: dict[str, Any]


@dataclass
class Series:
    name: str
    clean: list[tuple[date, float]] = field(default_factory=list)
    ceiling: list[tuple[date, float]] = field(default_factory=list)
    tensions: list[Tension] = field(default_factory=list)
    plans: list[tuple[date, str]] = field(default_factory=list)


def _series_json(series: Series, target: float | None, today: date, first: date) -> dict[str, Any]:
    every = daily_best(series.clean)
    window = [p for p in every if first <= p.day <= today]
    latest = every[-1] if every else None
    fitted = trend(window)
    ceiling = daily_best(series.ceiling)
    per_week = fitted.per_week
    return {
        "target": target,
        "latest": {"bpm": latest.bpm, "day": latest.day.isoformat()} if latest else None,
        "percentOfTarget": percent(latest.bpm, target) if latest else None,
        "ceiling": {"bpm": ceiling[-1].bpm, "day": ceiling[-1].day.isoformat()} if ceiling else None,
        "trendBpmPerWeek": None if per_week is None else round(per_week, 2),
        "trendPoints": fitted.points,
        "projection": projection(window, fitted, target, today, latest),
        "points": [{"day": p.day.isoformat(), "bpm": p.bpm} for p in window],
        "hotspots": hotspots(series.tensions, today),
    }


def review(readings: Iterable[Reading], *, today: date, first: date | None = None,
           targets: dict[str, tuple[float, str]] | None = None) -> list[dict[str, Any]]:
    """Per piece (in name order) the tempo review and hotspots, with the same per passage.

    ``first``: the first day of the trend window (default: today − TREND_DAYS + 1); readings after ``today`` are
    ignored. ``targets``: piece name_key -> (target BPM, where it comes from); passages inherit their piece's.
    """
    first = first or today - timedelta(days=TREND_DAYS - 1)
    targets = targets or {}
    pieces: dict[str, Series] = {}
    passages: dict[str, dict[str, Series]] = {}
    for reading in sorted(readings, key=lambda r: (r.day, r.entry_id)):
        if reading.day > today:
            continue
        item = reading.record
        key = name_key(item["piece"])
        piece = pieces.setdefault(key, Series(item["piece"]))
        piece.name = item["piece"]  # the latest spelling
        if reading.plan_id:
            piece.plans.append((reading.day, reading.plan_id))
        passage = item.get("passage")
        if item["kind"] == "tension":
            piece.tensions.append(Tension(reading.day, reading.entry_id, passage))
            continue
        target_list = "clean" if item["kind"] == "clean" else "ceiling"
        if passage:
            series = passages.setdefault(key, {}).setdefault(name_key(passage), Series(passage))
            series.name = passage
            getattr(series, target_list).append((reading.day, item["bpm"]))
        else:
            getattr(piece, target_list).append((reading.day, item["bpm"]))
    result = []
    for key in sorted(pieces):
        piece = pieces[key]
        target, source = targets.get(key, (None, None))
        row: dict[str, Any] = {"piece": piece.name, "targetFrom": source}
        row.update(_series_json(piece, target, today, first))
        row["passages"] = [{"passage": passages[key][k].name, **_series_json(passages[key][k], target, today, first)}
                           for k in sorted(passages.get(key, {}))]
        for passage_row in row["passages"]:
            passage_row.pop("hotspots")
        row["planIds"] = sorted({plan for _, plan in piece.plans})
        result.append(row)
    return result


def targets_for(plans: dict[str, dict[str, Any]], piece_plans: dict[str, list[str]]
                ) -> dict[str, tuple[float, str]]:
    """Piece name_key -> (target BPM, "segment" or "plan"): for a piece, the ``tempoTargets.targetBpm`` of a
    segment named after it (its label, or a piece it refers to) in the plan it was practised with most recently,
    else in any plan (the most recently updated first), else that most recent plan's own ``targets.tempo``.
    ``piece_plans``: piece name_key -> the plan ids of its readings, oldest first."""
    def metadata(plan: dict[str, Any]) -> dict[str, Any]:
        meta = plan.get("metadata")
        return meta if isinstance(meta, dict) else {}

    def segment_targets(plan: dict[str, Any]) -> dict[str, float]:
        found: dict[str, float] = {}
        segments = metadata(plan).get("segments")
        for segment in segments if isinstance(segments, list) else []:
            if not isinstance(segment, dict):
                continue
            bpm = tempo_target(segment)
            if bpm is None:
                continue
            names = [segment.get("label")] + [ref.get("title") for ref in segment.get("pieceRefs") or []
                                              if isinstance(ref, dict)]
            for name in names:
                if isinstance(name, str) and name.strip():
                    found.setdefault(name_key(name), bpm)
        return found

    by_plan = {pid: segment_targets(plan) for pid, plan in plans.items()}
    newest_first = sorted(plans, key=lambda pid: (str(plans[pid].get("updatedAt") or ""), pid), reverse=True)
    result: dict[str, tuple[float, str]] = {}
    for key, plan_ids in piece_plans.items():
        recent = next((pid for pid in reversed(plan_ids) if pid in plans), None)
        for pid in ([recent] if recent else []) + newest_first:
            if key in by_plan[pid]:
                result[key] = (by_plan[pid][key], "segment")
                break
        else:
            targets = metadata(plans[recent]).get("targets") if recent else None
            tempo = targets.get("tempo") if isinstance(targets, dict) else None
            if isinstance(tempo, (int, float)) and not isinstance(tempo, bool) and math.isfinite(tempo) and tempo > 0:
                result[key] = (tempo, "plan")
    return result
