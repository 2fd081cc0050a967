"""Planning analytics: adherence, streaks, missed windows, forecast, planned vs actual, trend, predictions.

Pure functions; "now" and the zones are arguments. Every definition is written out with a worked example in
docs/metrics.md, and the tests follow them exactly. Inputs are light records rather than whole documents so
that two years of occurrences and 100k logbook entries stay fast:

* :class:`OccFact` — the few fields of an occurrence the metrics need (the store selects them in SQL);
* practice days — ``{local day number: DayTotals}`` aggregated by the store from the logbook in SQL, using
  :meth:`DayClock.segments` to turn instants into local calendar days;
* plans — wire-format dicts (few).

Times are epoch milliseconds (UTC); days are local calendar days in the user's zone, numbered from
1970-01-01 (:class:`DayClock`). A DST day is a day, not 24 hours.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from practiceplan.domain.models import (
    READABLE_FIRST_DAY,
    READABLE_LAST_DAY,
    plan_duration,
    plan_flex,
    plan_is_live,
    plan_segments,
)
from practiceplan.domain.occurrences import plan_recurrence
from practiceplan.domain.tz import localize

UTC = timezone.utc
DAY_MS = 86_400_000
EPOCH = date(1970, 1, 1)
# The span of readable instants (domain.models.READABLE_*) in epoch ms: data outside it (years near 1 or
# 9999, imported or pulled from elsewhere) is left out of the analytics instead of failing them.
RANGE_LO_MS = (READABLE_FIRST_DAY - EPOCH).days * DAY_MS
RANGE_HI_MS = ((READABLE_LAST_DAY - EPOCH).days + 1) * DAY_MS
COMPLETED, SKIPPED, MISSED, OPEN = "completed", "skipped", "missed", "open"
BEFORE_PLAN = "before-plan"  # past its deadline before the plan existed: never owed, so counted nowhere
DAYPARTS = ((0, 12, "morning"), (12, 17, "afternoon"), (17, 24, "evening"))
PRIOR_STRENGTH = 4.0  # pseudo-sessions of the user's overall rate behind each (plan, weekday, daypart) cell
INTERVAL = 0.8


# --------------------------------------------------------------------------- local days


class DayClock:
    """Local calendar days of a zone over epoch milliseconds, exact across DST (transitions found once).
    The range is clamped to the readable span of instants; :meth:`segments` covers only it."""

    def __init__(self, zone: ZoneInfo, lo_ms: int, hi_ms: int) -> None:
        self.zone = zone
        lo_ms, hi_ms = (min(max(x, RANGE_LO_MS), RANGE_HI_MS) for x in (lo_ms, hi_ms))
        lo_ms = min(lo_ms, hi_ms) - 2 * DAY_MS
        hi_ms = max(lo_ms, hi_ms) + 2 * DAY_MS
        self._starts: list[int] = [lo_ms]
        self._offsets: list[int] = [self._offset(lo_ms)]
        step = DAY_MS  # offsets change at most once a day; each change is then found to the millisecond
        probe = lo_ms
        while probe < hi_ms:
            nxt = min(probe + step, hi_ms)
            if self._offset(nxt) != self._offsets[-1]:
                low, high = probe, nxt  # find the exact instant of the change (a day's local midnight may be it)
                while high - low > 1:
                    mid = (low + high) // 2
                    if self._offset(mid) == self._offsets[-1]:
                        low = mid
                    else:
                        high = mid
                self._starts.append(high)
                self._offsets.append(self._offset(high))
            probe = nxt
        self._midnights: dict[int, int] = {}

    def _offset(self, ms: int) -> int:
        ms = min(max(ms, RANGE_LO_MS - 3 * DAY_MS), RANGE_HI_MS + 3 * DAY_MS)  # never beyond what datetime holds
        offset = datetime.fromtimestamp(ms / 1000, self.zone).utcoffset()
        return int(offset.total_seconds() * 1000) if offset else 0

    def offset(self, ms: int) -> int:
        index = bisect.bisect_right(self._starts, ms) - 1
        return self._offsets[max(index, 0)] if self._starts[0] <= ms else self._offset(ms)

    def segment_start(self, ms: int) -> int:
        """The instant the UTC offset in force at ``ms`` began (the clock's range start at the earliest)."""
        index = bisect.bisect_right(self._starts, ms) - 1
        return self._starts[max(index, 0)]

    def day(self, ms: int) -> int:
        return (ms + self.offset(ms)) // DAY_MS

    def midnight(self, day: int) -> int:
        """Epoch ms of the local start of ``day`` (a gap at midnight moves forward, as everywhere)."""
        cached = self._midnights.get(day)
        if cached is None:
            if not RANGE_LO_MS <= day * DAY_MS <= RANGE_HI_MS:  # outside the readable span: no DST detail
                return day * DAY_MS - self._offset(day * DAY_MS)
            local = datetime.combine(EPOCH + timedelta(days=day), time())
            cached = int(localize(local, self.zone).timestamp() * 1000)
            self._midnights[day] = cached
        return cached

    def segments(self) -> list[tuple[int, int, int]]:
        """(from_ms, to_ms, offset_ms) pieces covering the clock's range, for bucketing in SQL."""
        ends = [*self._starts[1:], RANGE_HI_MS]
        return [(RANGE_LO_MS if i == 0 else s, e, o) for i, (s, e, o) in enumerate(zip(self._starts, ends, self._offsets))]


def day_number(day: date) -> int:
    return (day - EPOCH).days


def day_date(number: int) -> date:
    return EPOCH + timedelta(days=number)


def week_first(day: int, week_start: int) -> int:
    """Day number of the first day of the week containing ``day`` (week_start: 0 = Monday)."""
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday (3)
    return day - (weekday - week_start) % 7


def month_bounds(day: int) -> tuple[int, int]:
    d = day_date(day)
    first = d.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return day_number(first), day_number(following) - 1


def round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))


