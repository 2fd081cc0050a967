"""Analytics definitions (docs/metrics.md), the web app's own cases re-expressed, properties and calibration."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from practiceplan.domain import insights as an
from practiceplan.domain import occurrences as occ_mod
from practiceplan.domain.plans import PlanInput, apply_input
from practiceplan.render.plain import sparkline

UTC = timezone.utc
Z_UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")


def ms(*args: int, tz=UTC) -> int:
    return int(datetime(*args, tzinfo=tz).timestamp() * 1000)


def clock_for(zone=Z_UTC, around=(2025, 11, 14)) -> an.DayClock:
    centre = ms(*around)
    return an.DayClock(zone, centre - 800 * an.DAY_MS, centre + 800 * an.DAY_MS)


_counter = iter(range(10**9))


def fact(start: int, status: str = "scheduled", *, plan: str = "p", end: int | None = None, flex: str = "same-day",
         pending: bool = False, minutes: int | None = None) -> an.OccFact:
    return an.OccFact(f"o{next(_counter):06d}", plan, start, end if end is not None else start, status, flex,
                      pending, None, minutes)


NOW_WEB = ms(2025, 11, 14, 12)


def judged(facts, now=NOW_WEB, clock=None):
    return an.judge(facts, now, clock or clock_for())


# --------------------------------------------------------------------------- web app cases (§4.7), our definitions


def test_case1_two_completed_today():
    j = judged([fact(ms(2025, 11, 14, 10), "completed"), fact(ms(2025, 11, 14, 11), "completed")])
    assert an.tally(j).as_json()["percent"] == 100


def test_case2_open_session_is_left_out():
    # web: 50 %; ours: the 14:00 session is open (its deadline is midnight), so 1/1
    j = judged([fact(ms(2025, 11, 14, 10), "completed"), fact(ms(2025, 11, 14, 14))])
    counts = an.tally(j).as_json()
    assert (counts["completed"], counts["missed"], counts["open"], counts["percent"]) == (1, 0, 1, 100)


def test_case3_and_4_no_denominator_is_null():
    assert an.tally(judged([fact(ms(2025, 11, 14, 14)), fact(ms(2025, 11, 14, 15))])).as_json()["adherence"] is None
    assert an.tally([]).as_json() == {"completed": 0, "missed": 0, "skipped": 0, "open": 0, "adherence": None,
                                      "percent": None}


def daily(states: dict[int, str]) -> list[an.OccFact]:
    """One 10:00 session per November day; days not given are missed (scheduled in the past)."""
    return [fact(ms(2025, 11, day, 10), states.get(day, "scheduled")) for day in range(1, 15)]


def test_case5_6_7_8_plan_streaks():
    done = lambda *days: {d: "completed" for d in days}  # noqa: E731
    assert an.plan_streak(judged(daily(done(12, 13, 14)))) == (3, 3)
    assert an.plan_streak(judged(daily(done(11, 13, 14))))[0] == 2
    # nothing on the 14th yet: today's 10:00 session is open (not missed) and ignored
    j = judged(daily(done(12, 13)))
    assert j[-1].state == an.OPEN and an.plan_streak(j)[0] == 2
    assert an.plan_streak(judged(daily(done(9, 10, 11, 14)))) == (1, 3)


def test_case9_10_missed_counts():
    j = judged([fact(ms(2025, 11, 13, 11)), fact(ms(2025, 11, 12, 11))])
    assert an.missed_windows(j, NOW_WEB, clock_for())["total"] == 2
    j = judged([fact(ms(2025, 11, 13, 11), "completed"), fact(ms(2025, 11, 12, 11))])
    assert an.missed_windows(j, NOW_WEB, clock_for())["total"] == 1


def test_case11_missed_windows_use_deadlines():
    j = judged([fact(ms(2025, 11, 13, 11)), fact(ms(2025, 11, 1, 11)), fact(ms(2025, 10, 15, 11))])
    # deadlines: 14 Nov 00:00, 2 Nov 00:00, 16 Oct 00:00; now - 7 d = 7 Nov 12:00, now - 30 d = 15 Oct 12:00
    assert an.missed_windows(j, NOW_WEB, clock_for()) == {"last7Days": 1, "last30Days": 3, "total": 3}


def plan_doc(pid="p", minutes=30, **kwargs) -> dict:
    inp = PlanInput(title="P", every="daily", at=time(9, 0), minutes=minutes, start=date(2025, 11, 1), **kwargs)
    plan = apply_input(None, inp, now=datetime(2025, 11, 1, tzinfo=UTC), default_zone="UTC")
    plan["id"] = pid
    return plan


def test_case12_13_14_forecast():
    plans = {"a": {**plan_doc("a"), "status": "archived"}}  # facts only, no rule expansion
    facts = [fact(ms(2025, 11, 15, 9), plan="a", end=ms(2025, 11, 15, 9, 30)),
             fact(ms(2025, 11, 15, 10), plan="a", end=ms(2025, 11, 15, 10, 45)),
             fact(ms(2025, 11, 16, 9), plan="a", end=ms(2025, 11, 16, 10))]
    j = judged(facts)
    plans["a"]["status"] = "active"
    plans["a"]["schedule"]["kind"] = "single"  # keep the rule out of it: only the facts count
    plans["a"]["schedule"]["startDate"] = "2025-01-01"
    plans["a"]["schedule"]["timeOfDay"] = "00:00"
    out = an.forecast(j, plans, now_ms=NOW_WEB, clock=clock_for(), days=7, capacity={d: 60 for d in range(7)},
                      default_zone="UTC")
    assert [d["date"] for d in out["days"]][:3] == ["2025-11-14", "2025-11-15", "2025-11-16"]
    assert (out["days"][1]["count"], out["days"][1]["minutes"]) == (2, 75)
    assert (out["days"][2]["count"], out["days"][2]["minutes"]) == (1, 60)
    assert out["days"][1]["overload"] is True and out["days"][2]["overload"] is False
    assert out["peakDay"] == {"date": "2025-11-15", "count": 2, "minutes": 75}
    assert out["totalCount"] == 3 and out["totalMinutes"] == 135
    empty = an.forecast([], {}, now_ms=NOW_WEB, clock=clock_for(), days=7, capacity={}, default_zone="UTC")
    assert len(empty["days"]) == 7 and empty["totalCount"] == 0 and empty["peakDay"] is None


@pytest.mark.parametrize(
    "days, expected",
    [
        ([15, 14, 13], 3), ([15, 14, 12], 2), ([14, 13, 12], 3), ([13, 12], 0), ([14, 13], 2), ([], 0), ([15], 1),
        ([14], 1), ([15, 15, 14], 2), (list(range(9, 16)), 7), (list(range(8, 15)), 7),
    ],
)
def test_cases18_28_practice_day_streak(days, expected):
    today = an.day_number(date(2024, 3, 15))
    assert an.day_streak([an.day_number(date(2024, 3, d)) for d in days], today)[0] == expected


# --------------------------------------------------------------------------- our edge cases


def test_optimistic_completion_counts_as_completed():
    j = judged([fact(ms(2025, 11, 13, 10), pending=True)])
    assert j[0].state == an.COMPLETED


def test_overnight_session_deadline_is_its_end():
    start, end = ms(2025, 11, 13, 23), ms(2025, 11, 14, 1)
    j = an.judge([fact(start, end=end)], ms(2025, 11, 14, 0, 30), clock_for())
    assert j[0].deadline_ms == end and j[0].state == an.OPEN
    j = an.judge([fact(start, end=end)], ms(2025, 11, 14, 1, 0), clock_for())
    assert j[0].state == an.MISSED


def test_skipped_sessions_neither_extend_nor_break_a_streak():
    facts = daily({d: "completed" for d in (10, 11, 13, 14)} | {12: "skipped"})
    j = judged(facts)
    assert an.plan_streak(j) == (4, 4)
    assert an.tally(j, an.day_number(date(2025, 11, 10))).as_json()["skipped"] == 1


def test_late_checkin_of_a_missed_session_turns_it_completed():
    before = judged([fact(ms(2025, 11, 10, 10))])
    assert before[0].state == an.MISSED
    after = judged([fact(ms(2025, 11, 10, 10), "completed")])
    assert after[0].state == an.COMPLETED and an.tally(after).as_json()["percent"] == 100


def test_anytime_and_weekly_deadlines():
    a1, a2 = fact(ms(2025, 11, 10, 10), flex="anytime"), fact(ms(2025, 11, 13, 10), flex="anytime")
    j = an.judge([a1, a2], ms(2025, 11, 12, 12), clock_for())
    assert j[0].deadline_ms == ms(2025, 11, 13, 10) and j[0].state == an.OPEN
    assert j[1].deadline_ms == ms(2025, 11, 14)  # the last one: end of its own day
    w = an.judge([fact(ms(2025, 11, 11, 10), flex="weekly")], ms(2025, 11, 16, 23), clock_for())
    assert w[0].deadline_ms == ms(2025, 11, 17) and w[0].state == an.OPEN  # Monday-start week


def test_ms_deadline_matches_the_datetime_rule():
    """analytics.deadline_ms (fast, integers) must agree with occurrences.deadline (the reference)."""
    clock = an.DayClock(BERLIN, ms(2026, 1, 1), ms(2027, 1, 1))
    for start in (ms(2026, 3, 28, 22), ms(2026, 3, 29, 16), ms(2026, 10, 25, 0, 30), ms(2026, 6, 1, 21, 30)):
        for flex in ("fixed", "same-day", "anytime", "weekly"):
            for end in (None, start + 45 * 60_000, start + 5 * 3_600_000):
                f = an.OccFact("x", "p", start, end, "scheduled", flex)
                doc = {"scheduledStart": datetime.fromtimestamp(start / 1000, UTC).isoformat(),
                       "scheduledEnd": datetime.fromtimestamp(end / 1000, UTC).isoformat() if end else None,
                       "flexWindow": flex}
                for week_start in (0, 6):
                    ref = occ_mod.deadline(doc, BERLIN, week_start=week_start)
                    assert an.deadline_ms(f, clock, None, week_start) == int(ref.timestamp() * 1000)


# Zones with DST (and one without): spring gaps and autumn folds at 02:00/03:00, at midnight (Havana, Santiago,
# Asuncion, Beirut, Sao Paulo until 2019), by 30 minutes (Lord Howe), and Apia's skipped day (2011-12-30).
DEADLINE_ZONES = ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Havana", "America/Santiago",
                  "America/Asuncion", "Asia/Beirut", "America/Sao_Paulo", "Pacific/Apia", "UTC")
_SPAN = (ms(2010, 1, 1), ms(2030, 12, 31))


def _transitions(name: str) -> list[int]:
    """The instants the zone's UTC offset changes within _SPAN (epoch ms)."""
    return [start for start, _, _ in an.DayClock(ZoneInfo(name), *_SPAN).segments()[1:] if start < _SPAN[1]]


