"""Suggestions: concrete, deterministic moves that fix an overloaded day, catch up on missed sessions, or put
a session where it is more likely to be done (same data -> same list, in the same order).

Pure: callers pass ``now``, the zone, the plans and occurrences they loaded, the forecast's days and the
completion rates. :func:`suggest` runs three steps, in this order, each a function below:

1. :func:`_overloads` — moves off the days over capacity;
2. :func:`_catch_ups` — spreads of the sessions missed in the last CATCH_UP_DAYS days;
3. :func:`_better_times` — moves to a (weekday, daypart) with a clearly higher predicted completion rate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from practiceplan.domain.insights import RateModel, daypart
from practiceplan.domain.models import is_completed, is_touched, iso_z, occurrence_start
from practiceplan.domain.occurrences import local_day_start
from practiceplan.domain.schedule import (
    CATCH_UP_DAYS,
    SPREAD_DAYS,
    Booking,
    Move,
    bookings_of,
    local_time,
    missed,
    not_past,
    spread,
)
from practiceplan.domain.tz import day_of, local_instant
from practiceplan.errors import InvalidInputError

MIN_EVIDENCE = 3  # finished sessions a (weekday, daypart) cell needs before a better-time suggestion
MIN_GAIN = 0.25  # predicted completion must rise by at least 25 points
MAX_PER_DAY = 3  # overload suggestions per overloaded day
DAYPART_TIMES = {"morning": time(9, 0), "afternoon": time(15, 0), "evening": time(19, 0)}


@dataclass
class Suggestion:
    kind: str  # overload | catch-up | better-time
    message: str
    occurrence_id: str
    plan_id: str
    to: str | None = None  # ISO-Z target of a single move
    cascade: str | None = None  # "spread" for catch-up
    cap: int | None = None
    moves: list[dict[str, Any]] = field(default_factory=list)  # [{"id", "from", "to"}]
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "occurrenceId": self.occurrence_id,
                "planId": self.plan_id, "to": self.to, "cascade": self.cascade, "cap": self.cap,
                "moves": self.moves, "details": self.details}


@dataclass(frozen=True)
class Rates:
    """Predicted completion rates: ``plan(plan_id, weekday, daypart)`` and evidence counts, from a RateModel."""

    predict: Callable[[tuple[str, int, str]], float]
    plan_evidence: Callable[[tuple[str, int, str]], int]
    overall: Callable[[int, str], tuple[float, int]]  # (weekday, daypart) -> (predicted rate, evidence) over plans


def rates_from_model(model: RateModel) -> Rates:
    """Wrap a :class:`RateModel`: its plan cells, and the same Beta posterior over all plans' sessions."""
    pooled: dict[tuple[int, str], list[int]] = {}
    for (_plan, weekday, part), (done, miss) in model.counts.items():
        cell = pooled.setdefault((weekday, part), [0, 0])
        cell[0] += done
        cell[1] += miss

    def overall(weekday: int, part: str) -> tuple[float, int]:
        done, miss = pooled.get((weekday, part), (0, 0))
        return _mean(model.beta(done, miss)), done + miss

    return Rates(
        predict=lambda key: _mean(model.posterior(key)),  # RateModel.predict()[0], without the interval
        plan_evidence=lambda key: sum(model.counts.get(key, (0, 0))),
        overall=overall,
    )


def _mean(beta: tuple[float, float]) -> float:
    a, b = beta
    return a / (a + b)


# --------------------------------------------------------------------------- what every step shares


@dataclass(frozen=True)
class _Context:
    """The inputs of one :func:`suggest` call that every step reads."""

    now: datetime
    zone: ZoneInfo
    today: date
    last_day: date  # the forecast's last day
    plans: dict[str, dict[str, Any]]
    capacity: Callable[[date], int]
    minutes_of: Callable[[dict[str, Any]], int]
    has_time: Callable[[str], bool]
    week_start: int
    counts_from: Mapping[str, datetime] = field(default_factory=dict)

    def title(self, plan_id: str) -> str:
        return str((self.plans.get(plan_id) or {}).get("title") or "?")

    def day_label(self, day: date) -> str:
        if day == self.today:
            return "Today"
        if day == self.today + timedelta(days=1):
            return "Tomorrow"
        return day.strftime("%A")


