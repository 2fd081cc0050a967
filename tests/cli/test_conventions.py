"""Terminal conventions (issue 10): help grouped by task with whole descriptions, usage lines without braces,
bare `practiceplan` shows today, FORCE_COLOR/NO_COLOR, readable labels in entry and upgrade views."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import typer.main

from practiceplan.cli.app import RootGroup, app


def leaves(command, path=()):
    if getattr(command, "commands", None):
        for name, sub in command.commands.items():
            yield from leaves(sub, (*path, name))
    else:
        yield path, command


def test_top_level_help_is_grouped_by_task_with_whole_descriptions(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    text = cli("--help").stdout
    headings = [line[:-1] for line in text.splitlines() if re.fullmatch(r"[A-Z][a-z]+:", line)]
    assert headings == ["Options", "Daily", "Planning", "Insight", "Templates", "Data", "Sync", "Sharing", "Server",
                        "Setup"]
    listing = text.split("Daily:")[1].split("Examples:")[0]
    assert "..." not in listing and "Other commands" not in text
    command = typer.main.get_command(app)
    listed = {name for _, rows in RootGroup.SECTIONS for name, _ in rows}
    assert listed == set(command.commands), "every top-level command belongs to one section"
    for _, rows in RootGroup.SECTIONS:
        for name, description in rows:
            line = next(line for line in text.splitlines() if line.strip().startswith(name + " "))
            assert line.rstrip().endswith(description) and len(line) <= 80, line


def test_group_help_shows_whole_first_clauses(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    for group in ("plan", "log", "template", "template trust", "config", "export", "import"):
        text = cli(*group.split(), "--help").stdout
        assert "..." not in text.split("Commands:")[1].split("Examples:")[0], group


def test_usage_lines_have_no_braces(cli):
    command = typer.main.get_command(app)
    for path, _ in leaves(command):
        usage = cli(*path, "--help").stdout.splitlines()[0]
        assert "{" not in usage and "}" not in usage, usage
    assert cli("plan", "add", "--help").stdout.startswith("Usage: root plan add [OPTIONS] TITLE\n")  # CliRunner names it root


def test_bare_command_shows_today(cli):
    cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00")
    bare = cli()
    assert bare.code == 0 and bare.stdout == cli("today").stdout and "Due today" in bare.stdout


def test_bare_command_through_the_console_script(tmp_path):
    env = {"PRACTICEPLAN_HOME": str(tmp_path), "PRACTICEPLAN_TZ": "Europe/Berlin", "PATH": "/usr/bin:/bin",
           "PRACTICEPLAN_NOW": "2026-03-02T09:00:00Z"}
    result = subprocess.run([sys.executable, "-m", "practiceplan"], env=env, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("Today, Monday 02 March 2026"), result


@pytest.mark.parametrize("no_color,force_color,expected", [
    (None, None, False),  # not a terminal
    (None, "1", True),
    (None, "0", True),  # any non-empty value forces colour (force-color.org)
    ("1", "1", False),  # NO_COLOR wins
    (None, "", False),
])
def test_force_color_and_no_color(monkeypatch, no_color, force_color, expected):
    from practiceplan.render.output import color_enabled

    for name, value in (("NO_COLOR", no_color), ("FORCE_COLOR", force_color)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert color_enabled() is expected


def test_force_color_colours_a_pipe(cli, monkeypatch):
    cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00")
    monkeypatch.delenv("NO_COLOR")
    assert "\x1b[" not in cli("plan", "list").stdout
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert "\x1b[" in cli("plan", "list").stdout
    assert "\x1b[" not in cli("plan", "list", "--json").stdout
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in cli("plan", "list").stdout


def test_log_show_names_the_plan_and_the_session(cli, set_now):
    plan = cli("plan", "add", "Scales", "--every", "daily", "--at", "08:00", "--json").json["plan"]
    occ = cli("occurrences", "--json").json["occurrences"][0]
    set_now("2026-03-03T08:00:00Z")
    entry = cli("checkin", occ["id"][9:15], "--json").json["entry"]
    text = cli("log", "show", entry["id"]).stdout
    plan_line = next(line for line in text.splitlines() if line.startswith("plan "))
    session_line = next(line for line in text.splitlines() if line.startswith("session "))
    assert plan_line.split(maxsplit=1)[1].strip() == "Scales" and plan["id"] not in text
    assert occ["id"][9:15] in session_line and "planned for Mon 02 Mar 2026 08:00" in session_line
    assert occ["id"] not in plan_line


def test_demo_reuses_one_folder_and_says_on_stdout_how_to_use_it(cli, isolated_home, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    tempfile.tempdir = None  # re-read TMPDIR
    try:
        first = cli("demo")
        second = cli("demo")
    finally:
        tempfile.tempdir = None
    folder = isolated_home / "demo"
    assert list((tmp_path / "tmp").iterdir()) == [] and sorted(p.name for p in isolated_home.iterdir()) == ["demo"]
    assert (folder / "practiceplan.db").exists() and (folder / ".practiceplan-demo").exists()
    occ = re.search(r"PRACTICEPLAN_HOME=(\S+) practiceplan checkin (\w+)", second.stdout)
    assert occ and occ.group(1) == str(folder) and "PRACTICEPLAN_HOME=" not in second.stderr
    assert f"export PRACTICEPLAN_HOME={folder}" in second.stdout and "PRACTICEPLAN_HOME" in first.stdout
    monkeypatch.setenv("PRACTICEPLAN_HOME", str(folder))
    assert cli("checkin", occ.group(2)).code == 0  # the command it printed works in the user's shell


def test_demo_never_empties_a_folder_it_did_not_make(cli, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    result = cli("demo", "--home", str(mine), ok=False)
    assert result.code == 65 and (mine / "notes.txt").read_text() == "keep me"
