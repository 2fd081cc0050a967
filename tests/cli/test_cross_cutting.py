"""Exit codes (one test per code), version, config, colour, newer databases, completions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from practiceplan import errors
from practiceplan.cli._common import handle_errors

ROOT = Path(__file__).resolve().parents[2]


def test_exit_0_and_version(cli):
    from practiceplan import __version__

    assert cli("--version").stdout.strip() == f"practiceplan {__version__}"


def test_exit_2_usage(cli):
    result = cli("plan", "add", "x", "--bogus", ok=False)
    lines = result.stderr.splitlines()
    assert result.code == 2 and len(lines) == 2 and lines[0].startswith("practiceplan: error: no such option: --bogus")
    assert lines[1] == "hint: usage: practiceplan plan add [OPTIONS] TITLE; see `practiceplan plan add --help`"
    assert cli("frobnicate", ok=False).code == 2


@pytest.mark.parametrize("args, message", [
    (["checkin"], "missing argument 'OCC'"),
    (["plan", "add"], "missing argument 'TITLE'"),
    (["forecast", "--days", "x"], "invalid value for '--days': 'x' is not a valid int range"),
    (["occurrences", "--status", "bogus"], "invalid value for '--status'"),
    (["stats", "--bogus"], "no such option: --bogus"),
    (["frobnicate"], "no such command 'frobnicate'"),
    (["checkin", ""], "no occurrence id given"),
    (["uncheck", "  "], "no occurrence id given"),
])
def test_usage_errors_are_the_documented_two_lines_with_exit_2(cli, args, message):
    """Issue 10.13: Click's own usage errors and empty ids: `practiceplan: error: ...` + `hint: ...`, exit 2."""
    result = cli(*args, ok=False)
    lines = result.stderr.splitlines()
    assert result.code == 2 and len(lines) == 2, result
    assert lines[0].startswith(f"practiceplan: error: {message}") and lines[1].startswith("hint: ")
    assert "Usage:" not in result.stderr and "Try '" not in result.stderr and result.stdout == ""


def test_reschedule_without_to_is_a_usage_error(cli):
    cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00")
    occ = cli("occurrences", "--json").json["occurrences"][0]
    result = cli("reschedule", occ["id"], ok=False)
    assert result.code == 2 and result.stderr.splitlines() == [
        "practiceplan: error: --to WHEN is required", "hint: e.g. --to 'tomorrow 18:00' (or use `practiceplan defer`)"]


@pytest.mark.parametrize("args", [
    ["plan", "add", "X", "--every", "daily", "--flex", "fixed"],
    ["plan", "add", "X", "--every", "daily", "--start", "2026-04-01", "--end", "2026-03-01"],
    ["plan", "add", "X", "--rrule", "FREQ=DAILY;COUNT=3;UNTIL=20260401"],
    ["plan", "add", "X", "--once", "friday 9:00", "--every", "daily"],
    ["plan", "add", "", "--every", "daily"],
    ["plan", "add", "X", "--every", "daily", "--segment", "Scales:0"],
    ["stats", "--from", "2026-03-05", "--to", "2026-03-01"],
    ["occurrences", "--from", "2026-03-05", "--to", "2026-03-01"],
    ["config", "set", "week_start", "someday"],
    ["config", "set", "daily_capacity", "lots"],
])
def test_invalid_input_errors_carry_a_hint(cli, args):
    result = cli(*args, ok=False)
    lines = result.stderr.splitlines()
    assert result.code == 65 and len(lines) == 2 and lines[1].startswith("hint: "), result


def test_exit_3_not_found(cli):
    result = cli("plan", "show", "nothing", ok=False)
    assert result.code == 3 and result.stderr.startswith("practiceplan: error: no plan matches 'nothing'")
    assert "hint:" in result.stderr


def test_exit_65_invalid_input(cli):
    assert cli("log", "add", "--minutes", "5", "--when", "2026-02-30", ok=False).code == 65