@dataclass
class _Loads:
    """Minutes booked per day and the days each plan has a session on, as the overload and better-time
    suggestions made so far would leave them; ``moved`` holds every session a suggestion already moves."""

    capacity: Callable[[date], int]
    load: dict[date, int] = field(default_factory=dict)
    plan_days: dict[str, set[date]] = field(default_factory=dict)
    moved: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, bookings: list[Booking], forecast_days: list[dict[str, Any]],
           capacity: Callable[[date], int]) -> _Loads:
        loads = cls(capacity)
        for booking in bookings:
            loads.load[booking.day] = loads.load.get(booking.day, 0) + booking.minutes
            loads.plan_days.setdefault(booking.plan_id, set()).add(booking.day)
        # the forecast also counts sessions beyond the materialised horizon: take the larger load per day
        for bucket in forecast_days:
            day = date.fromisoformat(bucket["date"])
            loads.load[day] = max(loads.load.get(day, 0), bucket["minutes"])
        return loads

    def over(self, day: date) -> int:
        return self.load.get(day, 0) - self.capacity(day)

    def fits(self, plan_id: str, day: date, minutes: int) -> bool:
        return day not in self.plan_days.get(plan_id, set()) and self.load.get(day, 0) + minutes <= self.capacity(day)

    def book(self, occ: dict[str, Any], old_day: date, new_day: date, minutes: int) -> None:
        self.load[old_day] = self.load.get(old_day, 0) - minutes
        self.load[new_day] = self.load.get(new_day, 0) + minutes
        days = self.plan_days.setdefault(occ.get("planId", ""), set())
        days.discard(old_day)
        days.add(new_day)
        self.moved.add(occ["id"])


def _single_move(occ: dict[str, Any], instant: datetime) -> list[dict[str, Any]]:
    return [{"id": occ["id"], "from": occ["scheduledStart"], "to": iso_z(instant)}]


# --------------------------------------------------------------------------- the steps, in the order they run


def suggest(
    *,
    now: datetime,
    zone: ZoneInfo,
    plans: dict[str, dict[str, Any]],
    occurrences: list[dict[str, Any]],
    forecast_days: list[dict[str, Any]],
    capacity: Callable[[date], int],
    minutes_of: Callable[[dict[str, Any]], int],
    has_time: Callable[[str], bool],
    rates: Rates | Callable[[], Rates | None] | None = None,
    week_start: int = 0,
    limit: int | None = None,
    counts_from: Mapping[str, datetime] | None = None,
) -> list[Suggestion]:
    """Concrete, deterministic moves (same data -> same list, in the same order), computed and listed in
    this order:

    1. **overload** — for each forecast day over capacity (nearest first), move its smallest session that
       removes the excess (else its largest) to the nearest later (else earlier) day with room and no session
       of the same plan, same time of day; up to MAX_PER_DAY per day while the day is still over.
    2. **catch-up** — per plan with sessions missed in the last CATCH_UP_DAYS days: spread them over the
       coming days (the same placement as ``reschedule --cascade spread``), when they fit.
    3. **better-time** — an upcoming session in a (weekday, daypart) where the plan's predicted completion
       rate (with >= MIN_EVIDENCE finished sessions behind it) is at least MIN_GAIN below another slot within
       three days that has its own evidence (the plan's, else all plans').

    ``rates`` may be a function returning them, called only when step 3 runs; ``limit`` stops as soon as the
    first ``limit`` suggestions are known (``today`` asks for one). ``counts_from`` (plan id -> creation):
    sessions whose deadline passed before their plan existed were never owed and are not caught up.
    ``occurrences``: live occurrences of live plans from CATCH_UP_DAYS + 1 days ago to a week past the
    forecast's end. Every suggestion is computed against the current plan, so each is valid on its own and its
    command reproduces it; only the overload moves off one day (and better-time moves after them) see the loads
    as if the moves before them were applied. (A catch-up moves only missed sessions, which no other step
    moves, and places them against the unchanged bookings, so it neither sees nor changes the loads.)
    """
    today = day_of(now, zone)
    last_day = date.fromisoformat(forecast_days[-1]["date"]) if forecast_days else today
    ctx = _Context(now, zone, today, last_day, plans, capacity, minutes_of, has_time, week_start, counts_from or {})
    live = [o for o in occurrences if not o.get("deletedAt") and o.get("planId") in plans]
    from_today = iso_z(local_day_start(today, zone))
    bookings = bookings_of([o for o in live if o["scheduledStart"] >= from_today], minutes_of, now=now, zone=zone,
                           week_start=week_start)
    loads = _Loads.of(bookings, forecast_days, capacity)

    result = _overloads(ctx, loads, forecast_days, {o["id"]: o for o in occurrences})
    if limit is None or len(result) < limit:
        result += _catch_ups(ctx, live, bookings, loads.moved)
    if limit is not None and len(result) >= limit:
        return result[:limit]  # the rates model is not even needed
    if rates is not None and not isinstance(rates, Rates):
        rates = rates()  # fitted only now, when they are needed
    if rates is not None:
        result += _better_times(ctx, live, loads, rates)
    return result if limit is None else result[:limit]