TRANSITIONS = {name: _transitions(name) or [ms(2020, 6, 1)] for name in DEADLINE_ZONES}


@st.composite
def deadline_cases(draw):
    name = draw(st.sampled_from(DEADLINE_ZONES))
    if draw(st.booleans()):  # near an offset change: the days around it are 23 or 25 hours long (or none)
        start = draw(st.sampled_from(TRANSITIONS[name])) + draw(st.integers(-4 * 1440, 4 * 1440)) * 60_000
    else:
        start = draw(st.integers(_SPAN[0] // 60_000, _SPAN[1] // 60_000)) * 60_000
    flex = draw(st.sampled_from(("fixed", "same-day", "anytime", "weekly")))
    end = draw(st.one_of(st.none(), st.integers(0, 36 * 60).map(lambda m: start + m * 60_000)))
    following = draw(st.one_of(st.none(), st.integers(1, 20 * 1440).map(lambda m: start + m * 60_000)))
    return name, start, end, flex, following, draw(st.integers(0, 6))


@settings(max_examples=600, deadline=None)
@given(deadline_cases())
def test_ms_deadline_equals_the_reference_in_dst_zones(case):
    """insights.deadline_ms (fast, integers) equals occurrences.deadline (the reference) for every flex kind, in
    zones with every kind of DST transition, with and without an end and a next session, any week start."""
    name, start, end, flex, following, week_start = case
    zone = ZoneInfo(name)
    clock = an.DayClock(zone, start - 30 * an.DAY_MS, start + 30 * an.DAY_MS)
    instant = lambda value: datetime.fromtimestamp(value / 1000, UTC)  # noqa: E731
    doc = {"scheduledStart": instant(start).isoformat(), "scheduledEnd": instant(end).isoformat() if end else None,
           "flexWindow": flex}
    ref = occ_mod.deadline(doc, zone, next_start=instant(following) if following else None, week_start=week_start)
    fact = an.OccFact("x", "p", start, end, "scheduled", flex)
    assert an.deadline_ms(fact, clock, following, week_start) == int(ref.timestamp() * 1000)


def test_days_are_calendar_days_across_dst():
    clock = an.DayClock(BERLIN, ms(2026, 3, 1), ms(2026, 4, 30))
    before = ms(2026, 3, 28, 22, 30)  # 23:30 CET Saturday
    after = ms(2026, 3, 29, 21, 30)  # 23:30 CEST Sunday (a 23-hour day)
    assert clock.day(after) - clock.day(before) == 1
    assert clock.midnight(clock.day(after) + 1) - clock.midnight(clock.day(after)) == 23 * 3_600_000
    assert an.day_streak([clock.day(before), clock.day(after)], clock.day(after)) == (2, 2)


def test_user_zone_different_from_plan_zone():
    # a New York plan at 20:00 NY = 01:00 next day in Berlin; the user (Berlin) buckets it on the Berlin day
    ny = ZoneInfo("America/New_York")
    start = ms(2026, 5, 4, 20, tz=ny)
    user_clock = an.DayClock(BERLIN, ms(2026, 1, 1), ms(2026, 12, 31))
    plan_clock = an.DayClock(ny, ms(2026, 1, 1), ms(2026, 12, 31))
    j = an.judge([fact(start, plan="ny")], ms(2026, 5, 5, 3), user_clock, plan_clocks={"ny": plan_clock})
    assert an.day_date(j[0].day) == date(2026, 5, 5)  # Berlin date
    assert j[0].deadline_ms == ms(2026, 5, 5, tz=ny)  # the plan's day ends at NY midnight
    assert j[0].state == an.OPEN  # 23:00 NY: still the plan's day


@pytest.mark.parametrize(
    "now",
    [datetime(2026, 3, 27, 9, tzinfo=UTC), datetime(2026, 12, 28, 9, tzinfo=UTC), datetime(2026, 5, 28, 9, tzinfo=UTC)],
)
def test_forecast_beyond_horizon_crossing_week_month_year_and_dst(now):
    plan = apply_input(None, PlanInput(title="Evening", every="daily", at=time(18, 0), minutes=30,
                                       start=date(2026, 1, 1)), now=now, default_zone="Europe/Berlin")
    now_ms = int(now.timestamp() * 1000)
    clock = an.DayClock(BERLIN, now_ms - 400 * an.DAY_MS, now_ms + 400 * an.DAY_MS)
    out = an.forecast([], {plan["id"]: plan}, now_ms=now_ms, clock=clock, days=10, capacity={d: 20 for d in range(7)},
                      default_zone="Europe/Berlin")
    assert [d["count"] for d in out["days"]] == [1] * 10
    assert all(d["minutes"] == 30 and d["overload"] for d in out["days"])
    dates = [date.fromisoformat(d["date"]) for d in out["days"]]
    assert dates == [now.astimezone(BERLIN).date() + timedelta(days=i) for i in range(10)]
    assert out["totalMinutes"] == sum(d["minutes"] for d in out["days"]) == 300


def test_forecast_today_excludes_done_and_past_deadline():
    plan = plan_doc("a")
    facts = [fact(ms(2025, 11, 14, 9), "completed", plan="a", end=ms(2025, 11, 14, 9, 30)),
             fact(ms(2025, 11, 14, 11), "skipped", plan="a", end=ms(2025, 11, 14, 11, 30)),
             fact(ms(2025, 11, 14, 13), plan="a", end=ms(2025, 11, 14, 13, 30))]
    out = an.forecast(judged(facts), {"a": plan}, now_ms=NOW_WEB, clock=clock_for(), days=1, capacity={},
                      default_zone="UTC")
    assert out["days"][0]["count"] == 1 and out["days"][0]["occurrenceIds"] == [facts[2].id]


# --------------------------------------------------------------------------- properties


states = st.sampled_from(["scheduled", "completed", "skipped", "expired"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60 * 24 * 40), states, st.booleans()), max_size=80),
       st.integers(0, 60 * 24 * 40))