# --------------------------------------------------------------------------- occurrence facts


class OccFact(NamedTuple):
    id: str
    plan_id: str
    start_ms: int
    end_ms: int | None
    status: str
    flex: str | None
    pending: bool = False
    log_entry_id: str | None = None
    minutes: int | None = None  # planned minutes when end is unknown (plan duration / segments)


class Judged(NamedTuple):
    fact: OccFact
    state: str  # completed | skipped | missed | open | before-plan
    day: int  # local start day (user zone)
    deadline_ms: int

    @property
    def minutes(self) -> int:
        if self.fact.end_ms and self.fact.end_ms > self.fact.start_ms:
            return (self.fact.end_ms - self.fact.start_ms) // 60_000
        return self.fact.minutes or 0


def judge(
    facts: Iterable[OccFact], now_ms: int, clock: DayClock, *, plan_clocks: dict[str, DayClock] | None = None,
    week_start: int = 0, counts_from: dict[str, int] | None = None,
) -> list[Judged]:
    """Classify every occurrence (see docs/metrics.md "Deadline", "Completed", "Missed", "Open", "Before the
    plan existed").

    Deadlines use each plan's own zone when ``plan_clocks`` has it (the plan's day), else the user's.
    ``counts_from`` maps plan ids to the epoch ms their sessions count from (the integer twin of
    :func:`practiceplan.domain.occurrences.owed`): a session past its deadline is missed only if that deadline
    is later, else it is ``before-plan``. Results are in schedule order (start, id).
    """
    ordered = sorted(facts, key=lambda f: (f.start_ms, f.id))
    next_start: dict[str, int | None] = {}
    following: dict[str, int] = {}
    for fact in reversed(ordered):
        next_start[fact.id] = following.get(fact.plan_id)
        following[fact.plan_id] = fact.start_ms
    judged = []
    for fact in ordered:
        day_clock = (plan_clocks or {}).get(fact.plan_id, clock)
        due = deadline_ms(fact, day_clock, next_start[fact.id], week_start)
        if fact.status == COMPLETED or fact.pending:
            state = COMPLETED
        elif fact.status == SKIPPED:
            state = SKIPPED
        elif fact.status == "expired" or due <= now_ms:
            owed_from = (counts_from or {}).get(fact.plan_id)
            state = MISSED if owed_from is None or due > owed_from else BEFORE_PLAN
        else:
            state = OPEN
        judged.append(Judged(fact, state, clock.day(fact.start_ms), due))
    return judged