# --------------------------------------------------------------------------- 1. overload


def _overloads(
    ctx: _Context, loads: _Loads, forecast_days: list[dict[str, Any]], by_id: dict[str, dict[str, Any]],
) -> list[Suggestion]:
    """Step 1: per forecast day over capacity, up to MAX_PER_DAY moves while it is still over."""
    result: list[Suggestion] = []
    stuck: set[str] = set()  # overloaded sessions with nowhere to go
    for bucket in forecast_days:
        day = date.fromisoformat(bucket["date"])
        for _ in range(MAX_PER_DAY):
            over = loads.over(day)
            if over <= 0:
                break
            candidates = _overload_candidates(ctx, bucket["occurrenceIds"], by_id, loads.moved | stuck)
            if not candidates:
                break
            occ, start, minutes = _session_to_move(candidates, over)
            target = _overload_target(ctx, loads, occ, start, minutes, day)
            if target is None:
                stuck.add(occ["id"])  # nowhere to go: do not try it again
                continue
            other, instant = target
            loads.book(occ, day, other, minutes)
            result.append(_overload_suggestion(ctx, occ, minutes, day, over, other, instant))
    return result


def _overload_candidates(
    ctx: _Context, occurrence_ids: list[str], by_id: dict[str, dict[str, Any]], excluded: set[str],
) -> list[tuple[dict[str, Any], datetime, int]]:
    """(occurrence, start, minutes) of the day's sessions that may move: still to do, not started, not moved."""
    candidates = []
    for occ_id in occurrence_ids:
        occ = by_id.get(occ_id)
        start = occurrence_start(occ) if occ else None
        if occ is None or start is None or occ_id in excluded or start <= ctx.now:
            continue
        if occ.get("status", "scheduled") != "scheduled" or is_completed(occ) or occ.get("planId") not in ctx.plans:
            continue
        candidates.append((occ, start, ctx.minutes_of(occ)))
    return candidates


def _session_to_move(
    candidates: list[tuple[dict[str, Any], datetime, int]], over: int,
) -> tuple[dict[str, Any], datetime, int]:
    """The smallest session that removes the excess on its own, else the largest (then earliest, then by id)."""
    enough = [c for c in candidates if c[2] >= over]
    if enough:
        return min(enough, key=lambda c: (c[2], c[1], c[0]["id"]))
    return min(candidates, key=lambda c: (-c[2], c[1], c[0]["id"]))


def _overload_target(
    ctx: _Context, loads: _Loads, occ: dict[str, Any], start: datetime, minutes: int, day: date,
) -> tuple[date, datetime] | None:
    """The nearest later (else earlier) day, within six days, with room and no session of the plan."""
    at = local_time(start, ctx.zone)
    all_day = not ctx.has_time(occ["planId"])
    options = [day + timedelta(days=i) for i in range(1, 7)] + [day - timedelta(days=i) for i in range(1, 7)]
    for other in options:
        if other < ctx.today or other > ctx.last_day + timedelta(days=6):
            continue
        instant = local_instant(other, at, ctx.zone)
        if loads.fits(occ["planId"], other, minutes) and not_past(instant, other, now=ctx.now, zone=ctx.zone,
                                                                   all_day=all_day):
            return other, instant
    return None


