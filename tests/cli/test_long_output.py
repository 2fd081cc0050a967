"""Long output (issue 10): paged through $PAGER on a terminal (never off one, never with --no-pager), notes on
one line unless --full, "N of M shown" when limited; rails and the calendar without colour and at 80 columns."""

from __future__ import annotations

import io
import os
import shlex

import pytest

from practiceplan.render import output


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def pager(tmp_path, monkeypatch):
    """$PAGER is a command that saves what it is given; the terminal is 20 lines tall."""
    saved = tmp_path / "paged.txt"
    monkeypatch.setenv("PAGER", f"sh -c {shlex.quote('cat > ' + shlex.quote(str(saved)))}")
    monkeypatch.setattr("shutil.get_terminal_size", lambda *a, **k: os.terminal_size((80, 20)))
    return saved


def test_long_output_on_a_terminal_goes_through_the_pager(pager, monkeypatch):
    screen = FakeTerminal()
    monkeypatch.setattr("sys.stdout", screen)
    with output.paged(True):
        print("\n".join(f"line {n}" for n in range(50)))
    assert screen.getvalue() == "" and pager.read_text().startswith("line 0\nline 1\n")


def test_short_output_no_pager_and_pipes_are_never_paged(pager, monkeypatch):
    screen = FakeTerminal()
    monkeypatch.setattr("sys.stdout", screen)
    with output.paged(True):
        print("short")
    with output.paged(False):
        print("\n".join(["long"] * 50))
    monkeypatch.setenv("PAGER", "cat")
    with output.paged(True):
        print("\n".join(["cat"] * 50))
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stdout", pipe)
    with output.paged(True):
        print("\n".join(["piped"] * 50))
    assert not pager.exists()
    assert screen.getvalue().startswith("short\nlong\n") and screen.getvalue().count("cat") == 50
    assert pipe.getvalue().count("piped") == 50


def test_default_pager_is_less_frx(monkeypatch):
    monkeypatch.delenv("PAGER", raising=False)
    seen = {}

    def fake_run(argv, input, env, check):
        seen.update(argv=argv, less=env.get("LESS"))

    monkeypatch.setattr("subprocess.run", fake_run)
    monkeypatch.setattr("shutil.get_terminal_size", lambda *a, **k: os.terminal_size((80, 5)))
    output.show_paged("x\n" * 10, FakeTerminal())
    assert seen == {"argv": ["less", "-FRX"], "less": "FRX"}


def entries(cli, count: int, note: str = "short") -> None:
    from practiceplan.services.session import Session
    from practiceplan.settings import Settings

    planner = Session(Settings())
    try:
        for n in range(count):
            planner.logbook.add({"timestamp": f"2026-02-{1 + n % 28:02d}T10:{n % 60:02d}:00Z", "duration": 10,
                                 "notes": note})
    finally:
        planner.close()


def test_log_list_says_how_many_are_shown_and_keeps_notes_on_one_line(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    long_note = "slow practice, left hand alone, then hands together at 60 " * 4 + "\nand a second line"
    entries(cli, 60, long_note)
    text = cli("log", "list").stdout
    lines = text.splitlines()
    assert lines[-1] == "50 of 60 entries shown; --limit 0 shows all, --full whole notes"
    assert len(lines) == 2 + 50 + 1 and all(len(line) <= 80 for line in lines)
    assert "…" in lines[2] and "second line" not in text
    data = cli("log", "list", "--json").json
    assert len(data["entries"]) == 50 and data["total"] == 60
    full = cli("log", "list", "--limit", "1", "--full").stdout
    assert "and a second line" in " ".join(full.split()) and "1 of 60 entries shown" in full
    everything = cli("log", "list", "--limit", "0").stdout
    assert "shown" not in everything and len(everything.splitlines()) == 62


def test_commands_page_on_a_terminal_unless_no_pager(cli, pager, monkeypatch):
    entries(cli, 40)
    monkeypatch.setattr(output, "is_terminal", lambda stream=None: True)
    assert cli("log", "list").stdout == "" and pager.read_text().count("short") == 40
    pager.unlink()
    assert cli("log", "list", "--no-pager").stdout.count("short") == 40 and not pager.exists()
    assert cli("log", "list", "--json").stdout.count("short") == 40 and not pager.exists()


def test_a_long_cascade_dry_run_is_paged(cli, pager, monkeypatch):
    cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00")
    occ = cli("occurrences", "--json").json["occurrences"][0]
    monkeypatch.setattr(output, "is_terminal", lambda stream=None: True)
    result = cli("reschedule", occ["id"], "--to", "2026-03-02T19:00", "--cascade", "--dry-run")
    assert result.stdout == "" and pager.read_text().count("Scales") > 30
    assert "would change; nothing was written" in result.stderr
    pager.unlink()
    unpaged = cli("reschedule", occ["id"], "--to", "2026-03-02T19:00", "--cascade", "--dry-run", "--no-pager")
    assert unpaged.stdout.count("Scales") > 30 and not pager.exists()


def test_rails_without_colour_tell_missed_from_done():
    from practiceplan.render.plain import RAIL_GLYPHS, rail_parts

    assert len(set(RAIL_GLYPHS.values())) == 4
    rail = "".join(chars for chars, _ in rail_parts(completed=3, due=0, remaining=0, missed=3))
    assert rail == RAIL_GLYPHS["done"] * 6 + RAIL_GLYPHS["missed"] * 6


def test_today_without_colour_shows_missed_sessions_differently(cli, set_now):
    cli("plan", "add", "Scales", "--every", "daily", "--at", "07:00", "--start", "2026-03-02")
    occs = cli("occurrences", "--json").json["occurrences"]
    set_now("2026-03-04T20:00:00Z")
    cli("checkin", occs[1]["id"])
    line = next(line for line in cli("today").stdout.splitlines() if line.startswith("Scales "))
    assert "✗" in line and "█" in line and "1 missed" in line


def test_calendar_fits_80_columns_without_splitting_words(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    cli("plan", "add", "Repertoire: Clair de lune", "--every", "weekly", "--on", "mo,we,fr,sa", "--at", "18:00")
    cli("plan", "add", "Scales & arpeggios", "--every", "weekly", "--on", "mo,tu,we,th,fr", "--at", "07:30")
    text = cli("calendar", "--weeks", "2").stdout
    lines = text.splitlines()
    assert all(len(line.rstrip()) <= 80 for line in lines), [line for line in lines if len(line.rstrip()) > 80]
    assert "Repertoire: Clair de lune" in text and "Scales & arpeggios" in text
    monkeypatch.setenv("COLUMNS", "140")
    wide = cli("calendar", "--weeks", "2").stdout
    words = {w for line in wide.splitlines() for w in line.split()}
    assert {"Repertoire:", "arpeggios", "Clair"} <= words and "Repertoi" not in words


def test_the_fast_path_takes_no_pager():
    from practiceplan.cli.entry import fast_form

    assert fast_form(["occurrences", "--no-pager"]) == ("occurrences", None, False, {"no_pager": True})
    assert fast_form(["stats", "--json", "--no-pager"]) == ("stats", None, True, {"no_pager": True})
    assert fast_form(["today", "--no-pager"]) is None  # today is never paged: Typer answers it
    assert fast_form(["occurrences", "--no-pager=1"]) is None