def deadline_ms(fact: OccFact, clock: DayClock, next_start: int | None, week_start: int = 0) -> int:
    """The instant after which a still-scheduled occurrence is missed: the integer twin, for 100k-row histories,
    of :func:`practiceplan.domain.occurrences.deadline`, which is the reference (a property test over DST zones
    and every flex kind keeps them equal)."""
    day = clock.day(fact.start_ms)
    end_of_day = clock.midnight(day + 1)
    if fact.flex == "weekly":
        return clock.midnight(week_first(day, week_start) + 7)
    if fact.flex == "anytime":
        return max(next_start, end_of_day) if next_start else end_of_day
    if fact.end_ms and fact.end_ms > end_of_day:
        return fact.end_ms
    return end_of_day


# --------------------------------------------------------------------------- adherence and streaks


@dataclass
class Tally:
    completed: int = 0
    missed: int = 0
    skipped: int = 0
    open: int = 0

    def add(self, state: str) -> None:
        if state != BEFORE_PLAN:  # never owed: in no count
            setattr(self, state, getattr(self, state) + 1)

    def as_json(self) -> dict[str, Any]:
        denominator = self.completed + self.missed
        rate = 100 * self.completed / denominator if denominator else None
        return {
            "completed": self.completed,
            "missed": self.missed,
            "skipped": self.skipped,
            "open": self.open,
            "adherence": None if rate is None else round_half_up(rate * 10) / 10,
            "percent": None if rate is None else round_half_up(rate),
        }


def tally(judged: Iterable[Judged], first_day: int | None = None, last_day: int | None = None) -> Tally:
    """Counts for occurrences whose local start day is in [first_day, last_day] (None = unbounded)."""
    result = Tally()
    for item in judged:
        if (first_day is None or item.day >= first_day) and (last_day is None or item.day <= last_day):
            result.add(item.state)
    return result


def plan_streak(judged: Sequence[Judged]) -> tuple[int, int]:
    """(current, longest) runs of completed occurrences in schedule order; skipped and open are neutral."""
    current = longest = 0
    for item in judged:
        if item.state == COMPLETED:
            current += 1
            longest = max(longest, current)
        elif item.state == MISSED:
            current = 0
    return current, longest


def day_streak(days: Iterable[int], today: int) -> tuple[int, int]:
    """Practice-day streak: consecutive local days with an entry ending today, or yesterday if none today."""
    day_set = set(days)
    anchor = today if today in day_set else today - 1
    current = 0
    while anchor - current in day_set:
        current += 1
    longest = run = 0
    previous = None
    for day in sorted(day_set):
        run = run + 1 if previous is not None and day == previous + 1 else 1
        longest = max(longest, run)
        previous = day
    return current, longest


def missed_windows(judged: Iterable[Judged], now_ms: int, clock: DayClock) -> dict[str, int]:
    today = clock.day(now_ms)
    local_now = now_ms + clock.offset(now_ms)
    week_ago = clock.midnight(today - 7) + (local_now % DAY_MS)
    month_ago = clock.midnight(today - 30) + (local_now % DAY_MS)
    result = {"last7Days": 0, "last30Days": 0, "total": 0}
    for item in judged:
        if item.state != MISSED:
            continue
        result["total"] += 1
        if item.deadline_ms > week_ago:
            result["last7Days"] += 1
        if item.deadline_ms > month_ago:
            result["last30Days"] += 1
    return result


# --------------------------------------------------------------------------- logbook days


@dataclass
class DayTotals:
    minutes: int = 0
    entries: int = 0
    linked_minutes: int = 0  # entries that belong to a plan occurrence