def _overload_suggestion(
    ctx: _Context, occ: dict[str, Any], minutes: int, day: date, over: int, other: date, instant: datetime,
) -> Suggestion:
    when = instant.astimezone(ctx.zone).strftime("%H:%M")
    all_day = not ctx.has_time(occ["planId"])
    message = (f"{ctx.day_label(day)} ({day:%a %d %b}) is {over} min over capacity: move "
               f"'{ctx.title(occ['planId'])}' ({minutes} min) to {ctx.day_label(other)} "
               f"{other:%d %b} {when if not all_day else ''}".rstrip() + "?")
    return Suggestion(
        "overload", message, occ["id"], occ["planId"], to=iso_z(instant), moves=_single_move(occ, instant),
        details={"day": day.isoformat(), "overMinutes": over, "capacity": ctx.capacity(day),
                 "toDay": other.isoformat()},
    )


# --------------------------------------------------------------------------- 2. catch-up


def _catch_ups(
    ctx: _Context, live: list[dict[str, Any]], bookings: list[Booking], moved: set[str],
) -> list[Suggestion]:
    """Step 2: per plan (by title), spread its sessions missed in the last CATCH_UP_DAYS days, when they fit.

    Each catch-up is placed against the current bookings, exactly as its command (`reschedule OCC --cascade
    spread`) will place it; the sessions it moves join ``moved``."""
    recent = iso_z(local_day_start(ctx.today - timedelta(days=CATCH_UP_DAYS), ctx.zone))
    by_plan: dict[str, list[dict[str, Any]]] = {}
    for occ in missed([o for o in live if o["scheduledStart"] >= recent], now=ctx.now, zone=ctx.zone,
                      week_start=ctx.week_start, counts_from=ctx.counts_from):
        if occ["id"] not in moved:
            by_plan.setdefault(occ["planId"], []).append(occ)
    result = []
    for plan_id in sorted(by_plan, key=lambda pid: (ctx.title(pid).lower(), pid)):
        group = by_plan[plan_id]
        try:
            moves = spread([(o, ctx.minutes_of(o)) for o in group], bookings, capacity=ctx.capacity,
                           first_day=ctx.today, days=SPREAD_DAYS, now=ctx.now, zone=ctx.zone,
                           all_day=not ctx.has_time(plan_id), title=ctx.title(plan_id))
        except InvalidInputError:
            continue
        if moves:
            moved.update(step.id for step in moves)
            result.append(_catch_up_suggestion(ctx, plan_id, group, moves))
    return result


def _catch_up_suggestion(ctx: _Context, plan_id: str, group: list[dict[str, Any]], moves: list[Move]) -> Suggestion:
    new_days = [day_of(occurrence_start(m.after) or ctx.now, ctx.zone) for m in moves]
    span = f"{new_days[0]:%a}" if len(new_days) == 1 else f"{new_days[0]:%a}–{new_days[-1]:%a}"
    count = len(group)
    message = (f"{count} session{'s' if count != 1 else ''} of '{ctx.title(plan_id)}' missed in the last "
               f"{CATCH_UP_DAYS} days: spread {'them' if count != 1 else 'it'} over {span} "
               f"({', '.join(f'{d:%a %d %b}' for d in new_days)})?")
    return Suggestion(
        "catch-up", message, group[0]["id"], plan_id, cascade="spread",
        moves=[{"id": m.id, "from": m.before["scheduledStart"], "to": m.after["scheduledStart"]} for m in moves],
        details={"missed": [o["id"] for o in group]},
    )


# --------------------------------------------------------------------------- 3. better-time


@dataclass(frozen=True)
class _BetterSlot:
    rank: tuple[float, int, bool, datetime]  # higher rate, then nearer, later before earlier, then sooner
    day: date
    instant: datetime
    part: str
    rate: float
    source: str  # "plan" | "all plans": whose evidence the rate stands on