def test_properties(items, now_minute):
    base = ms(2025, 10, 1)
    facts = [fact(base + m * 60_000, s, pending=p, plan="p") for m, s, p in items]
    j = an.judge(facts, base + now_minute * 60_000, clock_for())
    counts = an.tally(j).as_json()
    assert counts["adherence"] is None or 0 <= counts["adherence"] <= 100
    completed = sum(1 for x in j if x.state == an.COMPLETED)
    current, longest = an.plan_streak(j)
    assert 0 <= current <= longest <= completed
    assert counts["completed"] + counts["missed"] + counts["skipped"] + counts["open"] == len(facts)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 60), st.lists(st.integers(0, 24 * 30), max_size=40))
def test_forecast_totals_equal_the_sum_of_days(days, hours):
    base = ms(2025, 11, 14)
    facts = [fact(base + h * 3_600_000, plan="a", end=base + h * 3_600_000 + 1_800_000) for h in hours]
    plan = {**plan_doc("a"), "schedule": {"kind": "single", "startDate": "2025-01-01", "timeOfDay": "00:00",
                                          "durationMinutes": 30}}
    out = an.forecast(an.judge(facts, NOW_WEB, clock_for()), {"a": plan}, now_ms=NOW_WEB, clock=clock_for(),
                      days=days, capacity={}, default_zone="UTC")
    assert out["totalCount"] == sum(d["count"] for d in out["days"])
    assert out["totalMinutes"] == sum(d["minutes"] for d in out["days"])
    assert len(out["days"]) == days