# --------------------------------------------------------------------------- predictions


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction for the regularised incomplete beta function (Numerical Recipes)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > 1e-300 else 1e-300
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > 1e-300 else 1e-300
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-12:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def beta_pdf(x: float, a: float, b: float) -> float:
    if x <= 0 or x >= 1:
        return 0.0
    return math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                    + (a - 1) * math.log(x) + (b - 1) * math.log1p(-x))


@lru_cache(maxsize=4096)
def beta_quantile(q: float, a: float, b: float) -> float:
    """Inverse of :func:`beta_cdf`: Newton steps from a normal approximation, kept inside a shrinking
    bisection bracket (so it always converges), to |cdf(x) - q| < 1e-12."""
    low, high = 0.0, 1.0
    mean = a / (a + b)
    sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    z = math.sqrt(2) * _erfinv(2 * q - 1)
    x = min(max(mean + z * sd, 1e-9), 1 - 1e-9)
    for _ in range(100):
        error = beta_cdf(x, a, b) - q
        if abs(error) < 1e-12:
            return x
        if error < 0:
            low = x
        else:
            high = x
        density = beta_pdf(x, a, b)
        step = x - error / density if density > 0 else -1.0
        x = step if low < step < high else (low + high) / 2
        if high - low < 1e-15:
            break
    return x


def _erfinv(y: float) -> float:
    """Inverse error function (Giles' approximation, good to ~1e-9: only a starting point here)."""
    w = -math.log((1.0 - y) * (1.0 + y))
    if w < 5.0:
        w -= 2.5
        p = 2.81022636e-08
        for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
                  -0.00417768164, 0.246640727, 1.50140941):
            p = c + p * w
    else:
        w = math.sqrt(w) - 3.0
        p = -0.000200214257
        for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
                  0.00943887047, 1.00167406, 2.83297682):
            p = c + p * w
    return p * y


def daypart(hour: int) -> str:
    return next(name for lo, hi, name in DAYPARTS if lo <= hour < hi)


