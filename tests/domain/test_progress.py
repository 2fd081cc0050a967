"""domain/progress.py: parsing, trend, projection, hotspots — with exactly the worked examples of docs/metrics.md
("Progress: tempo and tension"), and DST-safe day counting with hypothesis."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from practiceplan.domain import progress as pr
from practiceplan.domain.models import parse_segment, parse_targets
from practiceplan.errors import InvalidInputError

TODAY = date(2026, 3, 2)  # Monday 2 March 2026, the docs' "today"
TARGET = 80


def d(day: str) -> date:
    return date.fromisoformat(f"2026-{day}")


def review_of(readings: list[tuple[str, float]], target: float | None = TARGET):
    points = pr.daily_best((d(day), bpm) for day, bpm in readings)
    fitted = pr.trend(points)
    return points, fitted, pr.projection(points, fitted, target, TODAY)


# --------------------------------------------------------------------------- docs/metrics.md worked examples


def test_doc_example_1_projected():
    points, fitted, projection = review_of([("02-09", 60), ("02-16", 64), ("02-23", 68)])
    assert fitted.per_day == pytest.approx(4 / 7) and fitted.per_week == pytest.approx(4.0)
    assert pr.percent(points[-1].bpm, TARGET) == 85
    assert projection == {"status": "projected", "date": "2026-03-16", "days": 14}


def test_doc_example_2_least_squares_over_uneven_days():
    points, fitted, projection = review_of([("02-09", 60), ("02-12", 62), ("02-16", 65), ("02-23", 67)])
    assert fitted.per_day == pytest.approx(55 / 110) and fitted.per_week == pytest.approx(3.5)
    assert pr.percent(67, TARGET) == 84
    assert projection == {"status": "projected", "date": "2026-03-21", "days": 19}


def test_doc_example_3_too_few_points_two_days():
    points, fitted, projection = review_of([("02-23", 60), ("02-26", 64)])
    assert fitted.per_day is None and fitted.points == 2
    assert pr.percent(64, TARGET) == 80
    assert projection["status"] == "too-few-points" and projection["date"] is None


def test_doc_example_4_too_few_points_short_span():
    points, fitted, projection = review_of([("02-09", 60), ("02-10", 64), ("02-12", 68)])
    assert fitted.per_day is None and fitted.points == 3 and fitted.span_days == 3
    assert projection["status"] == "too-few-points"


def test_doc_example_5_falling():
    points, fitted, projection = review_of([("02-09", 70), ("02-16", 70), ("02-23", 69)])
    assert fitted.per_day == pytest.approx(-1 / 14) and fitted.per_week == pytest.approx(-0.5)
    assert pr.percent(69, TARGET) == 86
    assert projection == {"status": "not-at-this-rate", "date": None, "days": None}


def test_doc_example_6_flat():
    points, fitted, projection = review_of([("02-09", 70), ("02-16", 70), ("02-23", 70)])
    assert fitted.per_day == 0
    assert pr.percent(70, TARGET) == 88  # 87.5 rounds up
    assert projection["status"] == "not-at-this-rate"


def test_doc_example_7_rising_too_slowly():
    points, fitted, projection = review_of([("02-09", 60), ("02-23", 60.5), ("03-02", 60.5)])
    assert fitted.per_day == pytest.approx(5 / 196)
    assert round(fitted.per_week, 1) == 0.2
    assert pr.percent(60.5, TARGET) == 76
    assert projection["status"] == "not-at-this-rate"  # 765 days away


def test_doc_example_8_projected_day_already_past_is_today():
    points, fitted, projection = review_of([("02-09", 76), ("02-16", 81), ("02-23", 79)])
    assert fitted.per_day == pytest.approx(3 / 14) and fitted.per_week == pytest.approx(1.5)
    assert pr.percent(79, TARGET) == 99
    assert projection == {"status": "projected", "date": "2026-03-02", "days": 0}


def test_doc_example_9_reached():
    points, fitted, projection = review_of([("02-09", 72), ("02-16", 78), ("02-23", 84)])
    assert fitted.per_week == pytest.approx(6.0)
    assert pr.percent(84, TARGET) == 105
    assert projection == {"status": "reached", "date": "2026-02-23", "days": -7}


def test_doc_hotspot_example():
    tensions = [pr.Tension(d("02-09"), "e1", "mm.12-16"), pr.Tension(d("02-16"), "e2", "mm.12-16"),
                pr.Tension(d("02-20"), "e3", "mm.12-16"), pr.Tension(d("02-20"), "e3", "MM.12-16 "),
                pr.Tension(d("02-23"), "e4", "coda"), pr.Tension(d("01-20"), "e0", "bar 3")]
    assert pr.hotspots(tensions, TODAY) == [
        {"passage": "mm.12-16", "count": 3, "lastDay": "2026-02-20"},
        {"passage": "coda", "count": 1, "lastDay": "2026-02-23"},
    ]


# --------------------------------------------------------------------------- other edges


def test_no_target_and_no_readings():
    points, fitted, projection = review_of([("02-09", 60), ("02-16", 64), ("02-23", 68)], target=None)
    assert projection["status"] == "no-target" and pr.percent(68, None) is None
    assert pr.projection([], pr.trend([]), 80, TODAY)["status"] == "too-few-points"


def test_best_reading_of_a_day_counts():
    assert pr.daily_best([(d("02-09"), 60), (d("02-09"), 66), (d("02-08"), 50)]) == [
        pr.Point(d("02-08"), 50), pr.Point(d("02-09"), 66)]


def test_hotspot_ties_go_to_the_most_recent_then_the_name():
    tensions = [pr.Tension(d("02-10"), "a", "b-spot"), pr.Tension(d("02-10"), "a", "a-spot"),
                pr.Tension(d("02-20"), "b", "later")]
    assert [h["passage"] for h in pr.hotspots(tensions, TODAY)] == ["later", "a-spot", "b-spot"]
    # the window is today and the 29 days before it
    edge = [pr.Tension(TODAY - timedelta(days=29), "x", "in"), pr.Tension(TODAY - timedelta(days=30), "y", "out")]
    assert [h["passage"] for h in pr.hotspots(edge, TODAY)] == ["in"]


def test_review_groups_pieces_and_passages_and_uses_targets():
    def reading(day: str, record: dict, entry: str = "e") -> pr.Reading:
        return pr.Reading(d(day), entry + day, "plan_1", record)

    readings = [reading(day, {"kind": "clean", "piece": name, "bpm": bpm})
                for day, bpm, name in (("02-09", 60, "Etude"), ("02-16", 64, "etude"), ("02-23", 68, "Etude"))]
    readings += [reading("02-23", {"kind": "clean", "piece": "Etude", "passage": "mm.12-16", "bpm": 56}),
                 reading("02-23", {"kind": "ceiling", "piece": "Etude", "bpm": 78}),
                 reading("02-23", {"kind": "tension", "piece": "ETUDE", "passage": "coda"}),
                 reading("03-05", {"kind": "clean", "piece": "Etude", "bpm": 99})]  # after today: ignored
    rows = pr.review(readings, today=TODAY, targets={"etude": (80, "segment")})
    assert len(rows) == 1
    row = rows[0]
    assert row["piece"] == "ETUDE" and row["target"] == 80 and row["targetFrom"] == "segment"
    assert row["latest"] == {"bpm": 68, "day": "2026-02-23"} and row["percentOfTarget"] == 85
    assert row["trendBpmPerWeek"] == 4.0 and row["projection"]["date"] == "2026-03-16"
    assert row["ceiling"] == {"bpm": 78, "day": "2026-02-23"}
    assert row["hotspots"] == [{"passage": "coda", "count": 1, "lastDay": "2026-02-23"}]
    assert [p["passage"] for p in row["passages"]] == ["mm.12-16"]
    assert row["passages"][0]["percentOfTarget"] == 70 and row["passages"][0]["trendBpmPerWeek"] is None
    # --from narrows the trend window, not "latest"
    narrow = pr.review(readings, today=TODAY, first=d("02-16"), targets={"etude": (80, "segment")})[0]
    assert [p["day"] for p in narrow["points"]] == ["2026-02-16", "2026-02-23"]
    assert narrow["trendBpmPerWeek"] is None and narrow["latest"]["bpm"] == 68


def test_targets_segment_of_the_recent_plan_then_any_plan_then_plan_tempo():
    plans = {
        "p1": {"id": "p1", "updatedAt": "2026-01-01T00:00:00Z",
               "metadata": {"segments": [{"label": "Etude", "tempoTargets": {"targetBpm": 80}}],
                            "targets": {"tempo": 70}}},
        "p2": {"id": "p2", "updatedAt": "2026-02-01T00:00:00Z",
               "metadata": {"segments": [{"label": "Warm-up", "pieceRefs": [{"title": "Etude"}],
                                          "tempoTargets": {"targetBpm": 90}}], "targets": {"tempo": 100}}},
        "p3": {"id": "p3", "metadata": {"targets": {"tempo": 66}}},
    }
    found = pr.targets_for(plans, {"etude": ["p2", "p1"], "sonata": ["p3"], "free": []})
    assert found["etude"] == (80, "segment")  # last practised with p1
    assert pr.targets_for(plans, {"etude": ["p1", "p2"]})["etude"] == (90, "segment")  # via pieceRefs
    assert pr.targets_for(plans, {"etude": ["p3"]})["etude"] == (90, "segment")  # any plan, newest first
    assert found["sonata"] == (66, "plan") and "free" not in found


# --------------------------------------------------------------------------- parsing


def test_parse_tempo_ceiling_tension():
    assert pr.parse_tempo("Etude=72", "--tempo") == {"kind": "clean", "piece": "Etude", "bpm": 72}
    assert pr.parse_tempo(" etude : mm.12-16 = 60.5", "--ceiling", ["Etude"]) == {
        "kind": "ceiling", "piece": "Etude", "passage": "mm.12-16", "bpm": 60.5}
    assert pr.parse_tempo("Suite: Prelude=90", "--tempo", ["Suite: Prelude"]) == {
        "kind": "clean", "piece": "Suite: Prelude", "bpm": 90}
    assert pr.parse_tension("Etude:mm.12-16") == {"kind": "tension", "piece": "Etude", "passage": "mm.12-16"}


@pytest.mark.parametrize("text, flag", [("Etude", "--tempo"), ("Etude=fast", "--tempo"), ("Etude=5", "--tempo"),
                                         ("Etude=401", "--ceiling"), ("=72", "--tempo"), ("Etude=nan", "--tempo"),
                                         ("Et\x1bude=72", "--tempo")])
def test_bad_tempo_is_refused_with_a_hint(text, flag):
    with pytest.raises(InvalidInputError) as caught:
        pr.parse_tempo(text, flag)
    assert caught.value.hint and "e.g." in caught.value.hint and "\n" not in caught.value.message


def test_tension_needs_a_passage():
    with pytest.raises(InvalidInputError, match="must name a passage"):
        pr.parse_tension("Etude")


def test_segment_target_and_target_flag():
    assert parse_segment("Etude:20:slowly:target=80") == {
        "label": "Etude", "durationMinutes": 20, "instructions": "slowly", "tempoTargets": {"targetBpm": 80}}
    assert parse_segment("Etude:20:target=80") == {"label": "Etude", "durationMinutes": 20,
                                                   "tempoTargets": {"targetBpm": 80}}
    assert "tempoTargets" not in parse_segment("Etude:20:play at target tempo")
    with pytest.raises(InvalidInputError):
        parse_segment("Etude:20:target=fast")
    segments = [parse_segment("Etude:20")]
    assert parse_targets(["etude=88", "tempo=92"], segments) == {"tempo": 92}
    assert segments[0]["tempoTargets"] == {"targetBpm": 88}
    assert parse_targets(["Etude=88"], None) == {"Etude": 88}  # no such segment: a plan target as before


def test_merge_keeps_the_last_of_a_kind_piece_and_passage():
    merged = pr.merge_records([{"kind": "clean", "piece": "Etude", "bpm": 60}],
                              [{"kind": "clean", "piece": "etude", "bpm": 64},
                               {"kind": "tension", "piece": "Etude", "passage": "coda"}])
    assert merged == [{"kind": "clean", "piece": "etude", "bpm": 64},
                      {"kind": "tension", "piece": "Etude", "passage": "coda"}]


def test_records_ignores_what_another_device_got_wrong():
    stored = [{"kind": "clean", "piece": "Etude", "bpm": 60}, {"kind": "clean", "piece": "Etude", "bpm": True},
              {"kind": "odd", "piece": "x"}, "text", {"kind": "tension", "piece": "Etude"},
              {"kind": "clean", "piece": "", "bpm": 60}, {"kind": "ceiling", "piece": "Etude", "bpm": "fast"}]
    assert pr.records(stored) == [{"kind": "clean", "piece": "Etude", "bpm": 60}]
    assert pr.records({"not": "a list"}) == []


# --------------------------------------------------------------------------- DST-safe days (hypothesis)

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Chatham", "UTC"]


@given(zone=st.sampled_from(ZONES), start=st.dates(date(2020, 1, 1), date(2030, 12, 31)),
       at=st.times(), gaps=st.lists(st.integers(1, 40), min_size=2, max_size=12),
       base=st.integers(40, 120), per_day=st.sampled_from([0.25, 0.5, 1.0, -0.5]))
def test_days_are_calendar_dates_across_dst(zone, start, at, gaps, base, per_day):
    """Readings at one local wall-clock time on days with a steady gain per day: the local day of each instant is
    the calendar date (even on 23- and 25-hour days), so the trend is exactly the gain, whatever the zone."""
    tz = ZoneInfo(zone)
    days = [start]
    for gap in gaps:
        days.append(days[-1] + timedelta(days=gap))
    readings = []
    for day in days:
        local = datetime.combine(day, at).replace(tzinfo=tz)
        if local.astimezone(timezone.utc).astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
            local = local.replace(hour=12, minute=0)  # a wall time inside a DST gap: noon always exists
        ms = int(local.astimezone(timezone.utc).timestamp() * 1000)
        assert pr.local_day(ms, tz) == day
        readings.append((pr.local_day(ms, tz), base + per_day * (day - start).days))
    fitted = pr.trend(pr.daily_best(readings))
    if fitted.per_day is not None:
        assert fitted.per_day == pytest.approx(per_day, abs=1e-9)
        assert fitted.per_week == pytest.approx(per_day * 7, abs=1e-9)


@given(start=st.dates(date(2020, 1, 1), date(2030, 12, 31)), gain=st.integers(1, 30),
       behind=st.integers(1, 60), today_offset=st.integers(0, 60))
def test_projection_is_whole_days_after_the_latest(start, gain, behind, today_offset):
    points = [pr.Point(start + timedelta(days=7 * i), 60 + gain * i) for i in range(3)]  # gain BPM a week
    fitted = pr.trend(points)
    today = points[-1].day + timedelta(days=today_offset)
    target = points[-1].bpm + behind
    result = pr.projection(points, fitted, target, today)
    expected = points[-1].day + timedelta(days=-(-behind * 7 // gain))  # ceil(behind / (gain / 7))
    if (max(expected, today) - today).days > pr.HORIZON_DAYS:
        assert result["status"] == "not-at-this-rate"
    else:
        assert result == {"status": "projected", "date": max(expected, today).isoformat(),
                          "days": (max(expected, today) - today).days}


def test_latest_only_keeps_each_keys_last_day_and_drops_the_rest():
    hour = 3_600_000
    base = 1_770_000_000_000
    rows = [("e1", base, "p", [{"kind": "clean", "piece": "Etude", "bpm": 50}, {"kind": "tension", "piece": "Etude",
                                                                               "passage": "coda"}]),
            ("e2", base + 100 * hour, "p", [{"kind": "clean", "piece": "etude", "bpm": 70}]),
            ("e3", base + 110 * hour, "p", [{"kind": "clean", "piece": "Etude", "bpm": 66},
                                            {"kind": "ceiling", "piece": "Etude", "bpm": 80}])]
    kept = pr.latest_only(rows)
    assert [(entry, records[0]["bpm"]) for entry, _, _, records in kept] == [("e2", 70), ("e3", 66), ("e3", 80)]
    # the day's best survives: the review's "latest" is 70 when both readings fall on one local day
    zone = ZoneInfo("UTC")
    readings = [pr.Reading(pr.local_day(ts, zone), e, p, recs[0]) for e, ts, p, recs in kept]
    row = pr.review(readings, today=pr.local_day(base + 200 * hour, zone))[0]
    assert pr.local_day(base + 100 * hour, zone) == pr.local_day(base + 110 * hour, zone)
    assert row["latest"]["bpm"] == 70 and row["ceiling"]["bpm"] == 80