# --------------------------------------------------------------------------- predictions


def test_beta_quantiles_are_accurate():
    assert an.beta_quantile(0.5, 2, 2) == pytest.approx(0.5, abs=1e-6)
    assert an.beta_quantile(0.1, 1, 1) == pytest.approx(0.1, abs=1e-6)
    assert an.beta_quantile(0.9, 1, 1) == pytest.approx(0.9, abs=1e-6)
    # integer parameters: I_x(a, b) = P(Binomial(a + b - 1, x) >= a), computed exactly here
    from math import comb

    def exact_cdf(x: float, a: int, b: int) -> float:
        n = a + b - 1
        return sum(comb(n, k) * x**k * (1 - x) ** (n - k) for k in range(a, n + 1))

    for a, b in ((3, 7), (1, 5), (12, 4), (30, 2)):
        for q in (0.1, 0.5, 0.9):
            x = an.beta_quantile(q, a, b)
            assert exact_cdf(x, a, b) == pytest.approx(q, abs=1e-6)
            assert an.beta_cdf(x, a, b) == pytest.approx(q, abs=1e-9)


def test_predicted_interval_covers_the_true_rate_about_80_percent():
    """Synthetic users: 3 plans x 2 dayparts with known completion rates; count how often the 80 % interval
    of each cell contains its true rate."""
    rng = random.Random(1234)
    clock = an.DayClock(Z_UTC, ms(2024, 1, 1), ms(2026, 1, 1))
    hits = total = 0
    for _trial in range(150):
        facts = []
        truths = {}
        for plan in ("a", "b", "c"):
            for hour in (8, 19):
                rate = rng.uniform(0.1, 0.95)
                sessions = rng.randint(5, 30)
                truths[(plan, hour)] = rate
                for week in range(sessions):
                    start = ms(2024, 1, 1, hour) + week * 7 * an.DAY_MS  # Mondays
                    facts.append(fact(start, "completed" if rng.random() < rate else "scheduled", plan=plan))
        model = an.RateModel.fit(an.judge(facts, ms(2025, 12, 31), clock), clock)
        for (plan, hour), rate in truths.items():
            _, low, high = model.predict(an.RateModel.key(plan, ms(2024, 1, 1, hour), clock))
            hits += low <= rate <= high
            total += 1
    coverage = hits / total
    assert 0.72 <= coverage <= 0.88, coverage


