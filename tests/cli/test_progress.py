"""Issue 15: capture tempo and tension at check-in, segment tempo targets, `progress` (human, plain, JSON, SVG),
the tempo line of `stats`, and the wire round trip of everything captured."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from practiceplan.sync import wire as sync_wire
from tests import wire

DAYS = (("2026-02-09", 60, "mm.12-16"), ("2026-02-16", 64, "mm.12-16"), ("2026-02-23", 68, "coda"))


def _occ_on(cli, day: str) -> str:
    return cli("occurrences", "--from", day, "--to", day, "--json").json["occurrences"][0]["id"]


@pytest.fixture
def history(cli, set_now):
    """docs/metrics.md example 1: a daily Etudes plan (segment Etude, target 80) checked in on 9, 16, 23 Feb."""
    set_now("2026-02-09T08:00:00Z")
    plan = cli("plan", "add", "Etudes", "--every", "daily", "--at", "17:00", "--piece", "Etude — Czerny",
               "--segment", "Etude:20:slowly:target=80", "--segment", "Scales:10", "--json").json["plan"]
    for day, bpm, spot in DAYS:
        set_now(f"{day}T18:00:00Z")
        cli("checkin", _occ_on(cli, day), "--tempo", f"etude={bpm}", "--ceiling", f"Etude={bpm + 10}",
            "--tension", f"Etude:{spot}", "--tempo", f"Etude:mm.12-16={bpm - 8}")
    set_now("2026-03-02T09:00:00Z")
    return plan


def test_segment_target_is_stored_on_the_plan_and_its_sessions(cli, history):
    segments = history["metadata"]["segments"]
    assert segments[0]["tempoTargets"] == {"targetBpm": 80} and "tempoTargets" not in segments[1]
    occ = cli("occurrences", "--from", "2026-03-03", "--to", "2026-03-03", "--json").json["occurrences"][0]
    assert occ["segments"][0]["tempoTargets"] == {"targetBpm": 80}
    wire.check_occurrence(occ)
    assert sync_wire.problems("practice_plan", sync_wire.to_push("practice_plan", history)) == []
    edited = cli("plan", "edit", "Etudes", "--segment", "Etude:20", "--target", "etude=88", "--json").json["plan"]
    assert edited["metadata"]["segments"] == [{"label": "Etude", "durationMinutes": 20,
                                               "tempoTargets": {"targetBpm": 88}}]
    bad = cli("plan", "edit", "Etudes", "--segment", "Etude:20:target=fast", ok=False)
    assert bad.code == 65 and "hint:" in bad.stderr


def test_checkin_flags_are_stored_in_the_entry_and_the_session(cli, history):
    entry = cli("log", "list", "--json").json["entries"][0]
    expected = [{"kind": "clean", "piece": "Etude", "bpm": 68},
                {"kind": "clean", "piece": "Etude", "passage": "mm.12-16", "bpm": 60},
                {"kind": "ceiling", "piece": "Etude", "bpm": 78},
                {"kind": "tension", "piece": "Etude", "passage": "coda"}]
    assert entry["metadata"]["progress"] == expected
    assert entry["pieces"] == [{"title": "Etude", "composer": "Czerny", "tempo": 68}]
    occ = cli("occurrences", "--history", entry["metadata"]["planOccurrenceId"], "--json").json
    stored = occ.get("occurrence", occ)
    assert stored["metrics"]["progress"] == expected


def test_bad_flags_are_one_line_and_a_hint(cli, set_now):
    set_now("2026-02-09T08:00:00Z")
    cli("plan", "add", "Etudes", "--every", "daily", "--at", "17:00")
    occ = _occ_on(cli, "2026-02-09")
    for flags in (("--tempo", "Etude"), ("--tempo", "Etude=fast"), ("--ceiling", "Etude=1000"),
                  ("--tension", "Etude")):
        run = cli("checkin", occ, *flags, ok=False)
        assert run.code == 65, run
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 2 and lines[0].startswith("practiceplan: error:") and lines[1].startswith("hint:")
    assert cli("log", "list", "--json").json["entries"] == []  # nothing written


def test_terminal_asks_for_segments_with_a_target(cli, set_now, monkeypatch):
    set_now("2026-02-09T08:00:00Z")
    cli("plan", "add", "Etudes", "--every", "daily", "--at", "17:00", "--segment", "Etude:20:target=80",
        "--segment", "Scales:10")
    monkeypatch.setattr("practiceplan.cli.occurrences.stdin_is_tty", lambda: True)
    set_now("2026-02-09T18:00:00Z")
    run = cli("checkin", _occ_on(cli, "2026-02-09"), input="fast\n70\n\nmm.1-4, coda\n")
    assert "clean tempo reached (target 80 BPM" in run.stdout and "Scales" not in run.stdout
    assert "not a tempo" in run.stderr  # asked again
    entry = cli("log", "list", "--json").json["entries"][0]
    assert entry["metadata"]["progress"] == [
        {"kind": "clean", "piece": "Etude", "bpm": 70},
        {"kind": "tension", "piece": "Etude", "passage": "mm.1-4"},
        {"kind": "tension", "piece": "Etude", "passage": "coda"}]


def test_no_prompt_when_a_tempo_was_given_or_stdin_is_not_a_terminal(cli, set_now, monkeypatch):
    set_now("2026-02-09T08:00:00Z")
    cli("plan", "add", "Etudes", "--every", "daily", "--at", "17:00", "--segment", "Etude:20:target=80")
    set_now("2026-02-10T18:00:00Z")
    run = cli("checkin", _occ_on(cli, "2026-02-09"), input="70\n80\ncoda\n")  # not a TTY: never asks
    assert "tempo" not in run.stdout and "progress" not in cli("log", "list", "--json").json["entries"][0]["metadata"]
    monkeypatch.setattr("practiceplan.cli.occurrences.stdin_is_tty", lambda: True)
    run = cli("checkin", _occ_on(cli, "2026-02-10"), "--tempo", "Etude=71", input="")
    assert "clean tempo reached" not in run.stdout


def test_progress_plain_text(cli, history):
    out = cli("progress").stdout
    assert "\x1b[" not in out
    lines = out.splitlines()
    assert lines[0] == "Progress — clean tempo since Tue 06 Jan 2026, tension spots in the last 30 days"
    block = "\n".join(lines[2:10])
    assert block == """Etude — target 80 BPM
  target  ┈┈┈  80 BPM
  clean   ▁▂▄  latest 68 BPM (Mon 23 Feb 2026) = 85% of 80
  trend   +4.0 BPM/week over 3 days
  goal    target by Mon 16 Mar 2026 (in 14 days) at this rate
  fastest 78 BPM tried (Mon 23 Feb 2026)
  tension mm.12-16 ×2, coda ×1 (last 30 days)
  passage ▁▂▃  mm.12-16: 60 BPM (75%) · +4.0 BPM/week · target by Mon 30 Mar 2026 (in 28 days) at this rate"""


def test_progress_json(cli, history):
    data = cli("progress", "--json").json
    assert data["today"] == "2026-03-02" and data["from"] == "2026-01-06" and data["hotspotDays"] == 30
    (row,) = data["pieces"]
    assert row["piece"] == "Etude" and row["target"] == 80 and row["targetFrom"] == "segment"
    assert row["latest"] == {"bpm": 68, "day": "2026-02-23"} and row["percentOfTarget"] == 85
    assert row["trendBpmPerWeek"] == 4.0 and row["trendPoints"] == 3
    assert row["projection"] == {"status": "projected", "date": "2026-03-16", "days": 14}
    assert row["ceiling"] == {"bpm": 78, "day": "2026-02-23"}
    assert row["points"] == [{"day": "2026-02-09", "bpm": 60}, {"day": "2026-02-16", "bpm": 64},
                             {"day": "2026-02-23", "bpm": 68}]
    assert row["hotspots"] == [{"passage": "mm.12-16", "count": 2, "lastDay": "2026-02-16"},
                               {"passage": "coda", "count": 1, "lastDay": "2026-02-23"}]
    assert row["passages"][0]["passage"] == "mm.12-16" and row["passages"][0]["latest"]["bpm"] == 60
    assert row["planIds"] == [history["id"]]
    narrowed = cli("progress", "--from", "2026-02-16", "--json").json["pieces"][0]
    assert narrowed["trendBpmPerWeek"] is None and narrowed["projection"]["status"] == "too-few-points"


def test_progress_filters_and_errors(cli, history):
    assert [p["piece"] for p in cli("progress", "--piece", "ETU", "--json").json["pieces"]] == ["Etude"]
    assert cli("progress", "--plan", "Etudes", "--json").json["pieces"][0]["piece"] == "Etude"
    missing = cli("progress", "--piece", "Sonata", ok=False)
    assert missing.code == 3 and "hint: pieces with records: Etude" in missing.stderr
    assert cli("progress", "--plan", "nope", ok=False).code == 3
    later = cli("progress", "--from", "2026-04-01", ok=False)
    assert later.code == 65 and "after today" in later.stderr
    assert cli("progress", "--from", "not a day", ok=False).code in (2, 65)


def test_progress_without_records(cli):
    out = cli("progress").stdout
    assert "No tempo or tension recorded yet" in out and "--tempo" in out
    assert cli("progress", "--json").json["pieces"] == []


def test_progress_svg_is_well_formed(cli, history, tmp_path):
    target = tmp_path / "progress.svg"
    run = cli("progress", "--svg", str(target))
    root = ET.fromstring(target.read_text(encoding="utf-8"))
    assert root.tag.endswith("svg")
    text = "".join(root.itertext()).replace("\xa0", " ")
    assert "Etude" in text and "85%" in text and "16 Mar 2026" in text
    assert run.stdout  # the view is also shown


def test_no_colour_when_piped_even_without_no_color(cli, history, monkeypatch):
    monkeypatch.delenv("NO_COLOR")
    assert "\x1b[" not in cli("progress").stdout
    assert "\x1b[" not in cli("stats", "--no-pager").stdout


def test_stats_has_one_tempo_line_per_piece(cli, history):
    out = cli("stats", "--no-pager").stdout
    lines = [line for line in out.splitlines() if line.startswith("Tempo")]
    assert lines == ["Tempo  Etude: 68 of 80 BPM (85%) · +4.0 BPM/week · target by Mon 16 Mar 2026 (in 14 days) "
                     "at this rate"]
    data = cli("stats", "--json").json
    assert data["tempo"] == [{"piece": "Etude", "latest": {"bpm": 68, "day": "2026-02-23"}, "target": 80,
                              "percentOfTarget": 85, "trendBpmPerWeek": 4.0,
                              "projection": {"status": "projected", "date": "2026-03-16", "days": 14}}]


def test_stats_without_tempo_has_no_tempo_line(cli, set_now):
    cli("plan", "add", "Scales", "--every", "daily", "--at", "17:00")
    assert not re.search(r"^Tempo", cli("stats", "--no-pager").stdout, re.M)
    assert cli("stats", "--json").json["tempo"] == []


def test_uncheck_keeps_the_entry_records_and_clears_the_session(cli, history, set_now):
    set_now("2026-02-23T18:05:00Z")
    occ = _occ_on(cli, "2026-02-23")
    cli("uncheck", occ)
    stored = cli("occurrences", "--from", "2026-02-23", "--to", "2026-02-23", "--json").json["occurrences"][0]
    assert "progress" not in stored["metrics"]
    set_now("2026-03-02T09:00:00Z")
    assert cli("progress", "--json").json["pieces"][0]["latest"]["bpm"] == 68  # the practice happened


# --------------------------------------------------------------------------- wire


def test_captured_data_is_accepted_and_kept_by_a_mirubato_server(cli, history):
    """Every place the capture writes passes the server's validation and survives its projection."""
    entry = cli("log", "list", "--json").json["entries"][0]
    occ_id = entry["metadata"]["planOccurrenceId"]
    occ = next(o for o in cli("export", "json").json["planOccurrences"] if o["id"] == occ_id)
    for kind, doc in (("logbook_entry", entry), ("plan_occurrence", occ), ("practice_plan", history)):
        pushed = sync_wire.to_push(kind, doc)
        assert sync_wire.problems(kind, pushed) == [], kind
    kept_entry = sync_wire.canonical("logbook_entry", entry)
    assert kept_entry["metadata"]["progress"] == entry["metadata"]["progress"]
    assert "tempo" not in kept_entry["pieces"][0]  # a Mirubato server drops pieces[].tempo: never read
    kept_occ = sync_wire.canonical("plan_occurrence", occ)
    assert kept_occ["metrics"]["progress"] == occ["metrics"]["progress"]
    kept_plan = sync_wire.canonical("practice_plan", history)
    assert kept_plan["metadata"]["segments"][0]["tempoTargets"] == {"targetBpm": 80}
    # no booleans and no nested objects inside metrics values (arrays of flat objects only)
    for record in occ["metrics"]["progress"]:
        assert all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in record.values())
    wire.check_entry(entry)
    wire.check_occurrence(occ)


def test_progress_survives_export_and_import(cli, history, tmp_path, monkeypatch):
    before = cli("progress", "--json").json
    exported = tmp_path / "all.json"
    cli("export", "json", "-o", str(exported))
    monkeypatch.setenv("PRACTICEPLAN_HOME", str(tmp_path / "other"))
    cli("import", "json", str(exported))
    after = cli("progress", "--json").json
    assert after == before
    assert json.loads(exported.read_text())["entries"]