def _better_times(ctx: _Context, live: list[dict[str, Any]], loads: _Loads, rates: Rates) -> list[Suggestion]:
    """Step 3: for each plan's first upcoming session (in the forecast) in a cell with evidence, the best
    clearly better slot within three days; listed by gain."""
    now_iso, end_iso = iso_z(ctx.now), iso_z(local_day_start(ctx.last_day + timedelta(days=1), ctx.zone))
    upcoming = sorted(
        (o for o in live if now_iso < o["scheduledStart"] < end_iso and o["id"] not in loads.moved
         and ctx.has_time(o["planId"]) and not is_touched(o)),
        key=lambda o: (o["scheduledStart"], o["id"]),
    )
    seen_plans: set[str] = set()
    found: list[tuple[float, Suggestion]] = []
    for occ in upcoming:
        plan_id = occ["planId"]
        if plan_id in seen_plans:
            continue
        start = occurrence_start(occ)
        assert start is not None
        local = start.astimezone(ctx.zone)
        key = (plan_id, local.weekday(), daypart(local.hour))
        if rates.plan_evidence(key) < MIN_EVIDENCE:
            continue
        current = rates.predict(key)
        minutes = ctx.minutes_of(occ)
        best = _better_slot(ctx, loads, rates, key, start, current, minutes)
        if best is None:
            continue
        seen_plans.add(plan_id)
        loads.book(occ, local.date(), best.day, minutes)
        found.append((best.rate - current, _better_time_suggestion(ctx, occ, local, current, best)))
    found.sort(key=lambda item: (-round(item[0], 6), item[1].moves[0]["from"], item[1].occurrence_id))
    return [s for _, s in found]


def _better_slot(
    ctx: _Context, loads: _Loads, rates: Rates, key: tuple[str, int, str], start: datetime, current: float,
    minutes: int,
) -> _BetterSlot | None:
    """The best slot within three days (its own time of day in its own daypart, else the daypart's default
    time) whose rate beats ``current`` by MIN_GAIN, on a day with room and no session of the plan."""
    plan_id, _, own_part = key
    day, own_at = day_of(start, ctx.zone), local_time(start, ctx.zone)
    best: _BetterSlot | None = None
    for offset in (1, 2, 3, -1, -2, -3):
        other = day + timedelta(days=offset)
        if other < ctx.today or not loads.fits(plan_id, other, minutes):
            continue
        for part, default_at in DAYPART_TIMES.items():
            instant = local_instant(other, own_at if part == own_part else default_at, ctx.zone)
            if instant <= ctx.now:
                continue
            rated = _cell_rate(rates, (plan_id, other.weekday(), part))
            if rated is None or rated[0] - current < MIN_GAIN:
                continue
            rate, source = rated
            rank = (-round(rate, 6), abs(offset), offset < 0, instant)
            if best is None or rank < best.rank:
                best = _BetterSlot(rank, other, instant, part, rate, source)
    return best


def _cell_rate(rates: Rates, cell: tuple[str, int, str]) -> tuple[float, str] | None:
    """A cell's predicted rate on the plan's own evidence (>= MIN_EVIDENCE), else on all plans' (>= twice
    that), else None."""
    if rates.plan_evidence(cell) >= MIN_EVIDENCE:
        return rates.predict(cell), "plan"
    rate, evidence = rates.overall(cell[1], cell[2])
    if evidence < 2 * MIN_EVIDENCE:
        return None
    return rate, "all plans"


def _better_time_suggestion(
    ctx: _Context, occ: dict[str, Any], local: datetime, current: float, best: _BetterSlot,
) -> Suggestion:
    plan_id = occ["planId"]
    message = (f"you complete {round(current * 100)} % of '{ctx.title(plan_id)}' sessions on "
               f"{local:%A} {daypart(local.hour)}s: move {local:%a %d %b %H:%M} to {best.day:%A} {best.part} "
               f"({best.instant.astimezone(ctx.zone):%a %d %b %H:%M}), where you complete {round(best.rate * 100)} %?")
    return Suggestion(
        "better-time", message, occ["id"], plan_id, to=iso_z(best.instant), moves=_single_move(occ, best.instant),
        details={"currentRate": round(current, 3), "newRate": round(best.rate, 3), "evidence": best.source},
    )