def test_prediction_in_forecast_uses_history():
    clock = clock_for()
    history = [fact(ms(2025, 10, d, 9), "completed", plan="a", end=ms(2025, 10, d, 9, 30)) for d in range(1, 31)]
    model = an.RateModel.fit(an.judge(history, NOW_WEB, clock), clock)
    mean, low, high = model.predict(an.RateModel.key("a", ms(2025, 11, 15, 9), clock))
    assert low < mean < high and mean > 0.8
    never = [fact(ms(2025, 10, d, 9), plan="b") for d in range(1, 31)]
    model = an.RateModel.fit(an.judge(never, NOW_WEB, clock), clock)
    assert model.predict(an.RateModel.key("b", ms(2025, 11, 15, 9), clock))[0] < 0.2


def test_sparkline_and_rounding():
    assert sparkline([0, 5, 10, None]) == "▁▅█·"
    assert an.round_half_up(12.5) == 13 and an.round_half_up(2.5) == 3


def test_sessions_past_their_deadline_before_the_plan_existed_are_not_missed():
    """docs/metrics.md "Before the plan existed": the plan was created 12 Nov 10:00."""
    facts = [fact(ms(2025, 11, day, 9)) for day in (10, 11, 12, 13)] + [fact(ms(2025, 11, 9, 9), "completed")]
    created = ms(2025, 11, 12, 10)
    j = an.judge(facts, NOW_WEB, clock_for(), counts_from={"p": created})
    states = [item.state for item in j]
    # 9th done before the plan existed still counts; 10th/11th never owed; 12th 09:00 still doable at 10:00
    assert states == [an.COMPLETED, an.BEFORE_PLAN, an.BEFORE_PLAN, an.MISSED, an.MISSED]
    counts = an.tally(j).as_json()
    assert (counts["completed"], counts["missed"], counts["open"]) == (1, 2, 0)
    assert an.plan_streak(j) == (0, 1) and an.missed_windows(j, NOW_WEB, clock_for())["total"] == 2
    assert [i.state for i in an.judge(facts, NOW_WEB, clock_for())].count(an.MISSED) == 4  # no counts_from
    for item in j:  # the integer twin agrees with occurrences.owed
        due = datetime.fromtimestamp(item.deadline_ms / 1000, UTC)
        if item.state in (an.MISSED, an.BEFORE_PLAN):
            created_at = datetime.fromtimestamp(created / 1000, UTC)
            assert occ_mod.owed(due, created_at) == (item.state == an.MISSED)