def test_exit_75_busy(cli, isolated_home, monkeypatch):
    cli("plan", "list")
    monkeypatch.setattr("practiceplan.store.locking.BUSY_TIMEOUT_MS", 200)
    holder = sqlite3.connect(isolated_home / "practiceplan.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = cli("log", "add", "--minutes", "5", ok=False)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.code == 75 and "busy" in result.stderr and "Traceback" not in result.stderr
    assert cli("log", "list", "--json").json["entries"] == []


@pytest.mark.parametrize(
    "error, code",
    [
        (errors.RemoteUnavailableError("server down"), 69),
        (errors.NotAuthorisedError("bad token"), 77),
        (errors.InvalidInputError("bad"), 65),
        (errors.BusyError("busy"), 75),
        (errors.NotFoundError("gone"), 3),
        (errors.UsageError("usage"), 2),
    ],
)
def test_error_classes_map_to_documented_codes(error, code):
    app = typer.Typer()

    @app.command()
    @handle_errors
    def boom() -> None:
        raise error

    result = CliRunner().invoke(app, [])
    assert result.exit_code == code
    assert result.stderr.splitlines()[0] == f"practiceplan: error: {error.message}"
    assert int(error.exit_code) == code


def test_exit_codes_documented_in_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for code in errors.ExitCode:
        assert f"| {int(code)} |" in readme, code


def test_config_path_and_show(cli, isolated_home):
    paths = cli("config", "path", "--json").json
    assert paths == {"database": str(isolated_home / "practiceplan.db"), "dataDir": str(isolated_home),
                     "configFile": str(isolated_home / "config.toml")}
    cli("config", "set", "week_start", "Sunday")
    assert cli("config", "show", "--json").json["week_start"] == "sunday"
    assert cli("config", "set", "horizon_days", "0", ok=False).code == 65
    assert cli("config", "set", "nope", "1", ok=False).code == 65
    other = isolated_home / "elsewhere.db"
    assert cli("--db", str(other), "config", "path", "--json").json["database"] == str(other)


def test_db_flag_and_env(cli, tmp_path, monkeypatch):
    target = tmp_path / "x" / "mine.db"
    cli("--create", "--db", str(target), "log", "add", "--minutes", "5")  # its folder is new: --create (issue 10.5)
    assert target.exists()
    monkeypatch.setenv("PRACTICEPLAN_DB", str(target))
    assert len(cli("log", "list", "--json").json["entries"]) == 1


def test_newer_database_is_refused_untouched(cli, isolated_home):
    cli("plan", "list")
    db = isolated_home / "practiceplan.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 999")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    result = cli("log", "add", "--minutes", "5", ok=False)
    assert result.code == 65 and "newer practiceplan" in result.stderr
    assert db.read_bytes() == before


def test_database_file_is_private(cli, isolated_home):
    cli("plan", "list")
    assert (isolated_home / "practiceplan.db").stat().st_mode & 0o077 == 0


def test_every_command_has_help_with_an_example():
    from practiceplan.cli.app import app

    command = typer.main.get_command(app)

    def walk(cmd, path):
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield path, cmd

    leaves = list(walk(command, []))
    assert len(leaves) > 20
    runner = CliRunner()
    for path, cmd in leaves:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Examples:" in result.stdout and "practiceplan " in result.stdout, path
        if any(p.name == "json_" for p in cmd.params) or path[-1] in ("list", "show", "today", "next", "occurrences"):
            assert "--json" in result.stdout, path


def test_completions_are_current():
    from practiceplan.cli.app import app
    from practiceplan.cli.completion import generate

    files = {"bash": "practiceplan.bash", "zsh": "_practiceplan", "fish": "practiceplan.fish"}
    for shell, name in files.items():
        committed = (ROOT / "completions" / name).read_text(encoding="utf-8")
        assert committed == generate(app, shell, "practiceplan"), (
            f"completions/{name} is stale: run `practiceplan completion {shell} > completions/{name}`"
        )


def test_demo_builds_history(tmp_path):
    from practiceplan.services.demo import build_demo

    planner = build_demo(tmp_path / "demo")
    plans = planner.store.plans()
    assert len(plans) == 2
    entries = planner.store.entries()
    linked = [e for e in entries if e["metadata"].get("source") == "practice_plan"]
    assert len(linked) > 15 and len(entries) > len(linked)
    completed = planner.store.occurrences(status="completed")
    assert {o["logEntryId"] for o in completed} == {e["id"] for e in linked}
    view = planner.today.agenda()
    assert view["plans"] and view["next"] is not None
    planner.close()


def test_demo_command_prints_today(cli, tmp_path):
    result = cli("demo", "--home", str(tmp_path / "d"))
    assert "Today," in result.stdout and "This week" in result.stdout
    assert "PRACTICEPLAN_HOME=" in result.stdout  # how to use the demo data is part of the output (issue 10)


def test_main_builds_only_the_needed_branch_and_behaves_the_same(tmp_path):
    import subprocess
    import sys

    from practiceplan.cli.app import FEATURE_NAMES, _command_word, build_app

    assert _command_word(["--db", "x.db", "plan", "list"]) == "plan"
    assert _command_word(["--version"]) is None
    names = set().union(*FEATURE_NAMES.values())
    assert {"today", "plan", "log", "template", "export", "import", "stats", "skip", "remind", "demo"} <= names
    small = typer.main.get_command(build_app("today"))
    assert "today" in small.commands and "template" not in small.commands
    env = {"PRACTICEPLAN_HOME": str(tmp_path), "PRACTICEPLAN_TZ": "UTC", "PATH": "/usr/bin:/bin"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "practiceplan", *args], env=env, capture_output=True, text=True)

    assert run("frobnicate").returncode == 2
    assert run("--db", str(tmp_path / "a.db"), "plan", "list", "--json").returncode == 0
    assert (tmp_path / "a.db").exists()
    helped = run("export", "ics", "--help")
    assert helped.returncode == 0 and "Examples:" in helped.stdout
    assert "today" in run("--help").stdout