@dataclass
class RateModel:
    """Completion rate per (plan, weekday, daypart): Beta(prior + completed, prior + missed).

    The prior is the user's overall rate with a weight of PRIOR_STRENGTH sessions (Beta(1, 1) under it), so a
    cell with little history leans on the user's overall habit, and one with a lot on its own record.
    """

    counts: dict[tuple[str, int, str], list[int]] = field(default_factory=dict)
    completed: int = 0
    missed: int = 0
    _predictions: dict[tuple[str, int, str], tuple[float, float, float]] = field(default_factory=dict)

    @classmethod
    def fit(cls, judged: Iterable[Judged], clock: DayClock) -> RateModel:
        model = cls()
        for item in judged:
            if item.state not in (COMPLETED, MISSED):
                continue
            key = model.key(item.fact.plan_id, item.fact.start_ms, clock)
            cell = model.counts.setdefault(key, [0, 0])
            cell[0 if item.state == COMPLETED else 1] += 1
            if item.state == COMPLETED:
                model.completed += 1
            else:
                model.missed += 1
        return model

    @staticmethod
    def key(plan_id: str, start_ms: int, clock: DayClock) -> tuple[str, int, str]:
        local_ms = start_ms + clock.offset(start_ms)
        weekday = ((local_ms // DAY_MS) + 3) % 7
        return plan_id, weekday, daypart(int(local_ms % DAY_MS // 3_600_000))

    def posterior(self, key: tuple[str, int, str]) -> tuple[float, float]:
        done, missed = self.counts.get(key, (0, 0))
        return self.beta(done, missed)

    def beta(self, done: int, missed: int) -> tuple[float, float]:
        """Beta(a, b) of a cell with ``done`` completed and ``missed`` missed sessions behind it, over the prior."""
        base = (self.completed + 1) / (self.completed + self.missed + 2)
        return PRIOR_STRENGTH * base + done, PRIOR_STRENGTH * (1 - base) + missed

    def predict(self, key: tuple[str, int, str]) -> tuple[float, float, float]:
        """(mean, low, high) completion probability with an 80 % credible interval."""
        cached = self._predictions.get(key)
        if cached is None:
            cached = self._predictions[key] = self._predict(key)
        return cached

    def _predict(self, key: tuple[str, int, str]) -> tuple[float, float, float]:
        a, b = self.posterior(key)
        tail = (1 - INTERVAL) / 2
        return a / (a + b), beta_quantile(tail, a, b), beta_quantile(1 - tail, a, b)


# --------------------------------------------------------------------------- forecast


def occurrence_minutes_of(plan: dict[str, Any]) -> int:
    return plan_duration(plan) or sum(s.get("durationMinutes") or 0 for s in plan_segments(plan)) or 0


def forecast(
    judged: Sequence[Judged],
    plans: dict[str, dict[str, Any]],
    *,
    now_ms: int,
    clock: DayClock,
    days: int,
    capacity: dict[int, int],
    model: RateModel | None = None,
    default_zone: str,
    week_start: int = 0,
    known_ids: Iterable[str] = (),
    horizons: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Planned load for each of the next ``days`` days (today first).

    Counts occurrences that are neither completed nor skipped (today: only those not yet past their deadline),
    from materialised occurrences and, beyond the materialised horizon, from the plans' recurrence rules.
    ``known_ids`` are ids of materialised occurrences in the window that are not in ``judged`` (deleted ones),
    so a slot that exists is never counted twice. ``capacity`` maps weekday (0 = Monday) to minutes.
    ``horizons`` (plan id -> epoch ms materialised up to) lets plans whose occurrences already cover the
    window skip rule expansion.
    """
    from practiceplan.domain import recurrence as rec  # lazily: dateutil, only when rules must be expanded

    materialised = [item.fact for item in judged]
    today = clock.day(now_ms)
    first_ms, end_ms = clock.midnight(today), clock.midnight(today + days)
    buckets = [
        {"date": day_date(today + i).isoformat(), "count": 0, "minutes": 0,
         "capacity": capacity.get((today + i + 3) % 7, 0), "overload": False, "occurrenceIds": [],
         "expected": 0.0, "expectedLow": 0.0, "expectedHigh": 0.0}
        for i in range(days)
    ]
    taken = {(f.plan_id, f.start_ms) for f in materialised}
    known = set(known_ids) | {f.id for f in materialised}
    for item in judged:
        fact = item.fact
        if not first_ms <= fact.start_ms < end_ms or fact.plan_id not in plans:
            continue
        if item.state in (COMPLETED, SKIPPED) or item.deadline_ms <= now_ms:
            continue
        _count(buckets[item.day - today], fact.id, fact.plan_id, fact.start_ms, item.minutes, model, clock)
    # Beyond the materialised horizon (or for plans never materialised here), expand the rules themselves.
    window_lo = datetime.fromtimestamp(first_ms / 1000, UTC)
    window_hi = datetime.fromtimestamp(end_ms / 1000, UTC)
    for plan in plans.values():
        if not plan_is_live(plan) or (horizons or {}).get(plan["id"], 0) >= end_ms:
            continue
        recurrence = plan_recurrence(plan, default_zone)
        if recurrence is None:
            continue
        minutes = occurrence_minutes_of(plan)
        for slot in rec.expand(recurrence, window_lo, window_hi):
            occ_id = rec.occurrence_id(plan["id"], slot.key)
            start = int(slot.start.timestamp() * 1000)
            if occ_id in known or (plan["id"], start) in taken:
                continue
            fact = OccFact(occ_id, plan["id"], start, start + minutes * 60_000, "scheduled", plan_flex(plan))
            if deadline_ms(fact, clock, None, week_start) <= now_ms:
                continue
            _count(buckets[clock.day(start) - today], occ_id, plan["id"], start, minutes, model, clock)
    for bucket in buckets:
        bucket["overload"] = bucket["minutes"] > bucket["capacity"]
        for key in ("expected", "expectedLow", "expectedHigh"):
            bucket[key] = round(bucket[key], 2)
    peak = max(buckets, key=lambda b: (b["minutes"], b["count"], -buckets.index(b)), default=None)
    return {
        "days": buckets,
        "totalCount": sum(b["count"] for b in buckets),
        "totalMinutes": sum(b["minutes"] for b in buckets),
        "overloadDays": sum(1 for b in buckets if b["overload"]),
        "peakDay": {"date": peak["date"], "count": peak["count"], "minutes": peak["minutes"]}
        if peak and peak["minutes"] > 0 else None,
    }


def _count(bucket: dict[str, Any], occ_id: str, plan_id: str, start_ms: int, minutes: int,
           model: RateModel | None, clock: DayClock) -> None:
    bucket["count"] += 1
    bucket["minutes"] += minutes
    bucket["occurrenceIds"].append(occ_id)
    if model is not None:
        mean, low, high = model.predict(RateModel.key(plan_id, start_ms, clock))
        bucket["expected"] += mean
        bucket["expectedLow"] += low
        bucket["expectedHigh"] += high


# --------------------------------------------------------------------------- weeks


def weeks(
    judged: Sequence[Judged],
    day_totals: dict[int, DayTotals],
    linked_minutes: dict[str, int],
    *,
    now_ms: int,
    clock: DayClock,
    count: int,
    week_start: int,
) -> list[dict[str, Any]]:
    """Planned vs actual and adherence for the last ``count`` weeks (oldest first, this week last)."""
    this_week = week_first(clock.day(now_ms), week_start)
    firsts = [this_week - 7 * i for i in range(count - 1, -1, -1)]
    rows = {first: {"weekStart": day_date(first).isoformat(), "plannedMinutes": 0, "loggedPlannedMinutes": 0,
                    "unplannedMinutes": 0, "totalMinutes": 0, "tally": Tally()} for first in firsts}
    for item in judged:
        first = week_first(item.day, week_start)
        row = rows.get(first)
        if row is None:
            continue
        row["tally"].add(item.state)
        if item.state not in (SKIPPED, BEFORE_PLAN) and item.fact.start_ms <= now_ms:
            row["plannedMinutes"] += item.minutes
            row["loggedPlannedMinutes"] += linked_minutes.get(item.fact.id, 0)
    for day, totals in day_totals.items():
        row = rows.get(week_first(day, week_start))
        if row is None:
            continue
        row["totalMinutes"] += totals.minutes
        row["unplannedMinutes"] += totals.minutes - totals.linked_minutes
    result = []
    for first in firsts:
        row = rows[first]
        stats = row.pop("tally").as_json()
        row.update(completed=stats["completed"], missed=stats["missed"], skipped=stats["skipped"],
                   adherence=stats["adherence"], percent=stats["percent"])
        result.append(row)
    return result


def heatmap(day_totals: dict[int, DayTotals], *, today: int, weeks_back: int, week_start: int) -> list[dict[str, Any]]:
    """Practice minutes per local day for the last ``weeks_back`` whole weeks (oldest first)."""
    first = week_first(today, week_start) - 7 * (weeks_back - 1)
    return [
        {"date": day_date(day).isoformat(), "minutes": day_totals.get(day, DayTotals()).minutes,
         "entries": day_totals.get(day, DayTotals()).entries}
        for day in range(first, week_first(today, week_start) + 7)
    ]


# --------------------------------------------------------------------------- everything for `stats`


def block(judged: Sequence[Judged], *, first_day: int | None, last_day: int | None, today: int,
          week_start: int, now_ms: int, clock: DayClock) -> dict[str, Any]:
    """One adherence block (overall or one plan): range counts, this week, this month, streaks, missed."""
    in_range = tally(judged, first_day, last_day).as_json()
    week = week_first(today, week_start)
    month = month_bounds(today)
    current, longest = plan_streak(judged)
    return {
        **in_range,
        "thisWeek": tally(judged, week, week + 6).as_json(),
        "thisMonth": tally(judged, *month).as_json(),
        "allTime": tally(judged).as_json(),
        "currentStreak": current,
        "longestStreak": longest,
        "missedWindows": missed_windows(judged, now_ms, clock),
    }
